// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for src/model.c against real BPF maps of the same layout,
 * filled from userspace: how destroyed VMs are reported once and then
 * forgotten, both when kvm_destroy_vm is traced (a kernel this project's
 * CI lacks) and when a VM counts as destroyed with its VMM process.
 * Creating maps needs root: without it the tests skip, and under CI=true
 * they fail, as a skip there means a broken set-up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "maps.h"
#include "model.h"

struct maps {
	struct mf_map_fds fds;
	int ncpus;
};

static int setup(void **state)
{
	struct maps *mp = calloc(1, sizeof(*mp));

	assert_non_null(mp);
	*state = mp;
	mp->ncpus = libbpf_num_possible_cpus();
	return test_maps_create(&mp->fds);
}

static int teardown(void **state)
{
	struct maps *mp = *state;

	if (mp)
		test_maps_close(&mp->fds);
	free(mp);
	return 0;
}

static void put_info(int fd, __u64 key, __u64 id, pid_t pid)
{
	struct mf_vm_info info = { .id = id, .pid = (__u32)pid };

	snprintf(info.stats_id, sizeof(info.stats_id), "kvm-%d", (int)pid);
	assert_int_equal(bpf_map_update_elem(fd, &key, &info, BPF_ANY), 0);
}

/* CPU 0 saw io IO exits of the VM, each also moving its traffic; the other
 * CPUs nothing. */
static void put_hot(const struct maps *mp, __u64 id, __u64 io)
{
	struct mf_vm_hot *hot = calloc((size_t)mp->ncpus, sizeof(*hot));

	assert_non_null(hot);
	hot[0].exits[2] = io;
	hot[0].traffic = io;
	hot[0].vcpus[0] = 1;
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_hot, &id, hot, BPF_ANY), 0);
	free(hot);
}

static bool map_has(int fd, __u64 key)
{
	/* Room for the largest value, per CPU: any of these maps fits. */
	void *value = calloc((size_t)libbpf_num_possible_cpus(), sizeof(struct mf_vm_cold));
	bool found;

	assert_non_null(value);
	found = bpf_map_lookup_elem(fd, &key, value) == 0;
	free(value);
	return found;
}

static const struct mf_vm *vm_of(const struct mf_model *m, __u64 id)
{
	for (size_t i = 0; i < m->nr_vms; i++)
		if (m->vms[i].id == id)
			return &m->vms[i];
	return NULL;
}

/* A pid that no process has: a child that has exited and been reaped. */
static pid_t gone_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (!pid)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

/*
 * With kvm_destroy_vm traced, the BPF program moves the VM's info to
 * dead_vms and deletes its vm_info entry, whose address a new VM may take
 * at once. The destroyed VM is reported once, then its entries go; the
 * new VM's vm_info entry stays.
 */
static void test_destroyed_by_hook(void **state)
{
	struct maps *mp = *state;
	const __u64 kvm = 0xffff888000001000ULL;
	struct mf_model m;
	const struct mf_vm *vm;

	assert_int_equal(mf_model_init(&m, &mp->fds, 30, false), 0);
	put_info(mp->fds.vm_info, kvm, 1, getpid());
	put_hot(mp, 1, 5);
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 1);
	assert_non_null(vm);
	assert_false(vm->destroyed);
	assert_int_equal(vm->cur->exits[2] - vm->prev->exits[2], 5);
	assert_int_equal(mf_model_reap(&m), 0);

	/* kvm_destroy_vm, then a new VM at the same address. */
	put_info(mp->fds.dead_vms, 1, 1, getpid());
	put_info(mp->fds.vm_info, kvm, 2, getpid());
	put_hot(mp, 1, 8);
	put_hot(mp, 2, 3);
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 1);
	assert_non_null(vm);
	assert_true(vm->destroyed);
	assert_true(mf_vm_active(vm));
	assert_int_equal(vm->cur->exits[2] - vm->prev->exits[2], 3);
	assert_non_null(vm_of(&m, 2));
	assert_false(vm_of(&m, 2)->destroyed);

	assert_int_equal(mf_model_reap(&m), 0);
	assert_null(vm_of(&m, 1));
	assert_false(map_has(mp->fds.vm_hot, 1));
	assert_false(map_has(mp->fds.dead_vms, 1));
	assert_true(map_has(mp->fds.vm_info, kvm));	/* VM 2's */
	assert_true(map_has(mp->fds.vm_hot, 2));
	mf_model_free(&m);
}

