/* cli/run: `strata run` and `strata create` -- Docker's options parsed into
 * a container spec (image config applied as Docker does), then created and,
 * for run, started attached or detached. */
#include "cli/cli.h"
#include "image/image.h"
#include "launcher/launcher.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char run_help[] =
    "Usage: strata %s [OPTIONS] IMAGE [COMMAND] [ARG...]\n"
    "       strata %s [OPTIONS] --rootfs-layers TOP:...:BOTTOM [COMMAND] [ARG...]\n\n"
    "%s\n\n"
    "Options:\n"
    "      --add-host host:ip   add a line to /etc/hosts (host=ip also works; ip\n"
    "                           host-gateway: the host, with --network host)\n"
    "  -d, --detach             run in the background and print the container id\n"
    "      --entrypoint string  overwrite the image's entrypoint (\"\" clears it)\n"
    "  -e, --env KEY[=VALUE]    set an environment variable\n"
    "      --env-file file      read environment variables from a file\n"
    "  -h, --hostname string    container host name\n"
    "  -i, --interactive        keep stdin open\n"
    "      --mount spec         attach a filesystem mount (type=bind|volume|tmpfs,...)\n"
    "      --name string        name the container\n"
    "      --network none|host  network namespace (default host)\n"
    "      --read-only          mount the container's root filesystem read-only\n"
    "      --rm                 remove the container and its anonymous volumes on exit\n"
    "      --rootfs-layers L    expert: run over unpacked overlayfs layers (top first,\n"
    "                           ':'-separated) instead of an image; no image config\n"
    "  -t, --tty                allocate a pseudo-terminal\n"
    "      --tmpfs path[:opts]  mount a tmpfs\n"
    "  -u, --user user[:group]  user name or uid (and group)\n"
    "  -v, --volume spec        bind mount a volume ([SRC:]DST[:OPTS])\n"
    "  -w, --workdir string     working directory inside the container\n";

struct run_opts {
	bool detach, interactive, tty, read_only, rm, net_none, have_entry;
	const char *entry, *name, *hostname, *user, *workdir, *layers;
	char **env;
	size_t nenv;
	const char **add_hosts; /* as typed, checked once the options are read */
	size_t nadd_hosts;
	char **extra_hosts; /* add_hosts as recorded ("name:ip") */
	struct vol_mount *mounts;
	size_t nmounts;
};

static void run_opts_free(struct run_opts *o)
{
	su_strv_free(o->env);
	free(o->add_hosts);
	su_strv_free(o->extra_hosts);
	for (size_t i = 0; i < o->nmounts; i++)
		vol_mount_clear(&o->mounts[i]);
	free(o->mounts);
}

static int add_env(struct run_opts *o, const char *kv)
{
	char **v = realloc(o->env, (o->nenv + 2) * sizeof(*v));

	if (!v)
		return -1;
	o->env = v;
	v[o->nenv++] = strdup(kv);
	v[o->nenv] = NULL;
	return 0;
}

static int add_host(struct run_opts *o, const char *arg)
{
	const char **v = realloc(o->add_hosts, (o->nadd_hosts + 1) * sizeof(*v));

	if (!v)
		return -1;
	o->add_hosts = v;
	v[o->nadd_hosts++] = arg;
	return 0;
}

/* --hostname and --add-host, once --network is known (host-gateway
 * depends on it). */
static int check_names(const char *verb, struct run_opts *o)
{
	struct su_error e = {0};

	if (o->hostname && !lch_hostname_valid(o->hostname))
		return cli_usage_error(
		    verb,
		    "--hostname: invalid host name \"%s\" (letters, digits, '-', "
		    "'_' and '.', starting with a letter or digit, at most 64)",
		    o->hostname);
	o->extra_hosts = calloc(o->nadd_hosts + 1, sizeof(*o->extra_hosts));
	if (!o->extra_hosts)
		return cli_usage_error(verb, "out of memory");
	for (size_t i = 0; i < o->nadd_hosts; i++)
		if (lch_extra_host_parse(o->add_hosts[i], !o->net_none, &o->extra_hosts[i], &e) < 0)
			return cli_usage_error(verb, "--add-host: %s", e.msg);
	return CLI_OK;
}

static int add_mount(struct run_opts *o, int kind, const char *spec, struct su_error *e)
{
	struct vol_mount *v = realloc(o->mounts, (o->nmounts + 1) * sizeof(*v));
	int r;

	if (!v)
		return su_error_set(e, ENOMEM, "mount");
	o->mounts = v;
	memset(&v[o->nmounts], 0, sizeof(*v));
	r = kind == 'v'	  ? vol_spec_parse_volume(spec, &v[o->nmounts], e)
	    : kind == 'M' ? vol_spec_parse_mount(spec, &v[o->nmounts], e)
			  : vol_spec_parse_tmpfs(spec, &v[o->nmounts], e);
	if (r == 0)
		o->nmounts++;
	return r;
}

