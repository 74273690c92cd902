/* cli/volume: `strata volume create|ls|inspect|rm|prune`, Docker's command
 * lines and output, over the volumes module. */
#include "cli/cli.h"
#include "volumes/volumes.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static int open_store(struct cli_ctx *ctx, struct vol_store **s)
{
	struct su_error e = {0};

	if (vol_store_open(ctx->root, s, &e) < 0)
		return cli_error(&e);
	return 0;
}

/* getopt_long from the start of argv (argv[0] is the verb). */
static int next_opt(int argc, char **argv, const char *shortopts, const struct option *longopts,
		    bool *first)
{
	if (*first) {
		optind = 0;
		opterr = 0;
		*first = false;
	}
	return getopt_long(argc, argv, shortopts, longopts, NULL);
}

/* "k=v" or "k" (empty value) into a JSON object, as Docker's map options. */
static int kv_add(json_t *obj, const char *kv)
{
	const char *eq = strchr(kv, '=');
	_cleanup_free_ char *k = eq ? strndup(kv, eq - kv) : strdup(kv);

	if (!k || !*k)
		return -1;
	return json_object_set_new(obj, k, json_string(eq ? eq + 1 : ""));
}

/* ---- create ---- */

static const char create_help[] =
    "Usage: strata volume create [OPTIONS] [VOLUME]\n\n"
    "Create a volume (a random name when none is given) and print its name.\n\n"
    "Options:\n"
    "  -d, --driver string   volume driver (only \"local\")\n"
    "      --label k=v       set metadata on the volume\n"
    "      --name string     volume name\n"
    "  -o, --opt k=v         driver options (type, device, o, size)\n";

static int volume_create(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"driver", required_argument, NULL, 'd'}, {"label", required_argument, NULL, 'l'},
	    {"name", required_argument, NULL, 'n'},   {"opt", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	json_t *labels = json_object(), *options = json_object();
	struct vol_create_opts o = {.labels = labels, .options = options};
	struct vol_store *s = NULL;
	struct su_error e = {0};
	char *name = NULL;
	bool first = true;
	int c, rc = CLI_OK;

	while ((c = next_opt(argc, argv, ":d:o:h", opts, &first)) != -1) {
		if (c == 'h') {
			fputs(create_help, stdout);
			goto out;
		} else if (c == 'd' && strcmp(optarg, "local")) {
			rc = cli_usage_error("volume create", "driver \"%s\" is not supported",
					     optarg);
		} else if (c == 'l' || c == 'o') {
			if (kv_add(c == 'l' ? labels : options, optarg) < 0)
				rc = cli_usage_error("volume create", "invalid %s \"%s\"",
						     c == 'l' ? "label" : "option", optarg);
		} else if (c == 'n') {
			o.name = optarg;
		} else if (c != 'd') {
			rc = cli_bad_option("volume create", c, argv);
		}
		if (rc != CLI_OK)
			goto out;
	}
	if (argc - optind > 1) {
		rc = cli_usage_error("volume create", "at most 1 argument expected");
		goto out;
	}
	if (optind < argc) {
		if (o.name && strcmp(o.name, argv[optind])) {
			rc = cli_usage_error("volume create",
					     "conflicting options: either specify --name or "
					     "provide positional arg, not both");
			goto out;
		}
		o.name = argv[optind];
	}
	if ((rc = open_store(ctx, &s)) != CLI_OK)
		goto out;
	if (vol_create(s, &o, &name, NULL, &e) < 0)
		rc = cli_error(&e);
	else
		printf("%s\n", name);
out:
	free(name);
	vol_store_close(s);
	json_decref(labels);
	json_decref(options);
	return rc;
}

/* ---- ls ---- */

static const char ls_help[] =
    "Usage: strata volume ls [OPTIONS]\n\n"
    "List volumes.\n\n"
    "Options:\n"
    "  -f, --filter k=v   dangling=true|false, label=k[=v], name=REGEX, driver=local\n"
    "      --format json  one JSON object per line\n"
    "  -q, --quiet        only names\n";

