// SPDX-License-Identifier: GPL-2.0
/* kvmvm: see kvmvm.h for the guest memory map and program. */
#define _GNU_SOURCE
#include "kvmvm.h"
#include "swprot.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define GUEST_PARAMS_GPA 0x0500u
#define GUEST_MMIO_GPA   0x0600u
#define GUEST_CODE_GPA   0x1000u
#define GUEST_STACK_GPA  0x8000u

/* Memory-fault program (see kvmvm.h); all inside memslot 0. */
#define FAULT_PML4_GPA   0x2000u
#define FAULT_PDPT_GPA   0x3000u
#define FAULT_PD_GPA     0x4000u   /* 4 page directories: 0-4 GiB */
#define FAULT_STACK_GPA  0xf000u
#define PTE_P   (1ull << 0)
#define PTE_RW  (1ull << 1)
#define PTE_US  (1ull << 2)
#define PTE_PS  (1ull << 7)
#define SEL_USER_CODE64  0x33      /* GDT index 6, RPL 3 (like Linux) */
#define SEL_USER_DATA    0x2b      /* GDT index 5, RPL 3 */
#define RFLAGS_FIXED     0x2       /* bit 1 is reserved and must be set */
#define RFLAGS_IOPL3     0x3000

#define KVMVM_FAULT_SLOT              1

/*
 * 64-bit program of the memory-fault guest, loaded at KVMVM_FAULT_RIP and
 * entered at CPL 3 with rbx = first page, rcx = pages, rdx = stride.
 */
static const uint8_t fault_code[] = {
	/* 0x00 */ 0x88, 0x03,             /* mov [rbx], al  -> MEMORY_FAULT */
	/* 0x02 */ 0x48, 0x01, 0xd3,       /* add rbx, rdx                   */
	/* 0x05 */ 0xff, 0xc9,             /* dec ecx                        */
	/* 0x07 */ 0x75, 0xf7,             /* jnz 0x00                       */
	/* 0x09 */ 0xe6, KVMVM_DONE_PORT,  /* out 0x12, al   -> EXIT_IO      */
	/* 0x0b */ 0xeb, 0xfc,             /* jmp 0x09                       */
};
_Static_assert(KVMVM_FAULT_INSN_LEN == 2, "the faulting write is `mov [rbx], al`");

/* Layout the guest code reads at GUEST_PARAMS_GPA (offsets are in the code). */
struct guest_params {
	uint32_t step;          /* 0x500: 1, or 0 to loop forever */
	uint32_t io;            /* 0x504 */
	uint32_t mmio;          /* 0x508 */
	uint32_t map_private;   /* 0x50c */
	uint32_t map_shared;    /* 0x510 */
	uint32_t reserved;      /* 0x514 */
	uint32_t map_gpa;       /* 0x518 */
	uint32_t map_pages;     /* 0x51c */
	uint16_t reserved2;     /* 0x520 */
	uint16_t mmio_bytes;    /* 0x522: 4 x number of MMIO table entries */
};
_Static_assert(offsetof(struct guest_params, mmio_bytes) == 0x22,
	       "guest code hard-codes the parameter offsets");

/* Real-mode far pointer as loaded by `les`: offset first, then segment. */
struct far_ptr {
	uint16_t off;
	uint16_t seg;
};

/*
 * 16-bit real-mode program, loaded at GUEST_CODE_GPA. Loop counters are
 * decremented by params.step, so step = 0 repeats a loop forever.
 */
