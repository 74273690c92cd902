/* fs/walkahead.c: reading a walk's next directories ahead.
 *
 * A walk of the tree (find, du, ls -R, tar, a checksum of every file) lists
 * a directory, then goes into each of its subdirectories in turn.  Every
 * listing's lower directories and every entry's inode are read from the
 * disk then, one after the other, while the disk could serve several reads
 * at once.  Once a directory is listed whose parent was listed too (a walk,
 * not one `ls`), its lower subdirectories are put on a stack: two threads
 * take them from the top, read their entries and stat each one, so that
 * their blocks and inodes are in the kernel's caches when the walk comes
 * (more threads, more reads the disk has at once: 4 measured best here).
 * A stack, because a walk goes deep first: the directories found last are
 * the ones it enters next.  A full stack drops its oldest entry.
 *
 * Lower layers never change, so this is only warming the caches: nothing
 * read here is kept, and a wrong guess costs reads, never a wrong answer.
 * Off with prefetch=0. */
#include "fs/sfs.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WA_THREADS 4
#define WA_JOBS	   512 /* directories waiting; the oldest go first */

struct wa_job {
	char *path;	 /* below the layer roots */
	uint64_t layers; /* bit i: look in fs->layers[i] */
};

struct sfs_walkahead {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct wa_job jobs[WA_JOBS]; /* a ring: top is the newest */
	unsigned first, n;
	bool stop;
	int nthreads;
	pthread_t threads[WA_THREADS];
	unsigned long done; /* directories read (lock) */
};

static bool pop(struct sfs_walkahead *w, struct wa_job *j)
{
	pthread_mutex_lock(&w->lock);
	while (!w->stop && w->n == 0)
		pthread_cond_wait(&w->wake, &w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		return false;
	}
	w->n--;
	*j = w->jobs[(w->first + w->n) % WA_JOBS];
	pthread_mutex_unlock(&w->lock);
	return true;
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
	int fd = sfs_open_beneath(fs->layers[layer].fd, path, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return;
	if (sfs_dirstream_open(fd, &d) < 0) {
		close(fd);
		return;
	}
	close(fd);
	while (sfs_dirstream_next(d, &de) > 0 &&
	       !__atomic_load_n(&fs->wa->stop, __ATOMIC_RELAXED)) {
		if (strcmp(de.name, ".") && strcmp(de.name, "..")) {
			(void)fstatat(sfs_dirstream_fd(d), de.name, &st, AT_SYMLINK_NOFOLLOW);
			n++;
		}
	}
	su_debug("walkahead: %s in layer %d, %u entries", path, layer, n);
}

static void *wa_main(void *arg)
{
	struct sfs_fs *fs = arg;
	struct sfs_walkahead *w = fs->wa;
	struct wa_job j;

	while (pop(w, &j)) {
		for (int i = 0; i < fs->nlayers && i < 64; i++)
			if (j.layers & (UINT64_C(1) << i))
				warm(fs, i, j.path);
		free(j.path);
		pthread_mutex_lock(&w->lock);
		w->done++;
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

int sfs_walkahead_start(struct sfs_fs *fs)
{
	struct sfs_walkahead *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	fs->wa = w;
	for (int i = 0; i < WA_THREADS; i++) {
		if (pthread_create(&w->threads[i], NULL, wa_main, fs) != 0)
			break;
		w->nthreads++;
	}
	if (w->nthreads == 0) {
		fs->wa = NULL;
		free(w);
		return -EAGAIN;
	}
	return 0;
}

/* Puts one directory on the stack, dropping the oldest when it is full. */
static void push(struct sfs_walkahead *w, char *path, uint64_t layers)
{
	pthread_mutex_lock(&w->lock);
	if (w->n == WA_JOBS) {
		free(w->jobs[w->first].path);
		w->first = (w->first + 1) % WA_JOBS;
		w->n--;
	}
	w->jobs[(w->first + w->n) % WA_JOBS] = (struct wa_job){path, layers};
	w->n++;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void sfs_walkahead_listed(struct sfs_fs *fs, struct sfs_node *dir, const struct sfs_dir *d)
{
	struct sfs_walkahead *w = fs->wa;
	struct sfs_node *parent;

	if (!w || !dir->nlow || !dir->lowpath)
		return;
	pthread_mutex_lock(&dir->lock);
	parent = dir->parent;
	pthread_mutex_unlock(&dir->lock);
	/* (a parent's `listed` only goes from false to true) */
	if (!parent || !__atomic_load_n(&parent->listed, __ATOMIC_RELAXED))
		return;
	/* the last pushed is taken first: push the listing backwards, so
	 * that its first subdirectory, which the walk enters first, is on top */
	for (size_t i = d->n; i-- > 0;) {
		const struct sfs_dirent *de = &d->ents[i];
		uint64_t layers = 0;
		char *path;

		if (de->type != DT_DIR)
			continue;
		/* the layer that showed it and every one below (all of them
		 * for an upper directory, which may merge with lowers) */
		for (int k = de->pos < 0 ? 0 : de->pos; k < dir->nlow; k++)
			if (dir->low[k].layer < 64)
				layers |= UINT64_C(1) << dir->low[k].layer;
		path =
		    *dir->lowpath ? su_asprintf("%s/%s", dir->lowpath, de->name) : strdup(de->name);
		if (!path)
			return;
		if (layers && strlen(path) < PATH_MAX)
			push(w, path, layers);
		else
			free(path);
	}
}

void sfs_walkahead_stop(struct sfs_fs *fs)
{
	struct sfs_walkahead *w = fs->wa;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&w->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	su_debug("walkahead: %lu directories read ahead", w->done);
	for (unsigned i = 0; i < w->n; i++)
		free(w->jobs[(w->first + i) % WA_JOBS].path);
	fs->wa = NULL;
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
