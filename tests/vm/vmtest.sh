#!/usr/bin/env bash
# Boots a kernel under QEMU, with the host's root shared read-only over 9p,
# and runs a command there in a chroot of it (cwd: this repository), the way
# the kernel's selftests/bpf/vmtest.sh and virtme-ng do. Real KVM inside
# comes from nested SVM: QEMU's TCG with -cpu max presents svm and npt, so
# this works on hosts without /dev/kvm. Prints the command's output and
# exits with its status (output streamed as it comes); 125 with a reason
# if the VM itself failed (crashed, or no result in time), 1 if it could
# not be set up. MF_KEEP_CONSOLE=FILE keeps the kernel's console log.
#
# usage: vmtest.sh --kernel DIR [--timeout SECONDS] [--writable HOSTDIR]
#                  -- COMMAND [ARG...]
#   DIR holds vmlinuz or bzImage, release, and lib/modules/<release> where
#   KVM and 9p are modules (fetch-kernel.sh, build-kernel.sh make these).
#   --writable shares HOSTDIR read-write at the same path (results out).
#   Environment passed on: CI, and every MF_*, BENCH_* and *SAN_OPTIONS variable.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/cache.sh"

kdir= timeout_s=900 writable=
while [ $# -gt 0 ]; do
	case $1 in
	--writable) writable=$(cd "${2:?--writable needs a directory}" && pwd) ||
			die "--writable $2: no such directory"; shift 2 ;;
	--kernel) kdir=${2:?--kernel needs a directory}; shift 2 ;;
	--timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
	--) shift; break ;;
	*) die "unknown argument '$1' (usage: vmtest.sh --kernel DIR [--timeout S] -- COMMAND...)" ;;
	esac
