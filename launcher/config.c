/* launcher/config: Docker's rules for applying an image config -- Env
 * merging, Entrypoint/Cmd, and the User field against the image's
 * /etc/passwd and /etc/group. */
#include "launcher/launcher.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Removes KEY (kv is "KEY" or "KEY=...") from v. */
static void env_unset(char **v, size_t *n, const char *kv)
{
	size_t kl = key_len(kv);

	for (size_t i = 0; i < *n; i++) {
		if (key_len(v[i]) == kl && !strncmp(v[i], kv, kl)) {
			free(v[i]);
			memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
			(*n)--;
			return;
		}
	}
}

/* Sets or replaces KEY=VALUE in v (n entries, room for one more + NULL). */
static void env_set(char **v, size_t *n, const char *kv)
{
	size_t kl = key_len(kv);

	for (size_t i = 0; i < *n; i++) {
		if (key_len(v[i]) == kl && !strncmp(v[i], kv, kl)) {
			free(v[i]);
			v[i] = strdup(kv);
			return;
		}
	}
	v[(*n)++] = strdup(kv);
}

char **lch_env_merge(char *const *image_env, char *const *user_env)
{
	size_t cap = su_strv_len(image_env) + su_strv_len(user_env) + 2, n = 0;
	char **v = calloc(cap, sizeof(*v));
	bool have_path = false;

	if (!v)
		return NULL;
	for (size_t i = 0; image_env && image_env[i]; i++)
		if (strchr(image_env[i], '='))
			env_set(v, &n, image_env[i]);
	for (size_t i = 0; user_env && user_env[i]; i++) {
		_cleanup_free_ char *kv = NULL;
		const char *val;

		if (strchr(user_env[i], '=')) {
			env_set(v, &n, user_env[i]);
			continue;
		}
		/* "-e KEY": the caller's value; unset there, the image's value
		 * goes too (Docker's ReplaceOrAppendEnvValues). */
		val = getenv(user_env[i]);
		if (val && (kv = su_asprintf("%s=%s", user_env[i], val)))
			env_set(v, &n, kv);
		else if (!val)
			env_unset(v, &n, user_env[i]);
	}
	for (size_t i = 0; i < n; i++)
		have_path |= su_str_has_prefix(v[i], "PATH=");
	if (!have_path)
		v[n++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	v[n] = NULL;
	return v;
}

int lch_env_file_read(const char *path, char ***v, size_t *n, struct su_error *e)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (!f)
		return su_error_set(e, errno, "open env file %s", path);
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *s = line, **nv;

		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			continue;
		nv = realloc(*v, (*n + 2) * sizeof(**v));
		if (!nv)
			break;
		*v = nv;
		(*v)[(*n)++] = strdup(s);
		(*v)[*n] = NULL;
	}
	free(line);
	return 0;
}

static void strv_append(char ***v, size_t *n, char *const *src)
{
	for (size_t i = 0; src && src[i]; i++) {
		char **nv = realloc(*v, (*n + 2) * sizeof(**v));

		if (!nv)
			return;
		*v = nv;
		(*v)[(*n)++] = strdup(src[i]);
		(*v)[*n] = NULL;
	}
}

char **lch_command(char *const *img_entry, char *const *img_cmd, const char *user_entry,
		   bool have_user_entry, char *const *user_args)
{
	char **v = calloc(1, sizeof(*v)), *one[2] = {NULL, NULL};
	size_t n = 0;

	if (!v)
		return NULL;
	if (have_user_entry) {
		/* --entrypoint "" clears it; the image cmd goes with the
		 * image entrypoint. */
		if (user_entry && *user_entry) {
			one[0] = (char *)user_entry;
			strv_append(&v, &n, one);
		}
		strv_append(&v, &n, user_args);
		return v;
	}
	strv_append(&v, &n, img_entry);
	strv_append(&v, &n, (user_args && user_args[0]) ? user_args : img_cmd);
	return v;
}

/* Finds the line of a passwd/group file whose field 0 (name) or field 2
 * (id) equals key; fills fields (up to 7) pointing into line. */
