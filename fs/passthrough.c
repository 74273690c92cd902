/* fs/passthrough.c: FUSE passthrough.  Reads and writes of a file whose data
 * lives in the upper layer (or in a lower of a read-only mount) go straight
 * from the kernel to that file, without a round trip through the daemon.
 *
 * libfuse 3.14 does not know the protocol bits, so the daemon installs its
 * own I/O hooks on the session: the INIT exchange is read to learn whether
 * the kernel offers passthrough and the reply is amended to accept it; open
 * and create replies of files chosen for passthrough get FOPEN_PASSTHROUGH
 * and the backing id.  Registering a backing file needs CAP_SYS_ADMIN, so
 * only a daemon running as real root uses it.  The same INIT amendment
 * accepts FUSE_HANDLE_KILLPRIV_V2, for every daemon (see patch_init), and
 * FUSE over io_uring when uring.c has its queues ready; the reply hooks
 * then send a ring request's reply back into its ring.
 *
 * The kernel's rules, which decide the policy here:
 *   - while an inode has a passthrough open, every open of it must be a
 *     passthrough open on the same backing file, or the open fails (EIO);
 *   - while an inode has a cached open, a passthrough open fails.
 * So a node is in one mode at a time, counted under n->lock: passthrough
 * opens share one backing id; cached opens keep the mode until the last is
 * released.  A lower file of a writable mount is never a backing file: a
 * writer opening it later could not be given the upper copy.  Files whose
 * data is still being copied up (metacopy) stay cached, as a `touch` must
 * not copy data; so do set-id and capability files, whose bits a write
 * must clear.
 *
 * The receive hooks also tell prune.c when a request thread is between
 * requests (sfs_grace_idle, sfs_grace_busy). */
#include "fs/sfs.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/xattr.h>

/* Protocol 7.40 values, absent from bookworm's headers. */
#define PT_FUSE_INIT_OP	     26
#define PT_INIT_EXT	     (1u << 30)
#define PT_KILLPRIV_V2	     (1u << 28)
#define PT_FLAGS2_PASSTHRU   (1u << (37 - 32))
#define PT_FLAGS2_URING	     (1u << (41 - 32))
#define PT_FOPEN_KEEP_CACHE  (1u << 1)
#define PT_FOPEN_PASSTHROUGH (1u << 7)

struct pt_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define PT_IOC_BACKING_OPEN  _IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

/* Offsets in the wire structures (fuse_kernel.h 7.40). */
#define IN_HDR_LEN	 40 /* fuse_in_header */
#define IN_OPCODE	 4
#define IN_UNIQUE	 8
#define INIT_IN_FLAGS	 12
#define INIT_IN_FLAGS2	 16
#define OUT_UNIQUE	 8 /* fuse_out_header */
#define OUT_ERROR	 4
#define INIT_OUT_FLAGS	 12
#define INIT_OUT_FLAGS2	 32
#define INIT_OUT_STACK	 36
#define INIT_OUT_MIN	 40
#define OPEN_OUT_LEN	 16 /* fuse_open_out: fh, open_flags, backing_id */
#define OPEN_OUT_FLAGS	 8
#define OPEN_OUT_BACKING 12

/* The backing id the open reply being sent by this thread should carry:
 * ops.c arms it right before fuse_reply_open/create, and the writev hook,
 * which libfuse calls synchronously from that reply, consumes it.  A
 * thread-local because libfuse offers no other way to tie a reply to the
 * request it answers. */
static __thread int32_t pt_armed;

static uint32_t get32(const void *p, size_t off)
{
	uint32_t v;
	memcpy(&v, (const char *)p + off, sizeof(v));
	return v;
}

static void put32(void *p, size_t off, uint32_t v)
{
	memcpy((char *)p + off, &v, sizeof(v));
}

