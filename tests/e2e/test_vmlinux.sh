#!/usr/bin/env bash
# vmlinux/vmlinux.h names only members the running kernel really has.
. "$(dirname "$0")/lib.sh"
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF at /sys/kernel/btf/vmlinux"
command -v bpftool >/dev/null || skip "bpftool not installed"
timeout $((60 * SCALE)) python3 scripts/vmlinux-check.py vmlinux/vmlinux.h
sed 's/int vcpu_id;/int vcpu_id_missing;/' vmlinux/vmlinux.h >"$T/bad.h"
if timeout $((60 * SCALE)) python3 scripts/vmlinux-check.py "$T/bad.h" >"$T/out"; then
	fail "a missing member was not reported"
fi
grep -q "struct kvm_vcpu.vcpu_id_missing" "$T/out" || fail "wrong report: $(cat "$T/out")"
echo "PASS: vmlinux.h matches the kernel's BTF"
