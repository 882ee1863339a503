// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * refresh_cost: what one memfaulttop refresh costs the frontend, as a
 * function of how much the BPF maps hold. Fills the maps through the
 * test-injection path (the inject_exit program, BPF_PROG_TEST_RUN; the
 * same aggregate() that real exits go through, nothing attached), then
 * times report-equivalent work: mf_model_refresh + mf_json_print +
 * mf_text_print (both to /dev/null) + mf_model_reap, in CPU time of this
 * process (CLOCK_PROCESS_CPUTIME_ID: user + system, so the batched map
 * reads count). Between refreshes a few new exits are injected (outside
 * the timed region) so that the deltas the outputs print are not empty.
 * The metrics endpoint is timed apart: after each refresh, the render and
 * publication of the exposition (mf_exporter_publish, CPU time), then one
 * scrape of it over loopback HTTP as Prometheus makes one (wall time:
 * connect, GET /metrics, read to the end; libmicrohttpd's thread serves it).
 *
 * usage: refresh_cost [-n REFRESHES] [-t TOUCH] [VMSxRANGES ...]
 *   default grid: 1, 100, 1000 VMs x 10, 100, 1000, 10000 ranges each,
 *   plus 1000x100 with every VM touched and 4200x1 (beyond MF_MAX_VMS).
 * Prints one JSON object per configuration, one a line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "exporter.h"
#include "model.h"
#include "output.h"
#include "skel.h"

#define GPA_SHIFT	30
#define KVM_BASE	0xffff888100000000ULL
/* At most this many range insertions are attempted beyond the map bound:
 * enough to show how drops are counted, without minutes of injection. */
#define OVERFLOW_ATTEMPTS	16384

struct cfg {
	unsigned long vms, ranges;
	long touch;		/* exits injected between refreshes; -1: one per VM */
};

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The exporter on a loopback port found free just before (a bench, not a
 * test: the race with another process taking it is harmless). */
static struct mf_exporter *start_exporter(struct mf_listen *l)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&l->addr;
	struct mf_exporter *ex = NULL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*l = (struct mf_listen){ .set = true, .len = sizeof(*in) };
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)in, l->len) ||
	    getsockname(fd, (struct sockaddr *)in, &l->len)) {
		perror("refresh_cost: a free port");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	snprintf(l->text, sizeof(l->text), "127.0.0.1:%u", ntohs(in->sin_port));
	if (mf_exporter_open(&ex, l))
		return NULL;
	if (mf_exporter_start(ex)) {
		mf_exporter_close(ex);
		return NULL;
	}
	return ex;
}

/* One scrape: the bytes of the whole response, or -errno. */
static long scrape(const struct mf_listen *l)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	long total = 0;
	char buf[65536];
	ssize_t n = -1;

	if (fd >= 0 && !connect(fd, (const struct sockaddr *)&l->addr, l->len) &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1)
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			total += n;
	n = n < 0 ? -errno : total;
	if (fd >= 0)
		close(fd);
	return n;
}

static int inject(int fd, unsigned long vm, unsigned long range)
{
	struct mf_exit e = {
		.kvm = KVM_BASE + vm * 0x10000,
		.pid = (__u32)getpid(),
		.vcpu_id = (__u32)(range % 4),
		.reason = MF_EXIT_MEMORY_FAULT,
		.err = -EFAULT,
		.fault_gpa = (__u64)range << GPA_SHIFT,
		.fault_size = 4096,
	};
	LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &e, .ctx_size_in = sizeof(e));

	if (bpf_prog_test_run_opts(fd, &run))
		return -errno;
	return run.retval ? -EINVAL : 0;
}

static __u64 drops_of(const struct memfault *skel, __u32 what, int ncpus)
{
	__u64 v[ncpus], total = 0;

	if (bpf_map__lookup_elem(skel->maps.drops, &what, sizeof(what), v, sizeof(v), 0))
		return 0;
	for (int i = 0; i < ncpus; i++)
		total += v[i];
	return total;
}

