// SPDX-License-Identifier: GPL-2.0
/*
 * memfaulttop capture: counts KVM userspace exits per VM, and aggregates
 * memory-fault exits and KVM_HC_MAP_GPA_RANGE requests by size and GPA
 * range, all in maps that the frontend reads.
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

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* Per vCPU thread: the VM its vCPU file resolved to, so that the common
 * exit costs one task-storage lookup instead of a pointer chase and a hash
 * lookup. Valid while the thread runs the same file and no VM was forgotten. */
struct vcpu_cache {
	__u64 file;
	__u64 epoch;
	struct kvm_run *run;
	__u64 vm_id;		/* 0: filtered out */
	__u32 vcpu_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vcpu_cache);
} vcpu_cache SEC(".maps");

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

/* Destroyed VMs by id, until the frontend has reported them and deletes them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MF_MAX_VMS);
	__type(key, __u64);
	__type(value, struct mf_vm_info);
} dead_vms SEC(".maps");

/* Per CPU so that vCPUs of one VM on different CPUs never share a line. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MF_MAX_VMS);
	__type(key, __u64);
	__type(value, struct mf_vm_hot);
} vm_hot SEC(".maps");

/* One copy per VM: its histograms would cost too much memory per CPU, and
 * the exits that update them are rare enough for atomics. */
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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MF_NR_DROPS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Too big for the BPF stack: the initial values of a new VM's counters. */
static const struct mf_vm_hot zero_hot;
static const struct mf_vm_cold zero_cold;

/* Ids start at 1 so that 0 never names a VM. */
__u64 next_vm_id = 1;
/* Bumped whenever a VM is forgotten: invalidates every vcpu_cache. */
__u64 vm_epoch;

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
 * The VM's session id, its vm_info created on first sight; 0 when the VM is
 * filtered out or no room was left (counted). kvm_src is the real VM, whose
 * stats_id and VMM comm are recorded, or NULL for synthetic exits.
 */
static __always_inline __u64 resolve_vm(__u64 kvm, __u32 pid, struct kvm *kvm_src)
{
	struct mf_vm_info *info = bpf_map_lookup_elem(&vm_info, &kvm);

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
		if (kvm_src) {
			struct task_struct *task = bpf_get_current_task_btf();

			bpf_probe_read_kernel_str(fresh.stats_id, sizeof(fresh.stats_id),
						  kvm_src->stats_id);
			/* Kept for VMMs that are gone before the frontend reads /proc. */
			BPF_CORE_READ_STR_INTO(&fresh.comm, task, group_leader, comm);
		}
		/* NOEXIST: another vCPU of the same VM may have won the race. */
		bpf_map_update_elem(&vm_info, &kvm, &fresh, BPF_NOEXIST);
		info = bpf_map_lookup_elem(&vm_info, &kvm);
		if (!info) {
			count_drop(MF_DROP_VM_TABLE_FULL);
			return 0;
		}
	}
	return info->filtered_out ? 0 : info->id;
}

/* The VM's entry in vm_hot or vm_cold, created from zero when missing. */
static __always_inline void *vm_entry(void *map, __u64 vm_id, const void *zero)
{
	void *entry = bpf_map_lookup_elem(map, &vm_id);
	int err;

	if (entry)
		return entry;
	err = bpf_map_update_elem(map, &vm_id, zero, BPF_NOEXIST);
	entry = bpf_map_lookup_elem(map, &vm_id);
	if (!entry)
		count_drop(err == -ENOMEM ? MF_DROP_NO_MEMORY : MF_DROP_VM_TABLE_FULL);
	return entry;
}

static __always_inline void count_range(struct mf_vm_cold *cold, __u64 vm_id,
					enum mf_kind kind, __u64 gpa, __u64 bytes)
{
	struct mf_range_key key = {
		.vm_id = vm_id,
		.kind = kind,
		.range = gpa >> gpa_shift,
	};
	struct mf_range_val *val = bpf_map_lookup_elem(&gpa_ranges, &key);

	if (!val) {
		struct mf_range_val zero = {};
		int err = bpf_map_update_elem(&gpa_ranges, &key, &zero, BPF_NOEXIST);

		val = bpf_map_lookup_elem(&gpa_ranges, &key);
		if (!val) {
			__sync_fetch_and_add(&cold->range_drops, 1);
			count_drop(err == -ENOMEM ? MF_DROP_NO_MEMORY : MF_DROP_RANGE_TABLE_FULL);
			return;
		}
		__sync_fetch_and_add(&cold->ranges_created, 1);
	}
	val->count++;
	val->bytes += bytes;
}

/*
 * Ranges first, then the histogram, all atomic (fully ordered); the caller
 * bumps hot->traffic last. A frontend that sees traffic unchanged may skip
 * the VM's cold entry and ranges (see model.c).
 */
static __always_inline void count_traffic(struct mf_vm_cold *cold, __u64 vm_id,
					  enum mf_kind kind, __u64 gpa, __u64 bytes)
{
	struct mf_hist *h = &cold->hist[kind];
	__u32 slot = bytes ? log2_u64(bytes) : 0;

