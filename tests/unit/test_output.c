// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for src/output_text.c and src/output_json.c on a hand-built model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <cmocka.h>
#include "capture.h"
#include "assert_text.h"
#include "output.h"
#include "vm_stats.h"

#define K 1024ULL
#define M (1024ULL * K)
#define WEIRD_COMM "q\"e\\m\x01u\n\t/\x7f"	/* 14 chars: fits MF_COMM_LEN */
#define WEIRD_NAME "vm \"one\" \\ two\x1f\r\nend"

struct fixture {
	struct mf_model m;
	struct mf_vm vms[3];
	struct mf_range ranges[6];
};

static void add_range(struct fixture *fx, size_t *n, __u64 vm_id, enum mf_kind kind,
		      __u64 range, __u64 count, __u64 prev_count, __u64 bytes, __u64 prev_bytes)
{
	fx->ranges[*n] = (struct mf_range){
		.vm_id = vm_id, .kind = kind, .range = range,
		.count = count, .prev_count = prev_count,
		.bytes = bytes, .prev_bytes = prev_bytes,
	};
	(*n)++;
}

/*
 * VM 1 "guest1" (pid 1000): busy, every kind of traffic, deltas against
 * non-zero previous totals. VM 2 (pid 2000): destroyed, no traffic in the
 * interval. VM 3 (pid 3000): idle, totals but no delta; must be omitted.
 */
