// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "storm.h"

void mf_vm_storm(const struct mf_model *m, const struct mf_vm *vm, struct mf_storm *s)
{
	double secs = mf_model_interval_s(m);
	__u64 events = 0;

	*s = (struct mf_storm){ 0 };
	for (int kind = 0; kind < MF_NR_KINDS; kind++)
		events += vm->cur->hist[kind].count - vm->prev->hist[kind].count;
	s->rate = secs > 0 ? (double)events / secs : 0;
	s->by_rate = m->storm_rate > 0 && events && s->rate >= m->storm_rate;
	s->flips = vm->cur->flips - vm->prev->flips;
	for (size_t i = vm->first_flip; i < vm->first_flip + vm->nr_flips; i++) {
		__u64 n = m->flips[i].flips - m->flips[i].prev_flips;

		s->flapping += m->storm_flips && n >= m->storm_flips;
	}
	s->storming = s->by_rate || s->flapping;
}

size_t mf_vm_top_flips(const struct mf_model *m, const struct mf_vm *vm,
		       const struct mf_flip **out, size_t n)
{
	__u64 keys[n ? n : 1];
	size_t found = 0;

	for (size_t i = vm->first_flip; n && i < vm->first_flip + vm->nr_flips; i++) {
		const struct mf_flip *f = &m->flips[i];

		if (f->flips != f->prev_flips)
			mf_top_insert((const void **)out, keys, &found, n, f,
				      f->flips - f->prev_flips);
	}
	return found;
}
