/* tests/unit/test-vol-populate: first-use copy of image content into a
 * volume -- owners, modes, times, xattrs, hard links, special files, holes
 * -- done once, never into a non-empty volume, never for nocopy, binds or
 * tmpfs. */
#include "tests/unit/tap.h"
#include "volumes/volumes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static char *base;

static char *P(const char *rel)
{
	static char bufs[8][4096];
	static int i;
	char *b = bufs[i++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", base, rel);
	return b;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror(path);
		close(fd);
	}
}

static bool devices;

/* The image content: every kind of entry with unusual attributes. */
static void make_source(void)
{
	struct timespec t[2] = {{1000000000, 0}, {1000000000, 123456789}};
	int fd;

	mkdir(P("src"), 0755);
	mkdir(P("src/dir"), 0750);
	write_file(P("src/dir/file"), "hello\n");
	link(P("src/dir/file"), P("src/hard"));
	symlink("dir/file", P("src/link"));
	mkfifo(P("src/fifo"), 0640);
	mknod(P("src/sock"), S_IFSOCK | 0600, 0);
	devices = mknod(P("src/null"), S_IFCHR | 0666, makedev(1, 3)) == 0;
	fd = open(P("src/sparse"), O_WRONLY | O_CREAT, 0600);
	if (fd >= 0) {
		if (pwrite(fd, "end", 3, 64 << 20) != 3)
			perror("pwrite");
		close(fd);
	}
	lchown(P("src/dir/file"), 1234, 5678);
	chmod(P("src/dir/file"), 04711);
	lchown(P("src/link"), 42, 43);
	chown(P("src/dir"), 100, 200);
	chown(P("src"), 7, 8);
	chmod(P("src"), 0705);
	lsetxattr(P("src/dir/file"), "user.test", "value", 5, 0);
	lsetxattr(P("src/dir"), "trusted.strata", "t", 1, 0);
	utimensat(AT_FDCWD, P("src/dir/file"), t, AT_SYMLINK_NOFOLLOW);
	utimensat(AT_FDCWD, P("src/link"), t, AT_SYMLINK_NOFOLLOW);
	utimensat(AT_FDCWD, P("src/dir"), t, AT_SYMLINK_NOFOLLOW);
}

