#!/usr/bin/env bash
# Everything `make test` runs: the unit tests, the fuzzers, the end-to-end
# suite on the host's kernel where its /dev/kvm works, and the suite on every kernel of
# the matrix (tests/vm/matrix) under QEMU. Ends with a line per kernel,
# "kernel <release>: N passed, N failed", then "N passed, N failed".
#
# usage: tests/all.sh UNIT_BINARY...
#   MF_KERNELS="debian-6.1 sw-6.12" runs only those kernels of the matrix,
#   MF_KERNELS=none none (make check); MF_FUZZ_SECONDS (60) per libFuzzer
#   target of build/fuzz/, 0 none (make check).
set -u
cd "$(dirname "$0")/.."
total_passed=0 total_failed=0
summary=()

# count LABEL LOG: adds the closing line of a tests/run.sh log to the totals.
count() {
	local label=$1 log=$2 line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		p=0 f=1
	else
		p=${line%% passed*}
		f=${line#*passed, }; f=${f%% failed*}
	fi
	total_passed=$((total_passed + p))
	total_failed=$((total_failed + f))
	summary+=("$label: $p passed, $f failed$([ -n "$line" ] || echo " (no result: see above)")")
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "=== unit tests"
tests/run.sh --unit "$@" 2>&1 | tee "$log"
count "unit tests" "$log"

# MF_SANITIZED: a tree built with ASan and UBSan (make SANITIZE=1): its
# unit tests here, its end-to-end suite on the matrix kernel marked "san".
# Leaks are errors; ncurses keeps its terminal data for the process's life.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
if [ -n "${MF_SANITIZED:-}" ]; then
	echo "=== unit tests, ASan + UBSan ($MF_SANITIZED)"
	tests/run.sh --unit "$MF_SANITIZED"/unit/test_* 2>&1 | tee "$log"
	count "unit tests (ASan + UBSan)" "$log"
fi

# The fuzzers, each for MF_FUZZ_SECONDS (0 skips them: make check).
fuzz_targets=(build/fuzz/fuzz_*)
if [ "${MF_FUZZ_SECONDS:-60}" != 0 ]; then
	echo "=== fuzz targets, ${MF_FUZZ_SECONDS:-60} s each"
	tests/fuzz/run.sh "${MF_FUZZ_SECONDS:-60}" "${fuzz_targets[@]}" 2>&1 | tee "$log"
	count "fuzz targets" "$log"
fi

echo "=== kernel $(uname -r) (this host)"
if kvm_error=$(timeout 20 build/vmm --io 1 2>&1 >/dev/null); then
	tests/run.sh --e2e 2>&1 | tee "$log"
	count "kernel $(uname -r)" "$log"
else
	# Not a failure: the matrix below runs the same suite on real KVM.
	echo "host kernel $(uname -r) cannot run guests (${kvm_error:-no reason given}):" \
		"its end-to-end tests are left to the kernel matrix"
fi

matrix_names=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' -e 's/[[:space:]]*|.*//' tests/vm/matrix)
wanted=${MF_KERNELS:-$matrix_names}
[ "$wanted" = none ] && wanted=
for name in $wanted; do
	spec=$(sed -e 's/#.*//' tests/vm/matrix | awk -F'|' -v OFS='|' -v n="$name" '{ gsub(/^[ \t]+|[ \t]+$/, "", $1) } $1 == n')
	if [ -z "$spec" ]; then
		echo "tests/all.sh: no kernel '$name' in tests/vm/matrix (it has: $(echo $matrix_names))" >&2
		exit 2
	fi
	IFS='|' read -r _ source require features build <<<"$spec"
	build=$(echo $build)
	bin=build suffix=
	if [ "$build" = san ] && [ -n "${MF_SANITIZED:-}" ]; then
		bin=$MF_SANITIZED suffix=" (ASan + UBSan)"
	fi
	read -r how package <<<"$source"
	echo "=== kernel $name$suffix"
	if [ "$how" = build ]; then
		kdir=$(tests/vm/build-kernel.sh)
	else
		kdir=$(tests/vm/fetch-kernel.sh "$package")
	fi
	if [ -z "$kdir" ]; then
		echo "kernel $name could not be prepared (see above)" | tee "$log"
		count "kernel $name" "$log"
		continue
	fi
	release=$(cat "$kdir/release")
	for try in 1 2; do
		# Under TCG everything runs 10-50 times slower: bounds are stretched.
		MF_TIME_SCALE=5 MF_REQUIRE=$(echo $require) MF_EXPECT_FEATURES=$(echo $features) MF_BUILD=$bin \
			tests/vm/vmtest.sh --kernel "$kdir" --timeout 1800 -- tests/run.sh --e2e 2>&1 |
			tee "$log"
		# 125: the VM itself failed (a crash or a freeze of the emulated
		# machine, each seen once in many runs under TCG; a suite takes
		# 9-12 minutes, 17 with the sanitized build, so 30 leave room), not
		# a test: once more, said aloud.
		[ "${PIPESTATUS[0]}" = 125 ] && [ $try = 1 ] || break
		echo "tests/all.sh: the VM of kernel $release failed (above); running it once more"
	done
	count "kernel $release$suffix" "$log"
done

echo
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ] && [ "$total_passed" -gt 0 ]
