// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for src/metrics.c (the Prometheus exposition) on a hand-built
 * model; reaping goes through real, empty BPF maps. */
#define _GNU_SOURCE	/* memmem */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "assert_text.h"
#include "maps.h"
#include "metrics.h"
#include "vm_stats.h"

#define FFFD "\xef\xbf\xbd"
/* 15 bytes: fits MF_COMM_LEN. */
#define HOSTILE_COMM "q\"e\\m\x01u\n\t/\xff\x7f"
/* Quote, backslash, newline; then bytes that are no UTF-8: a lone 0xff, a
 * lead byte before ASCII, a cut 3-byte sequence, a surrogate (ED A0 80), an
 * overlong '/' (C0 AF); a valid 4-byte emoji and a 2-byte e-acute stay. */
#define HOSTILE_NAME "a\"b\\c\nd\xff" "e\xc3(\xe2\x82\xed\xa0\x80\xf0\x9f\x98\x80\xc3\xa9\xc0\xaf"
#define HOSTILE_NAME_LABEL "a\\\"b\\\\c\\nd" FFFD "e" FFFD "(" FFFD FFFD FFFD FFFD FFFD \
	"\xf0\x9f\x98\x80\xc3\xa9" FFFD FFFD

struct fixture {
	struct mf_model m;
	struct mf_vm vms[2];
	struct mf_features feat;
	struct mf_text out;
};

/*
 * VM 1 (pid 1000): hostile comm and name, private faults of several sizes
 * (one below and one above the bucket window), waits, a conversion
 * failure. VM 2 (pid 2000): destroyed, a few IO exits.
 */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct mf_vm_stats *s;

	if (!fx)
		return -1;
	fx->m.vms = fx->vms;
	fx->m.nr_vms = fx->m.nr_sorted_vms = fx->m.cap_vms = 2;
	for (int i = 0; i < 2; i++)
		test_vm_stats(&fx->vms[i]);
	fx->m.drops[MF_DROP_RANGE_TABLE_FULL] = 3;
	for (int i = 0; i < MF_NR_FEATURES; i++)
		fx->feat.available[i] = true;
	fx->feat.available[MF_FEAT_DISCARDS] = false;
	fx->m.features = &fx->feat;

	fx->vms[0].id = 1;
	fx->vms[0].pid = 1000;
	strcpy(fx->vms[0].stats_id, "kvm-1000");
	strcpy(fx->vms[0].ident.comm, HOSTILE_COMM);
	strcpy(fx->vms[0].ident.name, HOSTILE_NAME);
	s = fx->vms[0].cur;
	s->exits[2] = 7;			/* IO */
	s->exits[39] = 13;			/* MEMORY_FAULT */
	s->exits[63] = 2;			/* 63+ */
	s->hist[MF_FAULT_PRIVATE].count = 13;
	s->hist[MF_FAULT_PRIVATE].bytes = 123456;
	s->hist[MF_FAULT_PRIVATE].log2_bytes[5] = 1;	/* 32 B: below the window */
	s->hist[MF_FAULT_PRIVATE].log2_bytes[12] = 6;	/* 4 KiB */
	s->hist[MF_FAULT_PRIVATE].log2_bytes[21] = 4;	/* 2 MiB */
	s->hist[MF_FAULT_PRIVATE].log2_bytes[40] = 2;	/* 1 TiB: above it */
	s->fault_flag_bits[4] = 1;
	s->wait[MF_MAP_TO_PRIVATE].count = 3;
	s->wait[MF_MAP_TO_PRIVATE].total_ns = 1500000000ULL;
	s->wait[MF_MAP_TO_PRIVATE].log2_ns[9] = 1;	/* 512-1023 ns */
	s->wait[MF_MAP_TO_PRIVATE].log2_ns[30] = 2;	/* about a second */
	s->hist[MF_CONV_TO_SHARED].count = 4;
	s->hist[MF_CONV_TO_SHARED].bytes = 4 * 8192;
	s->conv[MF_TO_SHARED].failed = 1;
	s->conv[MF_TO_SHARED].errors[22] = 1;	/* EINVAL */
	s->hist[MF_MAP_TO_PRIVATE].count = 5;		/* exits ... */
	s->map_requests[MF_TO_PRIVATE] = 2;		/* ... of two requests */
	s->flips = 6;
	fx->vms[0].prev->flips = 1;
	fx->m.storm_rate = 10;
	fx->m.storm_flips = 4;
	fx->m.prev_ns = 1000000000ULL;
	fx->m.now_ns = 2000000000ULL;

	fx->vms[1].id = 2;
	fx->vms[1].pid = 2000;
	fx->vms[1].destroyed = true;
	strcpy(fx->vms[1].stats_id, "kvm-2000");
	strcpy(fx->vms[1].ident.comm, "qemu");
	fx->vms[1].cur->exits[2] = 5;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	mf_text_free(&fx->out);
	test_vm_stats_free(&fx->m);
	free(fx);
	return 0;
}

