// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Command-line parsing, libbpf-tools style (argp). */
#include <argp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "opts.h"

#define MF_MIN_GPA_SHIFT 12	/* a page */
#define MF_MAX_GPA_SHIFT 52	/* the widest physical address x86 and arm64 have */
#define MF_MAX_INTERVAL_S (24 * 3600.0)
#define MF_DEFAULT_STORM_RATE 1000.0
#define MF_DEFAULT_STORM_FLIPS 4

enum {
	OPT_GPA_RANGE = 0x100,
	OPT_VERSION,
	OPT_STORM,
	OPT_TRACE,
	OPT_DISABLE,
	OPT_LISTEN,
};


static const char doc[] =
"Show KVM memory-fault exits and private/shared conversion requests per VM.\n"
"\n"
"USAGE: memfaulttop [OPTIONS] [INTERVAL [COUNT]]\n"
"\n"
"EXAMPLES:\n"
"    memfaulttop               # live view (text when stdout is no terminal)\n"
"    memfaulttop -j 1 10       # ten JSON records, one a second\n"
"    memfaulttop -p 1234 --gpa-range 2M   # VMs of VMM 1234, 2 MiB GPA ranges\n"
"    memfaulttop --trace -j -p 1234       # its faults, requests, conversions as NDJSON\n"
"    memfaulttop --listen 9478 -q -i 5     # only Prometheus metrics, on 127.0.0.1\n"
"\n"
"Live-view keys: q quit, h/? help, s/</> sort, N P V R S F M H C L E X sort by\n"
"a column (again: reverse), p filter by pid or name, z hide idle VMs, r reset\n"
"totals, space pause, arrows/PgUp/PgDn/Home/End select a VM, Enter its screen,\n"
"Esc back.";

static const struct argp_option options[] = {
	{ "pid", 'p', "PID", 0, "Only VMs created by this VMM process (repeatable, or PID,PID)", 0 },
	{ "interval", 'i', "SECONDS", 0, "Report every SECONDS (default 1; fractions allowed)", 0 },
	{ "count", 'n', "N", 0, "Stop after N reports", 0 },
	{ "duration", 'd', "SECONDS", 0, "Stop after SECONDS", 0 },
	{ "gpa-range", OPT_GPA_RANGE, "SIZE", 0,
	  "Width of a GPA-range bucket, a power of two from 4K to 4P (default 1G)", 0 },
	{ "storm", OPT_STORM, "RATE[,FLIPS]", 0,
	  "Flag a VM as storming at RATE memory faults, MAP_GPA_RANGE requests and"
	  " conversions a second, or when a GPA range changes direction FLIPS times"
	  " in one interval (default 1000,4)", 0 },
	{ "trace", OPT_TRACE, NULL, 0,
	  "One line per memory fault, MAP_GPA_RANGE request, conversion and discard,"
	  " as they happen, instead of reports (with -j: NDJSON)", 0 },
	{ "disable", OPT_DISABLE, "FEATURE[,FEATURE]", 0,
	  "Leave out optional hooks: destroy_hook, conversions, discards, wait_latency", 0 },
	{ "json", 'j', NULL, 0, "One JSON object per interval per line (NDJSON)", 0 },
	{ "batch", 'b', NULL, 0, "Plain periodic text even on a terminal", 0 },
	{ "listen", OPT_LISTEN, "[ADDR:]PORT", 0,
	  "Serve Prometheus metrics on http://ADDR:PORT/metrics (ADDR 127.0.0.1 unless given;"
	  " [ADDR] for IPv6; 0.0.0.0 for every address)", 0 },
	{ "quiet", 'q', NULL, 0, "No reports on stdout (no live view, text or JSON): with --listen,"
	  " an exporter only", 0 },
	{ "verbose", 'v', NULL, 0, "Print libbpf debug output", 0 },
	{ "version", OPT_VERSION, NULL, 0, "Print the version and exit", 0 },
	{ "help", 'h', NULL, 0, "Show this help and exit", 0 },
	{},
};

struct parse_state {
	struct mf_opts *opts;
	int positional;
	int exit_ok;		/* --help or --version was handled */
	const char *report_opt;	/* "-j" or "-b", to tell they clash with -q */
	bool quiet;
};