/* Without the hook, a VM counts as destroyed once its VMM has exited. */
static void test_destroyed_with_process(void **state)
{
	struct maps *mp = *state;
	const __u64 live = 0xffff888000002000ULL, dead = 0xffff888000003000ULL;
	struct mf_model m;
	const struct mf_vm *vm;

	assert_int_equal(mf_model_init(&m, &mp->fds, 30, true), 0);
	put_info(mp->fds.vm_info, live, 10, getpid());
	put_info(mp->fds.vm_info, dead, 11, gone_pid());
	put_hot(mp, 10, 1);
	put_hot(mp, 11, 4);
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 11);
	assert_non_null(vm);
	assert_true(vm->destroyed);
	assert_int_equal(vm->cur->exits[2], 4);
	assert_false(vm_of(&m, 10)->destroyed);

	assert_int_equal(mf_model_reap(&m), 0);
	assert_null(vm_of(&m, 11));
	assert_false(map_has(mp->fds.vm_info, dead));
	assert_false(map_has(mp->fds.vm_hot, 11));
	assert_true(map_has(mp->fds.vm_info, live));

	/* Reported once: the next refresh no longer knows it. */
	assert_int_equal(mf_model_refresh(&m), 0);
	assert_null(vm_of(&m, 11));
	mf_model_free(&m);
}

/*
 * A VM with a slot is read from vm_hot_slots and vm_cold_slots (through a
 * system call when its mapped entry is being changed), beside one counted
 * in the vm_hot and vm_cold hashes; reaped, its slot is zeroed and given
 * back to the BPF side.
 */
static void test_slots(void **state)
{
	struct maps *mp = *state;
	const __u64 kvm = 0xffff888000005000ULL, other = 0xffff888000006000ULL;
	struct mf_vm_info info = { .id = 20, .pid = (__u32)gone_pid(), .slot = 3 };
	struct mf_vm_hot *hot = calloc((size_t)mp->ncpus, sizeof(*hot));
	struct mf_vm_cold *cold = calloc(1, sizeof(*cold));
	const __u32 index = 2;
	struct mf_model m;
	const struct mf_vm *vm;

	assert_non_null(hot);
	assert_non_null(cold);
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_info, &kvm, &info, BPF_ANY), 0);
	mp->fds.slots_used[0] = 1ULL << index | 1;	/* slot 0: another VM's */
	hot[0].exits[2] = 7;
	hot[0].traffic = 1;
	hot[mp->ncpus - 1].exits[2] += 2;
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_hot_slots, &index, hot, BPF_ANY), 0);
	cold->hist[MF_FAULT_PRIVATE].count = 5;
	cold->changes_begun = 1;	/* a change under way: every copy is torn */
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_cold_slots, &index, cold, BPF_ANY), 0);
	put_info(mp->fds.vm_info, other, 21, getpid());
	put_hot(mp, 21, 4);
	cold->hist[MF_FAULT_PRIVATE].count = 6;
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_cold, &(__u64){ 21 }, cold, BPF_ANY), 0);

	assert_int_equal(mf_model_init(&m, &mp->fds, 30, true), 0);
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 20);
	assert_non_null(vm);
	assert_true(vm->destroyed);
	assert_int_equal(vm->cur->exits[2], 9);
	assert_int_equal(vm->cur->hist[MF_FAULT_PRIVATE].count, 5);
	assert_int_equal(vm_of(&m, 21)->cur->exits[2], 4);
	assert_int_equal(vm_of(&m, 21)->cur->hist[MF_FAULT_PRIVATE].count, 6);

	assert_int_equal(mf_model_reap(&m), 0);
	assert_int_equal(mp->fds.slots_used[0], 1);
	assert_int_equal(bpf_map_lookup_elem(mp->fds.vm_hot_slots, &index, hot), 0);
	for (int cpu = 0; cpu < mp->ncpus; cpu++)
		assert_int_equal(hot[cpu].exits[2], 0);
	assert_int_equal(bpf_map_lookup_elem(mp->fds.vm_cold_slots, &index, cold), 0);
	assert_int_equal(cold->hist[MF_FAULT_PRIVATE].count, 0);
	assert_int_equal(vm_of(&m, 21)->cur->exits[2], 4);
	free(hot);
	free(cold);
	mf_model_free(&m);
}

