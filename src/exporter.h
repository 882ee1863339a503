/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The metrics endpoint (--listen): libmicrohttpd serves /metrics from its
 * own thread. The main loop renders the exposition after each refresh and
 * publishes it; a scrape takes a reference to the latest one and never
 * waits for, or touches, the model or the BPF maps.
 */
#ifndef MF_EXPORTER_H
#define MF_EXPORTER_H

#include "model.h"
#include "opts.h"

struct mf_exporter;

/* Loads libmicrohttpd (mhd_dl.h), binds and listens on l, so that a missing
 * library or a port in use fails at start-up; says what went wrong in one
 * line. Scrapes are answered after mf_exporter_start. */
int mf_exporter_open(struct mf_exporter **ex, const struct mf_listen *l);

/* Starts the HTTP thread; one line on failure. */
int mf_exporter_start(struct mf_exporter *ex);

/* Renders m and makes it what scrapes get from now on. 0 or -ENOMEM. */
int mf_exporter_publish(struct mf_exporter *ex, const struct mf_model *m);

/* Stops the HTTP thread and frees everything; NULL is fine. */
void mf_exporter_close(struct mf_exporter *ex);

#endif
