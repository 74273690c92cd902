/* fs/ahead.c: reading ahead on threads of the daemon's own, so that the
 * disk works while the program and the request threads go on.  Two kinds
 * of work share one stack and four threads:
 *
 * - A walk's next directories.  A walk of the tree (find, du, ls -R, tar)
 *   lists a directory, then goes into each of its subdirectories in turn;
 *   every listing's lower directories and every entry's inode were read
 *   from the disk one after the other, while the disk could serve several
 *   reads at once.  Once a directory is listed whose parent was listed too
 *   (a walk, not one `ls`), its lower subdirectories go on the stack; a
 *   thread reads each one's entries and stats them, so that the blocks and
 *   inodes are in the kernel's caches when the walk comes.
 * - A directory's small lower files (file.c, sfs_dir_readahead), once a
 *   program reads through the directory.
 *
 * A stack, because a walk goes deep first (the directories found last are
 * the ones it enters next) and a program waits for the directory it reads
 * now.  A full stack drops its oldest entry.  More threads put more reads
 * before the disk at once: a cold walk of the bench image took 1.6-1.7 s
 * with one, 1.3-1.5 s with four, 1.3-1.4 s with eight.
 *
 * Lower layers never change, so this only warms caches: a wrong guess
 * costs reads, never a wrong answer.  Off with prefetch=0. */
#include "fs/sfs.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AHEAD_THREADS 4
#define AHEAD_JOBS    512

struct ahead_job {
	char *path;	     /* a walk's directory, below the layer roots */
	uint64_t layers;     /* bit i: look in fs->layers[i] */
	struct sfs_node *ra; /* or a directory whose small files to read (a ref) */
};

struct sfs_ahead {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct ahead_job jobs[AHEAD_JOBS]; /* a ring: top is the newest */
	unsigned first, n;
	bool stop;
	int nthreads;
	pthread_t threads[AHEAD_THREADS];
	unsigned long walked, readaheads; /* done (lock) */
};

static void job_drop(struct sfs_fs *fs, struct ahead_job *j)
{
	free(j->path);
	if (j->ra) {
		/* may be asked again */
		__atomic_store_n(&j->ra->prefetched, false, __ATOMIC_RELAXED);
		sfs_node_unref(fs, j->ra);
	}
}

static bool pop(struct sfs_ahead *a, struct ahead_job *j)
{
	pthread_mutex_lock(&a->lock);
	while (!a->stop && a->n == 0)
		pthread_cond_wait(&a->wake, &a->lock);
	if (a->stop) {
		pthread_mutex_unlock(&a->lock);
		return false;
	}
	a->n--;
	*j = a->jobs[(a->first + a->n) % AHEAD_JOBS];
	pthread_mutex_unlock(&a->lock);
	return true;
}

/* Puts a job on the stack, dropping the oldest when it is full. */
static void push(struct sfs_fs *fs, struct ahead_job j)
{
	struct sfs_ahead *a = fs->ahead;
	struct ahead_job old = {0};

	pthread_mutex_lock(&a->lock);
	if (a->n == AHEAD_JOBS) {
		old = a->jobs[a->first];
		a->first = (a->first + 1) % AHEAD_JOBS;
		a->n--;
	}
	a->jobs[(a->first + a->n) % AHEAD_JOBS] = j;
	a->n++;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	job_drop(fs, &old);
}

/* Reads one lower directory and stats its entries.  Nothing on the path
 * is followed if it is a symlink (a layer may hold one where another holds
 * the directory). */
static void warm(struct sfs_fs *fs, int layer, const char *path)
{
	_cleanup_dirstream_ struct sfs_dirstream *d = NULL;
	struct sfs_rawent de;
	struct stat st;
	unsigned n = 0;
	int fd;

	/* (a daemon short of fds keeps them for requests) */
	if (!sfs_prune_roomy(fs))
		return;
	fd = sfs_open_beneath(fs->layers[layer].fd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || sfs_dirstream_adopt(fd, &d) < 0)
		return;
	while (sfs_dirstream_next(d, &de) > 0 &&
	       !__atomic_load_n(&fs->ahead->stop, __ATOMIC_RELAXED)) {
		if (strcmp(de.name, ".") && strcmp(de.name, "..")) {
			(void)fstatat(sfs_dirstream_fd(d), de.name, &st, AT_SYMLINK_NOFOLLOW);
			n++;
		}
	}
	su_debug("walkahead: %s in layer %d, %u entries", path, layer, n);
}

