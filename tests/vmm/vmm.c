// SPDX-License-Identifier: GPL-2.0
/*
 * vmm: test VMM whose guests make a known, exact number of KVM userspace
 * exits, so that memfaulttop's counts can be checked against it.
 * Every return from KVM_RUN is counted by run->exit_reason, exactly what
 * the kvm_userspace_exit tracepoint reports (failed returns too: a memory
 * fault is KVM_RUN -1/EFAULT with exit_reason 39).
 */
#define _GNU_SOURCE
#include "kvmvm.h"
#include "swprot.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE       2
/*
 * Every exit was one the program makes, but not as many as it promises:
 * the guest's execution went wrong (seen, rarely, with two vCPUs of a VM
 * under nested SVM on QEMU's TCG). The JSON record still says what KVM_RUN
 * returned, which is what memfaulttop is checked against.
 */
#define EXIT_DEVIATED    3
#define MAX_VMS          64
#define MAX_VCPUS        64
#define NR_REASONS       64   /* exit reasons tracked; larger are unexpected */
#define WAIT_FILE_SECS   10
#define MAX_HOLD_SECS    3600
#define MAX_ROUND_GAP_MS 10000
#define MAX_NAME         64
#define DEFAULT_MMIO_GPA 0xa0000u   /* legacy VGA window: unbacked here */
#define DEFAULT_MAP_GPA  0x100000u
#define MAX_FAULT_PAGES  (1u << 20)  /* 4 GiB of 4 KiB pages */
_Static_assert(MAX_VCPUS <= KVMVM_MAX_VCPUS, "the guest programs have room for so many");

/* Indexes [0] shared / to shared, [1] private / to private. */
struct stats {
	uint64_t exits[NR_REASONS];
	uint64_t map_count[2];
	uint64_t map_pages[2];
	/* Runs of consecutive MAP_GPA_RANGE exits, each starting where the
	 * last ended, in one direction: what memfaulttop calls requests. */
	uint64_t map_requests[2];
	uint64_t mmio[KVMVM_MAX_MMIO];
	uint64_t memory_faults[2];  /* expected exits 39 */
	uint64_t *fault_pages;      /* [w.fault_pages]: exits 39 per page */
	uint64_t unpinnable;        /* KVM_RUN EFAULT with exit 0 (UNKNOWN) */
	/* Private program: exits per step (each at one GPA of the vCPU). */
	uint64_t steps[SWPROT_NR_STEPS];
	uint64_t conversions[2];    /* KVM_SET_MEMORY_ATTRIBUTES calls that succeeded */
	uint64_t converted_pages[2];
	uint64_t conversions_failed[2];     /* with EINVAL, on purpose */
	uint64_t punches;
	uint64_t punched_pages;
	uint64_t checks;
	uint64_t unexpected;
};

struct vcpu_thread {
	struct kvmvcpu vcpu;
	const struct kvmvm_workload *w;
	struct stats st;
	pthread_t tid;
	bool started;
};

struct vm {
	struct kvmvm kvm;
	struct vcpu_thread *vcpus;
	struct stats total;
};

struct options {
	uint32_t vms, vcpus, hold;
	const char *wait_file;
	char name[MAX_NAME + 1];   /* empty: no name */
	bool json;
	bool one_thread;
	const char *real_mode_opt;   /* last real-mode workload option given */
	struct kvmvm_workload w;
};

