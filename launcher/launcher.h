/* launcher: containers -- their recorded configuration and state under
 * <root>/containers/<id>/, the namespaces and rootfs they run in, PID 1, and
 * the lifecycle verbs (create, start, stop, kill, rm, exec). */
#ifndef STRATA_LAUNCHER_H
#define STRATA_LAUNCHER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "util/util.h"
#include "volumes/volumes.h"

/* ---- what a container is made of (launcher/spec.c) ----
 * Everything `create` decided, written once to config.json and read back by
 * every later verb.  Strings and vectors are owned by the struct. */

struct lch_mount {
	enum vol_mount_type type;
	char *source; /* bind: host path; volume: store name; tmpfs: NULL */
	char *target; /* absolute, clean */
	bool readonly;
	bool anonymous; /* volume created for this container (rm -v deletes it) */
	bool nocopy;
	unsigned long flags; /* tmpfs: MS_* */
	char *data;	     /* tmpfs: mount(2) data ("mode=1777,size=...") */
};

struct lch_spec {
	char *id, *name;
	char *image;	/* what the user typed */
	char *image_id; /* "" for --rootfs-layers */
	char **layers;	/* absolute layer directories, top first */
	char **argv;	/* the final command (entrypoint + cmd) */
	char **env;	/* KEY=VALUE, NULL-terminated */
	char *workdir, *user, *hostname, *created;
	char **extra_hosts; /* --add-host entries, "name:ip" */
	bool tty, interactive, read_only, net_none, auto_remove;
	struct lch_mount *mounts;
	size_t nmounts;
};

void lch_spec_free(struct lch_spec *s);
json_t *lch_spec_to_json(const struct lch_spec *s);
int lch_spec_from_json(json_t *j, struct lch_spec *s, struct su_error *e);

/* ---- Docker's rules for the image config (launcher/config.c) ---- */

/* Image Env, then user env on top (same key: the user's wins); "KEY" alone
 * takes the value from the caller's environment or, unset there, removes
 * KEY (the image's value included), as Docker does. */
char **lch_env_merge(char *const *image_env, char *const *user_env);
/* Appends the KEY=VALUE lines of an --env-file (comments and blanks
 * skipped) to *v; returns 0 or -1 with e set. */
int lch_env_file_read(const char *path, char ***v, size_t *n, struct su_error *e);
/* entrypoint + cmd as Docker combines them: --entrypoint replaces the image
 * entrypoint and drops the image cmd; user args replace the image cmd. */
char **lch_command(char *const *img_entry, char *const *img_cmd, const char *user_entry,
		   bool have_user_entry, char *const *user_args);
/* Resolves "name", "uid", "name:group", "uid:gid" against a root's
 * /etc/passwd and /etc/group (rootfd).  Groups: supplementary gids of a
 * named user, *ngroups entries (max 64). */
int lch_user_resolve(int rootfd, const char *user, uid_t *uid, gid_t *gid, gid_t *groups,
		     size_t *ngroups, char **home, struct su_error *e);
/* A host name the container can take: letters, digits, '-', '_', '.',
 * starting with a letter or digit, at most 64 bytes. */
bool lch_hostname_valid(const char *h);
/* Docker's --add-host: "name:ip" or "name=ip" (an IPv6 address may be in
 * brackets; "host-gateway" is the host, reachable only with host_net).
 * *out: the entry as recorded, "name:ip". */
int lch_extra_host_parse(const char *arg, bool host_net, char **out, struct su_error *e);
/* The container's /etc/hosts: localhost (IPv4 and IPv6), the --add-host
 * entries ("name:ip"), and the host name on 127.0.0.1 unless an entry
 * names it.  NULL when out of memory. */
char *lch_hosts_text(const char *hostname, char *const *extra_hosts);
/* The container's /etc/resolv.conf: the host's as it is when the container
 * shares the host's network; with a network namespace of its own, podman's
 * rules (no loopback or IPv6 nameservers, Google's when none is left). */
