// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Up-front checks, so that a missing piece gives a clear line instead of
 * a libbpf load error. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "probe.h"

#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define KVM_BTF "/sys/kernel/btf/kvm"

struct kernel_btf {
	struct btf *vmlinux, *kvm;
	int kvm_fd;		/* the kvm module's BTF object, -1 if none */
};

static bool has_type(const struct kernel_btf *k, const char *name, __u32 kind)
{
	return btf__find_by_name_kind(k->vmlinux, name, kind) > 0 ||
	       (k->kvm && btf__find_by_name_kind(k->kvm, name, kind) > 0);
}

/* Looks for member name in struct type_id, descending into anonymous members. */
static bool has_member(const struct btf *btf, __u32 type_id, const char *name)
{
	const struct btf_type *t = btf__type_by_id(btf, btf__resolve_type(btf, type_id));
	const struct btf_member *m;

	if (!t || !(btf_is_struct(t) || btf_is_union(t)))
		return false;
	m = btf_members(t);
	for (int i = 0; i < btf_vlen(t); i++, m++) {
		const char *mname = btf__name_by_offset(btf, m->name_off);

		if (mname && !strcmp(mname, name))
			return true;
		if ((!mname || !*mname) && has_member(btf, m->type, name))
			return true;
	}
	return false;
}

static bool struct_has_member(const struct kernel_btf *k, const char *type, const char *member)
{
	struct btf *btfs[] = { k->vmlinux, k->kvm };

	for (size_t i = 0; i < 2; i++) {
		int id = btfs[i] ? btf__find_by_name_kind(btfs[i], type, BTF_KIND_STRUCT) : -1;

		if (id > 0 && has_member(btfs[i], (__u32)id, member))
			return true;
	}
	return false;
}

/*
 * The kernel's BTF object of the kvm module, as a fd for attach_btf_obj_fd;
 * -1 if KVM is built in or not loaded.
 */
static int kvm_module_btf_fd(void)
{
	__u32 id = 0;

	while (!bpf_btf_get_next_id(id, &id)) {
		char name[64] = "";
		struct bpf_btf_info info = { .name = (__u64)(unsigned long)name,
					     .name_len = sizeof(name) };
		__u32 len = sizeof(info);
		int fd = bpf_btf_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.kernel_btf &&
		    !strcmp(name, "kvm"))
			return fd;
		close(fd);
	}
	return -1;
}

/*
 * Whether fentry can attach to the kernel function func, in vmlinux or in
 * the kvm module: loading a two-instruction program checks it (kernels
 * without ftrace refuse), far quicker than loading the whole object once
 * per hook to find out. fexit needs the same.
 */
static bool fentry_loads(const struct kernel_btf *k, const char *func)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 },	/* r0 = 0 */
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int id = btf__find_by_name_kind(k->vmlinux, func, BTF_KIND_FUNC), obj_fd = 0, fd;

	/* Module BTF is split BTF: its ids follow vmlinux's, as the kernel
	 * expects them with the module's object fd. */
	if (id <= 0 && k->kvm && k->kvm_fd >= 0) {
		id = btf__find_by_name_kind(k->kvm, func, BTF_KIND_FUNC);
		obj_fd = k->kvm_fd;
	}
	if (id <= 0)
		return false;
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
		    .attach_btf_id = (__u32)id, .attach_btf_obj_fd = (__u32)obj_fd);
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns,
			   sizeof(insns) / sizeof(insns[0]), &opts);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/*
 * Whether bpf_rdonly_cast() may cast to void (Linux 6.17), where the exit
 * path's one read of kernel memory becomes a plain load: a program on the
 * same tracepoint that reads its own stack that way loads only there.
 */
static bool rdonly_void_cast_loads(const struct kernel_btf *k)
{
	int cast = btf__find_by_name_kind(k->vmlinux, "bpf_rdonly_cast", BTF_KIND_FUNC);
	int tp = btf__find_by_name_kind(k->vmlinux, "btf_trace_kvm_userspace_exit",
					BTF_KIND_TYPEDEF);
	const struct bpf_insn insns[] = {
		/* *(u64 *)(fp - 8) = 0; r1 = fp - 8; r2 = 0 (void) */
		{ .code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_10, .off = -8 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_1, .imm = -8 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2 },
		/* r0 = bpf_rdonly_cast(r1, r2); r0 = *(u64 *)r0; return 0 */
		{ .code = BPF_JMP | BPF_CALL, .src_reg = BPF_PSEUDO_KFUNC_CALL, .imm = cast },
		{ .code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP,
		    .attach_btf_id = (__u32)tp);
	int fd;

	if (cast <= 0 || tp <= 0)
		return false;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns,
			   sizeof(insns) / sizeof(insns[0]), &opts);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Linux 5.8 numbers; the uapi headers of older distributions lack them. */
#define MF_CAP_PERFMON 38
#define MF_CAP_BPF 39

static bool cap_effective(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].effective & (1u << (cap % 32));
}