static const char *const reason_names[NR_REASONS] = {
	[KVM_EXIT_UNKNOWN] = "UNKNOWN", [KVM_EXIT_EXCEPTION] = "EXCEPTION",
	[KVM_EXIT_IO] = "IO", [KVM_EXIT_HYPERCALL] = "HYPERCALL",
	[KVM_EXIT_DEBUG] = "DEBUG", [KVM_EXIT_HLT] = "HLT", [KVM_EXIT_MMIO] = "MMIO",
	[KVM_EXIT_SHUTDOWN] = "SHUTDOWN", [KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
	[KVM_EXIT_INTR] = "INTR", [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
	[KVM_EXIT_MEMORY_FAULT] = "MEMORY_FAULT",
};
static const char *const direction[2] = { "shared", "private" };

static void usage(FILE *f)
{
	fprintf(f,
"usage: vmm [options]\n"
"  --vms N            VMs in this process (default 1, max %d)\n"
"  --vcpus N          vCPUs per VM, one thread each (default 1, max %d)\n"
"  --io N             `out` instructions per vCPU -> KVM_EXIT_IO\n"
"  --mmio N           1-byte writes to unbacked GPAs per vCPU -> KVM_EXIT_MMIO\n"
"  --mmio-gpa GPA     MMIO target in [%#x, %#x) (default %#x); repeat for\n"
"                     up to %d targets, used round-robin\n"
"  --map-private N    KVM_HC_MAP_GPA_RANGE to private per vCPU -> KVM_EXIT_HYPERCALL\n"
"                     (probed first; exits 2 where KVM cannot deliver it)\n"
"  --map-shared N     KVM_HC_MAP_GPA_RANGE to shared per vCPU -> KVM_EXIT_HYPERCALL\n"
"  --map-gpa GPA      start of the converted range (page aligned, default %#x)\n"
"  --map-pages N      4 KiB pages per conversion (default 1)\n"
"  --hlt              accepted for clarity: every vCPU always ends with one hlt\n"
"  --memory-faults N  instead of all the above, a 64-bit user-mode guest whose\n"
"                     writes to a released guest_memfd each fault N times per\n"
"                     page -> KVM_EXIT_MEMORY_FAULT (KVM_RUN -1/EFAULT), then one\n"
"                     `out` to port %#x ends it (KVM_EXIT_IO, no hlt); exits 2\n"
"                     where default VMs have no mmap-able guest_memfd (< 6.18)\n"
"  --fault-pages K    pages written per vCPU (default 1)\n"
"  --fault-gpa GPA    first page (page aligned, default %#llx); the guest_memfd\n"
"                     slot covers the K pages, below 4 GiB\n"
"  --fault-stride B   bytes between pages (page multiple, default %u)\n"
"  --private ROUNDS   instead of all the above, a SW-protected VM (exits 2 where\n"
"                     the kernel has none) whose 64-bit kernel-mode guest, per\n"
"                     vCPU and round: MAP_GPA_RANGE to private (4 pages) and to\n"
"                     shared (2 x 2 pages) -> KVM_EXIT_HYPERCALL; a private\n"
"                     fault on a PRIVATE page of a slot without guest_memfd and\n"
"                     one on a PRIVATE page without a slot -> KVM_EXIT_MEMORY_FAULT\n"
"                     (flags PRIVATE); a write to an unpinnable host page ->\n"
"                     KVM_RUN EFAULT with exit 0 (UNKNOWN); an MMIO write, then a\n"
"                     shared fault once the page is PRIVATE with a guest_memfd\n"
"                     slot -> KVM_EXIT_MMIO, KVM_EXIT_MEMORY_FAULT (flags 0). Each\n"
"                     served by converting with KVM_SET_MEMORY_ATTRIBUTES (and a\n"
"                     guest_memfd hole punch on the way to shared), plugging a\n"
"                     guest_memfd slot in or restoring the host mapping; one\n"
"                     `out` to port %#x begins every round, `hlt` ends the guest.\n"
"                     vCPU i works in its own 16 MiB at %#llx + i x 16 MiB\n"
"  --round-gap MS     with --private, wait MS ms (up to %d) before each round\n"
"                     after the first: a conversion storm that lasts\n"
"  --wait-file PATH   before running, wait up to %d s for PATH to exist\n"
"  --hold SECONDS     keep the VMs alive this long after the guests stop\n"
"  -name NAME | -name guest=NAME,...   QEMU-style name, echoed in the JSON\n"
"  --json             print one JSON object on stdout\n"
"  --one-thread       run every vCPU in the main thread, one after another\n"
"exit status: 0 ok, 1 runtime failure or unexpected exit, 2 bad usage or\n"
"             an exit kind this kernel cannot produce, 3 every exit expected\n"
"             but not as many as promised (the guest went wrong)\n",
		MAX_VMS, MAX_VCPUS, KVMVM_RAM_SIZE, KVMVM_MMIO_LIMIT, DEFAULT_MMIO_GPA,
		KVMVM_MAX_MMIO, DEFAULT_MAP_GPA, KVMVM_DONE_PORT,
		(unsigned long long)KVMVM_FAULT_GPA, KVMVM_PAGE_SIZE, KVMVM_ROUND_PORT,
		SWPROT_WINDOW_BASE, MAX_ROUND_GAP_MS, WAIT_FILE_SECS);
}

static _Noreturn void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "vmm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (try --help)\n");
	exit(EXIT_USAGE);
}

static uint32_t parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v < min || v > max) {
		fprintf(stderr, "vmm: %s: '%s' is not a number in [%" PRIu32 ", %" PRIu32
			"] (try --help)\n", opt, s, min, max);
		exit(EXIT_USAGE);
	}
	return (uint32_t)v;
}

