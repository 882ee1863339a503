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
#include "early_maps.h"
#include "exporter.h"
#include "live.h"
#include "model.h"
#include "opts.h"
#include "output.h"
#include "probe.h"
#include "skel.h"
#include "trace.h"

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

	/* No SA_RESTART: the sleep between reports must end on a signal. A
	 * hang-up (the terminal went away) ends it as cleanly as Ctrl-C. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ||
	    sigaction(SIGHUP, &sa, NULL))
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

/* The optional hooks, by feature: each is loaded where the kernel can trace
 * its functions, attached on its own, and dropped alone if that fails. */
struct hook {
	enum mf_feature feature;
	struct bpf_program *progs[2];
	struct bpf_link **links[2];
};

#define NR_HOOKS 4

static size_t optional_hooks(struct memfault *skel, struct hook hooks[NR_HOOKS])
{
	hooks[0] = (struct hook){ MF_FEAT_DESTROY_HOOK, { skel->progs.forget_vm },
				  { &skel->links.forget_vm } };
	hooks[1] = (struct hook){ MF_FEAT_CONVERSIONS,
				  { skel->progs.vm_ioctl_enter, skel->progs.vm_ioctl_exit },
				  { &skel->links.vm_ioctl_enter, &skel->links.vm_ioctl_exit } };
	hooks[2] = (struct hook){ MF_FEAT_DISCARDS,
				  { skel->progs.gmem_fallocate_enter, skel->progs.gmem_fallocate_exit },
				  { &skel->links.gmem_fallocate_enter, &skel->links.gmem_fallocate_exit } };
	hooks[3] = (struct hook){ MF_FEAT_WAIT_LATENCY, { skel->progs.enter_vcpu_run },
				  { &skel->links.enter_vcpu_run } };
	return NR_HOOKS;
}

/* Opens the object and sets what the options decide; NULL after a message. */
static struct memfault *open_skel(const struct mf_opts *opts)
{
	struct memfault *skel = memfault__open();
	int err;

	if (!skel) {
		fprintf(stderr, "memfaulttop: cannot open the BPF object: %s\n", strerror(errno));
		return NULL;
	}
	skel->rodata->gpa_shift = opts->gpa_shift;
	skel->rodata->filter_pids = opts->nr_pids > 0;
	skel->rodata->trace_events = opts->trace;
	err = mf_skel_size_slots(skel, MF_MAX_VMS);
	if (err) {
		fprintf(stderr, "memfaulttop: cannot size the VM slots: %s\n", strerror(-err));
		memfault__destroy(skel);
		return NULL;
	}
	/* The ring buffer costs its size in kernel memory: a page unless tracing. */
	if (opts->trace && bpf_map__set_max_entries(skel->maps.events, MF_TRACE_BUFFER_BYTES)) {
		fprintf(stderr, "memfaulttop: cannot size the trace ring buffer: %s\n",
			strerror(errno));
		memfault__destroy(skel);
		return NULL;
	}
	/* The injection program is for tests and benchmarks only. */
	bpf_program__set_autoload(skel->progs.inject_exit, false);
	return skel;
}

/* Sets what the probe found: the optional hooks (none unless hooks_on). */
static void set_features(struct memfault *skel, const struct mf_kernel_features *feat,
			 bool hooks_on)
{
	struct hook hooks[NR_HOOKS];
	size_t n = optional_hooks(skel, hooks);

	skel->rodata->rdonly_void_cast = feat->rdonly_void_cast;
	skel->rodata->track_waits = hooks_on && feat->user.available[MF_FEAT_WAIT_LATENCY];
	for (size_t i = 0; i < n; i++)
		for (size_t p = 0; p < 2 && hooks[i].progs[p]; p++)
			bpf_program__set_autoload(hooks[i].progs[p], hooks_on &&
						  feat->user.available[hooks[i].feature]);
}

/* A load failed: marks each hook it tried as missing for that reason;
 * false when it tried none (the failure is the exit path's own). */