/* The exposition as a NUL-terminated string. */
static const char *render(struct fixture *fx)
{
	char nul = '\0';

	assert_int_equal(mf_metrics_render(&fx->out, &fx->m), 0);
	/* The buffer may hold older, longer text past len: cut it. */
	fx->out.data = realloc(fx->out.data, fx->out.len + 1);
	assert_non_null(fx->out.data);
	fx->out.cap = fx->out.len + 1;
	memcpy(fx->out.data + fx->out.len, &nul, 1);
	return fx->out.data;
}

static void test_families_and_counters(void **state)
{
	const char *out = render(*state);

	assert_contains(out, "# HELP memfaulttop_exits_total ");
	assert_contains(out, "\n# TYPE memfaulttop_exits_total counter\n");
	assert_contains(out, "\nmemfaulttop_exits_total{vm_id=\"1\",reason=\"IO\"} 7\n");
	assert_contains(out, "\nmemfaulttop_exits_total{vm_id=\"1\",reason=\"MEMORY_FAULT\"} 13\n");
	assert_contains(out, "\nmemfaulttop_exits_total{vm_id=\"1\",reason=\"63+\"} 2\n");
	assert_not_contains(out, "reason=\"MMIO\"");	/* no exit of that reason */
	assert_contains(out, "\nmemfaulttop_memory_faults_total{vm_id=\"1\",class=\"private\"} 13\n");
	/* Counters are there from a VM's start, zero or not. */
	assert_contains(out, "\nmemfaulttop_memory_faults_total{vm_id=\"1\",class=\"shared\"} 0\n");
	assert_contains(out, "\nmemfaulttop_memory_faults_total{vm_id=\"2\",class=\"private\"} 0\n");
	assert_contains(out, "\nmemfaulttop_memory_fault_unknown_flags_total{vm_id=\"1\",bit=\"4\"} 1\n");
	assert_contains(out, "\nmemfaulttop_map_gpa_range_requests_total{vm_id=\"2\","
			     "direction=\"to_private\"} 0\n");
	assert_contains(out, "\nmemfaulttop_map_gpa_range_exits_total{vm_id=\"1\","
			     "direction=\"to_private\"} 5\n");
	assert_contains(out, "\nmemfaulttop_map_gpa_range_requests_total{vm_id=\"1\","
			     "direction=\"to_private\"} 2\n");
	assert_contains(out, "\nmemfaulttop_conversions_total{vm_id=\"1\",direction=\"to_shared\"} 4\n");
	assert_contains(out, "\nmemfaulttop_conversion_bytes_total{vm_id=\"1\","
			     "direction=\"to_shared\"} 32768\n");
	assert_contains(out, "\nmemfaulttop_conversion_failures_total{vm_id=\"1\","
			     "direction=\"to_shared\",errno=\"EINVAL\"} 1\n");
	assert_contains(out, "\nmemfaulttop_drops_total{cause=\"range_table_full\"} 3\n");
	assert_contains(out, "\nmemfaulttop_drops_total{cause=\"vm_table_full\"} 0\n");
	assert_contains(out, "\nmemfaulttop_vm_vcpus{vm_id=\"2\"} 0\n");
	assert_contains(out, "\nmemfaulttop_gpa_range_drops_total{vm_id=\"1\"} 0\n");
	assert_contains(out, "\nmemfaulttop_gpa_range_flips_total{vm_id=\"1\"} 6\n");
	/* 13 faults, 5 requests, 4 conversions in a 1 s interval: over --storm 10. */
	assert_contains(out, "\nmemfaulttop_vm_storming{vm_id=\"1\"} 1\n");
	assert_contains(out, "\nmemfaulttop_vm_storming{vm_id=\"2\"} 0\n");
	/* Missing views: said by the gauge, their families left out. */
	assert_contains(out, "\nmemfaulttop_feature_available{feature=\"discards\"} 0\n");
	assert_contains(out, "\nmemfaulttop_feature_available{feature=\"conversions\"} 1\n");
	assert_not_contains(out, "memfaulttop_discard");
	/* Every line is a comment or a sample, and the text ends a line. */
	for (const char *line = out; *line; line = strchr(line, '\n') + 1) {
		if (strncmp(line, "# HELP memfaulttop_", 19) && strncmp(line, "# TYPE memfaulttop_", 19) &&
		    strncmp(line, "memfaulttop_", 12))
			fail_msg("stray line: %.60s", line);
		assert_non_null(strchr(line, '\n'));
	}
}

