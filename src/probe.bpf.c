// SPDX-License-Identifier: GPL-2.0
/*
 * The feature probe's BTF lookups, done by the kernel in its own parsed BTF:
 * the frontend need not read and parse the ~5.5 MB of the kernel's BTF a
 * second time next to libbpf (about 15 ms and 10 MiB). No kernel type is
 * used here, so libbpf loads this object without the kernel's BTF.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "memfault.h"

/* Filled by the frontend through the skeleton, answered in place. */
struct mf_btf_query queries[MF_BTF_QUERIES];

SEC("syscall")
int find_btf_types(void *ctx)
{
	for (int i = 0; i < MF_BTF_QUERIES; i++) {
		struct mf_btf_query *q = &queries[i];

		if (!q->name[0])
			break;
		q->name[sizeof(q->name) - 1] = 0;
		q->found = bpf_btf_find_by_name_kind(q->name, sizeof(q->name), q->kind, 0);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
