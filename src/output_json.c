// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * NDJSON records, schema in man/memfaulttop.8. json-c does the escaping
 * (comm and VM names come from other processes and may hold anything).
 */
#define _GNU_SOURCE	/* the stdio *_unlocked calls: the record holds the lock */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include "exit_reason.h"
#include "output.h"
#include "storm.h"

/*
 * A writer that streams the record as it goes, instead of building json-c's
 * object tree (an allocation per object and member, 30-50 ms a refresh at
 * 1,000 active VMs), into a buffer of its own that goes to the stream in
 * large pieces (a stdio call per key and number cost about half of a
 * refresh's JSON at 1,000 VMs). Members come out in the order they are
 * written, as json-c's plain output did; keys are this file's own ASCII
 * constants. Strings and doubles still go through json-c, for its escaping
 * and number format: the text is the same as the tree's was.
 */
#define JW_BUF 16384

struct jw {
	FILE *f;
	bool comma;	/* the container has a member: the next one needs a comma */
	bool failed;	/* json-c found no memory, or the stream failed */
	size_t len;
	char buf[JW_BUF];
};

static void jw_flush(struct jw *w)
{
	if (w->len && fwrite_unlocked(w->buf, 1, w->len, w->f) != w->len)
		w->failed = true;
	w->len = 0;
}

static void jw_put(struct jw *w, const char *s, size_t n)
{
	if (n > JW_BUF - w->len) {
		jw_flush(w);
		if (n > JW_BUF) {
			if (fwrite_unlocked(s, 1, n, w->f) != n)
				w->failed = true;
			return;
		}
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void jw_char(struct jw *w, char c)
{
	if (w->len == JW_BUF)
		jw_flush(w);
	w->buf[w->len++] = c;
}

static void jw_key(struct jw *w, const char *key)
{
	if (w->comma)
		jw_char(w, ',');
	w->comma = true;
	if (key) {
		jw_char(w, '"');
		jw_put(w, key, strlen(key));
		jw_put(w, "\":", 2);
	}
}

/* key NULL: an array element. */
static void jw_open(struct jw *w, const char *key, char bracket)
{
	jw_key(w, key);
	jw_char(w, bracket);
	w->comma = false;
}

static void jw_close(struct jw *w, char bracket)
{
	jw_char(w, bracket);
	w->comma = true;
}

static void jw_u64(struct jw *w, const char *key, __u64 v)
{
	char buf[20];
	size_t i = sizeof(buf);

	jw_key(w, key);
	do
		buf[--i] = (char)('0' + v % 10);
	while (v /= 10);
	jw_put(w, buf + i, sizeof(buf) - i);
}

static void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	if (v)
		jw_put(w, "true", 4);
	else
		jw_put(w, "false", 5);
}

/* A json-c value's text: its escaping and number format. Takes o. */
static void jw_json_c(struct jw *w, const char *key, json_object *o)
{
	const char *text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;

	jw_key(w, key);
	if (text)
		jw_put(w, text, strlen(text));
	else
		w->failed = true;
	json_object_put(o);
}

static void jw_string(struct jw *w, const char *key, const char *v)
{
	jw_json_c(w, key, json_object_new_string(v));
}

static void jw_double(struct jw *w, const char *key, double v)
{
	jw_json_c(w, key, json_object_new_double(v));
}

/* GPAs as "0x..." strings: JSON numbers lose precision above 2^53. */
static void jw_gpa(struct jw *w, const char *key, __u64 gpa)
{
	char buf[2 + 16 + 1];
	size_t i = sizeof(buf);

	jw_key(w, key);
	buf[--i] = '"';
	do
		buf[--i] = "0123456789abcdef"[gpa & 15];
	while (gpa >>= 4);
	buf[--i] = 'x';
	buf[--i] = '0';
	jw_char(w, '"');
	jw_put(w, buf + i, sizeof(buf) - i);
}

static void exits_json(struct jw *w, const struct mf_vm *vm)
{
	jw_open(w, "exits", '{');
	jw_u64(w, "total", mf_vm_exits(vm->cur) - mf_vm_exits(vm->prev));
	jw_open(w, "by_reason", '{');
	for (unsigned int r = 0; r < MF_NR_EXIT_REASONS; r++) {
		__u64 n = vm->cur->exits[r] - vm->prev->exits[r];
		char num[16];

		if (n)
			jw_u64(w, mf_exit_reason_key(r, num, sizeof(num)), n);
	}
	jw_close(w, '}');
	jw_close(w, '}');
}

/* A log2 histogram's non-empty slots in the interval, each with its bounds
 * (slot n holds [2^n, 2^(n+1)), slot 0 also 0). */
static void log2_json(struct jw *w, const char *key, const char *min_key, const char *max_key,
		      const __u64 *cur, const __u64 *prev)
{
	jw_open(w, key, '[');
	for (int i = 0; i < MF_LOG2_SLOTS; i++) {
		__u64 n = cur[i] - prev[i];

		if (!n)
			continue;
		jw_open(w, NULL, '{');
		jw_u64(w, min_key, i ? 1ULL << i : 0);
		jw_u64(w, max_key, i < 63 ? (1ULL << (i + 1)) - 1 : ~0ULL);
		jw_u64(w, "count", n);
		jw_close(w, '}');
	}
	jw_close(w, ']');
}

/* An array element: "start" and "end" of a GPA range, inclusive, left open
 * for the caller's members. */
static void range_json(struct jw *w, const struct mf_model *m, __u64 range)
{
	__u64 start = range << m->gpa_shift;

	jw_open(w, NULL, '{');
	jw_gpa(w, "start", start);
	jw_gpa(w, "end", start + (1ULL << m->gpa_shift) - 1);
}

static void ranges_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm,
			enum mf_kind kind)
{
	jw_open(w, "gpa_ranges", '[');
	for (size_t i = vm->first_range; i < vm->first_range + vm->nr_ranges; i++) {
		const struct mf_range *r = &m->ranges[i];

		if (r->kind != kind || r->count == r->prev_count)
			continue;
		range_json(w, m, r->range);
		jw_u64(w, "count", r->count - r->prev_count);
		jw_u64(w, "bytes", r->bytes - r->prev_bytes);
		jw_close(w, '}');
	}
	jw_close(w, ']');
}

