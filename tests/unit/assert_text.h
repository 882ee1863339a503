/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Assertions on rendered text, for unit tests; include after cmocka.h. */
#ifndef MF_TEST_ASSERT_TEXT_H
#define MF_TEST_ASSERT_TEXT_H

#include <string.h>

#define assert_contains(hay, needle) do {					\
	if (!strstr((hay), (needle)))						\
		fail_msg("missing \"%s\" in:\n%s", (needle), (hay));		\
} while (0)
#define assert_not_contains(hay, needle) do {					\
	if (strstr((hay), (needle)))						\
		fail_msg("unexpected \"%s\" in:\n%s", (needle), (hay));	\
} while (0)

#endif