static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct mf_vm *a, *b, *c;
	struct mf_vm_stats *cur, *prev;
	size_t n = 0;

	if (!fx)
		return -1;
	fx->m.gpa_shift = 21;		/* 2M ranges */
	fx->m.prev_ns = 5000000000ULL;
	fx->m.now_ns = 7000000000ULL;	/* a 2 s interval */
	fx->m.drops[MF_DROP_VM_TABLE_FULL] = 10;
	fx->m.prev_drops[MF_DROP_VM_TABLE_FULL] = 4;
	fx->m.drops[MF_DROP_NO_VCPU] = 1;
	fx->m.prev_drops[MF_DROP_NO_VCPU] = 1;
	fx->m.vms = fx->vms;
	fx->m.nr_vms = fx->m.cap_vms = 3;
	for (int i = 0; i < 3; i++)
		test_vm_stats(&fx->vms[i]);
	fx->m.ranges = fx->ranges;

	a = &fx->vms[0];
	a->id = 1;
	a->kvm = 0xffff888012345000ULL;
	a->pid = 1000;
	strcpy(a->stats_id, "kvm-1000");
	strcpy(a->ident.comm, WEIRD_COMM);
	strcpy(a->ident.name, "guest1");
	cur = a->cur;
	prev = a->prev;
	cur->exits[2] = 10;	prev->exits[2] = 4;	/* IO 6 */
	cur->exits[6] = 5;	prev->exits[6] = 5;	/* MMIO, no delta */
	cur->exits[3] = 4;				/* HYPERCALL 4 */
	cur->exits[39] = 20;				/* MEMORY_FAULT 20 */
	cur->exits[50] = 3;				/* unnamed */
	cur->exits[63] = 9;	prev->exits[63] = 7;	/* 63+ 2 */
	/* private: 6 x 4K in slot 12, 4 x 2M in slot 21 */
	cur->hist[MF_FAULT_PRIVATE].count = 12;
	prev->hist[MF_FAULT_PRIVATE].count = 2;
	cur->hist[MF_FAULT_PRIVATE].bytes = 8 * 4 * K + 4 * 2 * M;
	prev->hist[MF_FAULT_PRIVATE].bytes = 2 * 4 * K;
	cur->hist[MF_FAULT_PRIVATE].log2_bytes[12] = 8;
	prev->hist[MF_FAULT_PRIVATE].log2_bytes[12] = 2;
	cur->hist[MF_FAULT_PRIVATE].log2_bytes[21] = 4;
	/* shared: one of size 0 (slot 0), 7 x 8K (slot 13) */
	cur->hist[MF_FAULT_SHARED].count = 8;
	cur->hist[MF_FAULT_SHARED].bytes = 7 * 8 * K;
	cur->hist[MF_FAULT_SHARED].log2_bytes[0] = 1;
	cur->hist[MF_FAULT_SHARED].log2_bytes[13] = 7;
	/* MAP_GPA_RANGE: 2 x 2M to private, 1 x 4K to shared */
	cur->hist[MF_MAP_TO_PRIVATE].count = 2;
	cur->hist[MF_MAP_TO_PRIVATE].bytes = 4 * M;
	cur->hist[MF_MAP_TO_PRIVATE].log2_bytes[21] = 2;
	cur->hist[MF_MAP_TO_SHARED].count = 3;
	prev->hist[MF_MAP_TO_SHARED].count = 2;
	cur->hist[MF_MAP_TO_SHARED].bytes = 12 * K;
	prev->hist[MF_MAP_TO_SHARED].bytes = 8 * K;
	cur->hist[MF_MAP_TO_SHARED].log2_bytes[12] = 3;
	prev->hist[MF_MAP_TO_SHARED].log2_bytes[12] = 2;
	cur->map_requests[MF_TO_PRIVATE] = 1;	/* the two 2M exits were one request */
	cur->map_requests[MF_TO_SHARED] = 3;
	prev->map_requests[MF_TO_SHARED] = 2;
	cur->fault_flag_bits[5] = 3;
	cur->fault_flag_bits[40] = 2;	prev->fault_flag_bits[40] = 1;
	cur->fault_flag_bits[7] = 9;	prev->fault_flag_bits[7] = 9;	/* no delta */
	cur->range_drops = 5;		prev->range_drops = 2;
	cur->vcpus[0] = 0xf;		/* vCPUs 0-3 */
	cur->vcpus[1] = 1;		/* vCPU 64 */
	prev->vcpus[0] = 0x3;

	/* Ranges sorted by (vm_id, kind, range): SHARED < PRIVATE < TO_SHARED < TO_PRIVATE. */
	a->first_range = n;
	add_range(fx, &n, 1, MF_FAULT_SHARED, 0, 8, 0, 56 * K, 0);
	add_range(fx, &n, 1, MF_FAULT_PRIVATE, 1, 7, 1, 8 * 4 * K, 2 * 4 * K);
	add_range(fx, &n, 1, MF_FAULT_PRIVATE, 5, 3, 3, 12 * K, 12 * K);	/* no delta */
	add_range(fx, &n, 1, MF_FAULT_PRIVATE, 0x80000, 4, 0, 8 * M, 0);	/* at 1T */
	add_range(fx, &n, 1, MF_MAP_TO_SHARED, 2, 3, 2, 12 * K, 8 * K);
	add_range(fx, &n, 1, MF_MAP_TO_PRIVATE, 3, 2, 0, 4 * M, 0);
	a->nr_ranges = n - a->first_range;
	fx->m.nr_ranges = fx->m.cap_ranges = n;

	b = &fx->vms[1];
	b->id = 2;
	b->pid = 2000;
	b->destroyed = true;
	b->cur->exits[2] = 3;
	b->prev->exits[2] = 3;
	b->cur->vcpus[0] = b->prev->vcpus[0] = 1;
	b->first_range = n;

	c = &fx->vms[2];
	c->id = 3;
	c->pid = 3000;
	strcpy(c->stats_id, "kvm-3000");
	strcpy(c->ident.name, "idle");
	c->cur->exits[2] = c->prev->exits[2] = 100;
	c->cur->hist[MF_FAULT_PRIVATE].count = c->prev->hist[MF_FAULT_PRIVATE].count = 1;
	c->cur->range_drops = c->prev->range_drops = 4;
	c->first_range = n;

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

/* ---- text ---- */

