/* image/manage: `image rm` (untagging one name, or removing the image) and
 * `image prune` (with the container check and the removal of layers no image
 * uses), and the JSON `image inspect` prints. */
#include "image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX (4 << 20)

json_t *img_info_to_json(const char *root, const struct img_info *i)
{
	json_t *cfg = json_object_get(i->config, "config");
	json_t *o, *tags = json_array(), *diffs = json_array(), *layers = json_array(), *c;
	const char *keys[] = {"Env",  "Cmd",	 "Entrypoint", "WorkingDir",
			      "User", "Volumes", "Labels"};
	const char *created = json_string_value(json_object_get(i->config, "created"));

	for (size_t k = 0; i->names[k]; k++)
		json_array_append_new(tags, json_string(i->names[k]));
	for (size_t k = 0; i->diff_ids[k]; k++) {
		json_array_append_new(diffs, json_string(i->diff_ids[k]));
		json_array_append_new(layers, json_pack("{s:s, s:s++}", "DiffID", i->diff_ids[k],
							"Path", root, "/layers/sha256/",
							img_digest_hex(i->diff_ids[k])));
	}
	c = json_object();
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		json_t *v = json_object_get(cfg, keys[k]);
		json_object_set(c, keys[k], v ? v : json_null());
	}
	o = json_pack("{s:s+, s:o, s:s, s:s, s:I, s:{s:s, s:o}, s:o, s:o, s:s, s:s}", "Id",
		      "sha256:", i->id, "RepoTags", tags, "Created", created ? created : i->created,
		      "Imported", i->created, "Size", (json_int_t)i->size, "RootFS", "Type",
		      "layers", "Layers", diffs, "LayerDirs", layers, "Config", c, "Architecture",
		      json_string_value(json_object_get(i->config, "architecture")) ?: "", "Os",
		      json_string_value(json_object_get(i->config, "os")) ?: "");
	return o;
}

/* NULL-terminated ids of the containers whose config.json names the image. */
static char **users_of(const char *root, const char *id)
{
	_cleanup_free_ char *dir = su_asprintf("%s/containers", root);
	_cleanup_closedir_ DIR *d = dir ? opendir(dir) : NULL;
	char **v = calloc(1, sizeof(char *));
	size_t n = 0;
	struct dirent *de;

	while (d && v && (de = readdir(d))) {
		_cleanup_free_ char *p = NULL, *buf = NULL;
		const char *img;
		json_t *j;
		char **nv;

		if (de->d_name[0] == '.')
			continue;
		p = su_asprintf("%s/%s/config.json", dir, de->d_name);
		if (!p || su_read_file(AT_FDCWD, p, &buf, NULL, CONFIG_MAX) < 0)
			continue;
		j = json_loads(buf, 0, NULL);
		img = json_string_value(json_object_get(j, "ImageID"));
		if (img && su_str_has_prefix(img, "sha256:"))
			img += 7;
		if (img && !strcmp(img, id) && (nv = realloc(v, (n + 2) * sizeof(char *)))) {
			v = nv;
			v[n++] = strdup(de->d_name);
			v[n] = NULL;
		}
		json_decref(j);
	}
	return v;
}

static bool layer_used(struct img_info **v, size_t n, const char *diff)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; v[i]->diff_ids[k]; k++)
			if (!strcmp(img_digest_hex(v[i]->diff_ids[k]), diff))
				return true;
	return false;
}

