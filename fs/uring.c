/* fs/uring.c: FUSE over io_uring.  Through /dev/fuse every request wakes
 * whichever daemon thread reads next, usually on the other CPU, and its
 * reply wakes the program back across CPUs: on a virtual machine each of
 * those wake-ups is an interrupt between virtual CPUs, and they cost more
 * than the work.  With io_uring (Linux 6.14, fuse module parameter
 * enable_uring) the kernel keeps one queue per CPU and hands a request to
 * the queue of the CPU the program runs on; here each queue has threads
 * pinned to that CPU (UR_THREADS, one ring each), so request and reply
 * stay on one CPU.  A thread about to wait for the disk watches for the
 * data instead of sleeping, for a moment (sfs_await_cached).
 *
 * libfuse 3.14 knows nothing of it, so the daemon does the transport and
 * lets libfuse do the rest: a request found in a ring entry is laid out as
 * /dev/fuse would have delivered it and given to fuse_session_process_buf;
 * its reply, which libfuse sends through the session's I/O hooks
 * (passthrough.c), is copied into the entry and committed, which also asks
 * for the next request.  FORGET, INTERRUPT and notifications keep using
 * /dev/fuse, whose loop keeps running.
 *
 * The offer is accepted in the INIT reply only once every queue's ring,
 * buffers and thread exist, since from then on the kernel holds new
 * requests until every queue has registered; a queue that cannot register
 * makes the kernel fall back to /dev/fuse by itself. */
#include "fs/sfs.h"

#include <ctype.h>
#include <liburing.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Protocol 7.42 values, absent from bookworm's headers. */
#define UR_FLAGS2_OVER_IO_URING (1u << (41 - 32))
#define UR_CMD_REGISTER		1
#define UR_CMD_COMMIT_AND_FETCH 2
#define UR_IN_HDR		40 /* fuse_in_header */
#define UR_OUT_HDR		16 /* fuse_out_header */
#define UR_INIT_OUT_MAX_WRITE	20
#define UR_INIT_OUT_MAX_PAGES	28
#define UR_MIN_PAYLOAD		8192 /* the kernel's FUSE_MIN_READ_BUFFER */

/* Threads per queue, each with a ring of its own and UR_ENTRIES entries
 * on the queue.  The kernel hands a request to the entry that came back
 * last, so a program's stream of requests is served by one thread, and
 * the others take the CPU's requests while it waits for the disk. */
#define UR_THREADS    4
#define UR_ENTRIES    1
#define UR_MAX_QUEUES 64

struct ur_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* the request's unique */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

/* The header buffer of an entry, shared with the kernel. */
struct ur_req_header {
	char in_out[128]; /* fuse_in_header, or the reply's fuse_out_header */
	char op_in[128];  /* the request's first argument */
	struct ur_ent_in_out ent;
};

struct ur_out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

/* In the command area of a 128-byte SQE. */
struct ur_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

struct ur_queue;

struct ur_ent {
	struct ur_req_header hdr;
	struct iovec iov[2]; /* header, payload: registered with the kernel */
	struct ur_queue *q;
	uint64_t unique; /* the request in hand, 0 when none (q->lock) */
};

struct ur_queue {
	struct sfs_uring *u;
	unsigned qid;
	pid_t tid;		/* its thread */
	pid_t req_pid;		/* the process of the request in hand (atomic) */
	uint64_t nap_since;	/* its commit's idle spell began (ns, atomic; 0 none) */
	uint64_t commits;	/* by its thread, counted while spells may be (atomic) */
	uint64_t nap_off_until; /* no idle spells before (ns, atomic) */
	uint64_t nap_backoff;	/* the last such pause (watch thread) */
	uint32_t opcode;	/* of the request in hand */
	struct io_uring ring;
	bool ring_made, thread_made;
	pthread_t thread;
	pthread_mutex_t lock; /* the submission queue, entries' unique */
	char *msg;	      /* a request laid out for libfuse */
	char *spliced;	      /* a reply libfuse spliced */
	bool served;	      /* has had a request */
	struct ur_ent ents[UR_ENTRIES];
};

