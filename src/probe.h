/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_PROBE_H
#define MF_PROBE_H

#include <pthread.h>
#include <stdbool.h>
#include "kernel_features.h"

/* What the running kernel offers, from its BTF. */
struct mf_kernel_features {
	/* For users; the hooks as probed, final once attached. */
	struct mf_features user;
	bool rdonly_void_cast;	/* bpf_rdonly_cast() to void (Linux 6.17+) */
};

/* A probe of the kernel, run in a thread while libbpf reads the kernel's
 * BTF (mf_skel_read_kernel_btf), with other start-up work that fits in
 * that time after it. */
struct mf_probe {
	struct mf_kernel_features *features;
	void (*then)(void *);
	void *then_arg;
	pthread_t thread;
	bool threaded;
	int err;
};

/* Starts checking the kernel pieces memfaulttop needs, filling f; then,
 * in the same thread, runs then(then_arg) unless then is NULL. */
void mf_probe_start(struct mf_probe *p, struct mf_kernel_features *f, void (*then)(void *),
		    void *then_arg);

/* Waits for the probe. Returns 0, or a negative errno after it printed
 * one line that says what is missing and what to do. */
int mf_probe_finish(struct mf_probe *p);

/*
 * Checks that this process may load and attach tracing BPF programs:
 * CAP_BPF and CAP_PERFMON in its effective set where KVM is built in;
 * CAP_SYS_ADMIN (which implies both) where KVM is a module. Returns 0, or
 * -EPERM after printing one line that names what is missing.
 */
int mf_check_privileges(void);

#endif
