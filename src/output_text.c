// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Plain periodic text: what memfaulttop prints when stdout is no terminal. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <time.h>
#include "exit_reason.h"
#include "hist.h"
#include "opts.h"
#include "output.h"
#include "storm.h"

#define HIST_WIDTH 40

const char *const mf_kind_label[MF_NR_KINDS] = {
	[MF_FAULT_SHARED] = "shared faults",
	[MF_FAULT_PRIVATE] = "private faults",
	[MF_MAP_TO_SHARED] = "MAP_GPA_RANGE to shared",
	[MF_MAP_TO_PRIVATE] = "MAP_GPA_RANGE to private",
	[MF_CONV_TO_SHARED] = "conversions to shared",
	[MF_CONV_TO_PRIVATE] = "conversions to private",
};

const char *const mf_kind_key[MF_NR_KINDS] = {
	[MF_FAULT_SHARED] = "shared",
	[MF_FAULT_PRIVATE] = "private",
	[MF_MAP_TO_SHARED] = "to_shared",
	[MF_MAP_TO_PRIVATE] = "to_private",
	[MF_CONV_TO_SHARED] = "to_shared",
	[MF_CONV_TO_PRIVATE] = "to_private",
};

const char *mf_errno_name(unsigned int slot, char *buf, size_t size)
{
	const char *name = slot < MF_ERRNO_SLOTS - 1 ? strerrorname_np((int)slot) : NULL;

	if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, slot >= MF_ERRNO_SLOTS - 1 ? "%u+" : "%u", slot);
	return buf;
}

const char *const mf_drop_key[MF_NR_DROPS] = {
	[MF_DROP_VM_TABLE_FULL] = "vm_table_full",
	[MF_DROP_RANGE_TABLE_FULL] = "range_table_full",
	[MF_DROP_NO_VCPU] = "no_vcpu",
	[MF_DROP_NO_MEMORY] = "no_memory",
	[MF_DROP_VCPU_TABLE_FULL] = "vcpu_table_full",
	[MF_DROP_UNREADABLE] = "unreadable_conversion",
	[MF_DROP_TRACE_LOST] = "trace_lost",
};

const char *const mf_drop_label[MF_NR_DROPS] = {
	[MF_DROP_VM_TABLE_FULL] = "VM table full: exits not counted",
	[MF_DROP_RANGE_TABLE_FULL] = "GPA-range table full: range updates lost",
	[MF_DROP_NO_VCPU] = "exits whose vCPU was not found: not counted",
	[MF_DROP_NO_MEMORY] = "kernel memory short for a new VM, range or vCPU: not counted",
	[MF_DROP_VCPU_TABLE_FULL] = "vCPU wait table full: per-vCPU waits not counted",
	[MF_DROP_UNREADABLE] = "conversions whose arguments could not be read: not counted",
	[MF_DROP_TRACE_LOST] = "trace events lost: ring buffer full",
};

/* Private before shared, as in the summary lines. */
static const enum mf_kind display_order[] = {
	MF_FAULT_PRIVATE, MF_FAULT_SHARED, MF_MAP_TO_PRIVATE, MF_MAP_TO_SHARED,
	MF_CONV_TO_PRIVATE, MF_CONV_TO_SHARED,
};

static double rate(__u64 n, double seconds)
{
	return seconds > 0 ? (double)n / seconds : 0;
}

static void print_exits(FILE *f, const struct mf_vm *vm, double secs)
{
	__u64 total = mf_vm_exits(vm->cur) - mf_vm_exits(vm->prev);

	fprintf(f, "  exits %llu (%.1f/s)", (unsigned long long)total, rate(total, secs));
	for (unsigned int r = 0; r < MF_NR_EXIT_REASONS; r++) {
		__u64 n = vm->cur->exits[r] - vm->prev->exits[r];
		const char *name = mf_exit_reason_name(r);

		if (!n)
			continue;
		if (name)
			fprintf(f, "  %s %llu", name, (unsigned long long)n);
		else
			fprintf(f, "  reason %u%s %llu", r, r == MF_NR_EXIT_REASONS - 1 ? "+" : "",
				(unsigned long long)n);
	}
	fputc('\n', f);
}

static void print_kind_summary(FILE *f, const struct mf_vm *vm, enum mf_kind kind, double secs)
{
	const struct mf_hist *cur = &vm->cur->hist[kind], *prev = &vm->prev->hist[kind];
	__u64 n = cur->count - prev->count, bytes = cur->bytes - prev->bytes;
	char size[16];

	fprintf(f, "%s %llu (%.1f/s, %s)", mf_kind_label[kind], (unsigned long long)n,
		rate(n, secs), mf_format_size(bytes, size, sizeof(size)));
}

static void print_kind_detail(FILE *f, const struct mf_model *m, const struct mf_vm *vm,
			      enum mf_kind kind)
{
	const struct mf_hist *cur = &vm->cur->hist[kind], *prev = &vm->prev->hist[kind];
	__u64 slots[MF_LOG2_SLOTS];
	char width[16];