/* Returns CLI_OK, or the status to exit with; *first_arg: IMAGE's index. */
static int parse(const char *verb, int argc, char **argv, struct run_opts *o, int *first_arg)
{
	static const struct option opts[] = {
	    {"add-host", required_argument, NULL, 'A'},
	    {"detach", no_argument, NULL, 'd'},
	    {"entrypoint", required_argument, NULL, 'E'},
	    {"env", required_argument, NULL, 'e'},
	    {"env-file", required_argument, NULL, 'F'},
	    {"hostname", required_argument, NULL, 'h'},
	    {"interactive", no_argument, NULL, 'i'},
	    {"mount", required_argument, NULL, 'M'},
	    {"name", required_argument, NULL, 'n'},
	    {"network", required_argument, NULL, 'N'},
	    {"net", required_argument, NULL, 'N'},
	    {"read-only", no_argument, NULL, 'R'},
	    {"rm", no_argument, NULL, 'X'},
	    {"rootfs-layers", required_argument, NULL, 'L'},
	    {"tty", no_argument, NULL, 't'},
	    {"tmpfs", required_argument, NULL, 'T'},
	    {"user", required_argument, NULL, 'u'},
	    {"volume", required_argument, NULL, 'v'},
	    {"workdir", required_argument, NULL, 'w'},
	    {"help", no_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0},
	};
	struct su_error e = {0};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:de:h:itu:v:w:", opts, NULL)) != -1) {
		switch (c) {
		case 'A':
			if (add_host(o, optarg) < 0)
				return cli_usage_error(verb, "out of memory");
			break;
		case 'd':
			o->detach = true;
			break;
		case 'E':
			o->entry = optarg;
			o->have_entry = true;
			break;
		case 'e':
			add_env(o, optarg);
			break;
		case 'F':
			if (lch_env_file_read(optarg, &o->env, &o->nenv, &e) < 0)
				return cli_error(&e);
			break;
		case 'h':
			o->hostname = optarg;
			break;
		case 'i':
			o->interactive = true;
			break;
		case 'n':
			o->name = optarg;
			break;
		case 'N':
			if (strcmp(optarg, "none") && strcmp(optarg, "host"))
				return cli_usage_error(verb, "--network: only none or host");
			o->net_none = !strcmp(optarg, "none");
			break;
		case 'R':
			o->read_only = true;
			break;
		case 'X':
			o->rm = true;
			break;
		case 'L':
			o->layers = optarg;
			break;
		case 't':
			o->tty = true;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'w':
			o->workdir = optarg;
			break;
		case 'v':
		case 'M':
		case 'T':
			if (add_mount(o, c, optarg, &e) < 0)
				return cli_error(&e);
			break;
		case 'H':
			printf(run_help, verb, verb,
			       !strcmp(verb, "run")
				   ? "Create and run a new container from an image."
				   : "Create a new container.");
			return -1;
		default:
			return cli_bad_option(verb, c, argv);
		}
	}
	if (!o->layers && optind >= argc)
		return cli_usage_error(verb, "requires at least 1 argument");
	*first_arg = optind;
	return check_names(verb, o);
}

/* ---- the spec ---- */

static int to_lch_mount(const struct vol_mount *v, struct lch_mount *m)
{
	m->type = v->type;
	m->target = strdup(v->target);
	m->readonly = v->readonly;
	m->nocopy = v->nocopy;
	m->source = v->source ? strdup(v->source) : NULL;
	if (v->type == VOL_MOUNT_TMPFS) {
		char size[48] = "";

		if (v->tmpfs_size)
			snprintf(size, sizeof(size), ",size=%llu",
				 (unsigned long long)v->tmpfs_size);
		m->flags = v->flags;
		m->data = su_asprintf(
		    "mode=%o%s%s%s", (unsigned)(v->tmpfs_mode ? v->tmpfs_mode : 01777), size,
		    v->tmpfs_data && *v->tmpfs_data ? "," : "", v->tmpfs_data ? v->tmpfs_data : "");
	}
	return m->target ? 0 : -1;
}

static bool covered(const struct run_opts *o, const char *path)
{
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		n--;
	for (size_t i = 0; i < o->nmounts; i++)
		if (strlen(o->mounts[i].target) == n && !strncmp(o->mounts[i].target, path, n))
			return true;
	return false;
}

static int build_mounts(const struct run_opts *o, char *const *img_volumes, struct lch_spec *s,
			struct su_error *e)
{
	size_t nimg = su_strv_len(img_volumes);