static bool find_entry(FILE *f, const char *key, bool by_id, char **line, size_t *cap,
		       char **fields, size_t nf)
{
	ssize_t len;

	rewind(f);
	while ((len = getline(line, cap, f)) >= 0) {
		char *s = *line, *save = NULL, *tok;
		size_t i = 0;

		if (len > 0 && s[len - 1] == '\n')
			s[len - 1] = 0;
		memset(fields, 0, nf * sizeof(*fields));
		for (tok = strtok_r(s, ":", &save); tok && i < nf; tok = strtok_r(NULL, ":", &save))
			fields[i++] = tok;
		/* strtok collapses empty fields; passwd lines of interest
		 * have all of name:x:uid:gid. */
		if (i >= 3 && !strcmp(by_id ? fields[2] : fields[0], key))
			return true;
	}
	return false;
}

static FILE *open_in(int rootfd, const char *path)
{
	struct su_error ignored = {0};
	int fd = lch_open_in_root(rootfd, path, false, &ignored), rfd;
	_cleanup_free_ char *p = NULL;

	if (fd < 0)
		return NULL;
	p = su_asprintf("/proc/self/fd/%d", fd);
	rfd = open(p, O_RDONLY | O_CLOEXEC);
	close(fd);
	return rfd < 0 ? NULL : fdopen(rfd, "r");
}

static bool is_num(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* Supplementary groups of user name (and its primary gid). */
static void user_groups(FILE *grp, const char *name, gid_t gid, gid_t *groups, size_t *ngroups)
{
	char *line = NULL, *f[4];
	size_t cap = 0, max = *ngroups;
	ssize_t len;

	*ngroups = 0;
	if (max)
		groups[(*ngroups)++] = gid;
	rewind(grp);
	while (grp && (len = getline(&line, &cap, grp)) >= 0) {
		char *s = line, *members, *tok, *save = NULL;

		if (len > 0 && s[len - 1] == '\n')
			s[len - 1] = 0;
		for (int i = 0; i < 3; i++) {
			f[i] = s;
			s = strchr(s, ':');
			if (!s)
				break;
			*s++ = 0;
		}
		if (!s)
			continue;
		members = s;
		for (tok = strtok_r(members, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (!strcmp(tok, name) && *ngroups < max && is_num(f[2]))
				groups[(*ngroups)++] = (gid_t)strtoul(f[2], NULL, 10);
	}
	free(line);
}

int lch_user_resolve(int rootfd, const char *user, uid_t *uid, gid_t *gid, gid_t *groups,
		     size_t *ngroups, char **home, struct su_error *e)
{
	_cleanup_free_ char *u = strdup(user && *user ? user : "0");
	_cleanup_fclose_ FILE *pw = open_in(rootfd, "/etc/passwd");
	_cleanup_fclose_ FILE *gr = open_in(rootfd, "/etc/group");
	char *g = u ? strchr(u, ':') : NULL, *line = NULL, *f[7];
	size_t cap = 0, max = *ngroups;
	bool found;

	if (!u)
		return su_error_set(e, ENOMEM, "user");
	if (g)
		*g++ = 0;
	*ngroups = 0;
	*home = NULL;
	found = pw && find_entry(pw, u, is_num(u), &line, &cap, f, 7);
	if (found) {
		*uid = (uid_t)strtoul(f[2], NULL, 10);
		*gid = (gid_t)strtoul(f[3] ? f[3] : "0", NULL, 10);
		*home = f[5] ? strdup(f[5]) : NULL;
		*ngroups = max;
		if (!g && gr)
			user_groups(gr, f[0], *gid, groups, ngroups);
	} else if (is_num(u)) {
		*uid = (uid_t)strtoul(u, NULL, 10);
		*gid = 0; /* as Docker: no passwd entry, group 0 */
	} else {
		free(line);
		return su_error_set(e, 0, "unable to find user %s: no matching entries in passwd file",
				    u);
	}
	if (g) {
		if (is_num(g)) {
			*gid = (gid_t)strtoul(g, NULL, 10);
		} else if (gr && find_entry(gr, g, false, &line, &cap, f, 4)) {
			*gid = (gid_t)strtoul(f[2], NULL, 10);
		} else {
			free(line);
			return su_error_set(e, 0,
					    "unable to find group %s: no matching entries in group file",
					    g);
		}
		*ngroups = 0;
	}
	free(line);
	return 0;
}
