/* launcher/state: <root>/containers/<id>/{config.json,state.json}, finding
 * containers by id, prefix or name, the lock of a container, and telling
 * whether their recorded processes still live (pid plus start time, so a
 * reused pid never counts). */
#include "launcher/launcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

char *lch_containers_dir(const char *root)
{
	char *d = su_asprintf("%s/containers", root);

	if (d)
		su_mkdir_p(AT_FDCWD, d, 0700);
	return d;
}

static json_t *load_json(const char *root, const char *id, const char *file)
{
	_cleanup_free_ char *p = su_asprintf("%s/containers/%s/%s", root, id, file);

	return p ? json_load_file(p, 0, NULL) : NULL;
}

int lch_load(const char *root, const char *id, struct lch_spec *spec, struct su_error *e)
{
	json_t *j = load_json(root, id, "config.json");
	int r;

	if (!j)
		return su_error_set(e, ENOENT, "container %s: read config.json", id);
	r = lch_spec_from_json(j, spec, e);
	json_decref(j);
	return r < 0 ? su_error_wrap(e, "container %s", id) : 0;
}

int lch_list(const char *root, char ***ids, struct su_error *e)
{
	_cleanup_free_ char *dir = lch_containers_dir(root);
	_cleanup_closedir_ DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;
	char **v = calloc(1, sizeof(*v));
	char **created = calloc(1, sizeof(*created));
	size_t n = 0;

	if (!d || !v || !created) {
		free(v);
		free(created);
		return su_error_set(e, errno, "open %s", dir ? dir : "containers");
	}
	while ((de = readdir(d))) {
		json_t *j;
		char **nv, **nc;

		if (de->d_name[0] == '.' || !(j = load_json(root, de->d_name, "config.json")))
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		nc = nv ? realloc(created, (n + 2) * sizeof(*created)) : NULL;
		if (nv)
			v = nv;
		if (nc)
			created = nc;
		if (nv && nc) {
			v[n] = strdup(de->d_name);
			created[n] = strdup(json_string_value(json_object_get(j, "Created")) ?: "");
			n++;
			v[n] = created[n] = NULL;
		}
		json_decref(j);
	}
	/* Newest first; a handful of containers, insertion sort is enough. */
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && strcmp(created[k - 1], created[k]) < 0; k--) {
			char *t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
			t = created[k];
			created[k] = created[k - 1];
			created[k - 1] = t;
		}
	su_strv_free(created);
	*ids = v;
	return 0;
}

int lch_lookup(const char *root, const char *ref, char **id, struct su_error *e)
{
	char **ids = NULL, *match = NULL;
	int nmatch = 0;

	if (!ref || !*ref)
		return su_error_set(e, 0, "no container given");
	if (lch_list(root, &ids, e) < 0)
		return -1;
	for (size_t i = 0; ids[i]; i++) {
		json_t *j = load_json(root, ids[i], "config.json");
		const char *name = json_string_value(json_object_get(j, "Name"));

		if (!strcmp(ids[i], ref) || (name && !strcmp(name, ref))) {
			match = ids[i];
			nmatch = 1;
			json_decref(j);
			break;
		}
		if (su_str_has_prefix(ids[i], ref)) {
			match = ids[i];
			nmatch++;
		}
		json_decref(j);
	}
	if (nmatch == 1)
		*id = strdup(match);
	su_strv_free(ids);
	if (nmatch == 0)
		return su_error_set(e, ENOENT, "no such container: %s", ref);
	if (nmatch > 1)
		return su_error_set(e, 0, "multiple containers match %s", ref);
	return 0;
}

/* ---- the container lock ---- */

/* The lock is a flock on the container's directory itself: it follows the
 * directory through rm's rename to .rm-<id> (so whoever deletes that tree
 * still holds it), adds no file to the store, and dies with the last
 * process holding it. */