struct sfs_uring {
	struct sfs_fs *fs;
	size_t payload;	 /* bytes per entry's payload buffer */
	unsigned nrings; /* UR_THREADS per possible CPU */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;     /* 0 waiting for INIT's reply, 1 go, -1 drop */
	bool stopping; /* once the request loop has ended (atomic) */
	struct ur_queue *qs;
	bool nap;	      /* commits at idle policy (the daemon may renice) */
	bool watch_made;      /* the watch thread runs */
	bool watch_parked;    /* it waits to be woken (atomic; u->lock) */
	bool watch_stop;      /* it ends (u->lock) */
	bool cpus_busy;	      /* no CPU was idle lately (atomic) */
	int statfd;	      /* /proc/stat, or -1 */
	uint64_t idle, total; /* its idle and total ticks at the last look */
	pthread_t watch;
	pthread_cond_t watch_cond;
};

/* The entry whose request this thread is handling. */
static __thread struct ur_ent *ur_cur;
/* Whether this thread serves a queue. */
static __thread bool ur_thread;
/* The queue this thread serves. */
static __thread struct ur_queue *ur_own;

/* Queues the kernel makes: one per possible CPU, numbered by CPU. */
static unsigned possible_cpus(void)
{
	_cleanup_free_ char *s = NULL;
	unsigned n = 0;

	if (su_read_file(AT_FDCWD, "/sys/devices/system/cpu/possible", &s, NULL, 4096) < 0)
		return 0;
	/* "0-3" or "0,2-5": the highest number, plus one */
	for (char *p = s; *p;) {
		char *end;
		unsigned long v;
		if (!isdigit((unsigned char)*p)) {
			p++;
			continue;
		}
		v = strtoul(p, &end, 10);
		if (v + 1 > n)
			n = (unsigned)v + 1;
		p = end;
	}
	return n;
}

/* Puts a command for ent on its queue's ring (q->lock held). */
static int queue_cmd(struct ur_queue *q, struct ur_ent *ent, uint32_t op, uint64_t commit)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct ur_cmd_req *c;

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
		if (!sqe)
			return -EBUSY;
	}
	memset(sqe, 0, 128);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->u->fs->pt.devfd;
	sqe->cmd_op = op;
	if (op == UR_CMD_REGISTER) {
		sqe->addr = (uintptr_t)ent->iov;
		sqe->len = 2;
	}
	c = (struct ur_cmd_req *)sqe->cmd;
	c->commit_id = commit;
	c->qid = (uint16_t)q->qid;
	io_uring_sqe_set_data(sqe, ent);
	return 0;
}

/* ---- replies that wake the program on its own CPU ----
 * A queue's thread runs on its program's CPU, and its commit wakes the
 * program there, while the thread is still running: the scheduler then
 * puts the program on the other CPU, if that one is idle, and on a
 * virtual machine that wake-up is an interrupt between virtual CPUs,
 * about 30 us against 4 us for the whole round trip when both stay on one
 * CPU (a GETATTR loop here).  A CPU running only SCHED_IDLE threads counts
 * as idle, so the thread commits at that policy: the program wakes on its
 * own CPU, takes it at once, and the thread finishes its system call
 * (back at its normal policy) when the program waits again.
 *
 * At idle policy the thread gets almost no CPU while other work is
 * runnable there (a busy loop next to one keeps it off for 1.4 s), and
 * its entry, back first, takes the CPU's next request, which it only sees
 * once it runs (the kernel hands it over as the thread's task work).  So
 * a watch thread looks every UR_WATCH_NS while replies are committed: a
 * thread still at idle policy after UR_NAP_MAX_NS is put back to normal
 * policy, and if the process of its last request is not running then
 * (it waits, most likely for this very thread), its commits stay at
 * normal policy for a pause that doubles while this repeats.  And while
 * no CPU is idle there is nothing to gain: the watch thread reads the
 * idle time of the CPUs (/proc/stat) every UR_LOAD_LOOKS looks, and
 * before and after it waits for work, and less than half a CPU idle in
 * between keeps the commits at normal policy until the next reading.
 * Going back from SCHED_IDLE needs CAP_SYS_NICE (or RLIMIT_NICE), so only
 * a daemon that may renice does this (sfs_uring_prepare tries it on a
 * thread of its own), and only threads started at normal policy. */
