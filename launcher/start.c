/* launcher/start: running a container.  The caller forks a keeper that owns
 * a private mount namespace (in a new user namespace when rootless) holding
 * the strata-fs mount; the keeper clones the container's PID 1 into new
 * mount, PID, UTS and IPC (and network, with --network none) namespaces,
 * records the state, relays a pty, waits, and unmounts.  Nothing is ever
 * mounted in the caller's namespace, so a dead container leaves no mount. */
#include "launcher/launcher.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* The attached caller forwards its signals to the container's PID 1; a
 * signal handler can only find it in a static.  One that arrives before
 * PID 1 is known waits in forward_held (a bit per signal number) and goes
 * once it is: the command may already run and wait for it. */
static volatile pid_t forward_to;
static volatile sig_atomic_t forward_held;

static void forward_signal(int sig)
{
	if (forward_to > 0)
		kill(forward_to, sig);
	else
		forward_held |= 1 << sig;
}

/* Starts forwarding to init, with the signals held until now. */
static void forward_start(pid_t init)
{
	sigset_t set, old;

	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, &old);
	forward_to = init;
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		if (forward_held & (1 << forwarded[i]))
			kill(init, forwarded[i]);
	forward_held = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void ignore_signal(int sig)
{
	(void)sig;
}

/* ---- strata-fs ---- */

static char *lowerdir(char *const *layers)
{
	char *s = NULL;
	size_t len = 0, cap = 0;

	for (size_t i = 0; layers[i]; i++) {
		if ((i && su_strbuf_add(&s, &len, &cap, ":", 1) < 0) ||
		    su_strbuf_add(&s, &len, &cap, layers[i], strlen(layers[i])) < 0) {
			free(s);
			return NULL;
		}
	}
	return s;
}

static int spawn_fs(const char *cdir, const struct lch_spec *spec, struct lch_proc *fs,
		    struct su_error *e)
{
	_cleanup_free_ char *bin = lch_fs_binary(), *lower = lowerdir(spec->layers);
	_cleanup_free_ char *opts = NULL, *merged = su_asprintf("%s/merged", cdir);
	_cleanup_free_ char *log = su_asprintf("%s/fs.log", cdir);
	struct stat top, mnt;
	pid_t pid;

	/* The init layer (see make_init_layer) goes on top of the image. */
	opts = lower ? su_asprintf("lowerdir=%s/init:%s,upperdir=%s/upper,workdir=%s/work", cdir,
				   lower, cdir, cdir)
		     : NULL;
	if (!opts || !merged || !log || !bin)
		return su_error_set(e, ENOMEM, "strata-fs");
	pid = fork();
	if (pid < 0)
		return su_error_set(e, errno, "fork strata-fs");
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		/* Dies with the keeper: a crashed launcher leaves no daemon. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		dup2(null, 0);
		dup2(fd >= 0 ? fd : null, 1);
		dup2(fd >= 0 ? fd : null, 2);
		execlp(bin, bin, "-f", "-o", opts, merged, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	/* -f keeps it our child (so its pid is known); ready is when merged
	 * becomes another filesystem. */
	for (int i = 0; i < 10000; i++) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			_cleanup_free_ char *msg = NULL;

			su_read_file(AT_FDCWD, log, &msg, NULL, 4096);
			return su_error_set(e, 0, "strata-fs (%s) exited: %s", bin,
					    msg && *msg ? msg : "no message");
		}
		if (stat(cdir, &top) == 0 && stat(merged, &mnt) == 0 && top.st_dev != mnt.st_dev)
			return lch_proc_get(pid, fs) < 0 ? su_error_set(e, ESRCH, "strata-fs") : 0;
		su_sleep_ms(i < 100 ? 1 : 10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return su_error_set(e, ETIMEDOUT, "strata-fs did not mount %s", merged);
}

static void stop_fs(const char *cdir, pid_t fs)
{
	_cleanup_free_ char *merged = su_asprintf("%s/merged", cdir);

	if (merged && umount2(merged, 0) < 0)
		umount2(merged, MNT_DETACH);
	for (int i = 0; i < 500; i++) {
		if (waitpid(fs, NULL, WNOHANG) == fs)
			return;
		if (i == 300)
			kill(fs, SIGTERM);
		su_sleep_ms(10);
	}
	kill(fs, SIGKILL);
	waitpid(fs, NULL, 0);
}

