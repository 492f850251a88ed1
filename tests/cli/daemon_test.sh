#!/bin/bash
# End-to-end checks of `fleetcast daemon` against `fleetcast emulate` on
# loopback: several jobs at once checked device by device against the
# emulator's record, an invalid job, /metrics parsed, /healthz and /jobs, a
# cancel file and an admin cancel, SIGKILL mid-job then a restart, SIGTERM
# within its deadline then a restart, SIGHUP, one daemon per spool,
# `fleetcast run --shard I/4` in 4 processes covering one job exactly once,
# and an aborted job resumed, then retried, on request.
# The token shows in no log or output. awk and bash's /dev/tcp only.
# usage: daemon_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
daemon_pid=
source "$(dirname "$0")/lib.sh"
clean_up_daemon_on_exit
n=20000
secret="Bearer SECRET-$$-do-not-print"
spool=$tmp/spool

write_config() {  # extra members
  cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "127.0.0.1:0", "max_jobs": 3, "drain_timeout_s": 10,
 "endpoints": {"http://127.0.0.1:$port": {"connections": 6, "requests_per_second": 0}}${1:+, $1}}
CONF
}
start_daemon() { daemon_up "$spool" "$tmp/daemon.json"; }
http() {  # METHOD PATH -> the whole answer on stdout
  exec 3<>"/dev/tcp/127.0.0.1/$aport" || return 1
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Fleetcast-Admin: 1\r\n\r\n' "$1" "$2" >&3
  cat <&3
  exec 3<&-
}
drop_job() {  # NAME DEVICES [extra members]: written aside, renamed into place
  cat >"$spool/incoming/.$1.tmp" <<JOB
{"endpoint": "http://127.0.0.1:$port", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "$2"}, "batch": {"max_devices": 100},
 "rate": {"requests_per_second": 0}, "connections": ${CONNS:-2},
 "retry": {"max_attempts": 5, "base_delay_ms": 10, "max_delay_ms": 100}${3:+, $3}}
