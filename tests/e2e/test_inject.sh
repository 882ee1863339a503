#!/usr/bin/env bash
# The memory-fault and MAP_GPA_RANGE aggregation, including the private
# class and unknown flags this host's kernel can never produce: synthetic
# exits go through memfaulttop's own BPF code (inject_exit) and frontend.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
INJECT=$BUILD/mf-inject
[ -x "$INJECT" ] || fail "$INJECT not built (run make)"
before=$(bpf_prog_ids)

cat >"$T/exits" <<'IN'
# VM 1: private and shared faults, sizes 4K and 2M, unknown flag bits 0, 4 and 63
vm=0x1000 pid=101 vcpu=0 reason=39 err=-14 flags=0x8 gpa=0x100000 size=4096 repeat=5
vm=0x1000 pid=101 vcpu=3 reason=39 err=-14 flags=0x8 gpa=0x300000 size=4096 repeat=2
vm=0x1000 pid=101 vcpu=1 reason=39 err=-14 flags=0x0 gpa=0x40000000 size=2097152 repeat=2
vm=0x1000 pid=101 vcpu=1 reason=39 err=-14 flags=0x8000000000000011 gpa=0x1000 size=4096
# not a memory fault: KVM_RUN succeeded, exit_reason is stale
vm=0x1000 pid=101 vcpu=0 reason=39 err=0 flags=0x8 gpa=0x100000 size=4096
# VM 2: guest conversion requests, both directions, and other exits
vm=0x2000 pid=202 vcpu=0 reason=3 nr=12 gpa=0x200000 pages=512 attrs=0x10 repeat=3
vm=0x2000 pid=202 vcpu=0 reason=3 nr=12 gpa=0x80000000 pages=1 attrs=0x0
vm=0x2000 pid=202 vcpu=0 reason=3 nr=11 gpa=0x5000
vm=0x2000 pid=202 vcpu=0 reason=2 repeat=7
vm=0x2000 pid=202 vcpu=0 reason=50
IN

timeout $((30 * SCALE)) "$INJECT" --json --gpa-range 2M <"$T/exits" >"$T/out.json" 2>"$T/err" ||
	fail "mf-inject --json: $(cat "$T/err")"
python3 - "$T/out.json" <<'PY' || exit 1
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
rec = json.loads(lines[0])
assert rec["schema"] == "memfaulttop" and rec["version"] == 1
assert rec["gpa_range_bytes"] == 2 << 20
vms = {vm["pid"]: vm for vm in rec["vms"]}
assert set(vms) == {101, 202}, vms.keys()

a = vms[101]
assert a["exits"] == {"total": 11, "by_reason": {"MEMORY_FAULT": 11}}, a["exits"]
assert a["vcpus"] == 3
f = a["memory_faults"]
assert f["private"]["count"] == 7 and f["private"]["bytes"] == 7 * 4096, f["private"]
assert f["private"]["sizes"] == [{"min_bytes": 4096, "max_bytes": 8191, "count": 7}]
assert f["private"]["gpa_ranges"] == [
    {"start": "0x0", "end": "0x1fffff", "count": 5, "bytes": 5 * 4096},
    {"start": "0x200000", "end": "0x3fffff", "count": 2, "bytes": 2 * 4096}], f["private"]["gpa_ranges"]
assert f["shared"]["count"] == 3, f["shared"]
assert f["shared"]["sizes"] == [
    {"min_bytes": 4096, "max_bytes": 8191, "count": 1},
    {"min_bytes": 2 << 20, "max_bytes": (4 << 20) - 1, "count": 2}], f["shared"]["sizes"]
assert f["shared"]["gpa_ranges"] == [
    {"start": "0x0", "end": "0x1fffff", "count": 1, "bytes": 4096},
    {"start": "0x40000000", "end": "0x401fffff", "count": 2, "bytes": 2 * (2 << 20)}], f["shared"]["gpa_ranges"]
assert f["unknown_flag_bits"] == {"0": 1, "4": 1, "63": 1}, f["unknown_flag_bits"]

b = vms[202]
assert b["exits"]["by_reason"] == {"IO": 7, "HYPERCALL": 5, "50": 1}, b["exits"]
m = b["map_gpa_range"]
assert m["to_private"]["count"] == 3 and m["to_private"]["pages"] == 1536, m["to_private"]
assert m["to_private"]["sizes"] == [{"min_bytes": 2 << 20, "max_bytes": (4 << 20) - 1, "count": 3}]
assert m["to_private"]["gpa_ranges"] == [
    {"start": "0x200000", "end": "0x3fffff", "count": 3, "bytes": 3 * (2 << 20)}]
