/* cli/container: `strata start|stop|kill|rm|ps|logs|exec`, Docker's command
 * lines and output, over the launcher. */
#include "cli/cli.h"
#include "launcher/launcher.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
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

/* Runs fn on every CONTAINER argument; prints each ref done, or the error
 * fn set in e; status 1 if any failed. */
static int for_each(struct cli_ctx *ctx, const char *verb, int argc, char **argv, bool print,
		    int (*fn)(struct cli_ctx *, const char *id, void *, struct su_error *e),
		    void *data)
{
	int rc = CLI_OK;

	if (optind >= argc)
		return cli_usage_error(verb, "requires at least 1 argument");
	for (int i = optind; i < argc; i++) {
		struct su_error e = {0};
		char *id = NULL;

		if (lch_lookup(ctx->root, argv[i], &id, &e) < 0 || fn(ctx, id, data, &e) < 0) {
			rc = cli_error(&e);
		} else if (print) {
			printf("%s\n", argv[i]);
		}
		free(id);
	}
	return rc;
}

/* ---- start ---- */

struct start_data {
	bool attach;
	int status;
	struct su_error *e;
};

static int do_start(struct cli_ctx *ctx, const char *id, void *data)
{
	struct start_data *d = data;
	struct lch_start_opts o = {.attach = d->attach, .status_fd = -1};
	struct su_error e = {0};
	int r = lch_start(ctx->root, id, &o, &e);

	if (r < 0) {
		*d->e = e;
		return -1;
	}
	d->status = r;
	return 0;
}

static int cli_start(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"attach", no_argument, NULL, 'a'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct su_error e = {0};
	struct start_data d = {.e = &e};
	bool first = true;
	int c, i, rc = CLI_OK;

	while ((c = next_opt(argc, argv, "+:ah", opts, &first)) != -1) {
		if (c == 'a')
			d.attach = true;
		else if (c == 'h')
			return puts("Usage: strata start [-a] CONTAINER...\n\nStart stopped "
				    "containers (-a: attach and exit with the command's status)."),
			       CLI_OK;
		else
			return cli_bad_option("start", c, argv);
	}
	if (optind >= argc)
		return cli_usage_error("start", "requires at least 1 argument");
	if (d.attach && argc - optind > 1)
		return cli_usage_error("start", "you cannot attach to multiple containers");
	for (i = optind; i < argc; i++) {
		char *id = NULL;

		if (lch_lookup(ctx->root, argv[i], &id, &e) < 0 || do_start(ctx, id, &d) < 0) {
			rc = cli_error(&e);
		} else if (!d.attach) {
			printf("%s\n", argv[i]);
		} else {
			rc = d.status;
		}
		free(id);
	}
	return rc;
}

/* ---- stop / kill ---- */

static int signal_number(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} t[] = {{"HUP", SIGHUP},   {"INT", SIGINT},	{"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		 {"USR1", SIGUSR1}, {"USR2", SIGUSR2},	{"TERM", SIGTERM}, {"STOP", SIGSTOP},
		 {"CONT", SIGCONT}, {"WINCH", SIGWINCH}};
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && !*end)
		return n > 0 && n < 65 ? (int)n : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (!strcasecmp(s, t[i].name))
			return t[i].sig;
	return -1;
}

struct sig_data {
	int sig, timeout;
};

static int do_stop(struct cli_ctx *ctx, const char *id, void *data, struct su_error *e)
{
	struct sig_data *d = data;

	return lch_stop(ctx->root, id, d->sig, d->timeout, e);
}

static int do_kill(struct cli_ctx *ctx, const char *id, void *data, struct su_error *e)
{
	struct sig_data *d = data;

	return lch_kill(ctx->root, id, d->sig, e);
}

