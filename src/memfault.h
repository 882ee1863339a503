/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Types and constants shared by memfault.bpf.c and the frontend. */
#ifndef MEMFAULT_H
#define MEMFAULT_H

/* KVM uapi values (include/uapi/linux/kvm.h, kvm_para.h); defined here
 * because Debian's linux-libc-dev predates the memory-fault exit. */
#define MF_EXIT_HYPERCALL		3
#define MF_EXIT_MEMORY_FAULT		39
#define MF_HC_MAP_GPA_RANGE		12
#define MF_MEMORY_EXIT_FLAG_PRIVATE	(1ULL << 3)
#define MF_MAP_GPA_RANGE_ENCRYPTED	(1ULL << 4)
#define MF_MAP_GPA_RANGE_PAGE_SHIFT	12
#define MF_KVM_RUN			0xae80	/* _IO(KVMIO, 0x80) */
/* _IOW(KVMIO, 0xd2, struct kvm_memory_attributes) */
#define MF_KVM_SET_MEMORY_ATTRIBUTES	0x4020aed2
#define MF_MEMORY_ATTRIBUTE_PRIVATE	(1ULL << 3)
#define MF_FALLOC_FL_PUNCH_HOLE		0x02

/* Exit reasons at or above the last slot are counted in the last slot. */
#define MF_NR_EXIT_REASONS	64
#define MF_LOG2_SLOTS		64
#define MF_FLAG_BITS		64
#define MF_VCPU_BITS		1024
#define MF_VCPU_WORDS		(MF_VCPU_BITS / 64)
/* Failures by errno: every Linux errno (EHWPOISON is 133) has a slot; the
 * last also holds any larger one. */
#define MF_ERRNO_SLOTS		136

/* Map bounds: what happens when a map is full is counted, never silent. */
#define MF_MAX_VMS		4096
#define MF_MAX_RANGES		131072
#define MF_MAX_PIDS		64
#define MF_MAX_VCPU_WAITS	65536
/* As much of a VMM's command line as the frontend reads from /proc. */
#define MF_CMDLINE_MAX		4096

/* One histogram family per kind of memory traffic. */
enum mf_kind {
	MF_FAULT_SHARED,	/* KVM_EXIT_MEMORY_FAULT without PRIVATE */
	MF_FAULT_PRIVATE,	/* KVM_EXIT_MEMORY_FAULT with PRIVATE */
	MF_MAP_TO_SHARED,	/* KVM_HC_MAP_GPA_RANGE, decrypt */
	MF_MAP_TO_PRIVATE,	/* KVM_HC_MAP_GPA_RANGE, encrypt */
	/* The exit kinds above leave a vCPU waiting for its VMM. */
	MF_NR_EXIT_KINDS,
	/* KVM_SET_MEMORY_ATTRIBUTES on the VM fd, by the VMM: every call */
	MF_CONV_TO_SHARED = MF_NR_EXIT_KINDS,
	MF_CONV_TO_PRIVATE,
	MF_NR_KINDS,
};

/* Directions of a conversion: index of mf_vm_cold.conv. */
enum mf_dir {
	MF_TO_SHARED,
	MF_TO_PRIVATE,
	MF_NR_DIRS,
};

enum mf_drop {
	MF_DROP_VM_TABLE_FULL,		/* exits of a VM that found no room */
	MF_DROP_RANGE_TABLE_FULL,	/* GPA-range updates that found no room */
	MF_DROP_NO_VCPU,		/* exits whose vCPU could not be found */
	MF_DROP_NO_MEMORY,		/* a new VM, range or vCPU thread found no free memory */
	MF_DROP_VCPU_TABLE_FULL,	/* vCPU waits that found no room in vcpu_waits */
	MF_DROP_UNREADABLE,		/* conversions whose arguments could not be read */
	MF_DROP_TRACE_LOST,		/* --trace events that found the ring buffer full */
	MF_NR_DROPS,
};

/*
 * One userspace exit, as captured from KVM_RUN's return. It is also the
 * context of the test-only injection program, so synthetic exits go
 * through exactly the aggregation that real ones do.
 */
struct mf_exit {
	__u64 kvm;		/* struct kvm address: identity while it lives */
	__u32 pid;		/* kvm->userspace_pid */
	__u32 vcpu_id;
	__u32 reason;		/* kvm_run->exit_reason */
	__s32 err;		/* KVM_RUN return value */
	__u64 fault_flags;	/* memory_fault payload, reason 39 only */
	__u64 fault_gpa;
	__u64 fault_size;
	__u64 hc_nr;		/* hypercall payload, reason 3 only */
	__u64 hc_args[3];
};