int mf_check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };
	bool bpf, perfmon;

	if (syscall(SYS_capget, &hdr, data)) {
		fprintf(stderr, "memfaulttop: cannot read this process's capabilities: %s\n",
			strerror(errno));
		return -errno;
	}
	if (cap_effective(data, CAP_SYS_ADMIN))
		return 0;
	/* libbpf finds a module's BTF by walking the kernel's BTF objects
	 * (BPF_BTF_GET_NEXT_ID), which the kernel allows CAP_SYS_ADMIN only. */
	if (access(KVM_BTF, F_OK) == 0) {
		fprintf(stderr, "memfaulttop: KVM is a module here, whose BTF libbpf finds by"
			" walking the kernel's BTF objects: that needs CAP_SYS_ADMIN (CAP_BPF and"
			" CAP_PERFMON are not enough); run it as root (sudo), or grant"
			" CAP_SYS_ADMIN\n");
		return -EPERM;
	}
	bpf = cap_effective(data, MF_CAP_BPF);
	perfmon = cap_effective(data, MF_CAP_PERFMON);
	if (bpf && perfmon)
		return 0;
	fprintf(stderr, "memfaulttop: needs CAP_BPF and CAP_PERFMON to load and attach its BPF"
		" programs; missing %s: run it as root (sudo), or grant them (e.g. systemd's"
		" AmbientCapabilities=CAP_BPF CAP_PERFMON)\n",
		!bpf && !perfmon ? "both" : !bpf ? "CAP_BPF" : "CAP_PERFMON");
	return -EPERM;
}

int mf_probe_kernel(struct mf_kernel_features *f)
{
	struct kernel_btf k = { .kvm_fd = -1 };
	int err = 0;

	if (access(VMLINUX_BTF, R_OK)) {
		fprintf(stderr, "memfaulttop: %s: %s; the kernel needs CONFIG_DEBUG_INFO_BTF=y\n",
			VMLINUX_BTF, strerror(errno));
		return -ENOENT;
	}
	k.vmlinux = btf__load_vmlinux_btf();
	if (!k.vmlinux) {
		err = -errno;
		fprintf(stderr, "memfaulttop: cannot read %s: %s\n", VMLINUX_BTF, strerror(-err));
		return err;
	}
	if (!access(KVM_BTF, R_OK)) {
		k.kvm = btf__load_module_btf("kvm", k.vmlinux);
		k.kvm_fd = kvm_module_btf_fd();
	}

	if (!has_type(&k, "kvm_arch_vcpu_ioctl_run", BTF_KIND_FUNC)) {
		fprintf(stderr, "memfaulttop: KVM is not loaded (no kvm_arch_vcpu_ioctl_run in kernel BTF);"
			" load it with 'modprobe kvm_intel' or 'modprobe kvm_amd'\n");
		err = -ENOENT;
	} else if (!has_type(&k, "btf_trace_kvm_userspace_exit", BTF_KIND_TYPEDEF)) {
		fprintf(stderr, "memfaulttop: this kernel has no kvm_userspace_exit tracepoint in its BTF\n");
		err = -ENOENT;
	}
	mf_features_init(&f->user);
	f->user.available[MF_FEAT_MEMORY_FAULT_INFO] =
		struct_has_member(&k, "kvm_run", "memory_fault");
	f->rdonly_void_cast = rdonly_void_cast_loads(&k);
	/* Final once attached: a function may load and still not attach. */
	f->user.available[MF_FEAT_DESTROY_HOOK] = fentry_loads(&k, "kvm_destroy_vm");
	f->user.available[MF_FEAT_CONVERSIONS] = fentry_loads(&k, "kvm_vm_ioctl");
	/* The VM of a guest_memfd file is in its private state's type. */
	f->user.available[MF_FEAT_DISCARDS] =
		(has_type(&k, "kvm_gmem", BTF_KIND_STRUCT) ||
		 has_type(&k, "gmem_file", BTF_KIND_STRUCT)) &&
		fentry_loads(&k, "kvm_gmem_fallocate");
	f->user.available[MF_FEAT_WAIT_LATENCY] = fentry_loads(&k, "kvm_arch_vcpu_ioctl_run");

	if (k.kvm_fd >= 0)
		close(k.kvm_fd);
	btf__free(k.kvm);
	btf__free(k.vmlinux);
	return err;
}
