/* volumes/store: the volume store under <root>/volumes -- create, inspect,
 * list, rm, prune -- with flock for concurrent strata processes and
 * rename-based steps so a crash never leaves a half volume. */
#include "volumes/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include "util/hash.h"

#define META_MAX (1 << 20)

int vol_store_open(const char *root, struct vol_store **out, struct su_error *e)
{
	struct vol_store *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return su_error_set(e, ENOMEM, "open volume store");
	s->dirfd = -1;
	s->dir = su_asprintf("%s/volumes", root);
	if (!s->dir)
		goto nomem;
	r = su_mkdir_p(AT_FDCWD, root, 0700);
	if (r == 0 && mkdir(s->dir, 0700) < 0 && errno != EEXIST)
		r = -errno;
	if (r < 0) {
		su_error_set(e, -r, "create %s", s->dir);
		goto fail;
	}
	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		su_error_set(e, errno, "open %s", s->dir);
		goto fail;
	}
	*out = s;
	return 0;
nomem:
	su_error_set(e, ENOMEM, "open volume store");
fail:
	vol_store_close(s);
	return -1;
}

void vol_store_close(struct vol_store *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->dir);
	free(s);
}

void vol_store_set_crash_hook(struct vol_store *s, void (*hook)(const char *point, void *data),
			      void *data)
{
	s->crash_hook = hook;
	s->crash_data = data;
}

void vol_store_point(struct vol_store *s, const char *point)
{
	if (s->crash_hook)
		s->crash_hook(point, s->crash_data);
}

/* The lock file is opened anew for each operation, so the store handle
 * can be shared with a forked child without sharing the lock. */
int vol_store_lock(struct vol_store *s, bool exclusive, struct su_error *e)
{
	int fd = su_lock_dir(s->dirfd, s->dir, exclusive, e);

	if (fd >= 0 && exclusive)
		vol_store_gc(s);
	return fd;
}

void vol_store_unlockp(int *fd)
{
	su_closep(fd);
}

/* Under the exclusive lock every ".new-*" or ".rm-*" entry belongs to a
 * writer that died: finish its work by deleting it. */
void vol_store_gc(struct vol_store *s)
{
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		su_closep(&fd);
		return;
	}
	while ((de = readdir(d))) {
		if (!su_str_has_prefix(de->d_name, ".new-") &&
		    !su_str_has_prefix(de->d_name, ".rm-"))
			continue;
		su_debug("removing leftover %s/%s", s->dir, de->d_name);
		su_rm_rf_at(s->dirfd, de->d_name);
	}
}

int vol_random_hex(char *out, size_t nbytes)
{
	unsigned char buf[64];

	if (nbytes > sizeof(buf))
		return -EINVAL;
	if (getrandom(buf, nbytes, 0) != (ssize_t)nbytes)
		return -errno;
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", buf[i]);
	return 0;
}

static int error_notfound(struct su_error *e, const char *name)
{
	su_error_set(e, 0, "no such volume: %s", name);
	e->errnum = ENOENT;
	return -1;
}

/* ---- metadata ---- */

static int meta_read(struct vol_store *s, const char *name, json_t **out, struct su_error *e)
{
	_cleanup_free_ char *path = su_asprintf("%s/meta.json", name);
	_cleanup_free_ char *buf = NULL;
	json_error_t je;
	size_t len;
	int r;

	if (!path)
		return su_error_set(e, ENOMEM, "read volume %s", name);
	r = su_read_file(s->dirfd, path, &buf, &len, META_MAX);
	if (r == -ENOENT || r == -ENOTDIR)
		return error_notfound(e, name);
	if (r < 0)
		return su_error_set(e, -r, "read %s/%s", s->dir, path);
	*out = json_loadb(buf, len, 0, &je);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		return su_error_set(e, 0, "read %s/%s: invalid JSON: %s", s->dir, path, je.text);
	}
	return 0;
}

static char *json_strdup(json_t *o, const char *key, const char *def)
{
	const char *v = json_string_value(json_object_get(o, key));
	return strdup(v ? v : def);
}

static json_t *json_object_or_empty(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_object(v) ? json_deep_copy(v) : json_object();
}

int vol_inspect_locked(struct vol_store *s, const char *name, struct vol_info **out,
		       struct su_error *e)
{
	json_t *meta = NULL;
	struct vol_info *v;

