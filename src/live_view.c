// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The live view without a terminal: keys, sorting, filtering and layout. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exit_reason.h"
#include "hist.h"
#include "live_conversions.h"
#include "live_frame.h"
#include "live_view.h"
#include "opts.h"
#include "output.h"
#include "storm.h"

#define NAME_MIN_W	8
#define NAME_MAX_W	32
#define MAX_RANGE_LINES	256	/* per kind on the VM screen; the rest is counted */
#define SIDE_MIN_COLS	60	/* narrower: private and shared stacked, not side by side */

const char *const mf_live_col_label[MF_NR_COLS] = {
	[MF_COL_NAME] = "NAME",
	[MF_COL_PID] = "PID",
	[MF_COL_VCPUS] = "VCPUS",
	[MF_COL_PRIVATE] = "PRIVATE/s",
	[MF_COL_SHARED] = "SHARED/s",
	[MF_COL_FAULTS] = "FAULTS",
	[MF_COL_TO_PRIVATE] = "MAP>PRIV/s",
	[MF_COL_TO_SHARED] = "MAP>SHRD/s",
	[MF_COL_CONV] = "CONV/s",
	[MF_COL_FLIPS] = "FLIPS",
	[MF_COL_EXITS] = "EXITS/s",
	[MF_COL_TOP_EXIT] = "TOP EXIT",
};

/* Upper case, as the lower-case letters are commands; each is in its label. */
const char mf_live_col_key[MF_NR_COLS] = {
	[MF_COL_NAME] = 'N',
	[MF_COL_PID] = 'P',
	[MF_COL_VCPUS] = 'V',
	[MF_COL_PRIVATE] = 'R',
	[MF_COL_SHARED] = 'S',
	[MF_COL_FAULTS] = 'F',
	[MF_COL_TO_PRIVATE] = 'M',
	[MF_COL_TO_SHARED] = 'H',
	[MF_COL_CONV] = 'C',
	[MF_COL_FLIPS] = 'L',
	[MF_COL_EXITS] = 'E',
	[MF_COL_TOP_EXIT] = 'X',
};

static const char *const col_help[MF_NR_COLS] = {
	[MF_COL_NAME] = "guest name (-name guest=...), else kvm-<pid>",
	[MF_COL_PID] = "VMM process that created the VM",
	[MF_COL_VCPUS] = "vCPUs seen exiting to userspace",
	[MF_COL_PRIVATE] = "private memory-fault exits per second",
	[MF_COL_SHARED] = "shared memory-fault exits per second",
	[MF_COL_FAULTS] = "memory-fault exits since start or the last reset",
	[MF_COL_TO_PRIVATE] = "KVM_HC_MAP_GPA_RANGE requests to private per second",
	[MF_COL_TO_SHARED] = "KVM_HC_MAP_GPA_RANGE requests to shared per second",
	[MF_COL_CONV] = "the VMM's KVM_SET_MEMORY_ATTRIBUTES conversions per second",
	[MF_COL_FLIPS] = "direction changes of GPA ranges in the last interval (STORM: past --storm)",
	[MF_COL_EXITS] = "userspace exits per second",
	[MF_COL_TOP_EXIT] = "most frequent exit reason of the last interval",
};

/* 0 for the name column: it takes what the others leave. */
static const int col_width[MF_NR_COLS] = {
	[MF_COL_PID] = 7, [MF_COL_VCPUS] = 5, [MF_COL_PRIVATE] = 9, [MF_COL_SHARED] = 9,
	[MF_COL_FAULTS] = 10, [MF_COL_TO_PRIVATE] = 10, [MF_COL_TO_SHARED] = 10,
	[MF_COL_CONV] = 8, [MF_COL_FLIPS] = 7,
	[MF_COL_EXITS] = 10, [MF_COL_TOP_EXIT] = 16,
};

static bool col_is_text(enum mf_live_col c)
{
	return c == MF_COL_NAME || c == MF_COL_TOP_EXIT;
}

/* ---- numbers ---------------------------------------------------------- */

static double rate(__u64 n, double secs)
{
	return secs > 0 ? (double)n / secs : 0;
}

/* Fits v into width characters, switching to k/M/G... when needed. */
static const char *fmt_num(char *buf, size_t size, double v, int decimals, int width)
{
	static const char sfx[] = "kMGTPE";

	snprintf(buf, size, "%.*f", decimals, v);
	for (int i = 0; (int)strlen(buf) > width && sfx[i]; i++) {
		v /= 1000;
		snprintf(buf, size, "%.1f%c", v, sfx[i]);
	}
	return buf;
}

static const char *fmt_duration(__u64 ns, char *buf, size_t size)
{
	unsigned long long s = ns / 1000000000ULL;

	if (s >= 86400)
		snprintf(buf, size, "%llud %02llu:%02llu:%02llu", s / 86400, s / 3600 % 24,
			 s / 60 % 60, s % 60);
	else
		snprintf(buf, size, "%02llu:%02llu:%02llu", s / 3600, s / 60 % 60, s % 60);
	return buf;
}

static const char *reason_name(unsigned int r, char *buf, size_t size)
{
	const char *name = mf_exit_reason_name(r);

	if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "reason %u%s", r, r == MF_NR_EXIT_REASONS - 1 ? "+" : "");
	return buf;
}

/* ---- reset base --------------------------------------------------------- */

static int cmp_base_id(const void *key, const void *elem)
{
	__u64 id = *(const __u64 *)key, other = ((const struct mf_live_base *)elem)->id;

	return id < other ? -1 : id > other;
}

