/* copyrange: copies LEN bytes from SRC at SRCOFF to DST at DSTOFF with
 * copy_file_range(2) only (no read/write fallback), so a shell test can check
 * the syscall works between two files of one mount.
 * Usage: copyrange SRC SRCOFF DST DSTOFF LEN; prints the bytes copied. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/util.h"

int main(int argc, char **argv)
{
	_cleanup_close_ int in = -1;
	_cleanup_close_ int out = -1;
	off_t in_off, out_off;
	size_t left, total = 0;

	if (argc != 6) {
		fprintf(stderr, "usage: copyrange SRC SRCOFF DST DSTOFF LEN\n");
		return 2;
	}
	in_off = strtoll(argv[2], NULL, 0);
	out_off = strtoll(argv[4], NULL, 0);
	left = strtoull(argv[5], NULL, 0);
	in = open(argv[1], O_RDONLY);
	if (in < 0) {
		fprintf(stderr, "copyrange: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	out = open(argv[3], O_WRONLY | O_CREAT, 0644);
	if (out < 0) {
		fprintf(stderr, "copyrange: %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	while (left > 0) {
		ssize_t n = copy_file_range(in, &in_off, out, &out_off, left, 0);
		if (n < 0) {
			fprintf(stderr, "copyrange: copy_file_range: %s\n", strerror(errno));
			return 1;
		}
		if (n == 0)
			break;
		left -= (size_t)n;
		total += (size_t)n;
	}
	printf("%zu\n", total);
	return 0;
}
