# cella — see README.md. `make demo` and `make check` are the two commands a new user runs.
CC ?= cc
PKGS := libseccomp libcap jansson yaml-0.1
WARN := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wformat-nonliteral -Wformat-security \
        -Wswitch-default -Wpointer-arith -Wundef -Wvla
CFLAGS ?= -O2 -g
PREFIX ?= /usr/local
LIBEXECDIR ?= $(PREFIX)/libexec
ALL_CFLAGS := -std=gnu11 -Isrc $(WARN) -DLIBEXECDIR='"$(LIBEXECDIR)"'  -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE $(CFLAGS) \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lseccomp -lcap -ljansson -lyaml)
LDFLAGS ?= -static-pie -Wl,-z,relro,-z,now
# The image tool (pull, import, save, export, login, build) needs libcurl, libarchive and
# OpenSSL, which Debian ships only as shared libraries: it is a second, dynamically linked
# executable (build/cella-image) that `cella` runs for those commands, so the static `cella`
# that starts containers loads nothing.
IMG_PKGS := libcurl libarchive libcrypto
IMG_CFLAGS := $(shell pkg-config --cflags $(IMG_PKGS) 2>/dev/null)
IMG_LDLIBS := $(shell pkg-config --libs $(IMG_PKGS) 2>/dev/null || echo -lcurl -larchive -lcrypto) -lpthread
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

