#!/usr/bin/env bash
# Errors a user can hit: one clear line on stderr, a non-zero exit, nothing on stdout.
. "$(dirname "$0")/lib.sh"
[ -x "$MF" ] || fail "$MF not built (run make)"

# expect STATUS PATTERN ARGS...: runs memfaulttop ARGS as given.
expect() {
	local want=$1 pattern=$2 rc=0
	shift 2
	timeout $((10 * SCALE)) "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = "$want" ] || fail "'$*' exited $rc, want $want: $(cat "$T/err")"
	grep -qE -- "$pattern" "$T/err" || fail "'$*': stderr lacks /$pattern/: $(cat "$T/err")"
	[ "$want" = 0 ] || [ ! -s "$T/out" ] || fail "'$*' wrote to stdout: $(cat "$T/out")"
}

expect 2 "--gpa-range 3K: want a power of two" "$MF" --gpa-range 3K
expect 2 "--gpa-range 1K: want a power of two" "$MF" --gpa-range 1K
expect 2 "--gpa-range 2X" "$MF" --gpa-range 2X
expect 2 "-p abc: not a process id" "$MF" -p abc
expect 2 "-p 0: not a process id" "$MF" -p 0
expect 2 "--interval 0: want seconds" "$MF" -i 0
expect 2 "interval -1" "$MF" -- -1
expect 2 "--count x" "$MF" -n x
expect 2 "unexpected argument 3" "$MF" 1 2 3
expect 2 "unrecognized option" "$MF" --frobnicate

rc=0
timeout $((10 * SCALE)) "$MF" --version >"$T/out" 2>&1 || rc=$?
[ "$rc" = 0 ] && grep -q "^memfaulttop [0-9]" "$T/out" || fail "--version: rc $rc, $(cat "$T/out")"
rc=0
timeout $((10 * SCALE)) "$MF" --help >"$T/out" 2>&1 || rc=$?
[ "$rc" = 0 ] && grep -q -- "--gpa-range" "$T/out" || fail "--help: rc $rc"

# Least privilege: CAP_BPF and CAP_PERFMON are enough, with every kernel
# feature root gets; without either, one line names it. (A copy of the
# binary where user nobody can reach it.)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	chmod 711 "$T"
	install -m 755 "$MF" "$T/memfaulttop"
	nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	for caps in -all:both +bpf:CAP_PERFMON +perfmon:CAP_BPF; do
		expect 1 "needs CAP_BPF and CAP_PERFMON .*missing ${caps#*:}" "${nobody[@]}" \
			--inh-caps="${caps%:*}" --ambient-caps="${caps%:*}" "$T/memfaulttop" -j 1 1
	done
	timeout $((30 * SCALE)) "$MF" -j 0.2 1 >"$T/root.json" 2>/dev/null || fail "memfaulttop as root failed"
	timeout $((30 * SCALE)) "${nobody[@]}" --inh-caps=+bpf,+perfmon --ambient-caps=+bpf,+perfmon \
		"$T/memfaulttop" -j 0.2 1 >"$T/caps.json" 2>"$T/caps.err" ||
		fail "as nobody with CAP_BPF and CAP_PERFMON: $(cat "$T/caps.err")"
	python3 - "$T/root.json" "$T/caps.json" <<'PY' || fail "features differ"
import json, sys
root, caps = (json.loads(open(p).read())["kernel"]["features"] for p in sys.argv[1:])
if root != caps:
    sys.exit(f"FAIL: as root {root}, with CAP_BPF and CAP_PERFMON only {caps}")
print(f"ok: CAP_BPF and CAP_PERFMON alone: every feature root gets: {caps}")
PY
else
	echo "note: not root or no setpriv: the capability checks were not run"
fi
echo "PASS: bad input gives one clear line and a non-zero exit"
