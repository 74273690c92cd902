/* launcher/rootfs: the container's mounts over the union, in its own mount
 * namespace -- /proc, /dev, /sys, the volume/bind/tmpfs mounts in depth
 * order, the container's /etc/hosts, /etc/hostname and /etc/resolv.conf,
 * Docker's masked and read-only paths -- then pivot_root.  Every
 * target is resolved inside the rootfs (openat2 RESOLVE_IN_ROOT) and
 * mounted through /proc/self/fd/N, so no symlink of the image can make a
 * mount land outside the container. */
#include "launcher/launcher.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

/* mount_setattr(2) (Linux 5.12), for headers older than it. */
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#endif

/* struct mount_attr of the first version (MOUNT_ATTR_SIZE_VER0). */
struct lch_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* Docker's default masked and read-only paths (moby oci/defaults.go). */
static const char *const masked_paths[] = {
    "/proc/asound",	 "/proc/acpi",		"/proc/interrupts", "/proc/kcore",
    "/proc/keys",	 "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi",		"/sys/firmware",    "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};
static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};

static int openat2_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (unsigned long long)(flags | O_PATH | O_CLOEXEC),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	const char *rel = path;

	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
}

int lch_resolve_in_root(int rootfd, const char *path, int flags)
{
	return openat2_in_root(rootfd, path, flags);
}

