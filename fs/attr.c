/* fs/attr.c: attributes as the merged tree presents them (stable inode
 * numbers, mapped and squashed owners, overlayfs nlink accounting) and
 * setattr, which copies up metadata only unless the size changes. */
#include "fs/sfs.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>

uid_t sfs_uid_to_disk(struct sfs_fs *fs, uid_t uid)
{
	return sfs_idmap_to_disk(&fs->o->uidmap, uid);
}

gid_t sfs_gid_to_disk(struct sfs_fs *fs, gid_t gid)
{
	return sfs_idmap_to_disk(&fs->o->gidmap, gid);
}

/* The link count the nlink record of fd gives (the real one without). */
static nlink_t recorded_nlink(struct sfs_fs *fs, int fd, const struct stat *st)
{
	char buf[32];
	ssize_t r;
	long d;

	r = sfs_getox(fs, fd, "nlink", buf, sizeof(buf) - 1);
	if (r < 2 || (buf[0] != 'U'))
		return st->st_nlink;
	buf[r] = '\0';
	d = strtol(buf + 1, NULL, 10);
	if ((long)st->st_nlink + d < 1)
		return 1;
	return st->st_nlink + d;
}

nlink_t sfs_upper_nlink(struct sfs_fs *fs, int fd, const struct stat *st)
{
	/* one link: a plain file (present() reads the record of an index
	 * entry reached through a lower name, which may have one link left) */
	if (st->st_nlink < 2)
		return st->st_nlink;
	return recorded_nlink(fs, fd, st);
}

int sfs_nlink_adjust(struct sfs_fs *fs, int fd, int delta)
{
	char buf[32];
	ssize_t r = sfs_getox(fs, fd, "nlink", buf, sizeof(buf) - 1);
	long d = 0;

	if (r >= 2 && buf[0] == 'U') {
		buf[r] = '\0';
		d = strtol(buf + 1, NULL, 10);
	}
	snprintf(buf, sizeof(buf), "U%+ld", d + delta);
	return sfs_setox(fs, fd, "nlink", buf, strlen(buf));
}

/* Rewrites a real stat into what the merged tree shows for n; up is the
 * upper fd the stat was taken of, or -1 for a lower's stat. */
static void present(struct sfs_fs *fs, struct sfs_node *n, int up, struct stat *st)
{
	/* The names of a lower hard link that copy-up will part are nodes of
	 * their own, but one file until then, with the lower's number (as
	 * readdir shows it), as on overlayfs without index. */
	if (up < 0 && n->nlow && sfs_breaks_on_copy_up(fs, st))
		st->st_ino = sfs_make_ino(fs, n->low[0].layer, st->st_ino);
	else
		st->st_ino = n->ino;
	st->st_uid = sfs_idmap_to_shown(&fs->o->uidmap, st->st_uid);
	st->st_gid = sfs_idmap_to_shown(&fs->o->gidmap, st->st_gid);
	if (fs->o->squash_to_root)
		st->st_uid = st->st_gid = 0;
	if (fs->o->squash_uid >= 0)
		st->st_uid = fs->o->squash_uid;
	if (fs->o->squash_gid >= 0)
		st->st_gid = fs->o->squash_gid;
	if (S_ISDIR(st->st_mode)) {
		/* The link count of a merged directory is unknown without a
		 * full listing; 1 tells find(1) not to count subdirectories. */
		if (fs->o->static_nlink || n->nlow > 1 || (n->nlow && sfs_node_has_upper(n)))
			st->st_nlink = 1;
	} else if (up >= 0 && n->indexed) {
		st->st_nlink = recorded_nlink(fs, up, st);
	} else if (up >= 0) {
		st->st_nlink = sfs_upper_nlink(fs, up, st);
	}
}

/* n's attributes, through up (its upper fd in hand, or negative: its
 * lower). */
static int stat_through(struct sfs_fs *fs, struct sfs_node *n, int up, struct stat *st)
{
	int r = up >= 0	  ? sfs_fstatat(up, "", st, 0)
		: n->nlow ? sfs_lower_stat(fs, &n->low[0], n->lowpath, st)
			  : -EIO;

	if (r < 0)
		return r;
	present(fs, n, up, st);
	return 0;
}

int sfs_getattr(struct sfs_fs *fs, struct sfs_node *n, struct stat *st)
{
	int up = sfs_node_upper(fs, n);

	return up >= 0 || up == -ENOENT ? stat_through(fs, n, up, st) : up;
}

void sfs_present_stat(struct sfs_fs *fs, struct sfs_node *n, struct stat *st)
{
	/* (a directory's stat needs no fd of it) */
	present(fs, n, S_ISDIR(n->type) ? -1 : sfs_node_upper(fs, n), st);
}

/* Whether process pid holds CAP_FSETID as the VFS counts it: in the
 * initial user namespace (capable()), so root of a container does not.
 * pid 0 (a request without a process) counts as unprivileged. */
