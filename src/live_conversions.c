// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The VM screen's lines about the VMM's service; see live_conversions.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "hist.h"
#include "kernel_features.h"
#include "live_conversions.h"
#include "live_view.h"
#include "opts.h"
#include "output.h"
#include "storm.h"

#define WORST_LINES	8

struct sink {
	mf_live_line_fn line;
	void *ctx;
	int cols;
};

__attribute__((format(printf, 3, 4)))
static int say(const struct sink *s, unsigned int attr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return s->line(s->ctx, attr, buf);
}

static const struct mf_lat zero_lat;

/* A duration histogram since start or reset: title line, then its slots. */
static int lat_block(const struct sink *s, const char *title, const struct mf_lat *cur,
		     const struct mf_lat *base)
{
	__u64 slots[MF_LOG2_SLOTS], n = cur->count - base->count, max = 0;
	char avg[16], worst[16];
	int lo, hi, err, bar_w = s->cols - 36;

	if (!n)
		return say(s, MF_ATTR_DIM, "%s: (none)", title);
	mf_lat_delta(cur, base, slots);
	err = say(s, MF_ATTR_UNDERLINE, "%s: %llu, average %s, longest %s since start", title,
		  (unsigned long long)n,
		  mf_format_ns((cur->total_ns - base->total_ns) / n, avg, sizeof(avg)),
		  mf_format_ns(cur->max_ns, worst, sizeof(worst)));
	/* A count read ahead of its slots (the kernel adds to both, not at
	 * once) leaves nothing to draw. */
	if (!mf_hist_span(slots, &lo, &hi))
		return err;
	for (int i = lo; i <= hi; i++)
		if (slots[i] > max)
			max = slots[i];
	for (int i = lo; !err && i <= hi; i++) {
		char from[16], to[16], bar[256] = "";
		int len = bar_w > 0 ? (int)((slots[i] * (__u64)bar_w + max - 1) / max) : 0;

		if (len > (int)sizeof(bar) - 1)
			len = (int)sizeof(bar) - 1;
		memset(bar, '#', (size_t)len);
		bar[len] = '\0';
		mf_hist_ns_bounds(i, from, to);
		err = say(s, 0, "  %8s -> %-8s %10llu  %s", from, to, (unsigned long long)slots[i],
			  bar);
	}
	return err;
}

static int conversions(const struct sink *s, const struct mf_vm *vm, const struct mf_vm_stats *b)
{
	const struct mf_discard *dc = &vm->cur->discard, *db = b ? &b->discard : NULL;
	char bytes[16], title[64];
	int err = 0;

	for (int dir = MF_TO_PRIVATE; !err && dir >= MF_TO_SHARED; dir--) {
		const struct mf_conv *c = &vm->cur->conv[dir], *cb = b ? &b->conv[dir] : NULL;
		enum mf_kind kind = dir == MF_TO_PRIVATE ? MF_CONV_TO_PRIVATE : MF_CONV_TO_SHARED;
		char errors[256] = "";
		size_t used = 0;

		for (unsigned int e = 0; e < MF_ERRNO_SLOTS && used < sizeof(errors); e++) {
			__u64 n = c->errors[e] - (cb ? cb->errors[e] : 0);
			char name[24];

			if (n)
				used += (size_t)snprintf(errors + used, sizeof(errors) - used, " %s %llu",
							 mf_errno_name(e, name, sizeof(name)),
							 (unsigned long long)n);
		}
		err = say(s, c->failed - (cb ? cb->failed : 0) ? MF_ATTR_ALERT : 0,
			  "%s failed: %llu%s", mf_kind_label[kind],
			  (unsigned long long)(c->failed - (cb ? cb->failed : 0)), errors);
		snprintf(title, sizeof(title), "%s, kernel time per call", mf_kind_label[kind]);
		if (!err)
			err = lat_block(s, title, &c->time, cb ? &cb->time : &zero_lat);
	}
	if (!err)
		err = say(s, MF_ATTR_BOLD, "guest_memfd discards (hole punches): %llu, %sB, failed %llu",
			  (unsigned long long)(dc->time.count - (db ? db->time.count : 0)),
			  mf_format_size(dc->bytes - (db ? db->bytes : 0), bytes, sizeof(bytes)),
			  (unsigned long long)(dc->failed - (db ? db->failed : 0)));
	if (!err)
		err = lat_block(s, "discard time per call", &dc->time, db ? &db->time : &zero_lat);
	return err;
}

