/* launcher/spec: a container's configuration to and from config.json (the
 * top-level "ImageID" key is what `image rm` looks for). */
#include "launcher/launcher.h"

#include <string.h>

static void mount_free(struct lch_mount *m)
{
	free(m->source);
	free(m->target);
	free(m->data);
}

void lch_spec_free(struct lch_spec *s)
{
	free(s->id);
	free(s->name);
	free(s->image);
	free(s->image_id);
	su_strv_free(s->layers);
	su_strv_free(s->argv);
	su_strv_free(s->env);
	free(s->workdir);
	free(s->user);
	free(s->hostname);
	free(s->created);
	su_strv_free(s->extra_hosts);
	for (size_t i = 0; i < s->nmounts; i++)
		mount_free(&s->mounts[i]);
	free(s->mounts);
	memset(s, 0, sizeof(*s));
}

static json_t *strv_json(char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static const char *type_name(enum vol_mount_type t)
{
	return t == VOL_MOUNT_BIND ? "bind" : t == VOL_MOUNT_VOLUME ? "volume" : "tmpfs";
}

static json_t *mount_json(const struct lch_mount *m)
{
	return json_pack("{s:s, s:s?, s:s, s:b, s:b, s:b, s:I, s:s?}", "Type", type_name(m->type),
			 "Source", m->source, "Destination", m->target, "RW", !m->readonly,
			 "Anonymous", m->anonymous, "NoCopy", m->nocopy, "Flags",
			 (json_int_t)m->flags, "Data", m->data);
}

json_t *lch_spec_to_json(const struct lch_spec *s)
{
	json_t *mounts = json_array();

	for (size_t i = 0; i < s->nmounts; i++)
		json_array_append_new(mounts, mount_json(&s->mounts[i]));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:{s:o, s:o, s:s, s:s, s:s, s:b, s:b},"
			 " s:b, s:s, s:o, s:b, s:o}",
			 "Id", s->id, "Name", s->name, "Image", s->image, "ImageID", s->image_id,
			 "Created", s->created, "Layers", strv_json(s->layers), "Config", "Cmd",
			 strv_json(s->argv), "Env", strv_json(s->env), "WorkingDir",
			 s->workdir ? s->workdir : "", "User", s->user ? s->user : "", "Hostname",
			 s->hostname, "Tty", s->tty, "OpenStdin", s->interactive, "ReadonlyRootfs",
			 s->read_only, "NetworkMode", s->net_none ? "none" : "host", "ExtraHosts",
			 strv_json(s->extra_hosts), "AutoRemove", s->auto_remove, "Mounts", mounts);
}

static char **json_strv(json_t *a)
{
	size_t n = json_array_size(a), i;
	char **v = calloc(n + 1, sizeof(*v));

	if (!v)
		return NULL;
	for (i = 0; i < n; i++)
		v[i] = strdup(json_string_value(json_array_get(a, i)) ?: "");
	return v;
}

static char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? strdup(v) : NULL;
}

static int mount_from_json(json_t *j, struct lch_mount *m)
{
	const char *type = json_string_value(json_object_get(j, "Type"));

	if (!type)
		return -1;
	m->type = !strcmp(type, "bind")	    ? VOL_MOUNT_BIND
		  : !strcmp(type, "volume") ? VOL_MOUNT_VOLUME
					    : VOL_MOUNT_TMPFS;
	m->source = jstr(j, "Source");
	m->target = jstr(j, "Destination");
	m->readonly = !json_is_true(json_object_get(j, "RW"));
	m->anonymous = json_is_true(json_object_get(j, "Anonymous"));
	m->nocopy = json_is_true(json_object_get(j, "NoCopy"));
	m->flags = (unsigned long)json_integer_value(json_object_get(j, "Flags"));
	m->data = jstr(j, "Data");
	return m->target ? 0 : -1;
}

int lch_spec_from_json(json_t *j, struct lch_spec *s, struct su_error *e)
{
	json_t *cfg = json_object_get(j, "Config"), *mounts = json_object_get(j, "Mounts");
	const char *net;

	memset(s, 0, sizeof(*s));
	s->id = jstr(j, "Id");
	s->name = jstr(j, "Name");
	s->image = jstr(j, "Image");
	s->image_id = jstr(j, "ImageID");
	s->created = jstr(j, "Created");
	s->layers = json_strv(json_object_get(j, "Layers"));
	s->argv = json_strv(json_object_get(cfg, "Cmd"));
	s->env = json_strv(json_object_get(cfg, "Env"));
	s->workdir = jstr(cfg, "WorkingDir");
	s->user = jstr(cfg, "User");
	s->hostname = jstr(cfg, "Hostname");
	s->tty = json_is_true(json_object_get(cfg, "Tty"));
	s->interactive = json_is_true(json_object_get(cfg, "OpenStdin"));
	s->read_only = json_is_true(json_object_get(j, "ReadonlyRootfs"));
	net = json_string_value(json_object_get(j, "NetworkMode"));
	s->net_none = net && !strcmp(net, "none");
	s->auto_remove = json_is_true(json_object_get(j, "AutoRemove"));
	/* Optional: no key reads as no entries. */
	s->extra_hosts = json_strv(json_object_get(j, "ExtraHosts"));
	s->nmounts = json_array_size(mounts);
	s->mounts = calloc(s->nmounts + 1, sizeof(*s->mounts));
	for (size_t i = 0; s->mounts && i < s->nmounts; i++)
		if (mount_from_json(json_array_get(mounts, i), &s->mounts[i]) < 0)
			return su_error_set(e, 0, "config.json: bad mount %zu", i);
	if (!s->id || !s->name || !s->layers || !s->argv || !s->env || !s->mounts ||
	    !s->extra_hosts || !s->layers[0] || !s->argv[0])
		return su_error_set(e, 0, "config.json: incomplete");
	return 0;
}
