/* launcher/init: PID 1 of a container (runs the command as its child, reaps
 * every zombie, forwards signals, exits with the command's status) and what
 * the command's process does before execve: user, capabilities reduced to
 * Docker's default set, no_new_privs, working directory, environment. */
#include "launcher/launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

extern char **environ;

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

/* Docker's default capabilities (moby oci/caps/defaults.go). */
static const int default_caps[] = {
    CAP_CHOWN,	 CAP_DAC_OVERRIDE, CAP_FSETID,		 CAP_FOWNER,
    CAP_MKNOD,	 CAP_NET_RAW,	   CAP_SETGID,		 CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,	   CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,	 CAP_AUDIT_WRITE,
};

static bool is_default_cap(int cap)
{
	for (size_t i = 0; i < ARRAY_SIZE(default_caps); i++)
		if (default_caps[i] == cap)
			return true;
	return false;
}

static bool setgroups_denied(void)
{
	_cleanup_free_ char *s = NULL;

	return su_read_file(AT_FDCWD, "/proc/self/setgroups", &s, NULL, 64) == 0 &&
	       su_str_has_prefix(s, "deny");
}

int lch_caps_and_user(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, struct su_error *e)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	for (int cap = 0; cap < 64; cap++) {
		if (is_default_cap(cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; /* past the kernel's last capability */
			return su_error_set(e, errno, "drop capability %d", cap);
		}
	}
	if (setgroups(ngroups, groups) < 0 && !(errno == EPERM && setgroups_denied()))
		return su_error_set(e, errno, "setgroups");
	if (setresgid(gid, gid, gid) < 0)
		return su_error_set(e, errno, "setgid %u (is it mapped in the user namespace?)",
				    (unsigned)gid);
	if (setresuid(uid, uid, uid) < 0)
		return su_error_set(e, errno, "setuid %u (is it mapped in the user namespace?)",
				    (unsigned)uid);
	if (uid == 0)
		for (size_t i = 0; i < ARRAY_SIZE(default_caps); i++) {
			int c = default_caps[i];

			data[c / 32].effective |= 1u << (c % 32);
			data[c / 32].permitted |= 1u << (c % 32);
			data[c / 32].inheritable |= 1u << (c % 32);
		}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return su_error_set(e, errno, "capset");
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	return 0;
}

static bool env_has(char **env, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], key, kl) && env[i][kl] == '=')
			return true;
	return false;
}

int lch_exec_command(char **argv, char **env, const char *user, const char *workdir,
		     struct su_error *e)
{
	_cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *home = NULL;
	gid_t groups[64];
	size_t ngroups = ARRAY_SIZE(groups), n = su_strv_len(env);
	uid_t uid;
	gid_t gid;
	char **full;

	if (lch_user_resolve(rootfd, user, &uid, &gid, groups, &ngroups, &home, e) < 0)
		return 125;
	if (workdir && *workdir && su_mkdir_p(AT_FDCWD, workdir, 0755) < 0 && errno != EEXIST)
		return su_error_set(e, errno, "create working directory %s", workdir), 125;
	if (lch_caps_and_user(uid, gid, groups, ngroups, e) < 0)
		return 125;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return su_error_set(e, errno, "no_new_privs"), 125;
	if (!workdir || !*workdir)
		workdir = "/";
	if (chdir(workdir) < 0)
		return su_error_set(e, errno, "chdir to %s", workdir), 125;
	full = calloc(n + 3, sizeof(*full));
	if (!full)
		return su_error_set(e, ENOMEM, "env"), 125;
	memcpy(full, env, n * sizeof(*full));
	if (!env_has(env, "HOME"))
		full[n++] = su_asprintf("HOME=%s", home ? home : "/");
	if (!env_has(env, "HOSTNAME")) {
		char h[256] = "";

		gethostname(h, sizeof(h) - 1);
		full[n++] = su_asprintf("HOSTNAME=%s", h);
	}
	environ = full;
	execvp(argv[0], argv);
	su_error_set(e, errno, "exec %s", argv[0]);
	return errno == ENOENT ? 127 : 126;
}

static void on_signal(int sig)
{
	(void)sig;
}

static pid_t spawn_command(const struct lch_spec *spec, int tty_fd, const sigset_t *old)
{
	pid_t pid = fork();
	struct su_error e = {0};
	int rc;

	if (pid != 0)
		return pid;
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		signal(forwarded[i], SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, old, NULL);
	if (tty_fd >= 0) {
		setsid();
		if (ioctl(tty_fd, TIOCSCTTY, 0) < 0 || dup2(tty_fd, 0) < 0 || dup2(tty_fd, 1) < 0 ||
		    dup2(tty_fd, 2) < 0)
			_exit(125);
		if (tty_fd > 2)
			close(tty_fd);
	} else {
		/* Its own process group, so a shell's job control works. */
		setpgid(0, 0);
	}
	rc = lch_exec_command(spec->argv, spec->env, spec->user, spec->workdir, &e);
	fprintf(stderr, "strata: %s\n", e.msg);
	_exit(rc);
}

void lch_init_run(const struct lch_spec *spec, int tty_fd, int sync_fd)
{
	sigset_t all, old;
	pid_t child;
	int status = 0, code = 0;

	sigemptyset(&all);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++) {
		sigaddset(&all, forwarded[i]);
		/* A handler, so signals from the parent namespace reach PID 1. */
		signal(forwarded[i], on_signal);
	}
	sigaddset(&all, SIGCHLD);
	sigprocmask(SIG_BLOCK, &all, &old);
	child = spawn_command(spec, tty_fd, &old);
	if (tty_fd >= 0)
		close(tty_fd);
	if (sync_fd >= 0)
		close(sync_fd);
	if (child < 0)
		_exit(125);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		pid_t p;

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != child)
				continue;
			code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
			/* The command is done: the rest of the namespace dies with
			 * PID 1. */
			_exit(code);
		}
	}
}
