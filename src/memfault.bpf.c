// SPDX-License-Identifier: GPL-2.0
/*
 * memfaulttop capture: counts KVM userspace exits per VM, and aggregates
 * memory-fault exits and KVM_HC_MAP_GPA_RANGE requests by size and GPA
 * range, the VMM's conversions (KVM_SET_MEMORY_ATTRIBUTES) and discards
 * (guest_memfd hole punches), and how long a vCPU waits for its VMM after
 * such an exit, all in maps that the frontend reads. Every hook but the
 * exit tracepoint is optional: the frontend loads those the kernel can trace.
 */
#include "vmlinux.h"
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "memfault.h"

const volatile __u32 gpa_shift = 30;
const volatile bool filter_pids = false;
/* The kernel lets bpf_rdonly_cast() cast to void (Linux 6.17): probed by
 * the frontend; the branch not taken is never verified. */
const volatile bool rdonly_void_cast = false;
/* fentry on kvm_arch_vcpu_ioctl_run loads: exits note when a wait starts. */
const volatile bool track_waits = false;
/* --trace: events go to the ring buffer. */
const volatile bool trace_events = false;
/* Entries of vm_hot_slots and vm_cold_slots, a multiple of 64; set by the
 * frontend. */
const volatile __u32 nr_slots = 0;

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* A VM as the exit path names it: its id, and where its counters are. */
struct vm_ref {
	__u64 id;		/* 0: filtered out, or no room */
	__u32 slot;		/* see mf_vm_info.slot */
};

/* Per vCPU thread: the VM its vCPU file resolved to, so that the common
 * exit costs one task-storage lookup instead of a pointer chase and a hash
 * lookup. Valid while the thread runs the same file and no VM was forgotten. */
struct vcpu_cache {
	__u64 file;
	__u64 epoch;
	struct kvm_run *run;
	struct vm_ref vm;
	__u32 vcpu_id;
	__u32 wait_kind;	/* enum mf_kind of the exit waited on */
	__u64 wait_start_ns;	/* 0: the vCPU waits for nothing we time */
	/* The vCPU's last exit was MAP_GPA_RANGE: where it ended, and 1 +
	 * its enum mf_dir; else map_dir is 0. */
	__u64 map_end;
	__u32 map_dir;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vcpu_cache);
} vcpu_cache SEC(".maps");

/*
 * Per CPU: the thread that exited here last, when its vcpu_cache held
 * nothing pending (no MAP_GPA_RANGE request to continue, no wait to time),
 * so that its next ordinary exit here, and its next KVM_RUN entry, skip
 * the task-storage lookup (~60 ns of ~300 per exit, bench). A thread that
 * ran on another CPU meanwhile may have left something pending: its
 * nr_migrations tells. A task_struct's address may be a dead thread's: its
 * start_time tells. Programs on one CPU may preempt each other: see
 * last_exit_hit.
 */
struct last_exit {
	__u64 task;		/* 0 while being written */
	__u64 start_time;	/* the task's */
	__u64 migrations;	/* the task's se.nr_migrations */
	__u64 file;
	__u64 epoch;
	struct vm_ref vm;
	__u32 vcpu_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct last_exit);
} last_exits SEC(".maps");

static __always_inline struct last_exit *this_cpu_last_exit(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&last_exits, &zero);
}

/* Per VMM thread: when its KVM_SET_MEMORY_ATTRIBUTES or guest_memfd
 * fallocate began, from fentry to fexit; 0 when none is running. */
struct vmm_call {
	__u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vmm_call);
} vmm_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MF_MAX_VCPU_WAITS);
	__type(key, struct mf_vcpu_key);
	__type(value, struct mf_vcpu_wait);
} vcpu_waits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MF_MAX_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

/* Live VMs by struct kvm address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MF_MAX_VMS);
	__type(key, __u64);
	__type(value, struct mf_vm_info);
} vm_info SEC(".maps");

/* Reported VMs by id, until the frontend has reported them destroyed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MF_MAX_VMS);
	__type(key, __u64);
	__type(value, struct mf_cmdline);
} vm_cmdline SEC(".maps");

/* Destroyed VMs by id, until the frontend has reported them and deletes them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MF_MAX_VMS);
	__type(key, __u64);
	__type(value, struct mf_vm_info);
} dead_vms SEC(".maps");

/*
 * Per CPU so that vCPUs of one VM on different CPUs never share a line.
 * A VM's hot counters sit in a slot of vm_hot_slots, whose lookup the
 * verifier inlines, where a hash lookup cost ~100 ns per exit (bench);
 * a slot costs its size on every possible CPU for each VM that could come,
 * so the frontend sizes the array within a memory budget, and VMs that
 * find no free slot count in vm_hot instead.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mf_vm_hot);
} vm_hot_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MF_MAX_VMS);
	__type(key, __u64);
	__type(value, struct mf_vm_hot);
} vm_hot SEC(".maps");

/*
 * One copy per VM: its histograms would cost too much memory per CPU, and
 * the exits that update them are rare enough for atomics. A VM with a slot
 * counts in vm_cold_slots, which the frontend maps and reads in place
 * (no system call, no copy through a batch buffer: ~10 KiB per VM and
 * refresh); the others in vm_cold.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mf_vm_cold);
} vm_cold_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MF_MAX_VMS);
	__type(key, __u64);
	__type(value, struct mf_vm_cold);
} vm_cold SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MF_MAX_RANGES);
	__type(key, struct mf_range_key);
	__type(value, struct mf_range_val);
} gpa_ranges SEC(".maps");

/* A hash used as a set, not a queue: sleepable programs (the injection
 * path) may not use queues on older kernels, and the frontend drains a
 * hash in batches. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MF_MAX_CHANGES);
	__type(key, struct mf_change);
	__type(value, __u8);
} changes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MF_NR_CHANGE_STATE);
	__type(key, __u32);
	__type(value, __u64);
} change_state SEC(".maps");

/* Not per CPU: the last direction of a range is one fact for all CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MF_MAX_RANGES);
	__type(key, struct mf_flip_key);
	__type(value, struct mf_flip_val);
} range_flips SEC(".maps");

/* Sized by the frontend: one page unless --trace. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MF_NR_DROPS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Too big for the BPF stack: the initial values of a new VM's counters. */
static const struct mf_vm_hot zero_hot;
static const struct mf_vm_cold zero_cold;
static const struct mf_cmdline zero_cmdline;