/* A filtered-out VM of an exited VMM leaves vm_info too, unreported. */
static void test_filtered_out_forgotten(void **state)
{
	struct maps *mp = *state;
	const __u64 kvm = 0xffff888000004000ULL;
	struct mf_vm_info info = { .id = 0, .pid = (__u32)gone_pid(), .filtered_out = 1 };
	struct mf_model m;

	assert_int_equal(bpf_map_update_elem(mp->fds.vm_info, &kvm, &info, BPF_ANY), 0);
	assert_int_equal(mf_model_init(&m, &mp->fds, 30, true), 0);
	assert_int_equal(mf_model_refresh(&m), 0);
	for (size_t i = 0; i < m.nr_vms; i++)
		assert_int_not_equal(m.vms[i].pid, (pid_t)info.pid);
	assert_false(map_has(mp->fds.vm_info, kvm));
	mf_model_free(&m);
}

static void put_waits(const struct maps *mp, __u64 vm_id, __u32 vcpu, __u64 count,
		      __u64 total, __u64 max)
{
	struct mf_vcpu_key key = { .vm_id = vm_id, .vcpu_id = vcpu };
	struct mf_vcpu_wait w = { .count = count, .total_ns = total, .max_ns = max };

	assert_int_equal(bpf_map_update_elem(mp->fds.vcpu_waits, &key, &w, BPF_ANY), 0);
}

/* The VM's cold entry says how many waits it has had, as the BPF side keeps it. */
static void put_wait_count(const struct maps *mp, __u64 vm_id, __u64 waits)
{
	struct mf_vm_cold *cold = calloc(1, sizeof(*cold));

	assert_non_null(cold);
	cold->wait[MF_FAULT_PRIVATE].count = waits;
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_cold, &vm_id, cold, BPF_ANY), 0);
	free(cold);
}

/*
 * Per-vCPU waits are read when the VM's waits moved, with interval deltas;
 * the worst vCPUs come by total (in the interval or since start) or by
 * longest wait; a destroyed VM's entries go with it.
 */
static void test_vcpu_waits(void **state)
{
	const struct maps *mp = *state;
	const struct mf_vcpu *top[2];
	const struct mf_vm *vm;
	struct mf_model m;
	__u64 hot_io = 1;

	assert_int_equal(mf_model_init(&m, &mp->fds, 30, false), 0);
	put_info(mp->fds.vm_info, 0x1000, 7, getpid());
	put_hot(mp, 7, hot_io);
	put_wait_count(mp, 7, 6);
	put_waits(mp, 7, 0, 1, 500, 500);
	put_waits(mp, 7, 3, 2, 300, 200);
	put_waits(mp, 7, 9, 3, 900, 400);
	put_waits(mp, 8, 0, 1, 1, 1);	/* another VM's: not in this VM's slice */
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 7);
	assert_non_null(vm);
	assert_int_equal(vm->nr_vcpus, 3);
	assert_int_equal(mf_vm_worst_vcpus(&m, vm, false, true, top, 2), 2);
	assert_int_equal(top[0]->vcpu_id, 9);
	assert_int_equal(top[1]->vcpu_id, 0);
	assert_int_equal(mf_vm_worst_vcpus(&m, vm, true, false, top, 2), 2);
	assert_int_equal(top[0]->vcpu_id, 0);
	assert_int_equal(top[1]->vcpu_id, 9);

	/* vCPU 3 waits again: only it moved in the next interval. */
	put_waits(mp, 7, 3, 3, 1300, 1000);
	put_hot(mp, 7, ++hot_io);
	put_wait_count(mp, 7, 7);
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 7);
	assert_int_equal(mf_vm_worst_vcpus(&m, vm, false, true, top, 2), 1);
	assert_int_equal(top[0]->vcpu_id, 3);
	assert_int_equal(top[0]->cur.total_ns - top[0]->prev.total_ns, 1000);
	assert_int_equal(mf_vm_worst_vcpus(&m, vm, false, false, top, 2), 2);
	assert_int_equal(top[0]->vcpu_id, 3);
	assert_int_equal(top[1]->vcpu_id, 9);

	/* Nothing moved: deltas are zero and nothing is re-read. */
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 7);
	assert_int_equal(mf_vm_worst_vcpus(&m, vm, false, true, top, 2), 0);
	assert_int_equal(vm->nr_vcpus, 3);

	/* Destroyed: reported, then its vCPU entries are deleted. */
	m.vms[0].destroyed = true;
	assert_int_equal(mf_model_reap(&m), 0);
	{
		struct mf_vcpu_key key = { .vm_id = 7, .vcpu_id = 9 }, other = { .vm_id = 8 };
		struct mf_vcpu_wait w;

		assert_int_not_equal(bpf_map_lookup_elem(mp->fds.vcpu_waits, &key, &w), 0);
		assert_int_equal(bpf_map_lookup_elem(mp->fds.vcpu_waits, &other, &w), 0);
	}
	mf_model_free(&m);
}