static const struct mf_vm_stats *base_of(const struct mf_live_view *v, __u64 id)
{
	const struct mf_live_base *b;

	if (!v->nr_base)
		return NULL;
	b = bsearch(&id, v->base, v->nr_base, sizeof(*v->base), cmp_base_id);
	return b ? &b->stats : NULL;
}

/* A range's count since the reset; model ranges and the base are sorted alike. */
static __u64 range_count(const struct mf_live_view *v, const struct mf_range *r)
{
	const struct mf_range *b;

	if (!v->nr_base_ranges)
		return r->count;
	b = bsearch(r, v->base_ranges, v->nr_base_ranges, sizeof(*v->base_ranges),
		    mf_range_cmp);
	return r->count - (b ? b->count : 0);
}

/* Totals start over from what the model holds now; the maps are untouched. */
static int reset_totals(struct mf_live_view *v, const struct mf_model *m)
{
	struct mf_live_base *base = malloc((m->nr_vms + 1) * sizeof(*base));
	struct mf_range *ranges = malloc((m->nr_ranges + 1) * sizeof(*ranges));

	if (!base || !ranges) {
		free(base);
		free(ranges);
		return -ENOMEM;
	}
	/* m->vms is sorted by id, m->ranges by key: both stay searchable. */
	for (size_t i = 0; i < m->nr_vms; i++) {
		base[i].id = m->vms[i].id;
		base[i].stats = *m->vms[i].cur;
	}
	if (m->nr_ranges)
		memcpy(ranges, m->ranges, m->nr_ranges * sizeof(*ranges));
	free(v->base);
	free(v->base_ranges);
	v->base = base;
	v->nr_base = m->nr_vms;
	v->base_ranges = ranges;
	v->nr_base_ranges = m->nr_ranges;
	v->reset_ns = m->now_ns;
	return 0;
}

/* ---- rows ------------------------------------------------------------------ */

static void make_row(const struct mf_live_view *v, const struct mf_model *m,
		     const struct mf_vm *vm, struct mf_live_row *row)
{
	const struct mf_vm_stats *c = vm->cur, *p = vm->prev, *b = base_of(v, vm->id);
	double secs = mf_model_interval_s(m);
	struct mf_storm storm;
	__u64 top = 0;

	memset(row, 0, sizeof(*row));
	row->id = vm->id;
	row->pid = vm->pid;
	row->vcpus = mf_vm_vcpus(c);
	row->destroyed = vm->destroyed;
	mf_vm_display_name(&vm->ident, vm->stats_id, vm->pid, row->name, sizeof(row->name));
	row->private_s = rate(c->hist[MF_FAULT_PRIVATE].count - p->hist[MF_FAULT_PRIVATE].count,
			      secs);
	row->shared_s = rate(c->hist[MF_FAULT_SHARED].count - p->hist[MF_FAULT_SHARED].count,
			     secs);
	row->to_private_s = rate(c->hist[MF_MAP_TO_PRIVATE].count -
				 p->hist[MF_MAP_TO_PRIVATE].count, secs);
	row->to_shared_s = rate(c->hist[MF_MAP_TO_SHARED].count -
				p->hist[MF_MAP_TO_SHARED].count, secs);
	row->exits_s = rate(mf_vm_exits(c) - mf_vm_exits(p), secs);
	row->conv_s = rate(c->hist[MF_CONV_TO_PRIVATE].count + c->hist[MF_CONV_TO_SHARED].count -
			   p->hist[MF_CONV_TO_PRIVATE].count - p->hist[MF_CONV_TO_SHARED].count, secs);
	row->flips = c->flips - p->flips;
	mf_vm_storm(m, vm, &storm);
	row->storming = storm.storming;
	row->faults = c->hist[MF_FAULT_PRIVATE].count + c->hist[MF_FAULT_SHARED].count;
	if (b)
		row->faults -= b->hist[MF_FAULT_PRIVATE].count + b->hist[MF_FAULT_SHARED].count;
	for (unsigned int r = 0; r < MF_NR_EXIT_REASONS; r++) {
		__u64 n = c->exits[r] - p->exits[r];

		if (n > top) {
			top = n;
			reason_name(r, row->top_exit, sizeof(row->top_exit));
		}
	}
}

static bool row_matches(const struct mf_live_view *v, const struct mf_live_row *row)
{
	char pid[16];

	if (!v->filter[0])
		return true;
	snprintf(pid, sizeof(pid), "%d", (int)row->pid);
	return !strcmp(pid, v->filter) || strcasestr(row->name, v->filter);
}

static int cmp_num(double a, double b)
{
	return a < b ? -1 : a > b;
}

static int cmp_rows(const void *a, const void *b, void *arg)
{
	const struct mf_live_row *x = a, *y = b;
	const struct mf_live_view *v = arg;
	int c;

	switch (v->sort_col) {
	case MF_COL_NAME:
		c = strcasecmp(x->name, y->name);
		break;
	case MF_COL_PID:
		c = cmp_num(x->pid, y->pid);
		break;
	case MF_COL_VCPUS:
		c = -cmp_num(x->vcpus, y->vcpus);
		break;
	case MF_COL_PRIVATE:
		c = -cmp_num(x->private_s, y->private_s);
		break;
	case MF_COL_SHARED:
		c = -cmp_num(x->shared_s, y->shared_s);
		break;
	case MF_COL_FAULTS:
		c = -cmp_num((double)x->faults, (double)y->faults);
		break;
	case MF_COL_TO_PRIVATE:
		c = -cmp_num(x->to_private_s, y->to_private_s);
		break;
	case MF_COL_TO_SHARED:
		c = -cmp_num(x->to_shared_s, y->to_shared_s);
		break;
	case MF_COL_CONV:
		c = -cmp_num(x->conv_s, y->conv_s);
		break;
	case MF_COL_FLIPS:
		c = -cmp_num((double)x->flips, (double)y->flips);
		break;
	case MF_COL_EXITS:
		c = -cmp_num(x->exits_s, y->exits_s);
		break;
	default:
		c = strcmp(x->top_exit, y->top_exit);
		break;
	}
	if (v->sort_reverse)
		c = -c;
	/* Ties keep creation order, so equal rows do not swap places. */
	return c ? c : cmp_num((double)x->id, (double)y->id);
}

