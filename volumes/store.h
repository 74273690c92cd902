/* volumes/store.h: what the files of the volumes module share inside it
 * (the store handle, locking, and the *_locked variants); not public. */
#ifndef STRATA_VOLUMES_STORE_H
#define STRATA_VOLUMES_STORE_H

#include "volumes/volumes.h"

struct vol_store {
	char *dir; /* <root>/volumes */
	int dirfd; /* open on dir */
	void (*crash_hook)(const char *point, void *data);
	void *crash_data;
};

/* ---- volumes/store.c ---- */

/* Takes the store lock on a freshly opened .lock file: returns its fd
 * (close it to unlock) or -1.  The exclusive lock also removes what
 * crashed writers left behind. */
int vol_store_lock(struct vol_store *s, bool exclusive, struct su_error *e);
void vol_store_unlockp(int *fd);
#define _cleanup_unlock_ __attribute__((cleanup(vol_store_unlockp)))
void vol_store_gc(struct vol_store *s);
void vol_store_point(struct vol_store *s, const char *point);
/* Fills out with 2*nbytes hex digits and a NUL. */
int vol_random_hex(char *out, size_t nbytes);
/* Caller holds the lock (shared or exclusive). */
int vol_inspect_locked(struct vol_store *s, const char *name, struct vol_info **out,
		       struct su_error *e);
int vol_list_locked(struct vol_store *s, struct vol_info ***out, size_t *n, struct su_error *e);

/* ---- volumes/refs.c ---- */

/* Caller holds the lock.  A volume without a refs directory has none. */
int vol_refs_read(struct vol_store *s, const char *name, char ***out, struct su_error *e);

#endif
