/* crashwork: the workload and the checker of tests/fault/crash.t.  Worker
 * processes replace, patch, rename, link and unlink their own files on a
 * strata-fs mount until the daemon is killed under them; each logs every
 * operation before ("B ...") and after ("D") doing it.  The checker replays
 * the logs over the last known state and requires every file to hold either
 * its content before the operation in flight or after it -- never anything
 * else -- and every completed operation to be there.
 *
 *   crashwork setup [-p P] [-k K] [-b MB] LOWER STATE   lower files, first state
 *   crashwork run [-p P] [-k K] [-s SEED] MNT STATE LOGDIR
 *   crashwork check [-p P] [-k K] MNT STATE LOGDIR NEWSTATE
 *
 * Names are dN/wW-K (N = K % 4); worker W touches only its own names, so
 * the operations on one name are ordered by one log.  A content is
 * "seed size patch": size pseudo-random bytes of seed, the first 4 KiB
 * replaced by bytes of patch when patch is not 0.  Exit status: 0 when all
 * is well (run: ended by the mount going away), 1 on a violation, 2 on a
 * usage or setup error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

#define PATCH_LEN 4096
#define CHUNK	  (1 << 20)
#define MAXNAMES  1024

struct spec {
	uint64_t seed, size, patch;
};

enum op_type { OP_REPLACE, OP_PATCH, OP_RENAME, OP_LINK, OP_UNLINK, OP_NTYPES };
static const char op_chars[] = "RPMLU";

struct op {
	enum op_type type;
	int a, b;
	struct spec s; /* REPLACE: the new content; PATCH: s.patch */
};

/* names[i] is the inode index of name i or -1; inodes hold the contents */
struct model {
	int nnames;
	int names[MAXNAMES];
	struct spec *ino;
	int nino, capino;
};

static int P = 4, K = 24;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rnd_state;
static uint64_t rnd(uint64_t n)
{
	rnd_state = mix(rnd_state);
	return n ? rnd_state % n : 0;
}

/* Fills buf with the bytes [off, off+len) of content s. */
static void gen(const struct spec *s, uint64_t off, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t p = off + i;
		uint64_t seed = s->patch && p < PATCH_LEN ? s->patch : s->seed;
		buf[i] = (unsigned char)(mix(seed * 0x100000001b3ull + p / 8) >> (8 * (p % 8)));
	}
}

static void name_of(int i, char *buf, size_t len)
{
	int k = i % K;
	snprintf(buf, len, "d%d/w%d-%d", k % 4, i / K, k);
}

static int new_ino(struct model *m, struct spec s)
{
	if (m->nino == m->capino) {
		m->capino = m->capino ? 2 * m->capino : 64;
		m->ino = realloc(m->ino, m->capino * sizeof(*m->ino));
		if (!m->ino)
			die("out of memory");
	}
	m->ino[m->nino] = s;
	return m->nino++;
}

static void apply(struct model *m, const struct op *o)
{
	struct spec *s;

	switch (o->type) {
	case OP_REPLACE:
		m->names[o->a] = new_ino(m, o->s);
		break;
	case OP_PATCH:
		/* copy the inode: the pre-state keeps the old one */
		s = &m->ino[m->names[o->a]];
		{
			struct spec n = *s;
			int old = m->names[o->a];
			int ni;
			if (n.size < PATCH_LEN)
				n.size = PATCH_LEN;
			n.patch = o->s.patch;
			ni = new_ino(m, n);
			for (int i = 0; i < m->nnames; i++)
				if (m->names[i] == old)
					m->names[i] = ni;
		}
		break;
	case OP_RENAME:
		m->names[o->b] = m->names[o->a];
		m->names[o->a] = -1;
		break;
	case OP_LINK:
		m->names[o->b] = m->names[o->a];
		break;
	case OP_UNLINK:
		m->names[o->a] = -1;
		break;
	default:
		break;
	}
}

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->nnames = P * K;
	if (m->nnames > MAXNAMES)
		die("too many names");
	for (int i = 0; i < m->nnames; i++)
		m->names[i] = -1;
}

static void model_copy(struct model *dst, const struct model *src)
{
	free(dst->ino);
	*dst = *src;
	dst->ino = malloc((src->capino ? src->capino : 1) * sizeof(*dst->ino));
	if (!dst->ino)
		die("out of memory");
	memcpy(dst->ino, src->ino, src->nino * sizeof(*dst->ino));
}

