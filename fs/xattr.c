/* fs/xattr.c: extended attributes of merged objects.  The filesystem's own
 * (overlay.*, fuseoverlayfs.*) are invisible and cannot be set; any change
 * copies the object up, metadata only. */
#include "fs/sfs.h"

#include <string.h>

ssize_t sfs_getxattr(struct sfs_fs *fs, struct sfs_node *n, const char *name, void *buf, size_t len)
{
	if (fs->o->noxattrs)
		return -ENOTSUP;
	if (sfs_is_private_xattr(fs, name))
		return -ENODATA;
	/* the kernel asks before every chown and the first write of a file:
	 * the daemon may know there is none (set as it changes, sfs_setxattr) */
	if (!strcmp(name, "security.capability") && sfs_privs_clean(n))
		return -ENODATA;
	_cleanup_close_ int tmp = -1;
	int fd = sfs_node_metafd(fs, n, &tmp);
	return fd < 0 ? fd : sfs_fgetxattr(fs, fd, name, buf, len);
}

ssize_t sfs_listxattr(struct sfs_fs *fs, struct sfs_node *n, char *buf, size_t len)
{
	_cleanup_free_ char *all = NULL;
	_cleanup_close_ int tmp = -1;
	ssize_t total, out = 0;
	int fd;

	if (fs->o->noxattrs)
		return -ENOTSUP;
	fd = sfs_node_metafd(fs, n, &tmp);
	if (fd < 0)
		return fd;
	for (;;) {
		total = sfs_flistxattr(fs, fd, NULL, 0);
		if (total <= 0)
			return total;
		free(all);
		all = malloc(total);
		if (!all)
			return -ENOMEM;
		total = sfs_flistxattr(fs, fd, all, total);
		if (total != -ERANGE)
			break;
	}
	if (total < 0)
		return total;
	for (char *p = all; p < all + total; p += strlen(p) + 1) {
		size_t l = strlen(p) + 1;

		if (sfs_is_private_xattr(fs, p))
			continue;
		if (len) {
			if ((size_t)out + l > len)
				return -ERANGE;
			memcpy(buf + out, p, l);
		}
		out += l;
	}
	return out;
}

int sfs_setxattr(struct sfs_fs *fs, struct sfs_node *n, const char *name, const void *val,
		 size_t len, int flags)
{
	int r, up;

	if (fs->o->noxattrs)
		return -ENOTSUP;
	if (sfs_is_private_xattr(fs, name))
		return -EPERM;
	r = sfs_copy_up(fs, n, SFS_CU_META);
	if (r < 0)
		return r;
	if (!strcmp(name, "security.capability"))
		sfs_privs_forget(n);
	up = sfs_node_upper(fs, n);
	return up < 0 ? up : sfs_fsetxattr(fs, up, name, val, len, flags);
}

int sfs_removexattr(struct sfs_fs *fs, struct sfs_node *n, const char *name)
{
	int r, up;

	if (fs->o->noxattrs)
		return -ENOTSUP;
	if (sfs_is_private_xattr(fs, name))
		return -ENODATA;
	/* a missing name must fail without copying anything up */
	r = (int)sfs_getxattr(fs, n, name, NULL, 0);
	if (r < 0)
		return r;
	r = sfs_copy_up(fs, n, SFS_CU_META);
	if (r < 0)
		return r;
	up = sfs_node_upper(fs, n);
	return up < 0 ? up : sfs_fremovexattr(fs, up, name);
}