static const uint8_t guest_code[] = {
	/* 0x00 */ 0x66, 0x8b, 0x0e, 0x04, 0x05, /* mov ecx, [0x504] (io)       */
	/* 0x05 */ 0x66, 0x85, 0xc9,             /* test ecx, ecx               */
	/* 0x08 */ 0x74, 0x09,                   /* jz mmio (0x13)              */
	/* io_loop: */
	/* 0x0a */ 0xe6, KVMVM_IO_PORT,          /* out 0x10, al   -> EXIT_IO   */
	/* 0x0c */ 0x66, 0x2b, 0x0e, 0x00, 0x05, /* sub ecx, [0x500] (step)     */
	/* 0x11 */ 0x75, 0xf7,                   /* jnz io_loop (0x0a)          */
	/* mmio: */
	/* 0x13 */ 0x66, 0x8b, 0x0e, 0x08, 0x05, /* mov ecx, [0x508] (mmio)     */
	/* 0x18 */ 0x66, 0x85, 0xc9,             /* test ecx, ecx               */
	/* 0x1b */ 0x74, 0x1b,                   /* jz maps (0x38)              */
	/* 0x1d */ 0x31, 0xf6,                   /* xor si, si  (table index)   */
	/* mmio_loop: */
	/* 0x1f */ 0xc4, 0xbc, 0x00, 0x06,       /* les di, [si+0x600]          */
	/* 0x23 */ 0x26, 0x88, 0x05,             /* mov es:[di], al -> EXIT_MMIO*/
	/* 0x26 */ 0x83, 0xc6, 0x04,             /* add si, 4                   */
	/* 0x29 */ 0x3b, 0x36, 0x22, 0x05,       /* cmp si, [0x522] (mmio_bytes)*/
	/* 0x2d */ 0x72, 0x02,                   /* jb 0x31                     */
	/* 0x2f */ 0x31, 0xf6,                   /* xor si, si  (wrap around)   */
	/* 0x31 */ 0x66, 0x2b, 0x0e, 0x00, 0x05, /* sub ecx, [0x500] (step)     */
	/* 0x36 */ 0x75, 0xe7,                   /* jnz mmio_loop (0x1f)        */
	/* maps: */
	/* 0x38 */ 0x66, 0x8b, 0x36, 0x0c, 0x05, /* mov esi, [0x50c] (private)  */
	/* 0x3d */ 0x66, 0xbf, KVMVM_MAP_TO_PRIVATE, 0, 0, 0, /* mov edi, 0x10  */
	/* 0x43 */ 0xe8, 0x0e, 0x00,             /* call map_loop (0x54)        */
	/* 0x46 */ 0x66, 0x8b, 0x36, 0x10, 0x05, /* mov esi, [0x510] (shared)   */
	/* 0x4b */ 0x66, 0x31, 0xff,             /* xor edi, edi                */
	/* 0x4e */ 0xe8, 0x03, 0x00,             /* call map_loop (0x54)        */
	/* 0x51 */ 0xf4,                         /* hlt            -> EXIT_HLT  */
	/* 0x52 */ 0xeb, 0xfd,                   /* jmp 0x51                    */
	/* map_loop: esi = count, edi = attributes */
	/* 0x54 */ 0x66, 0x85, 0xf6,             /* test esi, esi               */
	/* 0x57 */ 0x74, 0x25,                   /* jz done (0x7e)              */
	/* 0x59 */ 0x66, 0xb8, KVM_HC_MAP_GPA_RANGE, 0, 0, 0, /* mov eax, 12    */
	/* 0x5f */ 0x66, 0x8b, 0x1e, 0x18, 0x05, /* mov ebx, [0x518] (gpa)      */
	/* 0x64 */ 0x66, 0x8b, 0x0e, 0x1c, 0x05, /* mov ecx, [0x51c] (pages)    */
	/* 0x69 */ 0x66, 0x89, 0xfa,             /* mov edx, edi (attributes)   */
	/* 0x6c */ 0x0f, 0x01, 0xc1,             /* vmcall    -> EXIT_HYPERCALL */
	/* 0x6f */ 0x66, 0x85, 0xc0,             /* test eax, eax               */
	/* 0x72 */ 0x74, 0x03,                   /* jz 0x77                     */
	/* 0x74 */ 0x66, 0xe7, KVMVM_ERR_PORT,   /* out 0x11, eax (report)      */
	/* 0x77 */ 0x66, 0x2b, 0x36, 0x00, 0x05, /* sub esi, [0x500] (step)     */
	/* 0x7c */ 0x75, 0xdb,                   /* jnz 0x59                    */
	/* done: */
	/* 0x7e */ 0xc3,                         /* ret                         */
};

/* Bytes of the guest_memfd slot: first to last faulting page. */
static uint64_t fault_slot_size(const struct kvmvm_workload *w)
{
	return (uint64_t)(w->fault_pages - 1) * w->fault_stride + KVMVM_PAGE_SIZE;
}

static int validate_faults(const struct kvmvm_workload *w)
{
	if (w->io || w->mmio || w->map_private || w->map_shared) {
		fprintf(stderr, "memory faults run their own 64-bit guest: they cannot be "
			"combined with IO, MMIO or map-GPA-range exits in one VM\n");
		return -1;
	}
	if (w->fault_pages < 1 || w->fault_gpa % KVMVM_PAGE_SIZE ||
	    w->fault_stride < KVMVM_PAGE_SIZE || w->fault_stride % KVMVM_PAGE_SIZE) {
		fprintf(stderr, "memory faults need >= 1 page, a page-aligned GPA and a "
			"stride that is a non-zero multiple of %u (got %u pages, GPA %#llx, "
			"stride %#llx)\n", KVMVM_PAGE_SIZE, w->fault_pages,
			(unsigned long long)w->fault_gpa, (unsigned long long)w->fault_stride);
		return -1;
	}
	/* Each factor is below 2^32: the product cannot overflow. */
	if (w->fault_gpa < KVMVM_RAM_SIZE || w->fault_gpa >= KVMVM_FAULT_LIMIT ||
	    fault_slot_size(w) > KVMVM_FAULT_LIMIT - w->fault_gpa) {
		fprintf(stderr, "memory-fault pages %#llx + %u x %#llx must lie in [%#x, "
			"%#llx): guest RAM is below, the guest's page tables end above\n",
			(unsigned long long)w->fault_gpa, w->fault_pages,
			(unsigned long long)w->fault_stride, KVMVM_RAM_SIZE, KVMVM_FAULT_LIMIT);
		return -1;
	}
	return 0;
}

