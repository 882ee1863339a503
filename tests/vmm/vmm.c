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
#define MAX_VMS          64
#define MAX_VCPUS        64
#define NR_REASONS       64   /* exit reasons tracked; larger are unexpected */
#define WAIT_FILE_SECS   10
#define MAX_HOLD_SECS    3600
#define MAX_NAME         64
#define DEFAULT_MMIO_GPA 0xa0000u   /* legacy VGA window: unbacked here */
#define DEFAULT_MAP_GPA  0x100000u
#define MAX_FAULT_PAGES  (1u << 20)  /* 4 GiB of 4 KiB pages */

struct stats {
	uint64_t exits[NR_REASONS];
	uint64_t map_count[2];   /* [0] to shared, [1] to private */
	uint64_t map_pages[2];
	uint64_t mmio[KVMVM_MAX_MMIO];
	uint64_t memory_faults;  /* expected exits 39 (all shared: flags 0) */
	uint64_t *fault_pages;   /* [w.fault_pages]: exits 39 per page */
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
"                     `out` to port %#x ends it (KVM_EXIT_IO, no hlt)\n"
"  --fault-pages K    pages written per vCPU (default 1)\n"
"  --fault-gpa GPA    first page (page aligned, default %#llx); the guest_memfd\n"
"                     slot covers the K pages, below 4 GiB\n"
"  --fault-stride B   bytes between pages (page multiple, default %u)\n"
"  --wait-file PATH   before running, wait up to %d s for PATH to exist\n"
"  --hold SECONDS     keep the VMs alive this long after the guests stop\n"
"  -name NAME | -name guest=NAME,...   QEMU-style name, echoed in the JSON\n"
"  --json             print one JSON object on stdout\n"
"  --one-thread       run every vCPU in the main thread, one after another\n"
"exit status: 0 ok, 1 runtime failure or unexpected exit, 2 bad usage or\n"
"             an exit kind this kernel cannot produce\n",
		MAX_VMS, MAX_VCPUS, KVMVM_RAM_SIZE, KVMVM_MMIO_LIMIT, DEFAULT_MMIO_GPA,
		KVMVM_MAX_MMIO, DEFAULT_MAP_GPA, KVMVM_DONE_PORT,
		(unsigned long long)KVMVM_FAULT_GPA, KVMVM_PAGE_SIZE, WAIT_FILE_SECS);
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
	       O_FAULT_GPA, O_FAULT_STRIDE, O_HLT,
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
	if (w->memory_faults && o->real_mode_opt) {
		fprintf(stderr, "vmm: --memory-faults replaces the real-mode guest: it "
			"cannot be combined with --%s (--io, --mmio*, --map-*, --hlt); run "
			"another vmm for those\n", o->real_mode_opt);
		exit(EXIT_USAGE);
	}
	if (!w->memory_faults && (w->fault_pages != 1 || w->fault_gpa != KVMVM_FAULT_GPA ||
				  w->fault_stride != KVMVM_PAGE_SIZE))
		usage_error("%s", "--fault-pages/--fault-gpa/--fault-stride need --memory-faults");
	if (!w->nr_mmio_gpas && !w->memory_faults)
		w->mmio_gpa[w->nr_mmio_gpas++] = DEFAULT_MMIO_GPA;
	if (kvmvm_validate(w) < 0)
		exit(EXIT_USAGE);
}

static void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	struct stats *st = &t->st;
	struct kvmvm_exit e;

	for (;;) {
		kvmvm_run_vcpu(&t->vcpu, t->w, &e);
		if (e.reason < NR_REASONS)
			st->exits[e.reason]++;
		switch (e.ev) {
		case KVMVM_EV_IO:
		case KVMVM_EV_INTR:
			break;
		case KVMVM_EV_MMIO:
			st->mmio[e.mmio_index]++;
			break;
		case KVMVM_EV_MAP_PRIVATE:
		case KVMVM_EV_MAP_SHARED: {
			int priv = e.ev == KVMVM_EV_MAP_PRIVATE;

			st->map_count[priv]++;
			st->map_pages[priv] += e.pages;
			break;
		}
		case KVMVM_EV_MEMORY_FAULT:
			st->memory_faults++;
			st->fault_pages[e.fault_page]++;
			break;
		case KVMVM_EV_HLT:
		case KVMVM_EV_DONE:
			return NULL;
		case KVMVM_EV_UNEXPECTED:
			/* The guest state is unknown now: stop this vCPU. */
			st->unexpected++;
			kvmvm_report(&t->vcpu, &e);
			return NULL;
		}
	}
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
	}
	for (int i = 0; i < KVMVM_MAX_MMIO; i++)
		to->mmio[i] += from->mmio[i];
	to->memory_faults += from->memory_faults;
	for (uint32_t k = 0; k < nr_fault_pages(o); k++)
		to->fault_pages[k] += from->fault_pages[k];
	to->unexpected += from->unexpected;
}