/* -name NAME[,k=v...] or -name guest=NAME[,k=v...], like QEMU. */
static void parse_name(char *out, const char *arg)
{
	const char *p = arg;
	bool first = true;

	out[0] = '\0';
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *val = NULL;

		if (len > 6 && !strncmp(p, "guest=", 6))
			val = p + 6, len -= 6;
		else if (first && !memchr(p, '=', len))
			val = p;
		if (val) {
			if (len > MAX_NAME)
				usage_error("-name: '%s' is longer than 64 characters", arg);
			for (size_t i = 0; i < len; i++)
				if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					    "0123456789._-", val[i]))
					usage_error("-name: '%s': only [A-Za-z0-9._-] allowed", arg);
			memcpy(out, val, len);
			out[len] = '\0';
		}
		first = false;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!out[0])
		usage_error("-name: '%s' has no guest name", arg);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	enum { O_VMS = 256, O_VCPUS, O_IO, O_MMIO, O_MMIO_GPA, O_MAP_PRIVATE,
	       O_MAP_SHARED, O_MAP_GPA, O_MAP_PAGES, O_MEMORY_FAULTS, O_FAULT_PAGES,
	       O_FAULT_GPA, O_FAULT_STRIDE, O_PRIVATE, O_ROUND_GAP, O_HLT,
	       O_WAIT_FILE, O_HOLD, O_NAME, O_JSON, O_ONE_THREAD };
	static const struct option opts[] = {
		{ "vms", required_argument, NULL, O_VMS },
		{ "vcpus", required_argument, NULL, O_VCPUS },
		{ "io", required_argument, NULL, O_IO },
		{ "mmio", required_argument, NULL, O_MMIO },
		{ "mmio-gpa", required_argument, NULL, O_MMIO_GPA },
		{ "map-private", required_argument, NULL, O_MAP_PRIVATE },
		{ "map-shared", required_argument, NULL, O_MAP_SHARED },
		{ "map-gpa", required_argument, NULL, O_MAP_GPA },
		{ "map-pages", required_argument, NULL, O_MAP_PAGES },
		{ "memory-faults", required_argument, NULL, O_MEMORY_FAULTS },
		{ "fault-pages", required_argument, NULL, O_FAULT_PAGES },
		{ "fault-gpa", required_argument, NULL, O_FAULT_GPA },
		{ "fault-stride", required_argument, NULL, O_FAULT_STRIDE },
		{ "private", required_argument, NULL, O_PRIVATE },
		{ "round-gap", required_argument, NULL, O_ROUND_GAP },
		{ "hlt", no_argument, NULL, O_HLT },
		{ "wait-file", required_argument, NULL, O_WAIT_FILE },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "name", required_argument, NULL, O_NAME },
		{ "json", no_argument, NULL, O_JSON },
		{ "one-thread", no_argument, NULL, O_ONE_THREAD },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct kvmvm_workload *w = &o->w;
	int c;

	*o = (struct options){ .vms = 1, .vcpus = 1 };
	w->map_gpa = DEFAULT_MAP_GPA;
	w->map_pages = 1;
	w->fault_pages = 1;
	w->fault_gpa = KVMVM_FAULT_GPA;
	w->fault_stride = KVMVM_PAGE_SIZE;

	/* QEMU spells it with one dash; getopt_long wants two. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-name"))
			argv[i] = "--name";

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		for (const struct option *op = opts; op->name; op++)
			if (op->val == c && ((c >= O_IO && c <= O_MAP_PAGES) || c == O_HLT))
				o->real_mode_opt = op->name;
		switch (c) {
		case O_VMS:
			o->vms = parse_u32("--vms", optarg, 1, MAX_VMS);
			break;
		case O_VCPUS:
			o->vcpus = parse_u32("--vcpus", optarg, 1, MAX_VCPUS);
			break;
		case O_IO:
			w->io = parse_u32("--io", optarg, 0, UINT32_MAX);
			break;
		case O_MMIO:
			w->mmio = parse_u32("--mmio", optarg, 0, UINT32_MAX);
			break;
		case O_MMIO_GPA:
			if (w->nr_mmio_gpas == KVMVM_MAX_MMIO)
				usage_error("--mmio-gpa: more than 16 targets at '%s'", optarg);
			/* The range is checked by kvmvm_validate(). */
			w->mmio_gpa[w->nr_mmio_gpas++] = parse_u32("--mmio-gpa", optarg,
								   0, UINT32_MAX);
			break;
		case O_MAP_PRIVATE:
			w->map_private = parse_u32("--map-private", optarg, 0, UINT32_MAX);
			break;
		case O_MAP_SHARED:
			w->map_shared = parse_u32("--map-shared", optarg, 0, UINT32_MAX);
			break;
		case O_MAP_GPA:
			w->map_gpa = parse_u32("--map-gpa", optarg, 0, UINT32_MAX);
			break;
		case O_MAP_PAGES:
			w->map_pages = parse_u32("--map-pages", optarg, 1, UINT32_MAX);
			break;
		case O_MEMORY_FAULTS:
			w->memory_faults = parse_u32("--memory-faults", optarg, 1, UINT32_MAX);
			break;
		case O_FAULT_PAGES:
			w->fault_pages = parse_u32("--fault-pages", optarg, 1, MAX_FAULT_PAGES);
			break;
		case O_FAULT_GPA:
			/* Alignment and range are checked by kvmvm_validate(). */
			w->fault_gpa = parse_u32("--fault-gpa", optarg, 0, UINT32_MAX);
			break;
		case O_FAULT_STRIDE:
			w->fault_stride = parse_u32("--fault-stride", optarg, 1, UINT32_MAX);
			break;
		case O_PRIVATE:
			w->private_rounds = parse_u32("--private", optarg, 1, UINT32_MAX);
			break;
		case O_ROUND_GAP:
			w->round_gap_ms = parse_u32("--round-gap", optarg, 1, MAX_ROUND_GAP_MS);
			break;
		case O_HLT:
			break;
		case O_WAIT_FILE:
			o->wait_file = optarg;
			break;
		case O_HOLD:
			o->hold = parse_u32("--hold", optarg, 0, MAX_HOLD_SECS);
			break;
		case O_NAME:
			parse_name(o->name, optarg);
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_ONE_THREAD:
			o->one_thread = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			exit(EXIT_USAGE);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
	if ((w->memory_faults || w->private_rounds) && o->real_mode_opt) {
		fprintf(stderr, "vmm: --%s replaces the real-mode guest: it cannot be "
			"combined with --%s (--io, --mmio*, --map-*, --hlt); run another "
			"vmm for those\n", w->memory_faults ? "memory-faults" : "private",
			o->real_mode_opt);
		exit(EXIT_USAGE);
	}
	if (w->round_gap_ms && !w->private_rounds)
		usage_error("%s", "--round-gap needs --private");
	if (w->memory_faults && w->private_rounds)
		usage_error("%s", "--memory-faults and --private run different guests: "
			    "run one vmm for each");
	if (!w->memory_faults && (w->fault_pages != 1 || w->fault_gpa != KVMVM_FAULT_GPA ||
				  w->fault_stride != KVMVM_PAGE_SIZE))
		usage_error("%s", "--fault-pages/--fault-gpa/--fault-stride need --memory-faults");
	if (!w->nr_mmio_gpas && !w->memory_faults && !w->private_rounds)
		w->mmio_gpa[w->nr_mmio_gpas++] = DEFAULT_MMIO_GPA;
	if (kvmvm_validate(w) < 0)
		exit(EXIT_USAGE);
}

