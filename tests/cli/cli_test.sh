#!/bin/bash
# The command line's conventions: --version, --opt=value and --opt value,
# `--`, one error style with "did you mean", per-subcommand --help, `-` for
# standard output, and `fleetcast check` on job files, daemon configs and
# emulator configs (reading neither devices nor tokens).
# usage: cli_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$2
tmp=$(mktemp -d)
source "$(dirname "$0")/lib.sh"
trap 'rm -rf "$tmp"' EXIT

expect() {  # LABEL RC PATTERN CMD...: exit status RC, PATTERN in stdout+stderr
  local label=$1 want=$2 pattern=$3
  shift 3
  "$@" >"$tmp/expect.out" 2>&1
  local rc=$?
  [ "$rc" -eq "$want" ] && grep -q -- "$pattern" "$tmp/expect.out" && ok || fail "$label: exit $rc (want $want), output: $(head -5 "$tmp/expect.out")"
}

expect "--version" 0 '^fleetcast [0-9][0-9.]*$' "$bin" --version
expect "unknown option" 2 '^fleetcast run: unknown option --shrd (did you mean --shard?)$' "$bin" run job.json --shrd 0/2
lines=$("$bin" run job.json --shrd 0/2 2>&1 | wc -l)
[ "$lines" -eq 2 ] && ok || fail "an error is one line and a pointer to --help, got $lines lines"
expect "the pointer to help" 2 "^See 'fleetcast run --help'.$" "$bin" run job.json --shrd 0/2
expect "unknown command" 2 'unknown command "rn" (did you mean run?)' "$bin" rn job.json
expect "daemon, same style" 2 '^fleetcast daemon: unknown option --spol (did you mean --spool?)$' "$bin" daemon --spol x
expect "a missing positional" 2 '^fleetcast generate-devices: FILE is required$' "$bin" generate-devices 10
expect "not a number" 2 '"ten" is not a whole number' "$bin" generate-devices ten x.csv
expect "a stray argument" 2 'unexpected argument "b.json"' "$bin" run a.json b.json
expect "per-subcommand help" 0 '^Usage: fleetcast run \[OPTIONS\] JOB' "$bin" run --help
grep -q -- '--retry-failed' "$tmp/expect.out" && ! grep -q 'generate-devices' "$tmp/expect.out" && ok || fail "run --help is not run's own help"
expect "emulate help" 0 'faults' "$bin" emulate --help
expect "top help" 0 'generate-devices' "$bin" --help

# - is standard output; --opt=value and --opt value alike.
"$bin" generate-devices 5 - --gateway-every=0 >"$tmp/five.csv" 2>/dev/null
[ "$(wc -l <"$tmp/five.csv")" -eq 6 ] && [ ! -e ./- ] && ok || fail "generate-devices 5 - wrote $(wc -l <"$tmp/five.csv") lines"
"$bin" generate-devices 5 - --gateway-every 0 2>/dev/null | cmp -s - "$tmp/five.csv" && ok || fail "--opt value and --opt=value differ"

# `--` ends the options: a job file whose name starts with a dash.
printf 'secret\n' >"$tmp/token"
cat >"$tmp/-odd.json" <<'JOB'
{"endpoint": "https://127.0.0.1:1", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "five.csv"}}
JOB
(cd "$tmp" && "$bin" run --dry-run --shard=0/2 -- -odd.json >"$tmp/dry.out" 2>&1)
rc=$?
[ "$rc" -eq 0 ] && grep -q 'devices' "$tmp/dry.out" && ok || fail "run -- -odd.json: exit $rc: $(cat "$tmp/dry.out")"

