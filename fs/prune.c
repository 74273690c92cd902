/* fs/prune.c: keeps the daemon within its file descriptor limit.  The
 * nodes of directories and of upper objects hold O_PATH fds (a lower file's
 * node holds none: lookup.c), and the kernel remembers every inode it has
 * met until memory runs short, so work on a tree larger than RLIMIT_NOFILE
 * (a chmod -R copying every file up) would run out of fds.  When the nodes
 * hold more than the limit less a reserve, a thread asks the kernel to
 * forget the least recently looked-up entries that hold fds and nobody has
 * open (notify_inval_entry); the kernel drops them and sends FORGET, which
 * frees the nodes and their fds.
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
 * volumes go, are never dropped: the pruner takes their fds, lower and
 * upper, and their next request opens them again by their paths. */
#include "fs/sfs.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct victim {
	struct sfs_node *n;
	uint64_t tick;
	int fds; /* what dropping it gives back */
};

/* ---- the grace: when an fd taken from a directory may be closed ---- */

/* A request thread's progress: its count is odd while it runs a request.
 * The pruner takes a directory's fds away (sfs_lower), notes the counts,
 * and closes the fds once every thread that was running a request then
 * has moved on: no request may still be using one. */
struct sfs_grace_slot {
	uint64_t seq; /* written by its thread only (atomic) */
	bool used;    /* taken by a thread (atomic) */
} __attribute__((aligned(64)));

static __thread struct sfs_grace_slot *my_slot;
static __thread bool my_slotless;
/* fds a request opened for its own use (sfs_grace_close_later) */
static __thread int my_fds[8];
static __thread int my_nfds;

/* At the end of a request thread. */
static void slot_release(void *p)
{
	struct sfs_grace_slot *s = p;

	while (my_nfds > 0)
		close(my_fds[--my_nfds]);

	if (s->seq & 1)
		__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&s->used, false, __ATOMIC_RELEASE);
}