static char *labels_string(json_t *labels)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	const char *k;
	json_t *v;

	su_strbuf_add(&buf, &len, &cap, "", 0);
	json_object_foreach(labels, k, v)
	{
		_cleanup_free_ char *kv =
		    su_asprintf("%s%s=%s", len ? "," : "", k, json_string_value(v));
		if (kv)
			su_strbuf_add(&buf, &len, &cap, kv, strlen(kv));
	}
	return buf;
}

static void ls_print(const struct vol_info *v, bool quiet, bool json)
{
	if (quiet) {
		printf("%s\n", v->name);
	} else if (json) {
		_cleanup_free_ char *labels = labels_string(v->labels);
		json_t *o =
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Driver", v->driver, "Labels",
			      labels ? labels : "", "Links", "N/A", "Mountpoint", v->mountpoint,
			      "Name", v->name, "Scope", "local", "Size", "N/A");
		_cleanup_free_ char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

		if (text)
			printf("%s\n", text);
		json_decref(o);
	} else {
		printf("%-10s%s\n", v->driver, v->name);
	}
}

static int volume_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"filter", required_argument, NULL, 'f'},
	    {"format", required_argument, NULL, 'F'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vol_filter *filter = NULL;
	struct vol_store *s = NULL;
	struct vol_info **v = NULL;
	struct su_error e = {0};
	bool quiet = false, json = false, first = true;
	size_t n = 0;
	int c, rc = CLI_OK;

	while (rc == CLI_OK && (c = next_opt(argc, argv, ":f:qh", opts, &first)) != -1) {
		if (c == 'h') {
			fputs(ls_help, stdout);
			goto out;
		} else if (c == 'q') {
			quiet = true;
		} else if (c == 'f') {
			if (vol_filter_add(&filter, optarg, &e) < 0)
				rc = cli_usage_error("volume ls", "%s", e.msg);
		} else if (c == 'F') {
			json = !strcmp(optarg, "json");
			if (!json && strcmp(optarg, "table"))
				rc = cli_usage_error("volume ls", "unsupported format \"%s\"",
						     optarg);
		} else {
			rc = cli_bad_option("volume ls", c, argv);
		}
	}
	if (rc == CLI_OK && optind < argc)
		rc = cli_usage_error("volume ls", "no arguments expected");
	if (rc != CLI_OK || (rc = open_store(ctx, &s)) != CLI_OK)
		goto out;
	if (vol_list(s, &v, &n, &e) < 0) {
		rc = cli_error(&e);
		goto out;
	}
	if (!quiet && !json)
		printf("%-10s%s\n", "DRIVER", "VOLUME NAME");
	for (size_t i = 0; i < n; i++)
		if (vol_filter_match(filter, v[i]))
			ls_print(v[i], quiet, json);
out:
	vol_info_list_free(v, n);
	vol_filter_free(filter);
	vol_store_close(s);
	return rc;
}

/* ---- inspect ---- */

static int volume_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vol_store *s = NULL;
	json_t *arr;
	char *text;
	bool first = true;
	int c, rc = CLI_OK;

	while ((c = next_opt(argc, argv, ":h", opts, &first)) != -1) {
		if (c != 'h')
			return cli_bad_option("volume inspect", c, argv);
		puts("Usage: strata volume inspect VOLUME...\n\n"
		     "Print the volumes as a JSON array.");
		return CLI_OK;
	}
	if (optind >= argc)
		return cli_usage_error("volume inspect", "at least 1 argument expected");
	if ((rc = open_store(ctx, &s)) != CLI_OK)
		return rc;
	arr = json_array();
	for (int i = optind; i < argc; i++) {
		struct vol_info *v;
		struct su_error e = {0};

		if (vol_inspect(s, argv[i], &v, &e) < 0) {
			rc = cli_error(&e);
			continue;
		}
		json_array_append_new(arr, vol_info_to_json(v));
		vol_info_free(v);
	}
	text = json_dumps(arr, JSON_INDENT(4) | JSON_SORT_KEYS);
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(arr);
	vol_store_close(s);
	return rc;
}

