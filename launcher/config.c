/* launcher/config: Docker's rules for applying an image config -- Env
 * merging, Entrypoint/Cmd, the User field against the image's /etc/passwd
 * and /etc/group -- and for what the container's /etc/hosts, /etc/hostname
 * and /etc/resolv.conf hold. */
#include "launcher/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
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
		v[n++] =
		    strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
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

/* Never creates: an image without /etc/passwd gets none made. */
static FILE *open_in(int rootfd, const char *path)
{
	int fd = lch_resolve_in_root(rootfd, path, 0), rfd;
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
		return su_error_set(
		    e, 0, "unable to find user %s: no matching entries in passwd file", u);
	}
	if (g) {
		if (is_num(g)) {
			*gid = (gid_t)strtoul(g, NULL, 10);
		} else if (gr && find_entry(gr, g, false, &line, &cap, f, 4)) {
			*gid = (gid_t)strtoul(f[2], NULL, 10);
		} else {
			free(line);
			return su_error_set(
			    e, 0, "unable to find group %s: no matching entries in group file", g);
		}
		*ngroups = 0;
	}
	free(line);
	return 0;
}

/* ---- /etc/hosts, /etc/hostname, /etc/resolv.conf ---- */

/* Letters, digits, '-', '_' and '.', starting with a letter or digit: what
 * a hosts file line and sethostname(2) can both take. */
static bool host_name_valid(const char *h, size_t max)
{
	size_t n = strlen(h);

	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

		if (!alnum && (!i || (c != '-' && c != '_' && c != '.')))
			return false;
	}
	return true;
}

bool lch_hostname_valid(const char *h)
{
	return host_name_valid(h, HOST_NAME_MAX);
}

static bool ip_valid(const char *ip)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, ip, buf) == 1 || inet_pton(AF_INET6, ip, buf) == 1;
}

int lch_extra_host_parse(const char *arg, bool host_net, char **out, struct su_error *e)
{
	const char *sep = strchr(arg, '=');
	_cleanup_free_ char *name = NULL, *ip = NULL;
	size_t len;

	/* Docker: "name=ip", or "name:ip" split at the first ':' (so an
	 * IPv6 address needs no brackets); the name holds no ':'. */
	if (!sep)
		sep = strchr(arg, ':');
	if (!sep)
		return su_error_set(e, 0, "bad format for add-host: \"%s\" (want host:ip)", arg);
	name = strndup(arg, (size_t)(sep - arg));
	ip = strdup(sep + 1);
	if (!name || !ip)
		return su_error_set(e, ENOMEM, "add-host");
	if (!host_name_valid(name, 253))
		return su_error_set(e, 0, "bad format for add-host: \"%s\": invalid host name",
				    arg);
	len = strlen(ip);
	if (len > 2 && ip[0] == '[' && ip[len - 1] == ']') {
		memmove(ip, ip + 1, len - 2);
		ip[len - 2] = 0;
	}
	if (!strcmp(ip, "host-gateway")) {
		/* With the host's network the host is this machine's
		 * loopback; a network namespace of its own reaches no host. */
		if (!host_net)
			return su_error_set(e, 0, "\"%s\": host-gateway needs --network host", arg);
		free(ip);
		ip = strdup("127.0.0.1");
	} else if (!ip_valid(ip)) {
		return su_error_set(e, 0, "invalid IP address in add-host: \"%s\"", ip);
	}
	*out = ip ? su_asprintf("%s:%s", name, ip) : NULL;
	return *out ? 0 : su_error_set(e, ENOMEM, "add-host");
}

static int buf_add(char **s, size_t *len, size_t *cap, const char *str)
{
	return su_strbuf_add(s, len, cap, str, strlen(str));
}

