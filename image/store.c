/* image/store: the image metadata store under <root>/images -- opening,
 * flock, leftovers of crashed writers, lookup of references, and reading
 * and writing one image's config.json and meta.json. */
#include "image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define META_MAX (64 << 20)

static int open_dir(const char *path, bool create, int *fd, struct su_error *e)
{
	int r = 0;

	if (create)
		r = su_mkdir_p(AT_FDCWD, path, 0700);
	if (r < 0)
		return su_error_set(e, -r, "create %s", path);
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return su_error_set(e, errno, "open %s", path);
	return 0;
}

int img_store_open(const char *root, bool create, struct img_store **out, struct su_error *e)
{
	struct img_store *s = calloc(1, sizeof(*s));

	if (!s)
		return su_error_set(e, ENOMEM, "open image store");
	s->imagesfd = s->layersfd = s->tarsfd = -1;
	s->root = strdup(root);
	s->images = su_asprintf("%s/images", root);
	s->layers = su_asprintf("%s/layers/sha256", root);
	s->tars = su_asprintf("%s/layers/tar", root);
	if (!s->root || !s->images || !s->layers || !s->tars) {
		img_store_close(s);
		return su_error_set(e, ENOMEM, "open image store");
	}
	if (open_dir(s->images, create, &s->imagesfd, e) < 0 ||
	    open_dir(s->layers, create, &s->layersfd, e) < 0 ||
	    open_dir(s->tars, create, &s->tarsfd, e) < 0) {
		img_store_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

void img_store_close(struct img_store *s)
{
	if (!s)
		return;
	su_closep(&s->imagesfd);
	su_closep(&s->layersfd);
	su_closep(&s->tarsfd);
	free(s->root);
	free(s->images);
	free(s->layers);
	free(s->tars);
	free(s);
}

void img_store_closep(struct img_store **s)
{
	img_store_close(*s);
}

static void gc_dir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		su_closep(&fd);
		return;
	}
	while ((de = readdir(d))) {
		if (!su_str_has_prefix(de->d_name, ".tmp-") &&
		    !su_str_has_prefix(de->d_name, ".rm-"))
			continue;
		su_debug("removing leftover %s", de->d_name);
		su_rm_rf_at(dirfd, de->d_name);
	}
}

int img_store_lock(struct img_store *s, bool exclusive, struct su_error *e)
{
	int fd = su_lock_dir(s->imagesfd, s->images, exclusive, e);

	if (fd >= 0 && exclusive) {
		gc_dir(s->imagesfd);
		gc_dir(s->layersfd);
		gc_dir(s->tarsfd);
	}
	return fd;
}

void img_store_unlockp(int *fd)
{
	su_closep(fd);
}

int img_tmp_name(char *buf, const char *prefix)
{
	unsigned char rnd[16];
	size_t n = strlen(prefix);

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -errno;
	memcpy(buf, prefix, n);
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(buf + n + 2 * i, 3, "%02x", rnd[i]);
	return 0;
}

bool img_hex_valid(const char *s, size_t len)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return len ? i == len : i > 0;
}

/* ---- one image ---- */

static char **json_strv(json_t *a)
{
	size_t i, n = json_is_array(a) ? json_array_size(a) : 0;
	char **v = calloc(n + 1, sizeof(*v));
	json_t *x;

	if (!v)
		return NULL;
	json_array_foreach(a, i, x)
	{
		const char *str = json_string_value(x);
		if (!(v[i] = strdup(str ? str : ""))) {
			su_strv_free(v);
			return NULL;
		}
	}
	return v;
}

static int read_json(struct img_store *s, const char *id, const char *file, json_t **out,
		     struct su_error *e)
{
	_cleanup_free_ char *path = su_asprintf("%s/%s", id, file);
	_cleanup_free_ char *buf = NULL;
	json_error_t je;
	size_t len;
	int r;

	if (!path)
		return su_error_set(e, ENOMEM, "read image %s", id);
	r = su_read_file(s->imagesfd, path, &buf, &len, META_MAX);
	if (r < 0) {
		su_error_set(e, -r, "read %s/%s", s->images, path);
		e->errnum = -r;
		return -1;
	}
	*out = json_loadb(buf, len, 0, &je);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		return su_error_set(e, 0, "read %s/%s: invalid JSON: %s", s->images, path, je.text);
	}
	return 0;
}