/* Ids start at 1 so that 0 never names a VM. */
__u64 next_vm_id = 1;
/* Bumped whenever a VM is forgotten: invalidates every vcpu_cache. */
__u64 vm_epoch;
/* Bit n: slot n (of vm_hot_slots and vm_cold_slots) belongs to a VM. Taken
 * here; given back by the frontend once it has reported the VM gone and
 * zeroed the slot. */
__u64 slots_used[MF_MAX_VMS / 64];

/* Written by the frontend, then read_changed fills in the values. */
struct mf_read_item read_items[MF_READ_BATCH];

static __always_inline void count_drop(enum mf_drop what)
{
	__u32 key = what;
	__u64 *n = bpf_map_lookup_elem(&drops, &key);

	if (n)
		(*n)++;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xffffffffULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xffff) << 4; v >>= shift; r |= shift;
	shift = (v > 0xff) << 3; v >>= shift; r |= shift;
	shift = (v > 0xf) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* A free, zeroed slot (of vm_hot_slots and vm_cold_slots), taken: 1 + its
 * index, or 0 when none is free. A global function: its loop is verified
 * once. */
__noinline __u32 take_slot(void)
{
	for (__u32 w = 0; w < MF_MAX_VMS / 64 && w * 64 < nr_slots; w++) {
		__u64 used = slots_used[w], bit = ~used & (used + 1);

		/* A lost race moves on: the VM then counts in vm_hot. */
		if (bit && __sync_val_compare_and_swap(&slots_used[w], used, used | bit) == used)
			return w * 64 + log2_u64(bit) + 1;
	}
	return 0;
}

/* A slot taken for a VM that did not get into vm_info: still zero. */
static __always_inline void give_back_slot(__u32 slot)
{
	__u32 index = slot - 1;

	if (slot)
		__sync_fetch_and_and(&slots_used[(index / 64) & (MF_MAX_VMS / 64 - 1)],
				     ~(1ULL << (index % 64)));
}

/*
 * The VM at address kvm is gone: it stays readable in dead_vms until the
 * frontend has reported it, and no thread may keep its id cached.
 */
static __always_inline void retire_vm(__u64 kvm, const struct mf_vm_info *info)
{
	if (!info->filtered_out) {
		struct mf_vm_info dead = *info;

		dead.destroyed_ns = bpf_ktime_get_ns();
		bpf_map_update_elem(&dead_vms, &dead.id, &dead, BPF_ANY);
	}
	bpf_map_delete_elem(&vm_info, &kvm);
	__sync_fetch_and_add(&vm_epoch, 1);
}

/*
 * The current task's command line, into the new VM's vm_cmdline entry: the
 * current task is the VMM. Its argument pages were written at exec and are
 * resident in practice; where one is not, len stays 0 and the frontend
 * reads /proc instead.
 */
static __always_inline void capture_cmdline(__u64 vm_id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct mf_cmdline *c;
	__u64 start, len;

	if (bpf_map_update_elem(&vm_cmdline, &vm_id, &zero_cmdline, BPF_NOEXIST))
		return;
	c = bpf_map_lookup_elem(&vm_cmdline, &vm_id);
	if (!c)
		return;
	start = BPF_CORE_READ(task, mm, arg_start);
	len = BPF_CORE_READ(task, mm, arg_end) - start;
	if (len > MF_CMDLINE_MAX)
		len = MF_CMDLINE_MAX;
	barrier_var(len);
	if (len > 0 && len <= MF_CMDLINE_MAX && !bpf_probe_read_user(c->buf, len, (void *)start))
		c->len = len;
}

/*
 * The VM at address kvm into *out, its vm_info created on first sight; id 0
 * when the VM is filtered out or no room was left (counted). real: kvm is a
 * real VM, whose stats_id and VMM comm are recorded (false for synthetic
 * exits). A global function, verified once instead of inside each caller
 * (it was most of the exit program's verification, which start-up waits
 * for); its callers run it once per thread and VM, not per exit.
 */
