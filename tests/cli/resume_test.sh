#!/bin/bash
# The first promise against the operator's own hands, end to end against
# `fleetcast emulate` on loopback: abort then --resume, --retry-failed, a
# changed rollout refused, two processes on one folder, token commands that
# hang, fail or leave children, an input with no records, a full disk, an
# endpoint that is not there and one that goes away, a server that echoes
# the token. Devices are checked one by one against the emulator's record.
# usage: resume_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
emu_pid=
source "$(dirname "$0")/lib.sh"
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null
  mountpoint -q "$tmp/small" 2>/dev/null && umount "$tmp/small"
  rm -rf "$tmp"
}
trap cleanup EXIT
secret="Bearer SECRET-$$-not-for-output"
printf '%s\n' "$secret" >"$tmp/token"

default_auth='{"token_file": "token"}'
default_retry='{"max_attempts": 5, "base_delay_ms": 10, "max_delay_ms": 100}'
write_job() {  # NAME DEVICES [extra members]; AUTH, BATCH, CONNS, RETRY override the defaults
  cat >"$tmp/$1.json" <<JOB
{"name": "$1", "endpoint": "http://127.0.0.1:$port",
 "auth": ${AUTH:-$default_auth},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "$2"}, "batch": {"max_devices": ${BATCH:-50}},
 "rate": {"requests_per_second": 0}, "connections": ${CONNS:-2},
 "retry": ${RETRY:-$default_retry}${3:+, $3}}
JOB
}
n=3000
"$bin" generate-devices "$n" "$tmp/devices.csv" --gateway-every 0 2>/dev/null
# One port for every emulator below: a resume must reach the same endpoint.
start_emulator
EMU_PORT=$port
stop_emulator

# 1. An abort, then --resume sends exactly the aborted devices.
start_emulator --record "$tmp/rec-abort.ndjson" --config "$(emulator_config '{"device_failure_ratio": 0.5}')"
CONNS=1 write_job abort devices.csv '"rollout": {"abort_failure_ratio": 0.2, "abort_min_devices": 100}'
"$bin" run "$tmp/abort.json" >"$tmp/abort.out" 2>&1
rc=$?
stop_emulator
[ "$rc" -eq 3 ] && ok || fail "abort exit $rc, want 3: $(tail -2 "$tmp/abort.out")"
grep -q '"state":"aborted"' "$tmp/out/abort/summary.json" && ok || fail "abort state"
keys_with "$tmp/out/abort/results.ndjson" '"reason":"aborted"' >"$tmp/aborted.keys"
[ -s "$tmp/aborted.keys" ] && ok || fail "no aborted devices"
start_emulator --record "$tmp/rec-resume1.ndjson"
"$bin" run "$tmp/abort.json" --resume >"$tmp/resume1.out" 2>&1
rc=$?
stop_emulator
[ "$rc" -eq 1 ] && ok || fail "resume after abort exit $rc, want 1 (earlier device failures stay): $(tail -2 "$tmp/resume1.out")"
record_keys "$tmp/rec-resume1.ndjson" >"$tmp/resent1.keys"
cmp -s "$tmp/aborted.keys" "$tmp/resent1.keys" && ok ||
  fail "resume sent $(wc -l <"$tmp/resent1.keys") devices, want exactly the $(wc -l <"$tmp/aborted.keys") aborted"
grep -q '"aborted":0' "$tmp/out/abort/summary.json" && ok || fail "aborted devices left after resume"
cat "$tmp/rec-abort.ndjson" "$tmp/rec-resume1.ndjson" >"$tmp/rec-all.ndjson"
check_exactly_once "$tmp/out/abort/results.ndjson" "$tmp/rec-all.ndjson" "$n" abort+resume

