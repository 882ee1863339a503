# Shared by the end-to-end tests: sourced, not run.
# Exit codes: 0 pass, 77 skip (with the reason printed), 78 not applicable to
# this kernel (with the reason), anything else fail.
set -euo pipefail

BUILD=${BUILD:-${MF_BUILD:-build}}
# Bounds on waits and processes are multiplied by MF_TIME_SCALE where
# everything runs slower (the kernel matrix under QEMU's TCG sets it). Waits
# are for conditions and end as soon as they hold: a wider bound costs
# nothing when things work.
SCALE=${MF_TIME_SCALE:-1}
MF=$BUILD/memfaulttop
VMM=$BUILD/vmm
T=$(mktemp -d)
CHILDREN=()

skip() {
	echo "SKIP: $*"
	exit 77
}

# The kernel lacks what the test exercises (a feature of newer or specially
# built kernels): neither a pass nor a failure here; the kernel matrix names
# the kernels where the test must run (tests/vm/matrix).
not_applicable() {
	echo "N/A: $*"
	exit 78
}

fail() {
	echo "FAIL: $*"
	exit 1
}

# Tests drive real KVM guests and load real BPF programs.
require_kvm_bpf() {
	[ "$(id -u)" = 0 ] || skip "needs root (BPF and /dev/kvm)"
	[ -c /dev/kvm ] || skip "no /dev/kvm"
	[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF at /sys/kernel/btf/vmlinux"
	command -v bpftool >/dev/null || skip "bpftool not installed"
	for b in "$MF" "$VMM"; do
		[ -x "$b" ] || fail "$b not built (run make)"
	done
}

# Built with ASan (make SANITIZE=1): freed memory sits in ASan's quarantine
# (256 MiB by default) so that a use after free is caught, so RSS says
# nothing about leaks there; LeakSanitizer's check at exit does.
sanitized_build() {
	ldd "$MF" 2>/dev/null | grep -q libasan
}

bpf_prog_ids() {
	bpftool prog show -j | python3 -c 'import json,sys; print(" ".join(sorted(str(p["id"]) for p in json.load(sys.stdin))))'
}

cleanup() {
	local pid
	# Children first: a killed timeout(1) would orphan its command.
	for pid in "${CHILDREN[@]}"; do
		pkill -KILL -P "$pid" 2>/dev/null || true
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

# Starts memfaulttop in the background (stdout to $T/$MF_NAME.out, stderr to
# $T/$MF_NAME.err; MF_NAME defaults to mf) under a timeout(1) guard and waits
# until it says it is attached. MF_PID is memfaulttop itself (signals go
# there, not to the guard, which would outlive a SIGKILL).
declare -A MF_PIDS MF_GUARDS
start_memfaulttop() {
	local name=${MF_NAME:-mf} guard
	timeout $((60 * SCALE)) "$MF" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	guard=$!
	CHILDREN+=("$guard")
	MF_PID=
	for _ in $(seq $((100 * SCALE))); do
		[ -n "$MF_PID" ] || MF_PID=$(pgrep -P "$guard" || true)
		if [ -n "$MF_PID" ] && grep -q "tracing KVM exits" "$T/$name.err"; then
			MF_PIDS[$name]=$MF_PID MF_GUARDS[$name]=$guard
			CHILDREN+=("$MF_PID")
			return 0
		fi
		kill -0 "$guard" 2>/dev/null || fail "memfaulttop exited early: $(cat "$T/$name.err")"
		sleep 0.1
	done
	fail "memfaulttop did not attach within 10 s: $(cat "$T/$name.err")"
}

# stop_memfaulttop [NAME]: stops the memfaulttop started as MF_NAME=NAME
# (default mf) with SIGINT, as a person would, and checks its status.
stop_memfaulttop() {
	local name=${1:-mf} rc=0
	kill -INT "${MF_PIDS[$name]}"
	wait "${MF_GUARDS[$name]}" || rc=$?
	[ "$rc" = 0 ] || fail "memfaulttop exited with $rc: $(cat "$T/$name.err")"
}

# Starts a test VMM in the background, held at $T/go until release_vmms.
# VMM_PID is the VMM itself (what memfaulttop sees), TIMEOUT_PID its guard.
start_vmm() {
	local out=$1
	shift
	timeout $((60 * SCALE)) "$VMM" --wait-file "$T/go" --json "$@" >"$out" &
	TIMEOUT_PID=$!
	CHILDREN+=("$TIMEOUT_PID")
	for _ in $(seq $((50 * SCALE))); do
		VMM_PID=$(pgrep -P "$TIMEOUT_PID" || true)
		[ -n "$VMM_PID" ] && break
		sleep 0.1
	done
	[ -n "$VMM_PID" ] || fail "the test VMM did not start"
	CHILDREN+=("$VMM_PID")
}

# vmm_can ARG...: whether this kernel can run the VMM workload ARG... (a
# one-unit probe run): 0 yes; 2 no, the reason in $T/probe; else the probe
# itself failed (the test fails).
vmm_can() {
	local rc=0
	timeout $((20 * SCALE)) "$VMM" "$@" >"$T/probe" 2>&1 || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 2 ] || fail "the probe 'vmm $*' failed: $(cat "$T/probe")"
	return "$rc"
}

# require_vmm_can ARG...: the test is not applicable where vmm_can says no.
require_vmm_can() {
	vmm_can "$@" || not_applicable "$(cat "$T/probe")"
}

release_vmms() {
	touch "$T/go"
}

# end_vmm PID GUARD_PID: ends a VMM that holds its VMs (--hold) now, rather
# than when its hold runs out: its VMs are destroyed as it exits.
end_vmm() {
	kill -TERM "$1"
	wait "$2" 2>/dev/null || true
}

# expect_lines FILE LINE...: every LINE stands somewhere in FILE, as is.
expect_lines() {
	local file=$1 want
	shift
	for want in "$@"; do
		grep -qF -- "$want" "$file" || fail "$file lacks '$want':
$(cat "$file")"
	done
}

# wait_vmm GUARD_PID: the VMM ended well. Status 3 (its guest made fewer or
# more exits than its program promises, seen rarely under nested TCG) is no
# failure of memfaulttop's, which is checked against what the VMM saw.
wait_vmm() {
	local rc=0
	wait "$1" || rc=$?
	case $rc in
	0) ;;
	3) echo "WARN: the guest of VMM $1 strayed from its program; its own record is the reference" ;;
	*) fail "VMM $1 exited with $rc" ;;
	esac
}

