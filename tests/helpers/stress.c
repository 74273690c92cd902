/* stress: a long randomized workload for tests/stress/stress.t.  P processes
 * run mixed data and metadata operations for a given time, each on its own
 * files -- some that start in a lower layer, some new -- and check every
 * result against an in-memory model; all of them also read shared lower
 * files.  At the end each saves its model, so the files can be checked
 * again after a remount.
 *
 *   stress setup [-p P] LOWER              lower files of every process
 *   stress run [-p P] [-t SECONDS] [-s SEED] MNT LOGDIR
 *   stress verify [-p P] MNT LOGDIR         the saved models against MNT
 *
 * Exits 0 when all is well, 1 on a mismatch or an unexpected error (the
 * last operations are printed), 2 on a usage error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define SLOTS	16 /* files per process: 0-7 start in the lower */
#define MAXSIZE (256 * 1024)
#define SHARED	8
#define HIST	16

struct slot {
	bool present;
	size_t size;
	mode_t mode;
	unsigned char *data;
};

static int P = 4;
static uint64_t rs;
static char hist[HIST][128];
static unsigned nhist;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t n)
{
	rs = mix(rs);
	return n ? rs % n : 0;
}

static void fill(unsigned char *b, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(mix(seed + i / 8) >> (8 * (i % 8)));
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hist[nhist++ % HIST], sizeof(hist[0]), fmt, ap);
	va_end(ap);
}

static int fail(int w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int w, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "process %d: ", w);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  last operations:\n");
	for (unsigned i = nhist > HIST ? nhist - HIST : 0; i < nhist; i++)
		fprintf(stderr, "    %s\n", hist[i % HIST]);
	return 1;
}

static void path_of(int w, int s, char *buf, size_t len)
{
	if (s < SLOTS / 2)
		snprintf(buf, len, "low/p%d-%d", w, s);
	else
		snprintf(buf, len, "p%d/s%d", w, s);
}

static size_t lower_size(int w, int s)
{
	return (size_t)(mix(w * 100 + s) % MAXSIZE);
}

static int put(const char *path, const unsigned char *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || su_write_all(fd, b, n) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	return close(fd);
}

static int cmd_setup(const char *lower)
{
	char path[4096];
	unsigned char *b = malloc(MAXSIZE * 4);

	snprintf(path, sizeof(path), "%s/low", lower);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/shared", lower);
	mkdir(path, 0755);
	for (int w = 0; w < P; w++)
		for (int s = 0; s < SLOTS / 2; s++) {
			char name[64];
			size_t n = lower_size(w, s);
			path_of(w, s, name, sizeof(name));
			snprintf(path, sizeof(path), "%s/%s", lower, name);
			fill(b, n, mix(w * 100 + s + 1));
			if (put(path, b, n) < 0)
				return 2;
		}
	for (int i = 0; i < SHARED; i++) {
		snprintf(path, sizeof(path), "%s/shared/s%d", lower, i);
		fill(b, MAXSIZE * 4, mix(9000 + i));
		if (put(path, b, MAXSIZE * 4) < 0)
			return 2;
	}
	free(b);
	return 0;
}

