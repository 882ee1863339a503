#!/usr/bin/env bash
# Builds the kernel matrix's SW-protected 6.12 from Debian's linux-source-6.12
# with sw-protected.config, once per machine: cached under $MF_CACHE by source
# version and fragment hash. Prints the directory holding bzImage and release.
# Takes 13-15 minutes on 2 cores the first time, nothing after.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cache.sh"

fragment=$here/sw-protected.config
tarball=/usr/src/linux-source-6.12.tar.xz
[ -r "$tarball" ] || die "$tarball missing: install Debian's linux-source-6.12 (make deps)"
version=$(dpkg-query -W -f='${Version}' linux-source-6.12)
key=$(sha256sum <"$fragment" | cut -c1-12)
out=$MF_CACHE/kernels/sw-$version-$key
if [ -s "$out/bzImage" ]; then
	echo "$out"
	exit 0
fi

mkdir -p "$MF_CACHE/kernels"
# One build at a time per machine; a second caller waits and reuses it.
exec 9>"$MF_CACHE/kernels/.build.lock"
flock 9
if [ -s "$out/bzImage" ]; then
	echo "$out"
	exit 0
fi
src=$(mktemp -d -p "$MF_CACHE/kernels")
trap 'rm -rf "$src"' EXIT
log=$MF_CACHE/kernels/build-$version-$key.log
echo "build-kernel: building Linux $version with $(basename "$fragment") (13-15 min on 2 cores; log $log)" >&2
start=$SECONDS
{
	tar -xf "$tarball" -C "$src" --strip-components=1
	make -C "$src" tinyconfig
	"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment"
	make -C "$src" olddefconfig
} >"$log" 2>&1 || die "configuring failed; see $log"
# merge_config only warns: a line the config did not keep (a dependency
# missing) would otherwise show up fifteen minutes later as a kernel that
# cannot do what the tests need.
missing=$(grep -E '^(CONFIG_[A-Z0-9_]+=.*|# CONFIG_[A-Z0-9_]+ is not set)$' "$fragment" |
	while read -r line; do grep -qxF -- "$line" "$src/.config" || echo "$line"; done)
[ -z "$missing" ] || die "the kernel config did not keep: $(echo $missing); see $log"
make -C "$src" -j"$(nproc)" bzImage >>"$log" 2>&1 || die "the kernel build failed; see the end of $log"
mkdir -p "$out.tmp"
cp "$src/arch/x86/boot/bzImage" "$out.tmp/bzImage"
make -s -C "$src" kernelrelease >"$out.tmp/release"
cp "$src/.config" "$out.tmp/config"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "build-kernel: built $(cat "$out/release") in $((SECONDS - start)) s" >&2
echo "$out"