JOB
  mv "$spool/incoming/.$1.tmp" "$spool/incoming/$1.json"
}
wait_finished() {  # COUNT: entries in done/ and failed/
  for _ in $(seq 600); do
    [ "$(ls "$spool/done" "$spool/failed" | grep -cv -e : -e '^$')" -ge "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
lines_of() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
mkdir -p "$spool/incoming"
printf '%s\n' "$secret" >"$spool/incoming/token"
"$bin" generate-devices "$n" "$tmp/fleet.csv" --gateway-every 0 2>/dev/null
for s in 1 2 3 4 5 6; do  # six fleets, no device in two of them
  sed "2,\$ s/^\([^,]*\),/\1,f$s-/" "$tmp/fleet.csv" >"$spool/incoming/fleet$s.csv"
done

# 1. Three jobs at once and an invalid one; metrics, health, jobs.
start_emulator --record "$tmp/record1.ndjson" --config "$(emulator_config '{"latency_ms": 5}')"
write_config
start_daemon
"$bin" daemon --spool "$spool" >"$tmp/second.out" 2>&1
[ $? -eq 2 ] && grep -q 'another daemon serves this spool' "$tmp/second.out" && ok || fail "a second daemon on one spool: $(cat "$tmp/second.out")"
drop_job one fleet1.csv
drop_job two fleet2.csv
drop_job three fleet3.csv
printf '{"endpoint": "http://127.0.0.1:%s", "auth": {"token_file": "token"}, "command": {"type": 2, "data": "[]", "qos": 7}, "devices": {"file": "fleet1.csv"}}\n' "$port" >"$spool/incoming/.broken.tmp"
mv "$spool/incoming/.broken.tmp" "$spool/incoming/broken.json"
# A window that has ended: invalid as well (it would send nothing).
printf '{"endpoint": "http://127.0.0.1:%s", "auth": {"token_file": "token"}, "command": {"type": 2, "data": "[]"}, "devices": {"file": "fleet1.csv"}, "rollout": {"not_after": "%s"}}\n' "$port" "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" >"$spool/incoming/.ended.tmp"
mv "$spool/incoming/.ended.tmp" "$spool/incoming/ended.json"
# max_jobs is 3 and three run: the invalid ones are refused at once anyway.
for _ in $(seq 150); do [ -e "$spool/failed/broken" ] && [ -e "$spool/failed/ended" ] && break; sleep 0.02; done
[ -e "$spool/failed/broken" ] && [ -e "$spool/failed/ended" ] && [ "$(ls "$spool/done" | wc -l)" -eq 0 ] && ok ||
  fail "an invalid job must be refused at once, not after the jobs ahead of it: $(ls "$spool/failed")"
for _ in $(seq 100); do http GET /jobs | grep -q '"state":"running"' && break; sleep 0.05; done
running=$(http GET /jobs | grep -o '"state":"running"' | wc -l)
[ "$running" -ge 2 ] && ok || fail "jobs running at once: $running"
wait_finished 5 || fail "jobs did not finish: $(ls "$spool"/*)"
for j in one two three; do
  [ -f "$spool/done/$j/summary.json" ] && ok || fail "$j not in done/"
  grep -q '"state":"completed"' "$spool/done/$j/summary.json" && ok || fail "$j state: $(cat "$spool/done/$j/summary.json")"
  [ -f "$spool/done/$j/job.json" ] && [ -f "$spool/done/$j/result.json" ] && ok || fail "$j: job.json or result.json missing"
done
grep -q 'qos' "$spool/failed/broken/reason.txt" && ok || fail "invalid job reason: $(cat "$spool/failed/broken/reason.txt")"
grep -q 'rollout.not_after: the window ended at' "$spool/failed/ended/reason.txt" && ok || fail "ended window reason: $(cat "$spool/failed/ended/reason.txt")"
metrics=$(http GET /metrics | tr -d '\r' | sed '1,/^$/d')
# Parse: every line a comment or NAME{LABELS} VALUE; the counts add up.
echo "$metrics" | awk '
  /^#/ { next }
  !/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"\})? (\+Inf|-?[0-9.]+(e[-+]?[0-9]+)?)$/ { print "bad line: " $0; bad++ }
  END { exit bad > 0 || NR < 20 }' && ok || fail "/metrics does not parse"
value() { echo "$metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
[ "$(value 'fleetcast_devices_total{status="succeeded"}')" = $((3 * n)) ] && ok || fail "devices succeeded metric: $(value 'fleetcast_devices_total{status="succeeded"}')"
[ "$(value 'fleetcast_jobs_finished_total{state="completed"}')" = 3 ] && ok || fail "completed jobs metric"
[ "$(value 'fleetcast_jobs_finished_total{state="invalid"}')" = 2 ] && ok || fail "invalid jobs metric"
[ "$(value 'fleetcast_requests_total{outcome="accounted"}')" = $((3 * n / 100)) ] && ok || fail "accounted requests metric: $(value 'fleetcast_requests_total{outcome="accounted"}')"
[ "$(value 'fleetcast_request_duration_seconds_count')" = $((3 * n / 100)) ] && ok || fail "latency histogram count"
[ "$(value 'fleetcast_batch_size_bucket{le="100"}')" = $((3 * n / 100)) ] && ok || fail "batch size histogram"
http GET /healthz | grep -q '^ok' && ok || fail "/healthz"
http GET /jobs | grep -q '"name":"three","state":"completed","folder":"done"' && ok || fail "/jobs: $(http GET /jobs)"
http POST /jobs/nosuch/cancel | grep -q '404' && ok || fail "cancel of an unknown job must be 404"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok || fail "idle SIGTERM exit $rc"
stop_emulator
for s in 1 2 3; do
  j=$(echo one two three | cut -d' ' -f$s)
  check_exactly_once "$spool/done/$j/results.ndjson" "$tmp/record1.ndjson" "$n" "$j"
done

# 1b. One account rate shared fairly: 40 requests/s for the endpoint and
# token; a job with 4 connections and one with 1, 30 requests each. Together
# they cannot go faster than the rate, and neither gets ahead of the other.
head -3001 "$spool/incoming/fleet1.csv" >"$spool/incoming/small1.csv"
head -3001 "$spool/incoming/fleet2.csv" >"$spool/incoming/small2.csv"
start_emulator --record "$tmp/record-rate.ndjson" --config "$(emulator_config '{}')"
cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "127.0.0.1:0", "endpoints": {"http://127.0.0.1:$port": {"connections": 8, "requests_per_second": 40, "burst": 1}}}
CONF
start_daemon
CONNS=4 drop_job wide small1.csv
CONNS=1 drop_job narrow small2.csv
wait_finished 7 || fail "rate-shared jobs did not finish"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
stop_emulator
# Per job: first and last request time (ms) in the emulator's record.
awk -F'"at_ms":' '{ split($2, a, ","); t = a[1]; j = ($0 ~ /"deviceKey":"f1-/) ? "wide" : "narrow"
       if (!(j in first)) first[j] = t; last[j] = t; n[j]++ }
     END { span = (last["wide"] > last["narrow"] ? last["wide"] : last["narrow"]) - first["wide"]
           gap = last["wide"] - last["narrow"]; if (gap < 0) gap = -gap
           printf "rate: %d+%d devices in %d ms, last requests %d ms apart\n", n["wide"], n["narrow"], span, gap
           exit !(span >= 0.9 * 1475 && gap <= 0.25 * span) }' "$tmp/record-rate.ndjson" && ok ||
  fail "the shared rate is exceeded or unfair (above)"
for j in wide narrow; do
  grep -q '"succeeded":3000' "$spool/done/$j/summary.json" && ok || fail "$j: $(cat "$spool/done/$j/summary.json")"
done

# 2. SIGKILL mid-job, restart: nothing lost, nothing resent that had a result.
start_emulator --record "$tmp/record2.ndjson" --config "$(emulator_config '{"latency_ms": 15}')"
write_config
start_daemon
drop_job killed fleet4.csv
results=$spool/running/killed/results.ndjson
for _ in $(seq 300); do [ "$(lines_of "$results")" -ge 3000 ] && break; sleep 0.02; done
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=
before=$(lines_of "$results")
[ "$before" -gt 0 ] && [ "$before" -lt "$n" ] && ok || fail "kill: $before results before the kill (want some, not all)"
cp "$results" "$tmp/before-kill.ndjson"
start_daemon
wait_finished 8 || fail "killed job did not finish after the restart"
grep -q '"job":"killed","event":"job_recovered"' "$tmp/daemon.log" && ok || fail "no job_recovered after the restart"
grep -q '"succeeded":20000' "$spool/done/killed/summary.json" && ok || fail "killed summary: $(cat "$spool/done/killed/summary.json")"

# 3. SIGTERM mid-job: exit 0 within the deadline, the job stays in running/
# and completes after a restart.
drop_job drained fleet5.csv
results=$spool/running/drained/results.ndjson
for _ in $(seq 300); do [ "$(lines_of "$results")" -ge 2000 ] && break; sleep 0.02; done
t0=$(date +%s)
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
t1=$(date +%s)
[ "$rc" -eq 0 ] && [ $((t1 - t0)) -le 11 ] && ok || fail "SIGTERM: exit $rc after $((t1 - t0)) s (deadline 10 s)"
[ -d "$spool/running/drained" ] && [ ! -e "$spool/done/drained" ] && ok || fail "a drained job must stay in running/"
grep -q '"job":"drained","event":"job_left_for_resume"' "$tmp/daemon.log" && ok || fail "no job_left_for_resume"
start_daemon
wait_finished 9 || fail "drained job did not finish after the restart"
grep -q '"cancelled":0' "$spool/done/drained/summary.json" && ok || fail "drained devices were not sent after the restart"

# 4. Cancel: a file in cancel/, and the admin call.
drop_job cancelled fleet6.csv
for _ in $(seq 300); do [ "$(lines_of "$spool/running/cancelled/results.ndjson")" -ge 1000 ] && break; sleep 0.02; done
: >"$spool/cancel/cancelled"
wait_finished 10 || fail "cancelled job did not end"
grep -q 'cancelled by request' "$spool/failed/cancelled/reason.txt" && ok || fail "cancel reason: $(cat "$spool/failed/cancelled/reason.txt" 2>&1)"
[ "$(wc -l <"$spool/failed/cancelled/results.ndjson")" -eq "$n" ] && ok || fail "a cancelled job accounts for every device"
[ ! -e "$spool/cancel/cancelled" ] && ok || fail "the cancel file was not consumed"
drop_job viaadmin fleet6.csv
for _ in $(seq 300); do http GET /jobs | grep -q '"name":"viaadmin","state":"running"' && break; sleep 0.02; done
http POST /jobs/viaadmin/cancel | grep -q '202' && ok || fail "admin cancel not accepted"
wait_finished 11 || fail "admin-cancelled job did not end"
grep -q 'cancelled by request' "$spool/failed/viaadmin/reason.txt" && ok || fail "admin cancel reason"

# 5. SIGHUP: a good config is taken, a bad one is refused and the old kept;
# a job running meanwhile goes on to the end.
drop_job reloaded fleet3.csv
for _ in $(seq 300); do [ "$(lines_of "$spool/running/reloaded/results.ndjson")" -ge 1000 ] && break; sleep 0.02; done
write_config '"poll_interval_ms": 500'
kill -HUP "$daemon_pid"
for _ in $(seq 50); do grep -q config_reloaded "$tmp/daemon.log" && break; sleep 0.1; done
grep -q '"event":"config_reloaded"' "$tmp/daemon.log" && ok || fail "SIGHUP: no config_reloaded"
echo '{"max_jobs": 0}' >"$tmp/daemon.json"
kill -HUP "$daemon_pid"
for _ in $(seq 50); do grep -q config_rejected "$tmp/daemon.log" && break; sleep 0.1; done
grep -q '"event":"config_rejected".*max_jobs: must be in 1..1024' "$tmp/daemon.log" && ok || fail "SIGHUP with a bad config: $(tail -2 "$tmp/daemon.log")"
http GET /healthz | grep -q '^ok' && ok || fail "the daemon must survive a bad reload"
wait_finished 12 || fail "the job running through the reloads did not finish"
grep -q '"state":"completed"' "$spool/done/reloaded/summary.json" && [ "$(wc -l <"$spool/done/reloaded/results.ndjson")" -eq "$n" ] &&
  ok || fail "the job running through the reloads: $(cat "$spool/done/reloaded/summary.json" 2>&1)"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
stop_emulator
# The emulator's record is complete once it stops.
check_exactly_once "$spool/done/killed/results.ndjson" "$tmp/record2.ndjson" "$n" killed
check_not_resent "$tmp/before-kill.ndjson" "$tmp/record2.ndjson" kill
check_exactly_once "$spool/done/drained/results.ndjson" "$tmp/record2.ndjson" "$n" drained

# Logs are JSON lines with the documented keys.
awk '!/^\{"time":"[0-9T:.-]+Z","level":"(info|warn|error)","job":(null|"[^"]*"),"event":"[a-z_]+","details":\{.*\}\}$/ { print "bad log line: " $0; bad++ }
     END { exit bad > 0 }' "$tmp/daemon.log" && ok || fail "log lines are not the documented JSON"

# 6. Four shard processes over one job: together, every record exactly once.
start_emulator --record "$tmp/record3.ndjson" --config "$(emulator_config '{}')"
{ cat "$spool/incoming/fleet1.csv"; sed -n '2,40p' "$spool/incoming/fleet1.csv"; printf 'pk,\n,\nbad line\n'; } >"$tmp/sharded.csv"
total=$((n + 39 + 3))
cp "$spool/incoming/token" "$tmp/token"
cat >"$tmp/sharded.json" <<JOB
{"endpoint": "http://127.0.0.1:$port", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "sharded.csv"},
 "rate": {"requests_per_second": 0}, "output": {"dir": "out/sharded"}}
