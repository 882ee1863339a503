/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types memfault.bpf.c reads, declared for CO-RE: libbpf
 * relocates every field access against the running kernel's BTF
 * (/sys/kernel/btf/vmlinux, or /sys/kernel/btf/kvm where KVM is a module),
 * so only the names of the types and members matter, not their layout.
 * See README in this directory for why this is not a full vmlinux.h dump.
 */
#ifndef MEMFAULT_VMLINUX_H
#define MEMFAULT_VMLINUX_H

/* bpf_tracing.h must use the kernel's pt_regs member names. */
#define __VMLINUX_H__

#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>

#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)

struct kvm {
	int userspace_pid;
	char stats_id[48];
};

struct kvm_run {
	__u32 exit_reason;
	union {
		struct {
			__u64 nr;
			__u64 args[6];
			__u64 ret;
		} hypercall;
		struct {
			__u64 flags;
			__u64 gpa;
			__u64 size;
		} memory_fault;	/* optional: Linux 6.8+, read behind bpf_core_field_exists() */
	};
};

struct kvm_vcpu {
	struct kvm *kvm;
	int vcpu_id;
	struct kvm_run *run;
};

/* From the KVM_RUN ioctl's file descriptor to its vCPU. */
struct file {
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

/* The VMM's command line, where -name is, lies between these user addresses. */
struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

struct sched_entity {
	__u64 nr_migrations;
};

struct task_struct {
	struct sched_entity se;
	__u64 start_time;
	struct files_struct *files;
	struct task_struct *group_leader;
	struct mm_struct *mm;
	char comm[16];
};

/* The syscall arguments, as bpf_tracing.h's PT_REGS_*_CORE_SYSCALL read them. */
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long cx;
	unsigned long r8;
	unsigned long r9;
	unsigned long r10;
	unsigned long ax;
	unsigned long orig_ax;
	unsigned long ip;
	unsigned long sp;
};
#elif defined(__TARGET_ARCH_arm64)
/* bpf_tracing.h reads orig_x0 through its own pt_regs___arm64. */
struct pt_regs;
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#else
#error "memfaulttop: add this architecture's struct pt_regs members"
#endif

#pragma clang attribute pop

#endif /* MEMFAULT_VMLINUX_H */