static int cli_stop(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"time", required_argument, NULL, 't'},
					     {"signal", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct sig_data d = {.sig = SIGTERM, .timeout = 10};
	bool first = true;
	int c;

	while ((c = next_opt(argc, argv, "+:t:s:h", opts, &first)) != -1) {
		if (c == 't') {
			d.timeout = atoi(optarg);
		} else if (c == 's') {
			if ((d.sig = signal_number(optarg)) < 0)
				return cli_usage_error("stop", "invalid signal \"%s\"", optarg);
		} else if (c == 'h') {
			puts("Usage: strata stop [-t SECONDS] [-s SIGNAL] CONTAINER...\n\n"
			     "Stop running containers: SIGTERM, then SIGKILL after -t seconds "
			     "(default 10).");
			return CLI_OK;
		} else {
			return cli_bad_option("stop", c, argv);
		}
	}
	return for_each(ctx, "stop", argc, argv, true, do_stop, &d);
}

static int cli_kill(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"signal", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct sig_data d = {.sig = SIGKILL};
	bool first = true;
	int c;

	while ((c = next_opt(argc, argv, "+:s:h", opts, &first)) != -1) {
		if (c == 's') {
			if ((d.sig = signal_number(optarg)) < 0)
				return cli_usage_error("kill", "invalid signal \"%s\"", optarg);
		} else if (c == 'h') {
			puts("Usage: strata kill [-s SIGNAL] CONTAINER...\n\n"
			     "Send a signal (default KILL) to the command of running containers.");
			return CLI_OK;
		} else {
			return cli_bad_option("kill", c, argv);
		}
	}
	return for_each(ctx, "kill", argc, argv, true, do_kill, &d);
}

/* ---- rm ---- */

struct rm_data {
	bool force, volumes;
};

static int do_rm(struct cli_ctx *ctx, const char *id, void *data, struct su_error *e)
{
	struct rm_data *d = data;

	return lch_rm(ctx->root, id, d->force, d->volumes, e);
}

static int cli_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
					     {"volumes", no_argument, NULL, 'v'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct rm_data d = {0};
	bool first = true;
	int c, rc;

	while ((c = next_opt(argc, argv, "+:fvh", opts, &first)) != -1) {
		if (c == 'f') {
			d.force = true;
		} else if (c == 'v') {
			d.volumes = true;
		} else if (c == 'h') {
			puts("Usage: strata rm [-f] [-v] CONTAINER...\n\n"
			     "Remove containers and their writable layers (-f: kill running ones; "
			     "-v: also their anonymous volumes; named volumes are kept).");
			return CLI_OK;
		} else {
			return cli_bad_option("rm", c, argv);
		}
	}
	rc = for_each(ctx, "rm", argc, argv, true, do_rm, &d);
	/* Every rm finishes what killed ones left, the rerun of one whose
	 * container is gone already ("no such container") included. */
	lch_gc(ctx->root);
	return rc;
}

/* ---- ps ---- */

static char *command_line(char *const *argv)
{
	char *s = NULL;
	size_t len = 0, cap = 0;

	for (size_t i = 0; argv && argv[i]; i++) {
		if (i)
			su_strbuf_add(&s, &len, &cap, " ", 1);
		su_strbuf_add(&s, &len, &cap, argv[i], strlen(argv[i]));
	}
	return s ? s : strdup("");
}

static char *status_text(enum lch_status st, const struct lch_state *state)
{
	switch (st) {
	case LCH_RUNNING:
		return strdup("Up");
	case LCH_EXITED:
		return su_asprintf("Exited (%d)", state->exit_code);
	case LCH_DEAD:
		return strdup(state->removing ? "Removal In Progress" : "Dead");
	default:
		return strdup("Created");
	}
}

static void ps_one(const struct lch_spec *s, const struct lch_state *state, enum lch_status st,
		   bool quiet, bool json)
{
	_cleanup_free_ char *cmd = command_line(s->argv), *status = status_text(st, state);
	const char *image = s->image_id && *s->image_id ? s->image : "(layers)";

	if (quiet) {
		printf("%.12s\n", s->id);
	} else if (json) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "ID", s->id,
				      "Names", s->name, "Image", image, "Command", cmd, "CreatedAt",
				      s->created ? s->created : "", "State", lch_status_name(st),
				      "Status", status, "ExitCode", state->exit_code);
		char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(j);
	} else {
		printf("%-14.12s %-20.20s %-24.24s %-14.14s %s\n", s->id, image, cmd, status,
		       s->name);
	}
}

