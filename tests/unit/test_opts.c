// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for src/opts.c: argp parsing, mf_parse_size, mf_format_size. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include "opts.h"

#define MAX_ARGS 80

/* Runs mf_parse_args on "memfaulttop" followed by the NULL-terminated args. */
static int parse(struct mf_opts *o, ...)
{
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	const char *a;
	va_list ap;

	argv[argc++] = (char *)"memfaulttop";
	va_start(ap, o);
	while ((a = va_arg(ap, const char *)) && argc < MAX_ARGS)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	memset(o, 0xa5, sizeof(*o));	/* mf_parse_args must reset everything */
	return mf_parse_args(argc, argv, o);
}

static void test_defaults(void **state)
{
	struct mf_opts o;

	assert_int_equal(parse(&o, NULL), 0);
	assert_int_equal(o.nr_pids, 0);
	assert_true(o.interval_s == 1.0);
	assert_int_equal(o.count, 0);
	assert_true(o.duration_s == 0.0);
	assert_int_equal(o.gpa_shift, 30);
	assert_int_equal(o.output, MF_OUT_AUTO);
	assert_false(o.verbose);
}

static void test_pid_single_repeated_list(void **state)
{
	struct mf_opts o;

	assert_int_equal(parse(&o, "-p", "1234", NULL), 0);
	assert_int_equal(o.nr_pids, 1);
	assert_int_equal(o.pids[0], 1234);

	assert_int_equal(parse(&o, "-p", "1", "--pid", "2", "-p3", NULL), 0);
	assert_int_equal(o.nr_pids, 3);
	assert_int_equal(o.pids[0], 1);
	assert_int_equal(o.pids[1], 2);
	assert_int_equal(o.pids[2], 3);

	assert_int_equal(parse(&o, "-p", "10,20,30", "--pid=40", NULL), 0);
	assert_int_equal(o.nr_pids, 4);
	assert_int_equal(o.pids[0], 10);
	assert_int_equal(o.pids[1], 20);
	assert_int_equal(o.pids[2], 30);
	assert_int_equal(o.pids[3], 40);

	assert_int_equal(parse(&o, "-p", "2147483647", NULL), 0);
	assert_int_equal(o.pids[0], 2147483647);
}

static void test_pid_bad(void **state)
{
	struct mf_opts o;

	assert_true(parse(&o, "-p", "0", NULL) < 0);
	assert_true(parse(&o, "-p", "-1", NULL) < 0);
	assert_true(parse(&o, "-p", "abc", NULL) < 0);
	assert_true(parse(&o, "-p", "12abc", NULL) < 0);
	assert_true(parse(&o, "-p", "1,x", NULL) < 0);
	assert_true(parse(&o, "-p", "", NULL) < 0);
	assert_true(parse(&o, "-p", ",", NULL) < 0);
	assert_true(parse(&o, "-p", "2147483648", NULL) < 0);
	assert_true(parse(&o, "-p", "99999999999999999999", NULL) < 0);
	assert_true(parse(&o, "-p", NULL) < 0);	/* missing argument */
}

