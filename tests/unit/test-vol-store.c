/* tests/unit/test-vol-store: the volume store through its C API -- create
 * (idempotent, anonymous), inspect, list and filters, references and the
 * refusal to remove referenced volumes, prune, concurrent writers, and
 * crashes in the middle of create and rm. */
#include "tests/unit/tap.h"
#include "volumes/volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *root;

static struct vol_store *store(void)
{
	struct vol_store *s = NULL;
	struct su_error e = {0};

	if (vol_store_open(root, &s, &e) < 0) {
		tap_diag("open store: %s", e.msg);
		exit(1);
	}
	return s;
}

/* Whether volumes/<name><sub> exists. */
static bool exists(const char *name, const char *sub)
{
	_cleanup_free_ char *p = su_asprintf("%s/volumes/%s%s", root, name, sub);
	struct stat st;
	return stat(p, &st) == 0;
}

/* Number of entries of volumes/ whose name starts with prefix. */
static int count_entries(const char *prefix)
{
	_cleanup_free_ char *p = su_asprintf("%s/volumes", root);
	_cleanup_closedir_ DIR *d = opendir(p);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += su_str_has_prefix(de->d_name, prefix);
	return n;
}

static json_t *kv(const char *k, const char *v)
{
	return json_pack("{s:s}", k, v);
}

static void test_create_inspect(struct vol_store *s)
{
	struct vol_create_opts o = {.name = "data", .labels = kv("a", "b")};
	struct su_error e = {0};
	struct vol_info *v = NULL;
	char *name = NULL;
	bool created = false;
	regex_t re;

	tap_ok(vol_create(s, &o, &name, &created, &e) == 0 && created, "create data");
	tap_is(name, "data", "create returns the name");
	free(name);
	json_decref(o.labels);

	o.labels = kv("a", "changed");
	tap_ok(vol_create(s, &o, NULL, &created, &e) == 0 && !created,
	       "create data again finds the existing volume");
	json_decref(o.labels);

	tap_ok(vol_inspect(s, "data", &v, &e) == 0, "inspect data");
	if (!v)
		return;
	tap_is(json_string_value(json_object_get(v->labels, "a")), "b",
	       "the second create left the labels unchanged");
	tap_is(v->driver, "local", "driver is local");
	regcomp(&re,
		"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})$",
		REG_EXTENDED | REG_NOSUB);
	tap_ok(regexec(&re, v->created_at, 0, NULL, 0) == 0, "CreatedAt '%s' is RFC 3339",
	       v->created_at);
	regfree(&re);
	_cleanup_free_ char *mp = su_asprintf("%s/volumes/data/_data", root);
	tap_is(v->mountpoint, mp, "Mountpoint is volumes/data/_data");
	tap_ok(exists("data", "/_data") && exists("data", "/meta.json"),
	       "_data and meta.json exist");
	tap_ok(!v->anonymous && v->refs && !v->refs[0], "named, no references");
	json_t *j = vol_info_to_json(v);
	_cleanup_free_ char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	_cleanup_free_ char *want = su_asprintf(
	    "{\"CreatedAt\":\"%s\",\"Driver\":\"local\",\"Labels\":{\"a\":\"b\"},\"Mountpoint\":"
	    "\"%s\",\"Name\":\"data\",\"Options\":{},\"Scope\":\"local\"}",
	    v->created_at, mp);
	tap_is(text, want, "inspect JSON has Docker's keys");
	json_decref(j);
	vol_info_free(v);

	v = NULL;
	tap_ok(vol_inspect(s, "nope", &v, &e) < 0 && e.errnum == ENOENT, "inspect nope: ENOENT");
	tap_is(e.msg, "no such volume: nope", "inspect nope: message");
}

static void test_create_errors(struct vol_store *s)
{
	struct vol_create_opts o = {.name = "x"};
	struct su_error e = {0};
	char *name = NULL;
	bool created;

	tap_ok(vol_create(s, &o, NULL, NULL, &e) < 0, "create refuses the name 'x'");
	o.name = "ok1";
	o.options = kv("foo", "bar");
	tap_ok(vol_create(s, &o, NULL, NULL, &e) < 0, "create refuses option foo");
	tap_is(e.msg, "create ok1: invalid option: \"foo\"", "bad option message");
	json_decref(o.options);
	tap_ok(!exists("ok1", ""), "nothing was created");

	o.name = NULL;
	o.options = kv("type", "tmpfs");
	tap_ok(vol_create(s, &o, &name, &created, &e) == 0 && created, "create anonymous");
	json_decref(o.options);
	tap_ok(name && strlen(name) == 64 && strspn(name, "0123456789abcdef") == 64,
	       "anonymous name is 64 hex digits");
	struct vol_info *v = NULL;
	vol_inspect(s, name, &v, &e);
	tap_ok(v && v->anonymous &&
		   !strcmp(json_string_value(json_object_get(v->options, "type")), "tmpfs"),
	       "anonymous volume is marked so and keeps its options");
	vol_info_free(v);
	vol_rm(s, name, false, &e);
	free(name);
}

