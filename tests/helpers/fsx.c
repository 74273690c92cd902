/* fsx: a data-integrity exerciser in the spirit of fsx.  Random reads,
 * writes, truncates, mmap, fallocate, copy_file_range and reopen cycles on N
 * files, each checked against an in-memory model of what the files hold.
 *
 *   fsx --prepare [-i ISEED] [-N FILES] [-S MAXSIZE] DIR   creates the files
 *   fsx [-s SEED] [-n OPS] [-i ISEED] [-N FILES] [-S MAXSIZE] [--model FILE] DIR
 *   fsx --verify-only --model FILE DIR
 *
 * The initial contents are a function of ISEED, so --prepare writes them into
 * a lower layer and a run on the mount expects them.  A run saves its final
 * model with --model, so the caller can remount and check persistence.
 *
 * -V EVERY closes everything and checks every file each EVERY operations.
 * -M maps only through descriptors opened for writing: kernel overlayfs maps
 * the lower file through a descriptor opened before copy-up (documented as
 * non-standard there; strata-fs must not need -M).
 * Exits 0 when all is well, 1 on a mismatch or a failed call (the tail of the
 * operation log is printed), 2 on a usage error. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define LOG_KEEP  50
#define MODEL_TAG "fsx-model-1"

enum op_kind {
	OP_READ,
	OP_READ_RO,
	OP_READ_DIRECT,
	OP_WRITE,
	OP_APPEND,
	OP_TRUNCATE,
	OP_MAPREAD,
	OP_MAPWRITE,
	OP_FALLOC,
	OP_FALLOC_KEEP,
	OP_PUNCH,
	OP_REOPEN,
	OP_REOPEN_TRUNC,
	OP_COPY_RANGE,
	OP_FSYNC,
	OP_DROP_CACHE,
	OP_STAT,
	OP_COUNT,
};

static const char *const op_names[OP_COUNT] = {
    [OP_READ] = "read",
    [OP_READ_RO] = "read-ro",
    [OP_READ_DIRECT] = "read-direct",
    [OP_WRITE] = "write",
    [OP_APPEND] = "append",
    [OP_TRUNCATE] = "truncate",
    [OP_MAPREAD] = "mapread",
    [OP_MAPWRITE] = "mapwrite",
    [OP_FALLOC] = "fallocate",
    [OP_FALLOC_KEEP] = "falloc-keep",
    [OP_PUNCH] = "punch-hole",
    [OP_REOPEN] = "reopen",
    [OP_REOPEN_TRUNC] = "reopen-trunc",
    [OP_COPY_RANGE] = "copy-range",
    [OP_FSYNC] = "fsync",
    [OP_DROP_CACHE] = "drop-cache",
    [OP_STAT] = "stat",
};

/* Relative frequencies of the operations. */
static const unsigned op_weights[OP_COUNT] = {
    [OP_READ] = 14,	   [OP_READ_RO] = 8,	 [OP_READ_DIRECT] = 8, [OP_WRITE] = 16,
    [OP_APPEND] = 3,	   [OP_TRUNCATE] = 5,	 [OP_MAPREAD] = 6,     [OP_MAPWRITE] = 6,
    [OP_FALLOC] = 3,	   [OP_FALLOC_KEEP] = 2, [OP_PUNCH] = 3,       [OP_REOPEN] = 3,
    [OP_REOPEN_TRUNC] = 1, [OP_COPY_RANGE] = 6,	 [OP_FSYNC] = 2,       [OP_DROP_CACHE] = 3,
    [OP_STAT] = 4,
};

struct mfile {
	char *path;
	uint8_t *data; /* model contents, max_size bytes, zero past size */
	uint32_t *who; /* operation number that last set each byte (0: initial) */
	size_t size;
	int fd;	    /* O_RDWR, the descriptor writes go through */
	int ro_fd;  /* O_RDONLY, opened before the writes it must see */
	int dio_fd; /* O_RDONLY|O_DIRECT, the same, but past the page cache */
};

