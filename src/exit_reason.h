/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_EXIT_REASON_H
#define MF_EXIT_REASON_H

/* KVM_EXIT_* name without the prefix ("IO", "MEMORY_FAULT"), or NULL. */
const char *mf_exit_reason_name(unsigned int reason);

#endif
