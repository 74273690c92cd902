/* volumes: the Docker mount grammars (-v, --mount, --tmpfs) parsed into one
 * struct, the volume store under <root>/volumes, container references, and
 * first-use population of a volume from image content. */
#ifndef STRATA_VOLUMES_H
#define STRATA_VOLUMES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

/* ---- mount specifications (volumes/spec.c) ---- */

enum vol_mount_type { VOL_MOUNT_BIND = 1, VOL_MOUNT_VOLUME, VOL_MOUNT_TMPFS };

enum vol_propagation {
	VOL_PROP_DEFAULT = 0, /* rprivate, as Docker */
	VOL_PROP_PRIVATE,
	VOL_PROP_RPRIVATE,
	VOL_PROP_SHARED,
	VOL_PROP_RSHARED,
	VOL_PROP_SLAVE,
	VOL_PROP_RSLAVE,
};

/* One mount, whatever grammar it was written in.  Strings and JSON objects
 * are owned by the struct; release with vol_mount_clear(). */
struct vol_mount {
	enum vol_mount_type type;
	char *source; /* bind: absolute clean host path; volume: name, or
			 NULL for an anonymous volume; tmpfs: NULL */
	char *target; /* absolute and clean, never "/" */
	bool readonly;
	bool nocopy;	 /* volume: never populate from the image */
	bool create_src; /* bind: create a missing source directory */
	char relabel;	 /* 'z', 'Z' or 0: accepted, no effect without SELinux */
	enum vol_propagation propagation;
	json_t *labels;	     /* volume: labels if the mount creates the volume */
	json_t *volume_opts; /* volume: driver options if it creates it */
	unsigned long flags; /* tmpfs: MS_* flags for mount(2) */
	uint64_t tmpfs_size; /* tmpfs: bytes, 0 for the kernel default */
	mode_t tmpfs_mode;   /* tmpfs: mode of the root, 01777 by default */
	char *tmpfs_data;    /* tmpfs: other mount(2) data options ("" if none) */
};

/* -v / --volume [SRC:]DST[:OPTS]; relative sources are made absolute
 * against the current directory, "~" against $HOME. */
int vol_spec_parse_volume(const char *spec, struct vol_mount *m, struct su_error *e);
/* --mount type=...,source=...,target=...,... */
int vol_spec_parse_mount(const char *spec, struct vol_mount *m, struct su_error *e);
/* --tmpfs /path[:opts] */
int vol_spec_parse_tmpfs(const char *spec, struct vol_mount *m, struct su_error *e);
void vol_mount_clear(struct vol_mount *m);
/* Fails with "Duplicate mount point: X" when two mounts share a target. */
int vol_spec_check_targets(const struct vol_mount *m, size_t n, struct su_error *e);
/* For a bind: creates the missing source directory when create_src is set
 * (-v, bind-create-src), otherwise refuses it as Docker does. */
int vol_bind_prepare(const struct vol_mount *m, struct su_error *e);
/* "[a-zA-Z0-9][a-zA-Z0-9_.-]+", at most 255 bytes. */
bool vol_name_valid(const char *name);
const char *vol_propagation_name(enum vol_propagation p);

/* ---- the volume store (volumes/store.c) ----
 * Layout under the state root:
 *   volumes/.lock                  flock: shared for reads, exclusive for writes
 *   volumes/<name>/meta.json       Name, Driver, CreatedAt, Labels, Options, Anonymous
 *   volumes/<name>/_data/          the volume's content
 *   volumes/<name>/refs/<id>       one empty file per container using it
 * A volume appears by renaming a complete staging directory into place and
 * disappears by renaming it out of place before deleting it, so a crash at
 * any point leaves each volume either whole or absent; leftovers (names
 * starting with '.') are removed by the next writer. */

struct vol_store;

struct vol_info {
	char *name;
	char *driver;	  /* always "local" */
	char *created_at; /* RFC 3339 */
	char *mountpoint; /* absolute path of _data */
	json_t *labels;	  /* object of strings */
	json_t *options;  /* object of strings */
	bool anonymous;
	char **refs; /* NULL-terminated, sorted container ids */
};

