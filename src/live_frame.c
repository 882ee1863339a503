// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Frames of text cells with attributes, and documents that grow by lines. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "live_frame.h"

char *mf_frame_text(struct mf_live_frame *f, int row)
{
	return f->text + (size_t)row * (size_t)(f->cols + 1);
}

void mf_frame_clear_rows(struct mf_live_frame *f, int from)
{
	for (int row = from; row < f->rows; row++) {
		memset(mf_frame_text(f, row), ' ', (size_t)f->cols);
		mf_frame_text(f, row)[f->cols] = '\0';
		memset(f->attr + (size_t)row * (size_t)f->cols, 0, (size_t)f->cols);
	}
}

static int frame_alloc(struct mf_live_frame *f, int rows, int cols)
{
	char *text = realloc(f->text, (size_t)rows * (size_t)(cols + 1) + 1);
	unsigned char *attr;

	if (!text)
		return -ENOMEM;
	f->text = text;
	attr = realloc(f->attr, (size_t)rows * (size_t)cols + 1);
	if (!attr)
		return -ENOMEM;
	f->attr = attr;
	f->rows = rows;
	f->cols = cols;
	return 0;
}

int mf_live_frame_resize(struct mf_live_frame *f, int rows, int cols)
{
	int err;

	if (rows < 0 || cols < 0)
		return -EINVAL;
	err = frame_alloc(f, rows, cols);
	if (!err)
		mf_frame_clear_rows(f, 0);
	return err;
}

void mf_live_frame_free(struct mf_live_frame *f)
{
	free(f->text);
	free(f->attr);
	memset(f, 0, sizeof(*f));
}

/* Writes s from (row, col), clipped to the frame; returns the next column. */
int mf_put(struct mf_live_frame *f, int row, int col, const char *s, unsigned int attr)
{
	char *line;
	unsigned char *a;

	if (row < 0 || row >= f->rows)
		return col;
	line = mf_frame_text(f, row);
	a = f->attr + (size_t)row * (size_t)f->cols;
	for (; *s && col < f->cols; s++, col++) {
		/* Names come from other processes' command lines. */
		line[col] = isprint((unsigned char)*s) ? *s : '?';
		a[col] = (unsigned char)attr;
	}
	return col;
}

int mf_putf(struct mf_live_frame *f, int row, int col, unsigned int attr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return mf_put(f, row, col, buf, attr);
}

void mf_row_attr(struct mf_live_frame *f, int row, unsigned int attr)
{
	if (row < 0 || row >= f->rows)
		return;
	for (int col = 0; col < f->cols; col++)
		f->attr[(size_t)row * (size_t)f->cols + (size_t)col] |= (unsigned char)attr;
}

int mf_doc_line(struct mf_doc *d)
{
	if (d->f.rows == d->cap) {
		int cap = d->cap ? 2 * d->cap : 64, rows = d->f.rows, err;

		err = frame_alloc(&d->f, cap, d->f.cols);
		if (err)
			return err;
		d->f.rows = rows;
		d->cap = cap;
	}
	d->f.rows++;
	mf_frame_clear_rows(&d->f, d->f.rows - 1);
	return d->f.rows - 1;
}

int mf_doc_text(struct mf_doc *d, unsigned int attr, const char *fmt, ...)
{
	int row = mf_doc_line(d);
	char buf[512];
	va_list ap;

	if (row < 0)
		return row;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	mf_put(&d->f, row, 0, buf, attr);
	return 0;
}

