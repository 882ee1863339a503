# memfaulttop: make, make deps, make test, make bench, make install (with a systemd unit)
VERSION := 0.1.0
OUTPUT := build
# SANITIZE=1: the frontend, tests and VMM built with AddressSanitizer and
# UndefinedBehaviorSanitizer, apart in build/san (make test runs its unit
# tests, and the matrix kernel marked "san" runs its end-to-end suite).
ifeq ($(SANITIZE),1)
OUTPUT := build/san
endif
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc
PKG_CONFIG ?= pkg-config
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
PREFIX ?= /usr/local

BPF_CFLAGS := -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH) \
	-Ivmlinux -Isrc $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))
CFLAGS ?= -O2 -g
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Isrc -I$(OUTPUT) \
	-DMF_VERSION='"$(VERSION)"'
# libmicrohttpd is not linked: the exporter opens it only for --listen
# (src/mhd_dl.c), so its headers are a build dependency and the library a
# run-time one of the endpoint alone.
LIBS := $(shell $(PKG_CONFIG) --libs libbpf json-c ncursesw 2>/dev/null || \
	echo -lbpf -lelf -lz -ljson-c -lncursesw) -lm -pthread

# The frontend as a library, shared by memfaulttop, the tests and the bench.
LIB_SRCS := opts.c vmname.c exit_reason.c model.c hist.c output_text.c output_json.c probe.c early_maps.c \
	kernel_features.c storm.c trace.c live_frame.c live_view.c live_conversions.c live.c skel.c metrics.c exporter.c mhd_dl.c
LIB_OBJS := $(addprefix $(OUTPUT)/,$(LIB_SRCS:.c=.o))
SKEL := $(OUTPUT)/memfault.skel.h
PROBE_SKEL := $(OUTPUT)/probe.skel.h

.PHONY: all deps run test check bench clean install vmlinux-check fuzz unit

all: $(OUTPUT)/memfaulttop $(OUTPUT)/vmm $(OUTPUT)/mf-inject $(OUTPUT)/loadgen

$(OUTPUT):
	mkdir -p $@

