#!/usr/bin/env bash
# Three VMM processes at once, different workloads (one with two VMs): per VM,
# memfaulttop's JSON must equal what the guests really did, exactly.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

start_vmm "$T/alpha.json" --vcpus 2 --io 500 --mmio 40 --mmio-gpa 0xa0000 \
	--mmio-gpa 0xd0000 --hold $((2 * SCALE)) -name guest=alpha,debug-threads=on
alpha=$VMM_PID; alpha_guard=$TIMEOUT_PID
start_vmm "$T/beta.json" --vms 2 --io 123 --mmio 7 --hold $((2 * SCALE)) -name beta
beta=$VMM_PID; beta_guard=$TIMEOUT_PID
# One thread running the vCPUs of three VMs in turn: the per-thread vCPU
# cache in the BPF program must follow every switch.
start_vmm "$T/gamma.json" --vms 3 --vcpus 2 --io 77 --mmio 5 --one-thread --hold $((2 * SCALE)) -name gamma
gamma=$VMM_PID; gamma_guard=$TIMEOUT_PID

start_memfaulttop -j -i 0.5
release_vmms
wait_vmm "$alpha_guard"
wait_vmm "$beta_guard"
wait_vmm "$gamma_guard"
wait_destroyed "$alpha" "$beta" "$gamma"
stop_memfaulttop

python3 tests/e2e/check_exits.py "$T/mf.out" "$T/alpha.json:alpha:2" "$T/beta.json:beta:1" \
	"$T/gamma.json:gamma:2"
check_no_leftovers "$before"
echo "PASS: exits per VM match the VMMs"
