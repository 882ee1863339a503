// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The metrics endpoint, on libmicrohttpd's internal polling thread. Each
 * published exposition is an immutable, reference-counted snapshot: the
 * main loop swaps the pointer under a mutex (a few instructions), a scrape
 * takes a reference under the same mutex and libmicrohttpd sends the bytes
 * straight from it, dropping the reference when the response is done. So
 * neither side ever waits for the other's work, and a slow scraper only
 * keeps an old snapshot alive until its connection times out.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "mhd_dl.h"
#include "exporter.h"
#include "metrics.h"

/* A scraper that sends nothing, or reads nothing, is cut after this. */
#define CONNECTION_TIMEOUT_S	10
#define MAX_CONNECTIONS		64

struct snapshot {
	atomic_int refs;
	struct mf_text text;
};

struct mf_exporter {
	int fd;
	char where[sizeof(((struct mf_listen *)0)->text)];
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;
	struct snapshot *latest;	/* under lock */
	size_t last_len;		/* sizes the next render's buffer */
};

static void snapshot_put(struct snapshot *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
		mf_text_free(&s->text);
		free(s);
	}
}

static void on_response_done(void *cls)
{
	snapshot_put(cls);
}

static struct snapshot *snapshot_get(struct mf_exporter *ex)
{
	struct snapshot *s;

	pthread_mutex_lock(&ex->lock);
	s = ex->latest;
	if (s)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&ex->lock);
	return s;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned int status,
			      const char *type, struct MHD_Response *resp)
{
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;	/* out of memory: libmicrohttpd closes the connection */
	mf_mhd.MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = mf_mhd.MHD_queue_response(conn, status, resp);
	mf_mhd.MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned int status,
				   const char *text)
{
	return answer(conn, status, "text/plain; charset=utf-8",
		      mf_mhd.MHD_create_response_from_buffer(strlen(text), (void *)text,
							     MHD_RESPMEM_PERSISTENT));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	static int seen;
	struct mf_exporter *ex = cls;
	struct MHD_Response *resp;
	struct snapshot *s;

	/* The first call only announces the request (its headers). */
	if (!*req_cls) {
		*req_cls = &seen;
		return MHD_YES;
	}
	*upload_data_size = 0;	/* a body is ignored */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (!strcmp(url, "/"))
		return answer_text(conn, MHD_HTTP_OK, "memfaulttop: metrics at /metrics\n");
	if (strcmp(url, "/metrics"))
		return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found: metrics are at /metrics\n");
	s = snapshot_get(ex);
	if (!s)
		return answer_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "memfaulttop is starting\n");
	/* Sent from the snapshot itself; the reference goes with the response. */
	resp = mf_mhd.MHD_create_response_from_buffer_with_free_callback_cls(
		s->text.len, s->text.data, on_response_done, s);
	if (!resp)
		snapshot_put(s);
	return answer(conn, MHD_HTTP_OK, MF_METRICS_CONTENT_TYPE, resp);
}

static const char *listen_hint(int err)
{
	switch (err) {
	case EADDRINUSE:
		return "another process has that port: pick another with --listen";
	case EACCES:
		return "ports below 1024 need CAP_NET_BIND_SERVICE: pick a port from 1024 on";
	case EADDRNOTAVAIL:
		return "no interface has that address: give one of this host's, or 0.0.0.0";
	default:
		return "check --listen";
	}
}

int mf_exporter_open(struct mf_exporter **out, const struct mf_listen *l)
{
	struct mf_exporter *ex;
	int one = 1, err;

	err = mf_mhd_load();
	if (err)
		return err;
	ex = calloc(1, sizeof(*ex));
	if (!ex) {
		fprintf(stderr, "memfaulttop: cannot listen on %s: %s\n", l->text, strerror(ENOMEM));
		return -ENOMEM;
	}
	snprintf(ex->where, sizeof(ex->where), "%s", l->text);
	pthread_mutex_init(&ex->lock, NULL);
	ex->fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* SO_REUSEADDR: a restart must not wait for the last run's TIME_WAITs;
	 * V6ONLY: [::]:PORT means IPv6 alone, as written. */
	if (ex->fd < 0 || setsockopt(ex->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (l->addr.ss_family == AF_INET6 &&
	     setsockopt(ex->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(ex->fd, (const struct sockaddr *)&l->addr, l->len) || listen(ex->fd, 64)) {
		err = errno;
		fprintf(stderr, "memfaulttop: cannot listen on %s: %s; %s\n", l->text,
			strerror(err), listen_hint(err));
		mf_exporter_close(ex);
		return -err;
	}
	*out = ex;
	return 0;
}

int mf_exporter_start(struct mf_exporter *ex)
{
	sigset_t all, old;

	/* The HTTP thread inherits a mask without SIGINT and SIGTERM, so that
	 * they reach the main thread and end its sleep. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ex->daemon = mf_mhd.MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD, 0, NULL, NULL,
					     on_request, ex,
					     MHD_OPTION_LISTEN_SOCKET, ex->fd,
					     MHD_OPTION_CONNECTION_TIMEOUT,
					     (unsigned int)CONNECTION_TIMEOUT_S,
					     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
					     MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ex->daemon) {
		fprintf(stderr, "memfaulttop: cannot start the HTTP server on %s (libmicrohttpd);"
			" run without --listen\n", ex->where);
		return -EIO;
	}
	fprintf(stderr, "memfaulttop: serving metrics on http://%s/metrics\n", ex->where);
	return 0;
}

int mf_exporter_publish(struct mf_exporter *ex, const struct mf_model *m)
{
	struct snapshot *s = calloc(1, sizeof(*s)), *old;
	int err;

	if (!s)
		return -ENOMEM;
	atomic_init(&s->refs, 1);
	/* Sized like the last one: the render rarely has to grow it. */
	s->text.cap = ex->last_len + ex->last_len / 8;
	s->text.data = s->text.cap ? malloc(s->text.cap) : NULL;
	if (s->text.cap && !s->text.data)
		s->text.cap = 0;
	err = mf_metrics_render(&s->text, m);
	if (err) {
		snapshot_put(s);
		return err;
	}
	ex->last_len = s->text.len;
	pthread_mutex_lock(&ex->lock);
	old = ex->latest;
	ex->latest = s;
	pthread_mutex_unlock(&ex->lock);
	snapshot_put(old);
	return 0;
}

void mf_exporter_close(struct mf_exporter *ex)
{
	if (!ex)
		return;
	/* libmicrohttpd closes the listen socket it was given. */
	if (ex->daemon)
		mf_mhd.MHD_stop_daemon(ex->daemon);
	else if (ex->fd >= 0)
		close(ex->fd);
	snapshot_put(ex->latest);
	pthread_mutex_destroy(&ex->lock);
	free(ex);
}
