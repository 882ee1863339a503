// SPDX-License-Identifier: GPL-2.0
/* swprot: the private-memory program of kvmvm; see swprot.h. */
#define _GNU_SOURCE
#include "swprot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CODE_GPA    0xa000u
#define GDT_GPA     0xb000u
#define SEL_CODE64  0x08        /* GDT index 1 */
#define SEL_DATA    0x10        /* GDT index 2 */
#define SLOT_BASE   1           /* after memslot 0 (RAM) */
#define MAP_HALF    (SWPROT_MAP_PAGES / 2)

/*
 * Each vCPU owns VCPU_PAGES pages of the VM's host memory (the shared view
 * of every slot) and the same pages of its guest_memfd (the private view).
 */
enum { HOST_MAP = 0, HOST_P2 = 4, HOST_S1 = 5, HOST_P1 = 6, HOST_UNPIN = 7, VCPU_PAGES };
/* Memslots of vCPU i: SLOT_BASE + i * NR_SLOTS + enum. */
enum { SLOT_MAP, SLOT_P1, SLOT_P2, SLOT_S1, NR_SLOTS };

static const struct {
	uint32_t offset;        /* GPA in the vCPU's window */
	uint32_t pages;
	uint32_t host_page;     /* first page in the vCPU's share */
	bool gmem;              /* KVM_MEM_GUEST_MEMFD: can be private */
} slots[NR_SLOTS] = {
	[SLOT_MAP] = { SWPROT_MAP, SWPROT_MAP_PAGES, HOST_MAP, true },
	[SLOT_P1] = { SWPROT_P1, 2, HOST_P1, false },   /* P1, then UNPIN */
	[SLOT_P2] = { SWPROT_P2, 1, HOST_P2, true },
	[SLOT_S1] = { SWPROT_S1, 1, HOST_S1, true },
};
_Static_assert(SWPROT_UNPIN == SWPROT_P1 + KVMVM_PAGE_SIZE && HOST_UNPIN == HOST_P1 + 1,
	       "UNPIN is the second page of the P1 slot");
_Static_assert(SWPROT_MAP == 0, "the guest code addresses the MAP pages as rdi");
_Static_assert(HOST_MAP + SWPROT_MAP_PAGES <= HOST_P2, "host pages overlap");
_Static_assert(SWPROT_WINDOW_BASE + SWPROT_MAX_VCPUS * SWPROT_WINDOW_SIZE <= KVMVM_FAULT_LIMIT,
	       "windows must lie in the identity map");

struct swprot_vm {
	int gmem_fd;
	uint8_t *host;          /* VCPU_PAGES per vCPU, SWPROT_MAX_VCPUS vCPUs */
	uint32_t rounds;
	uint32_t round_gap_ms;
};

#define HOST_BYTES ((size_t)SWPROT_MAX_VCPUS * VCPU_PAGES * KVMVM_PAGE_SIZE)
#define LE32(x) (uint8_t)(uint32_t)(x), (uint8_t)((uint32_t)(x) >> 8), \
		(uint8_t)((uint32_t)(x) >> 16), (uint8_t)((uint32_t)(x) >> 24)

