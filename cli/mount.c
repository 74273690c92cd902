/* cli/mount: `strata mount IMAGE DIR [--writable]`, `strata mount` (list),
 * `strata umount DIR` -- an image's layers through strata-fs for
 * inspection, recorded under <root>/mounts -- and `strata diff`. */
#include "cli/cli.h"
#include "image/image.h"

#include <fcntl.h>
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <xxhash.h>

/* strata-fs: $STRATA_FS, next to this binary, then PATH. */
static char *find_strata_fs(void)
{
	const char *env = getenv("STRATA_FS"), *path = getenv("PATH");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env)
		return strdup(env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash, *p;
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			*slash = '\0';
			p = su_asprintf("%s/strata-fs", self);
			if (p && access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	for (const char *s = path ? path : "/usr/local/bin:/usr/bin:/bin"; *s;) {
		size_t len = strcspn(s, ":");
		char *p = su_asprintf("%.*s/strata-fs", (int)len, s);
		if (p && len && access(p, X_OK) == 0)
			return p;
		free(p);
		s += len;
		if (*s)
			s++;
	}
	return NULL;
}

static int run(char *const argv[], struct su_error *e)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return su_error_set(e, errno, "fork");
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "strata: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return su_error_set(e, errno, "wait %s", argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return su_error_set(e, 0, "%s failed", argv[0]);
	return 0;
}

/* <root>/mounts/<hash of DIR> names the record of a mount. */
static char *record_base(struct cli_ctx *ctx, const char *dir)
{
	return su_asprintf("%s/mounts/%016llx", ctx->root,
			   (unsigned long long)XXH3_64bits(dir, strlen(dir)));
}

static bool is_mounted(const char *dir)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], mp[4096];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, dir))
			return true;
	return false;
}

static int do_mount(struct cli_ctx *ctx, const char *ref, const char *target, bool writable)
{
	struct img_resolved r;
	struct su_error e = {0};
	_cleanup_free_ char *dir = realpath(target, NULL), *fs = find_strata_fs();
	_cleanup_free_ char *base = NULL, *opts = NULL, *lower = NULL, *text = NULL, *rec = NULL;
	size_t len = 0, cap = 0;
	_cleanup_close_ int mfd = -1;
	json_t *j;
	int rc;

	if (!dir)
		return su_error_set(&e, errno, "mount %s: %s", ref, target), cli_error(&e);
	if (!fs)
		return su_error_set(&e, 0, "mount %s: strata-fs not found (set STRATA_FS)", ref),
		       cli_error(&e);
	if (img_resolve(ctx->root, ref, &r, &e) < 0)
		return su_error_wrap(&e, "mount %s", ref), cli_error(&e);
	for (size_t i = 0; i < r.nlayers; i++)
		if (su_strbuf_add(&lower, &len, &cap, ":", i ? 1 : 0) < 0 ||
		    su_strbuf_add(&lower, &len, &cap, r.layers[i], strlen(r.layers[i])) < 0)
			abort();
	if (r.nlayers == 1) /* overlayfs wants two layers without an upper */
		su_strbuf_add(&lower, &len, &cap, ":", 1),
		    su_strbuf_add(&lower, &len, &cap, r.layers[0], strlen(r.layers[0]));
	base = record_base(ctx, dir);
	su_mkdir_p(AT_FDCWD, base, 0700);
	if (writable) {
		_cleanup_free_ char *u = su_asprintf("%s/upper", base),
				    *w = su_asprintf("%s/work", base);
		su_mkdir_p(AT_FDCWD, u, 0755);
		su_mkdir_p(AT_FDCWD, w, 0700);
		opts = su_asprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, u, w);
	} else {
		opts = su_asprintf("lowerdir=%s", lower);
	}
	{
		char *argv[] = {fs, "-o", opts, dir, NULL};
		rc = run(argv, &e);
	}
	if (rc < 0) {
		su_rm_rf_at(AT_FDCWD, base);
		img_resolved_free(&r);
		return su_error_wrap(&e, "mount %s at %s", ref, dir), cli_error(&e);
	}
	j = json_pack("{s:s, s:s, s:s, s:b}", "Dir", dir, "Image", ref, "ImageID", r.id, "Writable",
		      writable);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	rec = su_asprintf("%s.json", strrchr(base, '/') + 1);
	*strrchr(base, '/') = '\0';
	mfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!text || !rec || mfd < 0 || su_write_atomic(mfd, rec, text, strlen(text), 0644) < 0)
		fprintf(stderr, "strata: mount %s: cannot record the mount\n", ref);
	img_resolved_free(&r);
	return CLI_OK;
}