/* Compares the file at path with slot m; returns 0 or a message. */
static const char *compare(int mfd, const char *path, const struct slot *m, unsigned char *buf)
{
	struct stat st;
	int fd;
	ssize_t n;

	if (fstatat(mfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return m->present ? "missing" : NULL;
	if (!m->present)
		return "present but should not be";
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size != m->size)
		return "wrong type or size";
	if ((st.st_mode & 07777) != m->mode)
		return "wrong mode";
	fd = openat(mfd, path, O_RDONLY);
	if (fd < 0)
		return "cannot open";
	n = su_read_all(fd, buf, MAXSIZE + 1);
	close(fd);
	if (n != (ssize_t)m->size || memcmp(buf, m->data, m->size))
		return "wrong content";
	return NULL;
}

/* One operation on slot s of process w; returns 0 or -1 after reporting. */
static int step(int mfd, int w, struct slot *sl, unsigned char *buf, long *nops)
{
	int s = (int)rnd(SLOTS), t = (int)rnd(100), fd, r = 0;
	struct slot *m = &sl[s];
	char path[64], path2[64];
	const char *why;

	path_of(w, s, path, sizeof(path));
	(*nops)++;
	if (t < 10) {
		/* read a shared lower file that every process reads */
		int i = (int)rnd(SHARED);
		unsigned char *want = malloc(MAXSIZE * 4);
		snprintf(path2, sizeof(path2), "shared/s%d", i);
		note("read %s", path2);
		fd = openat(mfd, path2, O_RDONLY);
		fill(want, MAXSIZE * 4, mix(9000 + i));
		r = fd < 0 || su_read_all(fd, buf, MAXSIZE * 4) != MAXSIZE * 4 ||
		    memcmp(buf, want, MAXSIZE * 4);
		free(want);
		if (fd >= 0)
			close(fd);
		return r ? fail(w, "shared file %s does not read back", path2) : 0;
	}
	if (t < 35) {
		/* pwrite of a random range, creating the file if absent */
		size_t off = rnd(MAXSIZE - 1),
		       len = 1 + rnd(MAXSIZE - off < 65536 ? MAXSIZE - off : 65536);
		note("pwrite %s %zu+%zu", path, off, len);
		fd = openat(mfd, path, O_WRONLY | O_CREAT, 0644);
		if (fd < 0)
			return fail(w, "open %s: %s", path, strerror(errno));
		fill(buf, len, rnd(1 << 30));
		if (pwrite(fd, buf, len, off) != (ssize_t)len) {
			close(fd);
			return fail(w, "pwrite %s: %s", path, strerror(errno));
		}
		close(fd);
		if (!m->present) {
			m->present = true;
			m->size = 0;
			m->mode = 0644;
		}
		if (off > m->size)
			memset(m->data + m->size, 0, off - m->size);
		memcpy(m->data + off, buf, len);
		if (off + len > m->size)
			m->size = off + len;
		return 0;
	}
	if (t < 45 && m->present) {
		size_t n = rnd(MAXSIZE);
		note("truncate %s %zu", path, n);
		fd = openat(mfd, path, O_WRONLY);
		if (fd < 0 || ftruncate(fd, n) < 0)
			return fail(w, "truncate %s: %s", path, strerror(errno));
		close(fd);
		if (n > m->size)
			memset(m->data + m->size, 0, n - m->size);
		m->size = n;
		return 0;
	}
	if (t < 60) {
		note("verify %s", path);
		why = compare(mfd, path, m, buf);
		return why ? fail(w, "%s: %s", path, why) : 0;
	}
	if (t < 70 && m->present) {
		int s2 = (int)rnd(SLOTS);
		struct slot tmp;
		if (s2 == s)
			return 0;
		path_of(w, s2, path2, sizeof(path2));
		note("rename %s %s", path, path2);
		if (renameat(mfd, path, mfd, path2) < 0)
			return fail(w, "rename %s %s: %s", path, path2, strerror(errno));
		tmp = sl[s2];
		sl[s2] = *m;
		sl[s2].present = true;
		*m = tmp;
		m->present = false;
		return 0;
	}
	if (t < 77 && m->present) {
		note("unlink %s", path);
		if (unlinkat(mfd, path, 0) < 0)
			return fail(w, "unlink %s: %s", path, strerror(errno));
		m->present = false;
		return 0;
	}
	if (t < 85 && m->present) {
		mode_t mode = 0600 | (mode_t)(rnd(8) << 3);
		note("chmod %s %o", path, mode);
		if (fchmodat(mfd, path, mode, 0) < 0)
			return fail(w, "chmod %s: %s", path, strerror(errno));
		m->mode = mode;
		return 0;
	}
	if (t < 92) {
		/* a directory, made and removed, with a file in it */
		snprintf(path2, sizeof(path2), "p%d/d%d", w, s);
		note("mkdir/rmdir %s", path2);
		if (mkdirat(mfd, path2, 0755) < 0)
			return fail(w, "mkdir %s: %s", path2, strerror(errno));
		strcat(path2, "/f");
		fd = openat(mfd, path2, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			return fail(w, "create %s: %s", path2, strerror(errno));
		close(fd);
		r = unlinkat(mfd, path2, 0);
		path2[strlen(path2) - 2] = '\0';
		if (r < 0 || unlinkat(mfd, path2, AT_REMOVEDIR) < 0)
			return fail(w, "rmdir %s: %s", path2, strerror(errno));
		return 0;
	}
	if (m->present) {
		/* a symlink beside the file, read back and removed */
		char target[80], got[80];
		ssize_t n;
		snprintf(path2, sizeof(path2), "p%d/l%d", w, s);
		snprintf(target, sizeof(target), "../%s", path);
		note("symlink %s", path2);
		if (symlinkat(target, mfd, path2) < 0)
			return fail(w, "symlink %s: %s", path2, strerror(errno));
		n = readlinkat(mfd, path2, got, sizeof(got) - 1);
		if (n < 0 || (got[n] = '\0', strcmp(got, target)))
			return fail(w, "readlink %s: wrong target", path2);
		if (unlinkat(mfd, path2, 0) < 0)
			return fail(w, "unlink %s: %s", path2, strerror(errno));
	}
	return 0;
}

static int model_file(const char *logdir, int w, const char *mode, FILE **f)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/p%d.model", logdir, w);
	*f = fopen(p, mode);
	return *f ? 0 : -1;
}

static int worker(const char *mnt, const char *logdir, int w, uint64_t seed, double secs)
{
	struct slot sl[SLOTS];
	unsigned char *buf = malloc(MAXSIZE * 4 + 1);
	int mfd = open(mnt, O_PATH | O_DIRECTORY);
	struct timespec t0, t1;
	char dir[32];
	long nops = 0;
	FILE *f;

	if (chdir(mnt) < 0 || mfd < 0 || !buf)
		return 2;
	rs = mix(seed * 7919 + w);
	snprintf(dir, sizeof(dir), "p%d", w);
	if (mkdirat(mfd, dir, 0755) < 0 && errno != EEXIST)
		return fail(w, "mkdir %s: %s", dir, strerror(errno));
	for (int s = 0; s < SLOTS; s++) {
		sl[s].data = malloc(MAXSIZE);
		sl[s].present = s < SLOTS / 2;
		sl[s].mode = 0644;
		sl[s].size = s < SLOTS / 2 ? lower_size(w, s) : 0;
		if (sl[s].present)
			fill(sl[s].data, sl[s].size, mix(w * 100 + s + 1));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < 100; i++)
			if (step(mfd, w, sl, buf, &nops))
				return 1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 < secs);
	for (int s = 0; s < SLOTS; s++) {
		char path[64];
		const char *why;
		path_of(w, s, path, sizeof(path));
		if ((why = compare(mfd, path, &sl[s], buf)))
			return fail(w, "final check %s: %s", path, why);
	}
	if (model_file(logdir, w, "w", &f) < 0)
		return 2;
	for (int s = 0; s < SLOTS; s++) {
		fprintf(f, "%d %zu %o\n", sl[s].present, sl[s].size, sl[s].mode);
		fwrite(sl[s].data, 1, sl[s].size, f);
	}
	fclose(f);
	printf("process %d: %ld operations\n", w, nops);
	fflush(stdout);
	return 0;
}

