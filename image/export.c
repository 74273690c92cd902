/* image/export: an image as an OCI archive (a tar of an OCI layout) with
 * its layers as the uncompressed tars they were imported from, so that an
 * import of the archive gives back the same image id and layers. */
#include "image/store.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"

static int add_header(struct archive *w, const char *name, int64_t size, bool dir)
{
	struct archive_entry *ent = archive_entry_new();
	int r;

	archive_entry_set_pathname(ent, name);
	archive_entry_set_filetype(ent, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(ent, dir ? 0755 : 0644);
	archive_entry_set_size(ent, dir ? 0 : size);
	archive_entry_set_mtime(ent, 0, 0);
	r = archive_write_header(w, ent);
	archive_entry_free(ent);
	return r == ARCHIVE_OK ? 0 : -1;
}

static int add_buf(struct archive *w, const char *name, const void *buf, size_t len,
		   struct su_error *e)
{
	if (add_header(w, name, len, false) < 0 || archive_write_data(w, buf, len) != (ssize_t)len)
		return su_error_set(e, 0, "write %s: %s", name, archive_error_string(w));
	return 0;
}

static int add_fd(struct archive *w, const char *name, int fd, int64_t size, struct su_error *e)
{
	char buf[1 << 16];
	ssize_t n;

	if (add_header(w, name, size, false) < 0)
		return su_error_set(e, 0, "write %s: %s", name, archive_error_string(w));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (archive_write_data(w, buf, n) != n)
			return su_error_set(e, 0, "write %s: %s", name, archive_error_string(w));
	return n < 0 ? su_error_set(e, errno, "read %s", name) : 0;
}

static int add_json(struct archive *w, const char *name, json_t *j, char hex[65], size_t *len,
		    struct su_error *e)
{
	_cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);

	if (!text)
		return su_error_set(e, ENOMEM, "write %s", name);
	*len = strlen(text);
	if (hex) {
		_cleanup_free_ char *p = NULL;
		img_sha256_hex(text, *len, hex);
		p = su_asprintf("blobs/sha256/%s", hex);
		return add_buf(w, p, text, *len, e);
	}
	return add_buf(w, name, text, *len, e);
}

static int write_layout(struct img_store *s, struct img_info *i, struct archive *w,
			struct su_error *e)
{
	_cleanup_free_ char *cfg = NULL, *cfgpath = su_asprintf("%s/config.json", i->id);
	_cleanup_free_ char *cfgblob = su_asprintf("blobs/sha256/%s", i->id);
	json_t *layers = json_array(), *man, *index;
	char mhex[65] = "";
	size_t cfglen, mlen = 0;
	int r;

	if ((r = su_read_file(s->imagesfd, cfgpath, &cfg, &cfglen, 64 << 20)) < 0) {
		json_decref(layers);
		return su_error_set(e, -r, "read config");
	}
	if (add_buf(w, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30, e) < 0 ||
	    add_header(w, "blobs", 0, true) < 0 || add_header(w, "blobs/sha256", 0, true) < 0 ||
	    add_buf(w, cfgblob, cfg, cfglen, e) < 0) {
		json_decref(layers);
		return -1;
	}
	for (size_t k = 0; i->diff_ids[k]; k++) {
		const char *hex = img_digest_hex(i->diff_ids[k]);
		_cleanup_free_ char *tar = su_asprintf("%s.tar", hex);
		_cleanup_free_ char *blob = su_asprintf("blobs/sha256/%s", hex);
		_cleanup_close_ int fd = openat(s->tarsfd, tar, O_RDONLY | O_CLOEXEC);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) < 0) {
			json_decref(layers);
			return su_error_set(e, errno, "layer %s", i->diff_ids[k]);
		}
		if (add_fd(w, blob, fd, st.st_size, e) < 0) {
			json_decref(layers);
			return su_error_wrap(e, "layer %s", i->diff_ids[k]);
		}
		json_array_append_new(layers,
				      json_pack("{s:s, s:s, s:I}", "mediaType",
						"application/vnd.oci.image.layer.v1.tar", "digest",
						i->diff_ids[k], "size", (json_int_t)st.st_size));
	}
	man = json_pack("{s:i, s:s, s:{s:s, s:s+, s:I}, s:o}", "schemaVersion", 2, "mediaType",
			OCI_MANIFEST, "config", "mediaType",
			"application/vnd.oci.image.config.v1+json", "digest", "sha256:", i->id,
			"size", (json_int_t)cfglen, "layers", layers);
	r = man ? add_json(w, "manifest", man, mhex, &mlen, e)
		: su_error_set(e, ENOMEM, "manifest");
	json_decref(man);
	if (r < 0)
		return -1;
	index = json_pack("{s:i, s:s, s:[{s:s, s:s+, s:I}]}", "schemaVersion", 2, "mediaType",
			  "application/vnd.oci.image.index.v1+json", "manifests", "mediaType",
			  OCI_MANIFEST, "digest", "sha256:", mhex, "size", (json_int_t)mlen);
	if (index && i->names[0]) {
		const char *colon = strrchr(i->names[0], ':');
		json_t *ann =
		    json_pack("{s:s, s:s}", "io.containerd.image.name", i->names[0],
			      "org.opencontainers.image.ref.name", colon ? colon + 1 : "latest");
		json_object_set_new(json_array_get(json_object_get(index, "manifests"), 0),
				    "annotations", ann);
	}
	r = index ? add_json(w, "index.json", index, NULL, &mlen, e)
		  : su_error_set(e, ENOMEM, "index");
	json_decref(index);
	return r;
}

int img_export(const char *root, const char *ref, const char *path, struct su_error *e)
{
	_cleanup_store_ struct img_store *s = NULL;
	_cleanup_unlock_ int lock = -1;
	_cleanup_free_ char *id = NULL, *tmp = su_asprintf("%s.tmp.%d", path, (int)getpid());
	struct img_info *i = NULL;
	struct archive *w = NULL;
	int r = -1;

	if (img_store_open(root, false, &s, e) < 0 || (lock = img_store_lock(s, false, e)) < 0 ||
	    img_lookup_locked(s, ref, &id, e) < 0 || img_load_locked(s, id, &i, e) < 0)
		return su_error_wrap(e, "export image \"%s\"", ref);
	w = archive_write_new();
	archive_write_set_format_pax_restricted(w);
	if (archive_write_open_filename(w, strcmp(path, "-") ? tmp : NULL) != ARCHIVE_OK) {
		su_error_set(e, 0, "%s: %s", path, archive_error_string(w));
		goto out;
	}
	if (write_layout(s, i, w, e) < 0)
		goto out;
	if (archive_write_close(w) != ARCHIVE_OK) {
		su_error_set(e, 0, "%s: %s", path, archive_error_string(w));
		goto out;
	}
	if (strcmp(path, "-") && rename(tmp, path) < 0) {
		su_error_set(e, errno, "rename to %s", path);
		goto out;
	}
	r = 0;
out:
	if (r < 0) {
		su_error_wrap(e, "export image \"%s\"", ref);
		if (strcmp(path, "-"))
			unlink(tmp);
	}
	archive_write_free(w);
	img_info_free(i);
	return r;
}
