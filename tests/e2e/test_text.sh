#!/usr/bin/env bash
# Text mode (stdout not a terminal): a block per active VM, named for people.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

start_vmm "$T/vmm.json" --vcpus 2 --io 250 --mmio 4 --hold $((2 * SCALE)) -name guest=textvm,debug-threads=on
vmm=$VMM_PID
guard=$TIMEOUT_PID
# One long interval cut short by SIGINT once the guests are done (the VMM
# holds its VM for 2 s more): the whole run lands in one report.
start_memfaulttop -i 30
release_vmms
for _ in $(seq $((100 * SCALE))); do
	[ -s "$T/vmm.json" ] && break
	sleep 0.1
done
stop_memfaulttop
wait_vmm "$guard"

expect_lines "$T/mf.out" "VM textvm  pid $vmm  comm vmm" "vcpus 2" "IO 500" "MMIO 8" "HLT 2" \
	"private faults 0 "
check_no_leftovers "$before"
echo "PASS: text report"