int lch_lock(const char *root, const char *id, bool wait, struct su_error *e)
{
	_cleanup_free_ char *dir = su_asprintf("%s/containers/%s", root, id);
	int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
	struct stat held, now;

	if (fd < 0 && errno == ENOENT)
		return su_error_set(e, ENOENT, "no such container: %s", id);
	if (fd < 0)
		return su_error_set(e, errno, "open %s", dir ? dir : id);
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno != EINTR) {
			su_error_set(e, errno == EWOULDBLOCK ? EBUSY : errno, "lock container %s",
				     id);
			close(fd);
			return -1;
		}
	}
	/* An rm that held it before us has renamed it away. */
	if (fstat(fd, &held) < 0 || stat(dir, &now) < 0 || held.st_ino != now.st_ino ||
	    held.st_dev != now.st_dev) {
		close(fd);
		return su_error_set(e, ENOENT, "no such container: %s", id);
	}
	return fd;
}

/* ---- processes ---- */

/* Reads /proc/PID/stat: the start time, and whether the process is
 * exiting (PF_EXITING: a PID 1 stays so until every process of its
 * namespace is reaped).  -1 for a zombie or no process. */
static int proc_stat(pid_t pid, unsigned long long *start, bool *leaving)
{
	_cleanup_free_ char *path = su_asprintf("/proc/%d/stat", (int)pid), *buf = NULL;
	char *s;

	if (!path || su_read_file(AT_FDCWD, path, &buf, NULL, 4096) < 0)
		return -1;
	/* After "pid (comm) ", field 3 is the state, 9 the flags, 22 the
	 * start time. */
	s = strrchr(buf, ')');
	if (!s || s[1] != ' ')
		return -1;
	s += 2;
	if (*s == 'Z' || *s == 'X')
		return -1;
	for (int field = 3; field <= 22; field++) {
		if (field == 9)
			*leaving = strtoull(s, NULL, 10) & 0x4 /* PF_EXITING */;
		else if (field == 22)
			*start = strtoull(s, NULL, 10);
		s = strchr(s, ' ');
		if (!s)
			return field == 22 ? 0 : -1;
		s++;
	}
	return 0;
}

/* A SIGKILL waits for the process (/proc/PID/status: SigPnd for the
 * thread, ShdPnd for the process; kill(2) of a namespace's PID 1 leaves it
 * there until PID 1 runs). */
static bool kill_pending(pid_t pid)
{
	_cleanup_free_ char *path = su_asprintf("/proc/%d/status", (int)pid), *buf = NULL;
	const char *names[] = {"\nSigPnd:", "\nShdPnd:"};

	if (!path || su_read_file(AT_FDCWD, path, &buf, NULL, 16384) < 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *s = strstr(buf, names[i]);

		if (s && strtoull(s + strlen(names[i]), NULL, 16) & (1ULL << (SIGKILL - 1)))
			return true;
	}
	return false;
}

int lch_proc_get(pid_t pid, struct lch_proc *p)
{
	bool leaving = false;

	p->pid = pid;
	p->start = 0;
	return proc_stat(pid, &p->start, &leaving);
}

static bool proc_is(const struct lch_proc *p, bool running)
{
	unsigned long long start = 0;
	bool leaving = false;

	/* The pending SIGKILL first: once PID 1 has taken it, PF_EXITING is
	 * set within a few instructions, long before the stat is read. */
	if (p->pid <= 0 || (running && kill_pending(p->pid)))
		return false;
	if (proc_stat(p->pid, &start, &leaving) < 0 || start != p->start)
		return false;
	return !(running && leaving);
}

bool lch_proc_alive(const struct lch_proc *p)
{
	return proc_is(p, false);
}

bool lch_proc_running(const struct lch_proc *p)
{
	return proc_is(p, true);
}

/* ---- state.json ---- */

const char *lch_status_name(enum lch_status s)
{
	static const char *names[] = {"created", "running", "exited", "dead"};

	return names[s];
}

static json_t *proc_json(const struct lch_proc *p)
{
	return json_pack("{s:i, s:I}", "Pid", (int)p->pid, "Start", (json_int_t)p->start);
}

static void proc_from(json_t *j, struct lch_proc *p)
{
	p->pid = (pid_t)json_integer_value(json_object_get(j, "Pid"));
	p->start = (unsigned long long)json_integer_value(json_object_get(j, "Start"));
}

