/* image: the image store under the state root -- import of OCI layouts,
 * docker-save archives and plain rootfs tarballs into a shared,
 * content-addressed layer store, resolution of image references for the
 * launcher, listing, removal, export, and `diff` of a writable layer.
 *
 * Layout under the state root:
 *   layers/sha256/<diffid>/        an unpacked layer in overlayfs format
 *   layers/tar/<diffid>.tar        the layer's uncompressed tar (for export)
 *   images/.lock                   flock: shared for reads, exclusive for writes
 *   images/<id>/config.json        the image config blob, byte for byte
 *   images/<id>/meta.json          Id, Names, Created (import time), Size
 * Layers and images appear by renaming a complete ".tmp-*" staging entry
 * into place and disappear by renaming them to ".rm-*" first; leftovers are
 * removed by the next writer under the exclusive lock. */
#ifndef STRATA_IMAGE_H
#define STRATA_IMAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

struct img_config {	   /* from the image config's "config" object */
	char **env;	   /* NULL-terminated "K=V" */
	char **entrypoint; /* NULL-terminated or NULL */
	char **cmd;	   /* NULL-terminated or NULL */
	char *workdir;	   /* or NULL */
	char *user;	   /* or NULL */
	char **volumes;	   /* NULL-terminated container paths, or NULL */
	char **labels;	   /* NULL-terminated "K=V", or NULL */
};

struct img_resolved {
	char *id;      /* hex sha256 of the config blob (image id) */
	char *name;    /* "name:tag" as given or stored, may be NULL */
	char **layers; /* NULL-terminated absolute layer dirs, TOP FIRST (lowerdir order) */
	size_t nlayers;
	struct img_config config;
};

/* ---- resolution (image/resolve.c) ---- */

/* ref: "name[:tag]" (tag defaults to latest), a full or unique-prefix image
 * id (optionally "sha256:"-prefixed).  errnum ENOENT when nothing matches. */
int img_resolve(const char *root, const char *ref, struct img_resolved *out, struct su_error *e);
void img_resolved_free(struct img_resolved *r);
/* Fills c from a parsed image config blob (its "config" object). */
int img_config_parse(json_t *blob, struct img_config *c, struct su_error *e);
void img_config_clear(struct img_config *c);
/* "name" -> "name:latest"; NULL when the reference is not a valid name. */
char *img_name_normalize(const char *ref);

/* ---- the store (image/store.c) ---- */

struct img_info {
	char *id;
	char **names;	 /* NULL-terminated, may be empty */
	char *created;	 /* RFC 3339 import time */
	char **diff_ids; /* NULL-terminated "sha256:<hex>", BOTTOM FIRST */
	uint64_t size;	 /* bytes of the unpacked layers */
	json_t *config;	 /* the config blob, parsed */
};

/* Every image, sorted by creation time (newest first). */
int img_list(const char *root, struct img_info ***out, size_t *n, struct su_error *e);
int img_inspect(const char *root, const char *ref, struct img_info **out, struct su_error *e);
void img_info_free(struct img_info *i);
void img_info_list_free(struct img_info **v, size_t n);
/* The object `image inspect` prints. */
json_t *img_info_to_json(const char *root, const struct img_info *i);
/* What `image rm` did to one reference. */
struct img_rm_result {
	char **untagged; /* NULL-terminated names taken off the image */
	char *deleted;	 /* the id of the image removed, NULL when it stays */
};

/* As Docker's rmi.  ref "name[:tag]" of an image with other names: takes
 * that name off only.  Otherwise (its last name, or an id) removes the
 * image and the layers no other image uses -- refused (EBUSY) when ref is
 * an id and the image has several names, unless force, and always while a
 * container's config.json names the image (naming the containers).  force
 * also makes an unknown ref no error.  out is filled with what was done,
 * even on failure; clear it with img_rm_result_clear. */
int img_rm(const char *root, const char *ref, bool force, struct img_rm_result *out,
	   struct su_error *e);
void img_rm_result_clear(struct img_rm_result *r);
/* Removes images without names (all unused images with all) and layers no
 * image uses; returns the removed image ids. */
int img_prune(const char *root, bool all, char ***removed, struct su_error *e);

/* ---- import and export (image/import.c, image/export.c) ---- */

struct img_import_opts {
	const char *name; /* "name[:tag]" to give the image, or NULL */
	bool quiet;	  /* no progress on stderr */
};

/* path: an OCI layout directory, or a tar (OCI archive, docker-save
 * archive, or plain rootfs tar, optionally compressed); "-" reads stdin.
 * *id_out (may be NULL) gets the image id. */
int img_import(const char *root, const char *path, const struct img_import_opts *o, char **id_out,
	       struct su_error *e);
/* Writes an OCI archive (tar of an OCI layout) of the image to path. */
int img_export(const char *root, const char *ref, const char *path, struct su_error *e);

/* ---- diff (image/diff.c) ---- */

struct img_change {
	char kind;  /* 'A', 'C' or 'D' */
	char *path; /* absolute container path */
};

/* Changes in an overlayfs upper dir against its lowers (TOP FIRST, may be
 * NULL: then a path is 'C' when it carries an overlay origin xattr). */
int img_diff(const char *upper, char *const *lowers, struct img_change **out, size_t *n,
	     struct su_error *e);
void img_changes_free(struct img_change *c, size_t n);

#endif
