#!/usr/bin/env bash
# Real KVM_HC_MAP_GPA_RANGE exits (the guest's vmcall with the hypercall
# exit enabled), two VMMs at once: per VM, memfaulttop's requests by
# direction, pages and GPA range equal what the VMMs saw.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

require_vmm_can --map-private 1

start_vmm "$T/up.json" --vcpus 2 --map-private 30 --map-shared 20 --map-gpa 0x200000 --map-pages 3 \
	--io 5 --hold $((2 * SCALE)) -name guest=up
up=$VMM_PID; up_guard=$TIMEOUT_PID
start_vmm "$T/down.json" --vms 2 --map-private 7 --map-shared 11 --map-gpa 0x7fe00000 --map-pages 512 \
	--hold $((2 * SCALE)) -name down
down=$VMM_PID; down_guard=$TIMEOUT_PID

start_memfaulttop -j -i 0.5 --gpa-range 2M
release_vmms
wait_vmm "$up_guard"
wait_vmm "$down_guard"
wait_destroyed "$up" "$down"
stop_memfaulttop

python3 tests/e2e/check_exits.py "$T/mf.out" "$T/up.json:up:2" "$T/down.json:down:1"
check_no_leftovers "$before"
echo "PASS: real MAP_GPA_RANGE exits per VM match the VMMs"
