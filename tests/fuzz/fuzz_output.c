// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: the output writers fed a model built from the input:
 * up to 4 VMs with any counters (current and previous), names made from
 * any bytes the way the frontend makes them (from a command line), GPA
 * ranges, flips and vCPUs with any values, and trace events of any kind.
 * The JSON record must parse, as must each NDJSON trace line; the metrics
 * exposition must be valid text format (lines, names, quoted and escaped
 * label values, UTF-8); text and the live view (at two sizes) must not
 * crash.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "live_view.h"
#include "metrics.h"
#include "output.h"
#include "trace.h"

#define MAX_VMS 4
#define MAX_ITEMS 8

struct input {
	const uint8_t *p;
	size_t left;
};

/* The next n bytes of the input into out, zeros once it runs out. */
static void take(struct input *in, void *out, size_t n)
{
	size_t k = n < in->left ? n : in->left;

	memcpy(out, in->p, k);
	memset((char *)out + k, 0, n - k);
	in->p += k;
	in->left -= k;
}

static uint8_t byte(struct input *in)
{
	uint8_t b;

	take(in, &b, 1);
	return b;
}

/* A VM name as the frontend gets one: from "-name" and bytes of the input. */
static void make_name(struct input *in, struct mf_vm *vm)
{
	char cmdline[6 + 64 + 1] = "-name";
	size_t n = byte(in) % 64;

	take(in, cmdline + 6, n);
	cmdline[6 + n] = '\0';
	mf_vm_name_from_cmdline(cmdline, 6 + n + 1, vm->ident.name, sizeof(vm->ident.name));
	take(in, vm->stats_id, sizeof(vm->stats_id) - 1);
	/* comm is sanitized the same way: take it through a name too. */
	n = byte(in) % 16;
	memcpy(cmdline + 6, in->p, n < in->left ? n : in->left);
	cmdline[6 + (n < in->left ? n : in->left)] = '\0';
	mf_vm_name_from_cmdline(cmdline, sizeof(cmdline), vm->ident.comm, sizeof(vm->ident.comm));
}

static void check_json(const char *buf)
{
	json_object *o = json_tokener_parse(buf);

	if (!o)
		abort();
	json_object_put(o);
}

/* The code point of the UTF-8 sequence at s (its length in *n), or -1 for
 * an invalid one: overlong, surrogate, past U+10FFFF, cut. */