static int list_match(struct vol_store *s, const char *const *terms, size_t nt, char *out,
		      size_t outlen)
{
	struct vol_filter *f = NULL;
	struct vol_info **v = NULL;
	struct su_error e = {0};
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < nt; i++)
		if (vol_filter_add(&f, terms[i], &e) < 0)
			return -1;
	if (vol_list(s, &v, &n, &e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (vol_filter_match(f, v[i]))
			snprintf(out + strlen(out), outlen - strlen(out), "%s%s", *out ? " " : "",
				 v[i]->name);
	vol_info_list_free(v, n);
	vol_filter_free(f);
	return 0;
}

#define LIST(want, ...)                                                                            \
	do {                                                                                       \
		const char *const t_[] = {__VA_ARGS__};                                            \
		char got_[512];                                                                    \
		list_match(s, t_, ARRAY_SIZE(t_), got_, sizeof(got_));                             \
		tap_is(got_, want, "ls --filter %s", t_[0]);                                       \
	} while (0)

static void test_list_filters(struct vol_store *s)
{
	struct vol_create_opts o = {.name = "other",
				    .labels = json_pack("{s:s, s:s}", "a", "x", "c", "d")};
	struct su_error e = {0};
	struct vol_filter *f = NULL;

	vol_create(s, &o, NULL, NULL, &e);
	json_decref(o.labels);
	LIST("data other", "driver=local");
	LIST("data other", "label=a");
	LIST("data", "label=a=b");
	LIST("other", "label=a", "label=c");
	LIST("", "label=a=b", "label=c");
	LIST("data", "name=^da");
	LIST("data other", "name=da", "name=oth");
	LIST("data other", "dangling=true");
	LIST("", "dangling=false");
	tap_ok(vol_filter_add(&f, "bogus=1", &e) < 0, "filter bogus=1 is refused");
	tap_is(e.msg, "invalid filter 'bogus'", "bad filter key message");
	tap_ok(vol_filter_add(&f, "dangling=maybe", &e) < 0, "filter dangling=maybe is refused");
	tap_ok(vol_filter_add(&f, "label", &e) < 0, "filter without '=' is refused");
	vol_filter_free(f);
}

static void test_refs(struct vol_store *s)
{
	struct su_error e = {0};
	char **refs = NULL;

	tap_ok(vol_ref_add(s, "data", "c2", &e) == 0 && vol_ref_add(s, "data", "c1", &e) == 0 &&
		   vol_ref_add(s, "data", "c1", &e) == 0,
	       "add references c2, c1, c1");
	tap_ok(vol_refs_list(s, "data", &refs, &e) == 0 && refs[0] && !strcmp(refs[0], "c1") &&
		   refs[1] && !strcmp(refs[1], "c2") && !refs[2],
	       "references are [c1, c2], once each");
	su_strv_free(refs);
	tap_ok(vol_ref_add(s, "nope", "c1", &e) < 0 && e.errnum == ENOENT,
	       "a reference to a missing volume is refused");
	tap_ok(vol_ref_add(s, "data", "../evil", &e) < 0 && !exists("evil", ""),
	       "a container id with '/' is refused");
	LIST("data", "dangling=false");
	LIST("other", "dangling=true");

	tap_ok(vol_rm(s, "data", false, &e) < 0 && e.errnum == EBUSY,
	       "rm of a referenced volume fails");
	tap_is(e.msg, "remove data: volume is in use - [c1, c2]",
	       "in-use message names containers");
	tap_ok(vol_rm(s, "data", true, &e) < 0, "rm -f of a referenced volume fails too");
	tap_ok(exists("data", "/meta.json"), "the referenced volume is still there");

	char **removed = NULL;
	uint64_t bytes;
	tap_ok(vol_prune(s, true, &removed, &bytes, &e) == 0 && removed && removed[0] &&
		   !strcmp(removed[0], "other") && !removed[1],
	       "prune -a removes the unreferenced volume only");
	su_strv_free(removed);

	tap_ok(vol_ref_del(s, "data", "c1", &e) == 0 && vol_ref_del(s, "data", "c1", &e) == 0,
	       "drop reference c1 (twice)");
	tap_ok(vol_rm(s, "data", false, &e) < 0 && strstr(e.msg, "[c2]"),
	       "still refused while c2 holds it");
	tap_ok(vol_ref_del(s, "data", "c2", &e) == 0 && vol_rm(s, "data", false, &e) == 0,
	       "rm succeeds once no container references it");
	tap_ok(!exists("data", ""), "the volume directory is gone");
	tap_ok(vol_rm(s, "data", false, &e) < 0 && e.errnum == ENOENT, "rm again: no such volume");
	tap_ok(vol_rm(s, "data", true, &e) == 0, "rm -f of a missing volume succeeds");
	tap_ok(vol_ref_del(s, "data", "c2", &e) == 0,
	       "dropping a reference of a removed volume is fine");
}

static void test_prune(struct vol_store *s)
{
	struct vol_create_opts o = {.name = "keepme"};
	struct su_error e = {0};
	char *anon = NULL, *anon2 = NULL, **removed = NULL;
	uint64_t bytes = 0;
	char buf[5000];

	vol_create(s, &o, NULL, NULL, &e);
	o.name = NULL;
	vol_create(s, &o, &anon, NULL, &e);
	vol_create(s, &o, &anon2, NULL, &e);
	vol_ref_add(s, anon2, "ctr", &e);
	_cleanup_free_ char *f = su_asprintf("%s/volumes/%s/_data/f", root, anon);
	_cleanup_free_ char *l = su_asprintf("%s/volumes/%s/_data/l", root, anon);
	int fd = open(f, O_WRONLY | O_CREAT, 0644);
	memset(buf, 'x', sizeof(buf));
	tap_ok(fd >= 0 && write(fd, buf, sizeof(buf)) == sizeof(buf), "write 5000 bytes");
	close(fd);
	link(f, l);

	tap_ok(vol_prune(s, false, &removed, &bytes, &e) == 0, "prune");
	tap_ok(removed && removed[0] && !strcmp(removed[0], anon) && !removed[1],
	       "prune removes the unreferenced anonymous volume only");
	tap_is_int(bytes, 5000, "reclaimed space counts hard links once");
	tap_ok(exists("keepme", "") && exists(anon2, "") && !exists(anon, ""),
	       "named and referenced volumes stay");
	su_strv_free(removed);
	tap_ok(vol_prune(s, true, &removed, &bytes, &e) == 0 && removed && removed[0] &&
		   !strcmp(removed[0], "keepme") && !removed[1] && bytes == 0,
	       "prune -a removes the named unused one, not the referenced one");
	su_strv_free(removed);
	vol_ref_del(s, anon2, "ctr", &e);
	vol_rm(s, anon2, false, &e);
	free(anon);
	free(anon2);
}

#define NPROC 8
#define NANON 5

static int child_create(int i)
{
	struct vol_store *s = store();
	struct vol_create_opts o = {.name = "shared"};
	_cleanup_free_ char *own = su_asprintf("own-%d", i);
	struct su_error e = {0};
	bool created = false, c2;
	int rc = 0;

	if (vol_create(s, &o, NULL, &created, &e) < 0)
		rc = 1;
	o.name = own;
	if (vol_create(s, &o, NULL, &c2, &e) < 0 || !c2)
		rc = 1;
	o.name = NULL;
	for (int k = 0; k < NANON; k++)
		if (vol_create(s, &o, NULL, NULL, &e) < 0)
			rc = 1;
	if (vol_ref_add(s, "shared", own, &e) < 0)
		rc = 1;
	if (rc)
		fprintf(stderr, "child %d: %s\n", i, e.msg);
	vol_store_close(s);
	return rc ? 1 : created ? 10 : 0;
}

static void test_concurrent(struct vol_store *s)
{
	struct su_error e = {0};
	struct vol_info **v = NULL;
	char **refs = NULL;
	size_t n = 0;
	int ok = 0, creators = 0;

	for (int i = 0; i < NPROC; i++)
		if (fork() == 0)
			_exit(child_create(i));
	for (int i = 0; i < NPROC; i++) {
		int st;
		wait(&st);
		ok += WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 10);
		creators += WIFEXITED(st) && WEXITSTATUS(st) == 10;
	}
	tap_is_int(ok, NPROC, "%d processes creating volumes at once all succeed", NPROC);
	tap_is_int(creators, 1, "exactly one of them created 'shared'");
	tap_ok(vol_list(s, &v, &n, &e) == 0, "list after concurrent creates");
	tap_is_int(n, 1 + NPROC + NPROC * NANON, "every volume exists once, none half-made");
	vol_info_list_free(v, n);
	tap_ok(vol_refs_list(s, "shared", &refs, &e) == 0 && su_strv_len(refs) == NPROC,
	       "every concurrent reference was recorded");
	su_strv_free(refs);
	tap_is_int(count_entries(".new-") + count_entries(".rm-"), 0, "no staging leftovers");
	char **removed = NULL;
	uint64_t bytes;
	for (int i = 0; i < NPROC; i++) {
		_cleanup_free_ char *own = su_asprintf("own-%d", i);
		vol_ref_del(s, "shared", own, &e);
	}
	vol_prune(s, true, &removed, &bytes, &e);
	tap_is_int(su_strv_len(removed), 1 + NPROC + NPROC * NANON, "prune -a removes them all");
	su_strv_free(removed);
}

