/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel features memfaulttop degrades without, one by one: which the
 * running kernel lacks is said at start-up, in text and in JSON. */
#ifndef MF_KERNEL_FEATURES_H
#define MF_KERNEL_FEATURES_H

#include <stdbool.h>
#include <stdio.h>

enum mf_feature {
	MF_FEAT_MEMORY_FAULT_INFO,	/* kvm_run.memory_fault (Linux 6.8+) */
	MF_FEAT_DESTROY_HOOK,		/* fentry on kvm_destroy_vm (needs ftrace) */
	MF_FEAT_CONVERSIONS,		/* fentry/fexit on kvm_vm_ioctl */
	MF_FEAT_DISCARDS,		/* fentry/fexit on kvm_gmem_fallocate (Linux 6.8+) */
	MF_FEAT_WAIT_LATENCY,		/* fentry on kvm_arch_vcpu_ioctl_run */
	MF_NR_FEATURES,
};

/* Why an unavailable feature is missing. */
enum mf_missing_why {
	MF_WHY_KERNEL,		/* the running kernel lacks it */
	MF_WHY_DISABLED,	/* left out with --disable */
	MF_WHY_FAILED,		/* its programs failed to load or attach */
};

struct mf_features {
	char release[65];		/* uname -r */
	bool available[MF_NR_FEATURES];
	enum mf_missing_why why[MF_NR_FEATURES];
};

extern const char *const mf_feature_key[MF_NR_FEATURES];	/* JSON keys */
/* Whether a feature is an optional hook, which --disable can leave out. */
extern const bool mf_feature_hook[MF_NR_FEATURES];

/* Why it is unavailable and what is lost without it, for people and for
 * the JSON "unavailable" object. */
const char *mf_feature_why(const struct mf_features *f, enum mf_feature feature);

/* Fills release; every feature starts unavailable. */
void mf_features_init(struct mf_features *f);
/* One line per unavailable feature, each starting with prefix. */
void mf_features_print_missing(FILE *out, const char *prefix, const struct mf_features *f);

#endif
