/* fs/sfs.h: strata-fs data structures and the internal API, grouped by the
 * file that defines each function.  Functions return 0 (or a value) on
 * success and a negative errno on failure; only ops.c replies to FUSE.
 *
 * Threads and locks.  Requests run on libfuse's worker threads; the kernel
 * already serializes namespace changes within one directory (it holds the
 * directory's inode lock for create, unlink and rename, and the rename lock
 * across directories).  strata-fs adds:
 *   fs->table_lock   the node table and every node's nlookup/refs; held for
 *                    a few instructions, never while calling into a layer.
 *   node->lock       one node's copy-up, its name (parent, name) and flags.
 *                    Held during that node's copy-up (data included), so a
 *                    large copy blocks only users of that file.
 *   sfs_dir.lock     one open directory's listing snapshot.
 *   sfs_file.lock    one open file's switch from a lower fd to the upper.
 * Order: never two node locks at once -- copy-up finishes a parent before it
 * locks the child; table_lock is innermost.  node->has_upper changes once,
 * from false to true (after node->upper got its fd), and metacopy once, from
 * true to false; both are published with release stores and read with
 * acquire loads, without the lock.  A directory's upper fd may be taken
 * away by the pruner and opened again (sfs_node_upper), as its lowers'. */
#ifndef STRATA_SFS_H
#define STRATA_SFS_H

#define FUSE_USE_VERSION 312
#include <dirent.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include "util/hash.h"

#include "util/util.h"

#define SFS_VERSION "0.1.0"

/* ---- options (options.c) ---- */

/* fuse-overlayfs' mapping: uidmapping=DISK:SHOWN:LEN[:...] -- an owner DISK
 * on the layers is shown to the kernel as SHOWN, and back on writes. */
struct sfs_idmap {
	unsigned n;
	struct sfs_idrange {
		uint32_t disk, shown, len;
	} r[64];
};

struct sfs_opts {
	char *lowerdir, *upperdir, *workdir;
	struct sfs_idmap uidmap, gidmap;
	bool squash_to_root;
	long squash_uid, squash_gid; /* -1: not set */
	bool static_nlink, noxattrs, nofsync, threaded, writeback, metacopy, index;
	bool userxattr, readonly, foreground, debug, help, version, passthrough, prefetch;
	bool uring;
	bool samecpu; /* uring.c: a reply wakes its program on the program's CPU */
	double timeout;
	char *source, *mountpoint;
	/* FUSE mount options passed on, comma separated (may be empty) */
	char *fuse_opts;
	size_t fuse_opts_len, fuse_opts_cap;
};

/* Parses one -o value into o; unknown options add a warning line to *warn.
 * Returns 0, or -EINVAL with a message in err. */
int sfs_opts_parse(struct sfs_opts *o, const char *optstr, char *err, size_t errlen, char **warn);
void sfs_opts_init(struct sfs_opts *o);
void sfs_opts_free(struct sfs_opts *o);
int sfs_idmap_parse(struct sfs_idmap *m, const char *s);
/* Maps an id through m in the given direction; unmapped ids give 65534. */
uint32_t sfs_idmap_to_shown(const struct sfs_idmap *m, uint32_t disk);
uint32_t sfs_idmap_to_disk(const struct sfs_idmap *m, uint32_t shown);

/* ---- the filesystem ---- */

/* One layer directory.  Index 0 of fs->layers is the upper when there is
 * one; lowers follow top first. */
struct sfs_layer {
	int fd; /* O_PATH|O_DIRECTORY root */
	char *path;
	unsigned fsidx; /* index of its filesystem (st_dev) among the layers */
	dev_t dev;
	bool upper;
	uint8_t uuid[16]; /* filesystem uuid for overlayfs file handles */
	bool has_uuid;
	bool fuse; /* on a FUSE filesystem */
	/* its inode numbers may change once the kernel forgets an inode
	 * (FUSE, FAT, SMB): nodes of its files hold an fd, as directories do */
	bool pin;
	/* close(2) never reports an error on its filesystem (no ->flush:
	 * ext4, xfs, tmpfs): the kernel need not send FLUSH on a close */
	bool quiet_close;
};

/* One lower object of a node.  Directories hold an O_PATH fd of each of
 * their lowers while they are in use; other nodes hold none (a walk would
 * otherwise keep one fd per file): theirs is opened by its path below the
 * layer root when needed, and must still be the inode found by the
 * lookup.  A directory's fd may be taken away by the pruner (prune.c) and
 * is then opened again the same way (sfs_node_lowdir); it is read with
 * atomic loads, and a request may use what it read until it ends. */
