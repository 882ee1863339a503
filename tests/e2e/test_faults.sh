#!/usr/bin/env bash
# Real KVM_EXIT_MEMORY_FAULT exits (a 64-bit user-mode guest writing to a
# released guest_memfd), two VMMs at once: per VM, memfaulttop's counts,
# classes, sizes and 2 MiB GPA ranges equal what the VMMs saw, and a
# --trace -j beside it has one line per fault, none lost.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

require_vmm_can --memory-faults 1

start_vmm "$T/spread.json" --vcpus 2 --memory-faults 3 --fault-pages 4 --fault-stride 0x200000 \
	--hold $((2 * SCALE)) -name guest=spread
spread=$VMM_PID; spread_guard=$TIMEOUT_PID
start_vmm "$T/dense.json" --vms 2 --memory-faults 5 --fault-pages 3 --fault-gpa 0x40100000 \
	--hold $((2 * SCALE)) -name dense
dense=$VMM_PID; dense_guard=$TIMEOUT_PID

# Beside the reports, a trace of the same faults, one line each.
MF_NAME=trace start_memfaulttop -j --trace
start_memfaulttop -j -i 0.5 --gpa-range 2M
release_vmms
wait_vmm "$spread_guard"
wait_vmm "$dense_guard"
wait_destroyed "$spread" "$dense"
stop_memfaulttop
stop_memfaulttop trace

python3 tests/e2e/check_exits.py "$T/mf.out" "$T/spread.json:spread:2" "$T/dense.json:dense:1"
python3 tests/e2e/check_exits.py --trace "$T/trace.out" "$T/mf.out" "$T/spread.json:spread:2" \
	"$T/dense.json:dense:1"
check_no_leftovers "$before"
echo "PASS: real memory-fault exits per VM match the VMMs"
