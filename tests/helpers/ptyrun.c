/* ptyrun: runs a command on a new pseudo-terminal, as a user at a terminal
 * would, and plays a small script against it, so shell tests can check
 * `strata run -t`: what the command prints (copied to stdout), input it
 * reads, window sizes and SIGWINCH.  Exits with the command's status
 * (128+N for a signal), 124 when a wait times out.
 *
 *   ptyrun [ACTION...] -- CMD [ARG...]
 *     size=ROWS,COLS   set the window size (before the command starts when
 *                      it comes first; later, the kernel sends SIGWINCH)
 *     wait=TEXT        wait (60 s at most: a loaded machine, ASan) until
 *                      the output holds TEXT
 *     send=TEXT        type TEXT (\n, \r, \t, \\ and \xHH understood)
 *     sleep=MS         pause
 *     eof              type ^D (end of input in canonical mode) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

struct session {
	int master;
	char *seen; /* everything the command printed so far */
	size_t len, cap;
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Copies what the master has to stdout and to s->seen for up to ms;
 * returns -1 once the terminal hung up (every slave closed). */
static int pump(struct session *s, long ms)
{
	long end = now_ms() + ms;

	for (;;) {
		struct pollfd p = {.fd = s->master, .events = POLLIN};
		long left = end - now_ms();
		char buf[4096];
		ssize_t n;

		if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
			return 0;
		n = read(s->master, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		su_write_all(1, buf, (size_t)n);
		if (su_strbuf_add(&s->seen, &s->len, &s->cap, buf, (size_t)n) < 0)
			return -1;
	}
}

static int set_size(int fd, const char *spec)
{
	struct winsize ws = {0};
	unsigned rows, cols;

	if (sscanf(spec, "%u,%u", &rows, &cols) != 2)
		return -1;
	ws.ws_row = (unsigned short)rows;
	ws.ws_col = (unsigned short)cols;
	return ioctl(fd, TIOCSWINSZ, &ws);
}

/* Decodes the escapes of send= into out (at least as long as in). */
static size_t unescape(const char *in, char *out)
{
	size_t n = 0;

	while (*in) {
		if (*in != '\\' || !in[1]) {
			out[n++] = *in++;
			continue;
		}
		in++;
		switch (*in) {
		case 'n':
			out[n++] = '\n';
			in++;
			break;
		case 'r':
			out[n++] = '\r';
			in++;
			break;
		case 't':
			out[n++] = '\t';
			in++;
			break;
		case 'x': {
			char hex[3] = {in[1], in[1] ? in[2] : 0, 0};

			out[n++] = (char)strtoul(hex, NULL, 16);
			in += 1 + strlen(hex);
			break;
		}
		default:
			out[n++] = *in++;
			break;
		}
	}
	return n;
}

static int wait_for(struct session *s, const char *text)
{
	long end = now_ms() + 60000;

	while (now_ms() < end) {
		if (s->seen && memmem(s->seen, s->len, text, strlen(text)))
			return 0;
		if (pump(s, 50) < 0)
			break;
	}
	if (s->seen && memmem(s->seen, s->len, text, strlen(text)))
		return 0;
	fprintf(stderr, "ptyrun: timed out waiting for \"%s\"\n", text);
	return -1;
}

static int act(struct session *s, const char *a)
{
	if (!strncmp(a, "size=", 5))
		return set_size(s->master, a + 5);
	if (!strncmp(a, "wait=", 5))
		return wait_for(s, a + 5);
	if (!strncmp(a, "sleep=", 6))
		return pump(s, atol(a + 6)), 0;
	if (!strcmp(a, "eof"))
		return su_write_all(s->master, "\004", 1) < 0 ? -1 : 0;
	if (!strncmp(a, "send=", 5)) {
		_cleanup_free_ char *buf = malloc(strlen(a));
		size_t n;

		if (!buf)
			return -1;
		n = unescape(a + 5, buf);
		return su_write_all(s->master, buf, n) < 0 ? -1 : 0;
	}
	fprintf(stderr, "ptyrun: unknown action %s\n", a);
	return -1;
}

static pid_t spawn(int master, char **argv)
{
	const char *name = ptsname(master);
	pid_t pid = fork();
	int slave;

	if (pid != 0)
		return pid;
	setsid();
	slave = name ? open(name, O_RDWR) : -1; /* the first tty opened: controlling */
	if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 ||
	    dup2(slave, 1) < 0 || dup2(slave, 2) < 0) {
		perror("ptyrun: slave");
		_exit(127);
	}
	if (slave > 2)
		close(slave);
	close(master);
	execvp(argv[0], argv);
	fprintf(stderr, "ptyrun: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int main(int argc, char **argv)
{
	struct session s = {.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)};
	int i = 1, first, st, rc = 0;
	pid_t pid;

	while (i < argc && strcmp(argv[i], "--"))
		i++;
	if (i + 1 >= argc) {
		fprintf(stderr,
			"usage: ptyrun [size=R,C|wait=TEXT|send=TEXT|sleep=MS|eof]... -- CMD...\n");
		return 2;
	}
	first = 1;
	if (s.master < 0 || grantpt(s.master) < 0 || unlockpt(s.master) < 0) {
		perror("ptyrun: pty");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Leading sizes apply before the command starts. */
	for (; first < i && !strncmp(argv[first], "size=", 5); first++)
		set_size(s.master, argv[first] + 5);
	pid = spawn(s.master, argv + i + 1);
	if (pid < 0) {
		perror("ptyrun: fork");
		return 2;
	}
	for (; first < i && rc == 0; first++)
		if (act(&s, argv[first]) < 0)
			rc = 124;
	if (rc) {
		kill(pid, SIGKILL);
		pump(&s, 200);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	} else {
		/* Until the command exits and the terminal has nothing more
		 * (a hang-up, or a quiet 200 ms when something else holds the
		 * slave open). */
		for (;;) {
			if (waitpid(pid, &st, WNOHANG) == pid) {
				pump(&s, 200);
				break;
			}
			if (pump(&s, 100) < 0) {
				while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
					;
				break;
			}
		}
	}
	free(s.seen);
	if (rc)
		return rc;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}