struct sfs_lower {
	int fd;	   /* O_PATH, owned by the node, or -1 */
	int layer; /* index into fs->layers */
	ino_t ino; /* st_ino in the layer */
	/* a listing read to its end found no .wh. name (no OCI whiteout or
	 * opaque marker): lookups need not probe for one (atomic) */
	bool nowh;
};

/* A node is one object of the merged tree, keyed by its st_ino.  Fields
 * marked (imm) never change after the node is published; `has_upper` goes
 * from false to true exactly once, under `lock`, after `upper` got its fd;
 * both are read with atomic loads.  A directory's `upper` may go back to -1
 * when the pruner takes it, and is then opened again by the directory's
 * path (the upper's names are the merged tree's): a directory holds its
 * fds while in use, like a lower directory.
 * Lock order: a node's lock may be taken while holding no other node lock;
 * copy-up of parents completes before the child's lock is taken. */
struct sfs_node {
	uint64_t ino; /* presented st_ino (imm); key of fs->nodes */
	UT_hash_handle hh;
	uint64_t nlookup;	 /* kernel references (fs->table_lock) */
	uint64_t refs;		 /* child aliases and open handles (fs->table_lock) */
	mode_t type;		 /* S_IFMT bits (imm) */
	pthread_mutex_t lock;	 /* serializes copy-up; guards the fields below */
	struct sfs_node *parent; /* one name of this node: parent holds a ref */
	char *name;
	int upper;	       /* O_PATH fd of the upper object or -1 */
	bool has_upper;	       /* there is an upper object (upper may be -1) */
	ino_t upino;	       /* a directory's upper st_ino, once taken (prune.c) */
	bool metacopy;	       /* upper holds metadata only, data is low[0] */
	bool indexed;	       /* upper lives in workdir/index (hard links) */
	bool unlinked;	       /* no name left in the merged tree */
	uint32_t privs;	       /* set-id bits, capabilities: sfs_privs_* (atomic) */
	int nlow;	       /* (imm) */
	struct sfs_lower *low; /* (imm) dirs: merged lowers; others: at most 1 */
	char *lowpath;	       /* (imm) path of low[] below the layer roots */
	/* open files by I/O mode (passthrough.c), under lock */
	int32_t pt_id; /* backing id shared by passthrough opens, or 0 */
	unsigned pt_opens, cached_opens;
	bool pt_used;	   /* passthrough I/O since the last cached open */
	bool prefilled;	   /* its lower data was stored into the kernel's cache */
	uint16_t prefills; /* of its children, counted to start a readahead */
	bool prefetched;   /* its readahead was made (atomic) */
	bool listed;	   /* a listing was read */
	uint64_t tick;	   /* fs->tick at the last lookup (table_lock) */
	uint64_t used;	   /* fs->tick when its lower dir fds were last used (atomic) */
	int fds;	   /* fds counted for prune.c: at publish, +1 at copy-up */
};

#define SFS_PRUNE_BUSY	  32 /* the most request threads */
#define SFS_PRUNE_RESERVE 16
#define SFS_GRACE_SLOTS	  256 /* request threads tracked */

