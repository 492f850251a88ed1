#!/bin/bash
# End-to-end checks of `fleetcast run` against `fleetcast emulate` on
# loopback: a run killed with SIGKILL and resumed, a run stopped by SIGINT
# (exit 4) and resumed, exit codes, and the token in no output. Devices are
# checked one by one against the emulator's record (awk only).
# usage: run_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
emu_pid=
source "$(dirname "$0")/lib.sh"
trap '[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
n=20000
secret="Bearer SECRET-$$-do-not-print"

write_job() {  # NAME [extra members]
  cat >"$tmp/$1.json" <<JOB
{"name": "$1", "endpoint": "http://127.0.0.1:$port",
 "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 100},
 "rate": {"requests_per_second": 0}, "connections": 2,
 "retry": {"max_attempts": 5, "base_delay_ms": 10, "max_delay_ms": 100}${2:+, $2}}
JOB
}
"$bin" generate-devices "$n" "$tmp/devices.csv" --gateway-every 0 2>/dev/null
printf '%s\n' "$secret" >"$tmp/token"

# 1. SIGKILL mid-run, then --resume.
start_emulator --record "$tmp/record1.ndjson" --config "$(emulator_config '{"latency_ms": 15}')"
write_job killed
"$bin" run "$tmp/killed.json" >"$tmp/kill.out" 2>&1 &
run_pid=$!
wait_for_lines "$tmp/out/killed/results.ndjson" 3000
kill -KILL "$run_pid"
wait "$run_pid" 2>/dev/null
before=$(wc -l <"$tmp/out/killed/results.ndjson")
[ "$before" -gt 0 ] && [ "$before" -lt "$n" ] && ok || fail "kill: $before results before the kill (want some, not all)"
"$bin" run "$tmp/killed.json" >"$tmp/kill2.out" 2>&1
[ $? -eq 2 ] && grep -q 'already holds results' "$tmp/kill2.out" && ok || fail "a second run without --resume must refuse: $(cat "$tmp/kill2.out")"
"$bin" run "$tmp/killed.json" --resume >"$tmp/resume.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && ok || fail "resume exit $rc: $(tail -3 "$tmp/resume.out")"
grep -q "resuming: $before records keep their result" "$tmp/resume.out" && ok || fail "resume message: $(head -3 "$tmp/resume.out")"
stop_emulator
check_exactly_once "$tmp/out/killed/results.ndjson" "$tmp/record1.ndjson" "$n" killed
grep -q '"succeeded":20000' "$tmp/out/killed/summary.json" && ok || fail "summary after resume: $(cat "$tmp/out/killed/summary.json")"
# A device with a result before the kill was not sent again.
head -n "$before" "$tmp/out/killed/results.ndjson" >"$tmp/before-kill.ndjson"
check_not_resent "$tmp/before-kill.ndjson" "$tmp/record1.ndjson" kill

# 2. SIGINT: graceful stop, exit 4 (cancelled), resumable; the token in no output.
start_emulator --record "$tmp/record2.ndjson" --config "$(emulator_config '{"latency_ms": 15, "device_failure_ratio": 0.01}')"
write_job stopped
"$bin" run "$tmp/stopped.json" >"$tmp/int.out" 2>&1 &
run_pid=$!
wait_for_lines "$tmp/out/stopped/results.ndjson" 2000
kill -INT "$run_pid"
wait "$run_pid"
rc=$?
[ "$rc" -eq 4 ] && ok || fail "SIGINT exit $rc, want 4: $(tail -3 "$tmp/int.out")"
grep -q '"state":"cancelled"' "$tmp/out/stopped/summary.json" && ok || fail "state after SIGINT: $(cat "$tmp/out/stopped/summary.json")"
grep -q 'stopped by SIGINT; continue with' "$tmp/int.out" && ok || fail "SIGINT message: $(tail -2 "$tmp/int.out")"
[ "$(wc -l <"$tmp/out/stopped/results.ndjson")" -eq "$n" ] && ok || fail "after SIGINT every device has a line"
"$bin" run "$tmp/stopped.json" --resume >"$tmp/int2.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && ok || fail "resume after SIGINT exit $rc, want 1 (1% of devices fail): $(tail -2 "$tmp/int2.out")"
stop_emulator
check_exactly_once "$tmp/out/stopped/results.ndjson" "$tmp/record2.ndjson" "$n" stopped
grep -q '"cancelled":0' "$tmp/out/stopped/summary.json" && ok || fail "cancelled devices were not sent on resume"
# result.json: the API's own schema, every device once.
[ "$(grep -o '"deviceKey"' "$tmp/out/stopped/result.json" | wc -l)" -eq "$n" ] && ok || fail "result.json does not name every device once"
grep -q '^{"code":200,"msg":"merged by fleetcast","extMsg":null,"data":{"successList":\[' "$tmp/out/stopped/result.json" && ok || fail "result.json schema"

# 3. A refused token: the job fails, nothing is lost, the token shows nowhere.
start_emulator --config "$(emulator_config '{"tokens": ["Bearer the-right-one"]}')"
write_job refused
"$bin" run "$tmp/refused.json" >"$tmp/ref.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && ok || fail "refused token exit $rc, want 1"
grep -q 'the job failed: the token was refused (5032)' "$tmp/ref.out" && ok || fail "refused message: $(tail -3 "$tmp/ref.out")"
grep -q '"state":"failed"' "$tmp/out/refused/summary.json" && ok || fail "state after a refused token"
[ "$(wc -l <"$tmp/out/refused/results.ndjson")" -eq "$n" ] && ok || fail "a failed job still accounts for every device"
stop_emulator

# 4. tls.verify false: it works, and every run says so loudly.
rm -f "$tmp/emu.err"
"$bin" emulate --listen 127.0.0.1:0 --threads 1 --cert-out "$tmp/cert.pem" 2>"$tmp/emu.err" &
emu_pid=$!
port=$(serving_port "$tmp/emu.err" https)
head -101 "$tmp/devices.csv" >"$tmp/few.csv"
cat >"$tmp/unverified.json" <<JOB
{"name": "unverified", "endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"},
 "tls": {"verify": false}, "command": {"type": 2, "data": "[]"}, "devices": {"file": "few.csv"}}
JOB
"$bin" run "$tmp/unverified.json" >"$tmp/unv.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && ok || fail "tls.verify false run exit $rc: $(tail -2 "$tmp/unv.out")"
grep -q 'WARNING: tls.verify is false' "$tmp/unv.out" && ok || fail "no warning for tls.verify false"
cat >"$tmp/verified.json" <<JOB
{"name": "verified", "endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "few.csv"},
 "retry": {"max_attempts": 1}}
JOB
"$bin" run "$tmp/verified.json" >"$tmp/ver.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q '"job_failed":100' "$tmp/out/verified/summary.json" &&
  grep -q 'certificate verify failed' "$tmp/ver.out" && ok ||
  fail "an untrusted certificate must be refused (exit $rc): $(tail -2 "$tmp/ver.out")"
stop_emulator

# The token, in every run above, shows in no output, result or log.
if grep -rqF "SECRET-$$" "$tmp/out" "$tmp"/*.out "$tmp/emu.err"; then fail "the token appears in an output or log"; else ok; fi

finish
