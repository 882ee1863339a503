#!/usr/bin/env bash
# make install: the binary, the man page and the systemd unit, whose
# ExecStart names the installed binary; systemd-analyze verifies the unit.
. "$(dirname "$0")/lib.sh"
[ -x "$MF" ] || fail "$MF not built (run make)"
command -v make >/dev/null || skip "make not installed"

make -s install PREFIX="$T/usr" OUTPUT="$BUILD" >"$T/make.out" 2>&1 ||
	fail "make install: $(cat "$T/make.out")"
unit=$T/usr/lib/systemd/system/memfaulttop.service
for f in "$T/usr/sbin/memfaulttop" "$T/usr/share/man/man8/memfaulttop.8" "$unit"; do
	[ -f "$f" ] || fail "make install did not install $f"
done
expect_lines "$unit" "ExecStart=$T/usr/sbin/memfaulttop --listen 127.0.0.1:9478 --quiet" \
	"DynamicUser=yes" "AmbientCapabilities=CAP_BPF CAP_PERFMON CAP_SYS_ADMIN" \
	"CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_ADMIN"
# The unit's options are memfaulttop's: --help parses them with the rest.
read -ra args <<<"$(sed -n 's/^ExecStart=[^ ]* //p' "$unit")"
"$T/usr/sbin/memfaulttop" "${args[@]}" --help >"$T/help" 2>&1 ||
	fail "the unit's options do not parse: $(cat "$T/help")"
if command -v systemd-analyze >/dev/null; then
	# --man=no: the man page is not on this system's man path.
	systemd-analyze verify --man=no "$unit" >"$T/verify" 2>&1 && [ ! -s "$T/verify" ] ||
		fail "systemd-analyze verify: $(cat "$T/verify")"
	echo "ok: systemd-analyze verify accepts the unit"
else
	echo "note: no systemd-analyze here: the unit was not verified"
fi
echo "PASS: make install installs memfaulttop, its man page and its systemd unit"
