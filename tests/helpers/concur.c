/* concur: several processes creating, writing, renaming and deleting files
 * in the same directories of a mount at once; each logs the final state it
 * is responsible for, so the caller can merge the logs and compare the tree.
 *
 *   concur setup LOWER LOGDIR         builds the lower layer and its logs
 *   concur run [-p PROCS] [-n OPS] [-s SEED] MNT LOGDIR
 *   concur append-race [-p PROCS] [-n TAGS] FILE
 *
 * The layout: shared directories d1 and d2 (from the lower layer) and d3
 * (created by whichever worker gets there first).  Each worker owns the names
 * "wI-*" in them.  Contended names are "s-K": each holds at most one token, a
 * file whose first line is "token T gen G".  A worker claims a token by
 * renaming it to a name of its own (only one of several racing renames can
 * succeed), checks its content, bumps G and may put it back under a free
 * s-K with RENAME_NOREPLACE.  Every move bumps G, so the record with the
 * highest G of each token says where it is.  The lower files app-* are
 * appended to by every worker at once (concurrent copy-up); each logs the
 * lines it appended.
 *
 * Logs in LOGDIR: lower.tree and wI.files ("PATH f MD5" / "PATH d" lines),
 * lower.tokens and wI.tokens ("T G PATH MD5", PATH "-" once deleted),
 * wI.appends ("PATH LINE"). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/util.h"

#define N_SLOTS	  8  /* s-0..s-7 in each of d1 and d2 */
#define N_TOKENS  12 /* tokens start in the first 12 of the 16 slots */
#define HDR_LEN	  24 /* "token %04u gen %08u\n" */
#define MAX_ITEMS 4096

static const char *const shared_dirs[] = {"d1", "d2", "d3"};
static const char *const app_files[] = {"d1/app-0", "d2/app-1"};

struct pfile {
	char *path;
	uint8_t *data;
	size_t len;
};

struct ptoken {
	char *path;
	unsigned t, g;
};

struct token_rec {
	bool set;
	unsigned g;
	char path[256];
};