struct sfs_fs {
	struct sfs_opts *o;
	struct sfs_layer *layers;
	int nlayers;
	struct sfs_layer *upper; /* &layers[0] or NULL when read-only */
	int first_lower;	 /* index of the top lower in layers */
	int workfd;		 /* workdir/work: temporaries, O_PATH */
	uid_t work_uid;		 /* owner an object made in workfd gets */
	gid_t work_gid;
	bool work_plain;	 /* ...and the permissions asked: no setgid, no ACL */
	bool wh_shared;		 /* whiteouts are links to workdir/work/whiteout (atomic) */
	unsigned wh_gen;	 /* times it was replaced (atomic) */
	uint64_t wh_ino;	 /* its st_ino, 0 before it exists (atomic) */
	pthread_mutex_t wh_lock; /* replacing it */
	int indexfd;		 /* workdir/index or -1 */
	int procfd;		 /* /proc/self/fd, to reopen O_PATH fds */
	char xp[24];		 /* "trusted.overlay." or "user.overlay." */
	size_t xplen;
	uid_t uid; /* daemon's own id, to spot root */
	struct sfs_node *root;
	pthread_mutex_t table_lock; /* guards nodes, nlookup, refs */
	struct sfs_node *nodes;
	uint64_t tmpseq; /* atomic counter for temporary names */
	unsigned pid;	 /* for temporary names (set after daemonizing) */
	double timeout;
	struct {
		int devfd; /* /dev/fuse of the session */
		struct fuse_session *se;
		bool on;      /* negotiated, backing files accepted (atomic) */
		bool offered; /* the kernel offered it in INIT */
		bool allowed; /* passthrough may be accepted (root, no writeback) */
		bool init_seen, init_done;
		uint64_t init_unique;
		uint32_t init_flags; /* the kernel's INIT offer */
		uint32_t init_flags2;
		bool killpriv;	 /* FUSE_HANDLE_KILLPRIV_V2 accepted */
		bool opath;	 /* O_PATH fds may name backing files (atomic) */
	} pt;			 /* passthrough.c */
	struct sfs_uring *ur;	 /* uring.c: set while io_uring queues run */
	struct sfs_ahead *ahead; /* ahead.c: set while its threads run */
	struct {
		struct fuse_session *se;
		pthread_t thread;
		pthread_mutex_t lock;
		pthread_cond_t wake;
		bool running, stop, forced;
		long fds;	      /* held by nodes (atomic) */
		long pending;	      /* taken from nodes, not yet closed (atomic) */
		long high, low;	      /* prune above high, down to low */
		long crowded;	      /* lookups wait for a round above this */
		bool futile;	      /* the last round took nothing (atomic) */
		unsigned long rounds; /* pruning rounds done (atomic) */
		/* directories whose requests wait for a round (lock) */
		struct sfs_node *busy[SFS_PRUNE_BUSY];
		struct sfs_node *notifying; /* parent being notified (atomic) */
		int proc, scanfd;	    /* /proc, and an fd to give up to read it */
		/* fds held back for requests the pruner cannot help (lock) */
		int reserve[SFS_PRUNE_RESERVE], nreserve;
		/* where each request thread is (its own slot), so that fds
		 * taken from directories are closed once no request that may
		 * have read them is still running */
		struct sfs_grace_slot *slots; /* SFS_GRACE_SLOTS */
		pthread_key_t slot_key;	      /* made when slots is not NULL */
		int unslotted;		      /* threads that found no slot (atomic) */
		int *closing;		      /* fds taken, to close after the grace */
		size_t nclosing, closing_cap;
		uint64_t *snap; /* the slots' counts when they were taken */
	} prune;		/* prune.c */
	uint64_t tick;		/* lookups so far (written under table_lock) */
	/* renames of directories under way, and done (atomic; dir.c) */
	unsigned renaming;
	uint64_t renamed;
	pthread_key_t read_pipe; /* file.c */
};

/* ---- sys.c: every call into the layers, logged at debug level ---- */

int sfs_openat(int dirfd, const char *name, int flags, mode_t mode);
/* A stream of the entries of the directory fd names (any kind of fd, O_PATH
 * too), read with getdents64: next gives 1 and an entry (valid until the
 * next call), 0 at the end, or -errno. */
struct sfs_dirstream;
struct sfs_rawent {
	uint64_t ino;
	unsigned char type;
	const char *name;
};
int sfs_dirstream_open(int fd, struct sfs_dirstream **out);
/* The same for the directory name in dirfd, symlinks not followed. */
int sfs_dirstream_openat(int dirfd, const char *name, struct sfs_dirstream **out);
/* The same for fd, a directory opened for reading, which the stream takes
 * (closed on failure). */
int sfs_dirstream_adopt(int fd, struct sfs_dirstream **out);
int sfs_dirstream_fd(const struct sfs_dirstream *d);
int sfs_dirstream_next(struct sfs_dirstream *d, struct sfs_rawent *e);
void sfs_dirstream_close(struct sfs_dirstream *d);
void sfs_dirstream_closep(struct sfs_dirstream **d);
#define _cleanup_dirstream_ __attribute__((cleanup(sfs_dirstream_closep)))
int sfs_reopen(struct sfs_fs *fs, int fd, int flags);
int sfs_fstatat(int dirfd, const char *name, struct stat *st, int flags);
int sfs_mkdirat(int dirfd, const char *name, mode_t mode);
int sfs_mknodat(int dirfd, const char *name, mode_t mode, dev_t dev);
int sfs_linkat(int olddir, const char *oldname, int newdir, const char *newname);
int sfs_symlinkat(const char *target, int dirfd, const char *name);
int sfs_unlinkat(int dirfd, const char *name, int flags);
int sfs_renameat2(int olddir, const char *oldname, int newdir, const char *newname, unsigned flags);
int sfs_linkat_fd(struct sfs_fs *fs, int fd, int newdir, const char *newname);
int sfs_readlinkat(int fd, char *buf, size_t len);
/* xattrs of the object behind an fd (O_PATH allowed); ssize_t results */
ssize_t sfs_fgetxattr(struct sfs_fs *fs, int fd, const char *name, void *buf, size_t len);
int sfs_fsetxattr(struct sfs_fs *fs, int fd, const char *name, const void *buf, size_t len,
		  int flags);