/* A kind's members, in an object the caller opened. */
static void kind_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm,
		      enum mf_kind kind)
{
	const struct mf_hist *cur = &vm->cur->hist[kind], *prev = &vm->prev->hist[kind];

	jw_u64(w, "count", cur->count - prev->count);
	jw_u64(w, "bytes", cur->bytes - prev->bytes);
	log2_json(w, "sizes", "min_bytes", "max_bytes", cur->log2_bytes, prev->log2_bytes);
	ranges_json(w, m, vm, kind);
}

/* A log2 duration histogram's interval: count, total and non-empty slots. */
static void lat_json(struct jw *w, const char *key, const struct mf_lat *cur,
		     const struct mf_lat *prev)
{
	jw_open(w, key, '{');
	jw_u64(w, "count", cur->count - prev->count);
	jw_u64(w, "total_ns", cur->total_ns - prev->total_ns);
	log2_json(w, "log2_ns", "min_ns", "max_ns", cur->log2_ns, prev->log2_ns);
	jw_close(w, '}');
}

/* A class plus pages, as MAP_GPA_RANGE requests and conversions have; the
 * object is left open for the caller's members. */
static void paged_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm,
		       enum mf_kind kind)
{
	jw_open(w, mf_kind_key[kind], '{');
	kind_json(w, m, vm, kind);
	jw_u64(w, "pages", (vm->cur->hist[kind].bytes - vm->prev->hist[kind].bytes) >>
			   MF_MAP_GPA_RANGE_PAGE_SHIFT);
}