/* What serving the private program did, kept by kvmvm in the vCPU. */
static void take_serving_stats(struct stats *st, const struct kvmvcpu *vcpu)
{
	for (int i = 0; i < 2; i++) {
		st->conversions[i] = vcpu->conversions[i];
		st->converted_pages[i] = vcpu->converted_pages[i];
		st->conversions_failed[i] = vcpu->conversions_failed[i];
	}
	st->punches = vcpu->punches;
	st->punched_pages = vcpu->punched_pages;
	st->checks = vcpu->checks;
}

static void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct stats *st = &t->st;
	struct kvmvm_exit e;
	bool running = true;
	int map_dir = -1;       /* the last exit's, if it was a MAP_GPA_RANGE */
	uint64_t map_end = 0;

	while (running) {
		int last_map_dir = map_dir;

		kvmvm_run_vcpu(&t->vcpu, t->w, &e);
		map_dir = -1;
		if (e.reason < NR_REASONS)
			st->exits[e.reason]++;
		if (t->w->private_rounds && e.ev != KVMVM_EV_INTR && e.ev != KVMVM_EV_HLT &&
		    e.ev != KVMVM_EV_UNEXPECTED)
			st->steps[e.step]++;
		switch (e.ev) {
		case KVMVM_EV_IO:
		case KVMVM_EV_INTR:
			break;
		case KVMVM_EV_MMIO:
			/* The private program's MMIO exits are counted by step. */
			if (!t->w->private_rounds)
				st->mmio[e.mmio_index]++;
			break;
		case KVMVM_EV_MAP_PRIVATE:
		case KVMVM_EV_MAP_SHARED: {
			int priv = e.ev == KVMVM_EV_MAP_PRIVATE;

			st->map_count[priv]++;
			st->map_pages[priv] += e.pages;
			st->map_requests[priv] += last_map_dir != priv || map_end != e.gpa;
			map_dir = priv;
			map_end = e.gpa + e.pages * KVMVM_PAGE_SIZE;
			break;
		}
		case KVMVM_EV_MEMORY_FAULT:
		case KVMVM_EV_PRIVATE_FAULT:
			st->memory_faults[e.ev == KVMVM_EV_PRIVATE_FAULT]++;
			if (t->w->memory_faults)
				st->fault_pages[e.fault_page]++;
			break;
		case KVMVM_EV_EFAULT:
			st->unpinnable++;
			break;
		case KVMVM_EV_HLT:
		case KVMVM_EV_DONE:
			running = false;
			break;
		case KVMVM_EV_UNEXPECTED:
			/* The guest state is unknown now: stop this vCPU. */
			st->unexpected++;
			kvmvm_report(&t->vcpu, &e);
			running = false;
			break;
		}
	}
	take_serving_stats(st, &t->vcpu);
	return NULL;
}

/* Length of stats.fault_pages. */
static uint32_t nr_fault_pages(const struct options *o)
{
	return o->w.memory_faults ? o->w.fault_pages : 0;
}

static uint64_t fault_page_gpa(const struct options *o, uint32_t k)
{
	return o->w.fault_gpa + (uint64_t)k * o->w.fault_stride;
}

static void add_stats(struct stats *to, const struct stats *from, const struct options *o)
{
	for (int i = 0; i < NR_REASONS; i++)
		to->exits[i] += from->exits[i];
	for (int i = 0; i < 2; i++) {
		to->map_count[i] += from->map_count[i];
		to->map_pages[i] += from->map_pages[i];
		to->map_requests[i] += from->map_requests[i];
		to->memory_faults[i] += from->memory_faults[i];
		to->conversions[i] += from->conversions[i];
		to->converted_pages[i] += from->converted_pages[i];
		to->conversions_failed[i] += from->conversions_failed[i];
	}
	for (int i = 0; i < KVMVM_MAX_MMIO; i++)
		to->mmio[i] += from->mmio[i];
	for (uint32_t k = 0; k < nr_fault_pages(o); k++)
		to->fault_pages[k] += from->fault_pages[k];
	for (int i = 0; i < SWPROT_NR_STEPS; i++)
		to->steps[i] += from->steps[i];
	to->unpinnable += from->unpinnable;
	to->punches += from->punches;
	to->punched_pages += from->punched_pages;
	to->checks += from->checks;
	to->unexpected += from->unexpected;
}

