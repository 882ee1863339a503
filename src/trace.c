// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* --trace: the ring buffer's events as text or NDJSON lines. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include <bpf/libbpf.h>
#include "hist.h"
#include "output.h"
#include "trace.h"

static const char *const event_key[MF_NR_EVENT_TYPES] = {
	[MF_EV_FAULT] = "fault",
	[MF_EV_MAP_GPA_RANGE] = "map_gpa_range",
	[MF_EV_CONVERSION] = "conversion",
	[MF_EV_DISCARD] = "discard",
};

static bool event_private(const struct mf_event *ev)
{
	switch (ev->type) {
	case MF_EV_FAULT:
		return ev->flags & MF_MEMORY_EXIT_FLAG_PRIVATE;
	case MF_EV_MAP_GPA_RANGE:
		return ev->flags & MF_MAP_GPA_RANGE_ENCRYPTED;
	case MF_EV_CONVERSION:
		return ev->flags & MF_MEMORY_ATTRIBUTE_PRIVATE;
	default:
		return false;
	}
}

/* "ok", or the errno's name for a negative return. */
static const char *result_name(__s32 result, char *buf, size_t size)
{
	if (result >= 0)
		return "ok";
	return mf_errno_name(-(__s64)result < MF_ERRNO_SLOTS ? (unsigned int)-(__s64)result :
			     MF_ERRNO_SLOTS - 1, buf, size);
}

/* The event's wall-clock time, "HH:MM:SS.uuuuuu" or ISO 8601 in UTC. */
static void format_time(const struct mf_event *ev, __s64 wall_offset_ns, bool iso, char *buf,
			size_t size)
{
	__s64 ns = (__s64)ev->time_ns + wall_offset_ns;
	time_t secs = (time_t)(ns / 1000000000);
	long usec = (long)(ns % 1000000000 / 1000);
	struct tm tm;
	size_t n;

	if (iso)
		gmtime_r(&secs, &tm);
	else
		localtime_r(&secs, &tm);
	n = strftime(buf, size, iso ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &tm);
	snprintf(buf + n, size - n, iso ? ".%06ldZ" : ".%06ld", usec);
}

static const char *vm_name(const struct mf_vm *vm, char *buf, size_t size)
{
	return vm ? mf_vm_display_name(&vm->ident, vm->stats_id, vm->pid, buf, size) : "?";
}

static int print_text(FILE *f, const struct mf_vm *vm, const struct mf_event *ev,
		      const char *stamp)
{
	char name[MF_NAME_LEN], size[16], result[24], lat[16];
	const char *dir = event_private(ev) ? "private" : "shared";

	fprintf(f, "%s %s id %llu ", stamp, vm_name(vm, name, sizeof(name)),
		(unsigned long long)ev->vm_id);
	switch (ev->type) {
	case MF_EV_FAULT:
		fprintf(f, "vcpu %u fault %s gpa 0x%llx size %s flags 0x%llx", ev->vcpu_id, dir,
			(unsigned long long)ev->gpa, mf_format_size(ev->size, size, sizeof(size)),
			(unsigned long long)ev->flags);
		break;
	case MF_EV_MAP_GPA_RANGE:
		fprintf(f, "vcpu %u map_gpa_range to %s gpa 0x%llx size %s", ev->vcpu_id, dir,
			(unsigned long long)ev->gpa, mf_format_size(ev->size, size, sizeof(size)));
		break;
	case MF_EV_CONVERSION:
		fprintf(f, "tid %u conversion to %s gpa 0x%llx size %s", ev->tid, dir,
			(unsigned long long)ev->gpa, mf_format_size(ev->size, size, sizeof(size)));
		break;
	case MF_EV_DISCARD:
		fprintf(f, "tid %u discard offset 0x%llx size %s", ev->tid,
			(unsigned long long)ev->gpa, mf_format_size(ev->size, size, sizeof(size)));
		break;
	}
	fprintf(f, " %s", result_name(ev->result, result, sizeof(result)));
	if (ev->type == MF_EV_CONVERSION || ev->type == MF_EV_DISCARD)
		fprintf(f, " %s", mf_format_ns(ev->latency_ns, lat, sizeof(lat)));
	fputc('\n', f);
	return 0;
}

static void add_hex(json_object *o, const char *key, __u64 v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	json_object_object_add(o, key, json_object_new_string(buf));
}

/* The line starts every record, events and lost counts alike. */
static json_object *json_record(const char *event, const char *stamp)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "schema", json_object_new_string("memfaulttop-trace"));
	json_object_object_add(o, "version", json_object_new_int(MF_TRACE_SCHEMA_VERSION));
	json_object_object_add(o, "time", json_object_new_string(stamp));
	json_object_object_add(o, "event", json_object_new_string(event));
	return o;
}

static int put_json(FILE *f, json_object *o)
{
	const char *line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	int err = 0;

	if (!line || fputs(line, f) == EOF || fputc('\n', f) == EOF)
		err = -EIO;
	json_object_put(o);
	return err;
}