/* Keeps the selection on screen: page rows shown from v->top. */
static void scroll_to_selection(struct mf_live_view *v)
{
	size_t page = v->page > 0 ? (size_t)v->page : 1;

	if (v->sel < v->top)
		v->top = v->sel;
	if (v->sel >= v->top + page)
		v->top = v->sel - page + 1;
	if (v->top + page > v->nr_rows)
		v->top = v->nr_rows > page ? v->nr_rows - page : 0;
}

int mf_live_layout(struct mf_live_view *v, const struct mf_model *m)
{
	size_t n = 0;

	if (m->nr_vms > v->cap_rows) {
		struct mf_live_row *rows = realloc(v->rows, m->nr_vms * sizeof(*rows));

		if (!rows)
			return -ENOMEM;
		v->rows = rows;
		v->cap_rows = m->nr_vms;
	}
	for (size_t i = 0; i < m->nr_vms; i++) {
		if (v->hide_idle && !mf_vm_active(&m->vms[i]))
			continue;
		make_row(v, m, &m->vms[i], &v->rows[n]);
		if (row_matches(v, &v->rows[n]))
			n++;
	}
	v->nr_rows = n;
	/* No rows yet: v->rows may still be NULL, which qsort_r must not get. */
	if (!n) {
		v->sel = v->top = 0;
		return 0;
	}
	qsort_r(v->rows, n, sizeof(*v->rows), cmp_rows, v);
	for (size_t i = 0; i < n; i++) {
		if (v->rows[i].id == v->sel_id) {
			v->sel = i;
			break;
		}
	}
	/* A selected VM that went away leaves the selection at its place. */
	if (v->sel >= n)
		v->sel = n - 1;
	v->sel_id = v->rows[v->sel].id;
	scroll_to_selection(v);
	return 0;
}

static const struct mf_vm *find_vm(const struct mf_model *m, __u64 id)
{
	for (size_t i = 0; i < m->nr_vms; i++)
		if (m->vms[i].id == id)
			return &m->vms[i];
	return NULL;
}

/* ---- keys -------------------------------------------------------------------- */

void mf_live_view_init(struct mf_live_view *v, const char *host, const char *release,
		       double interval_s)
{
	memset(v, 0, sizeof(*v));
	v->sort_col = MF_COL_EXITS;
	v->page = 1;
	v->interval_s = interval_s;
	snprintf(v->host, sizeof(v->host), "%s", host);
	snprintf(v->release, sizeof(v->release), "%s", release);
}

void mf_live_view_free(struct mf_live_view *v)
{
	free(v->rows);
	free(v->base);
	free(v->base_ranges);
	memset(v, 0, sizeof(*v));
}

static void prompt_key(struct mf_live_view *v, int key)
{
	size_t len = strlen(v->input);

	switch (key) {
	case MF_KEY_ENTER:
		memcpy(v->filter, v->input, sizeof(v->filter));
		v->prompting = false;
		break;
	case MF_KEY_ESC:
		v->prompting = false;
		break;
	case MF_KEY_BACKSPACE:
		if (len)
			v->input[len - 1] = '\0';
		break;
	default:
		if (key < 0x100 && isprint(key) && len + 1 < sizeof(v->input)) {
			v->input[len] = (char)key;
			v->input[len + 1] = '\0';
		}
		break;
	}
}

static void move_selection(struct mf_live_view *v, long delta)
{
	long sel = (long)v->sel + delta;

	if (!v->nr_rows)
		return;
	if (sel < 0)
		sel = 0;
	if (sel >= (long)v->nr_rows)
		sel = (long)v->nr_rows - 1;
	v->sel = (size_t)sel;
	v->sel_id = v->rows[v->sel].id;
	scroll_to_selection(v);
}

static void sort_by(struct mf_live_view *v, enum mf_live_col col)
{
	v->sort_reverse = col == v->sort_col ? !v->sort_reverse : false;
	v->sort_col = col;
}

static int main_key(struct mf_live_view *v, const struct mf_model *m, int key)
{
	long page = v->page > 1 ? v->page - 1 : 1;	/* a line of context */
	int err = mf_live_layout(v, m);

	if (err)
		return err;
	for (int c = 0; c < MF_NR_COLS; c++) {
		if (key == mf_live_col_key[c]) {
			sort_by(v, (enum mf_live_col)c);
			return mf_live_layout(v, m);
		}
	}
	switch (key) {
	case 's':
	case '>':
		v->sort_col = (v->sort_col + 1) % MF_NR_COLS;
		v->sort_reverse = false;
		return mf_live_layout(v, m);
	case '<':
		v->sort_col = (v->sort_col + MF_NR_COLS - 1) % MF_NR_COLS;
		v->sort_reverse = false;
		return mf_live_layout(v, m);
	case 'p':
		v->prompting = true;
		memcpy(v->input, v->filter, sizeof(v->input));
		return 0;
	case 'z':
		v->hide_idle = !v->hide_idle;
		return mf_live_layout(v, m);
	case MF_KEY_UP:
		move_selection(v, -1);
		return 0;
	case MF_KEY_DOWN:
		move_selection(v, 1);
		return 0;
	case MF_KEY_PGUP:
		move_selection(v, -page);
		return 0;
	case MF_KEY_PGDN:
		move_selection(v, page);
		return 0;
	case MF_KEY_HOME:
		move_selection(v, -(long)v->nr_rows);
		return 0;
	case MF_KEY_END:
		move_selection(v, (long)v->nr_rows);
		return 0;
	case MF_KEY_ENTER:
	case MF_KEY_RIGHT:
		if (v->nr_rows) {
			v->screen = MF_SCREEN_VM;
			v->vm_id = v->rows[v->sel].id;
			v->vm_top = 0;
		}
		return 0;
	default:
		return 0;
	}
}