int kvmvm_validate(const struct kvmvm_workload *w)
{
	if (w->private_rounds && (w->io || w->mmio || w->map_private || w->map_shared ||
				  w->memory_faults || w->forever)) {
		fprintf(stderr, "the private-memory program runs its own guest in a "
			"SW-protected VM: it cannot be combined with other exit kinds or "
			"run forever\n");
		return -1;
	}
	if (w->memory_faults)
		return validate_faults(w);
	if (w->mmio && (w->nr_mmio_gpas < 1 || w->nr_mmio_gpas > KVMVM_MAX_MMIO)) {
		fprintf(stderr, "between 1 and %d MMIO GPAs are needed for MMIO exits\n",
			KVMVM_MAX_MMIO);
		return -1;
	}
	for (uint32_t i = 0; i < w->nr_mmio_gpas; i++) {
		uint32_t gpa = w->mmio_gpa[i];

		/* Unbacked (above RAM) and addressable as seg:off in real mode. */
		if (gpa < KVMVM_RAM_SIZE || gpa >= KVMVM_MMIO_LIMIT) {
			fprintf(stderr, "MMIO GPA %#x is outside [%#x, %#x): guest RAM is "
				"below, real mode cannot reach above\n",
				gpa, KVMVM_RAM_SIZE, KVMVM_MMIO_LIMIT);
			return -1;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (w->mmio_gpa[j] == gpa) {
				fprintf(stderr, "MMIO GPA %#x given twice\n", gpa);
				return -1;
			}
		}
	}
	if ((w->map_private || w->map_shared) &&
	    (w->map_gpa % KVMVM_PAGE_SIZE || w->map_pages == 0 ||
	     (uint64_t)w->map_gpa + (uint64_t)w->map_pages * KVMVM_PAGE_SIZE > 1ULL << 32)) {
		fprintf(stderr, "map range GPA %#x + %u pages must be page aligned, "
			"non-empty and below 4 GiB (32-bit guest registers)\n",
			w->map_gpa, w->map_pages);
		return -1;
	}
	return 0;
}

static int create_vm(struct kvmvm *vm, unsigned long type)
{
	*vm = (struct kvmvm){ .kvm_fd = -1, .vm_fd = -1, .ram = MAP_FAILED, .type = type };

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		fprintf(stderr, "open /dev/kvm: %s (needs root or the kvm group, and "
			"a kernel with KVM enabled)\n", strerror(errno));
		goto fail;
	}
	int version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		fprintf(stderr, "KVM_GET_API_VERSION: got %d, need %d: unsupported kernel\n",
			version, KVM_API_VERSION);
		goto fail;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		fprintf(stderr, "KVM_GET_VCPU_MMAP_SIZE: %d (%s): unusable kvm_run size\n",
			vm->run_size, vm->run_size < 0 ? strerror(errno) : "too small");
		goto fail;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, type);
	if (vm->vm_fd < 0) {
		fprintf(stderr, "KVM_CREATE_VM type %lu: %s (check dmesg; is another "
			"hypervisor holding the CPU's virtualization extension? "
			"KVM_CAP_VM_TYPES = %#x)\n", type, strerror(errno),
			ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVMVM_CAP_VM_TYPES));
		goto fail;
	}
	vm->ram = mmap(NULL, KVMVM_RAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->ram == MAP_FAILED) {
		fprintf(stderr, "mmap %u bytes of guest RAM: %s\n", KVMVM_RAM_SIZE,
			strerror(errno));
		goto fail;
	}
	struct kvm_userspace_memory_region slot = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = KVMVM_RAM_SIZE,
		.userspace_addr = (uintptr_t)vm->ram,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
		fprintf(stderr, "KVM_SET_USER_MEMORY_REGION (GPA 0, %u bytes): %s\n",
			KVMVM_RAM_SIZE, strerror(errno));
		goto fail;
	}
	memcpy(vm->ram + GUEST_CODE_GPA, guest_code, sizeof(guest_code));
	return 0;
fail:
	kvmvm_destroy(vm);
	return -1;
}

int kvmvm_create(struct kvmvm *vm)
{
	return create_vm(vm, KVMVM_X86_DEFAULT_VM);
}

int kvmvm_create_for(struct kvmvm *vm, const struct kvmvm_workload *w)
{
	return create_vm(vm, w->private_rounds ? KVMVM_X86_SW_PROTECTED_VM :
			 KVMVM_X86_DEFAULT_VM);
}

int kvmvm_create_gmem(struct kvmvm *vm, uint64_t size, uint64_t flags)
{
	struct kvmvm_create_guest_memfd cg = { .size = size, .flags = flags };
	int gfd = ioctl(vm->vm_fd, KVMVM_CREATE_GUEST_MEMFD, &cg);

	if (gfd < 0)
		fprintf(stderr, "KVM_CREATE_GUEST_MEMFD (%#llx bytes, flags %#llx): %s "
			"(KVM_CAP_GUEST_MEMFD = %d on this VM; the flags MMAP and "
			"INIT_SHARED need Linux 6.18)\n", (unsigned long long)size,
			(unsigned long long)flags, strerror(errno),
			ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVMVM_CAP_GUEST_MEMFD));
	return gfd;
}

