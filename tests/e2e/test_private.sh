#!/usr/bin/env bash
# Real private and shared KVM_EXIT_MEMORY_FAULT exits and real
# KVM_HC_MAP_GPA_RANGE exits both ways, from SW-protected VMs whose VMM
# serves them with KVM_SET_MEMORY_ATTRIBUTES, two VMMs at once: per VM,
# memfaulttop's counts, sizes and 2 MiB GPA ranges of every class equal what
# the VMMs saw, and the unpinnable-page EFAULTs count as UNKNOWN exits.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

require_vmm_can --private 1

start_vmm "$T/wide.json" --vcpus 2 --private 16 --hold $((2 * SCALE)) -name guest=wide
wide=$VMM_PID; wide_guard=$TIMEOUT_PID
start_vmm "$T/pair.json" --vms 2 --private 10 --hold $((2 * SCALE)) -name pair
pair=$VMM_PID; pair_guard=$TIMEOUT_PID

start_memfaulttop -j -i 0.5 --gpa-range 2M
release_vmms
wait_vmm "$wide_guard"
wait_vmm "$pair_guard"
wait_destroyed "$wide" "$pair"
stop_memfaulttop

python3 tests/e2e/check_exits.py "$T/mf.out" "$T/wide.json:wide:2" "$T/pair.json:pair:1"
check_no_leftovers "$before"
echo "PASS: real private/shared memory faults and MAP_GPA_RANGE per VM match the VMMs"
