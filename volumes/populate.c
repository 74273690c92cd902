/* volumes/populate: first-use copy of image content into an empty volume,
 * keeping owners, modes, times, xattrs, hard links, holes and special
 * files; built beside the volume and renamed over it, so all or nothing. */
#include "volumes/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include "util/hash.h"

struct link_seen {
	struct {
		dev_t dev;
		ino_t ino;
	} key;
	char *rel; /* path of the first copy, relative to the copy's root */
	UT_hash_handle hh;
};

struct copy_ctx {
	int rootfd; /* the copy's root (the staging directory) */
	struct link_seen *links;
	struct su_error *e;
};

/* One entry being copied: its directory fds, name and full paths (the
 * paths serve the l*xattr calls, which have no *at form). */
struct copy_ent {
	int sdir, ddir;
	const char *name, *spath, *dpath, *rel;
};

static int copy_tree(struct copy_ctx *c, int sfd, int dfd, const char *spath, const char *dpath,
		     const char *rel);

static bool xattr_optional(const char *name, int err)
{
	/* Unprivileged or SELinux-less targets cannot take trusted.* or
	 * security.*: keep going, as cp -a does; user.* must be kept. */
	return !su_str_has_prefix(name, "user.") &&
	       (err == EPERM || err == ENOTSUP || err == EACCES);
}

static int copy_xattrs(struct copy_ctx *c, const char *spath, const char *dpath)
{
	ssize_t n = llistxattr(spath, NULL, 0);
	_cleanup_free_ char *names = NULL;

	if (n < 0 && (errno == ENOTSUP || errno == ENOSYS))
		return 0;
	if (n <= 0)
		return n < 0 ? su_error_set(c->e, errno, "list xattrs of %s", spath) : 0;
	names = malloc(n);
	if (!names)
		return su_error_set(c->e, ENOMEM, "copy xattrs");
	n = llistxattr(spath, names, n);
	if (n < 0)
		return su_error_set(c->e, errno, "list xattrs of %s", spath);
	for (char *x = names; x < names + n; x += strlen(x) + 1) {
		ssize_t vl = lgetxattr(spath, x, NULL, 0);
		_cleanup_free_ char *val = vl >= 0 ? malloc(vl + 1) : NULL;

		if (vl < 0 || !val || (vl = lgetxattr(spath, x, val, vl)) < 0)
			return su_error_set(c->e, val || vl < 0 ? errno : ENOMEM,
					    "read xattr %s of %s", x, spath);
		if (lsetxattr(dpath, x, val, vl, 0) < 0) {
			if (!xattr_optional(x, errno))
				return su_error_set(c->e, errno, "set xattr %s on %s", x, dpath);
			su_warn("populate: xattr %s of %s not kept: %s", x, spath, strerror(errno));
		}
	}
	return 0;
}

/* Owner first (chown clears set-id bits and file capabilities), then
 * xattrs, mode, and times last. */