const struct swprot_step_info swprot_steps[SWPROT_NR_STEPS] = {
	[SWPROT_ROUND] = {
		.ev = KVMVM_EV_IO, .reason = KVM_EXIT_IO,
		.to_private = 1, .to_private_pages = 1,        /* P1 */
		.what = "`out` beginning a round" },
	[SWPROT_MAP_PRIVATE] = {
		.ev = KVMVM_EV_MAP_PRIVATE, .reason = KVM_EXIT_HYPERCALL,
		.offset = SWPROT_MAP, .pages = SWPROT_MAP_PAGES,
		.to_private = 1, .to_private_pages = SWPROT_MAP_PAGES,
		.what = "MAP_GPA_RANGE to private" },
	[SWPROT_MAP_SHARED_LO] = {
		.ev = KVMVM_EV_MAP_SHARED, .reason = KVM_EXIT_HYPERCALL,
		.offset = SWPROT_MAP, .pages = MAP_HALF,
		.to_shared = 1, .to_shared_pages = MAP_HALF,
		.what = "MAP_GPA_RANGE to shared (first half)" },
	[SWPROT_MAP_SHARED_HI] = {
		.ev = KVMVM_EV_MAP_SHARED, .reason = KVM_EXIT_HYPERCALL,
		.offset = SWPROT_MAP + MAP_HALF * KVMVM_PAGE_SIZE, .pages = MAP_HALF,
		.to_shared = 1, .to_shared_pages = MAP_HALF,
		.what = "MAP_GPA_RANGE to shared (second half)" },
	[SWPROT_FAULT_P1] = {
		.ev = KVMVM_EV_PRIVATE_FAULT, .reason = KVM_EXIT_MEMORY_FAULT,
		.offset = SWPROT_P1,
		.to_shared = 1, .to_shared_pages = 1,
		.what = "private fault on a PRIVATE page of a slot without guest_memfd" },
	[SWPROT_FAULT_UNPIN] = {
		.ev = KVMVM_EV_EFAULT, .reason = KVM_EXIT_UNKNOWN, .offset = SWPROT_UNPIN,
		.what = "KVM_RUN EFAULT (exit 0) on a shared page whose host mapping is "
			"PROT_NONE" },
	[SWPROT_FAULT_P2] = {
		.ev = KVMVM_EV_PRIVATE_FAULT, .reason = KVM_EXIT_MEMORY_FAULT,
		.offset = SWPROT_P2,
		.what = "private fault on a PRIVATE page without a memslot" },
	[SWPROT_MMIO_S1] = {
		.ev = KVMVM_EV_MMIO, .reason = KVM_EXIT_MMIO, .offset = SWPROT_S1,
		.to_private = 1, .to_private_pages = 1,
		.what = "8-byte MMIO write to a shared page without a memslot" },
	[SWPROT_FAULT_S1] = {
		.ev = KVMVM_EV_MEMORY_FAULT, .reason = KVM_EXIT_MEMORY_FAULT,
		.offset = SWPROT_S1,
		.to_shared = 1, .to_shared_pages = 1,
		.what = "shared fault through the stale MMIO SPTE of a page now PRIVATE "
			"with a guest_memfd slot" },
};

/*
 * 64-bit program, loaded at CODE_GPA, entered at CPL 0 with rdi = window,
 * esi = rounds. Markers: r8 = rdi + 2 * rounds left (written to shared
 * pages), r9 = r8 + 1 (to private ones), so the VMM can tell them apart.
 * `vmmcall` is AMD's; on Intel KVM rewrites it to `vmcall` on its #UD, as it
 * does the real-mode program's `vmcall` on AMD.
 */
