/* fs/file.c: open files.  Opening for writing copies up the metadata; the
 * data follows on the first write, so open-and-close (touch, editors that
 * only check) costs no copy.  A read-only open of a lower file reads the
 * lower until the file is copied up through another handle, then switches
 * to the upper so every reader sees the writes (POSIX; overlayfs kept
 * reading the stale lower for a long time). */
#include "fs/sfs.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>

int sfs_file_flags(struct sfs_fs *fs, int flags)
{
	/* The kernel already keeps direct I/O out of the mount's page cache;
	 * the daemon's own reads and writes come in buffers of any alignment,
	 * which O_DIRECT on the layer file would refuse. */
	flags &= ~O_DIRECT;
	if (fs->o->writeback) {
		/* the kernel reads to fill pages of write-only files and
		 * handles O_APPEND itself */
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags;
}

int sfs_open(struct sfs_fs *fs, struct sfs_node *n, int flags, struct sfs_file **out)
{
	bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC), up;
	struct stat st;
	int fd, r;

	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
	if (write) {
		if (!fs->upper)
			return -EROFS;
		r = sfs_copy_up(fs, n, (flags & O_TRUNC) ? SFS_CU_EMPTY : SFS_CU_META);
		if (r < 0)
			return r;
	}
	flags = sfs_file_flags(fs, flags);
	/* a copy-up after this test is seen by the first read */
	up = write || sfs_node_data_up(n);
	fd = up ? sfs_reopen(fs, sfs_node_upper(fs, n), flags)
		: sfs_node_open_lower(fs, n, flags, &st);
	if (fd < 0)
		return fd;
	r = sfs_file_new(fs, n, fd, flags, out);
	if (r == 0 && !up) {
		(*out)->lower = true;
		/* (a lower file does not change: its size stays this) */
		(*out)->lsize = S_ISREG(st.st_mode) ? st.st_size : -1;
	}
	return r;
}

int sfs_file_new(struct sfs_fs *fs, struct sfs_node *n, int fd, int flags, struct sfs_file **out)
{
	struct sfs_file *f = calloc(1, sizeof(*f));

	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	f->oldfd = f->lowfd = -1;
	f->lsize = -1;
	f->flags = flags;
	f->node = n;
	pthread_mutex_init(&f->lock, NULL);
	sfs_node_ref(fs, n);
	sfs_pt_open(fs, f);
	*out = f;
	return 0;
}

static bool node_metacopy(struct sfs_node *n)
{
	return __atomic_load_n(&n->metacopy, __ATOMIC_ACQUIRE);
}

int sfs_file_writefd(struct sfs_fs *fs, struct sfs_file *f)
{
	if (node_metacopy(f->node)) {
		int r = sfs_copy_up(fs, f->node, SFS_CU_DATA);
		if (r < 0)
			return r;
	}
	return f->fd;
}

int sfs_file_readfd(struct sfs_fs *fs, struct sfs_file *f)
{
	int fd;

	if (!__atomic_load_n(&f->lower, __ATOMIC_ACQUIRE)) {
		if (!node_metacopy(f->node))
			return f->fd;
		/* opened for writing, nothing written yet: the data is the
		 * lower's */
		pthread_mutex_lock(&f->lock);
		if (!node_metacopy(f->node)) {
			fd = f->fd;
		} else {
			if (f->lowfd < 0)
				f->lowfd = sfs_node_open_lower(fs, f->node, O_RDONLY, NULL);
			fd = f->lowfd;
			if (f->lowfd < 0)
				f->lowfd = -1; /* an error this time, a retry next */
		}
		pthread_mutex_unlock(&f->lock);
		return fd;
	}
	pthread_mutex_lock(&f->lock);
	if (f->lower && sfs_node_data_up(f->node)) {
		fd = sfs_node_open_data(fs, f->node, f->flags & ~O_TRUNC);
		if (fd >= 0) {
			/* the old fd may be in use by a concurrent read; it is
			 * kept open until release */
			int old = f->fd;
			f->fd = fd;
			f->oldfd = old;
			__atomic_store_n(&f->lower, false, __ATOMIC_RELEASE);
		}
	}
	fd = f->fd;
	pthread_mutex_unlock(&f->lock);
	return fd;
}