	if (!vol_name_valid(name))
		return error_notfound(e, name);
	if (meta_read(s, name, &meta, e) < 0)
		return -1;
	v = calloc(1, sizeof(*v));
	if (!v) {
		json_decref(meta);
		return su_error_set(e, ENOMEM, "inspect %s", name);
	}
	v->name = strdup(name);
	v->driver = json_strdup(meta, "Driver", "local");
	v->created_at = json_strdup(meta, "CreatedAt", "");
	v->mountpoint = su_asprintf("%s/%s/_data", s->dir, name);
	v->labels = json_object_or_empty(meta, "Labels");
	v->options = json_object_or_empty(meta, "Options");
	v->anonymous = json_is_true(json_object_get(meta, "Anonymous"));
	json_decref(meta);
	if (!v->name || !v->driver || !v->created_at || !v->mountpoint || !v->labels ||
	    !v->options) {
		vol_info_free(v);
		return su_error_set(e, ENOMEM, "inspect %s", name);
	}
	if (vol_refs_read(s, name, &v->refs, e) < 0) {
		vol_info_free(v);
		return -1;
	}
	*out = v;
	return 0;
}

void vol_info_free(struct vol_info *v)
{
	if (!v)
		return;
	free(v->name);
	free(v->driver);
	free(v->created_at);
	free(v->mountpoint);
	json_decref(v->labels);
	json_decref(v->options);
	su_strv_free(v->refs);
	free(v);
}

void vol_info_list_free(struct vol_info **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vol_info_free(v[i]);
	free(v);
}

json_t *vol_info_to_json(const struct vol_info *v)
{
	return json_pack("{s:s, s:s, s:O, s:s, s:s, s:O, s:s}", "CreatedAt", v->created_at,
			 "Driver", v->driver, "Labels", v->labels, "Mountpoint", v->mountpoint,
			 "Name", v->name, "Options", v->options, "Scope", "local");
}

/* ---- create ---- */

static int check_kv_object(json_t *o, const char *what, bool opts, struct su_error *e)
{
	static const char *const valid[] = {"type", "device", "o", "size"};
	const char *k;
	json_t *v;

	if (!o)
		return 0;
	if (!json_is_object(o))
		return su_error_set(e, EINVAL, "%s", what);
	json_object_foreach(o, k, v)
	{
		bool ok = !opts;
		if (!json_is_string(v))
			return su_error_set(e, 0, "invalid %s %s: not a string", what, k);
		for (size_t i = 0; opts && i < ARRAY_SIZE(valid); i++)
			ok |= !strcmp(k, valid[i]);
		if (!ok)
			return su_error_set(e, 0, "invalid option: \"%s\"", k);
	}
	return 0;
}

static int meta_write(int dirfd, const char *name, const struct vol_create_opts *o, bool anonymous,
		      struct su_error *e)
{
	_cleanup_free_ char *now = su_rfc3339_now(false);
	_cleanup_free_ char *text = NULL;
	json_t *meta;
	int r;

	if (!now)
		return su_error_set(e, ENOMEM, "write metadata");
	meta = json_pack(
	    "{s:s, s:s, s:s, s:o, s:o, s:b}", "Name", name, "Driver", "local", "CreatedAt", now,
	    "Labels", o->labels ? json_deep_copy(o->labels) : json_object(), "Options",
	    o->options ? json_deep_copy(o->options) : json_object(), "Anonymous", anonymous);
	if (!meta)
		return su_error_set(e, ENOMEM, "write metadata");
	text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(meta);
	if (!text)
		return su_error_set(e, ENOMEM, "write metadata");
	r = su_write_atomic(dirfd, "meta.json", text, strlen(text), 0644);
	if (r < 0)
		return su_error_set(e, -r, "write meta.json");
	return 0;
}