/* State file: "NAME GROUP SEED SIZE PATCH" per present name; names of one
 * group are hard links of one inode. */
static void state_load(struct model *m, const char *path)
{
	FILE *f = fopen(path, "r");
	char name[64], want[64];
	int group, gmap[MAXNAMES];
	struct spec s;

	if (!f)
		die("%s: %s", path, strerror(errno));
	model_init(m);
	for (int i = 0; i < MAXNAMES; i++)
		gmap[i] = -1;
	while (fscanf(f, "%63s %d %" SCNu64 " %" SCNu64 " %" SCNu64, name, &group, &s.seed, &s.size,
		      &s.patch) == 5) {
		int i;
		for (i = 0; i < m->nnames; i++) {
			name_of(i, want, sizeof(want));
			if (!strcmp(want, name))
				break;
		}
		if (i == m->nnames || group < 0 || group >= MAXNAMES)
			die("%s: bad entry %s", path, name);
		if (gmap[group] < 0)
			gmap[group] = new_ino(m, s);
		m->names[i] = gmap[group];
	}
	fclose(f);
}

static void state_save(const struct model *m, const char *path)
{
	FILE *f = fopen(path, "w");
	char name[64];

	if (!f)
		die("%s: %s", path, strerror(errno));
	for (int i = 0; i < m->nnames; i++) {
		const struct spec *s;
		if (m->names[i] < 0)
			continue;
		s = &m->ino[m->names[i]];
		name_of(i, name, sizeof(name));
		fprintf(f, "%s %d %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", name, m->names[i],
			s->seed, s->size, s->patch);
	}
	if (fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

static int write_content(int dirfd, const char *name, const struct spec *s, int flags)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | flags, 0644);
	_cleanup_free_ unsigned char *buf = malloc(CHUNK);

	if (fd < 0 || !buf)
		return -errno;
	for (uint64_t off = 0; off < s->size; off += CHUNK) {
		size_t n = s->size - off < CHUNK ? s->size - off : CHUNK;
		gen(s, off, buf, n);
		if (su_write_all(fd, buf, n) < 0)
			return -errno;
	}
	return close(su_steal_fd(&fd)) < 0 ? -errno : 0;
}

/* 1 when dirfd/name holds exactly s, 0 when not, -errno when unreadable. */
static int matches(int dirfd, const char *name, const struct spec *s)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW);
	_cleanup_free_ unsigned char *a = malloc(CHUNK), *b = malloc(CHUNK);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (!a || !b)
		return -ENOMEM;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != s->size)
		return 0;
	for (uint64_t off = 0; off < s->size; off += CHUNK) {
		size_t n = s->size - off < CHUNK ? s->size - off : CHUNK;
		ssize_t got = su_read_all(fd, a, n);
		if (got < 0)
			return -errno;
		gen(s, off, b, n);
		if ((size_t)got != n || memcmp(a, b, n))
			return 0;
	}
	return 1;
}

static int cmd_setup(const char *lower, const char *state, int bigmb)
{
	struct model m;
	int dfd;

	model_init(&m);
	dfd = open(lower, O_PATH | O_DIRECTORY);
	if (dfd < 0)
		die("%s: %s", lower, strerror(errno));
	for (int d = 0; d < 4; d++) {
		char dn[16];
		snprintf(dn, sizeof(dn), "d%d", d);
		if (mkdirat(dfd, dn, 0755) < 0 && errno != EEXIST)
			die("mkdir %s: %s", dn, strerror(errno));
	}
	rnd_state = 42;
	for (int w = 0; w < P; w++)
		for (int k = 0; k < K / 2; k++) {
			int i = w * K + k;
			char name[64];
			struct spec s = {mix(i + 1000), 0, 0};

			name_of(i, name, sizeof(name));
			if (k == 11) {
				/* a hard link in the lower, to its neighbour */
				char prev[64];
				name_of(i - 1, prev, sizeof(prev));
				if (linkat(dfd, prev, dfd, name, 0) < 0)
					die("link %s: %s", name, strerror(errno));
				m.names[i] = m.names[i - 1];
				continue;
			}
			s.size = k % 2 == 0 ? (uint64_t)bigmb << 20 : rnd(200000);
			if (write_content(dfd, name, &s, O_EXCL) < 0)
				die("write %s: %s", name, strerror(errno));
			m.names[i] = new_ino(&m, s);
		}
	state_save(&m, state);
	return 0;
}

