#!/usr/bin/env python3
"""Compares memfaulttop's NDJSON with what the test VMMs did, per VM, exactly:
exits by reason and, where the VMM made memory faults, their classes, sizes
and GPA ranges.

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


def add(counts, key, n):
    counts[key] = counts.get(key, 0) + n


def expected(vm, range_bytes):
    """What memfaulttop must report for one VM of the VMM's JSON."""
    ranges = {}
    for gpa, n in vm.get("fault_pages", {}).items():
        add(ranges, hex(int(gpa, 16) // range_bytes * range_bytes), n)
    shared = vm["memory_faults"]["shared"]
    return (sorted((REASONS[r], n) for r, n in vm["exits"].items()),
            vm["memory_faults"]["private"], shared,
            sorted({4096: shared}.items()) if shared else [], sorted(ranges.items()), [])


def observed(v):
    return (sorted(v["exits"].items()), v["private"], v["shared"], sorted(v["sizes"].items()),
            sorted(v["ranges"].items()), sorted(v["flag_bits"].items()))


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
                                            "vcpus": 0, "destroyed": 0, "comm": set(),
                                            "private": 0, "shared": 0, "sizes": {},
                                            "ranges": {}, "flag_bits": {}})
            acc["names"].add(vm["name"])
            acc["comm"].add(vm["comm"])
            acc["vcpus"] = max(acc["vcpus"], vm["vcpus"])
            acc["destroyed"] += vm["destroyed"]
            for reason, n in vm["exits"]["by_reason"].items():
                acc["exits"][reason] = acc["exits"].get(reason, 0) + n
            faults = vm["memory_faults"]
            acc["private"] += faults["private"]["count"]
            acc["shared"] += faults["shared"]["count"]
            for slot in faults["shared"]["sizes"]:
                add(acc["sizes"], slot["min_bytes"], slot["count"])
            for r in faults["shared"]["gpa_ranges"]:
                add(acc["ranges"], r["start"], r["count"])
            for bit, n in faults["unknown_flag_bits"].items():
                add(acc["flag_bits"], bit, n)
            total = sum(vm["exits"]["by_reason"].values())
            if vm["exits"]["total"] != total:
                fail(f"vm {vm['id']}: total {vm['exits']['total']} != sum by reason {total}")

    checked = 0
    for spec in sys.argv[2:]:
        path, name, vcpus = spec.split(":")
        vmm = json.load(open(path))
        range_bytes = records[0]["gpa_range_bytes"]
        want = sorted(expected(vm, range_bytes) for vm in vmm["vms"])
        mine = [v for v in vms.values() if v["pid"] == vmm["pid"]]
        got = sorted(observed(v) for v in mine)
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
        print(f"ok: pid {vmm['pid']} ({name}): {len(mine)} VMs, {want}")
    print(f"ok: {checked} VMs match exactly over {len(records)} records")


main()
