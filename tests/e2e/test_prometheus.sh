#!/usr/bin/env bash
# memfaulttop as an exporter (--listen, -q), scraped every second by a real
# Prometheus (Debian's): two VMMs' VMs (real exits; MAP_GPA_RANGE requests,
# memory faults and conversions where the kernel can make them), and
# PromQL through Prometheus's query API must return exactly what each VMM
# did, per VM. Also: promtool accepts a scrape; a destroyed VM's series go;
# a port in use is one line and status 1; clients that connect and send
# nothing, or half a request, are cut by the connection timeout while
# scrapes go on being answered. memfaulttop runs as the systemd unit runs
# it, no root and the unit's capabilities only, so that the kernel matrix
# proves them enough.
. "$(dirname "$0")/lib.sh"
require_kvm_bpf
for b in prometheus promtool; do
	command -v "$b" >/dev/null || skip "$b not installed (make deps installs Debian's prometheus)"
done
before=$(bpf_prog_ids)

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# scrape FILE: memfaulttop's /metrics into FILE.
scrape() {
	python3 - "$MF_URL" "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
PY
}

mport=$(free_port)
pport=$(free_port)
MF_URL=http://127.0.0.1:$mport/metrics
PROM_URL=http://127.0.0.1:$pport

# What each VMM runs: the most this kernel can show, each VM its own name.
alpha=(--vcpus 2 --io 40 --mmio 6)
if vmm_can --map-private 1; then
	alpha+=(--map-private 5 --map-shared 3 --map-pages 2)
fi
if vmm_can --private 1; then
	beta=(--private 3)
elif vmm_can --memory-faults 1; then
	beta=(--memory-faults 2 --fault-pages 3)
else
	beta=(--io 17 --mmio 2)
fi

# As the systemd unit runs it: no root, only the unit's capabilities.
caps=$(sed -n 's/^AmbientCapabilities=//p' systemd/memfaulttop.service.in)
if command -v setpriv >/dev/null; then
	set_caps=-all,$(echo "$caps" | tr 'A-Z' 'a-z' | sed -e 's/cap_/+/g' -e 's/ /,/g')
	printf '#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=%s --ambient-caps=%s --bounding-set=%s %s "$@"\n' \
		"$set_caps" "$set_caps" "$set_caps" "$(realpath "$MF")" >"$T/memfaulttop"
	chmod +x "$T/memfaulttop"
	MF_FULL=$MF MF=$T/memfaulttop
	echo "ok: memfaulttop runs as uid 65534 with the unit's capabilities only: $caps"
else
	MF_FULL=$MF
	echo "note: no setpriv: memfaulttop runs as root with every capability"
fi
# 2 MiB ranges: each vCPU of the SW-protected guest flips its own.
start_memfaulttop -q --listen "127.0.0.1:$mport" -i 0.5 --gpa-range 2M
grep -qF "serving metrics on $MF_URL" "$T/mf.err" || fail "no 'serving metrics' line: $(cat "$T/mf.err")"
[ ! -s "$T/mf.out" ] || fail "-q printed reports: $(head -c 300 "$T/mf.out")"

# Two clients that never complete a request, held while everything else runs.
python3 - "$mport" $((30 * SCALE)) >"$T/stuck.out" 2>&1 <<'PY' &
import socket, sys, time, urllib.request
port, bound = int(sys.argv[1]), float(sys.argv[2])
start = time.monotonic()
idle = socket.create_connection(("127.0.0.1", port))
partial = socket.create_connection(("127.0.0.1", port))
partial.sendall(b"GET /metr")
t = time.monotonic()
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=bound).read()
print(f"scrape beside them: {len(body)} bytes in {time.monotonic() - t:.3f} s")
for name, s in (("idle", idle), ("partial", partial)):
    s.settimeout(max(1.0, bound - (time.monotonic() - start)))
    try:
        while s.recv(4096):
            pass
        print(f"{name}: closed by memfaulttop after {time.monotonic() - start:.1f} s")
    except socket.timeout:
        print(f"{name}: still open after {time.monotonic() - start:.1f} s")