# 2. --retry-failed: the default reasons leave device_failed alone; named, it
#    sends exactly those again; one line per device, attempts add up.
keys_with "$tmp/out/abort/results.ndjson" '"reason":"device_failed"' >"$tmp/failed.keys"
start_emulator --record "$tmp/rec-default.ndjson"
"$bin" run "$tmp/abort.json" --retry-failed >"$tmp/retry0.out" 2>&1
stop_emulator
[ ! -s "$tmp/rec-default.ndjson" ] && ok || fail "--retry-failed without device_failed sent $(wc -l <"$tmp/rec-default.ndjson") devices"
start_emulator --record "$tmp/rec-retry.ndjson"
"$bin" run "$tmp/abort.json" --retry-failed=device_failed >"$tmp/retry.out" 2>&1
rc=$?
stop_emulator
[ "$rc" -eq 0 ] && ok || fail "--retry-failed=device_failed exit $rc: $(tail -2 "$tmp/retry.out")"
record_keys "$tmp/rec-retry.ndjson" >"$tmp/retried.keys"
cmp -s "$tmp/failed.keys" "$tmp/retried.keys" && ok ||
  fail "--retry-failed sent $(wc -l <"$tmp/retried.keys") devices, want exactly the $(wc -l <"$tmp/failed.keys") device_failed"
# A device sent again after a certain failure was commanded twice by
# request: its first, failed command is not counted against it.
{ grep -v '"outcome":"failed"' "$tmp/rec-all.ndjson"; cat "$tmp/rec-retry.ndjson"; } >"$tmp/rec-all2.ndjson"
check_exactly_once "$tmp/out/abort/results.ndjson" "$tmp/rec-all2.ndjson" "$n" retry-failed
twice=$(grep -c '"attempts":2,' "$tmp/out/abort/results.ndjson")
[ "$twice" -eq "$(wc -l <"$tmp/failed.keys")" ] && ok || fail "attempts do not add up: $twice lines with 2 attempts"
grep -q "\"retries\":$twice," "$tmp/out/abort/summary.json" && ok || fail "summary retries disagree with attempts ($twice): $(cat "$tmp/out/abort/summary.json")"
grep -q '"succeeded":3000' "$tmp/out/abort/summary.json" && ok || fail "summary after the runs"
[ "$(grep -o '"state":' "$tmp/out/abort/summary.json" | wc -l)" -eq 5 ] && ok || fail "summary.json does not list the 4 runs: $(cat "$tmp/out/abort/summary.json")"
"$bin" run "$tmp/abort.json" --retry-failed=acepted >"$tmp/bad-reason.out" 2>&1
[ $? -eq 2 ] && grep -q 'unknown reason "acepted"' "$tmp/bad-reason.out" && ok || fail "an unknown --retry-failed reason"

# 3. A different rollout is refused (exit 2, naming what changed), nothing sent, nothing changed.
start_emulator --record "$tmp/rec-refused.ndjson"
sum_before=$(md5sum <"$tmp/out/abort/results.ndjson")
cp "$tmp/devices.csv" "$tmp/devices.orig"
refuse() {  # LABEL PATTERN [run args]
  local label=$1 pattern=$2
  shift 2
  "$bin" run "$tmp/abort.json" --resume "$@" >"$tmp/refuse.out" 2>&1
  local rc=$?
  [ "$rc" -eq 2 ] && grep -q -- "$pattern" "$tmp/refuse.out" && ok || fail "$label: exit $rc, want 2 naming $pattern: $(cat "$tmp/refuse.out")"
}
{ head -1 "$tmp/devices.orig"; sed -n '3p' "$tmp/devices.orig"; sed -n '2p' "$tmp/devices.orig"; tail -n +4 "$tmp/devices.orig"; } >"$tmp/devices.csv"
refuse reordered 'changed: the device list'
head -n -1 "$tmp/devices.orig" >"$tmp/devices.csv"
refuse shortened 'changed: the device list'
{ cat "$tmp/devices.orig"; echo "pk-extra,dk-extra"; } >"$tmp/devices.csv"
refuse extended 'changed: the device list'
cp "$tmp/devices.orig" "$tmp/devices.csv"
sed -i 's/"switch\\":true/"switch\\":false/' "$tmp/abort.json"
refuse "command changed" 'command.data'
sed -i 's/"switch\\":false/"switch\\":true/; s|127.0.0.1:[0-9]*|127.0.0.1:1|' "$tmp/abort.json"
refuse "endpoint changed" 'the endpoint'
CONNS=1 write_job abort devices.csv '"rollout": {"abort_failure_ratio": 0.2, "abort_min_devices": 100}'
cp "$tmp/out/abort/results.ndjson" "$tmp/results.keep"
sed -n '1p' "$tmp/results.keep" | sed 's/"index":[0-9]*/"index":999999/' >>"$tmp/out/abort/results.ndjson"
sum_edited=$(md5sum <"$tmp/out/abort/results.ndjson")
refuse "a result line beyond the input" 'the device list does not have'
[ "$(md5sum <"$tmp/out/abort/results.ndjson")" = "$sum_edited" ] && [ ! -e "$tmp/out/abort/results.ndjson.resume" ] && ok ||
  fail "a resume refused for a foreign line changed the results (or left its work file)"
