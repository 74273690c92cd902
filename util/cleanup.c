/* util/cleanup: the functions behind the _cleanup_*_ attributes. */
#include "util/util.h"

#include <dirent.h>
#include <stdio.h>

void su_freep(void *p)
{
	free(*(void **)p);
}

void su_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

void su_fclosep(void *fp)
{
	FILE *f = *(FILE **)fp;
	if (f)
		fclose(f);
}

void su_closedirp(void *dp)
{
	DIR *d = *(DIR **)dp;
	if (d)
		closedir(d);
}