int img_load_locked(struct img_store *s, const char *id, struct img_info **out, struct su_error *e)
{
	json_t *meta = NULL, *config = NULL;
	struct img_info *i;
	const char *created;

	if (read_json(s, id, "meta.json", &meta, e) < 0)
		return -1;
	if (read_json(s, id, "config.json", &config, e) < 0) {
		json_decref(meta);
		return -1;
	}
	i = calloc(1, sizeof(*i));
	if (!i)
		goto nomem;
	created = json_string_value(json_object_get(meta, "Created"));
	i->id = strdup(id);
	i->names = json_strv(json_object_get(meta, "Names"));
	i->created = strdup(created ? created : "");
	i->diff_ids = json_strv(json_object_get(json_object_get(config, "rootfs"), "diff_ids"));
	i->size = json_integer_value(json_object_get(meta, "Size"));
	i->config = config;
	config = NULL;
	if (!i->id || !i->names || !i->created || !i->diff_ids)
		goto nomem;
	for (size_t k = 0; i->diff_ids[k]; k++)
		if (!img_digest_hex(i->diff_ids[k])) {
			su_error_set(e, 0, "image %s: invalid diff_id \"%s\"", id, i->diff_ids[k]);
			img_info_free(i);
			json_decref(meta);
			return -1;
		}
	json_decref(meta);
	*out = i;
	return 0;
nomem:
	json_decref(meta);
	json_decref(config);
	img_info_free(i);
	return su_error_set(e, ENOMEM, "read image %s", id);
}

void img_info_free(struct img_info *i)
{
	if (!i)
		return;
	free(i->id);
	su_strv_free(i->names);
	free(i->created);
	su_strv_free(i->diff_ids);
	json_decref(i->config);
	free(i);
}

void img_info_list_free(struct img_info **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		img_info_free(v[i]);
	free(v);
}

static int info_cmp(const void *a, const void *b)
{
	const struct img_info *x = *(struct img_info *const *)a, *y = *(struct img_info *const *)b;
	int c = strcmp(y->created, x->created);
	return c ? c : strcmp(x->id, y->id);
}

