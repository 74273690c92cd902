/* locktest: POSIX fcntl record locks between two processes on one file.
 * The parent write-locks bytes [0,100); a child (own open) then reports what
 * F_SETLK on an overlapping range, F_GETLK on it, and F_SETLK on a disjoint
 * range do; after the parent unlocks, the child locks the overlapping range.
 * Prints one line per step, for the shell test to compare.
 * Usage: locktest FILE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

static int set_lock(int fd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	return fcntl(fd, F_SETLK, &fl) < 0 ? -errno : 0;
}

static const char *lock_result(int r)
{
	if (r == 0)
		return "ok";
	if (r == -EAGAIN || r == -EACCES)
		return "busy";
	return strerror(-r);
}

/* The child's side: runs while the parent holds [0,100). */
static int child_probe(const char *path, pid_t holder, int go_fd, int done_fd)
{
	_cleanup_close_ int fd = open(path, O_RDWR);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 100};
	char c;

	if (fd < 0) {
		printf("child open: %s\n", strerror(errno));
		return 1;
	}
	printf("overlapping write lock: %s\n", lock_result(set_lock(fd, F_WRLCK, 50, 100)));
	printf("overlapping read lock: %s\n", lock_result(set_lock(fd, F_RDLCK, 99, 1)));
	if (fcntl(fd, F_GETLK, &fl) < 0) {
		printf("getlk: %s\n", strerror(errno));
	} else {
		printf("getlk type: %s\n", fl.l_type == F_WRLCK	  ? "F_WRLCK"
					   : fl.l_type == F_UNLCK ? "F_UNLCK"
								  : "F_RDLCK");
		printf("getlk pid is holder: %s\n", fl.l_pid == holder ? "yes" : "no");
		printf("getlk range: %lld+%lld\n", (long long)fl.l_start, (long long)fl.l_len);
	}
	printf("disjoint write lock: %s\n", lock_result(set_lock(fd, F_WRLCK, 200, 100)));
	fflush(stdout);
	/* Tell the parent to unlock, wait until it has. */
	if (write(done_fd, "x", 1) != 1 || read(go_fd, &c, 1) != 1)
		return 1;
	printf("after unlock write lock: %s\n", lock_result(set_lock(fd, F_WRLCK, 50, 100)));
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_close_ int fd = -1;
	int to_child[2], to_parent[2], status;
	pid_t pid;
	char c;

	if (argc != 2) {
		fprintf(stderr, "usage: locktest FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "locktest: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("parent write lock: %s\n", lock_result(set_lock(fd, F_WRLCK, 0, 100)));
	fflush(stdout);
	if (pipe(to_child) < 0 || pipe(to_parent) < 0)
		return 1;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		int r = child_probe(argv[1], getppid(), to_child[0], to_parent[1]);
		fflush(stdout);
		_exit(r);
	}
	if (read(to_parent[0], &c, 1) != 1)
		return 1;
	printf("parent unlock: %s\n", lock_result(set_lock(fd, F_UNLCK, 0, 100)));
	fflush(stdout);
	if (write(to_child[1], "x", 1) != 1)
		return 1;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}