/* ---- PID 1, before it becomes init ---- */

struct init_args {
	const char *root, *cdir;
	const struct lch_spec *spec;
	struct vol_store *store;
	int sync, status_fd, lock;
	const struct winsize *ws; /* the caller's terminal size, or NULL */
};

static void init_fail(int sync, const struct su_error *e)
{
	char msg[1100];
	int n = snprintf(msg, sizeof(msg), "E%s", e->msg);

	send(sync, msg, (size_t)n, MSG_NOSIGNAL);
	_exit(125);
}

static int open_pty(int *slave, struct su_error *e)
{
	int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	char name[64];

	if (master < 0)
		return su_error_set(e, errno, "open /dev/pts/ptmx");
	if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0 ||
	    (*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
		close(master);
		return su_error_set(e, errno, "open the pty");
	}
	return master;
}

static void init_main(const struct init_args *a) __attribute__((noreturn));
static void init_main(const struct init_args *a)
{
	_cleanup_free_ char *merged = su_asprintf("%s/merged", a->cdir);
	_cleanup_free_ char *vols = su_asprintf("%s/volumes", a->root);
	struct lch_rootfs r = {.merged = merged,
			       .volumes_dir = vols,
			       .spec = a->spec,
			       .store = a->store,
			       .have_netns = a->spec->net_none,
			       .etc_dir = a->cdir};
	struct su_error e = {0};
	int slave = -1, master;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The caller waits for EOF on the status pipe; the keeper releases
	 * the container's lock once the container is recorded running. */
	if (a->status_fd >= 0)
		close(a->status_fd);
	close(a->lock);
	setsid();
	if (lch_rootfs_setup(&r, &e) < 0)
		init_fail(a->sync, &e);
	vol_store_close(a->store);
	if (sethostname(a->spec->hostname, strlen(a->spec->hostname)) < 0) {
		su_error_set(&e, errno, "sethostname");
		init_fail(a->sync, &e);
	}
	if (a->spec->tty) {
		if ((master = open_pty(&slave, &e)) < 0)
			init_fail(a->sync, &e);
		/* Before the command starts: its first `stty size` must see
		 * the terminal's size, not 0 0. */
		if (a->ws)
			ioctl(master, TIOCSWINSZ, a->ws);
		if (lch_send_fd(a->sync, master) < 0) {
			su_error_set(&e, errno, "send the pty");
			init_fail(a->sync, &e);
		}
		close(master);
	}
	send(a->sync, "OK", 2, MSG_NOSIGNAL);
	lch_init_run(a->spec, slave, a->sync);
}

static pid_t clone_init(unsigned long flags)
{
	struct clone_args ca = {.flags = flags, .exit_signal = SIGCHLD};

	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

/* Reads PID 1's report: an optional pty fd, then "OK" or "E<message>". */
static int read_sync(int sync, bool tty, int *master, struct su_error *e)
{
	char buf[1200];
	ssize_t n;

	*master = -1;
	if (tty) {
		struct pollfd p = {.fd = sync, .events = POLLIN};

		if (poll(&p, 1, -1) > 0) {
			char peek;

			if (recv(sync, &peek, 1, MSG_PEEK) == 1 && peek == 'F')
				*master = lch_recv_fd(sync);
		}
	}
	n = recv(sync, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return su_error_set(e, 0, "the container's init died during setup");
	buf[n] = 0;
	if (buf[0] == 'E')
		return su_error_set(e, 0, "%s", buf + 1);
	return 0;
}

/* Waits for PID 1; when strata-fs dies first the container has lost its
 * root, so PID 1 is killed (and *fs_died set). */
static int wait_init(pid_t init, pid_t fs, int *status, bool *fs_died)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, 0);

		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			return -1;
		if (p == init) {
			*status = st;
			return 0;
		}
		if (p == fs) {
			*fs_died = true;
			kill(init, SIGKILL);
		}
	}
}

