/* fs/layers.c: opening the layers and the workdir, the overlayfs on-disk
 * vocabulary (xattr names, whiteouts, opaque directories, file handles) and
 * inode numbering. */
#include "fs/sfs.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <xxhash.h>

#ifndef FS_IOC_GETFSUUID
struct fsuuid2 {
	uint8_t len;
	uint8_t uuid[16];
};
#define FS_IOC_GETFSUUID _IOR(0x15, 0, struct fsuuid2)
#endif

#define INO_BITS 56
#define INO_MASK ((UINT64_C(1) << INO_BITS) - 1)

static bool in_initial_userns(void)
{
	_cleanup_free_ char *map = NULL;
	unsigned long a, b, c;

	if (su_read_file(AT_FDCWD, "/proc/self/uid_map", &map, NULL, 4096) < 0)
		return false;
	return sscanf(map, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 && c == 4294967295UL;
}

static int open_layer(struct sfs_fs *fs, struct sfs_layer *l, const char *path, bool upper,
		      char *err, size_t errlen)
{
	struct stat st;
	int rfd;

	l->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (l->fd < 0) {
		snprintf(err, errlen, "%s \"%s\": %s", upper ? "upperdir" : "lowerdir", path,
			 strerror(errno));
		return -errno;
	}
	l->path = strdup(path);
	l->upper = upper;
	if (!l->path || fstat(l->fd, &st) < 0)
		return -ENOMEM;
	l->dev = st.st_dev;
	rfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd >= 0) {
		struct fsuuid2 u = {.len = 16};
		struct statfs sfs;
		if (ioctl(rfd, FS_IOC_GETFSUUID, &u) == 0 && u.len == 16) {
			memcpy(l->uuid, u.uuid, 16);
			l->has_uuid = true;
		}
		/* a FUSE layer may end a splice early on an error (file.c) */
		if (fstatfs(rfd, &sfs) == 0) {
			l->fuse = sfs.f_type == 0x65735546;
			l->pin = l->fuse || sfs.f_type == 0x4d44 /* msdos */ ||
				 sfs.f_type == 0x2011bab0 /* exfat */ ||
				 sfs.f_type == (typeof(sfs.f_type))0xff534d42 /* cifs */ ||
				 sfs.f_type == (typeof(sfs.f_type))0xfe534d42 /* smb2 */;
			l->quiet_close = sfs.f_type == EXT4_SUPER_MAGIC ||
					 sfs.f_type == XFS_SUPER_MAGIC || sfs.f_type == TMPFS_MAGIC;
		}
		close(rfd);
	}
	for (int i = 0; i < fs->nlayers; i++)
		if (fs->layers[i].dev == l->dev) {
			l->fsidx = fs->layers[i].fsidx;
			return 0;
		}
	l->fsidx = 0;
	for (int i = 0; i < fs->nlayers; i++)
		if (fs->layers[i].fsidx >= l->fsidx)
			l->fsidx = fs->layers[i].fsidx + 1;
	return 0;
}

/* What an object made in workdir/work gets: its owner (the daemon's ids, or
 * a group the directory passes on: set-group-id, a grpid mount, NFS), and
 * whether it gets the permissions asked and no ACL (not so under a default
 * ACL or a set-group-id bit).  Copy-up then skips the calls that would
 * change nothing; when the probe fails, nothing is skipped. */