#define UR_WATCH_NS	 (2 * 1000 * 1000L)
#define UR_NAP_MAX_NS	 (1 * 1000 * 1000ULL)
#define UR_NAP_PAUSE_MIN (250 * 1000 * 1000ULL)
#define UR_NAP_PAUSE_MAX (8 * 1000 * 1000 * 1000ULL)
#define UR_WATCH_QUIET	 25 /* looks without a commit before the watch waits */
#define UR_LOAD_LOOKS	 50

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static void wake_watch(struct sfs_uring *u)
{
	pthread_mutex_lock(&u->lock);
	__atomic_store_n(&u->watch_parked, false, __ATOMIC_SEQ_CST);
	pthread_cond_signal(&u->watch_cond);
	pthread_mutex_unlock(&u->lock);
}

/* Whether a reply to opcode is worth an idle spell: its program waits
 * for it, and is not about to send requests it does not wait for (a
 * READ's or an OPEN's program reads on while the kernel reads ahead;
 * those requests would reach this thread while it is kept off the CPU by
 * the very program that should overlap with them). */
static bool nap_worth(uint32_t opcode)
{
	switch (opcode) {
	case 14: /* OPEN */
	case 15: /* READ */
	case 16: /* WRITE */
	case 18: /* RELEASE */
	case 29: /* RELEASEDIR */
		return false;
	default:
		return true;
	}
}

/* Submits q's commit (q->lock held) at idle policy when that may help. */
static int submit_commit(struct ur_queue *q)
{
	struct sfs_uring *u = q->u;
	struct sched_param sp = {0};
	uint64_t t;
	int r;

	if (!__atomic_load_n(&u->nap, __ATOMIC_RELAXED) || ur_own != q || !nap_worth(q->opcode) ||
	    __atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE))
		return io_uring_submit(&q->ring);
	/* (a reply that could be a spell: the watch thread looks on, and
	 * reads the load, even while the CPUs are busy) */
	__atomic_store_n(&q->commits, q->commits + 1, __ATOMIC_RELAXED);
	t = now_ns();
	if (__atomic_load_n(&u->cpus_busy, __ATOMIC_RELAXED) ||
	    t < __atomic_load_n(&q->nap_off_until, __ATOMIC_RELAXED)) {
		if (__atomic_load_n(&u->watch_parked, __ATOMIC_SEQ_CST))
			wake_watch(u);
		return io_uring_submit(&q->ring);
	}
	/* (the spell is published before the watch thread is looked at,
	 * which looks at spells after it says it waits: one sees the other) */
	__atomic_store_n(&q->nap_since, t, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&u->watch_parked, __ATOMIC_SEQ_CST))
		wake_watch(u);
	sched_setscheduler(0, SCHED_IDLE, &sp);
	r = io_uring_submit(&q->ring);
	if (sched_setscheduler(0, SCHED_OTHER, &sp) < 0) {
		/* (cannot be after nap_allowed; the spell stays marked, so
		 * the watch thread tries too) */
		su_warn("io_uring: back to normal policy: %s; no more commits at idle policy",
			strerror(errno));
		__atomic_store_n(&u->nap, false, __ATOMIC_RELAXED);
		return r;
	}
	__atomic_store_n(&q->nap_since, 0, __ATOMIC_RELEASE);
	return r;
}

/* Whether the CPUs were all but fully busy since the last reading. */
static bool cpus_busy(struct sfs_uring *u, unsigned ncpu)
{
	char buf[256];
	unsigned long long v[8] = {0}, idle, total = 0;
	ssize_t n = u->statfd >= 0 ? pread(u->statfd, buf, sizeof(buf) - 1, 0) : -1;
	bool busy;

	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* cpu user nice system idle iowait irq softirq steal */
	if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) < 5)
		return false;
	for (int i = 0; i < 8; i++)
		total += v[i];
	idle = v[3] + v[4];
	/* (iowait may go down: no judgement then) */
	busy = u->total && total > u->total && idle >= u->idle &&
	       (idle - u->idle) * 2 * ncpu < total - u->total;
	u->idle = idle;
	u->total = total;
	return busy;
}

