// SPDX-License-Identifier: GPL-2.0
/*
 * loadgen: V VMs x C vCPUs, each vCPU making real KVM userspace exits of
 * one kind as fast as it can for a fixed time, to measure what tracing
 * the exits costs. Uses the test guests of tests/vmm/kvmvm.c in their
 * "forever" mode; a vCPU stops simply by not being re-entered. memfault
 * re-enters one faulting write (KVM_RUN -1/EFAULT, exit 39) again and again.
 * convert runs no guest: each thread flips one page of a SW-protected VM
 * between private and shared with KVM_SET_MEMORY_ATTRIBUTES, to measure
 * what tracing conversions costs next to the ioctl itself; its "exits" are
 * conversions.
 */
#define _GNU_SOURCE
#include "../tests/vmm/kvmvm.h"
#include "../tests/vmm/swprot.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define EXIT_USAGE   2
#define MAX_VMS      64
#define MAX_VCPUS    64
#define MAX_DURATION 3600.0
#define MMIO_GPA     0xa0000u

struct vcpu_thread {
	struct kvmvcpu vcpu;
	const struct kvmvm_workload *w;
	enum kvmvm_event want;
	pthread_t tid;
	bool started;
	bool failed;
	uint64_t exits;     /* every KVM_RUN return while running */
	int convert_fd;     /* kind convert: the VM to convert in, else -1 */
	uint64_t convert_gpa;
};

static atomic_bool stop;
static pthread_rwlock_t gate = PTHREAD_RWLOCK_INITIALIZER;

static void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct kvmvm_exit e;

	/* Start when the main thread releases the gate. */
	pthread_rwlock_rdlock(&gate);
	pthread_rwlock_unlock(&gate);
	while (t->convert_fd >= 0 && !atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct kvmvm_memory_attributes a = {
			.address = t->convert_gpa, .size = KVMVM_PAGE_SIZE,
			.attributes = t->exits % 2 ? 0 : KVMVM_MEMORY_ATTRIBUTE_PRIVATE,
		};

		if (ioctl(t->convert_fd, KVMVM_SET_MEMORY_ATTRIBUTES, &a) < 0) {
			perror("loadgen: KVM_SET_MEMORY_ATTRIBUTES");
			t->failed = true;
			return NULL;
		}
		t->exits++;
	}
	while (t->convert_fd < 0 && !atomic_load_explicit(&stop, memory_order_relaxed)) {
		kvmvm_run_vcpu(&t->vcpu, t->w, &e);
		t->exits++;
		if (e.ev != t->want && e.ev != KVMVM_EV_INTR) {
			kvmvm_report(&t->vcpu, &e);
			t->failed = true;
			break;
		}
	}
	return NULL;
}

static _Noreturn void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: loadgen [--vms V] [--vcpus C] [--duration SECONDS] "
		"[--kind io|mmio|map|memfault|convert]\n"
		"  V VMs (default 1, max %d) x C vCPUs (default 1, max %d), each in a\n"
		"  tight loop of real KVM userspace exits of one kind (default io)\n"
		"  for SECONDS (default 5); prints one JSON object.\n"
		"exit status: 0 ok, 1 runtime failure, 2 bad usage or a kind this\n"
		"kernel cannot produce\n", MAX_VMS, MAX_VCPUS);
	exit(status);
}

