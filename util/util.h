/* util: what every strata module shares -- cleanup helpers, logging, the
 * error object of the non-fs modules, and small fd/path/string helpers. */
#ifndef STRATA_UTIL_H
#define STRATA_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- cleanup attributes (util/cleanup.c) ---- */

void su_freep(void *p);
void su_closep(int *fd);
void su_fclosep(void *fp);
void su_closedirp(void *dp);

#define _cleanup_free_	   __attribute__((cleanup(su_freep)))
#define _cleanup_close_	   __attribute__((cleanup(su_closep)))
#define _cleanup_fclose_   __attribute__((cleanup(su_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(su_closedirp)))

/* Hands ownership on: returns *pp and clears it so cleanup does nothing. */
static inline void *su_steal_ptr(void *pp)
{
	void **p = pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_pointer(pp) ((__typeof__(*(pp)))su_steal_ptr(pp))

static inline int su_steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- logging (util/log.c) ---- */

enum su_log_level { SU_LOG_ERROR, SU_LOG_WARN, SU_LOG_INFO, SU_LOG_DEBUG };

/* Messages go to stderr prefixed with the program name, or to syslog once
 * su_log_to_syslog() was called (a daemonized strata-fs). */
void su_log_init(const char *prog, enum su_log_level level);
void su_log_to_syslog(void);
bool su_log_enabled(enum su_log_level level);
void su_log(enum su_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define su_err(...)  su_log(SU_LOG_ERROR, __VA_ARGS__)
#define su_warn(...) su_log(SU_LOG_WARN, __VA_ARGS__)
#define su_info(...) su_log(SU_LOG_INFO, __VA_ARGS__)
#define su_debug(...)                                                                              \
	do {                                                                                       \
		if (su_log_enabled(SU_LOG_DEBUG))                                                  \
			su_log(SU_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

/* ---- the error object (util/error.c) ----
 * Non-fs modules return int (0 or -1) and fill a struct su_error *.  Each
 * level adds context in front: "mount volume "data": open "x": Permission
 * denied".  Only the command prints it, once. */

struct su_error {
	int errnum; /* errno value, 0 when not from a syscall */
	char msg[1024];
};

/* Sets the error; a trailing ": strerror(errnum)" is added when errnum != 0.
 * Always returns -1 so callers can `return su_error_set(...)`. */
int su_error_set(struct su_error *e, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends context to an error already set; returns -1. */
int su_error_wrap(struct su_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void su_error_clear(struct su_error *e);

/* ---- strings and paths (util/str.c) ---- */

/* Allocating sprintf; aborts only on memory exhaustion in tools, never in
 * the fs daemon (which checks for NULL). */
char *su_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends src to a growing buffer; returns 0 or -ENOMEM. */
int su_strbuf_add(char **buf, size_t *len, size_t *cap, const char *src, size_t n);
bool su_str_has_prefix(const char *s, const char *prefix);
/* Splits "a:b:c" (with '\' escaping sep) into a NULL-terminated vector;
 * returns NULL with errno set on failure. Free with su_strv_free. */
char **su_split_escaped(const char *s, char sep);
void su_strv_free(char **v);
size_t su_strv_len(char *const *v);

/* ---- store locks, timestamps and sleeps (util/lock.c) ---- */

/* Opens dirfd/.lock and takes a shared or exclusive flock on it; returns
 * the fd (closing it unlocks) or -1 with e set.  Opened anew each time, so
 * a forked child never shares its parent's lock. */
int su_lock_dir(int dirfd, const char *dirname, bool exclusive, struct su_error *e);
/* The current time in RFC 3339 (UTC, "Z"), with or without nanoseconds. */
char *su_rfc3339_now(bool nanoseconds);
/* Sleeps ms milliseconds (a signal may end it early). */
void su_sleep_ms(long ms);
/* The time sec seconds and ns nanoseconds (under a second) from now on
 * clock, as pthread_cond_timedwait wants it. */
struct timespec su_deadline(clockid_t clock, time_t sec, long ns);

/* ---- files (util/file.c) ---- */

/* Writes data to dirfd/name atomically: temporary file, fsync, rename,
 * fsync of the directory.  Returns 0 or a negative errno. */
int su_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* Reads a whole file (up to max bytes) into a NUL-terminated buffer. */
int su_read_file(int dirfd, const char *name, char **out, size_t *len, size_t max);
/* mkdir -p relative to dirfd (AT_FDCWD for absolute paths). */
int su_mkdir_p(int dirfd, const char *path, mode_t mode);
/* rm -rf of dirfd/name, without following symlinks or crossing mounts. */
int su_rm_rf_at(int dirfd, const char *name);
/* Copies size bytes of data from in to out (both at offset 0), keeping
 * holes: FICLONE, else copy_file_range of the data extents, else read and
 * write.  Returns 0 or a negative errno. */
int su_copy_data(int in, int out, off_t size);
/* Full read/write loops that retry on EINTR and short counts. */
ssize_t su_read_all(int fd, void *buf, size_t len);
ssize_t su_write_all(int fd, const void *buf, size_t len);

#endif
