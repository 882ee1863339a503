/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_VMNAME_H
#define MF_VMNAME_H

#include <stddef.h>
#include <sys/types.h>

#define MF_NAME_LEN 64
#define MF_COMM_LEN 16

struct mf_vm_ident {
	char comm[MF_COMM_LEN];
	char name[MF_NAME_LEN];		/* from the VMM's command line, or "" */
};

/*
 * Finds the guest name in a NUL-separated command line, QEMU style:
 * "-name guest=NAME,..." or "-name NAME,..." (also "--name"; ",," is an
 * escaped comma). Returns 0 and fills name, or -1 when there is none.
 */
int mf_vm_name_from_cmdline(const char *cmdline, size_t len, char *name, size_t size);

/*
 * Reads comm and the guest name of a VMM process: comm from /proc, else
 * kernel_comm (captured by BPF); the name from the command line BPF captured
 * (cmdline_len > 0), else from /proc. A VMM gone with neither has no name.
 */
void mf_vm_identify(pid_t pid, const char *kernel_comm, const char *cmdline, size_t cmdline_len,
		    struct mf_vm_ident *ident);

/* What people see: the guest name, else the kernel's "kvm-<pid>" id. */
const char *mf_vm_display_name(const struct mf_vm_ident *ident, const char *stats_id,
			       pid_t pid, char *buf, size_t size);

#endif
