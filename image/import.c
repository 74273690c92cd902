/* image/import: an OCI layout, OCI or docker-save archive, or plain rootfs
 * tar into the store -- format detection, manifests, digests, and the
 * layers one by one; a failed import removes the layers it added. */
#include "image/store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define JSON_MAX (16 << 20)

struct import {
	struct img_store *s;
	const struct img_import_opts *o;
	int dirfd;	/* the layout directory (extracted archive) */
	char *stage;	/* images/.tmp-* holding an extracted archive */
	json_t *config; /* parsed config */
	char *config_raw;
	size_t config_len;
	char config_hex[65];
	char *name;	   /* from the archive, when opts give none */
	char **new_layers; /* added by this import, for cleanup on failure */
	size_t nnew;
};

/* Opens a file of the layout without leaving it or following symlinks out. */
static int open_beneath(int dirfd, const char *path, struct su_error *e)
{
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	if (fd < 0)
		return su_error_set(e, errno, "blob \"%s\"", path);
	return fd;
}

static int read_blob(int dirfd, const char *path, const char *want_hex, char **out, size_t *len,
		     struct su_error *e)
{
	_cleanup_close_ int fd = open_beneath(dirfd, path, e);
	char hex[65];
	int r;

	if (fd < 0)
		return -1;
	if ((r = su_read_file(fd, "", out, len, JSON_MAX)) == -ENOENT) {
		/* su_read_file needs a name: read through /proc */
		char p[64];
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		r = su_read_file(AT_FDCWD, p, out, len, JSON_MAX);
	}
	if (r < 0)
		return su_error_set(e, -r, "read \"%s\"", path);
	if (want_hex) {
		img_sha256_hex(*out, *len, hex);
		if (strcmp(hex, want_hex)) {
			free(*out);
			*out = NULL;
			return su_error_set(e, 0, "blob \"%s\": digest mismatch: got sha256:%s",
					    path, hex);
		}
	}
	return 0;
}

static int read_json_blob(int dirfd, const char *path, const char *want_hex, json_t **out,
			  struct su_error *e)
{
	_cleanup_free_ char *buf = NULL;
	json_error_t je;
	size_t len;

	if (read_blob(dirfd, path, want_hex, &buf, &len, e) < 0)
		return -1;
	*out = json_loadb(buf, len, 0, &je);
	if (!*out)
		return su_error_set(e, 0, "\"%s\": invalid JSON: %s", path, je.text);
	return 0;
}

static char *blob_path(const char *digest)
{
	const char *hex = img_digest_hex(digest);
	return hex ? su_asprintf("blobs/sha256/%s", hex) : NULL;
}

/* ---- the outer archive ---- */

static bool layout_marker(const char *p)
{
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	return !strcmp(p, "oci-layout") || !strcmp(p, "index.json") || !strcmp(p, "manifest.json");
}

/* 1: an image archive (OCI or docker-save), 0: anything else. */
static int sniff(const char *path, struct su_error *e)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	int r = 0, ar;

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		r = su_error_set(e, 0, "%s: %s", path, archive_error_string(a));
		goto out;
	}
	while ((ar = archive_read_next_header(a, &ent)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		if (layout_marker(archive_entry_pathname(ent))) {
			r = 1;
			break;
		}
	}
	if (ar == ARCHIVE_FATAL)
		r = su_error_set(e, 0, "%s: %s", path, archive_error_string(a));
out:
	archive_read_free(a);
	return r;
}

/* Extracts an image archive into a stage directory with the layer
 * extractor (nothing leaves the stage); blobs are later opened with
 * RESOLVE_BENEATH since docker-save shares layers through symlinks. */