struct worker {
	int id;
	uint64_t rng;
	int mnt;      /* dirfd of the mount: every path is relative to it */
	unsigned seq; /* makes this worker's names unique */
	struct pfile files[MAX_ITEMS];
	size_t nfiles;
	char *dirs[64];
	size_t ndirs;
	struct ptoken toks[N_TOKENS];
	size_t ntoks;
	struct token_rec recs[N_TOKENS];
	FILE *appends;
	unsigned won, lost, placed, refused; /* outcomes of the races */
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(struct worker *w, uint64_t n)
{
	return n ? rnd(&w->rng) % n : 0;
}

static void die(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((noreturn));
static void die(struct worker *w, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "concur: worker %d: ", w ? w->id : -1);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void md5_hex(const uint8_t *p, size_t len, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_Digest(p, len, d, &n, EVP_md5(), NULL);
	for (unsigned i = 0; i < n && i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void fill(uint64_t *s, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd(s);
}

/* Token bodies: some large, so that copy-up of a claimed token takes a while. */
static size_t token_body_len(unsigned t)
{
	return t % 4 == 0 ? 512 * 1024 + t : 1000 + t * 517;
}

static uint8_t *token_content(unsigned t, unsigned g, size_t *len)
{
	size_t blen = token_body_len(t);
	uint8_t *p = malloc(HDR_LEN + blen + 1);
	uint64_t s = 0x70c0 + t;
	if (!p)
		die(NULL, "out of memory");
	snprintf((char *)p, HDR_LEN + 1, "token %04u gen %08u\n", t, g);
	fill(&s, p + HDR_LEN, blen);
	*len = HDR_LEN + blen;
	return p;
}

static void token_md5(unsigned t, unsigned g, char out[33])
{
	size_t len;
	_cleanup_free_ uint8_t *p = token_content(t, g, &len);
	md5_hex(p, len, out);
}

static int write_file_at(int dirfd, const char *path, int flags, const uint8_t *p, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_CLOEXEC | flags, 0644);
	if (fd < 0)
		return -errno;
	if (su_write_all(fd, p, len) != (ssize_t)len)
		return -errno;
	return 0;
}

/* ---- setup ---- */

static int cmd_setup(const char *lower, const char *logdir)
{
	_cleanup_free_ char *tree_path = su_asprintf("%s/lower.tree", logdir);
	_cleanup_free_ char *tok_path = su_asprintf("%s/lower.tokens", logdir);
	_cleanup_fclose_ FILE *tree = fopen(tree_path, "we");
	_cleanup_fclose_ FILE *toks = fopen(tok_path, "we");
	_cleanup_close_ int dfd = open(lower, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	char md5[33] = "";
	uint64_t s = 42;

	if (!tree || !toks || dfd < 0)
		die(NULL, "setup: %m");
	for (int d = 0; d < 2; d++) {
		if (mkdirat(dfd, shared_dirs[d], 0755) < 0)
			die(NULL, "mkdir %s: %m", shared_dirs[d]);
		fprintf(tree, "%s d\n", shared_dirs[d]);
	}
	for (unsigned t = 0; t < N_TOKENS; t++) {
		char path[64];
		size_t len;
		_cleanup_free_ uint8_t *p = token_content(t, 0, &len);
		snprintf(path, sizeof(path), "%s/s-%u", shared_dirs[t % 2], t / 2);
		if (write_file_at(dfd, path, O_CREAT | O_EXCL, p, len) < 0)
			die(NULL, "write %s: %m", path);
		md5_hex(p, len, md5);
		fprintf(toks, "%u 0 %s %s\n", t, path, md5);
	}
	/* Files nobody touches, and the files everybody appends to. */
	for (unsigned k = 0; k < 6; k++) {
		char path[64];
		uint8_t buf[3000];
		snprintf(path, sizeof(path), "%s/keep-%u", shared_dirs[k % 2], k);
		fill(&s, buf, sizeof(buf));
		if (write_file_at(dfd, path, O_CREAT | O_EXCL, buf, sizeof(buf)) < 0)
			die(NULL, "write %s: %m", path);
		md5_hex(buf, sizeof(buf), md5);
		fprintf(tree, "%s f %s\n", path, md5);
	}
	for (size_t k = 0; k < ARRAY_SIZE(app_files); k++) {
		static uint8_t buf[200 * 1024];
		fill(&s, buf, sizeof(buf));
		if (write_file_at(dfd, app_files[k], O_CREAT | O_EXCL, buf, sizeof(buf)) < 0)
			die(NULL, "write %s: %m", app_files[k]);
		fprintf(tree, "%s f APPEND\n", app_files[k]);
	}
	return 0;
}

/* ---- the worker ---- */

static const char *random_dir(struct worker *w)
{
	size_t n = ARRAY_SIZE(shared_dirs) + w->ndirs;
	size_t k = below(w, n);
	return k < ARRAY_SIZE(shared_dirs) ? shared_dirs[k] : w->dirs[k - ARRAY_SIZE(shared_dirs)];
}

static char *new_name(struct worker *w, const char *what)
{
	return su_asprintf("%s/w%d-%s%u", random_dir(w), w->id, what, w->seq++);
}

static void record_token(struct worker *w, unsigned t, unsigned g, const char *path)
{
	w->recs[t].set = true;
	w->recs[t].g = g;
	snprintf(w->recs[t].path, sizeof(w->recs[t].path), "%s", path);
}

static void random_content(struct worker *w, struct pfile *f, size_t len)
{
	free(f->data);
	f->data = malloc(len + 32);
	if (!f->data)
		die(w, "out of memory");
	int n = snprintf((char *)f->data, 32, "w%d-%u\n", w->id, w->seq++);
	fill(&w->rng, f->data + n, len);
	f->len = (size_t)n + len;
}

static void op_create(struct worker *w)
{
	if (w->nfiles == MAX_ITEMS)
		return;
	struct pfile *f = &w->files[w->nfiles];
	*f = (struct pfile){.path = new_name(w, "f")};
	random_content(w, f, below(w, 8192));
	if (write_file_at(w->mnt, f->path, O_CREAT | O_EXCL, f->data, f->len) < 0)
		die(w, "create %s: %m", f->path);
	w->nfiles++;
}

static void op_overwrite(struct worker *w)
{
	if (!w->nfiles)
		return;
	struct pfile *f = &w->files[below(w, w->nfiles)];
	random_content(w, f, below(w, 8192));
	if (write_file_at(w->mnt, f->path, O_TRUNC, f->data, f->len) < 0)
		die(w, "overwrite %s: %m", f->path);
}

static void op_append_private(struct worker *w)
{
	if (!w->nfiles)
		return;
	struct pfile *f = &w->files[below(w, w->nfiles)];
	size_t n = 1 + below(w, 2000);
	f->data = realloc(f->data, f->len + n);
	if (!f->data)
		die(w, "out of memory");
	fill(&w->rng, f->data + f->len, n);
	if (write_file_at(w->mnt, f->path, O_APPEND, f->data + f->len, n) < 0)
		die(w, "append to %s: %m", f->path);
	f->len += n;
}

static void op_verify(struct worker *w)
{
	if (!w->nfiles)
		return;
	struct pfile *f = &w->files[below(w, w->nfiles)];
	_cleanup_close_ int fd = openat(w->mnt, f->path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = malloc(f->len + 1);
	if (fd < 0)
		die(w, "open %s: %m", f->path);
	if (!buf)
		die(w, "out of memory");
	ssize_t r = su_read_all(fd, buf, f->len + 1);
	if (r != (ssize_t)f->len || memcmp(buf, f->data, f->len) != 0)
		die(w, "%s: read %zd bytes, expected %zu, or different content", f->path, r,
		    f->len);
}

static void op_rename_private(struct worker *w)
{
	if (!w->nfiles)
		return;
	struct pfile *f = &w->files[below(w, w->nfiles)];
	char *to = new_name(w, "f");
	if (renameat(w->mnt, f->path, w->mnt, to) < 0)
		die(w, "rename %s -> %s: %m", f->path, to);
	free(f->path);
	f->path = to;
}

static void op_unlink(struct worker *w)
{
	if (!w->nfiles)
		return;
	size_t k = below(w, w->nfiles);
	struct pfile *f = &w->files[k];
	if (unlinkat(w->mnt, f->path, 0) < 0)
		die(w, "unlink %s: %m", f->path);
	free(f->path);
	free(f->data);
	w->files[k] = w->files[--w->nfiles];
}

static void op_mkdir(struct worker *w)
{
	if (w->ndirs == ARRAY_SIZE(w->dirs))
		return;
	char *d = su_asprintf("%s/w%d-dir%u", shared_dirs[below(w, 3)], w->id, w->seq++);
	if (mkdirat(w->mnt, d, 0755) < 0)
		die(w, "mkdir %s: %m", d);
	w->dirs[w->ndirs++] = d;
}

/* Replaces the leading "from/" of *path with "to/". */
static void move_under(char **path, const char *from, const char *to)
{
	size_t n = strlen(from);
	if (strncmp(*path, from, n) != 0 || (*path)[n] != '/')
		return;
	char *p = su_asprintf("%s%s", to, *path + n);
	free(*path);
	*path = p;
}

static void op_rename_dir(struct worker *w)
{
	if (!w->ndirs)
		return;
	size_t k = below(w, w->ndirs);
	char *to = su_asprintf("%s/w%d-dir%u", shared_dirs[below(w, 3)], w->id, w->seq++);
	char *from = w->dirs[k];
	if (renameat(w->mnt, from, w->mnt, to) < 0)
		die(w, "rename directory %s -> %s: %m", from, to);
	for (size_t i = 0; i < w->nfiles; i++)
		move_under(&w->files[i].path, from, to);
	for (size_t i = 0; i < w->ntoks; i++)
		move_under(&w->toks[i].path, from, to);
	w->dirs[k] = to;
	free(from);
}

static void op_rmdir(struct worker *w)
{
	if (!w->ndirs)
		return;
	size_t k = below(w, w->ndirs);
	char *d = w->dirs[k];
	size_t n = strlen(d);
	for (size_t i = 0; i < w->nfiles; i++)
		if (strncmp(w->files[i].path, d, n) == 0 && w->files[i].path[n] == '/')
			return;
	for (size_t i = 0; i < w->ntoks; i++)
		if (strncmp(w->toks[i].path, d, n) == 0 && w->toks[i].path[n] == '/')
			return;
	if (unlinkat(w->mnt, d, AT_REMOVEDIR) < 0)
		die(w, "rmdir %s: %m", d);
	free(d);
	w->dirs[k] = w->dirs[--w->ndirs];
}

static char *slot_name(struct worker *w)
{
	return su_asprintf("%s/s-%u", shared_dirs[below(w, 2)], (unsigned)below(w, N_SLOTS));
}

/* Renames whatever token sits at a random s-K to a name of this worker's;
 * when another worker wins the race, ENOENT. */
static void op_claim(struct worker *w)
{
	if (w->ntoks == N_TOKENS)
		return;
	_cleanup_free_ char *slot = slot_name(w);
	char *to = new_name(w, "t");
	if (renameat(w->mnt, slot, w->mnt, to) < 0) {
		if (errno != ENOENT)
			die(w, "rename %s -> %s: %m", slot, to);
		free(to);
		w->lost++;
		return;
	}
	w->won++;
	_cleanup_close_ int fd = openat(w->mnt, to, O_RDWR | O_CLOEXEC);
	char hdr[HDR_LEN + 1] = "";
	unsigned t, g;
	if (fd < 0)
		die(w, "open claimed token %s (was %s): %m", to, slot);
	if (pread(fd, hdr, HDR_LEN, 0) != HDR_LEN || sscanf(hdr, "token %u gen %u", &t, &g) != 2 ||
	    t >= N_TOKENS)
		die(w, "claimed %s (was %s): not a token: \"%.24s\"", to, slot, hdr);
	size_t len;
	_cleanup_free_ uint8_t *want = token_content(t, g, &len);
	_cleanup_free_ uint8_t *got = malloc(len + 1);
	if (!got)
		die(w, "out of memory");
	ssize_t r = su_read_all(fd, got, len + 1);
	if (r != (ssize_t)len || memcmp(got, want, len) != 0)
		die(w, "token %u gen %u at %s (was %s): %zd bytes, expected %zu, or wrong content",
		    t, g, to, slot, r, len);
	snprintf(hdr, sizeof(hdr), "token %04u gen %08u\n", t, g + 1);
	if (pwrite(fd, hdr, HDR_LEN, 0) != HDR_LEN)
		die(w, "rewrite token header of %s: %m", to);
	w->toks[w->ntoks++] = (struct ptoken){.path = to, .t = t, .g = g + 1};
	record_token(w, t, g + 1, to);
}

/* Puts a token back under a free s-K; RENAME_NOREPLACE keeps it from
 * replacing another token. */
static void op_place(struct worker *w)
{
	if (!w->ntoks)
		return;
	size_t k = below(w, w->ntoks);
	struct ptoken *tk = &w->toks[k];
	_cleanup_free_ char *slot = slot_name(w);
	if (renameat2(w->mnt, tk->path, w->mnt, slot, RENAME_NOREPLACE) < 0) {
		if (errno != EEXIST)
			die(w, "rename %s -> %s (RENAME_NOREPLACE): %m", tk->path, slot);
		w->refused++;
		return;
	}
	w->placed++;
	record_token(w, tk->t, tk->g, slot);
	free(tk->path);
	w->toks[k] = w->toks[--w->ntoks];
}

/* Rare, or the tokens would soon all be gone and the races with them. */
static void op_delete_token(struct worker *w)
{
	if (!w->ntoks || below(w, 10))
		return;
	size_t k = below(w, w->ntoks);
	struct ptoken *tk = &w->toks[k];
	if (unlinkat(w->mnt, tk->path, 0) < 0)
		die(w, "unlink token %s: %m", tk->path);
	record_token(w, tk->t, tk->g + 1, "-");
	free(tk->path);
	w->toks[k] = w->toks[--w->ntoks];
}

/* Appends one line to a lower file every worker appends to. */
static void op_append_shared(struct worker *w)
{
	const char *path = app_files[below(w, ARRAY_SIZE(app_files))];
	char line[32];
	int n = snprintf(line, sizeof(line), "w%02d-%06u\n", w->id, w->seq++);
	if (write_file_at(w->mnt, path, O_APPEND, (uint8_t *)line, (size_t)n) < 0)
		die(w, "append to %s: %m", path);
	fprintf(w->appends, "%s %.*s\n", path, n - 1, line);
}

static void write_logs(struct worker *w, const char *logdir)
{
	_cleanup_free_ char *fp = su_asprintf("%s/w%d.files", logdir, w->id);
	_cleanup_free_ char *tp = su_asprintf("%s/w%d.tokens", logdir, w->id);
	_cleanup_fclose_ FILE *ff = fopen(fp, "we");
	_cleanup_fclose_ FILE *tf = fopen(tp, "we");
	char md5[33] = "";
	if (!ff || !tf)
		die(w, "writing logs: %m");
	/* Tokens still held may have moved with a renamed directory. */
	for (size_t i = 0; i < w->ntoks; i++)
		record_token(w, w->toks[i].t, w->toks[i].g, w->toks[i].path);
	for (size_t i = 0; i < w->nfiles; i++) {
		md5_hex(w->files[i].data, w->files[i].len, md5);
		fprintf(ff, "%s f %s\n", w->files[i].path, md5);
	}
	for (size_t i = 0; i < w->ndirs; i++)
		fprintf(ff, "%s d\n", w->dirs[i]);
	for (unsigned t = 0; t < N_TOKENS; t++) {
		if (!w->recs[t].set)
			continue;
		token_md5(t, w->recs[t].g, md5);
		fprintf(tf, "%u %u %s %s\n", t, w->recs[t].g, w->recs[t].path, md5);
	}
	if (fflush(ff) != 0 || fflush(tf) != 0)
		die(w, "writing logs: %m");
}

static void (*const ops[])(struct worker *) = {
    op_create,	       op_create,	  op_create,	     op_overwrite,	op_overwrite,
    op_append_private, op_rename_private, op_rename_private, op_rename_private, op_unlink,
    op_unlink,	       op_verify,	  op_verify,	     op_mkdir,		op_rename_dir,
    op_rmdir,	       op_claim,	  op_claim,	     op_claim,		op_claim,
    op_place,	       op_place,	  op_place,	     op_delete_token,	op_append_shared,
    op_append_shared,  op_append_shared,
};

static int worker_main(int id, uint64_t seed, unsigned nops, const char *mnt, const char *logdir,
		       int barrier)
{
	struct worker *w = calloc(1, sizeof(*w));
	char c;
	if (!w)
		die(NULL, "out of memory");
	w->id = id;
	w->rng = seed * 1000 + (uint64_t)id;
	w->mnt = open(mnt, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (w->mnt < 0)
		die(w, "open %s: %m", mnt);
	_cleanup_free_ char *ap = su_asprintf("%s/w%d.appends", logdir, id);
	w->appends = fopen(ap, "we");
	if (!w->appends)
		die(w, "%s: %m", ap);
	/* Everybody starts at once: the parent closes the pipe. */
	if (read(barrier, &c, 1) < 0)
		die(w, "barrier: %m");
	if (mkdirat(w->mnt, "d3", 0755) < 0 && errno != EEXIST)
		die(w, "mkdir d3: %m");
	for (unsigned i = 0; i < nops; i++)
		ops[below(w, ARRAY_SIZE(ops))](w);
	write_logs(w, logdir);
	printf("concur: worker %d: claims won %u lost %u, places done %u refused %u\n", id, w->won,
	       w->lost, w->placed, w->refused);
	fflush(stdout);
	if (fclose(w->appends) != 0)
		die(w, "%s: %m", ap);
	return 0;
}

/* Forks n children running fn(i, arg) after a common start signal; returns
 * the number that failed. */
static int fork_all(int n, int (*fn)(int, const void *, int), const void *arg)
{
	int p[2], failed = 0;
	pid_t pids[64];
	if (n < 1 || n > 64 || pipe(p) < 0)
		die(NULL, "bad process count or pipe: %m");
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die(NULL, "fork: %m");
		if (pids[i] == 0) {
			close(p[1]);
			_exit(fn(i, arg, p[0]));
		}
	}
	close(p[0]);
	close(p[1]);
	for (int i = 0; i < n; i++) {
		int st;
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "concur: process %d failed (status 0x%x)\n", i, st);
			failed++;
		}
	}
	return failed;
}

struct run_args {
	uint64_t seed;
	unsigned nops, ntags;
	const char *mnt, *logdir, *file;
};

static int run_one(int i, const void *arg, int barrier)
{
	const struct run_args *a = arg;
	return worker_main(i, a->seed, a->nops, a->mnt, a->logdir, barrier);
}

/* Each process appends "tag-I-K" lines to one file, each through an open of
 * its own; the first opens race the copy-up of the file. */
static int append_one(int i, const void *arg, int barrier)
{
	const struct run_args *a = arg;
	char c, line[32];
	if (read(barrier, &c, 1) < 0)
		return 1;
	for (unsigned k = 0; k < a->ntags; k++) {
		int n = snprintf(line, sizeof(line), "tag-%d-%u\n", i, k);
		if (write_file_at(AT_FDCWD, a->file, O_APPEND, (uint8_t *)line, (size_t)n) < 0) {
			fprintf(stderr, "concur: append to %s: %m\n", a->file);
			return 1;
		}
	}
	return 0;
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr, "usage: concur setup LOWER LOGDIR\n"
			"       concur run [-p PROCS] [-n OPS] [-s SEED] MNT LOGDIR\n"
			"       concur append-race [-p PROCS] [-n TAGS] FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct run_args a = {.seed = 1, .nops = 2000, .ntags = 4};
	int procs = 6, c;
	if (argc < 2)
		usage();
	const char *cmd = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "p:n:s:")) != -1) {
		switch (c) {
		case 'p':
			procs = atoi(optarg);
			break;
		case 'n':
			a.nops = a.ntags = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 's':
			a.seed = strtoull(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (strcmp(cmd, "setup") == 0 && optind + 2 == argc)
		return cmd_setup(argv[optind], argv[optind + 1]);
	if (strcmp(cmd, "run") == 0 && optind + 2 == argc) {
		a.mnt = argv[optind];
		a.logdir = argv[optind + 1];
		printf("concur: seed %" PRIu64 ", %d processes, %u operations each\n", a.seed,
		       procs, a.nops);
		fflush(stdout);
		return fork_all(procs, run_one, &a) ? 1 : 0;
	}
	if (strcmp(cmd, "append-race") == 0 && optind + 1 == argc) {
		a.file = argv[optind];
		return fork_all(procs, append_one, &a) ? 1 : 0;
	}
	usage();
}
