/* volumes/spec: the three Docker mount grammars (-v, --mount, --tmpfs)
 * parsed into struct vol_mount, with Docker's acceptance and wording. */
#include "volumes/volumes.h"

#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

static const char *const prop_names[] = {
    [VOL_PROP_DEFAULT] = "",	  [VOL_PROP_PRIVATE] = "private", [VOL_PROP_RPRIVATE] = "rprivate",
    [VOL_PROP_SHARED] = "shared", [VOL_PROP_RSHARED] = "rshared", [VOL_PROP_SLAVE] = "slave",
    [VOL_PROP_RSLAVE] = "rslave",
};

static const char *type_name(enum vol_mount_type t)
{
	return t == VOL_MOUNT_BIND ? "bind" : t == VOL_MOUNT_VOLUME ? "volume" : "tmpfs";
}

const char *vol_propagation_name(enum vol_propagation p)
{
	return prop_names[p];
}

static enum vol_propagation propagation_parse(const char *s)
{
	for (size_t i = 1; i < ARRAY_SIZE(prop_names); i++)
		if (!strcmp(s, prop_names[i]))
			return (enum vol_propagation)i;
	return VOL_PROP_DEFAULT;
}

bool vol_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n < 2 || n > 255 || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = name[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

void vol_mount_clear(struct vol_mount *m)
{
	free(m->source);
	free(m->target);
	free(m->tmpfs_data);
	json_decref(m->labels);
	json_decref(m->volume_opts);
	memset(m, 0, sizeof(*m));
}

static void mount_init(struct vol_mount *m, enum vol_mount_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->tmpfs_mode = 01777;
}

/* Lexical cleaning of an absolute path, as Go's path.Clean: no "//", no
 * "." and no ".." components, no trailing '/'. */
static char *path_clean(const char *p)
{
	size_t n = strlen(p);
	char *out = malloc(n + 2);
	size_t len = 0;

	if (!out)
		return NULL;
	out[len++] = '/';
	for (const char *s = p; *s;) {
		const char *end;
		size_t cl;

		while (*s == '/')
			s++;
		if (!*s)
			break;
		end = strchrnul(s, '/');
		cl = end - s;
		if (cl == 1 && s[0] == '.') {
			/* nothing */
		} else if (cl == 2 && s[0] == '.' && s[1] == '.') {
			while (len > 1 && out[len - 1] != '/')
				len--;
			if (len > 1)
				len--;
		} else {
			if (len > 1)
				out[len++] = '/';
			memcpy(out + len, s, cl);
			len += cl;
		}
		s = end;
	}
	out[len] = '\0';
	return out;
}

static char *home_dir(const char *user, size_t ulen)
{
	struct passwd *pw;
	_cleanup_free_ char *u = strndup(user, ulen);

	if (!u)
		return NULL;
	if (!*u) {
		const char *h = getenv("HOME");
		if (h && *h)
			return strdup(h);
		pw = getpwuid(getuid());
	} else {
		pw = getpwnam(u);
	}
	return pw ? strdup(pw->pw_dir) : NULL;
}

/* Makes a host path given on the command line absolute and clean:
 * "./x", "../x", ".x" against the current directory, "~/x", "~user/x"
 * against a home directory. */
static int host_path_abs(const char *src, char **out, struct su_error *e)
{
	_cleanup_free_ char *joined = NULL;

	if (src[0] == '~') {
		size_t ulen = strcspn(src + 1, "/");
		_cleanup_free_ char *home = home_dir(src + 1, ulen);
		if (!home)
			return su_error_set(e, 0, "cannot expand '%s': unknown home directory",
					    src);
		joined = su_asprintf("%s/%s", home, src + 1 + ulen);
	} else if (src[0] != '/') {
		_cleanup_free_ char *cwd = getcwd(NULL, 0);
		if (!cwd)
			return su_error_set(e, errno, "make '%s' absolute", src);
		joined = su_asprintf("%s/%s", cwd, src);
	} else {
		joined = strdup(src);
	}
	if (!joined || !(*out = path_clean(joined)))
		return su_error_set(e, ENOMEM, "parse '%s'", src);
	return 0;
}

/* Docker's validateMountConfig: what every grammar must satisfy. */
static int mount_validate(struct vol_mount *m, struct su_error *e)
{
	const char *t = type_name(m->type);
	char *clean;

	if (m->target[0] != '/')
		return su_error_set(
		    e, 0,
		    "invalid mount config for type \"%s\": invalid mount path: '%s' "
		    "mount path must be absolute",
		    t, m->target);
	clean = path_clean(m->target);
	if (!clean)
		return su_error_set(e, ENOMEM, "parse target");
	free(m->target);
	m->target = clean;
	if (!strcmp(clean, "/"))
		return su_error_set(e, 0, "invalid specification: destination can't be '/'");

	switch (m->type) {
	case VOL_MOUNT_BIND:
		if (!m->source || !*m->source)
			return su_error_set(e, 0,
					    "invalid mount config for type \"bind\": field Source "
					    "must not be empty");
		if (m->source[0] != '/')
			return su_error_set(e, 0,
					    "invalid mount config for type \"bind\": invalid mount "
					    "path: '%s' mount path must be absolute",
					    m->source);
		if (m->nocopy)
			return su_error_set(e, 0,
					    "invalid mount config for type \"bind\": field "
					    "VolumeOptions must not be specified");
		clean = path_clean(m->source);
		if (!clean)
			return su_error_set(e, ENOMEM, "parse source");
		free(m->source);
		m->source = clean;
		break;
	case VOL_MOUNT_VOLUME:
		if (m->source && !vol_name_valid(m->source))
			return su_error_set(
			    e, 0,
			    "\"%s\" includes invalid characters for a local volume "
			    "name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If "
			    "you intended to pass a host directory, use absolute path",
			    m->source);
		if (m->propagation != VOL_PROP_DEFAULT)
			return su_error_set(e, 0,
					    "invalid mount config for type \"volume\": field "
					    "BindOptions must not be specified");
		break;
	case VOL_MOUNT_TMPFS:
		if (m->source)
			return su_error_set(e, 0,
					    "invalid mount config for type \"tmpfs\": field Source "
					    "must not be specified");
		if (m->readonly)
			m->flags |= MS_RDONLY;
		break;
	}
	return 0;
}

/* ---- -v / --volume ---- */

/* Applies a -v mode ("ro,z,nocopy"); false when Docker would call it
 * invalid: an unknown word, or two of one kind. */
static bool volume_mode_apply(const char *mode, struct vol_mount *m)
{
	_cleanup_free_ char *dup = strdup(mode);
	int rw = 0, label = 0, prop = 0, copy = 0;
	char *save = NULL;

	if (!dup)
		return false;
	for (char *o = strtok_r(dup, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "ro") || !strcmp(o, "rw")) {
			m->readonly = o[1] == 'o';
			rw++;
		} else if (!strcmp(o, "z") || !strcmp(o, "Z")) {
			m->relabel = o[0];
			label++;
		} else if (!strcmp(o, "nocopy")) {
			m->nocopy = true;
			copy++;
		} else if (propagation_parse(o) != VOL_PROP_DEFAULT) {
			m->propagation = propagation_parse(o);
			prop++;
		} else {
			return false;
		}
	}
	/* strtok_r skips empty words; Docker does not accept "ro,,z". */
	if (strstr(mode, ",,") || mode[0] == ',' || (*mode && mode[strlen(mode) - 1] == ','))
		return false;
	return rw <= 1 && label <= 1 && prop <= 1 && copy <= 1;
}