static void *ahead_main(void *arg)
{
	struct sfs_fs *fs = arg;
	struct sfs_ahead *a = fs->ahead;
	struct ahead_job j;

	while (pop(a, &j)) {
		if (j.ra) {
			/* (it uses the directory's fds, which the pruner may
			 * take: as a request does) */
			sfs_grace_busy(fs);
			sfs_dir_readahead(fs, j.ra);
			sfs_grace_idle(fs);
		} else {
			for (int i = 0; i < fs->nlayers && i < 64; i++)
				if (j.layers & (UINT64_C(1) << i))
					warm(fs, i, j.path);
			free(j.path);
		}
		pthread_mutex_lock(&a->lock);
		if (j.ra)
			a->readaheads++;
		else
			a->walked++;
		pthread_mutex_unlock(&a->lock);
	}
	return NULL;
}

int sfs_ahead_start(struct sfs_fs *fs)
{
	struct sfs_ahead *a = calloc(1, sizeof(*a));
	sigset_t all, old;

	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	fs->ahead = a;
	/* the signals that end the session are for the threads that end the
	 * loop, as for the pruner (prune.c) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < AHEAD_THREADS; i++) {
		if (pthread_create(&a->threads[i], NULL, ahead_main, fs) != 0)
			break;
		a->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (a->nthreads == 0) {
		fs->ahead = NULL;
		free(a);
		return -EAGAIN;
	}
	return 0;
}

void sfs_ahead_listed(struct sfs_fs *fs, struct sfs_node *dir, const struct sfs_dir *d)
{
	size_t last = 0, dirs = 0;
	bool walk;

	if (!fs->ahead || !dir->nlow || !dir->lowpath)
		return;
	/* (the lock keeps the parent: a rename may drop it) */
	pthread_mutex_lock(&dir->lock);
	walk = dir->parent && __atomic_load_n(&dir->parent->listed, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&dir->lock);
	if (!walk)
		return;
	/* the stack holds AHEAD_JOBS: the first ones of a wider listing */
	while (last < d->n && dirs < AHEAD_JOBS)
		if (d->ents[last++].type == DT_DIR)
			dirs++;
	/* the last pushed is taken first: push the listing backwards, so
	 * that its first subdirectory, which the walk enters first, is on top */
	for (size_t i = last; i-- > 0;) {
		const struct sfs_dirent *de = &d->ents[i];
		struct ahead_job j = {0};

		if (de->type != DT_DIR)
			continue;
		/* the layer that showed it and every one below (all of them
		 * for an upper directory, which may merge with lowers), not
		 * a FUSE or network one: each read there may be remote work */
		for (int k = de->pos < 0 ? 0 : de->pos; k < dir->nlow; k++)
			if (dir->low[k].layer < 64 && !fs->layers[dir->low[k].layer].pin)
				j.layers |= UINT64_C(1) << dir->low[k].layer;
		j.path =
		    *dir->lowpath ? su_asprintf("%s/%s", dir->lowpath, de->name) : strdup(de->name);
		if (!j.path)
			return;
		if (j.layers && strlen(j.path) < PATH_MAX)
			push(fs, j);
		else
			free(j.path);
	}
}

void sfs_ahead_readahead(struct sfs_fs *fs, struct sfs_node *dir)
{
	struct ahead_job j = {.ra = dir};

	if (fs->ahead)
		push(fs, j);
	/* without the threads, the request thread reads after its reply,
	 * unless it is a ring thread, which serves its CPU's requests */
	else if (!sfs_uring_thread())
		sfs_dir_readahead(fs, dir);
	else
		job_drop(fs, &j);
}

void sfs_ahead_stop(struct sfs_fs *fs)
{
	struct sfs_ahead *a = fs->ahead;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	__atomic_store_n(&a->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&a->wake);
	pthread_mutex_unlock(&a->lock);
	for (int i = 0; i < a->nthreads; i++)
		pthread_join(a->threads[i], NULL);
	su_debug("ahead: %lu directories of walks and %lu of small files read ahead", a->walked,
		 a->readaheads);
	for (unsigned i = 0; i < a->n; i++)
		job_drop(fs, &a->jobs[(a->first + i) % AHEAD_JOBS]);
	fs->ahead = NULL;
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