static void die_at(const char *point, void *data)
{
	if (!strcmp(point, (const char *)data))
		raise(SIGKILL);
}

/* Runs fn in a child that is killed at point; true if it died there. */
static bool crash_at(const char *point, bool rm, const char *name)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct vol_store *s = store();
		struct vol_create_opts o = {.name = name};
		struct su_error e = {0};

		vol_store_set_crash_hook(s, die_at, (void *)point);
		if (rm)
			vol_rm(s, name, false, &e);
		else
			vol_create(s, &o, NULL, NULL, &e);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

static void test_crashes(struct vol_store *s)
{
	struct vol_create_opts o = {.name = "victim"};
	struct su_error e = {0};
	struct vol_info *v = NULL, **list = NULL;
	size_t n = 0;
	bool created = false;

	vol_create(s, &o, NULL, NULL, &e);
	_cleanup_free_ char *f = su_asprintf("%s/volumes/victim/_data/file", root);
	close(open(f, O_WRONLY | O_CREAT, 0644));

	tap_ok(crash_at("rm:renamed", true, "victim"), "a process dies in the middle of rm");
	tap_is_int(count_entries(".rm-"), 1, "it left its half-deleted directory behind");
	tap_ok(vol_inspect(s, "victim", &v, &e) < 0 && e.errnum == ENOENT,
	       "the volume is gone as a whole (inspect: no such volume)");
	tap_ok(vol_list(s, &list, &n, &e) == 0 && n == 0, "list is consistent: no volumes");
	vol_info_list_free(list, n);
	tap_ok(vol_create(s, &o, NULL, &created, &e) == 0 && created,
	       "the name can be created again");
	tap_is_int(count_entries(".rm-"), 0, "the next writer removed the leftover");
	vol_inspect(s, "victim", &v, &e);
	tap_ok(v && !exists("victim", "/_data/file"), "the new volume is empty");
	vol_info_free(v);
	v = NULL;

	tap_ok(crash_at("create:staged", false, "fresh"), "a process dies in the middle of create");
	tap_ok(vol_inspect(s, "fresh", &v, &e) < 0 && e.errnum == ENOENT,
	       "the half-created volume does not exist");
	tap_is_int(count_entries(".new-"), 1, "its staging directory is left");
	tap_ok(vol_create(s, &o, NULL, &created, &e) == 0 && !created, "the next create works");
	tap_is_int(count_entries(".new-"), 0, "and removed the staging leftover");
	vol_rm(s, "victim", false, &e);
}

int main(void)
{
	char tmpl[] = "/tmp/test-vol-store.XXXXXX";
	struct vol_store *s;

	if (!mkdtemp(tmpl))
		return 1;
	root = su_asprintf("%s/root", tmpl);
	s = store();
	test_create_inspect(s);
	test_create_errors(s);
	test_list_filters(s);
	test_refs(s);
	test_prune(s);
	test_concurrent(s);
	test_crashes(s);
	vol_store_close(s);
	su_rm_rf_at(AT_FDCWD, tmpl);
	free(root);
	return tap_done();
}
