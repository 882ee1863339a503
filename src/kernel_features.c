// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include <sys/utsname.h>
#include "kernel_features.h"

const char *const mf_feature_key[MF_NR_FEATURES] = {
	[MF_FEAT_MEMORY_FAULT_INFO] = "memory_fault_info",
	[MF_FEAT_DESTROY_HOOK] = "destroy_hook",
	[MF_FEAT_CONVERSIONS] = "conversions",
	[MF_FEAT_DISCARDS] = "discards",
	[MF_FEAT_WAIT_LATENCY] = "wait_latency",
};

const bool mf_feature_hook[MF_NR_FEATURES] = {
	[MF_FEAT_DESTROY_HOOK] = true,
	[MF_FEAT_CONVERSIONS] = true,
	[MF_FEAT_DISCARDS] = true,
	[MF_FEAT_WAIT_LATENCY] = true,
};

static const char *const missing[MF_NR_FEATURES] = {
	[MF_FEAT_MEMORY_FAULT_INFO] = "kvm_run has no memory_fault (Linux < 6.8): memory-fault"
		" exits are counted as exits, without class, GPA or size",
	[MF_FEAT_DESTROY_HOOK] = "kvm_destroy_vm cannot be traced (fentry needs ftrace):"
		" a VM counts as destroyed when its VMM exits",
	[MF_FEAT_CONVERSIONS] = "kvm_vm_ioctl cannot be traced (fentry/fexit need ftrace):"
		" the VMM's KVM_SET_MEMORY_ATTRIBUTES conversions are not counted",
	[MF_FEAT_DISCARDS] = "kvm_gmem_fallocate cannot be traced (no guest_memfd before"
		" Linux 6.8, or no ftrace): guest_memfd hole punches are not counted",
	[MF_FEAT_WAIT_LATENCY] = "kvm_arch_vcpu_ioctl_run cannot be traced (fentry needs"
		" ftrace): how long vCPUs wait for their VMM is not measured",
};

void mf_features_init(struct mf_features *f)
{
	struct utsname u;

	memset(f, 0, sizeof(*f));
	if (!uname(&u))
		snprintf(f->release, sizeof(f->release), "%s", u.release);
}

static const char *const disabled[MF_NR_FEATURES] = {
	[MF_FEAT_DESTROY_HOOK] = "left out with --disable: a VM counts as destroyed when its"
		" VMM exits",
	[MF_FEAT_CONVERSIONS] = "left out with --disable: the VMM's KVM_SET_MEMORY_ATTRIBUTES"
		" conversions are not counted",
	[MF_FEAT_DISCARDS] = "left out with --disable: guest_memfd hole punches are not counted",
	[MF_FEAT_WAIT_LATENCY] = "left out with --disable: how long vCPUs wait for their VMM"
		" is not measured",
};

static const char *const failed[MF_NR_FEATURES] = {
	[MF_FEAT_DESTROY_HOOK] = "its program failed to load or attach (see above; libbpf 1.1"
		" needs CAP_SYS_ADMIN here): a VM counts as destroyed when its VMM exits",
	[MF_FEAT_CONVERSIONS] = "its programs failed to load or attach (see above; libbpf 1.1"
		" needs CAP_SYS_ADMIN here): the VMM's KVM_SET_MEMORY_ATTRIBUTES"
		" conversions are not counted",
	[MF_FEAT_DISCARDS] = "its programs failed to load or attach (see above; libbpf 1.1"
		" needs CAP_SYS_ADMIN here): guest_memfd hole punches are not counted",
	[MF_FEAT_WAIT_LATENCY] = "its program failed to load or attach (see above; libbpf 1.1"
		" needs CAP_SYS_ADMIN here): how long vCPUs wait for their VMM is not"
		" measured",
};

const char *mf_feature_why(const struct mf_features *f, enum mf_feature feature)
{
	switch (f->why[feature]) {
	case MF_WHY_DISABLED:
		return disabled[feature];
	case MF_WHY_FAILED:
		return failed[feature];
	default:
		return missing[feature];
	}
}

void mf_features_print_missing(FILE *out, const char *prefix, const struct mf_features *f)
{
	for (int i = 0; i < MF_NR_FEATURES; i++)
		if (!f->available[i])
			fprintf(out, "%skernel %s: %s unavailable: %s\n", prefix, f->release,
				mf_feature_key[i], mf_feature_why(f, i));
}
