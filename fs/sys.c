/* fs/sys.c: every system call strata-fs makes on its layers goes through one
 * of these wrappers, which return a negative errno and log at debug level,
 * so `-d` shows each call made on the layers. */
#include "fs/sfs.h"

#include <dirent.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#define RET(r, fmt, ...)                                                                           \
	do {                                                                                       \
		int _e = (r) < 0 ? -errno : (int)(r);                                              \
		su_debug(fmt " = %d", __VA_ARGS__, _e);                                            \
		return _e;                                                                         \
	} while (0)

#define PROCFD(buf, fd) snprintf(buf, sizeof(buf), "/proc/self/fd/%d", fd)

int sfs_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	int r = openat(dirfd, name, flags | O_CLOEXEC, mode);
	RET(r, "openat(%d, \"%s\", %#x, %#o)", dirfd, name, flags, mode);
}

/* Reads a directory with getdents64 straight into a buffer: fdopendir's
 * checks (an fstat and an fcntl) would cost two system calls per directory
 * and layer on the path every listing takes. */
struct sfs_dirstream {
	int fd;
	size_t pos, len;
	char buf[32768] __attribute__((aligned(8)));
};

int sfs_dirstream_adopt(int fd, struct sfs_dirstream **out)
{
	struct sfs_dirstream *d = malloc(sizeof(*d));

	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	d->fd = fd;
	d->pos = d->len = 0;
	*out = d;
	return 0;
}

int sfs_dirstream_openat(int dirfd, const char *name, struct sfs_dirstream **out)
{
	int fd = sfs_openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);

	return fd < 0 ? fd : sfs_dirstream_adopt(fd, out);
}

int sfs_dirstream_open(int fd, struct sfs_dirstream **out)
{
	return sfs_dirstream_openat(fd, ".", out);
}

int sfs_dirstream_fd(const struct sfs_dirstream *d)
{
	return d->fd;
}

int sfs_dirstream_next(struct sfs_dirstream *d, struct sfs_rawent *e)
{
	const struct dirent64 *de;

	if (d->pos >= d->len) {
		ssize_t n = getdents64(d->fd, d->buf, sizeof(d->buf));
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		d->len = (size_t)n;
		d->pos = 0;
	}
	de = (const struct dirent64 *)(d->buf + d->pos);
	d->pos += de->d_reclen;
	e->ino = de->d_ino;
	e->type = de->d_type;
	e->name = de->d_name;
	return 1;
}

void sfs_dirstream_close(struct sfs_dirstream *d)
{
	if (d) {
		close(d->fd);
		free(d);
	}
}

void sfs_dirstream_closep(struct sfs_dirstream **d)
{
	sfs_dirstream_close(*d);
}

int sfs_reopen(struct sfs_fs *fs, int fd, int flags)
{
	char n[16];
	int r;

	snprintf(n, sizeof(n), "%d", fd);
	r = openat(fs->procfd, n, (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
	RET(r, "reopen(%d, %#x)", fd, flags);
}

int sfs_fstatat(int dirfd, const char *name, struct stat *st, int flags)
{
	int r = fstatat(dirfd, name, st, flags | AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH));
	RET(r, "fstatat(%d, \"%s\")", dirfd, name);
}

int sfs_mkdirat(int dirfd, const char *name, mode_t mode)
{
	int r = mkdirat(dirfd, name, mode);
	RET(r, "mkdirat(%d, \"%s\", %#o)", dirfd, name, mode);
}

int sfs_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev)
{
	int r = mknodat(dirfd, name, mode, dev);
	RET(r, "mknodat(%d, \"%s\", %#o, %#lx)", dirfd, name, mode, (unsigned long)dev);
}

int sfs_symlinkat(const char *target, int dirfd, const char *name)
{
	int r = symlinkat(target, dirfd, name);
	RET(r, "symlinkat(\"%s\", %d, \"%s\")", target, dirfd, name);
}

int sfs_unlinkat(int dirfd, const char *name, int flags)
{
	int r = unlinkat(dirfd, name, flags);
	RET(r, "unlinkat(%d, \"%s\", %#x)", dirfd, name, flags);
}

int sfs_renameat2(int olddir, const char *oldname, int newdir, const char *newname, unsigned flags)
{
	int r = renameat2(olddir, oldname, newdir, newname, flags);
	RET(r, "renameat2(%d, \"%s\", %d, \"%s\", %#x)", olddir, oldname, newdir, newname, flags);
}

int sfs_linkat(int olddir, const char *oldname, int newdir, const char *newname)
{
	int r = linkat(olddir, oldname, newdir, newname, 0);
	RET(r, "linkat(%d, \"%s\", %d, \"%s\")", olddir, oldname, newdir, newname);
}

