/* launcher/lifecycle: create (container directory, volumes and their
 * references), stop, kill, rm (processes, writable layer, references,
 * anonymous volumes) and exec (setns into a running container). */
#include "launcher/launcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

static int random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	_cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (nbytes > sizeof(b) || fd < 0 || su_read_all(fd, b, nbytes) != (ssize_t)nbytes)
		return -1;
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	return 0;
}

static bool name_valid(const char *n)
{
	return vol_name_valid(n);
}

static bool name_taken(const char *root, const char *name)
{
	char *id = NULL;
	struct su_error e = {0};
	bool taken = lch_lookup(root, name, &id, &e) == 0 && id;

	/* A prefix of some id is not a name clash; only a real name is. */
	if (taken) {
		struct lch_spec s = {0};

		taken = lch_load(root, id, &s, &e) == 0 && !strcmp(s.name, name);
		lch_spec_free(&s);
	}
	free(id);
	return taken;
}

static int create_volumes(struct vol_store *st, struct lch_spec *s, struct su_error *e)
{
	for (size_t i = 0; i < s->nmounts; i++) {
		struct lch_mount *m = &s->mounts[i];
		struct vol_create_opts o = {.name = m->source};
		char *name = NULL;

		if (m->type != VOL_MOUNT_VOLUME)
			continue;
		if (vol_create(st, &o, &name, NULL, e) < 0)
			return -1;
		if (!m->source) {
			m->source = name;
			m->anonymous = true;
		} else {
			free(name);
		}
		if (vol_ref_add(st, m->source, s->id, e) < 0)
			return -1;
	}
	return 0;
}