static int unpack_outer(struct import *im, const char *path, struct su_error *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char stage[64];
	int r;

	if (fd < 0)
		return su_error_set(e, errno, "open %s", path);
	if ((r = img_tmp_name(stage, ".tmp-")) < 0)
		return su_error_set(e, -r, "random name");
	if (mkdirat(im->s->imagesfd, stage, 0700) < 0)
		return su_error_set(e, errno, "create %s/%s", im->s->images, stage);
	if (!(im->stage = strdup(stage)))
		return su_error_set(e, ENOMEM, "import");
	im->dirfd = openat(im->s->imagesfd, stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (im->dirfd < 0)
		return su_error_set(e, errno, "open %s/%s", im->s->images, stage);
	return img_extract(fd, im->dirfd, true, e);
}

/* ---- manifests ---- */

struct layer_ref {
	char *path;	/* within the layout */
	char *blob_hex; /* expected blob digest, or NULL */
};

static bool platform_ok(json_t *desc)
{
	json_t *p = json_object_get(desc, "platform");
	const char *os = json_string_value(json_object_get(p, "os"));
	const char *arch = json_string_value(json_object_get(p, "architecture"));

	return !p || ((!os || !strcmp(os, "linux")) &&
		      (!arch || !strcmp(arch, "amd64") || !strcmp(arch, "x86_64")));
}

static void take_name(struct import *im, json_t *desc)
{
	json_t *ann = json_object_get(desc, "annotations");
	const char *n = json_string_value(json_object_get(ann, "io.containerd.image.name"));

	if (!n)
		n = json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
	if (n && strchr(n, ':') && !im->name)
		im->name = img_name_normalize(n);
}

/* Descends nested indexes to the first manifest for linux/amd64. */
static int oci_manifest(struct import *im, json_t *index, int depth, json_t **out,
			struct su_error *e)
{
	json_t *m, *desc;
	size_t i;

	if (depth > 8)
		return su_error_set(e, 0, "index nesting too deep");
	json_array_foreach(json_object_get(index, "manifests"), i, desc)
	{
		const char *mt = json_string_value(json_object_get(desc, "mediaType"));
		const char *dg = json_string_value(json_object_get(desc, "digest"));
		_cleanup_free_ char *p = blob_path(dg);

		if (!platform_ok(desc))
			continue;
		if (!p)
			return su_error_set(e, 0, "invalid digest \"%s\"", dg ? dg : "");
		if (read_json_blob(im->dirfd, p, img_digest_hex(dg), &m, e) < 0)
			return su_error_wrap(e, "manifest %s", dg);
		if (!mt)
			mt = json_string_value(json_object_get(m, "mediaType"));
		take_name(im, desc);
		if (json_object_get(m, "manifests") ||
		    (mt && (strstr(mt, "image.index") || strstr(mt, "manifest.list")))) {
			int r = oci_manifest(im, m, depth + 1, out, e);
			json_decref(m);
			return r;
		}
		*out = m;
		return 0;
	}
	return su_error_set(e, 0, "no linux/amd64 manifest in the index");
}

static int load_config(struct import *im, const char *path, const char *want_hex,
		       struct su_error *e)
{
	struct img_config c;
	json_error_t je;

	if (read_blob(im->dirfd, path, want_hex, &im->config_raw, &im->config_len, e) < 0)
		return su_error_wrap(e, "config");
	img_sha256_hex(im->config_raw, im->config_len, im->config_hex);
	im->config = json_loadb(im->config_raw, im->config_len, 0, &je);
	if (!json_is_object(im->config))
		return su_error_set(e, 0, "config: invalid JSON: %s", je.text);
	/* Refused now rather than by every later run of the image. */
	if (!json_is_array(json_object_get(json_object_get(im->config, "rootfs"), "diff_ids")))
		return su_error_set(e, 0, "config: no rootfs.diff_ids array");
	if (img_config_parse(im->config, &c, e) < 0)
		return su_error_wrap(e, "config");
	img_config_clear(&c);
	return 0;
}

static int add_layer_ref(struct layer_ref **v, size_t *n, const char *path, const char *hex)
{
	struct layer_ref *nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -1;
	*v = nv;
	nv[*n].path = strdup(path);
	nv[*n].blob_hex = hex ? strdup(hex) : NULL;
	(*n)++;
	return nv[*n - 1].path ? 0 : -1;
}

static int parse_oci(struct import *im, struct layer_ref **layers, size_t *n, struct su_error *e)
{
	json_t *index = NULL, *m = NULL, *desc;
	const char *dg;
	_cleanup_free_ char *cp = NULL;
	size_t i;
	int r = -1;

	if (read_json_blob(im->dirfd, "index.json", NULL, &index, e) < 0)
		return -1;
	if (oci_manifest(im, index, 0, &m, e) < 0)
		goto out;
	dg = json_string_value(json_object_get(json_object_get(m, "config"), "digest"));
	if (!(cp = blob_path(dg))) {
		su_error_set(e, 0, "manifest: invalid config digest");
		goto out;
	}
	if (load_config(im, cp, img_digest_hex(dg), e) < 0)
		goto out;
	if (!json_is_array(json_object_get(m, "layers"))) {
		su_error_set(e, 0, "manifest: no layers array");
		goto out;
	}
	json_array_foreach(json_object_get(m, "layers"), i, desc)
	{
		_cleanup_free_ char *lp = NULL;
		dg = json_string_value(json_object_get(desc, "digest"));
		if (!(lp = blob_path(dg))) {
			su_error_set(e, 0, "manifest: invalid layer digest");
			goto out;
		}
		if (add_layer_ref(layers, n, lp, img_digest_hex(dg)) < 0) {
			su_error_set(e, ENOMEM, "manifest");
			goto out;
		}
	}
	r = 0;
out:
	json_decref(index);
	json_decref(m);
	return r;
}

/* "blobs/sha256/<hex>" names its digest; "<id>/layer.tar" does not. */
static const char *path_digest(const char *p)
{
	const char *b = strrchr(p, '/');
	b = b ? b + 1 : p;
	if (su_str_has_prefix(p, "blobs/sha256/") && img_hex_valid(b, 64))
		return b;
	return NULL;
}

static int parse_docker(struct import *im, struct layer_ref **layers, size_t *n, struct su_error *e)
{
	json_t *man = NULL, *first, *x;
	const char *cfg, *tag;
	size_t i;
	int r = -1;

	if (read_json_blob(im->dirfd, "manifest.json", NULL, &man, e) < 0)
		return -1;
	first = json_array_get(man, 0);
	cfg = json_string_value(json_object_get(first, "Config"));
	if (!cfg || !json_is_array(json_object_get(first, "Layers"))) {
		su_error_set(e, 0, "manifest.json: no Config or no Layers array");
		goto out;
	}
	tag = json_string_value(json_array_get(json_object_get(first, "RepoTags"), 0));
	if (tag && !im->name)
		im->name = img_name_normalize(tag);
	{
		_cleanup_free_ char *hex = strndup(cfg, 64);
		const char *want = path_digest(cfg);
		/* the old layout names the config "<hex>.json" */
		if (!want && hex && img_hex_valid(hex, 64) && !strcmp(cfg + 64, ".json"))
			want = hex;
		if (load_config(im, cfg, want, e) < 0)
			goto out;
	}
	json_array_foreach(json_object_get(first, "Layers"), i, x)
	{
		const char *lp = json_string_value(x);
		if (!lp || add_layer_ref(layers, n, lp, path_digest(lp)) < 0) {
			su_error_set(e, ENOMEM, "manifest.json: layer %zu", i);
			goto out;
		}
	}
	r = 0;
out:
	json_decref(man);
	return r;
}

/* ---- layers ---- */

static void forget_new_layers(struct import *im)
{
	char tar[80];

	for (size_t i = 0; i < im->nnew; i++) {
		snprintf(tar, sizeof(tar), "%s.tar", im->new_layers[i]);
		su_rm_rf_at(im->s->layersfd, im->new_layers[i]);
		unlinkat(im->s->tarsfd, tar, 0);
	}
}

static int note_new(struct import *im, const char *diff)
{
	char **nv = realloc(im->new_layers, (im->nnew + 2) * sizeof(char *));

	if (!nv)
		return -1;
	im->new_layers = nv;
	nv[im->nnew] = strdup(diff);
	nv[im->nnew + 1] = NULL;
	return nv[im->nnew++] ? 0 : -1;
}

static int import_layers(struct import *im, struct layer_ref *layers, size_t n, uint64_t *size,
			 struct su_error *e)
{
	json_t *diffs = json_object_get(json_object_get(im->config, "rootfs"), "diff_ids");
	struct img_progress p = {.show = !im->o->quiet && isatty(STDERR_FILENO), .nlayers = n};

	if (json_array_size(diffs) != n)
		return su_error_set(e, 0, "the config lists %zu diff_ids for %zu layers",
				    json_array_size(diffs), n);
	for (size_t i = 0; i < n; i++) {
		const char *dg = json_string_value(json_array_get(diffs, i));
		const char *want = img_digest_hex(dg);
		_cleanup_close_ int fd = -1;
		char diff[65];
		bool reused;

		if (!want)
			return su_error_set(e, 0, "config: invalid diff_id \"%s\"", dg ? dg : "");
		p.layer = i + 1;
		p.bytes = 0;
		if ((fd = open_beneath(im->dirfd, layers[i].path, e)) < 0 ||
		    img_layer_unpack(im->s, fd, layers[i].blob_hex, want, diff, &reused, &p, e) < 0)
			return su_error_wrap(e, "layer %s", dg);
		if (reused && !im->o->quiet)
			fprintf(stderr, "layer sha256:%.12s: already present, reusing it\n", diff);
		if (!reused && note_new(im, diff) < 0)
			return su_error_set(e, ENOMEM, "layer %s", dg);
		*size += img_layer_size(im->s, diff);
	}
	return 0;
}

/* A plain rootfs tar: one layer, and a config made up for it. */
static int import_rootfs(struct import *im, const char *path, uint64_t *size, struct su_error *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct img_progress p = {
	    .show = !im->o->quiet && isatty(STDERR_FILENO), .layer = 1, .nlayers = 1};
	_cleanup_free_ char *diffid = NULL;
	char diff[65];
	bool reused;

	if (fd < 0)
		return su_error_set(e, errno, "open %s", path);
	if (img_layer_unpack(im->s, fd, NULL, NULL, diff, &reused, &p, e) < 0)
		return su_error_wrap(e, "layer");
	if (reused && !im->o->quiet)
		fprintf(stderr, "layer sha256:%.12s: already present, reusing it\n", diff);
	if (!reused && note_new(im, diff) < 0)
		return su_error_set(e, ENOMEM, "layer");
	*size = img_layer_size(im->s, diff);
	diffid = su_asprintf("sha256:%s", diff);
	im->config = json_pack("{s:s, s:s, s:{s:[s]}, s:{s:s, s:[s]}}", "architecture", "amd64",
			       "os", "linux", "config", "Env",
			       "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			       "rootfs", "type", "layers", "diff_ids", diffid);
	if (!im->config ||
	    !(im->config_raw = json_dumps(im->config, JSON_COMPACT | JSON_SORT_KEYS)))
		return su_error_set(e, ENOMEM, "config");
	im->config_len = strlen(im->config_raw);
	img_sha256_hex(im->config_raw, im->config_len, im->config_hex);
	return 0;
}

/* ---- the whole import ---- */

static int save_stdin(struct import *im, char **path, struct su_error *e)
{
	char name[64];
	_cleanup_close_ int fd = -1;
	char buf[1 << 16];
	ssize_t n;
	int r;

	if ((r = img_tmp_name(name, ".tmp-")) < 0)
		return su_error_set(e, -r, "random name");
	fd = openat(im->s->imagesfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !(*path = su_asprintf("%s/%s", im->s->images, name)))
		return su_error_set(e, errno, "save stdin");
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || su_write_all(fd, buf, n) < 0) {
			su_error_set(e, errno, "save stdin");
			unlinkat(im->s->imagesfd, name, 0);
			return -1;
		}
	}
	return 0;
}