static int run_cfg(const struct cfg *c, int refreshes, FILE *null, struct mf_exporter *ex,
		   const struct mf_listen *l)
{
	unsigned long long requested = (unsigned long long)c->vms * c->ranges, attempted = 0;
	unsigned long long budget = MF_MAX_RANGES + OVERFLOW_ATTEMPTS;
	double fill_s, first_ms, t, *total, *t_refresh, *t_json, *t_text, *t_metrics, *t_scrape;
	long scraped = 0;
	struct memfault *skel;
	struct mf_model m;
	struct mf_map_fds fds;
	int fd, err = 0, ncpus;
	unsigned int seed = 1;
	unsigned long touch;

	skel = mf_skel_open_injector(GPA_SHIFT, MF_MAX_VMS, "refresh_cost");
	if (!skel)
		return -EINVAL;
	fd = bpf_program__fd(skel->progs.inject_exit);
	fds = mf_skel_map_fds(skel);
	ncpus = libbpf_num_possible_cpus();

	/* Range-major: every VM gets its first ranges before any VM gets
	 * many, so a capped fill still covers all VMs. */
	t = wall_s();
	for (unsigned long r = 0; r < c->ranges && attempted < budget && !err; r++)
		for (unsigned long v = 0; v < c->vms && attempted < budget && !err; v++, attempted++)
			err = inject(fd, v, r);
	fill_s = wall_s() - t;
	if (err)
		goto out;

	err = mf_model_init(&m, &fds, GPA_SHIFT, false);
	if (err)
		goto out;
	total = calloc(6 * (size_t)refreshes, sizeof(double));
	if (!total) {
		err = -ENOMEM;
		goto out_model;
	}
	t_refresh = total + refreshes;
	t_json = t_refresh + refreshes;
	t_text = t_json + refreshes;
	t_metrics = t_text + refreshes;
	t_scrape = t_metrics + refreshes;

	/* The first refresh also learns every VM (names from /proc). */
	t = cpu_ms();
	err = mf_model_refresh(&m);
	if (!err)
		err = mf_json_print(null, &m);
	if (!err)
		err = mf_text_print(null, &m);
	if (!err)
		err = mf_model_reap(&m);
	first_ms = cpu_ms() - t;

	touch = c->touch < 0 ? c->vms : (unsigned long)c->touch;
	for (int i = 0; i < refreshes && !err; i++) {
		double t0, t1, t2, t3, t4, t5, w;

		for (unsigned long k = 0; k < touch && !err; k++) {
			unsigned long v = c->touch < 0 ? k : (unsigned long)rand_r(&seed) % c->vms;

			/* Existing ranges only (range 0 exists for every VM). */
			err = inject(fd, v, (unsigned long)rand_r(&seed) % (c->ranges < 4 ? c->ranges : 4));
		}
		t0 = cpu_ms();
		err = err ?: mf_model_refresh(&m);
		t1 = cpu_ms();
		err = err ?: mf_json_print(null, &m);
		t2 = cpu_ms();
		err = err ?: mf_text_print(null, &m);
		t3 = cpu_ms();
		err = err ?: mf_exporter_publish(ex, &m);
		t4 = cpu_ms();
		err = err ?: mf_model_reap(&m);
		t5 = cpu_ms();
		fflush(null);
		/* As before the metrics endpoint: they are timed apart. */
		total[i] = (t3 - t0) + (t5 - t4);
		t_refresh[i] = t1 - t0;
		t_json[i] = t2 - t1;
		t_text[i] = (t3 - t2) + (t5 - t4);
		t_metrics[i] = t4 - t3;
		w = wall_s();
		scraped = err ? 0 : scrape(l);
		t_scrape[i] = (wall_s() - w) * 1e3;
		if (scraped < 0)
			err = (int)scraped;
	}
	if (!err) {
		size_t active = 0;

		for (size_t i = 0; i < m.nr_vms; i++)
			active += mf_vm_active(&m.vms[i]);
		qsort(total, (size_t)refreshes, sizeof(double), cmp_double);
		qsort(t_refresh, (size_t)refreshes, sizeof(double), cmp_double);
		qsort(t_json, (size_t)refreshes, sizeof(double), cmp_double);
		qsort(t_text, (size_t)refreshes, sizeof(double), cmp_double);
		qsort(t_metrics, (size_t)refreshes, sizeof(double), cmp_double);
		qsort(t_scrape, (size_t)refreshes, sizeof(double), cmp_double);
		printf("{\"vms\":%lu,\"ranges_per_vm\":%lu,\"requested_ranges\":%llu,"
		       "\"attempted_inserts\":%llu,\"fill_s\":%.2f,\"touch_per_refresh\":%lu,"
		       "\"model_vms\":%zu,\"model_ranges\":%zu,\"active_vms_last\":%zu,"
		       "\"drops\":{\"vm_table_full\":%llu,\"range_table_full\":%llu,\"no_vcpu\":%llu},"
		       "\"refreshes\":%d,\"first_refresh_cpu_ms\":%.3f,"
		       "\"cpu_ms\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f},"
		       "\"median_cpu_ms_by_part\":{\"model_refresh\":%.3f,\"json\":%.3f,\"text_and_reap\":%.3f},"
		       "\"metrics_render_cpu_ms\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f},"
		       "\"scrape_wall_ms\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f},"
		       "\"scrape_bytes\":%ld}\n",
		       c->vms, c->ranges, requested, attempted, fill_s, touch, m.nr_vms,
		       m.nr_ranges, active,
		       (unsigned long long)drops_of(skel, MF_DROP_VM_TABLE_FULL, ncpus),
		       (unsigned long long)drops_of(skel, MF_DROP_RANGE_TABLE_FULL, ncpus),
		       (unsigned long long)drops_of(skel, MF_DROP_NO_VCPU, ncpus),
		       refreshes, first_ms, total[refreshes / 2], total[0], total[refreshes - 1],
		       t_refresh[refreshes / 2], t_json[refreshes / 2], t_text[refreshes / 2],
		       t_metrics[refreshes / 2], t_metrics[0], t_metrics[refreshes - 1],
		       t_scrape[refreshes / 2], t_scrape[0], t_scrape[refreshes - 1], scraped);
		fflush(stdout);
	}
	free(total);
out_model:
	mf_model_free(&m);
out:
	memfault__destroy(skel);
	return err;
}

