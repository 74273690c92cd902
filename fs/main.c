/* fs/main.c: the strata-fs command: arguments, layer setup, mount, and the
 * FUSE session loop.  Everything that can fail on bad input fails here,
 * before anything is mounted. */
#include "fs/sfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata-fs [SOURCE] MOUNTPOINT -o "
		"lowerdir=DIR[:DIR...][,upperdir=DIR,workdir=DIR][,OPTIONS]\n"
		"\n"
		"A copy-on-write union filesystem in the overlayfs format.\n"
		"\n"
		"  -o lowerdir=A:B      read-only layers, the leftmost on top\n"
		"  -o upperdir=DIR      the writable layer (without it the mount is read-only)\n"
		"  -o workdir=DIR       scratch directory on the upper's filesystem\n"
		"  -o uidmapping=C:H:N[:C:H:N...], gidmapping=...  ids shown C..C+N-1 are H..H+N-1 "
		"on disk\n"
		"  -o squash_to_root, squash_to_uid=N, squash_to_gid=N   show every file owned by "
		"these ids\n"
		"  -o static_nlink      directories report a link count of 1\n"
		"  -o noxattrs=1        no extended attributes through the mount\n"
		"  -o fsync=0, volatile no fsync: faster, not crash safe\n"
		"  -o timeout=SECONDS   kernel cache timeout for entries and attributes (86400)\n"
		"  -o threaded=0|1      multithreaded request loop (1)\n"
		"  -o writeback=0|1     kernel writeback cache (0)\n"
		"  -o passthrough=0|1   reads and writes of upper files bypass the daemon,\n"
		"                       when run as root on a kernel that offers it (1)\n"
		"  -o uring=0|1         requests and replies through per-CPU io_uring queues,\n"
		"                       handled on the CPU that made them, when the kernel\n"
		"                       offers it (fuse module parameter enable_uring) (1)\n"
		"  -o samecpu=0|1       with uring, a reply wakes its program on the CPU it\n"
		"                       was answered on, when the daemon may renice (1)\n"
		"  -o prefetch=0|1      read ahead a directory's small lower files once a\n"
		"                       program reads through it, and a walk's next\n"
		"                       directories (1)\n"
		"  -o metacopy=on|off   attribute changes copy up metadata only (on)\n"
		"  -o index=on|off      hard links survive copy-up through workdir/index (on)\n"
		"  -o userxattr         user.overlay.* xattrs (default unless real root)\n"
		"  -f                   stay in the foreground\n"
		"  -d                   debug output (implies -f)\n"
		"  -h, --help           this text\n"
		"  -V, --version        version\n"
		"FUSE mount options (ro, allow_other, default_permissions, fsname=, ...) are "
		"passed on;\n"
		"unknown options are reported and ignored.\n");
}

/* Returns 0, 1 to exit successfully (help/version), or -1 on bad usage. */
static int parse_args(int argc, char **argv, struct sfs_opts *o, char **warn)
{
	char err[512] = "";
	char *pos[3];
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *ov = NULL;

		if (!strcmp(a, "-o")) {
			if (++i == argc) {
				su_err("option -o needs a value");
				return -1;
			}
			ov = argv[i];
		} else if (!strncmp(a, "-o", 2)) {
			ov = a + 2;
		} else if (!strcmp(a, "-f")) {
			o->foreground = true;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			o->debug = o->foreground = true;
		} else if (!strcmp(a, "-s")) {
			o->threaded = false;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 1;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("strata-fs version %s (libfuse %d.%d)\n", SFS_VERSION,
			       fuse_version() / 100, fuse_version() % 100);
			return 1;
		} else if (a[0] == '-' && a[1]) {
			su_err("unknown argument \"%s\" (see strata-fs --help)", a);
			return -1;
		} else if (npos < 3) {
			pos[npos++] = argv[i];
		} else {
			npos++;
		}
		if (ov && sfs_opts_parse(o, ov, err, sizeof(err), warn) < 0) {
			su_err("%s", err);
			return -1;
		}
	}
	if (npos < 1 || npos > 2) {
		su_err(npos ? "too many arguments" : "no mountpoint given");
		usage(stderr);
		return -1;
	}
	o->mountpoint = strdup(pos[npos - 1]);
	o->source = strdup(npos == 2 ? pos[0] : "strata-fs");
	return o->mountpoint && o->source ? 0 : -1;
}

/* The root of the merged tree: the upper root over every lower root, down
 * to the first opaque one. */
