/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef MF_OPTS_H
#define MF_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <linux/types.h>
#include "kernel_features.h"
#include "memfault.h"

enum mf_output {
	MF_OUT_AUTO,	/* live view on a terminal, text otherwise */
	MF_OUT_TEXT,
	MF_OUT_JSON,
	MF_OUT_NONE,	/* --quiet: the metrics endpoint only */
};

/* --listen: where the metrics endpoint listens. */
struct mf_listen {
	bool set;
	struct sockaddr_storage addr;
	socklen_t len;
	char text[64];		/* "127.0.0.1:9090", "[::1]:9090": for messages */
};

struct mf_opts {
	pid_t pids[MF_MAX_PIDS];
	int nr_pids;
	double interval_s;
	long count;		/* 0: until interrupted */
	double duration_s;	/* 0: until interrupted */
	unsigned int gpa_shift;	/* GPA-range width is 1 << gpa_shift */
	enum mf_output output;
	struct mf_listen listen;
	bool verbose;
	bool trace;		/* --trace: one line per event, no reports */
	/* A VM storms when its faults, requests and conversions reach
	 * storm_rate per second, or a range flips storm_flips times in an interval. */
	double storm_rate;
	__u64 storm_flips;
	unsigned int disabled;	/* bit (1 << enum mf_feature): --disable */
};

/*
 * Parses the command line into *opts. Returns 0 to run, a positive value
 * when the program should exit successfully (--help, --version), or a
 * negative value after printing one line about bad input.
 */
int mf_parse_args(int argc, char **argv, struct mf_opts *opts);

/* "4096", "4K", "2M", "2MiB", "1G" (binary units) -> bytes. 0 or -errno. */
int mf_parse_size(const char *s, uint64_t *bytes);

/* "PORT" (127.0.0.1), "ADDR:PORT", "[ADDR6]:PORT"; numeric addresses only,
 * ports 1-65535. 0 or -EINVAL. */
int mf_parse_listen(const char *s, struct mf_listen *l);

/* Formats bytes as "4K", "2M", "1.5G" into buf. */
const char *mf_format_size(uint64_t bytes, char *buf, size_t size);

#endif
