/* tests/unit/test-vol-spec: the -v, --mount and --tmpfs grammars -- every
 * accepted form, every error with Docker's wording -- and the rules across
 * mounts (duplicate targets, bind sources). */
#include "tests/unit/tap.h"
#include "volumes/volumes.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

enum grammar { V, M, T };

typedef int (*parse_fn)(const char *, struct vol_mount *, struct su_error *);
static const parse_fn parsers[] = {vol_spec_parse_volume, vol_spec_parse_mount,
				   vol_spec_parse_tmpfs};
static const char *const gnames[] = {"-v", "--mount", "--tmpfs"};

struct accept_case {
	enum grammar g;
	const char *spec;
	enum vol_mount_type type;
	const char *source; /* "@CWD" / "@HOME" prefixes are replaced */
	const char *target;
	bool readonly, nocopy, create_src;
	enum vol_propagation prop;
	char relabel;
};

static const struct accept_case accepts[] = {
    {V, "/data", VOL_MOUNT_VOLUME, NULL, "/data"},
    {V, "myvol:/data", VOL_MOUNT_VOLUME, "myvol", "/data"},
    {V, "ab:/data", VOL_MOUNT_VOLUME, "ab", "/data"},
    {V, "my_vol.1-x:/data", VOL_MOUNT_VOLUME, "my_vol.1-x", "/data"},
    {V, "myvol:/data:ro", VOL_MOUNT_VOLUME, "myvol", "/data", true},
    {V, "myvol:/data:rw,nocopy", VOL_MOUNT_VOLUME, "myvol", "/data", false, true},
    {V, "myvol:/data:z", VOL_MOUNT_VOLUME, "myvol", "/data", .relabel = 'z'},
    {V, "myvol:/data:", VOL_MOUNT_VOLUME, "myvol", "/data"},
    {V, "myvol:/data/./x/../y/", VOL_MOUNT_VOLUME, "myvol", "/data/y"},
    {V, "/host:/data", VOL_MOUNT_BIND, "/host", "/data", .create_src = true},
    {V, "/host//a/../b/:/data", VOL_MOUNT_BIND, "/host/b", "/data", .create_src = true},
    {V, "/h:/d:ro,rshared,Z", VOL_MOUNT_BIND, "/h", "/d", true, .create_src = true,
     .prop = VOL_PROP_RSHARED, .relabel = 'Z'},
    {V, "/h:/d:private", VOL_MOUNT_BIND, "/h", "/d", .create_src = true, .prop = VOL_PROP_PRIVATE},
    {V, "/h:/d:slave", VOL_MOUNT_BIND, "/h", "/d", .create_src = true, .prop = VOL_PROP_SLAVE},
    {V, "./rel:/data", VOL_MOUNT_BIND, "@CWD/rel", "/data", .create_src = true},
    {V, ".:/data", VOL_MOUNT_BIND, "@CWD", "/data", .create_src = true},
    {V, ".hidden:/data", VOL_MOUNT_BIND, "@CWD/.hidden", "/data", .create_src = true},
    {V, "../up:/data", VOL_MOUNT_BIND, "@UP/up", "/data", .create_src = true},
    {V, "~/x:/data", VOL_MOUNT_BIND, "@HOME/x", "/data", .create_src = true},
    {V, "~:/data", VOL_MOUNT_BIND, "@HOME", "/data", .create_src = true},
    {M, "type=volume,source=v1,target=/d", VOL_MOUNT_VOLUME, "v1", "/d"},
    {M, "type=volume,target=/d", VOL_MOUNT_VOLUME, NULL, "/d"},
    {M, "target=/d", VOL_MOUNT_VOLUME, NULL, "/d"},
    {M, "TYPE=Volume,SRC=v1,DST=/d,ReadOnly", VOL_MOUNT_VOLUME, "v1", "/d", true},
    {M, "type=volume,src=v1,destination=/d/,ro=false", VOL_MOUNT_VOLUME, "v1", "/d"},
    {M, "type=volume,src=v1,dst=/d,ro=1", VOL_MOUNT_VOLUME, "v1", "/d", true},
    {M, "type=volume,src=v1,dst=/d,readonly=true", VOL_MOUNT_VOLUME, "v1", "/d", true},
    {M, "type=volume,src=v1,dst=/d,volume-nocopy", VOL_MOUNT_VOLUME, "v1", "/d", false, true},
    {M, "type=volume,src=v1,dst=/d,volume-nocopy=false", VOL_MOUNT_VOLUME, "v1", "/d"},
    {M, "type=bind,src=/h,dst=/d", VOL_MOUNT_BIND, "/h", "/d"},
    {M, "type=bind,src=/h,dst=/d,bind-propagation=rslave", VOL_MOUNT_BIND, "/h", "/d",
     .prop = VOL_PROP_RSLAVE},
    {M, "type=bind,src=/h,dst=/d,bind-propagation=SHARED", VOL_MOUNT_BIND, "/h", "/d",
     .prop = VOL_PROP_SHARED},
    {M, "type=bind,src=/h,dst=/d,bind-create-src", VOL_MOUNT_BIND, "/h", "/d", .create_src = true},
    {M, "type=bind,src=./rel,dst=/d", VOL_MOUNT_BIND, "@CWD/rel", "/d"},
    {M, "type=tmpfs,dst=/t", VOL_MOUNT_TMPFS, NULL, "/t"},
    {M, "type=tmpfs,dst=/t,readonly", VOL_MOUNT_TMPFS, NULL, "/t", true},
    {T, "/run", VOL_MOUNT_TMPFS, NULL, "/run"},
    {T, "/run/:ro", VOL_MOUNT_TMPFS, NULL, "/run", true},
    {T, "/run:rw,exec", VOL_MOUNT_TMPFS, NULL, "/run"},
};

