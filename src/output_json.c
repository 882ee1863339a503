// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * NDJSON records, schema in man/memfaulttop.8. json-c does the escaping
 * (comm and VM names come from other processes and may hold anything).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include "exit_reason.h"
#include "output.h"
#include "storm.h"

/* GPAs as "0x..." strings: JSON numbers lose precision above 2^53. */
static json_object *gpa_string(__u64 gpa)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)gpa);
	return json_object_new_string(buf);
}

static void add_u64(json_object *o, const char *key, __u64 v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static json_object *exits_json(const struct mf_vm *vm)
{
	json_object *o = json_object_new_object(), *by = json_object_new_object();

	add_u64(o, "total", mf_vm_exits(&vm->cur) - mf_vm_exits(&vm->prev));
	for (unsigned int r = 0; r < MF_NR_EXIT_REASONS; r++) {
		__u64 n = vm->cur.exits[r] - vm->prev.exits[r];
		char num[16];

		if (n)
			add_u64(by, mf_exit_reason_key(r, num, sizeof(num)), n);
	}
	json_object_object_add(o, "by_reason", by);
	return o;
}

static json_object *sizes_json(const struct mf_hist *cur, const struct mf_hist *prev)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < MF_LOG2_SLOTS; i++) {
		__u64 n = cur->log2_bytes[i] - prev->log2_bytes[i];
		json_object *slot;

		if (!n)
			continue;
		slot = json_object_new_object();
		add_u64(slot, "min_bytes", i ? 1ULL << i : 0);
		add_u64(slot, "max_bytes", i < 63 ? (1ULL << (i + 1)) - 1 : ~0ULL);
		add_u64(slot, "count", n);
		json_object_array_add(a, slot);
	}
	return a;
}

/* "start" and "end" of a GPA range, inclusive. */
static json_object *range_json(const struct mf_model *m, __u64 range)
{
	json_object *o = json_object_new_object();
	__u64 start = range << m->gpa_shift;

	json_object_object_add(o, "start", gpa_string(start));
	json_object_object_add(o, "end", gpa_string(start + (1ULL << m->gpa_shift) - 1));
	return o;
}

static json_object *ranges_json(const struct mf_model *m, const struct mf_vm *vm,
				enum mf_kind kind)
{
	json_object *a = json_object_new_array();

	for (size_t i = vm->first_range; i < vm->first_range + vm->nr_ranges; i++) {
		const struct mf_range *r = &m->ranges[i];
		json_object *o;

		if (r->kind != kind || r->count == r->prev_count)
			continue;
		o = range_json(m, r->range);
		add_u64(o, "count", r->count - r->prev_count);
		add_u64(o, "bytes", r->bytes - r->prev_bytes);
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *kind_json(const struct mf_model *m, const struct mf_vm *vm,
			      enum mf_kind kind)
{
	const struct mf_hist *cur = &vm->cur.hist[kind], *prev = &vm->prev.hist[kind];
	json_object *o = json_object_new_object();

	add_u64(o, "count", cur->count - prev->count);
	add_u64(o, "bytes", cur->bytes - prev->bytes);
	json_object_object_add(o, "sizes", sizes_json(cur, prev));
	json_object_object_add(o, "gpa_ranges", ranges_json(m, vm, kind));
	return o;
}

/* A log2 duration histogram's interval: count, total and non-empty slots. */
static json_object *lat_json(const struct mf_lat *cur, const struct mf_lat *prev)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	add_u64(o, "count", cur->count - prev->count);
	add_u64(o, "total_ns", cur->total_ns - prev->total_ns);
	for (int i = 0; i < MF_LOG2_SLOTS; i++) {
		__u64 n = cur->log2_ns[i] - prev->log2_ns[i];
		json_object *slot;

		if (!n)
			continue;
		slot = json_object_new_object();
		add_u64(slot, "min_ns", i ? 1ULL << i : 0);
		add_u64(slot, "max_ns", i < 63 ? (1ULL << (i + 1)) - 1 : ~0ULL);
		add_u64(slot, "count", n);
		json_object_array_add(a, slot);
	}
	json_object_object_add(o, "log2_ns", a);
	return o;
}

/* A class plus pages, as MAP_GPA_RANGE requests and conversions have. */
static json_object *paged_json(const struct mf_model *m, const struct mf_vm *vm,
			       enum mf_kind kind)
{
	json_object *k = kind_json(m, vm, kind);