JOB
shard_pids=
for i in 0 1 2 3; do
  "$bin" run "$tmp/sharded.json" --shard "$i/4" >"$tmp/shard$i.out" 2>&1 &
  shard_pids="$shard_pids $!"
done
for p in $shard_pids; do wait "$p"; done
stop_emulator
cat "$tmp"/out/sharded/shard-*-of-4/results.ndjson >"$tmp/all-shards.ndjson"
lines=$(wc -l <"$tmp/all-shards.ndjson")
unique=$(sed -n 's/^{"index":\([0-9]*\),.*/\1/p' "$tmp/all-shards.ndjson" | sort -un | wc -l)
[ "$lines" -eq "$total" ] && [ "$unique" -eq "$total" ] && ok || fail "shards: $lines lines, $unique indices, want $total"
executed=$(wc -l <"$tmp/record3.ndjson")
distinct=$(sed -n 's/.*"deviceKey":"\([^"]*\)".*/\1/p' "$tmp/record3.ndjson" | sort -u | wc -l)
[ "$executed" -eq "$n" ] && [ "$distinct" -eq "$n" ] && ok || fail "shards: the emulator executed $executed commands for $distinct devices, want $n each"
[ "$(grep -c '"reason":"duplicate"\|duplicate of an earlier' "$tmp/all-shards.ndjson")" -eq 39 ] && ok || fail "shards: duplicates reported $(grep -c 'duplicate of an earlier' "$tmp/all-shards.ndjson") times, want 39"
for i in 0 1 2 3; do
  shard_lines=$(wc -l <"$tmp/out/sharded/shard-$i-of-4/results.ndjson")
  [ "$shard_lines" -gt $((total / 8)) ] && ok || fail "shard $i has only $shard_lines records"
