/* fs/readdir.c: the merged listing of a directory: the upper's entries, then
 * each lower's, each name once, whiteouts (and the names they hide) left
 * out.  A listing is a snapshot held by the open directory, so offsets are
 * indexes into it and stay valid for telldir/seekdir. */
#include "fs/sfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>

struct seen {
	UT_hash_handle hh;
	char name[];
};

struct builder {
	struct seen *set;
	struct sfs_dirent *ents;
	size_t n, cap;
};

static bool seen_has(struct builder *b, const char *name)
{
	struct seen *s = NULL;
	HASH_FIND_STR(b->set, name, s);
	return s != NULL;
}

static int seen_add(struct builder *b, const char *name)
{
	size_t l = strlen(name);
	struct seen *s = malloc(sizeof(*s) + l + 1);

	if (!s)
		return -ENOMEM;
	memcpy(s->name, name, l + 1);
	HASH_ADD(hh, b->set, name[0], l, s);
	return 0;
}

static void seen_free(struct builder *b)
{
	struct seen *s, *t;
	HASH_ITER(hh, b->set, s, t)
	{
		HASH_DEL(b->set, s);
		free(s);
	}
}

static int add_entry(struct builder *b, const char *name, uint64_t ino, int pos, unsigned char type)
{
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 64;
		struct sfs_dirent *ne = realloc(b->ents, nc * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		b->ents = ne;
		b->cap = nc;
	}
	b->ents[b->n].name = strdup(name);
	if (!b->ents[b->n].name)
		return -ENOMEM;
	b->ents[b->n].ino = ino;
	b->ents[b->n].pos = pos;
	b->ents[b->n].type = type;
	b->n++;
	return 0;
}

/* Inode number of an upper entry in a directory where it may not be the
 * real inode's (merged dirs, dirs that received copied-up entries). */
static uint64_t upper_entry_ino(struct sfs_fs *fs, struct sfs_node *dir, const char *name,
				ino_t real)
{
	struct sfs_res res;
	uint64_t ino;

	if (sfs_resolve(fs, dir, name, &res) < 0)
		return sfs_make_ino(fs, 0, real);
	ino = res.ino;
	sfs_res_free(&res);
	return ino;
}

/* Adds the entries of one layer directory.  stop_at_first: only find out
 * whether anything is visible (returns 1 then). */
static int scan_layer(struct sfs_fs *fs, struct sfs_node *dir, int fd, int layer, int pos,
		      bool exact_ino, struct builder *b, bool stop_at_first)
{
	_cleanup_dirstream_ struct sfs_dirstream *d = NULL;
	struct sfs_rawent de;
	bool upper = pos < 0, wh = false;
	int r = sfs_dirstream_open(fd, &d);

	if (r < 0)
		return r;
	while ((r = sfs_dirstream_next(d, &de)) > 0) {
		const char *name = de.name;

		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (!upper && su_str_has_prefix(name, ".wh.")) {
			wh = true;
			if (strcmp(name, ".wh..wh..opq") && !seen_has(b, name + 4)) {
				r = seen_add(b, name + 4);
				if (r < 0)
					return r;
			}
			continue;
		}
		if (seen_has(b, name))
			continue;
		r = seen_add(b, name);
		if (r < 0)
			return r;
		if (sfs_dirent_whiteout(fs, sfs_dirstream_fd(d), &de) > 0)
			continue;
		if (stop_at_first)
			return 1;
		r = add_entry(b, name,
			      upper && exact_ino ? upper_entry_ino(fs, dir, name, de.ino)
						 : sfs_make_ino(fs, layer, de.ino),
			      pos, de.type);
		if (r < 0)
			return r;
	}
	/* lowers never change: what this listing saw holds for good */
	if (r == 0 && !upper && !wh)
		__atomic_store_n(&dir->low[pos].nowh, true, __ATOMIC_RELAXED);
	return r;
}

static int build(struct sfs_fs *fs, struct sfs_node *n, struct builder *b, bool stop_at_first)
{
	int up = sfs_node_upper(fs, n);
	int r = 0;

	if (up < 0 && up != -ENOENT)
		return up;
	if (up >= 0) {
		char v[4];
		bool exact = n->nlow > 0 || sfs_getox(fs, up, "impure", v, sizeof(v)) > 0;
		r = scan_layer(fs, n, up, 0, -1, exact, b, stop_at_first);
	}
	for (int i = 0; i < n->nlow && r == 0; i++) {
		_cleanup_close_ int tmp = -1;
		int fd = sfs_node_lowdir(fs, n, &n->low[i], &tmp);

		r = fd < 0 ? fd
			   : scan_layer(fs, n, fd, n->low[i].layer, i, false, b, stop_at_first);
	}
	return r;
}

int sfs_dir_load(struct sfs_fs *fs, struct sfs_node *n, struct sfs_dir *d)
{
	struct builder b = {0};
	int r = build(fs, n, &b, false);

	seen_free(&b);
	if (r < 0) {
		for (size_t i = 0; i < b.n; i++)
			free(b.ents[i].name);
		free(b.ents);
		return r;
	}
	sfs_dir_free(d);
	d->ents = b.ents;
	d->n = b.n;
	d->loaded = true;
	return 0;
}

void sfs_dir_free(struct sfs_dir *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	d->ents = NULL;
	d->n = 0;
	d->loaded = false;
}

int sfs_dir_check_empty(struct sfs_fs *fs, struct sfs_node *n)
{
	struct builder b = {0};
	int r = build(fs, n, &b, true);

	seen_free(&b);
	free(b.ents);
	return r == 1 ? -ENOTEMPTY : r;
}
