// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for src/live_view.c: the live view rendered without a terminal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "live_view.h"
#include "vm_stats.h"

#define SEC 1000000000ULL
#define MAX_VMS 400

struct fixture {
	struct mf_model m;
	struct mf_vm vms[MAX_VMS];
	struct mf_range ranges[8];
	struct mf_live_view v;
	struct mf_live_frame f;
};

/* A VM whose last interval (1 s) had io IO exits and the given faults. */
static struct mf_vm *add_vm(struct fixture *fx, pid_t pid, const char *name, __u64 io,
			    __u64 private_faults, __u64 shared_faults)
{
	struct mf_vm *vm = &fx->vms[fx->m.nr_vms++];

	memset(vm, 0, sizeof(*vm));
	test_vm_stats(vm);
	vm->id = fx->m.nr_vms;
	vm->pid = pid;
	snprintf(vm->stats_id, sizeof(vm->stats_id), "kvm-%d", (int)pid);
	snprintf(vm->ident.name, sizeof(vm->ident.name), "%s", name);
	snprintf(vm->ident.comm, sizeof(vm->ident.comm), "vmm");
	vm->prev->exits[2] = 5;
	vm->cur->exits[2] = 5 + io;
	vm->cur->vcpus[0] = 0x3;
	vm->cur->hist[MF_FAULT_PRIVATE].count = private_faults;
	vm->cur->hist[MF_FAULT_SHARED].count = shared_faults;
	return vm;
}

/* VM from takes the place of VM to, which is reaped. */
static void move_vm(struct fixture *fx, size_t to, size_t from)
{
	free(fx->vms[to].stats);
	fx->vms[to] = fx->vms[from];
	fx->vms[from].stats = NULL;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fx->m.vms = fx->vms;
	fx->m.ranges = fx->ranges;
	fx->m.gpa_shift = 30;
	fx->m.start_ns = 0;
	fx->m.prev_ns = 9 * SEC;
	fx->m.now_ns = 10 * SEC;
	mf_live_view_init(&fx->v, "host1", "6.18.0", 1.0);
	if (mf_live_frame_resize(&fx->f, 40, 160))
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	mf_live_view_free(&fx->v);
	mf_live_frame_free(&fx->f);
	/* Tests drop VMs by lowering nr_vms: every slot's buffers go here. */
	for (int i = 0; i < MAX_VMS; i++)
		free(fx->vms[i].stats);
	free(fx);
	return 0;
}

static void render(struct fixture *fx)
{
	assert_int_equal(mf_live_render(&fx->v, &fx->m, &fx->f), 0);
}

static void key(struct fixture *fx, int k)
{
	assert_int_equal(mf_live_key(&fx->v, &fx->m, k), 0);
}

static void keys(struct fixture *fx, const char *s)
{
	for (; *s; s++)
		key(fx, *s);
}

/* The row of the frame whose text contains s, or -1. */
static int find_line(const struct mf_live_frame *f, const char *s)
{
	for (int row = 0; row < f->rows; row++)
		if (strstr(mf_live_frame_line(f, row), s))
			return row;
	return -1;
}

static unsigned int attr_at(const struct mf_live_frame *f, int row, int col)
{
	return f->attr[(size_t)row * (size_t)f->cols + (size_t)col];
}

static void three_vms(struct fixture *fx)
{
	add_vm(fx, 101, "alpha", 1000, 7, 0);
	add_vm(fx, 102, "beta", 50, 0, 3);
	add_vm(fx, 103, "", 300, 0, 0);	/* no name: kvm-<pid> */
}

/* Table rows start after title, rates, totals and the column header. */
#define FIRST_ROW 4

