/* tests/helpers/killat.c: runs a command under ptrace and kills it with
 * SIGKILL at its Nth syscall stop (entries and exits both count), so a test
 * can interrupt a verb at a chosen point of its work, reproducibly.
 *
 *   killat [-n N] [-c FILE] [-l FILE] CMD [ARG...]
 *     -n N     kill at stop N (1-based); 0 or absent: let CMD finish
 *     -c FILE  write the number of stops seen to FILE
 *     -l FILE  write "STOP NAME" for every syscall entry whose kind matters
 *              to crash consistency (rename, mkdir, unlink, link, fsync,
 *              flock, open), so a test can aim at those points
 * Exits with CMD's status, 137 when it was killed.  Only CMD itself is
 * traced (the verbs tested do not fork). */
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
    {SYS_openat, "open"},
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
	fputs("usage: killat [-n N] [-c FILE] [-l FILE] CMD [ARG...]\n", stderr);
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

int main(int argc, char **argv)
{
	const char *count_path = NULL, *log_path = NULL;
	unsigned long kill_at = 0, stops = 0;
	bool entry = true; /* syscall stops alternate: entry, exit */
	FILE *log = NULL;
	int opt, status;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+n:c:l:")) != -1) {
		switch (opt) {
		case 'n':
			kill_at = strtoul(optarg, NULL, 10);
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
	if (log_path && !(log = fopen(log_path, "w"))) {
		perror(log_path);
		return 2;
	}

	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0) {
			perror("ptrace");
			_exit(2);
		}
		raise(SIGSTOP);
		execvp(argv[optind], argv + optind);
		perror(argv[optind]);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFSTOPPED(status) ||
	    ptrace(PTRACE_SETOPTIONS, pid, NULL,
		   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) <
		0) {
		perror("killat: trace");
		kill(pid, SIGKILL);
		return 2;
	}

	for (int sig = 0;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig) < 0 && errno != ESRCH) {
			perror("killat: PTRACE_SYSCALL");
			kill(pid, SIGKILL);
			return 2;
		}
		sig = 0;
		if (waitpid(pid, &status, 0) < 0) {
			perror("killat: waitpid");
			return 2;
		}
		if (WIFEXITED(status) || WIFSIGNALED(status))
			break;
		if (!WIFSTOPPED(status) || status >> 16)
			continue; /* the exec event: nothing to deliver */
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			sig = WSTOPSIG(status); /* a real signal: deliver it */
			continue;
		}
		stops++;
		if (log && entry) {
			const char *kind = sys_kind(syscall_nr(pid));
			if (kind)
				fprintf(log, "%lu %s\n", stops, kind);
		}
		entry = !entry;
		if (kill_at && stops == kill_at) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
	}
	if (log)
		fclose(log);
	write_count(count_path, stops);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
