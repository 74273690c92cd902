/* tests/fuzz/fuzz-img-json.c: libFuzzer harness for the image importer's
 * JSON readers.  The first byte picks the document the rest of the input
 * becomes, in an otherwise valid single-layer image:
 *   0  index.json of an OCI layout      2  the image config blob
 *   1  the OCI image manifest blob      3  manifest.json of a docker-save tree
 * The other documents are fixed (fixed digests, so seeds can name them) or,
 * for 1 and 2, written to point at the fuzzed blob's digest.  img_import
 * runs on the layout with a fresh state root.  Besides not crashing or
 * leaking: a failure carries a message, and a success means the fuzzed
 * document had the shape the format requires and the image resolves (its
 * config parses, its layers are on disk).
 * STRATA_FUZZ_WRITE_SEEDS=DIR writes seed inputs to DIR and exits. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "image/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum { DOC_INDEX, DOC_MANIFEST, DOC_CONFIG, DOC_DOCKER, DOC_N };

static struct {
	char base[PATH_MAX];
	int basefd;
	char layer[4096]; /* the one layer: an uncompressed tar */
	size_t layer_len;
	char layer_hex[65]; /* its digest and diff_id */
	char *config;	    /* a valid config naming the layer */
	char config_hex[65];
	char *manifest; /* a valid manifest naming config and layer */
	char manifest_hex[65];
	char *index; /* a valid index naming the manifest */
	char index_hex[65];
} F;

/* A tar of one file, built the same way on every run so its digest is fixed. */
static void make_layer(void)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ent = archive_entry_new();
	static const char body[] = "hello\n";
	size_t used = 0;

	archive_write_set_format_ustar(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_memory(a, F.layer, sizeof(F.layer), &used) != ARCHIVE_OK)
		abort();
	archive_entry_set_pathname(ent, "hello");
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0644);
	archive_entry_set_size(ent, sizeof(body) - 1);
	archive_entry_set_mtime(ent, 1000000000, 0);
	if (archive_write_header(a, ent) != ARCHIVE_OK ||
	    archive_write_data(a, body, sizeof(body) - 1) != (la_ssize_t)(sizeof(body) - 1) ||
	    archive_write_close(a) != ARCHIVE_OK)
		abort();
	archive_entry_free(ent);
	archive_write_free(a);
	F.layer_len = used;
	img_sha256_hex(F.layer, F.layer_len, F.layer_hex);
}

static char *manifest_for(const char *config_hex, size_t config_len)
{
	return su_asprintf("{\"schemaVersion\":2,"
			   "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			   "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			   "\"digest\":\"sha256:%s\",\"size\":%zu},"
			   "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
			   "\"digest\":\"sha256:%s\",\"size\":%zu}]}",
			   config_hex, config_len, F.layer_hex, F.layer_len);
}

static char *index_for(const char *manifest_hex, size_t manifest_len)
{
	return su_asprintf("{\"schemaVersion\":2,\"manifests\":[{"
			   "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			   "\"digest\":\"sha256:%s\",\"size\":%zu,"
			   "\"annotations\":{\"org.opencontainers.image.ref.name\":\"fuzz:1\"},"
			   "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
			   manifest_hex, manifest_len);
}

static void make_documents(void)
{
	make_layer();
	F.config = su_asprintf("{\"architecture\":\"amd64\",\"os\":\"linux\","
			       "\"config\":{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"/bin/sh\"],"
			       "\"Volumes\":{\"/data\":{}},\"Labels\":{\"a\":\"b\"}},"
			       "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}",
			       F.layer_hex);
	if (!F.config)
		abort();
	img_sha256_hex(F.config, strlen(F.config), F.config_hex);
	if (!(F.manifest = manifest_for(F.config_hex, strlen(F.config))))
		abort();
	img_sha256_hex(F.manifest, strlen(F.manifest), F.manifest_hex);
	if (!(F.index = index_for(F.manifest_hex, strlen(F.manifest))))
		abort();
	img_sha256_hex(F.index, strlen(F.index), F.index_hex);
}

/* No fsync: the layout is thrown away after the run. */
static void put(int dirfd, const char *name, const void *buf, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || su_write_all(fd, buf, len) < 0)
		abort();
	close(fd);
}

static void put_blob(int dirfd, const void *buf, size_t len, char hex[65])
{
	char name[96];

	img_sha256_hex(buf, len, hex);
	snprintf(name, sizeof(name), "blobs/sha256/%s", hex);
	put(dirfd, name, buf, len);
}