int kvmvm_set_region(struct kvmvm *vm, const struct kvmvm_memory_region2 *r)
{
	if (ioctl(vm->vm_fd, KVMVM_SET_USER_MEMORY_REGION2, r) == 0)
		return 0;
	fprintf(stderr, "KVM_SET_USER_MEMORY_REGION2 (slot %u, %s, GPA %#llx, %#llx "
		"bytes): %s (needs Linux 6.8+; guest_memfd slots need a VM type with "
		"private memory)\n", r->slot,
		r->flags & KVMVM_MEM_GUEST_MEMFD ? "guest_memfd" : "no guest_memfd",
		(unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size,
		strerror(errno));
	return -1;
}

/*
 * Slot KVMVM_FAULT_SLOT: a guest_memfd that backs the fault pages, released
 * again at once. The memslot stays, but kvm_gmem_get_pfn() fails for it
 * from then on, which the MMU fault path reports as KVM_EXIT_MEMORY_FAULT.
 */
static int add_released_gmem_slot(struct kvmvm *vm, uint64_t gpa, uint64_t size)
{
	int gfd = kvmvm_create_gmem(vm, size, KVMVM_GMEM_FLAG_MMAP |
				    KVMVM_GMEM_FLAG_INIT_SHARED);

	if (gfd < 0)
		return -1;
	void *hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);

	if (hva == MAP_FAILED) {
		fprintf(stderr, "mmap guest_memfd (%#llx bytes): %s\n",
			(unsigned long long)size, strerror(errno));
		close(gfd);
		return -1;
	}
	struct kvmvm_memory_region2 slot = {
		.slot = KVMVM_FAULT_SLOT,
		.flags = KVMVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
		.guest_memfd = (uint32_t)gfd,
	};
	int r = kvmvm_set_region(vm, &slot);

	munmap(hva, size);
	close(gfd);
	return r < 0 ? -1 : 0;
}

/* User-accessible, so that both the CPL-3 and the CPL-0 program can use it. */
void kvmvm_identity_map(struct kvmvm *vm)
{
	uint64_t *pml4 = (uint64_t *)(vm->ram + FAULT_PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(vm->ram + FAULT_PDPT_GPA);
	uint64_t *pd = (uint64_t *)(vm->ram + FAULT_PD_GPA);
	const uint64_t user = PTE_P | PTE_RW | PTE_US;

	pml4[0] = FAULT_PDPT_GPA | user;
	for (uint64_t i = 0; i < KVMVM_FAULT_LIMIT >> 30; i++)
		pdpt[i] = (FAULT_PD_GPA + i * KVMVM_PAGE_SIZE) | user;
	for (uint64_t i = 0; i < KVMVM_FAULT_LIMIT >> 21; i++)
		pd[i] = (i << 21) | user | PTE_PS;
}

static int load_fault_program(struct kvmvm *vm, const struct kvmvm_workload *w)
{
	kvmvm_identity_map(vm);
	memcpy(vm->ram + KVMVM_FAULT_RIP, fault_code, sizeof(fault_code));
	vm->program = KVMVM_FAULTS;
	vm->fault_pages = w->fault_pages;
	vm->fault_gpa = w->fault_gpa;
	vm->fault_stride = w->fault_stride;
	return add_released_gmem_slot(vm, w->fault_gpa, fault_slot_size(w));
}

int kvmvm_load(struct kvmvm *vm, const struct kvmvm_workload *w)
{
	if (kvmvm_validate(w) < 0)
		return -1;
	if (w->private_rounds)
		return swprot_load(vm, w);
	if (w->memory_faults)
		return load_fault_program(vm, w);

	struct guest_params p = {
		.step = w->forever ? 0 : 1,
		.io = w->io,
		.mmio = w->mmio,
		.map_private = w->map_private,
		.map_shared = w->map_shared,
		.map_gpa = w->map_gpa,
		.map_pages = w->map_pages,
		.mmio_bytes = (uint16_t)(w->nr_mmio_gpas * sizeof(struct far_ptr)),
	};
	memcpy(vm->ram + GUEST_PARAMS_GPA, &p, sizeof(p));

	for (uint32_t i = 0; i < w->nr_mmio_gpas; i++) {
		/* Largest segment keeps the offset small; 0xffff covers 1 MiB+. */
		uint32_t seg = w->mmio_gpa[i] >> 4 > 0xffff ? 0xffff : w->mmio_gpa[i] >> 4;
		struct far_ptr fp = {
			.seg = (uint16_t)seg,
			.off = (uint16_t)(w->mmio_gpa[i] - (seg << 4)),
		};
		memcpy(vm->ram + GUEST_MMIO_GPA + i * sizeof(fp), &fp, sizeof(fp));
	}
	return 0;
}

int kvmvm_enable_map_gpa_range_exit(struct kvmvm *vm)
{
	const uint64_t bit = 1ULL << KVM_HC_MAP_GPA_RANGE;
	int r = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_EXIT_HYPERCALL);

	if (r < 0 || !(r & bit)) {
		fprintf(stderr, "KVM_CHECK_EXTENSION(KVM_CAP_EXIT_HYPERCALL) = %d: this "
			"kernel cannot forward KVM_HC_MAP_GPA_RANGE to userspace "
			"(needs Linux 5.19+ on x86)\n", r);
		return -1;
	}
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_EXIT_HYPERCALL,
		.args[0] = bit,
	};
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		fprintf(stderr, "KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL, 1 << %d): %s\n",
			KVM_HC_MAP_GPA_RANGE, strerror(errno));
		return -1;
	}
	return 0;
}

