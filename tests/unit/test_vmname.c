// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for src/vmname.c: QEMU -name parsing and display names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "vmname.h"

/*
 * Builds a NUL-separated command line from the NULL-terminated args in an
 * exactly-sized heap buffer (the last NUL included, like /proc/PID/cmdline),
 * so a sanitizer catches reads past the end.
 */
static char *cmdline(size_t *len, ...)
{
	const char *a;
	size_t n = 0;
	va_list ap;
	char *buf;

	va_start(ap, len);
	while ((a = va_arg(ap, const char *)))
		n += strlen(a) + 1;
	va_end(ap);
	buf = malloc(n ? n : 1);
	assert_non_null(buf);
	n = 0;
	va_start(ap, len);
	while ((a = va_arg(ap, const char *))) {
		memcpy(buf + n, a, strlen(a) + 1);
		n += strlen(a) + 1;
	}
	va_end(ap);
	*len = n;
	return buf;
}

#define NAME_OK(expect, ...) do {						\
	size_t len_;								\
	char *c_ = cmdline(&len_, __VA_ARGS__, NULL);				\
	char name_[MF_NAME_LEN];						\
	memset(name_, 'x', sizeof(name_));					\
	assert_int_equal(mf_vm_name_from_cmdline(c_, len_, name_, sizeof(name_)), 0); \
	assert_string_equal(name_, expect);					\
	free(c_);								\
} while (0)

#define NAME_NONE(...) do {							\
	size_t len_;								\
	char *c_ = cmdline(&len_, __VA_ARGS__, NULL);				\
	char name_[MF_NAME_LEN];						\
	assert_int_equal(mf_vm_name_from_cmdline(c_, len_, name_, sizeof(name_)), -1); \
	free(c_);								\
} while (0)

static void test_guest_key(void **state)
{
	NAME_OK("foo", "qemu-system-x86_64", "-name", "guest=foo,debug-threads=on", "-m", "1G");
	NAME_OK("baz", "qemu", "-name", "process=bar,guest=baz");
	NAME_OK("baz", "qemu", "-name", "debug-threads=on,guest=baz,process=p");
	NAME_OK("a=b", "qemu", "-name", "guest=a=b");
}

static void test_implied_guest(void **state)
{
	NAME_OK("foo", "qemu", "-name", "foo");
	NAME_OK("foo", "qemu", "-name", "foo,process=bar");
	NAME_OK("foo", "qemu", "-name", "foo,debug-threads=on");
	/* Only the first element may be the implied value. */
	NAME_NONE("qemu", "-name", "process=bar,foo");
	NAME_NONE("qemu", "-name", "process=bar,debug-threads=on");
}

static void test_escaped_commas(void **state)
{
	NAME_OK("a,b", "qemu", "-name", "a,,b");
	NAME_OK("a,b", "qemu", "-name", "a,,b,process=x");
	NAME_OK("x,y,z", "qemu", "-name", "process=p,,q,guest=x,,y,,z,debug-threads=on");
	NAME_OK("a,", "qemu", "-name", "guest=a,,");
	NAME_OK(",x", "qemu", "-name", ",,x");
}

static void test_option_spellings(void **state)
{
	NAME_OK("x", "qemu", "--name", "x");
	NAME_OK("x", "qemu", "--name", "guest=x,debug-threads=on");
	NAME_OK("foo", "qemu", "-name=foo");
	NAME_OK("foo", "qemu", "-name=guest=foo,process=p");
	NAME_OK("foo", "qemu", "--name=foo,process=p");
	NAME_OK("a,b", "qemu", "--name=process=p,guest=a,,b");
	/* Not the option: a longer word, or the value of another option. */
	NAME_NONE("qemu", "-namespace", "foo");
	NAME_NONE("qemu", "-names=foo");
	NAME_NONE("qemu", "-nam", "foo");
	/* The first -name wins. */
	NAME_OK("one", "qemu", "-name", "one", "-name", "two");
}

static void test_no_name(void **state)
{
	char name[MF_NAME_LEN];
	size_t len;
	char *c;

	NAME_NONE("qemu-system-x86_64", "-m", "1G", "-smp", "2");
	NAME_NONE("qemu");
	NAME_NONE("qemu", "-name");		/* last arg, no value */
	NAME_NONE("qemu", "-m", "1G", "--name");
	assert_int_equal(mf_vm_name_from_cmdline("", 0, name, sizeof(name)), -1);
	/* A zero-sized buffer is never written. */
	c = cmdline(&len, "qemu", "-name", "foo", NULL);
	assert_int_equal(mf_vm_name_from_cmdline(c, len, name, 0), -1);
	free(c);
}

