/* launcher/pty: passing a pty master between processes (SCM_RIGHTS) and
 * copying between it and the caller's terminal or a log. */
#include "launcher/launcher.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

int lch_send_fd(int sock, int fd)
{
	char byte = 'F', cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

int lch_recv_fd(int sock)
{
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;
	int fd = -1;

	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

int lch_terminal_fd(struct winsize *ws)
{
	for (int fd = 0; fd <= 2; fd++)
		if (isatty(fd) && ioctl(fd, TIOCGWINSZ, ws) == 0)
			return fd;
	return -1;
}

static void on_winch(int sig)
{
	(void)sig;
}

static void resize(int master, int from)
{
	struct winsize ws;

	if (from >= 0 && ioctl(from, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

void lch_pty_relay(int master, int in, int out, int winsz_from)
{
	struct sigaction sa = {.sa_handler = on_winch}, old;
	char buf[8192];
	bool in_open = in >= 0;

	/* A handler without SA_RESTART: SIGWINCH interrupts poll, and the
	 * new size is passed on at once. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, &old);
	resize(master, winsz_from);
	for (;;) {
		struct pollfd p[2] = {{.fd = master, .events = POLLIN},
				      {.fd = in_open ? in : -1, .events = POLLIN}};
		ssize_t n;

		int r = poll(p, 2, 1000);

		if (r <= 0) {
			/* A signal (SIGWINCH) or a quiet second: follow the size. */
			if (r == 0 || errno == EINTR) {
				resize(master, winsz_from);
				continue;
			}
			break;
		}
		if (p[0].revents) {
			n = read(master, buf, sizeof(buf));
			if (n > 0)
				su_write_all(out, buf, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				break; /* EIO: every slave is closed */
		}
		if (in_open && p[1].revents) {
			n = read(in, buf, sizeof(buf));
			if (n <= 0) {
				in_open = false; /* EOF: ^D to the terminal */
				su_write_all(master, "\004", 1);
			} else {
				su_write_all(master, buf, (size_t)n);
			}
		}
	}
	sigaction(SIGWINCH, &old, NULL);
}
