/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_OUTPUT_H
#define MF_OUTPUT_H

#include <stdio.h>
#include "model.h"

#define MF_JSON_SCHEMA_VERSION 1

/* One report of the last interval: a block per active VM. */
int mf_text_print(FILE *f, const struct mf_model *m);

/* One NDJSON record of the last interval; the line is written whole. */
int mf_json_print(FILE *f, const struct mf_model *m);

/* Labels shared by all outputs. */
extern const char *const mf_kind_label[MF_NR_KINDS];
extern const char *const mf_drop_key[MF_NR_DROPS];	/* JSON keys */
extern const char *const mf_drop_label[MF_NR_DROPS];	/* for people */

#endif