struct vol_create_opts {
	const char *name; /* NULL: anonymous, a random 64-hex name */
	json_t *labels;	  /* may be NULL */
	json_t *options;  /* may be NULL; keys type, device, o, size */
};

int vol_store_open(const char *root, struct vol_store **out, struct su_error *e);
void vol_store_close(struct vol_store *s);
/* Testing aid: called at named points of create/rm ("create:staged",
 * "rm:renamed") so a test can kill the process there. */
void vol_store_set_crash_hook(struct vol_store *s, void (*hook)(const char *point, void *data),
			      void *data);

/* Creates a volume, or finds the existing one of that name unchanged.
 * *name_out (may be NULL) gets the name; *created whether it was new. */
int vol_create(struct vol_store *s, const struct vol_create_opts *o, char **name_out, bool *created,
	       struct su_error *e);
/* errnum ENOENT when there is no such volume. */
int vol_inspect(struct vol_store *s, const char *name, struct vol_info **out, struct su_error *e);
/* Every volume, sorted by name; free with vol_info_list_free. */
int vol_list(struct vol_store *s, struct vol_info ***out, size_t *n, struct su_error *e);
/* Refuses (EBUSY) a volume with references, naming the containers; with
 * force a missing volume is not an error. */
int vol_rm(struct vol_store *s, const char *name, bool force, struct su_error *e);
/* Removes unreferenced volumes (only anonymous ones unless all); returns
 * the removed names (NULL-terminated) and the bytes they held. */
int vol_prune(struct vol_store *s, bool all, char ***removed, uint64_t *reclaimed,
	      struct su_error *e);
void vol_info_free(struct vol_info *v);
void vol_info_list_free(struct vol_info **v, size_t n);
/* The object `volume inspect` prints for one volume. */
json_t *vol_info_to_json(const struct vol_info *v);

/* ---- container references (volumes/refs.c) ----
 * The launcher calls vol_ref_add when a container is created with a volume
 * and vol_ref_del when the container is removed (not when it stops).  Both
 * are idempotent and run under the store's exclusive lock, so they never
 * race with vol_rm/vol_prune. */
int vol_ref_add(struct vol_store *s, const char *name, const char *container, struct su_error *e);
int vol_ref_del(struct vol_store *s, const char *name, const char *container, struct su_error *e);
/* NULL-terminated sorted ids; free with su_strv_free. */
int vol_refs_list(struct vol_store *s, const char *name, char ***out, struct su_error *e);

/* ---- ls filters (volumes/filter.c) ---- */

struct vol_filter;
/* Adds one "key=value" term: dangling=true|false, label=k, label=k=v,
 * name=REGEX, driver=x.  Terms of one key are ORed (label terms are
 * ANDed, as Docker), different keys are ANDed. */
int vol_filter_add(struct vol_filter **f, const char *term, struct su_error *e);
bool vol_filter_match(const struct vol_filter *f, const struct vol_info *v);
void vol_filter_free(struct vol_filter *f);

/* ---- population (volumes/populate.c) ---- */

/* Copies the tree at src into the empty directory dst: owners, modes,
 * times, xattrs, hard links, symlinks, device nodes, fifos, sockets, holes.
 * The copy is built beside dst and renamed over it, so it happens at most
 * once and never half: returns 1 when copied, 0 when dst was not empty (it
 * is left untouched), -1 on error.  dst must not be a mount point. */
int vol_populate(const char *src, const char *dst, struct su_error *e);
/* vol_populate into a store volume's _data, under the store lock. */
int vol_store_populate(struct vol_store *s, const char *name, const char *src, struct su_error *e);
/* What the launcher calls when it first mounts m, a volume it resolved to
 * the store volume name, over the image path src: populates unless m is a
 * bind, a tmpfs or nocopy.  Returns 1 when copied, 0 when not, -1. */
int vol_mount_populate(struct vol_store *s, const struct vol_mount *m, const char *name,
		       const char *src, struct su_error *e);

/* Bytes held by a tree (regular files and symlinks, hard links once). */
uint64_t vol_tree_size(int parent, const char *name);

#endif