B := build
LIB_SRC := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
CLI_SRC := src/cli/main.c
LIB_OBJ := $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRC))
IMG_SRC := $(wildcard src/image/tool/*.c)
IMG_OBJ := $(patsubst src/%.c,$(B)/obj/%.o,$(IMG_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRC))
UNIT_SAN := $(patsubst tests/unit/%.c,$(B)/unit-san/%,$(UNIT_SRC))

.PHONY: all deps demo vm-kernel check check-v2 test unit integration clean format format-check analyze lint-full bench conformance layers start-order
all: $(B)/cella $(B)/cella-image $(B)/cella-vminit $(B)/cella-monitor

# The vm backend's guest init (guest/, docs/vm.md): PID 1 in the microVM, put in the initramfs.
# Static and non-PIE, stripped, libc only (no jansson/libseccomp): it is copied into every VM.
GUEST_SRC := $(wildcard guest/*.c) src/vm/guestcfg.c src/vm/tar.c
$(B)/cella-vminit: $(GUEST_SRC) $(wildcard guest/*.h) src/vm/guest.h src/vm/tar.h src/util/util.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Isrc -Iguest $(WARN) -Os -fno-pie -no-pie -static -s -ffunction-sections -fdata-sections \
	  -Wl,--gc-sections -o $@ $(GUEST_SRC)

# The small monitor (monitor/main.c, docs/architecture.md "The monitor"): what stays resident
# per running container. The full monitor execs it once the workload runs; it execs the full
# binary again at the workload's end. Static and non-PIE, stripped, libc only, like cella-vminit.
MON_SRC := monitor/main.c src/engine/attach_hub.c src/engine/logfile.c src/util/util.c
$(B)/cella-monitor: $(MON_SRC) src/engine/logfile.h src/engine/attach.h src/engine/attach_hub.h src/util/util.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Isrc $(WARN) -Os -fno-pie -no-pie -static -s -ffunction-sections -fdata-sections \
	  -Wl,--gc-sections -o $@ $(MON_SRC)

# The exec stub (execstub/main.c, src/util/execstub.h): what a `cella run` container's first
# process execs from a sealed memfd right before the workload. Freestanding (no libc: its exec
# touches two pages and runs no cpuid), position-independent with no relocation, stripped; its
# bytes are linked into cella (build/gen/execstub_bin.c).
$(B)/cella-exec: execstub/main.c src/util/execstub.h src/util/rawsys.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Isrc $(WARN) -Os -fPIE -static-pie -nostdlib -nostartfiles -ffreestanding -fno-stack-protector \
	  -fno-builtin -fno-tree-loop-distribute-patterns -fno-asynchronous-unwind-tables -fcf-protection=none \
	  -Wl,-z,noexecstack -Wl,-z,noseparate-code -Wl,--gc-sections -Wl,--build-id=none -s -o $@ execstub/main.c

$(B)/gen/execstub_bin.c: $(B)/cella-exec
	@mkdir -p $(dir $@)
	{ echo '#include "util/execstub.h"'; echo 'const unsigned char execstub_elf[] = {'; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '};'; \
	  echo 'const unsigned int execstub_elf_len = sizeof execstub_elf;'; } > $@.tmp && mv $@.tmp $@

$(B)/obj/gen/execstub_bin.o: $(B)/gen/execstub_bin.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/obj/image/tool/%.o: src/image/tool/%.c $(wildcard src/*/*.h src/image/tool/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(IMG_CFLAGS) -c $< -o $@

$(B)/obj/%.o: src/%.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/libcella-image.a: $(IMG_OBJ)
	rm -f $@ && ar rcs $@ $^

# The image tool: src/image/tool/ (and its main, src/image/tool/main.c's cella_image_main) over the library.
$(B)/cella-image: $(B)/libcella-image.a $(B)/libcella.a
	$(CC) -pie -Wl,-z,relro,-z,now -o $@ $(B)/libcella-image.a $(B)/libcella.a $(LDLIBS) $(IMG_LDLIBS)

$(B)/libcella.a: $(LIB_OBJ) $(B)/obj/gen/execstub_bin.o
	rm -f $@ && ar rcs $@ $^

# The default seccomp filter is compiled at build time (tools/gen-seccomp.c) and linked in.
$(B)/gen-seccomp: tools/gen-seccomp.c $(B)/libcella.a
	$(CC) $(ALL_CFLAGS) $< -o $@ $(B)/libcella.a $(LDLIBS)

$(B)/gen/seccomp_prebuilt.c: $(B)/gen-seccomp
	@mkdir -p $(dir $@)
	$(B)/gen-seccomp > $@.tmp && mv $@.tmp $@

$(B)/obj/gen/seccomp_prebuilt.o: $(B)/gen/seccomp_prebuilt.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Linked statically: a container start pays for no dynamic loading (measured in
# docs/benchmarks.md), and the copy it re-executes from is one self-contained file.
# Debug info goes to cella.debug: the binary is what a rootless start copies into a memfd.
# On x86_64 its entry point prefaults the writable segment before glibc's start-up (src/cli/main.c).
CELLA_ENTRY := $(if $(filter x86_64,$(shell $(CC) -dumpmachine | cut -d- -f1)),-e cella_entry)
# Where lld is installed, it places the code a container start runs (tools/start-order.txt, made by
# `make start-order`: every function of `cella run` in the parent and the container's first process,
# of `run --backend proot` and of `version`) side by side, so that its first touches fault in fewer
# pages: a page fault traps to the hypervisor on a VM (docs/benchmarks.md). Without lld the link
# is the same binary in the default order.
# With a glibc that applies them in its static-pie start (2.36 and later), lld also packs the
# relative relocations (DT_RELR): 90 KB of .rela.dyn (3,700 entries) become 1.3 KB, 2-3 page
# faults fewer on every start (docs/benchmarks.md, "proot's stand-ins").
LLD := $(shell command -v ld.lld 2>/dev/null)
GLIBC_RELR := $(shell printf '\043include <features.h>\n\043if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 36)\nrelr_ok\n\043endif\n' | $(CC) -E -P -x c - 2>/dev/null | grep -x relr_ok)
RELR_FLAGS := -Wl,--pack-dyn-relocs=relr
ORDER_FLAGS := -fuse-ld=lld -Wl,--symbol-ordering-file=tools/start-order.txt -Wl,--no-warn-symbol-ordering \
	$(if $(GLIBC_RELR),$(RELR_FLAGS))
CELLA_ORDER := $(if $(LLD),$(ORDER_FLAGS))
$(B)/cella: $(B)/obj/cli/main.o $(B)/obj/gen/seccomp_prebuilt.o $(B)/libcella.a $(if $(LLD),tools/start-order.txt)
	$(CC) $(LDFLAGS) $(CELLA_ENTRY) $(CELLA_ORDER) -o $@.full $(filter %.o %.a,$^) $(LDLIBS)
	objcopy --only-keep-debug $@.full $@.debug
	objcopy --strip-all --add-gnu-debuglink=$@.debug $@.full $@.tmp && rm $@.full && mv $@.tmp $@

# Unit tests link the library with its internal symbols; a second build runs them under ASan+UBSan.
$(B)/unit/%: tests/unit/%.c $(B)/libcella.a $(B)/libcella-image.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(IMG_CFLAGS) -Isrc $< -o $@ $(B)/libcella-image.a $(B)/libcella.a $(LDLIBS) $(IMG_LDLIBS)

# The sanitizer build compiles each library source once (build/san/), then links every test.
SAN_OBJ := $(patsubst src/%.c,$(B)/san/%.o,$(LIB_SRC) $(filter-out src/image/tool/main.c,$(IMG_SRC)))

$(B)/san/%.o: src/%.c $(wildcard src/*/*.h src/image/tool/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(IMG_CFLAGS) -O1 $(SAN) -c $< -o $@

$(B)/libcella-san.a: $(SAN_OBJ) $(B)/obj/gen/execstub_bin.o
	rm -f $@ && ar rcs $@ $^

$(B)/unit-san/%: tests/unit/%.c $(B)/libcella-san.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(IMG_CFLAGS) -O1 $(SAN) -Isrc $< -o $@ $(B)/libcella-san.a $(LDLIBS) $(IMG_LDLIBS)

# Fuzz targets (fuzz/, docs/testing.md "Fuzzing"): fuzz/fuzz_NAME.c, corpus fuzz/corpus/NAME/.
# `make fuzz` builds them with clang's libFuzzer (the library again, in build/fuzz/obj/, with the
# same sanitizers) and runs each for FUZZ_SECONDS; `make check` replays every corpus file through
# the targets built by $(CC) with ASan+UBSan over build/libcella-san.a (build/fuzz-replay/).
FUZZ_NAMES := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=gnu11 -Isrc -Ifuzz $(filter-out -Werror,$(WARN)) -DLIBEXECDIR='"$(LIBEXECDIR)"' -g -O1 \
               -fno-omit-frame-pointer -fno-sanitize-recover=undefined $(shell pkg-config --cflags $(PKGS) $(IMG_PKGS) 2>/dev/null)
FUZZ_OBJ := $(patsubst src/%.c,$(B)/fuzz/obj/%.o,$(LIB_SRC) $(filter-out src/image/tool/main.c,$(IMG_SRC)))

$(B)/fuzz/obj/%.o: src/%.c $(wildcard src/*/*.h src/image/tool/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@

$(B)/fuzz/libcella-fuzz.a: $(FUZZ_OBJ) $(B)/obj/gen/execstub_bin.o
	rm -f $@ && ar rcs $@ $^

$(B)/fuzz/fuzz_%: fuzz/fuzz_%.c $(wildcard fuzz/*.h) $(B)/fuzz/libcella-fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined $< -o $@ $(B)/fuzz/libcella-fuzz.a $(LDLIBS) $(IMG_LDLIBS)

$(B)/fuzz-replay/fuzz_%: fuzz/fuzz_%.c fuzz/replay.c $(wildcard fuzz/*.h) $(B)/libcella-san.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(IMG_CFLAGS) -O1 $(SAN) -Ifuzz $< fuzz/replay.c -o $@ $(B)/libcella-san.a $(LDLIBS) $(IMG_LDLIBS)

.PHONY: fuzz fuzz-build fuzz-replay fuzz-merge
fuzz-build: $(addprefix $(B)/fuzz/fuzz_,$(FUZZ_NAMES))
fuzz-replay: $(addprefix $(B)/fuzz-replay/fuzz_,$(FUZZ_NAMES))

# FUZZ_SECONDS per target (FUZZ=NAME for one); new inputs go to build/fuzz/work/NAME/, not the repo.
fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh $(FUZZ)

# Add to fuzz/corpus/ the inputs of build/fuzz/work/ that reach new coverage (libFuzzer -merge=1).
fuzz-merge: fuzz-build
	sh fuzz/run.sh --merge $(FUZZ)

deps:
	sh scripts/deps.sh

# The tuned guest kernel for the vm backend (docs/vm.md): vm/kernel.config over allnoconfig, from
# Debian's linux-source-6.1, cached under the data root's vm/kernels/KEY (not built again while the
# source and config stay the same). Not part of `make check`.
vm-kernel:
	sh scripts/deps.sh --vm-kernel
	sh scripts/vm-kernel.sh --jobs 2

DEMO_CMD := echo "hello from a cella container"; echo "pid $$$$, host name $$(hostname), $$(id)"; head -1 /etc/os-release

demo: deps
	$(MAKE) all
	@echo '$$ build/cella run busybox sh -c '"'"'$(DEMO_CMD)'"'"
	@build/cella run busybox sh -c '$(DEMO_CMD)'

unit: $(UNIT_BIN) $(UNIT_SAN)

# make check: install what is missing, build everything, run every test; last line "N passed, N failed".
check: deps
	$(MAKE) -j$(shell nproc 2>/dev/null || echo 2) all unit fuzz-replay
	sh tests/check.sh

# The layer order of src/ (docs/architecture.md "Layers"; tests/check.sh runs it too).
layers:
	python3 tools/check-layers.py

# The pure cgroup v2 lane: cgroup tests in a microVM whose kernel has cgroup v2 only, with a subtree
# delegated to the unprivileged test user (tests/v2/run.sh; TCG here, a few minutes).
check-v2: all
	bash tests/v2/run.sh

test: all unit fuzz-replay
	sh tests/check.sh

# Records which functions a container start runs, for the link order above (as root: it runs
# containers under gdb; commit the file it writes).
start-order: $(B)/cella
	bash tools/start-order.sh $(B)/cella tools/start-order.txt

bench: all
	sh scripts/deps.sh --bench
	bash bench/start.sh

# The OCI runtime conformance suite (opencontainers/runtime-tools) against build/cella, every
# failure checked against tests/conformance-expected.txt (tests/conformance.sh). RUNTIME_TOOLS
# names the suite's source (a snapshot .tar.gz or a directory): built once into build/.
RUNTIME_TOOLS ?=
conformance: all
	RUNTIME_TOOLS='$(RUNTIME_TOOLS)' sh tests/conformance.sh

# One style (.clang-format: GNU, 120 columns) for every C file. `make format` rewrites them;
# `make format-check` (in `make check`) names those that differ and fails.
CLANG_FORMAT ?= clang-format
FORMAT_SRC := $(sort $(wildcard src/*/*.[ch] src/image/tool/*.[ch] guest/*.[ch] monitor/*.[ch] execstub/*.[ch] tests/unit/*.[ch] fuzz/*.[ch] tools/*.c))

format:
	$(CLANG_FORMAT) -i $(FORMAT_SRC)

format-check:
	@out=$$($(CLANG_FORMAT) --dry-run --Werror $(FORMAT_SRC) 2>&1); rc=$$?; \
	if [ $$rc -ne 0 ]; then \
	  files=$$(printf '%s\n' "$$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u); \
	  if [ -z "$$files" ]; then printf '%s\n' "$$out"; fi; \
	  for f in $$files; do echo "not formatted: $$f"; done; \
	  echo "format-check: $$(echo $$files | wc -w) file(s) differ from .clang-format; \`make format\` rewrites them"; \
	  exit 1; \
	fi; \
	echo "format-check: $(words $(FORMAT_SRC)) files formatted"

# Static analysis (docs/testing.md "Formatting and static analysis"): cppcheck over every C file, with the
# build's defines; must be clean. tools/analyze.py drops its leak reports on variables that a
# cleanup attribute releases (cppcheck 2.10 does not know the attribute); what else is not acted
# on is in tools/cppcheck-suppressions.txt, one reason each, or marked in the code.
CPPCHECK ?= cppcheck
ANALYZE_JOBS ?= 2
CPPCHECK_FLAGS := -q --std=c11 --enable=warning,portability --inline-suppr \
  --suppressions-list=tools/cppcheck-suppressions.txt --library=posix --library=gnu --library=tools/cppcheck.cfg \
  -Isrc -Iguest -Ifuzz -DLIBEXECDIR='"$(LIBEXECDIR)"' -D_FORTIFY_SOURCE=2 -j$(ANALYZE_JOBS) \
  --cppcheck-build-dir=$(B)/cppcheck
ANALYZE_SRC := src guest monitor execstub tools tests/unit fuzz

analyze:
	@mkdir -p $(B)/cppcheck
	python3 tools/analyze.py $(CPPCHECK) $(CPPCHECK_FLAGS) $(ANALYZE_SRC)

# clang-tidy (.clang-tidy: the clang static analyzer and bugprone-*) over every C file, with the
# build's flags: slower and noisier than `make analyze`, so not part of `make check`; read its report.
CLANG_TIDY ?= clang-tidy
lint-full:
	printf '%s\n' $(FORMAT_SRC) | grep '\.c$$' | xargs -P$(ANALYZE_JOBS) -I{} \
	  $(CLANG_TIDY) --quiet {} -- $(filter-out -Werror,$(ALL_CFLAGS)) $(IMG_CFLAGS) -Iguest -Ifuzz

clean:
	rm -rf $(B)
