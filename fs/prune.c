/* fs/prune.c: keeps the daemon within its file descriptor limit.  Every
 * node the kernel remembers holds O_PATH fds, and the kernel remembers every
 * inode it has met until memory runs short, so a walk of a tree larger than
 * RLIMIT_NOFILE would run out of fds.  When the nodes hold more than the
 * limit less a reserve, a thread asks the kernel to forget the least
 * recently looked-up entries nobody has open (notify_inval_entry); the
 * kernel drops them and sends FORGET, which frees the nodes and their fds.
 * The entries are looked up again if they are used.  The thread also hands
 * the memory of forgotten nodes back to the system. */
#include "fs/sfs.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct victim {
	struct sfs_node *n;
	uint64_t tick;
};

static int by_tick(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	return x->tick < y->tick ? -1 : x->tick > y->tick;
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

	for (size_t i = 0; i < nv; i++) {
		struct sfs_node *n = v[i].n, *p = NULL;
		char *name = NULL;

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
		if (name && is_busy(fs, p)) {
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
	su_debug("pruned %zu nodes (%ld fds)", nv, fds);
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
	fs->prune.high = limit - reserve;
	fs->prune.low = fs->prune.high / 3 * 2;
	pthread_mutex_init(&fs->prune.lock, NULL);
	pthread_cond_init(&fs->prune.wake, NULL);
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

	/* the pruner may be waiting for the kernel to let go of dir, which
	 * this request holds: waiting for it would only time out */
	if (!fs->prune.running ||
	    (dir && __atomic_load_n(&fs->prune.notifying, __ATOMIC_ACQUIRE) == dir))
		return false;
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