# fleetcast check: each kind, valid and not; devices and token are not read.
cat >"$tmp/job.json" <<'JOB'
{"endpoint": "https://iot.example.com", "auth": {"token_file": "no-such-token"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "no-such-devices.csv"}}
JOB
expect "check a job" 0 'a valid job file' "$bin" check "$tmp/job.json"
sed 's/"type": 2/"type": 9/' "$tmp/job.json" >"$tmp/bad-job.json"
expect "check a bad job" 2 'command.type' "$bin" check "$tmp/bad-job.json"
expect "check a daemon config" 0 'a valid daemon config' "$bin" check "$src/config/daemon.example.json"
echo '{"max_jobs": 0}' >"$tmp/bad-daemon.json"
expect "check a bad daemon config" 2 'max_jobs' "$bin" check "$tmp/bad-daemon.json"
expect "check an emulator config" 0 'a valid emulator config' "$bin" check "$src/config/emulator.example.json"
echo '{"listen": "127.0.0.1:0", "device_failure_ratio": 2}' >"$tmp/bad-emu.json"
expect "check a bad emulator config" 2 'device_failure_ratio' "$bin" check "$tmp/bad-emu.json"
expect "check --as" 2 'read as a daemon file' "$bin" check --as daemon "$tmp/job.json"
expect "check a missing file" 2 'no-such-file.json' "$bin" check "$tmp/no-such-file.json"
for f in "$src"/config/examples/*.json; do
  "$bin" check "$f" >/dev/null 2>&1 && ok || fail "example $f does not pass check: $("$bin" check "$f" 2>&1 | head -3)"
done

# What is given, made safe: plain http:// only to loopback unless the job
# says so; the whole API URL pasted is refused naming the address to give;
# a window that has ended is refused by check and run (nothing made), one
# that opens more than a day ahead is said.
sed 's|"https://iot.example.com"|"http://iot.example.com"|' "$tmp/job.json" >"$tmp/plain.json"
expect "plain http to a remote host" 2 'endpoint: "http://iot.example.com" is plain http:// to a host that is not loopback.*tls.allow_plain_http' "$bin" check "$tmp/plain.json"
sed 's|"devices"|"tls": {"allow_plain_http": true}, "devices"|' "$tmp/plain.json" >"$tmp/plain-allowed.json"
expect "plain http, allowed by the job" 0 'a valid job file' "$bin" check "$tmp/plain-allowed.json"
for loop in 'http://127.0.0.1:8080' 'http://[::1]:8080' 'http://localhost:8080'; do
  sed "s|\"https://iot.example.com\"|\"$loop\"|" "$tmp/job.json" >"$tmp/loop.json"
  expect "plain http to $loop" 0 'a valid job file' "$bin" check "$tmp/loop.json"
done
sed 's|"https://iot.example.com"|"https://iot.example.com/api/v2/binding/enduserapi/batchControlDevice"|' "$tmp/job.json" >"$tmp/pasted.json"
expect "the whole API URL pasted" 2 "carries the API's own path.*give the address it starts from, \"https://iot.example.com/api\"" "$bin" check "$tmp/pasted.json"
ended=$(date -u -d '-2 hours' +%Y-%m-%dT%H:%M:%SZ)
# Three days and half an hour ahead: "3 days 0 h" however long the check takes to start.
later=$(date -u -d '+3 days 30 minutes' +%Y-%m-%dT%H:%M:%SZ)
sed "s|\"devices\"|\"rollout\": {\"not_after\": \"$ended\"}, \"devices\"|" "$tmp/job.json" >"$tmp/ended.json"
expect "an ended window: check" 2 "rollout.not_after: the window ended at $ended (2 h 0 min ago): a run would send nothing" "$bin" check "$tmp/ended.json"
"$bin" generate-devices 10 "$tmp/ended-devices.csv" 2>/dev/null
printf 'Bearer x\n' >"$tmp/ended-token"
cat >"$tmp/ended-run.json" <<JOB
{"endpoint": "https://127.0.0.1:1", "auth": {"token_file": "ended-token"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "ended-devices.csv"},
 "rollout": {"not_after": "$ended"}, "output": {"dir": "out/ended"}}
JOB
(cd "$tmp" && "$bin" run ended-run.json >"$tmp/ended.out" 2>&1)
rc=$?
[ "$rc" -eq 2 ] && grep -q 'the window ended at' "$tmp/ended.out" && [ ! -e "$tmp/out/ended" ] && ok ||
  fail "an ended window: run: exit $rc, folder $([ -e "$tmp/out/ended" ] && echo made || echo none): $(cat "$tmp/ended.out")"
sed "s|\"devices\"|\"rollout\": {\"not_before\": \"$later\"}, \"devices\"|" "$tmp/job.json" >"$tmp/later.json"
expect "a window three days ahead" 0 "the window opens at $later, in 3 days 0 h: a run waits until then" "$bin" check "$tmp/later.json"

# The job with six mistakes that took five runs to see: one run shows all.
cat >"$tmp/six.json" <<'JOB'
{"endpoint": "ftp://iot.example.com:99999",
 "auth": {"token_file": "six-token"},
 "command": {"type": 1, "data": "ABCD", "qos": "1", "isCache": 1, "cacheTime": 99999999},
 "devices": {"file": "six-devices.csv"}}
JOB
(cd "$tmp" && "$bin" run six.json >"$tmp/six.out" 2>&1)
rc=$?
[ "$rc" -eq 2 ] && ok || fail "six mistakes: exit $rc"
for want in 'six.json:3:[0-9]*: command.qos: must be an integer' 'six.json:3:[0-9]*: command.dataFormat: dataFormat is required'   'six.json:3:[0-9]*: command.cacheTime: .*outside' 'six.json:1:2: endpoint: .*must start with https://.*port that is not a number'   'six-devices.csv: cannot open' 'six-token: cannot open' 'the job is invalid (6 problems)'; do
  grep -q -- "$want" "$tmp/six.out" && ok || fail "six mistakes in one round: no \"$want\" in: $(cat "$tmp/six.out")"
done

# One round for what a run checks before it sends: the device list and the
# token together; nothing is left behind, so the next run needs no --resume.
cat >"$tmp/two-missing.json" <<'JOB'
{"endpoint": "https://iot.example.com", "auth": {"token_file": "no-token"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "no-devices.csv"},
 "output": {"dir": "out/two-missing"}}
JOB
(cd "$tmp" && "$bin" run two-missing.json --emulate >"$tmp/two.out" 2>&1)
rc=$?
[ "$rc" -eq 2 ] && grep -q 'no-devices.csv: cannot open' "$tmp/two.out" && grep -q 'no-token: cannot open' "$tmp/two.out" && ok ||
  fail "a missing list and a missing token in one round: exit $rc: $(cat "$tmp/two.out")"
[ ! -e "$tmp/out/two-missing" ] && ok || fail "a run refused before sending left $(ls -A "$tmp/out/two-missing")"
"$bin" generate-devices 10 "$tmp/no-devices.csv" 2>/dev/null
(cd "$tmp" && "$bin" run two-missing.json --emulate >"$tmp/two.out" 2>&1)
[ $? -eq 2 ] && [ ! -e "$tmp/out/two-missing" ] && ok || fail "a missing token alone: $(cat "$tmp/two.out")"
echo "Bearer x" >"$tmp/no-token"
(cd "$tmp" && "$bin" run two-missing.json --emulate >"$tmp/two.out" 2>&1)
[ $? -eq 0 ] && ok || fail "the run after the refusals (no --resume): $(tail -2 "$tmp/two.out")"

finish
