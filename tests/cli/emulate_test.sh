#!/bin/bash
# End-to-end checks of `fleetcast emulate`: start-up from the example config
# and flags, answers over plain HTTP on loopback (bash's /dev/tcp), the
# record, a clean stop on SIGTERM with the counters, and config errors.
# usage: emulate_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# One HTTP/1.1 request over plain TCP; prints the whole answer.
http() {  # METHOD PATH BODY
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf '%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$1" "$2" "${#3}" "$3" >&3
  timeout 10 cat <&3
  exec 3<&-
}

"$bin" emulate --config "$src/config/emulator.example.json" --plain --listen 127.0.0.1:0 \
  --threads 2 --seed 5 --max-devices 3 --record "$tmp/record.ndjson" 2>"$tmp/err" &
pid=$!
for _ in $(seq 300); do  # the whole line: a half-written one has no port yet
  port=$(sed -n 's|.*serving http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/err")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] && ok || fail "no serving line: $(cat "$tmp/err")"
grep -q 'threads 2, seed 5, max devices 3' "$tmp/err" && ok || fail "flags not applied: $(cat "$tmp/err")"

body='{"type":2,"data":"[]","deviceList":[{"productKey":"p","deviceKey":"a"},{"productKey":"p","deviceKey":"b"}]}'
answer=$(http POST /v2/binding/enduserapi/batchControlDevice "$body")
case $answer in *'HTTP/1.1 200 OK'*'"code":200'*) ok ;; *) fail "valid request: $answer" ;; esac
four='{"type":2,"data":"[]","deviceList":[{"productKey":"p","deviceKey":"1"},{"productKey":"p","deviceKey":"2"},{"productKey":"p","deviceKey":"3"},{"productKey":"p","deviceKey":"4"}]}'
answer=$(http POST /v2/binding/enduserapi/batchControlDevice "$four")
case $answer in *'"code":5312'*) ok ;; *) fail "over the limit: $answer" ;; esac
answer=$(http GET /stats "")
case $answer in *'"devices":2'*) ok ;; *) fail "stats: $answer" ;; esac

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] && ok || fail "exit $rc after SIGTERM"
grep -q 'stopped by SIGTERM; counters: {"requests":3' "$tmp/err" && ok || fail "final counters: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/record.ndjson")" -eq 2 ] && ok || fail "record: $(cat "$tmp/record.ndjson")"
grep -q '"deviceKey":"b","gatewayProductKey":null,"gatewayDeviceKey":null,"outcome":' "$tmp/record.ndjson" && ok || fail "record line: $(cat "$tmp/record.ndjson")"

echo '{"max_devices": 0, "faults": {"rest_ratio": 1}}' >"$tmp/bad.json"
"$bin" emulate --config "$tmp/bad.json" --plain 2>"$tmp/err2"
[ $? -eq 2 ] && ok || fail "bad config exit"
grep -q 'bad.json: max_devices: must be in 1..1000000' "$tmp/err2" && ok || fail "bad config message: $(cat "$tmp/err2")"
grep -q 'bad.json: faults.rest_ratio: unknown field' "$tmp/err2" && ok || fail "unknown field: $(cat "$tmp/err2")"
"$bin" emulate --threads many 2>"$tmp/err3"
[ $? -eq 2 ] && grep -q -- '--threads: "many" is not a whole number' "$tmp/err3" && ok || fail "bad flag: $(cat "$tmp/err3")"
"$bin" emulate --listen 256.0.0.1:1 --plain 2>"$tmp/err4"
[ $? -eq 2 ] && grep -q 'is not an IP address' "$tmp/err4" && ok || fail "bad listen: $(cat "$tmp/err4")"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