static int import_locked(struct import *im, const char *path, uint64_t *size, struct su_error *e)
{
	struct layer_ref *layers = NULL;
	size_t n = 0;
	struct stat st;
	int r;

	if (stat(path, &st) < 0)
		return su_error_set(e, errno, "%s", path);
	if (S_ISDIR(st.st_mode)) {
		im->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (im->dirfd < 0)
			return su_error_set(e, errno, "open %s", path);
	} else {
		if ((r = sniff(path, e)) < 0)
			return -1;
		if (r == 0)
			return import_rootfs(im, path, size, e);
		if (unpack_outer(im, path, e) < 0)
			return su_error_wrap(e, "read archive");
	}
	if (faccessat(im->dirfd, "index.json", F_OK, 0) == 0)
		r = parse_oci(im, &layers, &n, e);
	else if (faccessat(im->dirfd, "manifest.json", F_OK, 0) == 0)
		r = parse_docker(im, &layers, &n, e);
	else
		r = su_error_set(e, 0, "neither an OCI layout nor a docker-save archive");
	if (r == 0)
		r = import_layers(im, layers, n, size, e);
	for (size_t i = 0; i < n; i++) {
		free(layers[i].path);
		free(layers[i].blob_hex);
	}
	free(layers);
	return r;
}

static void import_clear(struct import *im)
{
	if (im->dirfd >= 0)
		close(im->dirfd);
	if (im->stage)
		su_rm_rf_at(im->s->imagesfd, im->stage);
	free(im->stage);
	json_decref(im->config);
	free(im->config_raw);
	free(im->name);
	su_strv_free(im->new_layers);
}