done

# 7. Resume and retry on request. An aborted job in failed/ continued
#    through the admin port sends exactly its aborted devices; a file in
#    retry-failed/ sends exactly its device_failed ones again; a changed
#    device list is refused with the results kept; unknown, invalid, running
#    and badly asked requests are refused.
head -3001 "$spool/incoming/fleet5.csv" >"$spool/incoming/small5.csv"
wait_for() {  # PATH: until it exists (30 s at most)
  for _ in $(seq 300); do [ -e "$1" ] && return 0; sleep 0.1; done
  return 1
}
answer() { http "$@" | tr -d '\r' | sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p'; }
start_emulator --record "$tmp/rec-g1.ndjson" --config "$(emulator_config '{"device_failure_ratio": 0.5}')"
EMU_PORT=$port  # the resumed job must reach the same endpoint
write_config
start_daemon
CONNS=1 drop_job guarded small5.csv '"rollout": {"abort_failure_ratio": 0.2, "abort_min_devices": 100}'
wait_for "$spool/failed/guarded/summary.json" || fail "the guarded job did not end"
stop_emulator
grep -q '"state":"aborted"' "$spool/failed/guarded/summary.json" && ok || fail "guarded: $(cat "$spool/failed/guarded/summary.json")"
keys_with "$spool/failed/guarded/results.ndjson" '"reason":"aborted"' >"$tmp/g-aborted.keys"
[ -s "$tmp/g-aborted.keys" ] && ok || fail "no aborted devices"
[ "$(answer POST /jobs/nosuch/resume)" = 404 ] && ok || fail "resume of an unknown job must be 404"
[ "$(answer POST /jobs/broken/resume)" = 409 ] && ok || fail "resume of a job that never started must be 409"
http POST /jobs/broken/resume | grep -q 'never started' && ok || fail "the refusal says why"
[ "$(answer POST '/jobs/guarded/retry-failed?reasons=acepted')" = 400 ] && ok || fail "retry-failed with an unknown reason must be 400"
[ "$(answer GET /jobs/guarded/resume)" = 405 ] && ok || fail "GET of an action must be 405"
[ -d "$spool/failed/guarded" ] && [ -z "$(ls "$spool/resume" "$spool/retry-failed" | grep -v -e : -e '^$')" ] && ok || fail "a refused request left something behind"
# A changed device list: the resume is taken, then refused at the start; the results stay.
sum_before=$(md5sum <"$spool/failed/guarded/results.ndjson")
cp "$spool/incoming/small5.csv" "$tmp/small5.orig"
sed -i '2d' "$spool/incoming/small5.csv"
start_emulator --record "$tmp/rec-g2.ndjson" --config "$(emulator_config '{"latency_ms": 20}')"
: >"$spool/resume/guarded"
for _ in $(seq 100); do grep -q 'changed: the device list' "$spool/failed/guarded/reason.txt" 2>/dev/null && break; sleep 0.1; done
grep -q 'changed: the device list' "$spool/failed/guarded/reason.txt" 2>/dev/null && ok || fail "a resume over a changed list: $(cat "$spool/failed/guarded/reason.txt" 2>&1)"
[ "$(md5sum <"$spool/failed/guarded/results.ndjson")" = "$sum_before" ] && ok || fail "a refused resume changed the results"
[ ! -s "$tmp/rec-g2.ndjson" ] && ok || fail "a refused resume sent $(wc -l <"$tmp/rec-g2.ndjson") devices"
cp "$tmp/small5.orig" "$spool/incoming/small5.csv"
# A result line beyond the input: refused too, before anything is sent.
cp "$spool/failed/guarded/results.ndjson" "$tmp/g-results.keep"
sed -n '1p' "$tmp/g-results.keep" | sed 's/"index":[0-9]*/"index":999999/' >>"$spool/failed/guarded/results.ndjson"
rm -f "$spool/failed/guarded/reason.txt"
: >"$spool/resume/guarded"
for _ in $(seq 100); do [ -s "$spool/failed/guarded/reason.txt" ] && break; sleep 0.1; done
grep -q 'the device list does not have' "$spool/failed/guarded/reason.txt" 2>/dev/null && ok || fail "a foreign result line on a daemon resume: $(cat "$spool/failed/guarded/reason.txt" 2>&1)"
{ cat "$tmp/g-results.keep"; sed -n '1p' "$tmp/g-results.keep" | sed 's/"index":[0-9]*/"index":999999/'; } | cmp -s - "$spool/failed/guarded/results.ndjson" && ok ||
  fail "a daemon resume refused for a foreign line changed the results"
cp "$tmp/g-results.keep" "$spool/failed/guarded/results.ndjson"
[ ! -s "$tmp/rec-g2.ndjson" ] && ok || fail "a refused resume sent $(wc -l <"$tmp/rec-g2.ndjson") devices"
[ "$(answer POST /jobs/guarded/resume)" = 202 ] && ok || fail "admin resume not accepted"
[ "$(answer POST /jobs/guarded/resume)" = 409 ] && ok || fail "a second resume while the first is pending or running must be 409"
wait_for "$spool/done/guarded/summary.json" || fail "the resumed job did not end in done/: $(ls "$spool"/*/ | tr '\n' ' ')"
stop_emulator
record_keys "$tmp/rec-g2.ndjson" >"$tmp/g-resent.keys"
cmp -s "$tmp/g-aborted.keys" "$tmp/g-resent.keys" && ok ||
  fail "the resume sent $(wc -l <"$tmp/g-resent.keys") devices, want exactly the $(wc -l <"$tmp/g-aborted.keys") aborted"
cat "$tmp/rec-g1.ndjson" "$tmp/rec-g2.ndjson" >"$tmp/rec-g12.ndjson"
check_exactly_once "$spool/done/guarded/results.ndjson" "$tmp/rec-g12.ndjson" 3000 "daemon resume"
grep -q '"aborted":0' "$spool/done/guarded/summary.json" && ok || fail "aborted devices left: $(cat "$spool/done/guarded/summary.json")"
[ ! -e "$spool/done/guarded/reason.txt" ] && ok || fail "a stale reason.txt in done/"
keys_with "$spool/done/guarded/results.ndjson" '"reason":"device_failed"' >"$tmp/g-failed.keys"
[ -s "$tmp/g-failed.keys" ] && ok || fail "no device_failed devices to retry"
# retry-failed/NAME holding the reasons.
start_emulator --record "$tmp/rec-g3.ndjson" --config "$(emulator_config '{}')"
echo device_failed >"$spool/retry-failed/.guarded"
mv "$spool/retry-failed/.guarded" "$spool/retry-failed/guarded"
for _ in $(seq 300); do grep -q '"succeeded":3000' "$spool/done/guarded/summary.json" 2>/dev/null && break; sleep 0.1; done
stop_emulator
grep -q '"succeeded":3000' "$spool/done/guarded/summary.json" 2>/dev/null && ok || fail "retry-failed: $(cat "$spool/done/guarded/summary.json" 2>&1)"
record_keys "$tmp/rec-g3.ndjson" >"$tmp/g-retried.keys"
cmp -s "$tmp/g-failed.keys" "$tmp/g-retried.keys" && ok ||
  fail "retry-failed sent $(wc -l <"$tmp/g-retried.keys") devices, want exactly the $(wc -l <"$tmp/g-failed.keys") device_failed"
{ grep -v '"outcome":"failed"' "$tmp/rec-g12.ndjson"; cat "$tmp/rec-g3.ndjson"; } >"$tmp/rec-g123.ndjson"
check_exactly_once "$spool/done/guarded/results.ndjson" "$tmp/rec-g123.ndjson" 3000 "daemon retry-failed"
[ "$(grep -c '"attempts":2,' "$spool/done/guarded/results.ndjson")" -eq "$(wc -l <"$tmp/g-failed.keys")" ] && ok || fail "attempts do not add up after retry-failed"
[ ! -e "$spool/done/guarded/retry-failed.request" ] && ok || fail "the retry request was left in the job's folder"
[ "$(http GET /jobs | grep -o '"name":"guarded"' | wc -l)" -eq 1 ] && http GET /jobs | grep -q '"name":"guarded","state":"completed","folder":"done"' && ok || fail "/jobs after the retry: $(http GET /jobs)"
grep -q '"job":"guarded","event":"job_resume_taken".*"request":"retry-failed"' "$tmp/daemon.log" && ok || fail "no job_resume_taken for the retry in the log"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=

# 8. The admin port on every address with a token for changes: reading
#    open, a change without the token or with another refused (401), with
#    it taken. (The 403 for a client off loopback without a token
#    configured is core/daemon/admin_access's unit test: this test sends traffic to
#    loopback only.)
printf 'admin-%s\n' "$$" >"$tmp/admin.token"
cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "0.0.0.0:0", "admin_token_file": "$tmp/admin.token", "max_jobs": 3,
 "progress_log_interval_s": 1,
 "endpoints": {"http://127.0.0.1:$EMU_PORT": {"connections": 6, "requests_per_second": 0}}}