struct log_entry {
	uint64_t n;
	enum op_kind op;
	int file, file2;
	uint64_t off, len, off2, res;
};

struct fsx {
	uint64_t rng;
	size_t nfiles, max_size;
	struct mfile *files;
	uint64_t opno;
	struct log_entry log[LOG_KEEP];
	uint64_t nlog;
	long page;
	uint8_t *buf;
	uint8_t *dbuf;	  /* page-aligned, for O_DIRECT */
	bool no_direct;	  /* the filesystem refused O_DIRECT */
	bool map_rw_only; /* -M: map only through descriptors opened for writing */
};

/* splitmix64: small, seedable, good enough to pick operations and data. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Where a SIGBUS in a mapping jumps back to (a signal handler needs a global). */
static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, sig);
}

static uint64_t rnd_below(struct fsx *f, uint64_t n)
{
	return n ? rnd(&f->rng) % n : 0;
}

static void fill_random(uint64_t *s, uint8_t *p, size_t len)
{
	while (len > 0) {
		uint64_t v = rnd(s);
		size_t k = len < 8 ? len : 8;
		memcpy(p, &v, k);
		p += k;
		len -= k;
	}
}

static void print_log(const struct fsx *f)
{
	uint64_t first = f->nlog > LOG_KEEP ? f->nlog - LOG_KEEP : 0;
	fprintf(stderr, "fsx: last %" PRIu64 " operations:\n", f->nlog - first);
	for (uint64_t i = first; i < f->nlog; i++) {
		const struct log_entry *e = &f->log[i % LOG_KEEP];
		fprintf(stderr, "  #%-7" PRIu64 " %-12s file %d off 0x%" PRIx64 " len 0x%" PRIx64,
			e->n, op_names[e->op], e->file, e->off, e->len);
		if (e->op == OP_COPY_RANGE)
			fprintf(stderr, " -> file %d off 0x%" PRIx64, e->file2, e->off2);
		fprintf(stderr, " => 0x%" PRIx64 "\n", e->res);
	}
}