ssize_t sfs_flistxattr(struct sfs_fs *fs, int fd, char *buf, size_t len);
int sfs_fremovexattr(struct sfs_fs *fs, int fd, const char *name);
/* fd may be O_PATH: chmod/chown/utimens/truncate of the object */
int sfs_fchmod(struct sfs_fs *fs, int fd, mode_t mode);
int sfs_fchown(int fd, uid_t uid, gid_t gid);
int sfs_futimens(struct sfs_fs *fs, int fd, const struct timespec ts[2], bool symlink);
int sfs_ftruncate(struct sfs_fs *fs, int fd, off_t size);
char *sfs_tmpname(struct sfs_fs *fs);

/* ---- layers.c: setup, xattr names, whiteouts, opacity ---- */

int sfs_fs_init(struct sfs_fs *fs, struct sfs_opts *o, char *err, size_t errlen);
void sfs_fs_destroy(struct sfs_fs *fs);
/* Reads our xattr "overlay.<name>" (prefix by mode) into buf. */
ssize_t sfs_getox(struct sfs_fs *fs, int fd, const char *name, void *buf, size_t len);
int sfs_setox(struct sfs_fs *fs, int fd, const char *name, const void *val, size_t len);
int sfs_rmox(struct sfs_fs *fs, int fd, const char *name);
/* True for names the filesystem keeps to itself (hidden from listxattr). */
bool sfs_is_private_xattr(struct sfs_fs *fs, const char *name);
bool sfs_is_whiteout(const struct stat *st);
/* Whether the entry de of the directory dirfd is a whiteout: 1 or 0, or the
 * error of its stat.  A link to the shared whiteout needs no stat. */
int sfs_dirent_whiteout(struct sfs_fs *fs, int dirfd, const struct sfs_rawent *de);
/* Which overlay xattrs an object carries, from one listxattr call, so the
 * common object with none costs a single system call. */
enum {
	SFS_OX_OPAQUE = 1 << 0,
	SFS_OX_REDIRECT = 1 << 1,
	SFS_OX_METACOPY = 1 << 2,
	SFS_OX_ORIGIN = 1 << 3,
	SFS_OX_INO = 1 << 4,
	SFS_OX_NLINK = 1 << 5,
	SFS_OX_IMPURE = 1 << 6,
	SFS_OX_FOREIGN_OPAQUE = 1 << 7, /* opaque in another format (lowers) */
};
unsigned sfs_ox_present(struct sfs_fs *fs, int fd);
/* Lower directory fd opaque (xattr in any known format, or .wh..wh..opq). */
bool sfs_lower_dir_opaque(struct sfs_fs *fs, int fd);
bool sfs_upper_dir_opaque(struct sfs_fs *fs, int fd);
/* Makes name in dirfd (nothing there yet) a whiteout: a link to the
 * mount's shared whiteout (as overlayfs does) where the upper allows, else
 * a new 0/0 device. */
int sfs_make_whiteout(struct sfs_fs *fs, int dirfd, const char *name);
/* Presented inode number of a real inode in layer l. */
uint64_t sfs_make_ino(struct sfs_fs *fs, int layer, ino_t ino);
/* Inode number of one name (path below the layer roots) of a lower file
 * with several names, for mounts where copy-up breaks hard links: each name
 * is then a file of its own. */
uint64_t sfs_make_alias_ino(struct sfs_fs *fs, int layer, ino_t ino, const char *path);
/* Encodes the overlayfs file handle (struct ovl_fb) of fd into buf; returns
 * its length.  Used for origin xattrs and index names. */
int sfs_encode_fh(struct sfs_fs *fs, int layer, int fd, uint8_t *buf, size_t len);

/* ---- inode.c: the node table ---- */

struct sfs_node *sfs_node_get(struct sfs_fs *fs, fuse_ino_t nodeid);
fuse_ino_t sfs_node_id(struct sfs_fs *fs, struct sfs_node *n);
void sfs_node_ref(struct sfs_fs *fs, struct sfs_node *n);
void sfs_node_unref(struct sfs_fs *fs, struct sfs_node *n);
void sfs_node_forget(struct sfs_fs *fs, struct sfs_node *n, uint64_t nlookup);
/* Whether n has an upper object. */
bool sfs_node_has_upper(struct sfs_node *n);
/* An O_PATH fd of n's upper object, which n holds (a request may use it
 * until it ends), or -ENOENT when n has none.  A directory's fd taken by
 * the pruner is opened again by the directory's path and held again:
 * that may fail (-EMFILE, -ESTALE...). */
int sfs_node_upper(struct sfs_fs *fs, struct sfs_node *n);
/* Has directory n, just removed, hold fd (an fd of its upper object) if
 * the pruner took its own: without a name it could not be opened again,
 * and a process may still be in it.  True when n took fd over. */
