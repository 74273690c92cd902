/* seekhole: prints the data/hole map of a file as found by lseek(2)
 * SEEK_DATA/SEEK_HOLE, one "data START END" or "hole START END" line per
 * extent, so a shell test can compare a file's holes through a mount with a
 * reference.  Usage: seekhole FILE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

static int print_map(int fd, off_t size)
{
	off_t pos = 0;

	while (pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			data = size;
		else if (data < 0) {
			fprintf(stderr, "seekhole: SEEK_DATA %lld: %s\n", (long long)pos,
				strerror(errno));
			return 1;
		}
		if (data > pos)
			printf("hole %lld %lld\n", (long long)pos, (long long)data);
		if (data >= size)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			fprintf(stderr, "seekhole: SEEK_HOLE %lld: %s\n", (long long)data,
				strerror(errno));
			return 1;
		}
		printf("data %lld %lld\n", (long long)data, (long long)hole);
		pos = hole;
	}
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (argc != 2) {
		fprintf(stderr, "usage: seekhole FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "seekhole: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	printf("size %lld\n", (long long)st.st_size);
	return print_map(fd, st.st_size);
}