	if (vol_spec_check_targets(o->mounts, o->nmounts, e) < 0)
		return -1;
	s->mounts = calloc(o->nmounts + nimg + 1, sizeof(*s->mounts));
	if (!s->mounts)
		return su_error_set(e, ENOMEM, "mounts");
	for (size_t i = 0; i < o->nmounts; i++) {
		if (o->mounts[i].type == VOL_MOUNT_BIND && vol_bind_prepare(&o->mounts[i], e) < 0)
			return -1;
		if (to_lch_mount(&o->mounts[i], &s->mounts[s->nmounts++]) < 0)
			return su_error_set(e, ENOMEM, "mount");
	}
	/* An image VOLUME becomes an anonymous volume unless a mount covers
	 * it. */
	for (size_t i = 0; i < nimg; i++) {
		struct lch_mount *m = &s->mounts[s->nmounts];

		if (covered(o, img_volumes[i]) || img_volumes[i][0] != '/')
			continue;
		m->type = VOL_MOUNT_VOLUME;
		m->target = strdup(img_volumes[i]);
		s->nmounts++;
	}
	return 0;
}

static int build_spec(const struct cli_ctx *ctx, struct run_opts *o, int argc, char **argv,
		      struct lch_spec *s, struct su_error *e)
{
	struct img_resolved img = {0};
	char **args;
	int r = -1;

	if (o->layers) {
		s->layers = su_split_escaped(o->layers, ':');
		s->image = strdup(o->layers);
		for (size_t i = 0; s->layers && s->layers[i]; i++)
			if (s->layers[i][0] != '/')
				return su_error_set(
				    e, EINVAL, "--rootfs-layers: %s is not absolute", s->layers[i]);
		if (!s->layers || !s->layers[0])
			return su_error_set(e, EINVAL, "--rootfs-layers: no layers");
		args = argv;
	} else {
		if (img_resolve(ctx->root, argv[0], &img, e) < 0)
			return -1;
		s->image = strdup(argv[0]);
		s->image_id = strdup(img.id);
		s->layers = steal_pointer(&img.layers);
		args = argv + 1;
		(void)argc;
	}
	s->argv = lch_command(img.config.entrypoint, img.config.cmd, o->entry, o->have_entry, args);
	if (!s->argv || !s->argv[0]) {
		su_error_set(e, 0, "no command specified");
		goto out;
	}
	s->env = lch_env_merge(img.config.env, o->env);
	s->workdir = o->workdir		  ? strdup(o->workdir)
		     : img.config.workdir ? strdup(img.config.workdir)
					  : NULL;
	s->user = o->user ? strdup(o->user) : img.config.user ? strdup(img.config.user) : NULL;
	s->name = o->name ? strdup(o->name) : NULL;
	s->hostname = o->hostname ? strdup(o->hostname) : NULL;
	s->extra_hosts = steal_pointer(&o->extra_hosts);
	s->tty = o->tty;
	s->interactive = o->interactive;
	s->read_only = o->read_only;
	s->net_none = o->net_none;
	s->auto_remove = o->rm;
	if (s->workdir && s->workdir[0] != '/') {
		su_error_set(e, EINVAL,
			     "the working directory '%s' is invalid, it needs to be an "
			     "absolute path",
			     s->workdir);
		goto out;
	}
	r = build_mounts(o, img.config.volumes, s, e);
out:
	img_resolved_free(&img);
	return r;
}

static int run_or_create(struct cli_ctx *ctx, const char *verb, int argc, char **argv)
{
	struct run_opts o = {0};
	struct lch_spec s = {0};
	struct su_error e = {0};
	int first = 0, rc;

	rc = parse(verb, argc, argv, &o, &first);
	if (rc != CLI_OK) {
		run_opts_free(&o);
		return rc < 0 ? CLI_OK : rc;
	}
	/* Docker's status for a container that never ran: 125. */
	if (build_spec(ctx, &o, argc - first, argv + first, &s, &e) < 0 ||
	    lch_create(ctx->root, &s, &e) < 0) {
		cli_error(&e);
		rc = 125;
		goto out;
	}
	if (!strcmp(verb, "create")) {
		printf("%s\n", s.id);
	} else {
		struct lch_start_opts so = {.attach = !o.detach, .status_fd = -1};

		fflush(stdout);
		rc = lch_start(ctx->root, s.id, &so, &e);
		if (rc < 0) {
			fprintf(stderr, "strata: %s\n", e.msg);
			rc = 125;
		} else if (o.detach) {
			printf("%s\n", s.id);
		}
	}
out:
	lch_spec_free(&s);
	run_opts_free(&o);
	return rc;
}

int cli_run(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_or_create(ctx, "run", argc, argv);
}

int cli_create(struct cli_ctx *ctx, int argc, char **argv)
{
	return run_or_create(ctx, "create", argc, argv);
}