static const uint8_t code[] = {
	/* round: */
	/* 0x00 */ 0xe6, KVMVM_ROUND_PORT,          /* out ROUND, al    -> EXIT_IO   */
	/* 0x02 */ 0x4c, 0x8d, 0x04, 0x77,          /* lea r8, [rdi + rsi*2]         */
	/* 0x06 */ 0x4d, 0x8d, 0x48, 0x01,          /* lea r9, [r8 + 1]              */
	/* 0x0a */ 0xb8, LE32(KVM_HC_MAP_GPA_RANGE), /* mov eax, 12                  */
	/* 0x0f */ 0x48, 0x89, 0xfb,                /* mov rbx, rdi                  */
	/* 0x12 */ 0xb9, LE32(SWPROT_MAP_PAGES),    /* mov ecx, pages                */
	/* 0x17 */ 0xba, LE32(KVMVM_MAP_TO_PRIVATE), /* mov edx, to private          */
	/* 0x1c */ 0x0f, 0x01, 0xd9,                /* vmmcall    -> EXIT_HYPERCALL  */
	/* 0x1f */ 0x48, 0x85, 0xc0,                /* test rax, rax                 */
	/* 0x22 */ 0x0f, 0x85, LE32(0xc7 - 0x28),   /* jnz hc_fail                   */
	/* 0x28 */ 0x48, 0x89, 0xfb,                /* mov rbx, rdi                  */
	/* 0x2b */ 0xb9, LE32(SWPROT_MAP_PAGES),    /* mov ecx, pages                */
	/* private_loop: fresh (hole punched), then holds what was written */
	/* 0x30 */ 0x48, 0x83, 0x3b, 0x00,          /* cmp qword [rbx], 0            */
	/* 0x34 */ 0x0f, 0x85, LE32(0xcb - 0x3a),   /* jnz check_fail                */
	/* 0x3a */ 0x4c, 0x89, 0x0b,                /* mov [rbx], r9                 */
	/* 0x3d */ 0x4c, 0x39, 0x0b,                /* cmp [rbx], r9                 */
	/* 0x40 */ 0x0f, 0x85, LE32(0xcb - 0x46),   /* jnz check_fail                */
	/* 0x46 */ 0x48, 0x81, 0xc3, LE32(KVMVM_PAGE_SIZE), /* add rbx, 4096         */
	/* 0x4d */ 0xff, 0xc9,                      /* dec ecx                       */
	/* 0x4f */ 0x75, 0xdf,                      /* jnz private_loop (0x30)       */
	/* 0x51 */ 0xb8, LE32(KVM_HC_MAP_GPA_RANGE), /* mov eax, 12                  */
	/* 0x56 */ 0x48, 0x89, 0xfb,                /* mov rbx, rdi                  */
	/* 0x59 */ 0xb9, LE32(MAP_HALF),            /* mov ecx, half                 */
	/* 0x5e */ 0x31, 0xd2,                      /* xor edx, edx (to shared)      */
	/* 0x60 */ 0x0f, 0x01, 0xd9,                /* vmmcall    -> EXIT_HYPERCALL  */
	/* 0x63 */ 0x48, 0x85, 0xc0,                /* test rax, rax                 */
	/* 0x66 */ 0x75, 0xc7 - 0x68,               /* jnz hc_fail                   */
	/* 0x68 */ 0xb8, LE32(KVM_HC_MAP_GPA_RANGE), /* mov eax, 12                  */
	/* 0x6d */ 0x48, 0x8d, 0x9f, LE32(MAP_HALF * KVMVM_PAGE_SIZE), /* lea rbx, [rdi + half] */
	/* 0x74 */ 0xb9, LE32(MAP_HALF),            /* mov ecx, half                 */
	/* 0x79 */ 0x31, 0xd2,                      /* xor edx, edx (to shared)      */
	/* 0x7b */ 0x0f, 0x01, 0xd9,                /* vmmcall    -> EXIT_HYPERCALL  */
	/* 0x7e */ 0x48, 0x85, 0xc0,                /* test rax, rax                 */
	/* 0x81 */ 0x75, 0xc7 - 0x83,               /* jnz hc_fail                   */
	/* 0x83 */ 0x48, 0x89, 0xfb,                /* mov rbx, rdi                  */
	/* 0x86 */ 0xb9, LE32(SWPROT_MAP_PAGES),    /* mov ecx, pages                */
	/* shared_loop: */
	/* 0x8b */ 0x4c, 0x89, 0x03,                /* mov [rbx], r8                 */
	/* 0x8e */ 0x48, 0x81, 0xc3, LE32(KVMVM_PAGE_SIZE), /* add rbx, 4096         */
	/* 0x95 */ 0xff, 0xc9,                      /* dec ecx                       */
	/* 0x97 */ 0x75, 0xf2,                      /* jnz shared_loop (0x8b)        */
	/* 0x99 */ 0x4c, 0x89, 0x87, LE32(SWPROT_P1),    /* mov [rdi + P1], r8  -> private fault */
	/* 0xa0 */ 0x4c, 0x89, 0x87, LE32(SWPROT_UNPIN), /* mov [rdi + UNPIN], r8 -> EFAULT     */
	/* 0xa7 */ 0x4c, 0x89, 0x87, LE32(SWPROT_P2),    /* mov [rdi + P2], r8  -> private fault */
	/* 0xae */ 0x4c, 0x89, 0x87, LE32(SWPROT_S1),    /* mov [rdi + S1], r8  -> EXIT_MMIO     */
	/* 0xb5 */ 0x4c, 0x89, 0x87, LE32(SWPROT_S1),    /* mov [rdi + S1], r8  -> shared fault  */
	/* 0xbc */ 0xff, 0xce,                      /* dec esi                       */
	/* 0xbe */ 0x0f, 0x85, LE32(0x00 - 0xc4),   /* jnz round                     */
	/* 0xc4 */ 0xf4,                            /* hlt            -> EXIT_HLT    */
	/* 0xc5 */ 0xeb, 0xfd,                      /* jmp 0xc4                      */
	/* hc_fail: eax = what KVM_HC_MAP_GPA_RANGE returned */
	/* 0xc7 */ 0xe7, KVMVM_ERR_PORT,            /* out ERR, eax   -> EXIT_IO     */
	/* 0xc9 */ 0xeb, 0xfc,                      /* jmp 0xc7                      */
	/* check_fail: rbx = the private page that did not hold what it should */
	/* 0xcb */ 0xe6, KVMVM_CHECK_PORT,          /* out CHECK, al  -> EXIT_IO     */
	/* 0xcd */ 0xeb, 0xfc,                      /* jmp 0xcb                      */
};
_Static_assert(sizeof(code) == 0xcf, "jump offsets are hand-computed");

