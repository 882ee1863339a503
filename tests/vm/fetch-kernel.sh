#!/usr/bin/env bash
# Fetches a Debian kernel for the kernel matrix from the machine's configured
# apt sources (never changing them), unpacks it under $MF_CACHE once, and
# prints the directory: vmlinuz, release, lib/modules/<release>.
# usage: fetch-kernel.sh METAPACKAGE   (linux-image-amd64: bookworm's 6.1;
#                                       linux-image-6.12-amd64: 6.12)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cache.sh"

meta=${1:?usage: fetch-kernel.sh METAPACKAGE}
command -v apt-get >/dev/null || die "needs apt-get (Debian)"
# The metapackage names the newest kernel image of its series.
resolve() {
	apt-cache depends "$meta" 2>/dev/null | awk '/^ *Depends: linux-image-/ { print $2; exit }'
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
	[ "$(id -u)" = 0 ] || die "apt knows no package $meta; run 'apt-get update' as root"
	apt-get update -qq >&2
	pkg=$(resolve)
	[ -n "$pkg" ] || die "no package $meta in the configured apt sources"
fi
version=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
out=$MF_CACHE/kernels/$pkg-$version
if [ -s "$out/vmlinuz" ]; then
	echo "$out"
	exit 0
fi

mkdir -p "$MF_CACHE/kernels"
exec 9>"$MF_CACHE/kernels/.fetch.lock"
flock 9
tmp=$(mktemp -d -p "$MF_CACHE/kernels")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-kernel: downloading $pkg $version" >&2
# apt-get download writes into the current directory only; a stale package
# list (the file is gone from the mirror) is refreshed once.
if ! (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$version" >&2); then
	[ "$(id -u)" = 0 ] || die "cannot download $pkg $version"
	apt-get update -qq >&2
	version=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
	out=$MF_CACHE/kernels/$pkg-$version
	(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$version" >&2) ||
		die "cannot download $pkg $version from the configured apt sources"
fi
dpkg-deb -x "$tmp"/*.deb "$tmp/root"
vmlinuz=$(ls "$tmp"/root/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$vmlinuz" ] || die "$pkg has no /boot/vmlinuz-*"
mkdir -p "$tmp/out/lib"
mv "$vmlinuz" "$tmp/out/vmlinuz"
basename "$vmlinuz" | sed 's/^vmlinuz-//' >"$tmp/out/release"
mv "$tmp/root/lib/modules" "$tmp/out/lib/modules"
rm -rf "$out"
mv "$tmp/out" "$out"
echo "$out"