/* A reading of the load into u->cpus_busy, said when it turns. */
static void read_load(struct sfs_uring *u, long ncpu)
{
	bool busy = cpus_busy(u, ncpu > 0 ? (unsigned)ncpu : 1);

	if (busy != __atomic_load_n(&u->cpus_busy, __ATOMIC_RELAXED))
		su_debug("io_uring: CPUs %s: replies %s", busy ? "busy" : "idle again",
			 busy ? "at normal policy" : "at idle policy again");
	__atomic_store_n(&u->cpus_busy, busy, __ATOMIC_RELAXED);
}

/* Whether process pid is running or about to (state R); one that cannot
 * be looked at counts as waiting. */
static bool pid_running(pid_t pid)
{
	_cleanup_free_ char *s = NULL;
	char path[48], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (pid <= 0 || su_read_file(AT_FDCWD, path, &s, NULL, 4096) < 0)
		return false;
	/* "pid (comm) S ...", and the comm may hold ") " itself */
	p = strrchr(s, ')');
	return p && p[1] == ' ' && p[2] == 'R';
}

/* One look of the watch thread: whether any thread committed since the
 * last (*commits, their count then) or is at idle policy now. */
static bool watch_look(struct sfs_uring *u, uint64_t *commits)
{
	struct sched_param sp = {0};
	uint64_t now = now_ns(), sum = 0;
	bool busy = false;

	for (unsigned i = 0; i < u->nrings; i++) {
		struct ur_queue *q = &u->qs[i];
		uint64_t t = __atomic_load_n(&q->nap_since, __ATOMIC_SEQ_CST), off;

		sum += __atomic_load_n(&q->commits, __ATOMIC_RELAXED);
		if (!t)
			continue;
		busy = true;
		if (t > now || now - t < UR_NAP_MAX_NS)
			continue;
		/* Kept off its CPU that long: back to normal policy (which
		 * costs a moment if only its own program ran meanwhile).  Its
		 * program not running says it waits, and the thread holds
		 * its next request (no look at the ring would show it): a
		 * pause, unless stopping (which only waits for q->lock). */
		if (sched_setscheduler(q->tid, SCHED_OTHER, &sp) < 0 ||
		    __atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE) ||
		    pid_running(__atomic_load_n(&q->req_pid, __ATOMIC_RELAXED)))
			continue;
		off = __atomic_load_n(&q->nap_off_until, __ATOMIC_RELAXED);
		if (off == UINT64_MAX)
			continue;
		/* (a pause long over starts again from the shortest) */
		if (now > off + UR_NAP_PAUSE_MAX)
			q->nap_backoff = 0;
		q->nap_backoff = q->nap_backoff ? q->nap_backoff * 2 : UR_NAP_PAUSE_MIN;
		if (q->nap_backoff > UR_NAP_PAUSE_MAX)
			q->nap_backoff = UR_NAP_PAUSE_MAX;
		__atomic_store_n(&q->nap_off_until, now + q->nap_backoff, __ATOMIC_RELAXED);
		su_debug("io_uring: queue %u: a program waited %llu us for a thread at idle "
			 "policy; normal commits for %llu ms",
			 q->qid, (unsigned long long)(now - t) / 1000,
			 (unsigned long long)(q->nap_backoff / 1000000));
	}
	busy = busy || sum != *commits;
	*commits = sum;
	return busy;
}

static void *watch_main(void *arg)
{
	struct sfs_uring *u = arg;
	uint64_t commits = 0;
	unsigned quiet = 0, looks = 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	read_load(u, ncpu);
	pthread_mutex_lock(&u->lock);
	while (!u->watch_stop) {
		struct timespec ts;

		pthread_mutex_unlock(&u->lock);
		quiet = watch_look(u, &commits) ? 0 : quiet + 1;
		if (++looks % UR_LOAD_LOOKS == 0)
			read_load(u, ncpu);
		pthread_mutex_lock(&u->lock);
		if (quiet >= UR_WATCH_QUIET && !__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE)) {
			/* nothing to watch: wait for a commit to wake it, after
			 * a last look at the spells (see submit_commit); the
			 * load read before and after judges the wait */
			__atomic_store_n(&u->watch_parked, true, __ATOMIC_SEQ_CST);
			pthread_mutex_unlock(&u->lock);
			quiet = watch_look(u, &commits) ? 0 : quiet;
			read_load(u, ncpu);
			pthread_mutex_lock(&u->lock);
			while (quiet && __atomic_load_n(&u->watch_parked, __ATOMIC_SEQ_CST) &&
			       !__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE) && !u->watch_stop)
				pthread_cond_wait(&u->watch_cond, &u->lock);
			__atomic_store_n(&u->watch_parked, false, __ATOMIC_SEQ_CST);
			pthread_mutex_unlock(&u->lock);
			read_load(u, ncpu);
			pthread_mutex_lock(&u->lock);
			quiet = looks = 0;
			continue;
		}
		ts = su_deadline(CLOCK_MONOTONIC, 0, UR_WATCH_NS);
		pthread_cond_timedwait(&u->watch_cond, &u->lock, &ts);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* Whether this daemon may go back from SCHED_IDLE: tried on a thread
 * that ends either way. */
