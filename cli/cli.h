/* cli: the `strata` command -- the table of verbs in main.c, one file per
 * verb family, each thin over its module. */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include "util/util.h"

#define STRATA_VERSION "0.1.0"

/* Exit statuses: 0 success, 1 an operation failed, 2 a usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

struct cli_ctx {
	char *root; /* absolute state root */
};

struct cli_command {
	const char *name;
	int (*run)(struct cli_ctx *ctx, int argc, char **argv);
	const char *summary;
};

/* ---- cli/main.c ---- */

/* Prints "strata: <context>: <message>" once; returns CLI_FAIL. */
int cli_error(const struct su_error *e);
/* Prints "strata: <cmd>: <message>"; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs argv[1] from a table of subcommands; argv[0] names the parent. */
int cli_dispatch(struct cli_ctx *ctx, const char *parent, const struct cli_command *cmds, size_t n,
		 int argc, char **argv);
/* Reports a getopt_long failure (optopt / argv) as a usage error. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* ---- cli/volume.c ---- */

int cli_volume(struct cli_ctx *ctx, int argc, char **argv);
int cli_run(struct cli_ctx *ctx, int argc, char **argv);	    /* cli/run.c */
int cli_create(struct cli_ctx *ctx, int argc, char **argv);	    /* cli/run.c */
int cli_container_verb(struct cli_ctx *ctx, int argc, char **argv); /* cli/container.c */
int cli_image(struct cli_ctx *ctx, int argc, char **argv);	    /* cli/image.c */
int cli_mount(struct cli_ctx *ctx, int argc, char **argv);	    /* cli/mount.c */
int cli_umount(struct cli_ctx *ctx, int argc, char **argv);	    /* cli/mount.c */
int cli_diff(struct cli_ctx *ctx, int argc, char **argv);	    /* cli/mount.c */

#endif