struct error_case {
	enum grammar g;
	const char *spec;
	const char *error; /* the whole message */
};

static const struct error_case errors[] = {
    {V, "", "invalid volume specification: ''"},
    {V, ":/data", "invalid volume specification: ':/data'"},
    {V, "a:b:c:d", "invalid volume specification: 'a:b:c:d'"},
    {V, "/data:ro", "invalid volume specification: '/data:ro'"},
    {V, "myvol:", "invalid volume specification: 'myvol:'"},
    {V, "myvol::ro", "invalid volume specification: 'myvol::ro'"},
    {V, "myvol:/data:ro,rw", "invalid mode: ro,rw"},
    {V, "myvol:/data:bogus", "invalid mode: bogus"},
    {V, "myvol:/data:z,Z", "invalid mode: z,Z"},
    {V, "/h:/data:shared,slave", "invalid mode: shared,slave"},
    {V, "myvol:/data:nocopy,nocopy", "invalid mode: nocopy,nocopy"},
    {V, "myvol:/data:ro,,z", "invalid mode: ro,,z"},
    {V, "myvol:/data:RO", "invalid mode: RO"},
    {V, "myvol:relative",
     "invalid mount config for type \"volume\": invalid mount path: 'relative' mount path "
     "must be absolute"},
    {V, "relative",
     "invalid mount config for type \"volume\": invalid mount path: 'relative' mount path "
     "must be absolute"},
    {V, "myvol:/", "invalid specification: destination can't be '/'"},
    {V, "myvol:/a/..", "invalid specification: destination can't be '/'"},
    {V, "/h:/d:nocopy",
     "invalid mount config for type \"bind\": field VolumeOptions must not be specified"},
    {V, "myvol:/d:shared",
     "invalid mount config for type \"volume\": field BindOptions must not be specified"},
    {V, "a:/d",
     "\"a\" includes invalid characters for a local volume name, only "
     "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, "
     "use absolute path"},
    {V, "-bad:/d",
     "\"-bad\" includes invalid characters for a local volume name, only "
     "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, "
     "use absolute path"},
    {V, "my vol:/d",
     "\"my vol\" includes invalid characters for a local volume name, only "
     "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, "
     "use absolute path"},
    {M, "type=volume,src=v1", "target is required"},
    {M, "type=foo,dst=/d", "invalid mount config for type \"foo\": mount type unknown"},
    {M, "type=volume,dst=/d,bogus=1", "unexpected key 'bogus' in 'bogus=1'"},
    {M, "type=volume,dst=/d,Bogus=1", "unexpected key 'bogus' in 'Bogus=1'"},
    {M, "type=volume,dst=/d,bogus", "invalid field 'bogus' must be a key=value pair"},
    {M, "type=volume,src=,dst=/d", "invalid value for src: empty in 'src='"},
    {M, "type=volume,dst=/d,ro=maybe", "invalid value for ro: maybe"},
    {M, "type=volume,dst=/d,volume-nocopy=maybe", "invalid value for volume-nocopy: maybe"},
    {M, "type=volume,dst=/d,volume-opt==x", "invalid value for volume-opt: =x"},
    {M, "type=bind,src=/h,dst=/d,volume-nocopy",
     "cannot mix 'volume-*' options with mount type 'bind'"},
    {M, "type=bind,src=/h,dst=/d,volume-label=a=b",
     "cannot mix 'volume-*' options with mount type 'bind'"},
    {M, "type=volume,dst=/d,bind-propagation=shared",
     "cannot mix 'bind-*' options with mount type 'volume'"},
    {M, "type=tmpfs,dst=/d,bind-create-src", "cannot mix 'bind-*' options with mount type 'tmpfs'"},
    {M, "type=bind,src=/h,dst=/d,tmpfs-size=1m",
     "cannot mix 'tmpfs-*' options with mount type 'bind'"},
    {M, "type=bind,dst=/d",
     "invalid mount config for type \"bind\": field Source must not be empty"},
    {M, "type=bind,src=rel,dst=/d",
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be "
     "absolute"},
    {M, "type=tmpfs,src=x,dst=/d",
     "invalid mount config for type \"tmpfs\": field Source must not be specified"},
    {M, "type=bind,src=/h,dst=/d,bind-propagation=weird", "invalid propagation mode: weird"},
    {M, "type=tmpfs,dst=/t,tmpfs-size=lots", "invalid value for tmpfs-size: lots"},
    {M, "type=tmpfs,dst=/t,tmpfs-mode=999", "invalid value for tmpfs-mode: 999"},
    {M, "type=volume,src=/abs,dst=/d",
     "\"/abs\" includes invalid characters for a local volume name, only "
     "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, "
     "use absolute path"},
    {M, "type=volume,dst=rel",
     "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be "
     "absolute"},
    {M, "type=volume,dst=/", "invalid specification: destination can't be '/'"},
    {M, "type=volume,,dst=/d", "invalid argument \"type=volume,,dst=/d\" for --mount: empty field"},
    {M, "", "invalid argument \"\" for --mount: empty field"},
    {M, "type=volume,dst=/d,volume-driver=nfs", "volume driver \"nfs\" is not supported"},
    {T, "run",
     "invalid mount config for type \"tmpfs\": invalid mount path: 'run' mount path must be "
     "absolute"},
    {T, "/", "invalid specification: destination can't be '/'"},
    {T, "/run:bogus", "invalid tmpfs option: bogus"},
    {T, "/run:size=abc", "invalid tmpfs option: size=abc"},
    {T, "/run:mode=9", "invalid tmpfs option: mode=9"},
    {T, "/run:uid=", "invalid tmpfs option: uid="},
    {T, "/run:", "invalid tmpfs specification: '/run:': empty option"},
    {T, "/run:ro,,exec", "invalid tmpfs specification: '/run:ro,,exec': empty option"},
    {T, ":ro", "invalid tmpfs specification: ':ro'"},
};