static bool fail_hooks(struct memfault *skel, struct mf_kernel_features *feat)
{
	struct hook hooks[NR_HOOKS];
	size_t n = optional_hooks(skel, hooks);
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		if (!bpf_program__autoload(hooks[i].progs[0]))
			continue;
		feat->user.why[hooks[i].feature] = MF_WHY_FAILED;
		any = true;
	}
	return any;
}

/* Attaches the hooks of each loaded feature, all or none; says what failed. */
static void attach_optional(struct memfault *skel, struct mf_kernel_features *feat)
{
	struct hook hooks[NR_HOOKS];
	size_t n = optional_hooks(skel, hooks);

	for (size_t i = 0; i < n; i++) {
		struct hook *h = &hooks[i];
		bool *ok = &feat->user.available[h->feature];

		for (size_t p = 0; *ok && p < 2 && h->progs[p]; p++) {
			if (!bpf_program__autoload(h->progs[p])) {
				*ok = false;
				break;
			}
			*h->links[p] = bpf_program__attach(h->progs[p]);
			if (!*h->links[p]) {
				fprintf(stderr, "memfaulttop: cannot attach %s (%s): %s; going on"
					" without it\n", bpf_program__name(h->progs[p]),
					mf_feature_key[h->feature], strerror(errno));
				*ok = false;
				feat->user.why[h->feature] = MF_WHY_FAILED;
			}
		}
		for (size_t p = 0; !*ok && p < 2 && h->progs[p]; p++) {
			bpf_link__destroy(*h->links[p]);
			*h->links[p] = NULL;
		}
	}
}

/* Opens the object and probes the kernel: libbpf reads the kernel's BTF
 * while the probe runs in its thread (each with its own libbpf object;
 * the ELF is read before), which then makes the object's maps. NULL after
 * a message. */
static struct memfault *open_and_probe(const struct mf_opts *opts,
				       struct mf_kernel_features *feat)
{
	struct memfault *skel = open_skel(opts);
	struct mf_early_maps early;
	struct mf_probe probe;
	int err;

	if (!skel)
		return NULL;
	mf_early_maps_plan(&early, skel->obj);
	mf_probe_start(&probe, feat, mf_early_maps_create, &early);
	mf_skel_read_kernel_btf(skel);
	err = mf_probe_finish(&probe);
	mf_early_maps_adopt(&early);
	if (err) {
		memfault__destroy(skel);
		return NULL;
	}
	return skel;
}

/* Loads skel once with every hook the probe found, and once more without
 * the optional ones should that fail; attaches; errors are printed. */
static struct memfault *load_and_attach(struct memfault *skel, const struct mf_opts *opts,
					struct mf_kernel_features *feat)
{
	int err;