sed '5s/"deviceKey":"[^"]*"/"deviceKey":"someone-else"/' "$tmp/results.keep" >"$tmp/out/abort/results.ndjson"
refuse "a result line naming another device" 'does not name'
cp "$tmp/results.keep" "$tmp/out/abort/results.ndjson"
[ "$(md5sum <"$tmp/out/abort/results.ndjson")" = "$sum_before" ] && ok || fail "a refusal changed results.ndjson"
stop_emulator
[ ! -s "$tmp/rec-refused.ndjson" ] && ok || fail "a refused resume sent $(wc -l <"$tmp/rec-refused.ndjson") devices"

# 4. Two processes on one folder: exactly one runs, the other is refused at once.
start_emulator --record "$tmp/rec-two.ndjson" --config "$(emulator_config '{"latency_ms": 200}')"
write_job two devices.csv
"$bin" run "$tmp/two.json" >"$tmp/two-a.out" 2>&1 &
a=$!
"$bin" run "$tmp/two.json" >"$tmp/two-b.out" 2>&1 &
b=$!
wait "$a"
ra=$?
wait "$b"
rb=$?
{ [ "$ra" -eq 0 ] && [ "$rb" -eq 2 ]; } || { [ "$ra" -eq 2 ] && [ "$rb" -eq 0 ]; } && ok || fail "two runs: exits $ra and $rb, want 0 and 2"
cat "$tmp/two-a.out" "$tmp/two-b.out" | grep -q 'is in use by process [0-9]' && ok || fail "the refusal does not name the holder: $(cat "$tmp/two-a.out" "$tmp/two-b.out")"
stop_emulator
check_exactly_once "$tmp/out/two/results.ndjson" "$tmp/rec-two.ndjson" "$n" "two runs"
[ "$(wc -l <"$tmp/rec-two.ndjson")" -eq "$n" ] && ok || fail "two runs: $(wc -l <"$tmp/rec-two.ndjson") commands for $n devices"

