// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests of the VMM-service views on a hand-built model: conversions,
 * discards and vCPU waits in JSON, text and the live view's VM screen, and
 * the duration and errno labels they share.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <cmocka.h>
#include "capture.h"
#include "hist.h"
#include "live_conversions.h"
#include "output.h"
#include "vm_stats.h"

struct fixture {
	struct mf_model m;
	struct mf_features feat;
	struct mf_vm vm;
	struct mf_range ranges[2];
	struct mf_vcpu vcpus[3];
};

/*
 * One VM, a 2 s interval: 5 conversions to private (3 new, 2 of them failed
 * with EINVAL, 1 with ENOMEM earlier), 16K in 4K calls, in one 2M range; 2
 * to shared; 2 discards of 8K; waits after private faults and MAP to shared;
 * vCPUs 0 (long single wait), 1 (most in all) and 2 (idle this interval).
 */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct mf_vm_stats *c, *p;

	if (!fx)
		return -1;
	fx->m.gpa_shift = 21;
	fx->m.prev_ns = 1000000000ULL;
	fx->m.now_ns = 3000000000ULL;
	fx->m.vms = &fx->vm;
	test_vm_stats(&fx->vm);
	fx->m.nr_vms = 1;
	fx->m.ranges = fx->ranges;
	fx->m.nr_ranges = 2;
	fx->m.vcpus = fx->vcpus;
	fx->m.nr_vcpus = 3;
	strcpy(fx->feat.release, "6.12.0");
	for (int i = 0; i < MF_NR_FEATURES; i++)
		fx->feat.available[i] = true;
	fx->m.features = &fx->feat;

	fx->vm.id = 4;
	fx->vm.pid = 42;
	strcpy(fx->vm.stats_id, "kvm-42");
	strcpy(fx->vm.ident.comm, "vmm");
	c = fx->vm.cur;
	p = fx->vm.prev;
	c->traffic = 9;
	p->traffic = 2;
	c->hist[MF_CONV_TO_PRIVATE].count = 5;
	p->hist[MF_CONV_TO_PRIVATE].count = 2;
	c->hist[MF_CONV_TO_PRIVATE].bytes = 20480;
	p->hist[MF_CONV_TO_PRIVATE].bytes = 8192;
	c->hist[MF_CONV_TO_PRIVATE].log2_bytes[12] = 5;
	p->hist[MF_CONV_TO_PRIVATE].log2_bytes[12] = 2;
	c->hist[MF_CONV_TO_SHARED].count = 2;
	c->hist[MF_CONV_TO_SHARED].bytes = 8192;
	c->hist[MF_CONV_TO_SHARED].log2_bytes[12] = 2;
	c->conv[MF_TO_PRIVATE].failed = 3;
	p->conv[MF_TO_PRIVATE].failed = 1;
	c->conv[MF_TO_PRIVATE].errors[22] = 2;
	c->conv[MF_TO_PRIVATE].errors[12] = 1;
	p->conv[MF_TO_PRIVATE].errors[12] = 1;
	c->conv[MF_TO_PRIVATE].time.count = 5;
	p->conv[MF_TO_PRIVATE].time.count = 2;
	c->conv[MF_TO_PRIVATE].time.total_ns = 9000;
	p->conv[MF_TO_PRIVATE].time.total_ns = 3000;
	c->conv[MF_TO_PRIVATE].time.log2_ns[10] = 5;	/* 1024-2047 ns */
	p->conv[MF_TO_PRIVATE].time.log2_ns[10] = 2;
	c->conv[MF_TO_SHARED].time.count = 2;
	c->conv[MF_TO_SHARED].time.total_ns = 4000;
	c->conv[MF_TO_SHARED].time.log2_ns[10] = 2;
	c->discard.time.count = 2;
	c->discard.time.total_ns = 60000;
	c->discard.time.log2_ns[14] = 2;
	c->discard.bytes = 16384;
	p->discard.bytes = 8192;
	c->wait[MF_FAULT_PRIVATE].count = 3;
	c->wait[MF_FAULT_PRIVATE].total_ns = 3000000;
	c->wait[MF_FAULT_PRIVATE].max_ns = 2000000;
	c->wait[MF_FAULT_PRIVATE].log2_ns[20] = 3;
	c->wait[MF_MAP_TO_SHARED].count = 1;
	c->wait[MF_MAP_TO_SHARED].total_ns = 5000;
	c->wait[MF_MAP_TO_SHARED].log2_ns[12] = 1;
	fx->ranges[0] = (struct mf_range){ .vm_id = 4, .kind = MF_CONV_TO_SHARED, .range = 512,
					   .count = 2, .bytes = 8192 };
	fx->ranges[1] = (struct mf_range){ .vm_id = 4, .kind = MF_CONV_TO_PRIVATE, .range = 512,
					   .count = 5, .prev_count = 2, .bytes = 20480,
					   .prev_bytes = 8192 };
	fx->vm.nr_ranges = 2;
	fx->vcpus[0] = (struct mf_vcpu){ .vm_id = 4, .vcpu_id = 0,
					 .cur = { 1, 2000000, 2000000 } };
	fx->vcpus[1] = (struct mf_vcpu){ .vm_id = 4, .vcpu_id = 1,
					 .cur = { 9, 4000000, 900000 }, .prev = { 6, 1000000, 900000 } };
	fx->vcpus[2] = (struct mf_vcpu){ .vm_id = 4, .vcpu_id = 2,
					 .cur = { 4, 9000000, 3000000 }, .prev = { 4, 9000000, 3000000 } };
	fx->vm.nr_vcpus = 3;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	test_vm_stats_free(&fx->m);
	free(fx);
	return 0;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static __u64 get_u64(json_object *o, const char *key)
{
	return json_object_get_uint64(get(o, key));
}