__noinline int resolve_vm(__u64 kvm, __u32 pid, bool real, struct vm_ref *out)
{
	struct mf_vm_info *info;

	if (!out)
		return 0;
	*out = (struct vm_ref){};
	info = bpf_map_lookup_elem(&vm_info, &kvm);

	/* Another process's VM at a known address: the old VM was destroyed
	 * and its memory reused before the frontend noticed (kernels where
	 * kvm_destroy_vm cannot be traced). */
	if (info && info->pid != pid) {
		retire_vm(kvm, info);
		info = NULL;
	}
	if (!info) {
		struct mf_vm_info fresh = { .pid = pid };

		if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &fresh.pid))
			fresh.filtered_out = 1;
		else
			fresh.id = __sync_fetch_and_add(&next_vm_id, 1);
		if (fresh.id)
			fresh.slot = take_slot();
		if (real) {
			struct task_struct *task = bpf_get_current_task_btf();

			bpf_probe_read_kernel_str(fresh.stats_id, sizeof(fresh.stats_id),
						  ((struct kvm *)kvm)->stats_id);
			/* Kept for VMMs that are gone before the frontend reads /proc. */
			BPF_CORE_READ_STR_INTO(&fresh.comm, task, group_leader, comm);
		}
		/* NOEXIST: another vCPU of the same VM may have won the race. */
		bpf_map_update_elem(&vm_info, &kvm, &fresh, BPF_NOEXIST);
		info = bpf_map_lookup_elem(&vm_info, &kvm);
		if (!info || info->id != fresh.id)
			give_back_slot(fresh.slot);
		if (!info) {
			count_drop(MF_DROP_VM_TABLE_FULL);
			return 0;
		}
		if (real && fresh.id && info->id == fresh.id)
			capture_cmdline(fresh.id);
	}
	if (!info->filtered_out)
		*out = (struct vm_ref){ .id = info->id, .slot = info->slot };
	return 0;
}

/* The entry of key in map, created from zero when missing; NULL when it
 * found no room (counted as full, or as no memory). */
static __always_inline void *map_entry(void *map, const void *key, const void *zero,
				       enum mf_drop full)
{
	void *entry = bpf_map_lookup_elem(map, key);
	int err;

	if (entry)
		return entry;
	/* NOEXIST: another CPU may have made it meanwhile. */
	err = bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	entry = bpf_map_lookup_elem(map, key);
	if (!entry)
		count_drop(err == -ENOMEM ? MF_DROP_NO_MEMORY : full);
	return entry;
}

static __always_inline void *vm_entry(void *map, __u64 vm_id, const void *zero)
{
	return map_entry(map, &vm_id, zero, MF_DROP_VM_TABLE_FULL);
}

static __always_inline struct mf_vm_hot *hot_entry(struct vm_ref vm)
{
	__u32 index = vm.slot - 1;

	if (vm.slot)
		return bpf_map_lookup_elem(&vm_hot_slots, &index);
	return vm_entry(&vm_hot, vm.id, &zero_hot);
}

static __always_inline struct mf_vm_cold *cold_entry(struct vm_ref vm)
{
	__u32 index = vm.slot - 1;

	if (vm.slot)
		return bpf_map_lookup_elem(&vm_cold_slots, &index);
	return vm_entry(&vm_cold, vm.id, &zero_cold);
}

/*
 * Bracket every change of a VM's cold entry: the frontend copies a mapped
 * entry while CPUs change it, and tells a torn copy by these counters. The
 * fetched value makes each a BPF_FETCH atomic, fully ordered on every
 * architecture.
 */
static __always_inline void cold_change_begin(struct mf_vm_cold *cold)
{
	__u64 n = __sync_fetch_and_add(&cold->changes_begun, 1);

	barrier_var(n);
}

static __always_inline void cold_change_done(struct mf_vm_cold *cold)
{
	__u64 n = __sync_fetch_and_add(&cold->changes_done, 1);

	barrier_var(n);
}

/* Logs an entry's key the first time it moves in this generation (kept
 * plus one: a new, zeroed entry is never taken as logged). Racing CPUs on
 * a shared entry may both log it: the set keeps it once. */
static __always_inline void log_change(__u64 *logged_gen, enum mf_change_map map, __u64 vm_id,
				       __u32 kind, __u64 range)
{
	__u32 at = MF_CHANGES_GEN;
	__u64 *gen = bpf_map_lookup_elem(&change_state, &at), *overflows;
	struct mf_change change = { .vm_id = vm_id, .kind = kind, .map = map, .range = range };
	__u8 logged = 1;

	if (!gen || *logged_gen == *gen + 1)
		return;
	*logged_gen = *gen + 1;
	if (!bpf_map_update_elem(&changes, &change, &logged, BPF_ANY))
		return;
	at = MF_CHANGES_OVERFLOWS;
	overflows = bpf_map_lookup_elem(&change_state, &at);
	if (overflows)
		__sync_fetch_and_add(overflows, 1);
}

static __always_inline void count_range(struct mf_vm_cold *cold, __u64 vm_id,
					enum mf_kind kind, __u64 gpa, __u64 bytes)
{
	struct mf_range_key key = {
		.vm_id = vm_id,
		.kind = kind,
		.range = gpa >> gpa_shift,
	};
	struct mf_range_val zero = {}, *val;

	val = map_entry(&gpa_ranges, &key, &zero, MF_DROP_RANGE_TABLE_FULL);
	if (!val) {
		__sync_fetch_and_add(&cold->range_drops, 1);
		return;
	}
	val->count++;
	val->bytes += bytes;
	log_change(&val->logged_gen, MF_CHANGED_RANGE, vm_id, kind, key.range);
}

/* The log2 slot of v, bounded so that every verifier sees it is. */
static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = v ? log2_u64(v) : 0;

	/* The compiler knows slot < 64 and drops a plain mask; older
	 * verifiers (Linux 6.1) cannot bound it without one. */
	barrier_var(slot);
	return slot & (MF_LOG2_SLOTS - 1);
}

