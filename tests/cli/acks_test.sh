#!/bin/bash
# Delivery acknowledgements end to end, over TLS against `fleetcast emulate`
# on loopback playing the subscription (REQACKs as NDJSON, and over AMQP 1.0
# with its SASL login): every device's delivery outcome is checked against
# the emulator's record, device by device, under loss, duplicates,
# reordering, early acks, failures and a subscription that drops mid-run;
# the same through a FIFO; SIGKILL during the wait and --resume sends
# nothing and completes the outcomes; a refused login or queue stops the
# run before anything is sent; no token or secret ever shows.
# usage: acks_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
emu_pid=
tail_pid=
source "$(dirname "$0")/lib.sh"
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
secret="Bearer SECRET-$$-not-for-output"
printf '%s\n' "$secret" >"$tmp/token"
n=3000
"$bin" generate-devices "$n" "$tmp/devices.csv" 2>/dev/null

printf 'AK-%s\n' "$$" >"$tmp/access_key"
amqp_secret="AS-$$-not-for-output"
printf '%s\n' "$amqp_secret" >"$tmp/access_secret"
amqp_port() { sed -n 's|.*subscription amqps://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err"; }
write_job() {  # NAME ACKS-OBJECT
  cat >"$tmp/$1.json" <<JOB
{"name": "$1", "endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"},
 "tls": {"ca_file": "ca.pem"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 100},
 "rate": {"requests_per_second": 0}, "connections": 2,
 "acks": $2}
JOB
}
# A job against the emulator running now, its exit status, then (the
# emulator stopped, its record complete) every device checked.
run_checked() {  # NAME ACKS-OBJECT WANT-EXIT
  write_job "$1" "$2"
  "$bin" run "$tmp/$1.json" >"$tmp/$1.out" 2>"$tmp/$1.err"
  local rc=$?
  [ "$rc" -eq "$3" ] && ok || fail "$1: exit $rc, want $3: $(tail -3 "$tmp/$1.err")"
  stop_emulator
  check_exactly_once "$tmp/out/$1/results.ndjson" "$tmp/record.ndjson" "$n" "$1"
  check_deliveries "$tmp/out/$1/results.ndjson" "$tmp/record.ndjson" "$1"
}

# 1. Loss, failures, duplicates, reordering (random delays), early acks (in
# the file before the answer, which waits 150 ms), per-device failures.
faults='{"max_devices": 100, "device_failure_ratio": 0.05, "latency_ms": {"fixed": 150},
  "acks": {"ndjson": "'"$tmp"'/acks.ndjson", "delay_ms": 10, "delay_random_ms": 400,
           "fail_ratio": 0.1, "loss_ratio": 0.08, "duplicate_ratio": 0.2, "early_ratio": 0.25}}'
start_tls_emulator "$faults"
run_checked faults '{"ndjson": "acks.ndjson", "timeout_s": 2}' 1  # 1: some not delivered
out="$tmp/out/faults"
want_lost=$(grep -c '"outcome":"succeeded".*"ack":"lost"' "$tmp/record.ndjson")
want_fail=$(grep -c '"outcome":"succeeded".*"ack":"fail"' "$tmp/record.ndjson")
[ "$(summary_count "$out/summary.json" no_ack)" = "$want_lost" ] && ok ||
  fail "faults: summary no_ack $(summary_count "$out/summary.json" no_ack), record lost $want_lost"
[ "$(summary_count "$out/summary.json" delivery_failed)" = "$want_fail" ] && ok ||
  fail "faults: summary delivery_failed, record fail $want_fail"
for k in duplicates early; do
  [ "$(summary_count "$out/summary.json" $k)" -gt 0 ] && ok || fail "faults: no $k counted: $(cat "$out/summary.json")"
done
grep -q 'deliveries: .* delivered' "$tmp/faults.err" && ok || fail "faults: no deliveries line"
grep -q 'waiting for [0-9]* acknowledgements' "$tmp/faults.err" && ok || fail "faults: the wait was not shown"
# The journal: one outcome line per accepted device, and the acks that came
# before their ticket, kept as they came ("index":null) so a crash keeps them.
[ "$(grep -c '^{"index":[0-9]' "$out/deliveries.ndjson")" -eq "$(grep -c '"status":"succeeded"' "$out/results.ndjson")" ] &&
  [ "$(grep -c '^{"index":null,"message":' "$out/deliveries.ndjson")" -gt 0 ] &&
  ok || fail "faults: the journal does not hold one line per accepted device and the early acks"

# 2. The same acks through a FIFO (tail -f feeds it): the same outcomes.
mkfifo "$tmp/acks.fifo"
start_tls_emulator "${faults//acks.ndjson/acks2.ndjson}"
touch "$tmp/acks2.ndjson"
tail -n +1 -f "$tmp/acks2.ndjson" >"$tmp/acks.fifo" &
tail_pid=$!
write_job fifo '{"ndjson": "acks.fifo", "timeout_s": 2}'
"$bin" run "$tmp/fifo.json" >/dev/null 2>"$tmp/fifo.err"
kill "$tail_pid" 2>/dev/null
tail_pid=
stop_emulator
check_exactly_once "$tmp/out/fifo/results.ndjson" "$tmp/record.ndjson" "$n" fifo
check_deliveries "$tmp/out/fifo/results.ndjson" "$tmp/record.ndjson" fifo