	if (cur->count == prev->count)
		return;
	mf_hist_delta(cur, prev, slots);
	fprintf(f, "  %s by size:\n", mf_kind_label[kind]);
	mf_hist_print(f, slots, "    ", HIST_WIDTH);
	fprintf(f, "  %s by GPA range (%s each):\n", mf_kind_label[kind],
		mf_format_size(1ULL << m->gpa_shift, width, sizeof(width)));
	for (size_t i = vm->first_range; i < vm->first_range + vm->nr_ranges; i++) {
		const struct mf_range *r = &m->ranges[i];
		__u64 n = r->count - r->prev_count;
		__u64 start = r->range << m->gpa_shift;
		char bytes[16];

		if (r->kind != kind || !n)
			continue;
		fprintf(f, "    0x%016llx-0x%016llx %10llu  %s\n", (unsigned long long)start,
			(unsigned long long)(start + (1ULL << m->gpa_shift) - 1),
			(unsigned long long)n,
			mf_format_size(r->bytes - r->prev_bytes, bytes, sizeof(bytes)));
	}
}

static void print_flag_bits(FILE *f, const struct mf_vm *vm)
{
	int any = 0;

	for (int bit = 0; bit < MF_FLAG_BITS; bit++) {
		__u64 n = vm->cur->fault_flag_bits[bit] - vm->prev->fault_flag_bits[bit];

		if (!n)
			continue;
		fprintf(f, "%s bit %d: %llu", any ? "," : "  UNKNOWN memory-fault flags:", bit,
			(unsigned long long)n);
		any = 1;
	}
	if (any)
		fputc('\n', f);
}

/* A duration histogram of the interval, titled, if it holds anything. */
static void print_lat(FILE *f, const char *title, const struct mf_lat *cur,
		      const struct mf_lat *prev)
{
	__u64 slots[MF_LOG2_SLOTS], n = cur->count - prev->count;
	char avg[16];

	if (!n)
		return;
	mf_lat_delta(cur, prev, slots);
	fprintf(f, "  %s: %llu, average %s:\n", title, (unsigned long long)n,
		mf_format_ns((cur->total_ns - prev->total_ns) / n, avg, sizeof(avg)));
	mf_hist_print_ns(f, slots, "    ", HIST_WIDTH);
}

static void print_conversions(FILE *f, const struct mf_vm *vm, double secs)
{
	const struct mf_discard *dc = &vm->cur->discard, *dp = &vm->prev->discard;
	__u64 discards = dc->time.count - dp->time.count;
	char title[64], bytes[16];

	for (int dir = MF_TO_PRIVATE; dir >= MF_TO_SHARED; dir--) {
		enum mf_kind kind = dir == MF_TO_PRIVATE ? MF_CONV_TO_PRIVATE : MF_CONV_TO_SHARED;
		const struct mf_conv *c = &vm->cur->conv[dir], *p = &vm->prev->conv[dir];

		if (vm->cur->hist[kind].count == vm->prev->hist[kind].count)
			continue;
		fputs("  ", f);
		print_kind_summary(f, vm, kind, secs);
		fprintf(f, "  failed %llu", (unsigned long long)(c->failed - p->failed));
		for (unsigned int e = 0; e < MF_ERRNO_SLOTS; e++) {
			char name[24];

			if (c->errors[e] != p->errors[e])
				fprintf(f, " %s %llu", mf_errno_name(e, name, sizeof(name)),
					(unsigned long long)(c->errors[e] - p->errors[e]));
		}
		fputc('\n', f);
	}
	if (discards)
		fprintf(f, "  guest_memfd discards %llu (%.1f/s, %s)  failed %llu\n",
			(unsigned long long)discards, rate(discards, secs),
			mf_format_size(dc->bytes - dp->bytes, bytes, sizeof(bytes)),
			(unsigned long long)(dc->failed - dp->failed));
	for (int dir = MF_TO_PRIVATE; dir >= MF_TO_SHARED; dir--) {
		snprintf(title, sizeof(title), "%s, kernel time",
			 mf_kind_label[dir == MF_TO_PRIVATE ? MF_CONV_TO_PRIVATE : MF_CONV_TO_SHARED]);
		print_lat(f, title, &vm->cur->conv[dir].time, &vm->prev->conv[dir].time);
	}
	print_lat(f, "guest_memfd discards, time", &dc->time, &dp->time);
}