static void *nap_probe(void *arg)
{
	struct sched_param sp = {0};

	*(bool *)arg = sched_setscheduler(0, SCHED_IDLE, &sp) == 0 &&
		       sched_setscheduler(0, SCHED_OTHER, &sp) == 0;
	return NULL;
}

static bool nap_allowed(void)
{
	pthread_t t;
	bool ok = false;

	if (pthread_create(&t, NULL, nap_probe, &ok) != 0)
		return false;
	pthread_join(t, NULL);
	return ok;
}

/* Copies a reply into ent (q->lock held, released here) and commits it,
 * which also fetches the entry's next request: 0 or -1 with errno.  With
 * err, the reply is that error instead of iov. */
static int commit(struct ur_ent *ent, uint64_t unique, const struct iovec *iov, int count, int err)
{
	struct ur_queue *q = ent->q;
	char *pay = ent->iov[1].iov_base;
	size_t at = 0;
	int r;

	if (err) {
		struct ur_out_header oh = {.len = UR_OUT_HDR, .error = err, .unique = unique};
		memcpy(ent->hdr.in_out, &oh, sizeof(oh));
		at = UR_OUT_HDR;
		count = 0;
	}
	/* the header goes to the header buffer, the rest to the payload */
	for (int i = 0; i < count; i++) {
		const char *b = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		if (at < UR_OUT_HDR) {
			size_t h = n < UR_OUT_HDR - at ? n : UR_OUT_HDR - at;
			memcpy(ent->hdr.in_out + at, b, h);
			b += h;
			n -= h;
			at += h;
		}
		memcpy(pay + (at - UR_OUT_HDR), b, n);
		at += n;
	}
	ent->hdr.ent.payload_sz = (uint32_t)(at - UR_OUT_HDR);
	ent->unique = 0;
	if (ur_cur == ent)
		ur_cur = NULL;
	r = queue_cmd(q, ent, UR_CMD_COMMIT_AND_FETCH, unique);
	if (r == 0)
		r = submit_commit(q);
	pthread_mutex_unlock(&q->lock);
	if (r < 0) {
		su_warn("io_uring: reply to %llu: %s", (unsigned long long)unique, strerror(-r));
		errno = -r;
		return -1;
	}
	return 0;
}

/* Lays the request in ent out as /dev/fuse delivers it and handles it. */
static void handle(struct ur_queue *q, struct ur_ent *ent)
{
	struct sfs_uring *u = q->u;
	const char *in = ent->hdr.in_out;
	uint32_t len, pid, pay = ent->hdr.ent.payload_sz;
	size_t arg;

	memcpy(&len, in, sizeof(len));
	pthread_mutex_lock(&q->lock);
	ent->unique = ent->hdr.ent.commit_id;
	pthread_mutex_unlock(&q->lock);
	/* the first argument is what the header's length leaves over */
	if (len < UR_IN_HDR || pay > u->payload || len - UR_IN_HDR < pay ||
	    (arg = len - UR_IN_HDR - pay) > sizeof(ent->hdr.op_in)) {
		su_warn("io_uring: malformed request (length %u, payload %u)", len, pay);
		pthread_mutex_lock(&q->lock);
		commit(ent, ent->unique, NULL, 0, -EIO);
		return;
	}
	memcpy(q->msg, in, UR_IN_HDR);
	memcpy(&q->opcode, in + 4, sizeof(q->opcode));
	memcpy(&pid, in + 32, sizeof(pid)); /* fuse_in_header.pid */
	__atomic_store_n(&q->req_pid, (pid_t)pid, __ATOMIC_RELAXED);
	memcpy(q->msg + UR_IN_HDR, ent->hdr.op_in, arg);
	memcpy(q->msg + UR_IN_HDR + arg, ent->iov[1].iov_base, pay);
	if (!q->served) {
		q->served = true;
		su_debug("io_uring: queue %u: first request", q->qid);
	}
	ur_cur = ent;
	fuse_session_process_buf(u->fs->pt.se, &(struct fuse_buf){.mem = q->msg, .size = len});
	if (ur_cur == ent)
		su_debug("io_uring: request %llu left without a reply",
			 (unsigned long long)ent->unique);
	ur_cur = NULL;
}

