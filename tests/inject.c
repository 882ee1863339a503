// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mf-inject: feeds synthetic KVM exits through memfaulttop's own BPF
 * aggregation (the inject_exit program, run with BPF_PROG_TEST_RUN) and
 * prints one report with the frontend's text or JSON output. This proves
 * the paths this host's kernel cannot produce: private memory faults,
 * unknown flag bits, MAP_GPA_RANGE requests.
 *
 * Input, one exit per line on stdin ('#' starts a comment):
 *   vm=N pid=N vcpu=N reason=N err=N flags=N gpa=N size=N nr=N pages=N attrs=N repeat=N
 * every key optional (numbers in C syntax); gpa/pages/attrs fill the
 * hypercall arguments when reason=3, gpa/size/flags the memory fault
 * when reason=39. A line "report" prints a report of the exits since the
 * last one; one more is printed at the end. A line "stats" prints on
 * stderr this process's resident memory and the entries of every map.
 *
 * --destroyed-with-process: a VM counts as destroyed once no process has
 * its pid, as memfaulttop does where kvm_destroy_vm cannot be traced.
 * --slots N: at most N VMs (a multiple of 64) count in slots, the rest
 * in the hash, as on a host with many CPUs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "model.h"
#include "opts.h"
#include "output.h"
#include "skel.h"

struct line {
	struct mf_exit e;
	__u64 repeat;
};

static int parse_line(char *text, struct line *l, int lineno)
{
	char *tok, *save = NULL;

	*l = (struct line){ .repeat = 1 };
	for (tok = strtok_r(text, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		char *eq = strchr(tok, '='), *end;
		unsigned long long v;

		if (!eq)
			goto bad;
		*eq = '\0';
		errno = 0;
		v = strtoull(eq + 1, &end, 0);
		if (errno || end == eq + 1 || *end)
			goto bad;
		if (!strcmp(tok, "vm"))
			l->e.kvm = v;
		else if (!strcmp(tok, "pid"))
			l->e.pid = (__u32)v;
		else if (!strcmp(tok, "vcpu"))
			l->e.vcpu_id = (__u32)v;
		else if (!strcmp(tok, "reason"))
			l->e.reason = (__u32)v;
		else if (!strcmp(tok, "err"))
			l->e.err = (__s32)v;
		else if (!strcmp(tok, "flags"))
			l->e.fault_flags = v;
		else if (!strcmp(tok, "gpa"))
			l->e.fault_gpa = l->e.hc_args[0] = v;
		else if (!strcmp(tok, "size"))
			l->e.fault_size = v;
		else if (!strcmp(tok, "nr"))
			l->e.hc_nr = v;
		else if (!strcmp(tok, "pages"))
			l->e.hc_args[1] = v;
		else if (!strcmp(tok, "attrs"))
			l->e.hc_args[2] = v;
		else if (!strcmp(tok, "repeat"))
			l->repeat = v;
		else
			goto bad;
	}
	if (!l->e.kvm) {
		fprintf(stderr, "mf-inject: line %d: vm=N (non-zero) is required\n", lineno);
		return -EINVAL;
	}
	return 0;
bad:
	fprintf(stderr, "mf-inject: line %d: bad token '%s' (want key=number)\n", lineno, tok);
	return -EINVAL;
}

static int inject(int prog_fd, struct mf_exit *e, __u64 repeat)
{
	LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = e, .ctx_size_in = sizeof(*e));

	for (__u64 i = 0; i < repeat; i++)
		if (bpf_prog_test_run_opts(prog_fd, &run) || run.retval)
			return -errno;
	return 0;
}

static int report(struct mf_model *m, const struct mf_opts *opts)
{
	int err = mf_model_refresh(m);

	if (!err)
		err = opts->output == MF_OUT_JSON ? mf_json_print(stdout, m) : mf_text_print(stdout, m);
	/* As memfaulttop does: a destroyed VM is reported once. */
	if (!err)
		err = mf_model_reap(m);
	if (err)
		fprintf(stderr, "mf-inject: cannot report: %s\n", strerror(-err));
	return err;
}

static long entries(int fd, size_t key_size)
{
	char key[64], next[64];
	long n = 0;
	void *prev = NULL;

	if (key_size > sizeof(key))
		return -1;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	return n;
}