/* How long vCPUs waited for the VMM after each kind of exit, and who waited most. */
static void print_waits(FILE *f, const struct mf_model *m, const struct mf_vm *vm)
{
	const struct mf_vcpu *top[MF_WORST_VCPUS];
	size_t n = mf_vm_worst_vcpus(m, vm, false, true, top, MF_WORST_VCPUS);
	char title[64], total[16], max[16];

	for (size_t i = 0; i < sizeof(display_order) / sizeof(display_order[0]); i++) {
		enum mf_kind kind = display_order[i];

		if (kind >= MF_NR_EXIT_KINDS)
			continue;
		snprintf(title, sizeof(title), "vCPU wait after %s", mf_kind_label[kind]);
		print_lat(f, title, &vm->cur->wait[kind], &vm->prev->wait[kind]);
	}
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s vCPU %u %s in %llu (max %s)%s", i ? "," : "  most waiting:",
			top[i]->vcpu_id,
			mf_format_ns(top[i]->cur.total_ns - top[i]->prev.total_ns, total,
				     sizeof(total)),
			(unsigned long long)(top[i]->cur.count - top[i]->prev.count),
			mf_format_ns(top[i]->cur.max_ns, max, sizeof(max)),
			i + 1 == n ? "\n" : "");
}

/* Why the VM storms, with the figures; then the ranges that flipped most. */
static void print_storm(FILE *f, const struct mf_model *m, const struct mf_vm *vm)
{
	const struct mf_flip *top[MF_TOP_FLIPS];
	size_t n = mf_vm_top_flips(m, vm, top, MF_TOP_FLIPS);
	struct mf_storm st;

	mf_vm_storm(m, vm, &st);
	if (st.storming) {
		fputs("  STORM:", f);
		if (st.by_rate)
			fprintf(f, " %.1f faults+requests+conversions/s (threshold %.1f)%s", st.rate,
				m->storm_rate, st.flapping ? ";" : "");
		if (st.flapping)
			fprintf(f, " %zu range%s flipped %llu+ times", st.flapping,
				st.flapping == 1 ? "" : "s", (unsigned long long)m->storm_flips);
		fputc('\n', f);
	}
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s 0x%llx %llu", i ? "," : "  flips by GPA range:",
			(unsigned long long)(top[i]->range << m->gpa_shift),
			(unsigned long long)(top[i]->flips - top[i]->prev_flips));
	if (n)
		fprintf(f, " (%llu in all)\n", (unsigned long long)st.flips);
}

static void print_vm(FILE *f, const struct mf_model *m, const struct mf_vm *vm, double secs)
{
	char name[MF_NAME_LEN];

	fprintf(f, "VM %s  pid %d  comm %s  id %llu  vcpus %u%s\n",
		mf_vm_display_name(&vm->ident, vm->stats_id, vm->pid, name, sizeof(name)),
		(int)vm->pid, vm->ident.comm[0] ? vm->ident.comm : "?",
		(unsigned long long)vm->id, mf_vm_vcpus(vm->cur),
		vm->destroyed ? "  (destroyed)" : "");
	print_storm(f, m, vm);
	print_exits(f, vm, secs);
	fputs("  ", f);
	print_kind_summary(f, vm, MF_FAULT_PRIVATE, secs);
	fputs("  ", f);
	print_kind_summary(f, vm, MF_FAULT_SHARED, secs);
	fputc('\n', f);
	print_flag_bits(f, vm);
	for (int dir = MF_TO_PRIVATE; dir >= MF_TO_SHARED; dir--) {
		fputs("  ", f);
		print_kind_summary(f, vm, dir == MF_TO_PRIVATE ? MF_MAP_TO_PRIVATE : MF_MAP_TO_SHARED,
				   secs);
		fprintf(f, " in %llu requests",
			(unsigned long long)(vm->cur->map_requests[dir] - vm->prev->map_requests[dir]));
	}
	fputc('\n', f);
	print_conversions(f, vm, secs);
	for (size_t i = 0; i < sizeof(display_order) / sizeof(display_order[0]); i++)
		print_kind_detail(f, m, vm, display_order[i]);
	print_waits(f, m, vm);
	if (vm->cur->range_drops != vm->prev->range_drops)
		fprintf(f, "  GPA-range table full: %llu updates lost\n",
			(unsigned long long)(vm->cur->range_drops - vm->prev->range_drops));
}

int mf_text_print(FILE *f, const struct mf_model *m)
{
	double secs = mf_model_interval_s(m);
	char stamp[32];
	time_t now = time(NULL);
	size_t active = 0;

	for (size_t i = 0; i < m->nr_vms; i++)
		active += mf_vm_active(&m->vms[i]);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&now));
	fprintf(f, "%s  %zu active VM%s of %zu, interval %.2fs\n", stamp, active,
		active == 1 ? "" : "s", m->nr_vms, secs);
	/* Once, in the first report: what this kernel cannot show. */
	if (m->features && m->prev_ns == m->start_ns)
		mf_features_print_missing(f, "  ", m->features);
	for (int d = 0; d < MF_NR_DROPS; d++)
		if (m->drops[d] != m->prev_drops[d])
			fprintf(f, "  %s: %llu\n", mf_drop_label[d],
				(unsigned long long)(m->drops[d] - m->prev_drops[d]));
	for (size_t i = 0; i < m->nr_vms; i++)
		if (mf_vm_active(&m->vms[i]))
			print_vm(f, m, &m->vms[i], secs);
	fputc('\n', f);
	fflush(f);
	return ferror(f) ? -EIO : 0;
}
