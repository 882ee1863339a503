#!/usr/bin/env bash
# Installs the Debian packages memfaulttop needs to build, test and bench.
# Idempotent and quick when everything is there: apt runs only for what is missing.
set -euo pipefail

packages=(
	make gcc libc6-dev linux-libc-dev pkg-config clang	# build; clang compiles the BPF object
	bpftool				# skeleton generation, tests' leftover checks
	libbpf-dev libelf-dev zlib1g-dev	# libbpf and what it links
	libjson-c-dev libncurses-dev	# JSON output, live view
	libmicrohttpd-dev libmicrohttpd12	# the --listen endpoint: headers to build, library dlopen'd to run
	libcmocka-dev python3 tmux procps util-linux strace	# tests (strace: what runs before a failure)
	libclang-rt-dev			# libFuzzer and the sanitizers' runtimes, for clang
	prometheus			# tests: a real Prometheus scrapes --listen (and promtool)
	bpftrace			# bench: the bpftrace peer
	# the kernel matrix: QEMU, an initramfs, Debian's 6.12 source and what
	# building it takes (BTF needs pahole, from dwarves)
	qemu-system-x86 busybox-static cpio kmod xz-utils linux-source-6.12
	bc bison flex libssl-dev dwarves
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages: ${missing[*]}; run as root (sudo make deps)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
