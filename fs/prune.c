/* fs/prune.c: keeps the daemon within its file descriptor limit.  Every
 * node the kernel remembers holds O_PATH fds, and the kernel remembers every
 * inode it has met until memory runs short, so a walk of a tree larger than
 * RLIMIT_NOFILE would run out of fds.  When the nodes hold more than the
 * limit less a reserve, a thread asks the kernel to forget the least
 * recently looked-up entries nobody has open (notify_inval_entry); the
 * kernel drops them and sends FORGET, which frees the nodes and their fds.
 * The entries are looked up again if they are used.  The thread also hands
 * the memory of forgotten nodes back to the system.
 *
 * Having the kernel forget an entry (d_invalidate) also detaches whatever
 * is mounted on it, in every mount namespace: pruning a container's
 * /etc/hosts would take away the bind mount its launcher put there.  The
 * kernel never tells a FUSE daemon what is mounted on its entries, so each
 * round first reads the mount table of every mount namespace the daemon
 * may see and spares the entries named like a mount point on a FUSE mount
 * (sparing a few more than needed costs nothing).  Directories, where
 * volumes go, are never pruned at all. */
#include "fs/sfs.h"

#include <ctype.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct victim {
	struct sfs_node *n;
	uint64_t tick;
};

static int by_tick(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	return x->tick < y->tick ? -1 : x->tick > y->tick;
}

/* The last components of the mount points on FUSE mounts. */
struct spared {
	char **names;
	size_t n;
	struct seen_ns {
		ino_t ns;	/* a mount namespace */
		dev_t root_dev; /* as seen from a root directory (chroot) */
		ino_t root_ino;
	} * ns; /* the tables read */
	size_t nns;
};

static void spared_free(struct spared *sp)
{
	for (size_t i = 0; i < sp->n; i++)
		free(sp->names[i]);
	free(sp->names);
	free(sp->ns);
}

