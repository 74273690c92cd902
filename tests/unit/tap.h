/* tests/unit/tap.h: the small TAP producer every C unit test includes:
 * "ok N - desc" / "not ok N - desc" lines, diagnostics, and the plan. */
#ifndef STRATA_TAP_H
#define STRATA_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static struct {
	int n, failed;
} tap;

static inline __attribute__((format(printf, 2, 0))) bool tap_vok(bool pass, const char *fmt,
								 va_list ap)
{
	tap.n++;
	printf("%s %d - ", pass ? "ok" : "not ok", tap.n);
	vprintf(fmt, ap);
	putchar('\n');
	if (!pass)
		tap.failed++;
	fflush(stdout);
	return pass;
}

/* Passes when pass is true; returns pass. */
static inline __attribute__((format(printf, 2, 3))) bool tap_ok(bool pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vok(pass, fmt, ap);
	va_end(ap);
	return pass;
}

static inline __attribute__((format(printf, 1, 2))) void tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* Passes when got equals want (NULL only equals NULL). */
static inline __attribute__((format(printf, 3, 4))) bool tap_is(const char *got, const char *want,
								const char *fmt, ...)
{
	bool pass = (!got && !want) || (got && want && !strcmp(got, want));
	va_list ap;

	va_start(ap, fmt);
	tap_vok(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		printf("#   got:  '%s'\n#   want: '%s'\n", got ? got : "(null)",
		       want ? want : "(null)");
	return pass;
}

static inline __attribute__((format(printf, 3, 4))) bool tap_is_int(long long got, long long want,
								    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vok(got == want, fmt, ap);
	va_end(ap);
	if (got != want)
		printf("#   got:  %lld\n#   want: %lld\n", got, want);
	return got == want;
}

static inline __attribute__((format(printf, 2, 3))) void tap_skip(const char *why, const char *fmt,
								  ...)
{
	va_list ap;

	tap.n++;
	printf("ok %d - ", tap.n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", why);
}

/* Prints the plan; the exit status of the test. */
static inline int tap_done(void)
{
	printf("1..%d\n", tap.n);
	return tap.failed ? 1 : 0;
}

#endif