static bool caller_has_fsetid(pid_t pid)
{
	char path[40], line[128];
	unsigned long long caps = 0;
	unsigned long a, b, c;
	bool init_ns = false;
	FILE *f;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	if (!(caps & (1ULL << CAP_FSETID)))
		return false;
	/* the initial namespace maps every id to itself */
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	if (!(f = fopen(path, "re")))
		return false;
	init_ns = fscanf(f, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 &&
		  c == 4294967295UL && fscanf(f, "%lu", &a) != 1;
	fclose(f);
	return init_ns;
}

#define SETATTR_CHANGES                                                                            \
	(FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE |         \
	 FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |                     \
	 FUSE_SET_ATTR_MTIME_NOW)

bool sfs_privs_clean(struct sfs_node *n)
{
	return (__atomic_load_n(&n->privs, __ATOMIC_ACQUIRE) & 1) == SFS_PRIVS_NONE;
}

uint32_t sfs_privs_seen(struct sfs_node *n)
{
	return __atomic_load_n(&n->privs, __ATOMIC_ACQUIRE);
}

void sfs_privs_forget(struct sfs_node *n)
{
	uint32_t old = __atomic_load_n(&n->privs, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(&n->privs, &old,
					    ((old >> 1) + 1) << 1 | SFS_PRIVS_UNKNOWN, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
}

void sfs_privs_found_clean(struct sfs_node *n, uint32_t seen)
{
	/* (a node without a name is not the inode's only one: its other
	 * names' nodes would not tell it of a change) */
	if (__atomic_load_n(&n->unlinked, __ATOMIC_ACQUIRE))
		return;
	__atomic_compare_exchange_n(&n->privs, &seen, (seen & ~1u) | SFS_PRIVS_NONE, false,
				    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* For sfs_kill_privs, on a regular file, for the request of process pid:
 * set-id bits stay if it holds CAP_FSETID.  1 when the mode changed. */
static int kill_privs(struct sfs_fs *fs, struct sfs_node *n, pid_t pid)
{
	uint32_t seen = sfs_privs_seen(n); /* (before the look) */
	int up = sfs_node_upper(fs, n), r, changed = 0;
	mode_t kill = 0;
	struct stat st;
	ssize_t caps;

	if (up < 0)
		return 0;
	r = sfs_fstatat(up, "", &st, 0);
	if (r < 0)
		return r;
	caps = sfs_fgetxattr(fs, up, "security.capability", NULL, 0);
	if (caps >= 0 || caps == -ERANGE) {
		r = sfs_fremovexattr(fs, up, "security.capability");
		if (r < 0 && r != -ENODATA)
			return r;
	}
	if (st.st_mode & S_ISUID)
		kill |= S_ISUID;
	if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		kill |= S_ISGID;
	/* (asked only when there is a bit to keep: reading the caller's
	 * /proc entries costs more than the rest of a chown) */
	if (kill && !caller_has_fsetid(pid)) {
		r = sfs_fchmod(fs, up, st.st_mode & 07777 & ~kill);
		if (r < 0)
			return r;
		st.st_mode &= ~kill;
		changed = 1;
	}
	/* another node may share a hard-linked inode and change its mode:
	 * only a single name can remember that it is clean */
	if (!(st.st_mode & (S_ISUID | S_ISGID)) && st.st_nlink == 1)
		sfs_privs_found_clean(n, seen);
	return changed;
}

int sfs_kill_privs(struct sfs_fs *fs, struct sfs_node *n, pid_t pid)
{
	if (!fs->pt.killpriv || !S_ISREG(n->type) || sfs_privs_clean(n))
		return 0;
	return kill_privs(fs, n, pid);
}

int sfs_setattr(struct sfs_fs *fs, struct sfs_node *n, struct stat *attr, int valid, int fh,
		pid_t pid, struct stat *out)
{
	int r, up;

	if (!fs->upper)
		return -EROFS;
	if (valid & FUSE_SET_ATTR_SIZE) {
		if (!S_ISREG(n->type))
			return S_ISDIR(n->type) ? -EISDIR : -EINVAL;
		r = sfs_copy_up(fs, n, attr->st_size == 0 ? SFS_CU_EMPTY : SFS_CU_DATA);
	} else {
		r = sfs_copy_up(fs, n, SFS_CU_META);
	}
	if (r < 0)
		return r;
	up = sfs_node_upper(fs, n);
	if (up < 0)
		return up;
	/* With killpriv the kernel asks for the bits to go before a write
	 * instead of sending a new mode; libfuse 3.14 drops the flag that
	 * says so (FATTR_KILL_SUIDGID), leaving a setattr that changes
	 * nothing.  Either way the caller's own capability decides, as in
	 * the VFS. */
	if (valid & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID) ||
	    !(valid & SETATTR_CHANGES)) {
		r = sfs_kill_privs(fs, n, pid);
		if (r < 0)
			return r;
	}
	/* a new owner or mode may bring set-id bits; the upper's chown
	 * (the host's VFS) drops them and capabilities itself */
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_MODE))
		sfs_privs_forget(n);
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid =
		    (valid & FUSE_SET_ATTR_UID) ? sfs_uid_to_disk(fs, attr->st_uid) : (uid_t)-1;
		gid_t gid =
		    (valid & FUSE_SET_ATTR_GID) ? sfs_gid_to_disk(fs, attr->st_gid) : (gid_t)-1;
		r = sfs_fchown(up, uid, gid);
		if (r < 0)
			return r;
	}
	if (valid & FUSE_SET_ATTR_MODE) {
		r = sfs_fchmod(fs, up, attr->st_mode & 07777);
		if (r < 0)
			return r;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		r = fh >= 0 ? (ftruncate(fh, attr->st_size) < 0 ? -errno : 0)
			    : sfs_ftruncate(fs, up, attr->st_size);
		if (r == -EBADF || r == -EINVAL)
			r = sfs_ftruncate(fs, up, attr->st_size);
		if (r < 0)
			return r;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		r = sfs_futimens(fs, up, ts, S_ISLNK(n->type));
		if (r < 0)
			return r;
	}
	/* (the fd in hand: a directory's may be this request's alone) */
	return stat_through(fs, n, up, out);
}