	count_range(cold, vm_id, kind, gpa, bytes);
	__sync_fetch_and_add(&h->bytes, bytes);
	/* The compiler knows slot < 64 and drops a plain mask; older
	 * verifiers (Linux 6.1) cannot bound it without one. */
	barrier_var(slot);
	__sync_fetch_and_add(&h->log2_bytes[slot & (MF_LOG2_SLOTS - 1)], 1);
	__sync_fetch_and_add(&h->count, 1);
}

static __always_inline void count_fault_flags(struct mf_vm_cold *cold, __u64 flags)
{
	flags &= ~MF_MEMORY_EXIT_FLAG_PRIVATE;
	for (__u32 bit = 0; bit < MF_FLAG_BITS && flags; bit++) {
		if (flags & 1)
			__sync_fetch_and_add(&cold->fault_flag_bits[bit], 1);
		flags >>= 1;
	}
}

static __always_inline void aggregate(const struct mf_exit *e, __u64 vm_id)
{
	bool fault, map_gpa, private;
	struct mf_vm_cold *cold;
	struct mf_vm_hot *hot;

	if (!vm_id)
		return;
	hot = vm_entry(&vm_hot, vm_id, &zero_hot);
	if (!hot)
		return;
	hot->exits[e->reason < MF_NR_EXIT_REASONS ? e->reason : MF_NR_EXIT_REASONS - 1]++;
	if (e->vcpu_id < MF_VCPU_BITS)
		hot->vcpus[e->vcpu_id / 64] |= 1ULL << (e->vcpu_id % 64);
	else
		hot->vcpus_over++;

	/* A memory-fault exit always fails KVM_RUN (-EFAULT or -EHWPOISON);
	 * a stale exit_reason of 39 on a later, successful return is not one. */
	fault = e->reason == MF_EXIT_MEMORY_FAULT && e->err < 0;
	map_gpa = e->reason == MF_EXIT_HYPERCALL && e->hc_nr == MF_HC_MAP_GPA_RANGE;
	if (!fault && !map_gpa)
		return;
	cold = vm_entry(&vm_cold, vm_id, &zero_cold);
	if (!cold)
		return;
	if (fault) {
		private = e->fault_flags & MF_MEMORY_EXIT_FLAG_PRIVATE;
		count_traffic(cold, vm_id, private ? MF_FAULT_PRIVATE : MF_FAULT_SHARED,
			      e->fault_gpa, e->fault_size);
		count_fault_flags(cold, e->fault_flags);
	} else {
		private = e->hc_args[2] & MF_MAP_GPA_RANGE_ENCRYPTED;
		count_traffic(cold, vm_id, private ? MF_MAP_TO_PRIVATE : MF_MAP_TO_SHARED,
			      e->hc_args[0], e->hc_args[1] << MF_MAP_GPA_RANGE_PAGE_SHIFT);
	}
	hot->traffic++;
}

/*
 * The file behind the running KVM_RUN ioctl's fd, read from the syscall
 * registers: the tracepoint carries no vCPU, and kprobes and fentry need
 * ftrace, which some kernels lack. Typed loads, at most one helper call.
 */
static __always_inline __u64 kvm_run_file(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	unsigned long fd = PT_REGS_PARM1_SYSCALL(regs);
	struct fdtable *fdt = task->files->fdt;
	struct file **fds = fdt->fd;
	__u64 file;

	if ((__u32)PT_REGS_PARM2_SYSCALL(regs) != MF_KVM_RUN || fd >= fdt->max_fds)
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
	c->vm_id = resolve_vm(key, BPF_CORE_READ(kvm, userspace_pid), kvm);
	/* A VM that found no room in vm_info stays uncached: its next exits
	 * try again, and are counted as dropped meanwhile. */
	if (!c->vm_id && !bpf_map_lookup_elem(&vm_info, &key))
		c->file = 0;
	return true;
}

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(on_userspace_exit, __u32 reason, int err)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 file = kvm_run_file(task);
	struct vcpu_cache fresh, *c;
	struct mf_exit e = { .reason = reason, .err = err };
	struct kvm_run *run;

	if (!file) {
		count_drop(MF_DROP_NO_VCPU);
		return 0;
	}
	c = bpf_task_storage_get(&vcpu_cache, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		c = &fresh;	/* no memory for the cache: resolve every time */
	if (c == &fresh || c->file != file || c->epoch != vm_epoch) {
		if (!resolve_vcpu(file, reason, c)) {
			c->file = 0;
			count_drop(MF_DROP_NO_VCPU);
			return 0;
		}
	}
	if (!c->vm_id)
		return 0;
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
	aggregate(&e, c->vm_id);
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

/* Test and benchmark only: feeds a synthetic exit through aggregate(). */
SEC("syscall")
int inject_exit(struct mf_exit *ctx)
{
	/* ctx is user memory: map helpers need the key on the stack. */
	struct mf_exit e = *ctx;

	aggregate(&e, resolve_vm(e.kvm, e.pid, NULL));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