static void test_rows_default_order(void **state)
{
	struct fixture *fx = *state;
	const char *alpha;

	three_vms(fx);
	fx->vms[0].cur->hist[MF_FAULT_PRIVATE].count = 7;
	fx->vms[0].prev->hist[MF_FAULT_PRIVATE].count = 2;
	fx->vms[0].cur->hist[MF_MAP_TO_SHARED].count = 4;
	render(fx);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 0), "host1"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 0), "Linux 6.18.0"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 0), "up 00:00:10"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 1), "exits 1350.0/s"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 1), "private 5.0/s shared 3.0/s"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 2), "drops 0"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 3), "NAME"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 3), "TOP EXIT"));
	/* Sorted by exits/s, highest first. */
	assert_int_equal(find_line(&fx->f, "alpha"), FIRST_ROW);
	assert_int_equal(find_line(&fx->f, "kvm-103"), FIRST_ROW + 1);
	assert_int_equal(find_line(&fx->f, "beta"), FIRST_ROW + 2);
	alpha = mf_live_frame_line(&fx->f, FIRST_ROW);
	/* pid, vCPUs, private/s, shared/s, faults, to private/s, to shared/s,
	 * conversions/s, flips, exits/s */
	assert_non_null(strstr(alpha, "101     2       5.0       0.0          7        0.0"
			       "        4.0      0.0       0     1000.0 IO"));
	/* The selection starts on the first row. */
	assert_true(attr_at(&fx->f, FIRST_ROW, 0) & MF_ATTR_REVERSE);
	assert_false(attr_at(&fx->f, FIRST_ROW + 1, 0) & MF_ATTR_REVERSE);
	/* The sort key letters are underlined in the header. */
	assert_true(attr_at(&fx->f, 3, 0) & MF_ATTR_UNDERLINE);	/* N of NAME */
}

static void test_sorting_keys(void **state)
{
	struct fixture *fx = *state;

	three_vms(fx);
	key(fx, 'N');
	render(fx);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 0), "sort NAME"));
	assert_int_equal(fx->v.nr_rows, 3);
	assert_string_equal(fx->v.rows[0].name, "alpha");
	assert_string_equal(fx->v.rows[1].name, "beta");
	assert_string_equal(fx->v.rows[2].name, "kvm-103");
	key(fx, 'N');	/* again: reversed */
	assert_string_equal(fx->v.rows[0].name, "kvm-103");
	assert_string_equal(fx->v.rows[2].name, "alpha");
	key(fx, 'S');	/* shared faults/s */
	assert_int_equal(fx->v.sort_col, MF_COL_SHARED);
	assert_string_equal(fx->v.rows[0].name, "beta");
	key(fx, 'F');
	assert_string_equal(fx->v.rows[0].name, "alpha");
	key(fx, 'P');
	assert_int_equal(fx->v.rows[0].pid, 101);
	assert_int_equal(fx->v.rows[2].pid, 103);
	/* s and > go right and wrap, < goes left. */
	key(fx, 'X');
	key(fx, 's');
	assert_int_equal(fx->v.sort_col, MF_COL_NAME);
	key(fx, '<');
	assert_int_equal(fx->v.sort_col, MF_COL_TOP_EXIT);
	key(fx, '<');
	key(fx, '>');
	key(fx, '>');
	assert_int_equal(fx->v.sort_col, MF_COL_NAME);
	render(fx);
	assert_int_equal(find_line(&fx->f, "alpha"), FIRST_ROW);
	/* Every column has a key, and each is in its label. */
	for (int c = 0; c < MF_NR_COLS; c++) {
		assert_non_null(strchr(mf_live_col_label[c], mf_live_col_key[c]));
		key(fx, mf_live_col_key[c]);
		assert_int_equal(fx->v.sort_col, c);
	}
}

