/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The frontend's picture of the BPF maps: per VM totals now and at the
 * previous refresh, so every output shows interval deltas and rates. */
#ifndef MF_MODEL_H
#define MF_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>
#include "kernel_features.h"
#include "memfault.h"
#include "vmname.h"

struct mf_range {
	__u64 vm_id;
	__u32 kind;		/* enum mf_kind */
	__u64 range;		/* gpa >> gpa_shift */
	__u64 count, bytes;	/* since memfaulttop attached */
	__u64 prev_count, prev_bytes;
};

/* A GPA range's changes of direction (see struct mf_flip_val). */
struct mf_flip {
	__u64 vm_id;
	__u64 range;		/* gpa >> gpa_shift */
	__u64 flips, prev_flips;
};

/* One vCPU's waits for its VMM, all exit kinds together. */
struct mf_vcpu {
	__u64 vm_id;
	__u32 vcpu_id;
	struct mf_vcpu_wait cur, prev;	/* cur.max_ns is since start */
};

struct mf_vm {
	__u64 id;
	__u64 kvm;			/* vm_info key while the VM is live */
	pid_t pid;
	char stats_id[48];
	struct mf_vm_ident ident;
	bool destroyed;
	__u32 slot;			/* see mf_vm_info.slot */
	/* Summed over CPUs: now and at the previous refresh, two buffers that
	 * trade places at each refresh (10 KiB a VM: not copied). */
	struct mf_vm_stats *cur, *prev;
	struct mf_vm_stats *stats;	/* the allocation of both */
	/* The cold parts of cur and prev may differ: the last refresh read
	 * cur's (else they are equal, and a swap needs no copy). */
	bool cold_differs;
	size_t first_range, nr_ranges;	/* its slice of mf_model.ranges */
	size_t first_vcpu, nr_vcpus;	/* its slice of mf_model.vcpus */
	size_t first_flip, nr_flips;	/* its slice of mf_model.flips */
};

struct mf_map_fds {
	int vm_info, dead_vms, vm_hot, vm_cold, gpa_ranges, drops, vcpu_waits, range_flips;
	int vm_cmdline, changes, change_state, vm_hot_slots, vm_cold_slots;
	__u64 *slots_used;	/* the BPF side's bitmap of taken slots */
	int read_changed;	/* the program that reads logged keys */
	struct mf_read_item *read_items;	/* its keys and values */
};

struct mf_model {
	struct mf_map_fds fds;
	int ncpus;
	unsigned int gpa_shift;
	/* Without the kvm_destroy_vm hook, a VM counts as destroyed once its
	 * VMM process has exited. */
	bool destroyed_with_process;
	/* The running kernel's, for the outputs; NULL for synthetic exits. */
	const struct mf_features *features;
	struct mf_vm *vms;		/* sorted by id */
	size_t nr_vms, nr_sorted_vms, cap_vms;
	struct mf_range *ranges;	/* sorted by vm_id, kind, range */
	size_t nr_ranges, cap_ranges;
	struct mf_range *fresh;		/* read buffer, swapped with ranges */
	size_t nr_fresh, cap_fresh;
	struct mf_vcpu *vcpus;		/* sorted by vm_id, vcpu_id */
	size_t nr_vcpus, nr_sorted_vcpus, cap_vcpus;
	struct mf_flip *flips;		/* sorted by vm_id, range */
	size_t nr_flips, nr_sorted_flips, cap_flips;
	/* The change log (struct mf_change): the keys last refresh drained,
	 * then this refresh's; a sorted copy of both to read them by. */
	struct mf_change *changes, *changed;
	size_t nr_changes, nr_prev_changes, cap_changes, cap_changed;
	__u64 change_gen, change_overflows;
	/* Storm thresholds (--storm): events a second, flips of one range
	 * in an interval; 0 turns one off. */
	double storm_rate;
	__u64 storm_flips;
	__u64 drops[MF_NR_DROPS], prev_drops[MF_NR_DROPS];
	struct mf_cmdline cmdline;	/* read buffer: too big for the stack */
	void *zero_hot;			/* a slot's per-CPU zeroes, to give it back */
	struct mf_vm_cold *cold_slots;	/* vm_cold_slots, mapped up to the highest in use */
	size_t nr_cold_slots, nr_mapped_cold_slots, cold_slots_len;
	__u64 start_ns, prev_ns, now_ns;	/* CLOCK_MONOTONIC */
};

/* 0, or a negative errno when the CPUs cannot be counted or vm_cold_slots
 * does not have this build's layout. */
int mf_model_init(struct mf_model *m, const struct mf_map_fds *fds, unsigned int gpa_shift,
		  bool destroyed_with_process);
/* Reads all maps; the previous totals become the base of the deltas. */
int mf_model_refresh(struct mf_model *m);
/* Deletes the map entries of destroyed VMs, once they have been reported. */
int mf_model_reap(struct mf_model *m);
void mf_model_free(struct mf_model *m);
/* The VM of a session id, NULL if the model does not know it. */
struct mf_vm *mf_model_vm(const struct mf_model *m, __u64 id);

/* qsort/bsearch order of struct mf_range: vm_id, kind, range. */
int mf_range_cmp(const void *a, const void *b);

double mf_model_interval_s(const struct mf_model *m);
/* True when the VM changed during the last interval or was destroyed. */
bool mf_vm_active(const struct mf_vm *vm);
unsigned int mf_vm_vcpus(const struct mf_vm_stats *s);
/* Waits of every exit kind together. */
__u64 mf_vm_waits(const struct mf_vm_stats *s);
__u64 mf_vm_exits(const struct mf_vm_stats *s);

/*
 * The VM's n vCPUs that waited most for their VMM, worst first, into out:
 * by their longest wait since start (by_max), else by their total wait in
 * the last interval (interval) or since start. Returns how many.
 */
size_t mf_vm_worst_vcpus(const struct mf_model *m, const struct mf_vm *vm, bool by_max,
			 bool interval, const struct mf_vcpu **out, size_t n);

/*
 * Keeps out[0..*found) the n items with the largest keys, largest first,
 * as items arrive with their keys: ties keep arrival order.
 */
void mf_top_insert(const void **out, __u64 *keys, size_t *found, size_t n, const void *item,
		   __u64 key);

static inline __u64 mf_delta(__u64 cur, __u64 prev)
{
	return cur - prev;
}

#endif