static ssize_t pt_read(int fd, void *buf, size_t len, void *userdata)
{
	struct sfs_fs *fs = userdata;
	ssize_t r;
	int err;

	sfs_grace_idle(fs);
	r = read(fd, buf, len);
	err = errno;
	sfs_grace_busy(fs);
	errno = err;

	/* INIT is the first request and never arrives through splice */
	if (r >= IN_HDR_LEN + INIT_IN_FLAGS2 + 4 && !fs->pt.init_seen &&
	    get32(buf, IN_OPCODE) == PT_FUSE_INIT_OP) {
		const char *in = (const char *)buf + IN_HDR_LEN;
		fs->pt.init_seen = true;
		memcpy(&fs->pt.init_unique, (char *)buf + IN_UNIQUE, sizeof(uint64_t));
		fs->pt.init_flags = get32(in, INIT_IN_FLAGS);
		fs->pt.init_flags2 =
		    fs->pt.init_flags & PT_INIT_EXT ? get32(in, INIT_IN_FLAGS2) : 0;
		fs->pt.offered = (fs->pt.init_flags & PT_INIT_EXT) &&
				 (get32(in, INIT_IN_FLAGS2) & PT_FLAGS2_PASSTHRU);
		if (!fs->pt.offered)
			su_debug("passthrough: not offered by the kernel");
	}
	return r; /* libfuse reads errno, as after read(2) */
}

/* Amends the INIT reply: accepts passthrough, if the kernel offered it and
 * the daemon may use it, and FUSE_HANDLE_KILLPRIV_V2.  With the latter the
 * kernel no longer asks for security.capability before every write and
 * for the attributes before every chown (two round trips each); the
 * daemon clears set-id bits and capabilities itself (sfs_kill_privs). */
static bool patch_init(struct sfs_fs *fs, struct iovec *iov, char *copy)
{
	bool pt = fs->pt.offered && fs->pt.allowed;
	bool kp = fs->pt.init_flags & PT_KILLPRIV_V2;
	uint64_t unique;
	uint32_t fl;

	if (fs->pt.init_done || iov[0].iov_len < 16 || iov[1].iov_len < INIT_OUT_MIN ||
	    iov[1].iov_len > 64)
		return false;
	memcpy(&unique, (char *)iov[0].iov_base + OUT_UNIQUE, sizeof(unique));
	if (unique != fs->pt.init_unique || get32(iov[0].iov_base, OUT_ERROR) != 0)
		return false;
	fs->pt.init_done = true;
	memcpy(copy, iov[1].iov_base, iov[1].iov_len);
	/* last: from here the kernel would wait for the queues */
	bool ur = sfs_uring_prepare(fs, copy, iov[1].iov_len) == 0;
	if (!pt && !kp && !ur)
		return false;
	fl = get32(copy, INIT_OUT_FLAGS);
	if (kp) {
		put32(copy, INIT_OUT_FLAGS, fl | PT_KILLPRIV_V2);
		fs->pt.killpriv = true;
		su_debug("killpriv: the daemon clears set-id bits");
	}
	if (pt) {
		put32(copy, INIT_OUT_FLAGS, get32(copy, INIT_OUT_FLAGS) | PT_INIT_EXT);
		put32(copy, INIT_OUT_FLAGS2, get32(copy, INIT_OUT_FLAGS2) | PT_FLAGS2_PASSTHRU);
		/* the layers may not be stacked filesystems themselves */
		put32(copy, INIT_OUT_STACK, 1);
		__atomic_store_n(&fs->pt.on, true, __ATOMIC_RELEASE);
		su_debug("passthrough: accepted");
	}
	if (ur) {
		put32(copy, INIT_OUT_FLAGS, get32(copy, INIT_OUT_FLAGS) | PT_INIT_EXT);
		put32(copy, INIT_OUT_FLAGS2, get32(copy, INIT_OUT_FLAGS2) | PT_FLAGS2_URING);
		su_debug("io_uring: accepted");
	}
	iov[1].iov_base = copy;
	return true;
}

