/* util/str: allocating formatting, growing buffers, escaped splitting. */
#include "util/util.h"

#include <stdio.h>
#include <string.h>

char *su_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

int su_strbuf_add(char **buf, size_t *len, size_t *cap, const char *src, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t ncap = *cap ? *cap : 64;
		char *nb;

		while (*len + n + 1 > ncap)
			ncap *= 2;
		nb = realloc(*buf, ncap);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, src, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

bool su_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void su_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t su_strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

char **su_split_escaped(const char *s, char sep)
{
	size_t n = 1, i = 0;
	char **v;
	char *cur;
	size_t clen = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		else if (*p == sep)
			n++;
	}
	v = calloc(n + 1, sizeof(*v));
	cur = malloc(strlen(s) + 1);
	if (!v || !cur)
		goto fail;
	for (const char *p = s;; p++) {
		if (*p == '\\' && p[1]) {
			cur[clen++] = *++p;
			continue;
		}
		if (*p == sep || *p == '\0') {
			cur[clen] = '\0';
			v[i] = strdup(cur);
			if (!v[i++])
				goto fail;
			clen = 0;
			if (*p == '\0')
				break;
			continue;
		}
		cur[clen++] = *p;
	}
	free(cur);
	return v;
fail:
	free(cur);
	su_strv_free(v);
	errno = ENOMEM;
	return NULL;
}
