/* fs/copyup.c: copy-up.  An object is built under a temporary name in
 * workdir/work with its attributes, xattrs and origin, then renamed into the
 * upper in one step, so a crash leaves either nothing or the whole object.
 * Data moves by reflink, else copy_file_range over the data extents only
 * (holes stay holes).  Attribute-only changes write an overlayfs metacopy
 * file; its data is copied in place later and the metacopy mark removed last. */
#include "fs/sfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int sfs_copy_xattrs(struct sfs_fs *fs, int from, int to, bool *caps)
{
	ssize_t len = sfs_flistxattr(fs, from, NULL, 0);
	_cleanup_free_ char *names = NULL;
	_cleanup_free_ char *val = NULL;
	size_t cap = 0;

	if (len == -ENOTSUP || len == 0)
		return 0;
	if (len < 0)
		return len;
	names = malloc(len);
	if (!names)
		return -ENOMEM;
	len = sfs_flistxattr(fs, from, names, len);
	if (len < 0)
		return len;
	for (char *n = names; n < names + len; n += strlen(n) + 1) {
		ssize_t vl;
		int r;

		if (sfs_is_private_xattr(fs, n))
			continue;
		vl = sfs_fgetxattr(fs, from, n, NULL, 0);
		if (vl < 0)
			continue;
		if ((size_t)vl + 1 > cap) {
			char *nv = realloc(val, vl + 1);
			if (!nv)
				return -ENOMEM;
			val = nv;
			cap = vl + 1;
		}
		vl = sfs_fgetxattr(fs, from, n, val, vl);
		if (vl < 0)
			continue;
		r = sfs_fsetxattr(fs, to, n, val, vl, 0);
		/* security labels the upper cannot take are not worth failing
		 * the copy-up for; anything else is */
		if (r < 0 && r != -ENOTSUP && !(r == -EPERM && !su_str_has_prefix(n, "user.")))
			return r;
		if (caps && r == 0 && !strcmp(n, "security.capability"))
			*caps = true;
	}
	return 0;
}

/* The permissions a copy of st is made with in the workdir: its own, with
 * the owner's read and write (and search), so that an unprivileged daemon
 * can set its user.* xattrs before the final mode (the daemon's umask is
 * 0).  The workdir is private to the daemon, so the other bits may be
 * final before the owner is. */
static mode_t tmp_perm(const struct stat *st)
{
	return (st->st_mode & 0777) | (S_ISDIR(st->st_mode) ? 0700 : 0600);
}

int sfs_work_unacl(struct sfs_fs *fs, int fd, mode_t mode)
{
	int r;

	if (fs->work_plain || S_ISLNK(mode))
		return 0;
	/* a default ACL of the workdir is not the object's: its entries would
	 * grant what the mode does not, or be handed on below a directory */
	r = sfs_fremovexattr(fs, fd, "system.posix_acl_access");
	if (r == 0 || r == -ENODATA || r == -ENOTSUP)
		r = S_ISDIR(mode) ? sfs_fremovexattr(fs, fd, "system.posix_acl_default") : 0;
	return r == -ENODATA || r == -ENOTSUP ? 0 : r;
}

int sfs_work_mode(struct sfs_fs *fs, int fd, mode_t mode, mode_t made)
{
	if (S_ISLNK(mode) || (fs->work_plain && (mode & 07777) == made))
		return 0;
	return sfs_fchmod(fs, fd, mode & 07777);
}

/* The owner of the new object fd from st, first: a chown drops set-id bits
 * and file capabilities (security.capability), so the mode and the xattrs
 * come after it.  Not when the object is already st's, as one made in the
 * workdir is the daemon's. */
static int set_owner(struct sfs_fs *fs, int fd, const struct stat *st)
{
	int r = 0;

	if (st->st_uid != fs->work_uid || st->st_gid != fs->work_gid)
		r = sfs_fchown(fd, st->st_uid, st->st_gid);
	if (r < 0 && !(r == -EINVAL || r == -EPERM))
		return r;
	return sfs_work_unacl(fs, fd, st->st_mode);
}

