# strata: build, test and install.  Modules are found by glob, so a new source
# file needs no edit here:
#   util/*.c                    -> $(B)/libutil.a          (shared by everything)
#   fs/*.c                      -> $(B)/strata-fs          (fs/main.c holds main)
#   volumes/ image/ launcher/   -> $(B)/libstrata.a
#   cli/*.c                     -> $(B)/strata
#   tests/unit/test-*.c         -> $(B)/tests/test-*       (TAP, linked with all libs)
#   tests/helpers/*.c           -> $(B)/tests/helpers/*    (programs the shell tests run)
#   tests/*/*.t                 -> shell tests (TAP), run by tests/run.sh

B        ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
SAN      ?=

PKGS      := fuse3 libarchive jansson libcrypto libxxhash liburing
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wformat-security -Wnull-dereference -Wpointer-arith \
             -Wmissing-declarations -Wimplicit-fallthrough -Wundef -Wvla \
             -Werror=implicit-function-declaration -Werror=return-type \
             -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS   ?= -O2 -g

# The compiler flags come from pkg-config, so a machine without the
# libraries installs them before anything else is read (deps.sh is quick
# and silent when everything is there; the .deps rule covers the tools).
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && echo ok),ok)
$(info strata: installing build dependencies (scripts/deps.sh))
ifneq ($(shell sh scripts/deps.sh >&2 && echo ok),ok)
$(error scripts/deps.sh failed: run it as root)
endif
endif

ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread $(WARN) \
              -I. $(CFLAGS) $(SAN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread

UTIL_SRC  := $(wildcard util/*.c)
FS_SRC    := $(filter-out fs/main.c,$(wildcard fs/*.c))
LIB_SRC   := $(wildcard volumes/*.c image/*.c launcher/*.c)
CLI_SRC   := $(wildcard cli/*.c)
UNIT_SRC  := $(wildcard tests/unit/test-*.c)
HELP_SRC  := $(wildcard tests/helpers/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

BINS := $(B)/strata-fs $(if $(CLI_SRC),$(B)/strata)
TESTBINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC)) \
            $(patsubst tests/helpers/%.c,$(B)/tests/helpers/%,$(HELP_SRC))

.SECONDARY:
.PHONY: all deps check asan install demo clean format format-check bench
all: $(B)/.deps $(BINS) $(TESTBINS)

# scripts/deps.sh is quiet and quick when everything is present.
$(B)/.deps: scripts/deps.sh
	@mkdir -p $(B)
	@sh scripts/deps.sh
	@touch $@

$(B)/obj/%.o: %.c $(B)/.deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(B)/libutil.a: $(call obj,$(UTIL_SRC))
	@$(AR) rcs $@ $^
$(B)/libsfs.a: $(call obj,$(FS_SRC))
	@$(AR) rcs $@ $^
$(B)/libstrata.a: $(call obj,$(LIB_SRC))
	@$(AR) rcs $@ $^

LIBS := $(B)/libstrata.a $(B)/libsfs.a $(B)/libutil.a

$(B)/strata-fs: $(call obj,fs/main.c) $(B)/libsfs.a $(B)/libutil.a
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/strata: $(call obj,$(CLI_SRC)) $(B)/libstrata.a $(B)/libutil.a
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIBS)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/tests/helpers/%: $(B)/obj/tests/helpers/%.o $(B)/libutil.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# Runs every test; the last line is "N passed, N failed[, N skipped]".
check: all
	@B=$(abspath $(B)) bash tests/run.sh $(TESTS)

# The same tests, built and run under AddressSanitizer and UBSan.
# A daemonized strata-fs has no stderr: sanitizer reports go to files under
# build-asan/san/, and the run fails if any appeared.  Sanitized code runs
# two to three times slower: each test file gets 1,200 s instead of 600.
asan:
	@rm -rf build-asan/san && mkdir -p build-asan/san
	STRATA_TEST_TIMEOUT=$${STRATA_TEST_TIMEOUT:-1200} \
	ASAN_OPTIONS=log_path=$(abspath build-asan/san)/asan:detect_leaks=0 \
	UBSAN_OPTIONS=log_path=$(abspath build-asan/san)/ubsan:print_stacktrace=1 \
	$(MAKE) B=build-asan CC=clang CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" check
	@if ls build-asan/san/* >/dev/null 2>&1; then \
	  echo "sanitizer reports:"; head -50 build-asan/san/*; exit 1; fi

demo: all
	@B=$(abspath $(B)) bash scripts/demo.sh

bench: all
	@B=$(abspath $(B)) bash bench/run.sh

install: $(B)/strata-fs
	install -D -m 0755 $(B)/strata-fs $(DESTDIR)$(PREFIX)/bin/strata-fs
	$(if $(CLI_SRC),install -D -m 0755 $(B)/strata $(DESTDIR)$(PREFIX)/bin/strata)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# ---- fuzzing and stress (tests/fuzz, tests/stress) ----
# `make fuzz` builds the libraries again with clang, libFuzzer and ASan+UBSan
# under $(B)/fuzz, then runs each tests/fuzz/fuzz-NAME.c for FUZZ_SECONDS
# from its seeds in tests/fuzz/corpus/NAME (new inputs go to
# $(B)/fuzz/corpus-NAME, crashes to $(B)/fuzz/crash-NAME-*).
# `make stress STRESS_SECONDS=3600` runs the randomized workload longer.
FUZZ_SECONDS ?= 60
STRESS_SECONDS ?= 600
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
.PHONY: fuzz fuzz-build stress

fuzz-build: $(B)/.deps
	@$(MAKE) --no-print-directory B=$(abspath $(B))/fuzz CC=clang SAN="$(FUZZ_SAN)" \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer" $(patsubst %,$(abspath $(B))/fuzz/fuzz-%,$(FUZZ_NAMES))

$(B)/fuzz-%: $(B)/obj/tests/fuzz/fuzz-%.o $(LIBS)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: fuzz-build
	@set -e; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(B)/fuzz/corpus-$$n; \
	  echo "fuzz $$n: $(FUZZ_SECONDS) s"; \
	  rc=0; $(B)/fuzz/fuzz-$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/crash-$$n- $(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n \
	    >$(B)/fuzz/$$n.log 2>&1 || rc=$$?; \
	  grep -E '^#[0-9]+.*DONE|^stat::number_of_executed_units|ERROR|^SUMMARY' $(B)/fuzz/$$n.log || true; \
	  test $$rc -eq 0 || { echo "fuzz $$n: crash, see $(B)/fuzz/$$n.log"; exit 1; }; \
	done

stress: all
	@STRESS_SECONDS=$(STRESS_SECONDS) B=$(abspath $(B)) bash tests/stress/stress.t