enum probe_status { PROBE_OK, PROBE_STUCK = 3, PROBE_ERROR };

static void probe_alarm(int sig)
{
	(void)sig;  /* only there to interrupt KVM_RUN with EINTR */
}

static _Noreturn void probe_child(void)
{
	const struct kvmvm_workload w = { .map_private = 1, .map_pages = 1 };
	const struct sigaction sa = { .sa_handler = probe_alarm };
	const struct itimerval deadline = { .it_value.tv_usec = 200 * 1000 };
	struct kvmvm vm;
	struct kvmvcpu vcpu;
	struct kvmvm_exit e;

	if (kvmvm_create(&vm) < 0 || kvmvm_enable_map_gpa_range_exit(&vm) < 0 ||
	    kvmvm_load(&vm, &w) < 0 || kvmvm_create_vcpu(&vm, &vcpu, 0) < 0)
		_exit(PROBE_ERROR);
	if (sigaction(SIGALRM, &sa, NULL) < 0 || setitimer(ITIMER_REAL, &deadline, NULL) < 0) {
		fprintf(stderr, "hypercall probe: arming a timer: %s\n", strerror(errno));
		_exit(PROBE_ERROR);
	}
	kvmvm_run_vcpu(&vcpu, &w, &e);
	if (e.ev == KVMVM_EV_MAP_PRIVATE)
		_exit(PROBE_OK);
	if (e.ev == KVMVM_EV_INTR)
		_exit(PROBE_STUCK);
	kvmvm_report(&vcpu, &e);
	_exit(PROBE_ERROR);
}

int kvmvm_probe_map_gpa_range(void)
{
	int status;
	pid_t pid;

	fflush(NULL);  /* the child must not flush the parent's buffers again */
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "fork for the hypercall probe: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0)
		probe_child();
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "waitpid for the hypercall probe: %s\n", strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == PROBE_OK)
		return 1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == PROBE_STUCK) {
		/*
		 * Seen on KVM/PVM, which runs real mode entirely in the
		 * instruction emulator: its vmcall handler (em_hypercall) only
		 * fixes up the instruction and re-executes it, expecting the
		 * CPU to trap, so kvm_emulate_hypercall() is never reached.
		 */
		fprintf(stderr, "this kernel cannot deliver KVM_HC_MAP_GPA_RANGE from the "
			"real-mode test guest: KVM emulates real mode here and its "
			"emulator re-executes `vmcall` forever instead of handling the "
			"hypercall (no KVM_EXIT_HYPERCALL within 200 ms)\n");
		return 0;
	}
	fprintf(stderr, "hypercall probe failed (status %#x), see the messages above\n",
		status);
	return -1;
}

int kvmvm_probe_memory_faults(void)
{
	struct kvmvm_create_guest_memfd cg = {
		.size = KVMVM_PAGE_SIZE,
		.flags = KVMVM_GMEM_FLAG_MMAP | KVMVM_GMEM_FLAG_INIT_SHARED,
	};
	struct kvmvm vm;
	int gfd, err, caps;

	if (kvmvm_create(&vm) < 0)
		return -1;
	gfd = ioctl(vm.vm_fd, KVMVM_CREATE_GUEST_MEMFD, &cg);
	err = errno;
	caps = ioctl(vm.vm_fd, KVM_CHECK_EXTENSION, KVMVM_CAP_GUEST_MEMFD);
	kvmvm_destroy(&vm);
	if (gfd >= 0) {
		close(gfd);
		return 1;
	}
	/* Unknown ioctl (before 6.8) or flags (before 6.18). */
	if (err == ENOTTY || err == EINVAL) {
		fprintf(stderr, "this kernel cannot make the memory-fault program's exits: "
			"a default VM has no mmap-able guest_memfd (KVM_CREATE_GUEST_MEMFD "
			"with MMAP|INIT_SHARED: %s; KVM_CAP_GUEST_MEMFD = %d; needs Linux "
			"6.18)\n", strerror(err), caps);
		return 0;
	}
	fprintf(stderr, "memory-fault probe: KVM_CREATE_GUEST_MEMFD with MMAP|INIT_SHARED "
		"on a default VM: %s\n", strerror(err));
	return -1;
}

