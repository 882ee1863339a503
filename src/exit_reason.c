// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <linux/types.h>
#include "memfault.h"
#include "exit_reason.h"

/* include/uapi/linux/kvm.h, up to Linux 6.17. */
static const char *const names[] = {
	[0] = "UNKNOWN",	[1] = "EXCEPTION",	[2] = "IO",
	[3] = "HYPERCALL",	[4] = "DEBUG",		[5] = "HLT",
	[6] = "MMIO",		[7] = "IRQ_WINDOW_OPEN", [8] = "SHUTDOWN",
	[9] = "FAIL_ENTRY",	[10] = "INTR",		[11] = "SET_TPR",
	[12] = "TPR_ACCESS",	[13] = "S390_SIEIC",	[14] = "S390_RESET",
	[15] = "DCR",		[16] = "NMI",		[17] = "INTERNAL_ERROR",
	[18] = "OSI",		[19] = "PAPR_HCALL",	[20] = "S390_UCONTROL",
	[21] = "WATCHDOG",	[22] = "S390_TSCH",	[23] = "EPR",
	[24] = "SYSTEM_EVENT",	[25] = "S390_STSI",	[26] = "IOAPIC_EOI",
	[27] = "HYPERV",	[28] = "ARM_NISV",	[29] = "X86_RDMSR",
	[30] = "X86_WRMSR",	[31] = "DIRTY_RING_FULL", [32] = "AP_RESET_HOLD",
	[33] = "X86_BUS_LOCK",	[34] = "XEN",		[35] = "RISCV_SBI",
	[36] = "RISCV_CSR",	[37] = "NOTIFY",	[38] = "LOONGARCH_IOCSR",
	[39] = "MEMORY_FAULT",	[40] = "TDX",
};

const char *mf_exit_reason_name(unsigned int reason)
{
	return reason < sizeof(names) / sizeof(names[0]) ? names[reason] : NULL;
}

const char *mf_exit_reason_key(unsigned int reason, char *buf, size_t size)
{
	const char *name = mf_exit_reason_name(reason);

	if (name)
		return name;
	snprintf(buf, size, reason == MF_NR_EXIT_REASONS - 1 ? "%u+" : "%u", reason);
	return buf;
}
