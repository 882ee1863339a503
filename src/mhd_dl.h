/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libmicrohttpd, opened with dlopen only when --listen asks for the
 * endpoint, as systemd does for its optional libraries: linked, it and the
 * GnuTLS stack it pulls in would be ~2.4 MiB of every memfaulttop's resident
 * pages, endpoint or not. The pointers have the types of <microhttpd.h>, so
 * a call that does not match the library's signature does not compile, and
 * MHD_start_daemon is called as the variadic function it is.
 */
#ifndef MF_MHD_DL_H
#define MF_MHD_DL_H

#include <microhttpd.h>

/* The functions the exporter calls, named once for the table and dlsym. */
#define MF_MHD_FUNCTIONS(X) \
	X(MHD_start_daemon) \
	X(MHD_stop_daemon) \
	X(MHD_create_response_from_buffer) \
	X(MHD_create_response_from_buffer_with_free_callback_cls) \
	X(MHD_add_response_header) \
	X(MHD_queue_response) \
	X(MHD_destroy_response)

struct mf_mhd {
#define MF_MHD_POINTER(f) typeof(f) *f;
	MF_MHD_FUNCTIONS(MF_MHD_POINTER)
#undef MF_MHD_POINTER
};

/* Filled by mf_mhd_load; called as mf_mhd.MHD_queue_response(...). */
extern struct mf_mhd mf_mhd;

/* Loads the library and resolves every function of the table. 0, or says in
 * one line what to install and returns -ELIBACC. */
int mf_mhd_load(void);

#endif