PY
stuck=$!
CHILDREN+=("$stuck")

mkdir "$T/prom"
cat >"$T/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: memfaulttop
    static_configs:
      - targets: ['127.0.0.1:$mport']
EOF
timeout $((120 * SCALE)) prometheus --config.file="$T/prom/prometheus.yml" \
	--storage.tsdb.path="$T/prom/data" --web.listen-address="127.0.0.1:$pport" \
	--log.level=warn >"$T/prom.log" 2>&1 &
prom=$!
CHILDREN+=("$prom")
for _ in $(seq $((300 * SCALE))); do
	python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
		"$PROM_URL/-/ready" 2>/dev/null && break
	kill -0 "$prom" 2>/dev/null || fail "prometheus exited: $(cat "$T/prom.log")"
	sleep 0.1
done

# Held long after the guests stop: the counts are checked while the VMs live.
start_vmm "$T/alpha.json" "${alpha[@]}" --hold $((50 * SCALE)) -name guest=alpha
alpha_pid=$VMM_PID; alpha_guard=$TIMEOUT_PID
start_vmm "$T/beta.json" "${beta[@]}" --hold $((50 * SCALE)) -name beta
beta_pid=$VMM_PID; beta_guard=$TIMEOUT_PID
release_vmms
# A VMM writes its record when its guests are done, then holds its VMs.
for f in alpha beta; do
	for _ in $(seq $((300 * SCALE))); do
		python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/$f.json" 2>/dev/null && break
		sleep 0.1
	done
done
python3 tests/e2e/check_prometheus.py "$PROM_URL" $((30 * SCALE)) $((2 << 20)) \
	"alpha=$T/alpha.json:2" "beta=$T/beta.json:1"

scrape "$T/scrape.txt"
promtool check metrics <"$T/scrape.txt" >"$T/promtool.out" 2>&1 ||
	fail "promtool check metrics: $(cat "$T/promtool.out")"
expect_lines "$T/scrape.txt" "memfaulttop_vm_info{vm_id=" "name=\"alpha\",pid=\"$alpha_pid\",comm=\"vmm\""
echo "ok: promtool check metrics accepts a scrape of $(wc -l <"$T/scrape.txt") lines"

# Destroyed VMs: reported once, then their series are gone.
end_vmm "$alpha_pid" "$alpha_guard"
end_vmm "$beta_pid" "$beta_guard"
for _ in $(seq $((100 * SCALE))); do
	scrape "$T/after.txt"
	grep -qE "pid=\"($alpha_pid|$beta_pid)\"" "$T/after.txt" || break
	sleep 0.1
done
! grep -E "pid=\"($alpha_pid|$beta_pid)\"" "$T/after.txt" || fail "destroyed VMs still exported"
echo "ok: the destroyed VMs' series are gone"

# The port is taken (by the memfaulttop above): one line, status 1, at once.
rc=0
timeout $((20 * SCALE)) "$MF_FULL" -q --listen "127.0.0.1:$mport" >"$T/busy.out" 2>"$T/busy.err" || rc=$?
[ "$rc" = 1 ] || fail "a second memfaulttop on port $mport exited $rc, want 1: $(cat "$T/busy.err")"
[ "$(wc -l <"$T/busy.err")" = 1 ] && grep -qF "cannot listen on 127.0.0.1:$mport: Address already in use" \
	"$T/busy.err" || fail "port in use: want one clear line, got: $(cat "$T/busy.err")"
echo "ok: port in use: $(cat "$T/busy.err")"

wait "$stuck" || fail "the stuck-client script failed: $(cat "$T/stuck.out")"
cat "$T/stuck.out"
expect_lines "$T/stuck.out" "scrape beside them:" "idle: closed by memfaulttop" \
	"partial: closed by memfaulttop"

kill "$prom"
wait "$prom" 2>/dev/null || true
stop_memfaulttop
check_no_leftovers "$before"
echo "PASS: Prometheus's PromQL per VM equals what the VMMs did"