static void test_empty_value(void **state)
{
	NAME_NONE("qemu", "-name", "");
	NAME_NONE("qemu", "-name", "guest=");
	NAME_NONE("qemu", "-name", "guest=,process=p");
	NAME_NONE("qemu", "-name=");
	NAME_NONE("qemu", "-name", ",process=p");
}

static void test_truncation(void **state)
{
	char long_name[200], name[MF_NAME_LEN], small[4];
	size_t len;
	char *c;

	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	c = cmdline(&len, "qemu", "-name", long_name, NULL);
	assert_int_equal(mf_vm_name_from_cmdline(c, len, name, sizeof(name)), 0);
	assert_int_equal(strlen(name), MF_NAME_LEN - 1);
	assert_memory_equal(name, long_name, MF_NAME_LEN - 1);
	free(c);

	c = cmdline(&len, "qemu", "-name", "guest=abcdef,process=p", NULL);
	memset(small, 'x', sizeof(small));
	assert_int_equal(mf_vm_name_from_cmdline(c, len, small, sizeof(small)), 0);
	assert_string_equal(small, "abc");
	free(c);

	c = cmdline(&len, "qemu", "-name", "a,,b,,c", NULL);
	assert_int_equal(mf_vm_name_from_cmdline(c, len, small, sizeof(small)), 0);
	assert_string_equal(small, "a,b");
	assert_int_equal(mf_vm_name_from_cmdline(c, len, small, 1), -1);	/* room for "" only */
	assert_string_equal(small, "");
	free(c);
}

/* /proc/PID/cmdline read into a fixed buffer may end without its NUL. */
static void test_unterminated(void **state)
{
	static const char text[] = "qemu\0-name\0guest=foobar";
	char name[MF_NAME_LEN];
	char *c;

	c = malloc(sizeof(text) - 1);
	assert_non_null(c);
	memcpy(c, text, sizeof(text) - 1);
	assert_int_equal(mf_vm_name_from_cmdline(c, sizeof(text) - 1, name, sizeof(name)), 0);
	assert_string_equal(name, "foobar");
	/* Cut inside the value. */
	assert_int_equal(mf_vm_name_from_cmdline(c, sizeof(text) - 4, name, sizeof(name)), 0);
	assert_string_equal(name, "foo");
	/* Cut right after "-name": no value. */
	assert_int_equal(mf_vm_name_from_cmdline(c, 10, name, sizeof(name)), -1);
	/* Cut inside "-name". */
	assert_int_equal(mf_vm_name_from_cmdline(c, 8, name, sizeof(name)), -1);
	free(c);

	/* "-name" itself is the unterminated last word (no byte after it). */
	c = malloc(5);
	assert_non_null(c);
	memcpy(c, "-name", 5);
	assert_int_equal(mf_vm_name_from_cmdline(c, 5, name, sizeof(name)), -1);
	assert_int_equal(mf_vm_name_from_cmdline(c, 3, name, sizeof(name)), -1);
	free(c);
	c = malloc(7);
	assert_non_null(c);
	memcpy(c, "-name=x", 7);
	assert_int_equal(mf_vm_name_from_cmdline(c, 7, name, sizeof(name)), 0);
	assert_string_equal(name, "x");
	assert_int_equal(mf_vm_name_from_cmdline(c, 6, name, sizeof(name)), -1);
	free(c);
}

/* Names from other processes must stay printable, valid UTF-8. */
static void test_sanitized(void **state)
{
	char name[16];
	size_t len;
	char *c;

	(void)state;
	c = cmdline(&len, "qemu", "-name", "guest=a\nb\xff\x7f\xc3\xa9", NULL);
	assert_int_equal(mf_vm_name_from_cmdline(c, len, name, sizeof(name)), 0);
	assert_string_equal(name, "a?b??\xc3\xa9");
	free(c);
	/* Truncation inside a two-byte character leaves no half of it. */
	c = cmdline(&len, "qemu", "-name", "abcd\xc3\xa9", NULL);
	assert_int_equal(mf_vm_name_from_cmdline(c, len, name, 6), 0);
	assert_string_equal(name, "abcd?");
	free(c);
}