int lch_state_write(const char *root, const char *id, const struct lch_state *st)
{
	_cleanup_free_ char *dir = su_asprintf("%s/containers/%s", root, id), *text = NULL;
	_cleanup_close_ int dfd = dir ? open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	json_t *j;

	if (dfd < 0)
		return -1;
	j = json_pack("{s:s, s:b, s:o, s:o, s:o, s:i, s:s?, s:s?, s:s?}", "Status",
		      lch_status_name(st->status), "Removing", st->removing, "Keeper",
		      proc_json(&st->keeper), "Init", proc_json(&st->init), "Fs",
		      proc_json(&st->fs), "ExitCode", st->exit_code, "StartedAt", st->started_at,
		      "FinishedAt", st->finished_at, "Error", st->error);
	text = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
	json_decref(j);
	if (!text)
		return -1;
	return su_write_atomic(dfd, "state.json", text, strlen(text), 0600) < 0 ? -1 : 0;
}

int lch_state_read(const char *root, const char *id, struct lch_state *st)
{
	json_t *j = load_json(root, id, "state.json");
	const char *s;

	memset(st, 0, sizeof(*st));
	st->status = LCH_CREATED;
	if (!j)
		return 0;
	s = json_string_value(json_object_get(j, "Status"));
	for (int i = LCH_CREATED; s && i <= LCH_DEAD; i++)
		if (!strcmp(s, lch_status_name(i)))
			st->status = i;
	st->removing = json_is_true(json_object_get(j, "Removing"));
	proc_from(json_object_get(j, "Keeper"), &st->keeper);
	proc_from(json_object_get(j, "Init"), &st->init);
	proc_from(json_object_get(j, "Fs"), &st->fs);
	st->exit_code = (int)json_integer_value(json_object_get(j, "ExitCode"));
	if ((s = json_string_value(json_object_get(j, "StartedAt"))))
		st->started_at = strdup(s);
	if ((s = json_string_value(json_object_get(j, "FinishedAt"))))
		st->finished_at = strdup(s);
	if ((s = json_string_value(json_object_get(j, "Error"))))
		st->error = strdup(s);
	json_decref(j);
	return 0;
}

void lch_state_free(struct lch_state *st)
{
	free(st->started_at);
	free(st->finished_at);
	free(st->error);
	memset(st, 0, sizeof(*st));
}

/* A keeper whose PID 1 (or strata-fs) has died is recording the exit:
 * unmounting, waiting for strata-fs, then writing state.json.  Until then
 * the record says running while there is no command left to exec into. */
static bool exiting(const struct lch_state *st)
{
	return st->status == LCH_RUNNING && st->keeper.pid != getpid() &&
	       lch_proc_alive(&st->keeper) &&
	       !(lch_proc_running(&st->init) && lch_proc_running(&st->fs));
}

int lch_state_read_settled(const char *root, const char *id, struct lch_state *st)
{
	/* (the keeper gives strata-fs 5 s to exit before it kills it) */
	lch_state_read(root, id, st);
	for (int ms = 0; ms < 6000 && exiting(st); ms += 10) {
		su_sleep_ms(10);
		lch_state_free(st);
		lch_state_read(root, id, st);
	}
	/* The keeper may have written its record and exited between the
	 * read and the look at its liveness: it writes before it exits, so
	 * the record read once more is its last word. */
	if (st->status == LCH_RUNNING && st->keeper.pid != getpid() &&
	    !lch_proc_alive(&st->keeper)) {
		lch_state_free(st);
		lch_state_read(root, id, st);
	}
	return 0;
}

enum lch_status lch_state_actual(const struct lch_state *st)
{
	if (st->status != LCH_RUNNING)
		return st->status;
	/* The command runs as long as its PID 1 does; a keeper that died
	 * with it alive is a crash `rm` cleans up. */
	if (lch_proc_running(&st->init) && lch_proc_running(&st->fs))
		return LCH_RUNNING;
	/* (a live keeper is recording the exit) */
	return lch_proc_alive(&st->keeper) ? LCH_RUNNING : LCH_DEAD;
}
