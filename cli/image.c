/* cli/image: `strata image import|ls|inspect|rm|prune|export`, thin over
 * the image module. */
#include "cli/cli.h"
#include "image/image.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

static int image_import(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct img_import_opts o = {0};
	struct su_error e = {0};
	_cleanup_free_ char *id = NULL;
	bool first = true;
	int c;

	while ((c = next_opt(argc, argv, ":n:qh", opts, &first)) != -1) {
		if (c == 'h') {
			puts("Usage: strata image import [-q] [--name NAME[:TAG]] PATH|-\n\n"
			     "Import an OCI layout or archive, a docker-save archive or a rootfs "
			     "tar.");
			return CLI_OK;
		} else if (c == 'n') {
			o.name = optarg;
		} else if (c == 'q') {
			o.quiet = true;
		} else {
			return cli_bad_option("image import", c, argv);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("image import", "expected one PATH");
	if (img_import(ctx->root, argv[optind], &o, &id, &e) < 0)
		return cli_error(&e);
	printf("sha256:%s\n", id);
	return CLI_OK;
}

static void human_size(uint64_t b, char *buf, size_t n)
{
	if (b >= 1000000000)
		snprintf(buf, n, "%.2fGB", b / 1e9);
	else if (b >= 1000000)
		snprintf(buf, n, "%.1fMB", b / 1e6);
	else
		snprintf(buf, n, "%.1fkB", b / 1e3);
}

static int image_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"quiet", no_argument, NULL, 'q'},
	    {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct img_info **v = NULL;
	struct su_error e = {0};
	bool first = true, quiet = false, json = false;
	size_t n = 0;
	int c;

	while ((c = next_opt(argc, argv, ":qf:h", opts, &first)) != -1) {
		if (c == 'h') {
			puts("Usage: strata image ls [-q] [--format json]");
			return CLI_OK;
		} else if (c == 'q') {
			quiet = true;
		} else if (c == 'f') {
			if (strcmp(optarg, "json"))
				return cli_usage_error("image ls", "unknown format \"%s\"", optarg);
			json = true;
		} else {
			return cli_bad_option("image ls", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage_error("image ls", "no arguments expected");
	if (img_list(ctx->root, &v, &n, &e) < 0)
		return cli_error(&e);
	if (!quiet && !json)
		printf("%-30s %-14s %-10s %s\n", "NAME", "IMAGE ID", "SIZE", "CREATED");
	for (size_t i = 0; i < n; i++) {
		char size[32];
		if (quiet) {
			printf("%.12s\n", v[i]->id);
		} else if (json) {
			json_t *o =
			    json_pack("{s:o, s:s, s:I, s:s}", "Names", json_array(), "Id", v[i]->id,
				      "Size", (json_int_t)v[i]->size, "Created", v[i]->created);
			_cleanup_free_ char *t = NULL;
			for (size_t k = 0; v[i]->names[k]; k++)
				json_array_append_new(json_object_get(o, "Names"),
						      json_string(v[i]->names[k]));
			t = json_dumps(o, JSON_COMPACT);
			json_decref(o);
			puts(t ? t : "{}");
		} else {
			/* one row per name, as docker images does */
			human_size(v[i]->size, size, sizeof(size));
			for (size_t k = 0; k == 0 || v[i]->names[k]; k++)
				printf("%-30s %-14.12s %-10s %.19s\n",
				       v[i]->names[k] ? v[i]->names[k] : "<none>", v[i]->id, size,
				       v[i]->created);
		}
	}
	img_info_list_free(v, n);
	return CLI_OK;
}

static int image_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	json_t *all = json_array();
	_cleanup_free_ char *text = NULL;
	int rc = CLI_OK;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		json_decref(all);
		puts("Usage: strata image inspect IMAGE...");
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	for (int i = 1; i < argc; i++) {
		struct su_error e = {0};
		struct img_info *info;
		if (img_inspect(ctx->root, argv[i], &info, &e) < 0) {
			rc = cli_error(&e);
			continue;
		}
		json_array_append_new(all, img_info_to_json(ctx->root, info));
		img_info_free(info);
	}
	text = json_dumps(all, JSON_INDENT(4));
	json_decref(all);
	puts(text ? text : "[]");
	return rc;
}

static int image_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool first = true, force = false;
	int c, rc = CLI_OK;

	while ((c = next_opt(argc, argv, ":fh", opts, &first)) != -1) {
		if (c == 'h') {
			puts("Usage: strata image rm [-f] IMAGE...\n\n"
			     "Untag NAME[:TAG]; remove the image with its last name, or by id.\n"
			     "  -f, --force   remove by id an image with several names; no error\n"
			     "                for a missing image");
			return CLI_OK;
		} else if (c == 'f') {
			force = true;
		} else {
			return cli_bad_option("image rm", c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("image rm", "expected at least one IMAGE");
	for (int i = optind; i < argc; i++) {
		struct img_rm_result res;
		struct su_error e = {0};
		int r = img_rm(ctx->root, argv[i], force, &res, &e);

		for (size_t k = 0; res.untagged && res.untagged[k]; k++)
			printf("Untagged: %s\n", res.untagged[k]);
		if (res.deleted)
			printf("Deleted: sha256:%s\n", res.deleted);
		img_rm_result_clear(&res);
		if (r < 0)
			rc = cli_error(&e);
	}
	return rc;
}

static int image_prune(struct cli_ctx *ctx, int argc, char **argv)
{
	struct su_error e = {0};
	char **removed = NULL;
	bool all = argc > 1 && (!strcmp(argv[1], "-a") || !strcmp(argv[1], "--all"));

	if (argc > (all ? 2 : 1))
		return cli_usage_error("image prune", "usage: strata image prune [-a]");
	if (img_prune(ctx->root, all, &removed, &e) < 0)
		return cli_error(&e);
	for (size_t i = 0; removed[i]; i++)
		printf("deleted: sha256:%s\n", removed[i]);
	su_strv_free(removed);
	return CLI_OK;
}

static int image_export(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct su_error e = {0};
	const char *out = NULL;
	bool first = true;
	int c;

	while ((c = next_opt(argc, argv, ":o:h", opts, &first)) != -1) {
		if (c == 'h') {
			puts("Usage: strata image export IMAGE -o FILE.tar");
			return CLI_OK;
		} else if (c == 'o') {
			out = optarg;
		} else {
			return cli_bad_option("image export", c, argv);
		}
	}
	if (optind != argc - 1 || !out)
		return cli_usage_error("image export", "expected IMAGE and -o FILE");
	if (img_export(ctx->root, argv[optind], out, &e) < 0)
		return cli_error(&e);
	return CLI_OK;
}

int cli_image(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_command cmds[] = {
	    {"import", image_import, "Import an image archive or layout"},
	    {"ls", image_ls, "List images"},
	    {"inspect", image_inspect, "Show images as JSON"},
	    {"rm", image_rm, "Remove images"},
	    {"prune", image_prune, "Remove unnamed images and unused layers"},
	    {"export", image_export, "Write an image as an OCI archive"},
	};
	return cli_dispatch(ctx, "image", cmds, ARRAY_SIZE(cmds), argc, argv);
}