static void test_filter(void **state)
{
	struct fixture *fx = *state;

	three_vms(fx);
	keys(fx, "pBET");
	render(fx);
	assert_true(fx->v.prompting);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, fx->f.rows - 1), "BET_"));
	/* While prompting, letters are text, not commands. */
	assert_int_equal(fx->v.sort_col, MF_COL_EXITS);
	key(fx, MF_KEY_ENTER);
	render(fx);
	assert_int_equal(fx->v.nr_rows, 1);
	assert_int_equal(find_line(&fx->f, "beta"), FIRST_ROW);
	assert_int_equal(find_line(&fx->f, "alpha"), -1);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 0), "filter 'BET'"));
	/* A pid matches exactly; a name by substring. */
	key(fx, 'p');
	key(fx, MF_KEY_BACKSPACE);
	key(fx, MF_KEY_BACKSPACE);
	key(fx, MF_KEY_BACKSPACE);
	keys(fx, "103");
	key(fx, MF_KEY_ENTER);
	assert_int_equal(fx->v.nr_rows, 1);
	assert_string_equal(fx->v.rows[0].name, "kvm-103");
	keys(fx, "p9");
	key(fx, MF_KEY_ESC);	/* cancelled: the filter stays */
	assert_string_equal(fx->v.filter, "103");
	keys(fx, "pzz");	/* the prompt starts from the filter: "103zz" */
	key(fx, MF_KEY_ENTER);
	render(fx);
	assert_int_equal(fx->v.nr_rows, 0);
	assert_true(find_line(&fx->f, "no VM matches") > 0);
	key(fx, 'p');
	for (int i = 0; i < 6; i++)
		key(fx, MF_KEY_BACKSPACE);
	key(fx, MF_KEY_ENTER);	/* empty clears */
	assert_int_equal(fx->v.nr_rows, 3);
}

static void test_hide_idle(void **state)
{
	struct fixture *fx = *state;

	three_vms(fx);
	add_vm(fx, 104, "idle", 0, 0, 0);
	render(fx);
	assert_true(find_line(&fx->f, "    104 ") > 0);
	key(fx, 'z');
	render(fx);
	assert_int_equal(fx->v.nr_rows, 3);
	assert_int_equal(find_line(&fx->f, " 104 "), -1);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 0), "idle hidden"));
	key(fx, 'z');
	assert_int_equal(fx->v.nr_rows, 4);
}

static void test_selection_follows_vm(void **state)
{
	struct fixture *fx = *state;

	three_vms(fx);
	render(fx);
	key(fx, MF_KEY_DOWN);
	assert_string_equal(fx->v.rows[fx->v.sel].name, "kvm-103");
	/* Re-sorting keeps the same VM selected. */
	key(fx, 'N');
	assert_string_equal(fx->v.rows[fx->v.sel].name, "kvm-103");
	assert_int_equal(fx->v.sel, 2);
	render(fx);
	assert_true(attr_at(&fx->f, FIRST_ROW + 2, 0) & MF_ATTR_REVERSE);
	/* It goes away (reaped): the neighbour at its place is selected. */
	key(fx, MF_KEY_UP);
	assert_string_equal(fx->v.rows[fx->v.sel].name, "beta");
	move_vm(fx, 1, 2);
	fx->m.nr_vms = 2;
	render(fx);
	assert_string_equal(fx->v.rows[fx->v.sel].name, "kvm-103");
	/* The last one goes: the selection moves up. */
	fx->m.nr_vms = 1;
	render(fx);
	assert_string_equal(fx->v.rows[fx->v.sel].name, "alpha");
	fx->m.nr_vms = 0;
	render(fx);
	assert_int_equal(fx->v.nr_rows, 0);
	key(fx, MF_KEY_DOWN);
	key(fx, MF_KEY_ENTER);	/* nothing to open */
	assert_int_equal(fx->v.screen, MF_SCREEN_MAIN);
	assert_true(find_line(&fx->f, "no VM has exited") > 0);
}

static void test_hundreds_scroll(void **state)
{
	struct fixture *fx = *state;
	char name[32];
	int row;

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "vm%03d", i);
		add_vm(fx, 1000 + i, name, 1000 - (__u64)i, 0, 0);
	}
	render(fx);
	assert_int_equal(find_line(&fx->f, "vm000"), FIRST_ROW);
	assert_int_equal(fx->v.page, 40 - 3 - 2);
	key(fx, MF_KEY_END);
	render(fx);
	assert_int_equal(fx->v.sel, 299);
	row = find_line(&fx->f, "vm299");
	assert_int_equal(row, 40 - 2);	/* last table row, above the status line */
	assert_true(attr_at(&fx->f, row, 0) & MF_ATTR_REVERSE);
	key(fx, MF_KEY_PGUP);
	render(fx);
	row = find_line(&fx->f, fx->v.rows[fx->v.sel].name);
	assert_true(row >= FIRST_ROW);
	assert_true(attr_at(&fx->f, row, 0) & MF_ATTR_REVERSE);
	key(fx, MF_KEY_HOME);
	key(fx, MF_KEY_PGDN);
	assert_int_equal(fx->v.sel, 34);
	/* Shrinking the terminal keeps the selection visible. */
	assert_int_equal(mf_live_frame_resize(&fx->f, 8, 60), 0);
	render(fx);
	row = find_line(&fx->f, "vm034");
	assert_true(row > 0 && row < 7);
	assert_true(attr_at(&fx->f, row, 0) & MF_ATTR_REVERSE);
}