/* ---- the keeper ---- */

static void report(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(int fd, const char *fmt, ...)
{
	char buf[1200];
	va_list ap;
	int n;

	if (fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	su_write_all(fd, buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
}

/* The caller's terminal, for the size of the container's pty (stdin need
 * not be it: `-t` without `-i` reads no input).  Returns a CLOEXEC dup or
 * -1. */
static int caller_terminal(bool attach, struct winsize *ws)
{
	int fd = attach ? lch_terminal_fd(ws) : -1;

	return fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
}

static void keeper_stdio(const char *cdir, const struct lch_spec *spec, bool attach)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), log;
	_cleanup_free_ char *path = su_asprintf("%s/container.log", cdir);

	if (!attach) {
		setsid();
		log = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
		dup2(null, 0);
		dup2(log >= 0 ? log : null, 1);
		dup2(log >= 0 ? log : null, 2);
		if (log >= 0)
			close(log);
	} else if (!spec->interactive) {
		dup2(null, 0);
	}
	if (null >= 0)
		close(null);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		signal(forwarded[i], ignore_signal);
}

static const char *const etc_names[] = {"hosts", "hostname", "resolv.conf"};

/* The container's /etc/hosts, /etc/hostname and /etc/resolv.conf, made
 * anew at each start in its directory dfd; rootfs.c binds them over the
 * image's.  Modes are set explicitly: the caller's umask must not make
 * them unreadable to the container's users. */
static int write_etc_files(int dfd, const char *cdir, const struct lch_spec *spec,
			   struct su_error *e)
{
	_cleanup_free_ char *hosts = NULL, *hostname = NULL, *resolv = NULL;
	const char *text[ARRAY_SIZE(etc_names)];

	if (!spec->hostname)
		return su_error_set(e, EINVAL, "config.json: no host name");
	text[0] = hosts = lch_hosts_text(spec->hostname, spec->extra_hosts);
	text[1] = hostname = su_asprintf("%s\n", spec->hostname);
	text[2] = resolv = lch_resolv_conf(spec->net_none);
	if (!hosts || !hostname || !resolv)
		return su_error_set(e, ENOMEM, "/etc files");
	for (size_t i = 0; i < ARRAY_SIZE(etc_names); i++) {
		int r = su_write_atomic(dfd, etc_names[i], text[i], strlen(text[i]), 0644);

		if (r < 0 || fchmodat(dfd, etc_names[i], 0644, 0) < 0)
			return su_error_set(e, r < 0 ? -r : errno, "write %s/%s", cdir,
					    etc_names[i]);
	}
	return 0;
}

/* The init layer, Docker's idea: a lower layer above the image holding an
 * empty file where each of those is bound, so the mount point exists
 * without being made in the image or the writable layer (and an image's
 * resolv.conf symlink is covered, not followed).  Its etc/ is the
 * container's /etc directory: 0755 whatever the umask. */
static int make_init_layer(int dfd, const char *cdir, struct su_error *e)
{
	static const char *const dirs[] = {"init", "init/etc"};

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if ((mkdirat(dfd, dirs[i], 0755) < 0 && errno != EEXIST) ||
		    fchmodat(dfd, dirs[i], 0755, 0) < 0)
			return su_error_set(e, errno, "mkdir %s/%s", cdir, dirs[i]);
	for (size_t i = 0; i < ARRAY_SIZE(etc_names); i++) {
		_cleanup_free_ char *p = su_asprintf("init/etc/%s", etc_names[i]);
		_cleanup_close_ int fd =
		    p ? openat(dfd, p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644) : -1;

		if (fd < 0 || fchmod(fd, 0644) < 0)
			return su_error_set(e, errno, "create %s/%s", cdir, p ? p : etc_names[i]);
	}
	return 0;
}

/* --rm, once the command has ended (or never started). */
static void auto_remove(const char *root, const char *id)
{
	struct su_error e = {0};

	if (lch_rm(root, id, false, true, &e) < 0)
		fprintf(stderr, "strata: %s\n", e.msg);
	lch_gc(root);
}

static int keeper_setup(const char *cdir, const struct lch_spec *spec, struct su_error *e)
{
	static const char *const dirs[] = {"upper", "work", "merged"};
	_cleanup_close_ int dfd = -1;

	if (unshare(CLONE_NEWNS) < 0)
		return su_error_set(e, errno, "new mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return su_error_set(e, errno, "make mounts private");
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *p = su_asprintf("%s/%s", cdir, dirs[i]);

		/* 0755: the root of the union takes the mode of upper/. */
		if (!p || (mkdir(p, 0755) < 0 && errno != EEXIST))
			return su_error_set(e, errno, "mkdir %s", p ? p : dirs[i]);
	}
	dfd = open(cdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return su_error_set(e, errno, "open %s", cdir);
	if (write_etc_files(dfd, cdir, spec, e) < 0 || make_init_layer(dfd, cdir, e) < 0)
		return -1;
	return 0;
}

/* status_fd gets the report; lock is the container's, held (with the
 * caller) until the state is recorded. */
static int keeper_run(const char *root, const char *cdir, struct lch_spec *spec, bool attach,
		      int status_fd, int lock)
{
	struct lch_state st = {.status = LCH_RUNNING};
	struct su_error e = {0};
	struct vol_store *store = NULL;
	int sv[2] = {-1, -1}, master = -1, status, code, term = -1;
	bool fs_died = false;
	unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
	struct winsize ws = {0};
	pid_t init;

	if (spec->tty)
		term = caller_terminal(attach, &ws);
	keeper_stdio(cdir, spec, attach);
	lch_proc_get(getpid(), &st.keeper);
	if (keeper_setup(cdir, spec, &e) < 0 || spawn_fs(cdir, spec, &st.fs, &e) < 0)
		goto fail;
	if (vol_store_open(root, &store, &e) < 0)
		goto fail_fs;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		su_error_set(&e, errno, "socketpair");
		goto fail_fs;
	}
	if (spec->net_none)
		flags |= CLONE_NEWNET;
	fflush(NULL);
	init = clone_init(flags);
	if (init < 0) {
		su_error_set(&e, errno, "clone the container's init");
		goto fail_fs;
	}
	if (init == 0) {
		struct init_args a = {.root = root,
				      .cdir = cdir,
				      .spec = spec,
				      .store = store,
				      .sync = sv[1],
				      .status_fd = status_fd,
				      .lock = lock,
				      .ws = term >= 0 ? &ws : NULL};
		close(sv[0]);
		init_main(&a);
	}
	close(sv[1]);
	vol_store_close(store);
	store = NULL;
	if (read_sync(sv[0], spec->tty, &master, &e) < 0) {
		kill(init, SIGKILL);
		waitpid(init, NULL, 0);
		goto fail_fs;
	}
	close(sv[0]);
	lch_proc_get(init, &st.init);
	st.started_at = su_rfc3339_now(true);
	lch_state_write(root, spec->id, &st);
	close(lock);
	report(status_fd, "OK %d\n", (int)init);
	if (status_fd >= 0)
		close(status_fd);
	if (master >= 0) {
		lch_pty_relay(master, attach && spec->interactive ? 0 : -1, 1, term);
		close(master);
	}
	if (term >= 0)
		close(term);
	if (wait_init(init, st.fs.pid, &status, &fs_died) < 0)
		status = 125 << 8;
	code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	if (fs_died)
		st.error = strdup("strata-fs died; the container was killed");
	else
		stop_fs(cdir, st.fs.pid);
	st.status = LCH_EXITED;
	st.exit_code = code;
	st.finished_at = su_rfc3339_now(true);
	lch_state_write(root, spec->id, &st);
	lch_state_free(&st);
	if (spec->auto_remove)
		auto_remove(root, spec->id);
	return code;

fail_fs:
	vol_store_close(store);
	stop_fs(cdir, st.fs.pid);
fail:
	if (term >= 0)
		close(term);
	report(status_fd, "ERR %s\n", e.msg);
	memset(&st.init, 0, sizeof(st.init));
	memset(&st.fs, 0, sizeof(st.fs));
	st.status = LCH_EXITED;
	st.exit_code = 125;
	st.error = strdup(e.msg);
	st.finished_at = su_rfc3339_now(true);
	lch_state_write(root, spec->id, &st);
	lch_state_free(&st);
	/* The caller holds the lock until the status pipe closes. */
	close(lock);
	if (status_fd >= 0)
		close(status_fd);
	if (spec->auto_remove)
		auto_remove(root, spec->id);
	return 125;
}

/* ---- the caller ---- */

static int read_status(int fd, pid_t *init, struct su_error *e)
{
	char buf[1200];
	ssize_t n, len = 0;

	while (len < (ssize_t)sizeof(buf) - 1 &&
	       ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0 ||
		(n < 0 && errno == EINTR)))
		if (n > 0)
			len += n;
	buf[len] = 0;
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = 0;
	if (su_str_has_prefix(buf, "OK ")) {
		*init = (pid_t)atoi(buf + 3);
		return 0;
	}
	return su_error_set(
	    e, 0, "%s", su_str_has_prefix(buf, "ERR ") ? buf + 4 : "the container did not start");
}

