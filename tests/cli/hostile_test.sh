#!/bin/bash
# fleetcast against a hostile world, with peers written apart from it
# (hostile_peer.py, ack_relay.py): a server, a refresh endpoint and a proxy
# that echo every secret the job holds, send 900 KB or 7,000 bytes of text
# or bytes that are not UTF-8, or stall; an acks file rotated, truncated,
# fed a 300 MB line, or missing; a FIFO writer that leaves half a line; a
# subscription cut between journal and settle; device lists that are not
# text; and the admin port probed as a web page would (DNS rebinding,
# cross-site), flooded with idle connections, and fed an oversized job.
# Each case checks the hostile thing happened (the peer says so) and that
# fleetcast refused it, bounded it, or went on with every device once.
# usage: hostile_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
src=$2
tmp=$(mktemp -d)
emu_pid=
peer_pid=
relay_pid=
daemon_pid=
py=/usr/bin/python3
[ -x "$py" ] || py=python3
source "$(dirname "$0")/lib.sh"
cleanup() {
  for p in $emu_pid $peer_pid $relay_pid $daemon_pid; do kill -KILL "$p" 2>/dev/null; done
  [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
here=$(dirname "$0")

# Every secret of the jobs below, each in every form a peer may echo it.
token="Bearer eyJhbGciOi.HOSTILE-$$-access.sig"
refresh="REFRESH/$$+hostile=token"
proxy_pass="proxy-pass-$$-secret"
printf '%s\n' "$token" >"$tmp/token"
printf '%s\n' "$refresh" >"$tmp/refresh"
forms() {  # every form to look for
  printf '%s\n' "${token#Bearer }" "$refresh" "REFRESH%2F$$%2Bhostile%3Dtoken" "$proxy_pass" \
    "$(printf 'op:%s' "$proxy_pass" | base64)"
}
leaks() {  # FILES... -> the secrets' forms found in them (none: empty)
  local f
  forms >"$tmp/forms"
  grep -rlF -f "$tmp/forms" "$@" 2>/dev/null
}
valid_json_files() {  # FILES...: each a JSON document, or NDJSON lines
  "$py" - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    text = open(path, "rb").read().decode("utf-8")  # strict: raises on bad UTF-8
    if path.endswith(".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            json.loads(line)
    else:
        json.loads(text)
PY
}
start_peer() {  # ARGS...: a hostile peer; sets peer_port, peer_pid, its events in $tmp/peer.out
  rm -f "$tmp/peer.port"
  "$py" "$here/hostile_peer.py" "$tmp/peer.port" "$@" >"$tmp/peer.out" 2>"$tmp/peer.err" &
  peer_pid=$!
  for _ in $(seq 200); do [ -s "$tmp/peer.port" ] && break; sleep 0.05; done
  peer_port=$(cat "$tmp/peer.port" 2>/dev/null)
  [ -n "$peer_port" ] || { echo "the hostile peer did not start: $(cat "$tmp/peer.err")"; exit 1; }
}
stop_peer() {
  kill "$peer_pid" 2>/dev/null
  wait "$peer_pid" 2>/dev/null
  peer_pid=
}
wait_event() {  # FILE TEXT SECONDS: until FILE holds a line TEXT; false at the deadline
  local i
  for ((i = 0; i < $3 * 20; ++i)); do
    grep -qx "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "waited $3 s for \"$2\" in $1" >&2
  return 1
}
write_job() {  # NAME ENDPOINT [extra members]
  cat >"$tmp/$1.json" <<JOB
{"name": "$1", "endpoint": "$2", "auth": {"token_file": "token", "refresh_token_file": "refresh"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 50}, "connections": 1,
 "rate": {"requests_per_second": 0},
 "retry": {"max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 20}${3:+, $3}}
JOB
}
outputs() {  # NAME -> every output of the run: its folder, stdout, stderr
  echo "$tmp/out/$1" "$tmp/$1.out" "$tmp/$1.err"
}
n=200
"$bin" generate-devices "$n" "$tmp/devices.csv" 2>/dev/null

# 1. A server that echoes the access token in the answer's msg, extMsg,
#    every ticket and the failure's msg.
start_peer api --echo
write_job echo "http://127.0.0.1:$peer_port"
"$bin" run "$tmp/echo.json" >"$tmp/echo.out" 2>"$tmp/echo.err"
rc=$?
stop_peer
[ "$rc" -eq 1 ] && grep -qx echoed "$tmp/peer.out" && ok || fail "echo: exit $rc, or the server never echoed: $(tail -2 "$tmp/echo.err")"
[ "$(grep -c '"ticket":"t-[0-9]*-\[redacted\]"' "$tmp/out/echo/results.ndjson")" -eq $((n - n / 50)) ] && ok ||
  fail "echo: the echoed tickets are not redacted: $(head -c 400 "$tmp/out/echo/results.ndjson")"
[ -z "$(leaks $(outputs echo))" ] && ok || fail "echo: a secret in $(leaks $(outputs echo))"

# 2. A refresh endpoint that echoes the refresh token and the access token
#    in its error; every request answered 5032, so renewal is asked for.
start_peer api --refuse --refresh echo
write_job refresh_echo "http://127.0.0.1:$peer_port"
"$bin" run "$tmp/refresh_echo.json" >"$tmp/refresh_echo.out" 2>"$tmp/refresh_echo.err"
rc=$?
stop_peer
[ "$rc" -eq 1 ] && [ "$(grep -cx echoed "$tmp/peer.out")" -eq 4 ] && ok ||
  fail "refresh_echo: exit $rc, $(grep -cx echoed "$tmp/peer.out") renewals (want 4 tries): $(tail -2 "$tmp/refresh_echo.err")"
grep -q 'renewing it at the refresh endpoint failed 4 times' "$tmp/refresh_echo.err" &&
  grep -q '\[redacted\]' "$tmp/out/refresh_echo/summary.json" && ok ||
  fail "refresh_echo: not failed after 4 tries, or nothing redacted: $(cat "$tmp/out/refresh_echo/summary.json")"
[ -z "$(leaks $(outputs refresh_echo))" ] && ok || fail "refresh_echo: a secret in $(leaks $(outputs refresh_echo))"
[ "$(cat "$tmp/refresh")" = "$refresh" ] && ok || fail "refresh_echo: the refresh token file changed"

# 3. 900 KB of error from the refresh endpoint, 200 devices skipped for it:
#    the outputs stay small, the whole text is kept once (cut to 512 bytes).
start_peer api --refuse --refresh huge
write_job huge "http://127.0.0.1:$peer_port"
"$bin" run "$tmp/huge.json" >"$tmp/huge.out" 2>"$tmp/huge.err"
rc=$?
stop_peer
bytes=$(cat "$tmp"/out/huge/* "$tmp/huge.out" "$tmp/huge.err" | wc -c)
longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$tmp/out/huge/results.ndjson")
[ "$rc" -eq 1 ] && grep -qx huge "$tmp/peer.out" && [ "$bytes" -lt 400000 ] && [ "$longest" -lt 1000 ] && ok ||
  fail "huge: exit $rc, $bytes bytes of outputs, longest result line $longest"
grep -q '\[921[0-9]* bytes\]' "$tmp/out/huge/summary.json" && ok || fail "huge: the cut is not said: $(head -c 300 "$tmp/out/huge/summary.json")"
valid_json_files "$tmp"/out/huge/*.json "$tmp"/out/huge/*.ndjson && ok || fail "huge: an output is not valid JSON"

# 4. A refresh endpoint whose new refresh token no request can carry (its
#    access token is fine): refused before either file is touched.
start_peer api --refuse --refresh bad-token
write_job bad_token "http://127.0.0.1:$peer_port"
"$bin" run "$tmp/bad_token.json" >"$tmp/bad_token.out" 2>"$tmp/bad_token.err"
rc=$?
stop_peer
[ "$rc" -eq 1 ] && grep -q 'the refreshed refresh token: the token holds a byte that is not printable ASCII' "$tmp/bad_token.err" &&
  [ "$(cat "$tmp/token")" = "$token" ] && [ "$(cat "$tmp/refresh")" = "$refresh" ] && ok ||
  fail "bad_token: exit $rc, or a token file was replaced: $(tail -2 "$tmp/bad_token.err")"

# 5. A proxy that echoes its credentials (and their Basic form), one that
#    sends 7,000 bytes of status text, one that sends bytes that are not
#    UTF-8: the job fails on the way, its outputs valid and secret-free.
for mode in echo huge invalid; do
  start_peer proxy --status "$mode"
  write_job "proxy_$mode" "http://127.0.0.2:9" \
    "\"proxy\": \"http://op:$proxy_pass@127.0.0.1:$peer_port\", \"timeouts\": {\"unreachable_s\": 1, \"connect_ms\": 2000}"
  "$bin" run "$tmp/proxy_$mode.json" >"$tmp/proxy_$mode.out" 2>"$tmp/proxy_$mode.err"
  rc=$?
  stop_peer
  out="$tmp/out/proxy_$mode"
  event=$mode
  [ "$mode" = echo ] && event=echoed
  [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && grep -qx "$event" "$tmp/peer.out" && ok ||
    fail "proxy_$mode: exit $rc, or the proxy did not do it: $(tail -2 "$tmp/proxy_$mode.err")"
  [ -z "$(leaks $(outputs "proxy_$mode"))" ] && ok || fail "proxy_$mode: a secret in $(leaks $(outputs "proxy_$mode"))"
  valid_json_files "$out"/*.json "$out"/*.ndjson && ok || fail "proxy_$mode: an output is not valid JSON or UTF-8"
  "$py" -c 'import sys; t = open(sys.argv[1], "rb").read().decode("utf-8"); sys.exit("\x1b" in t)' "$tmp/proxy_$mode.err" &&
    ok || fail "proxy_$mode: standard error is not clean UTF-8"
  longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$out/results.ndjson")
  [ "$longest" -lt 1000 ] && ok || fail "proxy_$mode: a result line of $longest bytes"
done

# 6. Waits that must not hold a stop: a refresh endpoint that never answers
#    (timeouts.request_ms is a minute) and a proxy that never answers
#    CONNECT (connect_ms a minute). One SIGTERM ends each run at once.
stopped_at_once() {  # NAME ENDPOINT EXTRA PEER-ARGS... (PEER in ENDPOINT and EXTRA: its port)
  local name=$1 endpoint=$2 extra=$3 pid rc
  shift 3
  start_peer "$@"
  write_job "$name" "${endpoint/PEER/$peer_port}" "${extra/PEER/$peer_port}"
  "$bin" run "$tmp/$name.json" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  wait_event "$tmp/peer.out" stalled 20 || fail "$name: the peer never stalled"
  kill -TERM "$pid"
  # This deadline is the test's; the product's own wait here is a minute.
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "$name: still running 5 s after SIGTERM"
    kill -KILL "$pid"
  else
    ok
  fi
  wait "$pid"
  rc=$?
  stop_peer
  [ "$rc" -eq 4 ] && [ "$(wc -l <"$tmp/out/$name/results.ndjson")" -eq "$n" ] && ok ||
    fail "$name: exit $rc (want 4, cancelled), or not every device has its line: $(tail -2 "$tmp/$name.err")"
}
stopped_at_once refresh_stall "http://127.0.0.1:PEER" '"timeouts": {"request_ms": 60000}' \
  api --refuse --refresh stall
stopped_at_once proxy_stall "http://127.0.0.2:9" \
  '"timeouts": {"connect_ms": 60000}, "proxy": "http://127.0.0.1:PEER"' proxy --status stall

# 7. Device lists that are not text: /dev/zero and a 5 GB sparse file are
#    refused at once (exit 2), not read to their end.
truncate -s 5G "$tmp/sparse.csv"
for list in /dev/zero "$tmp/sparse.csv"; do
  sed "s|\"file\": \"devices.csv\"|\"file\": \"$list\", \"format\": \"csv\"|" "$tmp/echo.json" >"$tmp/nottext.json"
  timeout 20 "$bin" run "$tmp/nottext.json" --dry-run >"$tmp/nottext.out" 2>"$tmp/nottext.err"
  rc=$?
  [ "$rc" -eq 2 ] && grep -q 'byte 0 is a NUL' "$tmp/nottext.err" && ok ||
    fail "not text ($list): exit $rc (124: it never ended): $(tail -2 "$tmp/nottext.err")"
done
rm -f "$tmp/sparse.csv"

# --- delivery acknowledgements ---------------------------------------------
acks_job() {  # NAME ACKS-OBJECT
  cat >"$tmp/$1.json" <<JOB
{"name": "$1", "endpoint": "http://127.0.0.1:$port", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "acks-devices.csv"}, "batch": {"max_devices": 100},
 "rate": {"requests_per_second": ${RPS:-0}}, "connections": 2, "acks": $2}
JOB
}
m=2000
"$bin" generate-devices "$m" "$tmp/acks-devices.csv" 2>/dev/null
emu_acks() {  # FILE: an emulator (plain HTTP, its record) writing REQACKs to FILE
  rm -f "$tmp/emu.err" "$tmp/record.ndjson"
  "$bin" emulate --plain --listen 127.0.0.1:0 --threads 1 --record "$tmp/record.ndjson" \
    --config "$(emulator_config '{"max_devices": 100, "acks": {"ndjson": "'"$1"'", "delay_ms": 5, "delay_random_ms": 20, "fail_ratio": 0.1}}')" \
    2>"$tmp/emu.err" &
  emu_pid=$!
  port=$(serving_port "$tmp/emu.err" http)
  [ -n "$port" ] || { echo "emulator did not start: $(cat "$tmp/emu.err")"; exit 1; }
}
relay() {  # DST ARGS...: the relay from $tmp/emitted.ndjson; its events in $tmp/relay.out
  rm -f "$tmp/relay.stop"
  "$py" "$here/ack_relay.py" "$tmp/emitted.ndjson" "$@" --stop-file "$tmp/relay.stop" \
    >"$tmp/relay.out" 2>"$tmp/relay.err" &
  relay_pid=$!
}
stop_relay() {
  touch "$tmp/relay.stop"
  wait "$relay_pid" 2>/dev/null
  relay_pid=
}

# 8. A missing acks file (a typo) is said at once, nothing sent.
emu_acks "$tmp/emitted.ndjson"
acks_job missing '{"ndjson": "no-such-acks.ndjson", "timeout_s": 600}'
timeout 20 "$bin" run "$tmp/missing.json" >"$tmp/missing.out" 2>"$tmp/missing.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q 'acks.ndjson: .*no-such-acks.ndjson: no such file' "$tmp/missing.err" &&
  [ ! -e "$tmp/out/missing" ] && ok || fail "missing: exit $rc: $(cat "$tmp/missing.err")"

# 9. The acks file rotated (renamed, a new one created) and, in another run,
#    truncated under the reader: followed, said, every outcome joined.
stop_emulator
for how in rotate truncate; do
  rm -f "$tmp/emitted.ndjson" "$tmp/acks-$how.ndjson"*
  touch "$tmp/emitted.ndjson" "$tmp/acks-$how.ndjson"
  emu_acks "$tmp/emitted.ndjson"
  if [ "$how" = rotate ]; then
    relay "$tmp/acks-$how.ndjson" --rotate-after 700
    said=replaced
  else
    relay "$tmp/acks-$how.ndjson" --truncate-after 700 "$tmp/out/$how/deliveries.ndjson" \
      "$tmp/$how.err"
    said=truncated
  fi
  RPS=5 acks_job "$how" "{\"ndjson\": \"acks-$how.ndjson\", \"timeout_s\": 20}"
  "$bin" run "$tmp/$how.json" >"$tmp/$how.out" 2>"$tmp/$how.err"
  rc=$?
  stop_relay
  stop_emulator
  grep -qx "${how%e}ed" "$tmp/relay.out" || fail "$how: the relay never did it: $(cat "$tmp/relay.err")"
  [ "$rc" -eq 1 ] && ok || fail "$how: exit $rc (1: 10% delivery_failed): $(tail -3 "$tmp/$how.err")"
  grep -q "acks-$how.ndjson was $said" "$tmp/$how.err" && ok ||
    fail "$how: the event was not said: $(grep acks "$tmp/$how.err" | head -3)"
  check_exactly_once "$tmp/out/$how/results.ndjson" "$tmp/record.ndjson" "$m" "$how"
  check_deliveries "$tmp/out/$how/results.ndjson" "$tmp/record.ndjson" "$how"
done

# 10. A FIFO whose first writer leaves half a line and closes: the half is
#     dropped and said, not glued to the next writer's first line.
rm -f "$tmp/emitted.ndjson"
touch "$tmp/emitted.ndjson"
mkfifo "$tmp/acks.fifo"
emu_acks "$tmp/emitted.ndjson"
relay "$tmp/acks.fifo" --fifo-partial "$tmp/fifo.err" "an unfinished line"
acks_job fifo '{"ndjson": "acks.fifo", "timeout_s": 20}'
"$bin" run "$tmp/fifo.json" >"$tmp/fifo.out" 2>"$tmp/fifo.err"
rc=$?
stop_relay
stop_emulator
[ "$rc" -eq 1 ] && grep -qx partial "$tmp/relay.out" &&
  grep -q 'an unfinished line of [0-9]* bytes was dropped (its writer closed the FIFO)' "$tmp/fifo.err" && ok ||
  fail "fifo: exit $rc, or the half line not said: $(grep -i 'acks\|fifo' "$tmp/fifo.err" | head -3)"
grep -q '"malformed":0,"refused_lines":1' "$tmp/out/fifo/summary.json" && ok ||
  fail "fifo: the half line was read as a message: $(cat "$tmp/out/fifo/summary.json")"
check_deliveries "$tmp/out/fifo/results.ndjson" "$tmp/record.ndjson" fifo

# 11. One 300 MB line in the acks file: read in slices off the loop, refused
#     with its size, every outcome after it joined; and a SIGTERM while such
#     a line is read ends the run at once.
head -c 300000000 /dev/zero | tr '\0' x >"$tmp/big-acks.ndjson"
echo >>"$tmp/big-acks.ndjson"
emu_acks "$tmp/big-acks.ndjson"
acks_job big '{"ndjson": "big-acks.ndjson", "timeout_s": 20}'
"$bin" run "$tmp/big.json" >"$tmp/big.out" 2>"$tmp/big.err"
rc=$?
stop_emulator
[ "$rc" -eq 1 ] && grep -q 'a line of 300000000 bytes was refused' "$tmp/big.err" && ok ||
  fail "big: exit $rc: $(grep -i 'acks\|fleetcast:' "$tmp/big.err" | tail -3)"
check_deliveries "$tmp/out/big/results.ndjson" "$tmp/record.ndjson" big
head -c 300000000 /dev/zero | tr '\0' x >"$tmp/endless.ndjson"  # no end of line
emu_acks "$tmp/emitted.ndjson"
RPS=1 acks_job endless '{"ndjson": "endless.ndjson", "timeout_s": 20}'
"$bin" run "$tmp/endless.json" >"$tmp/endless.out" 2>"$tmp/endless.err" &
pid=$!
wait_for_lines "$tmp/record.ndjson" 1  # sending has begun
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$pid" 2>/dev/null; then fail "endless: still running 5 s after SIGTERM"; kill -KILL "$pid"; else ok; fi
wait "$pid"
rc=$?
stop_emulator
[ "$rc" -eq 4 ] && ok || fail "endless: exit $rc, want 4: $(tail -2 "$tmp/endless.err")"
rm -f "$tmp/big-acks.ndjson" "$tmp/endless.ndjson"

# 12. The subscription (AMQP) cut as every 97th acceptance arrives, before
#     the broker applies it: the outcome was journalled and synced before
#     the acceptance went out; the message comes again and is a duplicate.
printf 'AK-%s-key\n' "$$" >"$tmp/access_key"
printf 'AS-%s-secret\n' "$$" >"$tmp/access_secret"
rm -f "$tmp/emu.err" "$tmp/record.ndjson"
"$bin" emulate --listen 127.0.0.1:0 --threads 1 --cert-out "$tmp/ca.pem" --record "$tmp/record.ndjson" \
  --config "$(emulator_config '{"max_devices": 100, "acks": {"amqp_listen": "127.0.0.1:0",
     "access_key": "AK-'"$$"'-key", "access_secret_file": "'"$tmp"'/access_secret", "queue": "a.9.cut",
     "disconnect_before_accept": 97, "delay_ms": 5, "delay_random_ms": 50, "fail_ratio": 0.1}}')" 2>"$tmp/emu.err" &
emu_pid=$!
port=$(serving_port "$tmp/emu.err" https)
aport_amqp=$(sed -n 's|.*subscription amqps://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err")
cat >"$tmp/cut.json" <<JOB
{"name": "cut", "endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"},
 "tls": {"ca_file": "ca.pem"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "acks-devices.csv"}, "batch": {"max_devices": 100}, "connections": 2,
 "acks": {"amqp": {"url": "amqps://127.0.0.1:$aport_amqp/quec-open", "access_key_file": "access_key",
   "access_secret_file": "access_secret", "queue": "a.9.cut", "source": "/queues/a.9.cut",
   "hostname": "quec-open"}, "timeout_s": 20}}
JOB
"$bin" run "$tmp/cut.json" >"$tmp/cut.out" 2>"$tmp/cut.err"
rc=$?
stop_emulator
counters=$(grep 'subscription counters' "$tmp/emu.err")
cuts=$(echo "$counters" | sed -n 's/.*"disconnects":\([0-9]*\).*/\1/p')
[ "$rc" -eq 1 ] && [ "${cuts:-0}" -ge 3 ] && ok || fail "cut: exit $rc, ${cuts:-no} cuts: $counters $(tail -2 "$tmp/cut.err")"
check_exactly_once "$tmp/out/cut/results.ndjson" "$tmp/record.ndjson" "$m" cut
check_deliveries "$tmp/out/cut/results.ndjson" "$tmp/record.ndjson" cut
[ "$(summary_count "$tmp/out/cut/summary.json" duplicates)" -ge "$cuts" ] && ok ||
  fail "cut: fewer duplicates than cuts: $(cat "$tmp/out/cut/summary.json")"
[ "$(grep -c '^{"index":[0-9]' "$tmp/out/cut/deliveries.ndjson")" -eq "$(grep -c '"status":"succeeded"' "$tmp/out/cut/results.ndjson")" ] &&
  ok || fail "cut: the journal does not hold one outcome per accepted device"

# 12b. A broker that quotes the client's login and the AccessSecret in its
#     refusal of a queue: refused (exit 2), its reason said, redacted.
"$bin" emulate --listen 127.0.0.1:0 --threads 1 --cert-out "$tmp/ca.pem" \
  --config "$(emulator_config '{"max_devices": 100, "acks": {"amqp_listen": "127.0.0.1:0",
     "access_key": "AK-'"$$"'-key", "access_secret_file": "'"$tmp"'/access_secret", "queue": "a.9.cut",
     "echo_login": 1}}')" 2>"$tmp/emu.err" &
emu_pid=$!
port=$(serving_port "$tmp/emu.err" https)
aport_amqp=$(sed -n 's|.*subscription amqps://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err")
sed "s|127.0.0.1:[0-9]*/quec-open|127.0.0.1:$aport_amqp/quec-open|; s|https://127.0.0.1:[0-9]*\"|https://127.0.0.1:$port\"|; s|a.9.cut|a.9.other|g; s|\"name\": \"cut\"|\"name\": \"leaky_broker\"|" \
  "$tmp/cut.json" >"$tmp/leaky_broker.json"
"$bin" run "$tmp/leaky_broker.json" >"$tmp/leaky_broker.out" 2>"$tmp/leaky_broker.err"
rc=$?
stop_emulator
[ "$rc" -eq 2 ] && grep -q 'no such queue for ver=1&auth_mode=accessKey&sign_method=sha256&access_key=\[redacted\]&timestamp=[0-9]* (secret \[redacted\])' "$tmp/leaky_broker.err" &&
  ok || fail "leaky_broker: exit $rc: $(cat "$tmp/leaky_broker.err")"
grep -rqF -e "AK-$$-key" -e "AS-$$-secret" "$tmp/leaky_broker.err" "$tmp/leaky_broker.out" &&
  fail "leaky_broker: a credential appears" || ok

# --- the daemon's admin port, as a web page and a flood would use it --------
spool=$tmp/spool
mkdir -p "$spool/incoming"
cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "127.0.0.1:0", "max_jobs": 1}
CONF
daemon_up "$spool" "$tmp/daemon.json"
raw() {  # HOST [HEADERS...] -- METHOD PATH -> the status code
  local host=$1 headers="" method path
  shift
  while [ "$1" != -- ]; do headers+="$1"$'\r\n'; shift; done
  method=$2 path=$3
  exec 3<>"/dev/tcp/127.0.0.1/$aport" || return 1
  printf '%s %s HTTP/1.0\r\nHost: %s\r\n%s\r\n' "$method" "$path" "$host" "$headers" >&3
  timeout 10 head -1 <&3 | tr -d '\r' | cut -d' ' -f2
  exec 3<&-
}
# 13. DNS rebinding: the attacker's name resolves to 127.0.0.1; its page
#     sends Host and Origin of its own choosing, and may add any header.
evil="rebind.evil.example:$aport"
[ "$(raw "$evil" "Origin: http://$evil" -- GET /jobs)" = 403 ] && ok || fail "rebinding: GET /jobs served"
[ "$(raw "$evil" "Origin: http://$evil" -- GET /)" = 403 ] && ok || fail "rebinding: the status page served"
[ "$(raw "$evil" "Origin: http://$evil" "X-Fleetcast-Admin: 1" -- POST /jobs/x/cancel)" = 403 ] && ok ||
  fail "rebinding: a cancel taken"
[ "$(raw "$evil" -- GET /metrics)" = 200 ] && [ "$(raw "$evil" -- GET /healthz)" = 200 ] && ok ||
  fail "rebinding: health and metrics must stay open"
# A cross-site page's simple POST (no custom header), and one with another Origin.
[ "$(raw "127.0.0.1:$aport" -- POST /jobs/x/cancel)" = 403 ] && ok || fail "a POST without X-Fleetcast-Admin was taken"
[ "$(raw "127.0.0.1:$aport" "Origin: https://evil.example" "X-Fleetcast-Admin: 1" -- POST /jobs/x/cancel)" = 403 ] && ok ||
  fail "a cross-site POST was taken"
# The operator's own client: a literal Host and the header (404: no such job).
[ "$(raw "127.0.0.1:$aport" "X-Fleetcast-Admin: 1" -- POST /jobs/x/cancel)" = 404 ] && ok ||
  fail "the operator's cancel was refused"
[ "$(raw "localhost:$aport" -- GET /jobs)" = 200 ] && ok || fail "GET /jobs on localhost refused"

# 14. 64 idle connections: the 65th is let go at once, jobs are still
#     claimed meanwhile, and the idle ones are closed at the deadline.
"$py" - "$aport" "$spool" >"$tmp/flood.out" 2>&1 <<'PY' &
import os, socket, sys, time
port, spool = int(sys.argv[1]), sys.argv[2]
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
time.sleep(0.5)  # let the server count them (the cap is checked as each is accepted)
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(5)
print("extra-closed" if extra.recv(1) == b"" else "extra-served", flush=True)
# A job dropped now is claimed although every admin slot is taken.
open(os.path.join(spool, "incoming", "during-flood.json"), "w").write("{}")
for s in held:
    s.settimeout(20)
closed = sum(1 for s in held if s.recv(1) == b"")
print(f"idle-closed {closed}", flush=True)
PY
flood_pid=$!
for _ in $(seq 400); do [ -e "$spool/failed/during-flood" ] && break; sleep 0.05; done
[ -e "$spool/failed/during-flood" ] && ok || fail "flood: a job dropped during the flood was not taken"
wait "$flood_pid"
grep -qx extra-closed "$tmp/flood.out" && grep -qx 'idle-closed 64' "$tmp/flood.out" && ok ||
  fail "flood: $(cat "$tmp/flood.out")"
[ "$(raw "127.0.0.1:$aport" -- GET /healthz)" = 200 ] && ok || fail "flood: the port does not answer after it"

# 15. A job whose server echoes the token and whose refresh endpoint echoes
#     the refresh token: nothing of them in the daemon's log, the folder,
#     /jobs or /metrics.
start_peer api --refuse --refresh echo
cp "$tmp/token" "$tmp/refresh" "$tmp/devices.csv" "$spool/incoming/"
cat >"$spool/incoming/.leaky.tmp" <<JOB
{"endpoint": "http://127.0.0.1:$peer_port", "auth": {"token_file": "token", "refresh_token_file": "refresh"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "rate": {"requests_per_second": 0}, "connections": 1}
JOB
mv "$spool/incoming/.leaky.tmp" "$spool/incoming/leaky.json"
for _ in $(seq 600); do [ -e "$spool/failed/leaky/summary.json" ] && break; sleep 0.05; done
stop_peer
admin_http GET /jobs >"$tmp/jobs.json"
admin_http GET /metrics >"$tmp/metrics.txt"
[ -e "$spool/failed/leaky/summary.json" ] && grep -qx echoed "$tmp/peer.out" &&
  grep -q '\[redacted\]' "$tmp/jobs.json" && ok || fail "leaky: the job did not fail as planned, or /jobs redacted nothing"
[ -z "$(leaks "$spool/failed/leaky" "$tmp/daemon.log" "$tmp/jobs.json" "$tmp/metrics.txt")" ] && ok ||
  fail "leaky: a secret in $(leaks "$spool/failed/leaky" "$tmp/daemon.log" "$tmp/jobs.json" "$tmp/metrics.txt")"

# 16. A job file larger than 16 MiB is refused with its reason.
{ printf '{"name": "oversized", "x": "'; head -c 17000000 /dev/zero | tr '\0' a; printf '"}'; } >"$spool/incoming/.big.tmp"
mv "$spool/incoming/.big.tmp" "$spool/incoming/oversized.json"
for _ in $(seq 400); do [ -e "$spool/failed/oversized/reason.txt" ] && break; sleep 0.05; done
grep -q 'larger than 16 MiB' "$spool/failed/oversized/reason.txt" 2>/dev/null && ok ||
  fail "oversized: $(cat "$spool/failed/oversized/reason.txt" 2>&1)"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
finish