/*
 * A VM whose first exit comes after the refresh read vm_info, but before it
 * read the ranges: its ranges are not taken then, so that all of them count
 * in the delta of the refresh that knows the VM (its logged key is read
 * again then, as every key of the last refresh is).
 */
static void test_ranges_of_late_vm(void **state)
{
	const struct maps *mp = *state;
	struct mf_range_key key = { .vm_id = 8, .kind = MF_MAP_TO_PRIVATE, .range = 1 };
	struct mf_range_val *val = calloc((size_t)mp->ncpus, sizeof(*val));
	struct mf_vm_cold *cold = calloc(1, sizeof(*cold));
	const struct mf_vm *vm;
	struct mf_model m;

	assert_non_null(val);
	assert_non_null(cold);
	assert_int_equal(mf_model_init(&m, &mp->fds, 30, false), 0);
	put_info(mp->fds.vm_info, 0x1000, 7, getpid());
	put_hot(mp, 7, 1);
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_cold, &(__u64){ 7 }, cold, BPF_ANY), 0);
	val[0].count = 3;
	val[0].bytes = 3 * 4096;
	assert_int_equal(bpf_map_update_elem(mp->fds.gpa_ranges, &key, val, BPF_ANY), 0);
	test_maps_log_change(&mp->fds, MF_CHANGED_RANGE, 8, key.kind, key.range);
	key.vm_id = 7;
	assert_int_equal(bpf_map_update_elem(mp->fds.gpa_ranges, &key, val, BPF_ANY), 0);
	test_maps_log_change(&mp->fds, MF_CHANGED_RANGE, 7, key.kind, key.range);
	key.vm_id = 8;
	assert_int_equal(mf_model_refresh(&m), 0);
	assert_int_equal(m.nr_ranges, 1);
	assert_int_equal(m.ranges[0].vm_id, 7);

	put_info(mp->fds.vm_info, 0x2000, 8, getpid());
	put_hot(mp, 8, 1);
	cold->hist[MF_MAP_TO_PRIVATE].count = 3;
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_cold, &key.vm_id, cold, BPF_ANY), 0);
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 8);
	assert_non_null(vm);
	assert_int_equal(vm->nr_ranges, 1);
	assert_int_equal(m.ranges[vm->first_range].count - m.ranges[vm->first_range].prev_count, 3);
	mf_model_free(&m);
	free(val);
	free(cold);
}