CONF
start_emulator --config "$(emulator_config '{"latency_ms": 20}')"
# stderr is "the journal" for this daemon: JOURNAL_STREAM names it.
lines_before=$(wc -l <"$tmp/daemon.log")
export JOURNAL_STREAM="$(stat -L -c '%d:%i' "$tmp/daemon.log")"
start_daemon
unset JOURNAL_STREAM
grep -q '^0.0.0.0:' "$spool/admin.address" && ok || fail "admin.address: $(cat "$spool/admin.address")"
http_auth() {  # METHOD PATH AUTHORIZATION -> the whole answer
  exec 3<>"/dev/tcp/127.0.0.1/$aport" || return 1
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n\r\n' "$1" "$2" "$3" >&3
  cat <&3
  exec 3<&-
}
for path in /metrics /healthz /readyz /jobs; do
  [ "$(answer GET "$path")" = 200 ] && ok || fail "GET $path on 0.0.0.0: $(answer GET "$path")"
done
drop_job guarded2 fleet5.csv
for _ in $(seq 100); do http GET /jobs | grep -q '"name":"guarded2","state":"running"' && break; sleep 0.05; done
for _ in $(seq 60); do grep -q '"job":"guarded2","event":"job_progress"' "$tmp/daemon.log" && break; sleep 0.05; done
http GET /jobs | grep -q '"name":"guarded2","state":"running".*"progress":{"done":[0-9]*,"total":20000,"total_exact":\(true\|false\),"percent":[0-9.]*,"devices_per_second":[0-9.]*,"eta_s":' && ok ||
  fail "/jobs without total, percent, rate and ETA: $(http GET /jobs)"