/* Builds the whole volume in ".new-*" and renames it into place. */
static int create_locked(struct vol_store *s, const char *name, const struct vol_create_opts *o,
			 bool anonymous, struct su_error *e)
{
	char stage[5 + 33] = ".new-";
	_cleanup_close_ int fd = -1;
	int r;

	if ((r = vol_random_hex(stage + 5, 16)) < 0)
		return su_error_set(e, -r, "random name");
	if (mkdirat(s->dirfd, stage, 0755) < 0)
		return su_error_set(e, errno, "mkdir %s/%s", s->dir, stage);
	fd = openat(s->dirfd, stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || mkdirat(fd, "_data", 0755) < 0 || mkdirat(fd, "refs", 0755) < 0) {
		su_error_set(e, errno, "mkdir %s/%s", s->dir, stage);
		goto fail;
	}
	if (meta_write(fd, name, o, anonymous, e) < 0)
		goto fail;
	fsync(fd);
	vol_store_point(s, "create:staged");
	if (renameat(s->dirfd, stage, s->dirfd, name) < 0) {
		su_error_set(e, errno, "rename %s into place", name);
		goto fail;
	}
	fsync(s->dirfd);
	return 0;
fail:
	su_rm_rf_at(s->dirfd, stage);
	return -1;
}

int vol_create(struct vol_store *s, const struct vol_create_opts *o, char **name_out, bool *created,
	       struct su_error *e)
{
	_cleanup_unlock_ int lock = -1;
	char hex[65];
	const char *name = o->name;
	struct stat st;
	int r;

	if (created)
		*created = false;
	if (name && !vol_name_valid(name))
		return su_error_set(e, 0,
				    "create %s: \"%s\" includes invalid characters for a local "
				    "volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
				    name, name);
	if (check_kv_object(o->labels, "label", false, e) < 0 ||
	    check_kv_object(o->options, "option", true, e) < 0)
		return su_error_wrap(e, "create %s", name ? name : "volume");
	if (!name) {
		if ((r = vol_random_hex(hex, 32)) < 0)
			return su_error_set(e, -r, "create volume: random name");
		name = hex;
	}
	if ((lock = vol_store_lock(s, true, e)) < 0)
		return su_error_wrap(e, "create %s", name);
	if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return su_error_set(e, errno, "create %s", name);
		if (create_locked(s, name, o, !o->name, e) < 0)
			return su_error_wrap(e, "create %s", name);
		if (created)
			*created = true;
	}
	if (name_out && !(*name_out = strdup(name)))
		return su_error_set(e, ENOMEM, "create %s", name);
	return 0;
}

/* ---- inspect, list ---- */

int vol_inspect(struct vol_store *s, const char *name, struct vol_info **out, struct su_error *e)
{
	_cleanup_unlock_ int lock = vol_store_lock(s, false, e);

	if (lock < 0)
		return -1;
	return vol_inspect_locked(s, name, out, e);
}

static int info_cmp(const void *a, const void *b)
{
	return strcmp((*(struct vol_info *const *)a)->name, (*(struct vol_info *const *)b)->name);
}

int vol_list_locked(struct vol_store *s, struct vol_info ***out, size_t *n, struct su_error *e)
{
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct vol_info **v = NULL, *info;
	size_t len = 0;
	struct dirent *de;

	if (!d) {
		su_closep(&fd);
		return su_error_set(e, errno, "list %s", s->dir);
	}
	while ((de = readdir(d))) {
		struct vol_info **nv;

		if (!vol_name_valid(de->d_name))
			continue;
		if (vol_inspect_locked(s, de->d_name, &info, e) < 0) {
			if (e->errnum == ENOENT)
				continue; /* not a volume directory */
			vol_info_list_free(v, len);
			return -1;
		}
		nv = realloc(v, (len + 1) * sizeof(*v));
		if (!nv) {
			vol_info_free(info);
			vol_info_list_free(v, len);
			return su_error_set(e, ENOMEM, "list volumes");
		}
		v = nv;
		v[len++] = info;
	}
	if (len)
		qsort(v, len, sizeof(*v), info_cmp);
	*out = v;
	*n = len;
	return 0;
}

int vol_list(struct vol_store *s, struct vol_info ***out, size_t *n, struct su_error *e)
{
	_cleanup_unlock_ int lock = vol_store_lock(s, false, e);

	if (lock < 0)
		return -1;
	return vol_list_locked(s, out, n, e);
}

/* ---- rm, prune ---- */

static int in_use_error(struct su_error *e, const char *name, char **refs)
{
	char *list = NULL;
	size_t len = 0, cap = 0;

	for (size_t i = 0; refs[i]; i++) {
		if (i)
			su_strbuf_add(&list, &len, &cap, ", ", 2);
		su_strbuf_add(&list, &len, &cap, refs[i], strlen(refs[i]));
	}
	su_error_set(e, 0, "remove %s: volume is in use - [%s]", name, list ? list : "");
	free(list);
	e->errnum = EBUSY;
	return -1;
}