static void *queue_main(void *arg)
{
	struct ur_queue *q = arg;
	struct sfs_uring *u = q->u;
	cpu_set_t set;
	unsigned live = UR_ENTRIES;
	int r;

	ur_thread = true;
	ur_own = q;
	q->tid = gettid();
	/* (a thread the administrator gave another policy keeps it) */
	if (sched_getscheduler(0) != SCHED_OTHER)
		__atomic_store_n(&q->nap_off_until, UINT64_MAX, __ATOMIC_RELAXED);
	/* a queue of a CPU that is not online stays idle wherever it runs */
	CPU_ZERO(&set);
	CPU_SET(q->qid, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);

	pthread_mutex_lock(&u->lock);
	while (u->state == 0)
		pthread_cond_wait(&u->cond, &u->lock);
	r = u->state;
	pthread_mutex_unlock(&u->lock);
	if (r < 0)
		return NULL;

	pthread_mutex_lock(&q->lock);
	for (int i = 0; i < UR_ENTRIES; i++)
		queue_cmd(q, &q->ents[i], UR_CMD_REGISTER, 0);
	r = io_uring_submit(&q->ring);
	pthread_mutex_unlock(&q->lock);
	if (r < 0) {
		su_warn("io_uring: queue %u: %s", q->qid, strerror(-r));
		return NULL;
	}

	while (live > 0) {
		struct io_uring_cqe *cqe;
		struct ur_ent *ent;
		int res;

		sfs_grace_idle(u->fs);
		r = io_uring_wait_cqe(&q->ring, &cqe);
		sfs_grace_busy(u->fs);
		if (r == -EINTR)
			continue;
		if (r < 0) {
			su_warn("io_uring: queue %u: %s", q->qid, strerror(-r));
			break;
		}
		ent = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		if (__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE))
			break;
		if (!ent) /* a wake-up */
			continue;
		if (res == 0) {
			handle(q, ent);
			continue;
		}
		/* the connection ended (ENOTCONN, ECONNABORTED, ECANCELED),
		 * or the kernel turned a registration down */
		if (res != -ENOTCONN && res != -ECONNABORTED && res != -ECANCELED)
			su_warn("io_uring: queue %u: %s", q->qid, strerror(-res));
		live--;
	}
	return NULL;
}

static void free_queues(struct sfs_uring *u)
{
	for (unsigned i = 0; i < u->nrings; i++) {
		struct ur_queue *q = &u->qs[i];
		if (q->ring_made)
			io_uring_queue_exit(&q->ring);
		for (int e = 0; e < UR_ENTRIES; e++)
			free(q->ents[e].iov[1].iov_base);
		free(q->msg);
		free(q->spliced);
		pthread_mutex_destroy(&q->lock);
	}
	free(u->qs);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	pthread_cond_destroy(&u->watch_cond);
	if (u->statfd >= 0)
		close(u->statfd);
	free(u);
}

static int make_queue(struct sfs_uring *u, struct ur_queue *q, unsigned qid)
{
	/* (not COOP_TASKRUN: a reply committed by another thread makes
	 * this ring's next request its task work, which must wake it) */
	struct io_uring_params p = {.flags = IORING_SETUP_SQE128};
	int r;

	q->u = u;
	q->qid = qid;
	pthread_mutex_init(&q->lock, NULL);
	r = io_uring_queue_init_params(UR_ENTRIES * 2 + 2, &q->ring, &p);
	if (r < 0) {
		su_debug("io_uring: no ring: %s", strerror(-r));
		return -1;
	}
	q->ring_made = true;
	q->msg = malloc(UR_IN_HDR + sizeof(q->ents[0].hdr.op_in) + u->payload);
	q->spliced = malloc(UR_OUT_HDR + u->payload);
	if (!q->msg || !q->spliced)
		return -1;
	for (int e = 0; e < UR_ENTRIES; e++) {
		struct ur_ent *ent = &q->ents[e];
		ent->q = q;
		ent->iov[0] = (struct iovec){&ent->hdr, sizeof(ent->hdr)};
		ent->iov[1] = (struct iovec){malloc(u->payload), u->payload};
		if (!ent->iov[1].iov_base)
			return -1;
	}
	return 0;
}

