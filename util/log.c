/* util/log: leveled logging to stderr or syslog, one state struct. */
#include "util/util.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>

static struct {
	const char *prog;
	enum su_log_level level;
	bool syslog;
} su_log_state = {"strata", SU_LOG_WARN, false};

void su_log_init(const char *prog, enum su_log_level level)
{
	su_log_state.prog = prog;
	su_log_state.level = level;
}

void su_log_to_syslog(void)
{
	openlog(su_log_state.prog, LOG_PID, LOG_DAEMON);
	su_log_state.syslog = true;
}

bool su_log_enabled(enum su_log_level level)
{
	return level <= su_log_state.level;
}

void su_log(enum su_log_level level, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	static const char *const tag[] = {"error", "warning", "info", "debug"};
	char buf[2048];
	va_list ap;
	int saved = errno;

	if (!su_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (su_log_state.syslog)
		syslog(prio[level], "%s", buf);
	else
		fprintf(stderr, "%s: %s: %s\n", su_log_state.prog, tag[level], buf);
	errno = saved;
}