static void test_hostile_labels(void **state)
{
	const char *out = render(*state);

	assert_contains(out, "\nmemfaulttop_vm_info{vm_id=\"1\",name=\"" HOSTILE_NAME_LABEL
			     "\",pid=\"1000\",comm=\"q\\\"e\\\\m\x01u\\n\t/" FFFD "\x7f\","
			     "stats_id=\"kvm-1000\"} 1\n");
	/* Without a guest name, the name is the kernel's stats id. */
	assert_contains(out, "\nmemfaulttop_vm_info{vm_id=\"2\",name=\"kvm-2000\",pid=\"2000\","
			     "comm=\"qemu\",stats_id=\"kvm-2000\"} 1\n");
}

/* The value of the sample whose text (name and labels) is given. */
static unsigned long long sample_value(const char *out, const char *series)
{
	char needle[256];
	const char *at;

	snprintf(needle, sizeof(needle), "\n%s ", series);
	at = strstr(out, needle);
	if (!at)
		fail_msg("no sample %s", series);
	return strtoull(at + strlen(needle), NULL, 10);
}

static void test_histograms(void **state)
{
	const char *out = render(*state);
	unsigned long long prev = 0;
	int buckets = 0;
	const char *at;

	/* Bytes: le is a slot's largest value, 2^(n+1) - 1. */
	assert_contains(out, "\n# TYPE memfaulttop_memory_fault_size_bytes histogram\n");
#define PRIVATE_BUCKETS "memfaulttop_memory_fault_size_bytes_bucket{vm_id=\"1\",class=\"private\",le=\""
#define BUCKET(le) PRIVATE_BUCKETS le "\"}"
	assert_int_equal(sample_value(out, BUCKET("4095")), 1);
	assert_int_equal(sample_value(out, BUCKET("8191")), 7);
	assert_int_equal(sample_value(out, BUCKET("2097151")), 7);
	assert_int_equal(sample_value(out, BUCKET("4194303")), 11);
	assert_int_equal(sample_value(out, BUCKET("2147483647")), 11);
	assert_int_equal(sample_value(out, BUCKET("+Inf")), 13);
	assert_not_contains(out, BUCKET("2047"));	/* folded into le 4095 */
	assert_not_contains(out, BUCKET("4294967295"));	/* above the window */
	assert_int_equal(sample_value(out, "memfaulttop_memory_fault_size_bytes_count{vm_id=\"1\","
				      "class=\"private\"}"), 13);
	assert_int_equal(sample_value(out, "memfaulttop_memory_fault_size_bytes_sum{vm_id=\"1\","
				      "class=\"private\"}"), 123456);
	/* Cumulative: never decreasing, and +Inf == _count. */
	for (at = strstr(out, PRIVATE_BUCKETS); at; at = strstr(at + 1, PRIVATE_BUCKETS)) {
		unsigned long long v = strtoull(strchr(at, ' ') + 1, NULL, 10);

		assert_true(v >= prev);
		prev = v;
		buckets++;
	}
	assert_int_equal(prev, 13);
	assert_int_equal(buckets, 20 + 1);
#undef BUCKET
#undef PRIVATE_BUCKETS
	/* An empty histogram has no series yet. */
	assert_not_contains(out, "memfaulttop_memory_fault_size_bytes_bucket{vm_id=\"1\",class=\"shared\"");
	assert_not_contains(out, "memfaulttop_memory_fault_size_bytes_count{vm_id=\"2\"");

	/* Seconds, exactly: 2^10 - 1 ns is the first bucket. */
#define WAIT(rest) "memfaulttop_vcpu_wait_seconds" rest
	assert_int_equal(sample_value(out, WAIT("_bucket{vm_id=\"1\",kind=\"to_private\","
						"le=\"0.000001023\"}")), 1);
	assert_int_equal(sample_value(out, WAIT("_bucket{vm_id=\"1\",kind=\"to_private\","
						"le=\"1.073741823\"}")), 1);
	assert_int_equal(sample_value(out, WAIT("_bucket{vm_id=\"1\",kind=\"to_private\","
						"le=\"2.147483647\"}")), 3);
	assert_int_equal(sample_value(out, WAIT("_bucket{vm_id=\"1\",kind=\"to_private\","
						"le=\"34.359738367\"}")), 3);
	assert_int_equal(sample_value(out, WAIT("_bucket{vm_id=\"1\",kind=\"to_private\","
						"le=\"+Inf\"}")), 3);
	assert_contains(out, "\n" WAIT("_sum{vm_id=\"1\",kind=\"to_private\"} 1.500000000\n"));
	assert_contains(out, "\n" WAIT("_count{vm_id=\"1\",kind=\"to_private\"} 3\n"));
#undef WAIT
}

