#!/bin/sh
# Runs every libFuzzer target for SECONDS each (default 30), starting from
# its seeds in corpus/<target>/ (copied: the seeds stay as committed). A
# crash, a leak, a timeout (10 s per input) or an out-of-memory (2 GiB) fails
# the run; the input that did it is kept in ARTIFACTS (default
# build/fuzz/artifacts) to become a regression test. Prints each target's
# executions per second and coverage (libFuzzer's closing line).
# usage: sh tests/fuzz/run.sh BUILD_DIR [SECONDS] [ARTIFACTS]
set -u
build=$1
seconds=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
artifacts=${3:-$build/artifacts}
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for target in response_decoder job_parser device_reader emulator_session; do
  bin=$build/tests/fuzz/fuzz_$target
  mkdir -p "$work/$target"
  cp "$here/corpus/$target/"* "$work/$target/"
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$target-" "$work/$target" >"$work/$target.log" 2>&1
  rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$target.log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
  per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$target.log")
  cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$done_line" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corpus=$(ls "$work/$target" | wc -l)
  if [ "$rc" -ne 0 ]; then
    echo "FAIL fuzz_$target (exit $rc); the input is in $artifacts:"
    grep -E 'ERROR|SUMMARY|==[0-9]+==|Test unit written' "$work/$target.log" | head -20
    status=1
  else
    echo "fuzz_$target: ${execs:-?} executions in ${seconds} s (${per_s:-?}/s), coverage ${cov:-?} edges, ${ft:-?} features, corpus $corpus inputs"
  fi
done
[ "$status" -eq 0 ] && echo "fuzzing: all targets ran ${seconds} s without a finding"
exit "$status"
