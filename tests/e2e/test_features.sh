#!/usr/bin/env bash
# memfaulttop says which kernel features it found, the same in JSON, in the
# first text report and on stderr, and what it says is true of this kernel:
# checked against the kernel's own BTF and ftrace, and, in the kernel
# matrix, against what the matrix declares (MF_EXPECT_FEATURES).
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

timeout $((30 * SCALE)) "$MF" -j -i 0.2 -n 1 >"$T/json" 2>"$T/json.err" ||
	fail "memfaulttop -j failed: $(cat "$T/json.err")"
timeout $((30 * SCALE)) "$MF" -b -i 0.2 -n 1 >"$T/text" 2>"$T/text.err" ||
	fail "memfaulttop -b failed: $(cat "$T/text.err")"

# What this kernel really has, found independently of memfaulttop.
btf_has_memory_fault=false
for btf in /sys/kernel/btf/vmlinux /sys/kernel/btf/kvm; do
	[ -r "$btf" ] || continue
	# The kvm module's BTF is split BTF on top of vmlinux's.
	base=()
	[ "$btf" = /sys/kernel/btf/vmlinux ] || base=(-B /sys/kernel/btf/vmlinux)
	bpftool "${base[@]}" btf dump file "$btf" >"$T/btf" 2>/dev/null || true
	if grep -q "^[[:space:]]*'memory_fault' type_id=" "$T/btf"; then
		btf_has_memory_fault=true
	fi
done
# fentry and fexit need the function in ftrace's list of traceable functions.
traceable() {
	local d
	for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
		grep -qs "^$1\b" "$d/available_filter_functions" && { echo true; return; }
	done
	echo false
}

python3 - "$T/json" "$T/text" "$T/json.err" "$(uname -r)" "$btf_has_memory_fault" \
	"$(traceable kvm_destroy_vm)" "$(traceable kvm_vm_ioctl)" "$(traceable kvm_gmem_fallocate)" \
	"$(traceable kvm_arch_vcpu_ioctl_run)" "${MF_EXPECT_FEATURES-unset}" <<'PY'
import json, sys

(json_path, text_path, err_path, release, btf_mf, destroy, ioctl, fallocate, run,
 expect) = sys.argv[1:]

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

kernel = json.loads(open(json_path).readline())["kernel"]
if kernel["release"] != release:
    fail(f"release {kernel['release']}, uname says {release}")
features = kernel["features"]
if set(features) != {"memory_fault_info", "destroy_hook", "conversions", "discards",
                     "wait_latency"}:
    fail(f"features {sorted(features)}")
missing = {k for k, v in features.items() if not v}
if set(kernel["unavailable"]) != missing:
    fail(f"unavailable {sorted(kernel['unavailable'])} but features false: {sorted(missing)}")
truth = {"memory_fault_info": btf_mf == "true", "destroy_hook": destroy == "true",
         "conversions": ioctl == "true", "discards": fallocate == "true",
         "wait_latency": run == "true"}
if features != truth:
    fail(f"memfaulttop says {features}; the kernel's BTF and ftrace say {truth}")
if expect != "unset":
    want = {k: k in expect.split() for k in features}
    if features != want:
        fail(f"memfaulttop says {features}; the kernel matrix declares {want}")
text, err = open(text_path).read(), open(err_path).read()
for key in missing:
    line = f"kernel {release}: {key} unavailable: {kernel['unavailable'][key]}"
    if "  " + line not in text or "memfaulttop: " + line not in err:
        fail(f"'{line}' is not in the first text report and on stderr:\n{text}\n{err}")
print(f"ok: kernel {release}: {features}")
PY
check_no_leftovers "$before"
echo "PASS: kernel features reported truly"