static void vm_key(struct mf_live_view *v, int key)
{
	size_t page = v->page > 1 ? (size_t)v->page - 1 : 1;

	/* Scrolling past the end is clamped when rendering. */
	switch (key) {
	case MF_KEY_ESC:
	case MF_KEY_BACKSPACE:
	case MF_KEY_LEFT:
		v->screen = MF_SCREEN_MAIN;
		break;
	case MF_KEY_UP:
		v->vm_top -= v->vm_top > 0;
		break;
	case MF_KEY_DOWN:
		v->vm_top++;
		break;
	case MF_KEY_PGUP:
		v->vm_top = v->vm_top > page ? v->vm_top - page : 0;
		break;
	case MF_KEY_PGDN:
		v->vm_top += page;
		break;
	case MF_KEY_HOME:
		v->vm_top = 0;
		break;
	case MF_KEY_END:
		v->vm_top = (size_t)-1 / 2;
		break;
	case 'w':
		v->wait_by_max = !v->wait_by_max;
		break;
	default:
		break;
	}
}

int mf_live_key(struct mf_live_view *v, const struct mf_model *m, int key)
{
	if (v->prompting) {
		prompt_key(v, key);
		return v->prompting ? 0 : mf_live_layout(v, m);
	}
	if (key == 'q')
		return MF_LIVE_QUIT;
	if (v->screen == MF_SCREEN_HELP) {
		v->screen = v->help_return;
		return 0;
	}
	switch (key) {
	case 'h':
	case '?':
		v->help_return = v->screen;
		v->screen = MF_SCREEN_HELP;
		return 0;
	case ' ':
		v->paused = !v->paused;
		return 0;
	case 'r':
		return reset_totals(v, m);
	default:
		break;
	}
	if (v->screen == MF_SCREEN_VM) {
		vm_key(v, key);
		return 0;
	}
	return main_key(v, m, key);
}

/* ---- main screen ------------------------------------------------------------- */

/* Shows columns left to right while they fit; the name takes the rest. */
static int table_columns(int cols, int width[MF_NR_COLS])
{
	int used = NAME_MIN_W, n = 1;

	for (; n < MF_NR_COLS && used + 1 + col_width[n] <= cols; n++) {
		width[n] = col_width[n];
		used += 1 + col_width[n];
	}
	width[MF_COL_NAME] = cols - (used - NAME_MIN_W);
	if (width[MF_COL_NAME] > NAME_MAX_W)
		width[MF_COL_NAME] = NAME_MAX_W;
	return n;
}

static void title_line(const struct mf_live_view *v, const struct mf_model *m,
		       struct mf_live_frame *f, int row)
{
	char up[32];
	int col = 0;

	if (v->paused)
		col = mf_put(f, row, col, "PAUSED ", MF_ATTR_ALERT);
	col = mf_putf(f, row, col, MF_ATTR_BOLD, "memfaulttop %s", v->host);
	col = mf_putf(f, row, col, 0, "  Linux %s  up %s  every %gs  sort %s%s", v->release,
		   fmt_duration(m->now_ns - m->start_ns, up, sizeof(up)), v->interval_s,
		   mf_live_col_label[v->sort_col], v->sort_reverse ? " (reversed)" : "");
	if (v->filter[0])
		col = mf_putf(f, row, col, MF_ATTR_BOLD, "  filter '%s'", v->filter);
	if (v->hide_idle)
		mf_put(f, row, col, "  idle hidden", MF_ATTR_BOLD);
}

static void rates_line(const struct mf_live_view *v, const struct mf_model *m,
		       struct mf_live_frame *f, int row)
{
	double secs = mf_model_interval_s(m);
	__u64 d[MF_NR_KINDS] = { 0 }, exits = 0;
	size_t active = 0, storming = 0;
	int col;

	for (size_t i = 0; i < m->nr_vms; i++) {
		const struct mf_vm *vm = &m->vms[i];
		struct mf_storm storm;

		for (int k = 0; k < MF_NR_KINDS; k++)
			d[k] += vm->cur->hist[k].count - vm->prev->hist[k].count;
		exits += mf_vm_exits(vm->cur) - mf_vm_exits(vm->prev);
		active += mf_vm_active(vm);
		mf_vm_storm(m, vm, &storm);
		storming += storm.storming;
	}
	col = mf_putf(f, row, 0, 0, "VMs %zu (%zu shown, %zu active)  exits %.1f/s  memory faults"
		      " private %.1f/s shared %.1f/s  MAP_GPA_RANGE %.1f/s", m->nr_vms, v->nr_rows,
		      active, rate(exits, secs), rate(d[MF_FAULT_PRIVATE], secs),
		      rate(d[MF_FAULT_SHARED], secs),
		      rate(d[MF_MAP_TO_PRIVATE] + d[MF_MAP_TO_SHARED], secs));
	if (storming)
		mf_putf(f, row, col, MF_ATTR_ALERT, "  STORMING %zu", storming);
}

static void totals_line(const struct mf_live_view *v, const struct mf_model *m,
			struct mf_live_frame *f, int row)
{
	__u64 k[MF_NR_KINDS] = { 0 }, exits = 0, drops = 0;
	char since[48], ago[32];
	int col;

