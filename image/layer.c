/* image/layer: one layer blob into layers/sha256/<diffid>/ -- decompress
 * while checking both digests, then a safe extraction that never follows a
 * symlink of the layer, converting OCI whiteouts to the overlayfs format;
 * the layer appears by rename only once complete. */
#include "image/store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

#include "volumes/volumes.h"

#define BUF_SIZE (256 << 10)

/* ---- pass 1: decompress to an uncompressed tar, hashing both sides ---- */

struct blob_reader {
	int fd;
	EVP_MD_CTX *ctx;
	char buf[BUF_SIZE];
};

static la_ssize_t blob_read(struct archive *a, void *data, const void **out)
{
	struct blob_reader *br = data;
	ssize_t n;

	do
		n = read(br->fd, br->buf, sizeof(br->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		archive_set_error(a, errno, "read");
		return -1;
	}
	EVP_DigestUpdate(br->ctx, br->buf, n);
	*out = br->buf;
	return n;
}

static void progress(struct img_progress *p, uint64_t add, bool done)
{
	time_t now;

	if (!p)
		return;
	p->bytes += add;
	if (!p->show)
		return;
	now = time(NULL);
	if (!done && now == p->last)
		return;
	p->last = now;
	fprintf(stderr, "\rlayer %zu/%zu: %.1f MB%s", p->layer, p->nlayers, (double)p->bytes / 1e6,
		done ? "\n" : "");
}

/* Writes the decompressed blob to outfd; fills blob_hex and diff_hex. */
static int decompress(int blobfd, int outfd, char blob_hex[65], char diff_hex[65],
		      struct img_progress *p, struct su_error *e)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	struct blob_reader *br = calloc(1, sizeof(*br));
	EVP_MD_CTX *dctx = EVP_MD_CTX_new();
	int r = -1;

	if (!a || !br || !dctx) {
		su_error_set(e, ENOMEM, "decompress");
		goto out;
	}
	br->fd = blobfd;
	br->ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(br->ctx, EVP_sha256(), NULL);
	EVP_DigestInit_ex(dctx, EVP_sha256(), NULL);
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open(a, br, NULL, blob_read, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(a, &ent) != ARCHIVE_OK) {
		su_error_set(e, 0, "%s", archive_error_string(a));
		goto out;
	}
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		ssize_t w;
		int ar = archive_read_data_block(a, &buf, &size, &off);

		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			su_error_set(e, 0, "%s", archive_error_string(a));
			goto out;
		}
		EVP_DigestUpdate(dctx, buf, size);
		if ((w = su_write_all(outfd, buf, size)) < 0) {
			su_error_set(e, (int)-w, "write uncompressed layer");
			goto out;
		}
		progress(p, size, false);
	}
	/* What the decompressor did not need still counts for the digest. */
	for (;;) {
		const void *dummy;
		la_ssize_t n = blob_read(a, br, &dummy);
		if (n <= 0)
			break;
	}
	img_sha256_final(br->ctx, blob_hex);
	br->ctx = NULL;
	img_sha256_final(dctx, diff_hex);
	dctx = NULL;
	r = 0;
out:
	if (br && br->ctx)
		EVP_MD_CTX_free(br->ctx);
	if (dctx)
		EVP_MD_CTX_free(dctx);
	free(br);
	if (a)
		archive_read_free(a);
	return r;
}

/* ---- pass 2: safe extraction ---- */

struct dir_time {
	char *path;
	struct timespec ts[2];
};

struct extract {
	int rootfd;
	bool root;	    /* real root: trusted.* xattrs, chown must work */
	const char *opaque; /* opaque xattr name */
	struct dir_time *dirs;
	size_t ndirs;
	const char *entry; /* for messages */
};

static bool real_root(void)
{
	_cleanup_free_ char *map = NULL;
	unsigned long inner, outer, count;

	if (geteuid() != 0)
		return false;
	if (su_read_file(AT_FDCWD, "/proc/self/uid_map", &map, NULL, 1 << 16) < 0)
		return true;
	return sscanf(map, "%lu %lu %lu", &inner, &outer, &count) == 3 && inner == 0 &&
	       outer == 0 && count == 4294967295UL;
}

/* Cleans a tar path in place: strips "./" and trailing '/', refuses
 * absolute paths and "..".  Returns "" for the layer root. */
