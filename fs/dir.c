/* fs/dir.c: namespace operations.  Each change of the upper is one atomic
 * step where it replaces something: objects created over a whiteout are
 * built in the workdir and renamed over it, removals that must leave a
 * whiteout swap in a link to the shared whiteout (or use RENAME_WHITEOUT),
 * renames of lower-backed entries use RENAME_WHITEOUT, renamed directories
 * get an overlayfs redirect so their lower contents follow them. */
#include "fs/sfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Publishes an object this mount just made at parent/name (fd: its O_PATH
 * fd, taken over; st: its current stat, or NULL to take it).  It has no
 * lowers -- a name made over a whiteout is opaque -- so nothing needs
 * resolving. */
static int publish_created(struct sfs_fs *fs, struct sfs_node *parent, const char *name, int *fd,
			   const struct stat *st, struct fuse_entry_param *e)
{
	struct sfs_res res = {.upper = -1};
	int r = 0;

	if (st)
		res.st = *st;
	else
		r = sfs_fstatat(*fd, "", &res.st, 0);
	if (r < 0)
		return r;
	res.upper = su_steal_fd(fd);
	res.type = res.st.st_mode & S_IFMT;
	/* a new file has no capabilities: a chown or passthrough open of it
	 * need not look for them */
	res.clean =
	    S_ISREG(res.type) && !(res.st.st_mode & (S_ISUID | S_ISGID)) && res.st.st_nlink == 1;
	res.ino = sfs_make_ino(fs, 0, res.st.st_ino);
	return sfs_publish_entry(fs, parent, name, &res, e);
}

/* Whether the upper dir has a whiteout at name (-errno on errors). */
static int upper_whiteout_at(int pup, const char *name)
{
	struct stat st;
	int r = sfs_fstatat(pup, name, &st, 0);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	return sfs_is_whiteout(&st) ? 1 : -EEXIST;
}

static int make_object(struct sfs_fs *fs, int dirfd, const char *name, mode_t mode, dev_t rdev,
		       const char *link, int oflags, int *openfd)
{
	int r;

	switch (mode & S_IFMT) {
	case S_IFDIR:
		return sfs_mkdirat(dirfd, name, mode & 07777);
	case S_IFLNK:
		return sfs_symlinkat(link, dirfd, name);
	case S_IFREG:
		if (openfd) {
			r = sfs_openat(dirfd, name,
				       (oflags & ~(O_NOFOLLOW | O_TRUNC)) | O_CREAT | O_EXCL,
				       mode & 07777);
			if (r < 0)
				return r;
			*openfd = r;
			return 0;
		}
		return sfs_mknodat(dirfd, name, mode, rdev);
	default:
		return sfs_mknodat(dirfd, name, mode, rdev);
	}
}