# 3. SIGKILL while waiting for acks (each comes 2 to 3 s after its
# command), then --resume: nothing sent again, every outcome completed.
start_tls_emulator '{"max_devices": 100, "acks": {"ndjson": "'"$tmp"'/acks3.ndjson",
  "delay_ms": 2000, "delay_random_ms": 1000, "fail_ratio": 0.1, "loss_ratio": 0.05}}'
write_job killed '{"ndjson": "acks3.ndjson", "timeout_s": 6}'
"$bin" run "$tmp/killed.json" >/dev/null 2>"$tmp/killed.err" &
run_pid=$!
for _ in $(seq 200); do
  grep -q 'waiting for' "$tmp/killed.err" && break
  sleep 0.05
done
sleep 0.3
kill -KILL "$run_pid"
wait "$run_pid" 2>/dev/null
out="$tmp/out/killed"
decided=$(grep -c '^{"index":[0-9]' "$out/deliveries.ndjson")
[ "$(wc -l <"$out/results.ndjson")" -eq "$n" ] && [ "$decided" -lt "$n" ] && ok ||
  fail "killed: not killed during the wait ($decided outcomes already): $(cat "$tmp/killed.err")"
"$bin" run "$tmp/killed.json" --resume >/dev/null 2>"$tmp/resumed.err"
rc=$?
[ "$rc" -eq 1 ] && ok || fail "resumed: exit $rc, want 1 (some lost): $(tail -3 "$tmp/resumed.err")"
grep -q "resuming: [0-9]* devices wait for their acknowledgement" "$tmp/resumed.err" && ok ||
  fail "resumed: no word of the waiting devices: $(cat "$tmp/resumed.err")"
stop_emulator
# This run (the last of runs) sent no request; the record has each device once.
grep -q '"requests":0}]' "$out/summary.json" && ok || fail "resumed: requests were sent: $(cat "$out/summary.json")"
[ "$(record_keys "$tmp/record.ndjson" | uniq -d | wc -l)" -eq 0 ] && ok || fail "resumed: a device was commanded twice"
check_exactly_once "$out/results.ndjson" "$tmp/record.ndjson" "$n" resumed
check_deliveries "$out/results.ndjson" "$tmp/record.ndjson" resumed
[ "$(summary_count "$out/summary.json" waiting)" = 0 ] && ok || fail "resumed: devices still waiting"

# 4. Over AMQP 1.0 (TLS, SASL PLAIN with the documented login), the queue
# by RabbitMQ 4's address form: the same faults, and the subscription drops
# after every 400 messages sent on a connection (those not yet accepted
# come again after the reconnect).
amqp_faults='{"max_devices": 100, "device_failure_ratio": 0.05, "latency_ms": {"fixed": 150},
  "acks": {"amqp_listen": "127.0.0.1:0", "access_key": "AK-'"$$"'",
           "access_secret_file": "'"$tmp"'/access_secret", "queue": "a.42.fleetcast",
           "disconnect_after_messages": 400, "delay_ms": 10, "delay_random_ms": 400,
           "fail_ratio": 0.1, "loss_ratio": 0.08, "duplicate_ratio": 0.2, "early_ratio": 0.25}}'
amqp_acks() {  # SECRET-FILE QUEUE -> the job's acks object
  printf '{"amqp": {"url": "amqps://127.0.0.1:%s/quec-open", "access_key_file": "access_key",
    "access_secret_file": "%s", "queue": "%s", "source": "/queues/%s", "hostname": "quec-open"},
    "timeout_s": 8}' "$(amqp_port)" "$1" "$2" "$2"
}
start_tls_emulator "$amqp_faults"
run_checked amqp "$(amqp_acks access_secret a.42.fleetcast)" 1
out="$tmp/out/amqp"
counters=$(grep 'subscription counters' "$tmp/emu.err")
disconnects=$(echo "$counters" | sed -n 's/.*"disconnects":\([0-9]*\).*/\1/p')
redelivered=$(echo "$counters" | sed -n 's/.*"redelivered":\([0-9]*\).*/\1/p')
refused=$(echo "$counters" | sed -n 's/.*"logins_refused":\([0-9]*\).*/\1/p')
[ "${disconnects:-0}" -ge 3 ] && [ "${redelivered:-0}" -gt 0 ] && [ "$refused" = 0 ] && ok ||
  fail "amqp: the subscription did not drop and redeliver as planned: $counters"
[ "$(summary_count "$out/summary.json" early)" -gt 0 ] && ok || fail "amqp: no early acks counted"

