// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The Prometheus text exposition format (0.0.4) of the model: totals since
 * memfaulttop attached, a pure function of the model. Written without
 * printf, as 1,000 VMs make tens of thousands of lines per refresh. Label
 * values come from other processes (VM names, comm): escaped as the format
 * wants (backslash, double quote, newline), and every byte that is not part
 * of valid UTF-8 becomes U+FFFD, so any name gives a valid exposition.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "exit_reason.h"
#include "metrics.h"
#include "output.h"
#include "storm.h"

/*
 * Histogram buckets. The BPF side keeps log2 slots, slot n holding the
 * integers [2^n, 2^(n+1)); a bucket's le is its slot's largest value,
 * 2^(n+1) - 1, so each bucket holds exactly what its slots hold (a 4 KiB
 * fault is not <= 4096 - 1, and is <= 8192 - 1). A fixed window keeps the
 * buckets of every series the same, as histogram_quantile() and sums by le
 * need: slots below it fold into its first bucket, slots above it show in
 * +Inf only.
 */
struct bounds {
	int first, last;	/* slots with a bucket of their own */
	bool seconds;		/* log2 of nanoseconds, shown in seconds */
};

static const struct bounds size_bounds = { 11, 30, false };	/* le 4095 B .. 2 GiB - 1 */
static const struct bounds time_bounds = { 9, 34, true };	/* le 1023 ns .. 34.4 s */

struct writer {
	struct mf_text *out;
	bool oom;
	bool in_labels;
};

/* Room for n more bytes; false once memory ran out. */
static bool reserve(struct writer *w, size_t n)
{
	struct mf_text *t = w->out;
	size_t cap = t->cap ? t->cap : 4096;
	char *data;

	if (w->oom || n <= t->cap - t->len)
		return !w->oom;
	while (n > cap - t->len)
		cap *= 2;
	data = realloc(t->data, cap);
	if (!data) {
		w->oom = true;
		return false;
	}
	t->data = data;
	t->cap = cap;
	return true;
}

static void put(struct writer *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->out->data + w->out->len, s, n);
	w->out->len += n;
}

/* Appends again the n bytes written from offset at: a repeated prefix. */
static void put_again(struct writer *w, size_t at, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->out->data + w->out->len, w->out->data + at, n);
	w->out->len += n;
}