static void fail(const struct fsx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((noreturn));
static void fail(const struct fsx *f, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "fsx: FAIL at operation %" PRIu64 ": ", f->opno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_log(f);
	exit(1);
}

static struct log_entry *log_op(struct fsx *f, enum op_kind op, int file, uint64_t off,
				uint64_t len)
{
	struct log_entry *e = &f->log[f->nlog++ % LOG_KEEP];
	*e = (struct log_entry){.n = f->opno, .op = op, .file = file, .off = off, .len = len};
	return e;
}

/* Compares got[0..len) with the model of file i at off; fails on a difference. */
static void check_bytes(const struct fsx *f, int i, const char *how, uint64_t off,
			const uint8_t *got, size_t len)
{
	const struct mfile *m = &f->files[i];
	if (memcmp(got, m->data + off, len) == 0)
		return;
	size_t d = 0;
	while (got[d] == m->data[off + d])
		d++;
	size_t nbad = 0;
	for (size_t k = d; k < len; k++)
		nbad += got[k] != m->data[off + k];
	fprintf(stderr,
		"fsx: %s of %s: first difference at offset 0x%" PRIx64
		" (%zu of 0x%zx bytes differ), size 0x%zx\n",
		how, m->path, off + d, nbad, len, m->size);
	fprintf(stderr, "fsx: byte 0x%" PRIx64 " was last set by operation %" PRIu32 "%s\n",
		off + d, m->who[off + d], m->who[off + d] ? "" : " (initial contents)");
	fprintf(stderr, "fsx:   offset        expected  got\n");
	for (size_t k = d; k < len && k < d + 16; k++)
		fprintf(stderr, "fsx:   0x%08" PRIx64 "    0x%02x      0x%02x%s\n", off + k,
			m->data[off + k], got[k], m->data[off + k] != got[k] ? "  *" : "");
	fail(f, "data mismatch in %s", m->path);
}

static void model_set(struct fsx *f, int i, uint64_t off, const uint8_t *src, size_t len)
{
	struct mfile *m = &f->files[i];
	memmove(m->data + off, src, len);
	for (size_t k = 0; k < len; k++)
		m->who[off + k] = (uint32_t)f->opno;
	if (off + len > m->size)
		m->size = off + len;
}

static void model_zero(struct fsx *f, int i, uint64_t off, size_t len)
{
	struct mfile *m = &f->files[i];
	memset(m->data + off, 0, len);
	for (size_t k = 0; k < len; k++)
		m->who[off + k] = (uint32_t)f->opno;
}

static void model_resize(struct fsx *f, int i, size_t size)
{
	struct mfile *m = &f->files[i];
	if (size < m->size)
		model_zero(f, i, size, m->size - size);
	else if (size > m->size)
		model_zero(f, i, m->size, size - m->size);
	m->size = size;
}

static void open_fds(struct fsx *f, int i, int extra)
{
	struct mfile *m = &f->files[i];
	if (m->ro_fd < 0) {
		m->ro_fd = open(m->path, O_RDONLY);
		if (m->ro_fd < 0)
			fail(f, "open %s O_RDONLY: %m", m->path);
	}
	if (m->dio_fd < 0 && !f->no_direct) {
		m->dio_fd = open(m->path, O_RDONLY | O_DIRECT);
		if (m->dio_fd < 0 && errno == EINVAL) {
			printf("fsx: O_DIRECT refused on %s, no direct reads\n", m->path);
			f->no_direct = true;
		} else if (m->dio_fd < 0) {
			fail(f, "open %s O_RDONLY|O_DIRECT: %m", m->path);
		}
	}
	/* Opening for writing copies the file up: the read-only ones come first. */
	if (m->fd < 0) {
		m->fd = open(m->path, O_RDWR | extra);
		if (m->fd < 0)
			fail(f, "open %s O_RDWR: %m", m->path);
	}
}

static void close_fds(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	if (m->fd >= 0 && close(m->fd) < 0)
		fail(f, "close %s: %m", m->path);
	if (m->ro_fd >= 0 && close(m->ro_fd) < 0)
		fail(f, "close %s (read-only): %m", m->path);
	if (m->dio_fd >= 0 && close(m->dio_fd) < 0)
		fail(f, "close %s (O_DIRECT): %m", m->path);
	m->fd = m->ro_fd = m->dio_fd = -1;
}

static void read_exact(struct fsx *f, int fd, const char *path, uint64_t off, uint8_t *p,
		       size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, p + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail(f, "pread %s off 0x%" PRIx64 ": %m", path, off + done);
		if (r == 0)
			fail(f,
			     "pread %s: unexpected EOF at 0x%" PRIx64 ", expected 0x%" PRIx64
			     " more bytes",
			     path, off + done, (uint64_t)(len - done));
		done += (size_t)r;
	}
}

static void write_exact(struct fsx *f, int fd, const char *path, uint64_t off, const uint8_t *p,
			size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pwrite(fd, p + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail(f, "pwrite %s off 0x%" PRIx64 ": %m", path, off + done);
		done += (size_t)r;
	}
}

/* Picks a range [off, off+len) with len >= 1 and off+len <= limit. */
static void pick_range(struct fsx *f, size_t limit, uint64_t *off, uint64_t *len)
{
	*off = rnd_below(f, limit);
	uint64_t maxlen = limit - *off;
	/* Mostly small ranges, sometimes large ones. */
	uint64_t cap = rnd_below(f, 4) == 0 ? maxlen : (maxlen < 4096 ? maxlen : 4096);
	*len = 1 + rnd_below(f, cap);
}

