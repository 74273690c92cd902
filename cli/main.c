/* cli/main: `strata` entry point -- global options, the state root, the
 * table of commands, and how errors are printed (once, then exit 1). */
#include "cli/cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

static int cli_version(struct cli_ctx *ctx, int argc, char **argv);
static int cli_help(struct cli_ctx *ctx, int argc, char **argv);

static const struct cli_command commands[] = {
    {"run", cli_run, "Create and run a new container"},
    {"create", cli_create, "Create a new container"},
    {"start", cli_container_verb, "Start stopped containers"},
    {"stop", cli_container_verb, "Stop running containers"},
    {"kill", cli_container_verb, "Send a signal to running containers"},
    {"rm", cli_container_verb, "Remove containers"},
    {"ps", cli_container_verb, "List containers"},
    {"logs", cli_container_verb, "Print the output of a detached container"},
    {"exec", cli_container_verb, "Run a command in a running container"},
    {"volume", cli_volume, "Manage volumes"},
    {"image", cli_image, "Manage images"},
    {"mount", cli_mount, "Mount an image to inspect it, or list mounts"},
    {"umount", cli_umount, "Unmount what strata mount mounted"},
    {"diff", cli_diff, "Show the changes of a container or upper dir"},
    {"version", cli_version, "Show the strata version"},
    {"help", cli_help, "Show this help"},
};

int cli_error(const struct su_error *e)
{
	fprintf(stderr, "strata: %s\n", e->msg);
	return CLI_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "strata: %s: %s (see 'strata %s --help')\n", cmd, msg, cmd);
	return CLI_USAGE;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
	if (c == ':')
		return cli_usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]);
	if (optopt)
		return cli_usage_error(cmd, "unknown option '-%c'", optopt);
	return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

static void print_commands(FILE *f, const char *parent, const struct cli_command *cmds, size_t n)
{
	fprintf(f, "Usage: strata %s COMMAND\n\nCommands:\n", parent);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\nRun 'strata %s COMMAND --help' for more on a command.\n", parent);
}

int cli_dispatch(struct cli_ctx *ctx, const char *parent, const struct cli_command *cmds, size_t n,
		 int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		print_commands(argc < 2 ? stderr : stdout, parent, cmds, n);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].run(ctx, argc - 1, argv + 1);
	return cli_usage_error(parent, "unknown command '%s'", argv[1]);
}

static void usage(FILE *f)
{
	fputs("Usage: strata [OPTIONS] COMMAND\n\n"
	      "Container storage without root.\n\n"
	      "Options:\n"
	      "  --root DIR   state directory (default: $STRATA_ROOT, /var/lib/strata for\n"
	      "               root, else $XDG_DATA_HOME/strata or ~/.local/share/strata)\n"
	      "  --debug      log debug messages\n"
	      "  -h, --help   show this help\n\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\nRun 'strata COMMAND --help' for more on a command.\n", f);
}

static int cli_version(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage_error("version", "no arguments expected");
	printf("strata version %s\n", STRATA_VERSION);
	return CLI_OK;
}

static int cli_help(struct cli_ctx *ctx, int argc, char **argv)
{
	usage(stdout);
	return CLI_OK;
}

/* True when uid 0 is real root, not root of a user namespace (where the
 * rootless defaults apply). */
static bool real_root(void)
{
	_cleanup_free_ char *map = NULL;
	unsigned long inner, outer, count;

	if (getuid() != 0)
		return false;
	if (su_read_file(AT_FDCWD, "/proc/self/uid_map", &map, NULL, 1 << 16) < 0)
		return true;
	return sscanf(map, "%lu %lu %lu", &inner, &outer, &count) == 3 && inner == 0 &&
	       outer == 0 && count == 4294967295UL;
}

static char *default_root(void)
{
	const char *env = getenv("STRATA_ROOT");
	const char *home;
	struct passwd *pw;

	if (env && *env)
		return strdup(env);
	if (real_root())
		return strdup("/var/lib/strata");
	env = getenv("XDG_DATA_HOME");
	if (env && env[0] == '/')
		return su_asprintf("%s/strata", env);
	home = getenv("HOME");
	if ((!home || !*home) && (pw = getpwuid(getuid())))
		home = pw->pw_dir;
	return home ? su_asprintf("%s/.local/share/strata", home) : NULL;
}

static char *absolute(char *path)
{
	_cleanup_free_ char *cwd = NULL;
	char *abs;

	if (!path || path[0] == '/')
		return path;
	cwd = getcwd(NULL, 0);
	abs = cwd ? su_asprintf("%s/%s", cwd, path) : NULL;
	free(path);
	return abs;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"root", required_argument, NULL, 'r'},
	    {"debug", no_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cli_ctx ctx = {0};
	int c, rc;

	su_log_init("strata", SU_LOG_WARN);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:Dh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			free(ctx.root);
			ctx.root = strdup(optarg);
			break;
		case 'D':
			su_log_init("strata", SU_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return CLI_OK;
		default:
			if (c == ':')
				fprintf(stderr, "strata: option '%s' needs an argument\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "strata: unknown option '%s'\n", argv[optind - 1]);
			return CLI_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!ctx.root)
		ctx.root = default_root();
	ctx.root = absolute(ctx.root);
	if (!ctx.root || !*ctx.root) {
		fprintf(stderr, "strata: cannot find a state directory: use --root\n");
		return CLI_FAIL;
	}
	argc -= optind;
	argv += optind;
	rc = -1;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(argv[0], commands[i].name))
			rc = commands[i].run(&ctx, argc, argv);
	if (rc < 0) {
		fprintf(stderr, "strata: unknown command '%s' (see 'strata --help')\n", argv[0]);
		rc = CLI_USAGE;
	}
	free(ctx.root);
	return rc;
}
