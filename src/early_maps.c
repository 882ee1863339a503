// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <unistd.h>
#include <bpf/bpf.h>
#include "early_maps.h"

void mf_early_maps_plan(struct mf_early_maps *e, struct bpf_object *obj)
{
	struct bpf_map *map;

	e->nr = 0;
	bpf_object__for_each_map(map, obj) {
		enum bpf_map_type type = bpf_map__type(map);

		/* libbpf writes the global data's contents at load; task storage
		 * needs the value's BTF. */
		if (bpf_map__is_internal(map) || type == BPF_MAP_TYPE_TASK_STORAGE ||
		    e->nr == MF_EARLY_MAPS_MAX)
			continue;
		e->maps[e->nr++] = (struct mf_early_map){
			.map = map,
			.name = bpf_map__name(map),
			.type = type,
			.key_size = bpf_map__key_size(map),
			.value_size = bpf_map__value_size(map),
			.max_entries = bpf_map__max_entries(map),
			.flags = bpf_map__map_flags(map),
			.fd = -1,
		};
	}
}

void mf_early_maps_create(void *early_maps)
{
	struct mf_early_maps *e = early_maps;

	for (size_t i = 0; i < e->nr; i++) {
		struct mf_early_map *m = &e->maps[i];
		LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = m->flags);

		m->fd = bpf_map_create(m->type, m->name, m->key_size, m->value_size,
				       m->max_entries, &opts);
	}
}

void mf_early_maps_adopt(struct mf_early_maps *e)
{
	for (size_t i = 0; i < e->nr; i++) {
		struct mf_early_map *m = &e->maps[i];

		/* libbpf keeps a duplicate; a map it could not take it makes. */
		if (m->fd >= 0) {
			bpf_map__reuse_fd(m->map, m->fd);
			close(m->fd);
			m->fd = -1;
		}
	}
}