/*
 * count_traffic, count_fault_flags and count_direction are global functions,
 * not inlined: the verifier checks a global function once, instead of once
 * per path of every caller (inlined, they made the exit program's
 * verification 29,000 instructions and 55 ms of memfaulttop's start-up).
 * Their pointer arguments may be NULL as far as the verifier knows.
 */

/*
 * Ranges first, then the histogram, all atomic (fully ordered); the caller
 * bumps hot->traffic last. A frontend that sees traffic unchanged may skip
 * the VM's cold entry (see model.c).
 */
__noinline int count_traffic(struct mf_vm_cold *cold, __u64 vm_id, __u32 kind, __u64 gpa,
			     __u64 bytes)
{
	struct mf_hist *h;

	if (!cold || kind >= MF_NR_KINDS)
		return 0;
	h = &cold->hist[kind];
	count_range(cold, vm_id, kind, gpa, bytes);
	__sync_fetch_and_add(&h->bytes, bytes);
	__sync_fetch_and_add(&h->log2_bytes[log2_slot(bytes)], 1);
	__sync_fetch_and_add(&h->count, 1);
	return 0;
}

/* The maximum is a plain store: a lost race only keeps a smaller maximum. */
static __always_inline void count_time(struct mf_lat *l, __u64 ns)
{
	__sync_fetch_and_add(&l->log2_ns[log2_slot(ns)], 1);
	__sync_fetch_and_add(&l->total_ns, ns);
	if (ns > l->max_ns)
		l->max_ns = ns;
	__sync_fetch_and_add(&l->count, 1);
}

struct fault_flags {
	struct mf_vm_cold *cold;
	__u64 flags;
};

static long count_fault_flag(__u64 bit, void *arg)
{
	struct fault_flags *f = arg;

	if (bit >= MF_FLAG_BITS || !(f->flags >> bit))
		return 1;
	if ((f->flags >> bit) & 1)
		__sync_fetch_and_add(&f->cold->fault_flag_bits[bit], 1);
	return 0;
}

__noinline int count_fault_flags(struct mf_vm_cold *cold, __u64 flags)
{
	struct fault_flags f = { .cold = cold, .flags = flags & ~MF_MEMORY_EXIT_FLAG_PRIVATE };

	/* Through bpf_loop, whose body the verifier walks once: a loop over
	 * the 64 bits took a third of the exit program's verification. */
	if (cold && f.flags)
		bpf_loop(MF_FLAG_BITS, count_fault_flag, &f, 0);
	return 0;
}

/*
 * A fault, request or successful conversion asks the range of gpa to go
 * dir: a change from the range's last direction is a flip. The exchange
 * makes concurrent events on one range count each change once.
 */
__noinline int count_direction(struct mf_vm_cold *cold, __u64 vm_id, __u64 gpa, __u32 dir)
{
	struct mf_flip_key key = { .vm_id = vm_id, .range = gpa >> gpa_shift };
	struct mf_flip_val zero = {}, *val;
	__u64 old;

	if (!cold)
		return 0;
	val = map_entry(&range_flips, &key, &zero, MF_DROP_RANGE_TABLE_FULL);
	if (!val) {
		__sync_fetch_and_add(&cold->range_drops, 1);
		return 0;
	}
	old = __sync_lock_test_and_set(&val->dir, dir + 1);
	if (old && old != dir + 1) {
		__sync_fetch_and_add(&val->flips, 1);
		__sync_fetch_and_add(&cold->flips, 1);
	}
	log_change(&val->logged_gen, MF_CHANGED_FLIP, vm_id, 0, key.range);
	return 0;
}

/* A --trace record of the given type, to fill and submit; NULL when not
 * tracing or the ring buffer is full (counted). */
static __always_inline struct mf_event *trace_event(enum mf_event_type type, __u64 vm_id)
{
	struct mf_event *ev;

	if (!trace_events)
		return NULL;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		count_drop(MF_DROP_TRACE_LOST);
		return NULL;
	}
	ev->time_ns = bpf_ktime_get_ns();
	ev->vm_id = vm_id;
	ev->type = type;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->vcpu_id = 0;
	ev->latency_ns = 0;
	return ev;
}

static __always_inline void trace_exit(const struct mf_exit *e, __u64 vm_id, bool fault,
				       __u64 gpa, __u64 bytes, __u64 flags)
{
	struct mf_event *ev = trace_event(fault ? MF_EV_FAULT : MF_EV_MAP_GPA_RANGE, vm_id);

	if (!ev)
		return;
	ev->vcpu_id = e->vcpu_id;
	ev->gpa = gpa;
	ev->size = bytes;
	ev->flags = flags;
	ev->result = e->err;
	bpf_ringbuf_submit(ev, 0);
}

/* Counts an exit of any reason and its vCPU; returns the VM's hot entry,
 * NULL when the VM is not counted. */
static __always_inline struct mf_vm_hot *count_exit(struct vm_ref vm, __u32 reason,
						    __u32 vcpu_id)
{
	struct mf_vm_hot *hot;

	if (!vm.id)
		return NULL;
	hot = hot_entry(vm);
	if (!hot)
		return NULL;
	hot->exits[reason < MF_NR_EXIT_REASONS ? reason : MF_NR_EXIT_REASONS - 1]++;
	if (vcpu_id < MF_VCPU_BITS)
		hot->vcpus[vcpu_id / 64] |= 1ULL << (vcpu_id % 64);
	else
		hot->vcpus_over++;
	return hot;
}

