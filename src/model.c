// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Reads the BPF maps (batched) into struct mf_model. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
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
 * Calls fn for every entry of a hash map, using batched lookups (deleting
 * the entries when drain is set). Per-CPU values arrive as ncpus
 * consecutive copies, each 8-byte aligned.
 */
typedef int (*entry_fn)(struct mf_model *m, const void *key, const void *value);

static int batch_read(struct mf_model *m, int fd, size_t key_size, size_t value_size,
		      entry_fn fn, bool drain)
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

		err = drain ? bpf_map_lookup_and_delete_batch(fd, in, token, keys, values, &n, NULL) :
			      bpf_map_lookup_batch(fd, in, token, keys, values, &n, NULL);
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

static int for_each_entry(struct mf_model *m, int fd, size_t key_size, size_t value_size,
			  entry_fn fn)
{
	return batch_read(m, fd, key_size, value_size, fn, false);
}

/* Room for one more of *nr items; false without memory. */
static bool reserve_one(void **items, size_t *cap, size_t nr, size_t size)
{
	size_t new_cap;
	void *grown;

	if (nr < *cap)
		return true;
	new_cap = *cap ? 2 * *cap : 64;
	grown = realloc(*items, new_cap * size);
	if (!grown)
		return false;
	*items = grown;
	*cap = new_cap;
	return true;
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
	/* bsearch may not be handed the NULL of a model with no VM yet. */
	struct mf_vm *vm = m->nr_sorted_vms ? bsearch(&id, m->vms, m->nr_sorted_vms,
						       sizeof(*m->vms), cmp_vm_id) : NULL;

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
	if (!reserve_one((void **)&m->vms, &m->cap_vms, m->nr_vms, sizeof(*vm)))
		return NULL;
	vm = &m->vms[m->nr_vms];
	memset(vm, 0, sizeof(*vm));
	vm->stats = calloc(2, sizeof(*vm->stats));
	if (!vm->stats)
		return NULL;
	vm->cur = &vm->stats[0];
	vm->prev = &vm->stats[1];
	m->nr_vms++;
	vm->id = info->id;
	vm->pid = (pid_t)info->pid;
	vm->slot = info->slot;
	memcpy(vm->stats_id, info->stats_id, sizeof(vm->stats_id));
	vm->stats_id[sizeof(vm->stats_id) - 1] = '\0';
	memcpy(comm, info->comm, sizeof(info->comm));
	/* Injected VMs have none; a failed lookup leaves len 0. */
	if (bpf_map_lookup_elem(m->fds.vm_cmdline, &vm->id, &m->cmdline) ||
	    m->cmdline.len > sizeof(m->cmdline.buf))
		m->cmdline.len = 0;
	mf_vm_identify(vm->pid, comm, m->cmdline.buf, m->cmdline.len, &vm->ident);
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

static void sum_hot(const struct mf_model *m, struct mf_vm *vm, const struct mf_vm_hot *percpu)
{
	memset(&vm->cur->hot, 0, sizeof(vm->cur->hot));
	for (int cpu = 0; cpu < m->ncpus; cpu++)
		hot_add(&vm->cur->hot, &percpu[cpu]);
}

static int on_vm_hot(struct mf_model *m, const void *key, const void *value)
{
	struct mf_vm *vm = find_vm(m, *(const __u64 *)key);

	/* Created after vm_info was read: picked up at the next refresh. */
	if (vm)
		sum_hot(m, vm, value);
	return 0;
}

/* 1 + the highest slot index of a known VM; 0 when none has a slot. The
 * BPF side takes the lowest free slot: they are few past the VMs alive. */
static __u32 highest_slot(const struct mf_model *m)
{
	__u32 end = 0;

	for (size_t i = 0; i < m->nr_vms; i++)
		if (m->vms[i].slot > end)
			end = m->vms[i].slot;
	return end;
}

/* The VMs with a slot: one batch read of the slots up to the highest one
 * in use. */
static int read_hot_slots(struct mf_model *m)
{
	const size_t size = percpu_size(m, sizeof(struct mf_vm_hot));
	__u32 end = highest_slot(m), got = 0, token, *keys;
	char *values;
	void *in = NULL;
	int err = 0;

	if (!end)
		return 0;
	keys = malloc(end * sizeof(*keys));
	values = malloc(end * size);
	if (!keys || !values) {
		err = -ENOMEM;
		goto out;
	}
	while (got < end) {
		__u32 n = end - got;

		err = bpf_map_lookup_batch(m->fds.vm_hot_slots, in, &token, keys + got,
					   values + got * size, &n, NULL);
		if (err && errno != ENOENT) {
			err = -errno;
			goto out;
		}
		got += n;
		if (err || !n)
			break;
		in = &token;
	}
	err = got == end ? 0 : -EIO;
	for (size_t i = 0; !err && i < m->nr_vms; i++)
		if (m->vms[i].slot)
			sum_hot(m, &m->vms[i],
				(const void *)(values + (m->vms[i].slot - 1) * size));
out:
	free(keys);
	free(values);
	return err;
}

static int on_vm_cold(struct mf_model *m, const void *key, const void *value)
{
	struct mf_vm *vm = find_vm(m, *(const __u64 *)key);

	if (vm) {
		memcpy(&vm->cur->cold, value, sizeof(vm->cur->cold));
		vm->cold_differs = true;
	}
	return 0;
}

/*
 * The BPF program updates a VM's cold counters and ranges before, and
 * fully ordered with, its hot traffic count: a VM whose traffic did not
 * move since the last refresh has nothing new there to read.
 */
static bool traffic_moved(const struct mf_vm *vm)
{
	return vm->cur->traffic != vm->prev->traffic;
}

/*
 * Maps vm_cold_slots up to slot end: the kernel maps every page of a
 * mapping at once, and they count in this process's RSS, so only the slots
 * up to the highest one in use.
 */
static int map_cold_slots(struct mf_model *m, size_t end)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = (end * sizeof(*m->cold_slots) + page - 1) & ~(page - 1);
	void *p;

	if (end <= m->nr_mapped_cold_slots)
		return 0;
	if (end > m->nr_cold_slots)
		return -EIO;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds.vm_cold_slots, 0);
	if (p == MAP_FAILED)
		return -errno;
	if (m->cold_slots)
		munmap(m->cold_slots, m->cold_slots_len);
	m->cold_slots = p;
	m->cold_slots_len = len;
	m->nr_mapped_cold_slots = end;
	return 0;
}