static char *expand(const char *want)
{
	static char buf[4096];
	const char *home = getenv("HOME");
	_cleanup_free_ char *cwd = getcwd(NULL, 0);

	if (!want)
		return NULL;
	if (su_str_has_prefix(want, "@CWD"))
		snprintf(buf, sizeof(buf), "%s%s", strcmp(cwd, "/") ? cwd : "", want + 4);
	else if (su_str_has_prefix(want, "@HOME"))
		snprintf(buf, sizeof(buf), "%s%s", home, want + 5);
	else if (su_str_has_prefix(want, "@UP")) {
		char *slash = strrchr(cwd, '/');
		*slash = '\0';
		snprintf(buf, sizeof(buf), "%s%s", cwd, want + 3);
	} else
		return (char *)want;
	return buf;
}

static void test_accept(const struct accept_case *c)
{
	struct vol_mount m;
	struct su_error e = {0};
	const char *g = gnames[c->g];

	if (!tap_ok(parsers[c->g](c->spec, &m, &e) == 0, "%s '%s' is accepted", g, c->spec)) {
		tap_diag("error: %s", e.msg);
		return;
	}
	tap_ok(m.type == c->type && m.readonly == c->readonly && m.nocopy == c->nocopy &&
		   m.create_src == c->create_src && m.propagation == c->prop &&
		   m.relabel == c->relabel,
	       "%s '%s': type %d ro %d nocopy %d create %d propagation %s relabel %c", g, c->spec,
	       m.type, m.readonly, m.nocopy, m.create_src, vol_propagation_name(m.propagation),
	       m.relabel ? m.relabel : '-');
	tap_is(m.source, expand(c->source), "%s '%s': source", g, c->spec);
	tap_is(m.target, c->target, "%s '%s': target", g, c->spec);
	vol_mount_clear(&m);
}