static int clean_path(char *p, const char *what, struct su_error *e)
{
	char *out = p, *s = p;

	if (p[0] == '/')
		return su_error_set(e, 0, "%s%sabsolute path", what, *what ? ": " : "");
	while (*s) {
		char *end = strchr(s, '/');
		size_t n = end ? (size_t)(end - s) : strlen(s);

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return su_error_set(e, 0, "%s%spath leaves the layer", what,
					    *what ? ": " : "");
		if (n && !(n == 1 && s[0] == '.')) {
			if (out != p)
				*out++ = '/';
			memmove(out, s, n);
			out += n;
		}
		s += n;
		while (*s == '/')
			s++;
	}
	*out = '\0';
	return 0;
}

/* Opens the parent directory of path below rootfd one component at a time
 * with O_NOFOLLOW, creating missing directories; *leaf points into path. */
static int open_parent(struct extract *x, char *path, const char **leaf, bool create,
		       struct su_error *e)
{
	int fd = dup(x->rootfd);
	char *s = path, *slash;

	if (fd < 0)
		return su_error_set(e, errno, "dup");
	while ((slash = strchr(s, '/'))) {
		int nfd;

		*slash = '\0';
		nfd = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, s, 0755) < 0 && errno != EEXIST) {
				su_error_set(e, errno, "mkdir \"%s\"", path);
				goto fail;
			}
			nfd = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (nfd < 0) {
			struct stat st;
			if (fstatat(fd, s, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				su_error_set(e, 0, "path goes through the symlink \"%s\"", path);
			else
				su_error_set(e, errno, "open \"%s\"", path);
			goto fail;
		}
		close(fd);
		fd = nfd;
		*slash = '/';
		s = slash + 1;
	}
	*leaf = s;
	return fd;
fail:
	if (slash)
		*slash = '/';
	close(fd);
	return -1;
}

/* A relative symlink target may not climb above the layer root. */
static bool symlink_escapes(const char *path, const char *target)
{
	long depth = 0;
	const char *s;

	if (target[0] == '/')
		return false; /* resolved against the container's root */
	for (s = path; (s = strchr(s, '/')); s++)
		depth++;
	for (s = target; *s;) {
		size_t n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.')
			depth--;
		else if (n && !(n == 1 && s[0] == '.'))
			depth++;
		if (depth < 0)
			return true;
		s += n;
		while (*s == '/')
			s++;
	}
	return false;
}

static bool ignorable(struct extract *x, int err)
{
	return !x->root && (err == EPERM || err == EINVAL || err == ENOTSUP || err == EACCES);
}

static int set_xattrs(struct extract *x, struct archive_entry *ent, int fd, int dirfd,
		      const char *leaf, struct su_error *e)
{
	const char *name;
	const void *val;
	size_t size;
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/", dirfd);
	archive_entry_xattr_reset(ent);
	while (archive_entry_xattr_next(ent, &name, &val, &size) == ARCHIVE_OK) {
		_cleanup_free_ char *p = NULL;
		int r;

		if (su_str_has_prefix(name, "trusted.overlay.") ||
		    su_str_has_prefix(name, "user.overlay."))
			continue; /* a layer does not get to set overlay metadata */
		if (fd >= 0) {
			r = fsetxattr(fd, name, val, size, 0);
		} else {
			p = su_asprintf("%s%s", proc, leaf);
			r = lsetxattr(p, name, val, size, 0);
		}
		if (r < 0 && !(ignorable(x, errno) || (errno == EPERM && fd < 0)))
			return su_error_set(e, errno, "set xattr %s", name);
	}
	return 0;
}

static int set_owner_mode(struct extract *x, struct archive_entry *ent, int fd, int dirfd,
			  const char *leaf, bool link, struct su_error *e)
{
	uid_t uid = archive_entry_uid(ent);
	gid_t gid = archive_entry_gid(ent);
	mode_t mode = archive_entry_perm(ent) & 07777;
	int r;

	r = fd >= 0 ? fchown(fd, uid, gid) : fchownat(dirfd, leaf, uid, gid, AT_SYMLINK_NOFOLLOW);
	if (r < 0 && !ignorable(x, errno))
		return su_error_set(e, errno, "chown");
	if (link)
		return 0;
	r = fd >= 0 ? fchmod(fd, mode) : fchmodat(dirfd, leaf, mode, 0);
	if (r < 0)
		return su_error_set(e, errno, "chmod");
	return 0;
}

