/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_EXIT_REASON_H
#define MF_EXIT_REASON_H

#include <stddef.h>

/* KVM_EXIT_* name without the prefix ("IO", "MEMORY_FAULT"), or NULL. */
const char *mf_exit_reason_name(unsigned int reason);

/* The reason as a key of the JSON and metrics outputs: its name, else its
 * number ("63+" for the last slot, which also holds larger ones). */
const char *mf_exit_reason_key(unsigned int reason, char *buf, size_t size);

#endif