/* Times last: every other change touched them. */
static int set_times(struct sfs_fs *fs, int fd, const struct stat *st)
{
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	return sfs_futimens(fs, fd, ts, S_ISLNK(st->st_mode));
}

static int set_origin(struct sfs_fs *fs, struct sfs_node *n, int lfd, int fd)
{
	uint8_t fh[256];
	uint64_t ino = htole64(n->ino);
	int len = sfs_encode_fh(fs, n->low[0].layer, lfd, fh, sizeof(fh));
	int r;

	/* user.* xattrs cannot be set on special files and symlinks: those
	 * keep their number through the lower at the same path instead */
	if (len > 0) {
		r = sfs_setox(fs, fd, "origin", fh, len);
		if (r < 0 && r != -ENOTSUP && r != -EPERM)
			return r;
	}
	if (S_ISDIR(n->type))
		return 0;
	r = sfs_setox(fs, fd, "strata.ino", &ino, sizeof(ino));
	return r == -ENOTSUP || r == -EPERM ? 0 : r;
}

/* Creates the object of type st (a copy of the lower lfd) in the workdir
 * as tmp; returns an O_PATH fd to it, and in *wfd a writable fd for
 * regular files. */
static int create_tmp(struct sfs_fs *fs, int lfd, const struct stat *st, const char *tmp, int *wfd)
{
	mode_t perm = tmp_perm(st);
	char target[PATH_MAX];
	int r;

	*wfd = -1;
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		r = sfs_openat(fs->workfd, tmp, O_CREAT | O_EXCL | O_RDWR, perm);
		if (r < 0)
			return r;
		*wfd = r;
		break;
	case S_IFDIR:
		r = sfs_mkdirat(fs->workfd, tmp, perm);
		break;
	case S_IFLNK:
		r = sfs_readlinkat(lfd, target, sizeof(target) - 1);
		if (r < 0)
			return r;
		target[r] = '\0';
		r = sfs_symlinkat(target, fs->workfd, tmp);
		break;
	default:
		r = sfs_mknodat(fs->workfd, tmp, (st->st_mode & S_IFMT) | perm, st->st_rdev);
		break;
	}
	if (r < 0)
		return r;
	r = sfs_openat(fs->workfd, tmp, O_PATH | O_NOFOLLOW, 0);
	if (r < 0) {
		/* (EMFILE, the caller may try again) nothing left behind */
		if (*wfd >= 0)
			close(*wfd);
		*wfd = -1;
		sfs_unlinkat(fs->workfd, tmp, S_ISDIR(st->st_mode) ? AT_REMOVEDIR : 0);
	}
	return r;
}

/* Restores the parent's times after an entry was added to it: copy-up is
 * not a modification of the directory. */
static void keep_parent_times(struct sfs_fs *fs, int pfd, const struct stat *pst)
{
	struct timespec ts[2] = {pst->st_atim, pst->st_mtim};
	sfs_futimens(fs, pfd, ts, false);
}

/* Whole-object copy-up of n (caller holds n->lock; parent has an upper). */
static int copy_up_new(struct sfs_fs *fs, struct sfs_node *n, int pup, const char *name,
		       enum sfs_cu how)
{
	_cleanup_free_ char *tmp = sfs_tmpname(fs);
	_cleanup_close_ int wfd = -1;
	_cleanup_close_ int rfd = -1;
	_cleanup_close_ int ltmp = -1;
	uint32_t seen = sfs_privs_seen(n);
	struct stat st, pst;
	bool meta = false, indexed = false, caps = false;
	char iname[600];
	int fd, r, lfd;