$(OUTPUT)/%.bpf.o: src/%.bpf.c src/memfault.h vmlinux/vmlinux.h | $(OUTPUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(SKEL): $(OUTPUT)/memfault.bpf.o
	$(BPFTOOL) gen skeleton $< name memfault > $@.tmp && mv $@.tmp $@

# The feature probe's BTF lookups (src/probe.c).
$(PROBE_SKEL): $(OUTPUT)/probe.bpf.o
	$(BPFTOOL) gen skeleton $< name probe_bpf > $@.tmp && mv $@.tmp $@

$(OUTPUT)/%.o: src/%.c $(wildcard src/*.h) $(SKEL) $(PROBE_SKEL) | $(OUTPUT)
	$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/libmemfault.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(OUTPUT)/memfaulttop: $(OUTPUT)/memfault.o $(OUTPUT)/libmemfault.a
	$(CC) $(CFLAGS) $^ $(LIBS) -o $@

$(OUTPUT)/vmm: tests/vmm/vmm.c tests/vmm/kvmvm.c tests/vmm/kvmvm.h tests/vmm/swprot.c tests/vmm/swprot.h | $(OUTPUT)
	$(CC) $(CFLAGS) -pthread tests/vmm/vmm.c tests/vmm/kvmvm.c tests/vmm/swprot.c -o $@

$(OUTPUT)/loadgen: bench/loadgen.c tests/vmm/kvmvm.c tests/vmm/kvmvm.h tests/vmm/swprot.c tests/vmm/swprot.h | $(OUTPUT)
	$(CC) $(CFLAGS) -Itests/vmm -pthread bench/loadgen.c tests/vmm/kvmvm.c tests/vmm/swprot.c -o $@

$(OUTPUT)/mf-inject: tests/inject.c $(OUTPUT)/libmemfault.a $(SKEL)
	$(CC) $(CFLAGS) tests/inject.c $(OUTPUT)/libmemfault.a $(LIBS) -o $@

UNIT_TESTS := $(patsubst tests/unit/%.c,$(OUTPUT)/unit/%,$(wildcard tests/unit/test_*.c))

unit: $(UNIT_TESTS)

$(OUTPUT)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(OUTPUT)/libmemfault.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(OUTPUT)/libmemfault.a $(LIBS) -lcmocka -o $@

# libFuzzer targets (tests/fuzz/): the frontend built again with clang,
# the fuzzer and AddressSanitizer + UndefinedBehaviorSanitizer.
FUZZ_SRCS := opts.c vmname.c exit_reason.c model.c hist.c output_text.c output_json.c \
	kernel_features.c storm.c trace.c live_frame.c live_view.c live_conversions.c metrics.c
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Isrc -I$(OUTPUT) -DMF_VERSION='"$(VERSION)"' \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(OUTPUT)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60

$(OUTPUT)/fuzz/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(addprefix $(OUTPUT)/fuzz/,$(FUZZ_SRCS:.c=.o))
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ $(LIBS) -o $@

# Each target for FUZZ_SECONDS (60 unless said) from its seed corpus.
fuzz: deps
	$(MAKE) $(FUZZ_TARGETS)
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Installs the Debian packages the build, the tests and the bench need.
deps:
	scripts/install-deps.sh

# Everything: unit tests, the fuzzers (FUZZ_SECONDS each), the end-to-end
# suite on this host's kernel (where its /dev/kvm works) and on every kernel
# of tests/vm/matrix under QEMU.
test: deps
	$(MAKE) all $(UNIT_TESTS) $(FUZZ_TARGETS)
	$(MAKE) SANITIZE=1 all unit
	MF_FUZZ_SECONDS=$(FUZZ_SECONDS) MF_SANITIZED=build/san tests/all.sh $(UNIT_TESTS)

# Day to day: unit tests and the host kernel only (KERNELS="sw-6.12" adds
# kernels of the matrix).
check: deps
	$(MAKE) all $(UNIT_TESTS)
	MF_KERNELS="$(or $(KERNELS),none)" MF_FUZZ_SECONDS=0 tests/all.sh $(UNIT_TESTS)

# Sets everything up and starts memfaulttop; options go in ARGS="-j 1 5".
run: deps
	$(MAKE) all
	$(OUTPUT)/memfaulttop $(ARGS)

# The bench's own binaries: the floor tool and the frontend-cost probe.
$(OUTPUT)/floor.bpf.o: bench/floor.bpf.c vmlinux/vmlinux.h | $(OUTPUT)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/floor.skel.h: $(OUTPUT)/floor.bpf.o
	$(BPFTOOL) gen skeleton $< name floor_bpf > $@.tmp && mv $@.tmp $@

$(OUTPUT)/floor: bench/floor.c $(OUTPUT)/floor.skel.h
	$(CC) $(CFLAGS) $< $(LIBS) -o $@

$(OUTPUT)/refresh_cost: bench/refresh_cost.c $(OUTPUT)/libmemfault.a $(SKEL)
	$(CC) $(CFLAGS) $< $(OUTPUT)/libmemfault.a $(LIBS) -o $@

bench: all $(OUTPUT)/floor $(OUTPUT)/refresh_cost
	bench/start

vmlinux-check:
	scripts/vmlinux-check.py vmlinux/vmlinux.h

# systemd looks for units there with PREFIX /usr and /usr/local alike.
UNITDIR ?= $(PREFIX)/lib/systemd/system

install: $(OUTPUT)/memfaulttop
	install -D -m 0755 $< $(DESTDIR)$(PREFIX)/sbin/memfaulttop
	install -D -m 0644 man/memfaulttop.8 $(DESTDIR)$(PREFIX)/share/man/man8/memfaulttop.8
	mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|@SBINDIR@|$(PREFIX)/sbin|' systemd/memfaulttop.service.in \
		>$(DESTDIR)$(UNITDIR)/memfaulttop.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/memfaulttop.service

clean:
	rm -rf $(OUTPUT)