/* alpha with private faults at 4K in GPA range 1G and shared at 2M in 0. */
static void vm_with_histograms(struct fixture *fx)
{
	struct mf_vm *vm;

	three_vms(fx);
	vm = &fx->vms[0];
	vm->cur->exits[5] = 2;	/* HLT */
	vm->cur->hist[MF_FAULT_PRIVATE] = (struct mf_hist){ .count = 7, .bytes = 7 * 4096 };
	vm->cur->hist[MF_FAULT_PRIVATE].log2_bytes[12] = 7;
	vm->cur->hist[MF_FAULT_SHARED] = (struct mf_hist){ .count = 3, .bytes = 3 << 21 };
	vm->cur->hist[MF_FAULT_SHARED].log2_bytes[21] = 3;
	vm->cur->hist[MF_MAP_TO_PRIVATE] = (struct mf_hist){ .count = 2, .bytes = 2 << 21 };
	vm->cur->hist[MF_MAP_TO_PRIVATE].log2_bytes[21] = 2;
	vm->cur->fault_flag_bits[4] = 1;
	fx->ranges[0] = (struct mf_range){ .vm_id = 1, .kind = MF_FAULT_SHARED, .range = 0,
					   .count = 3 };
	fx->ranges[1] = (struct mf_range){ .vm_id = 1, .kind = MF_FAULT_PRIVATE, .range = 1,
					   .count = 5 };
	fx->ranges[2] = (struct mf_range){ .vm_id = 1, .kind = MF_FAULT_PRIVATE, .range = 3,
					   .count = 2 };
	fx->m.nr_ranges = 3;
	vm->first_range = 0;
	vm->nr_ranges = 3;
}

static void test_vm_screen(void **state)
{
	struct fixture *fx = *state;
	const char *line;
	int row, sep;

	vm_with_histograms(fx);
	render(fx);
	key(fx, MF_KEY_ENTER);
	assert_int_equal(fx->v.screen, MF_SCREEN_VM);
	render(fx);
	line = mf_live_frame_line(&fx->f, 0);
	assert_non_null(strstr(line, "VM alpha"));
	assert_non_null(strstr(line, "pid 101"));
	assert_null(strstr(line, "(destroyed)"));
	row = find_line(&fx->f, "  IO ");
	assert_true(row > 0);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, row), "1005"));
	assert_true(find_line(&fx->f, "  HLT ") > row);
	assert_true(find_line(&fx->f, "UNKNOWN memory-fault flag bit 4: 1") > 0);
	/* Private and shared side by side, with bars. */
	row = find_line(&fx->f, "private faults by size");
	assert_true(row > 0);
	line = mf_live_frame_line(&fx->f, row);
	assert_non_null(strstr(line, "| shared faults by size"));
	line = mf_live_frame_line(&fx->f, row + 1);
	assert_non_null(strstr(line, "4K -> 8K 7  ####"));
	sep = (int)(strstr(line, "| ") - line);
	assert_non_null(strstr(line + sep, "2M -> 4M 3  ####"));
	assert_true(attr_at(&fx->f, row + 1, (int)(strchr(line, '#') - line)) & MF_ATTR_BAR);
	row = find_line(&fx->f, "private faults by GPA range (1G each)");
	assert_true(row > 0);
	line = mf_live_frame_line(&fx->f, row + 1);
	assert_non_null(strstr(line, "1G-2G 0x40000000-0x7fffffff 5"));
	assert_non_null(strstr(line, "0-1G 0-0x3fffffff 3"));
	line = mf_live_frame_line(&fx->f, row + 2);
	assert_non_null(strstr(line, "3G-4G 0xc0000000-0xffffffff 2"));
	/* The shorter side is blank below its last range. */
	assert_non_null(strstr(line, "|   "));
	/* Conversion requests by direction and size. */
	row = find_line(&fx->f, "MAP_GPA_RANGE to private by size");
	assert_true(row > 0);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, row + 1), "2M -> 4M 2  #"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, row + 1), "(none)"));

	/* Destroyed: said so until it is reaped, then back to the list. */
	fx->vms[0].destroyed = true;
	render(fx);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 0), "(destroyed)"));
	move_vm(fx, 0, 2);
	fx->m.nr_vms = 2;
	fx->m.nr_ranges = 0;
	fx->vms[0].first_range = fx->vms[1].first_range = 0;
	render(fx);
	assert_int_equal(fx->v.screen, MF_SCREEN_MAIN);
	assert_true(find_line(&fx->f, "NAME") > 0);
}