static void test_pid_too_many(void **state)
{
	char list[MF_MAX_PIDS * 8 + 16];
	struct mf_opts o;
	size_t n = 0;

	/* Exactly MF_MAX_PIDS is fine. */
	for (int i = 1; i <= MF_MAX_PIDS; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%d", i > 1 ? "," : "", i);
	assert_int_equal(parse(&o, "-p", list, NULL), 0);
	assert_int_equal(o.nr_pids, MF_MAX_PIDS);
	assert_int_equal(o.pids[MF_MAX_PIDS - 1], MF_MAX_PIDS);

	/* One more, in the same list or in another -p, is rejected. */
	snprintf(list + n, sizeof(list) - n, ",%d", MF_MAX_PIDS + 1);
	assert_true(parse(&o, "-p", list, NULL) < 0);
	list[n] = '\0';
	assert_true(parse(&o, "-p", list, "-p", "999", NULL) < 0);

	/* 65 separate -p options. */
	{
		char *argv[2 * (MF_MAX_PIDS + 1) + 2];
		char bufs[MF_MAX_PIDS + 1][12];
		int argc = 0;

		argv[argc++] = (char *)"memfaulttop";
		for (int i = 0; i <= MF_MAX_PIDS; i++) {
			snprintf(bufs[i], sizeof(bufs[i]), "%d", i + 100);
			argv[argc++] = (char *)"-p";
			argv[argc++] = bufs[i];
		}
		argv[argc] = NULL;
		assert_true(mf_parse_args(argc, argv, &o) < 0);
		assert_true(mf_parse_args(argc - 2, argv, &o) == 0);
		assert_int_equal(o.nr_pids, MF_MAX_PIDS);
	}
}

static void test_interval_count_duration(void **state)
{
	struct mf_opts o;

	assert_int_equal(parse(&o, "-i", "0.5", "-n", "10", "-d", "2.25", NULL), 0);
	assert_true(o.interval_s == 0.5);
	assert_int_equal(o.count, 10);
	assert_true(o.duration_s == 2.25);

	assert_int_equal(parse(&o, "--interval=3", "--count=2", "--duration=86400", NULL), 0);
	assert_true(o.interval_s == 3.0);
	assert_int_equal(o.count, 2);
	assert_true(o.duration_s == 86400.0);

	assert_int_equal(parse(&o, "0.25", NULL), 0);
	assert_true(o.interval_s == 0.25);
	assert_int_equal(o.count, 0);

	assert_int_equal(parse(&o, "2", "5", NULL), 0);
	assert_true(o.interval_s == 2.0);
	assert_int_equal(o.count, 5);

	/* Options and positionals mix (GNU permutation). */
	assert_int_equal(parse(&o, "1.5", "-j", "7", NULL), 0);
	assert_true(o.interval_s == 1.5);
	assert_int_equal(o.count, 7);
	assert_int_equal(o.output, MF_OUT_JSON);
}

static void test_interval_count_duration_bad(void **state)
{
	struct mf_opts o;

	assert_true(parse(&o, "-i", "0", NULL) < 0);
	assert_true(parse(&o, "-i", "-1", NULL) < 0);
	assert_true(parse(&o, "-i", "abc", NULL) < 0);
	assert_true(parse(&o, "-i", "1s", NULL) < 0);
	assert_true(parse(&o, "-i", "", NULL) < 0);
	assert_true(parse(&o, "-i", "nan", NULL) < 0);
	assert_true(parse(&o, "-i", "inf", NULL) < 0);
	assert_true(parse(&o, "-i", "86401", NULL) < 0);
	assert_true(parse(&o, "-i", "1e400", NULL) < 0);
	assert_true(parse(&o, "-n", "0", NULL) < 0);
	assert_true(parse(&o, "-n", "-3", NULL) < 0);
	assert_true(parse(&o, "-n", "1.5", NULL) < 0);
	assert_true(parse(&o, "-n", "x", NULL) < 0);
	assert_true(parse(&o, "-n", "99999999999999999999999", NULL) < 0);
	assert_true(parse(&o, "-d", "0", NULL) < 0);
	assert_true(parse(&o, "-d", "-0.5", NULL) < 0);
	assert_true(parse(&o, "-d", "soon", NULL) < 0);

	assert_true(parse(&o, "0", NULL) < 0);
	assert_true(parse(&o, "--", "-1", NULL) < 0);
	assert_true(parse(&o, "abc", NULL) < 0);
	assert_true(parse(&o, "1", "0", NULL) < 0);
	assert_true(parse(&o, "1", "-2", NULL) < 0);	/* "-2" is an unknown option */
	assert_true(parse(&o, "1", "--", "-2", NULL) < 0);
	assert_true(parse(&o, "1", "2.5", NULL) < 0);
	assert_true(parse(&o, "1", "two", NULL) < 0);
	assert_true(parse(&o, "1", "2", "3", NULL) < 0);	/* a third positional */
}

static void test_gpa_range_ok(void **state)
{
	static const struct { const char *arg; unsigned int shift; } ok[] = {
		{ "4K", 12 }, { "4096", 12 }, { "8k", 13 }, { "2M", 21 }, { "2MiB", 21 },
		{ "2mib", 21 }, { "2MB", 21 }, { "1G", 30 }, { "1GiB", 30 }, { "512G", 39 },
		{ "1T", 40 }, { "4P", 52 }, { "1048576", 20 },
	};
	struct mf_opts o;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse(&o, "--gpa-range", ok[i].arg, NULL), 0);
		assert_int_equal(o.gpa_shift, ok[i].shift);
	}
	assert_int_equal(parse(&o, "--gpa-range=2M", NULL), 0);
	assert_int_equal(o.gpa_shift, 21);
}