assert m["to_shared"]["count"] == 1 and m["to_shared"]["pages"] == 1, m["to_shared"]
assert m["to_shared"]["gpa_ranges"][0]["start"] == "0x80000000"
assert b["memory_faults"]["private"]["count"] == 0
print("ok: synthetic exits aggregated exactly (JSON)")
PY

timeout $((30 * SCALE)) "$INJECT" --gpa-range 2M <"$T/exits" >"$T/out.txt" 2>"$T/err" ||
	fail "mf-inject (text): $(cat "$T/err")"
expect_lines "$T/out.txt" \
	"VM kvm-101  pid 101" \
	"private faults 7 " \
	"shared faults 3 " \
	"UNKNOWN memory-fault flags: bit 0: 1, bit 4: 1, bit 63: 1" \
	"4K -> 8K      : 7 " \
	"0x0000000000200000-0x00000000003fffff          2  8K" \
	"0x0000000040000000-0x00000000401fffff          2  4M" \
	"MAP_GPA_RANGE to private 3 " \
	"IO 7  HYPERCALL 5  reason 50 1"
echo "ok: text output shows the same"

# Several reports: deltas stay exact whether a refresh reads the ranges the
# BPF side logged as changed (VM 0xc's 32 ranges stay idle after the
# first) or, after more changed keys than the log holds (VM 0xd's 9,000 new
# ranges in the fifth report), both maps whole.
for i in $(seq 0 31); do
	echo "vm=0xc pid=13 reason=39 err=-14 gpa=$((i << 30)) size=4096"
done >"$T/phases"
cat >>"$T/phases" <<'IN'
vm=0xa pid=11 reason=39 err=-14 flags=8 gpa=0x0 size=4096 repeat=4
vm=0xa pid=11 reason=39 err=-14 flags=8 gpa=0x40000000 size=4096
vm=0xb pid=12 reason=3 nr=12 gpa=0x0 pages=2 attrs=0x10 repeat=2
report
vm=0xa pid=11 reason=39 err=-14 flags=8 gpa=0x40000000 size=4096 repeat=3
report
vm=0xb pid=12 reason=3 nr=12 gpa=0xc0000000 pages=1 attrs=0 repeat=5
vm=0xa pid=11 reason=39 err=-14 flags=8 gpa=0x0 size=4096
report
report
IN
for i in $(seq 0 8999); do
	echo "vm=0xd pid=14 reason=39 err=-14 flags=8 gpa=$((i << 30)) size=4096"
done >>"$T/phases"
cat >>"$T/phases" <<'IN'
vm=0xa pid=11 reason=39 err=-14 flags=8 gpa=0x40000000 size=4096 repeat=2
report
vm=0xa pid=11 reason=39 err=-14 flags=8 gpa=0x0 size=4096
vm=0xd pid=14 reason=39 err=-14 flags=8 gpa=0x40000000 size=4096
report
IN
timeout $((30 * SCALE)) "$INJECT" --json <"$T/phases" >"$T/phases.json" 2>"$T/err" ||
	fail "phases: $(cat "$T/err")"
python3 - "$T/phases.json" <<'PY' || exit 1
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 7, len(recs)

def ranges(rec, pid, path):
    for vm in rec["vms"]:
        if vm["pid"] == pid:
            node = vm
            for p in path:
                node = node[p]
            return {r["start"]: r["count"] for r in node["gpa_ranges"]}
    return {}

priv = ("memory_faults", "private")
assert ranges(recs[0], 11, priv) == {"0x0": 4, "0x40000000": 1}, recs[0]
assert ranges(recs[0], 12, ("map_gpa_range", "to_private")) == {"0x0": 2}
assert ranges(recs[1], 11, priv) == {"0x40000000": 3}, ranges(recs[1], 11, priv)
assert len(ranges(recs[0], 13, ("memory_faults", "shared"))) == 32
assert [vm["pid"] for vm in recs[1]["vms"]] == [11], "an idle VM was reported"
assert ranges(recs[2], 11, priv) == {"0x0": 1}, ranges(recs[2], 11, priv)
assert ranges(recs[2], 12, ("map_gpa_range", "to_shared")) == {"0xc0000000": 5}
assert recs[3]["vms"] == [], "an idle report lists VMs"
spray = ranges(recs[4], 14, priv)
assert len(spray) == 9000 and set(spray.values()) == {1}, len(spray)
assert ranges(recs[4], 11, priv) == {"0x40000000": 2}, ranges(recs[4], 11, priv)
assert ranges(recs[5], 11, priv) == {"0x0": 1}, ranges(recs[5], 11, priv)
assert ranges(recs[5], 14, priv) == {"0x40000000": 1}, ranges(recs[5], 14, priv)
print("ok: per-report GPA-range deltas exact, by the change log and after it overflowed")
PY