static void test_error(const struct error_case *c)
{
	struct vol_mount m;
	struct su_error e = {0};

	if (!tap_ok(parsers[c->g](c->spec, &m, &e) < 0, "%s '%s' is refused", gnames[c->g],
		    c->spec)) {
		vol_mount_clear(&m);
		return;
	}
	tap_is(e.msg, c->error, "%s '%s': message", gnames[c->g], c->spec);
}

static void test_options(void)
{
	struct vol_mount m;
	struct su_error e = {0};
	const unsigned long dflt = MS_NOEXEC | MS_NOSUID | MS_NODEV;

	vol_spec_parse_tmpfs("/run", &m, &e);
	tap_ok(m.flags == dflt && m.tmpfs_mode == 01777 && m.tmpfs_size == 0 && !*m.tmpfs_data,
	       "--tmpfs defaults: noexec,nosuid,nodev, mode 1777, no size");
	vol_mount_clear(&m);

	vol_spec_parse_tmpfs("/run:rw,exec,size=65536k", &m, &e);
	tap_ok(m.flags == (MS_NOSUID | MS_NODEV) && m.tmpfs_size == 65536ull * 1024,
	       "--tmpfs exec lifts noexec; size=65536k is 64 MiB");
	vol_mount_clear(&m);

	vol_spec_parse_tmpfs("/run:ro,suid,dev,mode=700,uid=1000,gid=5", &m, &e);
	tap_ok(m.flags == (MS_NOEXEC | MS_RDONLY) && m.readonly && m.tmpfs_mode == 0700,
	       "--tmpfs ro,suid,dev,mode=700");
	tap_is(m.tmpfs_data, "uid=1000,gid=5", "--tmpfs passes uid= and gid= on as mount data");
	vol_mount_clear(&m);

	vol_spec_parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770", &m, &e);
	tap_ok(m.tmpfs_size == 64ull << 20 && m.tmpfs_mode == 01770 && m.flags == dflt,
	       "--mount tmpfs-size=64m tmpfs-mode=1770, noexec,nosuid,nodev");
	vol_mount_clear(&m);

	vol_spec_parse_mount("type=tmpfs,dst=/t,tmpfs-size=1.5GiB,ro", &m, &e);
	tap_ok(m.tmpfs_size == 3ull << 29 && (m.flags & MS_RDONLY), "--mount tmpfs-size=1.5GiB,ro");
	vol_mount_clear(&m);

	vol_spec_parse_mount("type=volume,src=v1,dst=/d,volume-opt=type=tmpfs,volume-opt=device=x,"
			     "volume-label=a=b,volume-label=c",
			     &m, &e);
	tap_is(json_string_value(json_object_get(m.volume_opts, "type")), "tmpfs",
	       "--mount volume-opt=type=tmpfs");
	tap_is(json_string_value(json_object_get(m.volume_opts, "device")), "x",
	       "--mount volume-opt=device=x");
	tap_is(json_string_value(json_object_get(m.labels, "a")), "b", "--mount volume-label=a=b");
	tap_is(json_string_value(json_object_get(m.labels, "c")), "",
	       "--mount volume-label=c has an empty value");
	vol_mount_clear(&m);

	tap_ok(vol_spec_parse_mount("type=volume,dst=/d,readonly,ro=false", &m, &e) == 0 &&
		   !m.readonly,
	       "--mount: the last readonly wins");
	vol_mount_clear(&m);
}

