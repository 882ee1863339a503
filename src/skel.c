// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
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
		.vm_hot_slots = bpf_map__fd(skel->maps.vm_hot_slots),
		.vm_cold_slots = bpf_map__fd(skel->maps.vm_cold_slots),
		.slots_used = skel->bss->slots_used,
		.read_changed = bpf_program__fd(skel->progs.read_changed),
		.read_items = skel->bss->read_items,
	};
}

/*
 * Each slot costs its hot counters on every possible CPU, allocated at load
 * for VMs that may never come, one per-CPU allocation each (~2 us: 4,096
 * slots added 9-14 ms to start-up, 1,024 about 1.5), and one cold entry
 * (~9.5 KiB). At most 1,024 slots and 32 MiB of hot counters: 1,024 VMs up
 * to 48 CPUs, 192 at 256 CPUs; the other VMs count in the vm_hot and
 * vm_cold hashes, exactly but ~100 ns slower per exit and read through a
 * system call.
 */
#define MF_HOT_SLOTS_BYTES (32u << 20)
#define MF_HOT_SLOTS_MAX 1024

int mf_skel_size_slots(struct memfault *skel, unsigned long max)
{
	int ncpus = libbpf_num_possible_cpus();
	size_t slots;
	int err;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	slots = MF_HOT_SLOTS_BYTES / (((sizeof(struct mf_vm_hot) + 7) & ~(size_t)7) * (size_t)ncpus);
	if (slots > max)
		slots = max;
	if (slots > MF_HOT_SLOTS_MAX)
		slots = MF_HOT_SLOTS_MAX;
	slots &= ~(size_t)63;	/* whole words of slots_used */
	skel->rodata->nr_slots = (__u32)slots;
	/* An array cannot be empty: with no slot, one unused entry. */
	err = bpf_map__set_max_entries(skel->maps.vm_hot_slots, slots ? (__u32)slots : 1);
	return err ? err : bpf_map__set_max_entries(skel->maps.vm_cold_slots,
						    slots ? (__u32)slots : 1);
}

void mf_skel_read_kernel_btf(struct memfault *skel)
{
	bpf_program__set_attach_target(skel->progs.on_userspace_exit, 0, "kvm_userspace_exit");
}

int mf_skel_has_memory_fault_info(const struct memfault *skel)
{
	LIBBPF_OPTS(bpf_test_run_opts, run);

	if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.has_memory_fault_info), &run))
		return -errno;
	return run.retval != 0;
}

struct memfault *mf_skel_open_injector(unsigned int gpa_shift, unsigned long nr_slots,
				       const char *prog)
{
	struct memfault *skel = memfault__open();
	int err;

	if (!skel) {
		fprintf(stderr, "%s: cannot open the BPF object: %s\n", prog, strerror(errno));
		return NULL;
	}
	skel->rodata->gpa_shift = gpa_shift;
	err = mf_skel_size_slots(skel, nr_slots);
	if (err) {
		fprintf(stderr, "%s: cannot size the VM slots: %s\n", prog, strerror(-err));
		memfault__destroy(skel);
		return NULL;
	}
	bpf_program__set_autoload(skel->progs.on_userspace_exit, false);
	bpf_program__set_autoload(skel->progs.has_memory_fault_info, false);
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
