// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Reads the BPF maps (batched) into struct mf_model. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "model.h"

#define BATCH 1024

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/*
 * Calls fn for every entry of a hash map, using batched lookups. Per-CPU
 * values arrive as ncpus consecutive copies, each 8-byte aligned.
 */
typedef int (*entry_fn)(struct mf_model *m, const void *key, const void *value);

static int for_each_entry(struct mf_model *m, int fd, size_t key_size, size_t value_size,
			  entry_fn fn)
{
	char *keys = malloc(BATCH * key_size), *values = malloc(BATCH * value_size);
	__u64 token[4];	/* hash maps use a 4-byte bucket index as batch token */
	void *in = NULL;
	int err = 0;

	if (!keys || !values) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 n = BATCH;
		int done;

		err = bpf_map_lookup_batch(fd, in, token, keys, values, &n, NULL);
		done = err && errno == ENOENT;
		if (err && !done) {
			err = -errno;
			goto out;
		}
		for (__u32 i = 0; i < n; i++) {
			err = fn(m, keys + i * key_size, values + i * value_size);
			if (err)
				goto out;
		}
		if (done)
			break;
		in = token;
	}
	err = 0;
out:
	free(keys);
	free(values);
	return err;
}

static int cmp_vm_id(const void *key, const void *elem)
{
	__u64 id = *(const __u64 *)key, other = ((const struct mf_vm *)elem)->id;

	return id < other ? -1 : id > other;
}

static int cmp_vm(const void *a, const void *b)
{
	return cmp_vm_id(&((const struct mf_vm *)a)->id, b);
}

/* VMs found by this refresh are appended, and sorted in once it is done. */
static struct mf_vm *find_vm(const struct mf_model *m, __u64 id)
{
	struct mf_vm *vm = bsearch(&id, m->vms, m->nr_sorted_vms, sizeof(*m->vms), cmp_vm_id);

	for (size_t i = m->nr_sorted_vms; !vm && i < m->nr_vms; i++)
		if (m->vms[i].id == id)
			vm = &m->vms[i];
	return vm;
}

static void sort_vms(struct mf_model *m)
{
	if (m->nr_sorted_vms == m->nr_vms)
		return;
	qsort(m->vms, m->nr_vms, sizeof(*m->vms), cmp_vm);
	m->nr_sorted_vms = m->nr_vms;
}

static struct mf_vm *add_vm(struct mf_model *m, const struct mf_vm_info *info)
{
	struct mf_vm *vm = find_vm(m, info->id);
	char comm[sizeof(info->comm) + 1] = "";	/* the kernel's may fill all 16 */

	if (vm)
		return vm;
	if (m->nr_vms == m->cap_vms) {
		size_t cap = m->cap_vms ? 2 * m->cap_vms : 16;
		struct mf_vm *vms = realloc(m->vms, cap * sizeof(*vms));

		if (!vms)
			return NULL;
		m->vms = vms;
		m->cap_vms = cap;
	}
	vm = &m->vms[m->nr_vms++];
	memset(vm, 0, sizeof(*vm));
	vm->id = info->id;
	vm->pid = (pid_t)info->pid;
	memcpy(vm->stats_id, info->stats_id, sizeof(vm->stats_id));
	vm->stats_id[sizeof(vm->stats_id) - 1] = '\0';
	memcpy(comm, info->comm, sizeof(info->comm));
	mf_vm_identify(vm->pid, comm, &vm->ident);
	return vm;
}

static int on_live_vm(struct mf_model *m, const void *key, const void *value)
{
	const struct mf_vm_info *info = value;
	struct mf_vm *vm;

	bool gone = m->destroyed_with_process && kill((pid_t)info->pid, 0) && errno == ESRCH;

	if (info->filtered_out) {
		/* Nothing to report: forget it now. The batch read has passed
		 * this entry, so deleting it does not disturb the iteration. */
		if (gone && bpf_map_delete_elem(m->fds.vm_info, key) && errno != ENOENT)
			return -errno;
		return 0;
	}
	vm = add_vm(m, info);
	if (!vm)
		return -ENOMEM;
	vm->kvm = *(const __u64 *)key;
	/* Checked before the counters are read, so those are final. */
	vm->destroyed = vm->destroyed || gone;
	return 0;
}