	if (!tmp)
		return -ENOMEM;
	lfd = sfs_node_lowfd(fs, n, &ltmp, &st);
	if (lfd < 0)
		return lfd;
	if (sfs_fstatat(pup, "", &pst, 0) < 0)
		memset(&pst, 0, sizeof(pst));
	if (S_ISREG(st.st_mode) && st.st_nlink > 1 && fs->indexfd >= 0 &&
	    sfs_index_name(fs, n->low[0].layer, lfd, iname, sizeof(iname)) == 0)
		indexed = true;
	fd = create_tmp(fs, lfd, &st, tmp, &wfd);
	if (fd < 0)
		return fd;
	if (S_ISREG(st.st_mode) && how != SFS_CU_EMPTY) {
		meta = how == SFS_CU_META && fs->o->metacopy && !indexed && st.st_size > 0;
		if (meta) {
			r = ftruncate(wfd, st.st_size) < 0 ? -errno : 0;
			if (r == 0)
				r = sfs_setox(fs, fd, "metacopy", "", 0);
		} else {
			rfd = sfs_reopen(fs, lfd, O_RDONLY);
			r = rfd < 0 ? rfd : su_copy_data(rfd, wfd, st.st_size);
		}
		if (r < 0)
			goto fail;
	}
	r = set_owner(fs, fd, &st);
	if (r < 0)
		goto fail;
	/* (the /proc link of an O_PATH symlink fd reaches the link itself,
	 * so symlinks keep their xattrs and inode number too) */
	r = sfs_copy_xattrs(fs, lfd, fd, &caps);
	if (r == 0)
		r = set_origin(fs, n, lfd, fd);
	/* the mode last but the times: made with the owner's read and write,
	 * an unprivileged daemon could set the user.* xattrs above */
	if (r == 0)
		r = sfs_work_mode(fs, fd, st.st_mode, tmp_perm(&st));
	if (r < 0)
		goto fail;
	r = set_times(fs, fd, &st);
	if (r < 0)
		goto fail;
	/* only data needs the flush: the rename below orders the metadata */
	if (wfd >= 0 && !meta && st.st_size > 0 && !fs->o->nofsync && fsync(wfd) < 0) {
		r = -errno;
		goto fail;
	}
	if (indexed) {
		/* Hard links: the copy lives in index/ and every name links
		 * to it, as overlayfs' index=on does.  The link count record
		 * is written before the entry appears and lowered after each
		 * step, so a crash can only leave it too high: an entry that
		 * looks unreachable is then really so (index cleanup). */
		r = sfs_nlink_adjust(fs, fd, (int)st.st_nlink - 1);
		if (r < 0)
			goto fail;
		r = sfs_renameat2(fs->workfd, tmp, fs->indexfd, iname, RENAME_NOREPLACE);
		if (r == -EEXIST) {
			/* copied up before through another name */
			sfs_unlinkat(fs->workfd, tmp, 0);
			close(fd);
			fd = sfs_openat(fs->indexfd, iname, O_PATH | O_NOFOLLOW, 0);
			if (fd < 0)
				return fd;
			r = sfs_linkat_fd(fs, fd, pup, name);
			if (r == 0)
				r = sfs_nlink_adjust(fs, fd, -1);
			if (r < 0) {
				close(fd);
				return r;
			}
			goto done;
		}
		if (r < 0)
			goto fail;
		r = sfs_linkat_fd(fs, fd, pup, name);
		if (r == 0)
			r = sfs_nlink_adjust(fs, fd, -1);
		if (r < 0) {
			close(fd);
			return r;
		}
	} else {
		r = sfs_renameat2(fs->workfd, tmp, pup, name, RENAME_NOREPLACE);
		if (r < 0)
			goto fail;
	}
done:
	if (pst.st_mtime)
		keep_parent_times(fs, pup, &pst);
	__atomic_store_n(&n->metacopy, meta, __ATOMIC_RELEASE);
	n->indexed = indexed;
	/* known clean, as sfs_kill_privs would find it: a chown or write
	 * that follows need not look again */
	if (S_ISREG(st.st_mode) && !(st.st_mode & (S_ISUID | S_ISGID)) && !caps && st.st_nlink == 1)
		sfs_privs_found_clean(n, seen);
	__atomic_store_n(&n->upper, fd, __ATOMIC_RELEASE);
	__atomic_store_n(&n->has_upper, true, __ATOMIC_RELEASE);
	/* the node holds one more fd: prune.c must count it, or a chmod -R
	 * of a tree larger than the fd limit runs out (EMFILE) */
	__atomic_add_fetch(&n->fds, 1, __ATOMIC_RELAXED);
	sfs_prune_account(fs, 1);
	return 0;
fail:
	close(fd);
	if (S_ISDIR(st.st_mode))
		sfs_unlinkat(fs->workfd, tmp, AT_REMOVEDIR);
	else
		sfs_unlinkat(fs->workfd, tmp, 0);
	return r;
}

