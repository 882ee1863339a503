/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* --trace: one line per memory-fault exit, MAP_GPA_RANGE request,
 * conversion and discard, as the BPF side sends them through its ring buffer. */
#ifndef MF_TRACE_H
#define MF_TRACE_H

#include <signal.h>
#include <stdio.h>
#include "model.h"
#include "opts.h"

/* The ring buffer's size under --trace: 4 MiB hold ~58,000 events. */
#define MF_TRACE_BUFFER_BYTES (4u << 20)

#define MF_TRACE_SCHEMA_VERSION 1

/*
 * Prints events from the ring buffer map events_fd until a signal sets
 * *exiting or opts' duration ends; refreshes and reaps m every interval
 * (for VM names, and to keep the maps bounded) and reports lost events.
 * 0 (also when stdout is a closed pipe) or -errno.
 */
int mf_trace_run(struct mf_model *m, int events_fd, const struct mf_opts *opts,
		 volatile sig_atomic_t *exiting);

/* One event as a line of text or NDJSON; wall_offset_ns turns its
 * CLOCK_MONOTONIC time into CLOCK_REALTIME. 0 or -EIO. */
int mf_trace_print(FILE *f, const struct mf_model *m, const struct mf_event *ev,
		   __s64 wall_offset_ns, bool json);

#endif