int lch_create(const char *root, struct lch_spec *s, struct su_error *e)
{
	char id[65];
	_cleanup_free_ char *cdir = NULL, *text = NULL, *dir = lch_containers_dir(root);
	_cleanup_close_ int dfd = -1;
	struct vol_store *st = NULL;
	struct lch_state state = {.status = LCH_CREATED};
	json_t *j;
	int r;

	if (!dir || random_hex(id, 32) < 0)
		return su_error_set(e, errno, "create a container id");
	free(s->id);
	s->id = strdup(id);
	if (!s->name) {
		s->name = su_asprintf("strata_%.12s", id);
	} else if (!name_valid(s->name)) {
		return su_error_set(e, EINVAL, "invalid container name \"%s\"", s->name);
	} else if (name_taken(root, s->name)) {
		return su_error_set(e, EEXIST, "the container name \"%s\" is already in use",
				    s->name);
	}
	if (!s->hostname)
		s->hostname = strndup(id, 12);
	free(s->created);
	s->created = su_rfc3339_now(true);
	if (!s->image_id)
		s->image_id = strdup("");
	if (!s->image)
		s->image = strdup("");
	cdir = su_asprintf("%s/%s", dir, id);
	if (!cdir || mkdir(cdir, 0700) < 0)
		return su_error_set(e, errno, "mkdir %s", cdir ? cdir : id);
	if (vol_store_open(root, &st, e) < 0 || create_volumes(st, s, e) < 0) {
		/* Undo what this create did. */
		for (size_t i = 0; st && i < s->nmounts; i++) {
			struct su_error ignored = {0};

			if (s->mounts[i].type == VOL_MOUNT_VOLUME && s->mounts[i].source)
				vol_ref_del(st, s->mounts[i].source, id, &ignored);
		}
		vol_store_close(st);
		su_rm_rf_at(AT_FDCWD, cdir);
		return su_error_wrap(e, "create container");
	}
	vol_store_close(st);
	j = lch_spec_to_json(s);
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	dfd = open(cdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	r = (!text || dfd < 0) ? -ENOMEM
			       : su_write_atomic(dfd, "config.json", text, strlen(text), 0600);
	if (r < 0) {
		su_rm_rf_at(AT_FDCWD, cdir);
		return su_error_set(e, -r, "write config.json");
	}
	lch_state_write(root, id, &state);
	return 0;
}

/* The keeper itself calls rm for --rm: it does not wait for itself. */
static bool alive_other(const struct lch_proc *p)
{
	return p->pid != getpid() && lch_proc_alive(p);
}

static bool any_alive(const struct lch_state *st)
{
	return alive_other(&st->keeper) || alive_other(&st->init) || alive_other(&st->fs);
}

/* Waits up to ms for the keeper, PID 1 and strata-fs to be gone. */
static bool wait_gone(const struct lch_state *st, long ms)
{
	for (long t = 0; t < ms; t += 20) {
		if (!any_alive(st))
			return true;
		su_sleep_ms(20);
	}
	return !any_alive(st);
}

static void kill_proc(const struct lch_proc *p, int sig)
{
	if (alive_other(p))
		kill(p->pid, sig);
}

int lch_stop(const char *root, const char *id, int sig, int timeout, struct su_error *e)
{
	struct lch_state st;

	lch_state_read(root, id, &st);
	if (lch_state_actual(&st) == LCH_RUNNING) {
		kill_proc(&st.init, sig ? sig : SIGTERM);
		if (!wait_gone(&st, timeout * 1000L))
			kill_proc(&st.init, SIGKILL);
	}
	/* What a crash left: PID 1 takes its namespace with it; a strata-fs
	 * whose keeper died has nobody to unmount it. */
	if (!wait_gone(&st, 10000)) {
		kill_proc(&st.init, SIGKILL);
		kill_proc(&st.keeper, SIGKILL);
		kill_proc(&st.fs, SIGKILL);
		if (!wait_gone(&st, 5000)) {
			lch_state_free(&st);
			return su_error_set(e, EBUSY, "container %s does not stop", id);
		}
	}
	lch_state_free(&st);
	return 0;
}

int lch_kill(const char *root, const char *id, int sig, struct su_error *e)
{
	struct lch_state st;
	int r = 0;

	lch_state_read_settled(root, id, &st);
	if (lch_state_actual(&st) != LCH_RUNNING || !lch_proc_running(&st.init))
		r = su_error_set(e, 0, "container %.12s is not running", id);
	else if (kill(st.init.pid, sig) < 0)
		r = su_error_set(e, errno, "kill container %.12s", id);
	lch_state_free(&st);
	return r;
}

/* ---- rm ----
 * The steps, each safe to repeat when an rm was killed part way, all of
 * them under the container's lock (lch_lock), which rm takes once nothing
 * of the container runs, so no start can slip in between:
 *   1. state.json records the container dead and removing: from here a
 *      killed rm leaves a container `ps -a` lists as dead ("Removal In
 *      Progress"), that start and exec refuse and a new rm finishes;
 *   2. its volume references are dropped and, with -v, its anonymous
 *      volumes removed (all of it is outside the container's directory,
 *      so it happens while the container can still be named);
 *   3. the directory is renamed to .rm-<id>: the commit, after which the
 *      container no longer exists for any verb;
 *   4. the renamed tree is deleted by a child that inherits the lock.
 *      What a crash leaves of it, lch_gc deletes (every rm runs it). */

/* Deletes name, a renamed-away container directory in dfd (the
 * containers directory dir), in the user namespace when rootless (the
 * writable layer may hold files of mapped subordinate ids).  Caller holds
 * the tree's lock; the child inherits it, so the tree stays locked until
 * it is gone or the child dies. */
static int remove_tree(int dfd, const char *dir, const char *name, struct su_error *e)
{
	pid_t pid = lch_fork_userns(e);
	int st = 0;

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(su_rm_rf_at(dfd, name) == 0 ? 0 : 1);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return su_error_set(e, 0, "remove %s/%s", dir, name);
	return 0;
}

/* fd still is dfd/name (its deleter may have finished meanwhile). */
static bool still_there(int dfd, const char *name, int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstatat(dfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

void lch_gc(const char *root)
{
	_cleanup_free_ char *dir = lch_containers_dir(root);
	_cleanup_closedir_ DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;

	while (d && (de = readdir(d))) {
		struct su_error ignored = {0};
		_cleanup_close_ int fd = -1;

		if (!su_str_has_prefix(de->d_name, ".rm-"))
			continue;
		/* A held lock: the rm that renamed it (or another gc) is
		 * deleting it. */
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 ||
		    !still_there(dirfd(d), de->d_name, fd))
			continue;
		if (remove_tree(dirfd(d), dir, de->d_name, &ignored) < 0)
			su_warn("%s (retried by the next rm)", ignored.msg);
	}
}

/* Step 1: the container's recorded status becomes dead and removing, its
 * other state (exit code, times) kept.  Caller holds the lock and nothing
 * of the container runs: nothing else writes state.json now. */
static int mark_removing(const char *root, const char *id, struct su_error *e)
{
	struct lch_state st;
	int r;

	lch_state_read(root, id, &st);
	st.status = LCH_DEAD;
	st.removing = true;
	free(st.error);
	st.error = strdup("removal in progress");
	r = lch_state_write(root, id, &st);
	lch_state_free(&st);
	return r < 0 ? su_error_set(e, errno, "record the removal") : 0;
}

/* Step 2.  A reference that cannot be dropped stops the rm before its
 * commit, so that no volume stays in use by a container that is gone;
 * an anonymous volume that cannot be removed (another container uses it)
 * is only a warning, as in Docker.  Both are no-ops when repeated. */
static int drop_volumes(const char *root, const struct lch_spec *s, bool volumes,
			struct su_error *e)
{
	struct vol_store *vs = NULL;
	int r = 0;

	for (size_t i = 0; i < s->nmounts && r == 0; i++) {
		const struct lch_mount *m = &s->mounts[i];
		struct su_error ve = {0};

		if (m->type != VOL_MOUNT_VOLUME || !m->source)
			continue;
		if (!vs && vol_store_open(root, &vs, e) < 0)
			return -1;
		if (vol_ref_del(vs, m->source, s->id, e) < 0)
			r = -1;
		else if (volumes && m->anonymous && vol_rm(vs, m->source, true, &ve) < 0)
			su_warn("%s", ve.msg);
	}
	vol_store_close(vs);
	return r;
}

/* Step 3: renames <id> to .rm-<id> (gone) in dfd (dir), durably. */
static int commit_removal(int dfd, const char *dir, const char *id, const char *gone,
			  struct su_error *e)
{
	if (renameat(dfd, id, dfd, gone) < 0)
		return su_error_set(e, errno, "rename %s/%s", dir, id);
	fsync(dfd);
	return 0;
}

/* Takes the lock of the container once nothing of it runs, stopping it
 * (force, or what a crash left) without the lock: its keeper may need the
 * lock to finish (a --rm container removes itself).  *gone: the container
 * went meanwhile. */
static int lock_stopped(const char *root, const struct lch_spec *s, bool force, bool *gone,
			struct su_error *e)
{
	*gone = false;
	for (int round = 0;; round++) {
		struct lch_state st;
		enum lch_status status;
		bool alive;
		int lock = lch_lock(root, s->id, true, e);

		if (lock < 0) {
			*gone = round > 0 && e->errnum == ENOENT;
			return -1;
		}
		lch_state_read(root, s->id, &st);
		status = lch_state_actual(&st);
		alive = any_alive(&st);
		lch_state_free(&st);
		if (!alive)
			return lock;
		close(lock);
		if (status == LCH_RUNNING && !force)
			return su_error_set(
			    e, EBUSY,
			    "cannot remove container %s: container is running: stop "
			    "the container before removing or force remove",
			    s->name);
		/* Started again while we were stopping it, again and again. */
		if (round == 3)
			return su_error_set(e, EBUSY, "container %s keeps running", s->name);
		if (lch_stop(root, s->id, SIGKILL, 0, e) < 0)
			return -1;
	}
}

int lch_rm(const char *root, const char *id, bool force, bool volumes, struct su_error *e)
{
	_cleanup_free_ char *dir = lch_containers_dir(root), *gone = su_asprintf(".rm-%s", id);
	_cleanup_close_ int lock = -1, dfd = -1;
	struct lch_spec s = {0};
	bool went = false;
	int r = -1;

	if (!dir || !gone)
		return su_error_set(e, ENOMEM, "remove container %s", id);
	if (lch_load(root, id, &s, e) < 0)
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		su_error_set(e, errno, "open %s", dir);
	else if ((lock = lock_stopped(root, &s, force, &went, e)) >= 0 &&
		 mark_removing(root, id, e) == 0 && drop_volumes(root, &s, volumes, e) == 0 &&
		 commit_removal(dfd, dir, id, gone, e) == 0)
		r = 0;
	if (r < 0 && !went)
		su_error_wrap(e, "remove container %s", s.name);
	lch_spec_free(&s);
	if (r < 0)
		return went ? 0 : -1;
	/* Step 4.  The container is gone already: a tree that cannot be
	 * deleted now is deleted by the next rm. */
	if (remove_tree(dfd, dir, gone, e) < 0)
		su_warn("%s (retried by the next rm)", e->msg);
	return 0;
}

/* ---- exec ---- */

static int enter_namespaces(pid_t pid, struct su_error *e)
{
	/* The user namespace first (it grants the rights for the others),
	 * the mount namespace last (it changes what /proc/PID means). */
	static const struct {
		const char *name;
		int type;
	} ns[] = {{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		  {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}};
	int fds[ARRAY_SIZE(ns)];
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		char path[64], self[64];
		struct stat a, b;

		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns[i].name);
		snprintf(self, sizeof(self), "/proc/self/ns/%s", ns[i].name);
		fds[i] = -1;
		if (stat(path, &a) < 0 || stat(self, &b) < 0)
			continue;
		if (a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			continue;
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
	}
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		if (fds[i] < 0)
			continue;
		if (r == 0 && setns(fds[i], ns[i].type) < 0)
			r = su_error_set(e, errno, "enter the %s namespace", ns[i].name);
		close(fds[i]);
	}
	return r;
}

/* The caller forwards its signals to the command; a handler can only find
 * it in a static. */
static pid_t forward_pid;

static void exec_forward(int sig)
{
	if (forward_pid > 0)
		kill(forward_pid, sig);
}

static void exec_ignore(int sig)
{
	(void)sig;
}

static const int exec_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

struct exec_helper {
	const struct lch_exec_opts *o;
	const struct lch_spec *spec;
	char **env;
	pid_t init;
	int sock;
};

static void helper_fail(int sock, const struct su_error *e) __attribute__((noreturn));
static void helper_fail(int sock, const struct su_error *e)
{
	char msg[1100];
	int n = snprintf(msg, sizeof(msg), "E%s", e->msg);

	send(sock, msg, (size_t)n, MSG_NOSIGNAL);
	_exit(126);
}

/* The command's process: its terminal or stdin, then execve. */
static void exec_child(const struct exec_helper *h, int slave) __attribute__((noreturn));
static void exec_child(const struct exec_helper *h, int slave)
{
	struct su_error ce = {0};
	int rc;

	if (slave >= 0) {
		setsid();
		ioctl(slave, TIOCSCTTY, 0);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
	} else if (!h->o->interactive) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
	}
	rc = lch_exec_command(h->o->argv, h->env, h->o->user ? h->o->user : h->spec->user,
			      h->o->workdir ? h->o->workdir : h->spec->workdir, &ce);
	fprintf(stderr, "strata: %s\n", ce.msg);
	_exit(rc);
}

