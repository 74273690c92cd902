/* launcher/userns: the user namespace of a rootless container (the caller
 * mapped to root; its /etc/subuid and /etc/subgid ranges through
 * newuidmap/newgidmap when it has some) and finding the strata-fs binary. */
#include "launcher/launcher.h"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

char *lch_fs_binary(void)
{
	const char *env = getenv("STRATA_FS");
	char exe[4096], *slash, *path, *save = NULL, *dir;
	ssize_t n;

	if (env && *env)
		return strdup(env);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			char *p;

			*slash = 0;
			p = su_asprintf("%s/strata-fs", exe);
			if (p && access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	path = strdup(getenv("PATH") ?: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
	for (dir = path ? strtok_r(path, ":", &save) : NULL; dir;
	     dir = strtok_r(NULL, ":", &save)) {
		char *p = su_asprintf("%s/strata-fs", dir);

		if (p && access(p, X_OK) == 0) {
			free(path);
			return p;
		}
		free(p);
	}
	free(path);
	return strdup("strata-fs");
}

/* The first range of /etc/subuid (or subgid) for the user: by name or id. */
static bool subid_range(const char *file, const char *name, unsigned long id, unsigned long *start,
			unsigned long *count)
{
	_cleanup_fclose_ FILE *f = fopen(file, "re");
	char line[512], who[256];

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255[^:]:%lu:%lu", who, start, count) != 3)
			continue;
		if (*count > 0 &&
		    ((name && !strcmp(who, name)) ||
		     (strspn(who, "0123456789") == strlen(who) && strtoul(who, NULL, 10) == id)))
			return true;
	}
	return false;
}

static bool have_program(const char *prog)
{
	static const char *dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin"};
	char p[64];

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(p, sizeof(p), "%s/%s", dirs[i], prog);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

/* newuidmap PID 0 ID 1 1 START COUNT */
static int run_map_helper(const char *prog, pid_t pid, unsigned long id, unsigned long start,
			  unsigned long count)
{
	char a[5][32];
	pid_t c;
	int st;

	snprintf(a[0], sizeof(a[0]), "%d", (int)pid);
	snprintf(a[1], sizeof(a[1]), "%lu", id);
	snprintf(a[2], sizeof(a[2]), "%lu", start);
	snprintf(a[3], sizeof(a[3]), "%lu", count);
	c = fork();
	if (c < 0)
		return -1;
	if (c == 0) {
		execlp(prog, prog, a[0], "0", a[1], "1", "1", a[2], a[3], (char *)NULL);
		_exit(127);
	}
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int write_file(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || su_write_all(fd, text, strlen(text)) < 0)
		return -1;
	return 0;
}

/* Maps only the caller, as `unshare -r` does: the child writes its own maps. */
static int self_map(uid_t uid, gid_t gid)
{
	char m[64];

	snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)uid);
	if (write_file("/proc/self/uid_map", m) < 0)
		return -1;
	if (write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT)
		return -1;
	snprintf(m, sizeof(m), "0 %u 1\n", (unsigned)gid);
	return write_file("/proc/self/gid_map", m);
}

pid_t lch_fork_userns(struct su_error *e)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	struct passwd *pw = getpwuid(uid);
	unsigned long us = 0, uc = 0, gs = 0, gc = 0;
	bool helpers;
	int to_parent[2], to_child[2];
	char c = 0;
	pid_t pid;

	if (uid == 0) {
		/* Root, real or of a user namespace, needs no new one. */
		pid = fork();
		if (pid < 0)
			return su_error_set(e, errno, "fork");
		return pid;
	}
	helpers = subid_range("/etc/subuid", pw ? pw->pw_name : NULL, uid, &us, &uc) &&
		  subid_range("/etc/subgid", pw ? pw->pw_name : NULL, uid, &gs, &gc) &&
		  have_program("newuidmap") && have_program("newgidmap");
	if (pipe2(to_parent, O_CLOEXEC) < 0 || pipe2(to_child, O_CLOEXEC) < 0)
		return su_error_set(e, errno, "pipe");
	pid = fork();
	if (pid < 0)
		return su_error_set(e, errno, "fork");
	if (pid == 0) {
		close(to_parent[0]);
		close(to_child[1]);
		c = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'E';
		if (su_write_all(to_parent[1], &c, 1) < 0 || c == 'E')
			_exit(125);
		if (su_read_all(to_child[0], &c, 1) != 1 || c == 'E')
			_exit(125);
		if (c == 's' && self_map(uid, gid) < 0) {
			fprintf(stderr, "strata: write the user namespace maps: %s\n",
				strerror(errno));
			_exit(125);
		}
		close(to_parent[1]);
		close(to_child[0]);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			_exit(125);
		return 0;
	}
	close(to_parent[1]);
	close(to_child[0]);
	if (su_read_all(to_parent[0], &c, 1) != 1 || c != 'u') {
		close(to_parent[0]);
		close(to_child[1]);
		waitpid(pid, NULL, 0);
		return su_error_set(e, EPERM, "create a user namespace");
	}
	c = 's';
	if (helpers) {
		if (run_map_helper("newuidmap", pid, uid, us, uc) == 0 &&
		    run_map_helper("newgidmap", pid, gid, gs, gc) == 0)
			c = 'm';
		else
			su_warn("newuidmap/newgidmap failed; mapping only uid %u", (unsigned)uid);
	}
	su_write_all(to_child[1], &c, 1);
	close(to_parent[0]);
	close(to_child[1]);
	return pid;
}
