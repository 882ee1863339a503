/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Conversion storms: which GPA ranges flap, and which VMs storm. */
#ifndef MF_STORM_H
#define MF_STORM_H

#include <stdbool.h>
#include "model.h"

/* A VM's last interval against the --storm thresholds of the model. */
struct mf_storm {
	bool storming;		/* by_rate || flapping */
	bool by_rate;
	double rate;		/* faults, MAP_GPA_RANGE requests and conversions a second */
	__u64 flips;		/* direction changes, all ranges */
	size_t flapping;	/* ranges with at least storm_flips of them */
};

void mf_vm_storm(const struct mf_model *m, const struct mf_vm *vm, struct mf_storm *s);

/* The VM's n ranges that flipped most in the interval, most first. */
size_t mf_vm_top_flips(const struct mf_model *m, const struct mf_vm *vm,
		       const struct mf_flip **out, size_t n);

/* Ranges shown per VM by the text output and the live view. */
#define MF_TOP_FLIPS 5

#endif