static bool spared_has(const struct spared *sp, const char *name)
{
	for (size_t i = 0; i < sp->n; i++)
		if (!strcmp(sp->names[i], name))
			return true;
	return false;
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && isdigit((unsigned char)s[2]) &&
		    isdigit((unsigned char)s[3])) {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The fields of one mountinfo line: mount id, parent id, mount point and
 * file system type.  False for a line it cannot read. */
static bool mount_fields(char *line, long *id, long *parent, char **mp, char **type)
{
	char *f[7], *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(line, " ", &save); tok && n < 6; tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	if (n < 6)
		return false;
	/* optional fields, up to a lone "-" */
	while (tok && strcmp(tok, "-"))
		tok = strtok_r(NULL, " ", &save);
	if (!tok || !(f[6] = strtok_r(NULL, " ", &save)))
		return false;
	*id = strtol(f[0], NULL, 10);
	*parent = strtol(f[1], NULL, 10);
	*mp = f[4];
	*type = f[6];
	return true;
}

/* Adds the mount points on FUSE mounts of one mount table. */
static void spare_table(struct spared *sp, char *text)
{
	long *fuse = NULL, id, parent;
	size_t nfuse = 0;
	char *mp, *type, *line, *next;

	/* first the FUSE mounts, then what is mounted on them */
	for (int pass = 0; pass < 2; pass++) {
		for (line = text; line && *line; line = next) {
			_cleanup_free_ char *copy = NULL;

			next = strchr(line, '\n');
			copy = next ? strndup(line, (size_t)(next - line)) : strdup(line);
			next = next ? next + 1 : NULL;
			if (!copy || !mount_fields(copy, &id, &parent, &mp, &type))
				continue;
			if (pass == 0 && !strncmp(type, "fuse", 4)) {
				long *f = realloc(fuse, (nfuse + 1) * sizeof(*fuse));
				if (!f)
					break;
				fuse = f;
				fuse[nfuse++] = id;
			}
			for (size_t i = 0; pass == 1 && i < nfuse; i++) {
				char *base, **names;

				if (fuse[i] != parent)
					continue;
				unescape(mp);
				base = strrchr(mp, '/') ? strrchr(mp, '/') + 1 : mp;
				if (spared_has(sp, base))
					break;
				names = realloc(sp->names, (sp->n + 1) * sizeof(*names));
				if (!names || !(names[sp->n] = strdup(base))) {
					sp->names = names ? names : sp->names;
					break;
				}
				sp->names = names;
				sp->n++;
				break;
			}
		}
	}
	free(fuse);
}

/* Closes one of the fds kept in reserve, so that a request or a scan
 * that met EMFILE may go on; false if none is left.  The pruner thread
 * makes up the reserve after each round. */
static bool reserve_give(struct sfs_fs *fs)
{
	int fd = -1;

	pthread_mutex_lock(&fs->prune.lock);
	if (fs->prune.nreserve > 0)
		fd = fs->prune.reserve[--fs->prune.nreserve];
	pthread_mutex_unlock(&fs->prune.lock);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void reserve_fill(struct sfs_fs *fs)
{
	pthread_mutex_lock(&fs->prune.lock);
	while (fs->prune.nreserve < SFS_PRUNE_RESERVE) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		fs->prune.reserve[fs->prune.nreserve++] = fd;
	}
	pthread_mutex_unlock(&fs->prune.lock);
}

/* Opens /proc/path while the daemon may be out of fds. */
static int open_proc(struct sfs_fs *fs, const char *path)
{
	int fd = openat(fs->prune.proc, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && reserve_give(fs))
		fd = openat(fs->prune.proc, path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int read_proc(struct sfs_fs *fs, const char *path, char **out)
{
	_cleanup_close_ int fd = open_proc(fs, path);
	size_t len = 0, cap = 0;
	char *buf = NULL;
	ssize_t n;

	if (fd < 0)
		return fd;
	do {
		if (cap - len < 4096) {
			char *b = realloc(buf, cap = cap ? cap * 2 : 65536);
			if (!b) {
				free(buf);
				return -ENOMEM;
			}
			buf = b;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n > 0)
			len += (size_t)n;
	} while (n > 0 || (n < 0 && errno == EINTR));
	if (n < 0) {
		free(buf);
		return -errno;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/* Reads the mount table of every mount namespace of the processes the
 * daemon may look at (its own user's, or all as root).  False when one
 * could not be read for want of fds or memory: then nothing is safe to
 * drop.  Done while the daemon is at its limit, so it takes one fd at
 * most, from the reserve if need be. */
static bool spare_mount_points(struct sfs_fs *fs, struct spared *sp)
{
	char *dents = malloc(32768);
	bool ok = dents && fs->prune.proc >= 0 && lseek(fs->prune.proc, 0, SEEK_SET) == 0;
	ssize_t len = 0;

	while (ok && (len = getdents64(fs->prune.proc, dents, 32768)) > 0) {
		for (ssize_t pos = 0; ok && pos < len;) {
			const struct dirent64 *de = (const struct dirent64 *)(dents + pos);
			_cleanup_free_ char *text = NULL;
			char path[300];
			struct stat st;
			bool seen = false;
			int r;

			pos += de->d_reclen;
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			struct stat root;
			struct seen_ns *ns, key;

			snprintf(path, sizeof(path), "%s/ns/mnt", de->d_name);
			if (fstatat(fs->prune.proc, path, &st, 0) < 0)
				continue; /* gone, or not ours to look at */
			/* a table lists the mounts below its process's root */
			snprintf(path, sizeof(path), "%s/root", de->d_name);
			if (fstatat(fs->prune.proc, path, &root, 0) < 0)
				continue;
			key = (struct seen_ns){st.st_ino, root.st_dev, root.st_ino};
			for (size_t i = 0; i < sp->nns && !seen; i++)
				seen = !memcmp(&sp->ns[i], &key, sizeof(key));
			if (seen)
				continue;
			snprintf(path, sizeof(path), "%s/mountinfo", de->d_name);
			r = read_proc(fs, path, &text);
			if (r == -EMFILE || r == -ENFILE || r == -ENOMEM) {
				ok = false;
				break;
			}
			if (r < 0)
				continue;
			ns = realloc(sp->ns, (sp->nns + 1) * sizeof(*ns));
			if (!ns) {
				ok = false;
				break;
			}
			sp->ns = ns;
			sp->ns[sp->nns++] = key;
			spare_table(sp, text);
		}
	}
	if (len < 0)
		ok = false;
	free(dents);
	return ok;
}

/* Idle nodes, oldest first, each with a reference taken: as many as
 * should free the fds above the low mark. */
static size_t pick(struct sfs_fs *fs, long fds, long target, struct victim **out)
{
	struct sfs_node *n, *tmp;
	struct victim *v;
	size_t nv = 0, nodes, want;

	pthread_mutex_lock(&fs->table_lock);
	nodes = HASH_COUNT(fs->nodes);
	/* the average fds per node tells how many nodes to drop */
	want = nodes ? (size_t)((fds - target) * (long)nodes / fds) + 1 : 0;
	v = calloc(nodes + 1, sizeof(*v));
	if (v) {
		HASH_ITER(hh, fs->nodes, n, tmp)
		{
			/* directories are few, and dropping one would wait for
			 * every lookup in its parent */
			if (n->refs == 0 && n->nlookup > 0 && n != fs->root && !n->unlinked &&
			    !S_ISDIR(n->type))
				v[nv++] = (struct victim){n, n->tick};
		}
		qsort(v, nv, sizeof(*v), by_tick);
		if (nv > want)
			nv = want;
		for (size_t i = 0; i < nv; i++)
			v[i].n->refs++;
	}
	pthread_mutex_unlock(&fs->table_lock);
	*out = v;
	return nv;
}

/* Caller holds prune.lock. */
static bool is_busy(struct sfs_fs *fs, struct sfs_node *dir)
{
	for (int i = 0; i < SFS_PRUNE_BUSY; i++)
		if (fs->prune.busy[i] == dir)
			return true;
	return false;
}

/* Drops nodes down to the low mark, or to half of what they hold when
 * forced (an EMFILE while the nodes hold less than the low mark). */
static size_t prune_once(struct sfs_fs *fs, bool forced)
{
	long fds = __atomic_load_n(&fs->prune.fds, __ATOMIC_RELAXED);
	long target = forced && fds <= fs->prune.low ? fds / 2 : fs->prune.low;
	struct victim *v = NULL;
	size_t nv = fds > target ? pick(fs, fds, target, &v) : 0;
	struct spared sp = {0};
	struct timespec last = {0}, now;
	long every = 0; /* ns between two scans */
	bool scanned = false;

	for (size_t i = 0; i < nv; i++) {
		struct sfs_node *n = v[i].n, *p = NULL;
		char *name = NULL;

		/* a round takes a while: what was mounted since counts too */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - last.tv_sec) * 1000000000L + now.tv_nsec - last.tv_nsec > every) {
			spared_free(&sp);
			sp = (struct spared){0};
			scanned = spare_mount_points(fs, &sp);
			clock_gettime(CLOCK_MONOTONIC, &last);
			/* every 2 ms, or less often if a scan is slow (many
			 * processes): the scans take a fifth of the time at most */
			every =
			    (last.tv_sec - now.tv_sec) * 1000000000L + last.tv_nsec - now.tv_nsec;
			every = every * 4 > 2000000 ? every * 4 : 2000000;
		}
		pthread_mutex_lock(&n->lock);
		if (n->parent && n->name) {
			p = n->parent;
			name = strdup(n->name);
		}
		pthread_mutex_unlock(&n->lock);
		/* The kernel locks the parent to drop the entry: skip parents
		 * whose requests wait for this thread.  No lock held while
		 * notifying.  A stale parent id only makes the kernel answer
		 * ENOENT; dropping any entry is always safe. */
		pthread_mutex_lock(&fs->prune.lock);
		if (name && (is_busy(fs, p) || !scanned || spared_has(&sp, name))) {
			free(name);
			name = NULL;
		}
		__atomic_store_n(&fs->prune.notifying, p, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&fs->prune.lock);
		if (name)
			fuse_lowlevel_notify_inval_entry(fs->prune.se, sfs_node_id(fs, p), name,
							 strlen(name));
		__atomic_store_n(&fs->prune.notifying, NULL, __ATOMIC_RELEASE);
		free(name);
		sfs_node_unref(fs, n);
	}
	free(v);
	spared_free(&sp);
	su_debug("pruned %zu nodes (%ld fds), %zu names spared", nv, fds, sp.n);
	return nv;
}

/* Gives the memory of forgotten nodes back to the system once their number
 * has halved since the peak: malloc keeps freed heap otherwise. */
static void trim(struct sfs_fs *fs, long *peak)
{
	long fds = __atomic_load_n(&fs->prune.fds, __ATOMIC_RELAXED);

	if (fds > *peak) {
		*peak = fds;
	} else if (fds < *peak / 2) {
		malloc_trim(0);
		*peak = fds;
	}
}

static void *prune_thread(void *arg)
{
	struct sfs_fs *fs = arg;
	long peak = 0;
	bool idle = false;

	pthread_mutex_lock(&fs->prune.lock);
	while (!fs->prune.stop) {
		bool forced = fs->prune.forced;
		/* nothing to drop last time: wait to be asked again */
		if (!forced &&
		    (idle || __atomic_load_n(&fs->prune.fds, __ATOMIC_RELAXED) <= fs->prune.high)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 2;
			pthread_cond_timedwait(&fs->prune.wake, &fs->prune.lock, &ts);
			trim(fs, &peak);
			idle = false;
			continue;
		}
		fs->prune.forced = false;
		pthread_mutex_unlock(&fs->prune.lock);
		idle = prune_once(fs, forced) == 0;
		reserve_fill(fs);
		__atomic_add_fetch(&fs->prune.rounds, 1, __ATOMIC_RELEASE);
		/* let the FORGETs arrive before counting again */
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
		pthread_mutex_lock(&fs->prune.lock);
	}
	pthread_mutex_unlock(&fs->prune.lock);
	return NULL;
}

int sfs_prune_start(struct sfs_fs *fs, struct fuse_session *se)
{
	struct rlimit rl;
	long limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
			 ? (long)rl.rlim_cur
			 : 1L << 20;

	/* room for open files, copy-ups and up to 32 requests in flight,
	 * each holding a few fds while it resolves a name */
	long reserve = 128 + limit / 8 < limit / 2 ? 128 + limit / 8 : limit / 2;

	fs->prune.se = se;
	fs->prune.proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fs->prune.high = limit - reserve;
	fs->prune.low = fs->prune.high / 3 * 2;
	pthread_mutex_init(&fs->prune.lock, NULL);
	pthread_cond_init(&fs->prune.wake, NULL);
	reserve_fill(fs);
	if (pthread_create(&fs->prune.thread, NULL, prune_thread, fs) != 0)
		return -EAGAIN;
	fs->prune.running = true;
	return 0;
}

void sfs_prune_stop(struct sfs_fs *fs)
{
	if (!fs->prune.running)
		return;
	pthread_mutex_lock(&fs->prune.lock);
	fs->prune.stop = true;
	pthread_cond_signal(&fs->prune.wake);
	pthread_mutex_unlock(&fs->prune.lock);
	pthread_join(fs->prune.thread, NULL);
	fs->prune.running = false;
	if (fs->prune.proc >= 0)
		close(fs->prune.proc);
	while (fs->prune.nreserve > 0)
		close(fs->prune.reserve[--fs->prune.nreserve]);
}

void sfs_prune_account(struct sfs_fs *fs, long delta)
{
	long fds = __atomic_add_fetch(&fs->prune.fds, delta, __ATOMIC_RELAXED);

	if (delta > 0 && fs->prune.running && fds > fs->prune.high &&
	    pthread_mutex_trylock(&fs->prune.lock) == 0) {
		pthread_cond_signal(&fs->prune.wake);
		pthread_mutex_unlock(&fs->prune.lock);
	}
}

bool sfs_prune_pressure(struct sfs_fs *fs)
{
	return fs->prune.running &&
	       __atomic_load_n(&fs->prune.fds, __ATOMIC_RELAXED) > fs->prune.high;
}

bool sfs_prune_wait(struct sfs_fs *fs, struct sfs_node *dir)
{
	unsigned long gen = __atomic_load_n(&fs->prune.rounds, __ATOMIC_ACQUIRE);
	int slot = -1;

	if (!fs->prune.running)
		return false;
	/* the pruner may be waiting for the kernel to let go of dir, which
	 * this request holds: waiting for it would only time out, so the
	 * request takes an fd from the reserve instead */
	if (dir && __atomic_load_n(&fs->prune.notifying, __ATOMIC_ACQUIRE) == dir)
		return reserve_give(fs);
	pthread_mutex_lock(&fs->prune.lock);
	for (int i = 0; dir && slot < 0 && i < SFS_PRUNE_BUSY; i++)
		if (!fs->prune.busy[i])
			fs->prune.busy[slot = i] = dir;
	fs->prune.forced = true;
	pthread_cond_signal(&fs->prune.wake);
	pthread_mutex_unlock(&fs->prune.lock);
	/* a round done, then a moment for the FORGETs to come back through
	 * other request threads */
	for (int i = 0; i < 200 && __atomic_load_n(&fs->prune.rounds, __ATOMIC_ACQUIRE) == gen; i++)
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
	if (slot >= 0) {
		pthread_mutex_lock(&fs->prune.lock);
		fs->prune.busy[slot] = NULL;
		pthread_mutex_unlock(&fs->prune.lock);
	}
	return true;
}