/*
 * Counts one exit; returns its enum mf_kind if it is one that leaves the
 * vCPU waiting for its VMM, else -1. vcpu (NULL for synthetic exits) keeps
 * where the vCPU's last MAP_GPA_RANGE exit ended, to tell a new request
 * from the next piece of one.
 */
static __always_inline int aggregate(const struct mf_exit *e, struct vm_ref vm,
				     struct vcpu_cache *vcpu)
{
	struct mf_vm_hot *hot = count_exit(vm, e->reason, e->vcpu_id);
	__u64 vm_id = vm.id;
	bool fault, map_gpa, private;
	struct mf_vm_cold *cold;
	__u64 gpa, bytes, flags;
	__u64 map_end = 0;
	__u32 map_dir = 0, dir;
	enum mf_kind kind;

	if (!hot)
		return -1;

	/* A memory-fault exit always fails KVM_RUN (-EFAULT or -EHWPOISON);
	 * a stale exit_reason of 39 on a later, successful return is not one. */
	fault = e->reason == MF_EXIT_MEMORY_FAULT && e->err < 0;
	map_gpa = e->reason == MF_EXIT_HYPERCALL && e->hc_nr == MF_HC_MAP_GPA_RANGE;
	if (vcpu) {
		map_dir = vcpu->map_dir;
		map_end = vcpu->map_end;
		vcpu->map_dir = 0;
	}
	if (!fault && !map_gpa)
		return -1;
	cold = cold_entry(vm);
	if (!cold)
		return -1;
	cold_change_begin(cold);
	if (fault) {
		flags = e->fault_flags;
		private = flags & MF_MEMORY_EXIT_FLAG_PRIVATE;
		kind = private ? MF_FAULT_PRIVATE : MF_FAULT_SHARED;
		gpa = e->fault_gpa;
		bytes = e->fault_size;
		count_fault_flags(cold, flags);
	} else {
		flags = e->hc_args[2];
		private = flags & MF_MAP_GPA_RANGE_ENCRYPTED;
		kind = private ? MF_MAP_TO_PRIVATE : MF_MAP_TO_SHARED;
		gpa = e->hc_args[0];
		bytes = e->hc_args[1] << MF_MAP_GPA_RANGE_PAGE_SHIFT;
		dir = private ? MF_TO_PRIVATE : MF_TO_SHARED;
		if (map_dir != dir + 1 || map_end != gpa)
			__sync_fetch_and_add(&cold->map_requests[dir & 1], 1);
		if (vcpu) {
			vcpu->map_dir = dir + 1;
			vcpu->map_end = gpa + bytes;
		}
	}
	count_traffic(cold, vm_id, kind, gpa, bytes);
	count_direction(cold, vm_id, gpa, private ? MF_TO_PRIVATE : MF_TO_SHARED);
	cold_change_done(cold);
	trace_exit(e, vm_id, fault, gpa, bytes, flags);
	hot->traffic++;
	return kind;
}

/*
 * The start of x86-64's struct pt_regs, the syscall frame, as the ABI fixes
 * it (ptrace's user_regs_struct begins with the same fields): read without
 * a CO-RE relocation, whose search for the kernel's type costs start-up
 * about a millisecond per type (libbpf 1.1 scans every kernel type).
 */
struct mf_syscall_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
};

/*
 * The file behind the running KVM_RUN ioctl's fd, read from the syscall
 * registers (ioctl's fd in di, its request in si): the tracepoint carries
 * no vCPU, and kprobes and fentry need ftrace, which some kernels lack.
 * Typed loads, at most one helper call.
 */
static __always_inline __u64 kvm_run_file(struct task_struct *task)
{
	const struct mf_syscall_regs *regs = (const void *)bpf_task_pt_regs(task);
	unsigned long fd = regs->di;
	struct fdtable *fdt = task->files->fdt;
	struct file **fds = fdt->fd;
	__u64 file;

	if ((__u32)regs->si != MF_KVM_RUN || fd >= fdt->max_fds)
		return 0;
	/* An untrusted read-only pointer: a plain load, no helper call. */
	if (rdonly_void_cast)
		return *(__u64 *)bpf_rdonly_cast(&fds[fd], 0);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return 0;
	return file;
}

/*
 * Resolves a vCPU file to its VM once per thread and vCPU: the file's
 * private_data is the vCPU, whose exit reason must be the tracepoint's
 * (a check against a fd replaced by another thread meanwhile).
 */
static __always_inline bool resolve_vcpu(__u64 file, __u32 reason, struct vcpu_cache *c)
{
	struct kvm_vcpu *vcpu = BPF_CORE_READ((struct file *)file, private_data);
	struct kvm *kvm;
	__u64 key;

	if (!vcpu || BPF_CORE_READ(vcpu, run, exit_reason) != reason)
		return false;
	kvm = BPF_CORE_READ(vcpu, kvm);
	key = (__u64)kvm;
	c->file = file;
	c->epoch = vm_epoch;
	c->run = BPF_CORE_READ(vcpu, run);
	c->vcpu_id = BPF_CORE_READ(vcpu, vcpu_id);
	resolve_vm(key, BPF_CORE_READ(kvm, userspace_pid), true, &c->vm);
	/* A VM that found no room in vm_info stays uncached: its next exits
	 * try again, and are counted as dropped meanwhile. */
	if (!c->vm.id && !bpf_map_lookup_elem(&vm_info, &key))
		c->file = 0;
	return true;
}