static void op_read(struct fsx *f, int i, bool via_ro)
{
	struct mfile *m = &f->files[i];
	uint64_t off, len;
	pick_range(f, f->max_size, &off, &len);
	log_op(f, via_ro ? OP_READ_RO : OP_READ, i, off, len);
	ssize_t r = pread(via_ro ? m->ro_fd : m->fd, f->buf, len, (off_t)off);
	if (r < 0)
		fail(f, "pread %s: %m", m->path);
	uint64_t want = off >= m->size ? 0 : (m->size - off < len ? m->size - off : len);
	if ((uint64_t)r != want)
		fail(f,
		     "pread %s off 0x%" PRIx64 " len 0x%" PRIx64 " returned 0x%zx, expected "
		     "0x%" PRIx64 " (model size 0x%zx)",
		     m->path, off, len, r, want, m->size);
	check_bytes(f, i, via_ro ? "read (read-only fd)" : "read", off, f->buf, (size_t)r);
}

/* An O_DIRECT read goes to the filesystem whatever the page cache holds, so a
 * descriptor still reading the lower file after copy-up shows here. */
static void op_read_direct(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	uint64_t pg = (uint64_t)f->page;
	if (f->no_direct)
		return;
	uint64_t off = rnd_below(f, f->max_size / pg + 1) * pg;
	uint64_t len = (1 + rnd_below(f, 16)) * pg;
	log_op(f, OP_READ_DIRECT, i, off, len);
	ssize_t r = pread(m->dio_fd, f->dbuf, len, (off_t)off);
	if (r < 0)
		fail(f, "pread %s (O_DIRECT): %m", m->path);
	uint64_t want = off >= m->size ? 0 : (m->size - off < len ? m->size - off : len);
	if ((uint64_t)r != want)
		fail(f,
		     "pread %s (O_DIRECT) off 0x%" PRIx64 " len 0x%" PRIx64 " returned 0x%zx, "
		     "expected 0x%" PRIx64 " (model size 0x%zx)",
		     m->path, off, len, r, want, m->size);
	check_bytes(f, i, "read (O_DIRECT fd)", off, f->dbuf, (size_t)r);
}

static void op_write(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	uint64_t off, len;
	pick_range(f, f->max_size, &off, &len);
	log_op(f, OP_WRITE, i, off, len);
	fill_random(&f->rng, f->buf, len);
	write_exact(f, m->fd, m->path, off, f->buf, len);
	if (off > m->size)
		model_zero(f, i, m->size, off - m->size);
	model_set(f, i, off, f->buf, len);
}

/* Appends through a descriptor of its own, opened O_APPEND for this write. */
static void op_append(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	if (m->size >= f->max_size)
		return;
	uint64_t len =
	    1 + rnd_below(f, (f->max_size - m->size) < 8192 ? f->max_size - m->size : 8192);
	log_op(f, OP_APPEND, i, m->size, len);
	_cleanup_close_ int fd = open(m->path, O_WRONLY | O_APPEND);
	if (fd < 0)
		fail(f, "open %s O_APPEND: %m", m->path);
	fill_random(&f->rng, f->buf, len);
	if (su_write_all(fd, f->buf, len) != (ssize_t)len)
		fail(f, "append to %s: %m", m->path);
	model_set(f, i, m->size, f->buf, len);
}

static void op_truncate(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	uint64_t size = rnd_below(f, f->max_size + 1);
	log_op(f, OP_TRUNCATE, i, 0, size);
	if (ftruncate(m->fd, (off_t)size) < 0)
		fail(f, "ftruncate %s to 0x%" PRIx64 ": %m", m->path, size);
	model_resize(f, i, size);
}

static void op_mapread(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	if (m->size == 0)
		return;
	uint64_t off, len;
	pick_range(f, m->size, &off, &len);
	log_op(f, OP_MAPREAD, i, off, len);
	uint64_t pg = off & ~(uint64_t)(f->page - 1);
	size_t maplen = (size_t)(off - pg + len);
	bool via_ro = !f->map_rw_only && rnd_below(f, 2);
	uint8_t *p =
	    mmap(NULL, maplen, PROT_READ, MAP_SHARED, via_ro ? m->ro_fd : m->fd, (off_t)pg);
	if (p == MAP_FAILED)
		fail(f, "mmap %s PROT_READ: %m", m->path);
	if (sigsetjmp(bus_jmp, 1))
		fail(f, "SIGBUS reading the mapping of %s (%s fd)", m->path,
		     via_ro ? "read-only" : "read-write");
	check_bytes(f, i, via_ro ? "mmap read (read-only fd)" : "mmap read", off, p + (off - pg),
		    (size_t)len);
	if (munmap(p, maplen) < 0)
		fail(f, "munmap: %m");
}