	for (size_t i = 0; i < m->nr_vms; i++) {
		const struct mf_vm *vm = &m->vms[i];
		const struct mf_vm_stats *b = base_of(v, vm->id);

		for (int j = 0; j < MF_NR_KINDS; j++)
			k[j] += vm->cur->hist[j].count - (b ? b->hist[j].count : 0);
		exits += mf_vm_exits(vm->cur) - (b ? mf_vm_exits(b) : 0);
	}
	if (v->reset_ns)
		snprintf(since, sizeof(since), "reset %s ago",
			 fmt_duration(m->now_ns - v->reset_ns, ago, sizeof(ago)));
	else
		strcpy(since, "start");
	col = mf_putf(f, row, 0, 0, "totals since %s: exits %llu  memory faults %llu private %llu"
		   " shared  MAP_GPA_RANGE %llu  ", since, (unsigned long long)exits, (unsigned long long)k[MF_FAULT_PRIVATE],
		   (unsigned long long)k[MF_FAULT_SHARED],
		   (unsigned long long)(k[MF_MAP_TO_PRIVATE] + k[MF_MAP_TO_SHARED]));
	for (int d = 0; d < MF_NR_DROPS; d++)
		drops += m->drops[d];
	if (!drops) {
		mf_put(f, row, col, "drops 0", 0);
		return;
	}
	/* Counts are incomplete from here on: make it hard to miss. */
	col = mf_put(f, row, col, "DROPS:", MF_ATTR_ALERT);
	for (int d = 0; d < MF_NR_DROPS; d++)
		if (m->drops[d])
			col = mf_putf(f, row, col, MF_ATTR_ALERT, " %s %llu;", mf_drop_label[d],
				   (unsigned long long)m->drops[d]);
}

static void table_header(const struct mf_live_view *v, struct mf_live_frame *f, int row,
			 const int width[], int ncols)
{
	int col = 0;

	for (int c = 0; c < ncols; c++) {
		const char *label = mf_live_col_label[c];
		const char *key = strchr(label, mf_live_col_key[c]);
		unsigned int attr = c == (int)v->sort_col ? MF_ATTR_BOLD : 0;
		int start = col_is_text(c) ? col : col + width[c] - (int)strlen(label);

		mf_putf(f, row, col, attr, "%*s", width[c], "");
		mf_put(f, row, start, label, attr);
		/* The sort key of the column, underlined as in top. */
		if (key)
			mf_put(f, row, start + (int)(key - label), (char[]){ *key, 0 },
			    attr | MF_ATTR_UNDERLINE);
		col += width[c] + 1;
	}
	mf_row_attr(f, row, MF_ATTR_REVERSE);
}

static void table_row(const struct mf_live_row *r, struct mf_live_frame *f, int row,
		      const int width[], int ncols)
{
	unsigned int attr = r->destroyed ? MF_ATTR_DIM : r->storming ? MF_ATTR_ALERT : 0;
	char buf[MF_NAME_LEN + 16];
	int col = 0;

	for (int c = 0; c < ncols; c++) {
		int w = width[c];

		switch (c) {
		case MF_COL_NAME:
			snprintf(buf, sizeof(buf), "%s%s%s", r->storming ? "!" : "", r->name,
				 r->destroyed ? " (destroyed)" : "");
			break;
		case MF_COL_PID:
			snprintf(buf, sizeof(buf), "%d", (int)r->pid);
			break;
		case MF_COL_VCPUS:
			snprintf(buf, sizeof(buf), "%u", r->vcpus);
			break;
		case MF_COL_PRIVATE:
			fmt_num(buf, sizeof(buf), r->private_s, 1, w);
			break;
		case MF_COL_SHARED:
			fmt_num(buf, sizeof(buf), r->shared_s, 1, w);
			break;
		case MF_COL_FAULTS:
			fmt_num(buf, sizeof(buf), (double)r->faults, 0, w);
			break;
		case MF_COL_TO_PRIVATE:
			fmt_num(buf, sizeof(buf), r->to_private_s, 1, w);
			break;
		case MF_COL_TO_SHARED:
			fmt_num(buf, sizeof(buf), r->to_shared_s, 1, w);
			break;
		case MF_COL_CONV:
			fmt_num(buf, sizeof(buf), r->conv_s, 1, w);
			break;
		case MF_COL_FLIPS:
			if (r->storming)
				snprintf(buf, sizeof(buf), "STORM");
			else
				fmt_num(buf, sizeof(buf), (double)r->flips, 0, w);
			break;
		case MF_COL_EXITS:
			fmt_num(buf, sizeof(buf), r->exits_s, 1, w);
			break;
		default:
			snprintf(buf, sizeof(buf), "%s", r->top_exit[0] ? r->top_exit : "-");
			break;
		}
		if (col_is_text(c))
			mf_putf(f, row, col, attr, "%-*.*s", w, w, buf);
		else
			mf_putf(f, row, col, attr, "%*s", w, buf);
		col += w + 1;
	}
}

static void status_line(const struct mf_live_view *v, struct mf_live_frame *f)
{
	int row = f->rows - 1;

	if (v->prompting)
		mf_putf(f, row, 0, 0, "filter by pid or name (Enter applies, empty clears, Esc"
		     " cancels): %s_", v->input);
	else if (v->screen == MF_SCREEN_VM)
		mf_put(f, row, 0, "Esc/Left back  arrows/PgUp/PgDn scroll  w worst vCPUs by"
		    " longest/total  r reset  space pause  h help  q quit", 0);
	else if (v->screen == MF_SCREEN_HELP)
		mf_put(f, row, 0, "any key returns  q quit", 0);
	else
		mf_put(f, row, 0, "q quit  h help  s/</> sort  NPVRSFMHCLEX sort by column  p filter"
		    "  z idle  r reset  space pause  Enter VM", 0);
	mf_row_attr(f, row, MF_ATTR_REVERSE);
}