#define compiler_barrier() asm volatile("" ::: "memory")

/*
 * Whether this CPU's entry names this thread, and the thread has run
 * nowhere else since: then its latest exit was here and left nothing
 * pending. With a file, also whether that exit was on this vCPU file, with
 * its VM and vCPU id. Only the thread itself writes an entry naming it
 * (remember_last_exit: task 0 first, task last), so an entry that names it
 * before and after the reads was not rewritten meanwhile. No copy of the
 * entry: the BPF stack is small on Linux 6.1.
 */
static __always_inline bool last_exit_hit(struct last_exit *last, struct task_struct *task,
					  __u64 file, struct vm_ref *vm, __u32 *vcpu_id)
{
	bool same;

	if (last->task != (__u64)task)
		return false;
	compiler_barrier();
	same = last->start_time == task->start_time &&
	       last->migrations == task->se.nr_migrations;
	if (file) {
		same = same && last->file == file && last->epoch == vm_epoch;
		*vm = last->vm;
		*vcpu_id = last->vcpu_id;
	}
	compiler_barrier();
	return same && last->task == (__u64)task;
}

static __always_inline void remember_last_exit(struct last_exit *last, struct task_struct *task,
					       const struct vcpu_cache *c)
{
	last->task = 0;
	compiler_barrier();
	if (c->map_dir || c->wait_start_ns)
		return;
	last->start_time = task->start_time;
	last->migrations = task->se.nr_migrations;
	last->file = c->file;
	last->epoch = c->epoch;
	last->vm = c->vm;
	last->vcpu_id = c->vcpu_id;
	compiler_barrier();
	last->task = (__u64)task;
}

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(on_userspace_exit, __u32 reason, int err)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 file = kvm_run_file(task);
	struct last_exit *last = this_cpu_last_exit();
	struct vcpu_cache *c;
	struct mf_exit e = { .reason = reason, .err = err };
	struct kvm_run *run;
	struct vm_ref vm;
	int kind;

	if (!file) {
		count_drop(MF_DROP_NO_VCPU);
		return 0;
	}
	/* Memory-fault and hypercall exits may start something pending; the
	 * others only count (not through aggregate(): the verifier would walk
	 * a second copy of all of it). */
	if (last && reason != MF_EXIT_MEMORY_FAULT && reason != MF_EXIT_HYPERCALL &&
	    last_exit_hit(last, task, file, &vm, &e.vcpu_id)) {
		count_exit(vm, reason, e.vcpu_id);
		return 0;
	}
	c = bpf_task_storage_get(&vcpu_cache, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	/* No memory for the thread's cache: the exit is dropped, counted. */
	if (!c) {
		count_drop(MF_DROP_NO_MEMORY);
		return 0;
	}
	if (c->file != file || c->epoch != vm_epoch) {
		if (!resolve_vcpu(file, reason, c)) {
			c->file = 0;
			count_drop(MF_DROP_NO_VCPU);
			return 0;
		}
	}
	if (!c->vm.id)
		goto out;
	run = c->run;
	e.vcpu_id = c->vcpu_id;
	if (reason == MF_EXIT_MEMORY_FAULT) {
		if (bpf_core_field_exists(run->memory_fault)) {
			e.fault_flags = BPF_CORE_READ(run, memory_fault.flags);
			e.fault_gpa = BPF_CORE_READ(run, memory_fault.gpa);
			e.fault_size = BPF_CORE_READ(run, memory_fault.size);
		}
	} else if (reason == MF_EXIT_HYPERCALL) {
		e.hc_nr = BPF_CORE_READ(run, hypercall.nr);
		if (e.hc_nr == MF_HC_MAP_GPA_RANGE)
			bpf_core_read(e.hc_args, sizeof(e.hc_args), &run->hypercall.args);
	}
	kind = aggregate(&e, c->vm, c);
	/* Only memory-fault and MAP_GPA_RANGE exits start a wait. */
	if (track_waits && kind >= 0) {
		c->wait_kind = kind;
		c->wait_start_ns = bpf_ktime_get_ns();
	}
out:
	if (last)
		remember_last_exit(last, task, c);
	return 0;
}

/* Bumps the VM's traffic count after its cold entry changed, so that the
 * frontend reads it (see count_traffic). */
static __always_inline void count_cold_change(struct vm_ref vm)
{
	struct mf_vm_hot *hot = hot_entry(vm);

	if (hot)
		hot->traffic++;
}

static __always_inline void count_vcpu_wait(__u64 vm_id, __u32 vcpu_id, __u64 ns)
{
	struct mf_vcpu_key key = { .vm_id = vm_id, .vcpu_id = vcpu_id };
	struct mf_vcpu_wait zero = {};
	struct mf_vcpu_wait *w = map_entry(&vcpu_waits, &key, &zero, MF_DROP_VCPU_TABLE_FULL);

	if (!w)
		return;
	/* One thread runs a vCPU at a time: plain updates suffice. */
	w->count++;
	w->total_ns += ns;
	if (ns > w->max_ns)
		w->max_ns = ns;
}

/* Whether the VM at kvm is still the one of id: a VM forgotten meanwhile
 * may have handed its slot to another. */
static __always_inline bool vm_lives(struct kvm *kvm, __u64 id)
{
	__u64 key = (__u64)kvm;
	struct mf_vm_info *info = bpf_map_lookup_elem(&vm_info, &key);

	return info && info->id == id;
}