/* Flat descriptors matching the entry state, for anything that reloads them. */
static const uint64_t gdt[] = {
	0,
	0x00af9b000000ffffull,  /* SEL_CODE64: present, DPL 0, L, execute/read */
	0x00cf93000000ffffull,  /* SEL_DATA: present, DPL 0, read/write */
};

static uint8_t *host_page(const struct kvmvcpu *vcpu, uint32_t page)
{
	return vcpu->vm->swprot->host +
	       ((size_t)vcpu->id * VCPU_PAGES + page) * KVMVM_PAGE_SIZE;
}

static uint64_t host_offset(const struct kvmvcpu *vcpu, uint32_t page)
{
	return ((uint64_t)vcpu->id * VCPU_PAGES + page) * KVMVM_PAGE_SIZE;
}

static int set_slot(struct kvmvcpu *vcpu, int which, bool present)
{
	const struct kvmvm_memory_region2 r = {
		.slot = SLOT_BASE + vcpu->id * NR_SLOTS + (uint32_t)which,
		.flags = slots[which].gmem ? KVMVM_MEM_GUEST_MEMFD : 0,
		.guest_phys_addr = swprot_window(vcpu->id) + slots[which].offset,
		.memory_size = present ? (uint64_t)slots[which].pages * KVMVM_PAGE_SIZE : 0,
		.userspace_addr = (uintptr_t)host_page(vcpu, slots[which].host_page),
		.guest_memfd_offset = slots[which].gmem ?
				      host_offset(vcpu, slots[which].host_page) : 0,
		.guest_memfd = slots[which].gmem ? (uint32_t)vcpu->vm->swprot->gmem_fd : 0,
	};

	return kvmvm_set_region(vcpu->vm, &r);
}

/* Every call, by target, GPA and size: what memfaulttop must count. */
static int record_call(struct kvmvcpu *vcpu, uint64_t gpa, uint64_t bytes, bool private)
{
	struct kvmvm_conversion *c = vcpu->calls;

	while (c < vcpu->calls + vcpu->nr_calls &&
	       (c->gpa != gpa || c->bytes != bytes || c->private != private))
		c++;
	if (c == vcpu->calls + KVMVM_MAX_CONVERSION_SITES) {
		fprintf(stderr, "vCPU %u: more than %d conversion sites: raise "
			"KVMVM_MAX_CONVERSION_SITES\n", vcpu->id, KVMVM_MAX_CONVERSION_SITES);
		return -1;
	}
	if (c == vcpu->calls + vcpu->nr_calls) {
		*c = (struct kvmvm_conversion){ .gpa = gpa, .bytes = bytes, .private = private };
		vcpu->nr_calls++;
	}
	c->count++;
	return 0;
}

static int record_direction(struct kvmvcpu *vcpu, uint64_t gpa, bool private, bool conversion)
{
	if (vcpu->nr_directions == vcpu->cap_directions) {
		uint32_t cap = vcpu->cap_directions ? 2 * vcpu->cap_directions : 64;
		struct kvmvm_direction *d = realloc(vcpu->directions, cap * sizeof(*d));

		if (!d) {
			fprintf(stderr, "vCPU %u: out of memory for %u directions\n", vcpu->id, cap);
			return -1;
		}
		vcpu->directions = d;
		vcpu->cap_directions = cap;
	}
	vcpu->directions[vcpu->nr_directions++] =
		(struct kvmvm_direction){ gpa, private, conversion };
	return 0;
}

/* A conversion the kernel must refuse: a size that is no page multiple. */
static int convert_unaligned(struct kvmvcpu *vcpu, uint64_t gpa)
{
	const struct kvmvm_memory_attributes a = {
		.address = gpa,
		.size = SWPROT_FAILING_BYTES,
		.attributes = KVMVM_MEMORY_ATTRIBUTE_PRIVATE,
	};

	if (ioctl(vcpu->vm->vm_fd, KVMVM_SET_MEMORY_ATTRIBUTES, &a) == 0 || errno != EINVAL) {
		fprintf(stderr, "vCPU %u: KVM_SET_MEMORY_ATTRIBUTES of %u bytes at %#llx did not "
			"fail with EINVAL: %s\n", vcpu->id, SWPROT_FAILING_BYTES,
			(unsigned long long)gpa, strerror(errno));
		return -1;
	}
	vcpu->conversions_failed[1]++;
	return record_call(vcpu, gpa, SWPROT_FAILING_BYTES, true);
}

