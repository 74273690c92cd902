#!/bin/bash
# tests/fault/fuzz-image.t: the image importer's fuzz targets
# (tests/fuzz/fuzz-img-*.c: the manifest, index and config readers, and the
# layer extractor), through fuzz.t: seeds and saved crashes replayed, then
# STRATA_FUZZ_SECONDS (default 12) of fuzzing each.
STRATA_FUZZ_TARGETS='img-*' STRATA_FUZZ_SECONDS=${STRATA_FUZZ_SECONDS:-12} \
	exec bash "$(dirname "$0")/fuzz.t"