static void put_flips(const struct maps *mp, __u64 vm_id, __u64 range, __u64 flips, bool logged)
{
	const struct mf_flip_key key = { .vm_id = vm_id, .range = range };
	const struct mf_flip_val val = { .flips = flips, .dir = 1 };

	assert_int_equal(bpf_map_update_elem(mp->fds.range_flips, &key, &val, BPF_ANY), 0);
	if (logged)
		test_maps_log_change(&mp->fds, MF_CHANGED_FLIP, vm_id, 0, range);
}

static __u64 flips_delta(const struct mf_model *m, __u64 vm_id)
{
	const struct mf_vm *vm = vm_of(m, vm_id);

	assert_non_null(vm);
	return m->flips[vm->first_flip].flips - m->flips[vm->first_flip].prev_flips;
}

/*
 * Flips are read by their logged keys, and again at the next refresh (an
 * update racing with a read lands after it), with last refresh's as the
 * base; a full log means both maps are read whole. A VM is named from the
 * command line the kernel captured even when its VMM is gone; reaping
 * forgets both.
 */
static void test_flips_and_cmdline(void **state)
{
	struct maps *mp = *state;
	static const char cmdline[] = "qemu\0-name\0guest=ghost,debug-threads=on\0";
	struct mf_cmdline *c = calloc(1, sizeof(*c));
	const struct mf_flip_key key = { .vm_id = 4, .range = 3 };
	const __u32 overflows = MF_CHANGES_OVERFLOWS;
	struct mf_model m;
	const struct mf_vm *vm;
	__u64 gen;

	assert_non_null(c);
	c->len = sizeof(cmdline);
	memcpy(c->buf, cmdline, sizeof(cmdline));
	assert_int_equal(mf_model_init(&m, &mp->fds, 21, false), 0);
	put_info(mp->fds.vm_info, 0xffff888000004000ULL, 4, gone_pid());
	put_hot(mp, 4, 1);
	assert_int_equal(bpf_map_update_elem(mp->fds.vm_cmdline, &key.vm_id, c, BPF_ANY), 0);
	put_flips(mp, 4, 3, 5, true);
	put_flips(mp, 4, 9, 0, true);
	assert_int_equal(mf_model_refresh(&m), 0);
	vm = vm_of(&m, 4);
	assert_non_null(vm);
	assert_string_equal(vm->ident.name, "ghost");
	assert_int_equal(vm->nr_flips, 2);
	assert_int_equal(m.flips[vm->first_flip].range, 3);
	assert_int_equal(flips_delta(&m, 4), 5);
	assert_int_equal(bpf_map_lookup_elem(mp->fds.change_state, &(__u32){ MF_CHANGES_GEN }, &gen), 0);
	assert_int_equal(gen, 1);

	/* Not logged again: read once more as last refresh's key, then not. */
	put_flips(mp, 4, 3, 7, false);
	assert_int_equal(mf_model_refresh(&m), 0);
	assert_int_equal(flips_delta(&m, 4), 2);
	put_flips(mp, 4, 3, 8, false);
	assert_int_equal(mf_model_refresh(&m), 0);
	assert_int_equal(flips_delta(&m, 4), 0);
	/* The log overflowed: the whole map is read. */
	assert_int_equal(bpf_map_update_elem(mp->fds.change_state, &overflows, &(__u64){ 1 }, BPF_ANY), 0);
	assert_int_equal(mf_model_refresh(&m), 0);
	assert_int_equal(flips_delta(&m, 4), 1);
	put_flips(mp, 4, 3, 10, true);
	assert_int_equal(mf_model_refresh(&m), 0);
	assert_int_equal(flips_delta(&m, 4), 2);

	vm = vm_of(&m, 4);
	put_info(mp->fds.dead_vms, 4, 4, vm->pid);
	assert_int_equal(mf_model_refresh(&m), 0);
	assert_int_equal(mf_model_reap(&m), 0);
	assert_int_equal(m.nr_flips, 0);
	assert_int_not_equal(bpf_map_lookup_elem(mp->fds.range_flips, &key, &(struct mf_flip_val){ 0 }), 0);
	assert_false(map_has(mp->fds.vm_cmdline, 4));
	mf_model_free(&m);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_destroyed_by_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vcpu_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ranges_of_late_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroyed_with_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filtered_out_forgotten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flips_and_cmdline, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