	add_u64(k, "pages", (vm->cur.hist[kind].bytes - vm->prev.hist[kind].bytes) >>
			    MF_MAP_GPA_RANGE_PAGE_SHIFT);
	return k;
}

static json_object *conversions_json(const struct mf_model *m, const struct mf_vm *vm)
{
	json_object *o = json_object_new_object();

	for (int dir = MF_TO_SHARED; dir < MF_NR_DIRS; dir++) {
		enum mf_kind kind = dir == MF_TO_PRIVATE ? MF_CONV_TO_PRIVATE : MF_CONV_TO_SHARED;
		const struct mf_conv *cur = &vm->cur.conv[dir], *prev = &vm->prev.conv[dir];
		json_object *k = paged_json(m, vm, kind), *errors = json_object_new_object();

		add_u64(k, "failed", cur->failed - prev->failed);
		for (unsigned int e = 0; e < MF_ERRNO_SLOTS; e++) {
			__u64 n = cur->errors[e] - prev->errors[e];
			char name[24];

			if (n)
				add_u64(errors, mf_errno_name(e, name, sizeof(name)), n);
		}
		json_object_object_add(k, "errors", errors);
		json_object_object_add(k, "time", lat_json(&cur->time, &prev->time));
		json_object_object_add(o, mf_kind_key[kind], k);
	}
	return o;
}

static json_object *discards_json(const struct mf_vm *vm)
{
	const struct mf_discard *cur = &vm->cur.discard, *prev = &vm->prev.discard;
	json_object *o = json_object_new_object();

	add_u64(o, "count", cur->time.count - prev->time.count);
	add_u64(o, "bytes", cur->bytes - prev->bytes);
	add_u64(o, "failed", cur->failed - prev->failed);
	json_object_object_add(o, "time", lat_json(&cur->time, &prev->time));
	return o;
}

static json_object *waits_json(const struct mf_model *m, const struct mf_vm *vm)
{
	json_object *o = json_object_new_object(), *worst = json_object_new_array();
	const struct mf_vcpu *top[MF_WORST_VCPUS];
	size_t n = mf_vm_worst_vcpus(m, vm, false, true, top, MF_WORST_VCPUS);

	for (int kind = 0; kind < MF_NR_EXIT_KINDS; kind++)
		json_object_object_add(o, mf_kind_key[kind],
				       lat_json(&vm->cur.wait[kind], &vm->prev.wait[kind]));
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_new_object();

		add_u64(v, "vcpu", top[i]->vcpu_id);
		add_u64(v, "count", top[i]->cur.count - top[i]->prev.count);
		add_u64(v, "total_ns", top[i]->cur.total_ns - top[i]->prev.total_ns);
		add_u64(v, "max_ns", top[i]->cur.max_ns);
		json_object_array_add(worst, v);
	}
	json_object_object_add(o, "worst_vcpus", worst);
	return o;
}

/* Every range that changed direction in the interval, in GPA order. */
static json_object *flips_json(const struct mf_model *m, const struct mf_vm *vm)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();

	add_u64(o, "count", vm->cur.flips - vm->prev.flips);
	for (size_t i = vm->first_flip; i < vm->first_flip + vm->nr_flips; i++) {
		const struct mf_flip *f = &m->flips[i];
		json_object *r;

		if (f->flips == f->prev_flips)
			continue;
		r = range_json(m, f->range);
		add_u64(r, "flips", f->flips - f->prev_flips);
		add_u64(r, "total", f->flips);
		json_object_array_add(a, r);
	}
	json_object_object_add(o, "gpa_ranges", a);
	return o;
}

static json_object *storm_json(const struct mf_model *m, const struct mf_vm *vm)
{
	json_object *o = json_object_new_object(), *why = json_object_new_array();
	struct mf_storm st;

	mf_vm_storm(m, vm, &st);
	json_object_object_add(o, "storming", json_object_new_boolean(st.storming));
	if (st.by_rate)
		json_object_array_add(why, json_object_new_string("rate"));
	if (st.flapping)
		json_object_array_add(why, json_object_new_string("flapping"));
	json_object_object_add(o, "reasons", why);
	json_object_object_add(o, "rate_per_s", json_object_new_double(st.rate));
	add_u64(o, "flapping_ranges", st.flapping);
	return o;
}

static json_object *faults_json(const struct mf_model *m, const struct mf_vm *vm)
{
	json_object *o = json_object_new_object(), *bits = json_object_new_object();

	json_object_object_add(o, "private", kind_json(m, vm, MF_FAULT_PRIVATE));
	json_object_object_add(o, "shared", kind_json(m, vm, MF_FAULT_SHARED));
	for (int bit = 0; bit < MF_FLAG_BITS; bit++) {
		__u64 n = vm->cur.fault_flag_bits[bit] - vm->prev.fault_flag_bits[bit];
		char key[8];

		if (!n)
			continue;
		snprintf(key, sizeof(key), "%d", bit);
		add_u64(bits, key, n);
	}
	json_object_object_add(o, "unknown_flag_bits", bits);
	return o;
}