/* Compare what the VM did with what the workload promises. */
static bool check_counts(uint32_t index, const struct stats *s, const struct options *o)
{
	const struct kvmvm_workload *w = &o->w;
	const bool faults = w->memory_faults;
	/* Per vCPU: exits 39 on each page; the fault guest ends with `out`. */
	const uint64_t per_page = (uint64_t)w->memory_faults * o->vcpus;
	const struct { int reason; uint64_t want; } expect[] = {
		{ KVM_EXIT_IO, faults ? o->vcpus : (uint64_t)w->io * o->vcpus },
		{ KVM_EXIT_MMIO, (uint64_t)w->mmio * o->vcpus },
		{ KVM_EXIT_HYPERCALL, ((uint64_t)w->map_private + w->map_shared) * o->vcpus },
		{ KVM_EXIT_HLT, faults ? 0 : o->vcpus },
		{ KVM_EXIT_MEMORY_FAULT, per_page * nr_fault_pages(o) },
	};
	bool ok = s->unexpected == 0;

	if (s->memory_faults != per_page * nr_fault_pages(o)) {
		fprintf(stderr, "vmm: VM %" PRIu32 ": %" PRIu64 " expected memory faults, "
			"expected %" PRIu64 "\n", index, s->memory_faults,
			per_page * nr_fault_pages(o));
		ok = false;
	}
	for (uint32_t k = 0; k < nr_fault_pages(o); k++) {
		if (s->fault_pages[k] != per_page) {
			fprintf(stderr, "vmm: VM %" PRIu32 ": %" PRIu64 " memory faults on page "
				"%#" PRIx64 ", expected %" PRIu64 "\n", index, s->fault_pages[k],
				fault_page_gpa(o, k), per_page);
			ok = false;
		}
	}

	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		uint64_t got = s->exits[expect[i].reason];

		if (got != expect[i].want) {
			fprintf(stderr, "vmm: VM %" PRIu32 ": %" PRIu64 " KVM_EXIT_%s exits, "
				"expected %" PRIu64 "\n", index, got,
				reason_names[expect[i].reason], expect[i].want);
			ok = false;
		}
	}
	return ok;
}

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
		printf("},\"map_gpa_range\":{\"to_private\":{\"count\":%" PRIu64
		       ",\"pages\":%" PRIu64 "},\"to_shared\":{\"count\":%" PRIu64
		       ",\"pages\":%" PRIu64 "}},\"memory_faults\":{\"shared\":%" PRIu64
		       ",\"private\":0},\"fault_pages\":{",
		       s->map_count[1], s->map_pages[1], s->map_count[0], s->map_pages[0],
		       s->memory_faults);
		for (uint32_t k = 0; k < nr_fault_pages(o); k++)
			printf("%s\"%#" PRIx64 "\":%" PRIu64, k ? "," : "",
			       fault_page_gpa(o, k), s->fault_pages[k]);
		printf("},\"mmio\":{");
		for (uint32_t i = 0; i < o->w.nr_mmio_gpas; i++)
			printf("%s\"%#" PRIx32 "\":%" PRIu64, i ? "," : "",
			       o->w.mmio_gpa[i], s->mmio[i]);
		printf("},\"unexpected\":%" PRIu64 "}", s->unexpected);
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
		       " private 0; unexpected %" PRIu64 "\n",
		       s->map_count[1], s->map_pages[1], s->map_count[0],
		       s->map_pages[0], s->memory_faults, s->unexpected);
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

static int setup_vm(struct vm *vm, const struct options *o)
{
	if (kvmvm_create(&vm->kvm) < 0)
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
	if (o.w.map_private || o.w.map_shared) {
		int r = kvmvm_probe_map_gpa_range();

		if (r <= 0)
			return r == 0 ? EXIT_USAGE : 1;
	}

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

	if (ran) {
		for (uint32_t v = 0; v < o.vms; v++)
			ok &= check_counts(v, &vms[v].total, &o);
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
	return ok ? 0 : 1;
}
