// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for src/hist.c: log2 histogram deltas and rendering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "hist.h"

/* Renders slots into a heap string (caller frees). */
static char *render(const __u64 slots[MF_LOG2_SLOTS], const char *indent, int width)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	mf_hist_print(f, slots, indent, width);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The stars between the '|' bars of the line holding label. */
static int stars_of(const char *out, const char *label)
{
	const char *line = strstr(out, label), *bar, *p;
	int n = 0;

	if (!line)
		fail_msg("no line with \"%s\" in:\n%s", label, out);
	bar = strchr(line, '|');
	assert_non_null(bar);
	for (p = bar + 1; *p == '*'; p++)
		n++;
	return n;
}

static void test_empty(void **state)
{
	__u64 slots[MF_LOG2_SLOTS] = { 0 };
	char *out = render(slots, "  ", 40);

	assert_string_equal(out, "");
	free(out);
}

static void test_single_slot(void **state)
{
	__u64 slots[MF_LOG2_SLOTS] = { 0 };
	char expect[256], bar[41];
	char *out;

	slots[12] = 7;
	out = render(slots, "    ", 40);
	memset(bar, '*', 40);
	bar[40] = '\0';
	snprintf(expect, sizeof(expect), "    %8s -> %-8s: %-10s|%s|\n", "4K", "8K", "7", bar);
	assert_string_equal(out, expect);
	assert_int_equal(count_lines(out), 1);
	free(out);
}

static void test_slot0_and_labels(void **state)
{
	__u64 slots[MF_LOG2_SLOTS] = { 0 };
	char *out;

	slots[0] = 1;	/* sizes 0 and 1 */
	out = render(slots, "", 10);
	assert_non_null(strstr(out, "       0 -> 2       : 1         |**********|\n"));
	assert_int_equal(count_lines(out), 1);
	free(out);

	slots[3] = 2;	/* the span 0..3 is printed, empty slots with empty bars */
	out = render(slots, "", 10);
	assert_int_equal(count_lines(out), 4);
	assert_non_null(strstr(out, "       0 -> 2       : 1         |*****     |\n"));
	assert_non_null(strstr(out, "       2 -> 4       : 0         |          |\n"));
	assert_non_null(strstr(out, "       4 -> 8       : 0         |          |\n"));
	assert_non_null(strstr(out, "       8 -> 16      : 2         |**********|\n"));
	free(out);

	memset(slots, 0, sizeof(slots));
	slots[10] = slots[20] = slots[30] = slots[40] = slots[50] = slots[60] = 1;
	slots[9] = 1;
	out = render(slots, "", 1);
	assert_non_null(strstr(out, "     512 -> 1K      :"));
	assert_non_null(strstr(out, "      1K -> 2K      :"));
	assert_non_null(strstr(out, "      1M -> 2M      :"));
	assert_non_null(strstr(out, "      1G -> 2G      :"));
	assert_non_null(strstr(out, "      1T -> 2T      :"));
	assert_non_null(strstr(out, "      1P -> 2P      :"));
	assert_non_null(strstr(out, "      1E -> 2E      :"));
	assert_int_equal(count_lines(out), 60 - 9 + 1);
	free(out);
}

static void test_slot63(void **state)
{
	__u64 slots[MF_LOG2_SLOTS] = { 0 };
	char *out;

	slots[63] = 5;
	out = render(slots, "", 4);
	assert_string_equal(out, "      8E -> max     : 5         |****|\n");
	free(out);

	slots[62] = 10;
	out = render(slots, "", 4);
	assert_string_equal(out, "      4E -> 8E      : 10        |****|\n"
				 "      8E -> max     : 5         |**  |\n");
	free(out);
}

static void test_bar_widths(void **state)
{
	__u64 slots[MF_LOG2_SLOTS] = { 0 };
	char *out;

	slots[12] = 100;	/* max: full width */
	slots[13] = 50;		/* half */
	slots[14] = 25;		/* quarter */
	slots[15] = 1;		/* tiny but visible: rounds up to one star */
	slots[17] = 99;
	out = render(slots, "", 40);
	assert_int_equal(stars_of(out, "4K -> 8K"), 40);
	assert_int_equal(stars_of(out, "8K -> 16K"), 20);
	assert_int_equal(stars_of(out, "16K -> 32K"), 10);
	assert_int_equal(stars_of(out, "32K -> 64K"), 1);
	assert_int_equal(stars_of(out, "64K -> 128K"), 0);
	assert_int_equal(stars_of(out, "128K -> 256K"), 40);	/* 99/100 rounds up */
	assert_int_equal(count_lines(out), 6);
	/* Every bar is padded to the same width. */
	for (char *line = out; *line; line = strchr(line, '\n') + 1) {
		char *open = strchr(line, '|'), *close = strchr(open + 1, '|');

		assert_int_equal(close - open - 1, 40);
	}
	free(out);

	/* Big counts do not overflow the scaling. */
	memset(slots, 0, sizeof(slots));
	slots[20] = 1ULL << 40;
	slots[21] = 1ULL << 39;
	out = render(slots, "", 40);
	assert_int_equal(stars_of(out, "1M -> 2M"), 40);
	assert_int_equal(stars_of(out, "2M -> 4M"), 20);
	free(out);

	/* Widths beyond the internal buffer are clamped, not overflowed. */
	memset(slots, 0, sizeof(slots));
	slots[12] = 3;
	out = render(slots, "", 1000);
	assert_true(stars_of(out, "4K -> 8K") > 0);
	assert_true(stars_of(out, "4K -> 8K") < 256);
	free(out);

	/* Width 0: no stars at all. */
	out = render(slots, "", 0);
	assert_string_equal(out, "      4K -> 8K      : 3         ||\n");
	free(out);
}

static void test_delta(void **state)
{
	struct mf_hist cur = { 0 }, prev = { 0 };
	__u64 out[MF_LOG2_SLOTS];

	cur.log2_bytes[0] = 5;
	cur.log2_bytes[12] = 10;
	cur.log2_bytes[63] = 7;
	prev.log2_bytes[12] = 4;
	prev.log2_bytes[63] = 7;
	mf_hist_delta(&cur, &prev, out);
	assert_int_equal(out[0], 5);
	assert_int_equal(out[12], 6);
	assert_int_equal(out[63], 0);
	for (int i = 1; i < 63; i++)
		if (i != 12)
			assert_int_equal(out[i], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_single_slot),
		cmocka_unit_test(test_slot0_and_labels),
		cmocka_unit_test(test_slot63),
		cmocka_unit_test(test_bar_widths),
		cmocka_unit_test(test_delta),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
