// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The live view's terminal side: keys in, frames out, through ncurses. */
#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/utsname.h>
#include "live.h"
#include "live_view.h"

enum { PAIR_ALERT = 1, PAIR_BAR };

struct held_stderr {
	int saved;		/* the terminal, while stderr goes to tmp */
	FILE *tmp;
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* libbpf and the model may print while curses owns the terminal: keep it
 * in a file and print it once the terminal is restored. */
static int hold_stderr(struct held_stderr *h)
{
	fflush(stderr);
	h->tmp = tmpfile();
	if (!h->tmp)
		return -errno;
	h->saved = dup(STDERR_FILENO);
	if (h->saved < 0 || dup2(fileno(h->tmp), STDERR_FILENO) < 0) {
		int err = -errno;

		if (h->saved >= 0)
			close(h->saved);
		fclose(h->tmp);
		h->tmp = NULL;
		return err;
	}
	return 0;
}

static void release_stderr(struct held_stderr *h)
{
	char buf[4096];
	size_t n;

	if (!h->tmp)
		return;
	fflush(stderr);
	dup2(h->saved, STDERR_FILENO);
	close(h->saved);
	rewind(h->tmp);
	while ((n = fread(buf, 1, sizeof(buf), h->tmp)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(h->tmp);
	h->tmp = NULL;
}

/* A private copy of the model: what a paused view keeps showing while the
 * live model goes on being refreshed and reaped. */
static int freeze(struct mf_model *dst, const struct mf_model *src)
{
	*dst = *src;
	dst->fresh = NULL;
	dst->nr_fresh = dst->cap_fresh = 0;
	dst->vms = malloc((src->nr_vms + 1) * sizeof(*dst->vms));
	dst->ranges = malloc((src->nr_ranges + 1) * sizeof(*dst->ranges));
	if (!dst->vms || !dst->ranges) {
		mf_model_free(dst);
		return -ENOMEM;
	}
	/* memcpy wants valid pointers even for 0 bytes; an empty model has none. */
	if (src->nr_vms)
		memcpy(dst->vms, src->vms, src->nr_vms * sizeof(*dst->vms));
	if (src->nr_ranges)
		memcpy(dst->ranges, src->ranges, src->nr_ranges * sizeof(*dst->ranges));
	dst->cap_vms = src->nr_vms;
	dst->cap_ranges = src->nr_ranges;
	return 0;
}

static int map_key(int ch)
{
	switch (ch) {
	case KEY_UP:
		return MF_KEY_UP;
	case KEY_DOWN:
		return MF_KEY_DOWN;
	case KEY_LEFT:
		return MF_KEY_LEFT;
	case KEY_RIGHT:
		return MF_KEY_RIGHT;
	case KEY_PPAGE:
		return MF_KEY_PGUP;
	case KEY_NPAGE:
		return MF_KEY_PGDN;
	case KEY_HOME:
		return MF_KEY_HOME;
	case KEY_END:
		return MF_KEY_END;
	case KEY_ENTER:
	case '\n':
	case '\r':
		return MF_KEY_ENTER;
	case 27:
		return MF_KEY_ESC;
	case KEY_BACKSPACE:
	case 127:
	case '\b':
		return MF_KEY_BACKSPACE;
	default:
		return ch >= 0 && ch < 0x100 ? ch : -1;
	}
}

static attr_t curses_attr(unsigned int a)
{
	attr_t c = A_NORMAL;

	if (a & MF_ATTR_BOLD)
		c |= A_BOLD;
	if (a & MF_ATTR_REVERSE)
		c |= A_REVERSE;
	if (a & MF_ATTR_UNDERLINE)
		c |= A_UNDERLINE;
	if (a & MF_ATTR_DIM)
		c |= A_DIM;
	if (a & MF_ATTR_ALERT)
		c |= A_BOLD | (has_colors() ? COLOR_PAIR(PAIR_ALERT) : A_REVERSE);
	if ((a & MF_ATTR_BAR) && has_colors())
		c |= COLOR_PAIR(PAIR_BAR);
	return c;
}

static void draw(const struct mf_live_frame *f)
{
	for (int row = 0; row < f->rows; row++) {
		const char *text = mf_live_frame_line(f, row);
		const unsigned char *a = f->attr + (size_t)row * (size_t)f->cols;

		/* One call per run of equal attributes. The bottom-right cell
		 * makes addnstr fail (no room for the cursor) but is drawn. */
		for (int col = 0, end; col < f->cols; col = end) {
			for (end = col; end < f->cols && a[end] == a[col]; end++)
				;
			attrset(curses_attr(a[col]));
			mvaddnstr(row, col, text + col, end - col);
		}
	}
	attrset(A_NORMAL);
	refresh();
}

static int show(struct mf_live_view *v, const struct mf_model *m, struct mf_live_frame *f)
{
	int rows, cols, err;

	getmaxyx(stdscr, rows, cols);
	if (rows != f->rows || cols != f->cols) {
		err = mf_live_frame_resize(f, rows, cols);
		if (err)
			return err;
	}
	err = mf_live_render(v, m, f);
	if (!err)
		draw(f);
	return err;
}

static void init_colors(void)
{
	short bg = COLOR_BLACK;

	if (!has_colors() || start_color() == ERR)
		return;
	if (use_default_colors() == OK)
		bg = -1;
	init_pair(PAIR_ALERT, COLOR_RED, bg);
	init_pair(PAIR_BAR, COLOR_GREEN, bg);
}

/* The loop proper; what failed is described in *what. */
static int loop(struct mf_model *m, const struct mf_opts *opts, volatile sig_atomic_t *exiting,
		struct mf_exporter *ex, struct mf_live_view *v, const char **what)
{
	__u64 interval = (__u64)(opts->interval_s * 1e9), next = now_ns() + interval, end = 0;
	struct mf_live_frame f = { 0 };
	struct mf_model frozen = { 0 };
	long refreshes = 0;
	int err;

	if (opts->duration_s > 0)
		end = now_ns() + (__u64)(opts->duration_s * 1e9);
	*what = "cannot draw";
	err = show(v, m, &f);
	while (!err && !*exiting) {
		__u64 now = now_ns();
		int ch, key;
		bool was_paused;

		if (end && next > end)
			next = end;
		if (now >= next) {
			*what = "cannot read the BPF maps";
			err = mf_model_refresh(m);
			if (err)
				break;
			refreshes++;
			/* Paused or not: scrapers see every refresh. */
			*what = "cannot render the metrics";
			err = ex ? mf_exporter_publish(ex, m) : 0;
			if (err)
				break;
			/* After a stop (SIGTSTP), start over instead of catching up. */
			next = next + interval > now ? next + interval : now + interval;
			*what = "cannot draw";
			if (!v->paused)
				err = show(v, m, &f);
			if (err)
				break;
			/* Destroyed VMs go once they have been on screen. */
			*what = "cannot forget destroyed VMs";
			err = mf_model_reap(m);
			if ((opts->count && refreshes >= opts->count) || (end && now >= end))
				break;
			continue;
		}
		timeout((int)((next - now + 999999) / 1000000));
		ch = getch();
		/* ERR: the timeout, or a signal that may have set *exiting. */
		if (ch == ERR)
			continue;
		*what = "cannot draw";
		key = ch == KEY_RESIZE ? -1 : map_key(ch);
		if (key >= 0) {
			was_paused = v->paused;
			err = mf_live_key(v, v->paused ? &frozen : m, key);
			if (err == MF_LIVE_QUIT) {
				err = 0;
				break;
			}
			if (!err && v->paused != was_paused) {
				if (v->paused)
					err = freeze(&frozen, m);
				else
					mf_model_free(&frozen);
			}
		}
		if (!err)
			err = show(v, v->paused ? &frozen : m, &f);
	}
	mf_model_free(&frozen);
	mf_live_frame_free(&f);
	return err;
}

int mf_live_run(struct mf_model *m, const struct mf_opts *opts, volatile sig_atomic_t *exiting,
		struct mf_exporter *ex)
{
	struct held_stderr held = { .saved = -1 };
	struct mf_live_view v;
	struct utsname u;
	const char *what = NULL;
	SCREEN *scr;
	int err;

	if (uname(&u)) {
		strcpy(u.nodename, "?");
		strcpy(u.release, "?");
	}
	mf_live_view_init(&v, u.nodename, u.release, opts->interval_s);
	/* newterm, unlike initscr, returns instead of exiting on failure. */
	scr = newterm(NULL, stdout, stdin);
	if (!scr) {
		fprintf(stderr, "memfaulttop: cannot use this terminal (TERM=%s) for the live view;"
			" -b prints text\n", getenv("TERM") ? getenv("TERM") : "");
		return -ENOTTY;
	}
	err = isatty(STDERR_FILENO) ? hold_stderr(&held) : 0;
	if (!err) {
		cbreak();
		noecho();
		keypad(stdscr, TRUE);
		curs_set(0);
		set_escdelay(25);	/* Esc is a key here, not just a prefix */
		init_colors();
		err = loop(m, opts, exiting, ex, &v, &what);
	} else {
		what = "cannot redirect stderr";
	}
	endwin();
	delscreen(scr);
	release_stderr(&held);
	if (err)
		fprintf(stderr, "memfaulttop: %s: %s\n", what, strerror(-err));
	mf_live_view_free(&v);
	return err;
}