char *lch_resolv_conf(bool own_netns);

/* ---- container state (launcher/state.c) ---- */

enum lch_status { LCH_CREATED, LCH_RUNNING, LCH_EXITED, LCH_DEAD };

struct lch_proc {
	pid_t pid;
	unsigned long long start; /* /proc/PID/stat starttime, against reuse */
};

struct lch_state {
	enum lch_status status; /* as recorded */
	bool removing;		/* an rm has begun (it stopped the container) */
	struct lch_proc keeper, init, fs;
	int exit_code;
	char *started_at, *finished_at, *error;
};

/* The containers directory (created on demand): <root>/containers. */
char *lch_containers_dir(const char *root);
/* Takes the container's lock (exclusive; wait: block, else fail with EBUSY
 * when it is held) and returns its fd, closing which unlocks; ENOENT "no
 * such container" when the container is gone, or went while waiting.
 * start holds it from its checks until the keeper has recorded the
 * container running (or failed), rm from its last check of the processes
 * through its commit and the deletion of the tree, so a container being
 * removed never starts and a starting one is never removed under it.
 * Inherited by fork: a child that must not hold it closes it. */
int lch_lock(const char *root, const char *id, bool wait, struct su_error *e);
/* Finds a container by full id, unique id prefix or name. */
int lch_lookup(const char *root, const char *ref, char **id, struct su_error *e);
int lch_load(const char *root, const char *id, struct lch_spec *spec, struct su_error *e);
int lch_state_read(const char *root, const char *id, struct lch_state *st);
/* lch_state_read, but when the container's command has just ended and its
 * keeper is still recording the exit, waits (up to 6 s) for that record,
 * so that ps, exec, kill and start agree on whether it runs. */
int lch_state_read_settled(const char *root, const char *id, struct lch_state *st);
int lch_state_write(const char *root, const char *id, const struct lch_state *st);
void lch_state_free(struct lch_state *st);
/* The status as it really is: a "running" record whose processes are gone
 * (crash of the launcher, of strata-fs or of the machine) reads as dead. */
enum lch_status lch_state_actual(const struct lch_state *st);
const char *lch_status_name(enum lch_status s);
/* The process lives (it may be dying: use it to wait for it to be gone). */
bool lch_proc_alive(const struct lch_proc *p);
/* The process lives and is not on its way out (SIGKILL pending, exiting). */
bool lch_proc_running(const struct lch_proc *p);
int lch_proc_get(pid_t pid, struct lch_proc *p);
/* Every container id, sorted by creation (newest first). */
int lch_list(const char *root, char ***ids, struct su_error *e);
/* ---- create / start / stop / rm (launcher/lifecycle.c) ---- */

/* Records spec (its id and created filled in here): creates the container
 * directory, the volumes of spec->mounts that need creating, and their
 * references. */
int lch_create(const char *root, struct lch_spec *spec, struct su_error *e);

struct lch_start_opts {
	bool attach;   /* wait for the command and return its status */
	int status_fd; /* -1, or a pipe that gets "OK <pid>\n" or "ERR <msg>\n" */
};

/* Runs a created or exited container; one an rm has begun to remove is
 * refused ("being removed").  Attached: returns the exit status of the
 * command (128+N for a signal), 125 when the container could not be
 * started.  Detached: returns 0 once the command runs. */
int lch_start(const char *root, const char *id, const struct lch_start_opts *o, struct su_error *e);
/* SIGTERM (or sig) to the command, SIGKILL after timeout seconds; returns
 * once the container has stopped. */
int lch_stop(const char *root, const char *id, int sig, int timeout, struct su_error *e);
int lch_kill(const char *root, const char *id, int sig, struct su_error *e);
/* Removes a stopped container (force: kills a running one first), its
 * writable layer and volume references; with volumes also its anonymous
 * volumes.  Finishes the removal of a container an earlier rm was killed
 * removing; a container that removes itself meanwhile (--rm) counts as
 * removed. */