void sfs_release(struct sfs_fs *fs, struct sfs_file *f)
{
	sfs_pt_release(fs, f);
	close(f->fd);
	if (f->oldfd >= 0)
		close(f->oldfd);
	if (f->lowfd >= 0)
		close(f->lowfd);
	pthread_mutex_destroy(&f->lock);
	sfs_node_unref(fs, f->node);
	free(f);
}

/* ---- prefilled pages ----
 * Reading a small lower file costs two round trips besides its open: the
 * READ, and a GETATTR, as a read from the daemon marks the kernel's atime
 * stale.  Its data stored into the page cache with the open reply
 * (notify_store: the open's reply keeps the cache) is read from there.
 * Only for the one open of the node: the kernel sends a handle's RELEASE
 * after its last request, so no other reader can hold a page of the file
 * locked while it waits for this daemon.  The lower never changes, so it
 * is read without the node's lock; the store is made under it, after the
 * checks again, so no copy-up or other open lands between check and store
 * (a copy-up's writes then reach the stored pages like any others). */
#define PREFILL_MAX (128 << 10)

static bool prefill_wanted(struct sfs_node *n)
{
	return !n->prefilled && n->cached_opens == 1 && !n->pt_opens && !sfs_node_data_up(n);
}

bool sfs_prefill(struct sfs_fs *fs, fuse_ino_t ino, struct sfs_file *f, int flags)
{
	struct fuse_session *se = fs->prune.se;
	struct sfs_node *n = f->node;
	_cleanup_free_ char *buf = NULL;
	size_t got = 0, size = (size_t)f->lsize;
	bool want, done = false;

	if (!se || !f->lower || f->pt || (flags & (O_ACCMODE | O_DIRECT | O_TRUNC)) != O_RDONLY)
		return false;
	pthread_mutex_lock(&n->lock);
	want = prefill_wanted(n);
	pthread_mutex_unlock(&n->lock);
	if (!want || f->lsize <= 0 || f->lsize > PREFILL_MAX || !(buf = malloc(size)))
		return false;
	sfs_await_cached(f->fd, 0, size);
	while (got < size) {
		ssize_t r = pread(f->fd, buf + got, size - got, got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false; /* the READ will say what is wrong */
		got += (size_t)r;
	}
	pthread_mutex_lock(&n->lock);
	if (prefill_wanted(n)) {
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(got);
		bv.buf[0].mem = buf;
		n->prefilled = done = fuse_lowlevel_notify_store(se, ino, 0, &bv, 0) == 0;
	}
	pthread_mutex_unlock(&n->lock);
	return done;
}

/* ---- readahead of a directory's small files ----
 * A program reading a tree (tar, cp -r, md5sum -c) opens the files of a
 * directory one after another, and each prefill waits for the disk.  After
 * the first prefill in a directory the program listed, or the second in one
 * it did not, a read-ahead thread (ahead.c) starts the reads of the
 * directory's other small lower files (readahead(2) into the lowers' page
 * cache), so the disk works while the program and the daemon go on.
 * Bounded per directory; once only.  A lower directory read to its end
 * without a .wh. name spares the lookups that follow their whiteout probes,
 * as a listing does. */

#define DIR_RA_FILES   1024
#define DIR_RA_BYTES   (16 << 20)
#define DIR_RA_MIN_FDS 1024
#define DIR_RA_SEEN    (4 * DIR_RA_FILES) /* entries looked at, of any kind */

struct sfs_node *sfs_readahead_due(struct sfs_fs *fs, struct sfs_node *n)
{
	struct sfs_node *p;
	unsigned need;

	/* (a daemon short of fds keeps them for requests) */
	if (!fs->o->prefetch || (fs->prune.running && fs->prune.high < DIR_RA_MIN_FDS) ||
	    !sfs_prune_roomy(fs))
		return NULL;
	pthread_mutex_lock(&n->lock);
	p = n->parent;
	if (p) {
		need = __atomic_load_n(&p->listed, __ATOMIC_RELAXED) ? 1 : 2;
		if (__atomic_add_fetch(&p->prefills, 1, __ATOMIC_RELAXED) >= need &&
		    !__atomic_exchange_n(&p->prefetched, true, __ATOMIC_RELAXED)) {
			sfs_node_ref(fs, p);
		} else {
			p = NULL;
		}
	}
	pthread_mutex_unlock(&n->lock);
	return p;
}

/* fds are numbered lowest first: a new one numbered past the pruner's low
 * mark says the daemon holds that many already, too many to add more that
 * only make things faster. */
static bool fd_roomy(struct sfs_fs *fs, int fd)
{
	return !fs->prune.running || fd < (int)fs->prune.low;
}

void sfs_dir_readahead(struct sfs_fs *fs, struct sfs_node *dir)
{
	size_t files = 0, bytes = 0, seen = 0;

	for (int i = 0; i < dir->nlow && files < DIR_RA_FILES && bytes < DIR_RA_BYTES; i++) {
		_cleanup_dirstream_ struct sfs_dirstream *d = NULL;
		_cleanup_close_ int tmp = -1;
		struct sfs_rawent de;
		bool wh = false;
		int dfd, r = 1;

		/* (not a FUSE or network layer: each open may be remote work) */
		if (fs->layers[dir->low[i].layer].pin)
			continue;
		/* (an fd the pruner took stays taken: this only makes reads
		 * faster, and stops when fds run short) */
		dfd = sfs_lower_fd(fs, &dir->low[i], dir->lowpath, &tmp, NULL);
		if (dfd < 0 || !fd_roomy(fs, tmp) || sfs_dirstream_open(dfd, &d) < 0 ||
		    !fd_roomy(fs, sfs_dirstream_fd(d)))
			break;
		while (files < DIR_RA_FILES && bytes < DIR_RA_BYTES && seen++ < DIR_RA_SEEN &&
		       sfs_prune_roomy(fs) && (r = sfs_dirstream_next(d, &de)) > 0) {
			struct stat st;
			int fd;

			if (su_str_has_prefix(de.name, ".wh.")) {
				wh = true;
				continue;
			}
			if (de.type != DT_REG)
				continue;
			fd = openat(sfs_dirstream_fd(d), de.name,
				    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (!fd_roomy(fs, fd)) {
				close(fd);
				break;
			}
			if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
			    st.st_size <= PREFILL_MAX) {
				(void)readahead(fd, 0, (size_t)st.st_size);
				files++;
				bytes += (size_t)st.st_size;
			}
			close(fd);
		}
		/* read to its end: as a listing, it tells whether lookups in
		 * this lower need to probe for .wh. names (readdir.c) */
		if (r == 0 && !wh)
			__atomic_store_n(&dir->low[i].nowh, true, __ATOMIC_RELAXED);
	}
	sfs_node_unref(fs, dir);
}

/* ---- reads through a pipe ----
 * A reply shorter than asked is taken by the kernel as the end of the file,
 * so a read that fails part-way must become an error.  Each request thread
 * splices the range into a pipe of its own first, and the reply is spliced
 * on from there only once the whole range (or the end of the file) is in. */

struct read_pipe {
	int fd[2];
	size_t cap;
};

static void read_pipe_free(void *p)
{
	struct read_pipe *rp = p;

	close(rp->fd[0]);
	close(rp->fd[1]);
	free(rp);
}

int sfs_read_pipes_init(struct sfs_fs *fs)
{
	return -pthread_key_create(&fs->read_pipe, read_pipe_free);
}

static struct read_pipe *read_pipe(struct sfs_fs *fs)
{
	struct read_pipe *rp = pthread_getspecific(fs->read_pipe);
	int cap;

	if (rp)
		return rp;
	rp = malloc(sizeof(*rp));
	if (!rp)
		return NULL;
	if (pipe2(rp->fd, O_CLOEXEC) < 0) {
		free(rp);
		return NULL;
	}
	/* a request is at most 1 MiB; a smaller pipe sends reads through a
	 * buffer instead */
	fcntl(rp->fd[1], F_SETPIPE_SZ, 1 << 20);
	cap = fcntl(rp->fd[1], F_GETPIPE_SZ);
	rp->cap = cap > 0 ? (size_t)cap : 0;
	if (pthread_setspecific(fs->read_pipe, rp) != 0) {
		read_pipe_free(rp);
		return NULL;
	}
	return rp;
}

void sfs_read_pipe_drain(struct sfs_fs *fs)
{
	struct read_pipe *rp = pthread_getspecific(fs->read_pipe);
	char sink[65536];
	int left = 0;

	while (rp && ioctl(rp->fd[0], FIONREAD, &left) == 0 && left > 0)
		if (read(rp->fd[0], sink, sizeof(sink)) <= 0)
			break;
}

static bool any_fuse_layer(struct sfs_fs *fs)
{
	for (int i = 0; i < fs->nlayers; i++)
		if (fs->layers[i].fuse)
			return true;
	return false;
}

/* A ring thread runs on the CPU of the program it serves, and the disk's
 * interrupt may come on another: a thread asleep on a read there needs an
 * interrupt between CPUs to wake, which on a virtual machine costs about
 * as much as the read.  So a ring thread about to read pages that are not
 * cached starts the reads and then watches for them, for a bounded time
 * (it has nothing else to do: its program waits for this very read). */
#define DISK_SPIN_NS  (500 * 1000)
#define DISK_SPIN_MAX (32 << 10) /* a larger read takes longer than the wait */

void sfs_await_cached(int fd, off_t off, size_t len)
{
	struct iovec iov;
	struct timespec t0, t;
	char c;

	if (!sfs_uring_thread() || len == 0 || len > DISK_SPIN_MAX)
		return;
	iov = (struct iovec){&c, 1};
	if (preadv2(fd, &iov, 1, off, RWF_NOWAIT) >= 0 || errno != EAGAIN)
		return;
	(void)readahead(fd, off, len);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (preadv2(fd, &iov, 1, off + (off_t)len - 1, RWF_NOWAIT) >= 0 || errno != EAGAIN)
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < DISK_SPIN_NS);
}