static void test_labels(void **state)
{
	char a[16], b[16];

	(void)state;
	assert_string_equal(mf_format_ns(0, a, sizeof(a)), "0ns");
	assert_string_equal(mf_format_ns(999, a, sizeof(a)), "999ns");
	assert_string_equal(mf_format_ns(1500, a, sizeof(a)), "1.5us");
	assert_string_equal(mf_format_ns(2500000, a, sizeof(a)), "2.5ms");
	assert_string_equal(mf_format_ns(30000000000ULL, a, sizeof(a)), "30.0s");
	mf_hist_ns_bounds(10, a, b);
	assert_string_equal(a, "1.0us");
	assert_string_equal(b, "2.0us");
	mf_hist_ns_bounds(63, a, b);
	assert_string_equal(b, "max");
	assert_string_equal(mf_errno_name(22, a, sizeof(a)), "EINVAL");
	assert_string_equal(mf_errno_name(MF_ERRNO_SLOTS - 1, a, sizeof(a)), "135+");
}

static void test_json(void **state)
{
	struct fixture *fx = *state;
	char *out = capture(mf_json_print, &fx->m, NULL);
	json_object *rec = json_tokener_parse(out), *vm, *conv, *priv, *errors, *disc, *waits,
		    *worst, *range;

	assert_non_null(rec);
	vm = json_object_array_get_idx(get(rec, "vms"), 0);
	assert_non_null(vm);	/* active: its traffic moved, though it made no exit */
	conv = get(vm, "conversions");
	priv = get(conv, "to_private");
	assert_int_equal(get_u64(priv, "count"), 3);
	assert_int_equal(get_u64(priv, "bytes"), 12288);
	assert_int_equal(get_u64(priv, "pages"), 3);
	assert_int_equal(get_u64(priv, "failed"), 2);
	errors = get(priv, "errors");
	assert_int_equal(json_object_object_length(errors), 1);
	assert_int_equal(get_u64(errors, "EINVAL"), 2);
	assert_int_equal(get_u64(get(priv, "time"), "count"), 3);
	assert_int_equal(get_u64(get(priv, "time"), "total_ns"), 6000);
	range = json_object_array_get_idx(get(get(priv, "time"), "log2_ns"), 0);
	assert_int_equal(get_u64(range, "min_ns"), 1024);
	assert_int_equal(get_u64(range, "max_ns"), 2047);
	assert_int_equal(get_u64(range, "count"), 3);
	range = json_object_array_get_idx(get(priv, "gpa_ranges"), 0);
	assert_string_equal(json_object_get_string(get(range, "start")), "0x40000000");
	assert_int_equal(get_u64(range, "count"), 3);
	assert_int_equal(get_u64(get(conv, "to_shared"), "count"), 2);
	assert_int_equal(get_u64(get(conv, "to_shared"), "failed"), 0);
	disc = get(vm, "discards");
	assert_int_equal(get_u64(disc, "count"), 2);
	assert_int_equal(get_u64(disc, "bytes"), 8192);
	assert_int_equal(get_u64(get(disc, "time"), "count"), 2);
	waits = get(vm, "waits");
	assert_int_equal(get_u64(get(waits, "private"), "count"), 3);
	assert_int_equal(get_u64(get(waits, "to_shared"), "count"), 1);
	assert_int_equal(get_u64(get(waits, "shared"), "count"), 0);
	/* By total wait in the interval: vCPU 1 (3 ms), then 0 (2 ms); 2 was idle. */
	worst = get(waits, "worst_vcpus");
	assert_int_equal(json_object_array_length(worst), 2);
	assert_int_equal(get_u64(json_object_array_get_idx(worst, 0), "vcpu"), 1);
	assert_int_equal(get_u64(json_object_array_get_idx(worst, 0), "count"), 3);
	assert_int_equal(get_u64(json_object_array_get_idx(worst, 0), "total_ns"), 3000000);
	assert_int_equal(get_u64(json_object_array_get_idx(worst, 1), "vcpu"), 0);
	json_object_put(rec);
	free(out);
}

