/* image/digest: sha256 helpers over libcrypto, and "sha256:<hex>" digests. */
#include "image/store.h"

#include <string.h>

void img_sha256_final(EVP_MD_CTX *ctx, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(ctx, md, &n);
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

void img_sha256_hex(const void *data, size_t len, char out[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, data, len);
	img_sha256_final(ctx, out);
}

const char *img_digest_hex(const char *digest)
{
	if (!digest || !su_str_has_prefix(digest, "sha256:") || !img_hex_valid(digest + 7, 64))
		return NULL;
	return digest + 7;
}
