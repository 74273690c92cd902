/* tests/helpers/killat.c: runs a command under ptrace and kills it with
 * SIGKILL at its Nth syscall stop (entries and exits both count), so a test
 * can interrupt a verb at a chosen point of its work, reproducibly.
 *
 *   killat [-f] [-n N] [-c FILE] [-l FILE] CMD [ARG...]
 *     -f       also trace every process and thread CMD starts (their stops
 *              count too) and kill them all at stop N, as a crash of the
 *              machine would; for verbs that do part of their work in a
 *              child and do not leave processes running when they end
 *     -n N     kill at stop N (1-based); 0 or absent: let CMD finish
 *     -c FILE  write the number of stops seen to FILE
 *     -l FILE  write "STOP NAME" for every syscall entry whose kind matters
 *              to crash consistency (rename, mkdir, unlink, link, fsync,
 *              flock, open, fork), so a test can aim at those points
 * Exits with CMD's status, 137 when it was killed.  Without -f only CMD
 * itself is traced: children it starts run on, and survive the kill. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

struct sysname {
	long nr;
	const char *name;
};

static const struct sysname interesting[] = {
#ifdef SYS_rename
    {SYS_rename, "rename"},
#endif
    {SYS_renameat, "rename"}, {SYS_renameat2, "rename"},
#ifdef SYS_mkdir
    {SYS_mkdir, "mkdir"},
#endif
    {SYS_mkdirat, "mkdir"},
#ifdef SYS_unlink
    {SYS_unlink, "unlink"},   {SYS_rmdir, "unlink"},
#endif
    {SYS_unlinkat, "unlink"}, {SYS_linkat, "link"},	 {SYS_fsync, "fsync"},
    {SYS_fdatasync, "fsync"}, {SYS_syncfs, "fsync"},	 {SYS_flock, "flock"},
    {SYS_openat, "open"},     {SYS_clone, "fork"},
#ifdef SYS_clone3
    {SYS_clone3, "fork"},
#endif
#ifdef SYS_fork
    {SYS_fork, "fork"},	      {SYS_vfork, "fork"},
#endif
};

/* One traced task.  Syscall stops alternate entry, exit per task; a task
 * auto-attached on fork first reports a SIGSTOP that must not be
 * delivered. */
struct task {
	pid_t pid;
	bool entry;
	bool started;
};

struct tracer {
	struct task *tasks;
	size_t n, cap;
	pid_t main;
	int main_status;
	bool main_done;
	unsigned long stops, kill_at;
	FILE *log;
};

static const char *sys_kind(long nr)
{
	for (size_t i = 0; i < sizeof(interesting) / sizeof(interesting[0]); i++)
		if (interesting[i].nr == nr)
			return interesting[i].name;
	return NULL;
}

static long syscall_nr(pid_t pid)
{
	struct user_regs_struct regs;

	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0)
		return -1;
#if defined(__x86_64__)
	return (long)regs.orig_rax;
#elif defined(__aarch64__)
	return (long)regs.regs[8];
#else
	return -1;
#endif
}

static void usage(void)
{
	fputs("usage: killat [-f] [-n N] [-c FILE] [-l FILE] CMD [ARG...]\n", stderr);
	exit(2);
}

static void write_count(const char *path, unsigned long n)
{
	FILE *f;

	if (!path)
		return;
	if (!(f = fopen(path, "w")) || fprintf(f, "%lu\n", n) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

static struct task *task_find(struct tracer *t, pid_t pid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->tasks[i].pid == pid)
			return &t->tasks[i];
	return NULL;
}

static struct task *task_add(struct tracer *t, pid_t pid, bool started)
{
	struct task *k = task_find(t, pid);

	if (k)
		return k;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		struct task *v = realloc(t->tasks, cap * sizeof(*v));

		if (!v) {
			perror("killat");
			exit(2);
		}
		t->tasks = v;
		t->cap = cap;
	}
	t->tasks[t->n] = (struct task){.pid = pid, .entry = true, .started = started};
	return &t->tasks[t->n++];
}

static void task_del(struct tracer *t, pid_t pid)
{
	struct task *k = task_find(t, pid);

	if (k)
		*k = t->tasks[--t->n];
}