int img_import(const char *root, const char *path, const struct img_import_opts *o, char **id_out,
	       struct su_error *e)
{
	_cleanup_store_ struct img_store *s = NULL;
	_cleanup_unlock_ int lock = -1;
	_cleanup_free_ char *saved = NULL;
	_cleanup_free_ char *name = NULL;
	struct import im = {.o = o, .dirfd = -1};
	const char *what = o->name ? o->name : path;
	uint64_t size = 0;
	int r = -1;

	if (o->name && !(name = img_name_normalize(o->name)))
		return su_error_set(e, 0, "import image: invalid name \"%s\"", o->name);
	if (img_store_open(root, true, &s, e) < 0 || (lock = img_store_lock(s, true, e)) < 0)
		return su_error_wrap(e, "import image \"%s\"", what);
	im.s = s;
	if (!strcmp(path, "-")) {
		if (save_stdin(&im, &saved, e) < 0)
			return su_error_wrap(e, "import image \"%s\"", what);
		path = saved;
	}
	if (import_locked(&im, path, &size, e) < 0)
		goto out;
	if (img_store_add_locked(s, im.config_hex, im.config_raw, im.config_len,
				 name ? name : im.name, size, e) < 0)
		goto out;
	if (id_out && !(*id_out = strdup(im.config_hex))) {
		su_error_set(e, ENOMEM, "import");
		goto out;
	}
	r = 0;
out:
	if (r < 0) {
		forget_new_layers(&im);
		su_error_wrap(e, "import image \"%s\"", what);
	}
	if (saved)
		unlink(saved);
	import_clear(&im);
	return r;
}
