// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include "hist.h"
#include "opts.h"

void mf_hist_delta(const struct mf_hist *cur, const struct mf_hist *prev,
		   __u64 out[MF_LOG2_SLOTS])
{
	for (int i = 0; i < MF_LOG2_SLOTS; i++)
		out[i] = cur->log2_bytes[i] - prev->log2_bytes[i];
}

void mf_hist_print(FILE *f, const __u64 slots[MF_LOG2_SLOTS], const char *indent, int width)
{
	int lo = -1, hi = -1;
	__u64 max = 0;
	char bar[256];

	for (int i = 0; i < MF_LOG2_SLOTS; i++) {
		if (!slots[i])
			continue;
		if (lo < 0)
			lo = i;
		hi = i;
		if (slots[i] > max)
			max = slots[i];
	}
	if (lo < 0)
		return;
	if (width > (int)sizeof(bar) - 1)
		width = (int)sizeof(bar) - 1;
	for (int i = lo; i <= hi; i++) {
		char from[16], to[16];
		int n = (int)((slots[i] * (__u64)width + max - 1) / max);

		memset(bar, '*', (size_t)n);
		bar[n] = '\0';
		/* Slot 0 also holds size 0; slot 63 has no upper bound that fits. */
		mf_format_size(i ? 1ULL << i : 0, from, sizeof(from));
		if (i < 63)
			mf_format_size(1ULL << (i + 1), to, sizeof(to));
		else
			strcpy(to, "max");
		fprintf(f, "%s%8s -> %-8s: %-10llu|%-*s|\n", indent, from, to,
			(unsigned long long)slots[i], width, bar);
	}
}