/* Marks an open or create reply as passthrough on the armed backing id. */
static void patch_open(struct iovec *iov, int32_t id, char *copy)
{
	size_t len;

	if (iov[0].iov_len < 16 || get32(iov[0].iov_base, OUT_ERROR) != 0)
		return;
	len = iov[1].iov_len;
	if (len < OPEN_OUT_LEN || len > 256)
		return;
	memcpy(copy, iov[1].iov_base, len);
	char *open_out = copy + len - OPEN_OUT_LEN;
	uint32_t fl = get32(open_out, OPEN_OUT_FLAGS);
	put32(open_out, OPEN_OUT_FLAGS, (fl | PT_FOPEN_PASSTHROUGH) & ~PT_FOPEN_KEEP_CACHE);
	put32(open_out, OPEN_OUT_BACKING, (uint32_t)id);
	iov[1].iov_base = copy;
}

static ssize_t pt_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct sfs_fs *fs = userdata;
	struct iovec mine[2];
	char copy[256];
	bool init = false;
	ssize_t r;

	/* replies libfuse sends as a header and one argument */
	if ((pt_armed || (fs->pt.init_seen && !fs->pt.init_done)) && count == 2) {
		memcpy(mine, iov, sizeof(mine));
		if (pt_armed)
			patch_open(mine, pt_armed, copy);
		else
			init = patch_init(fs, mine, copy);
		iov = mine;
	}
	pt_armed = 0;
	if (sfs_uring_reply(fs, iov, count, &r))
		return r;
	/* libfuse reads errno, as after writev(2) */
	r = writev(fd, iov, count);
	if (init) {
		int e = errno;
		sfs_uring_go(fs, r >= 0);
		errno = e;
	}
	return r;
}

static ssize_t pt_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			 unsigned int flags, void *userdata)
{
	/* a reply to a request from a ring goes back into the ring */
	if (sfs_uring_answering())
		return sfs_uring_splice(userdata, fdin, len);
	return splice(fdin, offin, fdout, offout, len, flags);
}

/* A request thread waits here (or in pt_read) for its next request: it
 * uses no fd of a node meanwhile (prune.c). */
static ssize_t pt_receive(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
			  unsigned int flags, void *userdata)
{
	ssize_t r;
	int err;

	sfs_grace_idle(userdata);
	r = splice(fdin, offin, fdout, offout, len, flags);
	err = errno;
	sfs_grace_busy(userdata);
	errno = err;
	return r;
}

int sfs_pt_setup(struct sfs_fs *fs, struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
	    .writev = pt_writev,
	    .read = pt_read,
	    .splice_receive = pt_receive,
	    .splice_send = pt_splice,
	};

	/* writeback caching and passthrough exclude each other in the
	 * kernel; a daemon without real root cannot register backing files */
	fs->pt.allowed = fs->o->passthrough && !fs->o->writeback && geteuid() == 0;
	fs->pt.opath = true;
	fs->pt.devfd = fuse_session_fd(se);
	fs->pt.se = se;
	return fuse_session_custom_io(se, &io, fs->pt.devfd);
}

/* Registers fd's file as a backing file: its id, 0 when the kernel refuses.
 * A refusal that would meet every file (not a shortage, EMFILE or ENOMEM)
 * clears *way for good: passthrough itself, or for an O_PATH fd
 * (opath), naming backing files by one -- a kernel that wants an open
 * file may also say EBADF or EOPNOTSUPP. */
static int32_t backing_open(struct sfs_fs *fs, int fd, bool *way, bool opath)
{
	struct pt_backing_map map = {.fd = fd};
	int id = ioctl(fs->pt.devfd, PT_IOC_BACKING_OPEN, &map), e = errno;

	if (id > 0)
		return id;
	if (e == EPERM || e == EINVAL || e == ENOTTY ||
	    (opath && (e == EBADF || e == EOPNOTSUPP))) {
		su_debug("passthrough: backing open%s refused: %s", opath ? " by O_PATH" : "",
			 strerror(e));
		__atomic_store_n(way, false, __ATOMIC_RELEASE);
	}
	return 0;
}