char *lch_hosts_text(const char *hostname, char *const *extra_hosts)
{
	char *s = NULL;
	size_t len = 0, cap = 0;
	bool named = !strcmp(hostname, "localhost");
	int r = buf_add(&s, &len, &cap,
			"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");

	for (size_t i = 0; r == 0 && extra_hosts && extra_hosts[i]; i++) {
		const char *colon = strchr(extra_hosts[i], ':');
		_cleanup_free_ char *line = NULL;

		if (!colon)
			continue;
		line = su_asprintf("%s\t%.*s\n", colon + 1, (int)(colon - extra_hosts[i]),
				   extra_hosts[i]);
		r = line ? buf_add(&s, &len, &cap, line) : -ENOMEM;
		named |= (size_t)(colon - extra_hosts[i]) == strlen(hostname) &&
			 !strncmp(extra_hosts[i], hostname, strlen(hostname));
	}
	/* An --add-host of the host name wins, as with podman. */
	if (r == 0 && !named) {
		_cleanup_free_ char *line = su_asprintf("127.0.0.1\t%s\n", hostname);

		r = line ? buf_add(&s, &len, &cap, line) : -ENOMEM;
	}
	if (r < 0 || !s) {
		free(s);
		return NULL;
	}
	return s;
}

/* The address of a "nameserver ADDR" line, NUL-terminated in *addr (at
 * most size bytes); false for any other line. */
static bool nameserver_of(const char *line, size_t n, char *addr, size_t size)
{
	size_t i = strlen("nameserver"), k = 0;

	if (n <= i || strncmp(line, "nameserver", i) || (line[i] != ' ' && line[i] != '\t'))
		return false;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	while (i < n && line[i] != ' ' && line[i] != '\t' && line[i] != '\n' && k + 1 < size)
		addr[k++] = line[i++];
	addr[k] = 0;
	return k > 0;
}

/* podman's filter for a network namespace of its own: loopback
 * nameservers (the host's stub resolvers) and IPv6 ones (the namespace has
 * no IPv6) are unreachable from it; with none left, Google's. */
static char *resolv_filter(const char *text)
{
	char *s = NULL, addr[INET6_ADDRSTRLEN + 16];
	size_t len = 0, cap = 0, kept = 0;
	int r = su_strbuf_add(&s, &len, &cap, "", 0);

	for (const char *l = text; r == 0 && *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);

		if (nameserver_of(l, n, addr, sizeof(addr))) {
			if (su_str_has_prefix(addr, "127.") || strchr(addr, ':')) {
				l += n;
				continue;
			}
			kept++;
		}
		r = su_strbuf_add(&s, &len, &cap, l, n);
		if (r == 0 && !nl)
			r = buf_add(&s, &len, &cap, "\n");
		l += n;
	}
	if (r == 0 && !kept)
		r = buf_add(&s, &len, &cap, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
	if (r < 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* A host whose only nameserver is a local stub (systemd-resolved,
 * NetworkManager) keeps the real list elsewhere. */
static const char *stub_upstream(const char *text)
{
	char addr[INET6_ADDRSTRLEN + 16], only[sizeof(addr)] = "";
	size_t count = 0;

	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) + 1 : strlen(l);

		if (nameserver_of(l, n, addr, sizeof(addr)) && count++ == 0)
			memcpy(only, addr, sizeof(only));
		l += n;
	}
	if (count != 1)
		return NULL;
	if (!strcmp(only, "127.0.0.53"))
		return "/run/systemd/resolve/resolv.conf";
	if (!strcmp(only, "127.0.0.1"))
		return "/run/NetworkManager/no-stub-resolv.conf";
	return NULL;
}

char *lch_resolv_conf(bool own_netns)
{
	_cleanup_free_ char *text = NULL, *real = NULL;
	const char *up;

	/* No resolv.conf on the host: an empty one, as podman writes. */
	if (su_read_file(AT_FDCWD, "/etc/resolv.conf", &text, NULL, 1 << 20) < 0)
		text = strdup("");
	if (!text || !own_netns)
		return steal_pointer(&text);
	up = stub_upstream(text);
	if (up && su_read_file(AT_FDCWD, up, &real, NULL, 1 << 20) == 0)
		return resolv_filter(real);
	return resolv_filter(text);
}