/* The layout for one run, with the fuzzed document in its place. */
static void write_layout(int dirfd, int doc, const char *buf, size_t len)
{
	char hex[65], name[96];
	char *gen = NULL;
	size_t glen;

	if (su_mkdir_p(dirfd, "blobs/sha256", 0755) < 0)
		abort();
	put_blob(dirfd, F.layer, F.layer_len, hex);
	put_blob(dirfd, F.config, strlen(F.config), hex);
	put_blob(dirfd, F.manifest, strlen(F.manifest), hex);
	put_blob(dirfd, F.index, strlen(F.index), hex);
	switch (doc) {
	case DOC_INDEX:
		put(dirfd, "index.json", buf, len);
		break;
	case DOC_MANIFEST:
		put_blob(dirfd, buf, len, hex);
		gen = index_for(hex, len);
		break;
	case DOC_CONFIG:
		put_blob(dirfd, buf, len, hex);
		gen = manifest_for(hex, len);
		if (!gen)
			abort();
		glen = strlen(gen);
		put_blob(dirfd, gen, glen, hex);
		free(gen);
		gen = index_for(hex, glen);
		break;
	case DOC_DOCKER:
		/* the old docker-save names too: <config hex>.json, <id>/layer.tar */
		snprintf(name, sizeof(name), "%s.json", F.config_hex);
		put(dirfd, name, F.config, strlen(F.config));
		if (mkdirat(dirfd, F.layer_hex, 0755) < 0)
			abort();
		snprintf(name, sizeof(name), "%s/layer.tar", F.layer_hex);
		put(dirfd, name, F.layer, F.layer_len);
		put(dirfd, "manifest.json", buf, len);
		return;
	}
	if (doc != DOC_INDEX) {
		if (!gen)
			abort();
		put(dirfd, "index.json", gen, strlen(gen));
		free(gen);
	}
	put(dirfd, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
}

/* ---- what a successful import promises ---- */

static json_t *parse(const char *buf, size_t len)
{
	return json_loadb(buf, len, 0, NULL);
}

static bool is_array_at(json_t *o, const char *key)
{
	return json_is_array(json_object_get(o, key));
}

/* The fuzzed document, accepted, must have had the format's shape. */
static void check_shape(int doc, const char *buf, size_t len)
{
	json_t *j = parse(buf, len);
	bool ok = false;

	switch (doc) {
	case DOC_INDEX:
		ok = json_is_object(j) && is_array_at(j, "manifests");
		break;
	case DOC_MANIFEST:
		ok = json_is_object(j) && is_array_at(j, "layers") &&
		     json_is_object(json_object_get(j, "config"));
		break;
	case DOC_CONFIG:
		ok = json_is_object(j) && json_is_object(json_object_get(j, "rootfs")) &&
		     is_array_at(json_object_get(j, "rootfs"), "diff_ids");
		break;
	case DOC_DOCKER:
		ok = json_is_array(j) && json_is_object(json_array_get(j, 0)) &&
		     is_array_at(json_array_get(j, 0), "Layers") &&
		     json_is_string(json_object_get(json_array_get(j, 0), "Config"));
		break;
	}
	json_decref(j);
	if (!ok) {
		fprintf(stderr, "document %d accepted without the required shape\n", doc);
		abort();
	}
}

static void check_image(const char *root, const char *id)
{
	struct img_resolved res;
	struct su_error e;
	struct stat st;

	if (!id || !img_hex_valid(id, 64))
		abort();
	memset(&e, 0, sizeof(e));
	if (img_resolve(root, id, &res, &e) < 0) {
		fprintf(stderr, "imported image %s does not resolve: %s\n", id, e.msg);
		abort();
	}
	for (size_t i = 0; i < res.nlayers; i++)
		if (stat(res.layers[i], &st) < 0 || !S_ISDIR(st.st_mode))
			abort();
	img_resolved_free(&res);
}

/* The base directory goes when the fuzzer exits (libFuzzer calls exit()). */
static void remove_base(void)
{
	su_rm_rf_at(AT_FDCWD, F.base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR"), *seeds = getenv("STRATA_FUZZ_WRITE_SEEDS");

	make_documents();
	if (seeds) {
		/* One seed per document: the valid one, prefixed by its selector. */
		const char *docs[DOC_N] = {F.index, F.manifest, F.config, NULL};
		_cleanup_free_ char *docker =
		    su_asprintf("[{\"Config\":\"blobs/sha256/%s\",\"RepoTags\":[\"fuzz:2\"],"
				"\"Layers\":[\"%s/layer.tar\"]}]",
				F.config_hex, F.layer_hex);
		int dfd = open(seeds, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		docs[DOC_DOCKER] = docker;
		if (dfd < 0 || !docker)
			abort();
		for (int d = 0; d < DOC_N; d++) {
			char name[32];
			_cleanup_free_ char *buf = su_asprintf("%c%s", '0' + d, docs[d]);
			snprintf(name, sizeof(name), "seed-%d", d);
			if (!buf)
				abort();
			put(dfd, name, buf, strlen(buf));
		}
		close(dfd);
		exit(0);
	}
	snprintf(F.base, sizeof(F.base), "%s/fuzz-img-json.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(F.base) || (F.basefd = open(F.base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror(F.base);
		abort();
	}
	atexit(remove_base);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *root = su_asprintf("%s/run/root", F.base);
	struct img_import_opts o = {.quiet = true};
	_cleanup_free_ char *layout = NULL, *id = NULL;
	const char *doc_buf = (const char *)data + 1;
	size_t doc_len = size ? size - 1 : 0;
	int doc, dirfd, r;
	struct su_error e;

	if (size < 1 || !root)
		return 0;
	doc = data[0] % DOC_N;
	if (!(layout = su_asprintf("%s/run/layout", F.base)) ||
	    su_mkdir_p(F.basefd, "run/layout", 0755) < 0 ||
	    (dirfd = openat(F.basefd, "run/layout", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		abort();
	write_layout(dirfd, doc, doc_buf, doc_len);
	close(dirfd);

	memset(&e, 0, sizeof(e));
	r = img_import(root, layout, &o, &id, &e);
	if (r < 0 && !e.msg[0])
		abort();
	if (r == 0) {
		check_shape(doc, doc_buf, doc_len);
		check_image(root, id);
	}
	if (su_rm_rf_at(F.basefd, "run") < 0)
		abort();
	return 0;
}
