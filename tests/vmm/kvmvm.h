/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmvm: a minimal KVM VM with three guest programs whose exits are known in
 * advance. Shared by the test VMM (tests/vmm/vmm.c) and the load generator
 * (bench/loadgen.c).
 *
 * Real-mode program (every workload without memory_faults or
 * private_rounds). Guest physical memory map (all reachable from 16-bit real
 * mode):
 *   0x00000-0x0ffff  RAM, memslot 0 (KVMVM_RAM_SIZE)
 *     0x00500        struct kvmvm_params (read by the guest)
 *     0x00600        MMIO target table (seg:off far pointers)
 *     0x01000        guest code, entered with CS=DS=ES=SS=0
 *     0x08000        top of the guest stacks, KVMVM_STACK_BYTES per vCPU
 *                    downwards (vCPUs sharing one would return through
 *                    each other's `call`)
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
 * (one KVM_EXIT_IO, KVMVM_EV_DONE). It runs with IOPL 3: an `out` at CPL 3
 * with IOPL 0 would consult the TSS I/O bitmap, and QEMU's TCG (nested KVM
 * on hosts without /dev/kvm) raises #GP for the busy TSS type KVM's entry
 * state has, where real CPUs accept it.
 *
 * Private-memory program (private_rounds > 0): a SW-protected VM with
 * guest_memfd, 64-bit code at CPL 0 at 0x0a000 (GDT at 0x0b000), the same
 * page tables; private and shared memory faults and MAP_GPA_RANGE exits
 * both ways, served with KVM_SET_MEMORY_ATTRIBUTES. See swprot.h.
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

/*
 * Not in older uapi headers (Linux 6.8+; guest_memfd's MMAP and INIT_SHARED
 * flags 6.18): same layouts and numbers as include/uapi/linux/kvm.h.
 */
struct kvmvm_memory_region2 {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t guest_memfd_offset;
	uint32_t guest_memfd;
	uint32_t pad1;
	uint64_t pad2[14];
};
struct kvmvm_create_guest_memfd {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};
struct kvmvm_memory_attributes {
	uint64_t address;
	uint64_t size;
	uint64_t attributes;
	uint64_t flags;
};
struct kvmvm_memory_fault {     /* run->memory_fault */
	uint64_t flags;
	uint64_t gpa;
	uint64_t size;
};
#define KVMVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, struct kvmvm_memory_region2)
#define KVMVM_SET_MEMORY_ATTRIBUTES   _IOW(KVMIO, 0xd2, struct kvmvm_memory_attributes)
#define KVMVM_CREATE_GUEST_MEMFD      _IOWR(KVMIO, 0xd4, struct kvmvm_create_guest_memfd)
#define KVMVM_MEM_GUEST_MEMFD         (1u << 2)
#define KVMVM_GMEM_FLAG_MMAP          (1ull << 0)
#define KVMVM_GMEM_FLAG_INIT_SHARED   (1ull << 1)
#define KVMVM_MEMORY_ATTRIBUTE_PRIVATE (1ull << 3)
#define KVMVM_CAP_MEMORY_ATTRIBUTES   233
#define KVMVM_CAP_GUEST_MEMFD         234
#define KVMVM_CAP_VM_TYPES            235
#define KVMVM_X86_DEFAULT_VM          0
#define KVMVM_X86_SW_PROTECTED_VM     1

#define KVMVM_RAM_SIZE       0x10000u
#define KVMVM_MAX_VCPUS      64         /* per VM: stacks, private windows */
#define KVMVM_STACK_BYTES    64
#define KVMVM_MMIO_LIMIT     0x10fff0u  /* highest real-mode address + 1 */
#define KVMVM_MAX_MMIO       16
#define KVMVM_IO_PORT        0x10       /* workload `out` */
#define KVMVM_ERR_PORT       0x11       /* guest reports a failed hypercall */
#define KVMVM_PAGE_SIZE      4096u
#define KVMVM_MAX_CONVERSION_SITES 16   /* (target, GPA, size) of one vCPU's conversions */
#define KVMVM_MAP_TO_PRIVATE (1u << 4)  /* KVM_MAP_GPA_RANGE_ENCRYPTED */
#define KVMVM_DONE_PORT      0x12       /* memory-fault guest: end of program */
#define KVMVM_FAULT_GPA      0x40000000ull  /* default memory-fault target */
#define KVMVM_FAULT_LIMIT    (1ull << 32)   /* identity map of the fault guest */
#define KVMVM_FAULT_RIP      0x9000u        /* the faulting `mov [rbx], al` */
#define KVMVM_FAULT_INSN_LEN 2
#define KVMVM_ROUND_PORT     0x13       /* private program: a round begins */
#define KVMVM_CHECK_PORT     0x14       /* private program: a self-check failed */

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
	 * Non-zero selects the private-memory program (swprot.h) in a
	 * SW-protected VM, which excludes every other kind: rounds per vCPU.
	 */
	uint32_t private_rounds;
	/* Milliseconds the VMM waits before each round after the first. */
	uint32_t round_gap_ms;
	/*
	 * Repeat the first kind whose count is non-zero until the vCPU is no
	 * longer run (load generation); the guest never reaches `hlt`.
	 * Memory faults: the first page's write faults forever.
	 */
	bool forever;
};