int lch_open_in_root(int rootfd, const char *path, bool file, struct su_error *e)
{
	_cleanup_free_ char *p = strdup(path);
	char *s, *slash;
	int fd;

	if (!p)
		return su_error_set(e, ENOMEM, "%s", path);
	fd = openat2_in_root(rootfd, p, 0);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : su_error_set(e, errno, "open %s in the container", path);
	/* Create what is missing, one component at a time, each made in the
	 * directory its parent resolved to (inside the root). */
	for (s = p; *s == '/'; s++)
		;
	while (s && *s) {
		_cleanup_close_ int parent = -1;
		bool last;
		char *name;

		slash = strchr(s, '/');
		last = !slash;
		if (slash)
			*slash = 0;
		fd = openat2_in_root(rootfd, p, 0);
		if (fd >= 0 || errno != ENOENT) {
			if (fd < 0)
				return su_error_set(e, errno, "open %s in the container", p);
			close(fd);
			goto next;
		}
		name = strrchr(p, '/');
		if (name && name != p) {
			*name = 0;
			parent = openat2_in_root(rootfd, p, O_DIRECTORY);
			*name = '/';
			name++;
		} else {
			parent = openat2_in_root(rootfd, "/", O_DIRECTORY);
			name = name ? name + 1 : p;
		}
		if (parent < 0)
			return su_error_set(e, errno, "open the parent of %s in the container", p);
		if (last && file) {
			fd = openat(parent, name,
				    O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (fd >= 0)
				close(fd);
		} else {
			fd = mkdirat(parent, name, 0755);
		}
		/* EEXIST here: a symlink that leads nowhere inside the root. */
		if (fd < 0 && errno == EEXIST)
			return su_error_set(e, ELOOP,
					    "%s: %s is a symlink that leads outside the container "
					    "or nowhere",
					    path, p);
		if (fd < 0)
			return su_error_set(e, errno, "create %s in the container", p);
	next:
		if (slash)
			*slash = '/';
		s = slash ? slash + 1 : NULL;
	}
	fd = openat2_in_root(rootfd, path, 0);
	if (fd < 0)
		return su_error_set(e, errno, "open %s in the container", path);
	return fd;
}

static unsigned long locked_flags(const char *path)
{
	static const struct {
		unsigned long st, ms;
	} map[] = {
	    {ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},	      {ST_NOEXEC, MS_NOEXEC},
	    {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
	};
	struct statvfs sv;
	unsigned long f = 0;

	if (statvfs(path, &sv) < 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (sv.f_flag & map[i].st)
			f |= map[i].ms;
	return f;
}

int lch_remount_ro(const char *path, struct su_error *e)
{
	unsigned long f = MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(path);

	if (mount(NULL, path, NULL, f, NULL) < 0)
		return su_error_set(e, errno, "remount %s read-only", path);
	return 0;
}

static char *fd_path(int fd)
{
	return su_asprintf("/proc/self/fd/%d", fd);
}

/* Makes the mount whose root mfd is read-only together with every mount
 * below it, as Docker 25 does for read-only binds: a submount of a bind's
 * source must not stay writable.  Kernels before 5.12 lack mount_setattr;
 * there only the mount itself turns read-only, as with older Docker. */
static int make_ro(int mfd, const char *target, struct su_error *e)
{
	struct lch_mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	_cleanup_free_ char *mp = NULL;

	if (syscall(SYS_mount_setattr, mfd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
		    sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return su_error_set(e, errno, "make %s read-only", target);
	mp = fd_path(mfd);
	if (!mp)
		return su_error_set(e, ENOMEM, "make %s read-only", target);
	return lch_remount_ro(mp, e);
}

/* Mounts (mount(2) arguments) at target inside the root; read-only after. */
static int mount_in_root(int rootfd, const char *target, bool file, const char *src,
			 const char *fstype, unsigned long flags, const char *data, bool ro,
			 struct su_error *e)
{
	_cleanup_close_ int fd = lch_open_in_root(rootfd, target, file, e);
	_cleanup_close_ int mfd = -1;
	_cleanup_free_ char *p = NULL;

	if (fd < 0)
		return su_error_wrap(e, "mount %s", target);
	p = fd_path(fd);
	if (!p || mount(src, p, fstype, flags, data) < 0)
		return su_error_set(e, errno, "mount %s on %s", src ? src : fstype, target);
	if (!ro)
		return 0;
	/* The fd still names the covered directory; reopen the new mount. */
	mfd = openat2_in_root(rootfd, target, 0);
	if (mfd < 0)
		return su_error_set(e, errno, "reopen %s", target);
	if (make_ro(mfd, target, e) < 0)
		return su_error_wrap(e, "mount %s", target);
	return 0;
}

/* ---- /proc, /dev, /sys ---- */

static int mount_proc(int rootfd, struct su_error *e)
{
	if (mount_in_root(rootfd, "/proc", false, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL, false, e) == 0)
		return 0;
	/* A user namespace without its own... procfs mounts can be refused
	 * (a host /proc with covered parts): bind the host's instead. */
	su_error_clear(e);
	return mount_in_root(rootfd, "/proc", false, "/proc", NULL, MS_BIND | MS_REC, NULL, false,
			     e);
}

static int mount_sys(int rootfd, bool have_netns, struct su_error *e)
{
	if (have_netns &&
	    mount_in_root(rootfd, "/sys", false, "sysfs", "sysfs",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL, false, e) == 0)
		return 0;
	su_error_clear(e);
	if (mount_in_root(rootfd, "/sys", false, "sysfs", "sysfs",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL, false, e) == 0)
		return 0;
	/* sysfs needs the network namespace's owner: bind the host's. */
	su_error_clear(e);
	return mount_in_root(rootfd, "/sys", false, "/sys", NULL, MS_BIND | MS_REC, NULL, true, e);
}

static int dev_symlink(int devfd, const char *target, const char *name, struct su_error *e)
{
	if (symlinkat(target, devfd, name) < 0 && errno != EEXIST)
		return su_error_set(e, errno, "symlink /dev/%s", name);
	return 0;
}

static int mount_dev(int rootfd, struct su_error *e)
{
	_cleanup_close_ int devfd = -1;
	char target[64];

	if (mount_in_root(rootfd, "/dev", false, "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
			  "mode=755,size=65536k", false, e) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(devices); i++) {
		char src[32];

		snprintf(src, sizeof(src), "/dev/%s", devices[i]);
		snprintf(target, sizeof(target), "/dev/%s", devices[i]);
		if (mount_in_root(rootfd, target, true, src, NULL, MS_BIND, NULL, false, e) < 0)
			return -1;
	}
	if (mount_in_root(rootfd, "/dev/pts", false, "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
			  "newinstance,ptmxmode=0666,mode=0620", false, e) < 0)
		return -1;
	if (mount_in_root(rootfd, "/dev/shm", false, "shm", "tmpfs",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", false, e) < 0)
		return -1;
	/* mqueue needs the IPC namespace's owner; without it /dev/mqueue is
	 * merely absent. */
	if (mount_in_root(rootfd, "/dev/mqueue", false, "mqueue", "mqueue",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, false, e) < 0)
		su_error_clear(e);
	devfd = openat2_in_root(rootfd, "/dev", O_DIRECTORY);
	if (devfd < 0)
		return su_error_set(e, errno, "open /dev");
	if (dev_symlink(devfd, "/proc/self/fd", "fd", e) < 0 ||
	    dev_symlink(devfd, "/proc/self/fd/0", "stdin", e) < 0 ||
	    dev_symlink(devfd, "/proc/self/fd/1", "stdout", e) < 0 ||
	    dev_symlink(devfd, "/proc/self/fd/2", "stderr", e) < 0 ||
	    dev_symlink(devfd, "pts/ptmx", "ptmx", e) < 0 ||
	    dev_symlink(devfd, "/proc/kcore", "core", e) < 0)
		return -1;
	return 0;
}

/* Masked: an empty read-only tmpfs over a directory, /dev/null over a file.
 * Read-only: bound onto itself, then remounted read-only. */
static int protect_paths(int rootfd, struct su_error *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(masked_paths); i++) {
		_cleanup_close_ int fd = openat2_in_root(rootfd, masked_paths[i], 0);
		_cleanup_free_ char *p = NULL;
		struct stat st;
		int r;

		if (fd < 0)
			continue; /* not on this kernel */
		if (fstat(fd, &st) < 0 || !(p = fd_path(fd)))
			return su_error_set(e, errno, "mask %s", masked_paths[i]);
		if (S_ISDIR(st.st_mode))
			r = mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				  "size=0");
		else
			r = mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (r < 0)
			return su_error_set(e, errno, "mask %s", masked_paths[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(readonly_paths); i++) {
		_cleanup_close_ int fd = openat2_in_root(rootfd, readonly_paths[i], 0);
		_cleanup_free_ char *p = fd >= 0 ? fd_path(fd) : NULL;

		if (fd < 0)
			continue;
		if (!p || mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			return su_error_set(e, errno, "bind %s", readonly_paths[i]);
		close(fd);
		fd = openat2_in_root(rootfd, readonly_paths[i], 0);
		free(p);
		p = fd >= 0 ? fd_path(fd) : NULL;
		if (!p || lch_remount_ro(p, e) < 0)
			return su_error_wrap(e, "read-only %s", readonly_paths[i]);
	}
	return 0;
}

/* ---- the user's mounts ---- */

static size_t depth(const char *path)
{
	size_t n = 0;

	for (const char *s = path; *s; s++)
		if (*s == '/' && s[1] && s[1] != '/')
			n++;
	return n;
}

static int mount_one(int rootfd, const struct lch_rootfs *r, const struct lch_mount *m,
		     struct su_error *e)
{
	_cleanup_free_ char *src = NULL;
	struct stat st;

	switch (m->type) {
	case VOL_MOUNT_TMPFS:
		return mount_in_root(rootfd, m->target, false, "tmpfs", "tmpfs", m->flags,
				     m->data ? m->data : "", m->readonly, e);
	case VOL_MOUNT_BIND:
		if (stat(m->source, &st) < 0)
			return su_error_set(e, errno, "bind source %s", m->source);
		return mount_in_root(rootfd, m->target, !S_ISDIR(st.st_mode), m->source, NULL,
				     MS_BIND | MS_REC, NULL, m->readonly, e);
	case VOL_MOUNT_VOLUME:
		src = su_asprintf("%s/%s/_data", r->volumes_dir, m->source);
		if (!src)
			return su_error_set(e, ENOMEM, "volume %s", m->source);
		if (!m->nocopy) {
			struct vol_mount vm = {.type = VOL_MOUNT_VOLUME, .nocopy = m->nocopy};
			_cleanup_close_ int fd = lch_open_in_root(rootfd, m->target, false, e);
			_cleanup_free_ char *p = fd >= 0 ? fd_path(fd) : NULL;

			if (!p || vol_mount_populate(r->store, &vm, m->source, p, e) < 0)
				return su_error_wrap(e, "volume %s", m->source);
		}
		return mount_in_root(rootfd, m->target, false, src, NULL, MS_BIND | MS_REC, NULL,
				     m->readonly, e);
	}
	return su_error_set(e, EINVAL, "mount %s: unknown type", m->target);
}

static int user_mounts(int rootfd, const struct lch_rootfs *r, struct su_error *e)
{
	const struct lch_spec *s = r->spec;
	size_t n = s->nmounts, *order = calloc(n + 1, sizeof(*order));

	if (!order)
		return su_error_set(e, ENOMEM, "mounts");
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	/* Stable by depth: a parent is mounted before what goes inside it. */
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && depth(s->mounts[order[k - 1]].target) >
						depth(s->mounts[order[k]].target);
		     k--) {
			size_t t = order[k];
			order[k] = order[k - 1];
			order[k - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (mount_one(rootfd, r, &s->mounts[order[i]], e) < 0) {
			free(order);
			return -1;
		}
	}
	free(order);
	return 0;
}

/* ---- /etc/hosts, /etc/hostname, /etc/resolv.conf ---- */

static const char *const etc_files[] = {"hosts", "hostname", "resolv.conf"};

/* The user's mount at path or at a directory above it; NULL when none. */
static const struct lch_mount *user_mount_over(const struct lch_spec *s, const char *path)
{
	const struct lch_mount *best = NULL;

	for (size_t i = 0; i < s->nmounts; i++) {
		const char *t = s->mounts[i].target;
		size_t n = strlen(t);

		if (strcmp(t, path) && !(su_str_has_prefix(path, t) && (path[n] == '/' || n == 1)))
			continue;
		if (!best || n > strlen(best->target))
			best = &s->mounts[i];
	}
	return best;
}

/* Binds the files of r->etc_dir over the image's, as Docker and podman do.
 * The user's own mount of one of them wins; inside a user's mount of /etc
 * only a file that is there is covered (nothing is created in the user's
 * data).  Read-only with a read-only root, as Docker makes them. */
static int etc_mounts(int rootfd, const struct lch_rootfs *r, struct su_error *e)
{
	for (size_t i = 0; r->etc_dir && i < ARRAY_SIZE(etc_files); i++) {
		_cleanup_free_ char *target = su_asprintf("/etc/%s", etc_files[i]);
		_cleanup_free_ char *src = su_asprintf("%s/%s", r->etc_dir, etc_files[i]);
		const struct lch_mount *m;

		if (!target || !src)
			return su_error_set(e, ENOMEM, "/etc/%s", etc_files[i]);
		m = user_mount_over(r->spec, target);
		if (m && !strcmp(m->target, target))
			continue;
		if (m) {
			int fd = openat2_in_root(rootfd, target, 0);

			if (fd < 0)
				continue;
			close(fd);
		}
		if (mount_in_root(rootfd, target, true, src, NULL, MS_BIND, NULL,
				  r->spec->read_only, e) < 0)
			return -1;
	}
	return 0;
}

static int pivot(int rootfd, struct su_error *e)
{
	/* pivot_root(".", "."): the old root ends up on top of the new one,
	 * where it is detached (as runc does), with no directory needed. */
	if (fchdir(rootfd) < 0)
		return su_error_set(e, errno, "chdir to the rootfs");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return su_error_set(e, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return su_error_set(e, errno, "detach the old root");
	if (chdir("/") < 0)
		return su_error_set(e, errno, "chdir /");
	return 0;
}

int lch_rootfs_setup(const struct lch_rootfs *r, struct su_error *e)
{
	_cleanup_close_ int rootfd = -1;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return su_error_set(e, errno, "make mounts private");
	rootfd = open(r->merged, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return su_error_set(e, errno, "open rootfs %s", r->merged);
	if (mount_proc(rootfd, e) < 0 || mount_dev(rootfd, e) < 0 ||
	    mount_sys(rootfd, r->have_netns, e) < 0)
		return su_error_wrap(e, "rootfs");
	if (user_mounts(rootfd, r, e) < 0 || etc_mounts(rootfd, r, e) < 0)
		return -1;
	if (protect_paths(rootfd, e) < 0)
		return su_error_wrap(e, "rootfs");
	if (pivot(rootfd, e) < 0)
		return -1;
	if (r->spec->read_only && lch_remount_ro("/", e) < 0)
		return su_error_wrap(e, "read-only rootfs");
	return 0;
}