/* What terminals obey and JSON readers reject: every byte of it a '?'. */
static void test_hostile(void **state)
{
	(void)state;
	NAME_OK("a??b", "qemu", "-name", "a\xc2\x85" "b");		/* C1 NEL */
	NAME_OK("a??b", "qemu", "-name", "a\xc2\x9b" "b");		/* C1 CSI */
	NAME_OK("???evil", "qemu", "-name", "\xe2\x80\xae" "evil");	/* RLO */
	NAME_OK("???x", "qemu", "-name", "\xe2\x81\xa6" "x");	/* LRI */
	NAME_OK("\xe2\x80\xaf", "qemu", "-name", "\xe2\x80\xaf");	/* U+202F: fine */
	NAME_OK("??", "qemu", "-name", "\xc0\xaf");			/* overlong '/' */
	NAME_OK("???", "qemu", "-name", "\xe0\x80\xaf");		/* overlong */
	NAME_OK("???", "qemu", "-name", "\xed\xa0\x80");		/* surrogate */
	NAME_OK("????", "qemu", "-name", "\xf4\x90\x80\x80");	/* > U+10FFFF */
	NAME_OK("\xf0\x9f\x98\x80", "qemu", "-name", "\xf0\x9f\x98\x80");	/* emoji */
	NAME_OK("?[31mred", "qemu", "-name", "\x1b[31mred");		/* ESC */
}

/* The sizes a hostile VMM can reach: 4 KiB of escapes, a 1 MiB command
 * line with -name at its end, and a two-byte character cut at every byte
 * of a name's end. */
static void test_hostile_sizes(void **state)
{
	char name[MF_NAME_LEN], *big, *esc;
	size_t len = 1 << 20;

	(void)state;
	esc = malloc(4096 + 1);
	assert_non_null(esc);
	for (size_t i = 0; i < 4096; i += 4)
		memcpy(esc + i, "\x1b[2J", 4);
	esc[4096] = '\0';
	NAME_OK("?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2J?[2",
		"qemu", "-name", esc);
	free(esc);

	big = malloc(len);
	assert_non_null(big);
	memset(big, 'a', len);
	big[100] = '\0';
	memcpy(big + len - 17, "\0-name\0guest=end", 17);
	/* /proc and the kernel copy give at most 4 KiB: no name there. */
	assert_int_equal(mf_vm_name_from_cmdline(big, 4096, name, sizeof(name)), -1);
	assert_int_equal(mf_vm_name_from_cmdline(big, len, name, sizeof(name)), 0);
	assert_string_equal(name, "end");
	free(big);

	for (size_t cut = 1; cut <= 8; cut++) {
		static const char *const want[] = {
			"", "a", "ab", "ab?", "ab\xc3\xa9", "ab\xc3\xa9?", "ab\xc3\xa9??",
			"ab\xc3\xa9\xe2\x82\xac", "ab\xc3\xa9\xe2\x82\xac",
		};
		char text[32] = "x\0-name\0ab\xc3\xa9\xe2\x82\xac", out[8];
		const size_t n = sizeof("x") + sizeof("-name");

		/* A cut character never survives as half of itself. */
		assert_int_equal(mf_vm_name_from_cmdline(text, n + cut, out, sizeof(out)), 0);
		assert_string_equal(out, want[cut]);
	}
}

static void test_display_name(void **state)
{
	struct mf_vm_ident ident = { .comm = "qemu-system-x86", .name = "guest1" };
	char buf[MF_NAME_LEN], small[5];

	assert_string_equal(mf_vm_display_name(&ident, "kvm-42", 42, buf, sizeof(buf)), "guest1");
	ident.name[0] = '\0';
	assert_string_equal(mf_vm_display_name(&ident, "kvm-42", 42, buf, sizeof(buf)), "kvm-42");
	assert_string_equal(mf_vm_display_name(&ident, "", 42, buf, sizeof(buf)), "kvm-42");
	assert_string_equal(mf_vm_display_name(&ident, NULL, 7, buf, sizeof(buf)), "kvm-7");
	/* The returned pointer is the buffer, truncated to its size. */
	assert_ptr_equal(mf_vm_display_name(&ident, NULL, 123456, small, sizeof(small)), small);
	assert_string_equal(small, "kvm-");
	strcpy(ident.name, "abcdefgh");
	assert_string_equal(mf_vm_display_name(&ident, "kvm-1", 1, small, sizeof(small)), "abcd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_key),
		cmocka_unit_test(test_implied_guest),
		cmocka_unit_test(test_escaped_commas),
		cmocka_unit_test(test_option_spellings),
		cmocka_unit_test(test_no_name),
		cmocka_unit_test(test_empty_value),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_sanitized),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_hostile_sizes),
		cmocka_unit_test(test_display_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