/* Renames the volume out of place (one atomic step: after it the volume
 * no longer exists), then deletes it. */
static int rm_locked(struct vol_store *s, const char *name, struct su_error *e)
{
	char gone[4 + 33] = ".rm-";
	int r;

	if ((r = vol_random_hex(gone + 4, 16)) < 0)
		return su_error_set(e, -r, "remove %s: random name", name);
	if (renameat(s->dirfd, name, s->dirfd, gone) < 0)
		return su_error_set(e, errno, "remove %s", name);
	fsync(s->dirfd);
	vol_store_point(s, "rm:renamed");
	r = su_rm_rf_at(s->dirfd, gone);
	if (r < 0)
		su_warn("remove %s: delete %s/%s: %s (retried later)", name, s->dir, gone,
			strerror(-r));
	return 0;
}

int vol_rm(struct vol_store *s, const char *name, bool force, struct su_error *e)
{
	_cleanup_unlock_ int lock = vol_store_lock(s, true, e);
	char **refs = NULL;
	int r;

	if (lock < 0)
		return su_error_wrap(e, "remove %s", name);
	if (!vol_name_valid(name) || faccessat(s->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		if (force)
			return 0;
		return error_notfound(e, name);
	}
	if (vol_refs_read(s, name, &refs, e) < 0)
		return su_error_wrap(e, "remove %s", name);
	if (refs[0]) {
		in_use_error(e, name, refs);
		su_strv_free(refs);
		return -1;
	}
	su_strv_free(refs);
	r = rm_locked(s, name, e);
	return r;
}

int vol_prune(struct vol_store *s, bool all, char ***removed, uint64_t *reclaimed,
	      struct su_error *e)
{
	_cleanup_unlock_ int lock = vol_store_lock(s, true, e);
	struct vol_info **v = NULL;
	size_t n = 0, nr = 0;
	char **out;

	*reclaimed = 0;
	if (lock < 0 || vol_list_locked(s, &v, &n, e) < 0)
		return su_error_wrap(e, "prune volumes");
	out = calloc(n + 1, sizeof(*out));
	if (!out) {
		vol_info_list_free(v, n);
		return su_error_set(e, ENOMEM, "prune volumes");
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *data = su_asprintf("%s/_data", v[i]->name);
		uint64_t size;

		if (v[i]->refs[0] || (!all && !v[i]->anonymous) || !data)
			continue;
		size = vol_tree_size(s->dirfd, data);
		if (rm_locked(s, v[i]->name, e) < 0) {
			vol_info_list_free(v, n);
			*removed = out;
			return su_error_wrap(e, "prune volumes");
		}
		*reclaimed += size;
		out[nr++] = steal_pointer(&v[i]->name);
	}
	vol_info_list_free(v, n);
	*removed = out;
	return 0;
}

/* ---- sizes ---- */

struct seen_inode {
	struct {
		dev_t dev;
		ino_t ino;
	} key;
	UT_hash_handle hh;
};

static uint64_t tree_size(int parent, const char *name, struct seen_inode **seen)
{
	struct stat st;
	uint64_t total = 0;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (!d) {
			su_closep(&fd);
			return 0;
		}
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				total += tree_size(dirfd(d), de->d_name, seen);
		return total;
	}
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return 0;
	if (st.st_nlink > 1) {
		struct seen_inode *si, key;

		memset(&key, 0, sizeof(key));
		key.key.dev = st.st_dev;
		key.key.ino = st.st_ino;
		HASH_FIND(hh, *seen, &key.key, sizeof(key.key), si);
		if (si)
			return 0;
		si = calloc(1, sizeof(*si));
		if (si) {
			si->key = key.key;
			HASH_ADD(hh, *seen, key, sizeof(si->key), si);
		}
	}
	return st.st_size;
}

uint64_t vol_tree_size(int parent, const char *name)
{
	struct seen_inode *seen = NULL, *si, *tmp;
	uint64_t total = tree_size(parent, name, &seen);

	HASH_ITER(hh, seen, si, tmp)
	{
		HASH_DEL(seen, si);
		free(si);
	}
	return total;
}
