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

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	expect 1 "needs root" setpriv --reuid=65534 --regid=65534 --clear-groups "$MF" -j 1 1
else
	echo "note: not root or no setpriv: the non-root check was not run"
fi
echo "PASS: bad input gives one clear line and a non-zero exit"
