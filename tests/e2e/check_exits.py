#!/usr/bin/env python3
"""Compares memfaulttop's NDJSON with what the test VMMs did, per VM, exactly:
exits by reason; memory faults, private and shared; KVM_HC_MAP_GPA_RANGE to
private and to shared: each with count, bytes, size histogram and GPA ranges
(and, for MAP_GPA_RANGE, requests: runs of a vCPU's exits that continue one
another).
Where memfaulttop says the kernel lets it see them: the VMM's conversions
(KVM_SET_MEMORY_ATTRIBUTES) by direction with count, bytes, sizes, GPA
ranges and failures by errno; its guest_memfd discards (calls, bytes); and
the number of vCPU waits timed after each kind of exit (one per memory-fault
or MAP_GPA_RANGE exit: every such exit of the test VMMs is followed by a
KVM_RUN). Where it says they are unavailable, their counts must be zero.
Where the VMM recorded the order of its directions (the private program):
each GPA range's direction changes (flips), from the guest's faults and
requests and, where memfaulttop sees them, the VMM's successful conversions.

With --trace, memfaulttop's --trace -j lines instead: one per memory fault,
MAP_GPA_RANGE request, conversion and discard of the VMMs, each with its
VM, GPA, size, direction and result, none lost; REPORT_NDJSON (a report of
the same run) says which kernel features and GPA-range width apply.

usage: check_exits.py MEMFAULTTOP_NDJSON VMM_JSON:EXPECTED_NAME:EXPECTED_VCPUS...
       check_exits.py --trace TRACE_NDJSON REPORT_NDJSON VMM_JSON:EXPECTED_NAME:_...
"""
import json
import sys

# include/uapi/linux/kvm.h: the reasons the test VMM can produce here.
REASONS = {"0": "UNKNOWN", "2": "IO", "3": "HYPERCALL", "5": "HLT", "6": "MMIO",
           "10": "INTR", "17": "INTERNAL_ERROR", "39": "MEMORY_FAULT"}
PAGE = 4096
# (section, class) in memfaulttop's record; the VMM's record has the same keys.
FAULTS = [("memory_faults", "private"), ("memory_faults", "shared")]
MAPS = [("map_gpa_range", "to_private"), ("map_gpa_range", "to_shared")]
CONVERSIONS = ["to_private", "to_shared"]
# waits.<key> in memfaulttop's record: the exit class it follows.
WAITS = {"private": ("memory_faults", "private"), "shared": ("memory_faults", "shared"),
         "to_private": ("map_gpa_range", "to_private"),
         "to_shared": ("map_gpa_range", "to_shared")}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def add(counts, key, n):
    counts[key] = counts.get(key, 0) + n


def size_slot(size):
    """min_bytes of memfaulttop's log2 size slot holding `size`."""
    return 1 << (size.bit_length() - 1) if size else 0


def new_class():
    return {"count": 0, "bytes": 0, "sizes": {}, "ranges": {}}


def accumulate(cls, got):
    """Adds one record's class (count, bytes, sizes, GPA ranges) to the sums."""
    cls["count"] += got["count"]
    cls["bytes"] += got["bytes"]
    for slot in got["sizes"]:
        add(cls["sizes"], slot["min_bytes"], slot["count"])
    for r in got["gpa_ranges"]:
        rng = cls["ranges"].setdefault(r["start"], [0, 0])
        rng[0] += r["count"]
        rng[1] += r["bytes"]


