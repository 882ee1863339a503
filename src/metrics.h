/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The model as Prometheus metrics: the text exposition format, cumulative
 * totals since memfaulttop attached. Families are listed in the man page. */
#ifndef MF_METRICS_H
#define MF_METRICS_H

#include <stddef.h>
#include "model.h"

#define MF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A growable byte buffer; data is not NUL-terminated. */
struct mf_text {
	char *data;
	size_t len, cap;
};

/*
 * Replaces out's content with the exposition of m: every VM the model
 * holds (destroyed ones too, for their last report), the drops and the
 * kernel features. 0 or -ENOMEM (out then holds a partial text).
 */
int mf_metrics_render(struct mf_text *out, const struct mf_model *m);

void mf_text_free(struct mf_text *t);

#endif