static void entry_times(struct archive_entry *ent, struct timespec ts[2])
{
	ts[0].tv_sec = archive_entry_atime(ent);
	ts[0].tv_nsec = archive_entry_atime_nsec(ent);
	if (!archive_entry_atime_is_set(ent)) {
		ts[0].tv_sec = archive_entry_mtime(ent);
		ts[0].tv_nsec = archive_entry_mtime_nsec(ent);
	}
	ts[1].tv_sec = archive_entry_mtime(ent);
	ts[1].tv_nsec = archive_entry_mtime_nsec(ent);
}

static int write_data(struct archive *a, int fd, la_int64_t size, struct su_error *e)
{
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		int ar = archive_read_data_block(a, &buf, &n, &off);

		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK)
			return su_error_set(e, 0, "%s", archive_error_string(a));
		for (size_t done = 0; done < n;) {
			ssize_t w = pwrite(fd, (const char *)buf + done, n - done, off + done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return su_error_set(e, errno, "write");
			done += w;
		}
	}
	if (ftruncate(fd, size) < 0)
		return su_error_set(e, errno, "write");
	return 0;
}

static int whiteout(struct extract *x, int dirfd, const char *leaf, struct su_error *e)
{
	const char *name = leaf + 4;

	if (!strcmp(leaf, ".wh..wh..opq")) {
		if (fsetxattr(dirfd, x->opaque, "y", 1, 0) < 0)
			return su_error_set(e, errno, "set %s", x->opaque);
		return 0;
	}
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || su_str_has_prefix(name, ".wh."))
		return su_error_set(e, 0, "invalid whiteout");
	su_rm_rf_at(dirfd, name);
	if (mknodat(dirfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return su_error_set(e, errno, "create whiteout");
	return 0;
}

static int hardlink(struct extract *x, struct archive_entry *ent, int dirfd, const char *leaf,
		    struct su_error *e)
{
	_cleanup_free_ char *target = strdup(archive_entry_hardlink(ent));
	_cleanup_close_ int tfd = -1;
	const char *tleaf;

	if (!target)
		return su_error_set(e, ENOMEM, "hard link");
	if (clean_path(target, "hard link target", e) < 0)
		return -1;
	if (!*target)
		return su_error_set(e, 0, "hard link to the layer root");
	if ((tfd = open_parent(x, target, &tleaf, false, e)) < 0)
		return su_error_wrap(e, "hard link target \"%s\"", archive_entry_hardlink(ent));
	if (linkat(tfd, tleaf, dirfd, leaf, 0) < 0)
		return su_error_set(e, errno, "hard link to \"%s\"", archive_entry_hardlink(ent));
	return 0;
}

static int add_dir_time(struct extract *x, const char *path, struct archive_entry *ent)
{
	struct dir_time *n = realloc(x->dirs, (x->ndirs + 1) * sizeof(*n));

	if (!n)
		return -1;
	x->dirs = n;
	n[x->ndirs].path = strdup(path);
	entry_times(ent, n[x->ndirs].ts);
	return n[x->ndirs++].path ? 0 : -1;
}

static int make_dir(struct extract *x, struct archive_entry *ent, int dirfd, const char *leaf,
		    const char *path, struct su_error *e)
{
	_cleanup_close_ int fd = -1;

	if (*leaf) {
		if (mkdirat(dirfd, leaf, 0700) < 0 && errno != EEXIST)
			return su_error_set(e, errno, "mkdir");
		fd = openat(dirfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	} else {
		fd = dup(x->rootfd);
	}
	if (fd < 0)
		return su_error_set(e, errno, "open directory");
	if (set_owner_mode(x, ent, fd, dirfd, leaf, false, e) < 0 ||
	    set_xattrs(x, ent, fd, dirfd, leaf, e) < 0)
		return -1;
	if (add_dir_time(x, path, ent) < 0)
		return su_error_set(e, ENOMEM, "mkdir");
	return 0;
}

static int make_file(struct extract *x, struct archive *a, struct archive_entry *ent, int dirfd,
		     const char *leaf, struct su_error *e)
{
	_cleanup_close_ int fd =
	    openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	struct timespec ts[2];

	if (fd < 0)
		return su_error_set(e, errno, "create");
	if (write_data(a, fd, archive_entry_size(ent), e) < 0 ||
	    set_owner_mode(x, ent, fd, dirfd, leaf, false, e) < 0 ||
	    set_xattrs(x, ent, fd, dirfd, leaf, e) < 0)
		return -1;
	entry_times(ent, ts);
	futimens(fd, ts);
	return 0;
}

static int make_other(struct extract *x, struct archive_entry *ent, int dirfd, const char *leaf,
		      const char *path, struct su_error *e)
{
	mode_t type = archive_entry_filetype(ent);
	struct timespec ts[2];
	bool link = type == AE_IFLNK;

	if (link) {
		const char *target = archive_entry_symlink(ent);
		if (!target || !*target)
			return su_error_set(e, 0, "symlink without a target");
		if (symlink_escapes(path, target))
			return su_error_set(e, 0, "symlink target \"%s\" leaves the layer", target);
		if (symlinkat(target, dirfd, leaf) < 0)
			return su_error_set(e, errno, "symlink");
	} else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO) {
		dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(ent);
		if (mknodat(dirfd, leaf, type | 0600, dev) < 0) {
			if (errno == EPERM && type != AE_IFIFO)
				return su_error_set(e, 0,
						    "device node: creating devices needs root");
			return su_error_set(e, errno, "mknod");
		}
	} else {
		return su_error_set(e, 0, "unsupported file type %o", (unsigned)type);
	}
	if (set_owner_mode(x, ent, -1, dirfd, leaf, link, e) < 0 ||
	    set_xattrs(x, ent, -1, dirfd, leaf, e) < 0)
		return -1;
	entry_times(ent, ts);
	utimensat(dirfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int extract_entry(struct extract *x, struct archive *a, struct archive_entry *ent,
			 struct su_error *e)
{
	_cleanup_free_ char *path = strdup(archive_entry_pathname(ent) ?: "");
	_cleanup_close_ int dirfd = -1;
	mode_t type = archive_entry_filetype(ent);
	const char *leaf;
	struct stat st;

	if (!path)
		return su_error_set(e, ENOMEM, "entry");
	if (clean_path(path, "", e) < 0)
		return -1;
	if (!*path) {
		if (type != AE_IFDIR)
			return su_error_set(e, 0, "the layer root is not a directory");
		return make_dir(x, ent, x->rootfd, "", "", e);
	}
	if ((dirfd = open_parent(x, path, &leaf, true, e)) < 0)
		return -1;
	if (su_str_has_prefix(leaf, ".wh."))
		return whiteout(x, dirfd, leaf, e);
	if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode) && type == AE_IFDIR && !archive_entry_hardlink(ent))
			return make_dir(x, ent, dirfd, leaf, path, e);
		if (su_rm_rf_at(dirfd, leaf) < 0)
			return su_error_set(e, errno, "replace");
	}
	if (archive_entry_hardlink(ent))
		return hardlink(x, ent, dirfd, leaf, e);
	if (type == AE_IFDIR)
		return make_dir(x, ent, dirfd, leaf, path, e);
	if (type == AE_IFREG)
		return make_file(x, a, ent, dirfd, leaf, e);
	if (type == AE_IFSOCK)
		return 0;
	return make_other(x, ent, dirfd, leaf, path, e);
}