static int make_root(struct sfs_fs *fs)
{
	struct sfs_res res = {.upper = -1};
	int r;

	if (fs->upper) {
		res.upper = fcntl(fs->upper->fd, F_DUPFD_CLOEXEC, 3);
		if (res.upper < 0 || fstat(res.upper, &res.st) < 0)
			return -errno;
	}
	if (!fs->upper || !sfs_upper_dir_opaque(fs, fs->upper->fd)) {
		res.low = calloc(fs->nlayers, sizeof(*res.low));
		if (!res.low)
			return -ENOMEM;
		for (int i = fs->first_lower; i < fs->nlayers; i++) {
			int fd = fcntl(fs->layers[i].fd, F_DUPFD_CLOEXEC, 3);
			if (fd < 0)
				return -errno;
			res.low[res.nlow++] = (struct sfs_lower){fd, i};
			if (sfs_lower_dir_opaque(fs, fd))
				break;
		}
	}
	if (!fs->upper)
		fstat(res.low[0].fd, &res.st);
	res.type = S_IFDIR;
	res.lowpath = strdup("");
	res.ino = res.nlow ? sfs_make_ino(fs, res.low[0].layer, 0) : 0;
	if (res.nlow) {
		struct stat lst;
		fstat(res.low[0].fd, &lst);
		res.ino = sfs_make_ino(fs, res.low[0].layer, lst.st_ino);
	} else {
		res.ino = sfs_make_ino(fs, 0, res.st.st_ino);
	}
	r = sfs_node_publish(fs, NULL, NULL, &res, false, &fs->root);
	sfs_res_free(&res);
	return r;
}

/* Every node the kernel remembers holds an O_PATH fd, so a walk of a large
 * tree needs as many fds as it has inodes: take the most the system
 * allows (root may raise the hard limit up to fs.nr_open). */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	_cleanup_free_ char *max = NULL;
	size_t len;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (su_read_file(AT_FDCWD, "/proc/sys/fs/nr_open", &max, &len, 64) == 0) {
		struct rlimit want = {strtoul(max, NULL, 10), strtoul(max, NULL, 10)};
		if (want.rlim_max > rl.rlim_max && setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static int add_arg(struct fuse_args *args, const char *a)
{
	return fuse_opt_add_arg(args, a) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct sfs_opts o;
	struct sfs_fs fs;
	char err[1024] = "", *warn = NULL;
	_cleanup_free_ char *mopts = NULL;
	struct stat st;
	int r, ret = 1;

	su_log_init("strata-fs", SU_LOG_WARN);
	sfs_opts_init(&o);
	r = parse_args(argc, argv, &o, &warn);
	if (warn)
		su_warn("%s", warn);
	free(warn);
	if (r != 0) {
		sfs_opts_free(&o);
		return r > 0 ? 0 : 1;
	}
	if (o.debug)
		su_log_init("strata-fs", SU_LOG_DEBUG);
	umask(0);
	raise_fd_limit();
	if (stat(o.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		su_err("mountpoint \"%s\": %s", o.mountpoint,
		       errno && !S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
		goto out_opts;
	}
	if (sfs_fs_init(&fs, &o, err, sizeof(err)) < 0) {
		su_err("%s", err);
		goto out_fs;
	}
	if (make_root(&fs) < 0) {
		su_err("cannot open the root of the layers");
		goto out_fs;
	}
	/* As root (also in a user namespace) the kernel checks permissions
	 * and every uid of a container may use the mount, as with
	 * fuse-overlayfs. */
	mopts = su_asprintf("fsname=%s,subtype=strata-fs%s%s%s%s", o.source,
			    geteuid() == 0 ? ",default_permissions,allow_other,suid,dev" : "",
			    (!fs.upper || o.readonly) ? ",ro" : "", o.fuse_opts_len ? "," : "",
			    o.fuse_opts_len ? o.fuse_opts : "");
	if (!mopts || add_arg(&args, argv[0]) || (o.debug && add_arg(&args, "-d")) ||
	    add_arg(&args, "-o") || add_arg(&args, mopts))
		goto out_fs;
	se = fuse_session_new(&args, &sfs_ops, sizeof(sfs_ops), &fs);
	if (!se)
		goto out_fs;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_se;
	if (fuse_session_mount(se, o.mountpoint) != 0)
		goto out_sig;
	if (sfs_pt_setup(&fs, se) != 0)
		goto out_mount;
	if (fuse_daemonize(o.foreground) != 0)
		goto out_mount;
	if (!o.foreground)
		su_log_to_syslog();
	fs.pid = (unsigned)getpid();
	/* /proc/self of the process that opened it, which daemonizing left */
	close(fs.procfd);
	fs.procfd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs.procfd < 0) {
		su_err("/proc/self/fd: %s", strerror(errno));
		goto out_mount;
	}
	if (sfs_read_pipes_init(&fs) < 0)
		goto out_mount;
	if (sfs_prune_start(&fs, se) < 0)
		su_warn("no pruning thread: large trees may exhaust the fd limit");
	if (o.prefetch && sfs_ahead_start(&fs) < 0)
		su_warn("no read-ahead threads: request threads read directories ahead");
	if (o.threaded) {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		fuse_loop_cfg_set_max_threads(cfg, 32);
		ret = fuse_session_loop_mt(se, cfg) ? 1 : 0;
		fuse_loop_cfg_destroy(cfg);
	} else {
		ret = fuse_session_loop(se) ? 1 : 0;
	}
	/* the ring and read-ahead threads use the pruner's slots: they go first */
	sfs_uring_stop(&fs);
	sfs_ahead_stop(&fs);
	sfs_prune_stop(&fs);
out_mount:
	fuse_session_unmount(se);
out_sig:
	fuse_remove_signal_handlers(se);
out_se:
	fuse_session_destroy(se);
out_fs:
	fuse_opt_free_args(&args);
	sfs_fs_destroy(&fs);
out_opts:
	sfs_opts_free(&o);
	return ret;
}