static void test_vm_screen_scroll_and_back(void **state)
{
	struct fixture *fx = *state;

	vm_with_histograms(fx);
	key(fx, MF_KEY_ENTER);
	assert_int_equal(mf_live_frame_resize(&fx->f, 10, 50), 0);	/* stacked */
	render(fx);
	assert_true(find_line(&fx->f, "Exits by reason") == 1);
	key(fx, MF_KEY_END);
	render(fx);
	assert_int_equal(find_line(&fx->f, "Exits by reason"), -1);
	assert_true(find_line(&fx->f, "vCPUs waiting most since start, by total wait") > 0);
	key(fx, MF_KEY_HOME);
	render(fx);
	assert_int_equal(find_line(&fx->f, "Exits by reason"), 1);
	key(fx, MF_KEY_DOWN);
	render(fx);
	assert_int_equal(find_line(&fx->f, "Exits by reason"), -1);
	for (int k = 0; k < 3; k++) {
		static const int back[] = { MF_KEY_ESC, MF_KEY_BACKSPACE, MF_KEY_LEFT };

		key(fx, MF_KEY_ENTER);
		assert_int_equal(fx->v.screen, MF_SCREEN_VM);
		key(fx, back[k]);
		assert_int_equal(fx->v.screen, MF_SCREEN_MAIN);
	}
	assert_int_equal(mf_live_key(&fx->v, &fx->m, 'q'), MF_LIVE_QUIT);
}

static void test_reset(void **state)
{
	struct fixture *fx = *state;

	vm_with_histograms(fx);
	render(fx);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, FIRST_ROW), "  10 "));
	key(fx, 'r');
	render(fx);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 2), "totals since reset 00:00:00"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 2), "memory faults 0 private 0 shared"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, FIRST_ROW), "   0 "));
	/* The model is untouched: rates still show the interval. */
	assert_int_equal(fx->vms[0].cur->hist[MF_FAULT_PRIVATE].count, 7);
	fx->vms[0].cur->hist[MF_FAULT_PRIVATE].count += 4;
	fx->vms[0].cur->hist[MF_FAULT_PRIVATE].log2_bytes[12] += 4;
	fx->ranges[1].count += 4;
	fx->m.now_ns += 5 * SEC;
	render(fx);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 2), "totals since reset 00:00:05 ago"));
	assert_non_null(strstr(mf_live_frame_line(&fx->f, FIRST_ROW), "   4 "));
	key(fx, MF_KEY_ENTER);
	render(fx);
	assert_true(find_line(&fx->f, "4K -> 8K 4  #") > 0);
	assert_true(find_line(&fx->f, "1G-2G 0x40000000-0x7fffffff 4") > 0);
	/* Ranges without change since the reset are gone from the histogram. */
	assert_int_equal(find_line(&fx->f, "3G-4G"), -1);
}

