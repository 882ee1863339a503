/* SPDX-License-Identifier: GPL-2.0 */
/*
 * swprot: the private-memory program of kvmvm (workload private_rounds > 0),
 * for a KVM_X86_SW_PROTECTED_VM: real private and shared memory-fault exits
 * and real KVM_HC_MAP_GPA_RANGE exits both ways, each served the way a VMM
 * of a confidential VM serves it, with KVM_SET_MEMORY_ATTRIBUTES. In such a
 * VM an access is private iff the page's attribute is PRIVATE when it faults
 * (the guest has no C-bit or shared bit of its own).
 *
 * Guest: 64-bit code at CPL 0 (the hypercall needs it) in memslot 0 (see
 * kvmvm.h), identity-mapped 0-4 GiB. vCPU i owns the window
 * W = SWPROT_WINDOW_BASE + i * SWPROT_WINDOW_SIZE, each site in its own
 * 2 MiB range, so that vCPUs never touch each other's pages:
 *   W + SWPROT_MAP      4 pages, guest_memfd slot: MAP_GPA_RANGE target
 *   W + SWPROT_P1       PRIVATE page in a slot without guest_memfd
 *   W + SWPROT_UNPIN    shared page of that slot, host mapping PROT_NONE
 *   W + SWPROT_P2       PRIVATE page without a memslot
 *   W + SWPROT_S1       page without a memslot, touched as MMIO first
 * Every round is the exit sequence of swprot_steps[]; after the last round
 * the guest halts (KVM_EXIT_HLT). A guest self-check that fails ends in an
 * `out` the VMM reports as unexpected.
 */
#ifndef SWPROT_H
#define SWPROT_H

#include <stdint.h>
#include "kvmvm.h"

#define SWPROT_WINDOW_BASE  0x40000000ull
#define SWPROT_WINDOW_SIZE  0x01000000ull   /* 16 MiB per vCPU */
#define SWPROT_MAX_VCPUS    KVMVM_MAX_VCPUS /* windows end at 2 GiB */
#define SWPROT_MAP          0x000000u
#define SWPROT_MAP_PAGES    4
#define SWPROT_P1           0x200000u
#define SWPROT_UNPIN        0x201000u
#define SWPROT_P2           0x400000u
#define SWPROT_S1           0x600000u

/* One exit of a round, in order. */
enum swprot_step {
	SWPROT_ROUND,           /* `out`: the VMM arms this round's sites */
	SWPROT_MAP_PRIVATE,     /* MAP_GPA_RANGE to private, all 4 pages */
	SWPROT_MAP_SHARED_LO,   /* MAP_GPA_RANGE to shared, pages 0-1 */
	SWPROT_MAP_SHARED_HI,   /* MAP_GPA_RANGE to shared, pages 2-3 */
	SWPROT_FAULT_P1,        /* private fault: slot cannot be private */
	SWPROT_FAULT_UNPIN,     /* KVM_RUN -1/EFAULT, exit 0: not a memory fault */
	SWPROT_FAULT_P2,        /* private fault: no memslot */
	SWPROT_MMIO_S1,         /* MMIO: no memslot, shared; KVM caches the SPTE */
	SWPROT_FAULT_S1,        /* shared fault: stale MMIO SPTE, page now PRIVATE */
	SWPROT_NR_STEPS
};

struct swprot_step_info {
	enum kvmvm_event ev;
	uint32_t reason;        /* run->exit_reason */
	uint32_t offset;        /* GPA in the vCPU's window */
	uint32_t pages;         /* MAP_GPA_RANGE: pages per exit */
	/* KVM_SET_MEMORY_ATTRIBUTES calls the VMM makes serving it, by target */
	uint32_t to_private, to_shared;
	uint32_t to_private_pages, to_shared_pages;
	const char *what;
};

extern const struct swprot_step_info swprot_steps[SWPROT_NR_STEPS];

/*
 * A KVM_SET_MEMORY_ATTRIBUTES call per vCPU and round that must fail with
 * EINVAL: P1 to private with a size that is no page multiple.
 */
#define SWPROT_FAILING_PER_ROUND 1
#define SWPROT_FAILING_BYTES     100u

/* KVM_SET_MEMORY_ATTRIBUTES calls made once per vCPU, outside the rounds. */
#define SWPROT_SETUP_TO_PRIVATE 1   /* P2, before the first round */
/*
 * Host-side checks per vCPU and round: each MAP_GPA_RANGE page's shared
 * view at the way back to shared, and after the round P1, UNPIN and S1 (the
 * shared writes arrived) and P2 (the private one did not show).
 */
#define SWPROT_CHECKS_PER_ROUND (SWPROT_MAP_PAGES + 4)

static inline uint64_t swprot_window(unsigned int vcpu_id)
{
	return SWPROT_WINDOW_BASE + (uint64_t)vcpu_id * SWPROT_WINDOW_SIZE;
}

/*
 * Whether this kernel can run the program: 1 yes, 0 no (reason printed),
 * -1 error. Needs KVM_X86_SW_PROTECTED_VM (CONFIG_KVM_SW_PROTECTED_VM and
 * the TDP MMU), private memory attributes and guest_memfd on it, and
 * KVM_HC_MAP_GPA_RANGE exits.
 */
int swprot_probe(void);

/*
 * Called by kvmvm: see kvmvm_load(), kvmvm_create_vcpu() (the vCPU's memslots
 * and entry state), kvmvm_run_vcpu() (match the exit KVM_RUN returned with
 * the step expected next and serve it), kvmvm_report(), kvmvm_destroy().
 */
int swprot_load(struct kvmvm *vm, const struct kvmvm_workload *w);
int swprot_setup_vcpu(struct kvmvcpu *vcpu, struct kvm_sregs *sregs,
		      struct kvm_regs *regs);
void swprot_serve(struct kvmvcpu *vcpu, struct kvmvm_exit *e);
void swprot_report(const struct kvmvcpu *vcpu);
void swprot_destroy(struct kvmvm *vm);

#endif
