#!/usr/bin/env python3
"""Asks a real Prometheus, through its HTTP query API, what it scraped from
memfaulttop --listen, and compares it per VM with what the test VMMs did,
exactly (check_exits.py says what each VMM's record promises): exits by
reason; memory faults and their bytes by class; MAP_GPA_RANGE exits,
requests and bytes by direction; where memfaulttop says the kernel lets it see them, the
VMM's conversions (calls, bytes, failures by errno), its discards (calls,
bytes) and the vCPU waits by kind; the VM's pid, comm and vCPUs; its GPA
ranges' direction changes where the VMM recorded their order. A series
that is absent counts as 0. Polls until everything matches or the timeout
passes, then prints the difference.

usage: check_prometheus.py PROMETHEUS_URL TIMEOUT_S GPA_RANGE_BYTES NAME=VMM_JSON:VCPUS...
(GPA_RANGE_BYTES: memfaulttop's --gpa-range, the ranges whose flips it counts)
"""
import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_exits import expected  # noqa: E402

PAGE = 4096
# family -> (metric, label(s) that tell its series of one VM apart)
FAMILIES = {
    "exits": ("memfaulttop_exits_total", ["reason"]),
    "faults": ("memfaulttop_memory_faults_total", ["class"]),
    "fault_bytes": ("memfaulttop_memory_fault_size_bytes_sum", ["class"]),
    "map_exits": ("memfaulttop_map_gpa_range_exits_total", ["direction"]),
    "map_requests": ("memfaulttop_map_gpa_range_requests_total", ["direction"]),
    "map_bytes": ("memfaulttop_map_gpa_range_bytes_total", ["direction"]),
    "conversions": ("memfaulttop_conversions_total", ["direction"]),
    "conversion_bytes": ("memfaulttop_conversion_bytes_total", ["direction"]),
    "conversion_failures": ("memfaulttop_conversion_failures_total", ["direction", "errno"]),
    "discards": ("memfaulttop_discards_total", []),
    "discard_bytes": ("memfaulttop_discard_bytes_total", []),
    "waits": ("memfaulttop_vcpu_wait_seconds_count", ["kind"]),
    "vcpus": ("memfaulttop_vm_vcpus", []),
    "flips": ("memfaulttop_gpa_range_flips_total", []),
}
# check_exits.expected()'s classes, as memfaulttop's label values.
CLASSES = ["private", "shared"]
DIRECTIONS = ["to_private", "to_shared"]


def query(base, promql):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as r:
        reply = json.load(r)
    if reply.get("status") != "success":
        raise RuntimeError(f"{promql}: {reply}")
    return reply["data"]["result"]


def nonzero(d):
    return {k: v for k, v in d.items() if v}


def seen(base):
    """name -> family -> label values -> value, and the VMs' pid and comm."""
    got, info = {}, {}
    for r in query(base, "memfaulttop_vm_info"):
        m = r["metric"]
        info[m["name"]] = {"pid": int(m["pid"]), "comm": m["comm"]}
    for fam, (metric, labels) in FAMILIES.items():
        # The VM's name comes from the info series, joined on vm_id.
        for r in query(base, f"{metric} * on(vm_id) group_left(name) memfaulttop_vm_info"):
            m = r["metric"]
            key = "/".join(m.get(lab, "") for lab in labels)
            got.setdefault(m["name"], {}).setdefault(fam, {})[key] = int(float(r["value"][1]))
    features = {r["metric"]["feature"]: r["value"][1] == "1"
                for r in query(base, "memfaulttop_feature_available")}
    return {n: {f: nonzero(v) for f, v in fams.items() if nonzero(v)}
            for n, fams in got.items()}, info, features


def want_of(vm, vcpus, features, range_bytes):
    w = expected(vm, range_bytes, features)
    fams = {
        "exits": w["exits"],
        "faults": {c: w[c]["count"] for c in CLASSES},
        "fault_bytes": {c: w[c]["bytes"] for c in CLASSES},
        "map_exits": {d: w[d]["count"] for d in DIRECTIONS},
        "map_requests": {d: w[d]["requests"] for d in DIRECTIONS},
        "map_bytes": {d: w[d]["bytes"] for d in DIRECTIONS},
        "conversions": {d: w["conv_" + d]["count"] for d in DIRECTIONS},
        "conversion_bytes": {d: w["conv_" + d]["bytes"] for d in DIRECTIONS},
        "conversion_failures": {f"{d}/{e}": n for d in DIRECTIONS
                                for e, n in w["conv_" + d]["errors"].items()},
        "discards": {"": w["discards"][0]},
        "discard_bytes": {"": w["discards"][1]},
        "waits": w["waits"],
        "vcpus": {"": vcpus},
        # None: the VMM did not record the order of its directions.
        "flips": {"": sum(w["flips"].values())} if w["flips"] is not None else None,
    }
    return {f: v if v is None else nonzero(v) for f, v in fams.items() if v is None or nonzero(v)}


def main():
    base, timeout, range_bytes = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    specs = []
    for spec in sys.argv[4:]:
        name, rest = spec.split("=", 1)
        path, vcpus = rest.rsplit(":", 1)
        with open(path) as f:
            vmm = json.load(f)
        if len(vmm["vms"]) != 1:
            sys.exit(f"FAIL: {path}: one VM per VMM, for one name per VM")
        specs.append((name, vmm, int(vcpus)))
    deadline = time.monotonic() + timeout
    while True:
        got, info, features = seen(base)
        wrong = [] if features else ["Prometheus has no scrape of memfaulttop yet"]
        for name, vmm, vcpus in specs if features else []:
            want = want_of(vmm["vms"][0], vcpus, features, range_bytes)
            mine = dict(got.get(name, {}))
            for fam in [f for f, v in want.items() if v is None]:
                mine.pop(fam, None)
                want.pop(fam)
            if mine != want:
                wrong.append(f"VM {name}: Prometheus has\n  {json.dumps(mine, sort_keys=True)}"
                             f"\nthe VMM did\n  {json.dumps(want, sort_keys=True)}")
            elif info.get(name) != {"pid": vmm["pid"], "comm": "vmm"}:
                wrong.append(f"VM {name}: info {info.get(name)}, want pid {vmm['pid']}, comm vmm")
        if not wrong:
            break
        if time.monotonic() > deadline:
            print("FAIL: after %.0f s:\n%s" % (timeout, "\n".join(wrong)))
            sys.exit(1)
        time.sleep(0.5)
    # The kernel matrix says what each kernel must offer: memfaulttop, run
    # with the systemd unit's capabilities only, must find all of it.
    expect = os.environ.get("MF_EXPECT_FEATURES")
    if expect is not None and set(expect.split()) != {f for f, on in features.items() if on}:
        print(f"FAIL: features {features}, the kernel matrix says {expect!r}")
        sys.exit(1)
    for name, _, _ in specs:
        print(f"ok: PromQL on VM {name}: {json.dumps(got[name], sort_keys=True)}")
    print(f"ok: kernel features as Prometheus has them: {json.dumps(features, sort_keys=True)}")


main()
