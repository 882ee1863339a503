/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The BPF skeleton as the frontend, the tests and the bench use it. */
#ifndef MF_SKEL_H
#define MF_SKEL_H

#include "model.h"	/* first: the skeleton's global data has memfault.h's types */
#include "memfault.skel.h"

struct mf_map_fds mf_skel_map_fds(const struct memfault *skel);

/* Sizes the VM slots (hot and cold counters) to this machine's CPUs, at
 * most max (before load); 0 or a negative errno. */
int mf_skel_size_slots(struct memfault *skel, unsigned long max);

/*
 * Has libbpf read the kernel's BTF now (before load), by naming the exit
 * program's target as its section does, while memfaulttop's probe runs in
 * its thread. Errors are left to the probe and the load, which say what is
 * missing.
 */
void mf_skel_read_kernel_btf(struct memfault *skel);

/* Whether the kernel's kvm_run has memory_fault (after load): 1, 0, or a
 * negative errno. */
int mf_skel_has_memory_fault_info(const struct memfault *skel);

/*
 * Loads only the test/bench injection program (nothing is attached to the
 * kernel) with GPA ranges of 1 << gpa_shift bytes and at most nr_slots
 * VM slots. On failure prints one line prefixed with prog and returns NULL.
 */
struct memfault *mf_skel_open_injector(unsigned int gpa_shift, unsigned long nr_slots,
				       const char *prog);

#endif
