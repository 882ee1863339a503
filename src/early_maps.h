/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * An object's maps, created ahead of its load in another thread (the
 * probe's, while libbpf reads the kernel's BTF) and handed to libbpf,
 * which then skips creating them. Creating memfaulttop's maps means
 * allocating and initializing about 15 MiB of kernel memory (the cold-slot
 * array, the buckets of the 131,072-entry hashes, a per-CPU allocation per
 * VM slot), which the load would otherwise wait for.
 */
#ifndef MF_EARLY_MAPS_H
#define MF_EARLY_MAPS_H

#include <bpf/libbpf.h>

#define MF_EARLY_MAPS_MAX 32

struct mf_early_maps {
	size_t nr;
	struct mf_early_map {
		struct bpf_map *map;
		const char *name;
		enum bpf_map_type type;
		__u32 key_size, value_size, max_entries, flags;
		int fd;		/* -1: not made; libbpf makes it at load */
	} maps[MF_EARLY_MAPS_MAX];
};

/* Notes the maps of obj, as sized now, that can be made without the
 * object's BTF (all but its global data and task storage). */
void mf_early_maps_plan(struct mf_early_maps *e, struct bpf_object *obj);

/* Makes them; one that fails is left to libbpf's load, which says why.
 * Runs in any thread: it reads only what plan noted. */
void mf_early_maps_create(void *early_maps);

/* Hands the maps made to their object, before its load. */
void mf_early_maps_adopt(struct mf_early_maps *e);

#endif
