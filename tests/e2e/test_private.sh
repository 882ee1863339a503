#!/usr/bin/env bash
# Real private and shared KVM_EXIT_MEMORY_FAULT exits and real
# KVM_HC_MAP_GPA_RANGE exits both ways, from SW-protected VMs whose VMM
# serves them with KVM_SET_MEMORY_ATTRIBUTES, two VMMs at once: per VM,
# memfaulttop's counts, sizes, 2 MiB GPA ranges and direction changes of
# every class equal what the VMMs saw, and the unpinnable-page EFAULTs count
# as UNKNOWN exits. Beside it, one memfaulttop reports the whole storm in
# one interval (every VM storms: each of its ranges flips 2 x rounds - 1
# times), and one traces it (--trace -j: one line per event, none lost).
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

require_vmm_can --private 1

start_vmm "$T/wide.json" --vcpus 2 --private 16 --hold $((2 * SCALE)) -name guest=wide
wide=$VMM_PID; wide_guard=$TIMEOUT_PID
start_vmm "$T/pair.json" --vms 2 --private 10 --hold $((2 * SCALE)) -name pair
pair=$VMM_PID; pair_guard=$TIMEOUT_PID

MF_NAME=storm start_memfaulttop -j -i 600 --gpa-range 2M
MF_NAME=trace start_memfaulttop -j --trace
start_memfaulttop -j -i 0.5 --gpa-range 2M
release_vmms
wait_vmm "$wide_guard"
wait_vmm "$pair_guard"
wait_destroyed "$wide" "$pair"
stop_memfaulttop
stop_memfaulttop storm
stop_memfaulttop trace

python3 tests/e2e/check_exits.py "$T/mf.out" "$T/wide.json:wide:2" "$T/pair.json:pair:1"
python3 tests/e2e/check_exits.py "$T/storm.out" "$T/wide.json:wide:2" "$T/pair.json:pair:1"
# One record: each vCPU's 3 ranges flapped, well past the 4 flips a storm needs.
python3 - "$T/storm.out" "$wide:6" "$pair:3" <<'PY'
import json, sys
recs = [json.loads(line) for line in open(sys.argv[1])]
if len(recs) != 1:
    sys.exit(f"FAIL: {len(recs)} records in one long interval")
for spec in sys.argv[2:]:
    pid, ranges = map(int, spec.split(":"))
    for vm in [v for v in recs[0]["vms"] if v["pid"] == pid]:
        st = vm["storm"]
        if not st["storming"] or "flapping" not in st["reasons"] or st["flapping_ranges"] != ranges:
            sys.exit(f"FAIL: VM {vm['id']} of pid {pid}: storm {st}, want {ranges} flapping ranges")
        print(f"ok: VM {vm['id']} of pid {pid} storming: {st}")
PY
python3 tests/e2e/check_exits.py --trace "$T/trace.out" "$T/storm.out" "$T/wide.json:wide:2" \
	"$T/pair.json:pair:1"
check_no_leftovers "$before"
echo "PASS: real private/shared memory faults, MAP_GPA_RANGE, conversions, flips, storms and traces per VM match the VMMs"
