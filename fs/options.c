/* fs/options.c: the -o option language shared with fuse-overlayfs: our own
 * options are consumed, FUSE mount options are passed on, anything else is a
 * warning.  Kept free of side effects so it can be fuzzed. */
#include "fs/sfs.h"

#include <stdio.h>
#include <string.h>

/* FUSE and mount(8) options handed to libfuse as they are. */
static const char *const fuse_passthrough[] = {
    "allow_other",  "allow_root",    "default_permissions",
    "auto_unmount", "blkdev",	     "ro",
    "rw",	    "suid",	     "nosuid",
    "dev",	    "nodev",	     "exec",
    "noexec",	    "async",	     "sync",
    "atime",	    "noatime",	     "diratime",
    "nodiratime",   "relatime",	     "norelatime",
    "strictatime",  "nostrictatime", "lazytime",
    "nolazytime",   "dirsync",	     NULL,
};
static const char *const fuse_passthrough_kv[] = {
    "fsname=",	  "subtype=",	 "max_read=",	 "blksize=", "context=",
    "fscontext=", "defcontext=", "rootcontext=", NULL,
};
/* Accepted for compatibility, with no effect here. */
static const char *const ignored[] = {
    "defaults", "noauto",     "auto",	  "user", "users",	  "nouser",  "_netdev",
    "nofail",	"noacl",      "fast_ino", "xino", "redirect_dir", "plugins", "xattr_permissions",
    "debug",	"nfs_export", NULL,
};

void sfs_opts_init(struct sfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->squash_uid = o->squash_gid = -1;
	o->threaded = true;
	o->metacopy = true;
	o->index = true;
	o->passthrough = true;
	o->prefetch = true;
	o->uring = true;
	o->samecpu = true;
	o->timeout = 86400;
}

void sfs_opts_free(struct sfs_opts *o)
{
	free(o->lowerdir);
	free(o->upperdir);
	free(o->workdir);
	free(o->source);
	free(o->mountpoint);
	free(o->fuse_opts);
	memset(o, 0, sizeof(*o));
}

static bool in_list(const char *const *l, const char *key)
{
	for (; *l; l++)
		if (!strcmp(*l, key))
			return true;
	return false;
}

