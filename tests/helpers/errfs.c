/* tests/helpers/errfs.c: a read-only passthrough FUSE filesystem over a source
 * directory that returns EIO on request, so tests can put a failing disk
 * under a strata-fs layer without device-mapper's error target.
 *   errfs [-f] [-o ctl=FILE] SOURCE MOUNTPOINT [FUSE options]
 * The injection mode is the first word of FILE, read again at every
 * operation, so a test switches it at run time with `echo all >FILE`:
 *   names   (also a missing or empty FILE) reads of a file whose name starts
 *           with "eio-" fail with EIO (its lookup, getattr and open work);
 *           a file whose name starts with "eiotail-" reads its first 64 KiB
 *           and fails with EIO beyond (a read across the mark comes back
 *           short, as from a disk); listing a directory whose name starts
 *           with "eiodir-" fails with EIO
 *   all     every operation fails with EIO (releasing a handle excepted)
 *   off     nothing fails: the layer is healed
 * Nothing is cached by the kernel (entry and attribute timeouts 0, direct
 * I/O), so every access reaches errfs and a mode change takes effect at once.
 * Opening for writing fails with EROFS; write operations are not provided. */
#define FUSE_USE_VERSION 312

#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

enum mode { MODE_NAMES, MODE_ALL, MODE_OFF };

#define TAIL_MARK (64 * 1024) /* where eiotail- files stop reading */

struct errfs {
	char *ctl;    /* control file, or NULL: always MODE_NAMES */
	char *source; /* absolute path of the source directory */
};

static struct errfs *errfs(void)
{
	return fuse_get_context()->private_data;
}

static enum mode mode(void)
{
	char word[16] = "";
	ssize_t n;
	int fd;

	if (!errfs()->ctl)
		return MODE_NAMES;
	fd = open(errfs()->ctl, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return MODE_NAMES;
	n = read(fd, word, sizeof(word) - 1);
	close(fd);
	if (n <= 0)
		return MODE_NAMES;
	if (!strncmp(word, "all", 3))
		return MODE_ALL;
	if (!strncmp(word, "off", 3))
		return MODE_OFF;
	return MODE_NAMES;
}

/* True when the operation on path is to fail: every one in MODE_ALL, those
 * on names starting with prefix (if given) in MODE_NAMES. */
static bool inject(const char *path, const char *prefix)
{
	const char *base = strrchr(path, '/');

	switch (mode()) {
	case MODE_ALL:
		return true;
	case MODE_OFF:
		return false;
	case MODE_NAMES:
		break;
	}
	return prefix && su_str_has_prefix(base ? base + 1 : path, prefix);
}

/* The source path of a path in the mount, in buf (PATH_MAX). */
static int src(const char *path, char *buf)
{
	int n = snprintf(buf, PATH_MAX, "%s%s", errfs()->source, path);

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int errfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	int r = src(path, p);

	if (inject(path, NULL))
		return -EIO;
	if (r < 0)
		return r;
	return lstat(p, st) < 0 ? -errno : 0;
}

static int errfs_readlink(const char *path, char *buf, size_t size)
{
	char p[PATH_MAX];
	int r = src(path, p);
	ssize_t n;

	if (inject(path, NULL))
		return -EIO;
	if (r < 0)
		return r;
	n = readlink(p, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int errfs_open(const char *path, struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	int r = src(path, p), fd;

	if (inject(path, NULL))
		return -EIO;
	if (r < 0)
		return r;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	fi->fh = fd;
	return 0;
}

static int errfs_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	ssize_t n;

	if (inject(path, "eio-"))
		return -EIO;
	if (inject(path, "eiotail-")) {
		if (off >= TAIL_MARK)
			return -EIO;
		if (size > (size_t)(TAIL_MARK - off))
			size = TAIL_MARK - off;
	}
	n = pread(fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int errfs_release(const char *path, struct fuse_file_info *fi)
{
	close(fi->fh);
	return 0;
}

static int errfs_statfs(const char *path, struct statvfs *sv)
{
	char p[PATH_MAX];
	int r = src(path, p);

	if (inject(path, NULL))
		return -EIO;
	if (r < 0)
		return r;
	return statvfs(p, sv) < 0 ? -errno : 0;
}

static int errfs_getxattr(const char *path, const char *name, char *value, size_t size)
{
	char p[PATH_MAX];
	int r = src(path, p);
	ssize_t n;

	if (inject(path, NULL))
		return -EIO;
	if (r < 0)
		return r;
	n = lgetxattr(p, name, value, size);
	return n < 0 ? -errno : (int)n;
}

static int errfs_listxattr(const char *path, char *list, size_t size)
{
	char p[PATH_MAX];
	int r = src(path, p);
	ssize_t n;

	if (inject(path, NULL))
		return -EIO;
	if (r < 0)
		return r;
	n = llistxattr(p, list, size);
	return n < 0 ? -errno : (int)n;
}

static int errfs_opendir(const char *path, struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	struct stat st;
	int r = src(path, p);

	if (inject(path, NULL))
		return -EIO;
	if (r < 0)
		return r;
	if (lstat(p, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* The whole listing in one call (offsets 0): libfuse keeps it for the
 * handle and serves the later getdents calls from it. */
static int errfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
			 struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	_cleanup_closedir_ DIR *d = NULL;
	char p[PATH_MAX];
	struct dirent *de;
	int r = src(path, p);

	if (inject(path, "eiodir-"))
		return -EIO;
	if (r < 0)
		return r;
	d = opendir(p);
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		struct stat st = {.st_ino = de->d_ino, .st_mode = DTTOIF(de->d_type)};

		if (fill(buf, de->d_name, &st, 0, 0))
			break;
	}
	return errno ? -errno : 0;
}

static void *errfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 1;
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	return errfs();
}

static const struct fuse_operations errfs_ops = {
    .init = errfs_init,
    .getattr = errfs_getattr,
    .readlink = errfs_readlink,
    .open = errfs_open,
    .read = errfs_read,
    .release = errfs_release,
    .statfs = errfs_statfs,
    .getxattr = errfs_getxattr,
    .listxattr = errfs_listxattr,
    .opendir = errfs_opendir,
    .readdir = errfs_readdir,
};

static const struct fuse_opt errfs_opts[] = {
    {"ctl=%s", offsetof(struct errfs, ctl), 0},
    FUSE_OPT_END,
};

/* Takes the first argument that is not an option as the source. */
static int take_source(void *data, const char *arg, int key, struct fuse_args *args)
{
	struct errfs *e = data;

	if (key != FUSE_OPT_KEY_NONOPT || e->source)
		return 1;
	e->source = realpath(arg, NULL);
	if (!e->source) {
		fprintf(stderr, "errfs: %s: %s\n", arg, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct errfs e = {0};
	int r;

	if (fuse_opt_parse(&args, &e, errfs_opts, take_source) < 0)
		return 1;
	if (!e.source) {
		fprintf(stderr, "usage: errfs [-f] [-o ctl=FILE] SOURCE MOUNTPOINT\n");
		return 1;
	}
	if (e.ctl && e.ctl[0] != '/') {
		fprintf(stderr, "errfs: ctl=%s: the control file needs an absolute path\n", e.ctl);
		return 1;
	}
	r = fuse_main(args.argc, args.argv, &errfs_ops, &e);
	fuse_opt_free_args(&args);
	free(e.source);
	free(e.ctl);
	return r;
}