bool sfs_node_keep_upper(struct sfs_fs *fs, struct sfs_node *n, int fd);
/* Whether n's data is in its upper (not lower, nor metacopy). */
bool sfs_node_data_up(struct sfs_node *n);
/* An O_PATH fd of n's top lower: a directory's own, else one opened into
 * *tmp, which the caller closes (-1 when none was opened).  st (may be
 * NULL) gets its stat. */
int sfs_node_lowfd(struct sfs_fs *fs, struct sfs_node *n, int *tmp, struct stat *st);
/* fd holding n's attributes (upper, else top lower) or its data; as for
 * sfs_node_lowfd, *tmp is the caller's to close. */
int sfs_node_metafd(struct sfs_fs *fs, struct sfs_node *n, int *tmp);
/* An O_PATH fd of directory n's lower l (one of n->low): the one it holds,
 * else one opened by its path, which n holds from then on, or which is
 * the caller's to close (*tmp) while the daemon is short of fds. */
int sfs_node_lowdir(struct sfs_fs *fs, struct sfs_node *n, struct sfs_lower *l, int *tmp);
/* A new fd of n's data opened with flags (upper data, else the lower). */
int sfs_node_open_data(struct sfs_fs *fs, struct sfs_node *n, int flags);
int sfs_node_open_lower(struct sfs_fs *fs, struct sfs_node *n, int flags, struct stat *st);
/* Sets n's name to (parent, name); takes a ref on parent. */
int sfs_node_set_alias(struct sfs_fs *fs, struct sfs_node *n, struct sfs_node *parent,
		       const char *name);
void sfs_node_drop_alias(struct sfs_fs *fs, struct sfs_node *n);
struct sfs_res;
/* Live node of ino with a kernel (lookup) or internal reference, or NULL. */
struct sfs_node *sfs_node_find(struct sfs_fs *fs, uint64_t ino, bool lookup);
/* Turns a resolved object into a node (taking over res's fds) or returns the
 * existing node of that inode, with one reference of the given kind. */
int sfs_node_publish(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
		     struct sfs_res *res, bool lookup, struct sfs_node **out);

/* ---- lookup.c: resolving a name across the layers ---- */

struct sfs_res {
	int upper;	/* O_PATH fd or -1 */
	struct stat st; /* attributes of the top object */
	int nlow;
	struct sfs_lower *low;
	char *lowpath;
	bool metacopy, indexed, opaque, redirected;
	bool clean; /* known to have no set-id bits nor capabilities */
	uint64_t ino;
	mode_t type;
};
/* Resolves name in parent.  -ENOENT when absent or whited out. */
int sfs_resolve(struct sfs_fs *fs, struct sfs_node *parent, const char *name, struct sfs_res *res);
void sfs_res_free(struct sfs_res *res);
/* Opens path below dirfd with openat2: no symlink followed, nothing left
 * beneath dirfd.  A name that no longer leads there gives -ESTALE. */
int sfs_open_beneath(int dirfd, const char *path, int flags);
/* Opens (flags, O_PATH allowed) or stats the lower object l: through the
 * fd l holds, else by its path below its layer root, symlinks not
 * followed; -ESTALE when the path no longer leads to l's inode.  st, when
 * not NULL, gets the stat of what was opened. */
int sfs_lower_open(struct sfs_fs *fs, const struct sfs_lower *l, const char *path, int flags,
		   struct stat *st);
/* An O_PATH fd of l: the one it holds, else one opened into *tmp, which
 * the caller closes (-1 when none was opened).  st (may be NULL) gets its
 * stat. */
int sfs_lower_fd(struct sfs_fs *fs, const struct sfs_lower *l, const char *path, int *tmp,
		 struct stat *st);
int sfs_lower_stat(struct sfs_fs *fs, const struct sfs_lower *l, const char *path, struct stat *st);
/* Like sfs_resolve for a name a listing found first in parent->low[pos]
 * (pos < 0: in the upper): layers above it are not searched again. */
int sfs_resolve_hint(struct sfs_fs *fs, struct sfs_node *parent, const char *name, int pos,
		     struct sfs_res *res);
/* Publishes res as a node (or finds the existing node of that inode) with
 * one kernel lookup reference, frees res, and fills e from res's stat. */
int sfs_publish_entry(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
		      struct sfs_res *res, struct fuse_entry_param *e);
/* Fills e from node n, for which one kernel lookup reference is taken. */
int sfs_node_entry(struct sfs_fs *fs, struct sfs_node *n, struct fuse_entry_param *e);
/* For a name of a listing (ino: the listing's number for it) whose node
 * this mount already holds at parent/name: takes a kernel lookup reference
 * and fills e from the node, without a walk through the layers.  1 when
 * there is no such node (nothing taken: resolve the name). */