/* Forgets a task that ended, keeping CMD's own status. */
static void task_gone(struct tracer *t, pid_t pid, int status)
{
	task_del(t, pid);
	if (pid == t->main) {
		t->main_status = status;
		t->main_done = true;
	}
}

/* SIGKILL to every traced task, then reaps until none is left (a child
 * being forked right now reports its first stop later: it is killed
 * then). */
static void kill_all(struct tracer *t)
{
	int status;
	pid_t pid;

	for (size_t i = 0; i < t->n; i++)
		kill(t->tasks[i].pid, SIGKILL);
	while ((pid = waitpid(-1, &status, __WALL)) > 0) {
		if (WIFEXITED(status) || WIFSIGNALED(status))
			task_gone(t, pid, status);
		else
			kill(pid, SIGKILL);
	}
}

static pid_t spawn(char **argv)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) {
			perror("ptrace");
			_exit(2);
		}
		raise(SIGSTOP);
		execvp(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	return pid;
}

/* Handles one stop of pid: returns the signal to resume it with, or -1
 * when this was the stop to kill at (everything is gone then). */
static int on_stop(struct tracer *t, pid_t pid, int status)
{
	struct task *k = task_add(t, pid, false);
	int event = status >> 16;

	if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK ||
	    event == PTRACE_EVENT_CLONE) {
		unsigned long child;

		if (ptrace(PTRACE_GETEVENTMSG, pid, NULL, &child) == 0)
			task_add(t, (pid_t)child, false);
		return 0;
	}
	if (event)
		return 0; /* exec: nothing to deliver */
	if (WSTOPSIG(status) == SIGSTOP && !k->started) {
		k->started = true; /* the attach stop of a new child */
		return 0;
	}
	if (WSTOPSIG(status) != (SIGTRAP | 0x80))
		return WSTOPSIG(status); /* a real signal: deliver it */
	t->stops++;
	if (t->log && k->entry) {
		const char *kind = sys_kind(syscall_nr(pid));

		if (kind)
			fprintf(t->log, "%lu %s\n", t->stops, kind);
	}
	k->entry = !k->entry;
	if (t->kill_at && t->stops == t->kill_at) {
		kill_all(t);
		return -1;
	}
	return 0;
}

/* Resumes every stop until no traced task is left or the kill is done. */
static int trace(struct tracer *t)
{
	pid_t pid = t->main;
	int sig = 0, status;

	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig) < 0 && errno != ESRCH) {
			perror("killat: PTRACE_SYSCALL");
			kill_all(t);
			return -1;
		}
		do {
			pid = waitpid(-1, &status, __WALL);
			if (pid < 0 && errno == EINTR)
				continue;
			if (pid < 0 && errno == ECHILD)
				return 0;
			if (pid < 0) {
				perror("killat: waitpid");
				kill_all(t);
				return -1;
			}
			if (WIFEXITED(status) || WIFSIGNALED(status)) {
				task_gone(t, pid, status);
				pid = -1;
			}
		} while (pid < 0 && t->n > 0);
		if (pid < 0 || (sig = on_stop(t, pid, status)) < 0)
			return 0;
	}
}

int main(int argc, char **argv)
{
	const char *count_path = NULL, *log_path = NULL;
	struct tracer t = {0};
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
	int opt, status;

	while ((opt = getopt(argc, argv, "+fn:c:l:")) != -1) {
		switch (opt) {
		case 'f':
			opts |= PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE;
			break;
		case 'n':
			t.kill_at = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			count_path = optarg;
			break;
		case 'l':
			log_path = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	if (log_path && !(t.log = fopen(log_path, "w"))) {
		perror(log_path);
		return 2;
	}
	t.main = spawn(argv + optind);
	if (waitpid(t.main, &status, 0) < 0 || !WIFSTOPPED(status) ||
	    ptrace(PTRACE_SETOPTIONS, t.main, NULL, (void *)opts) < 0) {
		perror("killat: trace");
		kill(t.main, SIGKILL);
		return 2;
	}
	task_add(&t, t.main, true);
	if (trace(&t) < 0)
		return 2;
	if (t.log)
		fclose(t.log);
	write_count(count_path, t.stops);
	if (!t.main_done)
		return 2;
	if (WIFSIGNALED(t.main_status))
		return 128 + WTERMSIG(t.main_status);
	return WIFEXITED(t.main_status) ? WEXITSTATUS(t.main_status) : 2;
}
