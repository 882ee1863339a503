// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* memfaulttop: KVM memory-fault exits and conversion requests per VM. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "live.h"
#include "memfault.skel.h"
#include "model.h"
#include "opts.h"
#include "output.h"
#include "probe.h"
#include "skel.h"

static volatile sig_atomic_t exiting;
static bool verbose;

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* No SA_RESTART: the sleep between reports must end on a signal. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return -errno;
	/* A closed pipe shows up as a write error, handled where it happens. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int set_pid_filter(struct memfault *skel, const struct mf_opts *opts)
{
	__u8 one = 1;

	for (int i = 0; i < opts->nr_pids; i++) {
		__u32 pid = (__u32)opts->pids[i];

		if (bpf_map__update_elem(skel->maps.pid_filter, &pid, sizeof(pid), &one,
					 sizeof(one), BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Loads and attaches; errors are printed unless this is a trial. */
static struct memfault *open_and_attach(const struct mf_opts *opts,
					const struct mf_kernel_features *feat, bool destroy_hook,
					bool trial)
{
	struct memfault *skel = memfault__open();
	int err;

	if (!skel) {
		if (!trial)
			fprintf(stderr, "memfaulttop: cannot open the BPF object: %s\n", strerror(errno));
		return NULL;
	}
	skel->rodata->gpa_shift = opts->gpa_shift;
	skel->rodata->filter_pids = opts->nr_pids > 0;
	skel->rodata->rdonly_void_cast = feat->rdonly_void_cast;
	/* The injection program is for tests and benchmarks only. */
	bpf_program__set_autoload(skel->progs.inject_exit, false);
	bpf_program__set_autoload(skel->progs.forget_vm, destroy_hook);

	err = memfault__load(skel);
	if (err) {
		if (!trial)
			fprintf(stderr, "memfaulttop: cannot load the BPF programs: %s;"
				" run with -v to see the verifier log\n", strerror(-err));
		goto fail;
	}
	err = set_pid_filter(skel, opts);
	if (err) {
		if (!trial)
			fprintf(stderr, "memfaulttop: cannot set the -p filter: %s\n", strerror(-err));
		goto fail;
	}
	err = memfault__attach(skel);
	if (err) {
		if (!trial)
			fprintf(stderr, "memfaulttop: cannot attach to KVM's exit path"
				" (tracepoint kvm_userspace_exit): %s\n", strerror(-err));
		goto fail;
	}
	return skel;
fail:
	memfault__destroy(skel);
	return NULL;
}

/* Sleeps until deadline (CLOCK_MONOTONIC); false if a signal cut it short. */
static bool sleep_until(const struct timespec *deadline)
{
	while (!exiting) {
		int err = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL);

		if (!err)
			return true;
		if (err != EINTR)
			return false;
	}
	return false;
}

static void timespec_add(struct timespec *ts, double seconds)
{
	long long ns = ts->tv_nsec + (long long)(seconds * 1e9);

	ts->tv_sec += ns / 1000000000LL;
	ts->tv_nsec = ns % 1000000000LL;
}

static int report(struct mf_model *m, const struct mf_opts *opts)
{
	int err = mf_model_refresh(m);

	if (err) {
		fprintf(stderr, "memfaulttop: cannot read the BPF maps: %s\n", strerror(-err));
		return err;
	}
	err = opts->output == MF_OUT_JSON ? mf_json_print(stdout, m) : mf_text_print(stdout, m);
	if (err)
		return err;
	err = mf_model_reap(m);
	if (err)
		fprintf(stderr, "memfaulttop: cannot forget destroyed VMs: %s\n", strerror(-err));
	return err;
}

static int run_periodic(struct mf_model *m, const struct mf_opts *opts)
{
	struct timespec next, end;
	bool has_end = opts->duration_s > 0;
	long reports = 0;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &next);
	end = next;
	timespec_add(&end, opts->duration_s);
	for (;;) {
		bool last;

		timespec_add(&next, opts->interval_s);
		if (has_end && (next.tv_sec > end.tv_sec ||
				(next.tv_sec == end.tv_sec && next.tv_nsec > end.tv_nsec)))
			next = end;
		/* Interrupted or not, the interval so far is reported: no
		 * counted exit is lost at the end. */
		last = !sleep_until(&next);
		err = report(m, opts);
		if (err)
			return err == -EIO && errno == EPIPE ? 0 : err;
		reports++;
		if (last || (opts->count && reports >= opts->count) ||
		    (has_end && next.tv_sec == end.tv_sec && next.tv_nsec == end.tv_nsec))
			return 0;
	}
}

int main(int argc, char **argv)
{
	struct mf_kernel_features feat;
	struct mf_opts opts;
	struct memfault *skel;
	struct mf_model model;
	struct mf_map_fds fds;
	int err;

	err = mf_parse_args(argc, argv, &opts);
	if (err)
		return err > 0 ? 0 : 2;
	verbose = opts.verbose;
	libbpf_set_print(libbpf_print);

	if (geteuid() != 0) {
		fprintf(stderr, "memfaulttop: needs root (CAP_BPF and CAP_PERFMON); run it with sudo\n");
		return 1;
	}
	if (mf_probe_kernel(&feat))
		return 1;
	err = install_signals();
	if (err) {
		fprintf(stderr, "memfaulttop: cannot install signal handlers: %s\n", strerror(-err));
		return 1;
	}

	skel = NULL;
	if (feat.user.available[MF_FEAT_DESTROY_HOOK]) {
		/* Probed already, unless kvm is a module: a failure is no error. */
		libbpf_set_print(opts.verbose ? libbpf_print : NULL);
		skel = open_and_attach(&opts, &feat, true, true);
		libbpf_set_print(libbpf_print);
	}
	if (!skel)
		skel = open_and_attach(&opts, &feat, false, false);
	if (!skel)
		return 1;
	feat.user.available[MF_FEAT_DESTROY_HOOK] = skel->links.forget_vm != NULL;
	mf_features_print_missing(stderr, "memfaulttop: ", &feat.user);
	/* Parsing the kernel's BTF leaves ~10 MiB of freed heap: give it back
	 * to the system, as a monitor runs for a long time. */
	malloc_trim(0);
	fds = mf_skel_map_fds(skel);
	err = mf_model_init(&model, &fds, opts.gpa_shift, !skel->links.forget_vm);
	if (err) {
		fprintf(stderr, "memfaulttop: cannot count CPUs: %s\n", strerror(-err));
		memfault__destroy(skel);
		return 1;
	}
	model.features = &feat.user;
	fprintf(stderr, "memfaulttop: tracing KVM exits of %s; Ctrl-C to end\n",
		opts.nr_pids ? "the -p processes" : "all VMs");

	/* The live view is for people: a terminal on stdout and no -j or -b. */
	if (opts.output == MF_OUT_AUTO && isatty(STDOUT_FILENO))
		err = mf_live_run(&model, &opts, &exiting);
	else
		err = run_periodic(&model, &opts);

	mf_model_free(&model);
	memfault__destroy(skel);
	return err ? 1 : 0;
}