static int on_dead_vm(struct mf_model *m, const void *key, const void *value)
{
	struct mf_vm *vm = add_vm(m, value);

	(void)key;
	if (!vm)
		return -ENOMEM;
	vm->destroyed = true;
	/* kvm_destroy_vm removed its vm_info entry already; the address may
	 * key another VM's by now, which reaping must not delete. */
	vm->kvm = 0;
	return 0;
}

static size_t percpu_size(const struct mf_model *m, size_t size)
{
	return ((size + 7) & ~(size_t)7) * (size_t)m->ncpus;
}

/* Sums per-CPU copies: counters add up, the vCPU bitmap is a union. */
static void hot_add(struct mf_vm_hot *dst, const struct mf_vm_hot *src)
{
	const size_t lo = offsetof(struct mf_vm_hot, vcpus) / sizeof(__u64);
	const size_t hi = lo + MF_VCPU_WORDS;
	const __u64 *s = (const __u64 *)src;
	__u64 *d = (__u64 *)dst;

	_Static_assert(sizeof(struct mf_vm_hot) % sizeof(__u64) == 0,
		       "mf_vm_hot must be made of __u64 words");
	for (size_t i = 0; i < sizeof(*dst) / sizeof(__u64); i++)
		d[i] = (i >= lo && i < hi) ? (d[i] | s[i]) : d[i] + s[i];
}

static int on_vm_hot(struct mf_model *m, const void *key, const void *value)
{
	struct mf_vm *vm = find_vm(m, *(const __u64 *)key);
	const struct mf_vm_hot *v = value;

	/* Created after vm_info was read: picked up at the next refresh. */
	if (!vm)
		return 0;
	memset(&vm->cur.hot, 0, sizeof(vm->cur.hot));
	for (int cpu = 0; cpu < m->ncpus; cpu++)
		hot_add(&vm->cur.hot, &v[cpu]);
	return 0;
}

static int on_vm_cold(struct mf_model *m, const void *key, const void *value)
{
	struct mf_vm *vm = find_vm(m, *(const __u64 *)key);

	if (vm)
		memcpy(&vm->cur.cold, value, sizeof(vm->cur.cold));
	return 0;
}

/*
 * The BPF program updates a VM's vm_cold entry and ranges before, and
 * fully ordered with, its hot traffic count: a VM whose traffic did not
 * move since the last refresh has nothing new there to read.
 */
static bool traffic_moved(const struct mf_vm *vm)
{
	return vm->cur.traffic != vm->prev.traffic;
}

/* Single lookups for the few VMs whose traffic moved, else one batch read. */
static int read_cold(struct mf_model *m)
{
	size_t moved = 0;

	for (size_t i = 0; i < m->nr_vms; i++)
		moved += traffic_moved(&m->vms[i]);
	if (moved * 4 > m->nr_vms)
		return for_each_entry(m, m->fds.vm_cold, sizeof(__u64), sizeof(struct mf_vm_cold),
				      on_vm_cold);
	for (size_t i = 0; i < m->nr_vms; i++) {
		struct mf_vm *vm = &m->vms[i];

		if (traffic_moved(vm) &&
		    bpf_map_lookup_elem(m->fds.vm_cold, &vm->id, &vm->cur.cold) && errno != ENOENT)
			return -errno;
	}
	return 0;
}