/* Removes every layer no image uses.  Caller holds the exclusive lock. */
static int gc_layers(struct img_store *s, struct su_error *e)
{
	int fd = openat(s->layersfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct img_info **v = NULL;
	size_t n = 0;
	struct dirent *de;

	if (!d) {
		su_closep(&fd);
		return su_error_set(e, errno, "list %s", s->layers);
	}
	if (img_list_locked(s, &v, &n, e) < 0)
		return -1;
	while ((de = readdir(d))) {
		char rm[300], tar[300];

		if (!img_hex_valid(de->d_name, 64) || layer_used(v, n, de->d_name))
			continue;
		snprintf(rm, sizeof(rm), ".rm-%s", de->d_name);
		snprintf(tar, sizeof(tar), "%s.tar", de->d_name);
		unlinkat(s->tarsfd, tar, 0);
		if (renameat(s->layersfd, de->d_name, s->layersfd, rm) == 0)
			su_rm_rf_at(s->layersfd, rm);
	}
	img_info_list_free(v, n);
	return 0;
}

static int remove_image(struct img_store *s, const char *id, struct su_error *e)
{
	char rm[80];

	snprintf(rm, sizeof(rm), ".rm-%s", id);
	if (renameat(s->imagesfd, id, s->imagesfd, rm) < 0)
		return su_error_set(e, errno, "remove image %s", id);
	fsync(s->imagesfd);
	su_rm_rf_at(s->imagesfd, rm);
	return 0;
}

static int refuse_used(const char *root, const char *ref, const char *id, struct su_error *e)
{
	char **users = users_of(root, id);
	char list[512] = "";

	if (!users || !users[0]) {
		su_strv_free(users);
		return 0;
	}
	for (size_t i = 0; users[i]; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%.12s", i ? ", " : "", users[i]);
	}
	su_strv_free(users);
	su_error_set(e, 0, "image %s is in use by container(s): %s", ref, list);
	e->errnum = EBUSY;
	return -1;
}

void img_rm_result_clear(struct img_rm_result *r)
{
	su_strv_free(r->untagged);
	free(r->deleted);
	r->untagged = NULL;
	r->deleted = NULL;
}

static char **strv_dup(char *const *v)
{
	size_t n = su_strv_len(v);
	char **d = calloc(n + 1, sizeof(*d));

	for (size_t k = 0; d && k < n; k++)
		if (!(d[k] = strdup(v[k]))) {
			su_strv_free(d);
			return NULL;
		}
	return d;
}

static bool has_name(const struct img_info *i, const char *name)
{
	for (size_t k = 0; name && i->names[k]; k++)
		if (!strcmp(i->names[k], name))
			return true;
	return false;
}

/* Whether ref can name an image at all: a name, or an id (prefix). */
static bool ref_valid(const char *ref)
{
	_cleanup_free_ char *name = img_name_normalize(ref);
	const char *hex = su_str_has_prefix(ref, "sha256:") ? ref + 7 : ref;

	return name || (img_hex_valid(hex, 0) && strlen(hex) <= 64);
}

/* An id names every tag of the image: Docker's conflict unless forced. */
static int refuse_shared(const struct img_info *i, struct su_error *e)
{
	char list[512] = "";

	for (size_t k = 0; i->names[k]; k++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s", k ? ", " : "", i->names[k]);
	}
	su_error_set(e, 0,
		     "conflict: unable to delete %.12s (must be forced) - image is referenced in "
		     "multiple repositories (%s)",
		     i->id, list);
	e->errnum = EBUSY;
	return -1;
}

static int untag(struct img_store *s, const struct img_info *i, const char *name,
		 struct img_rm_result *out, struct su_error *e)
{
	char *const one[] = {(char *)name, NULL};

	if (!(out->untagged = strv_dup(one)))
		return su_error_set(e, ENOMEM, "untag %s", name);
	if (img_untag_locked(s, i->id, name, e) < 0) {
		img_rm_result_clear(out);
		return -1;
	}
	return 0;
}

/* Removes the image with all its names (one rename: a crash leaves it
 * whole or gone), then the layers left unused. */
static int untag_and_delete(struct img_store *s, const char *ref, const struct img_info *i,
			    struct img_rm_result *out, struct su_error *e)
{
	if (refuse_used(s->root, ref, i->id, e) < 0)
		return -1;
	out->untagged = strv_dup(i->names);
	out->deleted = strdup(i->id);
	if (!out->untagged || !out->deleted) {
		img_rm_result_clear(out);
		return su_error_set(e, ENOMEM, "remove image %s", ref);
	}
	if (remove_image(s, i->id, e) < 0) {
		img_rm_result_clear(out);
		return -1;
	}
	return gc_layers(s, e);
}

int img_rm(const char *root, const char *ref, bool force, struct img_rm_result *out,
	   struct su_error *e)
{
	_cleanup_store_ struct img_store *s = NULL;
	_cleanup_unlock_ int lock = -1;
	_cleanup_free_ char *id = NULL, *name = img_name_normalize(ref);
	struct img_info *i = NULL;
	int r;

	out->untagged = NULL;
	out->deleted = NULL;
	if (!ref_valid(ref)) {
		su_error_set(e, 0, "remove image \"%s\": invalid reference format", ref);
		e->errnum = EINVAL;
		return -1;
	}
	if (img_store_open(root, true, &s, e) < 0 || (lock = img_store_lock(s, true, e)) < 0)
		return su_error_wrap(e, "remove image %s", ref);
	if (img_lookup_locked(s, ref, &id, e) < 0) {
		if (force && e->errnum == ENOENT) {
			su_error_clear(e);
			return 0;
		}
		return -1;
	}
	if (img_load_locked(s, id, &i, e) < 0)
		return su_error_wrap(e, "remove image %s", ref);
	if (has_name(i, name) && i->names[1])
		r = untag(s, i, name, out, e);
	else if (!has_name(i, name) && su_strv_len(i->names) > 1 && !force)
		r = refuse_shared(i, e);
	else
		r = untag_and_delete(s, ref, i, out, e);
	img_info_free(i);
	return r;
}

int img_prune(const char *root, bool all, char ***removed, struct su_error *e)
{
	_cleanup_store_ struct img_store *s = NULL;
	_cleanup_unlock_ int lock = -1;
	struct img_info **v = NULL;
	size_t n = 0, nr = 0;
	char **out = calloc(1, sizeof(char *));

	*removed = NULL;
	if (!out)
		return su_error_set(e, ENOMEM, "prune");
	if (img_store_open(root, true, &s, e) < 0 || (lock = img_store_lock(s, true, e)) < 0 ||
	    img_list_locked(s, &v, &n, e) < 0) {
		free(out);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char **users, **no;

		if (v[i]->names[0] && !all)
			continue;
		users = users_of(root, v[i]->id);
		if (users && users[0]) {
			su_strv_free(users);
			continue;
		}
		su_strv_free(users);
		if (remove_image(s, v[i]->id, e) < 0)
			goto fail;
		if (!(no = realloc(out, (nr + 2) * sizeof(char *))))
			goto fail;
		out = no;
		out[nr++] = strdup(v[i]->id);
		out[nr] = NULL;
	}
	img_info_list_free(v, n);
	v = NULL;
	if (gc_layers(s, e) < 0)
		goto fail;
	*removed = out;
	return 0;
fail:
	img_info_list_free(v, n);
	su_strv_free(out);
	return -1;
}
