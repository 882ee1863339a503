/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Hand-made VMs for unit tests of the outputs. Include after cmocka.h. */
#ifndef MF_TEST_VM_STATS_H
#define MF_TEST_VM_STATS_H

#include <stdlib.h>
#include "model.h"

/* A VM's two stats buffers, zeroed, allocated as the model does:
 * mf_model_reap frees a reaped VM's, test_vm_stats_free the rest. */
static inline void test_vm_stats(struct mf_vm *vm)
{
	vm->stats = calloc(2, sizeof(*vm->stats));
	assert_non_null(vm->stats);
	vm->cur = &vm->stats[0];
	vm->prev = &vm->stats[1];
}

static inline void test_vm_stats_free(struct mf_model *m)
{
	for (size_t i = 0; i < m->nr_vms; i++)
		free(m->vms[i].stats);
}

#endif
