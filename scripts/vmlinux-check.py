#!/usr/bin/env python3
"""Checks that every struct member vmlinux/vmlinux.h declares exists in the
running kernel's BTF (vmlinux and, where KVM is a module, kvm), looking
through anonymous members as libbpf's CO-RE relocation does.

usage: vmlinux-check.py vmlinux/vmlinux.h
"""
import json
import os
import platform
import re
import subprocess
import sys

ARCH = {"x86_64": "x86", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def header_structs(path):
    """{struct: [member paths]} for this architecture's branch of the header."""
    keep, stack, lines = True, [], []
    for line in open(path):
        m = re.match(r"#(if|elif)\s+defined\(__TARGET_ARCH_(\w+)\)", line)
        if m:
            if m.group(1) == "if":
                stack.append(False)
            stack[-1] = stack[-1] or m.group(2) == ARCH
            keep = m.group(2) == ARCH
            continue
        if line.startswith("#else") and stack:
            keep = not stack[-1]
            continue
        if line.startswith("#endif") and stack:
            stack.pop()
            keep = True
            continue
        if keep:
            lines.append(line)
    # A member the BPF code reads only where it exists is marked optional.
    text = re.sub(r";\s*/\*\s*optional\b.*?\*/", "; @optional", "".join(lines), flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    structs = {}
    for m in re.finditer(r"^struct (\w+) \{(.*?)^\};", text, re.S | re.M):
        structs[m.group(1)] = members(m.group(2))
    return structs


def members(body):
    """(member path, optional) of a struct body; nested named records give
    a.b paths, optional when they or their record are marked so."""
    out, nested = [], []
    for line in body.splitlines():
        line = line.strip()
        optional = line.endswith("@optional")
        line = line.removesuffix("@optional").strip()
        if line.endswith("{"):
            nested.append([])
            continue
        m = re.match(r"\}\s*(\w*);", line)
        if m:
            inner = nested.pop()
            names = [(f"{m.group(1)}.{n}" if m.group(1) else n, opt or optional)
                     for n, opt in inner]
            (nested[-1] if nested else out).extend(names)
            continue
        m = re.search(r"(\w+)(\[\w+\])?;$", line)
        if m:
            (nested[-1] if nested else out).append((m.group(1), optional))
    return out


def load_btf():
    types = {}
    files = ["/sys/kernel/btf/vmlinux"]
    if os.path.exists("/sys/kernel/btf/kvm"):
        files.append("/sys/kernel/btf/kvm")
    for f in files:
        cmd = ["bpftool", "-j", "btf", "dump", "file", f]
        if f != files[0]:
            cmd[4:4] = ["--base-btf", files[0]]
        for t in json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)["types"]:
            types[t["id"]] = t
    return types


def resolve(types, tid):
    while types[tid]["kind"] in ("TYPEDEF", "VOLATILE", "CONST", "RESTRICT", "TYPE_TAG"):
        tid = types[tid]["type_id"]
    return types[tid]


def find_member(types, t, name):
    for m in t.get("members", []):
        if m["name"] == name:
            return resolve(types, m["type_id"])
        if m["name"] == "(anon)":
            found = find_member(types, resolve(types, m["type_id"]), name)
            if found:
                return found
    return None


def main():
    types = load_btf()
    by_name = {}
    for t in types.values():
        if t["kind"] == "STRUCT" and t.get("vlen"):
            by_name.setdefault(t["name"], t)
    missing, absent = [], []
    checked = 0
    for struct, paths in header_structs(sys.argv[1]).items():
        t = by_name.get(struct)
        if not t:
            missing.append(f"struct {struct}")
            continue
        for path, optional in paths:
            cur = t
            for part in path.split("."):
                cur = find_member(types, cur, part) if cur else None
            checked += 1
            if not cur:
                (absent if optional else missing).append(f"struct {struct}.{path}")
    for m in missing:
        print(f"vmlinux-check: missing in this kernel's BTF: {m}")
    for m in absent:
        print(f"vmlinux-check: not in this kernel (optional, read only where present): {m}")
    print(f"vmlinux-check: {checked - len(missing) - len(absent)} of {checked} members found"
          f"{f', {len(absent)} optional ones absent' if absent else ''}")
    sys.exit(1 if missing else 0)


main()