int sfs_uring_prepare(struct sfs_fs *fs, const void *init_out, size_t len)
{
	pthread_condattr_t ca;
	struct sfs_uring *u;
	uint32_t max_write;
	uint16_t max_pages;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned nq = possible_cpus();

	if (!fs->o->uring || !(fs->pt.init_flags2 & UR_FLAGS2_OVER_IO_URING) ||
	    len < UR_INIT_OUT_MAX_PAGES + 2)
		return -1;
	/* (a thread and a ring per CPU the machine could ever have) */
	if (nq == 0 || nq > UR_MAX_QUEUES) {
		su_debug("io_uring: not for %u possible CPUs", nq);
		return -1;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -1;
	u->statfd = -1;
	u->fs = fs;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->watch_cond, &ca);
	pthread_condattr_destroy(&ca);
	/* the payload buffer must hold the largest request or reply */
	memcpy(&max_write, (const char *)init_out + UR_INIT_OUT_MAX_WRITE, sizeof(max_write));
	memcpy(&max_pages, (const char *)init_out + UR_INIT_OUT_MAX_PAGES, sizeof(max_pages));
	u->payload = UR_MIN_PAYLOAD;
	if (max_write > u->payload)
		u->payload = max_write;
	if ((size_t)max_pages * page > u->payload)
		u->payload = (size_t)max_pages * page;
	u->qs = calloc((size_t)nq * UR_THREADS, sizeof(*u->qs));
	if (!u->qs) {
		free(u);
		return -1;
	}
	for (; u->nrings < nq * UR_THREADS; u->nrings++)
		if (make_queue(u, &u->qs[u->nrings], u->nrings / UR_THREADS) < 0) {
			u->nrings++;
			goto fail;
		}
	for (unsigned i = 0; i < u->nrings; i++) {
		struct ur_queue *q = &u->qs[i];
		if (pthread_create(&q->thread, NULL, queue_main, q) != 0)
			goto fail;
		q->thread_made = true;
	}
	/* (before the queue threads' first commit: they wait for INIT's
	 * reply under u->lock) */
	u->nap = fs->o->samecpu && nap_allowed();
	u->statfd = u->nap ? open("/proc/stat", O_RDONLY | O_CLOEXEC) : -1;
	if (u->nap && pthread_create(&u->watch, NULL, watch_main, u) == 0) {
		u->watch_made = true;
	} else if (u->nap) {
		su_warn("io_uring: no watch thread: replies at normal policy");
		u->nap = false;
	}
	fs->ur = u;
	su_debug("io_uring: %u queues of %d threads with %d entries, %zu-byte payloads", nq,
		 UR_THREADS, UR_ENTRIES, u->payload);
	su_debug("io_uring: replies wake programs on their own CPU: %s",
		 u->nap		  ? "yes"
		 : fs->o->samecpu ? "no (the daemon may not renice)"
				  : "no (samecpu=0)");
	return 0;
fail:
	pthread_mutex_lock(&u->lock);
	u->state = -1;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	for (unsigned i = 0; i < u->nrings; i++)
		if (u->qs[i].thread_made)
			pthread_join(u->qs[i].thread, NULL);
	free_queues(u);
	return -1;
}