/* As memfaulttop runs: render after the refresh, then reap. */
static void test_destroyed_vm_goes_after_one_render(void **state)
{
	struct fixture *fx = *state;
	const char *out;

	if (test_maps_create(&fx->m.fds))
		fail_msg("cannot create BPF maps");
	out = render(fx);
	assert_contains(out, "memfaulttop_vm_info{vm_id=\"2\"");
	assert_contains(out, "memfaulttop_exits_total{vm_id=\"2\",reason=\"IO\"} 5\n");
	assert_int_equal(mf_model_reap(&fx->m), 0);
	out = render(fx);
	assert_not_contains(out, "vm_id=\"2\"");
	assert_contains(out, "memfaulttop_vm_info{vm_id=\"1\"");
	test_maps_close(&fx->m.fds);
}

static void test_empty_model(void **state)
{
	struct mf_model m = { 0 };
	struct mf_text t = { 0 };

	/* No features (synthetic exits): every view is shown, none is gated. */
	assert_int_equal(mf_metrics_render(&t, &m), 0);
	assert_true(t.len > 0 && t.data[t.len - 1] == '\n');
	assert_null(memmem(t.data, t.len, "feature_available{", 18));
	assert_non_null(memmem(t.data, t.len, "# TYPE memfaulttop_discards_total counter\n", 42));
	assert_non_null(memmem(t.data, t.len, "memfaulttop_drops_total{cause=\"no_vcpu\"} 0\n", 43));
	assert_null(memmem(t.data, t.len, "vm_id=", 6));
	mf_text_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_families_and_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histograms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroyed_vm_goes_after_one_render, setup,
						teardown),
		cmocka_unit_test(test_empty_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
