/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live view's logic without a terminal: keys change a struct
 * mf_live_view, and rendering turns (model, view) into a frame of text
 * cells with attributes. live.c only moves keys in and frames out.
 */
#ifndef MF_LIVE_VIEW_H
#define MF_LIVE_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "model.h"

/* Smaller terminals show "terminal too small". */
#define MF_LIVE_MIN_COLS	20
#define MF_LIVE_MIN_ROWS	4
#define MF_LIVE_FILTER_LEN	64

/* Keys that are no character; live.c maps the terminal's codes to them. */
enum {
	MF_KEY_UP = 0x100,
	MF_KEY_DOWN,
	MF_KEY_LEFT,
	MF_KEY_RIGHT,
	MF_KEY_PGUP,
	MF_KEY_PGDN,
	MF_KEY_HOME,
	MF_KEY_END,
	MF_KEY_ENTER,
	MF_KEY_ESC,
	MF_KEY_BACKSPACE,
};

/* Cell attributes, combined as bits. */
enum {
	MF_ATTR_BOLD = 1,
	MF_ATTR_REVERSE = 2,
	MF_ATTR_UNDERLINE = 4,
	MF_ATTR_DIM = 8,
	MF_ATTR_ALERT = 16,	/* needs attention: drops, PAUSED */
	MF_ATTR_BAR = 32,	/* histogram bars */
};

enum mf_live_col {
	MF_COL_NAME,
	MF_COL_PID,
	MF_COL_VCPUS,
	MF_COL_PRIVATE,		/* private memory-fault exits/s */
	MF_COL_SHARED,		/* shared memory-fault exits/s */
	MF_COL_FAULTS,		/* memory-fault exits since start or reset */
	MF_COL_TO_PRIVATE,	/* MAP_GPA_RANGE to private /s */
	MF_COL_TO_SHARED,	/* MAP_GPA_RANGE to shared /s */
	MF_COL_CONV,		/* VMM conversions /s */
	MF_COL_FLIPS,		/* GPA-range direction changes in the interval */
	MF_COL_EXITS,		/* userspace exits/s */
	MF_COL_TOP_EXIT,	/* most frequent exit reason of the interval */
	MF_NR_COLS,
};

enum mf_live_screen {
	MF_SCREEN_MAIN,
	MF_SCREEN_VM,
	MF_SCREEN_HELP,
};

/* One VM as the main screen shows it. */
struct mf_live_row {
	__u64 id;
	pid_t pid;
	unsigned int vcpus;
	bool destroyed;
	bool storming;		/* past a --storm threshold in the interval */
	double private_s, shared_s, to_private_s, to_shared_s, conv_s, exits_s;
	__u64 faults, flips;
	char name[MF_NAME_LEN];
	char top_exit[24];
};

/* The totals at the last reset of one VM ('r'). */
struct mf_live_base {
	__u64 id;
	struct mf_vm_stats stats;
};

struct mf_live_view {
	enum mf_live_screen screen, help_return;
	enum mf_live_col sort_col;
	bool sort_reverse;	/* against the column's natural order */
	bool hide_idle;
	bool paused;
	bool prompting;		/* the filter prompt owns the keys */
	char filter[MF_LIVE_FILTER_LEN];
	char input[MF_LIVE_FILTER_LEN];
	/* Main screen: rows in display order, selection and first row shown.
	 * The selection follows the VM id; if it goes, the index stays. */
	struct mf_live_row *rows;
	size_t nr_rows, cap_rows;
	size_t sel, top;
	__u64 sel_id;
	int page;		/* table rows that fit, for PgUp/PgDn */
	/* VM screen */
	__u64 vm_id;
	size_t vm_top;
	bool wait_by_max;	/* worst vCPUs by longest wait, else by total */
	/* Reset: totals are shown relative to these snapshots. */
	struct mf_live_base *base;
	size_t nr_base;
	struct mf_range *base_ranges;
	size_t nr_base_ranges;
	__u64 reset_ns;		/* 0: never reset */
	double interval_s;	/* as asked for; the model has the measured one */
	char host[65], release[65];
};

/* rows lines of cols cells; each line's text is NUL-terminated. */
struct mf_live_frame {
	int rows, cols;
	char *text;		/* rows * (cols + 1) */
	unsigned char *attr;	/* rows * cols */
};

enum {
	MF_LIVE_QUIT = 1,	/* returned by mf_live_key */
};

void mf_live_view_init(struct mf_live_view *v, const char *host, const char *release,
		       double interval_s);
void mf_live_view_free(struct mf_live_view *v);

/* Applies one key (a character or MF_KEY_*); MF_LIVE_QUIT, 0 or -errno. */
int mf_live_key(struct mf_live_view *v, const struct mf_model *m, int key);

/* Sorts and filters the VMs into v->rows and keeps the selection valid. */
int mf_live_layout(struct mf_live_view *v, const struct mf_model *m);

int mf_live_frame_resize(struct mf_live_frame *f, int rows, int cols);
void mf_live_frame_free(struct mf_live_frame *f);
static inline const char *mf_live_frame_line(const struct mf_live_frame *f, int row)
{
	return f->text + (size_t)row * (size_t)(f->cols + 1);
}

/* Draws the current screen into f (sized by the caller); 0 or -errno. */
int mf_live_render(struct mf_live_view *v, const struct mf_model *m, struct mf_live_frame *f);

/* Column labels and sort keys, for the help text and tests. */
extern const char *const mf_live_col_label[MF_NR_COLS];
extern const char mf_live_col_key[MF_NR_COLS];

#endif
