/* image/store.h: what the files of the image module share inside it (the
 * store handle, locking, metadata, sha256 helpers); not public. */
#ifndef STRATA_IMAGE_STORE_H
#define STRATA_IMAGE_STORE_H

#include <openssl/evp.h>
#include <stdio.h>

#include "image/image.h"

struct img_store {
	char *root;   /* the state root */
	char *images; /* <root>/images */
	char *layers; /* <root>/layers/sha256 */
	char *tars;   /* <root>/layers/tar */
	int imagesfd;
	int layersfd;
	int tarsfd;
};

/* ---- image/store.c ---- */

/* Opens (creating with create) the store directories. */
int img_store_open(const char *root, bool create, struct img_store **out, struct su_error *e);
void img_store_close(struct img_store *s);
void img_store_closep(struct img_store **s);
#define _cleanup_store_ __attribute__((cleanup(img_store_closep)))
/* Returns the lock fd (close it to unlock) or -1.  The exclusive lock also
 * removes what crashed writers left behind (".tmp-*", ".rm-*"). */
int img_store_lock(struct img_store *s, bool exclusive, struct su_error *e);
void img_store_unlockp(int *fd);
#define _cleanup_unlock_ __attribute__((cleanup(img_store_unlockp)))
/* Caller holds the lock.  errnum ENOENT when no image matches. */
int img_lookup_locked(struct img_store *s, const char *ref, char **id, struct su_error *e);
int img_load_locked(struct img_store *s, const char *id, struct img_info **out, struct su_error *e);
int img_list_locked(struct img_store *s, struct img_info ***out, size_t *n, struct su_error *e);
/* Writes images/<id>/ from a config blob (atomically, replacing nothing);
 * moves names given to other images over to this one. */
int img_store_add_locked(struct img_store *s, const char *id, const char *config, size_t len,
			 const char *name, uint64_t size, struct su_error *e);
/* Takes name off image id, keeping the image (one atomic rewrite of its
 * meta.json).  Caller holds the exclusive lock. */
int img_untag_locked(struct img_store *s, const char *id, const char *name, struct su_error *e);
/* ".tmp-<32 hex>" into buf (at least 38 bytes). */
int img_tmp_name(char *buf, const char *prefix);
bool img_hex_valid(const char *s, size_t len);

/* ---- image/digest.c ---- */

/* Hex sha256 of a buffer into out[65]. */
void img_sha256_hex(const void *data, size_t len, char out[65]);
/* Finishes ctx into out[65] and frees it. */
void img_sha256_final(EVP_MD_CTX *ctx, char out[65]);
/* "sha256:<64 hex>" -> pointer to the hex part, or NULL. */
const char *img_digest_hex(const char *digest);

/* ---- image/layer.c ---- */

struct img_progress {
	bool show;
	size_t layer, nlayers;
	uint64_t bytes;
	time_t last;
};

/* Unpacks the layer blob at blobfd (tar, tar+gzip, tar+zstd) into
 * layers/sha256/<diffid>/ unless present.  want_blob: the expected blob
 * sha256 hex, or NULL; want_diff: expected diff_id hex, or NULL (then
 * diff_out gets the computed one).  *reused tells whether the layer was
 * already there.  Caller holds the exclusive lock. */
int img_layer_unpack(struct img_store *s, int blobfd, const char *want_blob, const char *want_diff,
		     char diff_out[65], bool *reused, struct img_progress *p, struct su_error *e);
/* Safe extraction of a tar (compressed when filters) into rootfd: never
 * follows a symlink of the archive, refuses paths leaving rootfd, turns OCI
 * whiteouts into overlayfs ones. */
int img_extract(int tarfd, int rootfd, bool filters, struct su_error *e);
uint64_t img_layer_size(struct img_store *s, const char *diffid);

#endif