static uint32_t parse_count(const char *opt, const char *s, uint32_t max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < 1 || v > max) {
		fprintf(stderr, "loadgen: %s: '%s' is not a number in [1, %" PRIu32 "]\n",
			opt, s, max);
		exit(EXIT_USAGE);
	}
	return (uint32_t)v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_json(const char *kind, uint32_t nr_vms, uint32_t nr_vcpus,
		       double elapsed, const struct vcpu_thread *threads)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < nr_vms * nr_vcpus; i++)
		total += threads[i].exits;
	printf("{\"kind\":\"%s\",\"vms\":%" PRIu32 ",\"vcpus_per_vm\":%" PRIu32
	       ",\"duration_s\":%.3f,\"exits\":%" PRIu64 ",\"exits_per_sec\":%.0f"
	       ",\"per_vm\":[", kind, nr_vms, nr_vcpus, elapsed, total,
	       (double)total / elapsed);
	for (uint32_t v = 0; v < nr_vms; v++) {
		uint64_t n = 0;

		for (uint32_t i = 0; i < nr_vcpus; i++)
			n += threads[v * nr_vcpus + i].exits;
		printf("%s{\"index\":%" PRIu32 ",\"exits\":%" PRIu64
		       ",\"exits_per_sec\":%.0f}", v ? "," : "", v, n, (double)n / elapsed);
	}
	printf("]}\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vms", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "kind", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint32_t nr_vms = 1, nr_vcpus = 1;
	double duration = 5.0;
	const char *kind = "io";
	struct kvmvm_workload w = { .forever = true };
	enum kvmvm_event want;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			nr_vms = parse_count("--vms", optarg, MAX_VMS);
			break;
		case 'c':
			nr_vcpus = parse_count("--vcpus", optarg, MAX_VCPUS);
			break;
		case 'd':
			errno = 0;
			duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(duration > 0) ||
			    duration > MAX_DURATION) {
				fprintf(stderr, "loadgen: --duration: '%s' is not a number of "
					"seconds in (0, %.0f]\n", optarg, MAX_DURATION);
				return EXIT_USAGE;
			}
			break;
		case 'k':
			kind = optarg;
			break;
		case 'h':
			usage(0);
		default:
			usage(EXIT_USAGE);
		}
	}
	if (optind < argc)
		usage(EXIT_USAGE);

	if (!strcmp(kind, "io")) {
		w.io = 1;
		want = KVMVM_EV_IO;
	} else if (!strcmp(kind, "mmio")) {
		w.mmio = 1;
		w.nr_mmio_gpas = 1;
		w.mmio_gpa[0] = MMIO_GPA;
		want = KVMVM_EV_MMIO;
	} else if (!strcmp(kind, "map")) {
		int r = kvmvm_probe_map_gpa_range();

		if (r <= 0)
			return r == 0 ? EXIT_USAGE : 1;
		w.map_private = 1;
		w.map_pages = 1;
		want = KVMVM_EV_MAP_PRIVATE;
	} else if (!strcmp(kind, "memfault")) {
		/* One write to a released guest_memfd page, retried forever. */
		w.memory_faults = 1;
		w.fault_pages = 1;
		w.fault_gpa = KVMVM_FAULT_GPA;
		w.fault_stride = KVMVM_PAGE_SIZE;
		want = KVMVM_EV_MEMORY_FAULT;
	} else if (!strcmp(kind, "convert")) {
		int r = swprot_probe();

		if (r <= 0)
			return r == 0 ? EXIT_USAGE : 1;
		/* A SW-protected VM, no guest: threads convert, vCPUs never run. */
		w.private_rounds = 1;
		want = KVMVM_EV_UNEXPECTED;
	} else {
		fprintf(stderr, "loadgen: --kind: '%s' is not io, mmio, map, memfault or "
			"convert\n", kind);
		return EXIT_USAGE;
	}

	uint32_t nr_threads = nr_vms * nr_vcpus;
	struct kvmvm *vms = calloc(nr_vms, sizeof(*vms));
	struct vcpu_thread *threads = calloc(nr_threads, sizeof(*threads));
	uint32_t nr_setup = 0, nr_vcpus_setup = 0, nr_started = 0;
	bool ok = vms && threads;

	if (!ok)
		fprintf(stderr, "loadgen: out of memory for %" PRIu32 " vCPUs\n", nr_threads);
	/* kvmvm_create() leaves a destroyable VM even when it fails. */
	while (ok && nr_setup < nr_vms) {
		struct kvmvm *vm = &vms[nr_setup++];

		if (w.private_rounds) {
			ok = kvmvm_create_for(vm, &w) == 0;
			for (uint32_t i = 0; ok && i < nr_vcpus; i++) {
				struct vcpu_thread *t = &threads[(nr_setup - 1) * nr_vcpus + i];

				t->convert_fd = vm->vm_fd;
				t->convert_gpa = (uint64_t)i * KVMVM_PAGE_SIZE;
			}
			continue;
		}
		ok = kvmvm_create(vm) == 0 &&
		     (!w.map_private || kvmvm_enable_map_gpa_range_exit(vm) == 0) &&
		     kvmvm_load(vm, &w) == 0;
		for (uint32_t i = 0; ok && i < nr_vcpus; i++) {
			struct vcpu_thread *t = &threads[nr_vcpus_setup];

			t->w = &w;
			t->want = want;
			t->convert_fd = -1;
			ok = kvmvm_create_vcpu(vm, &t->vcpu, i) == 0;
			nr_vcpus_setup += ok;
		}
	}

	/* Held while threads are created so that all vCPUs start together. */
	pthread_rwlock_wrlock(&gate);
	for (uint32_t i = 0; ok && i < nr_threads; i++) {
		int err = pthread_create(&threads[i].tid, NULL, vcpu_main, &threads[i]);

		if (err) {
			fprintf(stderr, "loadgen: pthread_create for vCPU thread %" PRIu32
				": %s (lower --vms/--vcpus)\n", i, strerror(err));
			ok = false;
		}
		nr_started += !err;
	}
	atomic_store(&stop, !ok);

	struct timespec ts = {
		.tv_sec = (time_t)duration,
		.tv_nsec = (long)((duration - (double)(time_t)duration) * 1e9),
	};
	double start = now();

	pthread_rwlock_unlock(&gate);
	while (ok && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	atomic_store(&stop, true);
	double elapsed = now() - start;

	for (uint32_t i = 0; i < nr_started; i++) {
		pthread_join(threads[i].tid, NULL);
		ok &= !threads[i].failed;
	}
	if (ok)
		print_json(kind, nr_vms, nr_vcpus, elapsed, threads);

	for (uint32_t i = 0; i < nr_vcpus_setup; i++)
		kvmvm_destroy_vcpu(&threads[i].vcpu);
	for (uint32_t v = 0; v < nr_setup; v++)
		kvmvm_destroy(&vms[v]);
	free(threads);
	free(vms);
	return ok ? 0 : 1;
}