/* vm_info map value, keyed by struct kvm address. */
struct mf_vm_info {
	__u64 id;		/* unique per session, never reused */
	__u32 pid;
	__u32 filtered_out;	/* not one of the -p processes */
	char stats_id[48];	/* kvm->stats_id, "kvm-<pid>" */
	char comm[16];		/* the VMM process's comm, when the VM first exited */
	__u64 destroyed_ns;	/* set when moved to dead_vms */
	__u32 slot;		/* 1 + its index in vm_hot_slots and vm_cold_slots;
				 * 0: counted in vm_hot and vm_cold */
	__u32 pad;
};

/* vm_cmdline map value, keyed by mf_vm_info.id: the VMM's command line
 * when the VM was first seen, so that a VM gone before the frontend looked
 * still has its -name. len 0: it could not be read. */
struct mf_cmdline {
	__u32 len;
	__u32 pad;
	char buf[MF_CMDLINE_MAX];
};

struct mf_hist {
	__u64 count;
	__u64 bytes;
	__u64 log2_bytes[MF_LOG2_SLOTS];	/* slot n: [2^n, 2^(n+1)) */
};

/* Durations: slot n of log2_ns holds [2^n, 2^(n+1)) ns, slot 0 also 0. */
struct mf_lat {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;		/* since memfaulttop attached */
	__u64 log2_ns[MF_LOG2_SLOTS];
};

/* The VMM's KVM_SET_MEMORY_ATTRIBUTES calls of one direction; their count,
 * bytes, sizes and GPA ranges are those of kind MF_CONV_TO_*. */
struct mf_conv {
	struct mf_lat time;	/* kernel time per call */
	__u64 failed;
	__u64 errors[MF_ERRNO_SLOTS];	/* failed calls by errno */
};

/* fallocate(FALLOC_FL_PUNCH_HOLE) on a guest_memfd of the VM. */
struct mf_discard {
	struct mf_lat time;	/* time.count: calls */
	__u64 bytes;
	__u64 failed;
};

/* vm_hot map value, per CPU, keyed by mf_vm_info.id: counted on every exit. */
#define MF_VM_HOT_FIELDS						\
	__u64 exits[MF_NR_EXIT_REASONS];				\
	__u64 traffic;		/* exits that also updated vm_cold */	\
	__u64 vcpus[MF_VCPU_WORDS];	/* bitmap of vCPU ids seen */	\
	__u64 vcpus_over;	/* exits of vCPU ids >= MF_VCPU_BITS */

/* vm_cold map value, keyed by mf_vm_info.id: memory-fault and MAP_GPA_RANGE
 * exits, the VMM's conversions and discards, and the vCPUs' waits only, so
 * one copy shared by all CPUs, updated atomically. */
#define MF_VM_COLD_FIELDS						\
	struct mf_hist hist[MF_NR_KINDS];				\
	__u64 fault_flag_bits[MF_FLAG_BITS];	/* bits other than PRIVATE */ \
	__u64 range_drops;						\
	struct mf_conv conv[MF_NR_DIRS];				\
	struct mf_discard discard;					\
	__u64 flips;		/* direction changes, all ranges */	\
	/* MAP_GPA_RANGE requests: runs of a vCPU's consecutive MAP_GPA_RANGE \
	 * exits, each starting where the last ended, one direction	\
	 * (TDX splits a guest's request into 2 MiB exits) */		\
	__u64 map_requests[MF_NR_DIRS];					\
	/* from an exit of the kind to the vCPU's next KVM_RUN */	\
	struct mf_lat wait[MF_NR_EXIT_KINDS];				\
	/* changes of the entry begun and done: a copy taken while	\
	 * none was under way is consistent (see model.c) */		\
	__u64 changes_begun, changes_done;

struct mf_vm_hot {
	MF_VM_HOT_FIELDS
};

struct mf_vm_cold {
	MF_VM_COLD_FIELDS
};

/* The frontend's view of a VM: both parts, each field also at top level. */
struct mf_vm_stats {
	union {
		struct mf_vm_hot hot;
		struct { MF_VM_HOT_FIELDS };
	};
	union {
		struct mf_vm_cold cold;
		struct { MF_VM_COLD_FIELDS };
	};
};

struct mf_range_key {
	__u64 vm_id;
	__u32 kind;		/* enum mf_kind */
	__u32 pad;
	__u64 range;		/* gpa >> gpa_shift */
};

struct mf_range_val {
	__u64 count;
	__u64 bytes;
	__u64 logged_gen;	/* see struct mf_change */
};