static void test_gpa_range_bad(void **state)
{
	static const char *const bad[] = {
		"3K", "0", "1K", "2048", "8P", "1E", "2X", "", "-4K", "+4K", "K", "4KK",
		"6M", "99999999999999999999", "16E", "20000000E", "0x1000",
	};
	struct mf_opts o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = parse(&o, "--gpa-range", bad[i], NULL);

		if (err >= 0)
			fail_msg("--gpa-range \"%s\" accepted", bad[i]);
	}
}

static void test_output_modes(void **state)
{
	struct mf_opts o;

	assert_int_equal(parse(&o, "-j", NULL), 0);
	assert_int_equal(o.output, MF_OUT_JSON);
	assert_int_equal(parse(&o, "--json", NULL), 0);
	assert_int_equal(o.output, MF_OUT_JSON);
	assert_int_equal(parse(&o, "-b", NULL), 0);
	assert_int_equal(o.output, MF_OUT_TEXT);
	assert_int_equal(parse(&o, "--batch", NULL), 0);
	assert_int_equal(o.output, MF_OUT_TEXT);
	/* -b never overrides -j, whatever the order. */
	assert_int_equal(parse(&o, "-j", "-b", NULL), 0);
	assert_int_equal(o.output, MF_OUT_JSON);
	assert_int_equal(parse(&o, "-b", "-j", NULL), 0);
	assert_int_equal(o.output, MF_OUT_JSON);
	assert_int_equal(parse(&o, "-jb", NULL), 0);
	assert_int_equal(o.output, MF_OUT_JSON);
	assert_int_equal(parse(&o, "-v", NULL), 0);
	assert_true(o.verbose);
}

static void test_storm_trace_disable(void **state)
{
	struct mf_opts o;

	assert_int_equal(parse(&o, NULL), 0);
	assert_true(o.storm_rate == 1000.0);
	assert_int_equal(o.storm_flips, 4);
	assert_false(o.trace);
	assert_int_equal(o.disabled, 0);

	assert_int_equal(parse(&o, "--storm", "250.5", NULL), 0);
	assert_true(o.storm_rate == 250.5);
	assert_int_equal(o.storm_flips, 4);
	assert_int_equal(parse(&o, "--storm", "10,2", NULL), 0);
	assert_true(o.storm_rate == 10.0);
	assert_int_equal(o.storm_flips, 2);
	for (const char *bad[] = { "0", "-5", "x", "10,", "10,0", "10,-1", "10;2", "10,2x",
				   "inf", "nan", NULL }, **b = bad; *b; b++)
		assert_true(parse(&o, "--storm", *b, NULL) < 0);

	assert_int_equal(parse(&o, "--trace", "-j", "-d", "5", NULL), 0);
	assert_true(o.trace);
	assert_int_equal(o.output, MF_OUT_JSON);
	/* A trace has no reports to count. */
	assert_true(parse(&o, "--trace", "-n", "3", NULL) < 0);
	assert_true(parse(&o, "--trace", "1", "3", NULL) < 0);

	assert_int_equal(parse(&o, "--disable", "conversions,wait_latency", NULL), 0);
	assert_int_equal(o.disabled, (1u << MF_FEAT_CONVERSIONS) | (1u << MF_FEAT_WAIT_LATENCY));
	assert_int_equal(parse(&o, "--disable", "destroy_hook", "--disable", "discards", NULL), 0);
	assert_int_equal(o.disabled, (1u << MF_FEAT_DESTROY_HOOK) | (1u << MF_FEAT_DISCARDS));
	/* Not a hook, not a feature, nothing. */
	for (const char *bad[] = { "memory_fault_info", "bogus", "", ",", "conversions,x", NULL },
	     **b = bad; *b; b++)
		assert_true(parse(&o, "--disable", *b, NULL) < 0);
}