static void test_text(void **state)
{
	struct fixture *fx = *state;
	char *out = capture(mf_text_print, &fx->m, NULL);
	const char *vm1, *vm2;

	assert_contains(out, "  2 active VMs of 3, interval 2.00s\n");
	assert_contains(out, "\n  VM table full: exits not counted: 6\n");
	assert_not_contains(out, "GPA-range table full: range updates lost");
	assert_not_contains(out, "vCPU was not found");

	/* VM header with name and pid; the comm is printed raw. */
	vm1 = strstr(out, "VM guest1  pid 1000  comm ");
	assert_non_null(vm1);
	assert_contains(vm1, "  id 1  vcpus 5\n");
	/* Exits by name, unnamed ones by number, the last slot as "63+". */
	assert_contains(out, "  exits 35 (17.5/s)  IO 6  HYPERCALL 4  MEMORY_FAULT 20"
			     "  reason 50 3  reason 63+ 2\n");
	assert_not_contains(out, "MMIO");
	assert_contains(out, "  private faults 10 (5.0/s, 8.0M)  shared faults 8 (4.0/s, 56K)\n");
	assert_contains(out, "  UNKNOWN memory-fault flags: bit 5: 3, bit 40: 1\n");
	assert_not_contains(out, "bit 7:");
	assert_contains(out, "  MAP_GPA_RANGE to private 2 (1.0/s, 4M) in 1 requests"
			     "  MAP_GPA_RANGE to shared 1 (0.5/s, 4K) in 1 requests\n");

	/* Histograms. */
	assert_contains(out, "  shared faults by size:\n");
	assert_contains(out, "           0 -> 2       : 1         |");
	assert_contains(out, "          8K -> 16K     : 7         |");
	assert_contains(out, "  private faults by size:\n");
	assert_contains(out, "          4K -> 8K      : 6         |");
	assert_contains(out, "          2M -> 4M      : 4         |");
	assert_contains(out, "  MAP_GPA_RANGE to private by size:\n");
	assert_contains(out, "  MAP_GPA_RANGE to shared by size:\n");

	/* GPA ranges with shift 21: bounds in hex, only ranges with a delta. */
	assert_contains(out, "  private faults by GPA range (2M each):\n");
	assert_contains(out, "    0x0000000000200000-0x00000000003fffff          6  24K\n");
	assert_contains(out, "    0x0000010000000000-0x00000100001fffff          4  8M\n");
	assert_not_contains(out, "0x0000000000a00000");	/* range 5: no delta */
	assert_contains(out, "  shared faults by GPA range (2M each):\n");
	assert_contains(out, "    0x0000000000000000-0x00000000001fffff          8  56K\n");
	assert_contains(out, "    0x0000000000400000-0x00000000005fffff          1  4K\n");
	assert_contains(out, "    0x0000000000600000-0x00000000007fffff          2  4M\n");
	assert_contains(out, "  GPA-range table full: 3 updates lost\n");

	/* The destroyed VM, after the busy one, named by its pid. */
	vm2 = strstr(out, "VM kvm-2000  pid 2000  comm ?  id 2  vcpus 1  (destroyed)\n");
	assert_non_null(vm2);
	assert_true(vm2 > vm1);
	assert_contains(vm2, "  exits 0 (0.0/s)\n");
	assert_contains(vm2, "  private faults 0 (0.0/s, 0)  shared faults 0 (0.0/s, 0)\n");

	/* The idle VM is left out. */
	assert_not_contains(out, "pid 3000");
	assert_not_contains(out, "idle");

	/* The report ends with a blank line. */
	assert_true(strlen(out) >= 2);
	assert_string_equal(out + strlen(out) - 2, "\n\n");
	free(out);
}

static void test_text_gpa_shift(void **state)
{
	struct fixture *fx = *state;
	char *out;

	fx->m.gpa_shift = 30;
	out = capture(mf_text_print, &fx->m, NULL);
	assert_contains(out, "  private faults by GPA range (1G each):\n");
	assert_contains(out, "    0x0000000040000000-0x000000007fffffff          6  24K\n");
	/* range 0x80000 << 30 = 2^49 */
	assert_contains(out, "    0x0002000000000000-0x000200003fffffff          4  8M\n");
	free(out);

	fx->m.gpa_shift = 12;
	out = capture(mf_text_print, &fx->m, NULL);
	assert_contains(out, "  private faults by GPA range (4K each):\n");
	assert_contains(out, "    0x0000000000001000-0x0000000000001fff          6  24K\n");
	free(out);
}

static void test_text_empty_model(void **state)
{
	struct mf_model m = { .now_ns = 1000000000ULL };
	char *out = capture(mf_text_print, &m, NULL);

	assert_contains(out, "  0 active VMs of 0, interval 1.00s\n");
	assert_int_equal(strchr(out, '\n')[1], '\n');	/* header, blank line */
	assert_int_equal(strchr(out, '\n')[2], '\0');
	free(out);

	m.prev_ns = m.now_ns;	/* zero interval: rates are 0, not NaN or inf */
	free(capture(mf_text_print, &m, NULL));
}

/* ---- JSON ---- */

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no key \"%s\" in %s", key, json_object_to_json_string(o));
	return v;
}

