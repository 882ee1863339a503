#!/usr/bin/env bash
# usage: tests/run.sh --unit BINARY...   the cmocka unit-test binaries
#        tests/run.sh --e2e              every tests/e2e/test_*.sh, on the running kernel
# Closes with "N passed, N failed, N skipped". A test's status: 0 pass,
# 77 skip (it could not run here; fails under CI=true), 78 not applicable
# to this kernel (it lacks the feature tested; fails only for the tests
# that MF_REQUIRE names, which the kernel matrix sets per kernel), anything
# else fail. MF_TIME_SCALE stretches every bound (see tests/e2e/lib.sh).
set -u
cd "$(dirname "$0")/.."
# MF_BUILD: where the binaries are (build/san for the sanitized ones).
export BUILD=${MF_BUILD:-build}
scale=${MF_TIME_SCALE:-1}
passed=0 failed=0 skipped=0
failures=() not_applicable=()

record() {
	local name=$1 rc=$2
	case $rc in
	0) passed=$((passed + 1)); echo "PASS $name" ;;
	77)
		if [ "${CI:-}" = true ]; then
			failed=$((failed + 1)); failures+=("$name (skipped under CI)")
			echo "FAIL $name: skipped, but CI must run it"
		else
			skipped=$((skipped + 1)); echo "SKIP $name"
		fi ;;
	78)
		if [[ " ${MF_REQUIRE:-} " == *" $name "* ]]; then
			failed=$((failed + 1)); failures+=("$name (not applicable, but required on this kernel)")
			echo "FAIL $name: not applicable here, but this kernel must run it"
		else
			not_applicable+=("$name"); echo "N/A  $name"
		fi ;;
	*) failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name (status $rc)" ;;
	esac
}

case ${1:-} in
--unit)
	shift
	for t in "$@"; do
		echo "== unit: $t"
		timeout $((120 * scale)) "$t" 2>&1
		rc=$?
		record "$(basename "$t")" "$rc"
	done ;;
--e2e)
	[ $# = 1 ] || { echo "usage: tests/run.sh --e2e" >&2; exit 2; }
	for t in tests/e2e/test_*.sh; do
		echo "== e2e on $(uname -r): $t"
		timeout $((120 * scale)) bash "$t" 2>&1
		rc=$?
		record "$(basename "$t" .sh)" "$rc"
	done ;;
*)
	echo "usage: tests/run.sh --unit BINARY... | --e2e" >&2
	exit 2 ;;
esac

echo
[ ${#not_applicable[@]} = 0 ] || echo "not applicable to kernel $(uname -r): ${not_applicable[*]}"
for f in "${failures[@]+"${failures[@]}"}"; do
	echo "failed: $f"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
