/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Empty BPF maps of the model's layout, for unit tests that read or reap
 * through real maps. Creating maps needs root: without it the test skips,
 * and under CI=true it fails, as a skip there means a broken set-up.
 * Include after cmocka.h.
 */
#ifndef MF_TEST_MAPS_H
#define MF_TEST_MAPS_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "skel.h"

/* The real read_changed program, over these maps (model.c runs it). */
static struct memfault *test_maps_reader;

static int make_map_flags(enum bpf_map_type type, size_t key, size_t value, __u32 max,
			  __u32 flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	int fd = bpf_map_create(type, NULL, (__u32)key, (__u32)value, max, &opts);

	assert_true(fd >= 0);
	return fd;
}

static int make_map(enum bpf_map_type type, size_t key, size_t value, __u32 max)
{
	return make_map_flags(type, key, value, max, 0);
}

/* The maps, or -1 when the test must fail (CI); skips without root.
 * test_maps_close is safe either way. */
static int test_maps_create(struct mf_map_fds *fds)
{
	struct bpf_program *prog;

	*fds = (struct mf_map_fds){ -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, NULL, -1,
				    NULL };
	if (geteuid() != 0) {
		print_message("needs root to create BPF maps\n");
		if (getenv("CI") && !strcmp(getenv("CI"), "true"))
			return -1;
		skip();
	}
	*fds = (struct mf_map_fds){
		.vm_info = make_map(BPF_MAP_TYPE_HASH, 8, sizeof(struct mf_vm_info), 64),
		.dead_vms = make_map(BPF_MAP_TYPE_HASH, 8, sizeof(struct mf_vm_info), 64),
		.vm_hot = make_map(BPF_MAP_TYPE_PERCPU_HASH, 8, sizeof(struct mf_vm_hot), 64),
		.vm_cold = make_map(BPF_MAP_TYPE_HASH, 8, sizeof(struct mf_vm_cold), 64),
		.gpa_ranges = make_map(BPF_MAP_TYPE_PERCPU_HASH, sizeof(struct mf_range_key),
				       sizeof(struct mf_range_val), 64),
		.drops = make_map(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, MF_NR_DROPS),
		.vcpu_waits = make_map(BPF_MAP_TYPE_HASH, sizeof(struct mf_vcpu_key),
				       sizeof(struct mf_vcpu_wait), 64),
		.range_flips = make_map(BPF_MAP_TYPE_HASH, sizeof(struct mf_flip_key),
					sizeof(struct mf_flip_val), 64),
		.vm_cmdline = make_map(BPF_MAP_TYPE_HASH, 8, sizeof(struct mf_cmdline), 64),
		.changes = make_map(BPF_MAP_TYPE_HASH, sizeof(struct mf_change), 1, 64),
		.change_state = make_map(BPF_MAP_TYPE_ARRAY, 4, 8, MF_NR_CHANGE_STATE),
		.vm_hot_slots = make_map(BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct mf_vm_hot), 64),
		.vm_cold_slots = make_map_flags(BPF_MAP_TYPE_ARRAY, 4, sizeof(struct mf_vm_cold), 64,
						BPF_F_MMAPABLE),
		.slots_used = calloc(MF_MAX_VMS / 64, sizeof(__u64)),
	};
	assert_non_null(fds->slots_used);
	assert_null(test_maps_reader);
	test_maps_reader = memfault__open();
	assert_non_null(test_maps_reader);
	bpf_object__for_each_program(prog, test_maps_reader->obj)
		bpf_program__set_autoload(prog, prog == test_maps_reader->progs.read_changed);
	assert_int_equal(bpf_map__reuse_fd(test_maps_reader->maps.gpa_ranges, fds->gpa_ranges), 0);
	assert_int_equal(bpf_map__reuse_fd(test_maps_reader->maps.range_flips, fds->range_flips), 0);
	assert_int_equal(memfault__load(test_maps_reader), 0);
	fds->read_changed = bpf_program__fd(test_maps_reader->progs.read_changed);
	fds->read_items = test_maps_reader->bss->read_items;
	return 0;
}

static void test_maps_close(const struct mf_map_fds *fds)
{
	close(fds->vm_info);
	close(fds->dead_vms);
	close(fds->vm_hot);
	close(fds->vm_cold);
	close(fds->gpa_ranges);
	close(fds->drops);
	close(fds->vcpu_waits);
	close(fds->range_flips);
	close(fds->vm_cmdline);
	close(fds->changes);
	close(fds->change_state);
	close(fds->vm_hot_slots);
	close(fds->vm_cold_slots);
	free(fds->slots_used);
	memfault__destroy(test_maps_reader);
	test_maps_reader = NULL;
}

/* What the BPF side does when it changes a gpa_ranges or range_flips
 * entry: logs its key. */
static inline void test_maps_log_change(const struct mf_map_fds *fds, enum mf_change_map map,
				 __u64 vm_id, __u32 kind, __u64 range)
{
	struct mf_change c = { .vm_id = vm_id, .kind = kind, .map = map, .range = range };

	assert_int_equal(bpf_map_update_elem(fds->changes, &c, &(__u8){ 1 }, BPF_ANY), 0);
}

#endif