static void probe_workdir(struct sfs_fs *fs)
{
	struct stat f, d;
	ssize_t acl;
	int fd, r, err;

	fs->work_uid = (uid_t)-1;
	fs->work_gid = (gid_t)-1;
	fs->work_plain = false;
	fd = openat(fs->workfd, "probe", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	r = fstat(fd, &f);
	acl = fgetxattr(fd, "system.posix_acl_access", NULL, 0);
	err = errno;
	close(fd);
	unlinkat(fs->workfd, "probe", 0);
	if (r < 0)
		return;
	fs->work_uid = f.st_uid;
	fs->work_gid = f.st_gid;
	if ((f.st_mode & 07777) != 0640 || acl >= 0 || (err != ENODATA && err != ENOTSUP))
		return;
	if (mkdirat(fs->workfd, "probe", 0750) < 0)
		return;
	r = fstatat(fs->workfd, "probe", &d, AT_SYMLINK_NOFOLLOW);
	unlinkat(fs->workfd, "probe", AT_REMOVEDIR);
	acl = sfs_fgetxattr(fs, fs->workfd, "system.posix_acl_default", NULL, 0);
	fs->work_plain = r == 0 && (d.st_mode & 07777) == 0750 && d.st_gid == f.st_gid &&
			 (acl == -ENODATA || acl == -ENOTSUP);
}

/* A whiteout made anew costs an inode, and on ext4 allocating one after
 * many removals (rm -rf, whose removals make the whiteouts) scans past
 * every recently freed inode: a third of the daemon's time in rm -rf.  A
 * link to one shared whiteout costs neither, and removing it frees no
 * inode.  The shared one lives in workdir/work (emptied at mount), made
 * with the first whiteout and replaced when it has all the links the upper
 * allows. */
#define SHARED_WHITEOUT "whiteout"

/* Whether the listing of dirfd numbers name as its stat does (st_ino):
 * not so on every filesystem (FUSE without use_ino, some overlays). */
static bool listed_as(int dirfd, const char *name, ino_t ino)
{
	_cleanup_dirstream_ struct sfs_dirstream *d = NULL;
	struct sfs_rawent de;

	if (sfs_dirstream_open(dirfd, &d) < 0)
		return false;
	while (sfs_dirstream_next(d, &de) > 0)
		if (!strcmp(de.name, name))
			return de.ino == (uint64_t)ino;
	return false;
}

/* Replaces the shared whiteout, unless another thread did since gen. */
static int new_shared_whiteout(struct sfs_fs *fs, unsigned gen)
{
	_cleanup_free_ char *tmp = sfs_tmpname(fs);
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	pthread_mutex_lock(&fs->wh_lock);
	if (__atomic_load_n(&fs->wh_gen, __ATOMIC_ACQUIRE) == gen) {
		struct stat st;

		r = sfs_mknodat(fs->workfd, tmp, S_IFCHR | 0, makedev(0, 0));
		if (r == 0)
			r = sfs_fstatat(fs->workfd, tmp, &st, 0);
		if (r == 0)
			r = sfs_renameat2(fs->workfd, tmp, fs->workfd, SHARED_WHITEOUT, 0);
		if (r == 0) {
			uint64_t ino = listed_as(fs->workfd, SHARED_WHITEOUT, st.st_ino)
					   ? (uint64_t)st.st_ino
					   : 0;

			__atomic_store_n(&fs->wh_ino, ino, __ATOMIC_RELEASE);
			__atomic_add_fetch(&fs->wh_gen, 1, __ATOMIC_RELEASE);
		} else {
			sfs_unlinkat(fs->workfd, tmp, 0);
		}
	}
	pthread_mutex_unlock(&fs->wh_lock);
	return r;
}

/* Whether a link to the shared whiteout fails in the workdir itself: an
 * error that came from one target directory (immutable, an LSM) must not
 * turn sharing off for the whole mount. */
static bool shared_whiteout_unlinkable(struct sfs_fs *fs)
{
	_cleanup_free_ char *tmp = sfs_tmpname(fs);
	int r;

	if (!tmp)
		return false;
	r = sfs_linkat(fs->workfd, SHARED_WHITEOUT, fs->workfd, tmp);
	if (r == 0)
		sfs_unlinkat(fs->workfd, tmp, 0);
	return r == -EPERM || r == -EOPNOTSUPP || r == -EINVAL || r == -EXDEV;
}

/* Empties workdir/work of what a crashed mount left behind, so no partial
 * copy-up ever becomes visible. */
static int prepare_workdir(struct sfs_fs *fs, const char *workdir, char *err, size_t errlen)
{
	_cleanup_close_ int wfd = open(workdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	int r;

	if (wfd < 0) {
		snprintf(err, errlen, "workdir \"%s\": %s", workdir, strerror(errno));
		return -errno;
	}
	if (fstat(wfd, &st) < 0 || st.st_dev != fs->upper->dev) {
		snprintf(err, errlen,
			 "workdir \"%s\" and upperdir \"%s\" must be on the same filesystem",
			 workdir, fs->upper->path);
		return -EXDEV;
	}
	r = su_rm_rf_at(wfd, "work");
	if (r < 0 && r != -ENOENT) {
		snprintf(err, errlen, "cleaning workdir \"%s/work\": %s", workdir, strerror(-r));
		return r;
	}
	/* 0700, not overlayfs' 0: an unprivileged daemon must enter it */
	if (mkdirat(wfd, "work", 0700) < 0) {
		snprintf(err, errlen, "workdir \"%s\": %s", workdir, strerror(errno));
		return -errno;
	}
	fs->workfd = openat(wfd, "work", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->workfd < 0)
		return -errno;
	probe_workdir(fs);
	fs->wh_shared = true; /* made by the first whiteout */
	fs->indexfd = -1;
	if (fs->o->index) {
		if (mkdirat(wfd, "index", 0700) < 0 && errno != EEXIST)
			return 0; /* hard links then break on copy-up, as without index */
		fs->indexfd = openat(wfd, "index", O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	return 0;
}

/* Whether a is b or lies below it (both canonical paths). */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (n == 1) /* "/" */
		return true;
	return !strncmp(a, b, n) && (a[n] == '\0' || a[n] == '/');
}

/* Refuses layers nested in one another: one directory showing up in two
 * places of the tree (or the upper inside a lower) gives one inode two
 * meanings, as kernel overlayfs refuses with ELOOP. */
static int check_overlap(struct sfs_fs *fs, char *err, size_t errlen)
{
	int n = fs->nlayers + (fs->o->workdir ? 1 : 0);
	char **real = calloc(n, sizeof(*real));
	int r = 0;

	if (!real)
		return -ENOMEM;
	for (int i = 0; i < n && r == 0; i++) {
		const char *p = i < fs->nlayers ? fs->layers[i].path : fs->o->workdir;
		real[i] = realpath(p, NULL);
		if (!real[i])
			r = -errno;
	}
	for (int i = 0; i < n && r == 0; i++)
		for (int j = 0; j < n && r == 0; j++) {
			bool writable =
			    (i < fs->nlayers && fs->layers[i].upper) || i == fs->nlayers;
			if (i == j || !path_within(real[j], real[i]))
				continue;
			if (!writable && !strcmp(real[i], real[j]))
				continue; /* one lower listed twice is harmless */
			snprintf(err, errlen,
				 "\"%s\" and \"%s\" overlap: layers must not contain each other",
				 real[j], real[i]);
			r = -ELOOP;
		}
	for (int i = 0; i < n; i++)
		free(real[i]);
	free(real);
	return r;
}

/* ---- workdir/index: entries nothing refers to any more ----
 *
 * An index entry is the upper copy of a lower file with several names, each
 * name in the upper a hard link to it.  Like overlayfs' ovl_indexdir_cleanup,
 * a mount removes entries that back no visible name: "orphans", whose upper
 * names are all gone (link count 1, the index's own) and whose lower names
 * are all whited out (overlay nlink "U<d>" with 1 + d <= 0), and "stale"
 * ones, whose lower origin no longer exists (so no lower name can reach
 * them).  Everything else stays, including what overlayfs would remove but
 * strata-fs cannot prove unused: entries without an nlink record, entries
 * whose name is not a file handle, and entries whose origin may or may not
 * be gone: handles that cannot be decoded (unprivileged daemon) or whose
 * filesystem is not known (null uuid; overlayfs checks its lowers are the
 * same ones on every mount, strata-fs does not). */

enum index_verdict { INDEX_KEEP, INDEX_ORPHAN, INDEX_STALE, INDEX_TEMP };

/* Decodes the hex name of an index entry into an overlayfs file handle
 * (struct ovl_fb); returns its length, or -1 when it is not one. */
static int index_fh(const char *name, uint8_t *fb, size_t cap)
{
	size_t n = strlen(name);

	if (n % 2 || n / 2 < 21 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (!isxdigit((unsigned char)name[2 * i]) ||
		    !isxdigit((unsigned char)name[2 * i + 1]) ||
		    sscanf(name + 2 * i, "%2x", &v) != 1)
			return -1;
		fb[i] = (uint8_t)v;
	}
	if (fb[0] != 0 || fb[1] != 0xfb || fb[2] != n / 2)
		return -1;
	return (int)(n / 2);
}

/* Whether the lower object of handle fb still exists: 1 (its link count in
 * *nlink), 0 when it is gone, -errno when that cannot be told.  Telling
 * needs the filesystem the handle came from, known by its uuid (a null uuid
 * names none: the handle may come from a lower this mount does not have),
 * and CAP_DAC_READ_SEARCH to decode it. */
static int origin_exists(struct sfs_fs *fs, const uint8_t *fb, int len, nlink_t *nlink)
{
	static const uint8_t null_uuid[16];
	struct {
		struct file_handle h;
		uint8_t data[MAX_HANDLE_SZ];
	} fh;
	_cleanup_close_ int mfd = -1;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int layer = -1;

	if (!memcmp(fb + 5, null_uuid, 16))
		return -ENODEV;
	for (int i = fs->first_lower; i < fs->nlayers && layer < 0; i++)
		if (fs->layers[i].has_uuid && !memcmp(fs->layers[i].uuid, fb + 5, 16))
			layer = i;
	if (layer < 0 || len - 21 > MAX_HANDLE_SZ)
		return -ENODEV;
	fh.h.handle_bytes = (unsigned)(len - 21);
	fh.h.handle_type = fb[4];
	memcpy(fh.h.f_handle, fb + 21, fh.h.handle_bytes);
	mfd = sfs_openat(fs->layers[layer].fd, ".", O_RDONLY | O_DIRECTORY, 0);
	if (mfd < 0)
		return mfd;
	fd = open_by_handle_at(mfd, &fh.h, O_PATH | O_CLOEXEC);
	su_debug("open_by_handle_at(%d, type %d) = %d", mfd, fh.h.handle_type,
		 fd < 0 ? -errno : fd);
	if (fd < 0)
		return errno == ESTALE ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	*nlink = st.st_nlink;
	return st.st_nlink > 0;
}

/* The overlay link count an index entry records ("U<d>": relative to the
 * entry's own link count; "L<d>": to the origin's), or false without one. */
static bool index_nlink(struct sfs_fs *fs, int fd, char *base, long *diff)
{
	char buf[32];
	ssize_t r = sfs_getox(fs, fd, "nlink", buf, sizeof(buf) - 1);
	char *end;

	if (r < 3 || (buf[0] != 'U' && buf[0] != 'L') || (buf[1] != '+' && buf[1] != '-'))
		return false;
	buf[r] = '\0';
	*diff = strtol(buf + 1, &end, 10);
	*base = buf[0];
	return *end == '\0';
}

static enum index_verdict index_verdict(struct sfs_fs *fs, int dfd, const char *name)
{
	_cleanup_close_ int fd = -1;
	uint8_t fb[256];
	struct stat st;
	nlink_t onlink = 0;
	long diff = 0;
	char base = 0;
	bool counted;
	int len, r;

	if (name[0] == '#')
		return INDEX_TEMP; /* overlayfs' temporary, left by a crash */
	/* other types are overlayfs' (directories, whiteouts); more than one
	 * link: a name in the upper still links to it */
	if (sfs_fstatat(dfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
		return INDEX_KEEP;
	len = index_fh(name, fb, sizeof(fb));
	if (len < 0)
		return INDEX_KEEP;
	fd = sfs_openat(dfd, name, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		return INDEX_KEEP;
	counted = index_nlink(fs, fd, &base, &diff);
	if (counted && base == 'U' && 1 + diff <= 0)
		return INDEX_ORPHAN;
	r = origin_exists(fs, fb, len, &onlink);
	if (r == 0)
		return INDEX_STALE;
	if (r > 0 && counted && base == 'L' && (long)onlink + diff <= 0)
		return INDEX_ORPHAN;
	return INDEX_KEEP;
}

/* Runs once at mount, before any request: nothing else uses the index. */
static void index_cleanup(struct sfs_fs *fs)
{
	_cleanup_dirstream_ struct sfs_dirstream *d = NULL;
	struct sfs_rawent de;

	if (sfs_dirstream_open(fs->indexfd, &d) < 0)
		return;
	while (sfs_dirstream_next(d, &de) > 0) {
		const char *name = de.name;
		int dfd = sfs_dirstream_fd(d), r = 0;

		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		switch (index_verdict(fs, dfd, name)) {
		case INDEX_KEEP:
			continue;
		case INDEX_TEMP:
			r = su_rm_rf_at(dfd, name);
			break;
		case INDEX_ORPHAN:
		case INDEX_STALE:
			r = sfs_unlinkat(dfd, name, 0);
			break;
		}
		if (r < 0)
			su_warn("cleaning index entry \"%s\": %s", name, strerror(-r));
		else
			su_info("removed unused index entry \"%s\"", name);
	}
}

int sfs_fs_init(struct sfs_fs *fs, struct sfs_opts *o, char *err, size_t errlen)
{
	char **lowers;
	int n, r;

	memset(fs, 0, sizeof(*fs));
	fs->o = o;
	fs->workfd = fs->indexfd = fs->procfd = -1;
	fs->timeout = o->timeout;
	fs->uid = geteuid();
	fs->pid = (unsigned)getpid();
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_mutex_init(&fs->wh_lock, NULL);
	if (!o->lowerdir) {
		snprintf(err, errlen, "no lowerdir specified (-o lowerdir=DIR[:DIR...])");
		return -EINVAL;
	}
	if (o->upperdir && !o->workdir) {
		snprintf(err, errlen, "upperdir needs a workdir (-o workdir=DIR)");
		return -EINVAL;
	}
	if (o->workdir && !o->upperdir) {
		snprintf(err, errlen, "workdir given without upperdir");
		return -EINVAL;
	}
	lowers = su_split_escaped(o->lowerdir, ':');
	if (!lowers)
		return -ENOMEM;
	n = su_strv_len(lowers);
	fs->layers = calloc(n + 1, sizeof(*fs->layers));
	if (!fs->layers) {
		su_strv_free(lowers);
		return -ENOMEM;
	}
	r = 0;
	if (o->upperdir) {
		r = open_layer(fs, &fs->layers[0], o->upperdir, true, err, errlen);
		fs->nlayers = 1;
		fs->upper = &fs->layers[0];
	}
	fs->first_lower = fs->nlayers;
	for (int i = 0; i < n && r == 0; i++) {
		if (!*lowers[i]) {
			snprintf(err, errlen, "empty path in lowerdir \"%s\"", o->lowerdir);
			r = -EINVAL;
			break;
		}
		r = open_layer(fs, &fs->layers[fs->nlayers], lowers[i], false, err, errlen);
		if (r == 0)
			fs->nlayers++;
	}
	su_strv_free(lowers);
	if (r < 0)
		return r;
	r = check_overlap(fs, err, errlen);
	if (r < 0) {
		if (!*err)
			snprintf(err, errlen, "resolving layer paths: %s", strerror(-r));
		return r;
	}
	if (fs->upper) {
		r = prepare_workdir(fs, o->workdir, err, errlen);
		if (r < 0)
			return r;
	}
	fs->procfd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->procfd < 0) {
		snprintf(err, errlen, "/proc/self/fd: %s (is /proc mounted?)", strerror(errno));
		return -errno;
	}
	if (!o->userxattr && fs->uid == 0 && in_initial_userns())
		strcpy(fs->xp, "trusted.overlay.");
	else
		strcpy(fs->xp, "user.overlay.");
	fs->xplen = strlen(fs->xp);
	if (fs->indexfd >= 0 && !o->readonly)
		index_cleanup(fs);
	return 0;
}

void sfs_fs_destroy(struct sfs_fs *fs)
{
	for (int i = 0; i < fs->nlayers; i++) {
		close(fs->layers[i].fd);
		free(fs->layers[i].path);
	}
	free(fs->layers);
	if (fs->workfd >= 0)
		close(fs->workfd);
	if (fs->indexfd >= 0)
		close(fs->indexfd);
	if (fs->procfd >= 0)
		close(fs->procfd);
}

ssize_t sfs_getox(struct sfs_fs *fs, int fd, const char *name, void *buf, size_t len)
{
	char x[64];

	snprintf(x, sizeof(x), "%s%s", fs->xp, name);
	return sfs_fgetxattr(fs, fd, x, buf, len);
}

int sfs_setox(struct sfs_fs *fs, int fd, const char *name, const void *val, size_t len)
{
	char x[64];

	snprintf(x, sizeof(x), "%s%s", fs->xp, name);
	return sfs_fsetxattr(fs, fd, x, val, len, 0);
}

int sfs_rmox(struct sfs_fs *fs, int fd, const char *name)
{
	char x[64];
	int r;

	snprintf(x, sizeof(x), "%s%s", fs->xp, name);
	r = sfs_fremovexattr(fs, fd, x);
	return r == -ENODATA ? 0 : r;
}

bool sfs_is_private_xattr(struct sfs_fs *fs, const char *name)
{
	return su_str_has_prefix(name, "trusted.overlay.") ||
	       su_str_has_prefix(name, "user.overlay.") ||
	       su_str_has_prefix(name, "user.fuseoverlayfs.");
}

bool sfs_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool xattr_is_y(struct sfs_fs *fs, int fd, const char *name)
{
	char v[4];
	ssize_t r = sfs_fgetxattr(fs, fd, name, v, sizeof(v));
	return r == 1 && v[0] == 'y';
}

unsigned sfs_ox_present(struct sfs_fs *fs, int fd)
{
	static const struct {
		const char *name;
		unsigned bit;
	} ours[] = {
	    {"opaque", SFS_OX_OPAQUE}, {"redirect", SFS_OX_REDIRECT}, {"metacopy", SFS_OX_METACOPY},
	    {"origin", SFS_OX_ORIGIN}, {"strata.ino", SFS_OX_INO},    {"nlink", SFS_OX_NLINK},
	    {"impure", SFS_OX_IMPURE},
	};
	char stackbuf[1024];
	_cleanup_free_ char *heap = NULL;
	char *buf = stackbuf;
	ssize_t len = sfs_flistxattr(fs, fd, buf, sizeof(stackbuf));
	unsigned bits = 0;

	if (len == -ERANGE) {
		len = sfs_flistxattr(fs, fd, NULL, 0);
		if (len > 0 && (heap = malloc(len)))
			len = sfs_flistxattr(fs, fd, buf = heap, len);
	}
	for (char *p = buf; len > 0 && p < buf + len; p += strlen(p) + 1) {
		if (!strcmp(p, "user.fuseoverlayfs.opaque") || !strcmp(p, "user.overlay.opaque") ||
		    !strcmp(p, "trusted.overlay.opaque"))
			bits |= SFS_OX_FOREIGN_OPAQUE;
		if (strncmp(p, fs->xp, fs->xplen))
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(ours); i++)
			if (!strcmp(p + fs->xplen, ours[i].name))
				bits |= ours[i].bit;
	}
	return bits;
}

bool sfs_lower_dir_opaque(struct sfs_fs *fs, int fd)
{
	struct stat st;

	if (sfs_ox_present(fs, fd) & SFS_OX_FOREIGN_OPAQUE) {
		if (xattr_is_y(fs, fd,
			       fs->xp[0] == 't' ? "trusted.overlay.opaque" : "user.overlay.opaque"))
			return true;
		if (fs->xp[0] == 't' && xattr_is_y(fs, fd, "user.overlay.opaque"))
			return true;
		if (xattr_is_y(fs, fd, "user.fuseoverlayfs.opaque"))
			return true;
	}
	return sfs_fstatat(fd, ".wh..wh..opq", &st, 0) == 0;
}

int sfs_dirent_whiteout(struct sfs_fs *fs, int dirfd, const struct sfs_rawent *de)
{
	/* The inode linked at workdir/work/whiteout: that link keeps its
	 * number from being reused, so an entry of that number is a link to
	 * it (emptied at mount, the workdir holds no other). */
	uint64_t ino = __atomic_load_n(&fs->wh_ino, __ATOMIC_ACQUIRE);
	struct stat st;
	int r;

	if (de->type != DT_CHR && de->type != DT_UNKNOWN)
		return 0;
	if (ino && de->type == DT_CHR && de->ino == ino)
		return 1;
	r = sfs_fstatat(dirfd, de->name, &st, 0);
	return r < 0 ? r : sfs_is_whiteout(&st);
}

bool sfs_upper_dir_opaque(struct sfs_fs *fs, int fd)
{
	char v[4];
	return sfs_getox(fs, fd, "opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

int sfs_make_whiteout(struct sfs_fs *fs, int dirfd, const char *name)
{
	for (int tries = 0; tries < 2 && __atomic_load_n(&fs->wh_shared, __ATOMIC_ACQUIRE);
	     tries++) {
		unsigned gen = __atomic_load_n(&fs->wh_gen, __ATOMIC_ACQUIRE);
		struct stat st;
		int r = sfs_linkat(fs->workfd, SHARED_WHITEOUT, dirfd, name);

		if (r == 0 || r == -EEXIST || r == -ENOSPC || r == -EDQUOT || r == -EROFS ||
		    r == -EIO || r == -ENOMEM)
			return r;
		/* ENOENT: the directory is gone, or the shared whiteout is
		 * (not made yet, or removed behind the daemon's back) */
		if (r == -ENOENT && sfs_fstatat(fs->workfd, SHARED_WHITEOUT, &st, 0) == 0)
			return r;
		if (r == -EMLINK || r == -ENOENT) {
			r = new_shared_whiteout(fs, gen);
			if (r == 0)
				continue;
		} else if (shared_whiteout_unlinkable(fs)) {
			/* an upper without hard links, or refusing these */
			su_debug("shared whiteout off: %s", strerror(-r));
			__atomic_store_n(&fs->wh_shared, false, __ATOMIC_RELEASE);
		}
		break;
	}
	return sfs_mknodat(dirfd, name, S_IFCHR | 0, makedev(0, 0));
}

uint64_t sfs_make_ino(struct sfs_fs *fs, int layer, ino_t ino)
{
	uint64_t v = ino;

	/* Real inode numbers of every layer on one filesystem are already
	 * unique; the filesystem index in the high bits separates the rest. */
	if (v & ~INO_MASK)
		v = XXH3_64bits(&v, sizeof(v)) & INO_MASK;
	return ((uint64_t)fs->layers[layer].fsidx << INO_BITS) | v;
}

uint64_t sfs_make_alias_ino(struct sfs_fs *fs, int layer, ino_t ino, const char *path)
{
	/* bit 55 keeps hashed numbers clear of the real ones next to them */
	uint64_t v = (XXH3_64bits_withSeed(path, strlen(path), ino) & INO_MASK) |
		     (UINT64_C(1) << (INO_BITS - 1));

	return ((uint64_t)fs->layers[layer].fsidx << INO_BITS) | v;
}

int sfs_encode_fh(struct sfs_fs *fs, int layer, int fd, uint8_t *buf, size_t len)
{
	struct {
		struct file_handle h;
		uint8_t data[MAX_HANDLE_SZ];
	} fh;
	int mnt;
	size_t total;

	fh.h.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &fh.h, &mnt, AT_EMPTY_PATH) < 0)
		return -errno;
	total = 21 + fh.h.handle_bytes;
	if (total > len || total > 255)
		return -EOVERFLOW;
	/* struct ovl_fb: version, magic, len, flags, type, uuid, fid */
	buf[0] = 0;
	buf[1] = 0xfb;
	buf[2] = (uint8_t)total;
	buf[3] = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 1 : 0;
	buf[4] = (uint8_t)fh.h.handle_type;
	memcpy(buf + 5, fs->layers[layer].uuid, 16);
	memcpy(buf + 21, fh.h.f_handle, fh.h.handle_bytes);
	return (int)total;
}
