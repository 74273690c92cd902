/* mmaptest: mmap(2) behaviour a shell test compares between a mount and a
 * plain directory.  Usage:
 *   mmaptest shared FILE OFF TEXT   MAP_SHARED write of TEXT at OFF, msync,
 *                                   munmap; prints what read(2) on a new fd
 *                                   then finds at OFF
 *   mmaptest private FILE OFF TEXT  MAP_PRIVATE write of TEXT at OFF; prints
 *                                   what the mapping and read(2) see
 *   mmaptest coherent FILE OFF TEXT maps FILE MAP_SHARED read-only, writes
 *                                   TEXT at OFF with pwrite(2) on another fd;
 *                                   prints what the mapping sees */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

static void *map_file(const char *path, int oflags, int prot, int flags, size_t *len)
{
	_cleanup_close_ int fd = open(path, oflags);
	struct stat st;
	void *p;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "mmaptest: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	*len = (size_t)st.st_size;
	p = mmap(NULL, *len, prot, flags, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mmaptest: mmap %s: %s\n", path, strerror(errno));
		return NULL;
	}
	return p;
}

/* Prints LEN bytes at OFF of PATH read through a fresh descriptor. */
static int print_read(const char *label, const char *path, off_t off, size_t len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY);
	_cleanup_free_ char *buf = calloc(1, len + 1);
	ssize_t n;

	if (fd < 0 || !buf)
		return 1;
	n = pread(fd, buf, len, off);
	if (n < 0)
		return 1;
	printf("%s: %.*s\n", label, (int)n, buf);
	return 0;
}

static int do_shared(const char *path, off_t off, const char *text)
{
	size_t len, tl = strlen(text);
	char *p = map_file(path, O_RDWR, PROT_READ | PROT_WRITE, MAP_SHARED, &len);

	if (!p)
		return 1;
	if ((size_t)off + tl > len) {
		fprintf(stderr, "mmaptest: file too small\n");
		return 1;
	}
	memcpy(p + off, text, tl);
	if (msync(p, len, MS_SYNC) < 0) {
		fprintf(stderr, "mmaptest: msync: %s\n", strerror(errno));
		return 1;
	}
	munmap(p, len);
	return print_read("read", path, off, tl);
}

static int do_private(const char *path, off_t off, const char *text)
{
	size_t len, tl = strlen(text);
	char *p = map_file(path, O_RDONLY, PROT_READ | PROT_WRITE, MAP_PRIVATE, &len);

	if (!p)
		return 1;
	if ((size_t)off + tl > len) {
		fprintf(stderr, "mmaptest: file too small\n");
		return 1;
	}
	memcpy(p + off, text, tl);
	printf("map: %.*s\n", (int)tl, p + off);
	if (print_read("read", path, off, tl))
		return 1;
	munmap(p, len);
	return print_read("after munmap", path, off, tl);
}

static int do_coherent(const char *path, off_t off, const char *text)
{
	size_t len, tl = strlen(text);
	char *p = map_file(path, O_RDONLY, PROT_READ, MAP_SHARED, &len);
	_cleanup_close_ int fd = -1;

	if (!p)
		return 1;
	if ((size_t)off + tl > len) {
		fprintf(stderr, "mmaptest: file too small\n");
		return 1;
	}
	printf("map before: %.*s\n", (int)tl, p + off);
	fd = open(path, O_WRONLY);
	if (fd < 0 || pwrite(fd, text, tl, off) != (ssize_t)tl) {
		fprintf(stderr, "mmaptest: pwrite %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("map after: %.*s\n", (int)tl, p + off);
	munmap(p, len);
	return 0;
}

int main(int argc, char **argv)
{
	off_t off;

	if (argc != 5) {
		fprintf(stderr, "usage: mmaptest shared|private|coherent FILE OFF TEXT\n");
		return 2;
	}
	off = strtoll(argv[3], NULL, 0);
	if (!strcmp(argv[1], "shared"))
		return do_shared(argv[2], off, argv[4]);
	if (!strcmp(argv[1], "private"))
		return do_private(argv[2], off, argv[4]);
	if (!strcmp(argv[1], "coherent"))
		return do_coherent(argv[2], off, argv[4]);
	fprintf(stderr, "mmaptest: unknown mode %s\n", argv[1]);
	return 2;
}