static int render_main(struct mf_live_view *v, const struct mf_model *m,
		       struct mf_live_frame *f)
{
	int width[MF_NR_COLS] = { 0 }, ncols, row = 0, err;

	/* Low terminals drop the totals first: the table is what matters. */
	bool totals = f->rows >= 10;

	v->page = f->rows - (totals ? 3 : 1) - 2;
	err = mf_live_layout(v, m);
	if (err)
		return err;
	title_line(v, m, f, row++);
	if (totals) {
		rates_line(v, m, f, row++);
		totals_line(v, m, f, row++);
	}
	ncols = table_columns(f->cols, width);
	table_header(v, f, row++, width, ncols);
	for (size_t i = v->top; i < v->nr_rows && row < f->rows - 1; i++, row++) {
		table_row(&v->rows[i], f, row, width, ncols);
		if (i == v->sel)
			mf_row_attr(f, row, MF_ATTR_REVERSE);
	}
	if (!v->nr_rows)
		mf_put(f, row, 0, m->nr_vms ? "  (no VM matches the filter)" :
			"  (no VM has exited to userspace yet)", MF_ATTR_DIM);
	status_line(v, f);
	return 0;
}

/* ---- VM screen ------------------------------------------------------------------- */

struct hist_line {
	char label[80];
	__u64 count;
};

struct hist_block {
	char title[96];
	struct hist_line lines[MAX_RANGE_LINES > MF_LOG2_SLOTS ? MAX_RANGE_LINES : MF_LOG2_SLOTS];
	size_t nr;
	size_t more;		/* lines that did not fit, summed into "more" */
	__u64 more_count;
};

static void size_block(struct hist_block *h, const struct mf_vm *vm,
		       const struct mf_vm_stats *base, enum mf_kind kind)
{
	static const struct mf_hist zero;
	__u64 slots[MF_LOG2_SLOTS];
	int lo, hi;
	bool any;

	snprintf(h->title, sizeof(h->title), "%s by size", mf_kind_label[kind]);
	mf_hist_delta(&vm->cur->hist[kind], base ? &base->hist[kind] : &zero, slots);
	any = mf_hist_span(slots, &lo, &hi);
	h->nr = h->more = h->more_count = 0;
	for (int i = lo; any && i <= hi; i++) {
		char from[16], to[16];

		mf_hist_slot_bounds(i, from, to);
		snprintf(h->lines[h->nr].label, sizeof(h->lines[0].label), "%s -> %s", from, to);
		h->lines[h->nr++].count = slots[i];
	}
}

static void range_block(struct hist_block *h, const struct mf_live_view *v,
			const struct mf_model *m, const struct mf_vm *vm, enum mf_kind kind)
{
	__u64 width = 1ULL << m->gpa_shift;
	char w[16];

	snprintf(h->title, sizeof(h->title), "%s by GPA range (%s each)", mf_kind_label[kind],
		 mf_format_size(width, w, sizeof(w)));
	h->nr = h->more = h->more_count = 0;
	for (size_t i = vm->first_range; i < vm->first_range + vm->nr_ranges; i++) {
		const struct mf_range *r = &m->ranges[i];
		__u64 n = range_count(v, r), start = r->range << m->gpa_shift;
		char from[16], to[16];

		if (r->kind != kind || !n)
			continue;
		if (h->nr == MAX_RANGE_LINES) {
			h->more++;
			h->more_count += n;
			continue;
		}
		mf_format_size(start, from, sizeof(from));
		/* The last range of a 64-bit space ends past what a __u64 holds. */
		if (start + width)
			mf_format_size(start + width, to, sizeof(to));
		else
			strcpy(to, "max");
		snprintf(h->lines[h->nr].label, sizeof(h->lines[0].label), "%s-%s %#llx-%#llx",
			 from, to, (unsigned long long)start,
			 (unsigned long long)(start + width - 1));
		h->lines[h->nr++].count = n;
	}
}

/* Lines a block takes: title, entries or "(none)", and "more". */
static int block_height(const struct hist_block *h)
{
	return 1 + (h->nr ? (int)h->nr : 1) + (h->more > 0);
}

static void draw_block(struct mf_live_frame *f, int row, int x, int w, const struct hist_block *h)
{
	int label_w = 0, count_w = 1, bar_w;
	__u64 max = 0;
	char num[24];

	mf_putf(f, row++, x, MF_ATTR_UNDERLINE, "%.*s", w, h->title);
	if (!h->nr) {
		mf_putf(f, row, x, MF_ATTR_DIM, "%.*s", w, "  (none)");
		return;
	}
	for (size_t i = 0; i < h->nr; i++) {
		int len = (int)strlen(h->lines[i].label);

		if (len > label_w)
			label_w = len;
		len = snprintf(num, sizeof(num), "%llu", (unsigned long long)h->lines[i].count);
		if (len > count_w)
			count_w = len;
		if (h->lines[i].count > max)
			max = h->lines[i].count;
	}
	if (label_w > w / 2)
		label_w = w / 2;
	/* "  label count  bar": no frame around bars, so the "|" between the
	 * private and shared sides stays the only vertical line. */
	bar_w = w - 2 - label_w - 1 - count_w - 2;
	for (size_t i = 0; i < h->nr; i++, row++) {
		const struct hist_line *l = &h->lines[i];
		int col = mf_putf(f, row, x, 0, "  %-*.*s %*llu", label_w, label_w, l->label, count_w,
			       (unsigned long long)l->count);
		int n;

		if (bar_w < 1)
			continue;
		n = (int)((l->count * (__u64)bar_w + max - 1) / max);
		col = mf_put(f, row, col, "  ", 0);
		for (int b = 0; b < n; b++)
			col = mf_put(f, row, col, "#", MF_ATTR_BAR);
	}
	if (h->more)
		mf_putf(f, row, x, MF_ATTR_DIM, "  ... %zu more ranges, %llu in all", h->more,
		     (unsigned long long)h->more_count);
}