# 5. A secret the subscription refuses, a queue it does not have: refused
# before anything is sent (exit 2), the folder left unused.
start_tls_emulator "$amqp_faults"
printf 'wrong\n' >"$tmp/wrong_secret"
write_job refused "$(amqp_acks wrong_secret a.42.fleetcast)"
"$bin" run "$tmp/refused.json" >/dev/null 2>"$tmp/refused.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "refused us (amqp:unauthorized-access" "$tmp/refused.err" &&
  grep -q "nothing was sent" "$tmp/refused.err" && ok ||
  fail "refused: exit $rc: $(cat "$tmp/refused.err")"
write_job noqueue "$(amqp_acks access_secret a.43.other)"
"$bin" run "$tmp/noqueue.json" >/dev/null 2>"$tmp/noqueue.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "receiving link on /queues/a.43.other: amqp:not-found" "$tmp/noqueue.err" &&
  ok || fail "noqueue: exit $rc: $(cat "$tmp/noqueue.err")"
stop_emulator
[ ! -s "$tmp/record.ndjson" ] && [ ! -e "$tmp/out/refused" ] && [ ! -e "$tmp/out/noqueue" ] && ok ||
  fail "refused: something was sent, or the folder was left"

# 6. A rehearsal: --emulate plays the AMQP subscription with the job's own
# credentials (from the environment here).
cat >"$tmp/rehearse.json" <<JOB
{"name": "rehearse", "endpoint": "https://iot-api.acceleronix.io", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 100}, "rate": {"requests_per_second": 0},
 "acks": {"amqp": {"url": "amqps://iot-amqp.acceleronix.io:5671/quec-open",
   "access_key_env": "FC_TEST_AK", "access_secret_env": "FC_TEST_AS", "queue": "a.7.rehearsal"},
   "timeout_s": 10}}
JOB
FC_TEST_AK=key FC_TEST_AS="$amqp_secret" "$bin" run "$tmp/rehearse.json" --emulate >"$tmp/rehearse.out" 2>"$tmp/rehearse.err"
rc=$?
delivered=$(summary_count "$tmp/out/rehearse/summary.json" delivered)
[ "$rc" -eq 0 ] && [ "${delivered:-0}" -eq "$n" ] && ok ||
  fail "rehearse: exit $rc, ${delivered:-no} delivered: $(tail -3 "$tmp/rehearse.err")"

# 7. A canary whose commands the devices never get (every REQACK "fail"):
# it waits for its acks, is judged on them, and stops the rollout with only
# the canary commanded (exit 3).
start_tls_emulator '{"max_devices": 100, "acks": {"ndjson": "'"$tmp"'/acks7.ndjson",
  "delay_ms": 50, "delay_random_ms": 200, "fail_ratio": 1}}'
cat >"$tmp/canary.json" <<JOB
{"name": "canary", "endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"},
 "tls": {"ca_file": "ca.pem"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 50}, "rate": {"requests_per_second": 0},
 "acks": {"ndjson": "acks7.ndjson", "timeout_s": 10},
 "rollout": {"canary_devices": 100, "canary_wait_for": "ack", "abort_failure_ratio": 0.1,
             "abort_on": ["device_failed", "delivery_failed", "no_ack"]}}
JOB
"$bin" run "$tmp/canary.json" >"$tmp/canary.out" 2>"$tmp/canary.err"
rc=$?
stop_emulator
# The canary: about 100 devices, a sample of the list (its dry run counts it).
"$bin" run --dry-run "$tmp/canary.json" >"$tmp/canary.plan" 2>&1
c=$(sed -n 's/^  canary  *\([0-9]*\) devices in .*/\1/p' "$tmp/canary.plan")
[ -n "$c" ] && [ "$c" -ge 70 ] && [ "$c" -le 130 ] && ok || fail "canary: the dry run counts '$c' canary devices, want about 100"
[ "$rc" -eq 3 ] && grep -q "aborted by the canary: $c of its $c devices failed" "$tmp/canary.err" && ok ||
  fail "canary: exit $rc: $(cat "$tmp/canary.out"; tail -3 "$tmp/canary.err")"
[ "$(wc -l <"$tmp/record.ndjson")" -eq "$c" ] && ok ||
  fail "canary: $(wc -l <"$tmp/record.ndjson") devices commanded, want only the canary's $c"
check_exactly_once "$tmp/out/canary/results.ndjson" "$tmp/record.ndjson" "$n" canary
[ "$(grep -c '"delivery":"delivery_failed"' "$tmp/out/canary/results.ndjson")" -eq "$c" ] &&
  [ "$(grep -c '"reason":"aborted"' "$tmp/out/canary/results.ndjson")" -eq $((n - c)) ] && ok ||
  fail "canary: want $c delivery_failed and the rest aborted"

# No token, AccessSecret or SASL login in any output.
if grep -rqF -e "${secret#Bearer }" -e "$amqp_secret" "$tmp/out" "$tmp"/*.err "$tmp"/*.out; then
  fail "a credential appears in an output"
else
  ok
fi
grep -rqE 'sign_method=sha256' "$tmp/out" "$tmp"/*.err "$tmp"/*.out &&
  fail "the SASL login appears in an output" || ok
finish