/*
 * A vCPU enters the guest again: if its thread's last exit left it waiting
 * for the VMM, the wait ends here. Most entries follow an ordinary exit on
 * the same CPU, which last_exits tells without a task-storage lookup.
 */
SEC("fentry/kvm_arch_vcpu_ioctl_run")
int BPF_PROG(enter_vcpu_run, struct kvm_vcpu *vcpu)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct last_exit *last = this_cpu_last_exit();
	struct vcpu_cache *c;
	struct mf_vm_cold *cold;
	__u64 ns;

	if (last && last_exit_hit(last, task, 0, NULL, NULL))
		return 0;
	c = bpf_task_storage_get(&vcpu_cache, task, 0, 0);
	if (!c || !c->wait_start_ns)
		return 0;
	ns = bpf_ktime_get_ns() - c->wait_start_ns;
	c->wait_start_ns = 0;
	/* The thread may run another vCPU now: its run page tells. */
	if (vcpu->run != c->run || (c->epoch != vm_epoch && !vm_lives(vcpu->kvm, c->vm.id)))
		return 0;
	cold = cold_entry(c->vm);
	if (!cold)
		return 0;
	count_vcpu_wait(c->vm.id, c->vcpu_id, ns);
	cold_change_begin(cold);
	count_time(&cold->wait[c->wait_kind & (MF_NR_EXIT_KINDS - 1)], ns);
	cold_change_done(cold);
	count_cold_change(c->vm);
	return 0;
}

/* The time since this thread's VMM call began; 0 if none was seen. */
static __always_inline __u64 vmm_call_end(void)
{
	struct vmm_call *call = bpf_task_storage_get(&vmm_calls, bpf_get_current_task_btf(),
						     0, 0);
	__u64 start;

	if (!call || !call->start_ns)
		return 0;
	start = call->start_ns;
	call->start_ns = 0;
	return bpf_ktime_get_ns() - start;
}

