/* tests/fuzz/vol-spec-fuzz.h: the body shared by the -v, --mount and --tmpfs
 * harnesses.  Besides not crashing: a failure carries a message, a success
 * yields an absolute target other than "/", and vol_mount_clear releases
 * everything (LeakSanitizer checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "volumes/volumes.h"

typedef int (*vol_spec_parser)(const char *spec, struct vol_mount *m, struct su_error *e);

static int fuzz_vol_spec(const uint8_t *data, size_t size, vol_spec_parser parse)
{
	char *s = malloc(size + 1);
	struct vol_mount m;
	struct su_error e;
	int r;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&m, 0, sizeof(m));
	memset(&e, 0, sizeof(e));
	r = parse(s, &m, &e);
	if (r < 0 && !e.msg[0])
		abort();
	if (r == 0) {
		if (!m.target || m.target[0] != '/' || !strcmp(m.target, "/"))
			abort();
		if (m.type == VOL_MOUNT_BIND && (!m.source || m.source[0] != '/'))
			abort();
		if (m.type == VOL_MOUNT_TMPFS && !m.tmpfs_data)
			abort();
		(void)vol_spec_check_targets(&m, 1, &e);
	}
	vol_mount_clear(&m);
	free(s);
	return 0;
}
