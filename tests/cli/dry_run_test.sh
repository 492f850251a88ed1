#!/bin/sh
# End-to-end checks of `fleetcast run --dry-run`: the demo, each kind of bad
# job, bad device lines, inline devices, and the memory bound on a
# 2,000,000-device list.
# usage: dry_run_test.sh FLEETCAST SOURCE_DIR [DEVICES [RSS_LIMIT_MIB]]
#   DEVICES: size of the generated list (default 2000000)
#   RSS_LIMIT_MIB: peak RSS bound for it, "none" to skip (default 64)
set -u
bin=$1
src=$2
big=${3:-2000000}
rss_limit=${4:-64}
jobs=$src/tests/cli/jobs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# check NAME EXPECTED_EXIT -- ARGS...; then grep patterns via `has`.
check() {
  name=$1
  want=$2
  shift 3
  "$bin" "$@" >"$tmp/out" 2>&1
  got=$?
  current=$name
  if [ "$got" -ne "$want" ]; then
    echo "FAIL $name: exit $got, expected $want"
    sed 's/^/    /' "$tmp/out"
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
}

has() {
  if grep -qE -- "$1" "$tmp/out"; then
    passed=$((passed + 1))
  else
    echo "FAIL $current: output lacks /$1/"
    sed 's/^/    /' "$tmp/out"
    failed=$((failed + 1))
  fi
}

lacks() {
  if grep -qF -- "$1" "$tmp/out"; then
    echo "FAIL $current: output shows '$1'"
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
}

# The demo job, over a generated list of 2000 devices.
mkdir -p "$tmp/demo"
"$bin" generate-devices 2000 "$tmp/demo/devices.csv" 2>/dev/null
sed 's|"../../out/demo-devices.csv"|"devices.csv"|' "$src/config/examples/demo.json" >"$tmp/demo/demo.json"
cp "$src/config/examples/demo-token" "$tmp/demo/"
check demo 0 -- run "$tmp/demo/demo.json" --dry-run
has '2000 records'
has '2000 to send, 0 invalid, 0 duplicates'
has 'batches +4 of up to 500 devices'
has 'devices.csv \(csv\)'
has 'dry run: nothing was sent'
lacks 'demo-token-for-the-local-emulator'

check syntax 2 -- run "$jobs/syntax.json" --dry-run
has 'syntax.json:4:3: invalid JSON: expected .,. or .}.'

check unknown_field 2 -- run "$jobs/unknown_field.json" --dry-run
has 'rate.requests_per_secnd: unknown field'

check cache_time 2 -- run "$jobs/cache_time.json" --dry-run
has 'command.cacheTime: cacheTime 7776001 is outside 1..7776000 seconds \(code 5329\)'

check missing_file 2 -- run "$jobs/missing_file.json" --dry-run
has 'no-such-devices.csv: cannot open: No such file or directory'

check bad_lines 1 -- run "$jobs/bad_lines.json" --dry-run
has 'bad-lines.ndjson: line 2: deviceKey is empty'
has 'bad-lines.ndjson: line 4: not valid JSON'
has 'bad-lines.ndjson: line 5: duplicate of an earlier device'
has '6 records'
has '3 to send, 2 invalid, 1 duplicate'
has 'batches +2 of up to 2 devices; the last holds 1'

check inline 0 -- run "$jobs/inline.json" --dry-run
has 'devices \(inline\) \(json\): 3 records'
has 'batches +2 of up to 2 devices'
has 'type 3 \(service\), data \[\{"reboot":\[\{"delay":"5"\}\]\}\]'

check no_job 2 -- run
has 'JOB is required'
check no_such_job 2 -- run "$tmp/none.json" --dry-run
has 'none.json: cannot open'
check unknown_command 2 -- frobnicate
has 'unknown command'

# A large generated list: every record counted, memory bounded.
awk -v n="$big" 'BEGIN { print "productKey,deviceKey";
  for (i = 0; i < n; i++) printf "p%d,86%013d\n", i % 7, i }' >"$tmp/big.csv"
cat >"$tmp/big.json" <<JOB
{"endpoint": "https://127.0.0.1:8443", "auth": {"token_env": "T"},
 "command": {"type": 2, "data": "[{\"switch\":true}]"}, "devices": {"file": "big.csv"}}
JOB
check big 0 -- run "$tmp/big.json" --dry-run
has "$big to send, 0 invalid, 0 duplicates"
if [ "$rss_limit" != none ]; then
  rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p' "$tmp/out")
  echo "dry run of $big devices: peak RSS $rss MiB (limit $rss_limit MiB)"
  if awk -v r="$rss" -v l="$rss_limit" 'BEGIN { exit !(r > 0 && r < l) }'; then
    passed=$((passed + 1))
  else
    echo "FAIL big: peak RSS $rss MiB is not under $rss_limit MiB"
    failed=$((failed + 1))
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
