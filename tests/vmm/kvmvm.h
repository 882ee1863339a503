/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmvm: a minimal KVM VM with two guest programs whose exits are known in
 * advance. Shared by the test VMM (tests/vmm/vmm.c) and the load generator
 * (bench/loadgen.c).
 *
 * Real-mode program (every workload without memory_faults). Guest physical
 * memory map (all reachable from 16-bit real mode):
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
 *
 * Memory-fault program (memory_faults > 0): 64-bit code at CPL 3, the only
 * guest code KVM runs natively (through the MMU fault path) on hosts that
 * emulate real mode and CPL 0 (KVM on PVM). Same memslot 0, plus:
 *     0x02000-0x07fff 4-level identity page tables: 0-4 GiB, 2 MiB pages,
 *                    user-accessible
 *     0x09000        guest code (KVMVM_FAULT_RIP is the faulting write)
 *   fault_gpa ...    memslot 1: a guest_memfd-only slot whose file is
 *                    released (munmap + close) before the first KVM_RUN, so
 *                    that every guest access to it fails in
 *                    kvm_gmem_get_pfn() -> KVM_EXIT_MEMORY_FAULT
 * For k = 0 .. fault_pages-1 the guest writes one byte to
 * fault_gpa + k * fault_stride (`mov [rbx], al`, 2 bytes). KVM_RUN returns
 * -1/EFAULT with exit_reason 39 and re-entering retries the write;
 * kvmvm_run_vcpu() re-enters memory_faults times per page, then moves RIP
 * past the write. Finally the guest does `out KVMVM_DONE_PORT, al`
 * (one KVM_EXIT_IO, KVMVM_EV_DONE).
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
#define KVMVM_DONE_PORT      0x12       /* memory-fault guest: end of program */
#define KVMVM_FAULT_GPA      0x40000000ull  /* default memory-fault target */
#define KVMVM_FAULT_LIMIT    (1ull << 32)   /* identity map of the fault guest */
#define KVMVM_FAULT_RIP      0x9000u        /* the faulting `mov [rbx], al` */
#define KVMVM_FAULT_INSN_LEN 2

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
	 * Non-zero selects the memory-fault program (see above), which
	 * excludes io, mmio and map_*: exits per page, for fault_pages pages
	 * at fault_gpa + k * fault_stride (page aligned, within
	 * [KVMVM_RAM_SIZE, KVMVM_FAULT_LIMIT)).
	 */
	uint32_t memory_faults;
	uint32_t fault_pages;
	uint64_t fault_gpa;
	uint64_t fault_stride;
	/*
	 * Repeat the first kind whose count is non-zero until the vCPU is no
	 * longer run (load generation); the guest never reaches `hlt`.
	 * Memory faults: the first page's write faults forever.
	 */
	bool forever;
};

struct kvmvm {
	int kvm_fd;
	int vm_fd;
	uint8_t *ram;
	int run_size;   /* mmap size of struct kvm_run */
	/* Set by kvmvm_load() for the memory-fault program (vCPU entry state). */
	bool long_mode;
	uint32_t fault_pages;
	uint64_t fault_gpa;
	uint64_t fault_stride;
};

struct kvmvcpu {
	struct kvmvm *vm;
	int fd;
	unsigned int id;
	struct kvm_run *run;
	/* Memory-fault program progress, advanced by kvmvm_run_vcpu(). */
	uint32_t fault_page;    /* page index the guest is writing */
	uint32_t fault_count;   /* exits seen on it so far */
};

/* What one KVM_RUN return was, from the workload's point of view. */
enum kvmvm_event {
	KVMVM_EV_IO,            /* workload `out` */
	KVMVM_EV_MMIO,          /* write to the MMIO table entry `mmio_index` */
	KVMVM_EV_MAP_PRIVATE,   /* KVM_HC_MAP_GPA_RANGE to private */
	KVMVM_EV_MAP_SHARED,    /* KVM_HC_MAP_GPA_RANGE to shared */
	KVMVM_EV_HLT,           /* end of the real-mode program */
	KVMVM_EV_MEMORY_FAULT,  /* expected exit 39 on page `fault_page` */
	KVMVM_EV_DONE,          /* `out` to KVMVM_DONE_PORT: end of the fault program */
	KVMVM_EV_INTR,          /* KVM_RUN interrupted (EINTR): just re-enter */
	KVMVM_EV_UNEXPECTED,    /* anything else: see kvmvm_report() */
};

struct kvmvm_exit {
	enum kvmvm_event ev;
	uint32_t reason;        /* run->exit_reason after KVM_RUN */
	int err;                /* errno of KVM_RUN, 0 on success */
	uint64_t pages;         /* KVMVM_EV_MAP_*: number of 4 KiB pages */
	unsigned int mmio_index;
	uint32_t fault_page;    /* KVMVM_EV_MEMORY_FAULT: index of the page */
};

/*
 * All functions print what failed and what to do on stderr and return -1
 * on error (kvmvm_run_vcpu returns the event instead).
 */
int kvmvm_create(struct kvmvm *vm);
/* Load the program the workload selects; call before kvmvm_create_vcpu(). */
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
 * hypercall return value, or skip a write that has faulted memory_faults
 * times) so that the next call continues the program.
 */
void kvmvm_run_vcpu(struct kvmvcpu *vcpu, const struct kvmvm_workload *w,
		    struct kvmvm_exit *e);

/* Describe an unexpected exit on stderr. */
void kvmvm_report(const struct kvmvcpu *vcpu, const struct kvmvm_exit *e);

/* Check a workload against the memory map; prints why on failure. */
int kvmvm_validate(const struct kvmvm_workload *w);

#endif