done
[ -n "$kdir" ] && [ $# -gt 0 ] || die "usage: vmtest.sh --kernel DIR [--timeout S] -- COMMAND..."
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "--timeout '$timeout_s' is not a whole number of seconds"
kernel=$kdir/vmlinuz
[ -r "$kernel" ] || kernel=$kdir/bzImage
[ -r "$kernel" ] || die "$kdir has no vmlinuz or bzImage"
[ -r "$kdir/release" ] || die "$kdir has no release file"
release=$(cat "$kdir/release")
qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not installed (Debian's qemu-system-x86: make deps)"
busybox=/bin/busybox
# (grep without -q: an early exit would fail the pipeline with SIGPIPE)
[ -x "$busybox" ] && "$busybox" --list | grep -x insmod >/dev/null ||
	die "needs a static busybox at $busybox (Debian's busybox-static: make deps)"
[ "$(id -u)" = 0 ] || die "needs root (the chroot inside runs as root, as the tests need)"

work=$(mktemp -d)
qemu_pid=
cleanup() {
	[ -n "${MF_KEEP_CONSOLE:-}" ] && cp "$work/console.log" "$MF_KEEP_CONSOLE" 2>/dev/null
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill -KILL "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# KVM acceleration only where nested virtualization works on the host;
# elsewhere (no /dev/kvm, or KVM on PVM) TCG, whose AMD model has svm.
# TCG runs its two CPUs in one host thread: with a thread each (MTTCG),
# the kernel patching its own text while the other CPU runs it (the int3
# dance of BPF trampolines and ftrace) crashed guests ("Oops: int3" in
# finish_task_switch, and a silent freeze) in 2 of 6 suite runs here.
accel=tcg,thread=single cpu=max kvm_module=kvm_amd
for vendor in intel amd; do
	if [ -c /dev/kvm ] && grep -qsx '[Y1]' /sys/module/kvm_$vendor/parameters/nested; then
		accel=kvm cpu=host kvm_module=kvm_$vendor
	fi
done

# modules_for NAME...: the .ko files these modules need, dependencies
# first; names that are built into the kernel need nothing.
declare -A module_path=() module_done=()
module_list=()
add_module() {
	local name=${1//-/_} dep
	[ -z "${module_done[$name]:-}" ] || return 0
	module_done[$name]=1
	if [ -z "${module_path[$name]:-}" ]; then
		grep -qE "/${name//_/[-_]}\.ko$" "$kdir/lib/modules/$release/modules.builtin" 2>/dev/null ||
			[ ! -d "$kdir/lib/modules" ] ||
			die "module $name is neither in $kdir/lib/modules nor built in"
		return 0
	fi
	for dep in $(modinfo -F depends "${module_path[$name]}" | tr ',' ' '); do
		add_module "$dep"
	done
	module_list+=("${module_path[$name]}")
}
if [ -d "$kdir/lib/modules/$release" ]; then
	command -v modinfo >/dev/null || die "needs modinfo (Debian's kmod: make deps)"
	while read -r f; do
		n=${f##*/}; n=${n%%.ko*}
		module_path[${n//-/_}]=$f
	done < <(find "$kdir/lib/modules/$release" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst')
fi
for m in virtio_pci 9pnet_virtio 9p "$kvm_module"; do
	add_module "$m"
done

# The initramfs: busybox, the modules (decompressed: busybox insmod takes
# plain ELF), and /init.
root=$work/initramfs
mkdir -p "$root"/{bin,modules,host,results,proc,sys,dev}
cp "$busybox" "$root/bin/busybox"
i=0
for f in "${module_list[@]}"; do
	dst=$root/modules/$(printf '%02d' $i)-$(basename "${f%%.ko*}").ko
	case $f in
	*.xz) xz -dc "$f" >"$dst" ;;
	*.zst) zstd -qdc "$f" >"$dst" ;;
	*) cp "$f" "$dst" ;;
	esac
	i=$((i + 1))
done
cp "$here/init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

# What runs inside: the command, in the repository, with the caller's CI,
# MF_*, BENCH_* and sanitizer settings.
results=$work/results
mkdir -p "$results"
{
	echo "cd $(printf '%q' "$repo") || exit 1"
	echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp TERM=${TERM:-xterm}"
	for v in CI $(compgen -e | grep -E '^(MF|BENCH)_|^[A-Z]+SAN_OPTIONS$' || true); do
		[ -n "${!v+x}" ] && echo "export $v=$(printf '%q' "${!v}")"
	done
	printf 'exec'
	printf ' %q' "$@"
	echo
} >"$results/cmd"
echo "$writable" >"$results/writable"
echo "$repo" >"$results/repo"

# The guest's TSC runs at the host's rate under TCG, so it is reliable; but
# a busy host stalls the emulated CPUs, which can fail the kernel's own
# calibration or make its clocksource watchdog mark the TSC unstable, and
# KVM then may never enter its guests again.
tsc_khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo)
append="console=ttyS0 panic=-1 oops=panic mitigations=off tsc=reliable"
[ -n "$tsc_khz" ] && append+=" tsc_early_khz=$tsc_khz"
"$qemu" -accel "$accel" -cpu "$cpu" -smp 2 -m 2G -nodefaults -no-reboot \
	-display none -monitor none -serial "file:$work/console.log" \
	-kernel "$kernel" -initrd "$work/initramfs.gz" -append "$append" \
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
	-virtfs "local,path=$results,mount_tag=results,security_model=none" \
	${writable:+-virtfs "local,path=$writable,mount_tag=writable,security_model=none"} \
	</dev/null >"$work/qemu.log" 2>&1 &
qemu_pid=$!
kernel_trouble='Kernel panic|BUG:|WARNING:|Oops|soft lockup|hung task|blocked for more than|TSC unstable'
# The command's output as it comes, for a person (or CI log) watching.
shown=0
show_output() {
	local size
	size=$(stat -c %s "$results/output" 2>/dev/null || echo 0)
	if [ "$size" -gt "$shown" ]; then
		tail -c +$((shown + 1)) "$results/output" | head -c $((size - shown))
		shown=$size
	fi
}
deadline=$((SECONDS + timeout_s))
while kill -0 "$qemu_pid" 2>/dev/null; do
	show_output
	if [ $SECONDS -ge $deadline ]; then
		kill -KILL "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
		qemu_pid=
		show_output
		echo "vmtest: $release: no result within $timeout_s s; the VM was killed. Its console ends:"
		tail -n 30 "$work/console.log"
		exit 125
	fi
	sleep 0.5
done
rc=0
wait "$qemu_pid" || rc=$?
qemu_pid=
show_output
if [ ! -s "$results/status" ]; then
	echo "vmtest: $release: the VM stopped without a result (QEMU status $rc): $(tail -n 5 "$work/qemu.log")"
	echo "vmtest: its console ends:"
	tail -n 30 "$work/console.log"
	exit 125
fi
status=$(cat "$results/status")
# A failure may come from the kernel: show what it complained of.
if [ "$status" != 0 ] && grep -qE "$kernel_trouble" "$work/console.log"; then
	echo "vmtest: $release: the kernel's complaints during the run:"
	grep -E -A3 "$kernel_trouble" "$work/console.log" | head -n 40
fi
exit "$status"