int sfs_read_to_pipe(struct sfs_fs *fs, int fd, size_t size, off_t off, size_t *got)
{
	struct read_pipe *rp = read_pipe(fs);

	*got = 0;
	if (!rp || size > rp->cap)
		return -ENOBUFS;
	sfs_await_cached(fd, off, size);
	while (*got < size) {
		loff_t at = off + (off_t)*got;
		/* The pipe holds a page or a piece of one per slot, not
		 * cap bytes: a file growing while the kernel reads ahead
		 * ends a splice on a partial page, and the next one may
		 * find every slot taken.  Never wait for room no one will
		 * make: the read goes through a buffer instead. */
		ssize_t n = splice(fd, &at, rp->fd[1], NULL, size - *got, SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			sfs_read_pipe_drain(fs);
			/* EINVAL: no splice from it; EAGAIN: the pipe is full */
			return e == EINVAL || e == EAGAIN ? -ENOBUFS : -e;
		}
		if (n == 0) {
			/* FUSE ends a splice early on an error: only a read
			 * tells the end of the file from it */
			char c;
			ssize_t r = 0;
			if (any_fuse_layer(fs))
				r = pread(fd, &c, 1, at);
			if (r == 0)
				break;
			sfs_read_pipe_drain(fs);
			return r < 0 && errno != EINVAL ? -errno : -ENOBUFS;
		}
		*got += (size_t)n;
	}
	return rp->fd[0];
}