int sfs_lookup_known(struct sfs_fs *fs, struct sfs_node *parent, const char *name, uint64_t ino,
		     struct fuse_entry_param *e);
/* Resolves and publishes parent/name; fills e. */
int sfs_lookup(struct sfs_fs *fs, struct sfs_node *parent, const char *name,
	       struct fuse_entry_param *e);
int sfs_lookup_hint(struct sfs_fs *fs, struct sfs_node *parent, const char *name, int pos,
		    struct fuse_entry_param *e);
/* Whether some lower below parent has an entry (not a whiteout) at name. */
bool sfs_lower_has(struct sfs_fs *fs, struct sfs_node *parent, const char *name);
/* Whether copy-up of one name of the lower object lst makes that name a
 * file of its own: several names and no index to keep them together
 * (index=off, or not a regular file), as on overlayfs. */
bool sfs_breaks_on_copy_up(struct sfs_fs *fs, const struct stat *lst);
/* Name of the index entry of a lower object: hex of its overlayfs handle. */
int sfs_index_name(struct sfs_fs *fs, int layer, int fd, char *out, size_t len);

/* ---- attr.c: attributes and id mapping ---- */

int sfs_getattr(struct sfs_fs *fs, struct sfs_node *n, struct stat *st);
/* Applies the presentation rules to a stat already taken of n. */
void sfs_present_stat(struct sfs_fs *fs, struct sfs_node *n, struct stat *st);
/* Whether a regular file may carry set-id bits or file capabilities: the
 * daemon clears them before writes and truncations when the kernel hands
 * that job over (killpriv, passthrough.c).  Unknown until checked; known
 * clean after a check, a copy-up or a creation that found none.  n->privs
 * holds the state and a count of the changes that made it unknown, so a
 * check that raced one cannot store a stale "clean". */
enum { SFS_PRIVS_UNKNOWN, SFS_PRIVS_NONE };
bool sfs_privs_clean(struct sfs_node *n);
/* Before a change that may bring set-id bits or capabilities, or another
 * name that could (chmod, chown, setxattr, link). */
void sfs_privs_forget(struct sfs_node *n);
/* A check starts with sfs_privs_seen and ends, when it found none on a
 * file of one name, with sfs_privs_found_clean: a no-op if the state was
 * forgotten meanwhile, or n lost its name. */
uint32_t sfs_privs_seen(struct sfs_node *n);
void sfs_privs_found_clean(struct sfs_node *n, uint32_t seen);
/* What the VFS does before a write or truncation by process pid: drops
 * security.capability, and setuid (and setgid with group execute) unless
 * pid holds CAP_FSETID.  Only when killpriv is on; n copied up.  1 when
 * the mode changed: the kernel's copy of it is stale. */
int sfs_kill_privs(struct sfs_fs *fs, struct sfs_node *n, pid_t pid);
int sfs_setattr(struct sfs_fs *fs, struct sfs_node *n, struct stat *attr, int valid, int fh,
		pid_t pid, struct stat *out);
uid_t sfs_uid_to_disk(struct sfs_fs *fs, uid_t uid);
gid_t sfs_gid_to_disk(struct sfs_fs *fs, gid_t gid);
/* Presented nlink of an upper object (overlayfs nlink xattr applied). */
nlink_t sfs_upper_nlink(struct sfs_fs *fs, int fd, const struct stat *st);
int sfs_nlink_adjust(struct sfs_fs *fs, int fd, int delta);

/* ---- copyup.c ---- */

enum sfs_cu {
	SFS_CU_META,  /* attributes only: a metacopy upper for regular files */
	SFS_CU_DATA,  /* attributes and data */
	SFS_CU_EMPTY, /* attributes, data truncated to 0 (O_TRUNC) */
};
/* Ensures n has an upper object of at least the given kind, copying up its
 * parent directories first.  Atomic: built in the workdir, renamed in. */
int sfs_copy_up(struct sfs_fs *fs, struct sfs_node *n, enum sfs_cu how);
/* An object just made in the workdir (fd, of type and mode mode), once
 * chowned, loses what a default ACL of the workdir gave it; after its
 * xattrs are set, it is given mode, which it was made with permissions
 * made: what a set-group-id workdir added goes, and set-id bits a chown
 * dropped come back. */
int sfs_work_unacl(struct sfs_fs *fs, int fd, mode_t mode);
int sfs_work_mode(struct sfs_fs *fs, int fd, mode_t mode, mode_t made);
/* Copies xattrs (not ours) from one fd to another; *caps (may be NULL) is
 * set when file capabilities (security.capability) were among them. */
int sfs_copy_xattrs(struct sfs_fs *fs, int from, int to, bool *caps);

/* ---- dir.c: namespace operations ---- */

