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
/* Exit kinds as JSON keys: "private", "shared", "to_private", "to_shared". */
extern const char *const mf_kind_key[MF_NR_KINDS];

/* An errno slot's name: "EINVAL", or its number; the last slot "135+". */
const char *mf_errno_name(unsigned int slot, char *buf, size_t size);

/* vCPUs with most wait, per VM, in the text and JSON outputs. */
#define MF_WORST_VCPUS 5

#endif