static void conversions_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm)
{
	jw_open(w, "conversions", '{');
	for (int dir = MF_TO_SHARED; dir < MF_NR_DIRS; dir++) {
		enum mf_kind kind = dir == MF_TO_PRIVATE ? MF_CONV_TO_PRIVATE : MF_CONV_TO_SHARED;
		const struct mf_conv *cur = &vm->cur->conv[dir], *prev = &vm->prev->conv[dir];

		paged_json(w, m, vm, kind);
		jw_u64(w, "failed", cur->failed - prev->failed);
		jw_open(w, "errors", '{');
		for (unsigned int e = 0; e < MF_ERRNO_SLOTS; e++) {
			__u64 n = cur->errors[e] - prev->errors[e];
			char name[24];

			if (n)
				jw_u64(w, mf_errno_name(e, name, sizeof(name)), n);
		}
		jw_close(w, '}');
		lat_json(w, "time", &cur->time, &prev->time);
		jw_close(w, '}');
	}
	jw_close(w, '}');
}

static void discards_json(struct jw *w, const struct mf_vm *vm)
{
	const struct mf_discard *cur = &vm->cur->discard, *prev = &vm->prev->discard;

	jw_open(w, "discards", '{');
	jw_u64(w, "count", cur->time.count - prev->time.count);
	jw_u64(w, "bytes", cur->bytes - prev->bytes);
	jw_u64(w, "failed", cur->failed - prev->failed);
	lat_json(w, "time", &cur->time, &prev->time);
	jw_close(w, '}');
}

static void waits_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm)
{
	const struct mf_vcpu *top[MF_WORST_VCPUS];
	size_t n = mf_vm_worst_vcpus(m, vm, false, true, top, MF_WORST_VCPUS);

	jw_open(w, "waits", '{');
	for (int kind = 0; kind < MF_NR_EXIT_KINDS; kind++)
		lat_json(w, mf_kind_key[kind], &vm->cur->wait[kind], &vm->prev->wait[kind]);
	jw_open(w, "worst_vcpus", '[');
	for (size_t i = 0; i < n; i++) {
		jw_open(w, NULL, '{');
		jw_u64(w, "vcpu", top[i]->vcpu_id);
		jw_u64(w, "count", top[i]->cur.count - top[i]->prev.count);
		jw_u64(w, "total_ns", top[i]->cur.total_ns - top[i]->prev.total_ns);
		jw_u64(w, "max_ns", top[i]->cur.max_ns);
		jw_close(w, '}');
	}
	jw_close(w, ']');
	jw_close(w, '}');
}

/* Every range that changed direction in the interval, in GPA order. */
static void flips_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm)
{
	jw_open(w, "flips", '{');
	jw_u64(w, "count", vm->cur->flips - vm->prev->flips);
	jw_open(w, "gpa_ranges", '[');
	for (size_t i = vm->first_flip; i < vm->first_flip + vm->nr_flips; i++) {
		const struct mf_flip *f = &m->flips[i];

		if (f->flips == f->prev_flips)
			continue;
		range_json(w, m, f->range);
		jw_u64(w, "flips", f->flips - f->prev_flips);
		jw_u64(w, "total", f->flips);
		jw_close(w, '}');
	}
	jw_close(w, ']');
	jw_close(w, '}');
}

static void storm_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm)
{
	struct mf_storm st;

	mf_vm_storm(m, vm, &st);
	jw_open(w, "storm", '{');
	jw_bool(w, "storming", st.storming);
	jw_open(w, "reasons", '[');
	if (st.by_rate)
		jw_string(w, NULL, "rate");
	if (st.flapping)
		jw_string(w, NULL, "flapping");
	jw_close(w, ']');
	jw_double(w, "rate_per_s", st.rate);
	jw_u64(w, "flapping_ranges", st.flapping);
	jw_close(w, '}');
}

static void faults_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm)
{
	jw_open(w, "memory_faults", '{');
	jw_open(w, "private", '{');
	kind_json(w, m, vm, MF_FAULT_PRIVATE);
	jw_close(w, '}');
	jw_open(w, "shared", '{');
	kind_json(w, m, vm, MF_FAULT_SHARED);
	jw_close(w, '}');
	jw_open(w, "unknown_flag_bits", '{');
	for (int bit = 0; bit < MF_FLAG_BITS; bit++) {
		__u64 n = vm->cur->fault_flag_bits[bit] - vm->prev->fault_flag_bits[bit];
		char key[8];

		if (!n)
			continue;
		snprintf(key, sizeof(key), "%d", bit);
		jw_u64(w, key, n);
	}
	jw_close(w, '}');
	jw_close(w, '}');
}

