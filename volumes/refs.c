/* volumes/refs: which containers use a volume.  One empty file per
 * container, volumes/<name>/refs/<container-id>: adding or dropping a
 * reference is a single create or unlink, so it is atomic without
 * rewriting meta.json, and a crash can only leave it present or absent. */
#include "volumes/store.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* Container ids: "[a-zA-Z0-9][a-zA-Z0-9_.-]*", at most 128 bytes. */
static bool container_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 128 || !isalnum((unsigned char)id[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("_.-", id[i]))
			return false;
	return true;
}

static int strv_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int vol_refs_read(struct vol_store *s, const char *name, char ***out, struct su_error *e)
{
	_cleanup_free_ char *path = su_asprintf("%s/refs", name);
	int fd = path ? openat(s->dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	char **v = calloc(1, sizeof(*v));
	size_t n = 0;
	struct dirent *de;

	if (!v || !path) {
		free(v);
		su_closep(&fd);
		return su_error_set(e, ENOMEM, "read references of %s", name);
	}
	if (!d) {
		int err = errno;
		su_closep(&fd);
		if (err == ENOENT) {
			*out = v;
			return 0;
		}
		free(v);
		return su_error_set(e, err, "read references of %s", name);
	}
	while ((de = readdir(d))) {
		char **nv;

		if (!container_id_valid(de->d_name))
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(de->d_name))) {
			su_strv_free(nv ? nv : v);
			return su_error_set(e, ENOMEM, "read references of %s", name);
		}
		v = nv;
		v[++n] = NULL;
	}
	qsort(v, n, sizeof(*v), strv_cmp);
	*out = v;
	return 0;
}

static int ref_check(struct vol_store *s, const char *name, const char *container,
		     struct su_error *e)
{
	if (!container_id_valid(container))
		return su_error_set(e, EINVAL, "invalid container id \"%s\"", container);
	if (!vol_name_valid(name) || faccessat(s->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		su_error_set(e, 0, "no such volume: %s", name);
		e->errnum = ENOENT;
		return -1;
	}
	return 0;
}

int vol_ref_add(struct vol_store *s, const char *name, const char *container, struct su_error *e)
{
	_cleanup_unlock_ int lock = vol_store_lock(s, true, e);
	_cleanup_free_ char *dir = su_asprintf("%s/refs", name);
	_cleanup_close_ int dfd = -1, fd = -1;

	if (lock < 0 || ref_check(s, name, container, e) < 0)
		return su_error_wrap(e, "add reference of %s to %s", container, name);
	if (!dir)
		return su_error_set(e, ENOMEM, "add reference");
	if (mkdirat(s->dirfd, dir, 0755) < 0 && errno != EEXIST)
		return su_error_set(e, errno, "add reference of %s to %s", container, name);
	dfd = openat(s->dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fd = openat(dfd, container, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return su_error_set(e, errno, "add reference of %s to %s", container, name);
	fsync(dfd);
	return 0;
}

int vol_ref_del(struct vol_store *s, const char *name, const char *container, struct su_error *e)
{
	_cleanup_unlock_ int lock = vol_store_lock(s, true, e);
	_cleanup_free_ char *path = su_asprintf("%s/refs/%s", name, container);

	if (lock < 0)
		return su_error_wrap(e, "drop reference of %s to %s", container, name);
	if (!container_id_valid(container))
		return su_error_set(e, EINVAL, "drop reference: invalid container id \"%s\"",
				    container);
	if (!path)
		return su_error_set(e, ENOMEM, "drop reference");
	/* A volume already gone has no references to drop. */
	if (!vol_name_valid(name))
		return 0;
	if (unlinkat(s->dirfd, path, 0) < 0 && errno != ENOENT && errno != ENOTDIR)
		return su_error_set(e, errno, "drop reference of %s to %s", container, name);
	return 0;
}

int vol_refs_list(struct vol_store *s, const char *name, char ***out, struct su_error *e)
{
	_cleanup_unlock_ int lock = vol_store_lock(s, false, e);

	if (lock < 0)
		return -1;
	if (!vol_name_valid(name) || faccessat(s->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		su_error_set(e, 0, "no such volume: %s", name);
		e->errnum = ENOENT;
		return -1;
	}
	return vol_refs_read(s, name, out, e);
}