static struct sfs_grace_slot *thread_slot(struct sfs_fs *fs)
{
	if (my_slot || my_slotless || !fs->prune.slots)
		return my_slot;
	for (int i = 0; i < SFS_GRACE_SLOTS && !my_slot; i++) {
		bool no = false;
		if (__atomic_compare_exchange_n(&fs->prune.slots[i].used, &no, true, false,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			my_slot = &fs->prune.slots[i];
	}
	if (my_slot && pthread_setspecific(fs->prune.slot_key, my_slot) == 0)
		return my_slot;
	if (my_slot)
		slot_release(my_slot);
	my_slot = NULL;
	/* the pruner cannot tell when this thread is done with an fd: it
	 * leaves directories' fds alone from now on */
	my_slotless = true;
	__atomic_add_fetch(&fs->prune.unslotted, 1, __ATOMIC_RELAXED);
	su_warn("more than %d request threads: directories keep their fds", SFS_GRACE_SLOTS);
	return NULL;
}

bool sfs_grace_close_later(int fd)
{
	if (my_nfds == (int)(sizeof(my_fds) / sizeof(my_fds[0])))
		return false;
	my_fds[my_nfds++] = fd;
	return true;
}

void sfs_grace_idle(struct sfs_fs *fs)
{
	struct sfs_grace_slot *s = thread_slot(fs);

	while (my_nfds > 0)
		close(my_fds[--my_nfds]);

	/* what this request read is no longer used */
	if (s && (s->seq & 1))
		__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
}

void sfs_grace_busy(struct sfs_fs *fs)
{
	struct sfs_grace_slot *s = thread_slot(fs);

	if (s && !(s->seq & 1)) {
		__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
		/* seen by the pruner before the request reads any fd it may
		 * take away (it takes, fences, then reads the counts) */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
}

/* Notes the running requests, after fds were taken. */
static void grace_start(struct sfs_fs *fs)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (int i = 0; i < SFS_GRACE_SLOTS; i++)
		fs->prune.snap[i] = __atomic_load_n(&fs->prune.slots[i].seq, __ATOMIC_ACQUIRE);
}

static bool grace_over(struct sfs_fs *fs)
{
	for (int i = 0; i < SFS_GRACE_SLOTS; i++)
		if ((fs->prune.snap[i] & 1) &&
		    __atomic_load_n(&fs->prune.slots[i].seq, __ATOMIC_ACQUIRE) == fs->prune.snap[i])
			return false;
	return true;
}

static void retire_all(struct sfs_fs *fs)
{
	long n = (long)fs->prune.nclosing;

	while (fs->prune.nclosing)
		close(fs->prune.closing[--fs->prune.nclosing]);
	__atomic_sub_fetch(&fs->prune.pending, n, __ATOMIC_RELAXED);
}

/* Closes the fds taken once the grace is over, waiting up to ms for it;
 * a request that takes longer leaves them for the next try.  Fds taken
 * later share the grace noted then, which covers the earlier ones too. */
static void closing_retire(struct sfs_fs *fs, int ms)
{
	for (int i = 0; fs->prune.nclosing && !grace_over(fs); i++) {
		if (i >= ms)
			return;
		nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
	}
	retire_all(fs);
}

/* Whether the pruner may take directory n's upper fd: it is opened again
 * by n's names, which a removed directory has lost. */
static bool upper_takable(struct sfs_fs *fs, struct sfs_node *n)
{
	return fs->upper && !fs->upper->pin && !n->unlinked &&
	       __atomic_load_n(&n->upper, __ATOMIC_RELAXED) >= 0;
}

/* The fds of directory n the pruner may take: not those of layers whose
 * inode numbers cannot tell the object again. */
static int takable(struct sfs_fs *fs, struct sfs_node *n)
{
	int k = 0;

	if (!S_ISDIR(n->type) || n == fs->root || !fs->prune.slots ||
	    __atomic_load_n(&fs->prune.unslotted, __ATOMIC_RELAXED))
		return 0;
	for (int i = 0; n->lowpath && i < n->nlow; i++)
		k += !fs->layers[n->low[i].layer].pin &&
		     __atomic_load_n(&n->low[i].fd, __ATOMIC_RELAXED) >= 0;
	return k + upper_takable(fs, n);
}

/* Takes directory n's upper fd away, noting the inode it must find again;
 * 1 when taken.  Under n's lock, which its removal takes to drop its
 * name: a busy node keeps its fd this time. */
static int take_upper(struct sfs_fs *fs, struct sfs_node *n)
{
	struct stat st;
	int fd = -1;

	if (pthread_mutex_trylock(&n->lock) != 0)
		return 0;
	if (upper_takable(fs, n) && fstat(n->upper, &st) == 0) {
		__atomic_store_n(&n->upino, st.st_ino, __ATOMIC_RELEASE);
		fd = __atomic_exchange_n(&n->upper, -1, __ATOMIC_SEQ_CST);
		if (fd >= 0) {
			fs->prune.closing[fs->prune.nclosing++] = fd;
			__atomic_add_fetch(&fs->prune.pending, 1, __ATOMIC_RELAXED);
		}
	}
	pthread_mutex_unlock(&n->lock);
	return fd >= 0;
}

/* Takes directory n's fds away, to close after the grace: the kernel
 * keeps the directory, and its next request opens them again. */
static int take_dir_fds(struct sfs_fs *fs, struct sfs_node *n)
{
	size_t need = fs->prune.nclosing + (size_t)n->nlow + 1;
	int k = 0;

	if (need > fs->prune.closing_cap) {
		size_t cap = need * 2;
		int *c = realloc(fs->prune.closing, cap * sizeof(*c));
		if (!c)
			return 0;
		fs->prune.closing = c;
		fs->prune.closing_cap = cap;
	}
	int upper = take_upper(fs, n);

	k += upper;
	for (int i = 0; n->lowpath && i < n->nlow; i++) {
		int fd;

		if (fs->layers[n->low[i].layer].pin)
			continue;
		fd = __atomic_exchange_n(&n->low[i].fd, -1, __ATOMIC_SEQ_CST);
		if (fd >= 0) {
			fs->prune.closing[fs->prune.nclosing++] = fd;
			k++;
		}
	}
	__atomic_sub_fetch(&n->fds, k, __ATOMIC_RELAXED);
	__atomic_add_fetch(&fs->prune.pending, k - upper, __ATOMIC_RELAXED);
	sfs_prune_account(fs, -k);
	return k;
}

/* ---- pruning ---- */

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
		ino_t ns;   /* a mount namespace */
		char *root; /* as seen from a root directory (chroot) */
	} * ns;		    /* the tables read */
	size_t nns;
};