static int copy_attrs(struct copy_ctx *c, const struct copy_ent *en, const struct stat *st)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};

	if (fchownat(en->ddir, en->name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return su_error_set(c->e, errno, "chown %s to %u:%u", en->dpath, st->st_uid,
				    st->st_gid);
	if (copy_xattrs(c, en->spath, en->dpath) < 0)
		return -1;
	if (!S_ISLNK(st->st_mode) && fchmodat(en->ddir, en->name, st->st_mode & 07777, 0) < 0)
		return su_error_set(c->e, errno, "chmod %s", en->dpath);
	if (utimensat(en->ddir, en->name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return su_error_set(c->e, errno, "set times of %s", en->dpath);
	return 0;
}

static int copy_file(struct copy_ctx *c, const struct copy_ent *en, const struct stat *st)
{
	_cleanup_close_ int sfd = openat(en->sdir, en->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int dfd = -1;
	int r;

	if (sfd < 0)
		return su_error_set(c->e, errno, "open %s", en->spath);
	dfd =
	    openat(en->ddir, en->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dfd < 0)
		return su_error_set(c->e, errno, "create %s", en->dpath);
	if ((r = su_copy_data(sfd, dfd, st->st_size)) < 0)
		return su_error_set(c->e, -r, "copy %s", en->spath);
	return 0;
}

static int copy_symlink(struct copy_ctx *c, const struct copy_ent *en, const struct stat *st)
{
	_cleanup_free_ char *target = malloc(st->st_size + 1);
	ssize_t n;

	if (!target)
		return su_error_set(c->e, ENOMEM, "copy %s", en->spath);
	n = readlinkat(en->sdir, en->name, target, st->st_size + 1);
	if (n < 0 || n > st->st_size)
		return su_error_set(c->e, n < 0 ? errno : EIO, "readlink %s", en->spath);
	target[n] = '\0';
	if (symlinkat(target, en->ddir, en->name) < 0)
		return su_error_set(c->e, errno, "symlink %s", en->dpath);
	return 0;
}

static int copy_dir(struct copy_ctx *c, const struct copy_ent *en)
{
	_cleanup_close_ int sfd = -1, dfd = -1;

	if (mkdirat(en->ddir, en->name, 0700) < 0)
		return su_error_set(c->e, errno, "mkdir %s", en->dpath);
	sfd = openat(en->sdir, en->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		return su_error_set(c->e, errno, "open %s", en->spath);
	dfd = openat(en->ddir, en->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return su_error_set(c->e, errno, "open %s", en->dpath);
	return copy_tree(c, sfd, dfd, en->spath, en->dpath, en->rel);
}

/* A further name of an inode already copied becomes a hard link to it. */
static int copy_hardlink(struct copy_ctx *c, const struct copy_ent *en, const struct stat *st,
			 bool *linked)
{
	struct link_seen *l, key;

	*linked = false;
	memset(&key, 0, sizeof(key));
	key.key.dev = st->st_dev;
	key.key.ino = st->st_ino;
	HASH_FIND(hh, c->links, &key.key, sizeof(key.key), l);
	if (l) {
		if (linkat(c->rootfd, l->rel, en->ddir, en->name, 0) < 0)
			return su_error_set(c->e, errno, "link %s", en->dpath);
		*linked = true;
		return 0;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->rel = strdup(en->rel))) {
		free(l);
		return su_error_set(c->e, ENOMEM, "copy %s", en->spath);
	}
	l->key = key.key;
	HASH_ADD(hh, c->links, key, sizeof(l->key), l);
	return 0;
}

static int copy_entry(struct copy_ctx *c, const struct copy_ent *en)
{
	struct stat st;
	bool linked;
	int r;

	if (fstatat(en->sdir, en->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return su_error_set(c->e, errno, "stat %s", en->spath);
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		if (copy_hardlink(c, en, &st, &linked) < 0)
			return -1;
		if (linked)
			return 0;
	}
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		r = copy_dir(c, en);
		break;
	case S_IFREG:
		r = copy_file(c, en, &st);
		break;
	case S_IFLNK:
		r = copy_symlink(c, en, &st);
		break;
	default: /* character and block devices, fifos, sockets */
		r = mknodat(en->ddir, en->name, (st.st_mode & S_IFMT) | 0600, st.st_rdev);
		if (r < 0)
			r = su_error_set(c->e, errno, "mknod %s", en->dpath);
		break;
	}
	return r < 0 ? -1 : copy_attrs(c, en, &st);
}

static int copy_tree(struct copy_ctx *c, int sfd, int dfd, const char *spath, const char *dpath,
		     const char *rel)
{
	int fd = dup(sfd);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		su_closep(&fd);
		return su_error_set(c->e, errno, "read directory %s", spath);
	}
	while ((errno = 0, de = readdir(d))) {
		_cleanup_free_ char *sp = NULL, *dp = NULL, *rp = NULL;
		struct copy_ent en;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		sp = su_asprintf("%s/%s", spath, de->d_name);
		dp = su_asprintf("%s/%s", dpath, de->d_name);
		rp = *rel ? su_asprintf("%s/%s", rel, de->d_name) : strdup(de->d_name);
		if (!sp || !dp || !rp)
			return su_error_set(c->e, ENOMEM, "copy %s", spath);
		en = (struct copy_ent){sfd, dfd, de->d_name, sp, dp, rp};
		if (copy_entry(c, &en) < 0)
			return -1;
	}
	if (errno)
		return su_error_set(c->e, errno, "read directory %s", spath);
	return 0;
}

static int dir_is_empty(const char *path, bool *empty, struct su_error *e)
{
	_cleanup_closedir_ DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return su_error_set(e, errno, "open %s", path);
	*empty = true;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			*empty = false;
	return 0;
}

/* Copies src into the new directory stage (as a sibling of dst). */
static int copy_into_stage(const char *src, const char *stage, struct su_error *e)
{
	_cleanup_close_ int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dfd = -1;
	struct copy_ctx c = {.e = e};
	struct link_seen *l, *tmp;
	struct copy_ent root;
	struct stat st;
	int r;

	if (sfd < 0 || fstat(sfd, &st) < 0)
		return su_error_set(e, errno, "open %s", src);
	if (mkdir(stage, 0700) < 0)
		return su_error_set(e, errno, "mkdir %s", stage);
	dfd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return su_error_set(e, errno, "open %s", stage);
	c.rootfd = dfd;
	r = copy_tree(&c, sfd, dfd, src, stage, "");
	HASH_ITER(hh, c.links, l, tmp)
	{
		HASH_DEL(c.links, l);
		free(l->rel);
		free(l);
	}
	if (r < 0)
		return -1;
	root = (struct copy_ent){AT_FDCWD, AT_FDCWD, stage, src, stage, ""};
	if (copy_attrs(&c, &root, &st) < 0)
		return -1;
	return fsync(dfd) < 0 ? su_error_set(e, errno, "fsync %s", stage) : 0;
}

int vol_populate(const char *src, const char *dst, struct su_error *e)
{
	_cleanup_free_ char *d1 = strdup(dst), *d2 = strdup(dst), *stage = NULL;
	char hex[17];
	struct stat st;
	bool empty = false;
	int r;

	if (!d1 || !d2 || vol_random_hex(hex, 8) < 0)
		return su_error_set(e, ENOMEM, "populate %s", dst);
	if (dir_is_empty(dst, &empty, e) < 0)
		return su_error_wrap(e, "populate %s", dst);
	if (!empty)
		return 0; /* a volume with content is never touched */
	if (stat(src, &st) < 0 && errno == ENOENT)
		return 0; /* nothing in the image at that path */
	stage = su_asprintf("%s/.%s.populate-%s", dirname(d1), basename(d2), hex);
	if (!stage)
		return su_error_set(e, ENOMEM, "populate %s", dst);
	if (copy_into_stage(src, stage, e) < 0)
		goto fail;
	/* rename(2) replaces only an empty directory: if something was
	 * written to dst meanwhile, the copy is dropped. */
	if (rename(stage, dst) < 0) {
		r = errno;
		su_rm_rf_at(AT_FDCWD, stage);
		if (r == ENOTEMPTY || r == EEXIST)
			return 0;
		return su_error_set(e, r, "populate %s: rename", dst);
	}
	return 1;
fail:
	su_rm_rf_at(AT_FDCWD, stage);
	return su_error_wrap(e, "populate %s from %s", dst, src);
}

/* Removes copies a crashed populate left in volumes/<name>/. */
static void populate_gc(struct vol_store *s, const char *name)
{
	int fd = openat(s->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		su_closep(&fd);
		return;
	}
	while ((de = readdir(d)))
		if (su_str_has_prefix(de->d_name, "._data.populate-"))
			su_rm_rf_at(dirfd(d), de->d_name);
}

int vol_store_populate(struct vol_store *s, const char *name, const char *src, struct su_error *e)
{
	_cleanup_unlock_ int lock = vol_store_lock(s, true, e);
	_cleanup_free_ char *dst = su_asprintf("%s/%s/_data", s->dir, name);
	int r;

	if (lock < 0)
		return su_error_wrap(e, "populate volume %s", name);
	if (!dst)
		return su_error_set(e, ENOMEM, "populate volume %s", name);
	if (!vol_name_valid(name) || faccessat(s->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		su_error_set(e, 0, "populate volume %s: no such volume", name);
		e->errnum = ENOENT;
		return -1;
	}
	populate_gc(s, name);
	r = vol_populate(src, dst, e);
	if (r < 0)
		return su_error_wrap(e, "populate volume %s", name);
	return r;
}

int vol_mount_populate(struct vol_store *s, const struct vol_mount *m, const char *name,
		       const char *src, struct su_error *e)
{
	/* Binds and tmpfs never copy; nocopy volumes neither. */
	if (m->type != VOL_MOUNT_VOLUME || m->nocopy)
		return 0;
	return vol_store_populate(s, name, src, e);
}
