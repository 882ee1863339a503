// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer target: a VMM command line of any bytes to a VM name, which
 * must come out short, NUL-terminated, valid UTF-8 and free of control
 * characters (C0, DEL, C1) and bidirectional overrides. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "vmname.h"

/* Length of the valid UTF-8 sequence at s, 0 if none. */
static size_t utf8_seq(const unsigned char *s, uint32_t *cp)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 :
		   (s[0] & 0xf8) == 0xf0 ? 4 : 0;

	*cp = n == 1 ? s[0] : n == 2 ? s[0] & 0x1f : n == 3 ? s[0] & 0x0f : s[0] & 0x07;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[MF_NAME_LEN];
	size_t len;

	memset(name, 0x55, sizeof(name));
	if (mf_vm_name_from_cmdline((const char *)data, size, name, sizeof(name)))
		return 0;
	len = strnlen(name, sizeof(name));
	if (len == sizeof(name))
		abort();
	for (const unsigned char *p = (const unsigned char *)name; *p;) {
		uint32_t cp;
		size_t n = utf8_seq(p, &cp);

		if (!n || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
		    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
			abort();
		p += n;
	}
	return 0;
}