def add_exits(cls, gpa, count, size, range_bytes):
    """count exits of `size` bytes each at `gpa`."""
    cls["count"] += count
    cls["bytes"] += count * size
    add(cls["sizes"], size_slot(size), count)
    start = hex(gpa // range_bytes * range_bytes)
    rng = cls["ranges"].setdefault(start, [0, 0])
    rng[0] += count
    rng[1] += count * size


def expected_flips(conv, range_bytes, features):
    """Direction changes per GPA range, from the VMM's ordered directions
    (None where it recorded none). A range must belong to one vCPU: the
    order of two vCPUs' events is not known."""
    if "directions" not in conv:
        return None
    last, flips, owner = {}, {}, {}
    for vcpu, events in conv["directions"].items():
        for ev in events:
            conversion = ev.startswith("c")
            if conversion and not features["conversions"]:
                continue
            ev = ev.lstrip("c")
            start = hex(int(ev[1:], 16) // range_bytes * range_bytes)
            if owner.setdefault(start, vcpu) != vcpu:
                fail(f"range {start} has events of vCPUs {owner[start]} and {vcpu}: "
                     "use narrower --gpa-range")
            if start in last and last[start] != ev[0]:
                flips[start] = flips.get(start, 0) + 1
            last[start] = ev[0]
    return flips


def expected(vm, range_bytes, features):
    """What memfaulttop must report for one VM of the VMM's JSON."""
    want = {"exits": {REASONS[r]: n for r, n in vm["exits"].items()}, "flag_bits": {}}
    conv = vm["conversions"]
    want["flips"] = expected_flips(conv, range_bytes, features)
    for d in CONVERSIONS:
        cls = want["conv_" + d] = new_class()
        cls["errors"] = {}
        if not features["conversions"]:
            continue
        for call in conv[d]["calls"]:
            add_exits(cls, int(call["gpa"], 16), call["count"], call["bytes"], range_bytes)
        cls["errors"] = dict(conv[d]["failed"])
        ok = cls["count"] - sum(cls["errors"].values())
        if ok != conv[d]["count"]:
            fail(f"VMM record: {d} calls add up to {ok} that succeeded, not {conv[d]['count']}")
    want["discards"] = ([conv["punches"], conv["punched_pages"] * PAGE, 0]
                        if features["discards"] else [0, 0, 0])
    want["waits"] = {k: vm[s][c] if s == "memory_faults" else vm[s][c]["count"]
                     for k, (s, c) in WAITS.items()} if features["wait_latency"] else \
        {k: 0 for k in WAITS}
    for section, kind in FAULTS:
        cls = want[kind] = new_class()
        for gpa, n in vm["fault_gpas"][kind].items():
            add_exits(cls, int(gpa, 16), n, PAGE, range_bytes)
        if cls["count"] != vm[section][kind]:
            fail(f"VMM record: {kind} faults by GPA add up to {cls['count']}, "
                 f"not {vm[section][kind]}")
    for section, kind in MAPS:
        cls = want[kind] = new_class()
        for gpa, at in vm[section][kind]["gpas"].items():
            # The VMM gives every exit at one GPA the same size.
            if at["pages"] % at["count"]:
                fail(f"VMM record: {kind} at {gpa}: {at} is not one size per exit")
            add_exits(cls, int(gpa, 16), at["count"], at["pages"] // at["count"] * PAGE,
                      range_bytes)
        cls["requests"] = vm[section][kind]["requests"]
        if (cls["count"], cls["bytes"]) != (vm[section][kind]["count"],
                                            vm[section][kind]["pages"] * PAGE):
            fail(f"VMM record: {kind} by GPA adds up to {cls['count']} exits, "
                 f"{cls['bytes']} bytes, not {vm[section][kind]}")
    return want


def summary(seen):
    classes = [f"{kind} {seen[kind]['count']} ({seen[kind]['bytes']} B, "
               f"{len(seen[kind]['ranges'])} ranges)"
               for kind in [k for _, k in FAULTS + MAPS] + ["conv_" + d for d in CONVERSIONS]
               if seen[kind]["count"]]
    classes += [f"conv_{d} failed {seen['conv_' + d]['errors']}" for d in CONVERSIONS
                if seen["conv_" + d]["errors"]]
    if seen["discards"][0]:
        classes.append(f"discards {seen['discards'][0]} ({seen['discards'][1]} B)")
    if seen.get("flips"):
        classes.append(f"flips {sum(seen['flips'].values())} in {len(seen['flips'])} ranges")
    if any(seen["waits"].values()):
        classes.append(f"waits {json.dumps(seen['waits'], sort_keys=True)}")
    return ", ".join([json.dumps(seen["exits"], sort_keys=True), *classes])


def canonical(vm):
    return json.dumps(vm, sort_keys=True)


def match(vmm, name, wants, mine, seen, verb):
    """memfaulttop's VMs of one VMM (`seen` of each, as it `verb`) against
    what the VMM made, exactly, and named as the VMM was."""
    want = sorted(canonical(w) for w in wants)
    got = sorted(canonical(seen(m)) for m in mine)
    if got != want:
        fail(f"pid {vmm['pid']}: memfaulttop {verb}\n  " + "\n  ".join(got) +
             "\nthe VMM made\n  " + "\n  ".join(want))
    for v in mine:
        if v["names"] != {name}:
            fail(f"pid {vmm['pid']}: names {v['names']}, want {name}")


def read_ndjson(path, schema):
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n"):
                fail(f"{path}: record {n} is not a complete line")
            rec = json.loads(line)
            if rec.get("schema") != schema or rec.get("version") != 1:
                fail(f"{path}: record {n}: wrong schema/version")
            records.append(rec)
    if not records:
        fail(f"{path}: memfaulttop printed no record")
    return records


TRACED = [k for _, k in FAULTS + MAPS] + ["conv_" + d for d in CONVERSIONS] + ["discards"]


def main_trace(trace_path, report_path, specs):
    report = read_ndjson(report_path, "memfaulttop")[0]
    range_bytes = report["gpa_range_bytes"]
    features = report["kernel"]["features"]
    vms, last = {}, {}
    for ev in read_ndjson(trace_path, "memfaulttop-trace"):
        if ev["event"] == "lost":
            fail(f"{ev['count']} trace events lost")
        if ev["time"] < last.get(ev["tid"], ""):
            fail(f"thread {ev['tid']}: event at {ev['time']} after {last[ev['tid']]}")
        last[ev["tid"]] = ev["time"]
        acc = vms.setdefault(ev["vm"]["id"], {
            "pid": ev["vm"]["pid"], "names": set(),
            "seen": dict({k: new_class() for _, k in FAULTS + MAPS}, discards=[0, 0, 0],
                         **{"conv_" + d: dict(new_class(), errors={}) for d in CONVERSIONS})})
        acc["names"].add(ev["vm"]["name"])
        seen = acc["seen"]
        to = "private" if ev.get("private") else "shared"
        if ev["event"] == "discard":
            seen["discards"] = [seen["discards"][0] + 1, seen["discards"][1] + ev["bytes"],
                                seen["discards"][2] + (ev["result"] < 0)]
            continue
        cls = seen[{"fault": to, "map_gpa_range": "to_" + to,
                    "conversion": "conv_to_" + to}[ev["event"]]]
        add_exits(cls, int(ev["gpa"], 16), 1, ev["bytes"], range_bytes)
        if ev["event"] == "conversion" and ev["result"] < 0:
            add(cls["errors"], ev["error"], 1)
    for spec in specs:
        path, name, _ = spec.split(":")
        with open(path) as f:
            vmm = json.load(f)
        # Requests (runs of exits) are no events of their own.
        wants = [{k: {f: n for f, n in w[k].items() if f != "requests"}
                  if isinstance(w[k], dict) else w[k] for k in TRACED}
                 for w in (expected(vm, range_bytes, features) for vm in vmm["vms"])]
        mine = [v for v in vms.values() if v["pid"] == vmm["pid"]]
        match(vmm, name, wants, mine, lambda v: v["seen"], "traced")
        print(f"ok: pid {vmm['pid']} ({name}): {len(mine)} VMs traced event by event")


def main():
    if sys.argv[1] == "--trace":
        main_trace(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    records = read_ndjson(sys.argv[1], "memfaulttop")
    range_bytes = records[0]["gpa_range_bytes"]
    features = records[0]["kernel"]["features"]
    for key in ("conversions", "discards", "wait_latency"):
        if features[key]:
            continue
        msg = records[0]["kernel"]["unavailable"].get(key, "")
        if "not" not in msg:
            fail(f"{key} unavailable, but kernel.unavailable does not say what is lost: {msg!r}")
        print(f"ok: {key} unavailable here, as memfaulttop says: {msg}")

    # Sum the interval deltas of every VM id over the whole run.
    vms = {}
    for rec in records:
        if rec["gpa_range_bytes"] != range_bytes:
            fail(f"gpa_range_bytes changed from {range_bytes} to {rec['gpa_range_bytes']}")
        for d, n in rec["drops"].items():
            if n:
                fail(f"drops.{d} = {n}")
        for vm in rec["vms"]:
            acc = vms.setdefault(vm["id"], {"pid": vm["pid"], "names": set(), "vcpus": 0,
                                            "destroyed": 0, "comm": set(), "range_drops": 0, "flips": 0,
                                            "seen": {"exits": {}, "flag_bits": {},
                                                     "discards": [0, 0, 0], "flips": {},
                                                     "waits": {k: 0 for k in WAITS}}})
            seen = acc["seen"]
            acc["names"].add(vm["name"])
            acc["comm"].add(vm["comm"])
            acc["vcpus"] = max(acc["vcpus"], vm["vcpus"])
            acc["destroyed"] += vm["destroyed"]
            acc["range_drops"] += vm["range_drops"]
            for reason, n in vm["exits"]["by_reason"].items():
                add(seen["exits"], reason, n)
            for bit, n in vm["memory_faults"]["unknown_flag_bits"].items():
                add(seen["flag_bits"], bit, n)
            for section, kind in FAULTS + MAPS:
                got = vm[section][kind]
                accumulate(seen.setdefault(kind, new_class()), got)
                if section == "map_gpa_range":
                    add(seen[kind], "requests", got["requests"])
                if section == "map_gpa_range" and got["pages"] * PAGE != got["bytes"]:
                    fail(f"vm {vm['id']}: {kind} pages {got['pages']} != bytes "
                         f"{got['bytes']} / {PAGE}")
            for d in CONVERSIONS:
                got = vm["conversions"][d]
                cls = seen.setdefault("conv_" + d, dict(new_class(), errors={}))
                accumulate(cls, got)
                for e, n in got["errors"].items():
                    add(cls["errors"], e, n)
                if got["failed"] != sum(got["errors"].values()):
                    fail(f"vm {vm['id']}: {d} failed {got['failed']} != errors {got['errors']}")
                if got["time"]["count"] != got["count"]:
                    fail(f"vm {vm['id']}: {d} timed {got['time']['count']} of {got['count']}")
            disc = vm["discards"]
            for i, key in enumerate(["count", "bytes", "failed"]):
                seen["discards"][i] += disc[key]
            if disc["time"]["count"] != disc["count"]:
                fail(f"vm {vm['id']}: discards timed {disc['time']['count']} of {disc['count']}")
            for k in WAITS:
                lat = vm["waits"][k]
                seen["waits"][k] += lat["count"]
                if sum(s["count"] for s in lat["log2_ns"]) != lat["count"]:
                    fail(f"vm {vm['id']}: waits.{k} slots do not add up to {lat['count']}")
            flips = vm["flips"]
            # Read apart from the ranges: they agree over the run, not per record.
            acc["flips"] += flips["count"]
            for r in flips["gpa_ranges"]:
                add(seen["flips"], r["start"], r["flips"])
            storm = vm["storm"]
            flapping = sum(r["flips"] >= rec["storm_thresholds"]["flips_per_interval"]
                           for r in flips["gpa_ranges"])
            if storm["flapping_ranges"] != flapping or \
                    storm["storming"] != bool(storm["reasons"]) or \
                    ("flapping" in storm["reasons"]) != bool(flapping):
                fail(f"vm {vm['id']}: storm {storm} does not follow from flips {flips}")
            total = sum(vm["exits"]["by_reason"].values())
            if vm["exits"]["total"] != total:
                fail(f"vm {vm['id']}: total {vm['exits']['total']} != sum by reason {total}")

    checked = 0
    for spec in sys.argv[2:]:
        path, name, vcpus = spec.split(":")
        with open(path) as f:
            vmm = json.load(f)
        wants = [expected(vm, range_bytes, features) for vm in vmm["vms"]]
        mine = [v for v in vms.values() if v["pid"] == vmm["pid"]]
        # Flips are compared where the VMM knows their order.
        ordered = all(w["flips"] is not None for w in wants)
        for w in wants:
            if not ordered:
                w.pop("flips")
        match(vmm, name, wants, mine,
              lambda m: {k: v for k, v in m["seen"].items() if ordered or k != "flips"}, "saw")
        for v in mine:
            if v["vcpus"] != int(vcpus):
                fail(f"pid {vmm['pid']}: {v['vcpus']} vCPUs seen, want {vcpus}")
            if v["destroyed"] != 1:
                fail(f"pid {vmm['pid']}: reported destroyed {v['destroyed']} times, want 1")
            if v["comm"] != {"vmm"}:
                fail(f"pid {vmm['pid']}: comm {v['comm']}, want vmm")
            if v["flips"] != sum(v["seen"]["flips"].values()):
                fail(f"pid {vmm['pid']}: flips.count adds up to {v['flips']}, "
                     f"its ranges to {sum(v['seen']['flips'].values())}")
            if v["range_drops"]:
                fail(f"pid {vmm['pid']}: {v['range_drops']} GPA-range updates dropped")
        checked += len(mine)
        print(f"ok: pid {vmm['pid']} ({name}): {len(mine)} VMs: " +
              "; ".join(summary(v["seen"]) for v in mine))
    print(f"ok: {checked} VMs match exactly over {len(records)} records; "
          f"kernel features {features}")


if __name__ == "__main__":
    main()