static __always_inline void vmm_call_begin(void)
{
	struct vmm_call *call = bpf_task_storage_get(&vmm_calls, bpf_get_current_task_btf(),
						     0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (call)
		call->start_ns = bpf_ktime_get_ns();
}

static __always_inline struct mf_vm_cold *vmm_call_vm(struct kvm *kvm, struct vm_ref *vm)
{
	resolve_vm((__u64)kvm, BPF_CORE_READ(kvm, userspace_pid), true, vm);
	return vm->id ? cold_entry(*vm) : NULL;
}

/* The ioctl on the VM fd: filp->private_data is the VM. */
SEC("fentry/kvm_vm_ioctl")
int BPF_PROG(vm_ioctl_enter, struct file *filp, unsigned int ioctl, unsigned long arg)
{
	if (ioctl == MF_KVM_SET_MEMORY_ATTRIBUTES)
		vmm_call_begin();
	return 0;
}

/* struct kvm_memory_attributes, include/uapi/linux/kvm.h */
struct mf_memory_attributes {
	__u64 address;
	__u64 size;
	__u64 attributes;
	__u64 flags;
};

SEC("fexit/kvm_vm_ioctl")
int BPF_PROG(vm_ioctl_exit, struct file *filp, unsigned int ioctl, unsigned long arg, long ret)
{
	struct mf_memory_attributes a;
	struct mf_vm_cold *cold;
	struct mf_event *ev;
	struct mf_conv *conv;
	struct vm_ref vm;
	__u64 ns, vm_id;
	bool private;

	if (ioctl != MF_KVM_SET_MEMORY_ATTRIBUTES)
		return 0;
	ns = vmm_call_end();
	if (!ns)
		return 0;
	/* Read after the call: the kernel has just copied it, so the page is
	 * resident (a non-sleepable program cannot fault it in). */
	if (bpf_probe_read_user(&a, sizeof(a), (void *)arg)) {
		count_drop(MF_DROP_UNREADABLE);
		return 0;
	}
	cold = vmm_call_vm(BPF_CORE_READ(filp, private_data), &vm);
	if (!cold)
		return 0;
	vm_id = vm.id;
	private = a.attributes & MF_MEMORY_ATTRIBUTE_PRIVATE;
	conv = &cold->conv[private ? MF_TO_PRIVATE : MF_TO_SHARED];
	cold_change_begin(cold);
	count_traffic(cold, vm_id, private ? MF_CONV_TO_PRIVATE : MF_CONV_TO_SHARED,
		      a.address, a.size);
	count_time(&conv->time, ns);
	if (ret < 0) {
		__u32 err = -ret < MF_ERRNO_SLOTS ? -ret : MF_ERRNO_SLOTS - 1;

		barrier_var(err);
		if (err < MF_ERRNO_SLOTS)
			__sync_fetch_and_add(&conv->errors[err], 1);
		__sync_fetch_and_add(&conv->failed, 1);
	} else {
		/* A failed call changed nothing: no direction. */
		count_direction(cold, vm_id, a.address, private ? MF_TO_PRIVATE : MF_TO_SHARED);
	}
	cold_change_done(cold);
	ev = trace_event(MF_EV_CONVERSION, vm_id);
	if (ev) {
		ev->gpa = a.address;
		ev->size = a.size;
		ev->flags = a.attributes;
		ev->result = ret;
		ev->latency_ns = ns;
		bpf_ringbuf_submit(ev, 0);
	}
	count_cold_change(vm);
	return 0;
}

/* guest_memfd's per-file state, whose kvm is the VM it belongs to: struct
 * kvm_gmem in Linux 6.8-6.18, struct gmem_file since. */
struct kvm_gmem___mf {
	struct kvm *kvm;
} __attribute__((preserve_access_index));

struct gmem_file___mf {
	struct kvm *kvm;
} __attribute__((preserve_access_index));

static __always_inline struct kvm *gmem_vm(struct file *file)
{
	void *gmem = BPF_CORE_READ(file, private_data);

	if (bpf_core_type_exists(struct kvm_gmem___mf))
		return BPF_CORE_READ((struct kvm_gmem___mf *)gmem, kvm);
	if (bpf_core_type_exists(struct gmem_file___mf))
		return BPF_CORE_READ((struct gmem_file___mf *)gmem, kvm);
	return NULL;
}

SEC("fentry/kvm_gmem_fallocate")
int BPF_PROG(gmem_fallocate_enter, struct file *file, int mode, __s64 offset, __s64 len)
{
	if (mode & MF_FALLOC_FL_PUNCH_HOLE)
		vmm_call_begin();
	return 0;
}

SEC("fexit/kvm_gmem_fallocate")
int BPF_PROG(gmem_fallocate_exit, struct file *file, int mode, __s64 offset, __s64 len,
	     long ret)
{
	struct mf_vm_cold *cold;
	struct mf_event *ev;
	struct kvm *kvm;
	struct vm_ref vm;
	__u64 ns;

	if (!(mode & MF_FALLOC_FL_PUNCH_HOLE))
		return 0;
	ns = vmm_call_end();
	kvm = ns ? gmem_vm(file) : NULL;
	if (!kvm)
		return 0;
	cold = vmm_call_vm(kvm, &vm);
	if (!cold)
		return 0;
	cold_change_begin(cold);
	__sync_fetch_and_add(&cold->discard.bytes, len);
	if (ret < 0)
		__sync_fetch_and_add(&cold->discard.failed, 1);
	count_time(&cold->discard.time, ns);
	cold_change_done(cold);
	ev = trace_event(MF_EV_DISCARD, vm.id);
	if (ev) {
		ev->gpa = offset;
		ev->size = len;
		ev->flags = mode;
		ev->result = ret;
		ev->latency_ns = ns;
		bpf_ringbuf_submit(ev, 0);
	}
	count_cold_change(vm);
	return 0;
}

/* Runs before the VM's memory goes, so its counts stay readable until the
 * frontend has reported it; the frontend then deletes its entries. */
SEC("fentry/kvm_destroy_vm")
int BPF_PROG(forget_vm, struct kvm *kvm)
{
	__u64 key = (__u64)kvm;
	struct mf_vm_info *info = bpf_map_lookup_elem(&vm_info, &key);

	/* The address may be reused by the next VM: it must get a new id. */
	if (info)
		retire_vm(key, info);
	return 0;
}

/* Run once after load, for the feature report: whether kvm_run has
 * memory_fault (Linux 6.8+). The probe finds types by name only; libbpf's
 * relocation sees into them. */
SEC("syscall")
int has_memory_fault_info(void *ctx)
{
	struct kvm_run *run = NULL;

	return bpf_core_field_exists(run->memory_fault);
}

/* Test and benchmark only: feeds a synthetic exit through aggregate(). */
SEC("syscall")
int inject_exit(struct mf_exit *ctx)
{
	/* ctx is user memory: map helpers need the key on the stack. */
	struct mf_exit e = *ctx;
	struct vm_ref vm;

	resolve_vm(e.kvm, e.pid, false, &vm);
	aggregate(&e, vm, NULL);
	return 0;
}

/* Step i of read_changed: item i / ncpus on CPU i % ncpus (one loop, not
 * two nested, keeps the verifier's work to one pass of this body). */
static long read_item_on_cpu(__u64 i, void *ctx)
{
	const struct mf_read_args *args = ctx;
	__u32 n = (__u32)(i / args->ncpus), cpu = (__u32)(i % args->ncpus);
	struct mf_read_item *item;

	if (n >= MF_READ_BATCH)
		return 1;
	item = &read_items[n];
	if (!cpu)
		item->count = item->bytes = item->found = 0;
	if (item->key.map == MF_CHANGED_RANGE) {
		struct mf_range_key key = {
			.vm_id = item->key.vm_id,
			.kind = item->key.kind,
			.range = item->key.range,
		};
		struct mf_range_val *val = bpf_map_lookup_percpu_elem(&gpa_ranges, &key, cpu);

		if (val) {
			item->count += val->count;
			item->bytes += val->bytes;
			item->found = 1;
		}
	} else if (!cpu) {
		struct mf_flip_key key = { .vm_id = item->key.vm_id, .range = item->key.range };
		struct mf_flip_val *val = bpf_map_lookup_elem(&range_flips, &key);

		if (val) {
			item->count = val->flips;
			item->found = 1;
		}
	}
	return 0;
}

SEC("syscall")
int read_changed(struct mf_read_args *ctx)
{
	struct mf_read_args args = { .nr = ctx->nr, .ncpus = ctx->ncpus };
	__u64 steps = args.nr;

	if (!args.ncpus || args.nr > MF_READ_BATCH)
		return -EINVAL;
	/* A 64-bit count: the verifier's inlined bpf_loop compares all 64
	 * bits, and clang 14 handed it a __u32 product whose high half held
	 * the other field of a 64-bit load of args (bpf_loop said E2BIG). */
	barrier_var(steps);
	bpf_loop(steps * args.ncpus, read_item_on_cpu, &args, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
