// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Up-front checks, so that a missing piece gives a clear line instead of
 * a libbpf load error. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/btf.h>
#include <linux/types.h>
#include "memfault.h"
#include "probe.skel.h"
#include "probe.h"

#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define KVM_BTF "/sys/kernel/btf/kvm"

/* What the probe looks up in the kernel's BTF, by name and kind. */
enum lookup {
	KVM_RUN_IOCTL,		/* KVM is loaded; the KVM_RUN-entry hook */
	EXIT_TRACEPOINT,
	RDONLY_CAST,
	DESTROY_VM,
	VM_IOCTL,
	GMEM,			/* guest_memfd's private state, before 6.18 */
	GMEM_FILE,		/* and since */
	GMEM_FALLOCATE,
	NR_LOOKUPS,
};

_Static_assert(NR_LOOKUPS <= MF_BTF_QUERIES, "MF_BTF_QUERIES too small");

static const struct {
	const char *name;
	__u32 kind;
} lookups[NR_LOOKUPS] = {
	[KVM_RUN_IOCTL] = { "kvm_arch_vcpu_ioctl_run", BTF_KIND_FUNC },
	[EXIT_TRACEPOINT] = { "btf_trace_kvm_userspace_exit", BTF_KIND_TYPEDEF },
	[RDONLY_CAST] = { "bpf_rdonly_cast", BTF_KIND_FUNC },
	[DESTROY_VM] = { "kvm_destroy_vm", BTF_KIND_FUNC },
	[VM_IOCTL] = { "kvm_vm_ioctl", BTF_KIND_FUNC },
	[GMEM] = { "kvm_gmem", BTF_KIND_STRUCT },
	[GMEM_FILE] = { "gmem_file", BTF_KIND_STRUCT },
	[GMEM_FALLOCATE] = { "kvm_gmem_fallocate", BTF_KIND_FUNC },
};

/* A type found in the kernel's BTF: its id, and the fd of the module's BTF
 * object that holds it (0: vmlinux). */
struct found {
	__u32 id;		/* 0: not found */
	int obj_fd;
};

/*
 * Looks every name up with the kernel's own BTF (the probe.bpf.c program),
 * instead of reading and parsing the ~5.5 MB of it here: libbpf parses it
 * for the load anyway. Returns 0 or a negative errno, after a message.
 */
static int find_types(struct found found[NR_LOOKUPS])
{
	struct probe_bpf *skel = probe_bpf__open_and_load();
	int err;

	if (!skel) {
		err = -errno;
		fprintf(stderr, "memfaulttop: cannot load the feature probe: %s; run with -v to see"
			" the verifier log\n", strerror(-err));
		return err;
	}
	for (int i = 0; i < NR_LOOKUPS; i++) {
		struct mf_btf_query *q = &skel->bss->queries[i];

		snprintf(q->name, sizeof(q->name), "%s", lookups[i].name);
		q->kind = lookups[i].kind;
	}
	LIBBPF_OPTS(bpf_test_run_opts, run);
	err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.find_btf_types), &run);
	if (err) {
		err = -errno;
		fprintf(stderr, "memfaulttop: cannot run the feature probe: %s\n", strerror(-err));
	}
	for (int i = 0; i < NR_LOOKUPS; i++) {
		__s64 v = skel->bss->queries[i].found;

		found[i] = err || v < 0 ? (struct found){ 0 } :
			(struct found){ .id = (__u32)v, .obj_fd = (int)(v >> 32) };
	}
	probe_bpf__destroy(skel);
	return err;
}

/* Whether the kernel loads this tracing program (closed at once). */
static bool tracing_prog_loads(const struct bpf_insn *insns, size_t n,
			       const struct bpf_prog_load_opts *opts)
{
	int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns, n, opts);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/*
 * Whether fentry can attach to this kernel function: loading a
 * two-instruction program checks it (kernels without ftrace refuse), far
 * quicker than loading the whole object once per hook to find out. fexit
 * needs the same.
 */
static bool fentry_loads(struct found func)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 },	/* r0 = 0 */
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
		    .attach_btf_id = func.id, .attach_btf_obj_fd = (__u32)func.obj_fd);

	if (!func.id)
		return false;
	return tracing_prog_loads(insns, sizeof(insns) / sizeof(insns[0]), &opts);
}

