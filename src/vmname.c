// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Names for VMs, taken from the VMM process that created them. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "vmname.h"

/*
 * The code point of the UTF-8 sequence at s and its length (1-4); 0 when
 * it is invalid: a bad lead or continuation byte, an overlong form, a
 * surrogate or a value past U+10FFFF (all of which break JSON readers).
 */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
	static const uint32_t shortest[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 :
		     (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;

	if (!len)
		return 0;
	*cp = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp < shortest[len] || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

/* Characters a terminal obeys: C0 and C1 controls, DEL, and the
 * bidirectional overrides and isolates that reorder what follows. */
static bool unsafe(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/*
 * Names come from other processes: control characters would break the
 * text layout or drive the terminal, invalid UTF-8 (or a character cut by
 * truncation) would make the JSON unparsable. Each of their bytes becomes '?'.
 */
static void sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		uint32_t cp;
		size_t len = utf8_decode(p, &cp);

		if (!len)
			len = 1;
		else if (!unsafe(cp)) {
			p += len;
			continue;
		}
		memset(p, '?', len);
		p += len;
	}
}

/* Copies QEMU option value "v" (up to an unescaped ',') into out. */
static void copy_opt_value(const char *v, const char *end, char *out, size_t size)
{
	size_t n = 0;

	while (v < end && *v) {
		if (*v == ',') {
			if (v + 1 < end && v[1] == ',')
				v++;
			else
				break;
		}
		if (n + 1 < size)
			out[n++] = *v;
		v++;
	}
	out[n] = '\0';
}

/* Finds the guest name inside the value of -name. */
static int name_from_option(const char *v, const char *end, char *name, size_t size)
{
	const char *p = v;
	int first = 1;

	while (p < end && *p) {
		const char *eq = NULL, *q;

		for (q = p; q < end && *q; q++) {
			if (*q == ',' && !(q + 1 < end && q[1] == ','))
				break;
			if (*q == ',')
				q++;
			else if (*q == '=' && !eq)
				eq = q;
		}
		/* The first element without '=' is the implied guest= value. */
		if ((eq && (size_t)(eq - p) == 5 && !strncmp(p, "guest", 5)) || (!eq && first)) {
			copy_opt_value(eq ? eq + 1 : p, end, name, size);
			sanitize(name);
			return name[0] ? 0 : -1;
		}
		first = 0;
		p = (q < end && *q == ',') ? q + 1 : q;
	}
	return -1;
}

int mf_vm_name_from_cmdline(const char *cmdline, size_t len, char *name, size_t size)
{
	const char *arg = cmdline, *end = cmdline + len;

	if (!size)
		return -1;
	while (arg < end) {
		size_t alen = strnlen(arg, (size_t)(end - arg));
		const char *next = arg + alen + 1;

		/* The last word may lack its NUL (a cut /proc read): compare
		 * within alen, never past end. */
		if (((alen == 5 && !memcmp(arg, "-name", 5)) ||
		     (alen == 6 && !memcmp(arg, "--name", 6))) && next < end)
			return name_from_option(next, end, name, size);
		if ((alen >= 6 && !memcmp(arg, "-name=", 6)) ||
		    (alen >= 7 && !memcmp(arg, "--name=", 7))) {
			const char *v = strchr(arg, '=') + 1;

			return name_from_option(v, arg + alen, name, size);
		}
		arg = next;
	}
	return -1;
}

static ssize_t read_proc(pid_t pid, const char *what, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	return n;
}

void mf_vm_identify(pid_t pid, const char *kernel_comm, const char *cmdline, size_t cmdline_len,
		    struct mf_vm_ident *ident)
{
	char proc_cmdline[4096];
	ssize_t n;

	memset(ident, 0, sizeof(*ident));
	n = read_proc(pid, "comm", ident->comm, sizeof(ident->comm) - 1);
	if (n > 0) {
		ident->comm[n] = '\0';
		ident->comm[strcspn(ident->comm, "\n")] = '\0';
	} else if (kernel_comm) {
		snprintf(ident->comm, sizeof(ident->comm), "%s", kernel_comm);
	}
	sanitize(ident->comm);
	if (cmdline_len) {
		mf_vm_name_from_cmdline(cmdline, cmdline_len, ident->name, sizeof(ident->name));
		return;
	}
	n = read_proc(pid, "cmdline", proc_cmdline, sizeof(proc_cmdline));
	if (n > 0)
		mf_vm_name_from_cmdline(proc_cmdline, (size_t)n, ident->name, sizeof(ident->name));
}

const char *mf_vm_display_name(const struct mf_vm_ident *ident, const char *stats_id,
			       pid_t pid, char *buf, size_t size)
{
	if (ident->name[0])
		snprintf(buf, size, "%s", ident->name);
	else if (stats_id && stats_id[0])
		snprintf(buf, size, "%s", stats_id);
	else
		snprintf(buf, size, "kvm-%d", (int)pid);
	return buf;
}