/*
 * A consistent copy of a slotted VM's mapped cold entry: one taken while no
 * change was under way (changes_done read first, changes_begun last and
 * equal), as CPUs change the entry beside the copy and this process may be
 * preempted in the middle of it. After a few torn copies, the kernel's
 * (a system call, not preempted), checked the same way: unchecked, it gave
 * one record with a conversion counted and its time not yet, under QEMU's
 * emulation. The last is kept whatever it is, as the hash's batch read is.
 */
#define COLD_MEMCPY_TRIES 4
#define COLD_COPY_TRIES 64

static int copy_cold_slot(struct mf_model *m, struct mf_vm *vm)
{
	const struct mf_vm_cold *slot = &m->cold_slots[vm->slot - 1];
	__u32 index = vm->slot - 1;

	for (int i = 0; i < COLD_COPY_TRIES; i++) {
		__u64 done = __atomic_load_n(&slot->changes_done, __ATOMIC_ACQUIRE);

		if (i < COLD_MEMCPY_TRIES)
			memcpy(&vm->cur->cold, slot, sizeof(vm->cur->cold));
		else if (bpf_map_lookup_elem(m->fds.vm_cold_slots, &index, &vm->cur->cold))
			return -errno;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&slot->changes_begun, __ATOMIC_RELAXED) == done)
			return 0;
	}
	return 0;
}

/* Slotted VMs from the mapped vm_cold_slots; of the others, single lookups
 * for the few whose traffic moved, else one batch read of vm_cold. */
static int read_cold(struct mf_model *m)
{
	size_t moved = 0, unslotted = 0;
	int err = map_cold_slots(m, highest_slot(m));

	if (err)
		return err;
	for (size_t i = 0; i < m->nr_vms; i++) {
		struct mf_vm *vm = &m->vms[i];
		bool vm_moved = traffic_moved(vm);

		if (vm->slot && vm_moved)
			err = copy_cold_slot(m, vm);
		else if (vm->cold_differs)	/* cur holds the refresh before last's */
			memcpy(&vm->cur->cold, &vm->prev->cold, sizeof(vm->cur->cold));
		if (err)
			return err;
		vm->cold_differs = vm_moved;
		unslotted += !vm->slot;
		moved += !vm->slot && vm_moved;
	}
	if (moved * 4 > unslotted)
		return for_each_entry(m, m->fds.vm_cold, sizeof(__u64), sizeof(struct mf_vm_cold),
				      on_vm_cold);
	for (size_t i = 0; moved && i < m->nr_vms; i++) {
		struct mf_vm *vm = &m->vms[i];

		if (!vm->slot && traffic_moved(vm) &&
		    bpf_map_lookup_elem(m->fds.vm_cold, &vm->id, &vm->cur->cold) && errno != ENOENT)
			return -errno;
	}
	return 0;
}