# 5. Token commands, each bounded and clear; the token never in a message.
start_emulator --config "$(emulator_config "{\"tokens\": [\"$secret\"]}")"
token_job() {  # NAME ARGV-JSON
  AUTH="{\"token_command\": $2, \"command_timeout_ms\": 800}" write_job "$1" devices.csv
}
token_job hang '["sh", "-c", "sleep 60"]'
timeout 30 "$bin" run "$tmp/hang.json" >"$tmp/hang.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -q 'did not exit within 800 ms' "$tmp/hang.out" && ok || fail "hanging token_command: exit $rc: $(cat "$tmp/hang.out")"
[ ! -e "$tmp/out/hang/results.ndjson" ] && ok || fail "a start that sent nothing left results behind"
token_job failing "[\"sh\", \"-c\", \"echo '$secret'; exit 7\"]"
timeout 30 "$bin" run "$tmp/failing.json" >"$tmp/failing.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -q 'failed (exit status 7)' "$tmp/failing.out" && ok || fail "failing token_command: exit $rc: $(cat "$tmp/failing.out")"
token_job leaver "[\"sh\", \"-c\", \"echo '$secret'; sleep 61.25 & exit 0\"]"
timeout 30 "$bin" run "$tmp/leaver.json" >"$tmp/leaver.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && ok || fail "a token_command that leaves a child holding stdout: exit $rc: $(tail -2 "$tmp/leaver.out")"
for _ in $(seq 20); do pgrep -f 'sleep 61.25' >/dev/null || break; sleep 0.1; done
pgrep -f 'sleep 61.25' >/dev/null && fail "the token command's child outlived it" || ok
stop_emulator
# A slow refresh after 5032: the run goes on, nothing lost or sent twice;
# then the same, cancelled during the refresh: bounded, the helper killed.
cat >"$tmp/rotate.sh" <<'SH'
#!/bin/sh
# a new token each call (the emulator takes any, each for 20 requests); after the first, slowly
n=$(cat "$1" 2>/dev/null || echo 0)
echo $((n + 1)) >"$1"
[ "$n" -gt 0 ] && sleep "$2"
echo "Bearer rotated-$n"
SH
chmod +x "$tmp/rotate.sh"
start_emulator --record "$tmp/rec-rotate.ndjson" --config "$(emulator_config '{"faults": {"token_expires_after_requests": 20}}')"
AUTH="{\"token_command\": [\"$tmp/rotate.sh\", \"$tmp/rot\", \"1.5\"], \"command_timeout_ms\": 10000}" CONNS=4 \
  write_job rotate devices.csv
timeout 60 "$bin" run "$tmp/rotate.json" >"$tmp/rotate.out" 2>&1
rc=$?
stop_emulator
[ "$rc" -eq 0 ] && ok || fail "slow token refresh: exit $rc: $(tail -3 "$tmp/rotate.out")"
check_exactly_once "$tmp/out/rotate/results.ndjson" "$tmp/rec-rotate.ndjson" "$n" "token refresh"
rm -f "$tmp/rot"
start_emulator --config "$(emulator_config '{"faults": {"token_expires_after_requests": 20}}')"
AUTH="{\"token_command\": [\"$tmp/rotate.sh\", \"$tmp/rot\", \"40\"], \"command_timeout_ms\": 60000}" \
  write_job rotate2 devices.csv
"$bin" run "$tmp/rotate2.json" >"$tmp/rotate2.out" 2>&1 &
run_pid=$!
for _ in $(seq 100); do pgrep -f 'sleep 40' >/dev/null && break; sleep 0.1; done
pgrep -f 'sleep 40' >/dev/null && ok || fail "the slow token command did not start"
kill -TERM "$run_pid"
for _ in $(seq 50); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$run_pid" 2>/dev/null && { fail "SIGTERM during a token refresh: still running after 5 s"; kill -KILL "$run_pid"; } || ok
wait "$run_pid"
rc=$?
[ "$rc" -eq 4 ] && ok || fail "SIGTERM during a token refresh: exit $rc, want 4: $(tail -2 "$tmp/rotate2.out")"
# SIGKILLed with its group as the run stops; give a loaded machine a moment
# to take a killed process off the table (2 s at most).
for _ in $(seq 20); do pgrep -f 'sleep 40' >/dev/null || break; sleep 0.1; done
pgrep -f 'sleep 40' >/dev/null && fail "the token command survived the cancel" || ok
[ "$(wc -l <"$tmp/out/rotate2/results.ndjson")" -eq "$n" ] && ok || fail "cancel during refresh: not every device has a line"
stop_emulator