static int print_json(FILE *f, const struct mf_vm *vm, const struct mf_event *ev,
		      const char *stamp)
{
	json_object *o = json_record(event_key[ev->type], stamp), *v = json_object_new_object();
	char name[MF_NAME_LEN], result[24];

	json_object_object_add(v, "id", json_object_new_uint64(ev->vm_id));
	json_object_object_add(v, "name", json_object_new_string(vm_name(vm, name, sizeof(name))));
	json_object_object_add(v, "pid", json_object_new_int(vm ? vm->pid : 0));
	json_object_object_add(o, "vm", v);
	if (ev->type == MF_EV_FAULT || ev->type == MF_EV_MAP_GPA_RANGE)
		json_object_object_add(o, "vcpu", json_object_new_uint64(ev->vcpu_id));
	json_object_object_add(o, "tid", json_object_new_uint64(ev->tid));
	add_hex(o, ev->type == MF_EV_DISCARD ? "offset" : "gpa", ev->gpa);
	json_object_object_add(o, "bytes", json_object_new_uint64(ev->size));
	if (ev->type != MF_EV_DISCARD)
		json_object_object_add(o, "private", json_object_new_boolean(event_private(ev)));
	add_hex(o, "flags", ev->flags);
	json_object_object_add(o, "result", json_object_new_int(ev->result));
	if (ev->result < 0)
		json_object_object_add(o, "error", json_object_new_string(
			result_name(ev->result, result, sizeof(result))));
	if (ev->type == MF_EV_CONVERSION || ev->type == MF_EV_DISCARD)
		json_object_object_add(o, "latency_ns", json_object_new_uint64(ev->latency_ns));
	return put_json(f, o);
}

int mf_trace_print(FILE *f, const struct mf_model *m, const struct mf_event *ev,
		   __s64 wall_offset_ns, bool json)
{
	const struct mf_vm *vm = mf_model_vm(m, ev->vm_id);
	char stamp[48];

	if (ev->type >= MF_NR_EVENT_TYPES)
		return 0;
	format_time(ev, wall_offset_ns, json, stamp, sizeof(stamp));
	if (json ? print_json(f, vm, ev, stamp) : print_text(f, vm, ev, stamp))
		return -EIO;
	return ferror(f) ? -EIO : 0;
}

struct trace_ctx {
	struct mf_model *m;
	__s64 wall_offset_ns;
	bool json;
	int err;
};

static int on_event(void *data, void *buf, size_t size)
{
	struct trace_ctx *t = data;
	const struct mf_event *ev = buf;

	if (size < sizeof(*ev))
		return 0;
	/* A VM's first event may come before the model has read its entry. */
	if (!mf_model_vm(t->m, ev->vm_id)) {
		t->err = mf_model_refresh(t->m);
		if (t->err)
			return t->err;
	}
	t->err = mf_trace_print(stdout, t->m, ev, t->wall_offset_ns, t->json);
	return t->err;
}

static __s64 timespec_ns(const struct timespec *ts)
{
	return (__s64)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* Lost events since the last call, said in the stream itself. */
static int report_lost(const struct mf_model *m, __s64 wall_offset_ns, bool json)
{
	__u64 lost = m->drops[MF_DROP_TRACE_LOST] - m->prev_drops[MF_DROP_TRACE_LOST];
	struct timespec now;
	char stamp[48];
	json_object *o;
	struct mf_event at;

	if (!lost)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	at.time_ns = (__u64)timespec_ns(&now);
	format_time(&at, wall_offset_ns, json, stamp, sizeof(stamp));
	if (!json) {
		fprintf(stdout, "%s lost %llu events: ring buffer full\n", stamp,
			(unsigned long long)lost);
		return ferror(stdout) ? -EIO : 0;
	}
	o = json_record("lost", stamp);
	json_object_object_add(o, "count", json_object_new_uint64(lost));
	return put_json(stdout, o);
}

/* Names first, then the events they name, then forget destroyed VMs:
 * a VM's events all precede its destruction. */
static int tick(struct trace_ctx *t, struct ring_buffer *rb)
{
	int err = mf_model_refresh(t->m);

	if (!err) {
		err = ring_buffer__consume(rb);
		err = err < 0 ? (t->err ? t->err : err) : 0;
	}
	if (!err)
		err = report_lost(t->m, t->wall_offset_ns, t->json);
	if (!err && fflush(stdout))
		err = -EIO;
	if (!err)
		err = mf_model_reap(t->m);
	return err;
}

int mf_trace_run(struct mf_model *m, int events_fd, const struct mf_opts *opts,
		 volatile sig_atomic_t *exiting)
{
	struct trace_ctx t = { .m = m, .json = opts->output == MF_OUT_JSON };
	struct timespec real, mono;
	struct ring_buffer *rb;
	__s64 end, next;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	t.wall_offset_ns = timespec_ns(&real) - timespec_ns(&mono);
	end = opts->duration_s > 0 ? timespec_ns(&mono) + (__s64)(opts->duration_s * 1e9) : 0;
	next = timespec_ns(&mono) + (__s64)(opts->interval_s * 1e9);
	rb = ring_buffer__new(events_fd, on_event, &t, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "memfaulttop: cannot open the trace ring buffer: %s\n",
			strerror(-err));
		return err;
	}
	while (!*exiting && !err) {
		__s64 now, wait;

		clock_gettime(CLOCK_MONOTONIC, &mono);
		now = timespec_ns(&mono);
		if (end && now >= end)
			break;
		if (now >= next) {
			err = tick(&t, rb);
			next += (__s64)(opts->interval_s * 1e9);
			continue;
		}
		wait = (next < end || !end ? next : end) - now;
		err = ring_buffer__poll(rb, (int)(wait / 1000000) + 1);
		if (err == -EINTR)
			err = 0;
		else if (err < 0)
			err = t.err ? t.err : err;
		else
			err = fflush(stdout) ? -EIO : 0;
	}
	/* Whatever is in the buffer at the end is printed, and what was lost said. */
	if (!err)
		err = tick(&t, rb);
	ring_buffer__free(rb);
	if (err == -EIO && errno == EPIPE)
		return 0;
	if (err)
		fprintf(stderr, "memfaulttop: trace: %s\n", strerror(-err));
	return err;
}