static void log_line(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(int fd, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(fd, buf, n) != n)
		die("log: %s", strerror(errno));
}

static int do_op(int mfd, int w, const struct op *o)
{
	char a[64], b[64], tmp[64];
	int r = 0;

	name_of(o->a, a, sizeof(a));
	if (o->b >= 0)
		name_of(o->b, b, sizeof(b));
	switch (o->type) {
	case OP_REPLACE:
		snprintf(tmp, sizeof(tmp), "d%d/.tmp-w%d", o->a % K % 4, w);
		r = write_content(mfd, tmp, &o->s, O_TRUNC);
		if (r == 0 && renameat(mfd, tmp, mfd, a) < 0)
			r = -errno;
		break;
	case OP_PATCH: {
		struct spec p = {0, PATCH_LEN, o->s.patch};
		unsigned char buf[PATCH_LEN];
		_cleanup_close_ int fd = openat(mfd, a, O_WRONLY);
		gen(&p, 0, buf, sizeof(buf));
		if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf) ||
		    close(su_steal_fd(&fd)) < 0)
			r = -errno;
		break;
	}
	case OP_RENAME:
		r = renameat(mfd, a, mfd, b) < 0 ? -errno : 0;
		break;
	case OP_LINK:
		r = linkat(mfd, a, mfd, b, 0) < 0 ? -errno : 0;
		break;
	case OP_UNLINK:
		r = unlinkat(mfd, a, 0) < 0 ? -errno : 0;
		break;
	default:
		break;
	}
	return r;
}

/* Picks one operation of worker w valid in m. */
static void pick(const struct model *m, int w, struct op *o)
{
	int base = w * K, cand[MAXNAMES], nc = 0;

	/* a third of the time, patch a large file never patched: on a lower
	 * file that is a long copy-up for the kill to interrupt */
	for (int i = base; i < base + K; i++)
		if (m->names[i] >= 0 && !m->ino[m->names[i]].patch &&
		    m->ino[m->names[i]].size >= (1 << 20))
			cand[nc++] = i;
	if (nc && rnd(3) == 0) {
		o->type = OP_PATCH;
		o->a = cand[rnd(nc)];
		o->b = -1;
		memset(&o->s, 0, sizeof(o->s));
		o->s.patch = mix(rnd_state) | 1;
		return;
	}
	for (;;) {
		int t = (int)rnd(100);
		o->a = base + (int)rnd(K);
		o->b = -1;
		memset(&o->s, 0, sizeof(o->s));
		if (t < 25) {
			uint64_t c = rnd(100);
			o->type = OP_REPLACE;
			o->s.seed = mix(rnd_state) | 1;
			o->s.size = c < 70   ? rnd(65536)
				    : c < 95 ? rnd(1 << 20)
					     : (4 << 20) + rnd(4 << 20);
			return;
		}
		if (m->names[o->a] < 0)
			continue;
		if (t < 55) {
			o->type = OP_PATCH;
			o->s.patch = mix(rnd_state) | 1;
			return;
		}
		if (t < 90) {
			o->b = base + (int)rnd(K);
			if (o->b == o->a || m->names[o->b] == m->names[o->a])
				continue;
			o->type = t < 75 ? OP_RENAME : OP_LINK;
			if (o->type == OP_LINK && m->names[o->b] >= 0)
				continue;
			return;
		}
		o->type = OP_UNLINK;
		return;
	}
}

/* Whether the mount behind mfd has lost its daemon.  statfs always asks
 * the daemon (attributes would come from the kernel's cache). */
static bool mount_dead(int mfd)
{
	struct statfs sf;

	for (int i = 0; i < 50; i++) {
		if (fstatfs(mfd, &sf) < 0 && (errno == ENOTCONN || errno == ECONNABORTED))
			return true;
		usleep(20000);
	}
	return false;
}