static void put_str(struct writer *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_u64(struct writer *w, __u64 v)
{
	char buf[20];
	size_t i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(w, buf + i, sizeof(buf) - i);
}

/* Nanoseconds as seconds, exactly: "12.000000345". */
static void put_seconds(struct writer *w, __u64 ns)
{
	char frac[10] = ".";

	put_u64(w, ns / 1000000000ULL);
	ns %= 1000000000ULL;
	for (int i = 9; i >= 1; i--, ns /= 10)
		frac[i] = (char)('0' + ns % 10);
	put(w, frac, sizeof(frac));
}

/* Length of the valid UTF-8 sequence at s, or 0 (RFC 3629: no overlong
 * forms, surrogates or code points above U+10FFFF). Stops at a NUL. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		lo = s[0] == 0xe0 ? 0xa0 : lo;
		hi = s[0] == 0xed ? 0x9f : hi;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		lo = s[0] == 0xf0 ? 0x90 : lo;
		hi = s[0] == 0xf4 ? 0x8f : hi;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
		       (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

static void put_label_value(struct writer *w, const char *value)
{
	const unsigned char *s = (const unsigned char *)value;

	while (*s) {
		size_t n = utf8_len(s);

		if (!n)
			put(w, "\xef\xbf\xbd", 3);
		else if (*s == '\\')
			put(w, "\\\\", 2);
		else if (*s == '"')
			put(w, "\\\"", 2);
		else if (*s == '\n')
			put(w, "\\n", 2);
		else
			put(w, (const char *)s, n);
		s += n ? n : 1;
	}
}

static void family(struct writer *w, const char *name, const char *type, const char *help)
{
	put(w, "# HELP ", 7);
	put_str(w, name);
	put(w, " ", 1);
	put_str(w, help);
	put(w, "\n# TYPE ", 8);
	put_str(w, name);
	put(w, " ", 1);
	put_str(w, type);
	put(w, "\n", 1);
}

/* Opens the value of label key: {key=" or ,key=" */
static void label_open(struct writer *w, const char *key)
{
	put(w, w->in_labels ? "," : "{", 1);
	w->in_labels = true;
	put_str(w, key);
	put(w, "=\"", 2);
}

/* A label whose value comes from another process: escaped. */
static void label(struct writer *w, const char *key, const char *value)
{
	label_open(w, key);
	put_label_value(w, value);
	put(w, "\"", 1);
}

/* A label whose value is one of memfaulttop's own names: as is. */
static void label_own(struct writer *w, const char *key, const char *value)
{
	if (!key)
		return;
	label_open(w, key);
	put_str(w, value);
	put(w, "\"", 1);
}

static void label_u64(struct writer *w, const char *key, __u64 value)
{
	label_open(w, key);
	put_u64(w, value);
	put(w, "\"", 1);
}

/* A sample's name and, for a VM's, its vm_id label; labels may follow. */
static void sample(struct writer *w, const char *name, const char *suffix,
		   const struct mf_vm *vm)
{
	put_str(w, name);
	if (suffix)
		put_str(w, suffix);
	w->in_labels = false;
	if (vm)
		label_u64(w, "vm_id", vm->id);
}

static void value_open(struct writer *w)
{
	put(w, w->in_labels ? "} " : " ", w->in_labels ? 2 : 1);
}

static void value_u64(struct writer *w, __u64 v)
{
	value_open(w);
	put_u64(w, v);
	put(w, "\n", 1);
}

static void value_unit(struct writer *w, __u64 v, bool seconds)
{
	value_open(w);
	if (seconds)
		put_seconds(w, v);
	else
		put_u64(w, v);
	put(w, "\n", 1);
}

/*
 * One histogram series of a VM, with an optional label key=val; nothing
 * while it is empty. _count and the +Inf bucket are the slots' sum (the
 * BPF side updates count and slots one after the other).
 */
static void histogram(struct writer *w, const char *name, const struct mf_vm *vm,
		      const char *key, const char *val, const __u64 slots[MF_LOG2_SLOTS],
		      __u64 sum, const struct bounds *b)
{
	__u64 count = 0, below = 0;
	size_t head = w->out->len, head_len;

	for (int i = 0; i < MF_LOG2_SLOTS; i++)
		count += slots[i];
	if (!count)
		return;
	/* Every bucket line starts alike: name_bucket{labels,le=" */
	sample(w, name, "_bucket", vm);
	label_own(w, key, val);
	label_open(w, "le");
	head_len = w->out->len - head;
	for (int i = 0; i <= b->last; i++) {
		below += slots[i];
		if (i < b->first)
			continue;
		if (i > b->first)
			put_again(w, head, head_len);
		if (b->seconds)
			put_seconds(w, (2ULL << i) - 1);
		else
			put_u64(w, (2ULL << i) - 1);
		put(w, "\"", 1);
		value_u64(w, below);
	}
	put_again(w, head, head_len);
	put(w, "+Inf\"", 5);
	value_u64(w, count);
	sample(w, name, "_sum", vm);
	label_own(w, key, val);
	value_unit(w, sum, b->seconds);
	sample(w, name, "_count", vm);
	label_own(w, key, val);
	value_u64(w, count);
}

static bool available(const struct mf_model *m, enum mf_feature f)
{
	return !m->features || m->features->available[f];
}

static void globals(struct writer *w, const struct mf_model *m)
{
	if (m->features) {
		family(w, "memfaulttop_feature_available", "gauge",
		       "1 if the running kernel lets memfaulttop see this view, else 0"
		       " (the man page says what each missing one loses)");
		for (int i = 0; i < MF_NR_FEATURES; i++) {
			sample(w, "memfaulttop_feature_available", NULL, NULL);
			label_own(w, "feature", mf_feature_key[i]);
			value_u64(w, m->features->available[i]);
		}
	}
	family(w, "memfaulttop_drops_total", "counter",
	       "Events the BPF side could not count, by cause (a map full, memory short)");
	for (int d = 0; d < MF_NR_DROPS; d++) {
		sample(w, "memfaulttop_drops_total", NULL, NULL);
		label_own(w, "cause", mf_drop_key[d]);
		value_u64(w, m->drops[d]);
	}
}

static void vm_info(struct writer *w, const struct mf_model *m)
{
	family(w, "memfaulttop_vm_info", "gauge",
	       "1 per VM: its name, VMM pid, comm and KVM stats id; vm_id is unique per"
	       " memfaulttop run");
	for (size_t i = 0; i < m->nr_vms; i++) {
		const struct mf_vm *vm = &m->vms[i];
		char name[MF_NAME_LEN];

		sample(w, "memfaulttop_vm_info", NULL, vm);
		label(w, "name", mf_vm_display_name(&vm->ident, vm->stats_id, vm->pid, name,
						    sizeof(name)));
		label_u64(w, "pid", (__u64)vm->pid);
		label(w, "comm", vm->ident.comm);
		label(w, "stats_id", vm->stats_id);
		value_u64(w, 1);
	}
	family(w, "memfaulttop_vm_vcpus", "gauge", "vCPUs of the VM seen exiting");
	for (size_t i = 0; i < m->nr_vms; i++) {
		sample(w, "memfaulttop_vm_vcpus", NULL, &m->vms[i]);
		value_u64(w, mf_vm_vcpus(m->vms[i].cur));
	}
}

static void exits(struct writer *w, const struct mf_model *m)
{
	family(w, "memfaulttop_exits_total", "counter",
	       "Userspace exits (KVM_RUN returns) by KVM exit reason");
	for (size_t i = 0; i < m->nr_vms; i++) {
		const struct mf_vm *vm = &m->vms[i];

		for (unsigned int r = 0; r < MF_NR_EXIT_REASONS; r++) {
			char num[16];

			if (!vm->cur->exits[r])
				continue;
			sample(w, "memfaulttop_exits_total", NULL, vm);
			label_own(w, "reason", mf_exit_reason_key(r, num, sizeof(num)));
			value_u64(w, vm->cur->exits[r]);
		}
	}
}

/* A family of a pair of kinds (shared, then private): their counts, their
 * bytes, their sizes, or (MAP_GPA_RANGE) the requests their exits make. */
struct pair_family {
	const char *name, *help;
	enum { PAIR_COUNT, PAIR_BYTES, PAIR_SIZES, PAIR_REQUESTS } what;
};

static void pair_families(struct writer *w, const struct mf_model *m, const char *key,
			  enum mf_kind first, const struct pair_family *f, size_t n)
{
	for (; n; n--, f++) {
		family(w, f->name, f->what == PAIR_SIZES ? "histogram" : "counter", f->help);
		for (size_t i = 0; i < m->nr_vms; i++) {
			for (enum mf_kind k = first; k <= first + 1; k++) {
				const struct mf_hist *h = &m->vms[i].cur->hist[k];

				if (f->what == PAIR_SIZES) {
					histogram(w, f->name, &m->vms[i], key, mf_kind_key[k],
						  h->log2_bytes, h->bytes, &size_bounds);
					continue;
				}
				sample(w, f->name, NULL, &m->vms[i]);
				label_own(w, key, mf_kind_key[k]);
				value_u64(w, f->what == PAIR_BYTES ? h->bytes :
					     f->what == PAIR_REQUESTS ?
					     m->vms[i].cur->map_requests[k - first] : h->count);
			}
		}
	}
}

static const struct pair_family fault_families[] = {
	{ "memfaulttop_memory_faults_total",
	  "KVM_EXIT_MEMORY_FAULT exits by class (private: flag PRIVATE set)", PAIR_COUNT },
	{ "memfaulttop_memory_fault_size_bytes",
	  "Sizes of memory-fault exits (series appear with their first fault)", PAIR_SIZES },
};

static const struct pair_family map_families[] = {
	{ "memfaulttop_map_gpa_range_exits_total",
	  "KVM_HC_MAP_GPA_RANGE exits by direction", PAIR_COUNT },
	{ "memfaulttop_map_gpa_range_requests_total",
	  "Guest conversion requests: runs of a vCPU's MAP_GPA_RANGE exits that continue"
	  " one another (TDX splits one into 2 MiB exits), by direction", PAIR_REQUESTS },
	{ "memfaulttop_map_gpa_range_bytes_total",
	  "Bytes the guest asked to convert with KVM_HC_MAP_GPA_RANGE, by direction", PAIR_BYTES },
	{ "memfaulttop_map_gpa_range_size_bytes",
	  "Sizes of KVM_HC_MAP_GPA_RANGE requests (series appear with their first)", PAIR_SIZES },
};

static const struct pair_family conversion_families[] = {
	{ "memfaulttop_conversions_total",
	  "The VMM's KVM_SET_MEMORY_ATTRIBUTES calls by direction, failed ones too", PAIR_COUNT },
	{ "memfaulttop_conversion_bytes_total",
	  "Bytes the VMM's KVM_SET_MEMORY_ATTRIBUTES calls asked for, by direction", PAIR_BYTES },
};

#define NR(a) (sizeof(a) / sizeof((a)[0]))

static void faults(struct writer *w, const struct mf_model *m)
{
	family(w, "memfaulttop_memory_fault_unknown_flags_total", "counter",
	       "Memory-fault exits by flag bit other than PRIVATE (bit number): no kernel"
	       " merged such a flag, QEMU stops the VM on one");
	for (size_t i = 0; i < m->nr_vms; i++) {
		for (int bit = 0; bit < MF_FLAG_BITS; bit++) {
			if (!m->vms[i].cur->fault_flag_bits[bit])
				continue;
			sample(w, "memfaulttop_memory_fault_unknown_flags_total", NULL, &m->vms[i]);
			label_u64(w, "bit", (__u64)bit);
			value_u64(w, m->vms[i].cur->fault_flag_bits[bit]);
		}
	}
	if (available(m, MF_FEAT_MEMORY_FAULT_INFO))
		pair_families(w, m, "class", MF_FAULT_SHARED, fault_families, NR(fault_families));
}

static void conversions(struct writer *w, const struct mf_model *m)
{
	if (!available(m, MF_FEAT_CONVERSIONS))
		return;
	pair_families(w, m, "direction", MF_CONV_TO_SHARED, conversion_families,
		      NR(conversion_families));
	family(w, "memfaulttop_conversion_failures_total", "counter",
	       "Failed KVM_SET_MEMORY_ATTRIBUTES calls by direction and errno");
	for (size_t i = 0; i < m->nr_vms; i++) {
		for (int dir = 0; dir < MF_NR_DIRS; dir++) {
			const struct mf_conv *c = &m->vms[i].cur->conv[dir];

			/* Every failure counts in one errno slot (cumulative: a
			 * torn read's slot shows at the next scrape). */
			for (unsigned int e = 0; c->failed && e < MF_ERRNO_SLOTS; e++) {
				char name[24];

				if (!c->errors[e])
					continue;
				sample(w, "memfaulttop_conversion_failures_total", NULL, &m->vms[i]);
				label_own(w, "direction", mf_kind_key[MF_CONV_TO_SHARED + dir]);
				label_own(w, "errno", mf_errno_name(e, name, sizeof(name)));
				value_u64(w, c->errors[e]);
			}
		}
	}
	family(w, "memfaulttop_conversion_duration_seconds", "histogram",
	       "Kernel time of KVM_SET_MEMORY_ATTRIBUTES calls, by direction");
	for (size_t i = 0; i < m->nr_vms; i++) {
		for (int dir = 0; dir < MF_NR_DIRS; dir++) {
			const struct mf_lat *t = &m->vms[i].cur->conv[dir].time;

			histogram(w, "memfaulttop_conversion_duration_seconds", &m->vms[i],
				  "direction", mf_kind_key[MF_CONV_TO_SHARED + dir], t->log2_ns,
				  t->total_ns, &time_bounds);
		}
	}
}

/* A counter per VM of one __u64 of its stats, at offset. */
static void vm_counter(struct writer *w, const struct mf_model *m, const char *name,
		       const char *help, size_t offset)
{
	family(w, name, "counter", help);
	for (size_t i = 0; i < m->nr_vms; i++) {
		__u64 v;

		memcpy(&v, (const char *)m->vms[i].cur + offset, sizeof(v));
		sample(w, name, NULL, &m->vms[i]);
		value_u64(w, v);
	}
}

static void discards(struct writer *w, const struct mf_model *m)
{
	if (!available(m, MF_FEAT_DISCARDS))
		return;
	vm_counter(w, m, "memfaulttop_discards_total",
		   "The VMM's guest_memfd hole punches (fallocate PUNCH_HOLE)",
		   offsetof(struct mf_vm_stats, discard.time.count));
	vm_counter(w, m, "memfaulttop_discard_bytes_total", "Bytes punched out of guest_memfd",
		   offsetof(struct mf_vm_stats, discard.bytes));
	vm_counter(w, m, "memfaulttop_discard_failures_total", "Hole punches that failed",
		   offsetof(struct mf_vm_stats, discard.failed));
	family(w, "memfaulttop_discard_duration_seconds", "histogram",
	       "Kernel time of guest_memfd hole punches");
	for (size_t i = 0; i < m->nr_vms; i++) {
		const struct mf_lat *t = &m->vms[i].cur->discard.time;

		histogram(w, "memfaulttop_discard_duration_seconds", &m->vms[i], NULL, NULL,
			  t->log2_ns, t->total_ns, &time_bounds);
	}
}

static void waits(struct writer *w, const struct mf_model *m)
{
	if (!available(m, MF_FEAT_WAIT_LATENCY))
		return;
	family(w, "memfaulttop_vcpu_wait_seconds", "histogram",
	       "How long a vCPU waited for its VMM: from a memory-fault (kind private, shared)"
	       " or MAP_GPA_RANGE exit (to_private, to_shared) to its next KVM_RUN");
	for (size_t i = 0; i < m->nr_vms; i++) {
		for (int k = 0; k < MF_NR_EXIT_KINDS; k++) {
			const struct mf_lat *t = &m->vms[i].cur->wait[k];

			histogram(w, "memfaulttop_vcpu_wait_seconds", &m->vms[i], "kind",
				  mf_kind_key[k], t->log2_ns, t->total_ns, &time_bounds);
		}
	}
}

/* Storms (--storm): the flips behind them, and the last interval's flag. */
static void storms(struct writer *w, const struct mf_model *m)
{
	vm_counter(w, m, "memfaulttop_gpa_range_flips_total",
		   "Changes of direction (private/shared) of the VM's GPA ranges, all ranges",
		   offsetof(struct mf_vm_stats, flips));
	family(w, "memfaulttop_vm_storming", "gauge",
	       "1 if the VM stormed in the last interval (the --storm thresholds), else 0");
	for (size_t i = 0; i < m->nr_vms; i++) {
		struct mf_storm st;

		mf_vm_storm(m, &m->vms[i], &st);
		sample(w, "memfaulttop_vm_storming", NULL, &m->vms[i]);
		value_u64(w, st.storming);
	}
}

int mf_metrics_render(struct mf_text *out, const struct mf_model *m)
{
	struct writer w = { .out = out };

	out->len = 0;
	globals(&w, m);
	vm_info(&w, m);
	exits(&w, m);
	faults(&w, m);
	pair_families(&w, m, "direction", MF_MAP_TO_SHARED, map_families, NR(map_families));
	conversions(&w, m);
	discards(&w, m);
	waits(&w, m);
	vm_counter(&w, m, "memfaulttop_gpa_range_drops_total",
		   "GPA-range updates of the VM lost to a full range table",
		   offsetof(struct mf_vm_stats, range_drops));
	storms(&w, m);
	return w.oom ? -ENOMEM : 0;
}

void mf_text_free(struct mf_text *t)
{
	free(t->data);
	*t = (struct mf_text){ 0 };
}
