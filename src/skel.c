// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "memfault.skel.h"
#include "skel.h"

struct mf_map_fds mf_skel_map_fds(const struct memfault *skel)
{
	return (struct mf_map_fds){
		.vm_info = bpf_map__fd(skel->maps.vm_info),
		.dead_vms = bpf_map__fd(skel->maps.dead_vms),
		.vm_hot = bpf_map__fd(skel->maps.vm_hot),
		.vm_cold = bpf_map__fd(skel->maps.vm_cold),
		.gpa_ranges = bpf_map__fd(skel->maps.gpa_ranges),
		.drops = bpf_map__fd(skel->maps.drops),
		.vcpu_waits = bpf_map__fd(skel->maps.vcpu_waits),
		.range_flips = bpf_map__fd(skel->maps.range_flips),
		.vm_cmdline = bpf_map__fd(skel->maps.vm_cmdline),
		.changes = bpf_map__fd(skel->maps.changes),
		.change_state = bpf_map__fd(skel->maps.change_state),
	};
}

struct memfault *mf_skel_open_injector(unsigned int gpa_shift, const char *prog)
{
	struct memfault *skel = memfault__open();
	int err;

	if (!skel) {
		fprintf(stderr, "%s: cannot open the BPF object: %s\n", prog, strerror(errno));
		return NULL;
	}
	skel->rodata->gpa_shift = gpa_shift;
	bpf_program__set_autoload(skel->progs.on_userspace_exit, false);
	bpf_program__set_autoload(skel->progs.forget_vm, false);
	bpf_program__set_autoload(skel->progs.enter_vcpu_run, false);
	bpf_program__set_autoload(skel->progs.vm_ioctl_enter, false);
	bpf_program__set_autoload(skel->progs.vm_ioctl_exit, false);
	bpf_program__set_autoload(skel->progs.gmem_fallocate_enter, false);
	bpf_program__set_autoload(skel->progs.gmem_fallocate_exit, false);
	err = memfault__load(skel);
	if (err) {
		fprintf(stderr, "%s: cannot load the BPF programs: %s\n", prog, strerror(-err));
		memfault__destroy(skel);
		return NULL;
	}
	return skel;
}
