#!/usr/bin/env python3
"""Compares memfaulttop's NDJSON with what the test VMMs did, per VM, exactly.

usage: check_exits.py MEMFAULTTOP_NDJSON VMM_JSON:EXPECTED_NAME:EXPECTED_VCPUS...
"""
import json
import sys

# include/uapi/linux/kvm.h: the reasons the test VMM can produce here.
REASONS = {"2": "IO", "3": "HYPERCALL", "5": "HLT", "6": "MMIO", "10": "INTR",
           "17": "INTERNAL_ERROR", "39": "MEMORY_FAULT"}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main():
    records = []
    with open(sys.argv[1]) as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n"):
                fail(f"record {n} is not a complete line")
            rec = json.loads(line)
            if rec.get("schema") != "memfaulttop" or rec.get("version") != 1:
                fail(f"record {n}: wrong schema/version")
            records.append(rec)
    if not records:
        fail("memfaulttop printed no record")

    # Sum the interval deltas of every VM id over the whole run.
    vms = {}
    for rec in records:
        for d, n in rec["drops"].items():
            if n:
                fail(f"drops.{d} = {n}")
        for vm in rec["vms"]:
            acc = vms.setdefault(vm["id"], {"pid": vm["pid"], "names": set(), "exits": {},
                                            "vcpus": 0, "destroyed": 0, "comm": set()})
            acc["names"].add(vm["name"])
            acc["comm"].add(vm["comm"])
            acc["vcpus"] = max(acc["vcpus"], vm["vcpus"])
            acc["destroyed"] += vm["destroyed"]
            for reason, n in vm["exits"]["by_reason"].items():
                acc["exits"][reason] = acc["exits"].get(reason, 0) + n
            total = sum(vm["exits"]["by_reason"].values())
            if vm["exits"]["total"] != total:
                fail(f"vm {vm['id']}: total {vm['exits']['total']} != sum by reason {total}")

    checked = 0
    for spec in sys.argv[2:]:
        path, name, vcpus = spec.split(":")
        vmm = json.load(open(path))
        want = sorted(sorted((REASONS[r], n) for r, n in vm["exits"].items())
                      for vm in vmm["vms"])
        mine = [v for v in vms.values() if v["pid"] == vmm["pid"]]
        got = sorted(sorted(v["exits"].items()) for v in mine)
        if got != want:
            fail(f"pid {vmm['pid']}: memfaulttop saw {got}, the VMM made {want}")
        for v in mine:
            if v["names"] != {name}:
                fail(f"pid {vmm['pid']}: names {v['names']}, want {name}")
            if v["vcpus"] != int(vcpus):
                fail(f"pid {vmm['pid']}: {v['vcpus']} vCPUs seen, want {vcpus}")
            if v["destroyed"] != 1:
                fail(f"pid {vmm['pid']}: reported destroyed {v['destroyed']} times, want 1")
            if v["comm"] != {"vmm"}:
                fail(f"pid {vmm['pid']}: comm {v['comm']}, want vmm")
        checked += len(mine)
        print(f"ok: pid {vmm['pid']} ({name}): {len(mine)} VMs, exits {want}")
    print(f"ok: {checked} VMs match exactly over {len(records)} records")


main()
