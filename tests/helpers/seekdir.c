/* tests/helpers/seekdir.c: checks directory iteration of one directory.
 *   seekdir DIR          reads DIR recording telldir() before each entry, then
 *                        seeks back to random recorded positions and checks
 *                        the same names follow; rewinddir gives the same list
 *   seekdir DIR mutate   reads half of DIR, creates and removes entries, reads
 *                        on: no name twice, every untouched name exactly once
 * Prints one line per problem and exits 1 when there is any. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ent {
	long pos;
	char *name;
};

struct list {
	struct ent *v;
	size_t n, cap;
};

static void add(struct list *l, long pos, const char *name)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			perror("realloc");
			exit(2);
		}
	}
	l->v[l->n].pos = pos;
	l->v[l->n].name = strdup(name);
	l->n++;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

/* Reads DIR from its current position to the end into L. */
static void read_rest(DIR *d, struct list *l)
{
	struct dirent *de;
	long pos;

	for (;;) {
		pos = telldir(d);
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		add(l, pos, de->d_name);
	}
	if (errno) {
		perror("readdir");
		exit(2);
	}
}

static int count_dups(struct list *l)
{
	struct list c = {0};
	int bad = 0;
	size_t i;

	for (i = 0; i < l->n; i++)
		add(&c, 0, l->v[i].name);
	qsort(c.v, c.n, sizeof(*c.v), cmp_name);
	for (i = 1; i < c.n; i++) {
		if (!strcmp(c.v[i].name, c.v[i - 1].name)) {
			printf("name returned twice: %s\n", c.v[i].name);
			bad++;
		}
	}
	return bad;
}

static int check_seek(const char *path)
{
	struct list all = {0}, again = {0};
	DIR *d = opendir(path);
	int bad = 0, iter, k;
	size_t i;

	if (!d) {
		perror(path);
		return 2;
	}
	read_rest(d, &all);
	bad += count_dups(&all);
	srand(12345);
	for (iter = 0; iter < 300 && all.n; iter++) {
		i = (size_t)rand() % all.n;
		seekdir(d, all.v[i].pos);
		for (k = 0; k < 5 && i + k < all.n; k++) {
			struct dirent *de = readdir(d);

			if (!de || strcmp(de->d_name, all.v[i + k].name)) {
				printf("after seekdir to entry %zu (%s): got %s, want %s\n", i,
				       all.v[i].name, de ? de->d_name : "(end)", all.v[i + k].name);
				bad++;
				break;
			}
		}
	}
	/* Past the last entry the stream must end. */
	if (all.n) {
		seekdir(d, all.v[all.n - 1].pos);
		if (!readdir(d) || readdir(d)) {
			printf("seekdir to the last entry does not end after it\n");
			bad++;
		}
	}
	rewinddir(d);
	read_rest(d, &again);
	if (again.n != all.n) {
		printf("rewinddir: %zu entries, first pass %zu\n", again.n, all.n);
		bad++;
	}
	for (i = 0; i < again.n && i < all.n; i++) {
		if (strcmp(again.v[i].name, all.v[i].name)) {
			printf("rewinddir: entry %zu is %s, first pass %s\n", i, again.v[i].name,
			       all.v[i].name);
			bad++;
			break;
		}
	}
	closedir(d);
	printf("%zu entries, %d problems\n", all.n, bad);
	return bad ? 1 : 0;
}

static int in_list(struct list *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return 1;
	return 0;
}

static int check_mutate(const char *path)
{
	struct list before = {0}, seen = {0}, removed = {0};
	DIR *d = opendir(path);
	int dfd, bad = 0, i;
	size_t j, half;

	if (!d) {
		perror(path);
		return 2;
	}
	read_rest(d, &before);
	rewinddir(d);
	half = before.n / 2;
	for (j = 0; j < half; j++) {
		struct dirent *de = readdir(d);

		if (!de)
			break;
		add(&seen, 0, de->d_name);
	}
	dfd = dirfd(d);
	for (i = 0; i < 100; i++) {
		char name[64];
		int fd;

		snprintf(name, sizeof(name), "added-%03d", i);
		fd = openat(dfd, name, O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			perror(name);
			return 2;
		}
		close(fd);
	}
	/* Remove every third name not yet returned. */
	for (j = 0, i = 0; j < before.n; j++) {
		const char *n = before.v[j].name;

		if (!strcmp(n, ".") || !strcmp(n, "..") || in_list(&seen, n))
			continue;
		if (i++ % 3)
			continue;
		if (unlinkat(dfd, n, 0) != 0) {
			perror(n);
			return 2;
		}
		add(&removed, 0, n);
	}
	read_rest(d, &seen);
	closedir(d);
	bad += count_dups(&seen);
	for (j = 0; j < before.n; j++) {
		const char *n = before.v[j].name;

		if (!in_list(&removed, n) && !in_list(&seen, n)) {
			printf("untouched name never returned: %s\n", n);
			bad++;
		}
	}
	for (j = 0; j < seen.n; j++) {
		const char *n = seen.v[j].name;

		if (!in_list(&before, n) && strncmp(n, "added-", 6)) {
			printf("unknown name returned: %s\n", n);
			bad++;
		}
	}
	printf("%zu entries before, %zu removed, %zu returned, %d problems\n", before.n, removed.n,
	       seen.n, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 2)
		return check_seek(argv[1]);
	if (argc == 3 && !strcmp(argv[2], "mutate"))
		return check_mutate(argv[1]);
	fprintf(stderr, "usage: seekdir DIR [mutate]\n");
	return 2;
}