/* ---- rm ---- */

static int volume_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vol_store *s = NULL;
	bool force = false, first = true;
	int c, rc = CLI_OK;

	while ((c = next_opt(argc, argv, ":fh", opts, &first)) != -1) {
		if (c == 'f') {
			force = true;
		} else if (c == 'h') {
			puts("Usage: strata volume rm [-f] VOLUME...\n\n"
			     "Remove volumes no container references.\n\n"
			     "Options:\n  -f, --force   no error for volumes that do not exist");
			return CLI_OK;
		} else {
			return cli_bad_option("volume rm", c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("volume rm", "at least 1 argument expected");
	if ((rc = open_store(ctx, &s)) != CLI_OK)
		return rc;
	for (int i = optind; i < argc; i++) {
		struct su_error e = {0};

		if (vol_rm(s, argv[i], force, &e) < 0)
			rc = cli_error(&e);
		else
			printf("%s\n", argv[i]);
	}
	vol_store_close(s);
	return rc;
}

/* ---- prune ---- */

/* go-units HumanSize: 4 significant digits, decimal units. */
static void human_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
	double v = (double)bytes;
	size_t i = 0;

	while (v >= 1000 && i + 1 < ARRAY_SIZE(units)) {
		v /= 1000;
		i++;
	}
	snprintf(buf, len, "%.4g%s", v, units[i]);
}

static bool confirm(bool all)
{
	char line[64];

	printf("WARNING! This will remove %s local volumes not used by at least one container.\n"
	       "Are you sure you want to continue? [y/N] ",
	       all ? "all" : "anonymous");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

static int volume_prune(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"all", no_argument, NULL, 'a'},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vol_store *s = NULL;
	struct su_error e = {0};
	bool all = false, force = false, first = true;
	char **removed = NULL, size[32];
	uint64_t reclaimed = 0;
	int c, rc;

	while ((c = next_opt(argc, argv, ":afh", opts, &first)) != -1) {
		if (c == 'a') {
			all = true;
		} else if (c == 'f') {
			force = true;
		} else if (c == 'h') {
			puts("Usage: strata volume prune [-a] [-f]\n\n"
			     "Remove anonymous volumes no container references.\n\n"
			     "Options:\n  -a, --all     all unused volumes, named ones too\n"
			     "  -f, --force   do not ask for confirmation");
			return CLI_OK;
		} else {
			return cli_bad_option("volume prune", c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("volume prune", "no arguments expected");
	if (!force && !confirm(all))
		return CLI_OK;
	if ((rc = open_store(ctx, &s)) != CLI_OK)
		return rc;
	if (vol_prune(s, all, &removed, &reclaimed, &e) < 0)
		rc = cli_error(&e);
	if (removed && removed[0]) {
		printf("Deleted Volumes:\n");
		for (size_t i = 0; removed[i]; i++)
			printf("%s\n", removed[i]);
		printf("\n");
	}
	human_size(reclaimed, size, sizeof(size));
	printf("Total reclaimed space: %s\n", size);
	su_strv_free(removed);
	vol_store_close(s);
	return rc;
}

static const struct cli_command volume_commands[] = {
    {"create", volume_create, "Create a volume"},
    {"inspect", volume_inspect, "Show volumes as JSON"},
    {"ls", volume_ls, "List volumes"},
    {"list", volume_ls, "Same as ls"},
    {"prune", volume_prune, "Remove unused volumes"},
    {"rm", volume_rm, "Remove volumes"},
    {"remove", volume_rm, "Same as rm"},
};

int cli_volume(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, "volume", volume_commands, ARRAY_SIZE(volume_commands), argc,
			    argv);
}
