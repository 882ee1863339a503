// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include "mhd_dl.h"

/* The ABI of the headers built against: Debian's libmicrohttpd12. */
#define MF_MHD_SONAME "libmicrohttpd.so.12"

struct mf_mhd mf_mhd;

int mf_mhd_load(void)
{
	struct mf_mhd t;
	void *h;

	/* RTLD_NOW: a broken library fails here, at start-up, not at the
	 * first scrape. */
	h = dlopen(MF_MHD_SONAME, RTLD_NOW);
	if (!h)
		goto fail;
#define MF_MHD_RESOLVE(f) \
	if (!(t.f = (typeof(t.f))dlsym(h, #f))) \
		goto fail;
	MF_MHD_FUNCTIONS(MF_MHD_RESOLVE)
#undef MF_MHD_RESOLVE
	mf_mhd = t;
	return 0;
fail:
	fprintf(stderr, "memfaulttop: --listen needs libmicrohttpd: %s (install Debian's"
		" libmicrohttpd12)\n", dlerror());
	if (h)
		dlclose(h);
	return -ELIBACC;
}