/* The private program's totals for `n` vCPU-rounds, from its steps. */
static void promise_private(struct stats *p, const struct options *o)
{
	const uint64_t n = (uint64_t)o->w.private_rounds * o->vcpus;

	for (int s = 0; s < SWPROT_NR_STEPS; s++) {
		const struct swprot_step_info *i = &swprot_steps[s];

		p->exits[i->reason] += n;
		p->steps[s] = n;
		p->conversions[1] += n * i->to_private;
		p->conversions[0] += n * i->to_shared;
		p->converted_pages[1] += n * i->to_private_pages;
		p->converted_pages[0] += n * i->to_shared_pages;
		if (i->ev == KVMVM_EV_MAP_PRIVATE || i->ev == KVMVM_EV_MAP_SHARED) {
			p->map_count[i->ev == KVMVM_EV_MAP_PRIVATE] += n;
			p->map_pages[i->ev == KVMVM_EV_MAP_PRIVATE] += n * i->pages;
		}
		if (i->ev == KVMVM_EV_MEMORY_FAULT || i->ev == KVMVM_EV_PRIVATE_FAULT)
			p->memory_faults[i->ev == KVMVM_EV_PRIVATE_FAULT] += n;
		if (i->ev == KVMVM_EV_EFAULT)
			p->unpinnable += n;
	}
	p->exits[KVM_EXIT_HLT] += o->vcpus;
	p->conversions[1] += (uint64_t)SWPROT_SETUP_TO_PRIVATE * o->vcpus;
	p->converted_pages[1] += (uint64_t)SWPROT_SETUP_TO_PRIVATE * o->vcpus;
	p->conversions_failed[1] = n * SWPROT_FAILING_PER_ROUND;
	/* Every page that goes back to shared loses its private copy, one
	 * punch per MAP_GPA_RANGE request. */
	p->punches = p->map_count[0];
	p->punched_pages = p->map_pages[0];
	p->checks = n * SWPROT_CHECKS_PER_ROUND;
}

/* What the workload promises one VM does (per-page counts aside). */
static void promise(struct stats *p, const struct options *o)
{
	const struct kvmvm_workload *w = &o->w;

	*p = (struct stats){ 0 };
	if (w->private_rounds) {
		promise_private(p, o);
	} else if (w->memory_faults) {
		/* Per vCPU: exits 39 on each page, then one `out`. */
		p->memory_faults[0] = (uint64_t)w->memory_faults * w->fault_pages * o->vcpus;
		p->exits[KVM_EXIT_MEMORY_FAULT] = p->memory_faults[0];
		p->exits[KVM_EXIT_IO] = o->vcpus;
	} else {
		p->exits[KVM_EXIT_IO] = (uint64_t)w->io * o->vcpus;
		p->exits[KVM_EXIT_MMIO] = (uint64_t)w->mmio * o->vcpus;
		p->map_count[1] = (uint64_t)w->map_private * o->vcpus;
		p->map_count[0] = (uint64_t)w->map_shared * o->vcpus;
		p->map_pages[1] = p->map_count[1] * w->map_pages;
		p->map_pages[0] = p->map_count[0] * w->map_pages;
		p->exits[KVM_EXIT_HYPERCALL] = p->map_count[0] + p->map_count[1];
		p->exits[KVM_EXIT_HLT] = o->vcpus;
	}
}

static bool expect_eq(uint32_t index, const char *what, uint64_t got, uint64_t want)
{
	if (got == want)
		return true;
	fprintf(stderr, "vmm: VM %" PRIu32 ": %" PRIu64 " %s, expected %" PRIu64 "\n",
		index, got, what, want);
	return false;
}

/* Compare what the VM did with what the workload promises, exactly. */
static bool check_counts(uint32_t index, const struct vm *vm, const struct options *o)
{
	const struct stats *s = &vm->total;
	const uint64_t per_page = (uint64_t)o->w.memory_faults * o->vcpus;
	struct stats p;
	char what[96];
	bool ok = s->unexpected == 0;

	promise(&p, o);
	for (int r = 0; r < NR_REASONS; r++) {
		snprintf(what, sizeof(what), "KVM_EXIT_%s (%d) exits",
			 reason_names[r] ? reason_names[r] : "?", r);
		ok &= expect_eq(index, what, s->exits[r], p.exits[r]);
	}
	for (int d = 0; d < 2; d++) {
		snprintf(what, sizeof(what), "expected %s memory faults", direction[d]);
		ok &= expect_eq(index, what, s->memory_faults[d], p.memory_faults[d]);
		snprintf(what, sizeof(what), "MAP_GPA_RANGE exits to %s", direction[d]);
		ok &= expect_eq(index, what, s->map_count[d], p.map_count[d]);
		snprintf(what, sizeof(what), "pages in MAP_GPA_RANGE to %s", direction[d]);
		ok &= expect_eq(index, what, s->map_pages[d], p.map_pages[d]);
		snprintf(what, sizeof(what), "conversions to %s", direction[d]);
		ok &= expect_eq(index, what, s->conversions[d], p.conversions[d]);
		snprintf(what, sizeof(what), "pages converted to %s", direction[d]);
		ok &= expect_eq(index, what, s->converted_pages[d], p.converted_pages[d]);
		snprintf(what, sizeof(what), "failed conversions to %s", direction[d]);
		ok &= expect_eq(index, what, s->conversions_failed[d], p.conversions_failed[d]);
	}
	ok &= expect_eq(index, "unpinnable-page EFAULTs", s->unpinnable, p.unpinnable);
	ok &= expect_eq(index, "guest_memfd hole punches", s->punches, p.punches);
	ok &= expect_eq(index, "guest_memfd pages punched", s->punched_pages, p.punched_pages);
	ok &= expect_eq(index, "privacy checks passed", s->checks, p.checks);
	for (uint32_t k = 0; k < nr_fault_pages(o); k++) {
		snprintf(what, sizeof(what), "memory faults on page %#" PRIx64,
			 fault_page_gpa(o, k));
		ok &= expect_eq(index, what, s->fault_pages[k], per_page);
	}
	/* Each step of the private program is one exit at one GPA of the vCPU. */
	for (uint32_t i = 0; o->w.private_rounds && i < o->vcpus; i++) {
		for (int st = 0; st < SWPROT_NR_STEPS; st++) {
			snprintf(what, sizeof(what), "exits of vCPU %" PRIu32 " at %#" PRIx64
				 " (%s)", i, swprot_window(i) + swprot_steps[st].offset,
				 reason_names[swprot_steps[st].reason]);
			ok &= expect_eq(index, what, vm->vcpus[i].st.steps[st],
					o->w.private_rounds);
		}
	}
	return ok;
}

