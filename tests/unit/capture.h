/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What an output writer prints for a model, as a string to free. Include
 * after cmocka.h. */
#ifndef MF_TEST_CAPTURE_H
#define MF_TEST_CAPTURE_H

#include <stdio.h>
#include "model.h"

typedef int (*print_fn)(FILE *f, const struct mf_model *m);

/* fn's output for m; its length in *len unless len is NULL. Not inlined:
 * GCC 12 then mistakes open_memstream's buffer for a dangling pointer. */
static __attribute__((noinline)) char *capture(print_fn fn, const struct mf_model *m,
					       size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	assert_int_equal(fn(f, m), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	if (len)
		*len = n;
	return buf;
}

#endif