# 6. An input with no records is refused before anything is written: 5311.
head -1 "$tmp/devices.orig" >"$tmp/header-only.csv"
write_job empty header-only.csv
"$bin" run "$tmp/empty.json" >"$tmp/empty.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -q '5311' "$tmp/empty.out" && ok || fail "header-only input: exit $rc: $(cat "$tmp/empty.out")"
[ ! -e "$tmp/out/empty" ] && ok || fail "a refused input left an output folder"
: >"$tmp/zero.csv"
write_job zero zero.csv
"$bin" run "$tmp/zero.json" >"$tmp/zero.out" 2>&1
[ $? -eq 2 ] && ok || fail "a zero-byte CSV must be refused with exit 2: $(cat "$tmp/zero.out")"

# 7. A full disk, while results are written and while result.json is written
#    (it grows beside results.ndjson during the run): exit 1, a message, no
#    partial result.json, and a resume that completes the rollout.
mkdir -p "$tmp/small"
if mount -t tmpfs -o size=256k tmpfs "$tmp/small" 2>/dev/null; then
  start_emulator --record "$tmp/rec-full.ndjson"
  write_job full devices.csv "\"output\": {\"dir\": \"$tmp/small/full\"}"
  "$bin" run "$tmp/full.json" >"$tmp/full.out" 2>&1
  rc=$?
  [ "$rc" -eq 1 ] && grep -q 'No space left on device' "$tmp/full.out" && ok || fail "disk full during results: exit $rc: $(tail -3 "$tmp/full.out")"
  mount -o remount,size=16m "$tmp/small"
  "$bin" run "$tmp/full.json" --resume >"$tmp/full2.out" 2>&1
  rc=$?
  stop_emulator
  [ "$rc" -eq 0 ] && ok || fail "resume after a full disk: exit $rc: $(tail -3 "$tmp/full2.out")"
  check_exactly_once "$tmp/small/full/results.ndjson" "$tmp/rec-full.ndjson" "$n" "full disk"
  [ "$(grep -o '"deviceKey"' "$tmp/small/full/result.json" | wc -l)" -eq "$n" ] && ok || fail "result.json after a full disk"
  # Room for the results but not for result.json too.
  rm -rf "$tmp/small/full"
  used=$(du -sk "$tmp/small" | cut -f1)
  results_kb=$(( $(wc -c <"$tmp/out/two/results.ndjson") / 1024 ))
  mount -o remount,size=$(( used + results_kb + 120 ))k "$tmp/small"
  start_emulator
  "$bin" run "$tmp/full.json" >"$tmp/merge.out" 2>&1
  rc=$?
  [ "$rc" -eq 1 ] && grep -q 'No space left on device' "$tmp/merge.out" && ok || fail "disk full during the outputs: exit $rc: $(tail -3 "$tmp/merge.out")"
  [ ! -s "$tmp/small/full/result.json" ] && ok || fail "a result.json that could not be written whole was left"
  mount -o remount,size=16m "$tmp/small"
  stop_emulator
  start_emulator --record "$tmp/rec-merge2.ndjson"
  "$bin" run "$tmp/full.json" --resume >"$tmp/merge2.out" 2>&1
  rc=$?
  stop_emulator
  [ "$rc" -eq 0 ] && [ ! -s "$tmp/rec-merge2.ndjson" ] && ok || fail "resume after a failed merge: exit $rc, $(wc -l <"$tmp/rec-merge2.ndjson") sent"
  [ "$(grep -o '"deviceKey"' "$tmp/small/full/result.json" | wc -l)" -eq "$n" ] && ok || fail "result.json after the merge resumed"
  umount "$tmp/small"
else
  echo "SKIP full disk: cannot mount a tmpfs here (not root, or no mount permission)"
fi