static long rss_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static long taken_slots(const struct mf_map_fds *fds)
{
	long n = 0;

	for (int w = 0; w < MF_MAX_VMS / 64; w++)
		n += __builtin_popcountll(__atomic_load_n(&fds->slots_used[w], __ATOMIC_RELAXED));
	return n;
}

/* One line: what a long run must keep flat (memory) and empty (maps). */
static void stats(const struct mf_map_fds *fds)
{
	fprintf(stderr, "mf-inject: stats rss_kib %ld vm_info %ld dead_vms %ld vm_hot %ld"
		" slots %ld vm_cold %ld gpa_ranges %ld range_flips %ld vm_cmdline %ld\n",
		rss_kib(),
		entries(fds->vm_info, sizeof(__u64)), entries(fds->dead_vms, sizeof(__u64)),
		entries(fds->vm_hot, sizeof(__u64)), taken_slots(fds),
		entries(fds->vm_cold, sizeof(__u64)),
		entries(fds->gpa_ranges, sizeof(struct mf_range_key)),
		entries(fds->range_flips, sizeof(struct mf_flip_key)),
		entries(fds->vm_cmdline, sizeof(__u64)));
}

static void usage(void)
{
	fprintf(stderr, "usage: mf-inject [--json] [--gpa-range SIZE] [--destroyed-with-process]"
		" [--slots N] < exits\n");
}

int main(int argc, char **argv)
{
	struct mf_opts opts = { .gpa_shift = 30, .output = MF_OUT_TEXT };
	struct memfault *skel;
	struct mf_model model;
	struct mf_map_fds fds;
	char buf[1024];
	int lineno = 0, err;
	__u64 injected = 0;
	bool with_process = false;
	unsigned long nr_slots = MF_MAX_VMS;
	char *end;

	for (int i = 1; i < argc; i++) {
		uint64_t bytes;

		if (!strcmp(argv[i], "--json")) {
			opts.output = MF_OUT_JSON;
		} else if (!strcmp(argv[i], "--destroyed-with-process")) {
			with_process = true;
		} else if (!strcmp(argv[i], "--slots") && i + 1 < argc &&
			   (nr_slots = strtoul(argv[i + 1], &end, 10), !*end && end != argv[i + 1])) {
			i++;
		} else if (!strcmp(argv[i], "--gpa-range") && i + 1 < argc &&
			   !mf_parse_size(argv[i + 1], &bytes) && bytes && !(bytes & (bytes - 1))) {
			opts.gpa_shift = (unsigned int)__builtin_ctzll(bytes);
			i++;
		} else {
			usage();
			return 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "mf-inject: needs root to load BPF programs\n");
		return 77;
	}

	skel = mf_skel_open_injector(opts.gpa_shift, nr_slots, "mf-inject");
	if (!skel)
		return 1;

	fds = mf_skel_map_fds(skel);
	/* Started first: the report's interval is the injection time. */
	err = mf_model_init(&model, &fds, opts.gpa_shift, with_process);
	if (err) {
		fprintf(stderr, "mf-inject: cannot count CPUs: %s\n", strerror(-err));
		goto out;
	}

	while (fgets(buf, sizeof(buf), stdin)) {
		char *text = buf + strspn(buf, " \t");
		struct line l;

		lineno++;
		text[strcspn(text, "#")] = '\0';
		if (!text[strspn(text, " \t\n")])
			continue;
		if (!strncmp(text, "stats", 5) && !text[5 + strspn(text + 5, " \t\n")]) {
			stats(&fds);
			continue;
		}
		if (!strncmp(text, "report", 6) && !text[6 + strspn(text + 6, " \t\n")]) {
			err = report(&model, &opts);
			if (err)
				goto out_model;
			continue;
		}
		err = parse_line(buf, &l, lineno);
		if (err)
			goto out_model;
		err = inject(bpf_program__fd(skel->progs.inject_exit), &l.e, l.repeat);
		if (err) {
			fprintf(stderr, "mf-inject: line %d: BPF_PROG_TEST_RUN failed: %s\n", lineno,
				strerror(-err));
			goto out_model;
		}
		injected += l.repeat;
	}

	err = report(&model, &opts);
	if (!err)
		fprintf(stderr, "mf-inject: %llu exits injected\n", (unsigned long long)injected);
out_model:
	mf_model_free(&model);
out:
	memfault__destroy(skel);
	return err ? 1 : 0;
}