void kvmvm_destroy(struct kvmvm *vm)
{
	swprot_destroy(vm);
	if (vm->ram != MAP_FAILED)
		munmap(vm->ram, KVMVM_RAM_SIZE);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	*vm = (struct kvmvm){ .kvm_fd = -1, .vm_fd = -1, .ram = MAP_FAILED };
}

static void real_mode_segment(struct kvm_segment *s, bool code)
{
	*s = (struct kvm_segment){
		.limit = 0xffff,
		.type = code ? 0xb : 0x3,  /* execute/read accessed, read/write accessed */
		.present = 1,
		.s = 1,
	};
}

/* Flat real mode at segment 0 instead of the reset vector at 0xffff0. */
static void real_mode_state(unsigned int id, struct kvm_sregs *sregs,
			    struct kvm_regs *regs)
{
	real_mode_segment(&sregs->cs, true);
	real_mode_segment(&sregs->ds, false);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	sregs->cr0 &= ~1ULL;  /* PE off */
	regs->rip = GUEST_CODE_GPA;
	regs->rsp = GUEST_STACK_GPA - id * KVMVM_STACK_BYTES;
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, bool code,
			 unsigned int dpl)
{
	*s = (struct kvm_segment){
		.limit = 0xfffff,
		.selector = selector,
		.type = code ? 0xb : 0x3,
		.present = 1,
		.dpl = (uint8_t)dpl,
		.s = 1,
		.l = code,       /* 64-bit code segment */
		.db = !code,
		.g = 1,
	};
}

void kvmvm_long_mode(struct kvm_sregs *sregs, uint16_t code_sel, uint16_t data_sel,
		     unsigned int dpl)
{
	sregs->cr0 = 0x80050033;     /* PG WP NE ET MP PE */
	sregs->cr3 = FAULT_PML4_GPA;
	sregs->cr4 = 1u << 5;        /* PAE */
	sregs->efer = 0xd01;         /* NX LMA LME SCE */
	flat_segment(&sregs->cs, code_sel, true, dpl);
	flat_segment(&sregs->ds, data_sel, false, dpl);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	memset(&sregs->ldt, 0, sizeof(sregs->ldt));
	sregs->tr.present = 1;
	sregs->tr.type = 11;         /* busy 64-bit TSS */
}

/* 64-bit user mode (CPL 3), paging on, entry registers of fault_code. */
static void fault_guest_state(const struct kvmvm *vm, struct kvm_sregs *sregs,
			      struct kvm_regs *regs)
{
	kvmvm_long_mode(sregs, SEL_USER_CODE64, SEL_USER_DATA, 3);
	/* The final `out` at CPL 3: allowed by IOPL, not by the TSS (kvmvm.h). */
	regs->rflags |= RFLAGS_IOPL3;
	regs->rip = KVMVM_FAULT_RIP;
	regs->rsp = FAULT_STACK_GPA;
	regs->rbx = vm->fault_gpa;
	regs->rcx = vm->fault_pages;
	regs->rdx = vm->fault_stride;
}

/* Long mode needs the host's CPUID (LM, NX, ...) in the vCPU. */
static int set_supported_cpuid(const struct kvmvcpu *vcpu)
{
	struct {
		struct kvm_cpuid2 head;
		struct kvm_cpuid_entry2 entries[256];
	} cpuid = { .head.nent = 256 };

	if (ioctl(vcpu->vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0) {
		fprintf(stderr, "KVM_GET_SUPPORTED_CPUID: %s\n", strerror(errno));
		return -1;
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, &cpuid) < 0) {
		fprintf(stderr, "KVM_SET_CPUID2 vCPU %u: %s\n", vcpu->id, strerror(errno));
		return -1;
	}
	return 0;
}