static bool prefix_in_list(const char *const *l, const char *opt)
{
	for (; *l; l++)
		if (su_str_has_prefix(opt, *l))
			return true;
	return false;
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!v || !strcmp(v, "1") || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

int sfs_idmap_parse(struct sfs_idmap *m, const char *s)
{
	_cleanup_free_ char *dup = strdup(s);
	char *save = NULL, *tok;
	unsigned long v[3];
	int k = 0;

	if (!dup)
		return -ENOMEM;
	m->n = 0;
	for (tok = strtok_r(dup, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		if (parse_ulong(tok, UINT32_MAX, &v[k]) < 0)
			return -EINVAL;
		if (++k < 3)
			continue;
		if (m->n == ARRAY_SIZE(m->r) || v[2] == 0 || v[0] + v[2] - 1 > UINT32_MAX ||
		    v[1] + v[2] - 1 > UINT32_MAX)
			return -EINVAL;
		m->r[m->n++] = (struct sfs_idrange){v[0], v[1], v[2]};
		k = 0;
	}
	return k == 0 && m->n > 0 ? 0 : -EINVAL;
}

uint32_t sfs_idmap_to_shown(const struct sfs_idmap *m, uint32_t disk)
{
	if (!m->n)
		return disk;
	for (unsigned i = 0; i < m->n; i++)
		if (disk >= m->r[i].disk && disk - m->r[i].disk < m->r[i].len)
			return m->r[i].shown + (disk - m->r[i].disk);
	return 65534;
}

uint32_t sfs_idmap_to_disk(const struct sfs_idmap *m, uint32_t shown)
{
	if (!m->n)
		return shown;
	for (unsigned i = 0; i < m->n; i++)
		if (shown >= m->r[i].shown && shown - m->r[i].shown < m->r[i].len)
			return m->r[i].disk + (shown - m->r[i].shown);
	return 65534;
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* Appends one option to the list handed to libfuse, whose parser splits at
 * commas and honours backslash escapes: the commas and backslashes the
 * option holds (sfs_opts_parse took their escapes off) get them back, so
 * fsname=a\,subtype=x stays one option. */
static int add_fuse_opt(struct sfs_opts *o, const char *opt)
{
	int r = 0;

	if (o->fuse_opts_len)
		r = su_strbuf_add(&o->fuse_opts, &o->fuse_opts_len, &o->fuse_opts_cap, ",", 1);
	for (const char *p = opt; r == 0 && *p; p++) {
		if (*p == ',' || *p == '\\')
			r = su_strbuf_add(&o->fuse_opts, &o->fuse_opts_len, &o->fuse_opts_cap, "\\",
					  1);
		if (r == 0)
			r = su_strbuf_add(&o->fuse_opts, &o->fuse_opts_len, &o->fuse_opts_cap, p,
					  1);
	}
	return r;
}

/* Handles one option; returns 1 when the option is not ours. */
static int parse_one(struct sfs_opts *o, char *opt, char *err, size_t errlen)
{
	char *val = strchr(opt, '=');
	unsigned long n;
	bool b;

	if (val)
		*val++ = '\0';
#define NEED_VAL()                                                                                 \
	do {                                                                                       \
		if (!val || !*val) {                                                               \
			snprintf(err, errlen, "option \"%s\" needs a value", opt);                 \
			return -EINVAL;                                                            \
		}                                                                                  \
	} while (0)
#define BAD_VAL()                                                                                  \
	do {                                                                                       \
		snprintf(err, errlen, "invalid value \"%s\" for option \"%s\"", val ? val : "",    \
			 opt);                                                                     \
		return -EINVAL;                                                                    \
	} while (0)

	if (!strcmp(opt, "lowerdir")) {
		NEED_VAL();
		return set_str(&o->lowerdir, val);
	}
	if (!strcmp(opt, "upperdir")) {
		NEED_VAL();
		return set_str(&o->upperdir, val);
	}
	if (!strcmp(opt, "workdir")) {
		NEED_VAL();
		return set_str(&o->workdir, val);
	}
	if (!strcmp(opt, "uidmapping") || !strcmp(opt, "gidmapping")) {
		NEED_VAL();
		if (sfs_idmap_parse(opt[0] == 'u' ? &o->uidmap : &o->gidmap, val) < 0)
			BAD_VAL();
		return 0;
	}
	if (!strcmp(opt, "squash_to_root")) {
		o->squash_to_root = true;
		return 0;
	}
	if (!strcmp(opt, "squash_to_uid") || !strcmp(opt, "squash_to_gid")) {
		NEED_VAL();
		if (parse_ulong(val, UINT32_MAX - 1, &n) < 0)
			BAD_VAL();
		*(opt[9] == 'u' ? &o->squash_uid : &o->squash_gid) = (long)n;
		return 0;
	}
	if (!strcmp(opt, "timeout")) {
		char *end;
		NEED_VAL();
		o->timeout = strtod(val, &end);
		if (*end || o->timeout < 0 || o->timeout != o->timeout)
			BAD_VAL();
		return 0;
	}
	if (!strcmp(opt, "static_nlink") || !strcmp(opt, "noxattrs") || !strcmp(opt, "threaded") ||
	    !strcmp(opt, "writeback") || !strcmp(opt, "metacopy") || !strcmp(opt, "index") ||
	    !strcmp(opt, "fsync") || !strcmp(opt, "userxattr") || !strcmp(opt, "passthrough") ||
	    !strcmp(opt, "prefetch") || !strcmp(opt, "uring") || !strcmp(opt, "samecpu")) {
		if (parse_bool(val, &b) < 0)
			BAD_VAL();
		if (!strcmp(opt, "static_nlink"))
			o->static_nlink = b;
		else if (!strcmp(opt, "noxattrs"))
			o->noxattrs = b;
		else if (!strcmp(opt, "threaded"))
			o->threaded = b;
		else if (!strcmp(opt, "writeback"))
			o->writeback = b;
		else if (!strcmp(opt, "metacopy"))
			o->metacopy = b;
		else if (!strcmp(opt, "index"))
			o->index = b;
		else if (!strcmp(opt, "fsync"))
			o->nofsync = !b;
		else if (!strcmp(opt, "passthrough"))
			o->passthrough = b;
		else if (!strcmp(opt, "prefetch"))
			o->prefetch = b;
		else if (!strcmp(opt, "uring"))
			o->uring = b;
		else if (!strcmp(opt, "samecpu"))
			o->samecpu = b;
		else
			o->userxattr = b;
		return 0;
	}
	if (!strcmp(opt, "volatile")) {
		o->nofsync = true;
		return 0;
	}
	if (val)
		val[-1] = '=';
	return 1;
#undef NEED_VAL
#undef BAD_VAL
}

static void add_warning(char **warn, const char *opt)
{
	char *w = su_asprintf("%s%sunknown option \"%s\" ignored", *warn ? *warn : "",
			      *warn ? "\n" : "", opt);
	if (w) {
		free(*warn);
		*warn = w;
	}
}

int sfs_opts_parse(struct sfs_opts *o, const char *optstr, char *err, size_t errlen, char **warn)
{
	char **v = su_split_escaped(optstr, ',');
	int r = 0;

	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (char **p = v; *p && r >= 0; p++) {
		char key[64];
		const char *eq = strchr(*p, '=');
		size_t kl = eq ? (size_t)(eq - *p) : strlen(*p);

		if (!**p)
			continue;
		r = parse_one(o, *p, err, errlen);
		if (r <= 0)
			continue;
		r = 0;
		snprintf(key, sizeof(key), "%.*s", (int)(kl < 63 ? kl : 63), *p);
		if (!strcmp(*p, "ro"))
			o->readonly = true;
		if (in_list(fuse_passthrough, *p) || prefix_in_list(fuse_passthrough_kv, *p))
			r = add_fuse_opt(o, *p);
		else if (in_list(ignored, key) || su_str_has_prefix(*p, "x-"))
			continue;
		else
			add_warning(warn, *p);
	}
	su_strv_free(v);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return r < 0 ? r : 0;
}