# Bounded maps: a GPA spray beyond MF_MAX_RANGES is counted, not stored.
# (The range_flips table has the same bound and fills with it.)
max_ranges=$(sed -n 's/^#define MF_MAX_RANGES[[:space:]]*\([0-9]*\).*/\1/p' src/memfault.h)
python3 -c "
for i in range($max_ranges + 100):
    print(f'vm=0x3000 pid=303 reason=39 err=-14 flags=0x8 gpa={i << 12:#x} size=4096')
" >"$T/spray"
timeout $((120 * SCALE)) "$INJECT" --json --gpa-range 4K <"$T/spray" >"$T/spray.json" 2>"$T/err" ||
	fail "spray: $(cat "$T/err")"
python3 - "$T/spray.json" "$max_ranges" <<'PY' || exit 1
import json, sys
rec = json.loads(open(sys.argv[1]).read())
n = int(sys.argv[2])
vm = rec["vms"][0]
assert vm["memory_faults"]["private"]["count"] == n + 100
assert len(vm["memory_faults"]["private"]["gpa_ranges"]) == n
# Each exit past the bound finds both range tables full: its count and its
# direction (range_flips) are two updates lost. The kernel's allocator may
# fail a few inserts on the way there (its per-CPU cache refills
# asynchronously): those count as no_memory, and later inserts fill up.
lost = rec["drops"]["range_table_full"] + rec["drops"]["no_memory"]
assert vm["range_drops"] == 200 and lost == 200, (vm["range_drops"], rec["drops"])
assert vm["flips"]["count"] == 0, vm["flips"]
print(f"ok: {n} ranges kept, 100 exits' 200 range updates counted as dropped")
PY

# A VM spray beyond MF_MAX_VMS: every exit is counted or counted as dropped.
max_vms=$(sed -n 's/^#define MF_MAX_VMS[[:space:]]*\([0-9]*\).*/\1/p' src/memfault.h)
python3 -c "
for i in range($max_vms + 50):
    print(f'vm={0x100000 + i} pid=404 reason=2')
" >"$T/vms"
timeout $((120 * SCALE)) "$INJECT" --json <"$T/vms" >"$T/vms.json" 2>"$T/err" || fail "VM spray: $(cat "$T/err")"
python3 - "$T/vms.json" "$max_vms" <<'PY' || exit 1
import json, sys
rec = json.loads(open(sys.argv[1]).read())
n = int(sys.argv[2])
counted = sum(vm["exits"]["total"] for vm in rec["vms"])
dropped = rec["drops"]["vm_table_full"] + rec["drops"]["no_memory"]
assert counted + dropped == n + 50, (counted, dropped)
assert len(rec["vms"]) <= n and rec["drops"]["vm_table_full"] >= 50, (len(rec["vms"]), rec["drops"])
print(f"ok: {counted} VMs counted, {dropped} exits counted as dropped")
PY

# A struct kvm address freed and reused by another process's VM before the
# frontend noticed: two VMs, the old one reported destroyed once.
cat >"$T/reuse" <<'IN'
vm=0x5000 pid=501 reason=2 repeat=3
vm=0x5000 pid=502 reason=2 repeat=4
report
vm=0x5000 pid=502 reason=2
IN
timeout $((30 * SCALE)) "$INJECT" --json <"$T/reuse" >"$T/reuse.json" 2>"$T/err" ||
	fail "address reuse: $(cat "$T/err")"
python3 - "$T/reuse.json" <<'PY' || exit 1
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
seen = [(vm["pid"], vm["exits"]["total"], vm["destroyed"]) for rec in recs for vm in rec["vms"]]
assert seen == [(501, 3, True), (502, 4, False), (502, 1, False)], seen
assert len({vm["id"] for rec in recs for vm in rec["vms"]}) == 2
print("ok: a reused VM address starts a new VM; the old one is reported destroyed once")
PY

check_no_leftovers "$before"
echo "PASS: synthetic memory-fault and MAP_GPA_RANGE aggregation"