static bool spared_has(const struct spared *sp, const char *name)
{
	for (size_t i = 0; i < sp->n; i++)
		if (!strcmp(sp->names[i], name))
			return true;
	return false;
}

static void spared_free(struct spared *sp)
{
	for (size_t i = 0; i < sp->n; i++)
		free(sp->names[i]);
	free(sp->names);
	for (size_t i = 0; i < sp->nns; i++)
		free(sp->ns[i].root);
	free(sp->ns);
	*sp = (struct spared){0};
}

static bool spared_add(struct spared *sp, const char *name)
{
	char **names;

	if (spared_has(sp, name))
		return true;
	names = realloc(sp->names, (sp->n + 1) * sizeof(*names));
	if (!names)
		return false;
	sp->names = names;
	if (!(names[sp->n] = strdup(name)))
		return false;
	sp->n++;
	return true;
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

/* Adds the mount points on FUSE mounts of one mount table (cut up in
 * place); false when out of memory.  A mount whose parent the table does
 * not show (a process chrooted below a FUSE mount sees no line for it)
 * counts as on a FUSE mount. */
static bool spare_table(struct spared *sp, char *text)
{
	struct mnt {
		long id, parent;
		char *mp;
		bool fuse;
	} *m = NULL;
	size_t nm = 0;
	char *line, *next, *type;
	bool ok = true;

	for (line = text; line && *line; line = next) {
		struct mnt *more;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!(more = realloc(m, (nm + 1) * sizeof(*m)))) {
			ok = false;
			break;
		}
		m = more;
		if (mount_fields(line, &m[nm].id, &m[nm].parent, &m[nm].mp, &type)) {
			m[nm].fuse = !strncmp(type, "fuse", 4);
			nm++;
		}
	}
	for (size_t i = 0; ok && i < nm; i++) {
		const struct mnt *parent = NULL;
		char *base;

		for (size_t k = 0; k < nm && !parent; k++)
			if (m[k].id == m[i].parent && k != i)
				parent = &m[k];
		if (parent && !parent->fuse)
			continue;
		unescape(m[i].mp);
		base = strrchr(m[i].mp, '/') ? strrchr(m[i].mp, '/') + 1 : m[i].mp;
		ok = spared_add(sp, base);
	}
	free(m);
	return ok;
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
	/* a 64th of the limit at most: a low limit has none to spare */
	while (fs->prune.nreserve < SFS_PRUNE_RESERVE &&
	       fs->prune.nreserve < (fs->prune.high + 64) / 64) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		fs->prune.reserve[fs->prune.nreserve++] = fd;
	}
	pthread_mutex_unlock(&fs->prune.lock);
}

/* Reads /proc/path while the daemon may be out of fds: the scan gives up
 * an fd of its own (prune.scanfd), then a reserved one, and takes its own
 * back right after (the slot just closed is the lowest free one). */
static int read_proc(struct sfs_fs *fs, const char *path, char **out)
{
	const size_t max = (size_t)64 << 20;
	int r = su_read_file(fs->prune.proc, path, out, NULL, max);

	if ((r == -EMFILE || r == -ENFILE) && fs->prune.scanfd >= 0) {
		close(fs->prune.scanfd);
		fs->prune.scanfd = -1;
		r = su_read_file(fs->prune.proc, path, out, NULL, max);
	}
	if ((r == -EMFILE || r == -ENFILE) && reserve_give(fs))
		r = su_read_file(fs->prune.proc, path, out, NULL, max);
	if (fs->prune.scanfd < 0)
		fs->prune.scanfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return r;
}

