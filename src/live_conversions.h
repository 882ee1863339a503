/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The VM screen's part about the VMM's service: its conversions' failures
 * and kernel time, its guest_memfd discards, how long vCPUs wait for it
 * after each kind of exit, the vCPUs that wait most, and the GPA ranges
 * that flap (a conversion storm). Rendered as lines
 * handed to the caller, which owns the screen.
 */
#ifndef MF_LIVE_CONVERSIONS_H
#define MF_LIVE_CONVERSIONS_H

#include <stdbool.h>
#include "model.h"

/* Takes one line of the screen with its attributes (MF_ATTR_*); 0 or -errno. */
typedef int (*mf_live_line_fn)(void *ctx, unsigned int attr, const char *text);

/*
 * Totals since start, or since base (the 'r' reset) when it is not NULL;
 * the vCPUs that waited most since start, by their longest wait (by_max) or
 * by their total wait. cols bounds the histogram bars.
 */
int mf_live_vmm_service(mf_live_line_fn line, void *ctx, const struct mf_model *m,
			const struct mf_vm *vm, const struct mf_vm_stats *base, bool by_max,
			int cols);

/* Whether the VM storms in the last interval and why, and its GPA ranges
 * that changed direction most then. */
int mf_live_flips(mf_live_line_fn line, void *ctx, const struct mf_model *m,
		  const struct mf_vm *vm);

#endif