static void raw_mode(int fd, struct termios *saved, bool *is_raw)
{
	struct termios t;

	*is_raw = false;
	if (!isatty(fd) || tcgetattr(fd, saved) < 0)
		return;
	t = *saved;
	cfmakeraw(&t);
	*is_raw = tcsetattr(fd, TCSANOW, &t) == 0;
}

int lch_start(const char *root, const char *id, const struct lch_start_opts *o, struct su_error *e)
{
	_cleanup_free_ char *cdir = su_asprintf("%s/containers/%s", root, id);
	struct lch_spec spec = {0};
	struct lch_state st;
	struct termios saved;
	bool is_raw = false;
	int pfd[2], status, rc = 0;
	pid_t keeper, init = 0;
	_cleanup_close_ int lock = lch_lock(root, id, true, e);

	if (lock < 0 || lch_load(root, id, &spec, e) < 0)
		return -1;
	lch_state_read_settled(root, id, &st);
	if (st.removing)
		rc = su_error_set(e, EBUSY, "container %s is being removed", spec.name);
	else if (lch_state_actual(&st) == LCH_RUNNING)
		rc = su_error_set(e, EBUSY, "container %s is already running", spec.name);
	lch_state_free(&st);
	if (rc < 0) {
		lch_spec_free(&spec);
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		lch_spec_free(&spec);
		return su_error_set(e, errno, "pipe");
	}
	/* Raw before the keeper starts relaying: the container's pty does
	 * the echo and the line editing, and its first output must not be
	 * translated a second time by ours. */
	if (spec.tty && o->attach)
		raw_mode(0, &saved, &is_raw);
	fflush(NULL);
	keeper = lch_fork_userns(e);
	if (keeper < 0) {
		if (is_raw)
			tcsetattr(0, TCSANOW, &saved);
		lch_spec_free(&spec);
		return su_error_wrap(e, "start %s", spec.name);
	}
	if (keeper == 0) {
		close(pfd[0]);
		_exit(keeper_run(root, cdir, &spec, o->attach, pfd[1], lock));
	}
	close(pfd[1]);
	if (o->attach) {
		for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
			if (forwarded[i] != SIGWINCH)
				signal(forwarded[i], forward_signal);
	}
	rc = read_status(pfd[0], &init, e);
	close(pfd[0]);
	/* The keeper has recorded the container running, or failed. */
	close(lock);
	lock = -1;
	if (rc < 0) {
		if (o->attach)
			waitpid(keeper, NULL, 0);
		if (is_raw)
			tcsetattr(0, TCSANOW, &saved);
		su_error_wrap(e, "start %s", spec.name);
		lch_spec_free(&spec);
		return -1;
	}
	if (o->status_fd >= 0)
		report(o->status_fd, "OK %d\n", (int)init);
	if (!o->attach) {
		lch_spec_free(&spec);
		return 0;
	}
	forward_start(init);
	while (waitpid(keeper, &status, 0) < 0 && errno == EINTR)
		;
	forward_to = 0;
	if (is_raw)
		tcsetattr(0, TCSANOW, &saved);
	lch_spec_free(&spec);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
