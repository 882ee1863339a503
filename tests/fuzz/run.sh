#!/usr/bin/env bash
# Runs each libFuzzer target for SECONDS on a copy of its seed corpus
# (tests/fuzz/corpus/<target>/); a crash, leak or sanitizer report fails it
# and leaves the input that caused it in build/fuzz/crashes/ (make it a
# unit test). Ends with "N passed, N failed" like tests/run.sh.
#
# usage: tests/fuzz/run.sh SECONDS TARGET_BINARY...
set -u
cd "$(dirname "$0")/../.."
seconds=$1
shift
passed=0 failed=0
mkdir -p build/fuzz/crashes
for bin in "$@"; do
	name=$(basename "$bin")
	work=$(mktemp -d)
	cp -r "tests/fuzz/corpus/$name/." "$work/" 2>/dev/null || true
	echo "== fuzz: $name for ${seconds}s"
	# -timeout: one input may not take a second; the bound is for the run.
	if timeout $((seconds + 60)) "$bin" -max_total_time="$seconds" -timeout=1 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=build/fuzz/crashes/ \
		"$work" >"$work.log" 2>&1; then
		grep -E "^stat::number_of_executed_units" "$work.log" | sed "s/^/$name: /"
		echo "PASS $name"
		passed=$((passed + 1))
	else
		tail -n 40 "$work.log"
		echo "FAIL $name (input in build/fuzz/crashes/)"
		failed=$((failed + 1))
	fi
	rm -rf "$work" "$work.log"
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