static int on_range(struct mf_model *m, const void *key, const void *value)
{
	const struct mf_range_key *k = key;
	const struct mf_range_val *v = value;
	struct mf_range *r;

	if (!reserve_one((void **)&m->fresh, &m->cap_fresh, m->nr_fresh, sizeof(*r)))
		return -ENOMEM;
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
static __u64 item_vm_id(const void *items, size_t i, size_t size)
{
	__u64 id;

	memcpy(&id, (const char *)items + i * size, sizeof(id));
	return id;
}

static size_t keep_known_vms(const struct mf_model *m, void *items, size_t n, size_t size)
{
	char *p = items;
	size_t keep = 0, v = 0;

	for (size_t i = 0; i < n; i++) {
		__u64 id = item_vm_id(items, i, size);

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

_Static_assert(offsetof(struct mf_range, vm_id) == 0 && offsetof(struct mf_vcpu, vm_id) == 0 &&
	       offsetof(struct mf_flip, vm_id) == 0,
	       "keep_known_vms() and index_by_vm() read the VM id first");

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

/* Points every VM at its slice of a sorted array whose items start with the
 * VM id: the slice's first and nr are at the given offsets of struct mf_vm. */
static void index_by_vm(struct mf_model *m, const void *items, size_t n, size_t size,
			size_t first_at, size_t nr_at)
{
	size_t r = 0;

	for (size_t i = 0; i < m->nr_vms; i++) {
		char *vm = (char *)&m->vms[i];
		size_t *first = (size_t *)(vm + first_at), *nr = (size_t *)(vm + nr_at);

		while (r < n && item_vm_id(items, r, size) < m->vms[i].id)
			r++;
		*first = r;
		while (r < n && item_vm_id(items, r, size) == m->vms[i].id)
			r++;
		*nr = r - *first;
	}
}

static void index_ranges(struct mf_model *m)
{
	index_by_vm(m, m->ranges, m->nr_ranges, sizeof(*m->ranges),
		    offsetof(struct mf_vm, first_range), offsetof(struct mf_vm, nr_ranges));
}

static void index_vcpus(struct mf_model *m)
{
	index_by_vm(m, m->vcpus, m->nr_vcpus, sizeof(*m->vcpus),
		    offsetof(struct mf_vm, first_vcpu), offsetof(struct mf_vm, nr_vcpus));
}

static void index_flips(struct mf_model *m)
{
	index_by_vm(m, m->flips, m->nr_flips, sizeof(*m->flips),
		    offsetof(struct mf_vm, first_flip), offsetof(struct mf_vm, nr_flips));
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
	if (m->nr_fresh)
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

static int cmp_vcpu(const void *a, const void *b)
{
	const struct mf_vcpu *x = a, *y = b;

	if (x->vm_id != y->vm_id)
		return x->vm_id < y->vm_id ? -1 : 1;
	return x->vcpu_id < y->vcpu_id ? -1 : x->vcpu_id > y->vcpu_id;
}

/*
 * Re-reads a map whose entries the model keeps sorted, with last refresh's
 * totals as the base of the deltas: fn appends each entry after last
 * refresh's (*nr_sorted of them, which it may bsearch), then the fresh
 * ones move to the front, sorted, and only those of known VMs stay.
 */
struct sorted_items {
	void **items;
	size_t *nr, *nr_sorted, *cap;
	size_t size;
	int (*cmp)(const void *, const void *);
};

static int reread_sorted(struct mf_model *m, const struct sorted_items *t, int fd,
			 size_t key_size, size_t value_size, entry_fn fn)
{
	size_t old = *t->nr_sorted = *t->nr;
	char *items;
	int err;

	err = for_each_entry(m, fd, key_size, value_size, fn);
	if (err) {
		*t->nr = old;
		return err;
	}
	items = *t->items;
	*t->nr -= old;
	/* An empty array may be NULL, which memmove and qsort may not get. */
	if (*t->nr) {
		memmove(items, items + old * t->size, *t->nr * t->size);
		qsort(items, *t->nr, t->size, t->cmp);
	}
	*t->nr = *t->nr_sorted = keep_known_vms(m, items, *t->nr, t->size);
	return 0;
}

static int on_vcpu_wait(struct mf_model *m, const void *key, const void *value)
{
	const struct mf_vcpu_key *k = key;
	struct mf_vcpu v = { .vm_id = k->vm_id, .vcpu_id = k->vcpu_id };
	const struct mf_vcpu *old;

	if (!reserve_one((void **)&m->vcpus, &m->cap_vcpus, m->nr_vcpus, sizeof(v)))
		return -ENOMEM;
	memcpy(&v.cur, value, sizeof(v.cur));
	old = bsearch(&v, m->vcpus, m->nr_sorted_vcpus, sizeof(v), cmp_vcpu);
	v.prev = old ? old->cur : (struct mf_vcpu_wait){ 0 };
	m->vcpus[m->nr_vcpus++] = v;
	return 0;
}

/* The per-vCPU waits, re-read only when some VM's waits moved. */
static int read_vcpu_waits(struct mf_model *m)
{
	const struct sorted_items t = {
		(void **)&m->vcpus, &m->nr_vcpus, &m->nr_sorted_vcpus, &m->cap_vcpus,
		sizeof(*m->vcpus), cmp_vcpu,
	};
	bool moved = false;

	for (size_t i = 0; i < m->nr_vms && !moved; i++)
		moved = mf_vm_waits(m->vms[i].cur) != mf_vm_waits(m->vms[i].prev);
	for (size_t i = 0; i < m->nr_vcpus; i++)
		m->vcpus[i].prev = m->vcpus[i].cur;
	return moved ? reread_sorted(m, &t, m->fds.vcpu_waits, sizeof(struct mf_vcpu_key),
				     sizeof(struct mf_vcpu_wait), on_vcpu_wait) : 0;
}

static int cmp_flip(const void *a, const void *b)
{
	const struct mf_flip *x = a, *y = b;

	if (x->vm_id != y->vm_id)
		return x->vm_id < y->vm_id ? -1 : 1;
	return x->range < y->range ? -1 : x->range > y->range;
}

static int on_flip(struct mf_model *m, const void *key, const void *value)
{
	const struct mf_flip_key *k = key;
	struct mf_flip f = { .vm_id = k->vm_id, .range = k->range,
			     .flips = ((const struct mf_flip_val *)value)->flips };
	const struct mf_flip *old;

	if (!reserve_one((void **)&m->flips, &m->cap_flips, m->nr_flips, sizeof(f)))
		return -ENOMEM;
	old = bsearch(&f, m->flips, m->nr_sorted_flips, sizeof(f), cmp_flip);
	f.prev_flips = old ? old->flips : 0;
	m->flips[m->nr_flips++] = f;
	return 0;
}

/* The whole map, with read_ranges, whenever the change set overflowed (a
 * key it lost would never be read again). */
static int read_all_flips(struct mf_model *m)
{
	const struct sorted_items t = {
		(void **)&m->flips, &m->nr_flips, &m->nr_sorted_flips, &m->cap_flips,
		sizeof(*m->flips), cmp_flip,
	};

	return reread_sorted(m, &t, m->fds.range_flips, sizeof(struct mf_flip_key),
			     sizeof(struct mf_flip_val), on_flip);
}

static int cmp_change(const void *a, const void *b)
{
	const struct mf_change *x = a, *y = b;

	if (x->map != y->map)
		return x->map < y->map ? -1 : 1;
	if (x->vm_id != y->vm_id)
		return x->vm_id < y->vm_id ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->range < y->range ? -1 : x->range > y->range;
}

static int on_change(struct mf_model *m, const void *key, const void *value)
{
	(void)value;
	if (!reserve_one((void **)&m->changes, &m->cap_changes, m->nr_changes, sizeof(*m->changes)))
		return -ENOMEM;
	memcpy(&m->changes[m->nr_changes++], key, sizeof(*m->changes));
	return 0;
}

/*
 * Bumps the generation and drains the change set after last refresh's
 * keys, which are read again: an update that saw the old generation may
 * land after last refresh read its key. *complete: nothing was lost to a
 * full set since the last drain.
 */
static int drain_changes(struct mf_model *m, bool *complete)
{
	size_t last = m->nr_changes - m->nr_prev_changes;
	__u32 at = MF_CHANGES_GEN;
	__u64 overflows;
	int err;

	if (last)
		memmove(m->changes, m->changes + m->nr_prev_changes, last * sizeof(*m->changes));
	m->nr_changes = m->nr_prev_changes = last;
	m->change_gen++;
	if (bpf_map_update_elem(m->fds.change_state, &at, &m->change_gen, BPF_ANY))
		return -errno;
	err = batch_read(m, m->fds.changes, sizeof(struct mf_change), sizeof(__u8), on_change, true);
	if (err)
		return err;
	at = MF_CHANGES_OVERFLOWS;
	if (bpf_map_lookup_elem(m->fds.change_state, &at, &overflows))
		return -errno;
	*complete = overflows == m->change_overflows;
	m->change_overflows = overflows;
	return 0;
}

/* The logged keys into m->changed, sorted, each once (*n of them): ranges
 * first, then flips. */
static int sort_changes(struct mf_model *m, size_t *n)
{
	*n = 0;
	if (!m->nr_changes)
		return 0;
	if (m->cap_changed < m->nr_changes) {
		struct mf_change *grown = realloc(m->changed, m->cap_changes * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		m->changed = grown;
		m->cap_changed = m->cap_changes;
	}
	memcpy(m->changed, m->changes, m->nr_changes * sizeof(*m->changes));
	qsort(m->changed, m->nr_changes, sizeof(*m->changed), cmp_change);
	for (size_t i = 0; i < m->nr_changes; i++)
		if (!*n || cmp_change(&m->changed[*n - 1], &m->changed[i]))
			m->changed[(*n)++] = m->changed[i];
	return 0;
}

/* The item equal to probe among the first nr_known of a sorted array, else
 * probe appended after all *nr; NULL without memory. */
static void *find_or_append(void **items, size_t *nr, size_t *cap, size_t nr_known,
			    const void *probe, size_t size, int (*cmp)(const void *, const void *))
{
	/* bsearch may not be handed the NULL of an empty array. */
	void *item = nr_known ? bsearch(probe, *items, nr_known, size, cmp) : NULL;

	if (item)
		return item;
	if (!reserve_one(items, cap, *nr, size))
		return NULL;
	item = (char *)*items + (*nr)++ * size;
	memcpy(item, probe, size);
	return item;
}

/* One value read_changed found: into the item equal to its key among the
 * first known of the model's sorted array, else a new one appended. */
static int apply_read(struct mf_model *m, const struct mf_read_item *item, size_t known_ranges,
		      size_t known_flips)
{
	const struct mf_change *c = &item->key;

	if (!item->found)	/* reaped since it was logged */
		return 0;
	if (c->map == MF_CHANGED_RANGE) {
		struct mf_range probe = { .vm_id = c->vm_id, .kind = c->kind, .range = c->range };
		struct mf_range *r = find_or_append((void **)&m->ranges, &m->nr_ranges,
						    &m->cap_ranges, known_ranges, &probe,
						    sizeof(probe), mf_range_cmp);

		if (!r)
			return -ENOMEM;
		r->count = item->count;
		r->bytes = item->bytes;
	} else {
		struct mf_flip probe = { .vm_id = c->vm_id, .range = c->range };
		struct mf_flip *f = find_or_append((void **)&m->flips, &m->nr_flips, &m->cap_flips,
						   known_flips, &probe, sizeof(probe), cmp_flip);

		if (!f)
			return -ENOMEM;
		f->flips = item->count;
	}
	return 0;
}

/* The n sorted logged keys of known VMs (the others are read once their VM
 * is), MF_READ_BATCH a system call. */
static int read_changed(struct mf_model *m, size_t n, size_t known_ranges, size_t known_flips)
{
	struct mf_read_args args = { .ncpus = (__u32)m->ncpus };
	LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
	size_t i = 0;
	int err = 0;

	while (i < n && !err) {
		for (args.nr = 0; i < n && args.nr < MF_READ_BATCH; i++)
			if (find_vm(m, m->changed[i].vm_id))
				m->fds.read_items[args.nr++].key = m->changed[i];
		if (!args.nr)	/* the rest were of unknown VMs */
			break;
		if (bpf_prog_test_run_opts(m->fds.read_changed, &run))
			return -errno;
		if (run.retval)
			return (int)run.retval;
		for (__u32 j = 0; j < args.nr && !err; j++)
			err = apply_read(m, &m->fds.read_items[j], known_ranges, known_flips);
	}
	return err;
}

/*
 * GPA ranges and their flips: only the logged keys, or both maps whole
 * when the log is incomplete. Last refresh's totals are the base of the
 * deltas either way.
 */
static int read_ranges_and_flips(struct mf_model *m)
{
	size_t known_ranges = m->nr_ranges, known_flips = m->nr_flips, n;
	bool complete = false;
	int err = drain_changes(m, &complete);

	for (size_t i = 0; i < m->nr_flips; i++)
		m->flips[i].prev_flips = m->flips[i].flips;
	if (!err && !complete)
		err = read_ranges(m);
	if (!err && !complete)
		err = read_all_flips(m);
	if (err || !complete)
		return err;
	for (size_t r = 0; r < m->nr_ranges; r++) {
		m->ranges[r].prev_count = m->ranges[r].count;
		m->ranges[r].prev_bytes = m->ranges[r].bytes;
	}
	err = sort_changes(m, &n);
	if (!err)
		err = read_changed(m, n, known_ranges, known_flips);
	if (m->nr_ranges > known_ranges)
		qsort(m->ranges, m->nr_ranges, sizeof(*m->ranges), mf_range_cmp);
	if (m->nr_flips > known_flips)
		qsort(m->flips, m->nr_flips, sizeof(*m->flips), cmp_flip);
	m->nr_sorted_flips = m->nr_flips;
	return err;
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

/* vm_cold_slots' size, checked against this build's layout. */
static int size_cold_slots(struct mf_model *m)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(m->fds.vm_cold_slots, &info, &len))
		return -errno;
	if (info.value_size != sizeof(struct mf_vm_cold))
		return -EINVAL;
	m->nr_cold_slots = info.max_entries;
	return 0;
}

int mf_model_init(struct mf_model *m, const struct mf_map_fds *fds, unsigned int gpa_shift,
		  bool destroyed_with_process)
{
	int err;

	memset(m, 0, sizeof(*m));
	m->fds = *fds;
	m->gpa_shift = gpa_shift;
	m->destroyed_with_process = destroyed_with_process;
	m->ncpus = libbpf_num_possible_cpus();
	if (m->ncpus <= 0)
		return m->ncpus ? m->ncpus : -EINVAL;
	err = size_cold_slots(m);
	if (err)
		return err;
	m->start_ns = m->prev_ns = m->now_ns = now_ns();
	return 0;
}

/*
 * Last refresh's totals become the base of the deltas: the two buffers
 * trade places. The hot part is carried over (each refresh sums it anew,
 * but a VM found in neither hot map keeps it); read_cold brings the cold
 * part up to date.
 */
static void swap_stats(struct mf_vm *vm)
{
	struct mf_vm_stats *last = vm->cur;

	vm->cur = vm->prev;
	vm->prev = last;
	vm->cur->hot = last->hot;
}

int mf_model_refresh(struct mf_model *m)
{
	int err;

	m->prev_ns = m->now_ns;
	m->now_ns = now_ns();
	for (size_t i = 0; i < m->nr_vms; i++)
		swap_stats(&m->vms[i]);

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
	err = for_each_entry(m, m->fds.vm_hot, sizeof(__u64),
			     percpu_size(m, sizeof(struct mf_vm_hot)), on_vm_hot);
	if (!err)
		err = read_hot_slots(m);
	if (!err)
		err = read_cold(m);
	if (!err)
		err = read_ranges_and_flips(m);
	if (!err)
		err = read_drops(m);
	if (!err)
		err = read_vcpu_waits(m);
	if (!err) {
		index_ranges(m);
		index_vcpus(m);
		index_flips(m);
	}
	return err;
}

/* Zeroed first: the BPF side hands a slot out as it finds it. Kept taken
 * when it cannot be zeroed (its VM's successors then use the hash). */
static int give_back_slot(struct mf_model *m, __u32 index)
{
	if (!m->zero_hot)
		m->zero_hot = calloc(1, percpu_size(m, sizeof(struct mf_vm_hot)));
	if (!m->zero_hot)
		return -ENOMEM;
	if (index >= m->nr_mapped_cold_slots)	/* mapped by the refresh that found its VM */
		return -EIO;
	if (bpf_map_update_elem(m->fds.vm_hot_slots, &index, m->zero_hot, BPF_ANY))
		return -errno;
	memset(&m->cold_slots[index], 0, sizeof(m->cold_slots[index]));
	__atomic_fetch_and(&m->fds.slots_used[index / 64], ~(1ULL << (index % 64)),
			   __ATOMIC_SEQ_CST);
	return 0;
}

int mf_model_reap(struct mf_model *m)
{
	size_t keep_vms = 0, keep_ranges = 0, keep_vcpus = 0, keep_flips = 0;
	bool any = false;
	int err = 0;

	/* Most refreshes reap nothing: spare them a pass over every range. */
	for (size_t i = 0; i < m->nr_vms && !any; i++)
		any = m->vms[i].destroyed;
	if (!any)
		return 0;
	for (size_t i = 0; i < m->nr_vms; i++) {
		struct mf_vm *vm = &m->vms[i];

		if (!vm->destroyed) {
			if (keep_vms != i)
				m->vms[keep_vms] = *vm;
			keep_vms++;
			continue;
		}
		free(vm->stats);
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
		for (size_t r = vm->first_flip; r < vm->first_flip + vm->nr_flips; r++) {
			struct mf_flip_key key = { .vm_id = vm->id, .range = m->flips[r].range };

			if (bpf_map_delete_elem(m->fds.range_flips, &key) && errno != ENOENT)
				err = -errno;
			m->flips[r].vm_id = 0;
		}
		if (bpf_map_delete_elem(m->fds.vm_hot, &vm->id) && errno != ENOENT)
			err = -errno;
		if (vm->slot) {
			int slot_err = give_back_slot(m, vm->slot - 1);

			err = slot_err ? slot_err : err;
		}
		if (bpf_map_delete_elem(m->fds.vm_cold, &vm->id) && errno != ENOENT)
			err = -errno;
		if (bpf_map_delete_elem(m->fds.vm_cmdline, &vm->id) && errno != ENOENT)
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
	for (size_t r = 0; r < m->nr_flips; r++)
		if (m->flips[r].vm_id)
			m->flips[keep_flips++] = m->flips[r];
	m->nr_flips = m->nr_sorted_flips = keep_flips;
	index_ranges(m);
	index_vcpus(m);
	index_flips(m);
	return err;
}

void mf_model_free(struct mf_model *m)
{
	for (size_t i = 0; i < m->nr_vms; i++)
		free(m->vms[i].stats);
	free(m->vms);
	free(m->ranges);
	free(m->fresh);
	free(m->vcpus);
	free(m->flips);
	free(m->changes);
	free(m->changed);
	free(m->zero_hot);
	if (m->cold_slots)
		munmap(m->cold_slots, m->cold_slots_len);
	memset(m, 0, sizeof(*m));
}

struct mf_vm *mf_model_vm(const struct mf_model *m, __u64 id)
{
	return find_vm(m, id);
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
	return vm->destroyed || memcmp(vm->cur->exits, vm->prev->exits, sizeof(vm->cur->exits)) ||
	       vm->cur->traffic != vm->prev->traffic ||
	       vm->cur->range_drops != vm->prev->range_drops;
}

unsigned int mf_vm_vcpus(const struct mf_vm_stats *s)
{
	unsigned int n = 0;

	for (int w = 0; w < MF_VCPU_WORDS; w++)
		n += (unsigned int)__builtin_popcountll(s->vcpus[w]);
	return n;
}

void mf_top_insert(const void **out, __u64 *keys, size_t *found, size_t n, const void *item,
		   __u64 key)
{
	size_t at = *found < n ? (*found)++ : n;

	/* The last falls off when full. */
	while (at > 0 && keys[at - 1] < key) {
		if (at < n) {
			out[at] = out[at - 1];
			keys[at] = keys[at - 1];
		}
		at--;
	}
	if (at < n) {
		out[at] = item;
		keys[at] = key;
	}
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
	__u64 keys[n ? n : 1];
	size_t found = 0;

	for (size_t i = vm->first_vcpu; n && i < vm->first_vcpu + vm->nr_vcpus; i++) {
		const struct mf_vcpu *c = &m->vcpus[i];
		__u64 key = wait_key(c, by_max, interval);

		if (key && (!interval || c->cur.count != c->prev.count))
			mf_top_insert((const void **)out, keys, &found, n, c, key);
	}
	return found;
}