int sfs_linkat_fd(struct sfs_fs *fs, int fd, int newdir, const char *newname)
{
	char p[32];
	int r;

	/* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the proc link works
	 * for any owner of the fd. */
	PROCFD(p, fd);
	r = linkat(AT_FDCWD, p, newdir, newname, AT_SYMLINK_FOLLOW);
	RET(r, "linkat(%d, %d, \"%s\")", fd, newdir, newname);
}

int sfs_readlinkat(int fd, char *buf, size_t len)
{
	ssize_t r = readlinkat(fd, "", buf, len);
	RET(r, "readlinkat(%d)", fd);
}

ssize_t sfs_fgetxattr(struct sfs_fs *fs, int fd, const char *name, void *buf, size_t len)
{
	char p[32];
	ssize_t r;

	PROCFD(p, fd);
	r = getxattr(p, name, buf, len);
	RET(r, "getxattr(%d, \"%s\")", fd, name);
}

int sfs_fsetxattr(struct sfs_fs *fs, int fd, const char *name, const void *buf, size_t len,
		  int flags)
{
	char p[32];
	int r;

	PROCFD(p, fd);
	r = setxattr(p, name, buf, len, flags);
	RET(r, "setxattr(%d, \"%s\", %zu)", fd, name, len);
}

ssize_t sfs_flistxattr(struct sfs_fs *fs, int fd, char *buf, size_t len)
{
	char p[32];
	ssize_t r;

	PROCFD(p, fd);
	r = listxattr(p, buf, len);
	RET(r, "listxattr(%d)", fd);
}

int sfs_fremovexattr(struct sfs_fs *fs, int fd, const char *name)
{
	char p[32];
	int r;

	PROCFD(p, fd);
	r = removexattr(p, name);
	RET(r, "removexattr(%d, \"%s\")", fd, name);
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* Whether the kernel takes AT_EMPTY_PATH on an O_PATH fd for fchmodat2
 * (Linux 6.6) and utimensat: then no proc link has to be resolved.  Cleared
 * when it is refused, by an older kernel or by a seccomp filter (which may
 * answer EPERM: that counts once the proc link did what it would not). */
static bool chmod_empty = true, utimens_empty = true;

static bool fast(bool *flag)
{
	errno = ENOSYS;
	return __atomic_load_n(flag, __ATOMIC_RELAXED);
}

/* After a fast call that returned r: whether to try the proc link. */
static bool refused(int r, int *err)
{
	*err = errno;
	return r < 0 && (errno == ENOSYS || errno == EINVAL || errno == EPERM);
}

/* After the proc link did (r == 0) or did not do what the fast call
 * refused with err: whether the refusal was the call's, not the request's. */
static void learn(int r, int err, bool *flag)
{
	if (err == ENOSYS || ((err == EINVAL || err == EPERM) && r == 0))
		__atomic_store_n(flag, false, __ATOMIC_RELAXED);
}

int sfs_fchmod(struct sfs_fs *fs, int fd, mode_t mode)
{
	char p[32];
	int r = -1, err;

	if (fast(&chmod_empty))
		r = syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH);
	if (refused(r, &err)) {
		PROCFD(p, fd);
		r = chmod(p, mode);
		learn(r, err, &chmod_empty);
	}
	RET(r, "chmod(%d, %#o)", fd, mode);
}

int sfs_fchown(int fd, uid_t uid, gid_t gid)
{
	int r = fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	RET(r, "fchown(%d, %d, %d)", fd, (int)uid, (int)gid);
}

int sfs_futimens(struct sfs_fs *fs, int fd, const struct timespec ts[2], bool symlink)
{
	char p[32];
	int nofollow = symlink ? AT_SYMLINK_NOFOLLOW : 0, r = -1, err;

	if (fast(&utimens_empty))
		r = utimensat(fd, "", ts, AT_EMPTY_PATH | nofollow);
	if (refused(r, &err)) {
		/* The proc link cannot reach a symlink itself: without
		 * following it, the call meets procfs' own link (ELOOP), and
		 * the symlink keeps the times it has. */
		PROCFD(p, fd);
		r = utimensat(AT_FDCWD, p, ts, nofollow);
		learn(r, err, &utimens_empty);
		if (r < 0 && symlink && errno == ELOOP)
			r = 0;
	}
	RET(r, "utimensat(%d)", fd);
}

int sfs_ftruncate(struct sfs_fs *fs, int fd, off_t size)
{
	char p[32];
	int r;

	PROCFD(p, fd);
	r = truncate(p, size);
	RET(r, "truncate(%d, %lld)", fd, (long long)size);
}

char *sfs_tmpname(struct sfs_fs *fs)
{
	uint64_t n = __atomic_add_fetch(&fs->tmpseq, 1, __ATOMIC_RELAXED);
	return su_asprintf("#%x.%llx", fs->pid, (unsigned long long)n);
}