/* KVM_SET_MEMORY_ATTRIBUTES: the conversion itself, counted by direction. */
static int convert(struct kvmvcpu *vcpu, uint64_t gpa, uint32_t pages, bool private)
{
	const struct kvmvm_memory_attributes a = {
		.address = gpa,
		.size = (uint64_t)pages * KVMVM_PAGE_SIZE,
		.attributes = private ? KVMVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};

	if (ioctl(vcpu->vm->vm_fd, KVMVM_SET_MEMORY_ATTRIBUTES, &a) < 0) {
		fprintf(stderr, "vCPU %u: KVM_SET_MEMORY_ATTRIBUTES %#llx + %u pages to %s: "
			"%s (KVM_CAP_MEMORY_ATTRIBUTES = %d on this VM)\n", vcpu->id,
			(unsigned long long)gpa, pages, private ? "private" : "shared",
			strerror(errno), ioctl(vcpu->vm->vm_fd, KVM_CHECK_EXTENSION,
					       KVMVM_CAP_MEMORY_ATTRIBUTES));
		return -1;
	}
	vcpu->conversions[private]++;
	vcpu->converted_pages[private] += pages;
	return record_call(vcpu, gpa, a.size, private) < 0 ||
	       record_direction(vcpu, gpa, private, true) < 0 ? -1 : 0;
}

/* What a VMM does on the way to shared: free the private copy. */
static int punch(struct kvmvcpu *vcpu, uint32_t page, uint32_t pages)
{
	if (fallocate(vcpu->vm->swprot->gmem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)host_offset(vcpu, page), (off_t)pages * KVMVM_PAGE_SIZE) < 0) {
		fprintf(stderr, "vCPU %u: fallocate(PUNCH_HOLE) of %u guest_memfd pages: %s\n",
			vcpu->id, pages, strerror(errno));
		return -1;
	}
	vcpu->punches++;
	vcpu->punched_pages += pages;
	return 0;
}