/* vcpu_waits map: one vCPU's waits for its VMM, all exit kinds together. */
struct mf_vcpu_key {
	__u64 vm_id;
	__u32 vcpu_id;
	__u32 pad;
};

struct mf_vcpu_wait {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;		/* since memfaulttop attached */
};

/* range_flips map: the direction a GPA range of a VM was last asked or made
 * to go (by a fault, a MAP_GPA_RANGE request or a successful conversion),
 * and how often that direction changed: a range that flaps is the mark of a
 * conversion storm. */
struct mf_flip_key {
	__u64 vm_id;
	__u64 range;		/* gpa >> gpa_shift */
};

struct mf_flip_val {
	__u64 flips;
	__u64 dir;		/* 0: none yet, else 1 + enum mf_dir (64 bits: xchg) */
	__u64 logged_gen;	/* see struct mf_change */
};

/*
 * changes set (a hash): the gpa_ranges and range_flips keys that moved, so
 * that a refresh reads what changed instead of every entry. An entry is
 * logged the first time it moves in a generation (per CPU for gpa_ranges),
 * new entries always: the frontend bumps the generation at each refresh,
 * then drains the set. A full set is counted in
 * change_state[MF_CHANGES_OVERFLOWS], and the frontend then reads both
 * maps whole. The cap was sized when each key cost a system call (past a
 * few thousand keys, about what the whole read cost); read_changed reads
 * them far cheaper, so a bigger set may pay now (not measured), at the
 * cost of every drain.
 */
#define MF_MAX_CHANGES		8192

enum mf_change_map {
	MF_CHANGED_RANGE,	/* gpa_ranges: vm_id, kind, range */
	MF_CHANGED_FLIP,	/* range_flips: vm_id, range */
};

struct mf_change {
	__u64 vm_id;
	__u32 kind;		/* enum mf_kind, for MF_CHANGED_RANGE */
	__u32 map;		/* enum mf_change_map */
	__u64 range;
};

/*
 * read_changed, a syscall program the frontend runs (BPF_PROG_TEST_RUN):
 * looks up the logged keys it put in read_items, summing gpa_ranges' per-CPU
 * values in the kernel, so that a refresh costs one system call per
 * MF_READ_BATCH changed keys instead of one per key.
 */
#define MF_READ_BATCH		1024

struct mf_read_item {
	struct mf_change key;	/* in */
	__u64 count;		/* out: gpa_ranges' count, range_flips' flips */
	__u64 bytes;		/* out: gpa_ranges' bytes */
	__u64 found;		/* out: 1 when the key exists */
};

/* read_changed's context: the first nr items, ncpus possible CPUs. */
struct mf_read_args {
	__u32 nr;
	__u32 ncpus;
};

/* change_state array: the generation (written by the frontend only) and
 * the inserts that found the changes set full (by the BPF side only). */
enum mf_change_state {
	MF_CHANGES_GEN,
	MF_CHANGES_OVERFLOWS,
	MF_NR_CHANGE_STATE,
};

/* --trace: one record per memory-fault exit, MAP_GPA_RANGE request,
 * conversion and discard, through the events ring buffer. */
enum mf_event_type {
	MF_EV_FAULT,
	MF_EV_MAP_GPA_RANGE,
	MF_EV_CONVERSION,
	MF_EV_DISCARD,
	MF_NR_EVENT_TYPES,
};

struct mf_event {
	__u64 time_ns;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 vm_id;
	__u64 gpa;		/* discards: offset in the guest_memfd */
	__u64 size;		/* bytes */
	/* faults: memory_fault.flags; requests: the hypercall's attributes
	 * (args[2]); conversions: the attributes set; discards: the mode */
	__u64 flags;
	__u64 latency_ns;	/* conversions and discards: kernel time; else 0 */
	__s32 result;		/* KVM_RUN's, the ioctl's or fallocate's return */
	__u32 type;		/* enum mf_event_type */
	__u32 vcpu_id;		/* faults and requests */
	__u32 tid;		/* the thread that exited or called */
};

/*
 * The feature probe's lookups (probe.bpf.c): kernel BTF types by name and
 * kind, answered by the kernel, in vmlinux or a module. found: the type's
 * id, with the module's BTF object as a new fd in the upper 32 bits (0 for
 * vmlinux; the caller closes it); or a negative errno (-ENOENT: none).
 * The list (the object's global queries) ends at the first empty name.
 */
#define MF_BTF_NAME_LEN		48
#define MF_BTF_QUERIES		8

struct mf_btf_query {
	char name[MF_BTF_NAME_LEN];	/* NUL-terminated */
	__u32 kind;			/* BTF_KIND_* */
	__u32 pad;
	__s64 found;
};

#endif /* MEMFAULT_H */