static void print_gpa(const char **sep, uint64_t gpa, uint64_t count, bool map, uint64_t pages)
{
	printf("%s\"%#" PRIx64 "\":", *sep, gpa);
	if (map)
		printf("{\"count\":%" PRIu64 ",\"pages\":%" PRIu64 "}", count, pages);
	else
		printf("%" PRIu64, count);
	*sep = ",";
}

/*
 * Exits of one kind by GPA: {"gpa":count} for memory faults, and
 * {"gpa":{"count":n,"pages":p}} for MAP_GPA_RANGE, where every exit at one
 * GPA has the same size.
 */
static void print_gpas(const struct options *o, const struct vm *vm, enum kvmvm_event ev)
{
	const bool map = ev == KVMVM_EV_MAP_PRIVATE || ev == KVMVM_EV_MAP_SHARED;
	const int priv = ev == KVMVM_EV_MAP_PRIVATE;
	const char *sep = "";

	putchar('{');
	if (o->w.private_rounds) {
		for (uint32_t i = 0; i < o->vcpus; i++) {
			for (int s = 0; s < SWPROT_NR_STEPS; s++) {
				uint64_t n = vm->vcpus[i].st.steps[s];

				if (swprot_steps[s].ev == ev)
					print_gpa(&sep, swprot_window(i) + swprot_steps[s].offset,
						  n, map, n * swprot_steps[s].pages);
			}
		}
	} else if (ev == KVMVM_EV_MEMORY_FAULT) {
		for (uint32_t k = 0; k < nr_fault_pages(o); k++)
			print_gpa(&sep, fault_page_gpa(o, k), vm->total.fault_pages[k], false, 0);
	} else if (map && vm->total.map_count[priv]) {
		print_gpa(&sep, o->w.map_gpa, vm->total.map_count[priv], true,
			  vm->total.map_pages[priv]);
	}
	putchar('}');
}

/* Every KVM_SET_MEMORY_ATTRIBUTES call of the VM to one target, by GPA and size. */
static void print_calls(const struct options *o, const struct vm *vm, int private)
{
	const char *sep = "";

	putchar('[');
	for (uint32_t i = 0; i < o->vcpus; i++) {
		const struct kvmvcpu *c = &vm->vcpus[i].vcpu;

		for (uint32_t k = 0; k < c->nr_calls; k++) {
			if (c->calls[k].private != private)
				continue;
			printf("%s{\"gpa\":\"%#" PRIx64 "\",\"bytes\":%" PRIu64 ",\"count\":%"
			       PRIu64 "}", sep, c->calls[k].gpa, c->calls[k].bytes, c->calls[k].count);
			sep = ",";
		}
	}
	putchar(']');
}

/* Per vCPU, the directions its faults, requests and conversions asked
 * for, in order: "+GPA" to private, "-GPA" to shared; "c" before the sign
 * marks the VMM's conversions. */
static void print_directions(const struct options *o, const struct vm *vm)
{
	putchar('{');
	for (uint32_t i = 0; i < o->vcpus; i++) {
		const struct kvmvcpu *c = &vm->vcpus[i].vcpu;

		printf("%s\"%" PRIu32 "\":[", i ? "," : "", i);
		for (uint32_t k = 0; k < c->nr_directions; k++)
			printf("%s\"%s%c%#" PRIx64 "\"", k ? "," : "",
			       c->directions[k].conversion ? "c" : "",
			       c->directions[k].private ? '+' : '-', c->directions[k].gpa);
		putchar(']');
	}
	putchar('}');
}

/*
 * One object: {"pid", "name", "vms": [per VM:
 *   "index", "vcpus",
 *   "exits": {"<exit_reason>": count}     every KVM_RUN return, failed ones too
 *   "map_gpa_range": {"to_private"|"to_shared": {"count", "pages", "requests",
 *                     "gpas": {"<gpa>": {"count", "pages"}}}}
 *   "memory_faults": {"shared", "private"}   exits 39 by class
 *   "fault_pages": {"<gpa>": count}          --memory-faults pages (shared)
 *   "fault_gpas": {"private"|"shared": {"<gpa>": count}}   every exit 39
 *   "mmio": {"<gpa>": count}                 --mmio targets
 *   "unpinnable": count    KVM_RUN EFAULT with exit 0: not a memory fault
 *   "conversions": {"to_private"|"to_shared": {"count", "pages",   succeeded
 *                     "failed": {"EINVAL": n},     deliberately failing calls
 *                     "calls": [{"gpa", "bytes", "count"}]},   every call
 *                   "directions": {"<vcpu>": ["+GPA" | "-GPA"]},  the private
 *                                                 program's; see print_directions()
 *                   "punches", "punched_pages"}   KVM_SET_MEMORY_ATTRIBUTES,
 *                                                 guest_memfd hole punches
 *   "checks": count        host-side checks that private memory stayed private
 *   "unexpected": count ]}
 * Memory faults are 4 KiB each; all MAP_GPA_RANGE exits at one GPA have one size.
 */
