/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_LIVE_H
#define MF_LIVE_H

#include <signal.h>
#include "exporter.h"
#include "model.h"
#include "opts.h"

/*
 * Full-screen live view on the terminal until 'q', a signal setting
 * *exiting, or opts' count or duration. Refreshes m every interval and
 * reaps it after drawing; publishes each refresh to ex unless it is NULL.
 * The terminal is restored before returning; stderr written meanwhile is
 * held back and printed then. 0 or -errno.
 */
int mf_live_run(struct mf_model *m, const struct mf_opts *opts, volatile sig_atomic_t *exiting,
		struct mf_exporter *ex);

#endif