static void vm_json(struct jw *w, const struct mf_model *m, const struct mf_vm *vm)
{
	char name[MF_NAME_LEN];

	jw_open(w, NULL, '{');
	jw_u64(w, "id", vm->id);
	jw_u64(w, "pid", (__u64)vm->pid);	/* a tgid: never negative */
	jw_string(w, "comm", vm->ident.comm);
	jw_string(w, "name",
		  mf_vm_display_name(&vm->ident, vm->stats_id, vm->pid, name, sizeof(name)));
	jw_string(w, "stats_id", vm->stats_id);
	jw_bool(w, "destroyed", vm->destroyed);
	jw_u64(w, "vcpus", mf_vm_vcpus(vm->cur));
	exits_json(w, vm);
	faults_json(w, m, vm);
	jw_open(w, "map_gpa_range", '{');
	for (int dir = MF_TO_SHARED; dir < MF_NR_DIRS; dir++) {
		paged_json(w, m, vm, dir == MF_TO_PRIVATE ? MF_MAP_TO_PRIVATE : MF_MAP_TO_SHARED);
		jw_u64(w, "requests", vm->cur->map_requests[dir] - vm->prev->map_requests[dir]);
		jw_close(w, '}');
	}
	jw_close(w, '}');
	conversions_json(w, m, vm);
	discards_json(w, vm);
	waits_json(w, m, vm);
	flips_json(w, m, vm);
	storm_json(w, m, vm);
	jw_u64(w, "range_drops", vm->cur->range_drops - vm->prev->range_drops);
	jw_close(w, '}');
}

/* The kernel's release and features, in every record: a consumer may
 * start reading anywhere. */
static void kernel_json(struct jw *w, const struct mf_features *feat)
{
	jw_open(w, "kernel", '{');
	jw_string(w, "release", feat->release);
	jw_open(w, "features", '{');
	for (int i = 0; i < MF_NR_FEATURES; i++)
		jw_bool(w, mf_feature_key[i], feat->available[i]);
	jw_close(w, '}');
	jw_open(w, "unavailable", '{');
	for (int i = 0; i < MF_NR_FEATURES; i++)
		if (!feat->available[i])
			jw_string(w, mf_feature_key[i], mf_feature_why(feat, i));
	jw_close(w, '}');
	jw_close(w, '}');
}

/* Every record is one line, flushed when complete; "vms" comes last. */
int mf_json_print(FILE *f, const struct mf_model *m)
{
	struct jw w = { .f = f };
	struct timespec ts;
	char stamp[40];
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	flockfile(f);
	jw_open(&w, NULL, '{');
	jw_string(&w, "schema", "memfaulttop");
	jw_u64(&w, "version", MF_JSON_SCHEMA_VERSION);
	jw_string(&w, "time", stamp);
	jw_u64(&w, "interval_ns", m->now_ns - m->prev_ns);
	jw_u64(&w, "gpa_range_bytes", 1ULL << m->gpa_shift);
	jw_open(&w, "drops", '{');
	for (int d = 0; d < MF_NR_DROPS; d++)
		jw_u64(&w, mf_drop_key[d], m->drops[d] - m->prev_drops[d]);
	jw_close(&w, '}');
	jw_open(&w, "storm_thresholds", '{');
	jw_double(&w, "rate_per_s", m->storm_rate);
	jw_u64(&w, "flips_per_interval", m->storm_flips);
	jw_close(&w, '}');
	if (m->features)
		kernel_json(&w, m->features);
	jw_open(&w, "vms", '[');
	for (size_t i = 0; i < m->nr_vms && !w.failed; i++)
		if (mf_vm_active(&m->vms[i]))
			vm_json(&w, m, &m->vms[i]);
	jw_close(&w, ']');
	jw_close(&w, '}');
	jw_char(&w, '\n');
	jw_flush(&w);
	funlockfile(f);
	return w.failed || ferror(f) || fflush(f) ? -EIO : 0;
}