static int worker(const char *mnt, const char *state, const char *logdir, int w, uint64_t seed)
{
	struct model m;
	char path[4096];
	int mfd, lfd;
	long n = 0;

	state_load(&m, state);
	rnd_state = mix(seed * 131 + w);
	snprintf(path, sizeof(path), "%s/w%d.log", logdir, w);
	lfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	mfd = open(mnt, O_PATH | O_DIRECTORY);
	if (lfd < 0 || mfd < 0)
		die("%s: %s", lfd < 0 ? path : mnt, strerror(errno));
	for (;;) {
		struct op o;
		int r;

		pick(&m, w, &o);
		log_line(lfd, "B %c %d %d %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", op_chars[o.type],
			 o.a, o.b, o.s.seed, o.s.size, o.s.patch);
		r = do_op(mfd, w, &o);
		if (r < 0) {
			log_line(lfd, "F %d\n", -r);
			/* the daemon is gone: the only way a run ends.  A read
			 * in flight when the connection aborts fails its page
			 * with EIO; that counts only if the mount is dead now. */
			if (r == -ENOTCONN || r == -ECONNABORTED)
				break;
			if (r == -EIO && mount_dead(mfd))
				break;
			fprintf(stderr, "worker %d: operation %c on %d failed: %s\n", w,
				op_chars[o.type], o.a, strerror(-r));
			return 1;
		}
		log_line(lfd, "D\n");
		apply(&m, &o);
		n++;
	}
	printf("worker %d: %ld operations\n", w, n);
	fflush(stdout);
	return 0;
}

static int cmd_run(const char *mnt, const char *state, const char *logdir, uint64_t seed)
{
	int bad = 0;

	for (int w = 0; w < P; w++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			fflush(stdout);
			_exit(worker(mnt, state, logdir, w, seed));
		}
	}
	for (int w = 0; w < P; w++) {
		int st;
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = 1;
	}
	return bad;
}

/* Replays worker w's log over m; the operation in flight (begun, not
 * done) goes to *pending (type -1 when none).  Returns completed ops. */
static long replay(struct model *m, const char *logdir, int w, struct op *pending)
{
	char path[4096], line[256];
	FILE *f;
	long n = 0;
	struct op o = {.type = -1};

	pending->type = -1;
	snprintf(path, sizeof(path), "%s/w%d.log", logdir, w);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char c;
		if (line[0] == 'B' &&
		    sscanf(line, "B %c %d %d %" SCNu64 " %" SCNu64 " %" SCNu64, &c, &o.a, &o.b,
			   &o.s.seed, &o.s.size, &o.s.patch) == 6) {
			const char *t = strchr(op_chars, c);
			if (!t || !c)
				continue;
			o.type = (enum op_type)(t - op_chars);
			*pending = o;
		} else if (line[0] == 'D' && (int)pending->type >= 0) {
			apply(m, pending);
			pending->type = -1;
			n++;
		}
		/* "F": failed, but it may have reached the upper: stays pending */
	}
	fclose(f);
	return n;
}

