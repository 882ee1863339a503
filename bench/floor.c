// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * floor: loads and attaches bench/floor.bpf.c, says so on stderr, then
 * waits for SIGINT/SIGTERM (or --duration) and prints the exits it
 * counted. The benchmark's reference for the least a BPF tool can cost.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "floor.skel.h"

static volatile sig_atomic_t exiting;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned int seconds = argc > 1 ? (unsigned int)strtoul(argv[1], NULL, 10) : 0;
	struct floor_bpf *skel;
	__u32 key = 0;
	int ncpus, err;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "floor: cannot load: %s\n", strerror(errno));
		return 1;
	}
	err = floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "floor: cannot attach to kvm_userspace_exit: %s\n", strerror(-err));
		floor_bpf__destroy(skel);
		return 1;
	}
	fprintf(stderr, "floor: tracing KVM exits\n");

	if (seconds)
		alarm(seconds);
	sigaction(SIGALRM, &sa, NULL);
	while (!exiting)
		pause();

	ncpus = libbpf_num_possible_cpus();
	if (ncpus > 0) {
		__u64 values[ncpus], total = 0;

		if (!bpf_map__lookup_elem(skel->maps.exits, &key, sizeof(key), values,
					  sizeof(values), 0))
			for (int i = 0; i < ncpus; i++)
				total += values[i];
		printf("{\"exits\":%llu}\n", (unsigned long long)total);
	}
	floor_bpf__destroy(skel);
	return 0;
}
