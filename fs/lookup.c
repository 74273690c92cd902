/* fs/lookup.c: resolving a name in a merged directory: the upper entry, then
 * the lowers top-down, stopping at whiteouts (0/0 devices, .wh.NAME) and
 * opaque directories, following overlayfs redirects of renamed directories
 * and the index of copied-up hard links. */
#include "fs/sfs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

void sfs_res_free(struct sfs_res *res)
{
	if (res->upper >= 0)
		close(res->upper);
	for (int i = 0; i < res->nlow; i++)
		if (res->low[i].fd >= 0)
			close(res->low[i].fd);
	free(res->low);
	free(res->lowpath);
	memset(res, 0, sizeof(*res));
	res->upper = -1;
}

/* An error of a name that no longer leads where a lookup found it. */
static int stale(int err)
{
	return err == -ELOOP || err == -EXDEV || err == -ENOENT || err == -ENOTDIR ? -ESTALE : err;
}

int sfs_open_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	int err = errno;

	if (fd >= 0)
		return fd;
	su_debug("openat2(%d, \"%s\", %#x): %s", dirfd, path, flags, strerror(err));
	return stale(-err);
}

/* The careful open of sfs_lower_open by path; st gets the object's stat. */
static int open_by_path(struct sfs_fs *fs, const struct sfs_lower *l, const char *path, int flags,
			struct stat *st)
{
	/* openat2 refuses bits open(2) ignores, such as the kernel's
	 * __FMODE_EXEC in an open request */
	const int known = O_ACCMODE | O_APPEND | O_NONBLOCK | O_SYNC | O_DSYNC | O_LARGEFILE |
			  O_NOATIME | O_PATH | O_DIRECTORY;
	_cleanup_close_ int dir = -1;
	int fd;