static void op_mapwrite(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	uint64_t off, len;
	pick_range(f, f->max_size, &off, &len);
	log_op(f, OP_MAPWRITE, i, off, len);
	if (off + len > m->size) {
		/* A mapping cannot extend a file: grow it first, as fsx does. */
		if (ftruncate(m->fd, (off_t)(off + len)) < 0)
			fail(f, "ftruncate %s before mmap write: %m", m->path);
		model_resize(f, i, off + len);
	}
	uint64_t pg = off & ~(uint64_t)(f->page - 1);
	size_t maplen = (size_t)(off - pg + len);
	uint8_t *p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, (off_t)pg);
	if (p == MAP_FAILED)
		fail(f, "mmap %s PROT_WRITE: %m", m->path);
	fill_random(&f->rng, f->buf, len);
	if (sigsetjmp(bus_jmp, 1))
		fail(f, "SIGBUS writing the mapping of %s", m->path);
	memcpy(p + (off - pg), f->buf, len);
	if (msync(p, maplen, MS_SYNC) < 0)
		fail(f, "msync %s: %m", m->path);
	if (munmap(p, maplen) < 0)
		fail(f, "munmap: %m");
	model_set(f, i, off, f->buf, len);
}

static void op_fallocate(struct fsx *f, int i, enum op_kind op)
{
	struct mfile *m = &f->files[i];
	uint64_t off, len;
	int mode = op == OP_FALLOC	  ? 0
		   : op == OP_FALLOC_KEEP ? FALLOC_FL_KEEP_SIZE
					  : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	pick_range(f, f->max_size, &off, &len);
	log_op(f, op, i, off, len);
	if (fallocate(m->fd, mode, (off_t)off, (off_t)len) < 0)
		fail(f, "fallocate %s mode 0x%x off 0x%" PRIx64 " len 0x%" PRIx64 ": %m", m->path,
		     mode, off, len);
	if (op == OP_FALLOC && off + len > m->size)
		model_resize(f, i, off + len);
	else if (op == OP_PUNCH && off < m->size)
		model_zero(f, i, off, (off + len > m->size ? m->size : off + len) - off);
}

static void op_reopen(struct fsx *f, int i, bool trunc)
{
	log_op(f, trunc ? OP_REOPEN_TRUNC : OP_REOPEN, i, 0, 0);
	close_fds(f, i);
	open_fds(f, i, trunc ? O_TRUNC : 0);
	if (trunc)
		model_resize(f, i, 0);
}