/* Directory times last, deepest first, since creating entries changes them. */
static void fix_dir_times(struct extract *x)
{
	for (size_t i = x->ndirs; i-- > 0;) {
		struct su_error ignore;
		const char *leaf;
		int fd;

		if (!*x->dirs[i].path) {
			futimens(x->rootfd, x->dirs[i].ts);
			continue;
		}
		fd = open_parent(x, x->dirs[i].path, &leaf, false, &ignore);
		if (fd >= 0) {
			utimensat(fd, leaf, x->dirs[i].ts, AT_SYMLINK_NOFOLLOW);
			close(fd);
		}
	}
}

int img_extract(int tarfd, int rootfd, bool filters, struct su_error *e)
{
	struct extract x = {.rootfd = rootfd};
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	int r = -1, ar;

	x.root = real_root();
	x.opaque = x.root ? "trusted.overlay.opaque" : "user.overlay.opaque";
	if (!a)
		return su_error_set(e, ENOMEM, "extract");
	if (filters)
		archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_fd(a, tarfd, BUF_SIZE) != ARCHIVE_OK) {
		su_error_set(e, 0, "%s", archive_error_string(a));
		goto out;
	}
	while ((ar = archive_read_next_header(a, &ent)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		if (extract_entry(&x, a, ent, e) < 0) {
			su_error_wrap(e, "entry \"%s\"", archive_entry_pathname(ent));
			goto out;
		}
	}
	if (ar != ARCHIVE_EOF) {
		su_error_set(e, 0, "%s", archive_error_string(a));
		goto out;
	}
	fix_dir_times(&x);
	r = 0;
out:
	for (size_t i = 0; i < x.ndirs; i++)
		free(x.dirs[i].path);
	free(x.dirs);
	archive_read_free(a);
	return r;
}