	if (!path)
		return -EIO;
	/* The path was read from the layer's own directories: nothing on it
	 * is a symlink or leaves the layer, unless the layer changed.  One
	 * longer than PATH_MAX is walked a piece at a time. */
	while (strlen(path) >= PATH_MAX) {
		char part[PATH_MAX];
		size_t len = PATH_MAX - 1;

		while (len > 0 && path[len] != '/')
			len--;
		if (len == 0)
			return -ENAMETOOLONG;
		memcpy(part, path, len);
		part[len] = '\0';
		fd = sfs_open_beneath(dir >= 0 ? dir : fs->layers[l->layer].fd, part,
				      O_PATH | O_DIRECTORY);
		if (fd < 0)
			return fd;
		if (dir >= 0)
			close(dir);
		dir = fd;
		path += len + 1;
	}
	fd = sfs_open_beneath(dir >= 0 ? dir : fs->layers[l->layer].fd, path, flags & known);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0 || st->st_ino != l->ino) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* The fd l holds, or -1 (a directory's may be taken away: sfs_lower). */
static int held(const struct sfs_lower *l)
{
	return __atomic_load_n(&l->fd, __ATOMIC_ACQUIRE);
}

int sfs_lower_open(struct sfs_fs *fs, const struct sfs_lower *l, const char *path, int flags,
		   struct stat *st)
{
	struct stat own;
	int fd = held(l), r;

	if (fd < 0)
		return open_by_path(fs, l, path, flags, st ? st : &own);
	fd = sfs_reopen(fs, fd, flags);
	if (fd >= 0 && st && (r = sfs_fstatat(fd, "", st, 0)) < 0) {
		close(fd);
		return r;
	}
	return fd;
}

int sfs_lower_fd(struct sfs_fs *fs, const struct sfs_lower *l, const char *path, int *tmp,
		 struct stat *st)
{
	struct stat own;
	int fd = held(l), r;

	*tmp = -1;
	if (fd >= 0) {
		r = st ? sfs_fstatat(fd, "", st, 0) : 0;
		return r < 0 ? r : fd;
	}
	/* (the open's inode check stats it already) */
	*tmp = open_by_path(fs, l, path, O_PATH, st ? st : &own);
	return *tmp;
}

int sfs_lower_stat(struct sfs_fs *fs, const struct sfs_lower *l, const char *path, struct stat *st)
{
	int fd = held(l), r;

	if (fd >= 0)
		return sfs_fstatat(fd, "", st, 0);
	if (!path)
		return -EIO;
	/* a path of plain directories when it was read: the same inode on
	 * the layer's filesystem at its end says it still is */
	if (strlen(path) < PATH_MAX) {
		r = sfs_fstatat(fs->layers[l->layer].fd, path, st, 0);
		if (r == 0 && st->st_ino == l->ino && st->st_dev == fs->layers[l->layer].dev)
			return 0;
		if (r < 0 && r != -ENOENT && r != -ENOTDIR && r != -ELOOP)
			return r;
	}
	/* moved, or a symlink on the way: the careful open tells */
	fd = open_by_path(fs, l, path, O_PATH, st);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int add_lower(struct sfs_res *res, int fd, int layer, ino_t ino)
{
	struct sfs_lower *l = realloc(res->low, (res->nlow + 1) * sizeof(*l));

	if (!l) {
		close(fd);
		return -ENOMEM;
	}
	res->low = l;
	res->low[res->nlow++] = (struct sfs_lower){fd, layer, ino};
	return 0;
}

/* A lower non-directory: no fd, unless its layer's inode numbers cannot
 * tell it again later. */
static int add_file(struct sfs_fs *fs, struct sfs_res *res, int dirfd, int layer, const char *name,
		    const struct stat *st)
{
	int fd = -1;

	if (fs->layers[layer].pin) {
		fd = sfs_openat(dirfd, name, O_PATH | O_NOFOLLOW, 0);
		if (fd < 0)
			return stale(fd);
	}
	return add_lower(res, fd, layer, st->st_ino);
}

static bool has_oci_whiteout(int dirfd, const char *name)
{
	char wh[NAME_MAX + 8];
	struct stat st;

	if (snprintf(wh, sizeof(wh), ".wh.%s", name) >= (int)sizeof(wh))
		return false;
	return sfs_fstatat(dirfd, wh, &st, 0) == 0;
}

/* Looks for name in the candidate lower dirs, which are owner's lowers
 * (NULL: dirs that hold their fds); want_dirs collects the stack of a
 * merged directory, otherwise the first object is taken. */
static int scan_lowers(struct sfs_fs *fs, struct sfs_node *owner, struct sfs_lower *dirs, int ndirs,
		       const char *name, bool upper_dir, bool upper_nondir, struct sfs_res *res)
{
	if (su_str_has_prefix(name, ".wh."))
		return 0;
	for (int i = 0; i < ndirs; i++) {
		_cleanup_close_ int tmp = -1;
		int dfd = owner ? sfs_node_lowdir(fs, owner, &dirs[i], &tmp) : dirs[i].fd;
		struct stat st;
		int fd, r;

		if (dfd < 0)
			return dfd;
		/* a stat, no fd: only directories keep fds of their lowers */
		r = sfs_fstatat(dfd, name, &st, 0);
		if (r == -ENOENT || r == -ENOTDIR) {
			/* (in the last dir, a whiteout would hide nothing) */
			if (i + 1 < ndirs && !__atomic_load_n(&dirs[i].nowh, __ATOMIC_RELAXED) &&
			    has_oci_whiteout(dfd, name))
				return 0;
			continue;
		}
		if (r < 0)
			return r;
		if (sfs_is_whiteout(&st))
			return 0;
		if (res->nlow == 0 && res->upper < 0) {
			res->st = st;
			res->type = st.st_mode & S_IFMT;
		}
		if (upper_nondir) {
			if ((st.st_mode & S_IFMT) != res->type)
				return 0;
			return add_file(fs, res, dfd, dirs[i].layer, name, &st);
		}
		if (!S_ISDIR(st.st_mode)) {
			if (res->nlow == 0 && !upper_dir)
				return add_file(fs, res, dfd, dirs[i].layer, name, &st);
			return 0;
		}
		if (res->nlow == 0 && !upper_dir && res->type != S_IFDIR)
			return 0;
		fd = sfs_openat(dfd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0);
		if (fd < 0)
			return stale(fd);
		r = add_lower(res, fd, dirs[i].layer, st.st_ino);
		if (r < 0)
			return r;
		/* the last dir's opaqueness would hide nothing */
		if (i + 1 < ndirs && sfs_lower_dir_opaque(fs, fd))
			return 0;
	}
	return 0;
}

static char *join_path(const char *a, const char *b)
{
	return *a ? su_asprintf("%s/%s", a, b) : strdup(b);
}

/* Lowers of an absolute redirect: the path is looked up from the lower
 * roots one component at a time through the merged lower stack, so a
 * whiteout, an opaque directory or a non-directory part-way stops it, as
 * in a lookup through the mount. */
static int scan_redirect_abs(struct sfs_fs *fs, const char *path, bool upper_nondir,
			     struct sfs_res *res)
{
	_cleanup_free_ struct sfs_lower *roots = calloc(fs->nlayers, sizeof(*roots));
	_cleanup_free_ char *p = strdup(path);
	struct sfs_res step = {.upper = -1};
	struct sfs_lower *dirs = roots;
	char *save = NULL, *comp, *next;
	int ndirs = 0, r = 0;

	if (!roots || !p)
		return -ENOMEM;
	for (int i = fs->first_lower; i < fs->nlayers; i++)
		roots[ndirs++] = (struct sfs_lower){fs->layers[i].fd, i};
	for (comp = strtok_r(p, "/", &save); comp && ndirs; comp = next) {
		struct sfs_res sub = {.upper = -1};

		next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
			su_warn("ignoring redirect \"/%s\" that leaves the layers", path);
			break;
		}
		if (!next) {
			r = scan_lowers(fs, NULL, dirs, ndirs, comp, !upper_nondir, upper_nondir,
					res);
			break;
		}
		r = scan_lowers(fs, NULL, dirs, ndirs, comp, true, false, &sub);
		sfs_res_free(&step);
		step = sub;
		dirs = step.low;
		ndirs = step.nlow;
		if (r < 0)
			break;
	}
	sfs_res_free(&step);
	return r;
}

/* Lowers of an object renamed in the upper: absolute redirects name a path
 * from the layer roots, relative ones a name in the parent's lowers. */
static int scan_redirect(struct sfs_fs *fs, struct sfs_node *parent, const char *redirect,
			 bool upper_nondir, struct sfs_res *res)
{
	int r;

	res->redirected = true;
	if (redirect[0] == '/') {
		r = scan_redirect_abs(fs, redirect + 1, upper_nondir, res);
		if (r == 0 && res->nlow && !(res->lowpath = strdup(redirect + 1)))
			r = -ENOMEM;
		return r;
	}
	if (strchr(redirect, '/') || !strcmp(redirect, "..") || !strcmp(redirect, ".")) {
		su_warn("ignoring malformed relative redirect \"%s\"", redirect);
		return 0;
	}
	r = scan_lowers(fs, parent, parent->low, parent->nlow, redirect, !upper_nondir,
			upper_nondir, res);
	if (r == 0 && res->nlow && !(res->lowpath = join_path(parent->lowpath, redirect)))
		r = -ENOMEM;
	return r;
}

static int index_name(struct sfs_fs *fs, int layer, int fd, char *out, size_t len)
{
	uint8_t fh[256];
	int n = sfs_encode_fh(fs, layer, fd, fh, sizeof(fh));

	if (n < 0)
		return n;
	if ((size_t)n * 2 + 1 > len)
		return -EOVERFLOW;
	for (int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", fh[i]);
	return 0;
}

int sfs_index_name(struct sfs_fs *fs, int layer, int fd, char *out, size_t len)
{
	return index_name(fs, layer, fd, out, len);
}

/* A lower file with several names may have been copied up through the
 * index already; then the index entry is its upper. */
static int check_index(struct sfs_fs *fs, struct sfs_res *res)
{
	_cleanup_close_ int tmp = -1;
	char name[600];
	struct stat st;
	int fd;

	if (fs->indexfd < 0 || res->nlow == 0 || res->st.st_nlink < 2 || S_ISDIR(res->st.st_mode))
		return 0;
	/* a lower that cannot be opened is looked up without the index */
	fd = sfs_lower_fd(fs, &res->low[0], res->lowpath, &tmp, NULL);
	if (fd < 0 || index_name(fs, res->low[0].layer, fd, name, sizeof(name)) < 0)
		return 0;
	fd = sfs_openat(fs->indexfd, name, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (fstat(fd, &st) < 0 || (st.st_mode & S_IFMT) != res->type) {
		close(fd);
		return 0;
	}
	res->upper = fd;
	res->st = st;
	res->indexed = true;
	return 0;
}

static uint64_t upper_file_ino(struct sfs_fs *fs, struct sfs_res *res, unsigned ox,
			       bool *want_lower)
{
	uint64_t v;

	if ((ox & SFS_OX_INO) &&
	    sfs_getox(fs, res->upper, "strata.ino", &v, sizeof(v)) == sizeof(v))
		return le64toh(v);
	/* Copied up by another overlayfs implementation, or a special file
	 * that cannot carry xattrs: the lower at the same path, when there
	 * is one, gives the number. */
	*want_lower = !S_ISREG(res->st.st_mode) || (ox & SFS_OX_ORIGIN);
	return 0;
}

/* Each name of such a lower object is its own node, so a write through one
 * name never shows through another that stays in the lower.  The index
 * keeps regular files only (copyup.c). */
bool sfs_breaks_on_copy_up(struct sfs_fs *fs, const struct stat *lst)
{
	return fs->upper && !S_ISDIR(lst->st_mode) && lst->st_nlink > 1 &&
	       (fs->indexfd < 0 || !S_ISREG(lst->st_mode));
}

/* start: the first of the parent's lowers to look in, with the upper known
 * to hold nothing at name when start > 0. */
static int resolve(struct sfs_fs *fs, struct sfs_node *parent, const char *name, int start,
		   struct sfs_res *res)
{
	char redirect[PATH_MAX];
	ssize_t rl = -1;
	int pup = start ? -ENOENT : sfs_node_upper(fs, parent);
	bool upper_dir = false, upper_nondir = false, want_lower = true;
	uint64_t ino = 0;
	int r;

	memset(res, 0, sizeof(*res));
	res->upper = -1;
	if (pup < 0 && pup != -ENOENT)
		return pup;
	if (pup >= 0) {
		int fd = sfs_openat(pup, name, O_PATH | O_NOFOLLOW, 0);

		if (fd >= 0) {
			if (fstat(fd, &res->st) < 0 || sfs_is_whiteout(&res->st)) {
				close(fd);
				return -ENOENT;
			}
			unsigned ox = sfs_ox_present(fs, fd);

			res->upper = fd;
			res->type = res->st.st_mode & S_IFMT;
			if (S_ISDIR(res->st.st_mode)) {
				upper_dir = true;
				res->opaque = (ox & SFS_OX_OPAQUE) && sfs_upper_dir_opaque(fs, fd);
				want_lower = !res->opaque;
			} else {
				upper_nondir = true;
				res->metacopy = ox & SFS_OX_METACOPY;
				ino = upper_file_ino(fs, res, ox, &want_lower);
				want_lower = want_lower || res->metacopy;
			}
			if (want_lower && (ox & SFS_OX_REDIRECT))
				rl = sfs_getox(fs, fd, "redirect", redirect, sizeof(redirect) - 1);
		} else if (fd != -ENOENT) {
			return fd;
		}
	}
	if (want_lower && parent->nlow + (rl > 0) > 0) {
		if (rl > 0) {
			redirect[rl] = '\0';
			r = scan_redirect(fs, parent, redirect, upper_nondir, res);
		} else {
			r = scan_lowers(fs, parent, parent->low + start, parent->nlow - start, name,
					upper_dir, upper_nondir, res);
			if (r == 0 && res->nlow &&
			    !(res->lowpath = join_path(parent->lowpath, name)))
				r = -ENOMEM;
		}
		if (r < 0) {
			sfs_res_free(res);
			return r;
		}
	}
	if (res->upper < 0 && res->nlow == 0)
		return -ENOENT;
	if (res->metacopy && res->nlow == 0) {
		su_warn("metacopy file \"%s\" has no lower data", name);
		res->metacopy = false;
	}
	if (res->upper < 0) {
		struct stat lst = res->st;

		r = check_index(fs, res);
		if (r < 0) {
			sfs_res_free(res);
			return r;
		}
		if (!res->indexed && sfs_breaks_on_copy_up(fs, &lst) && res->lowpath)
			ino = sfs_make_alias_ino(fs, res->low[0].layer, lst.st_ino, res->lowpath);
		else
			ino = sfs_make_ino(fs, res->low[0].layer, lst.st_ino);
	} else if (!ino) {
		struct stat lst;
		/* a copy of one name of a lower hard link made without the
		 * index is a file of its own: the lower's number is not its */
		if (res->nlow && sfs_lower_stat(fs, &res->low[0], res->lowpath, &lst) == 0 &&
		    !sfs_breaks_on_copy_up(fs, &lst))
			ino = sfs_make_ino(fs, res->low[0].layer, lst.st_ino);
		else
			ino = sfs_make_ino(fs, 0, res->st.st_ino);
	}
	res->ino = ino;
	return 0;
}

int sfs_resolve(struct sfs_fs *fs, struct sfs_node *parent, const char *name, struct sfs_res *res)
{
	return resolve(fs, parent, name, 0, res);
}

int sfs_resolve_hint(struct sfs_fs *fs, struct sfs_node *parent, const char *name, int pos,
		     struct sfs_res *res)
{
	struct stat st;
	int pup = sfs_node_upper(fs, parent);

	/* the listing may be older than a copy-up or a removal: anything in
	 * the upper now means the full walk */
	if (pos <= 0 || pos >= parent->nlow || (pup < 0 && pup != -ENOENT) ||
	    (pup >= 0 && sfs_fstatat(pup, name, &st, 0) != -ENOENT))
		return resolve(fs, parent, name, 0, res);
	return resolve(fs, parent, name, pos, res);
}

int sfs_node_entry(struct sfs_fs *fs, struct sfs_node *n, struct fuse_entry_param *e)
{
	int r;

	memset(e, 0, sizeof(*e));
	r = sfs_getattr(fs, n, &e->attr);
	if (r < 0)
		return r;
	e->ino = sfs_node_id(fs, n);
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
	return 0;
}

int sfs_lookup_known(struct sfs_fs *fs, struct sfs_node *parent, const char *name, uint64_t ino,
		     struct fuse_entry_param *e)
{
	struct sfs_node *n = sfs_node_find(fs, ino, true);
	bool same;
	int r;

	if (!n)
		return 1;
	/* the node's one name is kept up to date by every rename and
	 * removal made through the mount */
	pthread_mutex_lock(&n->lock);
	same = n->parent == parent && n->name && !strcmp(n->name, name) && !n->unlinked;
	pthread_mutex_unlock(&n->lock);
	r = same ? sfs_node_entry(fs, n, e) : 1;
	if (r != 0) {
		sfs_node_forget(fs, n, 1);
		return r == -ENOENT ? 1 : r;
	}
	return 0;
}

int sfs_publish_entry(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
		      struct sfs_res *res, struct fuse_entry_param *e)
{
	/* the stat taken while resolving becomes the reply's attributes */
	struct stat st = res->st;
	struct sfs_node *n;
	int r = sfs_node_publish(fs, parent, name, res, true, &n);

	sfs_res_free(res);
	if (r < 0)
		return r;
	memset(e, 0, sizeof(*e));
	e->attr = st;
	sfs_present_stat(fs, n, &e->attr);
	e->ino = sfs_node_id(fs, n);
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
	return 0;
}

bool sfs_lower_has(struct sfs_fs *fs, struct sfs_node *parent, const char *name)
{
	if (su_str_has_prefix(name, ".wh."))
		return false;
	for (int i = 0; i < parent->nlow; i++) {
		_cleanup_close_ int tmp = -1;
		int fd = sfs_node_lowdir(fs, parent, &parent->low[i], &tmp);
		struct stat st;

		/* cannot tell: as if there were, so that a whiteout hides it */
		if (fd < 0)
			return true;
		if (sfs_fstatat(fd, name, &st, 0) == 0)
			return !sfs_is_whiteout(&st);
		if (!__atomic_load_n(&parent->low[i].nowh, __ATOMIC_RELAXED) &&
		    has_oci_whiteout(fd, name))
			return false;
	}
	return false;
}