static void test_drops_pause_help(void **state)
{
	struct fixture *fx = *state;
	int col;

	three_vms(fx);
	fx->m.drops[MF_DROP_RANGE_TABLE_FULL] = 5;
	render(fx);
	col = (int)(strstr(mf_live_frame_line(&fx->f, 2), "DROPS:") - mf_live_frame_line(&fx->f, 2));
	assert_true(col > 0);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 2), "GPA-range table full"));
	assert_true(attr_at(&fx->f, 2, col) & MF_ATTR_ALERT);
	key(fx, ' ');
	render(fx);
	assert_true(fx->v.paused);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 0), "PAUSED"));
	key(fx, ' ');
	assert_false(fx->v.paused);
	key(fx, 'h');
	render(fx);
	assert_int_equal(fx->v.screen, MF_SCREEN_HELP);
	assert_true(find_line(&fx->f, "live view: keys") >= 0);
	assert_true(find_line(&fx->f, "MAP>PRIV/s") > 0);
	key(fx, 'x');	/* any key returns */
	assert_int_equal(fx->v.screen, MF_SCREEN_MAIN);
	key(fx, '?');
	assert_int_equal(fx->v.screen, MF_SCREEN_HELP);
	assert_int_equal(mf_live_key(&fx->v, &fx->m, 'q'), MF_LIVE_QUIT);
}

static void test_tiny_terminals(void **state)
{
	static const int sizes[][2] = {
		{ 0, 0 }, { 1, 1 }, { 3, 80 }, { 4, 19 }, { 4, 20 }, { 5, 20 }, { 9, 20 },
		{ 10, 20 }, { 200, 20 }, { 5, 500 }, { 2, 2000 },
	};
	struct fixture *fx = *state;

	vm_with_histograms(fx);
	for (int screen = 0; screen < 3; screen++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			int rows = sizes[i][0], cols = sizes[i][1];

			assert_int_equal(mf_live_frame_resize(&fx->f, rows, cols), 0);
			fx->v.screen = screen == 0 ? MF_SCREEN_MAIN :
				       screen == 1 ? MF_SCREEN_VM : MF_SCREEN_HELP;
			fx->v.vm_id = 1;
			fx->v.help_return = MF_SCREEN_MAIN;
			render(fx);
			for (int r = 0; r < rows; r++)
				assert_int_equal(strlen(mf_live_frame_line(&fx->f, r)), cols);
			if (rows && (rows < MF_LIVE_MIN_ROWS || cols < MF_LIVE_MIN_COLS))
				assert_memory_equal(mf_live_frame_line(&fx->f, 0), "terminal too small",
						    cols < 18 ? (size_t)cols : 18);
		}
	}
	/* 20x5 degrades to what fits: title, header, rows, status. */
	assert_int_equal(mf_live_frame_resize(&fx->f, 5, 20), 0);
	fx->v.screen = MF_SCREEN_MAIN;
	render(fx);
	assert_string_equal(mf_live_frame_line(&fx->f, 1), "NAME             PID");
	assert_string_equal(mf_live_frame_line(&fx->f, 2), "alpha            101");
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 4), "q quit"));
}

/* A VM past --storm: marked by name, in FLIPS, in colour and in the header. */
static void test_storming_row(void **state)
{
	struct fixture *fx = *state;
	int row;

	three_vms(fx);
	fx->vms[0].cur->hist[MF_CONV_TO_PRIVATE].count = 20;	/* in a 1 s interval */
	fx->m.storm_rate = 10;
	render(fx);
	row = find_line(&fx->f, "!alpha");
	assert_true(row >= FIRST_ROW);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, row), " 20.0   STORM "));
	assert_true(attr_at(&fx->f, row, 1) & MF_ATTR_ALERT);
	assert_non_null(strstr(mf_live_frame_line(&fx->f, 1), "STORMING 1"));
	assert_int_equal(find_line(&fx->f, "!beta"), -1);
}

/* Found by fuzz_output: no VM at all (memfaulttop's first screen). */
static void test_no_vms(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(mf_live_frame_resize(&fx->f, 24, 80), 0);
	assert_int_equal(mf_live_layout(&fx->v, &fx->m), 0);
	assert_int_equal(fx->v.nr_rows, 0);
	render(fx);
	key(fx, MF_KEY_ENTER);
	render(fx);
	assert_true(find_line(&fx->f, "VMs 0 (0 shown") >= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rows_default_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sorting_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hide_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_selection_follows_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hundreds_scroll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_screen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_screen_scroll_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drops_pause_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiny_terminals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_vms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storming_row, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