int sfs_create_node(struct sfs_fs *fs, struct sfs_node *parent, const char *name, mode_t mode,
		    dev_t rdev, const char *link, const struct sfs_ctx *ctx,
		    struct fuse_entry_param *e, int *openfd, int oflags)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	struct stat pst, st;
	bool changed = false;
	mode_t made;
	uid_t uid;
	gid_t gid;
	int pup, wh, r, dirfd;
	const char *where;

	if (openfd)
		*openfd = -1;
	if (!fs->upper)
		return -EROFS;
	r = sfs_copy_up(fs, parent, SFS_CU_META);
	if (r < 0)
		return r;
	pup = sfs_node_upper(fs, parent);
	if (pup < 0)
		return pup;
	wh = upper_whiteout_at(pup, name);
	if (wh < 0)
		return wh;
	r = sfs_fstatat(pup, "", &pst, 0);
	if (r < 0)
		return r;
	uid = sfs_uid_to_disk(fs, ctx->uid);
	gid = (pst.st_mode & S_ISGID) ? pst.st_gid : sfs_gid_to_disk(fs, ctx->gid);
	if (S_ISDIR(mode) && (pst.st_mode & S_ISGID))
		mode |= S_ISGID;
	if (wh) {
		tmp = sfs_tmpname(fs);
		if (!tmp)
			return -ENOMEM;
		dirfd = fs->workfd;
		where = tmp;
	} else {
		dirfd = pup;
		where = name;
	}
	/* (a directory built in the workdir is made searchable and writable
	 * by its owner until its opaque xattr is set) */
	made = wh && S_ISDIR(mode) ? mode | 0700 : mode;
	r = make_object(fs, dirfd, where, made, rdev, link, oflags, openfd);
	if (r < 0)
		return r;
	fd = sfs_openat(dirfd, where, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	/* Chowned only when not the caller's already: what a new object gets
	 * is seen on it in the upper (the parent's group if set-group-id, or
	 * on a grpid mount), and was probed for the workdir. */
	if (dirfd == pup)
		r = sfs_fstatat(fd, "", &st, 0);
	if (r < 0)
		goto fail;
	if (dirfd == pup ? st.st_uid != uid || st.st_gid != gid
			 : uid != fs->work_uid || gid != fs->work_gid) {
		r = sfs_fchown(fd, uid, gid);
		changed = true;
	}
	if (r == 0 && !S_ISLNK(mode)) {
		/* chown cleared the set-id bits */
		if (dirfd == pup && (mode & 07000)) {
			r = sfs_fchmod(fs, fd, mode & 07777);
			changed = true;
		} else if (dirfd != pup) {
			r = sfs_work_unacl(fs, fd, mode);
		}
	}
	/* A directory made where a lower one was deleted must not show the
	 * old contents. */
	if (r == 0 && wh && S_ISDIR(mode))
		r = sfs_setox(fs, fd, "opaque", "y", 1);
	if (r == 0 && dirfd != pup)
		r = sfs_work_mode(fs, fd, mode, made & 0777);
	if (r < 0)
		goto fail;
	if (wh) {
		if (S_ISDIR(mode)) {
			r = sfs_renameat2(fs->workfd, tmp, pup, name, RENAME_EXCHANGE);
			if (r == 0)
				sfs_unlinkat(fs->workfd, tmp, 0);
		} else {
			r = sfs_renameat2(fs->workfd, tmp, pup, name, 0);
		}
		if (r < 0)
			goto fail;
	}
	/* (the stat taken above still holds if nothing changed since) */
	r = publish_created(fs, parent, name, &fd, dirfd == pup && !changed ? &st : NULL, e);
	if (r < 0 && openfd && *openfd >= 0) {
		close(*openfd);
		*openfd = -1;
	}
	return r;
fail:
	if (openfd && *openfd >= 0) {
		close(*openfd);
		*openfd = -1;
	}
	sfs_unlinkat(dirfd, where, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
	return r;
}

int sfs_link(struct sfs_fs *fs, struct sfs_node *n, struct sfs_node *parent, const char *name,
	     struct fuse_entry_param *e)
{
	int r, up, pup, wh;

	if (!fs->upper)
		return -EROFS;
	if (S_ISDIR(n->type))
		return -EPERM;
	r = sfs_copy_up(fs, n, SFS_CU_DATA);
	if (r == 0)
		r = sfs_copy_up(fs, parent, SFS_CU_META);
	if (r < 0)
		return r;
	up = sfs_node_upper(fs, n);
	pup = sfs_node_upper(fs, parent);
	if (up < 0 || pup < 0)
		return up < 0 ? up : pup;
	wh = upper_whiteout_at(pup, name);
	if (wh < 0)
		return wh;
	if (wh) {
		_cleanup_free_ char *tmp = sfs_tmpname(fs);
		if (!tmp)
			return -ENOMEM;
		r = sfs_linkat_fd(fs, up, fs->workfd, tmp);
		if (r == 0) {
			r = sfs_renameat2(fs->workfd, tmp, pup, name, 0);
			if (r < 0)
				sfs_unlinkat(fs->workfd, tmp, 0);
		}
	} else {
		r = sfs_linkat_fd(fs, up, pup, name);
	}
	if (r < 0)
		return r;
	/* another name: a node made for it could change the mode unseen */
	sfs_privs_forget(n);
	pthread_mutex_lock(&fs->table_lock);
	n->nlookup++;
	pthread_mutex_unlock(&fs->table_lock);
	r = sfs_node_entry(fs, n, e);
	if (r < 0)
		sfs_node_forget(fs, n, 1);
	return r;
}

/* Removes the directory name that a removal moved into the workdir.  It
 * holds whiteouts alone (its merged view was empty), so it goes with one
 * listing and an unlink per entry; anything else sends it to su_rm_rf_at.
 * What stays is cleaned at the next mount. */
static void discard_work_dir(struct sfs_fs *fs, const char *name)
{
	_cleanup_dirstream_ struct sfs_dirstream *d = NULL;
	struct sfs_rawent de;
	int r = sfs_dirstream_openat(fs->workfd, name, &d);

	while (r == 0 && (r = sfs_dirstream_next(d, &de)) > 0) {
		if (!strcmp(de.name, ".") || !strcmp(de.name, ".."))
			r = 0;
		else if (de.type != DT_CHR)
			r = -ENOTEMPTY;
		else
			r = sfs_unlinkat(sfs_dirstream_fd(d), de.name, 0);
	}
	if (r < 0 || sfs_unlinkat(fs->workfd, name, AT_REMOVEDIR) < 0)
		su_rm_rf_at(fs->workfd, name);
}

/* Replaces the upper entry name in dir pup by a whiteout, atomically, and
 * disposes of the old entry. */
static int replace_with_whiteout(struct sfs_fs *fs, int pup, const char *name, bool dir)
{
	_cleanup_free_ char *tmp = sfs_tmpname(fs);
	int r;

	if (!tmp)
		return -ENOMEM;
	/* a shared whiteout swapped in costs no inode (see sfs_make_whiteout);
	 * without sharing, RENAME_WHITEOUT where the upper has it */
	bool swap = __atomic_load_n(&fs->wh_shared, __ATOMIC_ACQUIRE);
	if (!swap) {
		r = sfs_renameat2(pup, name, fs->workfd, tmp, RENAME_WHITEOUT);
		swap = r == -EINVAL || r == -EPERM || r == -ENOTSUP;
	}
	if (swap) {
		r = sfs_make_whiteout(fs, fs->workfd, tmp);
		if (r < 0)
			return r;
		r = sfs_renameat2(fs->workfd, tmp, pup, name, RENAME_EXCHANGE);
		if (r < 0) {
			sfs_unlinkat(fs->workfd, tmp, 0);
			return r;
		}
	}
	if (r < 0)
		return r;
	if (dir)
		discard_work_dir(fs, tmp);
	else
		sfs_unlinkat(fs->workfd, tmp, 0); /* else cleaned at the next mount */
	return 0;
}

/* Drops n's name when it is parent/name: a node of several names (a hard
 * link) keeps the one it has when another goes.  up: an fd of the upper
 * object of a directory n, which n takes over (*up = -1) if it needs it
 * (sfs_node_keep_upper), or NULL. */
static void drop_name(struct sfs_fs *fs, struct sfs_node *n, struct sfs_node *parent,
		      const char *name, int *up)
{
	pthread_mutex_lock(&n->lock);
	bool same = n->parent == parent && n->name && !strcmp(n->name, name);
	pthread_mutex_unlock(&n->lock);
	if (!same)
		return;
	sfs_node_drop_alias(fs, n);
	if (up && *up >= 0 && sfs_node_keep_upper(fs, n, *up))
		*up = -1;
}

/* Marks the node of ino as no longer reachable through parent/name; up as
 * for drop_name. */
static void forget_name(struct sfs_fs *fs, uint64_t ino, struct sfs_node *parent, const char *name,
			int *up)
{
	struct sfs_node *n = sfs_node_find(fs, ino, false);

	if (!n)
		return;
	drop_name(fs, n, parent, name, up);
	sfs_node_unref(fs, n);
}

/* A throwaway node view of a resolved object, for listing helpers. */
static void res_view(struct sfs_res *res, struct sfs_node *v)
{
	memset(v, 0, sizeof(*v));
	v->upper = res->upper;
	v->has_upper = res->upper >= 0;
	v->nlow = res->nlow;
	v->low = res->low;
	v->lowpath = res->lowpath;
	v->type = res->type;
	v->ino = res->ino;
}

static int node_for(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
		    struct sfs_node **out)
{
	struct sfs_res res;
	int r = sfs_resolve(fs, parent, name, &res);

	if (r < 0)
		return r;
	r = sfs_node_publish(fs, parent, name, &res, false, out);
	sfs_res_free(&res);
	return r;
}

/* A lower file with several names loses one: the other names must see
 * the link count drop, so it is copied up through the index first, as
 * overlayfs' index=on does. */
static int copy_up_hardlinked(struct sfs_fs *fs, struct sfs_node *n)
{
	struct stat st;

	if (S_ISDIR(n->type) || sfs_node_has_upper(n) || !n->nlow || fs->indexfd < 0)
		return 0;
	if (sfs_lower_stat(fs, &n->low[0], n->lowpath, &st) < 0 || st.st_nlink < 2)
		return 0;
	return sfs_copy_up(fs, n, SFS_CU_DATA);
}

/* Whether n's upper is an index entry's inode, which counts its lower
 * names in an nlink record (n may have been found through an upper name,
 * which does not tell). */
static bool is_indexed(struct sfs_fs *fs, struct sfs_node *n, int up)
{
	return n->indexed || (fs->indexfd >= 0 && (sfs_ox_present(fs, up) & SFS_OX_NLINK));
}

/* Removes the index entry of the upper file fd once the file has no name
 * left, upper or lower (its link count is the entry's alone and its nlink
 * record counts no lower name), as overlayfs does when the overlay link
 * count drops to zero.  A failure leaves the entry to the next mount. */
static void drop_unused_index(struct sfs_fs *fs, int fd)
{
	uint8_t fb[256];
	char name[2 * sizeof(fb) + 1], buf[32];
	struct stat st, ist;
	ssize_t len;

	if (fs->indexfd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
		return;
	len = sfs_getox(fs, fd, "nlink", buf, sizeof(buf) - 1);
	if (len < 3 || buf[0] != 'U')
		return;
	buf[len] = '\0';
	if (1 + strtol(buf + 1, NULL, 10) > 0)
		return;
	len = sfs_getox(fs, fd, "origin", fb, sizeof(fb));
	if (len <= 0)
		return;
	for (ssize_t i = 0; i < len; i++)
		snprintf(name + 2 * i, 3, "%02x", fb[i]);
	if (sfs_fstatat(fs->indexfd, name, &ist, 0) == 0 && ist.st_dev == st.st_dev &&
	    ist.st_ino == st.st_ino)
		sfs_unlinkat(fs->indexfd, name, 0);
}

/* Gives name in the upper dir pup to n when n is already up under another
 * name (a hard link copied up through one of its names). */
static int link_up(struct sfs_fs *fs, struct sfs_node *n, int pup, const char *name)
{
	struct stat st;
	int up = S_ISDIR(n->type) ? -1 : sfs_node_upper(fs, n), r;

	if (up < 0 || sfs_fstatat(pup, name, &st, 0) != -ENOENT)
		return 0;
	r = sfs_linkat_fd(fs, up, pup, name);
	if (r == 0 && is_indexed(fs, n, up))
		r = sfs_nlink_adjust(fs, up, -1);
	return r;
}

/* Counts the entries of the upper dir fd whose merged view is empty: 0, or
 * 1 when it holds whiteouts; -ENOTEMPTY when anything else is there. */
static int upper_dir_whiteouts(struct sfs_fs *fs, int fd)
{
	_cleanup_dirstream_ struct sfs_dirstream *d = NULL;
	struct sfs_rawent de;
	int found = 0;
	int r = sfs_dirstream_open(fd, &d);

	if (r < 0)
		return r;
	while ((r = sfs_dirstream_next(d, &de)) > 0) {
		if (!strcmp(de.name, ".") || !strcmp(de.name, ".."))
			continue;
		r = sfs_dirent_whiteout(fs, sfs_dirstream_fd(d), &de);
		if (r <= 0)
			return r < 0 ? r : -ENOTEMPTY;
		found = 1;
	}
	return r < 0 ? r : found;
}

/* Removes the upper dir pup/name (fd), whose merged view is empty, in one
 * step: whiteouts it holds go with it into the workdir, never out of it
 * while the directory is visible (they hide lower entries of a redirected
 * directory). */
static int remove_upper_dir(struct sfs_fs *fs, int pup, const char *name, int fd)
{
	_cleanup_free_ char *tmp = NULL;
	int r = upper_dir_whiteouts(fs, fd);

	if (r <= 0)
		return r < 0 ? r : sfs_unlinkat(pup, name, AT_REMOVEDIR);
	tmp = sfs_tmpname(fs);
	if (!tmp)
		return -ENOMEM;
	r = sfs_renameat2(pup, name, fs->workfd, tmp, RENAME_NOREPLACE);
	if (r < 0)
		return r;
	discard_work_dir(fs, tmp);
	return 0;
}

/* Puts an empty opaque copy of the upper dir pup/name (fd, holding only
 * whiteouts) in its place, built in the workdir and swapped in with
 * RENAME_EXCHANGE, as overlayfs' ovl_clear_empty does before a directory is
 * replaced: the whiteouts leave the merged view in one step, and what shows
 * meanwhile is the same empty directory.  *old: the workdir name the
 * original now has; put_back_empty() ends the swap. */
static int swap_in_empty(struct sfs_fs *fs, int pup, const char *name, int fd, char **old)
{
	_cleanup_free_ char *tmp = sfs_tmpname(fs);
	_cleanup_close_ int nfd = -1;
	struct stat st;
	int r;

	*old = NULL;
	if (!tmp)
		return -ENOMEM;
	r = sfs_fstatat(fd, "", &st, 0);
	if (r < 0)
		return r;
	r = sfs_mkdirat(fs->workfd, tmp, 0700);
	if (r < 0)
		return r;
	nfd = sfs_openat(fs->workfd, tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
	r = nfd < 0 ? nfd : sfs_fchown(nfd, st.st_uid, st.st_gid);
	if (r == -EPERM || r == -EINVAL)
		r = 0; /* an unprivileged daemon keeps its own ids, as copy-up does */
	if (r == 0)
		r = sfs_work_unacl(fs, nfd, st.st_mode);
	if (r == 0)
		r = sfs_copy_xattrs(fs, fd, nfd, NULL);
	if (r == 0)
		r = sfs_setox(fs, nfd, "opaque", "y", 1);
	if (r == 0)
		r = sfs_work_mode(fs, nfd, st.st_mode, 0700);
	if (r == 0) {
		struct timespec ts[2] = {st.st_atim, st.st_mtim};
		r = sfs_futimens(fs, nfd, ts, false);
	}
	if (r == 0)
		r = sfs_renameat2(fs->workfd, tmp, pup, name, RENAME_EXCHANGE);
	if (r < 0) {
		sfs_unlinkat(fs->workfd, tmp, AT_REMOVEDIR);
		return r;
	}
	*old = steal_pointer(&tmp);
	return 0;
}

/* Ends swap_in_empty(): after the rename replaced the empty copy (done),
 * removes the original from the workdir; after a failure, swaps the
 * original back, so the directory is the object it was. */
static void put_back_empty(struct sfs_fs *fs, int pup, const char *name, char *old, bool done)
{
	if (!done && sfs_renameat2(fs->workfd, old, pup, name, RENAME_EXCHANGE) == 0)
		sfs_unlinkat(fs->workfd, old, AT_REMOVEDIR);
	else
		discard_work_dir(fs, old);
	free(old);
}

int sfs_unlink(struct sfs_fs *fs, struct sfs_node *parent, const char *name, bool dir)
{
	struct sfs_res res;
	struct sfs_node view;
	bool lower;
	int r, pup;

	if (!fs->upper)
		return -EROFS;
	r = sfs_resolve(fs, parent, name, &res);
	if (r < 0)
		return r;
	if (!dir && res.upper < 0 && res.st.st_nlink > 1 && fs->indexfd >= 0) {
		struct sfs_node *n;
		sfs_res_free(&res);
		r = node_for(fs, parent, name, &n);
		if (r < 0)
			return r;
		r = copy_up_hardlinked(fs, n);
		sfs_node_unref(fs, n);
		if (r == 0)
			r = sfs_resolve(fs, parent, name, &res);
		if (r < 0)
			return r;
	}
	if (dir != S_ISDIR(res.type)) {
		r = dir ? -ENOTDIR : -EISDIR;
		goto out;
	}
	if (dir) {
		res_view(&res, &view);
		r = sfs_dir_check_empty(fs, &view);
		if (r < 0)
			goto out;
	}
	r = sfs_copy_up(fs, parent, SFS_CU_META);
	if (r < 0)
		goto out;
	pup = sfs_node_upper(fs, parent);
	if (pup < 0) {
		r = pup;
		goto out;
	}
	/* An upper entry is the real object unless it came from the index
	 * for a name that only the lower has; an object found in a lower
	 * under its own name needs no second look for one. */
	bool upper_named = res.upper >= 0 && !res.indexed;
	lower = !upper_named || (res.nlow && !res.redirected) ||
		(parent->nlow && sfs_lower_has(fs, parent, name));
	if (upper_named && lower) {
		r = replace_with_whiteout(fs, pup, name, dir);
	} else if (upper_named) {
		r = dir ? remove_upper_dir(fs, pup, name, res.upper) : sfs_unlinkat(pup, name, 0);
	} else {
		r = sfs_make_whiteout(fs, pup, name);
		if (r == 0 && res.indexed)
			sfs_nlink_adjust(fs, res.upper, -1);
	}
	/* an indexed file has two links before one goes */
	if (r == 0 && !dir && res.upper >= 0 && (res.indexed || res.st.st_nlink > 1))
		drop_unused_index(fs, res.upper);
	if (r == 0)
		forget_name(fs, res.ino, parent, name, &res.upper);
out:
	sfs_res_free(&res);
	return r;
}

/* Prepares a node about to move to (newparent, newname): copied up, and
 * marked so that a remount finds its lower contents (redirect) and does not
 * merge what lies under its new name (opaque). */
static int prepare_move(struct sfs_fs *fs, struct sfs_node *n, bool target_has_lower)
{
	int r = sfs_copy_up(fs, n, SFS_CU_META);
	int up;

	if (r < 0)
		return r;
	up = sfs_node_upper(fs, n);
	if (up < 0)
		return up;
	if (n->nlow && n->lowpath && (S_ISDIR(n->type) || n->metacopy)) {
		_cleanup_free_ char *rd = su_asprintf("/%s", n->lowpath);
		if (!rd)
			return -ENOMEM;
		r = sfs_setox(fs, up, "redirect", rd, strlen(rd));
		if (r < 0)
			return r;
	} else if (S_ISDIR(n->type) && target_has_lower) {
		r = sfs_setox(fs, up, "opaque", "y", 1);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The rename itself, in the upper: up1/n1 to up2/n2, leaving a whiteout at
 * n1 when a lower has that name. */
static int move_upper(struct sfs_fs *fs, int up1, const char *n1, int up2, const char *n2,
		      bool src_dir, bool src_lower)
{
	int r, wh;

	wh = upper_whiteout_at(up2, n2);
	if (wh < 0 && wh != -EEXIST)
		return wh;
	if (wh == 1 && src_dir) {
		/* a directory cannot replace a device: swap with the whiteout,
		 * which then covers the old name if a lower needs it */
		r = sfs_renameat2(up1, n1, up2, n2, RENAME_EXCHANGE);
		if (r == 0 && !src_lower)
			sfs_unlinkat(up1, n1, 0);
		return r;
	}
	r = sfs_renameat2(up1, n1, up2, n2, src_lower ? RENAME_WHITEOUT : 0);
	if (src_lower && (r == -EINVAL || r == -ENOTSUP)) {
		r = sfs_renameat2(up1, n1, up2, n2, 0);
		if (r == 0)
			r = sfs_make_whiteout(fs, up1, n1);
	}
	return r;
}

/* Renames src over the directory dst, whose upper may hold whiteouts: those
 * leave with it in one step (swap_in_empty), and a failed rename puts the
 * directory back as it was. */
static int move_over_dir(struct sfs_fs *fs, int up1, const char *n1, int up2, const char *n2,
			 struct sfs_node *src, int dup, bool src_lower)
{
	_cleanup_free_ char *old = NULL;
	int r = upper_dir_whiteouts(fs, dup);

	if (r > 0)
		r = swap_in_empty(fs, up2, n2, dup, &old);
	if (r < 0)
		return r;
	r = move_upper(fs, up1, n1, up2, n2, S_ISDIR(src->type), src_lower);
	if (old)
		put_back_empty(fs, up2, n2, steal_pointer(&old), r == 0);
	return r;
}

/* *dstfd: an fd of a directory dst replaced, for its node (drop_name). */
static int do_rename(struct sfs_fs *fs, struct sfs_node *p1, const char *n1, struct sfs_node *p2,
		     const char *n2, struct sfs_node *src, struct sfs_node *dst, unsigned flags,
		     int *dstfd)
{
	int up1 = sfs_node_upper(fs, p1), up2 = sfs_node_upper(fs, p2);
	bool src_lower = sfs_lower_has(fs, p1, n1);
	bool dst_lower = sfs_lower_has(fs, p2, n2);
	int r, dup;

	if (up1 < 0 || up2 < 0)
		return up1 < 0 ? up1 : up2;
	/* p2 gets an entry that came from elsewhere: its listing must look
	 * up entries' origins (impure), as on overlayfs */
	if (p1 != p2 && (src->nlow || S_ISDIR(src->type)))
		sfs_setox(fs, up2, "impure", "y", 1);

	if (flags & RENAME_EXCHANGE) {
		r = prepare_move(fs, src, dst_lower);
		if (r == 0)
			r = prepare_move(fs, dst, src_lower);
		if (r == 0)
			r = link_up(fs, src, up1, n1);
		if (r == 0)
			r = link_up(fs, dst, up2, n2);
		if (r == 0)
			r = sfs_renameat2(up1, n1, up2, n2, RENAME_EXCHANGE);
		return r;
	}
	r = prepare_move(fs, src, dst_lower);
	if (r == 0)
		r = link_up(fs, src, up1, n1);
	if (r == 0 && dst)
		r = copy_up_hardlinked(fs, dst);
	/* a lower name of an indexed file gets its upper link, so that
	 * replacing it takes it off the file's link count */
	if (r == 0 && dst)
		r = link_up(fs, dst, up2, n2);
	if (r < 0)
		return r;
	if (dst && S_ISDIR(dst->type) && sfs_node_has_upper(dst)) {
		dup = sfs_node_upper(fs, dst);
		r = dup < 0 ? dup : move_over_dir(fs, up1, n1, up2, n2, src, dup, src_lower);
		/* (a dup: dup is n's, or this request's alone) */
		if (r == 0)
			*dstfd = fcntl(dup, F_DUPFD_CLOEXEC, 0);
		return r;
	}
	r = move_upper(fs, up1, n1, up2, n2, S_ISDIR(src->type), src_lower);
	/* (a directory here has no upper) */
	if (r == 0 && dst && (dup = sfs_node_upper(fs, dst)) >= 0)
		drop_unused_index(fs, dup);
	return r;
}

int sfs_rename(struct sfs_fs *fs, struct sfs_node *p1, const char *n1, struct sfs_node *p2,
	       const char *n2, unsigned flags)
{
	struct sfs_node *src = NULL, *dst = NULL;
	int r, dstfd = -1;
	bool dirs;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (!fs->upper)
		return -EROFS;
	r = node_for(fs, p1, n1, &src);
	if (r < 0)
		return r;
	r = node_for(fs, p2, n2, &dst);
	if (r == -ENOENT) {
		dst = NULL;
		r = (flags & RENAME_EXCHANGE) ? -ENOENT : 0;
	} else if (r == 0 && (flags & RENAME_NOREPLACE)) {
		r = -EEXIST;
	}
	if (r < 0)
		goto out;
	if (dst == src)
		goto out; /* two names of one file: nothing to do */
	if (dst && !(flags & RENAME_EXCHANGE)) {
		if (S_ISDIR(src->type) && !S_ISDIR(dst->type))
			r = -ENOTDIR;
		else if (!S_ISDIR(src->type) && S_ISDIR(dst->type))
			r = -EISDIR;
		else if (S_ISDIR(dst->type))
			r = sfs_dir_check_empty(fs, dst);
		if (r < 0)
			goto out;
	}
	r = sfs_copy_up(fs, p1, SFS_CU_META);
	if (r == 0)
		r = sfs_copy_up(fs, p2, SFS_CU_META);
	if (r < 0)
		goto out;
	/* from the move in the upper until the nodes' names follow, a
	 * directory opened again by its names would not be found
	 * (sfs_node_upper waits) */
	dirs = S_ISDIR(src->type) || (dst && S_ISDIR(dst->type));
	if (dirs)
		__atomic_add_fetch(&fs->renaming, 1, __ATOMIC_SEQ_CST);
	r = do_rename(fs, p1, n1, p2, n2, src, dst, flags, &dstfd);
	if (r == 0 && (flags & RENAME_EXCHANGE)) {
		sfs_node_set_alias(fs, src, p2, n2);
		sfs_node_set_alias(fs, dst, p1, n1);
	} else if (r == 0) {
		if (dst)
			drop_name(fs, dst, p2, n2, &dstfd);
		sfs_node_set_alias(fs, src, p2, n2);
	}
	if (dirs) {
		__atomic_add_fetch(&fs->renamed, 1, __ATOMIC_SEQ_CST);
		__atomic_sub_fetch(&fs->renaming, 1, __ATOMIC_SEQ_CST);
	}
	if (dstfd >= 0)
		close(dstfd);
out:
	if (src)
		sfs_node_unref(fs, src);
	if (dst)
		sfs_node_unref(fs, dst);
	return r;
}