/*
 * Whether bpf_rdonly_cast() may cast to void (Linux 6.17), where the exit
 * path's one read of kernel memory becomes a plain load: a program on the
 * same tracepoint that reads its own stack that way loads only there.
 */
static bool rdonly_void_cast_loads(struct found cast, struct found tp)
{
	const struct bpf_insn insns[] = {
		/* *(u64 *)(fp - 8) = 0; r1 = fp - 8; r2 = 0 (void) */
		{ .code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_10, .off = -8 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_1, .imm = -8 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2 },
		/* r0 = bpf_rdonly_cast(r1, r2); r0 = *(u64 *)r0; return 0 */
		{ .code = BPF_JMP | BPF_CALL, .src_reg = BPF_PSEUDO_KFUNC_CALL,
		  .imm = (__s32)cast.id },
		{ .code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP,
		    .attach_btf_id = tp.id, .attach_btf_obj_fd = (__u32)tp.obj_fd);

	/* The kfunc must be vmlinux's: a module's would need an fd array. */
	if (!cast.id || cast.obj_fd || !tp.id)
		return false;
	return tracing_prog_loads(insns, sizeof(insns) / sizeof(insns[0]), &opts);
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

static int probe_kernel(struct mf_kernel_features *f)
{
	struct found found[NR_LOOKUPS];
	int err;

	if (access(VMLINUX_BTF, R_OK)) {
		fprintf(stderr, "memfaulttop: %s: %s; the kernel needs CONFIG_DEBUG_INFO_BTF=y\n",
			VMLINUX_BTF, strerror(errno));
		return -ENOENT;
	}
	err = find_types(found);
	if (err)
		return err;
	if (!found[KVM_RUN_IOCTL].id) {
		fprintf(stderr, "memfaulttop: KVM is not loaded (no kvm_arch_vcpu_ioctl_run in kernel BTF);"
			" load it with 'modprobe kvm_intel' or 'modprobe kvm_amd'\n");
		err = -ENOENT;
	} else if (!found[EXIT_TRACEPOINT].id) {
		fprintf(stderr, "memfaulttop: this kernel has no kvm_userspace_exit tracepoint in its BTF\n");
		err = -ENOENT;
	}
	mf_features_init(&f->user);
	f->rdonly_void_cast = rdonly_void_cast_loads(found[RDONLY_CAST], found[EXIT_TRACEPOINT]);
	/* Final once attached: a function may load and still not attach. */
	f->user.available[MF_FEAT_DESTROY_HOOK] = fentry_loads(found[DESTROY_VM]);
	f->user.available[MF_FEAT_CONVERSIONS] = fentry_loads(found[VM_IOCTL]);
	/* The VM of a guest_memfd file is in its private state's type. */
	f->user.available[MF_FEAT_DISCARDS] = (found[GMEM].id || found[GMEM_FILE].id) &&
					      fentry_loads(found[GMEM_FALLOCATE]);
	f->user.available[MF_FEAT_WAIT_LATENCY] = fentry_loads(found[KVM_RUN_IOCTL]);
	/* Each module's BTF object came as a new fd per lookup. */
	for (int i = 0; i < NR_LOOKUPS; i++)
		if (found[i].obj_fd > 0)
			close(found[i].obj_fd);
	return err;
}

static void *probe_thread(void *arg)
{
	struct mf_probe *p = arg;

	p->err = probe_kernel(p->features);
	if (p->then)
		p->then(p->then_arg);
	return NULL;
}

void mf_probe_start(struct mf_probe *p, struct mf_kernel_features *f, void (*then)(void *),
		    void *then_arg)
{
	*p = (struct mf_probe){ .features = f, .then = then, .then_arg = then_arg };
	/* Without a thread, the probe runs now: only slower. */
	p->threaded = !pthread_create(&p->thread, NULL, probe_thread, p);
	if (!p->threaded)
		probe_thread(p);
}

int mf_probe_finish(struct mf_probe *p)
{
	if (p->threaded)
		pthread_join(p->thread, NULL);
	return p->err;
}