# Waits until memfaulttop's NDJSON has reported every given pid's VMs destroyed.
wait_destroyed() {
	for _ in $(seq $((100 * SCALE))); do
		if python3 - "$T/mf.out" "$@" <<'PY'
import json, sys
seen = set()
for line in open(sys.argv[1]):
    for vm in json.loads(line)["vms"]:
        if vm["destroyed"]:
            seen.add(str(vm["pid"]))
sys.exit(0 if set(sys.argv[2:]) <= seen else 1)
PY
		then
			return 0
		fi
		sleep 0.1
	done
	fail "memfaulttop never reported the VMs of $* destroyed"
}

# Nothing may stay behind: none of our processes, and no BPF program that
# appeared during the test unless a process outside the test holds it
# (a developer's other tools; CI runs nothing else).
check_no_leftovers() {
	local before=$1 pid left
	for pid in "${CHILDREN[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			fail "process $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) left running"
		fi
	done
	# A real leftover stays; a program of a process exiting meanwhile goes.
	# Programs other processes of the host load meanwhile are theirs; a
	# program held by any process running one of our binaries is ours.
	for _ in 1 2 3; do
		left=$(bpftool prog show -j | python3 -c '
import glob, json, os, re, sys
before, ours = set(sys.argv[1].split()), os.path.realpath(sys.argv[2]) + "/"
progs = json.load(sys.stdin)
foreign = set()
for info in glob.glob("/proc/[0-9]*/fdinfo/*"):
    try:
        ids = re.findall(r"^prog_id:\s+(\d+)", open(info).read(), re.M)
        if ids and not os.readlink(info.split("/fdinfo/")[0] + "/exe").startswith(ours):
            foreign.update(ids)
    except OSError:
        pass
for p in progs:
    if str(p["id"]) not in before and str(p["id"]) not in foreign:
        print(p["id"], p.get("name", "?"))
' "$before" "$BUILD")
		[ -z "$left" ] && break
		sleep 0.5
	done
	[ -z "$left" ] || fail "BPF programs left behind: $left"
}
