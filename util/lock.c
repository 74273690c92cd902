/* util/lock: the lock file of a store directory, timestamps for the
 * metadata stores write, and the short sleeps of those waiting on them. */
#include "util/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

int su_lock_dir(int dirfd, const char *dirname, bool exclusive, struct su_error *e)
{
	int fd = openat(dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	/* a read-only store can still be read under a shared lock */
	if (fd < 0 && errno == EROFS && !exclusive)
		fd = openat(dirfd, ".lock", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return su_error_set(e, errno, "open %s/.lock", dirname);
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR) {
			su_error_set(e, errno, "lock %s/.lock", dirname);
			close(fd);
			return -1;
		}
	}
	return fd;
}

void su_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

struct timespec su_deadline(clockid_t clock, time_t sec, long ns)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += sec;
	ts.tv_nsec += ns;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

char *su_rfc3339_now(bool nanoseconds)
{
	struct timespec ts;
	struct tm tm;
	char buf[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (nanoseconds)
		snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec);
	else
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return strdup(buf);
}