int main(int argc, char **argv)
{
	static const unsigned long vms[] = { 1, 100, 1000 };
	static const unsigned long ranges[] = { 10, 100, 1000, 10000 };
	struct cfg cfgs[32];
	int nr = 0, refreshes = 21, opt, failed = 0;
	long touch = 10;
	struct mf_exporter *ex;
	struct mf_listen l;
	FILE *null;

	while ((opt = getopt(argc, argv, "n:t:")) != -1) {
		if (opt == 'n')
			refreshes = atoi(optarg);
		else if (opt == 't')
			touch = atol(optarg);
		else
			goto usage;
	}
	if (refreshes < 1)
		goto usage;
	for (int i = optind; i < argc && nr < 32; i++) {
		if (sscanf(argv[i], "%lux%lu", &cfgs[nr].vms, &cfgs[nr].ranges) != 2 ||
		    !cfgs[nr].vms || !cfgs[nr].ranges)
			goto usage;
		cfgs[nr++].touch = touch;
	}
	if (!nr) {
		for (size_t v = 0; v < sizeof(vms) / sizeof(vms[0]); v++)
			for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++)
				cfgs[nr++] = (struct cfg){ vms[v], ranges[r], touch };
		cfgs[nr++] = (struct cfg){ 1000, 100, -1 };
		cfgs[nr++] = (struct cfg){ MF_MAX_VMS + 104, 1, touch };
	}
	if (geteuid() != 0) {
		fprintf(stderr, "refresh_cost: needs root to load BPF programs\n");
		return 77;
	}
	libbpf_set_print(NULL);
	null = fopen("/dev/null", "w");
	if (!null)
		return 1;
	ex = start_exporter(&l);
	if (!ex) {
		fclose(null);
		return 1;
	}
	for (int i = 0; i < nr; i++) {
		int err = run_cfg(&cfgs[i], refreshes, null, ex, &l);

		if (err) {
			fprintf(stderr, "refresh_cost: %lux%lu: %s\n", cfgs[i].vms, cfgs[i].ranges,
				strerror(-err));
			failed = 1;
		}
	}
	mf_exporter_close(ex);
	fclose(null);
	return failed;
usage:
	fprintf(stderr, "usage: refresh_cost [-n REFRESHES] [-t TOUCH] [VMSxRANGES ...]\n");
	return 2;
}
