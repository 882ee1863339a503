#!/usr/bin/env bash
# Signals and pipes: a reader that goes away (memfaulttop -j | head -1) ends
# memfaulttop with status 0 and no message; SIGKILL, and SIGTERM while it
# loads and attaches, leave no BPF program behind; a VM created and
# destroyed within one interval is still reported with its -name.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
before=$(bpf_prog_ids)

# A closed pipe is the reader's way of saying enough.
rc=0
timeout $((30 * SCALE)) bash -c "\"$MF\" -j -i 0.2 2>\"$T/pipe.err\" | head -n 1 >\"$T/pipe.out\"; exit \${PIPESTATUS[0]}" || rc=$?
[ "$rc" = 0 ] || fail "memfaulttop -j | head -1: status $rc: $(cat "$T/pipe.err")"
python3 -c 'import json,sys; json.loads(open(sys.argv[1]).read())' "$T/pipe.out" ||
	fail "the one line head took is no JSON record: $(cat "$T/pipe.out")"
if grep -v "^memfaulttop: kernel .* unavailable: \|^memfaulttop: tracing KVM exits" "$T/pipe.err"; then
	fail "memfaulttop said more than its start-up lines when the pipe closed"
fi
echo "ok: memfaulttop -j | head -1: status 0, no message"

# SIGKILL: the kernel drops the programs with the process's last fd.
start_memfaulttop -j -i 1
kill -KILL "$MF_PID"
wait "${MF_GUARDS[mf]}" 2>/dev/null || true
check_no_leftovers "$before"
echo "ok: SIGKILL leaves no BPF program behind"

# SIGTERM at every moment of start-up: probing, loading, attaching.
for delay in 0.01 0.05 0.1 0.2 0.4; do
	"$MF" -j -i 1 >/dev/null 2>"$T/term.err" &
	pid=$!
	CHILDREN+=("$pid")
	sleep "$delay"
	kill -TERM "$pid" 2>/dev/null || true
	rc=0
	wait "$pid" || rc=$?
	# 0 once the handler is in; killed by the signal (143) before that.
	[ "$rc" = 0 ] || [ "$rc" = 143 ] || fail "SIGTERM after ${delay}s: status $rc: $(cat "$T/term.err")"
done
check_no_leftovers "$before"
echo "ok: SIGTERM during start-up leaves nothing behind"

# A VM that lives and dies within one interval keeps its name.
MF_NAME=brief start_memfaulttop -j -i 600
start_vmm "$T/brief.json" --io 3 -name guest=brief
brief=$VMM_PID; brief_guard=$TIMEOUT_PID
release_vmms
wait_vmm "$brief_guard"
stop_memfaulttop brief
python3 - "$T/brief.out" "$brief" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
vms = [v for r in recs for v in r["vms"] if v["pid"] == int(sys.argv[2])]
if [v["name"] for v in vms] != ["brief"]:
    sys.exit(f"FAIL: the short-lived VM was reported as {[v['name'] for v in vms]}, want ['brief']")
PY
echo "ok: a VM gone within its interval is reported by its -name"

check_no_leftovers "$before"
echo "PASS: pipes, SIGKILL, SIGTERM at start-up, short-lived names"
