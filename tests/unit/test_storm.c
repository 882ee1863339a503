// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for src/storm.c (flips, storm flags) and src/trace.c's lines. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "capture.h"
#include <json-c/json.h>
#include "output.h"
#include "storm.h"
#include "trace.h"
#include "vm_stats.h"

/* One VM in a 2 s interval, 2 MiB ranges: 4 ranges with 1, 4, 6 and 0 flips
 * in the interval; 30 faults, requests and conversions (15/s). */
struct fixture {
	struct mf_model m;
	struct mf_vm vm;
	struct mf_flip flips[4];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	static const __u64 now[] = { 3, 10, 6, 2 }, before[] = { 2, 6, 0, 2 };

	if (!fx)
		return -1;
	fx->m.gpa_shift = 21;
	fx->m.prev_ns = 1000000000ULL;
	fx->m.now_ns = 3000000000ULL;
	fx->m.storm_rate = 1000;
	fx->m.storm_flips = 4;
	fx->m.vms = &fx->vm;
	test_vm_stats(&fx->vm);
	fx->m.nr_vms = fx->m.nr_sorted_vms = 1;
	fx->m.flips = fx->flips;
	fx->m.nr_flips = 4;
	fx->vm.id = 7;
	fx->vm.pid = 4242;
	strcpy(fx->vm.ident.name, "wide");
	fx->vm.cur->hist[MF_FAULT_PRIVATE].count = 10;
	fx->vm.cur->hist[MF_MAP_TO_SHARED].count = 12;
	fx->vm.prev->hist[MF_MAP_TO_SHARED].count = 2;
	fx->vm.cur->hist[MF_CONV_TO_PRIVATE].count = 10;
	fx->vm.cur->traffic = 41;	/* active */
	fx->vm.cur->flips = 21;
	fx->vm.prev->flips = 10;
	fx->vm.nr_flips = 4;
	for (int i = 0; i < 4; i++)
		fx->flips[i] = (struct mf_flip){ .vm_id = 7, .range = (__u64)i + 1,
						 .flips = now[i], .prev_flips = before[i] };
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

static void test_storm_flags(void **state)
{
	struct fixture *fx = *state;
	struct mf_storm st;

	mf_vm_storm(&fx->m, &fx->vm, &st);
	assert_true(st.rate == 15.0);
	assert_false(st.by_rate);
	assert_int_equal(st.flips, 11);
	assert_int_equal(st.flapping, 2);	/* 4 and 6 flips reach 4 */
	assert_true(st.storming);

	fx->m.storm_flips = 7;
	mf_vm_storm(&fx->m, &fx->vm, &st);
	assert_false(st.storming);
	fx->m.storm_rate = 15;			/* reached exactly */
	mf_vm_storm(&fx->m, &fx->vm, &st);
	assert_true(st.by_rate && st.storming && !st.flapping);
	fx->m.storm_rate = 0;			/* off */
	fx->m.storm_flips = 0;
	mf_vm_storm(&fx->m, &fx->vm, &st);
	assert_false(st.storming);
}

static void test_top_flips(void **state)
{
	struct fixture *fx = *state;
	const struct mf_flip *top[4];

	assert_int_equal(mf_vm_top_flips(&fx->m, &fx->vm, top, 4), 3);
	assert_int_equal(top[0]->range, 3);
	assert_int_equal(top[1]->range, 2);
	assert_int_equal(top[2]->range, 1);
	assert_int_equal(mf_vm_top_flips(&fx->m, &fx->vm, top, 1), 1);
	assert_int_equal(top[0]->range, 3);
	assert_int_equal(mf_vm_top_flips(&fx->m, &fx->vm, top, 0), 0);
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no key %s in %s", key, json_object_to_json_string(o));
	return v;
}

static void test_json(void **state)
{
	struct fixture *fx = *state;
	char *out = capture(mf_json_print, &fx->m, NULL);
	json_object *rec = json_tokener_parse(out), *vm, *flips, *ranges, *storm;

	assert_non_null(rec);
	assert_int_equal(json_object_get_int(get(get(rec, "storm_thresholds"),
						  "flips_per_interval")), 4);
	vm = json_object_array_get_idx(get(rec, "vms"), 0);
	flips = get(vm, "flips");
	assert_int_equal(json_object_get_int(get(flips, "count")), 11);
	ranges = get(flips, "gpa_ranges");
	assert_int_equal(json_object_array_length(ranges), 3);	/* in GPA order */
	assert_string_equal(json_object_get_string(get(json_object_array_get_idx(ranges, 1),
						       "start")), "0x400000");
	assert_int_equal(json_object_get_int(get(json_object_array_get_idx(ranges, 1), "flips")), 4);
	assert_int_equal(json_object_get_int(get(json_object_array_get_idx(ranges, 1), "total")), 10);
	storm = get(vm, "storm");
	assert_true(json_object_get_boolean(get(storm, "storming")));
	assert_int_equal(json_object_array_length(get(storm, "reasons")), 1);
	assert_string_equal(json_object_get_string(
		json_object_array_get_idx(get(storm, "reasons"), 0)), "flapping");
	assert_int_equal(json_object_get_int(get(storm, "flapping_ranges")), 2);
	json_object_put(rec);
	free(out);
}

static char *trace_line(const struct mf_model *m, const struct mf_event *ev, bool json)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	/* Wall time 0 + 1.5 s: 1970-01-01T00:00:01.500000Z. */
	assert_int_equal(mf_trace_print(f, m, ev, 0, json), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_trace_lines(void **state)
{
	struct fixture *fx = *state;
	const struct mf_event fault = {
		.time_ns = 1500000000ULL, .vm_id = 7, .gpa = 0x40200000, .size = 4096,
		.flags = MF_MEMORY_EXIT_FLAG_PRIVATE, .result = -14, .type = MF_EV_FAULT,
		.vcpu_id = 3, .tid = 99,
	};
	const struct mf_event conv = {
		.time_ns = 1500000000ULL, .vm_id = 8, .gpa = 0x1000, .size = 8192,
		.latency_ns = 3100, .type = MF_EV_CONVERSION, .tid = 98,
	};
	const struct mf_event bogus = { .type = MF_NR_EVENT_TYPES };
	json_object *o;
	char *s;

	setenv("TZ", "UTC", 1);
	s = trace_line(&fx->m, &fault, false);
	assert_string_equal(s, "00:00:01.500000 wide id 7 vcpu 3 fault private gpa 0x40200000"
			    " size 4K flags 0x8 EFAULT\n");
	free(s);
	/* VM 8 is unknown to the model: its line still stands, named "?". */
	s = trace_line(&fx->m, &conv, false);
	assert_string_equal(s, "00:00:01.500000 ? id 8 tid 98 conversion to shared gpa 0x1000"
			    " size 8K ok 3.1us\n");
	free(s);
	s = trace_line(&fx->m, &fault, true);
	o = json_tokener_parse(s);
	assert_non_null(o);
	assert_string_equal(json_object_get_string(get(o, "schema")), "memfaulttop-trace");
	assert_string_equal(json_object_get_string(get(o, "time")), "1970-01-01T00:00:01.500000Z");
	assert_string_equal(json_object_get_string(get(o, "event")), "fault");
	assert_string_equal(json_object_get_string(get(get(o, "vm"), "name")), "wide");
	assert_string_equal(json_object_get_string(get(o, "gpa")), "0x40200000");
	assert_true(json_object_get_boolean(get(o, "private")));
	assert_string_equal(json_object_get_string(get(o, "error")), "EFAULT");
	assert_false(json_object_object_get_ex(o, "latency_ns", NULL));
	json_object_put(o);
	free(s);
	s = trace_line(&fx->m, &bogus, true);
	assert_string_equal(s, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_storm_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_top_flips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trace_lines, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
