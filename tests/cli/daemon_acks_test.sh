#!/bin/bash
# Delivery acknowledgements in `fleetcast daemon`, over TLS against
# `fleetcast emulate` on loopback playing the AMQP 1.0 subscription: two
# jobs at once with the same subscription and credentials share one
# connection; every device's delivery outcome matches the emulator's
# record device by device under loss, failures, duplicates, reordering and
# acks that come before their answer; the metrics count the outcomes and
# the ack latency; SIGKILL of the daemon during the wait (the subscription
# dropping every 400 messages too), then a restart, sends nothing again and
# completes the outcomes, and so does SIGTERM (the job left for the
# restart); a refused secret fails its job with nothing sent;
# no token or secret shows anywhere.
# usage: daemon_acks_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
daemon_pid=
source "$(dirname "$0")/lib.sh"
clean_up_daemon_on_exit
n=3000
spool=$tmp/spool
secret="Bearer SECRET-$$-not-for-output"
amqp_secret="AS-$$-not-for-output"
mkdir -p "$spool/incoming"
printf '%s\n' "$secret" >"$spool/incoming/token"
printf 'AK-%s\n' "$$" >"$tmp/access_key"
printf '%s\n' "$amqp_secret" >"$tmp/access_secret"
printf 'wrong-%s\n' "$$" >"$tmp/wrong_secret"
"$bin" generate-devices "$n" "$tmp/fleet.csv" --gateway-every 0 2>/dev/null
for s in 1 2 3 4; do  # four fleets, no device in two of them
  sed "2,\$ s/^\([^,]*\),/\1,f$s-/" "$tmp/fleet.csv" >"$spool/incoming/fleet$s.csv"
done
amqp_port() { sed -n 's|.*subscription amqps://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err"; }
emulator_with() {  # ACK-FAULTS (members of the emulator's acks object)
  start_tls_emulator '{"max_devices": 100, "device_failure_ratio": 0.05, "latency_ms": {"fixed": 150},
    "acks": {"amqp_listen": "127.0.0.1:0", "access_key": "AK-'"$$"'",
             "access_secret_file": "'"$tmp"'/access_secret", "queue": "a.42.fleetcast", '"$1"'}}'
}
start_daemon() {
  cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "127.0.0.1:0", "max_jobs": 3, "drain_timeout_s": 10,
 "endpoints": {"https://127.0.0.1:$port": {"connections": 6, "requests_per_second": 0}}}
CONF
  daemon_up "$spool" "$tmp/daemon.json"
}
drop_job() {  # NAME DEVICES SECRET-FILE TIMEOUT-S
  cat >"$spool/incoming/.$1.tmp" <<JOB
{"endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"},
 "tls": {"ca_file": "$tmp/ca.pem"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "$2"}, "batch": {"max_devices": 100},
 "rate": {"requests_per_second": 0}, "connections": 2,
 "acks": {"amqp": {"url": "amqps://127.0.0.1:$(amqp_port)/quec-open",
   "access_key_file": "$tmp/access_key", "access_secret_file": "$tmp/$3",
   "queue": "a.42.fleetcast", "source": "/queues/a.42.fleetcast", "hostname": "quec-open"},
   "timeout_s": $4}}