static bool same_attrs(const char *rel)
{
	char s[4096], d[4096];
	struct stat a, b;

	snprintf(s, sizeof(s), "src/%s", rel);
	snprintf(d, sizeof(d), "dst/%s", rel);
	if (lstat(P(s), &a) < 0 || lstat(P(d), &b) < 0)
		return false;
	return a.st_mode == b.st_mode && a.st_uid == b.st_uid && a.st_gid == b.st_gid &&
	       a.st_rdev == b.st_rdev && a.st_size == b.st_size &&
	       a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

static void test_copy(void)
{
	struct su_error e = {0};
	struct stat a, b;
	char buf[64] = "";
	ssize_t n;

	mkdir(P("dst"), 0755);
	tap_is_int(vol_populate(P("src"), P("dst"), &e), 1, "populate an empty volume: copied");
	tap_ok(same_attrs("."), "root: mode, owner and times of the image directory");
	tap_ok(same_attrs("dir") && same_attrs("dir/file"),
	       "directory and file: mode 4711, owner, times");
	tap_ok(same_attrs("link"), "symlink: owner and times");
	n = readlink(P("dst/link"), buf, sizeof(buf) - 1);
	tap_ok(n == 8 && !strncmp(buf, "dir/file", 8), "symlink target");
	lstat(P("dst/dir/file"), &a);
	lstat(P("dst/hard"), &b);
	tap_ok(a.st_ino == b.st_ino && a.st_nlink == 2, "hard link kept as a hard link");
	tap_ok(same_attrs("fifo") && lstat(P("dst/fifo"), &a) == 0 && S_ISFIFO(a.st_mode), "fifo");
	tap_ok(lstat(P("dst/sock"), &a) == 0 && S_ISSOCK(a.st_mode), "socket");
	if (devices)
		tap_ok(same_attrs("null") && lstat(P("dst/null"), &a) == 0 && S_ISCHR(a.st_mode) &&
			   a.st_rdev == makedev(1, 3),
		       "character device 1:3");
	else
		tap_skip("cannot mknod here", "character device");
	n = lgetxattr(P("dst/dir/file"), "user.test", buf, sizeof(buf));
	tap_ok(n == 5 && !memcmp(buf, "value", 5), "user.* xattr kept");
	n = lgetxattr(P("dst/dir"), "trusted.strata", buf, sizeof(buf));
	tap_ok(n == 1 && buf[0] == 't', "trusted.* xattr kept (root)");
	lstat(P("dst/sparse"), &a);
	tap_ok(same_attrs("sparse") && a.st_blocks < 1024,
	       "sparse file keeps its hole (%lld blocks)", (long long)a.st_blocks);
	int fd = open(P("dst/dir/file"), O_RDONLY);
	n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	close(fd);
	tap_ok(n == 6 && !memcmp(buf, "hello\n", 6), "file content");
}

static void test_once(void)
{
	struct su_error e = {0};
	struct stat st;

	write_file(P("src/new-in-image"), "x");
	write_file(P("dst/dir/file"), "changed by the container\n");
	tap_is_int(vol_populate(P("src"), P("dst"), &e), 0, "populate again: not copied");
	tap_ok(stat(P("dst/new-in-image"), &st) < 0, "nothing new came from the image");
	tap_ok(stat(P("dst/dir/file"), &st) == 0 && st.st_size == 25,
	       "the volume's data is untouched");

	mkdir(P("full"), 0755);
	write_file(P("full/keep"), "keep");
	tap_is_int(vol_populate(P("src"), P("full"), &e), 0,
		   "a non-empty volume is not copied into");
	tap_ok(stat(P("full/dir"), &st) < 0 && stat(P("full/keep"), &st) == 0,
	       "it holds only its own content");

	mkdir(P("empty"), 0755);
	tap_is_int(vol_populate(P("no-such-path"), P("empty"), &e), 0,
		   "no content at the image path: nothing to copy");
	tap_ok(vol_populate(P("src"), P("no-such-volume"), &e) < 0, "a missing volume is an error");
}

static void test_store(void)
{
	_cleanup_free_ char *root = su_asprintf("%s/root", base);
	struct vol_create_opts o = {.name = "vol1"};
	struct vol_store *s = NULL;
	struct vol_mount m;
	struct su_error e = {0};
	struct stat st;

	vol_store_open(root, &s, &e);
	vol_create(s, &o, NULL, NULL, &e);
	o.name = "vol2";
	vol_create(s, &o, NULL, NULL, &e);

	vol_spec_parse_volume("vol1:/data:nocopy", &m, &e);
	tap_is_int(vol_mount_populate(s, &m, "vol1", P("src"), &e), 0, "nocopy: not copied");
	tap_ok(stat(P("root/volumes/vol1/_data/dir"), &st) < 0, "nocopy: the volume stays empty");
	vol_mount_clear(&m);

	vol_spec_parse_volume(P("bindsrc:/data"), &m, &e);
	tap_is_int(vol_mount_populate(s, &m, "vol1", P("src"), &e), 0, "bind: never copied");
	vol_mount_clear(&m);
	vol_spec_parse_tmpfs("/data", &m, &e);
	tap_is_int(vol_mount_populate(s, &m, "vol1", P("src"), &e), 0, "tmpfs: never copied");
	vol_mount_clear(&m);

	vol_spec_parse_mount("type=volume,src=vol2,dst=/data", &m, &e);
	tap_is_int(vol_mount_populate(s, &m, "vol2", P("src"), &e), 1,
		   "a store volume is populated");
	tap_ok(stat(P("root/volumes/vol2/_data/dir/file"), &st) == 0 && st.st_uid == 1234,
	       "its _data holds the image content with owners");
	tap_is_int(vol_mount_populate(s, &m, "vol2", P("src"), &e), 0, "and only once");
	vol_mount_clear(&m);
	tap_ok(vol_store_populate(s, "nope", P("src"), &e) < 0 && e.errnum == ENOENT,
	       "populating a missing store volume fails");
	vol_store_close(s);
}

int main(void)
{
	char tmpl[] = "/tmp/test-vol-populate.XXXXXX";

	if (getuid() != 0) {
		printf("1..0 # SKIP needs root (owners, devices, trusted xattrs)\n");
		return 77;
	}
	if (!(base = mkdtemp(tmpl)))
		return 1;
	make_source();
	test_copy();
	test_once();
	test_store();
	su_rm_rf_at(AT_FDCWD, base);
	return tap_done();
}
