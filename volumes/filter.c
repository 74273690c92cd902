/* volumes/filter: `volume ls --filter` terms, Docker's semantics: terms of
 * one key are ORed (label terms ANDed), different keys are ANDed. */
#include "volumes/volumes.h"

#include <regex.h>
#include <string.h>

enum filter_key { F_DANGLING, F_LABEL, F_NAME, F_DRIVER, F_NKEYS };

static const char *const key_names[F_NKEYS] = {"dangling", "label", "name", "driver"};

struct filter_term {
	enum filter_key key;
	char *value;
	bool dangling;
	regex_t re; /* name */
	struct filter_term *next;
};

struct vol_filter {
	struct filter_term *terms;
};

static void term_free(struct filter_term *t)
{
	if (t->key == F_NAME)
		regfree(&t->re);
	free(t->value);
	free(t);
}

static int term_parse(struct filter_term *t, const char *term, const char *val, struct su_error *e)
{
	if (t->key == F_DANGLING) {
		if (!strcmp(val, "true") || !strcmp(val, "1"))
			t->dangling = true;
		else if (strcmp(val, "false") && strcmp(val, "0"))
			return su_error_set(e, 0, "invalid filter 'dangling=%s'", val);
	} else if (t->key == F_NAME) {
		if (regcomp(&t->re, val, REG_EXTENDED | REG_NOSUB) != 0) {
			t->key = F_DRIVER; /* nothing compiled to free */
			return su_error_set(e, 0, "invalid filter '%s': bad regular expression",
					    term);
		}
	}
	return 0;
}

int vol_filter_add(struct vol_filter **f, const char *term, struct su_error *e)
{
	const char *eq = strchr(term, '=');
	struct filter_term *t;
	size_t klen;

	if (!eq || !eq[1])
		return su_error_set(e, 0, "bad format of filter (expected name=value): '%s'", term);
	klen = eq - term;
	if (!*f && !(*f = calloc(1, sizeof(**f))))
		return su_error_set(e, ENOMEM, "filter");
	t = calloc(1, sizeof(*t));
	if (!t)
		return su_error_set(e, ENOMEM, "filter");
	t->key = F_NKEYS;
	for (int k = 0; k < F_NKEYS; k++)
		if (strlen(key_names[k]) == klen && !strncmp(term, key_names[k], klen))
			t->key = (enum filter_key)k;
	if (t->key == F_NKEYS) {
		free(t);
		return su_error_set(e, 0, "invalid filter '%.*s'", (int)klen, term);
	}
	t->value = strdup(eq + 1);
	if (!t->value || term_parse(t, term, eq + 1, e) < 0) {
		if (!t->value)
			su_error_set(e, ENOMEM, "filter");
		t->key = t->key == F_NAME ? F_DRIVER : t->key;
		term_free(t);
		return -1;
	}
	t->next = (*f)->terms;
	(*f)->terms = t;
	return 0;
}

static bool label_match(json_t *labels, const char *want)
{
	const char *eq = strchr(want, '=');
	_cleanup_free_ char *k = eq ? strndup(want, eq - want) : strdup(want);
	const char *v;

	if (!k)
		return false;
	v = json_string_value(json_object_get(labels, k));
	return v && (!eq || !strcmp(v, eq + 1));
}

static bool term_match(const struct filter_term *t, const struct vol_info *v)
{
	switch (t->key) {
	case F_DANGLING:
		return t->dangling == !v->refs[0];
	case F_LABEL:
		return label_match(v->labels, t->value);
	case F_NAME:
		return regexec(&t->re, v->name, 0, NULL, 0) == 0;
	case F_DRIVER:
		return !strcmp(t->value, v->driver);
	default:
		return false;
	}
}

bool vol_filter_match(const struct vol_filter *f, const struct vol_info *v)
{
	if (!f)
		return true;
	for (int k = 0; k < F_NKEYS; k++) {
		bool used = false, any = false, all = true;

		for (const struct filter_term *t = f->terms; t; t = t->next) {
			bool m;

			if (t->key != (enum filter_key)k)
				continue;
			used = true;
			m = term_match(t, v);
			any |= m;
			all &= m;
		}
		/* Labels must all match, as Docker's MatchKVList; others any. */
		if (used && !(k == F_LABEL ? all : any))
			return false;
	}
	return true;
}

void vol_filter_free(struct vol_filter *f)
{
	struct filter_term *t, *next;

	if (!f)
		return;
	for (t = f->terms; t; t = next) {
		next = t->next;
		term_free(t);
	}
	free(f);
}