struct sfs_ctx {
	uid_t uid;
	gid_t gid;
	mode_t umask;
};
int sfs_create_node(struct sfs_fs *fs, struct sfs_node *parent, const char *name, mode_t mode,
		    dev_t rdev, const char *link, const struct sfs_ctx *ctx,
		    struct fuse_entry_param *e, int *openfd, int oflags);
int sfs_link(struct sfs_fs *fs, struct sfs_node *n, struct sfs_node *parent, const char *name,
	     struct fuse_entry_param *e);
int sfs_unlink(struct sfs_fs *fs, struct sfs_node *parent, const char *name, bool dir);
int sfs_rename(struct sfs_fs *fs, struct sfs_node *p1, const char *n1, struct sfs_node *p2,
	       const char *n2, unsigned flags);

/* ---- readdir.c: merged listings ---- */

struct sfs_dirent {
	char *name;
	uint64_t ino;
	int pos; /* where the listing found it: -1 upper, else index in low[] */
	unsigned char type;
	UT_hash_handle hh;
};
struct sfs_dir {
	pthread_mutex_t lock;
	struct sfs_dirent *ents; /* array, stable order: offset = index + 1 */
	size_t n;
	bool loaded;
};
/* Builds the merged listing of n (without . and ..). */
int sfs_dir_load(struct sfs_fs *fs, struct sfs_node *n, struct sfs_dir *d);
void sfs_dir_free(struct sfs_dir *d);
/* -ENOTEMPTY when the merged view of n holds any name. */
int sfs_dir_check_empty(struct sfs_fs *fs, struct sfs_node *n);

/* ---- file.c ---- */

struct sfs_file {
	int fd;
	int oldfd;   /* the lower fd replaced after a copy-up, or -1 */
	int lowfd;   /* writable handle of a metacopy file: its lower data, or -1 */
	bool lower;  /* fd is a lower file: reopen once n has upper data */
	off_t lsize; /* a lower regular file's size, else -1 */
	int32_t pt;  /* backing id when I/O passes through to it, else 0 */
	int flags;
	struct sfs_node *node;
	pthread_mutex_t lock;
};
int sfs_open(struct sfs_fs *fs, struct sfs_node *n, int flags, struct sfs_file **out);
/* Open flags as passed to the layer (writeback cache changes them). */
int sfs_file_flags(struct sfs_fs *fs, int flags);
/* Wraps an fd already open on n (create) into a file handle. */
int sfs_file_new(struct sfs_fs *fs, struct sfs_node *n, int fd, int flags, struct sfs_file **out);
void sfs_release(struct sfs_fs *fs, struct sfs_file *f);
/* Stores a small lower file's data into the kernel's page cache as it is
 * opened (flags: the open's, as the kernel gave them). */
bool sfs_prefill(struct sfs_fs *fs, fuse_ino_t ino, struct sfs_file *f, int flags);
/* After a prefill of n: its parent, with a reference, when the parent's
 * small files should be read ahead (sfs_dir_readahead), else NULL. */
struct sfs_node *sfs_readahead_due(struct sfs_fs *fs, struct sfs_node *n);
/* Starts reading the small regular files of dir's lowers into the page
 * cache, for the opens that come next; drops the reference. */
void sfs_dir_readahead(struct sfs_fs *fs, struct sfs_node *dir);
/* The fd to read from, refreshed after a copy-up by another handle. */
int sfs_file_readfd(struct sfs_fs *fs, struct sfs_file *f);
/* The fd to write to; copies the data up on the first write to a file
 * opened for writing but so far only copied up as metadata. */
int sfs_file_writefd(struct sfs_fs *fs, struct sfs_file *f);

/* Per-thread pipes for reads (file.c). */
int sfs_read_pipes_init(struct sfs_fs *fs);
/* Splices [off, off + size) of fd, or up to its end, into this thread's
 * pipe: its read end with *got bytes in, -ENOBUFS when the range must go
 * through a buffer instead, or -errno (the pipe is left empty). */
int sfs_read_to_pipe(struct sfs_fs *fs, int fd, size_t size, off_t off, size_t *got);
/* On a ring thread: starts the reads of a range not in the page cache and
 * waits for them without sleeping, for a bounded time. */
void sfs_await_cached(int fd, off_t off, size_t len);
/* Empties this thread's pipe of what a failed reply left in it. */
void sfs_read_pipe_drain(struct sfs_fs *fs);

/* ---- passthrough.c ---- */

/* Installs the session I/O hooks that negotiate passthrough (root only). */
int sfs_pt_setup(struct sfs_fs *fs, struct fuse_session *se);
/* Chooses f's I/O mode: sets f->pt to the backing id to reply with, or 0
 * for cached I/O.  Every open counted here is uncounted by sfs_pt_release. */
