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

bool mf_hist_span(const __u64 slots[MF_LOG2_SLOTS], int *lo, int *hi)
{
	*lo = *hi = -1;
	for (int i = 0; i < MF_LOG2_SLOTS; i++) {
		if (!slots[i])
			continue;
		if (*lo < 0)
			*lo = i;
		*hi = i;
	}
	return *lo >= 0;
}

/* A log2 slot's bounds in the unit fmt writes. */
static void slot_bounds(int slot, const char *(*fmt)(uint64_t, char *, size_t),
			char from[16], char to[16])
{
	fmt(slot ? 1ULL << slot : 0, from, 16);
	if (slot < MF_LOG2_SLOTS - 1)
		fmt(1ULL << (slot + 1), to, 16);
	else
		strcpy(to, "max");
}

void mf_hist_slot_bounds(int slot, char from[16], char to[16])
{
	slot_bounds(slot, mf_format_size, from, to);
}

const char *mf_format_ns(uint64_t ns, char *buf, size_t size)
{
	static const char *const units[] = { "us", "ms", "s" };
	double v = (double)ns;
	int i = -1;

	while (v >= 999.95 && i < 2) {
		v /= 1000;
		i++;
	}
	if (i < 0)
		snprintf(buf, size, "%lluns", (unsigned long long)ns);
	else
		snprintf(buf, size, "%.1f%s", v, units[i]);
	return buf;
}

void mf_hist_ns_bounds(int slot, char from[16], char to[16])
{
	slot_bounds(slot, mf_format_ns, from, to);
}

void mf_lat_delta(const struct mf_lat *cur, const struct mf_lat *prev,
		  __u64 out[MF_LOG2_SLOTS])
{
	for (int i = 0; i < MF_LOG2_SLOTS; i++)
		out[i] = cur->log2_ns[i] - prev->log2_ns[i];
}

static void hist_print(FILE *f, const __u64 slots[MF_LOG2_SLOTS], const char *indent, int width,
		       void (*bounds)(int slot, char from[16], char to[16]))
{
	int lo, hi;
	__u64 max = 0;
	char bar[256];

	if (!mf_hist_span(slots, &lo, &hi))
		return;
	for (int i = lo; i <= hi; i++)
		if (slots[i] > max)
			max = slots[i];
	if (width > (int)sizeof(bar) - 1)
		width = (int)sizeof(bar) - 1;
	for (int i = lo; i <= hi; i++) {
		char from[16], to[16];
		int n = (int)((slots[i] * (__u64)width + max - 1) / max);

		memset(bar, '*', (size_t)n);
		bar[n] = '\0';
		bounds(i, from, to);
		fprintf(f, "%s%8s -> %-8s: %-10llu|%-*s|\n", indent, from, to,
			(unsigned long long)slots[i], width, bar);
	}
}

void mf_hist_print(FILE *f, const __u64 slots[MF_LOG2_SLOTS], const char *indent, int width)
{
	hist_print(f, slots, indent, width, mf_hist_slot_bounds);
}

void mf_hist_print_ns(FILE *f, const __u64 slots[MF_LOG2_SLOTS], const char *indent, int width)
{
	hist_print(f, slots, indent, width, mf_hist_ns_bounds);
}