static int cmd_check(const char *mnt, const char *state, const char *logdir, const char *newstate)
{
	struct model m, post, seen, out;
	bool uncertain[MAXNAMES] = {false};
	int mfd = open(mnt, O_PATH | O_DIRECTORY);
	long ops = 0, lost = 0, bad = 0, inflight = 0, tmps = 0;
	ino_t inos[MAXNAMES];

	if (mfd < 0)
		die("%s: %s", mnt, strerror(errno));
	state_load(&m, state);
	model_init(&seen);
	memset(&post, 0, sizeof(post));
	for (int w = 0; w < P; w++) {
		struct op o;

		ops += replay(&m, logdir, w, &o);
		if ((int)o.type < 0)
			continue;
		inflight++;
		/* the names it may have changed (a, b, a's hard links) get their
		 * state after it as the alternative */
		model_copy(&post, &m);
		apply(&post, &o);
		for (int i = w * K; i < (w + 1) * K; i++) {
			if (post.names[i] == m.names[i])
				continue;
			uncertain[i] = true;
			seen.names[i] =
			    post.names[i] < 0 ? -1 : new_ino(&seen, post.ino[post.names[i]]);
		}
	}

	/* every name: the model's content, or (in flight) the other one */
	model_init(&out);
	for (int i = 0; i < m.nnames; i++) {
		char name[64];
		struct stat st;
		int have = fstatat(mfd, (name_of(i, name, sizeof(name)), name), &st,
				   AT_SYMLINK_NOFOLLOW) == 0;
		const struct spec *want = m.names[i] >= 0 ? &m.ino[m.names[i]] : NULL;
		const struct spec *alt =
		    uncertain[i] && seen.names[i] >= 0 ? &seen.ino[seen.names[i]] : NULL;
		bool alt_absent = uncertain[i] && seen.names[i] < 0;
		const struct spec *got = NULL;
		bool ok = false;

		if (!have && errno != ENOENT) {
			printf("%s: stat: %s\n", name, strerror(errno));
			bad++;
			continue;
		}
		if (!have) {
			ok = !want || alt_absent;
		} else {
			if (want && matches(mfd, name, want) == 1)
				got = want;
			else if (alt && matches(mfd, name, alt) == 1)
				got = alt;
			ok = got != NULL;
		}
		if (!ok) {
			printf("%s: %s; expected %s%s%s\n", name,
			       have ? "content is neither the old nor the new" : "missing",
			       want ? "content" : "absent", uncertain[i] ? " or " : "",
			       uncertain[i] ? (alt ? "the new content" : "absent") : "");
			if (want) {
				printf("  want seed %" PRIu64 " size %" PRIu64 " patch %" PRIu64
				       ", size found %lld\n",
				       want->seed, want->size, want->patch,
				       have ? (long long)st.st_size : -1LL);
				lost += want->size;
			}
			bad++;
			/* carry on from what is there, as a new content */
			if (!have)
				continue;
			got = NULL;
		}
		if (!have)
			continue;
		inos[i] = st.st_ino;
		for (int j = 0; j < i; j++)
			if (out.names[j] >= 0 && inos[j] == st.st_ino) {
				out.names[i] = out.names[j];
				break;
			}
		if (out.names[i] < 0) {
			struct spec s = got ? *got : (struct spec){0, 0, 0};
			if (!got) {
				/* unknown bytes: replace them so later rounds stay checkable */
				s = (struct spec){mix(i + 7777) | 1, 1000, 0};
				if (write_content(mfd, name, &s, O_TRUNC) < 0)
					printf("%s: cannot rewrite\n", name);
			}
			out.names[i] = new_ino(&out, s);
		} else if (got && memcmp(got, &out.ino[out.names[i]], sizeof(*got))) {
			printf("%s: same inode as a hard link with other content\n", name);
			bad++;
		}
	}

	/* no names but ours: a temporary of the daemon must never show */
	for (int d = 0; d < 4; d++) {
		char dn[8];
		DIR *dir;
		struct dirent *de;
		int dfd;

		snprintf(dn, sizeof(dn), "d%d", d);
		dfd = openat(mfd, dn, O_RDONLY | O_DIRECTORY);
		dir = dfd < 0 ? NULL : fdopendir(dfd);
		if (!dir) {
			printf("%s: %s\n", dn, strerror(errno));
			bad++;
			continue;
		}
		while ((de = readdir(dir))) {
			int w, k;
			char extra;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (sscanf(de->d_name, ".tmp-w%d%c", &w, &extra) == 1) {
				/* the workload's own temporary: removed */
				unlinkat(dfd, de->d_name, 0);
				tmps++;
				continue;
			}
			if (sscanf(de->d_name, "w%d-%d%c", &w, &k, &extra) == 2 && w >= 0 &&
			    w < P && k >= 0 && k < K && k % 4 == d)
				continue;
			printf("%s/%s: unexpected entry\n", dn, de->d_name);
			bad++;
		}
		closedir(dir);
	}
	state_save(&out, newstate);
	printf("checked: %ld operations completed, %ld in flight, %ld workload temporaries, "
	       "%ld bad, %ld bytes lost\n",
	       ops, inflight, tmps, bad, lost);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = 1;
	int bigmb = 16, c;

	if (argc < 2)
		die("usage: crashwork setup|run|check ...");
	optind = 2;
	while ((c = getopt(argc, argv, "p:k:s:b:")) != -1) {
		switch (c) {
		case 'p':
			P = atoi(optarg);
			break;
		case 'k':
			K = atoi(optarg);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'b':
			bigmb = atoi(optarg);
			break;
		default:
			die("bad option");
		}
	}
	if (P < 1 || K < 12 || P * K > MAXNAMES)
		die("bad -p/-k");
	argv += optind;
	argc -= optind;
	if (!strcmp(argv[-optind + 1], "setup") && argc == 2)
		return cmd_setup(argv[0], argv[1], bigmb);
	if (!strcmp(argv[-optind + 1], "run") && argc == 3)
		return cmd_run(argv[0], argv[1], argv[2], seed);
	if (!strcmp(argv[-optind + 1], "check") && argc == 4)
		return cmd_check(argv[0], argv[1], argv[2], argv[3]);
	die("usage: crashwork setup|run|check ...");
}
