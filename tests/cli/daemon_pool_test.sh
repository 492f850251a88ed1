#!/bin/bash
# The daemon's shared connection pool, against `fleetcast emulate` over TLS
# on loopback: three jobs dropped at once to one endpoint whose config
# allows 4 connections, each job asking for 2. From the emulator's own
# counters: never more than 4 connections open at once, and fewer TLS
# handshakes than jobs x connections (the job that starts later takes the
# connections the first ones freed). The daemon runs the jobs as coroutines
# on its event loop: no thread per job. Every device of every job exactly
# once (against the emulator's record).
# usage: daemon_pool_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
daemon_pid=
source "$(dirname "$0")/lib.sh"
clean_up_daemon_on_exit
n=6000
spool=$tmp/spool
mkdir -p "$spool/incoming"
echo "Bearer pool-test-token" >"$spool/incoming/token"

"$bin" emulate --listen 127.0.0.1:0 --threads 1 --cert-out "$spool/incoming/emu.pem" \
  --record "$tmp/record.ndjson" --config "$(emulator_config '{"latency_ms": 20}')" 2>"$tmp/emu.err" &
emu_pid=$!
port=
for _ in $(seq 300); do  # the whole line: a read may catch it half written
  port=$(sed -n 's|.*serving https://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "emulator did not start: $(cat "$tmp/emu.err")"; exit 1; }

cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "127.0.0.1:0", "max_jobs": 3,
 "endpoints": {"https://127.0.0.1:$port": {"connections": 4, "requests_per_second": 0}}}
CONF
"$bin" daemon --spool "$spool" --config "$tmp/daemon.json" 2>>"$tmp/daemon.log" &
daemon_pid=$!
for _ in $(seq 400); do [ -s "$spool/admin.address" ] && break; sleep 0.05; done
[ -s "$spool/admin.address" ] || { echo "daemon did not start: $(tail -5 "$tmp/daemon.log")"; exit 1; }
idle_threads=$(ls "/proc/$daemon_pid/task" | wc -l)  # the loop, the admin port (a sanitizer's own)

"$bin" generate-devices "$n" "$tmp/fleet.csv" --gateway-every 0 2>/dev/null
for j in a b c; do
  sed "2,\$ s/^\([^,]*\),/\1,$j-/" "$tmp/fleet.csv" >"$spool/incoming/fleet-$j.csv"
done
for j in a b c; do
  cat >"$spool/incoming/.$j.tmp" <<JOB
{"endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"}, "tls": {"ca_file": "emu.pem"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "fleet-$j.csv"},
 "batch": {"max_devices": 100}, "rate": {"requests_per_second": 0}, "connections": 2}
JOB
done
for j in a b c; do mv "$spool/incoming/.$j.tmp" "$spool/incoming/$j.json"; done

# While jobs run: the daemon's threads are those it had idle plus Asio's
# resolver, whatever the number of jobs (a thread per job: one more each).
peak_threads=0
peak_running=0
for _ in $(seq 600); do
  t=$(ls "/proc/$daemon_pid/task" 2>/dev/null | wc -l)
  r=$(ls "$spool/running" 2>/dev/null | wc -l)
  [ "$t" -gt "$peak_threads" ] && peak_threads=$t
  [ "$r" -gt "$peak_running" ] && peak_running=$r
  [ "$(ls "$spool/done" 2>/dev/null | wc -l)" -ge 3 ] && break
  sleep 0.02
done
[ "$(ls "$spool/done" | wc -l)" -eq 3 ] && ok || fail "jobs in done/: $(ls "$spool/done" "$spool/failed" 2>&1)"
[ "$peak_running" -ge 2 ] && ok || fail "jobs in running/ at once: $peak_running"
[ "$peak_threads" -le $((idle_threads + 1)) ] && ok || fail "the daemon ran $peak_threads threads for its jobs ($idle_threads idle)"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
daemon_pid=
[ "$rc" -eq 0 ] && ok || fail "daemon exit $rc"
stop_emulator
counter() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$tmp/emu.err"; }
handshakes=$(counter tls_handshakes)
peak_open=$(counter peak_open_connections)
echo "pool: 3 jobs x 2 connections, endpoint limit 4: $handshakes TLS handshakes, at most $peak_open connections open at once, $peak_threads daemon threads ($idle_threads idle)"
[ -n "$peak_open" ] && [ "$peak_open" -le 4 ] && ok || fail "connections open at once: $peak_open (limit 4)"
[ -n "$handshakes" ] && [ "$handshakes" -lt 6 ] && ok || fail "TLS handshakes: $handshakes (3 jobs x 2 connections without reuse: 6)"
for j in a b c; do
  grep -q '"state":"completed"' "$spool/done/$j/summary.json" && ok || fail "$j: $(cat "$spool/done/$j/summary.json")"
  grep "\"deviceKey\":\"$j-" "$tmp/record.ndjson" >"$tmp/record-$j.ndjson"
  check_exactly_once "$spool/done/$j/results.ndjson" "$tmp/record-$j.ndjson" "$n" "$j"
