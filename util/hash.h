/* util/hash.h: uthash tables hashed with XXH3 (uthash's default hash has
 * switch fall-throughs that clang warns about, and XXH3 is faster).
 * Include this instead of <uthash.h>. */
#ifndef STRATA_HASH_H
#define STRATA_HASH_H

#include <xxhash.h>

#define HASH_FUNCTION(keyptr, keylen, hashv)                                                       \
	((hashv) = (unsigned)XXH3_64bits((keyptr), (size_t)(keylen)))
#include <uthash.h>

#endif
