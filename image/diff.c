/* image/diff: Docker-style A/C/D changes of an overlayfs upper directory
 * (0/0 whiteouts, .wh. files, opaque directories in trusted.overlay.*,
 * user.overlay.* or user.fuseoverlayfs.*). */
#include "image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

struct changes {
	struct img_change *v;
	size_t n;
	char *const *lowers;
};

static int add(struct changes *c, char kind, const char *path)
{
	struct img_change *nv = realloc(c->v, (c->n + 1) * sizeof(*nv));

	if (!nv)
		return -1;
	c->v = nv;
	nv[c->n].kind = kind;
	nv[c->n].path = strdup(path);
	return nv[c->n++].path ? 0 : -1;
}

static bool has_xattr(int dirfd, const char *name, const char *suffix)
{
	static const char *const prefixes[] = {"trusted.overlay.", "user.overlay.",
					       "user.fuseoverlayfs."};
	char proc[4096], attr[64], val[8];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dirfd, name);
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		ssize_t n;
		snprintf(attr, sizeof(attr), "%s%s", prefixes[i], suffix);
		n = lgetxattr(proc, attr, val, sizeof(val));
		if (n > 0 && (strcmp(suffix, "opaque") || val[0] == 'y'))
			return true;
		if (n >= 0 && strcmp(suffix, "opaque"))
			return true;
	}
	return false;
}

/* Whether path exists in the merged lowers (a whiteout there means no). */
static int in_lowers(struct changes *c, const char *path)
{
	for (size_t i = 0; c->lowers && c->lowers[i]; i++) {
		_cleanup_free_ char *p = su_asprintf("%s%s", c->lowers[i], path);
		struct stat st;

		if (p && lstat(p, &st) == 0)
			return !(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	}
	return c->lowers ? 0 : -1;
}

/* Lower entries of an opaque directory are all deleted. */
static int opaque_deletes(struct changes *c, int dirfd, const char *path)
{
	for (size_t i = 0; c->lowers && c->lowers[i]; i++) {
		_cleanup_free_ char *p = su_asprintf("%s%s", c->lowers[i], path);
		_cleanup_closedir_ DIR *d = p ? opendir(p) : NULL;
		struct dirent *de;

		while (d && (de = readdir(d))) {
			_cleanup_free_ char *sub = NULL;
			struct stat st;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			    su_str_has_prefix(de->d_name, ".wh.") ||
			    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				continue;
			sub = su_asprintf("%s/%s", strcmp(path, "/") ? path : "", de->d_name);
			if (!sub || in_lowers(c, sub) != 1)
				continue;
			bool dup = false;
			for (size_t k = 0; k < c->n; k++)
				dup |= !strcmp(c->v[k].path, sub);
			if (!dup && add(c, 'D', sub) < 0)
				return -1;
		}
	}
	return 0;
}

static int walk(struct changes *c, int dirfd, const char *path, struct su_error *e)
{
	int fd = dup(dirfd);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		su_closep(&fd);
		return su_error_set(e, errno, "read %s", path);
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *sub = NULL;
		const char *name = de->d_name;
		struct stat st;
		int lower;

		if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".wh..wh..opq"))
			continue;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (su_str_has_prefix(name, ".wh.")) {
			sub = su_asprintf("%s/%s", strcmp(path, "/") ? path : "", name + 4);
			if (!sub || add(c, 'D', sub) < 0)
				return su_error_set(e, ENOMEM, "diff");
			continue;
		}
		sub = su_asprintf("%s/%s", strcmp(path, "/") ? path : "", name);
		if (!sub)
			return su_error_set(e, ENOMEM, "diff");
		if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
			if (add(c, 'D', sub) < 0)
				return su_error_set(e, ENOMEM, "diff");
			continue;
		}
		lower = in_lowers(c, sub);
		if (lower < 0)
			lower = has_xattr(dirfd, name, "origin") ||
				(S_ISDIR(st.st_mode) && !has_xattr(dirfd, name, "opaque"));
		if (add(c, lower ? 'C' : 'A', sub) < 0)
			return su_error_set(e, ENOMEM, "diff");
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sfd =
			    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd < 0)
				return su_error_set(e, errno, "open %s", sub);
			if (walk(c, sfd, sub, e) < 0)
				return -1;
			if (lower && has_xattr(dirfd, name, "opaque") &&
			    opaque_deletes(c, sfd, sub) < 0)
				return su_error_set(e, ENOMEM, "diff");
		}
	}
	return 0;
}

static int change_cmp(const void *a, const void *b)
{
	return strcmp(((const struct img_change *)a)->path, ((const struct img_change *)b)->path);
}

int img_diff(const char *upper, char *const *lowers, struct img_change **out, size_t *n,
	     struct su_error *e)
{
	_cleanup_close_ int fd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct changes c = {.lowers = lowers};

	if (fd < 0)
		return su_error_set(e, errno, "diff %s", upper);
	if (walk(&c, fd, "/", e) < 0) {
		img_changes_free(c.v, c.n);
		return su_error_wrap(e, "diff %s", upper);
	}
	if (c.n)
		qsort(c.v, c.n, sizeof(*c.v), change_cmp);
	*out = c.v;
	*n = c.n;
	return 0;
}

void img_changes_free(struct img_change *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].path);
	free(c);
}