static void test_text(void **state)
{
	struct fixture *fx = *state;
	char *out = capture(mf_text_print, &fx->m, NULL);

	assert_non_null(strstr(out, "  conversions to private 3 (1.5/s, 12K)  failed 2 EINVAL 2\n"));
	assert_non_null(strstr(out, "  conversions to shared 2 (1.0/s, 8K)  failed 0\n"));
	assert_non_null(strstr(out, "  guest_memfd discards 2 (1.0/s, 8K)  failed 0\n"));
	assert_non_null(strstr(out, "  conversions to private, kernel time: 3, average 2.0us:\n"));
	assert_non_null(strstr(out, "  conversions to private by GPA range (2M each):\n"));
	assert_non_null(strstr(out, "  vCPU wait after private faults: 3, average 1.0ms:\n"));
	assert_non_null(strstr(out, "  most waiting: vCPU 1 3.0ms in 3 (max 900.0us), vCPU 0"));
	assert_null(strstr(out, "vCPU wait after shared faults"));
	free(out);
}

struct lines {
	char text[128][160];
	int n;
};

static int take_line(void *ctx, unsigned int attr, const char *text)
{
	struct lines *l = ctx;

	(void)attr;
	if (l->n < 128)
		snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", text);
	return 0;
}

static int find(const struct lines *l, const char *want)
{
	for (int i = 0; i < l->n; i++)
		if (strstr(l->text[i], want))
			return i;
	return -1;
}

static void test_live(void **state)
{
	struct fixture *fx = *state;
	struct lines *l = calloc(1, sizeof(*l));
	int head;

	assert_non_null(l);
	assert_int_equal(mf_live_vmm_service(take_line, l, &fx->m, &fx->vm, NULL, false, 80), 0);
	assert_true(find(l, "conversions to private failed: 3 ENOMEM 1 EINVAL 2") >= 0);
	assert_true(find(l, "guest_memfd discards (hole punches): 2, 16KB, failed 0") >= 0);
	assert_true(find(l, "after private faults: 3, average 1.0ms, longest 2.0ms") >= 0);
	assert_true(find(l, "after shared faults: (none)") >= 0);
	/* Since start by total: 2 (9 ms), 1 (4 ms), 0 (2 ms). */
	head = find(l, "VCPU");
	assert_true(head >= 0);
	assert_non_null(strstr(l->text[head + 1], "     2 "));
	assert_non_null(strstr(l->text[head + 2], "     1 "));
	assert_non_null(strstr(l->text[head + 3], "     0 "));
	/* By longest wait: 2 (3 ms), 0 (2 ms), 1 (900 us). */
	l->n = 0;
	assert_int_equal(mf_live_vmm_service(take_line, l, &fx->m, &fx->vm, NULL, true, 80), 0);
	head = find(l, "VCPU");
	assert_non_null(strstr(l->text[head + 2], "     0 "));
	/* A kernel without the hooks says so instead of showing zeros. */
	fx->feat.available[MF_FEAT_WAIT_LATENCY] = false;
	l->n = 0;
	assert_int_equal(mf_live_vmm_service(take_line, l, &fx->m, &fx->vm, NULL, false, 80), 0);
	assert_true(find(l, "wait_latency unavailable: ") >= 0);
	assert_int_equal(find(l, "VCPU"), -1);
	free(l);
}

/* Found by fuzz_output: a count read ahead of its slots (no slot moved). */
static void test_live_count_without_slots(void **state)
{
	struct fixture *fx = *state;
	struct lines *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	memset(fx->vm.cur->wait[MF_FAULT_SHARED].log2_ns, 0,
	       sizeof(fx->vm.cur->wait[MF_FAULT_SHARED].log2_ns));
	fx->vm.cur->wait[MF_FAULT_SHARED].count = fx->vm.prev->wait[MF_FAULT_SHARED].count + 1;
	fx->vm.cur->wait[MF_FAULT_SHARED].total_ns = 1000;
	assert_int_equal(mf_live_vmm_service(take_line, l, &fx->m, &fx->vm, NULL, false, 80), 0);
	assert_true(find(l, "after shared faults: 1, average 1.0us") >= 0);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_labels),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_count_without_slots, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