int lch_rm(const char *root, const char *id, bool force, bool volumes, struct su_error *e);
/* Deletes what rms killed after their commit left (containers/.rm-<id>
 * trees nobody is deleting); what cannot be deleted is a warning. */
void lch_gc(const char *root);
/* Runs argv in the running container's namespaces; returns its status. */
struct lch_exec_opts {
	char **argv, **env;
	const char *user, *workdir;
	bool tty, interactive;
};
int lch_exec(const char *root, const char *id, const struct lch_exec_opts *o, struct su_error *e);

/* ---- namespaces, rootfs, PID 1 (launcher/userns.c, rootfs.c, init.c) ---- */

/* The strata-fs binary: $STRATA_FS, else next to /proc/self/exe, else PATH. */
char *lch_fs_binary(void);

/* Forks; the child enters a new user namespace mapping the caller to root
 * (subuid/subgid ranges through newuidmap/newgidmap when the caller has
 * them) -- or, when the caller is already root, no new user namespace.
 * Returns the pid in the parent, 0 in the child, -1 on error. */
pid_t lch_fork_userns(struct su_error *e);

struct lch_rootfs {
	const char *merged;	 /* the mounted union, a host path */
	const char *volumes_dir; /* <root>/volumes */
	const struct lch_spec *spec;
	struct vol_store *store;
	bool have_netns;     /* the container has its own network namespace */
	const char *etc_dir; /* holds the container's hosts, hostname and
			      * resolv.conf (NULL: the image's stay) */
};

/* In the container's new mount namespace: every mount of the container in
 * depth order, /proc /dev /sys, the files of etc_dir over /etc, Docker's
 * masked and read-only paths, then pivot_root into merged.  Read-only
 * mounts are read-only with every mount below them. */
int lch_rootfs_setup(const struct lch_rootfs *r, struct su_error *e);
/* Opens path inside rootfd (RESOLVE_IN_ROOT), creating the missing
 * directories (or, when file, the last component as an empty file); never
 * creates through a symlink.  Returns an O_PATH fd or -1. */
int lch_open_in_root(int rootfd, const char *path, bool file, struct su_error *e);
/* Opens path inside rootfd (RESOLVE_IN_ROOT) as O_PATH | flags, creating
 * nothing.  Returns the fd or -1 with errno set. */
int lch_resolve_in_root(int rootfd, const char *path, int flags);
/* Remounts the mount at path read-only, keeping the flags the kernel has
 * locked (nosuid, nodev, noexec, atime flags), as bubblewrap does. */
int lch_remount_ro(const char *path, struct su_error *e);

/* PID 1: after the rootfs is ready, runs the command as a child, reaps
 * every zombie, forwards signals, and never returns: exits with the
 * command's status (128+N for a signal).  tty_fd: the pty slave or -1. */
void lch_init_run(const struct lch_spec *spec, int tty_fd, int sync_fd) __attribute__((noreturn));
/* What the command child does before execve: user, capabilities (Docker's
 * default set), no_new_privs, working directory, environment.  Returns
 * only on error (the exit status to use). */
int lch_exec_command(char **argv, char **env, const char *user, const char *workdir,
		     struct su_error *e);
/* Drops every capability outside Docker's default set from the bounding
 * set and sets uid/gid/groups; caps of non-root users end empty. */
int lch_caps_and_user(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
		      struct su_error *e);

/* ---- ptys (launcher/pty.c) ---- */

/* Passes an fd over a unix socket and receives it. */
int lch_send_fd(int sock, int fd);
int lch_recv_fd(int sock);
/* The first of stdin, stdout and stderr that is a terminal, its size in
 * *ws; -1 when none is (`-t` with every stream redirected). */
int lch_terminal_fd(struct winsize *ws);
/* Copies in -> master and master -> out until the master hangs up (in may
 * be -1); the master takes the size of the terminal winsz_from (-1: none)
 * at once and again on each SIGWINCH. */
void lch_pty_relay(int master, int in, int out, int winsz_from);

#endif