static long utf8_decode(const unsigned char *s, const unsigned char *end, size_t *n)
{
	static const long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	long cp;

	*n = s[0] < 0x80 ? 1 : s[0] >> 5 == 6 ? 2 : s[0] >> 4 == 14 ? 3 : s[0] >> 3 == 30 ? 4 : 0;
	if (!*n || (size_t)(end - s) < *n)
		return -1;
	cp = *n == 1 ? s[0] : s[0] & (0x7f >> *n);
	for (size_t i = 1; i < *n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min[*n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	return cp;
}

static bool name_char(unsigned char c, bool first)
{
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (!first && c >= '0' && c <= '9');
}

/* One sample line of the text format: name{k="v",...} value. */
static void check_sample(const unsigned char *p, const unsigned char *end)
{
	size_t n;

	if (p == end || !name_char(*p, true))
		abort();
	while (p < end && name_char(*p, false))
		p++;
	if (p < end && *p == '{') {
		do {
			p++;
			if (p == end || !name_char(*p, true))
				abort();
			while (p < end && name_char(*p, false))
				p++;
			if (end - p < 2 || p[0] != '=' || p[1] != '"')
				abort();
			for (p += 2; p < end && *p != '"'; p += n) {
				if (*p == '\\' && (p + 1 == end || !memchr("\\\"n", p[1], 3)))
					abort();
				n = *p == '\\' ? 2 : 1;
				if (n == 1 && utf8_decode(p, end, &n) < 0)
					abort();
			}
			if (p++ == end)
				abort();
		} while (p < end && *p == ',');
		if (p == end || *p++ != '}')
			abort();
	}
	if (p == end || *p++ != ' ' || p == end)
		abort();
	for (; p < end; p++)
		if (!memchr("0123456789.", *p, 11))
			abort();
}

static void check_exposition(const struct mf_text *t)
{
	const unsigned char *p = (const unsigned char *)t->data, *end = p + t->len;

	if (!t->len || end[-1] != '\n')
		abort();
	while (p < end) {
		const unsigned char *eol = memchr(p, '\n', (size_t)(end - p));

		if (*p != '#')
			check_sample(p, eol);
		p = eol + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mf_vm vms[MAX_VMS];
	static struct mf_vm_stats stats[MAX_VMS][2];
	static struct mf_range ranges[MAX_VMS * MAX_ITEMS];
	static struct mf_flip flips[MAX_VMS * MAX_ITEMS];
	static struct mf_vcpu vcpus[MAX_VMS * MAX_ITEMS];
	struct input in = { data, size };
	struct mf_features feat = { .release = "fuzz" };
	struct mf_model m = { .vms = vms, .ranges = ranges, .flips = flips, .vcpus = vcpus,
			      .features = &feat };
	struct mf_live_frame frame = { 0 };
	struct mf_text exposition = { 0 };
	struct mf_live_view view;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	memset(vms, 0, sizeof(vms));
	memset(stats, 0, sizeof(stats));
	m.gpa_shift = 12 + byte(&in) % 41;
	take(&in, &m.prev_ns, sizeof(m.prev_ns));
	take(&in, &m.now_ns, sizeof(m.now_ns));
	take(&in, &m.storm_flips, sizeof(m.storm_flips));
	m.storm_rate = byte(&in);
	take(&in, m.drops, sizeof(m.drops));
	for (int i = 0; i < MF_NR_FEATURES; i++)
		feat.available[i] = byte(&in) & 1;
	m.nr_vms = m.nr_sorted_vms = byte(&in) % (MAX_VMS + 1);
	for (size_t v = 0; v < m.nr_vms; v++) {
		struct mf_vm *vm = &vms[v];

		vm->id = v + 1;
		vm->stats = stats[v];
		vm->cur = &stats[v][0];
		vm->prev = &stats[v][1];
		take(&in, &vm->pid, sizeof(vm->pid));
		vm->destroyed = byte(&in) & 1;
		take(&in, vm->cur, sizeof(*vm->cur));
		take(&in, vm->prev, sizeof(*vm->prev));
		make_name(&in, vm);
		vm->first_range = m.nr_ranges;
		vm->nr_ranges = byte(&in) % MAX_ITEMS;
		for (size_t r = 0; r < vm->nr_ranges; r++, m.nr_ranges++) {
			take(&in, &ranges[m.nr_ranges], sizeof(ranges[0]));
			ranges[m.nr_ranges].vm_id = vm->id;
			ranges[m.nr_ranges].kind %= MF_NR_KINDS;
		}
		vm->first_flip = m.nr_flips;
		vm->nr_flips = byte(&in) % MAX_ITEMS;
		for (size_t r = 0; r < vm->nr_flips; r++, m.nr_flips++) {
			take(&in, &flips[m.nr_flips], sizeof(flips[0]));
			flips[m.nr_flips].vm_id = vm->id;
		}
		vm->first_vcpu = m.nr_vcpus;
		vm->nr_vcpus = byte(&in) % MAX_ITEMS;
		for (size_t r = 0; r < vm->nr_vcpus; r++, m.nr_vcpus++) {
			take(&in, &vcpus[m.nr_vcpus], sizeof(vcpus[0]));
			vcpus[m.nr_vcpus].vm_id = vm->id;
		}
	}

	f = open_memstream(&buf, &len);
	if (!f || mf_json_print(f, &m) || fflush(f))
		abort();
	check_json(buf);
	rewind(f);
	len = 0;
	if (mf_text_print(f, &m))
		abort();
	for (int i = 0; i < 4; i++) {
		struct mf_event ev;

		rewind(f);
		take(&in, &ev, sizeof(ev));
		ev.vm_id = ev.vm_id % (MAX_VMS + 2);
		ev.time_ns %= 1ULL << 62;	/* within a time_t of the wall clock */
		if (mf_trace_print(f, &m, &ev, 0, false))
			abort();
		rewind(f);
		if (mf_trace_print(f, &m, &ev, 0, true) || fflush(f))
			abort();
		if (ev.type < MF_NR_EVENT_TYPES)
			check_json(buf);
	}
	fclose(f);
	free(buf);
	if (mf_metrics_render(&exposition, &m))
		abort();
	check_exposition(&exposition);
	mf_text_free(&exposition);

	mf_live_view_init(&view, "fuzz", "fuzz", 1.0);
	for (int size_i = 0; size_i < 2; size_i++) {
		if (mf_live_frame_resize(&frame, size_i ? 50 : 10, size_i ? 200 : 30) ||
		    mf_live_layout(&view, &m) || mf_live_render(&view, &m, &frame))
			abort();
		/* The selected VM's screen, too. */
		mf_live_key(&view, &m, MF_KEY_ENTER);
		if (mf_live_layout(&view, &m) || mf_live_render(&view, &m, &frame))
			abort();
	}
	mf_live_frame_free(&frame);
	mf_live_view_free(&view);
	return 0;
}
