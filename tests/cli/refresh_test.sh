#!/bin/bash
# Tokens that renew themselves, end to end over TLS against `fleetcast
# emulate` with 3-second tokens: a rollout of about 10 s outlives three
# lifetimes through the refresh endpoint (before expiry, and on 5032) with
# every device commanded exactly once; both new tokens are written back
# (mode 0600); a refresh token that is refused fails the job clearly,
# resumable; no token appears in any output.
# usage: refresh_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
emu_pid=
source "$(dirname "$0")/lib.sh"
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
n=3000
"$bin" generate-devices "$n" "$tmp/devices.csv" 2>/dev/null
first="Bearer FIRST-$$-not-for-output"
refresh="REFRESH-$$-not-for-output"
printf '%s\n' "$first" >"$tmp/token"
printf '%s\n' "$refresh" >"$tmp/refresh"
chmod 644 "$tmp/token" "$tmp/refresh"

write_job() {  # NAME RPS
  cat >"$tmp/$1.json" <<JOB
{"name": "$1", "endpoint": "https://127.0.0.1:$port",
 "auth": {"token_file": "token", "refresh_token_file": "refresh"}, "tls": {"ca_file": "ca.pem"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 50},
 "rate": {"requests_per_second": $2, "burst": 1}, "connections": 2}
JOB
}
counter() {  # NAME -> the emulator's final counter
  grep 'counters:' "$tmp/emu.err" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}

# 1. About 10 s of sending with 3 s tokens.
start_tls_emulator '{"max_devices": 100, "token_lifetime_s": 3}'
write_job outlive 6
"$bin" run "$tmp/outlive.json" >"$tmp/outlive.out" 2>"$tmp/outlive.err"
rc=$?
[ "$rc" -eq 0 ] && ok || fail "outlive: exit $rc: $(tail -3 "$tmp/outlive.err")"
stop_emulator
check_exactly_once "$tmp/out/outlive/results.ndjson" "$tmp/record.ndjson" "$n" outlive
refreshes=$(counter token_refreshes)
[ "${refreshes:-0}" -ge 3 ] && ok || fail "outlive: $refreshes refreshes, want at least 3: $(grep counters "$tmp/emu.err")"
[ "$(counter refresh_refused)" = 0 ] && ok || fail "outlive: a refresh was refused"
# Both tokens were replaced by the emulator's, mode 0600.
grep -q '^Bearer emulator-access-' "$tmp/token" && grep -q '^emulator-refresh-' "$tmp/refresh" && ok ||
  fail "outlive: the renewed tokens were not written back"
[ "$(stat -c %a "$tmp/token")" = 600 ] && [ "$(stat -c %a "$tmp/refresh")" = 600 ] && ok ||
  fail "outlive: token files are not mode 0600"
ls "$tmp"/*.fleetcast-tmp >/dev/null 2>&1 && fail "outlive: a temporary token file was left" || ok

# 2. A refresh token used before (the emulator takes each once): the first
# 5032 cannot be answered; the job fails, resumable, with what was sent kept.
cp "$tmp/refresh" "$tmp/refresh.used"
start_tls_emulator '{"max_devices": 100, "token_lifetime_s": 2}'
printf '%s\n' "$first" >"$tmp/token"
printf 'used-once\n' >"$tmp/refresh"
# The emulator takes "used-once" at the first refresh; then we put it back.
write_job refused 10
"$bin" run "$tmp/refused.json" >"$tmp/refused.out" 2>"$tmp/refused.err" &
run_pid=$!
for _ in $(seq 100); do
  grep -q '^emulator-refresh-' "$tmp/refresh" 2>/dev/null && break
  sleep 0.05
done
printf 'used-once\n' >"$tmp/refresh"  # an operator's stale copy over the renewed one
wait "$run_pid"
rc=$?
[ "$rc" -eq 1 ] && grep -q "a fresh one cannot be had: renewing it at the refresh endpoint failed 4 times: the refresh endpoint answered code 5032" "$tmp/refused.err" &&
  grep -q "fleetcast run .* --resume" "$tmp/refused.err" && ok ||
  fail "refused: exit $rc: $(tail -4 "$tmp/refused.err")"
stop_emulator
lines=$(wc -l <"$tmp/out/refused/results.ndjson")
[ "$lines" -eq "$n" ] && ok || fail "refused: $lines result lines"

# No token in any output.
if grep -rqF -e "${first#Bearer }" -e "$refresh" -e "used-once" -e "emulator-access-" -e "emulator-refresh-" \
  "$tmp/out" "$tmp"/*.err "$tmp"/*.out; then
  fail "a token appears in an output"
else
  ok
fi
finish