static int list_mounts(struct cli_ctx *ctx)
{
	_cleanup_free_ char *dir = su_asprintf("%s/mounts", ctx->root);
	_cleanup_closedir_ DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;

	while (d && (de = readdir(d))) {
		_cleanup_free_ char *buf = NULL, *p = NULL;
		json_t *j;
		const char *mdir;
		size_t l = strlen(de->d_name);

		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		p = su_asprintf("%s/%s", dir, de->d_name);
		if (!p || su_read_file(AT_FDCWD, p, &buf, NULL, 1 << 20) < 0)
			continue;
		j = json_loads(buf, 0, NULL);
		mdir = json_string_value(json_object_get(j, "Dir"));
		if (mdir && is_mounted(mdir))
			printf("%s %s %.12s %s\n", mdir,
			       json_string_value(json_object_get(j, "Image")) ?: "",
			       json_string_value(json_object_get(j, "ImageID")) ?: "",
			       json_is_true(json_object_get(j, "Writable")) ? "rw" : "ro");
		json_decref(j);
	}
	return CLI_OK;
}

int cli_mount(struct cli_ctx *ctx, int argc, char **argv)
{
	bool writable = false;
	const char *args[2];
	int n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--writable") || !strcmp(argv[i], "-w"))
			writable = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return puts("Usage: strata mount [IMAGE DIR [--writable]]"), CLI_OK;
		else if (argv[i][0] == '-' || n == 2)
			return cli_usage_error("mount", "unexpected argument '%s'", argv[i]);
		else
			args[n++] = argv[i];
	}
	if (n == 0)
		return list_mounts(ctx);
	if (n != 2)
		return cli_usage_error("mount", "expected IMAGE and DIR");
	return do_mount(ctx, args[0], args[1], writable);
}

int cli_umount(struct cli_ctx *ctx, int argc, char **argv)
{
	struct su_error e = {0};
	_cleanup_free_ char *dir = NULL, *base = NULL, *rec = NULL;

	if (argc != 2)
		return cli_usage_error("umount", "expected DIR");
	if (!(dir = realpath(argv[1], NULL)))
		return su_error_set(&e, errno, "umount %s", argv[1]), cli_error(&e);
	if (umount2(dir, 0) < 0) {
		char *fargv[] = {"fusermount3", "-u", dir, NULL};
		if (run(fargv, &e) < 0)
			return su_error_wrap(&e, "umount %s", dir), cli_error(&e);
	}
	base = record_base(ctx, dir);
	rec = su_asprintf("%s.json", base);
	if (rec)
		unlink(rec);
	if (base)
		su_rm_rf_at(AT_FDCWD, base);
	return CLI_OK;
}

/* ---- diff ---- */

static int container_image(struct cli_ctx *ctx, const char *id, char **upper, char **image)
{
	_cleanup_free_ char *cfg = su_asprintf("%s/containers/%s/config.json", ctx->root, id);
	_cleanup_free_ char *buf = NULL;
	const char *img;
	json_t *j;

	if (!cfg || su_read_file(AT_FDCWD, cfg, &buf, NULL, 4 << 20) < 0)
		return -1;
	j = json_loads(buf, 0, NULL);
	img = json_string_value(json_object_get(j, "ImageID"));
	*image = img ? strdup(img) : NULL;
	json_decref(j);
	*upper = su_asprintf("%s/containers/%s/upper", ctx->root, id);
	return 0;
}

int cli_diff(struct cli_ctx *ctx, int argc, char **argv)
{
	_cleanup_free_ char *upper = NULL, *image = NULL;
	struct img_resolved r = {0};
	struct img_change *c = NULL;
	struct su_error e = {0};
	size_t n = 0;
	struct stat st;

	if (argc == 4 && !strcmp(argv[2], "--image"))
		image = strdup(argv[3]);
	else if (argc != 2 || argv[1][0] == '-')
		return cli_usage_error("diff",
				       "usage: strata diff CONTAINER|UPPERDIR [--image IMAGE]");
	if (stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode))
		upper = strdup(argv[1]);
	else if (container_image(ctx, argv[1], &upper, &image) < 0)
		return su_error_set(&e, 0, "diff: no such container or directory: %s", argv[1]),
		       cli_error(&e);
	if (image && img_resolve(ctx->root, image, &r, &e) < 0)
		return su_error_wrap(&e, "diff %s", argv[1]), cli_error(&e);
	if (img_diff(upper, image ? r.layers : NULL, &c, &n, &e) < 0) {
		img_resolved_free(&r);
		return cli_error(&e);
	}
	for (size_t i = 0; i < n; i++)
		printf("%c %s\n", c[i].kind, c[i].path);
	img_changes_free(c, n);
	img_resolved_free(&r);
	return CLI_OK;
}