enum kvmvm_program { KVMVM_REAL_MODE, KVMVM_FAULTS, KVMVM_PRIVATE };
struct swprot_vm;

struct kvmvm {
	int kvm_fd;
	int vm_fd;
	uint8_t *ram;
	int run_size;   /* mmap size of struct kvm_run */
	unsigned long type;            /* KVM_CREATE_VM type */
	enum kvmvm_program program;    /* set by kvmvm_load() */
	struct swprot_vm *swprot;      /* private program: its VM state */
	/* Memory-fault program. */
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
	/* Private program progress and what serving it did. */
	uint32_t round;         /* rounds begun */
	uint32_t step;          /* enum swprot_step expected next */
	uint64_t conversions[2];        /* KVM_SET_MEMORY_ATTRIBUTES: [1] to private */
	uint64_t converted_pages[2];
	uint64_t conversions_failed[2]; /* the deliberately failing ones (EINVAL) */
	/* Every KVM_SET_MEMORY_ATTRIBUTES call, failed ones too, by target, GPA and size. */
	struct kvmvm_conversion {
		uint64_t gpa, bytes, count;
		bool private;
	} calls[KVMVM_MAX_CONVERSION_SITES];
	uint32_t nr_calls;
	uint64_t punches;               /* fallocate(PUNCH_HOLE) calls on guest_memfd */
	uint64_t punched_pages;         /* guest_memfd pages discarded */
	uint64_t checks;                /* host-side privacy checks passed */
	/* Every fault, MAP_GPA_RANGE request and successful conversion, in
	 * order: the direction (private or not) each asked its GPA to go.
	 * Allocated as it grows; the owner frees it. */
	struct kvmvm_direction {
		uint64_t gpa;
		bool private;
		bool conversion;        /* the VMM's, else the guest's exit */
	} *directions;
	uint32_t nr_directions, cap_directions;
};

/* What one KVM_RUN return was, from the workload's point of view. */
enum kvmvm_event {
	KVMVM_EV_IO,            /* workload `out` */
	KVMVM_EV_MMIO,          /* write to the MMIO table entry `mmio_index` */
	KVMVM_EV_MAP_PRIVATE,   /* KVM_HC_MAP_GPA_RANGE to private */
	KVMVM_EV_MAP_SHARED,    /* KVM_HC_MAP_GPA_RANGE to shared */
	KVMVM_EV_HLT,           /* end of the real-mode and private programs */
	KVMVM_EV_MEMORY_FAULT,  /* expected exit 39, shared (flags 0), at `gpa` */
	KVMVM_EV_PRIVATE_FAULT, /* expected exit 39, private, at `gpa` */
	KVMVM_EV_EFAULT,        /* KVM_RUN -1/EFAULT, exit 0: unpinnable host page */
	KVMVM_EV_DONE,          /* `out` to KVMVM_DONE_PORT: end of the fault program */
	KVMVM_EV_INTR,          /* KVM_RUN interrupted (EINTR): just re-enter */
	KVMVM_EV_UNEXPECTED,    /* anything else: see kvmvm_report() */
};

struct kvmvm_exit {
	enum kvmvm_event ev;
	uint32_t reason;        /* run->exit_reason after KVM_RUN */
	int err;                /* errno of KVM_RUN, 0 on success */
	uint64_t pages;         /* KVMVM_EV_MAP_*: number of 4 KiB pages */
	uint64_t gpa;           /* KVMVM_EV_MAP_*, memory faults, MMIO */
	unsigned int mmio_index;
	uint32_t fault_page;    /* memory-fault program: index of the page */
	uint32_t step;          /* private program: enum swprot_step of every
				   event but INTR, HLT and UNEXPECTED */
};

/*
 * All functions print what failed and what to do on stderr and return -1
 * on error (kvmvm_run_vcpu returns the event instead).
 */
/* A default VM (the real-mode and memory-fault programs). */
int kvmvm_create(struct kvmvm *vm);
/* The VM type the workload's program needs. */
int kvmvm_create_for(struct kvmvm *vm, const struct kvmvm_workload *w);
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
/*
 * Whether this kernel can run the memory-fault program (a default VM with an
 * mmap-able guest_memfd): 1 yes, 0 no (reason printed), -1 error.
 */
int kvmvm_probe_memory_faults(void);
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

/* Shared by the guest programs (kvmvm.c, swprot.c). */
int kvmvm_create_gmem(struct kvmvm *vm, uint64_t size, uint64_t flags);
/* KVM_SET_USER_MEMORY_REGION2; memory_size 0 deletes the slot. */
int kvmvm_set_region(struct kvmvm *vm, const struct kvmvm_memory_region2 *r);
/* 4-level identity map of [0, KVMVM_FAULT_LIMIT) in memslot 0, 2 MiB pages. */
void kvmvm_identity_map(struct kvmvm *vm);
/* Paging, long mode and flat 64-bit segments with selectors at privilege dpl. */
void kvmvm_long_mode(struct kvm_sregs *sregs, uint16_t code_sel, uint16_t data_sel,
		     unsigned int dpl);
struct kvmvm_memory_fault kvmvm_memory_fault(const struct kvm_run *run);
int kvmvm_get_regs(const struct kvmvcpu *vcpu, struct kvm_regs *regs);

#endif