/* Reads the mount table of every mount namespace of the processes the
 * daemon may look at (its own user's, or all as root).  False when one
 * could not be read for want of fds or memory.  Done while the daemon is
 * at its limit, so it takes one fd at most, its own spare if need be. */
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
			char root[PATH_MAX];
			struct seen_ns *ns;
			ssize_t rl;

			snprintf(path, sizeof(path), "%s/ns/mnt", de->d_name);
			if (fstatat(fs->prune.proc, path, &st, 0) < 0)
				continue; /* gone, or not ours to look at */
			/* a table lists the mounts below its process's root; the
			 * link's text names it without touching it (a root on a
			 * hung mount would hang a stat) */
			snprintf(path, sizeof(path), "%s/root", de->d_name);
			rl = readlinkat(fs->prune.proc, path, root, sizeof(root) - 1);
			if (rl < 0)
				continue;
			root[rl] = '\0';
			for (size_t i = 0; i < sp->nns && !seen; i++)
				seen = sp->ns[i].ns == st.st_ino && !strcmp(sp->ns[i].root, root);
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
			sp->ns[sp->nns] = (struct seen_ns){st.st_ino, strdup(root)};
			if (!sp->ns[sp->nns++].root || !spare_table(sp, text))
				ok = false;
		}
	}
	if (len < 0)
		ok = false;
	free(dents);
	return ok;
}

/* Nodes to drop, least recently used first, each with a reference taken:
 * as many as should free the fds above the low mark.  Idle files and
 * symlinks are dropped from the kernel's cache; directories only give up
 * their fds (the kernel keeps them: dropping one would wait for
 * every lookup in its parent, and what is mounted on it would go). */