static int unpin(struct kvmvcpu *vcpu, bool blocked)
{
	if (mprotect(host_page(vcpu, HOST_UNPIN), KVMVM_PAGE_SIZE,
		     blocked ? PROT_NONE : PROT_READ | PROT_WRITE) < 0) {
		fprintf(stderr, "vCPU %u: mprotect of the UNPIN page: %s\n", vcpu->id,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* The shared view of a page must hold what the VMM knows was written there. */
static int check_page(struct kvmvcpu *vcpu, uint32_t page, uint64_t want, const char *what)
{
	uint64_t got;

	memcpy(&got, host_page(vcpu, page), sizeof(got));
	if (got != want) {
		fprintf(stderr, "vCPU %u round %u: the shared view of %s holds %#llx, "
			"expected %#llx: private and shared memory are not kept apart\n",
			vcpu->id, vcpu->round, what, (unsigned long long)got,
			(unsigned long long)want);
		return -1;
	}
	vcpu->checks++;
	return 0;
}

/* What the guest wrote to shared pages in the last of `done` rounds, 0 if none. */
static uint64_t last_shared_marker(const struct kvmvcpu *vcpu, uint32_t done)
{
	if (done == 0)
		return 0;
	/* The guest's marker: window + 2 x rounds left, counted from `rounds` down. */
	return swprot_window(vcpu->id) + 2ull * (vcpu->vm->swprot->rounds - (done - 1));
}

/*
 * After a round (vcpu->round of them done): the shared writes are in host
 * memory, the private one is not. Checks every page, to report them all.
 */
static int check_round(struct kvmvcpu *vcpu)
{
	const uint64_t marker = last_shared_marker(vcpu, vcpu->round);

	return check_page(vcpu, HOST_P1, marker, "P1 (served as shared)") |
	       check_page(vcpu, HOST_UNPIN, marker, "UNPIN") |
	       check_page(vcpu, HOST_S1, marker, "S1 (served as shared)") |
	       check_page(vcpu, HOST_P2, 0, "P2 (written as private)");
}

/* A conversion storm that lasts (tests reading a live view need time). */
static void pause_ms(uint32_t ms)
{
	struct timespec left = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&left, &left) < 0 && errno == EINTR)
		;
}

static int arm_round(struct kvmvcpu *vcpu)
{
	const uint64_t window = swprot_window(vcpu->id);

	if (vcpu->round > 0 && (check_round(vcpu) < 0 ||
				set_slot(vcpu, SLOT_P2, false) < 0 ||
				set_slot(vcpu, SLOT_S1, false) < 0))
		return -1;
	if (vcpu->round > 0 && vcpu->vm->swprot->round_gap_ms)
		pause_ms(vcpu->vm->swprot->round_gap_ms);
	/* P2 stays PRIVATE: from now on only its memslot comes and goes. */
	if (vcpu->round == 0 && convert(vcpu, window + SWPROT_P2, 1, true) < 0)
		return -1;
	vcpu->round++;
	return convert_unaligned(vcpu, window + SWPROT_P1) < 0 ||
	       convert(vcpu, window + SWPROT_P1, 1, true) < 0 || unpin(vcpu, true) < 0 ?
	       -1 : 0;
}

/* The private writes of this round must not show in the shared view. */
static int serve_map_shared(struct kvmvcpu *vcpu, uint64_t gpa, uint32_t first)
{
	for (uint32_t k = first; k < first + MAP_HALF; k++)
		if (check_page(vcpu, HOST_MAP + k, last_shared_marker(vcpu, vcpu->round - 1),
			       "a MAP_GPA_RANGE page (written as private)") < 0)
			return -1;
	return convert(vcpu, gpa, MAP_HALF, false) < 0 ||
	       punch(vcpu, HOST_MAP + first, MAP_HALF) < 0 ? -1 : 0;
}

/* Serve a matched exit the way a VMM of a confidential VM would. */
static int serve(struct kvmvcpu *vcpu, enum swprot_step step, uint64_t gpa)
{
	switch (step) {
	case SWPROT_ROUND:
		return arm_round(vcpu);
	case SWPROT_MAP_PRIVATE:
		vcpu->run->hypercall.ret = 0;
		return convert(vcpu, gpa, SWPROT_MAP_PAGES, true);
	case SWPROT_MAP_SHARED_LO:
		vcpu->run->hypercall.ret = 0;
		return serve_map_shared(vcpu, gpa, 0);
	case SWPROT_MAP_SHARED_HI:
		vcpu->run->hypercall.ret = 0;
		return serve_map_shared(vcpu, gpa, MAP_HALF);
	case SWPROT_FAULT_P1:
		/* The slot can only back shared memory. */
		return convert(vcpu, gpa, 1, false);
	case SWPROT_FAULT_UNPIN:
		return unpin(vcpu, false);
	case SWPROT_FAULT_P2:
		/* Back the page with private memory: plug in its guest_memfd slot. */
		return set_slot(vcpu, SLOT_P2, true);
	case SWPROT_MMIO_S1:
		/*
		 * The page becomes private memory. Setting the attribute while no
		 * memslot covers it zaps nothing, and adding the slot only makes
		 * the MMIO SPTE KVM cached stale: the next access still takes the
		 * reserved-bit path, which KVM treats as shared.
		 */
		return convert(vcpu, gpa, 1, true) < 0 || set_slot(vcpu, SLOT_S1, true) < 0 ?
		       -1 : 0;
	case SWPROT_FAULT_S1:
		return convert(vcpu, gpa, 1, false);
	case SWPROT_NR_STEPS:
		break;
	}
	return -1;
}

/* Whether the exit KVM_RUN returned is exactly `step` at `gpa`. */
static bool matches(const struct kvmvcpu *vcpu, const struct kvmvm_exit *e,
		    const struct swprot_step_info *s, uint64_t gpa)
{
	const struct kvm_run *run = vcpu->run;
	const bool fails = s->reason == KVM_EXIT_MEMORY_FAULT || s->ev == KVMVM_EV_EFAULT;

	if (e->reason != s->reason || e->err != (fails ? EFAULT : 0))
		return false;
	switch (s->ev) {
	case KVMVM_EV_IO:
		return run->io.direction == KVM_EXIT_IO_OUT && run->io.port == KVMVM_ROUND_PORT &&
		       run->io.size == 1 && run->io.count == 1;
	case KVMVM_EV_MAP_PRIVATE:
	case KVMVM_EV_MAP_SHARED:
		return run->hypercall.nr == KVM_HC_MAP_GPA_RANGE &&
		       run->hypercall.args[0] == gpa && run->hypercall.args[1] == s->pages &&
		       run->hypercall.args[2] ==
		       (s->ev == KVMVM_EV_MAP_PRIVATE ? KVMVM_MAP_TO_PRIVATE : 0);
	case KVMVM_EV_PRIVATE_FAULT:
	case KVMVM_EV_MEMORY_FAULT: {
		const struct kvmvm_memory_fault mf = kvmvm_memory_fault(run);

		return mf.gpa == gpa && mf.size == KVMVM_PAGE_SIZE &&
		       mf.flags == (s->ev == KVMVM_EV_PRIVATE_FAULT ?
				    KVM_MEMORY_EXIT_FLAG_PRIVATE : 0);
	}
	case KVMVM_EV_MMIO:
		return run->mmio.is_write && run->mmio.len == 8 && run->mmio.phys_addr == gpa;
	case KVMVM_EV_EFAULT:
		return true;    /* run->memory_fault is stale: nothing else to compare */
	default:
		return false;
	}
}

void swprot_serve(struct kvmvcpu *vcpu, struct kvmvm_exit *e)
{
	const struct swprot_step_info *s = &swprot_steps[vcpu->step];
	const uint64_t gpa = swprot_window(vcpu->id) + s->offset;

	/* After the last round the guest halts. */
	if (vcpu->step == SWPROT_ROUND && vcpu->round == vcpu->vm->swprot->rounds) {
		if (!e->err && e->reason == KVM_EXIT_HLT && check_round(vcpu) == 0)
			e->ev = KVMVM_EV_HLT;
		return;
	}
	if (!matches(vcpu, e, s, gpa))
		return;
	/* The exit's own direction comes before the conversions serving it. */
	if ((s->ev == KVMVM_EV_MAP_PRIVATE || s->ev == KVMVM_EV_MAP_SHARED ||
	     s->ev == KVMVM_EV_PRIVATE_FAULT || s->ev == KVMVM_EV_MEMORY_FAULT) &&
	    record_direction(vcpu, gpa, s->ev == KVMVM_EV_MAP_PRIVATE ||
			     s->ev == KVMVM_EV_PRIVATE_FAULT, false) < 0)
		return;
	if (serve(vcpu, vcpu->step, gpa) < 0)
		return;
	e->ev = s->ev;
	e->step = vcpu->step;
	e->gpa = gpa;
	e->pages = s->pages;
	vcpu->step = (vcpu->step + 1) % SWPROT_NR_STEPS;
}

void swprot_report(const struct kvmvcpu *vcpu)
{
	const struct swprot_step_info *s = &swprot_steps[vcpu->step];
	struct kvm_regs regs;

	if (vcpu->run->exit_reason == KVM_EXIT_IO && vcpu->run->io.port == KVMVM_CHECK_PORT &&
	    kvmvm_get_regs(vcpu, &regs) == 0)
		fprintf(stderr, "vCPU %u round %u: the guest found private page %#llx "
			"not fresh after a hole punch, or not holding what it wrote\n",
			vcpu->id, vcpu->round, (unsigned long long)regs.rbx);
	if (vcpu->step == SWPROT_ROUND && vcpu->round == vcpu->vm->swprot->rounds)
		fprintf(stderr, "vCPU %u: expected KVM_EXIT_HLT after round %u\n",
			vcpu->id, vcpu->round);
	else
		fprintf(stderr, "vCPU %u round %u: expected %s at GPA %#llx (exit reason %u)\n",
			vcpu->id, vcpu->round, s->what,
			(unsigned long long)(swprot_window(vcpu->id) + s->offset), s->reason);
}

int swprot_probe(void)
{
	const struct kvmvm_workload w = { .private_rounds = 1 };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	struct kvmvm vm;
	int types, attrs, gmem, exits, ok;

	if (kvm < 0) {
		fprintf(stderr, "open /dev/kvm: %s (needs root or the kvm group, and a "
			"kernel with KVM enabled)\n", strerror(errno));
		return -1;
	}
	types = ioctl(kvm, KVM_CHECK_EXTENSION, KVMVM_CAP_VM_TYPES);
	close(kvm);
	if (types < 0 || !(types & (1 << KVMVM_X86_SW_PROTECTED_VM))) {
		fprintf(stderr, "this kernel cannot make SW-protected VMs: KVM_CAP_VM_TYPES "
			"= %#x lacks KVM_X86_SW_PROTECTED_VM (needs Linux 6.8+ built with "
			"CONFIG_KVM_SW_PROTECTED_VM, and the TDP MMU)\n", types);
		return 0;
	}
	if (kvmvm_create_for(&vm, &w) < 0)
		return -1;
	attrs = ioctl(vm.vm_fd, KVM_CHECK_EXTENSION, KVMVM_CAP_MEMORY_ATTRIBUTES);
	gmem = ioctl(vm.vm_fd, KVM_CHECK_EXTENSION, KVMVM_CAP_GUEST_MEMFD);
	exits = ioctl(vm.vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_EXIT_HYPERCALL);
	kvmvm_destroy(&vm);
	ok = attrs > 0 && (attrs & KVMVM_MEMORY_ATTRIBUTE_PRIVATE) && gmem > 0 &&
	     exits > 0 && (exits & (1 << KVM_HC_MAP_GPA_RANGE));
	if (!ok)
		fprintf(stderr, "this kernel's SW-protected VMs lack what the private "
			"program needs: KVM_CAP_MEMORY_ATTRIBUTES = %#x (needs PRIVATE, "
			"%#llx), KVM_CAP_GUEST_MEMFD = %d, KVM_CAP_EXIT_HYPERCALL = %#x "
			"(needs 1 << %d)\n", attrs, KVMVM_MEMORY_ATTRIBUTE_PRIVATE, gmem,
			exits, KVM_HC_MAP_GPA_RANGE);
	return ok;
}

int swprot_load(struct kvmvm *vm, const struct kvmvm_workload *w)
{
	struct swprot_vm *sv;

	if (vm->type != KVMVM_X86_SW_PROTECTED_VM) {
		fprintf(stderr, "the private program needs a SW-protected VM: create it "
			"with kvmvm_create_for()\n");
		return -1;
	}
	if (kvmvm_enable_map_gpa_range_exit(vm) < 0)
		return -1;
	sv = calloc(1, sizeof(*sv));
	if (!sv) {
		fprintf(stderr, "out of memory for the private program's state\n");
		return -1;
	}
	*sv = (struct swprot_vm){ .gmem_fd = -1, .host = MAP_FAILED, .rounds = w->private_rounds,
				  .round_gap_ms = w->round_gap_ms };
	vm->swprot = sv;   /* kvmvm_destroy() releases what follows */
	sv->gmem_fd = kvmvm_create_gmem(vm, HOST_BYTES, 0);
	if (sv->gmem_fd < 0)
		return -1;
	sv->host = mmap(NULL, HOST_BYTES, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sv->host == MAP_FAILED) {
		fprintf(stderr, "mmap %zu bytes of shared guest memory: %s\n", HOST_BYTES,
			strerror(errno));
		return -1;
	}
	kvmvm_identity_map(vm);
	memcpy(vm->ram + CODE_GPA, code, sizeof(code));
	memcpy(vm->ram + GDT_GPA, gdt, sizeof(gdt));
	vm->program = KVMVM_PRIVATE;
	return 0;
}

int swprot_setup_vcpu(struct kvmvcpu *vcpu, struct kvm_sregs *sregs,
		      struct kvm_regs *regs)
{
	if (set_slot(vcpu, SLOT_MAP, true) < 0 || set_slot(vcpu, SLOT_P1, true) < 0)
		return -1;
	kvmvm_long_mode(sregs, SEL_CODE64, SEL_DATA, 0);
	sregs->gdt.base = GDT_GPA;
	sregs->gdt.limit = sizeof(gdt) - 1;
	regs->rip = CODE_GPA;
	regs->rdi = swprot_window(vcpu->id);
	regs->rsi = vcpu->vm->swprot->rounds;
	vcpu->round = 0;
	vcpu->step = SWPROT_ROUND;
	return 0;
}

void swprot_destroy(struct kvmvm *vm)
{
	struct swprot_vm *sv = vm->swprot;

	if (!sv)
		return;
	if (sv->host != MAP_FAILED)
		munmap(sv->host, HOST_BYTES);
	if (sv->gmem_fd >= 0)
		close(sv->gmem_fd);
	free(sv);
	vm->swprot = NULL;
}