static void test_help_version_unknown(void **state)
{
	struct mf_opts o;

	assert_true(parse(&o, "--help", NULL) > 0);
	assert_true(parse(&o, "-h", NULL) > 0);
	assert_true(parse(&o, "--version", NULL) > 0);
	assert_true(parse(&o, "--bogus", NULL) < 0);
	assert_true(parse(&o, "-Z", NULL) < 0);
	assert_true(parse(&o, "--json=1", NULL) < 0);	/* takes no argument */
	/* Bad input after --help is still bad input. */
	assert_true(parse(&o, "--help", "-p", "abc", NULL) < 0);
	/* The parser can be used again after errors. */
	assert_int_equal(parse(&o, "-p", "7", NULL), 0);
	assert_int_equal(o.pids[0], 7);
}

static void test_parse_size(void **state)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "0", 0 }, { "1", 1 }, { "4096", 4096 }, { "4K", 4096 }, { "4k", 4096 },
		{ "1KiB", 1024 }, { "1kb", 1024 }, { "2M", 2ULL << 20 }, { "2MiB", 2ULL << 20 },
		{ "1G", 1ULL << 30 }, { "3T", 3ULL << 40 }, { "4P", 1ULL << 52 },
		{ "15E", 15ULL << 60 }, { "18446744073709551615", UINT64_MAX },
		{ "007", 7 }, { "0K", 0 },
	};
	static const char *const bad[] = {
		"", "-1", "+1", "K", "1X", "1KK", "1K ", "1 K", "1Kb2", "1iB", "1.5K",
		"18446744073709551616", "16E", "17179869184G", "abc", "1e3",
		" -1", " 1",	/* strtoull would skip the space and take the sign */
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		if (mf_parse_size(ok[i].s, &v))
			fail_msg("mf_parse_size(\"%s\") failed", ok[i].s);
		assert_int_equal(v, ok[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (mf_parse_size(bad[i], &v) >= 0)
			fail_msg("mf_parse_size(\"%s\") accepted: %llu", bad[i],
				 (unsigned long long)v);
		assert_int_equal(v, 12345);	/* untouched on error */
	}
	assert_int_equal(mf_parse_size("16E", &v), -ERANGE);
	assert_int_equal(mf_parse_size("2X", &v), -EINVAL);
	assert_int_equal(mf_parse_size(NULL, &v), -EINVAL);
}

static void test_format_size(void **state)
{
	static const struct { uint64_t v; const char *s; } cases[] = {
		{ 0, "0" }, { 1, "1" }, { 1023, "1023" }, { 1024, "1K" }, { 1536, "1.5K" },
		{ 4096, "4K" }, { 1025, "1.0K" }, { 1ULL << 20, "1M" }, { 2ULL << 20, "2M" },
		{ 3ULL << 19, "1.5M" }, { 1ULL << 30, "1G" }, { 1ULL << 40, "1T" },
		{ 1ULL << 50, "1P" }, { 4ULL << 50, "4P" }, { 1ULL << 60, "1E" },
		{ 8ULL << 60, "8E" }, { 15ULL << 60, "15E" }, { 1023ULL << 10, "1023K" },
		{ (1ULL << 20) - (1ULL << 10), "1023K" },
		{ UINT64_MAX, "16.0E" },
	};
	char buf[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_ptr_equal(mf_format_size(cases[i].v, buf, sizeof(buf)), buf);
		assert_string_equal(buf, cases[i].s);
	}
	/* Truncates to the buffer, always terminated. */
	memset(buf, 'x', sizeof(buf));
	mf_format_size(123456789, buf, 4);
	assert_int_equal(strlen(buf), 3);
}

/* Sizes round-trip through format and parse when they are whole units. */
static void test_size_roundtrip(void **state)
{
	char buf[16];
	uint64_t v;

	for (unsigned int shift = 0; shift < 64; shift++) {
		uint64_t bytes = 1ULL << shift;

		mf_format_size(bytes, buf, sizeof(buf));
		assert_int_equal(mf_parse_size(buf, &v), 0);
		assert_int_equal(v, bytes);
	}
}

static void test_listen(void **state)
{
	const struct sockaddr_in *in4;
	const struct sockaddr_in6 *in6;
	struct mf_opts o;
	char addr[INET6_ADDRSTRLEN];

	assert_int_equal(parse(&o, NULL), 0);
	assert_false(o.listen.set);

	assert_int_equal(parse(&o, "--listen", "9464", NULL), 0);
	in4 = (const struct sockaddr_in *)&o.listen.addr;
	assert_true(o.listen.set);
	assert_int_equal(in4->sin_family, AF_INET);
	assert_int_equal(ntohs(in4->sin_port), 9464);
	assert_int_equal(ntohl(in4->sin_addr.s_addr), INADDR_LOOPBACK);	/* loopback unless told */
	assert_string_equal(o.listen.text, "127.0.0.1:9464");
	assert_int_equal(o.output, MF_OUT_AUTO);	/* alongside any output */

	assert_int_equal(parse(&o, "--listen=0.0.0.0:65535", "-j", NULL), 0);
	assert_int_equal(ntohs(in4->sin_port), 65535);
	assert_int_equal(in4->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(o.output, MF_OUT_JSON);

	assert_int_equal(parse(&o, "--listen", "[::1]:1", NULL), 0);
	in6 = (const struct sockaddr_in6 *)&o.listen.addr;
	assert_int_equal(in6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(in6->sin6_port), 1);
	assert_string_equal(inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr)), "::1");
	assert_string_equal(o.listen.text, "[::1]:1");
}

