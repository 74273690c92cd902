/* image/resolve: image references ("name[:tag]", id or id prefix) to the
 * layer directories and the config the launcher needs. */
#include "image/store.h"

#include <fcntl.h>
#include <string.h>

char *img_name_normalize(const char *ref)
{
	const char *slash, *colon;

	if (!ref || !*ref || strlen(ref) > 255 || ref[0] == ':' || ref[0] == '/')
		return NULL;
	for (const char *p = ref; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._-/:", *p)))
			return NULL;
	slash = strrchr(ref, '/');
	colon = strrchr(ref, ':');
	if (colon && (!slash || colon > slash))
		return colon[1] ? strdup(ref) : NULL;
	return su_asprintf("%s:latest", ref);
}

/* An array of strings, or NULL when absent or null; "\x01" on failure. */
static int strv_from_array(json_t *a, char ***out)
{
	size_t i, n;
	json_t *x;

	*out = NULL;
	if (!a || json_is_null(a))
		return 0;
	if (json_is_string(a)) { /* a shell-form string, as some tools write */
		*out = calloc(2, sizeof(char *));
		return *out && ((*out)[0] = strdup(json_string_value(a))) ? 0 : -1;
	}
	if (!json_is_array(a))
		return -1;
	n = json_array_size(a);
	if (!(*out = calloc(n + 1, sizeof(char *))))
		return -1;
	json_array_foreach(a, i, x)
	{
		if (!json_is_string(x) || !((*out)[i] = strdup(json_string_value(x))))
			return -1;
	}
	return 0;
}

/* An object's keys ("Volumes") or "K=V" pairs ("Labels"). */
static int strv_from_object(json_t *o, bool pairs, char ***out)
{
	const char *k;
	json_t *v;
	size_t i = 0;

	*out = NULL;
	if (!o || json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return -1;
	if (!(*out = calloc(json_object_size(o) + 1, sizeof(char *))))
		return -1;
	json_object_foreach(o, k, v)
	{
		const char *s = json_string_value(v);
		(*out)[i] = pairs ? su_asprintf("%s=%s", k, s ? s : "") : strdup(k);
		if (!(*out)[i++])
			return -1;
	}
	return 0;
}

static char *opt_string(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? strdup(s) : NULL;
}

int img_config_parse(json_t *blob, struct img_config *c, struct su_error *e)
{
	json_t *cfg = json_object_get(blob, "config");

	memset(c, 0, sizeof(*c));
	if (!cfg)
		cfg = json_object_get(blob, "container_config");
	if (strv_from_array(json_object_get(cfg, "Env"), &c->env) < 0 ||
	    strv_from_array(json_object_get(cfg, "Entrypoint"), &c->entrypoint) < 0 ||
	    strv_from_array(json_object_get(cfg, "Cmd"), &c->cmd) < 0 ||
	    strv_from_object(json_object_get(cfg, "Volumes"), false, &c->volumes) < 0 ||
	    strv_from_object(json_object_get(cfg, "Labels"), true, &c->labels) < 0)
		goto bad;
	if (!c->env && !(c->env = calloc(1, sizeof(char *))))
		goto bad;
	c->workdir = opt_string(cfg, "WorkingDir");
	c->user = opt_string(cfg, "User");
	return 0;
bad:
	img_config_clear(c);
	return su_error_set(e, 0, "invalid image config");
}

void img_config_clear(struct img_config *c)
{
	su_strv_free(c->env);
	su_strv_free(c->entrypoint);
	su_strv_free(c->cmd);
	free(c->workdir);
	free(c->user);
	su_strv_free(c->volumes);
	su_strv_free(c->labels);
	memset(c, 0, sizeof(*c));
}

void img_resolved_free(struct img_resolved *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->name);
	su_strv_free(r->layers);
	img_config_clear(&r->config);
	memset(r, 0, sizeof(*r));
}

static int fill(struct img_store *s, const char *ref, struct img_info *i, struct img_resolved *out,
		struct su_error *e)
{
	_cleanup_free_ char *name = img_name_normalize(ref);
	size_t n = su_strv_len(i->diff_ids);

	out->id = strdup(i->id);
	out->nlayers = n;
	out->layers = calloc(n + 1, sizeof(char *));
	if (name) {
		for (size_t k = 0; i->names[k]; k++)
			if (!strcmp(i->names[k], name))
				out->name = strdup(name);
	}
	if (!out->name && i->names[0])
		out->name = strdup(i->names[0]);
	if (!out->id || !out->layers)
		return su_error_set(e, ENOMEM, "resolve image %s", ref);
	for (size_t k = 0; k < n; k++) {
		const char *hex = img_digest_hex(i->diff_ids[n - 1 - k]);
		if (faccessat(s->layersfd, hex, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			return su_error_set(e, errno, "image %s: layer sha256:%s", ref, hex);
		if (!(out->layers[k] = su_asprintf("%s/%s", s->layers, hex)))
			return su_error_set(e, ENOMEM, "resolve image %s", ref);
	}
	if (img_config_parse(i->config, &out->config, e) < 0)
		return su_error_wrap(e, "image %s", ref);
	return 0;
}

int img_resolve(const char *root, const char *ref, struct img_resolved *out, struct su_error *e)
{
	_cleanup_store_ struct img_store *s = NULL;
	_cleanup_unlock_ int lock = -1;
	_cleanup_free_ char *id = NULL;
	struct img_info *i = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (img_store_open(root, false, &s, e) < 0) {
		if (e->errnum == ENOENT) {
			su_error_set(e, 0, "no such image: %s", ref);
			e->errnum = ENOENT;
		}
		return -1;
	}
	if ((lock = img_store_lock(s, false, e)) < 0)
		return -1;
	if (img_lookup_locked(s, ref, &id, e) < 0 || img_load_locked(s, id, &i, e) < 0)
		return -1;
	r = fill(s, ref, i, out, e);
	img_info_free(i);
	if (r < 0)
		img_resolved_free(out);
	return r;
}

int img_inspect(const char *root, const char *ref, struct img_info **out, struct su_error *e)
{
	_cleanup_store_ struct img_store *s = NULL;
	_cleanup_unlock_ int lock = -1;
	_cleanup_free_ char *id = NULL;

	if (img_store_open(root, false, &s, e) < 0) {
		if (e->errnum == ENOENT) {
			su_error_set(e, 0, "no such image: %s", ref);
			e->errnum = ENOENT;
		}
		return -1;
	}
	if ((lock = img_store_lock(s, false, e)) < 0)
		return -1;
	if (img_lookup_locked(s, ref, &id, e) < 0)
		return -1;
	return img_load_locked(s, id, out, e);
}

int img_list(const char *root, struct img_info ***out, size_t *n, struct su_error *e)
{
	_cleanup_store_ struct img_store *s = NULL;
	_cleanup_unlock_ int lock = -1;

	*out = NULL;
	*n = 0;
	if (img_store_open(root, false, &s, e) < 0)
		return e->errnum == ENOENT ? 0 : -1;
	if ((lock = img_store_lock(s, false, e)) < 0)
		return -1;
	return img_list_locked(s, out, n, e);
}
