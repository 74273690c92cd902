/* util/error: the error object carried up through the non-fs modules. */
#include "util/util.h"

#include <stdio.h>
#include <string.h>

int su_error_set(struct su_error *e, int errnum, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!e)
		return -1;
	e->errnum = errnum;
	va_start(ap, fmt);
	n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	if (errnum && n >= 0 && (size_t)n < sizeof(e->msg))
		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(errnum));
	return -1;
}

int su_error_wrap(struct su_error *e, const char *fmt, ...)
{
	char ctx[512], old[sizeof(e->msg)];
	va_list ap;

	if (!e)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* context first; a message too long for the buffer is cut at its end */
	size_t cl = strnlen(ctx, sizeof(ctx));
	if (cl + 2 >= sizeof(e->msg))
		cl = sizeof(e->msg) - 3;
	memcpy(e->msg, ctx, cl);
	memcpy(e->msg + cl, ": ", 2);
	size_t room = sizeof(e->msg) - cl - 3;
	size_t ol = strnlen(old, room);
	memcpy(e->msg + cl + 2, old, ol);
	e->msg[cl + 2 + ol] = '\0';
	return -1;
}

void su_error_clear(struct su_error *e)
{
	e->errnum = 0;
	e->msg[0] = '\0';
}