static size_t pick(struct sfs_fs *fs, long fds, long target, struct victim **out)
{
	struct sfs_node *n, *tmp;
	struct victim *v;
	size_t nv = 0, nodes;

	pthread_mutex_lock(&fs->table_lock);
	nodes = HASH_COUNT(fs->nodes);
	v = calloc(nodes + 1, sizeof(*v));
	if (v) {
		long sum = 0;

		HASH_ITER(hh, fs->nodes, n, tmp)
		{
			int k = takable(fs, n);
			uint64_t used = __atomic_load_n(&n->used, __ATOMIC_RELAXED);

			if (k > 0)
				v[nv++] = (struct victim){n, n->tick > used ? n->tick : used, k};
			else if (n->refs == 0 && n->nlookup > 0 && n != fs->root && !n->unlinked &&
				 !S_ISDIR(n->type) &&
				 __atomic_load_n(&n->fds, __ATOMIC_RELAXED) > 0)
				v[nv++] = (struct victim){n, n->tick, n->fds};
		}
		qsort(v, nv, sizeof(*v), by_tick);
		for (size_t i = 0; i < nv; i++) {
			if (sum >= fds - target) {
				nv = i;
				break;
			}
			sum += v[i].fds;
			v[i].n->refs++;
		}
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
static int64_t ns_between(const struct timespec *a, const struct timespec *b)
{
	return ((int64_t)b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);
}

/* Reads the mount tables anew into sp; a scan that fails keeps the last
 * complete one, so that the pruning can go on at the fd limit. */
static void rescan(struct sfs_fs *fs, struct spared *sp)
{
	struct spared fresh = {0};

	if (spare_mount_points(fs, &fresh)) {
		spared_free(sp);
		*sp = fresh;
	} else {
		spared_free(&fresh);
	}
}

static size_t prune_once(struct sfs_fs *fs, bool forced, struct spared *sp)
{
	long fds = __atomic_load_n(&fs->prune.fds, __ATOMIC_RELAXED);
	long target = forced && fds <= fs->prune.low ? fds / 2 : fs->prune.low;
	struct victim *v = NULL;
	size_t nv = fds > target ? pick(fs, fds, target, &v) : 0, dropped = 0;
	struct timespec last = {0}, now;
	int64_t every = 0; /* ns between two scans */

	for (size_t i = 0; i < nv; i++) {
		struct sfs_node *n = v[i].n, *p = NULL;
		char *name = NULL;

		if (S_ISDIR(n->type)) {
			dropped += take_dir_fds(fs, n) > 0;
			sfs_node_unref(fs, n);
			continue;
		}
		/* a round takes a while: what was mounted since counts too */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (ns_between(&last, &now) > every) {
			rescan(fs, sp);
			clock_gettime(CLOCK_MONOTONIC, &last);
			/* every 2 ms, or less often if a scan is slow (many
			 * processes): the scans take a fifth of the time at most */
			every = ns_between(&now, &last) * 4;
			if (every < 2000000)
				every = 2000000;
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
		if (name && (is_busy(fs, p) || spared_has(sp, name))) {
			free(name);
			name = NULL;
		}
		__atomic_store_n(&fs->prune.notifying, p, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&fs->prune.lock);
		if (name) {
			fuse_lowlevel_notify_inval_entry(fs->prune.se, sfs_node_id(fs, p), name,
							 strlen(name));
			dropped++;
		}
		__atomic_store_n(&fs->prune.notifying, NULL, __ATOMIC_RELEASE);
		free(name);
		sfs_node_unref(fs, n);
	}
	free(v);
	if (fs->prune.nclosing) {
		grace_start(fs);
		closing_retire(fs, forced ? 1000 : 100);
	}
	su_debug("pruned %zu of %zu nodes (%ld fds)", dropped, nv, fds);
	return dropped;
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
	struct spared sp = {0};
	long peak = 0;
	bool idle = false;

	rescan(fs, &sp); /* while fds are plenty: a list to fall back on */
	pthread_mutex_lock(&fs->prune.lock);
	while (!fs->prune.stop) {
		bool forced = fs->prune.forced;
		/* nothing to drop last time: wait to be asked again */
		if (!forced &&
		    (idle || __atomic_load_n(&fs->prune.fds, __ATOMIC_RELAXED) <= fs->prune.high)) {
			/* soon, if fds wait for a long request to end */
			struct timespec ts = fs->prune.nclosing
						 ? su_deadline(CLOCK_REALTIME, 0, 10 * 1000 * 1000)
						 : su_deadline(CLOCK_REALTIME, 2, 0);
			pthread_cond_timedwait(&fs->prune.wake, &fs->prune.lock, &ts);
			closing_retire(fs, 0);
			trim(fs, &peak);
			idle = false;
			continue;
		}
		fs->prune.forced = false;
		pthread_mutex_unlock(&fs->prune.lock);
		idle = prune_once(fs, forced, &sp) == 0;
		__atomic_store_n(&fs->prune.futile, idle, __ATOMIC_RELAXED);
		__atomic_add_fetch(&fs->prune.rounds, 1, __ATOMIC_RELEASE);
		/* let the FORGETs arrive before counting again */
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
		reserve_fill(fs);
		pthread_mutex_lock(&fs->prune.lock);
	}
	pthread_mutex_unlock(&fs->prune.lock);
	spared_free(&sp);
	return NULL;
}

static void close_fds(struct sfs_fs *fs)
{
	if (fs->prune.proc >= 0)
		close(fs->prune.proc);
	if (fs->prune.scanfd >= 0)
		close(fs->prune.scanfd);
	fs->prune.proc = fs->prune.scanfd = -1;
	while (fs->prune.nreserve > 0)
		close(fs->prune.reserve[--fs->prune.nreserve]);
	/* the loop has ended: no request uses them */
	retire_all(fs);
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
	sigset_t all, old;
	int r;

	fs->prune.se = se;
	fs->prune.slots = aligned_alloc(64, SFS_GRACE_SLOTS * sizeof(*fs->prune.slots));
	fs->prune.snap = calloc(SFS_GRACE_SLOTS, sizeof(*fs->prune.snap));
	if (fs->prune.slots && fs->prune.snap &&
	    pthread_key_create(&fs->prune.slot_key, slot_release) == 0) {
		memset(fs->prune.slots, 0, SFS_GRACE_SLOTS * sizeof(*fs->prune.slots));
	} else {
		/* directories keep their fds */
		free(fs->prune.slots);
		free(fs->prune.snap);
		fs->prune.slots = NULL;
		fs->prune.snap = NULL;
	}
	fs->prune.proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fs->prune.scanfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fs->prune.proc < 0)
		su_warn("/proc: %m: entries with something mounted on them may be pruned");
	fs->prune.high = limit - reserve;
	fs->prune.low = fs->prune.high / 3 * 2;
	fs->prune.crowded = fs->prune.high + reserve / 2;
	pthread_mutex_init(&fs->prune.lock, NULL);
	pthread_cond_init(&fs->prune.wake, NULL);
	reserve_fill(fs);
	/* the signals that end the session are for the threads that end the
	 * loop (fuse_set_signal_handlers): the pruner would let them go unseen */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&fs->prune.thread, NULL, prune_thread, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		close_fds(fs);
		return -EAGAIN;
	}
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
	close_fds(fs);
	if (fs->prune.slots)
		pthread_key_delete(fs->prune.slot_key);
	free(fs->prune.slots);
	free(fs->prune.snap);
	free(fs->prune.closing);
	fs->prune.slots = NULL;
	fs->prune.snap = NULL;
	fs->prune.closing = NULL;
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

/* fds held by nodes and those taken from them but still open (they wait
 * for the grace): a walk that opened directories again while the ones
 * taken wait would otherwise hold twice the mark */
static long fds_open(struct sfs_fs *fs)
{
	return __atomic_load_n(&fs->prune.fds, __ATOMIC_RELAXED) +
	       __atomic_load_n(&fs->prune.pending, __ATOMIC_RELAXED);
}

bool sfs_prune_pressure(struct sfs_fs *fs)
{
	return fs->prune.running && fds_open(fs) > fs->prune.high;
}

bool sfs_prune_roomy(struct sfs_fs *fs)
{
	return !fs->prune.running || fds_open(fs) <= fs->prune.low;
}

bool sfs_prune_crowded(struct sfs_fs *fs)
{
	return fs->prune.running && fds_open(fs) > fs->prune.crowded;
}

void sfs_prune_throttle(struct sfs_fs *fs)
{
	if (!fs->prune.running || __atomic_load_n(&fs->prune.futile, __ATOMIC_RELAXED))
		return;
	/* idle: the fds taken may close (grace) while this thread waits */
	sfs_grace_idle(fs);
	if (pthread_mutex_trylock(&fs->prune.lock) == 0) {
		pthread_cond_signal(&fs->prune.wake);
		pthread_mutex_unlock(&fs->prune.lock);
	}
	for (int i = 0; i < 20 && sfs_prune_crowded(fs); i++)
		nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
	sfs_grace_busy(fs);
}

bool sfs_prune_wait(struct sfs_fs *fs, struct sfs_node *dir, struct sfs_node *dir2)
{
	unsigned long gen = __atomic_load_n(&fs->prune.rounds, __ATOMIC_ACQUIRE);
	struct sfs_node *notifying = __atomic_load_n(&fs->prune.notifying, __ATOMIC_ACQUIRE);
	int slot = -1, slot2 = -1;

	if (!fs->prune.running)
		return false;
	/* the pruner may be waiting for the kernel to let go of dir, which
	 * this request holds: waiting for it would only time out, so the
	 * request takes an fd from the reserve instead */
	if (notifying && (notifying == dir || notifying == dir2))
		return reserve_give(fs);
	/* the request holds no fd of a node while it waits (ops.c retries
	 * it from the start): the pruner need not wait for it */
	sfs_grace_idle(fs);
	pthread_mutex_lock(&fs->prune.lock);
	/* again under the lock the pruner checks busy[] and sets notifying
	 * under: it may have chosen dir since the look above */
	notifying = __atomic_load_n(&fs->prune.notifying, __ATOMIC_ACQUIRE);
	if (notifying && (notifying == dir || notifying == dir2)) {
		pthread_mutex_unlock(&fs->prune.lock);
		sfs_grace_busy(fs);
		return reserve_give(fs);
	}
	for (int i = 0; dir && slot < 0 && i < SFS_PRUNE_BUSY; i++)
		if (!fs->prune.busy[i])
			fs->prune.busy[slot = i] = dir;
	for (int i = 0; dir2 && slot2 < 0 && i < SFS_PRUNE_BUSY; i++)
		if (!fs->prune.busy[i])
			fs->prune.busy[slot2 = i] = dir2;
	fs->prune.forced = true;
	pthread_cond_signal(&fs->prune.wake);
	pthread_mutex_unlock(&fs->prune.lock);
	/* a round done, then a moment for the FORGETs to come back through
	 * other request threads */
	for (int i = 0; i < 200 && __atomic_load_n(&fs->prune.rounds, __ATOMIC_ACQUIRE) == gen; i++)
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
	pthread_mutex_lock(&fs->prune.lock);
	if (slot >= 0)
		fs->prune.busy[slot] = NULL;
	if (slot2 >= 0)
		fs->prune.busy[slot2] = NULL;
	pthread_mutex_unlock(&fs->prune.lock);
	sfs_grace_busy(fs);
	return true;
}