done
grep -q '"event":"job_started"' "$tmp/daemon.log" && ok || fail "no job_started in the log"

# 2. The drain deadline: answers that take 5 s, drain_timeout_s 1. SIGTERM
# cuts the requests in flight at the deadline, records them (cancelled,
# uncertain), and the daemon exits 4 (cancelled: resumable), not later.
"$bin" emulate --listen 127.0.0.1:0 --threads 1 --cert-out "$spool/incoming/emu.pem" \
  --record "$tmp/record2.ndjson" --config "$(emulator_config '{"latency_ms": 5000}')" 2>"$tmp/emu.err" &
emu_pid=$!
port=
for _ in $(seq 300); do  # the whole line: a read may catch it half written
  port=$(sed -n 's|.*serving https://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "emulator did not start: $(cat "$tmp/emu.err")"; exit 1; }
cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "127.0.0.1:0", "drain_timeout_s": 1,
 "endpoints": {"https://127.0.0.1:$port": {"connections": 4, "requests_per_second": 0}}}
CONF
rm -f "$spool/admin.address"
"$bin" daemon --spool "$spool" --config "$tmp/daemon.json" 2>>"$tmp/daemon.log" &
daemon_pid=$!
for _ in $(seq 400); do [ -s "$spool/admin.address" ] && break; sleep 0.05; done
cat >"$spool/incoming/.slow.tmp" <<JOB
{"endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"}, "tls": {"ca_file": "emu.pem"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "fleet-a.csv"},
 "batch": {"max_devices": 100}, "rate": {"requests_per_second": 0}, "connections": 2}
JOB
mv "$spool/incoming/.slow.tmp" "$spool/incoming/slow.json"  # whole, or not at all
aport=$(sed 's/.*://' "$spool/admin.address")
# Its first requests are out (the engine counts a request when it writes
# it), their answers 5 s away: /jobs says so.
sent=
for _ in $(seq 200); do
  admin_http GET /jobs 2>/dev/null | grep -q '"name":"slow","state":"running"[^}]*"requests":[1-9]' && { sent=yes; break; }
  sleep 0.05
done
[ -n "$sent" ] || fail "the slow job's first requests were not sent within 10 s: $(admin_http GET /jobs 2>&1 | head -c 400)"
t0=$(date +%s%N)
kill -TERM "$daemon_pid"
wait "$daemon_pid"
rc=$?
t1=$(date +%s%N)
daemon_pid=
ms=$(((t1 - t0) / 1000000))
echo "drain deadline: exit $rc after $ms ms (deadline 1 s, answers take 5 s)"
[ "$rc" -eq 4 ] && ok || fail "a drain that cut requests must exit 4, not $rc: $(ls "$spool/running" "$spool/failed" 2>&1 | tr "\n" " "); $(cat "$spool/failed/slow/reason.txt" 2>/dev/null); $(tail -3 "$tmp/daemon.log")"
[ "$ms" -lt 4000 ] && ok || fail "the daemon waited $ms ms past a 1 s drain deadline"
grep -q '"event":"drain_deadline_passed"' "$tmp/daemon.log" && ok || fail "no drain_deadline_passed"
[ -d "$spool/running/slow" ] && ok || fail "the cut job must stay in running/ for a resume"
res=$spool/running/slow/results.ndjson
lines_of() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
[ "$(lines_of "$res")" -eq "$n" ] && ok || fail "results of the cut job: $(lines_of "$res") lines, want $n"
grep -c '"uncertain":true' "$res" | grep -qv '^0$' && ok || fail "the cut requests' devices must be uncertain"
stop_emulator
finish