static int cmd_verify(const char *mnt, const char *logdir)
{
	unsigned char *buf = malloc(MAXSIZE + 1);
	int mfd = open(mnt, O_PATH | O_DIRECTORY), bad = 0;

	for (int w = 0; w < P; w++) {
		FILE *f;
		if (model_file(logdir, w, "r", &f) < 0)
			return fail(w, "no model saved");
		for (int s = 0; s < SLOTS; s++) {
			struct slot m = {.data = malloc(MAXSIZE)};
			int present;
			unsigned mode;
			char path[64];
			const char *why;
			if (fscanf(f, "%d %zu %o", &present, &m.size, &mode) != 3 ||
			    fgetc(f) != '\n' || fread(m.data, 1, m.size, f) != m.size)
				return fail(w, "bad model");
			m.present = present;
			m.mode = mode;
			path_of(w, s, path, sizeof(path));
			if ((why = compare(mfd, path, &m, buf)))
				bad = fail(w, "after remount %s: %s", path, why);
			free(m.data);
		}
		fclose(f);
	}
	return bad;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	uint64_t seed = 1;
	double secs = 10;
	int c, bad = 0;

	optind = 2;
	while ((c = getopt(argc, argv, "p:t:s:")) != -1) {
		if (c == 'p')
			P = atoi(optarg);
		else if (c == 't')
			secs = atof(optarg);
		else if (c == 's')
			seed = strtoull(optarg, NULL, 0);
		else
			return 2;
	}
	if (P < 1 || P > 64)
		return 2;
	if (!strcmp(cmd, "setup") && optind + 1 == argc)
		return cmd_setup(argv[optind]);
	if (!strcmp(cmd, "verify") && optind + 2 == argc)
		return cmd_verify(argv[optind], argv[optind + 1]);
	if (strcmp(cmd, "run") || optind + 2 != argc) {
		fprintf(stderr, "usage: stress setup|run|verify ...\n");
		return 2;
	}
	for (int w = 0; w < P; w++) {
		pid_t pid = fork();
		if (pid < 0)
			return 2;
		if (pid == 0)
			_exit(worker(argv[optind], argv[optind + 1], w, seed, secs));
	}
	for (int w = 0; w < P; w++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			bad = 1;
	}
	return bad;
}
