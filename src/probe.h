/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_PROBE_H
#define MF_PROBE_H

#include <stdbool.h>
#include "kernel_features.h"

/* What the running kernel offers, from its BTF. */
struct mf_kernel_features {
	/* For users; the hooks as probed, final once attached. */
	struct mf_features user;
	bool rdonly_void_cast;	/* bpf_rdonly_cast() to void (Linux 6.17+) */
};

/*
 * Checks the kernel pieces memfaulttop needs. Returns 0, or a negative
 * errno after printing one line that says what is missing and what to do.
 */
int mf_probe_kernel(struct mf_kernel_features *f);

/*
 * Checks that this process may load and attach tracing BPF programs:
 * CAP_BPF and CAP_PERFMON in its effective set where KVM is built in;
 * CAP_SYS_ADMIN (which implies both) where KVM is a module. Returns 0, or
 * -EPERM after printing one line that names what is missing.
 */
int mf_check_privileges(void);

#endif
