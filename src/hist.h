/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_HIST_H
#define MF_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/types.h>
#include "memfault.h"

/* Interval counts of one log2 histogram: cur - prev per slot. */
void mf_hist_delta(const struct mf_hist *cur, const struct mf_hist *prev,
		   __u64 out[MF_LOG2_SLOTS]);

/* First and last non-empty slot; false when all are empty. */
bool mf_hist_span(const __u64 slots[MF_LOG2_SLOTS], int *lo, int *hi);

/* Human bounds of a slot: slot 0 also holds size 0, slot 63 is open. */
void mf_hist_slot_bounds(int slot, char from[16], char to[16]);

/* A duration for people: "850ns", "12.3us", "4.0ms", "2.5s". */
const char *mf_format_ns(uint64_t ns, char *buf, size_t size);

/* Bounds of a log2 nanosecond slot, as mf_hist_slot_bounds. */
void mf_hist_ns_bounds(int slot, char from[16], char to[16]);

/* Interval counts of one log2 duration histogram. */
void mf_lat_delta(const struct mf_lat *cur, const struct mf_lat *prev,
		  __u64 out[MF_LOG2_SLOTS]);

/*
 * Prints the non-empty span of a log2 byte-size histogram, bcc style:
 * "  4K -> 8K : 12 |*****|", each line prefixed with indent.
 */
void mf_hist_print(FILE *f, const __u64 slots[MF_LOG2_SLOTS], const char *indent, int width);
/* The same for a log2 histogram of durations: "  1us -> 2us : 3 |***|". */
void mf_hist_print_ns(FILE *f, const __u64 slots[MF_LOG2_SLOTS], const char *indent, int width);

#endif