static bool volume_mode_valid(const char *mode)
{
	struct vol_mount scratch = {0};
	return volume_mode_apply(mode, &scratch);
}

int vol_spec_parse_volume(const char *spec, struct vol_mount *m, struct su_error *e)
{
	_cleanup_free_ char *dup = strdup(spec);
	char *parts[3] = {NULL, NULL, NULL};
	const char *src = NULL, *dst, *mode = "";
	size_t n = 0;

	mount_init(m, VOL_MOUNT_VOLUME);
	if (!dup)
		return su_error_set(e, ENOMEM, "parse '%s'", spec);
	for (char *p = dup, *c;; p = c + 1) {
		if (n == 3)
			return su_error_set(e, 0, "invalid volume specification: '%s'", spec);
		parts[n++] = p;
		c = strchr(p, ':');
		if (!c)
			break;
		*c = '\0';
	}
	if (!*parts[0])
		return su_error_set(e, 0, "invalid volume specification: '%s'", spec);
	if (n == 1) {
		dst = parts[0];
	} else if (n == 2) {
		/* "/foo:ro" is a destination with a mode: volumes need a name then. */
		if (volume_mode_valid(parts[1]))
			return su_error_set(e, 0, "invalid volume specification: '%s'", spec);
		src = parts[0];
		dst = parts[1];
	} else {
		src = parts[0];
		dst = parts[1];
		mode = parts[2];
	}
	if (!*dst)
		return su_error_set(e, 0, "invalid volume specification: '%s'", spec);
	if (!volume_mode_apply(mode, m)) {
		vol_mount_clear(m);
		return su_error_set(e, 0, "invalid mode: %s", mode);
	}
	if (src && (src[0] == '/' || src[0] == '.' || src[0] == '~')) {
		m->type = VOL_MOUNT_BIND;
		m->create_src = true;
		if (host_path_abs(src, &m->source, e) < 0)
			goto fail;
	} else if (src && !(m->source = strdup(src))) {
		goto nomem;
	}
	if (!(m->target = strdup(dst)))
		goto nomem;
	if (mount_validate(m, e) < 0)
		goto fail;
	return 0;
nomem:
	su_error_set(e, ENOMEM, "parse '%s'", spec);
fail:
	vol_mount_clear(m);
	return -1;
}

