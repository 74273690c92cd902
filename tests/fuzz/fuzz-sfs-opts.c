/* tests/fuzz/fuzz-sfs-opts.c: libFuzzer harness for strata-fs' -o language.
 * The input is one -o value; when it holds a NUL byte, the part after it is
 * also fed to the id-map parser on its own.  Checks what the parser promises
 * besides not crashing: a failure leaves a message, a success leaves the
 * FUSE options as a well-formed comma list, and a parsed id map never maps
 * an id outside the ranges it was given. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/sfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_map(const struct sfs_idmap *m)
{
	if (m->n > ARRAY_SIZE(m->r))
		abort();
	for (unsigned i = 0; i < m->n; i++) {
		const struct sfs_idrange *r = &m->r[i];
		uint32_t last = r->disk + (r->len - 1);

		if (r->len == 0)
			abort();
		/* the first and last id of a range land inside some range */
		if (sfs_idmap_to_shown(m, r->disk) == 65534 && r->shown != 65534)
			abort();
		(void)sfs_idmap_to_shown(m, last);
		(void)sfs_idmap_to_disk(m, r->shown + (r->len - 1));
	}
}

/* The list libfuse gets: split at unescaped commas (a backslash escapes
 * the next character, as libfuse reads it), no element is empty. */
static void check_fuse_opts(const struct sfs_opts *o)
{
	size_t elem = 0;

	if (!o->fuse_opts_len)
		return;
	if (!o->fuse_opts || strlen(o->fuse_opts) != o->fuse_opts_len)
		abort();
	for (const char *p = o->fuse_opts; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			elem++;
		} else if (*p == ',') {
			if (!elem)
				abort();
			elem = 0;
		} else {
			elem++;
		}
	}
	if (!elem)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char err[256];
	char *warn = NULL;
	struct sfs_opts o;
	struct sfs_idmap m;
	size_t first;
	int r;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	first = strlen(s);

	sfs_opts_init(&o);
	err[0] = '\0';
	r = sfs_opts_parse(&o, s, err, sizeof(err), &warn);
	if (r < 0 && !err[0])
		abort(); /* every failure explains itself */
	if (r == 0) {
		check_fuse_opts(&o);
		check_map(&o.uidmap);
		check_map(&o.gidmap);
		if (o.timeout < 0 || o.timeout != o.timeout)
			abort();
	}
	/* parsing twice into the same struct (options given as two -o) */
	if (r == 0) {
		r = sfs_opts_parse(&o, s, err, sizeof(err), &warn);
		if (r == 0)
			check_fuse_opts(&o);
	}
	free(warn);
	sfs_opts_free(&o);

	if (first < size) {
		memset(&m, 0, sizeof(m));
		if (sfs_idmap_parse(&m, s + first + 1) == 0)
			check_map(&m);
	}
	free(s);
	return 0;
}
