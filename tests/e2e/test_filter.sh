#!/usr/bin/env bash
# -p keeps only the chosen VMM's VMs; -n and -d end the run by themselves.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

start_vmm "$T/keep.json" --io 300 --hold $((2 * SCALE)) -name keep
keep=$VMM_PID; keep_guard=$TIMEOUT_PID
start_vmm "$T/other.json" --io 200 --hold $((2 * SCALE)) -name other
other=$VMM_PID; other_guard=$TIMEOUT_PID

start_memfaulttop -j -i 0.5 -p "$keep"
release_vmms
wait_vmm "$keep_guard"
wait_vmm "$other_guard"
wait_destroyed "$keep"
stop_memfaulttop
python3 tests/e2e/check_exits.py "$T/mf.out" "$T/keep.json:keep:1"
if grep -q "\"pid\":$other," "$T/mf.out"; then
	fail "-p $keep also reported pid $other"
fi

# -n: exactly that many records, then exit 0 on its own.
timeout $((20 * SCALE)) "$MF" -j -i 0.2 -n 3 >"$T/n.out" 2>"$T/n.err" || fail "-n 3 failed: $(cat "$T/n.err")"
[ "$(wc -l <"$T/n.out")" = 3 ] || fail "-n 3 printed $(wc -l <"$T/n.out") records"

# -d: stops after the duration, the last record covering the remainder.
start=$(date +%s%N)
timeout $((20 * SCALE)) "$MF" -j -i 0.4 -d 1 >"$T/d.out" 2>"$T/d.err" || fail "-d 1 failed: $(cat "$T/d.err")"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(wc -l <"$T/d.out")" = 3 ] || fail "-d 1 -i 0.4 printed $(wc -l <"$T/d.out") records, want 3"
[ "$elapsed_ms" -lt $((5000 * SCALE)) ] || fail "-d 1 took ${elapsed_ms} ms"

check_no_leftovers "$before"
echo "PASS: -p filter, -n and -d"