int kvmvm_create_vcpu(struct kvmvm *vm, struct kvmvcpu *vcpu, unsigned int id)
{
	*vcpu = (struct kvmvcpu){ .vm = vm, .id = id, .fd = -1, .run = MAP_FAILED };

	if (id >= KVMVM_MAX_VCPUS) {
		fprintf(stderr, "vCPU %u: the guest programs have room for %d vCPUs "
			"per VM\n", id, KVMVM_MAX_VCPUS);
		return -1;
	}
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		fprintf(stderr, "KVM_CREATE_VCPU %u: %s (too many vCPUs? see "
			"KVM_CAP_MAX_VCPUS)\n", id, strerror(errno));
		goto fail;
	}
	vcpu->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		fprintf(stderr, "mmap kvm_run of vCPU %u: %s\n", id, strerror(errno));
		goto fail;
	}
	if (vm->program != KVMVM_REAL_MODE && set_supported_cpuid(vcpu) < 0)
		goto fail;

	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = RFLAGS_FIXED };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0) {
		fprintf(stderr, "KVM_GET_SREGS vCPU %u: %s\n", id, strerror(errno));
		goto fail;
	}
	switch (vm->program) {
	case KVMVM_REAL_MODE:
		real_mode_state(id, &sregs, &regs);
		break;
	case KVMVM_FAULTS:
		fault_guest_state(vm, &sregs, &regs);
		break;
	case KVMVM_PRIVATE:
		if (swprot_setup_vcpu(vcpu, &sregs, &regs) < 0)
			goto fail;
		break;
	}
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0) {
		fprintf(stderr, "KVM_SET_SREGS vCPU %u: %s\n", id, strerror(errno));
		goto fail;
	}
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0) {
		fprintf(stderr, "KVM_SET_REGS vCPU %u: %s\n", id, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	kvmvm_destroy_vcpu(vcpu);
	return -1;
}

void kvmvm_destroy_vcpu(struct kvmvcpu *vcpu)
{
	if (vcpu->run != MAP_FAILED)
		munmap(vcpu->run, (size_t)vcpu->vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = MAP_FAILED;
	vcpu->fd = -1;
}

static enum kvmvm_event classify_io(const struct kvmvcpu *vcpu,
				    const struct kvmvm_workload *w)
{
	const struct kvm_run *run = vcpu->run;

	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1 ||
	    run->io.count != 1)
		return KVMVM_EV_UNEXPECTED;
	if (w->memory_faults)   /* the only `out`, after the last page */
		return run->io.port == KVMVM_DONE_PORT &&
		       vcpu->fault_page == w->fault_pages ?
		       KVMVM_EV_DONE : KVMVM_EV_UNEXPECTED;
	return run->io.port == KVMVM_IO_PORT ? KVMVM_EV_IO : KVMVM_EV_UNEXPECTED;
}

int kvmvm_get_regs(const struct kvmvcpu *vcpu, struct kvm_regs *regs)
{
	if (ioctl(vcpu->fd, KVM_GET_REGS, regs) == 0)
		return 0;
	fprintf(stderr, "KVM_GET_REGS vCPU %u: %s\n", vcpu->id, strerror(errno));
	return -1;
}

/* Move the guest past the faulting write, which KVM would retry forever. */
static int skip_faulting_write(const struct kvmvcpu *vcpu)
{
	struct kvm_regs regs;

	if (kvmvm_get_regs(vcpu, &regs) < 0)
		return -1;
	if (regs.rip != KVMVM_FAULT_RIP) {
		fprintf(stderr, "vCPU %u: memory fault at RIP %#llx, expected the write "
			"at %#x\n", vcpu->id, (unsigned long long)regs.rip, KVMVM_FAULT_RIP);
		return -1;
	}
	regs.rip += KVMVM_FAULT_INSN_LEN;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0) {
		fprintf(stderr, "KVM_SET_REGS vCPU %u: %s\n", vcpu->id, strerror(errno));
		return -1;
	}
	return 0;
}

static uint64_t expected_fault_gpa(const struct kvmvcpu *vcpu)
{
	return vcpu->vm->fault_gpa + (uint64_t)vcpu->fault_page * vcpu->vm->fault_stride;
}

struct kvmvm_memory_fault kvmvm_memory_fault(const struct kvm_run *run)
{
	struct kvmvm_memory_fault mf;

	/* Not in older uapi headers: read the union member by layout. */
	memcpy(&mf, run->padding, sizeof(mf));
	return mf;
}

/* Exit 39: must be a shared (flags 0) 4 KiB fault on the current page. */
static enum kvmvm_event classify_memory_fault(struct kvmvcpu *vcpu,
					      const struct kvmvm_workload *w,
					      struct kvmvm_exit *e)
{
	const struct kvmvm_memory_fault mf = kvmvm_memory_fault(vcpu->run);

	if (!w->memory_faults || vcpu->fault_page >= w->fault_pages ||
	    mf.flags || mf.size != KVMVM_PAGE_SIZE || mf.gpa != expected_fault_gpa(vcpu))
		return KVMVM_EV_UNEXPECTED;
	e->gpa = mf.gpa;
	e->fault_page = vcpu->fault_page;
	if (w->forever || ++vcpu->fault_count < w->memory_faults)
		return KVMVM_EV_MEMORY_FAULT;   /* re-entering retries the write */
	if (skip_faulting_write(vcpu) < 0)
		return KVMVM_EV_UNEXPECTED;
	vcpu->fault_count = 0;
	vcpu->fault_page++;
	return KVMVM_EV_MEMORY_FAULT;
}

static enum kvmvm_event classify_mmio(const struct kvm_run *run,
				      const struct kvmvm_workload *w,
				      struct kvmvm_exit *e)
{
	if (!run->mmio.is_write || run->mmio.len != 1)
		return KVMVM_EV_UNEXPECTED;
	for (uint32_t i = 0; i < w->nr_mmio_gpas; i++) {
		if (run->mmio.phys_addr == w->mmio_gpa[i]) {
			e->mmio_index = i;
			e->gpa = run->mmio.phys_addr;
			return KVMVM_EV_MMIO;
		}
	}
	return KVMVM_EV_UNEXPECTED;
}