/* Completes a metacopy upper: data copied in place, then the mark removed,
 * so a crash in between still reads the lower data. */
static int copy_up_data(struct sfs_fs *fs, struct sfs_node *n, enum sfs_cu how)
{
	_cleanup_close_ int wfd = sfs_reopen(fs, n->upper, O_WRONLY);
	_cleanup_close_ int rfd = -1;
	struct stat st;
	int r;

	if (wfd < 0)
		return wfd;
	if (how == SFS_CU_EMPTY) {
		r = ftruncate(wfd, 0) < 0 ? -errno : 0;
	} else {
		rfd = sfs_node_open_lower(fs, n, O_RDONLY, &st);
		if (rfd < 0)
			return rfd;
		r = su_copy_data(rfd, wfd, st.st_size);
	}
	if (r == 0 && !fs->o->nofsync && fsync(wfd) < 0)
		r = -errno;
	if (r < 0 && how != SFS_CU_EMPTY) {
		/* still a metacopy file, read from the lower: give back the
		 * blocks the partial copy took (a full disk stays usable) */
		struct stat ust;
		if (fstat(wfd, &ust) == 0 && ftruncate(wfd, 0) == 0)
			(void)!ftruncate(wfd, ust.st_size);
		return r;
	}
	if (r == 0)
		r = sfs_rmox(fs, n->upper, "metacopy");
	if (r == 0) {
		sfs_rmox(fs, n->upper, "redirect");
		__atomic_store_n(&n->metacopy, false, __ATOMIC_RELEASE);
	}
	return r;
}

int sfs_copy_up(struct sfs_fs *fs, struct sfs_node *n, enum sfs_cu how)
{
	for (;;) {
		struct sfs_node *parent;
		char *name;
		bool up = sfs_node_has_upper(n);
		int r, pup;

		if (up && (how == SFS_CU_META || !__atomic_load_n(&n->metacopy, __ATOMIC_ACQUIRE)))
			return 0;
		if (!fs->upper)
			return -EROFS;
		if (up) {
			pthread_mutex_lock(&n->lock);
			r = n->metacopy ? copy_up_data(fs, n, how) : 0;
			pthread_mutex_unlock(&n->lock);
			return r;
		}
		pthread_mutex_lock(&n->lock);
		parent = n->parent;
		name = n->name ? strdup(n->name) : NULL;
		if (parent)
			sfs_node_ref(fs, parent);
		pthread_mutex_unlock(&n->lock);
		if (!parent || !name) {
			free(name);
			if (parent)
				sfs_node_unref(fs, parent);
			return -ENOENT; /* removed from the tree while open */
		}
		r = sfs_copy_up(fs, parent, SFS_CU_META);
		/* (before n is locked: opening it again locks the nodes above) */
		pup = r == 0 ? sfs_node_upper(fs, parent) : r;
		r = pup < 0 ? pup : 0;
		if (r == 0) {
			pthread_mutex_lock(&n->lock);
			if (n->parent != parent || strcmp(n->name ? n->name : "", name)) {
				r = 1; /* renamed meanwhile: start again */
			} else if (n->has_upper) {
				r = 0;
				if (how != SFS_CU_META && n->metacopy)
					r = copy_up_data(fs, n, how);
			} else {
				r = copy_up_new(fs, n, pup, name, how);
			}
			pthread_mutex_unlock(&n->lock);
		}
		sfs_node_unref(fs, parent);
		free(name);
		if (r <= 0)
			return r;
	}
}