int img_list_locked(struct img_store *s, struct img_info ***out, size_t *n, struct su_error *e)
{
	int fd = openat(s->imagesfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct img_info **v = NULL, *info;
	size_t len = 0;
	struct dirent *de;

	if (!d) {
		su_closep(&fd);
		return su_error_set(e, errno, "list %s", s->images);
	}
	while ((de = readdir(d))) {
		struct img_info **nv;

		if (!img_hex_valid(de->d_name, 64))
			continue;
		if (img_load_locked(s, de->d_name, &info, e) < 0) {
			if (e->errnum == ENOENT)
				continue;
			img_info_list_free(v, len);
			return -1;
		}
		nv = realloc(v, (len + 1) * sizeof(*v));
		if (!nv) {
			img_info_free(info);
			img_info_list_free(v, len);
			return su_error_set(e, ENOMEM, "list images");
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

static int not_found(struct su_error *e, const char *ref)
{
	su_error_set(e, 0, "no such image: %s", ref);
	e->errnum = ENOENT;
	return -1;
}

int img_lookup_locked(struct img_store *s, const char *ref, char **id, struct su_error *e)
{
	_cleanup_free_ char *name = img_name_normalize(ref);
	struct img_info **v = NULL;
	const char *hex = ref, *match = NULL;
	size_t n = 0, hexlen;
	int r = -1;

	if (su_str_has_prefix(hex, "sha256:"))
		hex += 7;
	hexlen = strlen(hex);
	if (img_list_locked(s, &v, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n && !match && name; i++)
		for (size_t k = 0; v[i]->names[k]; k++)
			if (!strcmp(v[i]->names[k], name))
				match = v[i]->id;
	if (!match && img_hex_valid(hex, 0) && hexlen <= 64) {
		for (size_t i = 0; i < n; i++) {
			if (strncmp(v[i]->id, hex, hexlen))
				continue;
			if (match) {
				su_error_set(e, 0, "image id prefix \"%s\" is ambiguous", ref);
				e->errnum = EINVAL;
				goto out;
			}
			match = v[i]->id;
		}
	}
	if (!match) {
		not_found(e, ref);
		goto out;
	}
	if (!(*id = strdup(match))) {
		su_error_set(e, ENOMEM, "resolve %s", ref);
		goto out;
	}
	r = 0;
out:
	img_info_list_free(v, n);
	return r;
}

/* ---- adding an image ---- */

static int meta_write(struct img_store *s, const char *id, json_t *meta, struct su_error *e)
{
	_cleanup_free_ char *text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
	_cleanup_close_ int fd = openat(s->imagesfd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (!text)
		return su_error_set(e, ENOMEM, "write image %s", id);
	if (fd < 0)
		return su_error_set(e, errno, "open %s/%s", s->images, id);
	if ((r = su_write_atomic(fd, "meta.json", text, strlen(text), 0644)) < 0)
		return su_error_set(e, -r, "write %s/%s/meta.json", s->images, id);
	return 0;
}

/* Takes name off image id (a no-op when it has not got it): one atomic
 * rewrite of its meta.json. */
static int drop_name(struct img_store *s, const char *id, const char *name, struct su_error *e)
{
	json_t *meta = NULL, *names, *x;
	size_t k;
	int r = 0;

	if (read_json(s, id, "meta.json", &meta, e) < 0)
		return -1;
	names = json_object_get(meta, "Names");
	json_array_foreach(names, k, x)
	{
		if (!strcmp(json_string_value(x) ? json_string_value(x) : "", name)) {
			json_array_remove(names, k);
			r = meta_write(s, id, meta, e);
			break;
		}
	}
	json_decref(meta);
	return r;
}

int img_untag_locked(struct img_store *s, const char *id, const char *name, struct su_error *e)
{
	if (drop_name(s, id, name, e) < 0)
		return su_error_wrap(e, "untag %s", name);
	return 0;
}

/* Takes name away from every image but keep. */
static int untag_others(struct img_store *s, const char *name, const char *keep, struct su_error *e)
{
	struct img_info **v = NULL;
	size_t n = 0;
	int r = 0;

	if (img_list_locked(s, &v, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n && r == 0; i++) {
		bool has = false;

		for (size_t k = 0; v[i]->names[k] && !has; k++)
			has = !strcmp(v[i]->names[k], name);
		if (has && strcmp(v[i]->id, keep))
			r = drop_name(s, v[i]->id, name, e);
	}
	img_info_list_free(v, n);
	return r;
}

static int add_name(struct img_store *s, const char *id, const char *name, struct su_error *e)
{
	json_t *meta = NULL, *names, *x;
	size_t k;
	int r;

	if (read_json(s, id, "meta.json", &meta, e) < 0)
		return -1;
	names = json_object_get(meta, "Names");
	if (!json_is_array(names)) {
		names = json_array();
		json_object_set_new(meta, "Names", names);
	}
	json_array_foreach(names, k,
			   x) if (!strcmp(json_string_value(x) ? json_string_value(x) : "", name))
	{
		json_decref(meta);
		return 0;
	}
	json_array_append_new(names, json_string(name));
	r = meta_write(s, id, meta, e);
	json_decref(meta);
	return r;
}

int img_store_add_locked(struct img_store *s, const char *id, const char *config, size_t len,
			 const char *name, uint64_t size, struct su_error *e)
{
	char stage[64];
	_cleanup_free_ char *now = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	json_t *meta;
	int r;

	if (fstatat(s->imagesfd, id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		goto named;
	if ((r = img_tmp_name(stage, ".tmp-")) < 0)
		return su_error_set(e, -r, "random name");
	if (mkdirat(s->imagesfd, stage, 0755) < 0)
		return su_error_set(e, errno, "mkdir %s/%s", s->images, stage);
	fd = openat(s->imagesfd, stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		su_error_set(e, errno, "open %s/%s", s->images, stage);
		goto fail;
	}
	if ((r = su_write_atomic(fd, "config.json", config, len, 0644)) < 0) {
		su_error_set(e, -r, "write %s/%s/config.json", s->images, stage);
		goto fail;
	}
	now = su_rfc3339_now(true);
	meta = json_pack("{s:s, s:[], s:s, s:I}", "Id", id, "Names", "Created", now ? now : "",
			 "Size", (json_int_t)size);
	if (!meta) {
		su_error_set(e, ENOMEM, "write image %s", id);
		goto fail;
	}
	{
		_cleanup_free_ char *text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS);
		json_decref(meta);
		r = text ? su_write_atomic(fd, "meta.json", text, strlen(text), 0644) : -ENOMEM;
	}
	if (r < 0) {
		su_error_set(e, -r, "write %s/%s/meta.json", s->images, stage);
		goto fail;
	}
	if (renameat(s->imagesfd, stage, s->imagesfd, id) < 0) {
		su_error_set(e, errno, "rename image %s into place", id);
		goto fail;
	}
	fsync(s->imagesfd);
named:
	if (!name)
		return 0;
	if (untag_others(s, name, id, e) < 0)
		return -1;
	return add_name(s, id, name, e);
fail:
	su_rm_rf_at(s->imagesfd, stage);
	return -1;
}
