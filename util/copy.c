/* util/copy: copying a file's data the cheap way -- a reflink where the
 * filesystem shares extents, else copy_file_range over the data extents
 * only (holes stay holes), else plain reads and writes. */
#include "util/util.h"

#include <linux/fs.h>
#include <sys/ioctl.h>

static int copy_range_rw(int in, int out, off_t off, off_t end)
{
	char buf[65536];

	while (off < end) {
		size_t want = end - off < (off_t)sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
		ssize_t r = pread(in, buf, want, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		for (ssize_t done = 0; done < r;) {
			ssize_t w = pwrite(out, buf + done, r - done, off + done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			done += w;
		}
		off += r;
	}
	return 0;
}

static int copy_range(int in, int out, off_t off, off_t end)
{
	while (off < end) {
		loff_t io = off, oo = off;
		ssize_t r = copy_file_range(in, &io, out, &oo, end - off, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			      errno == EOPNOTSUPP || errno == EBADF))
			return copy_range_rw(in, out, off, end);
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		off += r;
	}
	return 0;
}

int su_copy_data(int in, int out, off_t size)
{
	off_t off = 0;
	int r;

	if (size == 0)
		return 0;
	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	while (off < size) {
		off_t data = lseek(in, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0) /* no SEEK_DATA here: copy everything */
			return copy_range(in, out, off, size);
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		r = copy_range(in, out, data, hole);
		if (r < 0)
			return r;
		off = hole;
	}
	return ftruncate(out, size) < 0 ? -errno : 0;
}