/* Private and shared next to each other, or one below the other when narrow. */
static int pair(struct mf_doc *d, const struct hist_block *left, const struct hist_block *right)
{
	int cols = d->f.cols, lh = block_height(left), rh = block_height(right);
	bool side = cols >= SIDE_MIN_COLS;
	int h = side ? (lh > rh ? lh : rh) : lh + rh, row = d->f.rows, w = side ? (cols - 3) / 2 : cols;

	for (int i = 0; i < h; i++) {
		int err = mf_doc_line(d);

		if (err < 0)
			return err;
	}
	draw_block(&d->f, row, 0, w, left);
	if (!side) {
		draw_block(&d->f, row + lh, 0, w, right);
		return 0;
	}
	for (int i = 0; i < h; i++)
		mf_put(&d->f, row + i, w + 1, "|", MF_ATTR_DIM);
	draw_block(&d->f, row, w + 3, w, right);
	return 0;
}

static int vm_exits(struct mf_doc *d, const struct mf_vm *vm, const struct mf_vm_stats *b,
		    double secs, const char *since)
{
	int err = mf_doc_text(d, MF_ATTR_BOLD, "%-24s %14s %12s", "Exits by reason", since, "/s");
	bool any = false;

	for (unsigned int r = 0; !err && r < MF_NR_EXIT_REASONS; r++) {
		__u64 total = vm->cur->exits[r] - (b ? b->exits[r] : 0);
		char name[24];

		if (!total)
			continue;
		any = true;
		err = mf_doc_text(d, 0, "  %-22s %14llu %12.1f", reason_name(r, name, sizeof(name)),
			       (unsigned long long)total,
			       rate(vm->cur->exits[r] - vm->prev->exits[r], secs));
	}
	if (!err && !any)
		err = mf_doc_text(d, MF_ATTR_DIM, "  (none)");
	return err;
}

/* A kind's summary: count and bytes since start or reset, rate of the interval. */
static void kind_summary(char *buf, size_t size, const struct mf_vm *vm,
			 const struct mf_vm_stats *b, enum mf_kind kind, double secs)
{
	const struct mf_hist *c = &vm->cur->hist[kind];
	char bytes[16];

	snprintf(buf, size, "%s %llu (%sB, %.1f/s)", mf_kind_label[kind],
		 (unsigned long long)(c->count - (b ? b->hist[kind].count : 0)),
		 mf_format_size(c->bytes - (b ? b->hist[kind].bytes : 0), bytes, sizeof(bytes)),
		 rate(c->count - vm->prev->hist[kind].count, secs));
}

static int vm_kinds(struct mf_doc *d, const struct mf_live_view *v, const struct mf_model *m,
		    const struct mf_vm *vm, const struct mf_vm_stats *b, const char *title,
		    enum mf_kind left, enum mf_kind right)
{
	/* Too big for the stack with MAX_RANGE_LINES entries each. */
	struct hist_block *h = malloc(2 * sizeof(*h));
	double secs = mf_model_interval_s(m);
	char l[128], r[128];
	int err;

	if (!h)
		return -ENOMEM;
	kind_summary(l, sizeof(l), vm, b, left, secs);
	kind_summary(r, sizeof(r), vm, b, right, secs);
	err = mf_doc_text(d, MF_ATTR_BOLD, "%s: %s, %s", title, l, r);
	if (!err) {
		size_block(&h[0], vm, b, left);
		size_block(&h[1], vm, b, right);
		err = pair(d, &h[0], &h[1]);
	}
	if (!err) {
		range_block(&h[0], v, m, vm, left);
		range_block(&h[1], v, m, vm, right);
		err = pair(d, &h[0], &h[1]);
	}
	free(h);
	return err;
}

static int vm_problems(struct mf_doc *d, const struct mf_vm *vm, const struct mf_vm_stats *b)
{
	__u64 lost = vm->cur->range_drops - (b ? b->range_drops : 0);
	int err = 0;

	/* QEMU stops a VM on any flag but PRIVATE: worth a line of its own. */
	for (int bit = 0; !err && bit < MF_FLAG_BITS; bit++) {
		__u64 n = vm->cur->fault_flag_bits[bit] - (b ? b->fault_flag_bits[bit] : 0);

		if (n)
			err = mf_doc_text(d, MF_ATTR_ALERT, "UNKNOWN memory-fault flag bit %d: %llu exits",
				       bit, (unsigned long long)n);
	}
	if (!err && lost)
		err = mf_doc_text(d, MF_ATTR_ALERT, "GPA-range table full: %llu range updates lost",
			       (unsigned long long)lost);
	return err;
}

static int doc_sink(void *ctx, unsigned int attr, const char *text)
{
	return mf_doc_text(ctx, attr, "%s", text);
}