static void op_copy_range(struct fsx *f, int src)
{
	int dst = (int)rnd_below(f, f->nfiles);
	struct mfile *ms = &f->files[src], *md = &f->files[dst];
	uint64_t off, len, off2;
	pick_range(f, f->max_size, &off, &len);
	off2 = rnd_below(f, f->max_size - len + 1);
	/* Overlapping ranges in one file are EINVAL: shift the destination. */
	if (src == dst && off2 < off + len && off < off2 + len)
		return;
	open_fds(f, dst, 0);
	struct log_entry *e = log_op(f, OP_COPY_RANGE, src, off, len);
	e->file2 = dst;
	e->off2 = off2;
	uint64_t want = off >= ms->size ? 0 : (ms->size - off < len ? ms->size - off : len);
	uint64_t done = 0;
	while (done < want) {
		loff_t in = (loff_t)(off + done), out = (loff_t)(off2 + done);
		ssize_t r = copy_file_range(ms->fd, &in, md->fd, &out, want - done, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail(f, "copy_file_range %s -> %s: %m", ms->path, md->path);
		if (r == 0)
			fail(f,
			     "copy_file_range %s -> %s: returned 0 after 0x%" PRIx64
			     " of 0x%" PRIx64 " bytes",
			     ms->path, md->path, done, want);
		done += (uint64_t)r;
	}
	e->res = done;
	if (want == 0)
		return;
	memcpy(f->buf, ms->data + off, want);
	if (off2 > md->size)
		model_zero(f, dst, md->size, off2 - md->size);
	model_set(f, dst, off2, f->buf, want);
}

static void op_fsync(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	bool data_only = rnd_below(f, 2);
	log_op(f, OP_FSYNC, i, 0, data_only);
	if ((data_only ? fdatasync(m->fd) : fsync(m->fd)) < 0)
		fail(f, "%s %s: %m", data_only ? "fdatasync" : "fsync", m->path);
}

/* Drops the file's clean cached pages so the next reads come from the
 * filesystem itself, not from the kernel's page cache. */
static void op_drop_cache(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	log_op(f, OP_DROP_CACHE, i, 0, 0);
	int e = posix_fadvise(m->fd, 0, 0, POSIX_FADV_DONTNEED);
	if (e)
		fail(f, "posix_fadvise %s DONTNEED: %s", m->path, strerror(e));
}

static void op_stat(struct fsx *f, int i)
{
	struct mfile *m = &f->files[i];
	struct stat st, st2;
	log_op(f, OP_STAT, i, 0, m->size);
	if (fstat(m->ro_fd, &st) < 0)
		fail(f, "fstat %s: %m", m->path);
	if (stat(m->path, &st2) < 0)
		fail(f, "stat %s: %m", m->path);
	if ((size_t)st.st_size != m->size || (size_t)st2.st_size != m->size)
		fail(f, "%s: fstat size 0x%jx, stat size 0x%jx, model size 0x%zx", m->path,
		     (intmax_t)st.st_size, (intmax_t)st2.st_size, m->size);
	if (st.st_ino != st2.st_ino || st.st_dev != st2.st_dev)
		fail(f, "%s: fstat and stat disagree on the inode (%ju vs %ju)", m->path,
		     (uintmax_t)st.st_ino, (uintmax_t)st2.st_ino);
}

/* Reads file i whole through a fresh descriptor and compares it with the model. */
static void verify_file(struct fsx *f, int i, const char *how)
{
	struct mfile *m = &f->files[i];
	_cleanup_close_ int fd = open(m->path, O_RDONLY);
	struct stat st;
	if (fd < 0)
		fail(f, "%s: open %s: %m", how, m->path);
	if (fstat(fd, &st) < 0)
		fail(f, "%s: fstat %s: %m", how, m->path);
	if ((size_t)st.st_size != m->size)
		fail(f, "%s: %s has size 0x%jx, expected 0x%zx", how, m->path, (intmax_t)st.st_size,
		     m->size);
	read_exact(f, fd, m->path, 0, f->buf, m->size);
	char extra;
	ssize_t r = pread(fd, &extra, 1, (off_t)m->size);
	if (r != 0)
		fail(f, "%s: %s: data past the expected end (size 0x%zx)", how, m->path, m->size);
	check_bytes(f, i, how, 0, f->buf, m->size);
}

static void verify_all(struct fsx *f, const char *how)
{
	for (size_t i = 0; i < f->nfiles; i++)
		close_fds(f, (int)i);
	for (size_t i = 0; i < f->nfiles; i++)
		verify_file(f, (int)i, how);
}

static void run_op(struct fsx *f)
{
	unsigned total = 0, pick;
	for (int k = 0; k < OP_COUNT; k++)
		total += op_weights[k];
	pick = (unsigned)rnd_below(f, total);
	enum op_kind op = 0;
	while (pick >= op_weights[op])
		pick -= op_weights[op++];
	int i = (int)rnd_below(f, f->nfiles);
	open_fds(f, i, 0);
	switch (op) {
	case OP_READ:
		op_read(f, i, false);
		break;
	case OP_READ_RO:
		op_read(f, i, true);
		break;
	case OP_READ_DIRECT:
		op_read_direct(f, i);
		break;
	case OP_WRITE:
		op_write(f, i);
		break;
	case OP_APPEND:
		op_append(f, i);
		break;
	case OP_TRUNCATE:
		op_truncate(f, i);
		break;
	case OP_MAPREAD:
		op_mapread(f, i);
		break;
	case OP_MAPWRITE:
		op_mapwrite(f, i);
		break;
	case OP_FALLOC:
	case OP_FALLOC_KEEP:
	case OP_PUNCH:
		op_fallocate(f, i, op);
		break;
	case OP_REOPEN:
		op_reopen(f, i, false);
		break;
	case OP_REOPEN_TRUNC:
		op_reopen(f, i, true);
		break;
	case OP_COPY_RANGE:
		op_copy_range(f, i);
		break;
	case OP_FSYNC:
		op_fsync(f, i);
		break;
	case OP_DROP_CACHE:
		op_drop_cache(f, i);
		break;
	case OP_STAT:
		op_stat(f, i);
		break;
	case OP_COUNT:
		break;
	}
}

/* The initial contents: sizes and bytes derived from iseed alone. */
static void model_init(struct fsx *f, uint64_t iseed)
{
	for (size_t i = 0; i < f->nfiles; i++) {
		struct mfile *m = &f->files[i];
		uint64_t s = iseed * 1000003 + i;
		m->size = (size_t)(rnd(&s) % (f->max_size + 1));
		if (i == 0)
			m->size = 0; /* one empty lower file */
		fill_random(&s, m->data, m->size);
	}
}

static int setup(struct fsx *f, const char *dir, size_t nfiles, size_t max_size)
{
	f->nfiles = nfiles;
	f->max_size = max_size;
	f->page = sysconf(_SC_PAGESIZE);
	f->files = calloc(nfiles, sizeof(*f->files));
	f->buf = malloc(max_size + 1);
	if (!f->files || !f->buf ||
	    posix_memalign((void **)&f->dbuf, (size_t)f->page, max_size + 17 * (size_t)f->page))
		return -ENOMEM;
	for (size_t i = 0; i < nfiles; i++) {
		struct mfile *m = &f->files[i];
		m->path = su_asprintf("%s/fsx.%02zu", dir, i);
		m->data = calloc(max_size + 1, 1);
		m->who = calloc(max_size + 1, sizeof(*m->who));
		if (!m->data || !m->who)
			return -ENOMEM;
		m->fd = m->ro_fd = m->dio_fd = -1;
	}
	return 0;
}

static int prepare(struct fsx *f)
{
	for (size_t i = 0; i < f->nfiles; i++) {
		struct mfile *m = &f->files[i];
		_cleanup_close_ int fd = open(m->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || su_write_all(fd, m->data, m->size) != (ssize_t)m->size ||
		    fsync(fd) < 0) {
			fprintf(stderr, "fsx: writing %s: %m\n", m->path);
			return 1;
		}
	}
	return 0;
}

/* Model file: "fsx-model-1 NFILES MAXSIZE\n", then per file "SIZE\n" and
 * SIZE bytes. */
static int model_save(const struct fsx *f, const char *path)
{
	_cleanup_fclose_ FILE *fp = fopen(path, "we");
	if (!fp)
		return -errno;
	fprintf(fp, "%s %zu %zu\n", MODEL_TAG, f->nfiles, f->max_size);
	for (size_t i = 0; i < f->nfiles; i++) {
		fprintf(fp, "%zu\n", f->files[i].size);
		if (fwrite(f->files[i].data, 1, f->files[i].size, fp) != f->files[i].size)
			return -EIO;
	}
	if (fflush(fp) != 0)
		return -errno;
	return 0;
}

static int model_load(struct fsx *f, const char *path, const char *dir)
{
	_cleanup_fclose_ FILE *fp = fopen(path, "re");
	char tag[32];
	size_t n, max;
	if (!fp)
		return -errno;
	if (fscanf(fp, "%31s %zu %zu\n", tag, &n, &max) != 3 || strcmp(tag, MODEL_TAG) != 0)
		return -EINVAL;
	int r = setup(f, dir, n, max);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct mfile *m = &f->files[i];
		if (fscanf(fp, "%zu", &m->size) != 1 || fgetc(fp) != '\n' || m->size > max ||
		    fread(m->data, 1, m->size, fp) != m->size)
			return -EINVAL;
	}
	return 0;
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr,
		"usage: fsx --prepare [-i ISEED] [-N FILES] [-S MAXSIZE] DIR\n"
		"       fsx [-s SEED] [-n OPS] [-i ISEED] [-N FILES] [-S MAXSIZE] [-V EVERY] [-M]\n"
		"           [--model FILE] DIR\n"
		"       fsx --verify-only --model FILE DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"prepare", no_argument, NULL, 'P'},
	    {"verify-only", no_argument, NULL, 'v'},
	    {"model", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct fsx f = {0};
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16), iseed = 1, ops = 10000;
	size_t nfiles = 8, max_size = 256 * 1024, every = 2000;
	const char *model = NULL;
	bool do_prepare = false, verify_only = false;
	int c;

	bool map_rw_only = false;
	while ((c = getopt_long(argc, argv, "s:n:i:N:S:V:Mh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			ops = strtoull(optarg, NULL, 0);
			break;
		case 'i':
			iseed = strtoull(optarg, NULL, 0);
			break;
		case 'N':
			nfiles = strtoul(optarg, NULL, 0);
			break;
		case 'S':
			max_size = strtoul(optarg, NULL, 0);
			break;
		case 'V':
			every = strtoul(optarg, NULL, 0);
			break;
		case 'M':
			map_rw_only = true;
			break;
		case 'P':
			do_prepare = true;
			break;
		case 'v':
			verify_only = true;
			break;
		case 'm':
			model = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc || nfiles == 0 || max_size == 0 || (verify_only && !model))
		usage();
	const char *dir = argv[optind];
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (verify_only) {
		int r = model_load(&f, model, dir);
		if (r < 0) {
			fprintf(stderr, "fsx: loading model %s: %s\n", model, strerror(-r));
			return 2;
		}
		verify_all(&f, "verify");
		printf("fsx: %zu files match the model %s\n", f.nfiles, model);
		return 0;
	}
	if (setup(&f, dir, nfiles, max_size) < 0) {
		fprintf(stderr, "fsx: out of memory\n");
		return 2;
	}
	f.map_rw_only = map_rw_only;
	model_init(&f, iseed);
	if (do_prepare)
		return prepare(&f);

	printf("fsx: seed %" PRIu64 ", %" PRIu64 " operations on %zu files of up to %zu bytes\n",
	       seed, ops, nfiles, max_size);
	f.rng = seed;
	signal(SIGBUS, on_sigbus);
	verify_all(&f, "initial check");
	/* Read-only descriptors opened now, while the files are still in the
	 * lower layer, must see every later write made through other ones. */
	for (size_t i = 0; i < nfiles; i++)
		open_fds(&f, (int)i, 0);
	for (f.opno = 1; f.opno <= ops; f.opno++) {
		run_op(&f);
		if (every && f.opno % every == 0)
			verify_all(&f, "periodic check");
	}
	f.opno = ops;
	verify_all(&f, "final check");
	if (model) {
		int r = model_save(&f, model);
		if (r < 0) {
			fprintf(stderr, "fsx: saving model %s: %s\n", model, strerror(-r));
			return 2;
		}
	}
	printf("fsx: %" PRIu64 " operations passed\n", ops);
	return 0;
}
