/* tests/fuzz/fuzz-img-extract.c: libFuzzer harness for img_extract, the
 * layer extractor.  The input is a tar (compressed or not) extracted into
 * a fresh $TMPDIR/fuzz-XXXXXX/layer.  Besides not crashing or leaking: a
 * failure carries a message, the parent directory still holds only
 * "layer" (and the directory above it only the run directory), and no
 * relative symlink inside the layer climbs above the layer root. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char base[PATH_MAX]; /* holds the per-run directories */
static int basefd = -1;

/* The base directory goes when the fuzzer exits (libFuzzer calls exit()). */
static void remove_base(void)
{
	su_rm_rf_at(AT_FDCWD, base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base, sizeof(base), "%s/fuzz-img-extract.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base) || (basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		perror(base);
		abort();
	}
	atexit(remove_base);
	return 0;
}

/* Names in dirfd other than "." and ".."; the only one kept in *only. */
static int count_entries(int dirfd, char *only, size_t len)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int n = 0;

	if (!d)
		abort();
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (only)
			snprintf(only, len, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Whether a relative symlink target, seen from depth directories below the
 * layer root, stays inside it (absolute targets resolve in the container). */
static bool target_inside(const char *target, long depth)
{
	const char *s = target;

	if (*s == '/')
		return true;
	while (*s) {
		size_t n = strcspn(s, "/");
		if (n == 2 && s[0] == '.' && s[1] == '.')
			depth--;
		else if (n && !(n == 1 && s[0] == '.'))
			depth++;
		if (depth < 0)
			return false;
		s += n;
		s += strspn(s, "/");
	}
	return true;
}

/* Walks the layer: every symlink stays inside, nothing is odd. */
static void check_tree(int dirfd, long depth)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d)
		return; /* a directory the layer made unreadable: nothing to walk */
	while ((de = readdir(d))) {
		struct stat st;
		char target[PATH_MAX];
		ssize_t n;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			abort();
		if (S_ISLNK(st.st_mode)) {
			n = readlinkat(dirfd, de->d_name, target, sizeof(target) - 1);
			if (n < 0)
				abort();
			target[n] = '\0';
			if (!target_inside(target, depth)) {
				fprintf(stderr, "symlink %s -> %s leaves the layer\n", de->d_name,
					target);
				abort();
			}
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				check_tree(sub, depth + 1);
				close(sub);
			}
		}
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char run[32] = "fuzz-XXXXXX", only[256] = "";
	int memfd = memfd_create("layer", MFD_CLOEXEC);
	int runfd = -1, layerfd = -1, r;
	struct su_error e;

	if (memfd < 0 || su_write_all(memfd, data, size) < 0 || lseek(memfd, 0, SEEK_SET) < 0)
		abort();
	/* mkdtemp works on a path: build the run directory under base. */
	{
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", base, run);
		if (!mkdtemp(path))
			abort();
		memcpy(run, path + strlen(base) + 1, strlen(run));
	}
	runfd = openat(basefd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (runfd < 0 || mkdirat(runfd, "layer", 0755) < 0 ||
	    (layerfd = openat(runfd, "layer", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		abort();

	memset(&e, 0, sizeof(e));
	r = img_extract(memfd, layerfd, true, &e);
	if (r < 0 && !e.msg[0])
		abort();
	if (count_entries(runfd, only, sizeof(only)) != 1 || strcmp(only, "layer")) {
		fprintf(stderr, "the run directory holds \"%s\", not only \"layer\"\n", only);
		abort();
	}
	if (count_entries(basefd, NULL, 0) != 1) {
		fprintf(stderr, "something was created next to the run directory\n");
		abort();
	}
	if (r == 0)
		check_tree(layerfd, 0);

	close(layerfd);
	close(runfd);
	close(memfd);
	if (su_rm_rf_at(basefd, run) < 0)
		abort();
	return 0;
}