static int vm_doc(struct mf_doc *d, const struct mf_live_view *v, const struct mf_model *m,
		  const struct mf_vm *vm)
{
	const struct mf_vm_stats *b = base_of(v, vm->id);
	const char *since = v->reset_ns ? "since reset" : "since start";
	int err;

	err = vm_exits(d, vm, b, mf_model_interval_s(m), since);
	if (!err)
		err = vm_problems(d, vm, b);
	if (!err)
		err = mf_doc_text(d, 0, "%s", "");
	if (!err)
		err = vm_kinds(d, v, m, vm, b, "Memory-fault exits", MF_FAULT_PRIVATE,
			       MF_FAULT_SHARED);
	if (!err)
		err = mf_doc_text(d, 0, "%s", "");
	if (!err)
		err = vm_kinds(d, v, m, vm, b, "KVM_HC_MAP_GPA_RANGE requests", MF_MAP_TO_PRIVATE,
			       MF_MAP_TO_SHARED);
	if (!err)
		err = mf_doc_text(d, 0, "%s", "");
	if (!err)
		err = vm_kinds(d, v, m, vm, b, "VMM conversions (KVM_SET_MEMORY_ATTRIBUTES)",
			       MF_CONV_TO_PRIVATE, MF_CONV_TO_SHARED);
	if (!err)
		err = mf_live_vmm_service(doc_sink, d, m, vm, b, v->wait_by_max, d->f.cols);
	if (!err)
		err = mf_live_flips(doc_sink, d, m, vm);
	return err;
}

static int render_vm(struct mf_live_view *v, const struct mf_model *m, struct mf_live_frame *f,
		     const struct mf_vm *vm)
{
	struct mf_doc d = { .f = { .cols = f->cols } };
	char name[MF_NAME_LEN];
	size_t body = (size_t)f->rows - 2;
	int col = 0, err;

	v->page = (int)body;
	if (v->paused)
		col = mf_put(f, 0, col, "PAUSED ", MF_ATTR_ALERT);
	col = mf_putf(f, 0, col, MF_ATTR_BOLD, "VM %s",
		   mf_vm_display_name(&vm->ident, vm->stats_id, vm->pid, name, sizeof(name)));
	col = mf_putf(f, 0, col, 0, "  pid %d  comm %s  id %llu  vCPUs %u%s  totals %s",
		   (int)vm->pid, vm->ident.comm[0] ? vm->ident.comm : "?",
		   (unsigned long long)vm->id, mf_vm_vcpus(vm->cur),
		   vm->cur->vcpus_over ? "+" : "", v->reset_ns ? "since reset" : "since start");
	if (vm->destroyed)
		mf_put(f, 0, col, "  (destroyed)", MF_ATTR_ALERT);

	err = vm_doc(&d, v, m, vm);
	if (!err) {
		size_t lines = (size_t)d.f.rows;

		if (v->vm_top + body > lines)
			v->vm_top = lines > body ? lines - body : 0;
		for (size_t i = 0; i < body && v->vm_top + i < lines; i++) {
			int src = (int)(v->vm_top + i), dst = (int)i + 1;

			memcpy(mf_frame_text(f, dst), mf_frame_text(&d.f, src), (size_t)f->cols);
			memcpy(f->attr + (size_t)dst * (size_t)f->cols,
			       d.f.attr + (size_t)src * (size_t)f->cols, (size_t)f->cols);
		}
		status_line(v, f);
	}
	mf_live_frame_free(&d.f);
	return err;
}

/* ---- help ----------------------------------------------------------------------- */

static void render_help(const struct mf_live_view *v, struct mf_live_frame *f)
{
	static const char *const keys[] = {
		"q             quit (also Ctrl-C)",
		"h ?           this help",
		"s  >  <       sort by the next / next / previous column",
		"N P V R ...   sort by the column whose letter is underlined; again: reverse",
		"p             filter by pid or name (substring, any case); empty clears",
		"z             hide idle VMs (no exit in the last interval)",
		"r             reset totals (FAULTS, VM screen); the BPF maps are untouched",
		"space         pause the display; counting goes on",
		"Up Down PgUp PgDn Home End   select a VM (scroll on the VM screen)",
		"Enter Right   VM screen: exits by reason, memory faults, MAP_GPA_RANGE"
		" requests and conversions by size and GPA range, discards, vCPU waits",
		"w             VM screen: vCPUs waiting most by longest or by total wait",
		"Esc Bksp Left back to the VM list",
	};
	int row = 0;

	mf_put(f, row++, 0, "memfaulttop live view: keys", MF_ATTR_BOLD);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		mf_putf(f, row++, 2, 0, "%s", keys[i]);
	row++;
	mf_put(f, row++, 0, "Columns (rates are per second over the last interval)", MF_ATTR_BOLD);
	for (int c = 0; c < MF_NR_COLS; c++)
		mf_putf(f, row++, 2, 0, "%c  %-11s %s", mf_live_col_key[c], mf_live_col_label[c],
		     col_help[c]);
	status_line(v, f);
}

int mf_live_render(struct mf_live_view *v, const struct mf_model *m, struct mf_live_frame *f)
{
	const struct mf_vm *vm = NULL;

	mf_frame_clear_rows(f, 0);
	if (f->cols < MF_LIVE_MIN_COLS || f->rows < MF_LIVE_MIN_ROWS) {
		mf_put(f, 0, 0, "terminal too small", MF_ATTR_BOLD);
		return 0;
	}
	/* The VM screen of a reaped VM has nothing left to show. */
	if (v->screen == MF_SCREEN_VM || (v->screen == MF_SCREEN_HELP &&
					  v->help_return == MF_SCREEN_VM)) {
		vm = find_vm(m, v->vm_id);
		if (!vm) {
			if (v->screen == MF_SCREEN_VM)
				v->screen = MF_SCREEN_MAIN;
			else
				v->help_return = MF_SCREEN_MAIN;
		}
	}
	switch (v->screen) {
	case MF_SCREEN_HELP:
		render_help(v, f);
		return 0;
	case MF_SCREEN_VM:
		return render_vm(v, m, f, vm);
	default:
		return render_main(v, m, f);
	}
}
