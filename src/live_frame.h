/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Drawing for the live view's screens: text written into a frame of cells
 * (clipped, non-printable characters shown as '?'), and a document that
 * grows by one line at a time, for screens taller than the terminal.
 */
#ifndef MF_LIVE_FRAME_H
#define MF_LIVE_FRAME_H

#include "live_view.h"

char *mf_frame_text(struct mf_live_frame *f, int row);
void mf_frame_clear_rows(struct mf_live_frame *f, int from);

/* Writes s from (row, col), clipped to the frame; returns the next column. */
int mf_put(struct mf_live_frame *f, int row, int col, const char *s, unsigned int attr);
__attribute__((format(printf, 5, 6)))
int mf_putf(struct mf_live_frame *f, int row, int col, unsigned int attr, const char *fmt, ...);
/* Adds attr to every cell of the row. */
void mf_row_attr(struct mf_live_frame *f, int row, unsigned int attr);

/* A frame that grows by one line at a time: the VM screen before scrolling. */
struct mf_doc {
	struct mf_live_frame f;
	int cap;
};

/* Appends a blank line; returns its row or -errno. */
int mf_doc_line(struct mf_doc *d);
/* Appends a line of text; 0 or -errno. */
__attribute__((format(printf, 3, 4)))
int mf_doc_text(struct mf_doc *d, unsigned int attr, const char *fmt, ...);

#endif