static enum kvmvm_event classify_hypercall(struct kvm_run *run, struct kvmvm_exit *e)
{
	if (run->hypercall.nr != KVM_HC_MAP_GPA_RANGE)
		return KVMVM_EV_UNEXPECTED;
	/* Accept the conversion: the guest continues with eax = 0. */
	run->hypercall.ret = 0;
	e->gpa = run->hypercall.args[0];
	e->pages = run->hypercall.args[1];
	return run->hypercall.args[2] & KVMVM_MAP_TO_PRIVATE ?
		KVMVM_EV_MAP_PRIVATE : KVMVM_EV_MAP_SHARED;
}

void kvmvm_run_vcpu(struct kvmvcpu *vcpu, const struct kvmvm_workload *w,
		    struct kvmvm_exit *e)
{
	struct kvm_run *run = vcpu->run;
	int r = ioctl(vcpu->fd, KVM_RUN, 0);

	*e = (struct kvmvm_exit){
		.reason = run->exit_reason,
		.err = r < 0 ? errno : 0,
		.ev = KVMVM_EV_UNEXPECTED,
	};
	/* Not an error: a signal or immediate_exit, KVM_EXIT_INTR in run. */
	if (e->err == EINTR) {
		e->ev = KVMVM_EV_INTR;
		return;
	}
	if (vcpu->vm->program == KVMVM_PRIVATE) {
		swprot_serve(vcpu, e);
		return;
	}
	if (e->err) {
		/* KVM_RUN fails with EFAULT and fills run->memory_fault. */
		if (e->err == EFAULT && e->reason == KVM_EXIT_MEMORY_FAULT)
			e->ev = classify_memory_fault(vcpu, w, e);
		return;
	}
	switch (e->reason) {
	case KVM_EXIT_IO:
		e->ev = classify_io(vcpu, w);
		break;
	case KVM_EXIT_MMIO:
		e->ev = w->memory_faults ? KVMVM_EV_UNEXPECTED : classify_mmio(run, w, e);
		break;
	case KVM_EXIT_HYPERCALL:
		e->ev = w->memory_faults ? KVMVM_EV_UNEXPECTED : classify_hypercall(run, e);
		break;
	case KVM_EXIT_HLT:
		e->ev = w->memory_faults ? KVMVM_EV_UNEXPECTED : KVMVM_EV_HLT;
		break;
	default:
		break;
	}
}

void kvmvm_report(const struct kvmvcpu *vcpu, const struct kvmvm_exit *e)
{
	const struct kvm_run *run = vcpu->run;

	fprintf(stderr, "vCPU %u: unexpected exit: KVM_RUN %s%s, exit_reason %u",
		vcpu->id, e->err ? "failed: " : "ok", e->err ? strerror(e->err) : "",
		e->reason);
	switch (e->reason) {
	case KVM_EXIT_IO:
		if (run->io.port == KVMVM_ERR_PORT && run->io.size == 4) {
			int32_t ret;

			memcpy(&ret, (const uint8_t *)run + run->io.data_offset, sizeof(ret));
			fprintf(stderr, " (guest: KVM_HC_MAP_GPA_RANGE returned %d; "
				"-1000 = KVM_ENOSYS: hypercall exit not enabled)", ret);
		} else {
			fprintf(stderr, " (IO port %#x %s size %u count %u)", run->io.port,
				run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
				run->io.size, run->io.count);
		}
		break;
	case KVM_EXIT_MMIO:
		fprintf(stderr, " (MMIO %s GPA %#llx len %u)",
			run->mmio.is_write ? "write" : "read",
			(unsigned long long)run->mmio.phys_addr, run->mmio.len);
		break;
	case KVM_EXIT_HYPERCALL:
		fprintf(stderr, " (hypercall nr %llu args %#llx %#llx %#llx)",
			(unsigned long long)run->hypercall.nr,
			(unsigned long long)run->hypercall.args[0],
			(unsigned long long)run->hypercall.args[1],
			(unsigned long long)run->hypercall.args[2]);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		fprintf(stderr, " (FAIL_ENTRY hardware reason %#llx)",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		fprintf(stderr, " (INTERNAL_ERROR suberror %u", run->internal.suberror);
		for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
			fprintf(stderr, " %#llx", (unsigned long long)run->internal.data[i]);
		fputc(')', stderr);
		break;
	case KVM_EXIT_MEMORY_FAULT: {
		const struct kvmvm_memory_fault mf = kvmvm_memory_fault(run);

		fprintf(stderr, " (MEMORY_FAULT flags %#llx gpa %#llx size %#llx)",
			(unsigned long long)mf.flags, (unsigned long long)mf.gpa,
			(unsigned long long)mf.size);
		if (vcpu->vm->program == KVMVM_FAULTS &&
		    vcpu->fault_page < vcpu->vm->fault_pages)
			fprintf(stderr, " (expected flags 0 gpa %#llx size %#x: page %u)",
				(unsigned long long)expected_fault_gpa(vcpu),
				KVMVM_PAGE_SIZE, vcpu->fault_page);
		break;
	}
	default:
		break;
	}
	fputc('\n', stderr);
	if (vcpu->vm->program == KVMVM_PRIVATE)
		swprot_report(vcpu);
}