/* Runs in a child of the caller, so the caller itself never enters the
 * container's namespaces (a process whose children land in another PID
 * namespace cannot be stopped by a ptrace-based tool such as LSan's leak
 * check, and the caller stays on the host's mounts).  Enters them, opens
 * the pty in the container's devpts and passes its master up, forks the
 * command, reports its pid ("P<pid>", in the caller's PID namespace too)
 * and exits with its status.  Never returns; _exit skips atexit work. */
static void exec_helper_run(const struct exec_helper *h) __attribute__((noreturn));
static void exec_helper_run(const struct exec_helper *h)
{
	struct su_error e = {0};
	struct winsize ws;
	int master = -1, slave = -1, st, term;
	char msg[32];
	pid_t pid;

	/* The command gets the signals from the caller; a handler (not
	 * SIG_IGN) is reset by execve. */
	for (size_t i = 0; i < ARRAY_SIZE(exec_sigs); i++)
		signal(exec_sigs[i], exec_ignore);
	if (enter_namespaces(h->init, &e) < 0)
		helper_fail(h->sock, &e);
	if (h->o->tty) {
		char name[64];

		master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) ||
		    (slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
			su_error_set(&e, errno, "open a pty in the container");
			helper_fail(h->sock, &e);
		}
		/* The size before the command runs, as for `run -t`. */
		term = lch_terminal_fd(&ws);
		if (term >= 0)
			ioctl(master, TIOCSWINSZ, &ws);
		if (lch_send_fd(h->sock, master) < 0) {
			su_error_set(&e, errno, "pass the pty");
			helper_fail(h->sock, &e);
		}
		close(master);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		su_error_set(&e, errno, "fork");
		helper_fail(h->sock, &e);
	}
	if (pid == 0)
		exec_child(h, slave);
	if (slave >= 0)
		close(slave);
	snprintf(msg, sizeof(msg), "P%d", (int)pid);
	send(h->sock, msg, strlen(msg), MSG_NOSIGNAL);
	close(h->sock);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* The helper's report: the pty master (tty), then "P<pid>" or "E<msg>". */