static json_object *vm_json(const struct mf_model *m, const struct mf_vm *vm)
{
	json_object *o = json_object_new_object(), *maps = json_object_new_object();
	char name[MF_NAME_LEN];

	add_u64(o, "id", vm->id);
	json_object_object_add(o, "pid", json_object_new_int(vm->pid));
	json_object_object_add(o, "comm", json_object_new_string(vm->ident.comm));
	json_object_object_add(o, "name", json_object_new_string(
		mf_vm_display_name(&vm->ident, vm->stats_id, vm->pid, name, sizeof(name))));
	json_object_object_add(o, "stats_id", json_object_new_string(vm->stats_id));
	json_object_object_add(o, "destroyed", json_object_new_boolean(vm->destroyed));
	add_u64(o, "vcpus", mf_vm_vcpus(&vm->cur));
	json_object_object_add(o, "exits", exits_json(vm));
	json_object_object_add(o, "memory_faults", faults_json(m, vm));
	for (int dir = MF_TO_SHARED; dir < MF_NR_DIRS; dir++) {
		enum mf_kind kind = dir == MF_TO_PRIVATE ? MF_MAP_TO_PRIVATE : MF_MAP_TO_SHARED;
		json_object *k = paged_json(m, vm, kind);

		add_u64(k, "requests", vm->cur.map_requests[dir] - vm->prev.map_requests[dir]);
		json_object_object_add(maps, mf_kind_key[kind], k);
	}
	json_object_object_add(o, "map_gpa_range", maps);
	json_object_object_add(o, "conversions", conversions_json(m, vm));
	json_object_object_add(o, "discards", discards_json(vm));
	json_object_object_add(o, "waits", waits_json(m, vm));
	json_object_object_add(o, "flips", flips_json(m, vm));
	json_object_object_add(o, "storm", storm_json(m, vm));
	add_u64(o, "range_drops", vm->cur.range_drops - vm->prev.range_drops);
	return o;
}

/* The kernel's release and features, in every record: a consumer may
 * start reading anywhere. */
static json_object *kernel_json(const struct mf_features *feat)
{
	json_object *o = json_object_new_object(), *avail = json_object_new_object();
	json_object *missing = json_object_new_object();

	json_object_object_add(o, "release", json_object_new_string(feat->release));
	for (int i = 0; i < MF_NR_FEATURES; i++) {
		json_object_object_add(avail, mf_feature_key[i],
				       json_object_new_boolean(feat->available[i]));
		if (!feat->available[i])
			json_object_object_add(missing, mf_feature_key[i],
					       json_object_new_string(mf_feature_why(feat, i)));
	}
	json_object_object_add(o, "features", avail);
	json_object_object_add(o, "unavailable", missing);
	return o;
}

/* The record is written VM by VM: one VM's json-c tree at a time, so the
 * memory a record takes does not grow with the number of VMs in it. "vms"
 * comes last: the head object's text minus its closing brace, then the
 * array. Every record is one line, flushed when complete. */
int mf_json_print(FILE *f, const struct mf_model *m)
{
	json_object *rec = json_object_new_object();
	json_object *drops = json_object_new_object(), *storm = json_object_new_object();
	struct timespec ts;
	char stamp[40];
	struct tm tm;
	const char *head;
	bool first = true;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(rec, "schema", json_object_new_string("memfaulttop"));
	json_object_object_add(rec, "version", json_object_new_int(MF_JSON_SCHEMA_VERSION));
	json_object_object_add(rec, "time", json_object_new_string(stamp));
	add_u64(rec, "interval_ns", m->now_ns - m->prev_ns);
	add_u64(rec, "gpa_range_bytes", 1ULL << m->gpa_shift);
	for (int d = 0; d < MF_NR_DROPS; d++)
		add_u64(drops, mf_drop_key[d], m->drops[d] - m->prev_drops[d]);
	json_object_object_add(rec, "drops", drops);
	json_object_object_add(storm, "rate_per_s", json_object_new_double(m->storm_rate));
	add_u64(storm, "flips_per_interval", m->storm_flips);
	json_object_object_add(rec, "storm_thresholds", storm);
	if (m->features)
		json_object_object_add(rec, "kernel", kernel_json(m->features));

	head = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN);
	if (!head || fwrite(head, strlen(head) - 1, 1, f) != 1 || fputs(",\"vms\":[", f) == EOF)
		err = -EIO;
	json_object_put(rec);
	for (size_t i = 0; i < m->nr_vms && !err; i++) {
		json_object *vm;
		const char *text;

		if (!mf_vm_active(&m->vms[i]))
			continue;
		vm = vm_json(m, &m->vms[i]);
		text = json_object_to_json_string_ext(vm, JSON_C_TO_STRING_PLAIN);
		if (!text || (!first && fputc(',', f) == EOF) || fputs(text, f) == EOF)
			err = -EIO;
		first = false;
		json_object_put(vm);
	}
	if (err || fputs("]}\n", f) == EOF || fflush(f))
		err = -EIO;
	return err;
}
