/* fs/inode.c: the node table.  Nodes are keyed by their presented st_ino so
 * every name of one object (hard links, a copied-up file and its lower) is
 * one node; the FUSE node id is the node's address.  Lock order: table_lock
 * is innermost and held only for table and counter updates. */
#include "fs/sfs.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>

struct sfs_node *sfs_node_get(struct sfs_fs *fs, fuse_ino_t nodeid)
{
	return nodeid == FUSE_ROOT_ID ? fs->root : (struct sfs_node *)(uintptr_t)nodeid;
}

fuse_ino_t sfs_node_id(struct sfs_fs *fs, struct sfs_node *n)
{
	return n == fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

bool sfs_node_has_upper(struct sfs_node *n)
{
	return __atomic_load_n(&n->has_upper, __ATOMIC_ACQUIRE);
}

/* Has n hold fd in *slot (its upper's or a lower's), counted for the
 * pruner, if the slot is empty (the pruner took its fd); false when
 * another request was first. */
static bool hold(struct sfs_fs *fs, struct sfs_node *n, int *slot, int fd)
{
	int empty = -1;

	if (!__atomic_compare_exchange_n(slot, &empty, fd, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return false;
	__atomic_add_fetch(&n->fds, 1, __ATOMIC_RELAXED);
	sfs_prune_account(fs, 1);
	return true;
}

/* The path of directory n below the layer roots, from the names of the
 * nodes above it; -ESTALE once it has no name (removed). */
static int node_path(struct sfs_fs *fs, struct sfs_node *n, char **out)
{
	struct sfs_node *cur = n, *held = NULL;
	char *path = NULL;
	int r = 0;

	while (r == 0 && cur != fs->root) {
		struct sfs_node *parent;
		char *more;
		bool gone;

		pthread_mutex_lock(&cur->lock);
		parent = cur->parent;
		gone = !parent || !cur->name;
		more = gone   ? NULL
		       : path ? su_asprintf("%s/%s", cur->name, path)
			      : strdup(cur->name);
		/* the parent may lose its last child reference to a rename
		 * as soon as cur is unlocked */
		if (more)
			sfs_node_ref(fs, parent);
		pthread_mutex_unlock(&cur->lock);
		if (!more)
			r = gone ? -ESTALE : -ENOMEM;
		free(path);
		path = more;
		if (held)
			sfs_node_unref(fs, held);
		held = more ? parent : NULL;
		cur = parent;
	}
	if (held)
		sfs_node_unref(fs, held);
	if (r < 0) {
		free(path);
		return r;
	}
	*out = path;
	return 0;
}

/* Opens directory n's upper again after the pruner took it, and has n hold
 * it, unless another request was first. */
static int reopen_upper_dir(struct sfs_fs *fs, struct sfs_node *n)
{
	struct sfs_lower up = {-1, 0, __atomic_load_n(&n->upino, __ATOMIC_ACQUIRE)};
	int r;

	/* A rename above n between reading its names and opening them leads
	 * elsewhere (the inode check tells), as does one that has moved the
	 * upper but not yet the nodes: the names are read again once no
	 * rename that may explain it is under way. */
	for (int i = 0;; i++) {
		uint64_t seen = __atomic_load_n(&fs->renamed, __ATOMIC_SEQ_CST);
		_cleanup_free_ char *path = NULL;

		r = node_path(fs, n, &path);
		if (r == 0)
			r = sfs_lower_open(fs, &up, path, O_PATH | O_DIRECTORY, NULL);
		if (r != -ESTALE || i == 2000 ||
		    (!__atomic_load_n(&fs->renaming, __ATOMIC_SEQ_CST) &&
		     __atomic_load_n(&fs->renamed, __ATOMIC_SEQ_CST) == seen))
			break;
		nanosleep(&(struct timespec){0, 500 * 1000}, NULL);
	}
	if (r < 0)
		return r;
	/* while the daemon is short of fds, a walk would reopen directories
	 * faster than the pruner takes them back: the fd serves this
	 * request alone */
	if (sfs_prune_pressure(fs) && sfs_grace_close_later(r))
		return r;
	while (!hold(fs, n, &n->upper, r)) {
		/* another request was first (the pruner may take it again
		 * meanwhile: then r goes in) */
		int held = __atomic_load_n(&n->upper, __ATOMIC_ACQUIRE);
		if (held >= 0) {
			close(r);
			return held;
		}
	}
	return r;
}

int sfs_node_upper(struct sfs_fs *fs, struct sfs_node *n)
{
	int fd = __atomic_load_n(&n->upper, __ATOMIC_ACQUIRE);

	if (fd >= 0 && !S_ISDIR(n->type))
		return fd;
	if (!sfs_node_has_upper(n))
		return -ENOENT;
	__atomic_store_n(&n->used, __atomic_load_n(&fs->tick, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	/* (copied up since the first look: the fd is there now) */
	if (fd < 0)
		fd = __atomic_load_n(&n->upper, __ATOMIC_ACQUIRE);
	return fd >= 0 ? fd : reopen_upper_dir(fs, n);
}

bool sfs_node_keep_upper(struct sfs_fs *fs, struct sfs_node *n, int fd)
{
	return S_ISDIR(n->type) && sfs_node_has_upper(n) && hold(fs, n, &n->upper, fd);
}

bool sfs_node_data_up(struct sfs_node *n)
{
	return sfs_node_has_upper(n) &&
	       (!__atomic_load_n(&n->metacopy, __ATOMIC_ACQUIRE) || n->nlow == 0);
}

int sfs_node_lowfd(struct sfs_fs *fs, struct sfs_node *n, int *tmp, struct stat *st)
{
	*tmp = -1;
	return n->nlow ? sfs_lower_fd(fs, &n->low[0], n->lowpath, tmp, st) : -EIO;
}

int sfs_node_metafd(struct sfs_fs *fs, struct sfs_node *n, int *tmp)
{
	int up = sfs_node_upper(fs, n);

	*tmp = -1;
	return up != -ENOENT ? up : sfs_node_lowfd(fs, n, tmp, NULL);
}

int sfs_node_lowdir(struct sfs_fs *fs, struct sfs_node *n, struct sfs_lower *l, int *tmp)
{
	int fd = sfs_lower_fd(fs, l, n->lowpath, tmp, NULL);

	__atomic_store_n(&n->used, __atomic_load_n(&fs->tick, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	/* Opened again (the pruner took it): n keeps it, unless the daemon
	 * is short of fds -- a walk reopens the directories faster than the
	 * pruner takes them back -- or another request was first, with an
	 * fd of the same object. */
	if (*tmp >= 0 && !sfs_prune_pressure(fs) && hold(fs, n, &l->fd, fd))
		*tmp = -1;
	return fd;
}

int sfs_node_open_data(struct sfs_fs *fs, struct sfs_node *n, int flags)
{
	if (sfs_node_data_up(n)) {
		int up = sfs_node_upper(fs, n);
		return up < 0 ? up : sfs_reopen(fs, up, flags);
	}
	return sfs_node_open_lower(fs, n, flags, NULL);
}

int sfs_node_open_lower(struct sfs_fs *fs, struct sfs_node *n, int flags, struct stat *st)
{
	return n->nlow ? sfs_lower_open(fs, &n->low[0], n->lowpath, flags, st) : -EIO;
}

static void node_free(struct sfs_fs *fs, struct sfs_node *n)
{
	sfs_prune_account(fs, -n->fds);
	/* (the pruner holds a reference while it takes fds away) */
	if (__atomic_load_n(&n->upper, __ATOMIC_ACQUIRE) >= 0)
		close(n->upper);
	for (int i = 0; i < n->nlow; i++) {
		int fd = __atomic_load_n(&n->low[i].fd, __ATOMIC_ACQUIRE);
		if (fd >= 0)
			close(fd);
	}
	free(n->low);
	free(n->lowpath);
	free(n->name);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

/* Drops one reference of either kind; frees the node, and then walks up
 * releasing the reference each freed node held on its parent. */
static void node_put(struct sfs_fs *fs, struct sfs_node *n, uint64_t lookups, uint64_t refs)
{
	while (n) {
		struct sfs_node *parent = NULL;
		bool dead;

		pthread_mutex_lock(&fs->table_lock);
		n->nlookup -= lookups < n->nlookup ? lookups : n->nlookup;
		n->refs -= refs < n->refs ? refs : n->refs;
		dead = n->nlookup == 0 && n->refs == 0 && n != fs->root;
		if (dead && n->hh.tbl) {
			struct sfs_node *cur = NULL;
			HASH_FIND(hh, fs->nodes, &n->ino, sizeof(n->ino), cur);
			if (cur == n)
				HASH_DELETE(hh, fs->nodes, n);
		}
		pthread_mutex_unlock(&fs->table_lock);
		if (!dead)
			return;
		parent = n->parent;
		node_free(fs, n);
		n = parent;
		lookups = 0;
		refs = 1;
	}
}

void sfs_node_ref(struct sfs_fs *fs, struct sfs_node *n)
{
	pthread_mutex_lock(&fs->table_lock);
	n->refs++;
	pthread_mutex_unlock(&fs->table_lock);
}

void sfs_node_unref(struct sfs_fs *fs, struct sfs_node *n)
{
	node_put(fs, n, 0, 1);
}

void sfs_node_forget(struct sfs_fs *fs, struct sfs_node *n, uint64_t nlookup)
{
	node_put(fs, n, nlookup, 0);
}

int sfs_node_set_alias(struct sfs_fs *fs, struct sfs_node *n, struct sfs_node *parent,
		       const char *name)
{
	char *nm = strdup(name);
	struct sfs_node *old;
	char *oldname;

	if (!nm)
		return -ENOMEM;
	sfs_node_ref(fs, parent);
	pthread_mutex_lock(&n->lock);
	old = n->parent;
	oldname = n->name;
	n->parent = parent;
	n->name = nm;
	__atomic_store_n(&n->unlinked, false, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&n->lock);
	free(oldname);
	if (old)
		sfs_node_unref(fs, old);
	return 0;
}

void sfs_node_drop_alias(struct sfs_fs *fs, struct sfs_node *n)
{
	struct sfs_node *old;
	char *oldname;

	pthread_mutex_lock(&n->lock);
	old = n->parent;
	oldname = n->name;
	n->parent = NULL;
	n->name = NULL;
	__atomic_store_n(&n->unlinked, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&n->lock);
	/* the inode may have another name, whose node would not tell this
	 * one of a change */
	sfs_privs_forget(n);
	free(oldname);
	if (old)
		sfs_node_unref(fs, old);
}

/* Finds the live node of ino, taking a reference of the given kind. */
struct sfs_node *sfs_node_find(struct sfs_fs *fs, uint64_t ino, bool lookup)
{
	struct sfs_node *n = NULL;

	pthread_mutex_lock(&fs->table_lock);
	HASH_FIND(hh, fs->nodes, &ino, sizeof(ino), n);
	if (n) {
		if (lookup) {
			n->nlookup++;
			n->tick = __atomic_add_fetch(&fs->tick, 1, __ATOMIC_RELAXED);
		} else
			n->refs++;
	}
	pthread_mutex_unlock(&fs->table_lock);
	return n;
}

/* Publishes the resolved object: the existing node of that inode when it is
 * still the same object, else a new node owning res's fds. */
int sfs_node_publish(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
		     struct sfs_res *res, bool lookup, struct sfs_node **out)
{
	struct sfs_node *n, *cur = NULL;

	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	n->ino = res->ino;
	n->type = res->type;
	n->upper = res->upper;
	n->has_upper = res->upper >= 0;
	n->metacopy = res->metacopy;
	n->indexed = res->indexed;
	n->privs = res->clean ? SFS_PRIVS_NONE : SFS_PRIVS_UNKNOWN;
	n->nlow = res->nlow;
	n->low = res->low;
	n->lowpath = res->lowpath;
	if (lookup)
		n->nlookup = 1;
	else
		n->refs = 1;

	pthread_mutex_lock(&fs->table_lock);
	HASH_FIND(hh, fs->nodes, &n->ino, sizeof(n->ino), cur);
	/* A node of the same number that lost its last name, or changed
	 * type, is an older object whose inode number was reused. */
	if (cur && !cur->unlinked && cur->type == n->type) {
		if (lookup) {
			cur->nlookup++;
			cur->tick = __atomic_add_fetch(&fs->tick, 1, __ATOMIC_RELAXED);
		} else
			cur->refs++;
		pthread_mutex_unlock(&fs->table_lock);
		free(n);
		sfs_res_free(res);
		n = cur;
	} else {
		if (cur)
			HASH_DELETE(hh, fs->nodes, cur);
		n->tick = __atomic_add_fetch(&fs->tick, 1, __ATOMIC_RELAXED);
		/* counted before another thread can find it and copy it up */
		n->fds = n->upper >= 0;
		for (int i = 0; i < n->nlow; i++)
			n->fds += n->low[i].fd >= 0;
		HASH_ADD(hh, fs->nodes, ino, sizeof(n->ino), n);
		pthread_mutex_unlock(&fs->table_lock);
		sfs_prune_account(fs, n->fds);
		memset(res, 0, sizeof(*res));
		res->upper = -1;
	}
	if (parent && name) {
		int r = sfs_node_set_alias(fs, n, parent, name);
		if (r < 0) {
			node_put(fs, n, lookup ? 1 : 0, lookup ? 0 : 1);
			return r;
		}
	}
	*out = n;
	return 0;
}
