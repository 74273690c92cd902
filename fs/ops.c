/* fs/ops.c: the FUSE low-level ops table.  The only file that replies to the
 * kernel: each handler calls into the modules, which return 0 or -errno. */
#include "fs/sfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#define FS(req)	      ((struct sfs_fs *)fuse_req_userdata(req))
#define NODE(req, id) sfs_node_get(FS(req), id)
#define FILEOF(fi)    ((struct sfs_file *)(uintptr_t)(fi)->fh)
#define DIROF(fi)     ((struct sfs_dir *)(uintptr_t)(fi)->fh)

static void reply_entry_or_err(fuse_req_t req, int r, struct fuse_entry_param *e)
{
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, e);
}

/* Out of fds: the nodes the kernel remembers hold most of them, so have it
 * forget some (prune.c) and try again, a few times.  dir, dir2: the
 * directories the kernel holds locked for the request (or NULL), whose
 * entries the pruner must leave alone meanwhile. */
static bool again2(fuse_req_t req, struct sfs_node *dir, struct sfs_node *dir2, int r, int *tries)
{
	return (r == -EMFILE || r == -ENFILE) && (*tries)++ < 5 &&
	       sfs_prune_wait(FS(req), dir, dir2);
}

static bool again(fuse_req_t req, struct sfs_node *dir, int r, int *tries)
{
	return again2(req, dir, NULL, r, tries);
}

/* The node of ino if it is a directory (the kernel locks the inode a
 * setattr or an xattr change is for), else NULL. */
static struct sfs_node *locked_dir(fuse_req_t req, fuse_ino_t ino)
{
	struct sfs_node *n = NODE(req, ino);
	return S_ISDIR(n->type) ? n : NULL;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sfs_fs *fs = userdata;
	/* no FUSE_CAP_SPLICE_MOVE: the kernel would steal each page it is
	 * handed out of the layer file's page cache (locking and unmapping it)
	 * to put it in the mount's, which costs more than the copy it saves
	 * and leaves the layer's cache cold: reading a cached 1 GiB lower file
	 * took 0.6 s with it, 0.4 s without */
	unsigned want = FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_CACHE_SYMLINKS |
			FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_DIO |
			FUSE_CAP_READDIRPLUS;

	if (fs->o->writeback)
		want |= FUSE_CAP_WRITEBACK_CACHE;
	conn->want |= want & conn->capable;
	/* the kernel keeps locks itself: they are local to this machine,
	 * exactly what a container's root needs */
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	/* every readdir carries attributes: the kernel's heuristic would
	 * list the rest of a large directory bare and then look each
	 * entry up on its own */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
	conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r, tries = 0;