/* ---- the whole layer ---- */

static bool layer_present(struct img_store *s, const char *diff)
{
	char tar[80];

	snprintf(tar, sizeof(tar), "%s.tar", diff);
	return faccessat(s->layersfd, diff, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
	       faccessat(s->tarsfd, tar, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int unpack_tar(struct img_store *s, int tarfd, const char *diff, struct su_error *e)
{
	char stage[64], tarname[80];
	_cleanup_close_ int rootfd = -1;
	int r;

	if ((r = img_tmp_name(stage, ".tmp-")) < 0)
		return su_error_set(e, -r, "random name");
	if (mkdirat(s->layersfd, stage, 0755) < 0)
		return su_error_set(e, errno, "mkdir %s/%s", s->layers, stage);
	rootfd = openat(s->layersfd, stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		su_error_set(e, errno, "open %s/%s", s->layers, stage);
		goto fail;
	}
	if (lseek(tarfd, 0, SEEK_SET) < 0 || img_extract(tarfd, rootfd, false, e) < 0)
		goto fail;
	if (syncfs(rootfd) < 0) {
		su_error_set(e, errno, "sync layer");
		goto fail;
	}
	snprintf(tarname, sizeof(tarname), "%s.tar", diff);
	if (renameat(s->layersfd, stage, s->layersfd, diff) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY) {
			su_error_set(e, errno, "rename layer into place");
			goto fail;
		}
		/* A writer killed before keeping the tar left a whole layer. */
		su_rm_rf_at(s->layersfd, stage);
	}
	fsync(s->layersfd);
	return 0;
fail:
	su_rm_rf_at(s->layersfd, stage);
	return -1;
}

int img_layer_unpack(struct img_store *s, int blobfd, const char *want_blob, const char *want_diff,
		     char diff_out[65], bool *reused, struct img_progress *p, struct su_error *e)
{
	char tmp[64], tarname[80], blob_hex[65], diff_hex[65];
	_cleanup_close_ int tarfd = -1;
	int r;

	*reused = false;
	if (want_diff && layer_present(s, want_diff)) {
		memcpy(diff_out, want_diff, 65);
		*reused = true;
		return 0;
	}
	if ((r = img_tmp_name(tmp, ".tmp-")) < 0)
		return su_error_set(e, -r, "random name");
	tarfd = openat(s->tarsfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (tarfd < 0)
		return su_error_set(e, errno, "create %s/%s", s->tars, tmp);
	if (decompress(blobfd, tarfd, blob_hex, diff_hex, p, e) < 0)
		goto fail;
	progress(p, 0, true);
	if (want_blob && strcmp(want_blob, blob_hex)) {
		su_error_set(e, 0, "blob digest mismatch: got sha256:%s", blob_hex);
		goto fail;
	}
	if (want_diff && strcmp(want_diff, diff_hex)) {
		su_error_set(e, 0, "diff_id mismatch: the uncompressed layer is sha256:%s",
			     diff_hex);
		goto fail;
	}
	memcpy(diff_out, diff_hex, 65);
	if (layer_present(s, diff_hex)) {
		*reused = true;
		unlinkat(s->tarsfd, tmp, 0);
		return 0;
	}
	if (unpack_tar(s, tarfd, diff_hex, e) < 0)
		goto fail;
	snprintf(tarname, sizeof(tarname), "%s.tar", diff_hex);
	if (fsync(tarfd) < 0 || renameat(s->tarsfd, tmp, s->tarsfd, tarname) < 0) {
		su_error_set(e, errno, "keep layer tar");
		su_rm_rf_at(s->layersfd, diff_hex);
		goto fail;
	}
	return 0;
fail:
	unlinkat(s->tarsfd, tmp, 0);
	return -1;
}

uint64_t img_layer_size(struct img_store *s, const char *diffid)
{
	return vol_tree_size(s->layersfd, diffid);
}