static void test_listen_bad(void **state)
{
	static const char *const bad[] = {
		"", "0", "65536", "-1", "port", "9464x", ":9464", "localhost:9464", "1.2.3:9464",
		"1.2.3.4:", "1.2.3.4:0", "::1:9464", "[::1]", "[::1]:", "[1.2.3.4]:80", "[]:80",
		"[::1:80", " 80", "99999999999999999999999",
	};
	struct mf_opts o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(&o, "--listen", bad[i], NULL) >= 0)
			fail_msg("--listen '%s' was accepted", bad[i]);
	}
}

static void test_quiet(void **state)
{
	struct mf_opts o;

	assert_int_equal(parse(&o, "-q", "--listen", "9464", NULL), 0);
	assert_int_equal(o.output, MF_OUT_NONE);
	assert_int_equal(parse(&o, "--listen", "9464", "--quiet", NULL), 0);
	assert_int_equal(o.output, MF_OUT_NONE);
	assert_true(parse(&o, "-q", NULL) < 0);		/* nothing would be reported */
	assert_true(parse(&o, "-q", "--listen", "9464", "-j", NULL) < 0);
	assert_true(parse(&o, "-b", "-q", "--listen", "9464", NULL) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_pid_single_repeated_list),
		cmocka_unit_test(test_pid_bad),
		cmocka_unit_test(test_pid_too_many),
		cmocka_unit_test(test_interval_count_duration),
		cmocka_unit_test(test_interval_count_duration_bad),
		cmocka_unit_test(test_gpa_range_ok),
		cmocka_unit_test(test_gpa_range_bad),
		cmocka_unit_test(test_output_modes),
		cmocka_unit_test(test_storm_trace_disable),
		cmocka_unit_test(test_help_version_unknown),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_size_roundtrip),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_listen_bad),
		cmocka_unit_test(test_quiet),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