/* ---- --mount ---- */

/* strconv.ParseBool */
static int parse_bool(const char *s, bool *out)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};

	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		if (!strcmp(s, t[i]))
			return *out = true, 0;
		if (!strcmp(s, f[i]))
			return *out = false, 0;
	}
	return -1;
}

/* go-units RAMInBytes: "64m", "1.5GiB", "512k", "4096" (binary units). */
static int parse_ram_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgtp";
	char *end;
	double v, mul = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	v = strtod(s, &end);
	if (*end == ' ')
		end++;
	if (*end && strchr(units, tolower((unsigned char)*end))) {
		for (const char *u = units; *u != tolower((unsigned char)*end); u++)
			mul *= 1024;
		mul *= 1024;
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || v * mul > 1.8e19)
		return -1;
	*out = (uint64_t)(v * mul);
	return 0;
}

static int parse_mode(const char *s, mode_t *out)
{
	char *end;
	unsigned long v;

	if (!*s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (*end || errno || v > 07777)
		return -1;
	*out = (mode_t)v;
	return 0;
}

/* Adds "k=v" to a JSON object (a missing "=v" means an empty value). */
static int kv_put(json_t **obj, const char *kv)
{
	const char *eq = strchr(kv, '=');
	_cleanup_free_ char *k = eq ? strndup(kv, eq - kv) : strdup(kv);

	if (!k || !*k)
		return -1;
	if (!*obj && !(*obj = json_object()))
		return -1;
	return json_object_set_new(*obj, k, json_string(eq ? eq + 1 : ""));
}

struct mount_fields {
	bool vol, bind, tmpfs; /* which option families were used */
};

/* One key of --mount with no "=value". */
static int mount_flag(const char *key, struct vol_mount *m, struct mount_fields *f)
{
	if (!strcmp(key, "readonly") || !strcmp(key, "ro"))
		m->readonly = true;
	else if (!strcmp(key, "volume-nocopy"))
		m->nocopy = f->vol = true;
	else if (!strcmp(key, "bind-create-src"))
		m->create_src = f->bind = true;
	else
		return -1;
	return 0;
}

static int mount_field(const char *key, const char *val, const char *field, struct vol_mount *m,
		       struct mount_fields *f, struct su_error *e)
{
	bool b;

	if (!strcmp(key, "type")) {
		if (!strcasecmp(val, "bind"))
			m->type = VOL_MOUNT_BIND;
		else if (!strcasecmp(val, "volume"))
			m->type = VOL_MOUNT_VOLUME;
		else if (!strcasecmp(val, "tmpfs"))
			m->type = VOL_MOUNT_TMPFS;
		else
			return su_error_set(
			    e, 0, "invalid mount config for type \"%s\": mount type unknown", val);
	} else if (!strcmp(key, "source") || !strcmp(key, "src")) {
		free(m->source);
		if (!(m->source = strdup(val)))
			return su_error_set(e, ENOMEM, "parse");
	} else if (!strcmp(key, "target") || !strcmp(key, "dst") || !strcmp(key, "destination")) {
		free(m->target);
		if (!(m->target = strdup(val)))
			return su_error_set(e, ENOMEM, "parse");
	} else if (!strcmp(key, "readonly") || !strcmp(key, "ro")) {
		if (parse_bool(val, &m->readonly) < 0)
			return su_error_set(e, 0, "invalid value for %s: %s", key, val);
	} else if (!strcmp(key, "volume-nocopy")) {
		if (parse_bool(val, &m->nocopy) < 0)
			return su_error_set(e, 0, "invalid value for volume-nocopy: %s", val);
		f->vol = true;
	} else if (!strcmp(key, "volume-opt") || !strcmp(key, "volume-label")) {
		json_t **obj = key[7] == 'o' ? &m->volume_opts : &m->labels;
		if (val[0] == '=' || kv_put(obj, val) < 0)
			return su_error_set(e, 0, "invalid value for %s: %s", key, val);
		f->vol = true;
	} else if (!strcmp(key, "volume-driver")) {
		if (strcmp(val, "local"))
			return su_error_set(e, 0, "volume driver \"%s\" is not supported", val);
		f->vol = true;
	} else if (!strcmp(key, "bind-propagation")) {
		_cleanup_free_ char *low = strdup(val);
		for (char *p = low; p && *p; p++)
			*p = tolower((unsigned char)*p);
		if (!low || (m->propagation = propagation_parse(low)) == VOL_PROP_DEFAULT)
			return su_error_set(e, 0, "invalid propagation mode: %s", val);
		f->bind = true;
	} else if (!strcmp(key, "bind-create-src")) {
		if (parse_bool(val, &b) < 0)
			return su_error_set(e, 0, "invalid value for %s: %s", key, val);
		m->create_src = b;
		f->bind = true;
	} else if (!strcmp(key, "tmpfs-size")) {
		if (parse_ram_size(val, &m->tmpfs_size) < 0)
			return su_error_set(e, 0, "invalid value for %s: %s", key, val);
		f->tmpfs = true;
	} else if (!strcmp(key, "tmpfs-mode")) {
		if (parse_mode(val, &m->tmpfs_mode) < 0)
			return su_error_set(e, 0, "invalid value for %s: %s", key, val);
		f->tmpfs = true;
	} else {
		return su_error_set(e, 0, "unexpected key '%s' in '%s'", key, field);
	}
	return 0;
}

static int mount_parse_fields(const char *spec, struct vol_mount *m, struct mount_fields *f,
			      struct su_error *e)
{
	_cleanup_free_ char *dup = strdup(spec);
	char *save = NULL;

	if (!dup)
		return su_error_set(e, ENOMEM, "parse '%s'", spec);
	if (!*spec || strstr(spec, ",,") || spec[0] == ',' || spec[strlen(spec) - 1] == ',')
		return su_error_set(e, 0, "invalid argument \"%s\" for --mount: empty field", spec);
	for (char *fld = strtok_r(dup, ",", &save); fld; fld = strtok_r(NULL, ",", &save)) {
		_cleanup_free_ char *field = strdup(fld);
		char *eq = strchr(fld, '=');

		if (!field)
			return su_error_set(e, ENOMEM, "parse '%s'", spec);
		if (eq)
			*eq = '\0';
		for (char *p = fld; *p; p++)
			*p = tolower((unsigned char)*p);
		if (!eq) {
			if (mount_flag(fld, m, f) < 0)
				return su_error_set(
				    e, 0, "invalid field '%s' must be a key=value pair", field);
			continue;
		}
		if (!eq[1])
			return su_error_set(e, 0, "invalid value for %s: empty in '%s'", fld,
					    field);
		if (mount_field(fld, eq + 1, field, m, f, e) < 0)
			return -1;
	}
	return 0;
}

int vol_spec_parse_mount(const char *spec, struct vol_mount *m, struct su_error *e)
{
	struct mount_fields f = {0};
	const char *t;

	/* Docker's default type, as `docker service create --mount`. */
	mount_init(m, VOL_MOUNT_VOLUME);
	if (mount_parse_fields(spec, m, &f, e) < 0)
		goto fail;
	t = type_name(m->type);
	if (!m->target) {
		su_error_set(e, 0, "target is required");
		goto fail;
	}
	if ((f.vol && m->type != VOL_MOUNT_VOLUME) || (f.bind && m->type != VOL_MOUNT_BIND) ||
	    (f.tmpfs && m->type != VOL_MOUNT_TMPFS)) {
		su_error_set(e, 0, "cannot mix '%s-*' options with mount type '%s'",
			     f.vol && m->type != VOL_MOUNT_VOLUME  ? "volume"
			     : f.bind && m->type != VOL_MOUNT_BIND ? "bind"
								   : "tmpfs",
			     t);
		goto fail;
	}
	/* A bind "src=./x" is relative to the current directory, as docker. */
	if (m->type == VOL_MOUNT_BIND && m->source && m->source[0] == '.') {
		char *abs;
		if (host_path_abs(m->source, &abs, e) < 0)
			goto fail;
		free(m->source);
		m->source = abs;
	}
	if (m->type == VOL_MOUNT_TMPFS) {
		m->flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
		if (!(m->tmpfs_data = strdup("")))
			goto fail;
	}
	if (mount_validate(m, e) < 0)
		goto fail;
	return 0;
fail:
	vol_mount_clear(m);
	return -1;
}

/* ---- --tmpfs ---- */

static const struct {
	const char *name;
	bool clear;
	unsigned long flag;
} tmpfs_flags[] = {
    {"ro", false, MS_RDONLY},	       {"rw", true, MS_RDONLY},
    {"noexec", false, MS_NOEXEC},      {"exec", true, MS_NOEXEC},
    {"nosuid", false, MS_NOSUID},      {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},	       {"dev", true, MS_NODEV},
    {"sync", false, MS_SYNCHRONOUS},   {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},    {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},       {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME}, {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME}, {"strictatime", false, MS_STRICTATIME},
};

/* Options tmpfs takes as mount data, passed on as written. */
static const char *const tmpfs_data_keys[] = {"uid",	   "gid",  "nr_inodes",
					      "nr_blocks", "huge", "mpol"};

static int tmpfs_option(const char *o, struct vol_mount *m, char **data, size_t *len, size_t *cap,
			struct su_error *e)
{
	const char *eq = strchr(o, '=');

	for (size_t i = 0; i < ARRAY_SIZE(tmpfs_flags); i++) {
		if (strcmp(o, tmpfs_flags[i].name))
			continue;
		if (tmpfs_flags[i].clear)
			m->flags &= ~tmpfs_flags[i].flag;
		else
			m->flags |= tmpfs_flags[i].flag;
		return 0;
	}
	if (eq && eq[1] && su_str_has_prefix(o, "size=")) {
		if (parse_ram_size(eq + 1, &m->tmpfs_size) < 0)
			return su_error_set(e, 0, "invalid tmpfs option: %s", o);
		return 0;
	}
	if (eq && su_str_has_prefix(o, "mode=")) {
		if (parse_mode(eq + 1, &m->tmpfs_mode) < 0)
			return su_error_set(e, 0, "invalid tmpfs option: %s", o);
		return 0;
	}
	for (size_t i = 0; eq && eq[1] && i < ARRAY_SIZE(tmpfs_data_keys); i++) {
		if (strlen(tmpfs_data_keys[i]) != (size_t)(eq - o) ||
		    strncmp(o, tmpfs_data_keys[i], eq - o))
			continue;
		if ((*len && su_strbuf_add(data, len, cap, ",", 1) < 0) ||
		    su_strbuf_add(data, len, cap, o, strlen(o)) < 0)
			return su_error_set(e, ENOMEM, "parse tmpfs options");
		return 0;
	}
	return su_error_set(e, 0, "invalid tmpfs option: %s", o);
}

int vol_spec_parse_tmpfs(const char *spec, struct vol_mount *m, struct su_error *e)
{
	const char *colon = strchr(spec, ':');
	_cleanup_free_ char *opts = colon ? strdup(colon + 1) : NULL;
	size_t len = 0, cap = 0;
	char *save = NULL;

	mount_init(m, VOL_MOUNT_TMPFS);
	m->flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	m->target = colon ? strndup(spec, colon - spec) : strdup(spec);
	if (!m->target || (colon && !opts))
		goto nomem;
	if (!*m->target) {
		su_error_set(e, 0, "invalid tmpfs specification: '%s'", spec);
		goto fail;
	}
	if (opts &&
	    (!*opts || strstr(opts, ",,") || opts[0] == ',' || opts[strlen(opts) - 1] == ',')) {
		su_error_set(e, 0, "invalid tmpfs specification: '%s': empty option", spec);
		goto fail;
	}
	for (char *o = opts ? strtok_r(opts, ",", &save) : NULL; o; o = strtok_r(NULL, ",", &save))
		if (tmpfs_option(o, m, &m->tmpfs_data, &len, &cap, e) < 0)
			goto fail;
	if (!m->tmpfs_data && !(m->tmpfs_data = strdup("")))
		goto nomem;
	m->readonly = m->flags & MS_RDONLY;
	if (mount_validate(m, e) < 0)
		goto fail;
	return 0;
nomem:
	su_error_set(e, ENOMEM, "parse '%s'", spec);
fail:
	vol_mount_clear(m);
	return -1;
}

/* ---- rules across mounts ---- */

int vol_spec_check_targets(const struct vol_mount *m, size_t n, struct su_error *e)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (!strcmp(m[i].target, m[j].target))
				return su_error_set(e, 0, "Duplicate mount point: %s", m[i].target);
	return 0;
}

int vol_bind_prepare(const struct vol_mount *m, struct su_error *e)
{
	struct stat st;
	int r;

	if (m->type != VOL_MOUNT_BIND)
		return 0;
	if (stat(m->source, &st) == 0)
		return 0;
	if (errno != ENOENT)
		return su_error_set(e, errno, "bind source path %s", m->source);
	if (!m->create_src)
		return su_error_set(e, 0,
				    "invalid mount config for type \"bind\": bind source path does "
				    "not exist: %s",
				    m->source);
	r = su_mkdir_p(AT_FDCWD, m->source, 0755);
	if (r < 0)
		return su_error_set(e, -r, "create bind source path %s", m->source);
	return 0;
}