static int waits(const struct sink *s, const struct mf_model *m, const struct mf_vm *vm,
		 const struct mf_vm_stats *b, bool by_max)
{
	static const enum mf_kind order[] = {
		MF_FAULT_PRIVATE, MF_FAULT_SHARED, MF_MAP_TO_PRIVATE, MF_MAP_TO_SHARED,
	};
	const struct mf_vcpu *top[WORST_LINES];
	size_t n = mf_vm_worst_vcpus(m, vm, by_max, false, top, WORST_LINES);
	char title[96], total[16], max[16], avg[16];
	int err = say(s, MF_ATTR_BOLD, "vCPU waits for the VMM: from the exit to the next KVM_RUN");

	for (size_t i = 0; !err && i < sizeof(order) / sizeof(order[0]); i++) {
		snprintf(title, sizeof(title), "after %s", mf_kind_label[order[i]]);
		err = lat_block(s, title, &vm->cur->wait[order[i]],
				b ? &b->wait[order[i]] : &zero_lat);
	}
	if (!err)
		err = say(s, MF_ATTR_BOLD, "vCPUs waiting most since start, by %s ('w' switches)",
			  by_max ? "longest wait" : "total wait");
	if (!err && n)
		err = say(s, MF_ATTR_UNDERLINE, "  %6s %10s %12s %10s %10s", "VCPU", "WAITS", "TOTAL",
			  "AVERAGE", "LONGEST");
	for (size_t i = 0; !err && i < n; i++)
		err = say(s, 0, "  %6u %10llu %12s %10s %10s", top[i]->vcpu_id,
			  (unsigned long long)top[i]->cur.count,
			  mf_format_ns(top[i]->cur.total_ns, total, sizeof(total)),
			  mf_format_ns(top[i]->cur.count ? top[i]->cur.total_ns / top[i]->cur.count : 0,
				       avg, sizeof(avg)),
			  mf_format_ns(top[i]->cur.max_ns, max, sizeof(max)));
	if (!err && !n)
		err = say(s, MF_ATTR_DIM, "  (none)");
	return err;
}

/* What this kernel cannot show, instead of empty figures that look like news. */
static int missing(const struct sink *s, const struct mf_model *m, enum mf_feature f, bool *ok)
{
	*ok = !m->features || m->features->available[f];
	return *ok ? 0 : say(s, MF_ATTR_DIM, "%s unavailable: %s", mf_feature_key[f],
			     mf_feature_why(m->features, f));
}

int mf_live_flips(mf_live_line_fn line, void *ctx, const struct mf_model *m,
		  const struct mf_vm *vm)
{
	const struct sink s = { line, ctx, 0 };
	const struct mf_flip *top[MF_TOP_FLIPS];
	size_t n = mf_vm_top_flips(m, vm, top, MF_TOP_FLIPS);
	struct mf_storm st;
	char width[16];
	int err;

	mf_vm_storm(m, vm, &st);
	err = say(&s, 0, "%s", "");
	if (!err && st.storming)
		err = say(&s, MF_ATTR_ALERT, "STORM: %.1f faults, requests and conversions/s"
			  " (threshold %.1f), %zu GPA ranges flipped %llu+ times", st.rate,
			  m->storm_rate, st.flapping, (unsigned long long)m->storm_flips);
	if (!err)
		err = say(&s, MF_ATTR_UNDERLINE, "GPA ranges (%s each) flipping most in the last"
			  " interval: %llu flips", mf_format_size(1ULL << m->gpa_shift, width,
							sizeof(width)),
			  (unsigned long long)st.flips);
	for (size_t i = 0; !err && i < n; i++) {
		__u64 start = top[i]->range << m->gpa_shift;

		err = say(&s, 0, "  0x%016llx-0x%016llx %8llu  (%llu since start)",
			  (unsigned long long)start,
			  (unsigned long long)(start + (1ULL << m->gpa_shift) - 1),
			  (unsigned long long)(top[i]->flips - top[i]->prev_flips),
			  (unsigned long long)top[i]->flips);
	}
	if (!err && !n)
		err = say(&s, MF_ATTR_DIM, "%s", "  (none)");
	return err;
}

int mf_live_vmm_service(mf_live_line_fn line, void *ctx, const struct mf_model *m,
			const struct mf_vm *vm, const struct mf_vm_stats *base, bool by_max,
			int cols)
{
	const struct sink s = { line, ctx, cols };
	bool conv, disc, wait;
	int err = missing(&s, m, MF_FEAT_CONVERSIONS, &conv);

	if (!err)
		err = missing(&s, m, MF_FEAT_DISCARDS, &disc);
	if (!err)
		err = missing(&s, m, MF_FEAT_WAIT_LATENCY, &wait);
	if (!err && (conv || disc))
		err = conversions(&s, vm, base);
	if (!err)
		err = say(&s, 0, "%s", "");
	if (!err && wait)
		err = waits(&s, m, vm, base, by_max);
	return err;
}
