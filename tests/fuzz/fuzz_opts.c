// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer target: the command line (NUL-separated arguments) through
 * mf_parse_args, and sizes through mf_parse_size and back. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "opts.h"

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[MAX_ARGS + 2];
	struct mf_opts opts;
	int argc = 0;
	uint64_t bytes;
	char buf[32];

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = (char *)"memfaulttop";
	for (char *p = copy; p < copy + size && argc <= MAX_ARGS; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	/* argp writes its errors (and --help) to the standard streams. */
	if (mf_parse_args(argc, argv, &opts) == 0) {
		if (opts.nr_pids < 0 || opts.nr_pids > MF_MAX_PIDS || !(opts.interval_s > 0) ||
		    opts.gpa_shift < 12 || opts.gpa_shift > 52 || !(opts.storm_rate > 0) ||
		    !opts.storm_flips || (opts.trace && opts.count))
			abort();
	}
	if (mf_parse_size(copy, &bytes) == 0) {
		mf_format_size(bytes, buf, sizeof(buf));
		if (!buf[0])
			abort();
	}
	free(copy);
	return 0;
}
