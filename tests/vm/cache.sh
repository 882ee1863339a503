# Sourced by the kernel-matrix scripts: where downloaded and built kernels
# live (outside the repository, kept across runs), and how scripts fail.
MF_CACHE=${MF_CACHE:-/var/cache/memfaulttop}
die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}
