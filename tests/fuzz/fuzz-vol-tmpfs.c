/* tests/fuzz/fuzz-vol-tmpfs.c: libFuzzer harness for vol_spec_parse_tmpfs (the
 * Docker --tmpfs grammar); the checks are in vol-spec-fuzz.h. */
#include "tests/fuzz/vol-spec-fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_vol_spec(data, size, vol_spec_parse_tmpfs);
}