[ "$(answer POST /jobs/guarded2/cancel)" = 401 ] && ok || fail "a cancel without the token must be 401"
http POST /jobs/guarded2/cancel | tr -d '\r' | grep -qi '^WWW-Authenticate: Bearer' && ok || fail "a 401 without WWW-Authenticate"
[ "$(http_auth POST /jobs/guarded2/cancel "Bearer wrong" | tr -d '\r' | sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p')" = 401 ] && ok || fail "a cancel with another token must be 401"
[ "$(http_auth POST /jobs/guarded2/cancel "Bearer admin-$$" | tr -d '\r' | sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p')" = 202 ] && ok || fail "a cancel with the token must be taken"
wait_for "$spool/failed/guarded2/reason.txt" && grep -q 'cancelled by request' "$spool/failed/guarded2/reason.txt" && ok || fail "the cancel with the token did not cancel"
! grep -q "admin-$$" "$tmp/daemon.log" && ok || fail "the admin token appears in the log"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
stop_emulator
# Journald priorities; an operator's cancel is info; progress events.
journal=$(tail -n +$((lines_before + 1)) "$tmp/daemon.log")
echo "$journal" | grep -q '^<6>{"time":.*"event":"daemon_started"' && ok || fail "no <6> priority on daemon_started: $(echo "$journal" | head -2)"
[ "$(echo "$journal" | grep -vc '^<[346]>{')" -eq 0 ] && ok || fail "journal lines without a priority: $(echo "$journal" | grep -v '^<[346]>{' | head -2)"
echo "$journal" | grep -q '^<6>{.*"job":"guarded2","event":"job_finished".*"state":"cancelled"' && ok ||
  fail "an operator's cancel is not logged as info: $(echo "$journal" | grep guarded2 | grep job_finished)"
echo "$journal" | grep -q '^<6>{.*"job":"guarded2","event":"job_progress","details":{"done":[0-9]*,"total":20000,.*"percent":' && ok ||
  fail "no job_progress event: $(echo "$journal" | grep job_progress | head -1)"

# The token shows in no log or output.
if grep -rqF "SECRET-$$" "$spool/done" "$spool/failed" "$tmp/daemon.log" "$tmp/out" "$tmp"/*.out; then
  fail "the token appears in an output or log"
else ok; fi

finish