/* A lower file may back a file only when nothing can copy it up. */
static bool node_data_final(struct sfs_fs *fs, struct sfs_node *n)
{
	if (sfs_node_has_upper(n))
		return !n->metacopy;
	return !fs->upper || fs->o->readonly;
}

/* The kernel writes a backing file with the daemon's credentials and does
 * not clear set-id bits or file capabilities on the way, as a write by an
 * unprivileged process must: such files stay with the daemon. */
static bool privileged(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || (st.st_mode & (S_ISUID | S_ISGID)))
		return true;
	return fgetxattr(fd, "security.capability", NULL, 0) >= 0 || errno == ERANGE;
}

void sfs_pt_open(struct sfs_fs *fs, struct sfs_file *f)
{
	struct sfs_node *n = f->node;
	int32_t id = 0;

	pthread_mutex_lock(&n->lock);
	if (n->pt_opens) {
		id = n->pt_id;
	} else if (!n->cached_opens && S_ISREG(n->type) &&
		   __atomic_load_n(&fs->pt.on, __ATOMIC_ACQUIRE) && node_data_final(fs, n)) {
		bool rw = fs->upper && !fs->o->readonly;
		bool clean = sfs_privs_clean(n);
		/* The kernel opens the backing file again for each open, by
		 * its path: the O_PATH fd of a clean upper names it as well.
		 * (Linux 6.18 takes one.  A kernel that refuses it is given
		 * files opened for it from then on.) */
		int up =
		    clean && sfs_node_data_up(n) && __atomic_load_n(&fs->pt.opath, __ATOMIC_RELAXED)
			? sfs_node_upper(fs, n)
			: -1;
		if (up >= 0)
			id = backing_open(fs, up, &fs->pt.opath, true);
		if (!id && __atomic_load_n(&fs->pt.on, __ATOMIC_ACQUIRE)) {
			int fd = sfs_node_open_data(fs, n, rw ? O_RDWR : O_RDONLY);
			if (fd >= 0 && (clean || !privileged(fd)))
				id = backing_open(fs, fd, &fs->pt.on, false);
			if (fd >= 0)
				close(fd);
		}
		n->pt_id = id;
		if (id)
			su_debug("passthrough: %#llx on backing %d", (unsigned long long)n->ino,
				 id);
	}
	if (id) {
		n->pt_opens++;
		n->pt_used = true;
	} else {
		n->cached_opens++;
	}
	f->pt = id;
	pthread_mutex_unlock(&n->lock);
}

bool sfs_pt_keep_cache(struct sfs_file *f)
{
	struct sfs_node *n = f->node;
	bool keep;

	/* pages cached before a passthrough writer are stale */
	pthread_mutex_lock(&n->lock);
	keep = !n->pt_used;
	n->pt_used = false;
	pthread_mutex_unlock(&n->lock);
	return keep;
}

void sfs_pt_arm(int32_t id)
{
	pt_armed = id;
}

void sfs_pt_release(struct sfs_fs *fs, struct sfs_file *f)
{
	struct sfs_node *n = f->node;

	pthread_mutex_lock(&n->lock);
	if (!f->pt) {
		n->cached_opens--;
	} else if (--n->pt_opens == 0) {
		uint32_t id = (uint32_t)n->pt_id;
		/* the kernel holds its own reference while files use it */
		if (ioctl(fs->pt.devfd, PT_IOC_BACKING_CLOSE, &id) < 0)
			su_debug("backing close %u: %s", id, strerror(errno));
		n->pt_id = 0;
	}
	pthread_mutex_unlock(&n->lock);
}