static int cli_ps(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
					     {"quiet", no_argument, NULL, 'q'},
					     {"format", required_argument, NULL, 'f'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct su_error e = {0};
	bool first = true, all = false, quiet = false, json = false;
	char **ids = NULL;
	int c;

	while ((c = next_opt(argc, argv, ":aqf:h", opts, &first)) != -1) {
		if (c == 'a') {
			all = true;
		} else if (c == 'q') {
			quiet = true;
		} else if (c == 'f') {
			if (strcmp(optarg, "json") && strcmp(optarg, "{{json .}}"))
				return cli_usage_error("ps", "--format: only json");
			json = true;
		} else if (c == 'h') {
			puts("Usage: strata ps [-a] [-q] [--format json]\n\n"
			     "List running containers (-a: all).");
			return CLI_OK;
		} else {
			return cli_bad_option("ps", c, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("ps", "no arguments expected");
	if (lch_list(ctx->root, &ids, &e) < 0)
		return cli_error(&e);
	if (!quiet && !json)
		printf("%-14s %-20s %-24s %-14s %s\n", "CONTAINER ID", "IMAGE", "COMMAND", "STATUS",
		       "NAMES");
	for (size_t i = 0; ids[i]; i++) {
		struct lch_spec s = {0};
		struct lch_state state;
		enum lch_status st;

		if (lch_load(ctx->root, ids[i], &s, &e) < 0)
			continue;
		lch_state_read_settled(ctx->root, ids[i], &state);
		st = lch_state_actual(&state);
		if (all || st == LCH_RUNNING)
			ps_one(&s, &state, st, quiet, json);
		lch_state_free(&state);
		lch_spec_free(&s);
	}
	su_strv_free(ids);
	return CLI_OK;
}

/* ---- logs ---- */

static const char logs_help[] =
    "Usage: strata logs [OPTIONS] CONTAINER\n\n"
    "Print what a detached container wrote.\n\n"
    "Options:\n"
    "  -f, --follow         keep printing new output until the container stops\n"
    "  -n, --tail N|all     only the last N lines (default all)\n";

/* The offset where the last n lines of fd begin (a last line without
 * '\n' counts as one). */
static off_t tail_offset(int fd, long long n)
{
	char buf[8192];
	off_t pos = lseek(fd, 0, SEEK_END);
	long long seen = 0;

	if (pos <= 0)
		return 0;
	if (n == 0)
		return pos;
	/* A final '\n' ends the last line; it does not start one. */
	if (pread(fd, buf, 1, pos - 1) == 1 && buf[0] == '\n')
		pos--;
	while (pos > 0) {
		size_t len = pos < (off_t)sizeof(buf) ? (size_t)pos : sizeof(buf);
		ssize_t r = pread(fd, buf, len, pos - (off_t)len);

		if (r != (ssize_t)len)
			return 0;
		for (size_t i = len; i > 0; i--)
			if (buf[i - 1] == '\n' && ++seen == n)
				return pos - (off_t)len + (off_t)i;
		pos -= (off_t)len;
	}
	return 0;
}

/* Copies what fd holds from its offset to stdout; -1 when stdout is
 * gone. */
static int copy_out(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && su_write_all(1, buf, (size_t)n) < 0)
			return -1;
	return 0;
}

static bool is_running(const char *root, const char *id)
{
	struct lch_state st;
	bool running;

	lch_state_read_settled(root, id, &st);
	running = lch_state_actual(&st) == LCH_RUNNING;
	lch_state_free(&st);
	return running;
}

static int parse_tail(const char *s, long long *n)
{
	char *end;

	if (!strcmp(s, "all")) {
		*n = -1;
		return 0;
	}
	errno = 0;
	*n = strtoll(s, &end, 10);
	return (!*s || *end || errno || *n < 0) ? -1 : 0;
}

static int cli_logs(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
					     {"tail", required_argument, NULL, 'n'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct su_error e = {0};
	_cleanup_free_ char *id = NULL, *path = NULL;
	_cleanup_close_ int fd = -1;
	struct timespec poll_wait = {.tv_nsec = 100 * 1000000L};
	bool first = true, follow = false;
	long long tail = -1;
	int c;

	while ((c = next_opt(argc, argv, "+:fn:h", opts, &first)) != -1) {
		switch (c) {
		case 'f':
			follow = true;
			break;
		case 'n':
			if (parse_tail(optarg, &tail) < 0)
				return cli_usage_error("logs", "--tail: \"%s\" is not a number",
						       optarg);
			break;
		case 'h':
			return fputs(logs_help, stdout), CLI_OK;
		default:
			return cli_bad_option("logs", c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("logs", "exactly 1 argument expected");
	if (lch_lookup(ctx->root, argv[optind], &id, &e) < 0)
		return cli_error(&e);
	path = su_asprintf("%s/containers/%s/container.log", ctx->root, id);
	if (!path)
		return su_error_set(&e, ENOMEM, "logs"), cli_error(&e);
	fflush(stdout);
	/* Following a container that has not written yet: the file comes
	 * with its first output. */
	while ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno == ENOENT && follow &&
	       is_running(ctx->root, id))
		nanosleep(&poll_wait, NULL);
	if (fd < 0)
		return errno == ENOENT ? CLI_OK
				       : (su_error_set(&e, errno, "open %s", path), cli_error(&e));
	if (tail >= 0 && lseek(fd, tail_offset(fd, tail), SEEK_SET) < 0)
		return su_error_set(&e, errno, "seek %s", path), cli_error(&e);
	if (copy_out(fd) < 0)
		return CLI_FAIL;
	/* Until the container stops; what it wrote before stopping is in the
	 * file by then (its PID namespace is gone), so one last copy ends. */
	while (follow) {
		bool running = is_running(ctx->root, id);

		if (copy_out(fd) < 0)
			return CLI_FAIL;
		if (!running)
			break;
		nanosleep(&poll_wait, NULL);
	}
	return CLI_OK;
}

/* ---- exec ---- */

static int cli_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"interactive", no_argument, NULL, 'i'},
	    {"tty", no_argument, NULL, 't'},
	    {"env", required_argument, NULL, 'e'},
	    {"user", required_argument, NULL, 'u'},
	    {"workdir", required_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct lch_exec_opts o = {0};
	struct su_error e = {0};
	_cleanup_free_ char *id = NULL;
	char **env = calloc(1, sizeof(*env));
	size_t nenv = 0;
	bool first = true;
	int c, rc;

	while ((c = next_opt(argc, argv, "+:ite:u:w:h", opts, &first)) != -1) {
		if (c == 'i') {
			o.interactive = true;
		} else if (c == 't') {
			o.tty = true;
		} else if (c == 'e') {
			char **v = realloc(env, (nenv + 2) * sizeof(*v));

			if (v) {
				env = v;
				env[nenv++] = strdup(optarg);
				env[nenv] = NULL;
			}
		} else if (c == 'u') {
			o.user = optarg;
		} else if (c == 'w') {
			o.workdir = optarg;
		} else if (c == 'h') {
			su_strv_free(env);
			puts("Usage: strata exec [-i] [-t] [-e K=V] [-u USER] [-w DIR] CONTAINER "
			     "COMMAND [ARG...]\n\nRun a command in a running container.");
			return CLI_OK;
		} else {
			su_strv_free(env);
			return cli_bad_option("exec", c, argv);
		}
	}
	if (argc - optind < 2) {
		su_strv_free(env);
		return cli_usage_error("exec", "requires at least 2 arguments");
	}
	o.argv = argv + optind + 1;
	o.env = env;
	if (lch_lookup(ctx->root, argv[optind], &id, &e) < 0) {
		su_strv_free(env);
		return cli_error(&e);
	}
	rc = lch_exec(ctx->root, id, &o, &e);
	su_strv_free(env);
	if (rc < 0) {
		fprintf(stderr, "strata: %s\n", e.msg);
		return 126;
	}
	return rc;
}

int cli_container_verb(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct cli_command verbs[] = {
	    {"start", cli_start, ""}, {"stop", cli_stop, ""}, {"kill", cli_kill, ""},
	    {"rm", cli_rm, ""},	      {"ps", cli_ps, ""},     {"logs", cli_logs, ""},
	    {"exec", cli_exec, ""},
	};

	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (!strcmp(argv[0], verbs[i].name))
			return verbs[i].run(ctx, argc, argv);
	return cli_usage_error(argv[0], "unknown command");
}