static int exec_report(int sock, bool tty, int *master, pid_t *pid, struct su_error *e)
{
	char buf[1200];
	ssize_t n;

	*master = -1;
	if (tty) {
		char peek;

		if (recv(sock, &peek, 1, MSG_PEEK) == 1 && peek == 'F')
			*master = lch_recv_fd(sock);
	}
	n = recv(sock, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return su_error_set(e, 0, "exec: the helper died");
	buf[n] = 0;
	if (buf[0] == 'E')
		return su_error_set(e, 0, "%s", buf + 1);
	*pid = (pid_t)atoi(buf + 1);
	return 0;
}

int lch_exec(const char *root, const char *id, const struct lch_exec_opts *o, struct su_error *e)
{
	struct lch_spec s = {0};
	struct lch_state st;
	struct termios saved;
	bool raw = false;
	int sv[2], master = -1, status, r = 0;
	pid_t helper, cmd = 0;

	if (lch_load(root, id, &s, e) < 0)
		return -1;
	lch_state_read_settled(root, id, &st);
	if (st.removing)
		r = su_error_set(e, 0, "container %s is being removed", s.name);
	else if (lch_state_actual(&st) != LCH_RUNNING || !lch_proc_running(&st.init))
		r = su_error_set(e, 0, "container %s is not running", id);
	if (r < 0) {
		lch_state_free(&st);
		lch_spec_free(&s);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		lch_state_free(&st);
		lch_spec_free(&s);
		return su_error_set(e, errno, "socketpair");
	}
	fflush(NULL);
	helper = fork();
	if (helper == 0) {
		struct exec_helper h = {.o = o, .spec = &s, .init = st.init.pid, .sock = sv[1]};

		close(sv[0]);
		h.env = lch_env_merge(s.env, o->env);
		exec_helper_run(&h);
	}
	close(sv[1]);
	lch_state_free(&st);
	lch_spec_free(&s);
	if (helper < 0) {
		close(sv[0]);
		return su_error_set(e, errno, "fork");
	}
	r = exec_report(sv[0], o->tty, &master, &cmd, e);
	close(sv[0]);
	if (r < 0) {
		if (master >= 0)
			close(master);
		waitpid(helper, NULL, 0);
		return -1;
	}
	forward_pid = cmd;
	for (size_t i = 0; i < ARRAY_SIZE(exec_sigs); i++)
		signal(exec_sigs[i], exec_forward);
	if (master >= 0) {
		if (isatty(0) && tcgetattr(0, &saved) == 0) {
			struct termios t = saved;

			cfmakeraw(&t);
			raw = tcsetattr(0, TCSANOW, &t) == 0;
		}
		lch_pty_relay(master, o->interactive ? 0 : -1, 1,
			      lch_terminal_fd(&(struct winsize){0}));
		close(master);
	}
	while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
		;
	forward_pid = 0;
	if (raw)
		tcsetattr(0, TCSANOW, &saved);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