void sfs_uring_go(struct sfs_fs *fs, bool sent)
{
	struct sfs_uring *u = fs->ur;

	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	u->state = sent ? 1 : -1;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

bool sfs_uring_thread(void)
{
	return ur_thread;
}

bool sfs_uring_answering(void)
{
	return ur_cur != NULL;
}

/* The entry holding request unique, when another thread replies. */
static struct ur_ent *find_ent(struct sfs_uring *u, uint64_t unique, struct ur_queue **qp)
{
	for (unsigned i = 0; i < u->nrings; i++) {
		struct ur_queue *q = &u->qs[i];
		pthread_mutex_lock(&q->lock);
		for (int e = 0; e < UR_ENTRIES; e++)
			if (q->ents[e].unique == unique) {
				*qp = q;
				return &q->ents[e]; /* with q->lock */
			}
		pthread_mutex_unlock(&q->lock);
	}
	return NULL;
}

bool sfs_uring_reply(struct sfs_fs *fs, const struct iovec *iov, int count, ssize_t *ret)
{
	struct sfs_uring *u = fs->ur;
	struct ur_ent *ent = ur_cur;
	struct ur_queue *q;
	uint64_t unique;
	size_t total = 0;

	if (!u || count < 1 || iov[0].iov_len < UR_OUT_HDR)
		return false;
	memcpy(&unique, (const char *)iov[0].iov_base + 8, sizeof(unique));
	if (unique == 0) /* a notification */
		return false;
	if (ent && ent->unique == unique) {
		q = ent->q;
		pthread_mutex_lock(&q->lock);
	} else if (!(ent = find_ent(u, unique, &q))) {
		return false; /* a request that came through /dev/fuse */
	}
	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	if (total - UR_OUT_HDR > u->payload) {
		/* (cannot be: the buffer holds the largest the kernel takes) */
		commit(ent, unique, NULL, 0, -EIO);
		errno = EINVAL;
		*ret = -1;
		return true;
	}
	*ret = commit(ent, unique, iov, count, 0);
	if (*ret >= 0)
		*ret = (ssize_t)total;
	return true;
}

ssize_t sfs_uring_splice(struct sfs_fs *fs, int pipefd, size_t len)
{
	struct ur_queue *q = ur_cur->q;
	struct iovec iov = {q->spliced, 0};
	ssize_t r;

	if (len > UR_OUT_HDR + fs->ur->payload)
		return splice(pipefd, NULL, fs->pt.devfd, NULL, len, 0);
	while (iov.iov_len < len) {
		r = read(pipefd, q->spliced + iov.iov_len, len - iov.iov_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* the request still gets an answer */
			struct ur_ent *ent = ur_cur;
			int e = r < 0 ? errno : EIO;
			pthread_mutex_lock(&q->lock);
			commit(ent, ent->unique, NULL, 0, -EIO);
			errno = e;
			return -1;
		}
		iov.iov_len += (size_t)r;
	}
	if (sfs_uring_reply(fs, &iov, 1, &r))
		return r;
	return write(fs->pt.devfd, iov.iov_base, iov.iov_len);
}

void sfs_uring_stop(struct sfs_fs *fs)
{
	struct sfs_uring *u = fs->ur;
	bool all = true;
	struct timespec ts;

	if (!u)
		return;
	sfs_uring_go(fs, false); /* threads still waiting for INIT's reply */
	/* each thread ends at its next completion: a wake-up sent here, or
	 * the end of its entry if the connection is gone */
	__atomic_store_n(&u->stopping, true, __ATOMIC_RELEASE);
	if (u->watch_made)
		wake_watch(u);
	for (unsigned i = 0; i < u->nrings; i++) {
		struct ur_queue *q = &u->qs[i];
		struct io_uring_sqe *sqe;
		pthread_mutex_lock(&q->lock);
		if ((sqe = io_uring_get_sqe(&q->ring))) {
			memset(sqe, 0, 128);
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data(sqe, NULL);
			io_uring_submit(&q->ring);
		}
		pthread_mutex_unlock(&q->lock);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	for (unsigned i = 0; i < u->nrings; i++)
		if (u->qs[i].thread_made && pthread_timedjoin_np(u->qs[i].thread, NULL, &ts) != 0)
			all = false;
	/* (after the queue threads: it frees one held at idle policy) */
	if (u->watch_made) {
		pthread_mutex_lock(&u->lock);
		u->watch_stop = true;
		pthread_cond_broadcast(&u->watch_cond);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->watch, NULL);
	}
	fs->ur = NULL;
	if (all)
		free_queues(u);
	else
		su_warn("io_uring: a queue thread did not end; its memory stays");
}