static int on_range(struct mf_model *m, const void *key, const void *value)
{
	const struct mf_range_key *k = key;
	const struct mf_range_val *v = value;
	struct mf_range *r;

	if (m->nr_fresh == m->cap_fresh) {
		size_t cap = m->cap_fresh ? 2 * m->cap_fresh : 256;
		struct mf_range *items = realloc(m->fresh, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		m->fresh = items;
		m->cap_fresh = cap;
	}
	r = &m->fresh[m->nr_fresh++];
	*r = (struct mf_range){ .vm_id = k->vm_id, .kind = k->kind, .range = k->range };
	for (int cpu = 0; cpu < m->ncpus; cpu++) {
		r->count += v[cpu].count;
		r->bytes += v[cpu].bytes;
	}
	return 0;
}

int mf_range_cmp(const void *a, const void *b)
{
	const struct mf_range *x = a, *y = b;

	if (x->vm_id != y->vm_id)
		return x->vm_id < y->vm_id ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->range < y->range ? -1 : x->range > y->range;
}

/*
 * Drops the entries of VMs this refresh does not know: VMs whose first exit
 * came after vm_info was read. Kept, their counts would become the base of
 * the next refresh's deltas and never be reported; dropped, they are read
 * whole once the VM is known. items are sorted by vm_id, their first field.
 */
static size_t keep_known_vms(const struct mf_model *m, void *items, size_t n, size_t size)
{
	char *p = items;
	size_t keep = 0, v = 0;

	for (size_t i = 0; i < n; i++) {
		__u64 id;

		memcpy(&id, p + i * size, sizeof(id));
		while (v < m->nr_vms && m->vms[v].id < id)
			v++;
		if (v == m->nr_vms || m->vms[v].id != id)
			continue;
		if (keep != i)
			memcpy(p + keep * size, p + i * size, size);
		keep++;
	}
	return keep;
}

_Static_assert(offsetof(struct mf_range, vm_id) == 0 && offsetof(struct mf_vcpu, vm_id) == 0,
	       "keep_known_vms() reads the VM id first");

/* Carries the previous totals over to the freshly read, sorted ranges. */
static void merge_prev_ranges(struct mf_model *m, struct mf_range *fresh, size_t nr)
{
	size_t i = 0, j = 0;

	while (i < nr && j < m->nr_ranges) {
		int c = mf_range_cmp(&fresh[i], &m->ranges[j]);

		if (c == 0) {
			fresh[i].prev_count = m->ranges[j].count;
			fresh[i].prev_bytes = m->ranges[j].bytes;
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
}

/* Points every VM at its slice of the sorted range array. */
static void index_ranges(struct mf_model *m)
{
	size_t r = 0;

	for (size_t i = 0; i < m->nr_vms; i++) {
		struct mf_vm *vm = &m->vms[i];

		while (r < m->nr_ranges && m->ranges[r].vm_id < vm->id)
			r++;
		vm->first_range = r;
		while (r < m->nr_ranges && m->ranges[r].vm_id == vm->id)
			r++;
		vm->nr_ranges = r - vm->first_range;
	}
}

static int read_ranges(struct mf_model *m)
{
	struct mf_range *old = m->ranges;
	size_t old_cap = m->cap_ranges;
	int err;

	m->nr_fresh = 0;
	err = for_each_entry(m, m->fds.gpa_ranges, sizeof(struct mf_range_key),
			     percpu_size(m, sizeof(struct mf_range_val)), on_range);
	if (err)
		return err;
	qsort(m->fresh, m->nr_fresh, sizeof(*m->fresh), mf_range_cmp);
	m->nr_fresh = keep_known_vms(m, m->fresh, m->nr_fresh, sizeof(*m->fresh));
	merge_prev_ranges(m, m->fresh, m->nr_fresh);
	/* Swap buffers: the old array is reused for the next read. */
	m->ranges = m->fresh;
	m->nr_ranges = m->nr_fresh;
	m->cap_ranges = m->cap_fresh;
	m->fresh = old;
	m->cap_fresh = old_cap;
	return 0;
}

/*
 * Whether the ranges can be read VM by VM: when no VM created a range key
 * since the last refresh, the keys are all known, and only VMs whose
 * traffic moved have ranges that moved. Single lookups beat one batch
 * read of the whole map only while they are few.
 */
static bool ranges_readable_by_vm(const struct mf_model *m)
{
	size_t lookups = 0;

	for (size_t i = 0; i < m->nr_vms; i++) {
		const struct mf_vm *vm = &m->vms[i];

		if (vm->cur.ranges_created != vm->prev.ranges_created)
			return false;
		if (traffic_moved(vm))
			lookups += vm->nr_ranges;
	}
	return lookups * 4 <= m->nr_ranges;
}

static int read_moved_ranges(struct mf_model *m)
{
	struct mf_range_val values[m->ncpus];

	for (size_t r = 0; r < m->nr_ranges; r++) {
		m->ranges[r].prev_count = m->ranges[r].count;
		m->ranges[r].prev_bytes = m->ranges[r].bytes;
	}
	for (size_t i = 0; i < m->nr_vms; i++) {
		const struct mf_vm *vm = &m->vms[i];

		if (!traffic_moved(vm))
			continue;
		for (size_t r = vm->first_range; r < vm->first_range + vm->nr_ranges; r++) {
			struct mf_range *range = &m->ranges[r];
			struct mf_range_key key = {
				.vm_id = range->vm_id, .kind = range->kind, .range = range->range,
			};

			if (bpf_map_lookup_elem(m->fds.gpa_ranges, &key, values))
				return -errno;
			range->count = range->bytes = 0;
			for (int cpu = 0; cpu < m->ncpus; cpu++) {
				range->count += values[cpu].count;
				range->bytes += values[cpu].bytes;
			}
		}
	}
	return 0;
}

static int cmp_vcpu(const void *a, const void *b)
{
	const struct mf_vcpu *x = a, *y = b;

	if (x->vm_id != y->vm_id)
		return x->vm_id < y->vm_id ? -1 : 1;
	return x->vcpu_id < y->vcpu_id ? -1 : x->vcpu_id > y->vcpu_id;
}

static int on_vcpu_wait(struct mf_model *m, const void *key, const void *value)
{
	const struct mf_vcpu_key *k = key;
	struct mf_vcpu v = { .vm_id = k->vm_id, .vcpu_id = k->vcpu_id };
	const struct mf_vcpu *old;

	if (m->nr_vcpus == m->cap_vcpus) {
		size_t cap = m->cap_vcpus ? 2 * m->cap_vcpus : 64;
		struct mf_vcpu *items = realloc(m->vcpus, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		m->vcpus = items;
		m->cap_vcpus = cap;
	}
	memcpy(&v.cur, value, sizeof(v.cur));
	/* The entries before nr_sorted are last refresh's, sorted. */
	old = bsearch(&v, m->vcpus, m->nr_sorted_vcpus, sizeof(v), cmp_vcpu);
	v.prev = old ? old->cur : (struct mf_vcpu_wait){ 0 };
	m->vcpus[m->nr_vcpus++] = v;
	return 0;
}

/* Points every VM at its slice of the sorted vCPU array. */
static void index_vcpus(struct mf_model *m)
{
	size_t r = 0;

	for (size_t i = 0; i < m->nr_vms; i++) {
		struct mf_vm *vm = &m->vms[i];

		while (r < m->nr_vcpus && m->vcpus[r].vm_id < vm->id)
			r++;
		vm->first_vcpu = r;
		while (r < m->nr_vcpus && m->vcpus[r].vm_id == vm->id)
			r++;
		vm->nr_vcpus = r - vm->first_vcpu;
	}
}

/*
 * The per-vCPU waits, re-read only when some VM's waits moved: the new
 * entries are appended after last refresh's, then moved to the front.
 */
static int read_vcpu_waits(struct mf_model *m)
{
	bool moved = false;
	size_t old;
	int err;

	for (size_t i = 0; i < m->nr_vms && !moved; i++)
		moved = mf_vm_waits(&m->vms[i].cur) != mf_vm_waits(&m->vms[i].prev);
	for (size_t i = 0; i < m->nr_vcpus; i++)
		m->vcpus[i].prev = m->vcpus[i].cur;
	if (!moved)
		return 0;
	old = m->nr_sorted_vcpus = m->nr_vcpus;
	err = for_each_entry(m, m->fds.vcpu_waits, sizeof(struct mf_vcpu_key),
			     sizeof(struct mf_vcpu_wait), on_vcpu_wait);
	if (err) {
		m->nr_vcpus = old;
		return err;
	}
	memmove(m->vcpus, m->vcpus + old, (m->nr_vcpus - old) * sizeof(*m->vcpus));
	m->nr_vcpus -= old;
	qsort(m->vcpus, m->nr_vcpus, sizeof(*m->vcpus), cmp_vcpu);
	m->nr_vcpus = m->nr_sorted_vcpus = keep_known_vms(m, m->vcpus, m->nr_vcpus,
							  sizeof(*m->vcpus));
	return 0;
}

static int read_drops(struct mf_model *m)
{
	__u64 values[m->ncpus];

	for (__u32 key = 0; key < MF_NR_DROPS; key++) {
		if (bpf_map_lookup_elem(m->fds.drops, &key, values))
			return -errno;
		m->prev_drops[key] = m->drops[key];
		m->drops[key] = 0;
		for (int cpu = 0; cpu < m->ncpus; cpu++)
			m->drops[key] += values[cpu];
	}
	return 0;
}

int mf_model_init(struct mf_model *m, const struct mf_map_fds *fds, unsigned int gpa_shift,
		  bool destroyed_with_process)
{
	memset(m, 0, sizeof(*m));
	m->fds = *fds;
	m->gpa_shift = gpa_shift;
	m->destroyed_with_process = destroyed_with_process;
	m->ncpus = libbpf_num_possible_cpus();
	if (m->ncpus <= 0)
		return m->ncpus ? m->ncpus : -EINVAL;
	m->start_ns = m->prev_ns = m->now_ns = now_ns();
	return 0;
}

int mf_model_refresh(struct mf_model *m)
{
	int err;

	m->prev_ns = m->now_ns;
	m->now_ns = now_ns();
	for (size_t i = 0; i < m->nr_vms; i++)
		m->vms[i].prev = m->vms[i].cur;

	/* Dead first: a VM destroyed between the two reads is then seen at
	 * the next refresh instead of never. */
	err = for_each_entry(m, m->fds.dead_vms, sizeof(__u64), sizeof(struct mf_vm_info),
			     on_dead_vm);
	if (!err)
		err = for_each_entry(m, m->fds.vm_info, sizeof(__u64),
				     sizeof(struct mf_vm_info), on_live_vm);
	if (err)
		return err;
	sort_vms(m);
	index_ranges(m);
	err = for_each_entry(m, m->fds.vm_hot, sizeof(__u64),
			     percpu_size(m, sizeof(struct mf_vm_hot)), on_vm_hot);
	if (!err)
		err = read_cold(m);
	if (!err)
		err = ranges_readable_by_vm(m) ? read_moved_ranges(m) : read_ranges(m);
	if (!err)
		err = read_drops(m);
	if (!err)
		err = read_vcpu_waits(m);
	if (!err) {
		index_ranges(m);
		index_vcpus(m);
	}
	return err;
}

int mf_model_reap(struct mf_model *m)
{
	size_t keep_vms = 0, keep_ranges = 0, keep_vcpus = 0;
	int err = 0;

	for (size_t i = 0; i < m->nr_vms; i++) {
		struct mf_vm *vm = &m->vms[i];

		if (!vm->destroyed) {
			if (keep_vms != i)
				m->vms[keep_vms] = *vm;
			keep_vms++;
			continue;
		}
		for (size_t r = vm->first_range; r < vm->first_range + vm->nr_ranges; r++) {
			struct mf_range_key key = {
				.vm_id = vm->id,
				.kind = m->ranges[r].kind,
				.range = m->ranges[r].range,
			};

			if (bpf_map_delete_elem(m->fds.gpa_ranges, &key) && errno != ENOENT)
				err = -errno;
			m->ranges[r].vm_id = 0;	/* 0 never names a VM: dropped below */
		}
		for (size_t c = vm->first_vcpu; c < vm->first_vcpu + vm->nr_vcpus; c++) {
			struct mf_vcpu_key key = { .vm_id = vm->id, .vcpu_id = m->vcpus[c].vcpu_id };

			if (bpf_map_delete_elem(m->fds.vcpu_waits, &key) && errno != ENOENT)
				err = -errno;
			m->vcpus[c].vm_id = 0;
		}
		if (bpf_map_delete_elem(m->fds.vm_hot, &vm->id) && errno != ENOENT)
			err = -errno;
		if (bpf_map_delete_elem(m->fds.vm_cold, &vm->id) && errno != ENOENT)
			err = -errno;
		if (bpf_map_delete_elem(m->fds.dead_vms, &vm->id) && errno != ENOENT)
			err = -errno;
		if (vm->kvm) {
			struct mf_vm_info info;

			/* The kernel may have retired it already and given the
			 * address to a new VM, whose entry must stay. */
			if (!bpf_map_lookup_elem(m->fds.vm_info, &vm->kvm, &info) && info.id == vm->id &&
			    bpf_map_delete_elem(m->fds.vm_info, &vm->kvm) && errno != ENOENT)
				err = -errno;
		}
	}
	m->nr_vms = m->nr_sorted_vms = keep_vms;
	for (size_t r = 0; r < m->nr_ranges; r++)
		if (m->ranges[r].vm_id)
			m->ranges[keep_ranges++] = m->ranges[r];
	m->nr_ranges = keep_ranges;
	for (size_t c = 0; c < m->nr_vcpus; c++)
		if (m->vcpus[c].vm_id)
			m->vcpus[keep_vcpus++] = m->vcpus[c];
	m->nr_vcpus = m->nr_sorted_vcpus = keep_vcpus;
	index_ranges(m);
	index_vcpus(m);
	return err;
}

void mf_model_free(struct mf_model *m)
{
	free(m->vms);
	free(m->ranges);
	free(m->fresh);
	free(m->vcpus);
	memset(m, 0, sizeof(*m));
}

double mf_model_interval_s(const struct mf_model *m)
{
	return (double)(m->now_ns - m->prev_ns) / 1e9;
}

__u64 mf_vm_exits(const struct mf_vm_stats *s)
{
	__u64 n = 0;

	for (int i = 0; i < MF_NR_EXIT_REASONS; i++)
		n += s->exits[i];
	return n;
}

__u64 mf_vm_waits(const struct mf_vm_stats *s)
{
	__u64 n = 0;

	for (int k = 0; k < MF_NR_EXIT_KINDS; k++)
		n += s->wait[k].count;
	return n;
}

/* Traffic also moves with conversions and discards, which are no exits. */
bool mf_vm_active(const struct mf_vm *vm)
{
	return vm->destroyed || mf_vm_exits(&vm->cur) != mf_vm_exits(&vm->prev) ||
	       vm->cur.traffic != vm->prev.traffic ||
	       vm->cur.range_drops != vm->prev.range_drops;
}

unsigned int mf_vm_vcpus(const struct mf_vm_stats *s)
{
	unsigned int n = 0;

	for (int w = 0; w < MF_VCPU_WORDS; w++)
		n += (unsigned int)__builtin_popcountll(s->vcpus[w]);
	return n;
}

static __u64 wait_key(const struct mf_vcpu *c, bool by_max, bool interval)
{
	if (by_max)
		return c->cur.max_ns;
	return c->cur.total_ns - (interval ? c->prev.total_ns : 0);
}

size_t mf_vm_worst_vcpus(const struct mf_model *m, const struct mf_vm *vm, bool by_max,
			 bool interval, const struct mf_vcpu **out, size_t n)
{
	size_t found = 0;

	for (size_t i = vm->first_vcpu; n && i < vm->first_vcpu + vm->nr_vcpus; i++) {
		const struct mf_vcpu *c = &m->vcpus[i];
		__u64 key = wait_key(c, by_max, interval);
		size_t at;

		if (!key || (interval && c->cur.count == c->prev.count))
			continue;
		/* Insertion into the sorted top n (the last falls off when full);
		 * ties keep vCPU order. */
		at = found < n ? found++ : n;
		while (at > 0 && wait_key(out[at - 1], by_max, interval) < key) {
			if (at < n)
				out[at] = out[at - 1];
			at--;
		}
		if (at < n)
			out[at] = c;
	}
	return found;
}