static void print_json(const struct options *o, const struct vm *vms)
{
	printf("{\"pid\":%d,\"name\":", (int)getpid());
	/* The name is restricted to [A-Za-z0-9._-]: no escaping needed. */
	if (o->name[0])
		printf("\"%s\"", o->name);
	else
		printf("null");
	printf(",\"vms\":[");
	for (uint32_t v = 0; v < o->vms; v++) {
		const struct stats *s = &vms[v].total;
		const char *sep = "";

		printf("%s{\"index\":%" PRIu32 ",\"vcpus\":%" PRIu32 ",\"exits\":{",
		       v ? "," : "", v, o->vcpus);
		for (int r = 0; r < NR_REASONS; r++) {
			if (s->exits[r]) {
				printf("%s\"%d\":%" PRIu64, sep, r, s->exits[r]);
				sep = ",";
			}
		}
		printf("},\"map_gpa_range\":{");
		for (int d = 1; d >= 0; d--) {
			printf("\"to_%s\":{\"count\":%" PRIu64 ",\"pages\":%" PRIu64
			       ",\"requests\":%" PRIu64 ",\"gpas\":", direction[d], s->map_count[d],
			       s->map_pages[d], s->map_requests[d]);
			print_gpas(o, &vms[v], d ? KVMVM_EV_MAP_PRIVATE : KVMVM_EV_MAP_SHARED);
			printf("}%s", d ? "," : "");
		}
		printf("},\"memory_faults\":{\"shared\":%" PRIu64 ",\"private\":%" PRIu64
		       "},\"fault_pages\":{", s->memory_faults[0], s->memory_faults[1]);
		for (uint32_t k = 0; k < nr_fault_pages(o); k++)
			printf("%s\"%#" PRIx64 "\":%" PRIu64, k ? "," : "",
			       fault_page_gpa(o, k), s->fault_pages[k]);
		printf("},\"fault_gpas\":{\"private\":");
		print_gpas(o, &vms[v], KVMVM_EV_PRIVATE_FAULT);
		printf(",\"shared\":");
		print_gpas(o, &vms[v], KVMVM_EV_MEMORY_FAULT);
		printf("},\"mmio\":{");
		for (uint32_t i = 0; i < o->w.nr_mmio_gpas; i++)
			printf("%s\"%#" PRIx32 "\":%" PRIu64, i ? "," : "",
			       o->w.mmio_gpa[i], s->mmio[i]);
		printf("},\"unpinnable\":%" PRIu64 ",\"conversions\":{", s->unpinnable);
		for (int d = 1; d >= 0; d--) {
			printf("\"to_%s\":{\"count\":%" PRIu64 ",\"pages\":%" PRIu64
			       ",\"failed\":{", direction[d], s->conversions[d],
			       s->converted_pages[d]);
			if (s->conversions_failed[d])
				printf("\"EINVAL\":%" PRIu64, s->conversions_failed[d]);
			printf("},\"calls\":");
			print_calls(o, &vms[v], d);
			printf("},");
		}
		/* Only the private program records them. */
		if (o->w.private_rounds) {
			printf("\"directions\":");
			print_directions(o, &vms[v]);
			putchar(',');
		}
		printf("\"punches\":%" PRIu64 ",\"punched_pages\":%" PRIu64 "},\"checks\":%"
		       PRIu64 ",\"unexpected\":%" PRIu64 "}", s->punches, s->punched_pages,
		       s->checks, s->unexpected);
	}
	printf("]}\n");
}

static void print_summary(const struct options *o, const struct vm *vms)
{
	printf("vmm pid %d name %s: %" PRIu32 " VM(s) x %" PRIu32 " vCPU(s)\n",
	       (int)getpid(), o->name[0] ? o->name : "-", o->vms, o->vcpus);
	for (uint32_t v = 0; v < o->vms; v++) {
		const struct stats *s = &vms[v].total;

		printf("  VM %" PRIu32 ":", v);
		for (int r = 0; r < NR_REASONS; r++)
			if (s->exits[r])
				printf(" %s(%d)=%" PRIu64, reason_names[r] ? reason_names[r] : "?",
				       r, s->exits[r]);
		printf("; map to private %" PRIu64 " (%" PRIu64 " pages), to shared %"
		       PRIu64 " (%" PRIu64 " pages); memory faults shared %" PRIu64
		       " private %" PRIu64 "; unexpected %" PRIu64 "\n",
		       s->map_count[1], s->map_pages[1], s->map_count[0],
		       s->map_pages[0], s->memory_faults[0], s->memory_faults[1],
		       s->unexpected);
		if (o->w.private_rounds)
			printf("    converted to private %" PRIu64 " (%" PRIu64 " pages), to "
			       "shared %" PRIu64 " (%" PRIu64 " pages); punched %" PRIu64
			       " pages; unpinnable %" PRIu64 "; checks passed %" PRIu64 "\n",
			       s->conversions[1], s->converted_pages[1], s->conversions[0],
			       s->converted_pages[0], s->punched_pages, s->unpinnable, s->checks);
		for (uint32_t k = 0; k < nr_fault_pages(o); k++)
			printf("    fault page %#" PRIx64 ": %" PRIu64 "\n",
			       fault_page_gpa(o, k), s->fault_pages[k]);
	}
}