void sfs_pt_open(struct sfs_fs *fs, struct sfs_file *f);
void sfs_pt_release(struct sfs_fs *fs, struct sfs_file *f);
/* Whether a cached open may keep the page cache. */
bool sfs_pt_keep_cache(struct sfs_file *f);
/* Makes the next open reply sent by this thread a passthrough one. */
void sfs_pt_arm(int32_t id);

/* ---- uring.c ---- */

/* Makes the io_uring queues (one per possible CPU, threads pinned to it)
 * for a connection whose INIT reply, init_out (len bytes), is about to be
 * sent: 0 when they are ready to register, -1 (nothing left) if not. */
int sfs_uring_prepare(struct sfs_fs *fs, const void *init_out, size_t len);
/* After the INIT reply: the queues register (sent) or are dropped. */
void sfs_uring_go(struct sfs_fs *fs, bool sent);
/* Sends a reply that answers a request taken from a ring: true when it
 * was (*ret as writev(2) would return), false for /dev/fuse. */
bool sfs_uring_reply(struct sfs_fs *fs, const struct iovec *iov, int count, ssize_t *ret);
/* Whether this thread serves a ring (and so a CPU's requests alone). */
bool sfs_uring_thread(void);
/* Whether this thread is answering a request taken from a ring. */
bool sfs_uring_answering(void);
/* Sends the message libfuse put in a pipe (len bytes) while answering one:
 * the reply goes to the ring, a notification to /dev/fuse. */
ssize_t sfs_uring_splice(struct sfs_fs *fs, int pipefd, size_t len);
/* When the request loop has ended: stops the queue threads, waits for
 * them and frees them. */
void sfs_uring_stop(struct sfs_fs *fs);

/* ahead.c: reading ahead on threads of the daemon's own (prefetch=1). */
int sfs_ahead_start(struct sfs_fs *fs);
/* After d, dir's listing, was loaded for the first time: if dir's parent
 * was listed too (a walk), dir's lower subdirectories are read ahead. */
void sfs_ahead_listed(struct sfs_fs *fs, struct sfs_node *dir, const struct sfs_dir *d);
/* Reads dir's small files ahead (sfs_dir_readahead), taking the caller's
 * ref on dir. */
void sfs_ahead_readahead(struct sfs_fs *fs, struct sfs_node *dir);
void sfs_ahead_stop(struct sfs_fs *fs);

/* ---- prune.c ---- */

int sfs_prune_start(struct sfs_fs *fs, struct fuse_session *se);
void sfs_prune_stop(struct sfs_fs *fs);
/* Counts fds taken (delta > 0) or given back by nodes; wakes the pruner
 * above the high mark. */
void sfs_prune_account(struct sfs_fs *fs, long delta);
/* True while nodes hold more fds than they should. */
bool sfs_prune_pressure(struct sfs_fs *fs);
/* Far from the limit (at most the pruner's low mark): room for fds that
 * only make things faster. */
bool sfs_prune_roomy(struct sfs_fs *fs);
/* Past the mark half-way from high to the limit: new fds should wait for
 * a pruning round. */
bool sfs_prune_crowded(struct sfs_fs *fs);
/* Wakes the pruner and waits a little (at most 20 ms) for the fds to fall
 * back under that mark, holding no fd meanwhile; returns at once when the
 * last round could take nothing. */
void sfs_prune_throttle(struct sfs_fs *fs);
/* After EMFILE in a request that holds dir and dir2 (or NULL) locked in
 * the kernel: prunes now and waits a little; true if it is worth a retry. */
bool sfs_prune_wait(struct sfs_fs *fs, struct sfs_node *dir, struct sfs_node *dir2);
/* A request thread is about to wait for its next request, or has one
 * (passthrough.c's receive hooks call these). */
void sfs_grace_idle(struct sfs_fs *fs);
/* Has fd closed when the running request ends (at its sfs_grace_idle);
 * false when the thread holds as many as it may. */
bool sfs_grace_close_later(int fd);
void sfs_grace_busy(struct sfs_fs *fs);

/* ---- xattr.c ---- */

ssize_t sfs_getxattr(struct sfs_fs *fs, struct sfs_node *n, const char *name, void *buf,
		     size_t len);
ssize_t sfs_listxattr(struct sfs_fs *fs, struct sfs_node *n, char *buf, size_t len);
int sfs_setxattr(struct sfs_fs *fs, struct sfs_node *n, const char *name, const void *val,
		 size_t len, int flags);
int sfs_removexattr(struct sfs_fs *fs, struct sfs_node *n, const char *name);

/* ---- ops.c ---- */

extern const struct fuse_lowlevel_ops sfs_ops;

#endif