int mf_parse_size(const char *s, uint64_t *bytes)
{
	static const char units[] = "KMGTPE";
	unsigned long long v;
	unsigned int shift = 0;
	const char *u;
	char *end;

	/* strtoull would skip blanks and negate after a '-': digits only. */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (*end) {
		u = strchr(units, *end >= 'a' ? *end - 'a' + 'A' : *end);
		if (!u)
			return -EINVAL;
		shift = 10 * (unsigned int)(u - units + 1);
		end++;
		if (!strcasecmp(end, "iB") || !strcasecmp(end, "B"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (ULLONG_MAX >> shift))
		return -ERANGE;
	*bytes = (uint64_t)v << shift;
	return 0;
}

const char *mf_format_size(uint64_t bytes, char *buf, size_t size)
{
	static const char units[] = "KMGTPE";
	int i = -1;
	double value = (double)bytes;

	/* 1023.96K prints as "1024.0K" unless it moves up a unit first. */
	while (value >= 1023.95 && i < (int)sizeof(units) - 2) {
		value /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(buf, size, "%llu", (unsigned long long)bytes);
	else if (bytes % (1ULL << (10 * (i + 1))) == 0)
		snprintf(buf, size, "%llu%c", (unsigned long long)(bytes >> (10 * (i + 1))), units[i]);
	else
		snprintf(buf, size, "%.1f%c", value, units[i]);
	return buf;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > MF_MAX_INTERVAL_S)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_count(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int mf_parse_listen(const char *s, struct mf_listen *l)
{
	char host[INET6_ADDRSTRLEN + 2] = "127.0.0.1";
	const char *colon = strrchr(s, ':'), *port_s = colon ? colon + 1 : s;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&l->addr;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&l->addr;
	size_t host_len = colon ? (size_t)(colon - s) : 0;
	bool v6 = false;
	long port;
	char *end;

	if (*port_s < '0' || *port_s > '9')
		return -EINVAL;
	errno = 0;
	port = strtol(port_s, &end, 10);
	if (errno || *end || port < 1 || port > 65535)
		return -EINVAL;
	if (colon) {
		/* "[::1]:PORT": the brackets keep the address's colons apart. */
		if (host_len >= 2 && s[0] == '[' && s[host_len - 1] == ']') {
			v6 = true;
			s++;
			host_len -= 2;
		}
		if (!host_len || host_len >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, host_len);
		host[host_len] = '\0';
	}
	memset(&l->addr, 0, sizeof(l->addr));
	if (v6) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return -EINVAL;
		l->len = sizeof(*in6);
	} else {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
			return -EINVAL;
		l->len = sizeof(*in4);
	}
	snprintf(l->text, sizeof(l->text), v6 ? "[%s]:%ld" : "%s:%ld", host, port);
	l->set = true;
	return 0;
}

static int parse_pids(struct mf_opts *opts, const char *arg)
{
	char *copy = strdup(arg), *tok, *save = NULL, *end;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long v;

		errno = 0;
		v = strtol(tok, &end, 10);
		if (errno || end == tok || *end || v <= 0 || v > INT_MAX) {
			err = -EINVAL;
			break;
		}
		if (opts->nr_pids == MF_MAX_PIDS) {
			err = -E2BIG;
			break;
		}
		opts->pids[opts->nr_pids++] = (pid_t)v;
	}
	if (!err && !opts->nr_pids)
		err = -EINVAL;
	free(copy);
	return err;
}

/* "RATE" or "RATE,FLIPS". */
static int parse_storm(const char *s, struct mf_opts *opts)
{
	char *end;
	double rate;
	long flips = (long)opts->storm_flips;

	errno = 0;
	rate = strtod(s, &end);
	if (errno || end == s || !isfinite(rate) || rate <= 0)
		return -EINVAL;
	if (*end == ',' && parse_count(end + 1, &flips))
		return -EINVAL;
	if (*end && *end != ',')
		return -EINVAL;
	opts->storm_rate = rate;
	opts->storm_flips = (__u64)flips;
	return 0;
}

/* Optional hooks by feature key; 0, or the offending name in *bad. */
static int parse_disable(const char *arg, unsigned int *disabled, char *bad, size_t size)
{
	char *copy = strdup(arg), *tok, *save = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save)) {
		int f = 0;

		while (f < MF_NR_FEATURES && (!mf_feature_hook[f] || strcmp(tok, mf_feature_key[f])))
			f++;
		if (f == MF_NR_FEATURES) {
			snprintf(bad, size, "%s", tok);
			err = -EINVAL;
		} else {
			*disabled |= 1u << f;
		}
	}
	if (!err && !*disabled) {
		snprintf(bad, size, "%s", arg);
		err = -EINVAL;
	}
	free(copy);
	return err;
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	struct parse_state *ps = state->input;
	struct mf_opts *opts = ps->opts;
	uint64_t bytes;
	int err;

	switch (key) {
	case 'p':
		err = parse_pids(opts, arg);
		if (err == -E2BIG)
			argp_error(state, "-p: at most %d processes", MF_MAX_PIDS);
		else if (err)
			argp_error(state, "-p %s: not a process id (want a positive integer)", arg);
		return err ? EINVAL : 0;
	case 'i':
		if (parse_seconds(arg, &opts->interval_s)) {
			argp_error(state, "--interval %s: want seconds > 0 and at most a day", arg);
			return EINVAL;
		}
		break;
	case 'n':
		if (parse_count(arg, &opts->count)) {
			argp_error(state, "--count %s: want a positive integer", arg);
			return EINVAL;
		}
		break;
	case 'd':
		if (parse_seconds(arg, &opts->duration_s)) {
			argp_error(state, "--duration %s: want seconds > 0 and at most a day", arg);
			return EINVAL;
		}
		break;
	case OPT_GPA_RANGE:
		if (mf_parse_size(arg, &bytes) || !bytes || (bytes & (bytes - 1)) ||
		    bytes < (1ULL << MF_MIN_GPA_SHIFT) || bytes > (1ULL << MF_MAX_GPA_SHIFT)) {
			argp_error(state, "--gpa-range %s: want a power of two from 4K to 4P, e.g. 2M or 1G",
				   arg);
			return EINVAL;
		}
		opts->gpa_shift = (unsigned int)__builtin_ctzll(bytes);
		break;
	case OPT_STORM:
		if (parse_storm(arg, opts)) {
			argp_error(state, "--storm %s: want RATE (events a second, > 0) or"
				   " RATE,FLIPS (FLIPS a positive integer), e.g. 1000,4", arg);
			return EINVAL;
		}
		break;
	case OPT_TRACE:
		opts->trace = true;
		break;
	case OPT_DISABLE: {
		char bad[64];

		if (parse_disable(arg, &opts->disabled, bad, sizeof(bad))) {
			argp_error(state, "--disable %s: '%s' is no optional hook; want a comma list"
				   " of destroy_hook, conversions, discards, wait_latency", arg, bad);
			return EINVAL;
		}
		break;
	}
	case 'j':
		opts->output = MF_OUT_JSON;
		ps->report_opt = "-j";
		break;
	case 'b':
		if (opts->output == MF_OUT_AUTO)
			opts->output = MF_OUT_TEXT;
		ps->report_opt = ps->report_opt ? ps->report_opt : "-b";
		break;
	case 'q':
		ps->quiet = true;
		break;
	case OPT_LISTEN:
		if (mf_parse_listen(arg, &opts->listen)) {
			argp_error(state, "--listen %s: want PORT, ADDR:PORT or [ADDR6]:PORT with a"
				   " numeric address and a port from 1 to 65535", arg);
			return EINVAL;
		}
		break;
	case 'v':
		opts->verbose = true;
		break;
	case 'h':
		argp_state_help(state, stdout, ARGP_HELP_STD_HELP & ~ARGP_HELP_EXIT_OK);
		ps->exit_ok = 1;
		break;
	case OPT_VERSION:
		printf("memfaulttop %s\n", MF_VERSION);
		ps->exit_ok = 1;
		break;
	case ARGP_KEY_END:
		if (opts->trace && opts->count) {
			argp_error(state, "--trace prints events, not reports: COUNT and -n do not"
				   " apply; bound it with -d SECONDS");
			return EINVAL;
		}
		if (opts->trace && opts->listen.set) {
			argp_error(state, "--trace prints events, not reports, whose totals --listen"
				   " serves: run a second memfaulttop for the metrics");
			return EINVAL;
		}
		if (!ps->quiet)
			break;
		if (ps->report_opt) {
			argp_error(state, "-q prints no reports: it cannot go with %s", ps->report_opt);
			return EINVAL;
		}
		if (!opts->listen.set) {
			argp_error(state, "-q without --listen would report nothing: add --listen PORT");
			return EINVAL;
		}
		opts->output = MF_OUT_NONE;
		break;
	case ARGP_KEY_ARG:
		if (ps->positional == 0 && parse_seconds(arg, &opts->interval_s)) {
			argp_error(state, "interval %s: want seconds > 0 and at most a day", arg);
			return EINVAL;
		}
		if (ps->positional == 1 && parse_count(arg, &opts->count)) {
			argp_error(state, "count %s: want a positive integer", arg);
			return EINVAL;
		}
		if (ps->positional > 1) {
			argp_error(state, "unexpected argument %s", arg);
			return EINVAL;
		}
		ps->positional++;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

int mf_parse_args(int argc, char **argv, struct mf_opts *opts)
{
	static const struct argp argp = { options, parse_arg, "[INTERVAL [COUNT]]", doc, NULL, NULL, NULL };
	struct parse_state ps = { .opts = opts };
	int err;

	*opts = (struct mf_opts){ .interval_s = 1.0, .gpa_shift = 30,
				  .storm_rate = MF_DEFAULT_STORM_RATE,
				  .storm_flips = MF_DEFAULT_STORM_FLIPS };
	/* NO_EXIT keeps the parser usable from unit tests; errors are returned. */
	err = argp_parse(&argp, argc, argv, ARGP_NO_EXIT | ARGP_NO_HELP, NULL, &ps);
	if (err)
		return -(err > 0 ? err : EINVAL);
	return ps.exit_ok ? 1 : 0;
}