static int wait_for_file(const char *path)
{
	const struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };

	for (int i = 0; i < WAIT_FILE_SECS * 100; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		if (errno != ENOENT) {
			fprintf(stderr, "vmm: --wait-file %s: %s\n", path, strerror(errno));
			return -1;
		}
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "vmm: --wait-file %s: still missing after %d s; create it "
		"to release the VMM\n", path, WAIT_FILE_SECS);
	return -1;
}

/* Exit kinds that some kernels cannot produce: 1 yes, 0 no (exit 2), -1 error. */
static int probe(const struct options *o)
{
	if (o->w.map_private || o->w.map_shared)
		return kvmvm_probe_map_gpa_range();
	if (o->w.memory_faults)
		return kvmvm_probe_memory_faults();
	if (o->w.private_rounds)
		return swprot_probe();
	return 1;
}

static int setup_vm(struct vm *vm, const struct options *o)
{
	if (kvmvm_create_for(&vm->kvm, &o->w) < 0)
		return -1;
	if ((o->w.map_private || o->w.map_shared) &&
	    kvmvm_enable_map_gpa_range_exit(&vm->kvm) < 0)
		return -1;
	if (kvmvm_load(&vm->kvm, &o->w) < 0)
		return -1;
	vm->vcpus = calloc(o->vcpus, sizeof(*vm->vcpus));
	vm->total.fault_pages = calloc(nr_fault_pages(o) + 1, sizeof(uint64_t));
	if (!vm->vcpus || !vm->total.fault_pages) {
		fprintf(stderr, "vmm: out of memory for %" PRIu32 " vCPUs\n", o->vcpus);
		return -1;
	}
	for (uint32_t i = 0; i < o->vcpus; i++) {
		vm->vcpus[i].w = &o->w;
		vm->vcpus[i].st.fault_pages = calloc(nr_fault_pages(o) + 1, sizeof(uint64_t));
		if (!vm->vcpus[i].st.fault_pages) {
			fprintf(stderr, "vmm: out of memory for per-page counts\n");
			return -1;
		}
		if (kvmvm_create_vcpu(&vm->kvm, &vm->vcpus[i].vcpu, i) < 0)
			return -1;
	}
	return 0;
}

static void teardown_vm(struct vm *vm, const struct options *o)
{
	for (uint32_t i = 0; vm->vcpus && i < o->vcpus; i++) {
		if (vm->vcpus[i].vcpu.vm)
			kvmvm_destroy_vcpu(&vm->vcpus[i].vcpu);
		free(vm->vcpus[i].st.fault_pages);
		free(vm->vcpus[i].vcpu.directions);
	}
	free(vm->vcpus);
	free(vm->total.fault_pages);
	kvmvm_destroy(&vm->kvm);
}

int main(int argc, char **argv)
{
	struct options o;
	struct vm *vms;
	uint32_t nr_setup = 0;   /* VMs that teardown_vm() must release */
	bool ok = true;
	int err;

	parse_options(argc, argv, &o);
	err = probe(&o);
	if (err <= 0)
		return err == 0 ? EXIT_USAGE : 1;

	vms = calloc(o.vms, sizeof(*vms));
	if (!vms) {
		fprintf(stderr, "vmm: out of memory for %" PRIu32 " VMs\n", o.vms);
		return 1;
	}
	while (ok && nr_setup < o.vms)
		ok = setup_vm(&vms[nr_setup++], &o) == 0;
	if (ok && o.wait_file)
		ok = wait_for_file(o.wait_file) == 0;

	for (uint32_t v = 0; v < o.vms && ok; v++) {
		for (uint32_t i = 0; i < o.vcpus && ok; i++) {
			struct vcpu_thread *t = &vms[v].vcpus[i];

			/* One thread running many vCPU files, one after another. */
			if (o.one_thread) {
				vcpu_main(t);
				add_stats(&vms[v].total, &t->st, &o);
				continue;
			}
			err = pthread_create(&t->tid, NULL, vcpu_main, t);
			if (err) {
				fprintf(stderr, "vmm: pthread_create for VM %" PRIu32 " vCPU %"
					PRIu32 ": %s (lower --vms/--vcpus)\n", v, i, strerror(err));
				ok = false;
			}
			t->started = !err;
		}
	}
	bool ran = ok;
	/* Join whatever started, even after a failure, before tearing down. */
	for (uint32_t v = 0; v < o.vms; v++) {
		for (uint32_t i = 0; vms[v].vcpus && i < o.vcpus; i++) {
			struct vcpu_thread *t = &vms[v].vcpus[i];

			if (!t->started)
				continue;
			pthread_join(t->tid, NULL);
			add_stats(&vms[v].total, &t->st, &o);
		}
	}

	bool kept_promise = true;
	if (ran) {
		for (uint32_t v = 0; v < o.vms; v++) {
			ok &= vms[v].total.unexpected == 0;
			kept_promise &= check_counts(v, &vms[v], &o);
		}
		if (o.json)
			print_json(&o, vms);
		else
			print_summary(&o, vms);
		fflush(stdout);
		if (o.hold) {
			struct timespec hold = { .tv_sec = o.hold };

			while (nanosleep(&hold, &hold) < 0 && errno == EINTR)
				;
		}
	}
	for (uint32_t v = 0; v < nr_setup; v++)
		teardown_vm(&vms[v], &o);
	free(vms);
	return !ok ? 1 : kept_promise ? 0 : EXIT_DEVIATED;
}