	/* a walk faster than the pruner waits for a round rather than run
	 * the daemon out of fds (a directory's lookup opens one per layer) */
	if (sfs_prune_crowded(FS(req)))
		sfs_prune_throttle(FS(req));
	do
		r = sfs_lookup(FS(req), NODE(req, parent), name, &e);
	while (again(req, NODE(req, parent), r, &tries));
	if (r == -ENOENT) {
		/* negative entry: the kernel may cache the absence */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = FS(req)->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry_or_err(req, r, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	sfs_node_forget(FS(req), NODE(req, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		sfs_node_forget(FS(req), NODE(req, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r, tries = 0;

	do
		r = sfs_getattr(FS(req), NODE(req, ino), &st);
	while (again(req, NULL, r, &tries));
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, FS(req)->timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int r, tries = 0;

	/* (sfs_setattr copies the data up itself before changing the size) */
	do
		r = sfs_setattr(FS(req), NODE(req, ino), attr, valid, fi ? FILEOF(fi)->fd : -1,
				fuse_req_ctx(req)->pid, &st);
	while (again(req, locked_dir(req, ino), r, &tries));

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, FS(req)->timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	_cleanup_close_ int tmp = -1;
	int r = sfs_node_metafd(FS(req), NODE(req, ino), &tmp);

	if (r >= 0)
		r = sfs_readlinkat(r, buf, sizeof(buf) - 1);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	buf[r] = '\0';
	fuse_reply_readlink(req, buf);
}

static struct sfs_ctx req_ctx(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	return (struct sfs_ctx){c->uid, c->gid, c->umask};
}

static void make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		 const char *link)
{
	struct fuse_entry_param e;
	struct sfs_ctx ctx = req_ctx(req);
	int r, tries = 0;

	/* (a creation cut short by EMFILE leaves nothing behind) */
	do
		r = sfs_create_node(FS(req), NODE(req, parent), name, mode, rdev, link, &ctx, &e,
				    NULL, 0);
	while (again(req, NODE(req, parent), r, &tries));
	reply_entry_or_err(req, r, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make(req, parent, name, mode, rdev, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make(req, parent, name, S_IFLNK | 0777, 0, link);
}

/* (a removal or rename cut short by EMFILE has changed nothing yet: the
 * fds it needs are opened before it changes the layers) */
static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	int r, tries = 0;

	do
		r = sfs_unlink(FS(req), NODE(req, parent), name, dir);
	while (again(req, NODE(req, parent), r, &tries));
	fuse_reply_err(req, -r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	int r, tries = 0;

	do
		r = sfs_rename(FS(req), NODE(req, parent), name, NODE(req, newparent), newname,
			       flags);
	while (again2(req, NODE(req, parent), NODE(req, newparent), r, &tries));
	fuse_reply_err(req, -r);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fuse_entry_param e;
	int r, tries = 0;

	do
		r = sfs_link(FS(req), NODE(req, ino), NODE(req, newparent), newname, &e);
	while (again(req, NODE(req, newparent), r, &tries));
	reply_entry_or_err(req, r, &e);
}

/* Set-id bits and capabilities dropped before the caller writes or
 * truncates (sfs_kill_privs); the kernel is told its copy of the mode is
 * stale, as nothing in a write or open reply carries it.  stale: the
 * mode may have changed already (an unprivileged daemon's own truncation
 * drops the bits on the upper). */
static int kill_privs(fuse_req_t req, fuse_ino_t ino, struct sfs_node *n, bool stale)
{
	int r = sfs_kill_privs(FS(req), n, fuse_req_ctx(req)->pid);

	if ((r > 0 || (r == 0 && stale)) && FS(req)->prune.se)
		fuse_lowlevel_notify_inval_inode(FS(req)->prune.se, ino, -1, 0);
	return r < 0 ? r : 0;
}

/* A close that can report nothing needs no FLUSH round trip (it ran
 * op_flush's dup and close): one of a file opened read-only, or of one
 * whose data is on an upper filesystem without a flush of its own.  The
 * kernel sends it anyway with writeback caching, to write dirty pages. */
static bool quiet_close(struct sfs_fs *fs, int flags)
{
	return (flags & O_ACCMODE) == O_RDONLY || (fs->upper && fs->upper->quiet_close);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_fs *fs = FS(req);
	struct sfs_node *ra = NULL;
	struct sfs_file *f;
	/* set-id bits not known to be absent before a truncating open */
	bool stale =
	    (fi->flags & O_TRUNC) && FS(req)->pt.killpriv && !sfs_privs_clean(NODE(req, ino));
	int r, tries = 0;

	do
		r = sfs_open(FS(req), NODE(req, ino), fi->flags, &f);
	while (again(req, NULL, r, &tries));
	/* the open truncated the file: as a truncation by the caller */
	if (r == 0 && (fi->flags & O_TRUNC)) {
		r = kill_privs(req, ino, f->node, stale);
		if (r < 0)
			sfs_release(FS(req), f);
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)f;
	/* every change reaches the file through this mount, so the page
	 * cache stays valid across opens, unless passthrough wrote behind it */
	fi->keep_cache = !f->pt && sfs_pt_keep_cache(f);
	fi->noflush = quiet_close(FS(req), fi->flags);
	if (fi->keep_cache && sfs_prefill(FS(req), ino, f, fi->flags))
		ra = sfs_readahead_due(FS(req), f->node);
	sfs_pt_arm(f->pt);
	/* (req is gone after the reply) */
	if (fuse_reply_open(req, fi) == -ENOENT)
		sfs_release(fs, f);
	if (ra)
		sfs_ahead_readahead(fs, ra);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct sfs_fs *fs = FS(req);
	struct fuse_entry_param e;
	struct sfs_ctx ctx = req_ctx(req);
	struct sfs_file *f;
	struct sfs_node *n;
	int fd, r, tries = 0;

	do
		r = sfs_create_node(fs, NODE(req, parent), name, S_IFREG | (mode & 07777), 0, NULL,
				    &ctx, &e, &fd, sfs_file_flags(fs, fi->flags));
	while (again(req, NODE(req, parent), r, &tries));
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	n = sfs_node_get(fs, e.ino);
	r = sfs_file_new(fs, n, fd, sfs_file_flags(fs, fi->flags), &f);
	if (r < 0) {
		sfs_node_forget(fs, n, 1);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)f;
	fi->noflush = quiet_close(fs, fi->flags);
	sfs_pt_arm(f->pt);
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		sfs_release(fs, f);
}

/* Reads the whole range, or up to the end of the file, into a buffer when
 * it cannot go through the thread's pipe (see sfs_read_to_pipe). */
static void read_buffered(fuse_req_t req, int fd, size_t size, off_t off)
{
	_cleanup_free_ char *buf = NULL;
	size_t got = 0;

	/* aligned for a file opened O_DIRECT */
	if (posix_memalign((void **)&buf, 4096, size ? size : 1) != 0) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fuse_reply_err(req, errno);
			return;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	fuse_reply_buf(req, buf, got);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct sfs_fs *fs = FS(req);
	int fd = sfs_file_readfd(fs, FILEOF(fi)), p;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(0);
	size_t got;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	p = sfs_read_to_pipe(fs, fd, size, off, &got);
	if (p == -ENOBUFS) {
		read_buffered(req, fd, size, off);
		return;
	}
	if (p < 0 || got == 0) {
		if (p < 0)
			fuse_reply_err(req, -p);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	buf.buf[0].size = got;
	buf.buf[0].flags = FUSE_BUF_IS_FD;
	buf.buf[0].fd = p;
	/* on success the reply took every byte from the pipe */
	if (fuse_reply_data(req, &buf, 0) != 0)
		sfs_read_pipe_drain(fs);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t r;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = sfs_file_writefd(FS(req), FILEOF(fi));
	out.buf[0].pos = off;
	if (out.buf[0].fd >= 0) {
		r = kill_privs(req, ino, FILEOF(fi)->node, false);
		if (r < 0)
			out.buf[0].fd = (int)r;
	}
	if (out.buf[0].fd < 0) {
		fuse_reply_err(req, -out.buf[0].fd);
		return;
	}
	r = fuse_buf_copy(&out, in, 0);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, r);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* closing a duplicate reports errors the layer defers to close */
	int fd = dup(FILEOF(fi)->fd), r = 0;

	if (fd >= 0)
		r = close(fd) < 0 ? errno : 0;
	else if (errno != EMFILE && errno != ENFILE)
		r = errno; /* short of fds: nothing to report, and close(2) must not fail for it */
	fuse_reply_err(req, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	sfs_release(FS(req), FILEOF(fi));
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = FILEOF(fi)->fd, r = 0;

	if (!FS(req)->o->nofsync)
		r = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0;
	fuse_reply_err(req, r);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_dir *d = calloc(1, sizeof(*d));

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&d->lock, NULL);
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		pthread_mutex_destroy(&d->lock);
		free(d);
	}
}

/* Offsets: 1 is ".", 2 is "..", 3 + i is entry i of the snapshot. */
static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	struct sfs_fs *fs = FS(req);
	struct sfs_node *n = NODE(req, ino);
	struct sfs_dir *d = DIROF(fi);
	_cleanup_free_ char *buf = calloc(1, size);
	size_t used = 0;
	int r = 0, tries = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (off == 0 || !d->loaded) {
		do
			r = sfs_dir_load(fs, n, d);
		while (again(req, n, r, &tries));
		if (r == 0 && !__atomic_exchange_n(&n->listed, true, __ATOMIC_RELAXED))
			sfs_ahead_listed(fs, n, d);
	}
	for (off_t i = off; r == 0 && i < (off_t)d->n + 2; i++) {
		struct fuse_entry_param e;
		const char *name;
		size_t sz;

		memset(&e, 0, sizeof(e));
		if (i < 2) {
			name = i == 0 ? "." : "..";
			pthread_mutex_lock(&n->lock);
			e.attr.st_ino = i == 1 && n->parent ? n->parent->ino : n->ino;
			pthread_mutex_unlock(&n->lock);
			e.attr.st_mode = S_IFDIR;
		} else {
			struct sfs_dirent *de = &d->ents[i - 2];
			name = de->name;
			e.attr.st_ino = de->ino;
			e.attr.st_mode = (mode_t)de->type << 12;
			/* short of fds, entries go without attributes: the
			 * kernel looks up those it needs */
			if (plus && !sfs_prune_pressure(fs)) {
				int lr = sfs_lookup_known(fs, n, name, de->ino, &e);

				if (lr == 1)
					lr = sfs_lookup_hint(fs, n, name, de->pos, &e);
				if (lr == -ENOENT)
					continue; /* removed since the listing was made */
				if (lr == -EMFILE || lr == -ENFILE) {
					memset(&e, 0, sizeof(e));
					e.attr.st_ino = de->ino;
					e.attr.st_mode = (mode_t)de->type << 12;
				} else if (lr < 0) {
					r = lr;
					break;
				}
			}
		}
		if (plus)
			sz = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
		else
			sz = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, i + 1);
		if (sz > size - used) {
			if (plus && i >= 2 && e.ino)
				sfs_node_forget(fs, sfs_node_get(fs, e.ino), 1);
			break;
		}
		used += sz;
	}
	pthread_mutex_unlock(&d->lock);
	if (r < 0 && used == 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, used);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_dir *d = DIROF(fi);

	sfs_dir_free(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int up = sfs_node_upper(FS(req), NODE(req, ino)), r = 0;

	if (up < 0 && up != -ENOENT)
		r = -up;
	else if (up >= 0 && !FS(req)->o->nofsync) {
		int fd = sfs_reopen(FS(req), up, O_RDONLY | O_DIRECTORY);
		if (fd < 0) {
			r = -fd;
		} else {
			r = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0;
			close(fd);
		}
	}
	fuse_reply_err(req, r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sfs_fs *fs = FS(req);
	struct statvfs sv;
	int fd = fs->upper ? fs->upper->fd : fs->layers[fs->first_lower].fd;

	if (fstatvfs(fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	int r, tries = 0;

	do
		r = sfs_setxattr(FS(req), NODE(req, ino), name, value, size, flags);
	while (again(req, locked_dir(req, ino), r, &tries));
	fuse_reply_err(req, -r);
}

static void reply_xattr_result(fuse_req_t req, ssize_t r, const char *buf, size_t size)
{
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (size == 0)
		fuse_reply_xattr(req, r);
	else
		fuse_reply_buf(req, buf, r);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	_cleanup_free_ char *buf = size ? malloc(size) : NULL;
	ssize_t r;
	int tries = 0;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	do
		r = sfs_getxattr(FS(req), NODE(req, ino), name, buf, size);
	while (again(req, NULL, (int)r, &tries));
	reply_xattr_result(req, r, buf, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	_cleanup_free_ char *buf = size ? malloc(size) : NULL;
	ssize_t r;
	int tries = 0;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	do
		r = sfs_listxattr(FS(req), NODE(req, ino), buf, size);
	while (again(req, NULL, (int)r, &tries));
	reply_xattr_result(req, r, buf, size);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int r, tries = 0;

	do
		r = sfs_removexattr(FS(req), NODE(req, ino), name);
	while (again(req, locked_dir(req, ino), r, &tries));
	fuse_reply_err(req, -r);
}

/* Only reached without default_permissions (an unprivileged daemon):
 * the usual owner/group/other check on the presented attributes. */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct stat st;
	int r, tries = 0;
	mode_t bits;

	do
		r = sfs_getattr(FS(req), NODE(req, ino), &st);
	while (again(req, NULL, r, &tries));

	if (r < 0 || mask == F_OK || c->uid == 0) {
		fuse_reply_err(req, r < 0 ? -r : 0);
		return;
	}
	bits = c->uid == st.st_uid   ? (st.st_mode >> 6)
	       : c->gid == st.st_gid ? (st.st_mode >> 3)
				     : st.st_mode;
	fuse_reply_err(req, ((bits & 7) & mask) == (unsigned)mask ? 0 : EACCES);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	int fd = sfs_file_writefd(FS(req), FILEOF(fi));
	int r = fd < 0 ? fd : (fallocate(fd, mode, offset, length) < 0 ? -errno : 0);
	fuse_reply_err(req, -r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	int fd = sfs_file_readfd(FS(req), FILEOF(fi));
	off_t r = fd < 0 ? (errno = -fd, -1) : lseek(fd, off, whence);

	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	loff_t oi = off_in, oo = off_out;
	int out = sfs_file_writefd(FS(req), FILEOF(fi_out));
	ssize_t r;

	if (out < 0) {
		fuse_reply_err(req, -out);
		return;
	}
	int in = sfs_file_readfd(FS(req), FILEOF(fi_in));
	if (in < 0) {
		fuse_reply_err(req, -in);
		return;
	}
	r = copy_file_range(in, &oi, out, &oo, len, flags);
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, r);
}

int sfs_lookup(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
	       struct fuse_entry_param *e)
{
	return sfs_lookup_hint(fs, parent, name, -1, e);
}

int sfs_lookup_hint(struct sfs_fs *fs, struct sfs_node *parent, const char *name, int pos,
		    struct fuse_entry_param *e)
{
	struct sfs_res res;
	int r;

	if (!S_ISDIR(parent->type))
		return -ENOTDIR;
	r = pos > 0 ? sfs_resolve_hint(fs, parent, name, pos, &res)
		    : sfs_resolve(fs, parent, name, &res);
	if (r < 0)
		return r;
	return sfs_publish_entry(fs, parent, name, &res, e);
}

const struct fuse_lowlevel_ops sfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .symlink = op_symlink,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write_buf = op_write_buf,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
    .fallocate = op_fallocate,
    .lseek = op_lseek,
    .copy_file_range = op_copy_file_range,
};