JOB
  mv "$spool/incoming/.$1.tmp" "$spool/incoming/$1.json"
}
wait_for() {  # FOLDER/NAME: 60 s at most
  for _ in $(seq 600); do [ -e "$spool/$1/summary.json" ] || [ -e "$spool/$1/reason.txt" ] && return 0; sleep 0.1; done
  return 1
}
stop_daemon() {  # LABEL: SIGTERM, and a clean exit (no sanitizer report, nothing left)
  kill -TERM "$daemon_pid"
  wait "$daemon_pid"
  local rc=$?
  daemon_pid=
  [ "$rc" -eq 0 ] && ok || fail "$1: the daemon exited $rc after SIGTERM: $(grep -v '^{' "$tmp/daemon.log" | head -5)"
}
# A daemon started again finishes JOB (left in running/) without sending
# anything again; every device's outcome as the emulator recorded it.
restart_and_check() {  # JOB
  start_daemon
  wait_for "done/$1" || fail "$1: did not finish after the restart: $(tail -3 "$tmp/daemon.log")"
  stop_daemon "$1"
  stop_emulator
  local out=$spool/done/$1
  grep -q '"requests":0}]' "$out/summary.json" && ok || fail "$1: requests were sent again: $(cat "$out/summary.json")"
  [ "$(record_keys "$tmp/record.ndjson" | uniq -d | wc -l)" -eq 0 ] && ok || fail "$1: a device was commanded twice"
  check_exactly_once "$out/results.ndjson" "$tmp/record.ndjson" "$n" "$1"
  check_deliveries "$out/results.ndjson" "$tmp/record.ndjson" "$1"
  [ "$(summary_count "$out/summary.json" waiting)" = 0 ] && ok || fail "$1: devices still waiting"
}
metric() { echo "$metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

# 1. Two jobs at once, one subscription between them; loss, failures,
# duplicates, reordering and early acks; then a job whose secret is wrong.
emulator_with '"delay_ms": 10, "delay_random_ms": 400, "fail_ratio": 0.1, "loss_ratio": 0.08,
  "duplicate_ratio": 0.2, "early_ratio": 0.25'
amqp1=$(amqp_port)
start_daemon
drop_job one fleet1.csv access_secret 3
drop_job two fleet2.csv access_secret 3
jobs_show '"acks":\{"phase":"waiting"' && ok || fail "/jobs never showed a job waiting for its acks"
wait_for done/one && wait_for done/two || fail "the jobs did not finish: $(ls -R "$spool" | head -30)"
drop_job bad fleet3.csv wrong_secret 3
wait_for failed/bad || fail "the job with a wrong secret did not end"
grep -q 'refused us (amqp:unauthorized-access' "$spool/failed/bad/reason.txt" 2>/dev/null &&
  grep -q 'nothing was sent' "$spool/failed/bad/reason.txt" && ok ||
  fail "a refused secret: $(cat "$spool/failed/bad/reason.txt" 2>&1)"
metrics=$(admin_http GET /metrics | tr -d '\r' | sed '1,/^$/d')
echo "$metrics" | awk '
  /^#/ { next }
  !/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (\+Inf|-?[0-9.]+(e[-+]?[0-9]+)?)$/ { print "bad line: " $0; bad++ }
  END { exit bad > 0 }' && ok || fail "/metrics does not parse"
stop_daemon "two jobs"
stop_emulator
counters=$(grep 'subscription counters' "$tmp/emu.err")
# One connection for the two jobs; the refused job's login on its own.
made=$(echo "$counters" | sed -n 's/.*"connections":\([0-9]*\),"logins_refused":\([0-9]*\).*/\1 \2/p')
[ "${made% *}" -eq $((${made#* } + 1)) ] && [ "${made#* }" -ge 1 ] && ok ||
  fail "two jobs with one subscription did not share one connection: $counters"
[ "$(grep -c '"deviceKey":"f3-' "$tmp/record.ndjson")" -eq 0 ] && ok || fail "bad: devices were commanded"
for j in one two; do
  out=$spool/done/$j
  grep -q '"state":"completed"' "$out/summary.json" && ok || fail "$j: $(cat "$out/summary.json")"
  check_exactly_once "$out/results.ndjson" "$tmp/record.ndjson" "$n" "$j"
  check_deliveries "$out/results.ndjson" "$tmp/record.ndjson" "$j"
  [ "$(summary_count "$out/summary.json" waiting)" = 0 ] && ok || fail "$j: devices still waiting"
done
sum() { echo $(($(summary_count "$spool/done/one/summary.json" "$1") + $(summary_count "$spool/done/two/summary.json" "$1"))); }
for o in delivered delivery_failed no_ack; do
  [ "$(metric "fleetcast_deliveries_total{outcome=\"$o\"}")" = "$(sum $o)" ] && ok ||
    fail "metric $o: $(metric "fleetcast_deliveries_total{outcome=\"$o\"}"), summaries $(sum $o)"
done
[ "$(metric fleetcast_ack_latency_seconds_count)" = $(($(sum delivered) + $(sum delivery_failed))) ] && ok ||
  fail "ack latency count: $(metric fleetcast_ack_latency_seconds_count)"
label="127.0.0.1:$amqp1/queues/a.42.fleetcast"
[ "$(metric "fleetcast_subscription_connections_total{subscription=\"$label\"}")" = 1 ] && ok ||
  fail "subscription connections metric: $(echo "$metrics" | grep subscription_connections)"
[ "$(metric 'fleetcast_subscription_messages_total{subscription="'"$label"'",kind="held_then_routed"}')" -gt 0 ] &&
  [ "$(metric 'fleetcast_ack_messages_total{kind="early"}')" -gt 0 ] &&
  [ "$(metric 'fleetcast_ack_messages_total{kind="duplicate"}')" -gt 0 ] && ok ||
  fail "early and duplicate acks not counted: $(echo "$metrics" | grep -E 'ack_messages|subscription_messages')"
[ "$(sum early)" -gt 0 ] && ok || fail "no early acks in the summaries"
grep -c '"event":"job_waiting_for_acks"' "$tmp/daemon.log" | grep -qx 2 && ok || fail "job_waiting_for_acks not logged for both jobs"

# 2. SIGKILL during the wait (acks 2 to 3 s after their command, the
# subscription dropping every 400 messages), then a restart.
emulator_with '"delay_ms": 2000, "delay_random_ms": 1000, "fail_ratio": 0.1, "loss_ratio": 0.05,
  "duplicate_ratio": 0.1, "disconnect_after_messages": 400'
start_daemon
drop_job killed fleet4.csv access_secret 6
for _ in $(seq 400); do grep -q '"job":"killed","event":"job_waiting_for_acks"' "$tmp/daemon.log" && break; sleep 0.05; done
sleep 0.5
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=
run=$spool/running/killed
decided=$(grep -c '^{"index":[0-9]' "$run/deliveries.ndjson")
[ "$(wc -l <"$run/results.ndjson")" -eq "$n" ] && [ "$decided" -lt "$(grep -c '"status":"succeeded"' "$run/results.ndjson")" ] && ok ||
  fail "killed: not killed during the wait ($decided outcomes already)"
restart_and_check killed
grep 'subscription counters' "$tmp/emu.err" | grep -q '"disconnects":[1-9]' && ok ||
  fail "the subscription did not drop: $(grep 'subscription counters' "$tmp/emu.err")"

# 3. SIGTERM during the wait: the daemon drains at once (exit 0), the job
# stays in running/ with what still waits; after a restart it completes.
emulator_with '"delay_ms": 2000, "delay_random_ms": 1000, "fail_ratio": 0.1, "loss_ratio": 0.05'
start_daemon
drop_job drained fleet3.csv access_secret 6
for _ in $(seq 400); do grep -q '"job":"drained","event":"job_waiting_for_acks"' "$tmp/daemon.log" && break; sleep 0.05; done
t0=$(date +%s)
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && [ $(($(date +%s) - t0)) -le 5 ] && [ -d "$spool/running/drained" ] &&
  grep -q '"job":"drained","event":"job_left_for_resume"' "$tmp/daemon.log" && ok ||
  fail "drained during the wait: exit $rc, running/: $(ls "$spool/running")"
restart_and_check drained

if grep -rqF --exclude=token -e "${secret#Bearer }" -e "$amqp_secret" "$spool" "$tmp/daemon.log"; then
  fail "a token or the AccessSecret shows in an output or the log"
else
  ok
fi
finish