static uint64_t get_u64(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_uint64(v);
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static void assert_hex(const char *s)
{
	assert_true(s[0] == '0' && s[1] == 'x' && s[2]);
	for (s += 2; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			fail_msg("not a lowercase hex GPA: %s", s);
}

/* Parses exactly one NDJSON line. */
static json_object *parse_record(const char *out, size_t len)
{
	enum json_tokener_error jerr;
	json_tokener *tok;
	json_object *rec;

	assert_true(len > 2);
	assert_int_equal(strlen(out), len);
	assert_int_equal(out[len - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + len - 1);	/* one line */
	assert_null(strchr(out, '\r'));
	tok = json_tokener_new();
	rec = json_tokener_parse_ex(tok, out, (int)len - 1);
	jerr = json_tokener_get_error(tok);
	if (!rec || jerr != json_tokener_success)
		fail_msg("bad JSON (%s): %s", json_tokener_error_desc(jerr), out);
	/* The whole line is one object, nothing after it. */
	assert_int_equal(json_tokener_get_parse_end(tok), len - 1);
	json_tokener_free(tok);
	assert_true(json_object_is_type(rec, json_type_object));
	return rec;
}

static void check_slot(json_object *sizes, size_t i, uint64_t min, uint64_t max, uint64_t count)
{
	json_object *slot = json_object_array_get_idx(sizes, i);

	assert_non_null(slot);
	assert_int_equal(get_u64(slot, "min_bytes"), min);
	assert_int_equal(get_u64(slot, "max_bytes"), max);
	assert_int_equal(get_u64(slot, "count"), count);
}

static void check_range(json_object *ranges, size_t i, const char *start, const char *end,
			uint64_t count, uint64_t bytes)
{
	json_object *r = json_object_array_get_idx(ranges, i);

	assert_non_null(r);
	assert_hex(get_str(r, "start"));
	assert_hex(get_str(r, "end"));
	assert_string_equal(get_str(r, "start"), start);
	assert_string_equal(get_str(r, "end"), end);
	assert_int_equal(get_u64(r, "count"), count);
	assert_int_equal(get_u64(r, "bytes"), bytes);
}

static void test_json(void **state)
{
	struct fixture *fx = *state;
	json_object *rec, *vms, *vm, *exits, *by, *faults, *k, *bits, *maps, *drops;
	size_t len;
	char *out = capture(mf_json_print, &fx->m, &len);

	rec = parse_record(out, len);
	assert_string_equal(get_str(rec, "schema"), "memfaulttop");
	assert_int_equal(get_u64(rec, "version"), 1);
	assert_int_equal(strlen(get_str(rec, "time")), strlen("2024-01-01T00:00:00Z"));
	assert_int_equal(get_u64(rec, "interval_ns"), 2000000000ULL);
	assert_int_equal(get_u64(rec, "gpa_range_bytes"), 2 * M);
	drops = get(rec, "drops");
	assert_int_equal(get_u64(drops, "vm_table_full"), 6);
	assert_int_equal(get_u64(drops, "range_table_full"), 0);
	assert_int_equal(get_u64(drops, "no_vcpu"), 0);

	/* Only the active VMs: the busy one and the destroyed one. */
	vms = get(rec, "vms");
	assert_true(json_object_is_type(vms, json_type_array));
	assert_int_equal(json_object_array_length(vms), 2);

	vm = json_object_array_get_idx(vms, 0);
	assert_int_equal(get_u64(vm, "id"), 1);
	assert_int_equal(get_u64(vm, "pid"), 1000);
	assert_string_equal(get_str(vm, "comm"), WEIRD_COMM);	/* escaped, round-trips */
	assert_string_equal(get_str(vm, "name"), "guest1");
	assert_string_equal(get_str(vm, "stats_id"), "kvm-1000");
	assert_false(json_object_get_boolean(get(vm, "destroyed")));
	assert_int_equal(get_u64(vm, "vcpus"), 5);
	assert_int_equal(get_u64(vm, "range_drops"), 3);

	exits = get(vm, "exits");
	assert_int_equal(get_u64(exits, "total"), 35);
	by = get(exits, "by_reason");
	assert_int_equal(json_object_object_length(by), 5);
	assert_int_equal(get_u64(by, "IO"), 6);
	assert_int_equal(get_u64(by, "HYPERCALL"), 4);
	assert_int_equal(get_u64(by, "MEMORY_FAULT"), 20);
	assert_int_equal(get_u64(by, "50"), 3);
	assert_int_equal(get_u64(by, "63+"), 2);

	faults = get(vm, "memory_faults");
	k = get(faults, "private");
	assert_int_equal(get_u64(k, "count"), 10);
	assert_int_equal(get_u64(k, "bytes"), 6 * 4 * K + 8 * M);
	assert_int_equal(json_object_array_length(get(k, "sizes")), 2);
	check_slot(get(k, "sizes"), 0, 4 * K, 8 * K - 1, 6);
	check_slot(get(k, "sizes"), 1, 2 * M, 4 * M - 1, 4);
	assert_int_equal(json_object_array_length(get(k, "gpa_ranges")), 2);
	check_range(get(k, "gpa_ranges"), 0, "0x200000", "0x3fffff", 6, 24 * K);
	check_range(get(k, "gpa_ranges"), 1, "0x10000000000", "0x100001fffff", 4, 8 * M);

	k = get(faults, "shared");
	assert_int_equal(get_u64(k, "count"), 8);
	assert_int_equal(get_u64(k, "bytes"), 56 * K);
	assert_int_equal(json_object_array_length(get(k, "sizes")), 2);
	check_slot(get(k, "sizes"), 0, 0, 1, 1);
	check_slot(get(k, "sizes"), 1, 8 * K, 16 * K - 1, 7);
	assert_int_equal(json_object_array_length(get(k, "gpa_ranges")), 1);
	check_range(get(k, "gpa_ranges"), 0, "0x0", "0x1fffff", 8, 56 * K);

	bits = get(faults, "unknown_flag_bits");
	assert_int_equal(json_object_object_length(bits), 2);
	assert_int_equal(get_u64(bits, "5"), 3);
	assert_int_equal(get_u64(bits, "40"), 1);

	maps = get(vm, "map_gpa_range");
	k = get(maps, "to_private");
	assert_int_equal(get_u64(k, "count"), 2);
	assert_int_equal(get_u64(k, "bytes"), 4 * M);
	assert_int_equal(get_u64(k, "pages"), 1024);
	check_slot(get(k, "sizes"), 0, 2 * M, 4 * M - 1, 2);
	check_range(get(k, "gpa_ranges"), 0, "0x600000", "0x7fffff", 2, 4 * M);
	k = get(maps, "to_shared");
	assert_int_equal(get_u64(k, "count"), 1);
	assert_int_equal(get_u64(k, "bytes"), 4 * K);
	assert_int_equal(get_u64(k, "pages"), 1);
	assert_int_equal(json_object_array_length(get(k, "sizes")), 1);
	check_slot(get(k, "sizes"), 0, 4 * K, 8 * K - 1, 1);
	check_range(get(k, "gpa_ranges"), 0, "0x400000", "0x5fffff", 1, 4 * K);

	vm = json_object_array_get_idx(vms, 1);
	assert_int_equal(get_u64(vm, "id"), 2);
	assert_int_equal(get_u64(vm, "pid"), 2000);
	assert_true(json_object_get_boolean(get(vm, "destroyed")));
	assert_string_equal(get_str(vm, "name"), "kvm-2000");
	assert_string_equal(get_str(vm, "comm"), "");
	assert_int_equal(get_u64(get(vm, "exits"), "total"), 0);
	assert_int_equal(json_object_object_length(get(get(vm, "exits"), "by_reason")), 0);
	assert_int_equal(get_u64(get(get(vm, "memory_faults"), "private"), "count"), 0);
	assert_int_equal(json_object_array_length(
		get(get(get(vm, "memory_faults"), "private"), "gpa_ranges")), 0);

	json_object_put(rec);
	free(out);
}

static void test_json_escaping(void **state)
{
	struct fixture *fx = *state;
	json_object *rec, *vm;
	size_t len;
	char *out;

	strcpy(fx->vms[0].ident.name, WEIRD_NAME);
	out = capture(mf_json_print, &fx->m, &len);
	rec = parse_record(out, len);
	/* No raw control characters anywhere in the line but its end. */
	for (size_t i = 0; i + 1 < len; i++)
		if ((unsigned char)out[i] < 0x20)
			fail_msg("raw control char 0x%02x at %zu: %s", out[i], i, out);
	vm = json_object_array_get_idx(get(rec, "vms"), 0);
	assert_string_equal(get_str(vm, "name"), WEIRD_NAME);
	assert_string_equal(get_str(vm, "comm"), WEIRD_COMM);
	json_object_put(rec);
	free(out);
}

static void test_json_gpa_shift_and_big_gpas(void **state)
{
	struct fixture *fx = *state;
	json_object *rec, *ranges;
	size_t len;
	char *out;

	/* 4P ranges: GPAs beyond 2^53, up to the very top of the 64-bit space... */
	fx->m.gpa_shift = 52;
	fx->ranges[3].range = 0xfff;
	out = capture(mf_json_print, &fx->m, &len);
	rec = parse_record(out, len);
	assert_int_equal(get_u64(rec, "gpa_range_bytes"), 1ULL << 52);
	ranges = get(get(get(json_object_array_get_idx(get(rec, "vms"), 0), "memory_faults"),
			 "private"), "gpa_ranges");
	check_range(ranges, 0, "0x10000000000000", "0x1fffffffffffff", 6, 24 * K);
	/* ...strings keep every bit: 0xfff << 52 .. 2^64 - 1. */
	check_range(ranges, 1, "0xfff0000000000000", "0xffffffffffffffff", 4, 8 * M);
	json_object_put(rec);
	free(out);
}

static void test_json_empty_model(void **state)
{
	struct mf_model m = { .gpa_shift = 30, .prev_ns = 1, .now_ns = 11 };
	json_object *rec;
	size_t len;
	char *out = capture(mf_json_print, &m, &len);

	rec = parse_record(out, len);
	assert_int_equal(get_u64(rec, "interval_ns"), 10);
	assert_int_equal(get_u64(rec, "gpa_range_bytes"), 1ULL << 30);
	assert_int_equal(json_object_array_length(get(rec, "vms")), 0);
	json_object_put(rec);
	free(out);
}

/* What the kernel lacks: in every JSON record, and once in text. */
static void test_kernel_features(void **state)
{
	struct mf_features feat = { .release = "6.1.0-56-amd64" };
	struct mf_model m = { .gpa_shift = 30, .features = &feat };
	json_object *rec, *kernel, *avail, *missing;
	char *out;
	size_t len;

	for (int i = MF_FEAT_DESTROY_HOOK; i < MF_NR_FEATURES; i++)
		feat.available[i] = true;
	out = capture(mf_json_print, &m, &len);
	rec = parse_record(out, len);
	kernel = get(rec, "kernel");
	assert_string_equal(get_str(kernel, "release"), "6.1.0-56-amd64");
	avail = get(kernel, "features");
	assert_int_equal(json_object_object_length(avail), MF_NR_FEATURES);
	assert_false(json_object_get_boolean(get(avail, "memory_fault_info")));
	assert_true(json_object_get_boolean(get(avail, "destroy_hook")));
	missing = get(kernel, "unavailable");
	assert_int_equal(json_object_object_length(missing), 1);
	assert_string_equal(get_str(missing, "memory_fault_info"),
			    mf_feature_why(&feat, MF_FEAT_MEMORY_FAULT_INFO));
	json_object_put(rec);
	free(out);

	out = capture(mf_text_print, &m, NULL);
	assert_non_null(strstr(out, "  kernel 6.1.0-56-amd64: memory_fault_info unavailable: "));
	assert_null(strstr(out, "destroy_hook"));
	free(out);
	m.now_ns = m.prev_ns = 1000;	/* a later report: said once is enough */
	m.start_ns = 1;
	out = capture(mf_text_print, &m, NULL);
	assert_null(strstr(out, "unavailable"));
	free(out);
}

/* Two records in a row are two lines: NDJSON. */
static void test_json_ndjson(void **state)
{
	struct fixture *fx = *state;
	char *buf = NULL, *nl;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(mf_json_print(f, &fx->m), 0);
	assert_int_equal(mf_json_print(f, &fx->m), 0);
	assert_int_equal(fclose(f), 0);
	nl = strchr(buf, '\n');
	assert_non_null(nl);
	json_object_put(parse_record(nl + 1, len - (size_t)(nl + 1 - buf)));
	nl[1] = '\0';
	json_object_put(parse_record(buf, (size_t)(nl + 1 - buf)));
	free(buf);
}

/* A full output is reported, not silently truncated. */
static void test_write_errors(void **state)
{
	struct fixture *fx = *state;
	char small[64];
	FILE *f;

	f = fmemopen(small, sizeof(small), "w");
	assert_non_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	assert_int_equal(mf_json_print(f, &fx->m), -EIO);
	fclose(f);

	f = fmemopen(small, sizeof(small), "w");
	assert_non_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	assert_int_equal(mf_text_print(f, &fx->m), -EIO);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_gpa_shift, setup, teardown),
		cmocka_unit_test(test_text_empty_model),
		cmocka_unit_test_setup_teardown(test_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_gpa_shift_and_big_gpas, setup, teardown),
		cmocka_unit_test(test_json_empty_model),
		cmocka_unit_test_setup_teardown(test_json_ndjson, setup, teardown),
		cmocka_unit_test(test_kernel_features),
		cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
