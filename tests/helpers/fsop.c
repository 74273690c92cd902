/* tests/helpers/fsop.c: performs one file-system call and prints its outcome
 * as "OK" or the errno name (ENOENT, EXDEV, ...), so shell tests can compare
 * the error codes of strata-fs, kernel overlayfs and a plain directory.
 *   fsop OP ARGS...   OP: stat lstat read write creat append trunc mkdir rmdir
 *                     unlink rename noreplace exchange symlink readlink chmod
 *                     link opendir */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int read_all(const char *path)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

static int open_close(const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd < 0)
		return -1;
	return close(fd);
}

static int append(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	size_t len = strlen(text);

	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

static int do_readlink(const char *path)
{
	char buf[4096];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n < 0)
		return -1;
	buf[n] = '\0';
	printf("%s\n", buf);
	return 0;
}

static int do_opendir(const char *path)
{
	DIR *d = opendir(path);

	if (!d)
		return -1;
	return closedir(d);
}

static int run(const char *op, int argc, char **a)
{
	struct stat st;

	if (!strcmp(op, "stat") && argc >= 1)
		return stat(a[0], &st);
	if (!strcmp(op, "lstat") && argc >= 1)
		return lstat(a[0], &st);
	if (!strcmp(op, "read") && argc >= 1)
		return read_all(a[0]);
	if (!strcmp(op, "write") && argc >= 1)
		return open_close(a[0], O_WRONLY);
	if (!strcmp(op, "creat") && argc >= 1)
		return open_close(a[0], O_WRONLY | O_CREAT | O_EXCL);
	if (!strcmp(op, "trunc") && argc >= 1)
		return open_close(a[0], O_WRONLY | O_TRUNC);
	if (!strcmp(op, "append") && argc >= 2)
		return append(a[0], a[1]);
	if (!strcmp(op, "mkdir") && argc >= 1)
		return mkdir(a[0], 0755);
	if (!strcmp(op, "rmdir") && argc >= 1)
		return rmdir(a[0]);
	if (!strcmp(op, "unlink") && argc >= 1)
		return unlink(a[0]);
	if (!strcmp(op, "rename") && argc >= 2)
		return rename(a[0], a[1]);
	if (!strcmp(op, "noreplace") && argc >= 2)
		return renameat2(AT_FDCWD, a[0], AT_FDCWD, a[1], RENAME_NOREPLACE);
	if (!strcmp(op, "exchange") && argc >= 2)
		return renameat2(AT_FDCWD, a[0], AT_FDCWD, a[1], RENAME_EXCHANGE);
	if (!strcmp(op, "symlink") && argc >= 2)
		return symlink(a[0], a[1]);
	if (!strcmp(op, "link") && argc >= 2)
		return link(a[0], a[1]);
	if (!strcmp(op, "readlink") && argc >= 1)
		return do_readlink(a[0]);
	if (!strcmp(op, "chmod") && argc >= 2)
		return chmod(a[0], (mode_t)strtoul(a[1], NULL, 8));
	if (!strcmp(op, "opendir") && argc >= 1)
		return do_opendir(a[0]);
	fprintf(stderr, "fsop: unknown op or missing arguments: %s\n", op);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *name;

	if (argc < 2) {
		fprintf(stderr, "usage: fsop OP ARGS...\n");
		return 2;
	}
	if (run(argv[1], argc - 2, argv + 2) == 0) {
		printf("OK\n");
		return 0;
	}
	name = strerrorname_np(errno);
	printf("%s\n", name ? name : "EUNKNOWN");
	return 0;
}