	set_features(skel, feat, true);
	err = memfault__load(skel);
	if (err && fail_hooks(skel, feat)) {
		fprintf(stderr, "memfaulttop: cannot load the optional hooks (%s); going on"
			" without them; run with -v to see the verifier log\n", strerror(-err));
		memfault__destroy(skel);
		skel = open_skel(opts);
		if (!skel)
			return NULL;
		set_features(skel, feat, false);
		err = memfault__load(skel);
	}
	if (err) {
		fprintf(stderr, "memfaulttop: cannot load the BPF programs: %s;"
			" run with -v to see the verifier log\n", strerror(-err));
		goto fail;
	}
	err = mf_skel_has_memory_fault_info(skel);
	if (err < 0)
		fprintf(stderr, "memfaulttop: cannot tell whether kvm_run has memory_fault: %s;"
			" going on as if not\n", strerror(-err));
	feat->user.available[MF_FEAT_MEMORY_FAULT_INFO] = err > 0;
	err = set_pid_filter(skel, opts);
	if (err) {
		fprintf(stderr, "memfaulttop: cannot set the -p filter: %s\n", strerror(-err));
		goto fail;
	}
	skel->links.on_userspace_exit = bpf_program__attach(skel->progs.on_userspace_exit);
	if (!skel->links.on_userspace_exit) {
		fprintf(stderr, "memfaulttop: cannot attach to KVM's exit path"
			" (tracepoint kvm_userspace_exit): %s\n", strerror(errno));
		goto fail;
	}
	attach_optional(skel, feat);
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

static int publish(struct mf_exporter *ex, const struct mf_model *m)
{
	int err = ex ? mf_exporter_publish(ex, m) : 0;

	if (err)
		fprintf(stderr, "memfaulttop: cannot render the metrics: %s\n", strerror(-err));
	return err;
}

static int report(struct mf_model *m, const struct mf_opts *opts, struct mf_exporter *ex)
{
	int err = mf_model_refresh(m);

	if (err) {
		fprintf(stderr, "memfaulttop: cannot read the BPF maps: %s\n", strerror(-err));
		return err;
	}
	err = publish(ex, m);
	if (err)
		return err;
	if (opts->output == MF_OUT_JSON)
		err = mf_json_print(stdout, m);
	else if (opts->output != MF_OUT_NONE)
		err = mf_text_print(stdout, m);
	if (err)
		return err;
	err = mf_model_reap(m);
	if (err)
		fprintf(stderr, "memfaulttop: cannot forget destroyed VMs: %s\n", strerror(-err));
	return err;
}

static int run_periodic(struct mf_model *m, const struct mf_opts *opts, struct mf_exporter *ex)
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
		err = report(m, opts, ex);
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
	struct mf_exporter *ex = NULL;
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

	if (mf_check_privileges())
		return 1;
	/* Bound first: a port in use ends the run before anything is loaded. */
	if (opts.listen.set && mf_exporter_open(&ex, &opts.listen))
		return 1;
	skel = open_and_probe(&opts, &feat);
	if (!skel)
		goto fail_exporter;
	for (int f = 0; f < MF_NR_FEATURES; f++)
		if (opts.disabled & (1u << f)) {
			feat.user.available[f] = false;
			feat.user.why[f] = MF_WHY_DISABLED;
		}
	err = install_signals();
	if (err) {
		fprintf(stderr, "memfaulttop: cannot install signal handlers: %s\n", strerror(-err));
		goto fail_skel;
	}

	skel = load_and_attach(skel, &opts, &feat);
	if (!skel)
		goto fail_exporter;
	mf_features_print_missing(stderr, "memfaulttop: ", &feat.user);
	/* Parsing the kernel's BTF leaves ~10 MiB of freed heap: give it back
	 * to the system, as a monitor runs for a long time. */
	malloc_trim(0);
	fds = mf_skel_map_fds(skel);
	err = mf_model_init(&model, &fds, opts.gpa_shift, !skel->links.forget_vm);
	if (err) {
		fprintf(stderr, "memfaulttop: cannot count CPUs or size the VM slots: %s\n",
			strerror(-err));
		goto fail_skel;
	}
	model.features = &feat.user;
	model.storm_rate = opts.storm_rate;
	model.storm_flips = opts.storm_flips;
	/* Scrapes before the first refresh get the features and no VM. */
	if (ex && (publish(ex, &model) || mf_exporter_start(ex))) {
		mf_model_free(&model);
		goto fail_skel;
	}
	fprintf(stderr, "memfaulttop: tracing KVM exits of %s; Ctrl-C to end\n",
		opts.nr_pids ? "the -p processes" : "all VMs");

	/* The live view is for people: a terminal on stdout and no -j or -b. */
	if (opts.trace)
		err = mf_trace_run(&model, bpf_map__fd(skel->maps.events), &opts, &exiting);
	else if (opts.output == MF_OUT_AUTO && isatty(STDOUT_FILENO))
		err = mf_live_run(&model, &opts, &exiting, ex);
	else
		err = run_periodic(&model, &opts, ex);

	mf_model_free(&model);
	memfault__destroy(skel);
	mf_exporter_close(ex);
	return err ? 1 : 0;
fail_skel:
	memfault__destroy(skel);
fail_exporter:
	mf_exporter_close(ex);
	return 1;
}
