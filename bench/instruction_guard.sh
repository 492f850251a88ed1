#!/bin/sh
# Fails when a hot path regresses: counts the instructions per device of
# encoding, decoding and accounting under valgrind's callgrind (repeatable
# for the same binary and inputs, whatever else the machine does) and
# compares them with bench/instruction_budgets.txt. No wall-clock threshold.
# usage: bench/instruction_guard.sh [BUILD_DIR]   (valgrind must be installed)
set -eu
build=${1:-build/release}
here=$(cd "$(dirname "$0")" && pwd)
probe=$build/bench/fleetcast_hot_path_probe
devices=200000
[ -x "$probe" ] || { echo "no $probe: build the release preset first" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
while read -r phase budget; do
  case $phase in '#'* | '') continue ;; esac
  valgrind --tool=callgrind --callgrind-out-file="$tmp/$phase.out" "--toggle-collect=*${phase}*" \
    "$probe" >/dev/null 2>"$tmp/$phase.err"
  total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/$phase.err")
  per=$((total / devices))
  if [ "$per" -le "$budget" ]; then
    echo "ok   $phase: $per instructions per device (budget $budget)"
    passed=$((passed + 1))
  else
    echo "FAIL $phase: $per instructions per device, over the budget of $budget"
    failed=$((failed + 1))
  fi
done <"$here/instruction_budgets.txt"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
