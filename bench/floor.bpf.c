// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of the benchmark: the least a BPF tool can do on the KVM
 * userspace exit path. One tp_btf program on kvm_userspace_exit that
 * bumps one per-CPU counter; no vCPU lookup, no hash map, no per-VM key.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} exits SEC(".maps");

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(floor_exit, __u32 reason, int err)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&exits, &key);

	if (n)
		(*n)++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