# 8. An endpoint that is not there: the job fails fast, every device
#    job_failed; --resume after it is back completes it.
big=100000
"$bin" generate-devices "$big" "$tmp/big.csv" --gateway-every 0 2>/dev/null
EMU_PORT=
start_emulator
down_port=$port
stop_emulator
port=$down_port
BATCH=100 write_job down big.csv
timeout 120 "$bin" run "$tmp/down.json" >"$tmp/down.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q 'cannot connect to http://127.0.0.1:'"$down_port"'.*refused' "$tmp/down.out" && ok || fail "refused port: exit $rc: $(tail -2 "$tmp/down.out")"
grep -q "\"job_failed\":$big" "$tmp/out/down/summary.json" && grep -q '"requests":0' "$tmp/out/down/summary.json" && ok ||
  fail "refused port: $(cat "$tmp/out/down/summary.json")"
EMU_PORT=$down_port start_emulator --record "$tmp/rec-down.ndjson"
"$bin" run "$tmp/down.json" --resume >"$tmp/down2.out" 2>&1
rc=$?
stop_emulator
[ "$rc" -eq 0 ] && ok || fail "resume after the endpoint is back: exit $rc: $(tail -2 "$tmp/down2.out")"
check_exactly_once "$tmp/out/down/results.ndjson" "$tmp/rec-down.ndjson" "$big" "endpoint back"

# 9. The endpoint goes away mid-run: sending pauses, then the job fails after
#    timeouts.unreachable_s; no device is burnt as transport_failed.
start_emulator --record "$tmp/rec-gone.ndjson" --config "$(emulator_config '{"latency_ms": 5}')"
BATCH=100 write_job gone big.csv '"timeouts": {"unreachable_s": 2}'
"$bin" run "$tmp/gone.json" >"$tmp/gone.out" 2>&1 &
run_pid=$!
wait_for_lines "$tmp/out/gone/results.ndjson" 2000
gone_port=$port
stop_emulator
timeout 60 tail --pid="$run_pid" -f /dev/null
wait "$run_pid"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'no connection could be made for 2 s' "$tmp/gone.out" && ok || fail "endpoint gone: exit $rc: $(tail -2 "$tmp/gone.out")"
grep -q '"transport_failed":0' "$tmp/out/gone/summary.json" && ok || fail "devices burnt while the endpoint was gone: $(cat "$tmp/out/gone/summary.json")"
EMU_PORT=$gone_port start_emulator --record "$tmp/rec-gone2.ndjson"
"$bin" run "$tmp/gone.json" --resume >"$tmp/gone2.out" 2>&1
rc=$?
stop_emulator
[ "$rc" -eq 0 ] && ok || fail "resume after the endpoint came back: exit $rc: $(tail -2 "$tmp/gone2.out")"
cat "$tmp/rec-gone.ndjson" "$tmp/rec-gone2.ndjson" >"$tmp/rec-gone-all.ndjson"
check_exactly_once "$tmp/out/gone/results.ndjson" "$tmp/rec-gone-all.ndjson" "$big" "endpoint gone and back"

# 10. A server that echoes the token, and a Retry-After of 28 hours: the
#     token is redacted; the wait is capped and said.
start_emulator --config "$(emulator_config '{"device_failure_ratio": 0.2, "faults": {"echo_token": 1, "http_503_ratio": 0.05, "retry_after_s": 100000}}')"
RETRY='{"max_attempts": 10, "base_delay_ms": 10, "max_delay_ms": 100, "max_retry_after_s": 1}' write_job echo devices.csv
timeout 120 "$bin" run "$tmp/echo.json" >"$tmp/echo.out" 2>&1
rc=$?
stop_emulator
[ "$rc" -eq 1 ] && ok || fail "echo run: exit $rc, want 1 (20% fail): $(tail -2 "$tmp/echo.out")"
grep -q '\[redacted\]' "$tmp/out/echo/results.ndjson" && ok || fail "the echoed token was not redacted"

# The token, in every run above, shows in no output, result or log of fleetcast.
if grep -rqF "SECRET-$$" "$tmp/out" "$tmp"/*.out; then fail "the token appears in an output or log"; else ok; fi

finish
