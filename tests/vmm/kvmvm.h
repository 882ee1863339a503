/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmvm: a minimal KVM VM with one real-mode guest program whose exits are
 * known in advance. Shared by the test VMM (tests/vmm/vmm.c) and the load
 * generator (bench/loadgen.c).
 *
 * Guest physical memory map (all reachable from 16-bit real mode):
 *   0x00000-0x0ffff  RAM, memslot 0 (KVMVM_RAM_SIZE)
 *     0x00500        struct kvmvm_params (read by the guest)
 *     0x00600        MMIO target table (seg:off far pointers)
 *     0x01000        guest code, entered with CS=DS=ES=SS=0
 *     0x08000        top of the guest stack
 *   0x10000-0x10ffef no memslot: every access is a KVM_EXIT_MMIO
 *
 * The guest runs, in order: io_count x `out 0x10, al`, mmio_count 1-byte
 * writes spread round-robin over the MMIO table, map_private_count then
 * map_shared_count x `vmcall` KVM_HC_MAP_GPA_RANGE, then `hlt`.
 */
#ifndef KVMVM_H
#define KVMVM_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>
#include <linux/kvm_para.h>

/* Newer than the uapi headers of older distributions (Linux 6.8+). */
#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_MEMORY_EXIT_FLAG_PRIVATE
#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)
#endif

#define KVMVM_RAM_SIZE       0x10000u
#define KVMVM_MMIO_LIMIT     0x10fff0u  /* highest real-mode address + 1 */
#define KVMVM_MAX_MMIO       16
#define KVMVM_IO_PORT        0x10       /* workload `out` */
#define KVMVM_ERR_PORT       0x11       /* guest reports a failed hypercall */
#define KVMVM_PAGE_SIZE      4096u
#define KVMVM_MAP_TO_PRIVATE (1u << 4)  /* KVM_MAP_GPA_RANGE_ENCRYPTED */

/*
 * Why memory-fault exits cannot be produced. KVM_EXIT_MEMORY_FAULT comes
 * only from the MMU page-fault path (kvm_mmu_faultin_pfn); the real-mode
 * guest is run by KVM's instruction emulator, which accesses guest memory
 * through the memslot's host address and turns a failed access into
 * KVM_EXIT_MMIO.
 */
#define KVMVM_NO_MEMORY_FAULTS \
	"this kernel cannot produce memory-fault exits for the real-mode test " \
	"guest: KVM emulates real mode and its emulator accesses guest memory by " \
	"host address (a failed access becomes KVM_EXIT_MMIO), never through the " \
	"MMU fault path that raises KVM_EXIT_MEMORY_FAULT"

/* Workload description; counts are per vCPU. */
struct kvmvm_workload {
	uint32_t io;
	uint32_t mmio;
	uint32_t map_private;
	uint32_t map_shared;
	uint32_t map_gpa;             /* page aligned */
	uint32_t map_pages;           /* >= 1 */
	uint32_t nr_mmio_gpas;        /* 1..KVMVM_MAX_MMIO if mmio > 0 */
	uint32_t mmio_gpa[KVMVM_MAX_MMIO];
	/*
	 * Repeat the first kind whose count is non-zero until the vCPU is no
	 * longer run (load generation); the guest never reaches `hlt`.
	 */
	bool forever;
};

struct kvmvm {
	int kvm_fd;
	int vm_fd;
	uint8_t *ram;
	int run_size;   /* mmap size of struct kvm_run */
};

struct kvmvcpu {
	struct kvmvm *vm;
	int fd;
	unsigned int id;
	struct kvm_run *run;
};

/* What one KVM_RUN return was, from the workload's point of view. */
enum kvmvm_event {
	KVMVM_EV_IO,            /* workload `out` */
	KVMVM_EV_MMIO,          /* write to the MMIO table entry `mmio_index` */
	KVMVM_EV_MAP_PRIVATE,   /* KVM_HC_MAP_GPA_RANGE to private */
	KVMVM_EV_MAP_SHARED,    /* KVM_HC_MAP_GPA_RANGE to shared */
	KVMVM_EV_HLT,           /* end of the program */
	KVMVM_EV_INTR,          /* KVM_RUN interrupted (EINTR): just re-enter */
	KVMVM_EV_UNEXPECTED,    /* anything else: see kvmvm_report() */
};

struct kvmvm_exit {
	enum kvmvm_event ev;
	uint32_t reason;        /* run->exit_reason after KVM_RUN */
	int err;                /* errno of KVM_RUN, 0 on success */
	uint64_t pages;         /* KVMVM_EV_MAP_*: number of 4 KiB pages */
	unsigned int mmio_index;
};

/*
 * All functions print what failed and what to do on stderr and return -1
 * on error (kvmvm_run_vcpu returns the event instead).
 */
int kvmvm_create(struct kvmvm *vm);
int kvmvm_load(struct kvmvm *vm, const struct kvmvm_workload *w);
int kvmvm_enable_map_gpa_range_exit(struct kvmvm *vm);
/*
 * Whether the guest's `vmcall` really reaches userspace as
 * KVM_EXIT_HYPERCALL on this host: 1 yes, 0 no (reason printed), -1 error.
 * Runs a throw-away VM in a child process, so that its exits are not
 * attributed to the caller's pid.
 */
int kvmvm_probe_map_gpa_range(void);
void kvmvm_destroy(struct kvmvm *vm);

int kvmvm_create_vcpu(struct kvmvm *vm, struct kvmvcpu *vcpu, unsigned int id);
void kvmvm_destroy_vcpu(struct kvmvcpu *vcpu);

/*
 * Enter the guest once, classify the exit and complete it (e.g. set the
 * hypercall return value) so that the next call continues the program.
 */
void kvmvm_run_vcpu(struct kvmvcpu *vcpu, const struct kvmvm_workload *w,
		    struct kvmvm_exit *e);

/* Describe an unexpected exit on stderr. */
void kvmvm_report(const struct kvmvcpu *vcpu, const struct kvmvm_exit *e);

/* Check a workload against the memory map; prints why on failure. */
int kvmvm_validate(const struct kvmvm_workload *w);

#endif
