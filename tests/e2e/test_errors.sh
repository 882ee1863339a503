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
expect 2 "--listen 1.2.3:9464: want PORT, ADDR:PORT or \\[ADDR6\\]:PORT" "$MF" --listen 1.2.3:9464
expect 2 "--listen 70000: want" "$MF" --listen 70000
expect 2 "--listen localhost:9464: want" "$MF" --listen localhost:9464
expect 2 "-q without --listen" "$MF" -q
expect 2 "-q prints no reports: it cannot go with -j" "$MF" -q -j --listen 9464
expect 2 "--trace prints events, not reports, whose totals --listen serves" "$MF" --trace --listen 9464

rc=0
timeout $((10 * SCALE)) "$MF" --version >"$T/out" 2>&1 || rc=$?
[ "$rc" = 0 ] && grep -q "^memfaulttop [0-9]" "$T/out" || fail "--version: rc $rc, $(cat "$T/out")"
rc=0
timeout $((10 * SCALE)) "$MF" --help >"$T/out" 2>&1 || rc=$?
[ "$rc" = 0 ] && grep -q -- "--gpa-range" "$T/out" || fail "--help: rc $rc"

# --listen without libmicrohttpd (opened for the endpoint only): one line
# naming the package, status 1, and no BPF loaded first (bpf(2) never
# called). An empty file bound over the library, in a mount namespace of
# its own, stands for a missing one. (LeakSanitizer cannot run under
# ptrace: off for this one run of a sanitized build.)
lib=$(ldconfig -p | awk '$1 == "libmicrohttpd.so.12" { print $NF; exit }')
if [ "$(id -u)" = 0 ] && [ -n "$lib" ] && command -v strace >/dev/null && unshare -m true; then
	: >"$T/empty"
	expect 1 "^memfaulttop: --listen needs libmicrohttpd: .*\(install Debian's libmicrohttpd12\)$" \
		unshare -m sh -c 'mount --bind "$1" "$(readlink -f "$2")" &&
			exec env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
				strace -qq -f -e trace=bpf -o "$3" "$4" --listen 9464 -q' \
		sh "$T/empty" "$lib" "$T/strace" "$MF"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "no libmicrohttpd: more than one line: $(cat "$T/err")"
	[ ! -s "$T/strace" ] || fail "no libmicrohttpd: BPF was called first: $(head -3 "$T/strace")"
	echo "ok: no libmicrohttpd: $(cat "$T/err")"
else
	fail "cannot try a missing libmicrohttpd: needs root, libmicrohttpd.so.12, strace (make deps) and mount namespaces"
fi

# Least privilege. CAP_SYS_ADMIN alone gets every feature root gets. Where
# KVM is built in, CAP_BPF and CAP_PERFMON run the exit path, and the
# fentry/fexit hooks (for which Debian's libbpf 1.1 walks the kernel's BTF
# objects, a CAP_SYS_ADMIN privilege) are said to have failed to load;
# where KVM is a module, even its tracepoint needs that walk, so those two
# are refused in one line; so is a set missing one of them. (A copy of the
# binary where user nobody can reach it.)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	chmod 711 "$T"
	install -m 755 "$MF" "$T/memfaulttop"
	as_nobody() {
		local caps=$1 out=$2
		shift 2
		timeout $((30 * SCALE)) setpriv --reuid=65534 --regid=65534 --clear-groups \
			--inh-caps="$caps" --ambient-caps="$caps" "$T/memfaulttop" -j 0.2 1 \
			>"$T/$out.json" 2>"$T/$out.err" || fail "as nobody with $caps: $(cat "$T/$out.err")"
	}
	nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	if [ -e /sys/kernel/btf/kvm ]; then
		short=(+bpf,+perfmon:"KVM is a module here.*needs CAP_SYS_ADMIN")
	else
		short=(-all:"missing both" +bpf:"missing CAP_PERFMON" +perfmon:"missing CAP_BPF")
		as_nobody +bpf,+perfmon two
	fi
	for caps in "${short[@]}"; do
		expect 1 "${caps#*:}" "${nobody[@]}" --inh-caps="${caps%%:*}" \
			--ambient-caps="${caps%%:*}" "$T/memfaulttop" -j 1 1
	done
	timeout $((30 * SCALE)) "$MF" -j 0.2 1 >"$T/root.json" 2>/dev/null || fail "memfaulttop as root failed"
	as_nobody +sys_admin admin
	python3 - "$T" <<'PY' || fail "features differ"
import json, os, sys
def kernel(name):
    path = os.path.join(sys.argv[1], name + ".json")
    return json.loads(open(path).read())["kernel"] if os.path.exists(path) else None
root, admin, two = kernel("root"), kernel("admin"), kernel("two")
if admin["features"] != root["features"]:
    sys.exit(f"FAIL: as root {root['features']}, with CAP_SYS_ADMIN only {admin['features']}")
print(f"ok: as nobody with CAP_SYS_ADMIN only: every feature root gets: {admin['features']}")
if two:
    for key, on in root["features"].items():
        if on and not two["features"][key] and \
                "failed to load or attach" not in two["unavailable"].get(key, ""):
            sys.exit(f"FAIL: with CAP_BPF and CAP_PERFMON, {key} is missing without saying why: "
                     f"{two['unavailable']}")
    print(f"ok: as nobody with CAP_BPF and CAP_PERFMON: {two['features']}, what is missing said")
PY
else
	echo "note: not root or no setpriv: the capability checks were not run"
fi
echo "PASS: bad input gives one clear line and a non-zero exit"