static void test_targets(void)
{
	struct vol_mount m[3];
	struct su_error e = {0};

	vol_spec_parse_volume("a1:/data", &m[0], &e);
	vol_spec_parse_tmpfs("/tmp", &m[1], &e);
	vol_spec_parse_mount("type=bind,src=/h,dst=/data/", &m[2], &e);
	tap_ok(vol_spec_check_targets(m, 2, &e) == 0, "different targets are accepted");
	tap_ok(vol_spec_check_targets(m, 3, &e) < 0, "two mounts on /data are refused");
	tap_is(e.msg, "Duplicate mount point: /data", "duplicate target message");
	for (int i = 0; i < 3; i++)
		vol_mount_clear(&m[i]);
}

static void test_bind_sources(void)
{
	char tmpl[] = "/tmp/test-vol-spec.XXXXXX";
	char *dir = mkdtemp(tmpl);
	_cleanup_free_ char *vspec = su_asprintf("%s/v/src:/d", dir);
	_cleanup_free_ char *mspec = su_asprintf("type=bind,src=%s/m/src,dst=/d", dir);
	_cleanup_free_ char *cspec =
	    su_asprintf("type=bind,src=%s/c/src,dst=/d,bind-create-src", dir);
	_cleanup_free_ char *path = NULL;
	struct su_error e = {0};
	struct vol_mount m;
	struct stat st;

	if (!dir) {
		tap_ok(false, "mkdtemp");
		return;
	}
	vol_spec_parse_volume(vspec, &m, &e);
	tap_ok(vol_bind_prepare(&m, &e) == 0, "-v: a missing bind source is accepted");
	tap_ok(stat(m.source, &st) == 0 && S_ISDIR(st.st_mode),
	       "-v: it was created as a directory");
	tap_ok(vol_bind_prepare(&m, &e) == 0, "-v: an existing bind source is accepted");
	vol_mount_clear(&m);

	vol_spec_parse_mount(mspec, &m, &e);
	tap_ok(vol_bind_prepare(&m, &e) < 0, "--mount type=bind: a missing source is refused");
	path = su_asprintf("invalid mount config for type \"bind\": bind source path does not "
			   "exist: %s/m/src",
			   dir);
	tap_is(e.msg, path, "--mount type=bind: missing source message");
	tap_ok(stat(m.source, &st) < 0 && errno == ENOENT,
	       "--mount type=bind: nothing was created");
	vol_mount_clear(&m);

	vol_spec_parse_mount(cspec, &m, &e);
	tap_ok(vol_bind_prepare(&m, &e) == 0 && stat(m.source, &st) == 0 && S_ISDIR(st.st_mode),
	       "--mount bind-create-src creates the missing source");
	vol_mount_clear(&m);
	su_rm_rf_at(AT_FDCWD, dir);
}

int main(void)
{
	/* Fixed, so "~" expands predictably. */
	setenv("HOME", "/home/tester", 1);
	for (size_t i = 0; i < ARRAY_SIZE(accepts); i++)
		test_accept(&accepts[i]);
	for (size_t i = 0; i < ARRAY_SIZE(errors); i++)
		test_error(&errors[i]);
	tap_ok(vol_name_valid("ab") && vol_name_valid("A.b_c-1") && !vol_name_valid("a") &&
		   !vol_name_valid(".ab") && !vol_name_valid("a/b") && !vol_name_valid(""),
	       "volume names follow [a-zA-Z0-9][a-zA-Z0-9_.-]+");
	test_options();
	test_targets();
	test_bind_sources();
	return tap_done();
}
