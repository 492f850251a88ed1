#!/bin/bash
# Rollout judgement end to end against `fleetcast emulate` on loopback: a
# list of 20 models sorted by productKey whose last model (3% of the fleet)
# fails every device; a 2% canary is a sample of the whole list, stratified
# by productKey, and aborts with a handful of that model commanded and
# nothing beyond the canary (device by device against the emulator's
# record). The same with a model that accepts and never acknowledges, gated
# on acks. Three phases on a good fleet complete with every device once. The
# dry run lists the phases' cohorts; a resume of the aborted rollout sends
# no canary device again and the cohort rule stops it again.
# usage: judgement_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
source "$(dirname "$0")/lib.sh"
trap '[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"' EXIT
printf 'Bearer JUDGE-%s-not-for-output\n' "$$" >"$tmp/token"

# 19 models of 510 devices, then m19's 310: 10,000 devices, sorted.
awk 'BEGIN { print "productKey,deviceKey"
  for (m = 0; m < 20; m++) { n = m < 19 ? 510 : 310
    for (i = 0; i < n; i++) printf "m%02d,m%02d-d%d\n", m, m, i } }' >"$tmp/devices.csv"
n=10000

write_job() {  # NAME ROLLOUT-OBJECT [extra members]
  cat >"$tmp/$1.json" <<JOB
{"name": "$1", "endpoint": "http://127.0.0.1:$port", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 50},
 "rate": {"requests_per_second": 0}, "connections": 2,
 "rollout": $2${3:+, $3}}
JOB
}
emulate() {  # CONFIG-JSON: a plain emulator with its record in $tmp/record.ndjson
  rm -f "$tmp/record.ndjson"
  start_emulator --record "$tmp/record.ndjson" --config "$(emulator_config "$1")"
}
# The canary's deviceKeys, from the dry run's count and the record: every
# device of the canary sent, none other.
canary_size() {  # DRY-RUN-OUTPUT
  sed -n 's/^  canary  *\([0-9]*\) devices in .*/\1/p' "$1"
}
# Runs job NAME (run's flags after), stops the emulator (its record then
# complete), checks the exit status.
run_job() {  # NAME WANT-EXIT [flags...]
  "$bin" run "${@:3}" "$tmp/$1.json" >"$tmp/$1.out" 2>"$tmp/$1.err"
  local rc=$?
  stop_emulator
  [ "$rc" -eq "$2" ] && ok || fail "$1: exit $rc, want $2: $(tail -3 "$tmp/$1.err")"
}

# 1. The bad model, caught at the canary by its cohort.
emulate '{"max_devices": 50, "cohort_faults": [{"productKey": "m19", "failure_ratio": 1.0}]}'
bad_port=$port
write_job bad '{"canary_devices": 200, "abort_failure_ratio": 0.05}'
"$bin" run --dry-run "$tmp/bad.json" >"$tmp/bad.plan" 2>&1
grep -q '^  cohorts      20 by productKey; the canary holds at least 3 of each with 10 or more devices$' "$tmp/bad.plan" &&
  ok || fail "dry run: no cohorts line: $(cat "$tmp/bad.plan")"
canary=$(canary_size "$tmp/bad.plan")
[ -n "$canary" ] && [ "$canary" -ge 150 ] && [ "$canary" -le 260 ] &&
  ok || fail "dry run: canary of '$canary' devices, want about 200: $(grep canary "$tmp/bad.plan")"
grep -q '^  canary .* in 20 cohorts: ' "$tmp/bad.plan" && ok || fail "dry run: the canary is not in 20 cohorts"
grep -q '^    gate       at most 5.0% failed, in the phase and in each cohort' "$tmp/bad.plan" &&
  ok || fail "dry run: no gate line"
# The same plan as JSON on standard output (the lines on standard error).
"$bin" run --dry-run --json "$tmp/bad.json" >"$tmp/bad.plan.json" 2>/dev/null
python3 - "$tmp/bad.plan.json" "$canary" <<'PY' && ok || fail "dry run --json: $(head -c 300 "$tmp/bad.plan.json")"
import json, sys
plan = json.load(open(sys.argv[1]))
canary, rest = plan["phases"]
assert plan["devices"] == 10000, plan["devices"]
assert canary["phase"] == "canary" and canary["devices"] == int(sys.argv[2]), canary["devices"]
assert len(canary["cohorts"]) == 20 and sum(canary["cohorts"].values()) == canary["devices"]
assert canary["gate"] == {"max_failure_ratio": 0.05, "wait_s": 0, "wait_for": "answer"}, canary["gate"]
assert rest["phase"] == "rest" and "gate" not in rest
assert canary["devices"] + rest["devices"] == 10000
assert canary["cohorts"]["m19"] + rest["cohorts"]["m19"] == 310
PY
run_job bad 3
record_keys "$tmp/record.ndjson" >"$tmp/canary.keys"
check_exactly_once "$tmp/out/bad/results.ndjson" "$tmp/record.ndjson" "$n" bad
sent=$(wc -l <"$tmp/record.ndjson")
bad_sent=$(grep -c '"productKey":"m19"' "$tmp/record.ndjson")
[ "$sent" -eq "$canary" ] && ok || fail "bad: $sent devices commanded, the canary is $canary"
[ "$bad_sent" -ge 3 ] && [ "$bad_sent" -le 15 ] && ok || fail "bad: $bad_sent of m19 commanded, want a handful (3..15)"
models=$(sed -n 's/.*"productKey":"\(m[0-9]*\)".*/\1/p' "$tmp/record.ndjson" | sort -u | wc -l)
[ "$models" -eq 20 ] && ok || fail "bad: the canary held $models models, want all 20"
aborted=$(grep -c '"msg":"aborted by the canary: cohort productKey m19: ' "$tmp/out/bad/results.ndjson")
[ "$aborted" -eq $((n - canary)) ] && ok || fail "bad: $aborted skipped naming the verdict, want $((n - canary))"
grep -q '"state":"aborted".*"reason":"aborted by the canary: cohort productKey m19: .*"stage":"aborted"' "$tmp/out/bad/summary.json" &&
  ok || fail "bad: summary.json: $(cat "$tmp/out/bad/summary.json")"
grep -q 'aborted by the canary: cohort productKey m19: [0-9]* of its [0-9]* devices failed (100.0%), above abort_failure_ratio 0.05' "$tmp/bad.err" &&
  ok || fail "bad: the verdict does not name the cohort and the rule: $(tail -3 "$tmp/bad.err")"
cp "$tmp/out/bad/results.ndjson" "$tmp/bad-before.ndjson"

# 1b. The same with on_cohort_failure "exclude": m19 is left out (its
# canary devices failed, the rest excluded, naming the rule), every other
# model is commanded; exit 1 (devices skipped).
emulate '{"max_devices": 50, "cohort_faults": [{"productKey": "m19", "failure_ratio": 1.0}]}'
write_job excl '{"canary_devices": 200, "abort_failure_ratio": 0.05, "on_cohort_failure": "exclude"}'
run_job excl 1
check_exactly_once "$tmp/out/excl/results.ndjson" "$tmp/record.ndjson" "$n" excl
m19_sent=$(grep -c '"productKey":"m19"' "$tmp/record.ndjson")
[ "$m19_sent" -eq "$bad_sent" ] && ok || fail "excl: $m19_sent of m19 commanded, want the canary's $bad_sent"
[ "$(wc -l <"$tmp/record.ndjson")" -eq $((n - 310 + bad_sent)) ] && ok || fail "excl: $(wc -l <"$tmp/record.ndjson") commanded, want every other model's"
excluded=$(grep -c '"reason":"excluded".*"msg":"excluded by the canary: cohort productKey m19: ' "$tmp/out/excl/results.ndjson")
[ "$excluded" -eq $((310 - bad_sent)) ] && ok || fail "excl: $excluded excluded results naming the rule, want $((310 - bad_sent)): $(grep -m1 excluded "$tmp/out/excl/results.ndjson")"
grep -q '"state":"completed".*"excluded":'$((310 - bad_sent))'.*"reason":"excluded by the canary: cohort productKey m19: ' "$tmp/out/excl/summary.json" &&
  ok || fail "excl: summary.json: $(cat "$tmp/out/excl/summary.json")"

# 2. Its resume: the canary's devices have results (none sent again); the
# rest goes, and the cohort rule (abort_min_devices 20) stops m19 again.
EMU_PORT=$bad_port emulate '{"max_devices": 50, "cohort_faults": [{"productKey": "m19", "failure_ratio": 1.0}]}'
write_job bad '{"canary_devices": 200, "abort_failure_ratio": 0.05, "abort_min_devices": 20}'
run_job bad 3 --resume
check_not_resent "$tmp/bad-before.ndjson" "$tmp/record.ndjson" resume
lines=$(wc -l <"$tmp/out/bad/results.ndjson")
[ "$lines" -eq "$n" ] && ok || fail "resume: $lines result lines, want $n"
grep -q 'aborted: cohort productKey m19: ' "$tmp/bad.err" && ok || fail "resume: the cohort rule did not stop m19: $(tail -3 "$tmp/bad.err")"
again=$(grep -c '"productKey":"m19"' "$tmp/record.ndjson")
# m19's devices come last, 50 to a request: the verdict comes with the first
# answers of m19, and what the other connection has in flight finishes.
[ "$again" -le 110 ] && ok || fail "resume: $again of m19 commanded before the cohort rule stopped it"

# 3. A model that accepts and never acknowledges: the canary waits for its
# acks, and the cohort's no_ack stops the rollout.
emulate '{"max_devices": 50, "acks": {"ndjson": "'"$tmp"'/acks.ndjson", "delay_ms": 5, "delay_random_ms": 20},
  "cohort_faults": [{"productKey": "m07", "silent": true}]}'
write_job silent '{"canary_devices": 200, "canary_wait_for": "ack", "abort_failure_ratio": 0.05,
  "abort_on": ["device_failed", "no_ack", "delivery_failed"]}' '"acks": {"ndjson": "acks.ndjson", "timeout_s": 1}'
run_job silent 3
check_exactly_once "$tmp/out/silent/results.ndjson" "$tmp/record.ndjson" "$n" silent
sent=$(wc -l <"$tmp/record.ndjson")
[ "$sent" -eq "$canary" ] && ok || fail "silent: $sent devices commanded, the canary is $canary"
grep -q 'aborted by the canary: cohort productKey m07: ' "$tmp/silent.err" &&
  ok || fail "silent: the verdict does not name m07: $(tail -3 "$tmp/silent.err")"

# 4. Three phases on a good fleet: every device once, the first phase first
# (2% of 10,000: the same devices as the 200-device canary above).
emulate '{"max_devices": 50}'
write_job phased '{"phases": [{"devices": "2%", "gate": {"max_failure_ratio": 0.01}},
  {"devices": "25%", "gate": {"max_failure_ratio": 0.02, "wait_s": 0}}], "abort_failure_ratio": 0.05}'
"$bin" run --dry-run "$tmp/phased.json" >"$tmp/phased.plan" 2>&1
for line in '^  canary ' '^  phase 1 ' '^  the rest '; do
  grep -q "$line" "$tmp/phased.plan" && ok || fail "phased dry run: no '$line' line: $(cat "$tmp/phased.plan")"
done
run_job phased 0
check_exactly_once "$tmp/out/phased/results.ndjson" "$tmp/record.ndjson" "$n" phased
sent=$(wc -l <"$tmp/record.ndjson")
[ "$sent" -eq "$n" ] && ok || fail "phased: $sent devices commanded, want $n"
grep -q '"state":"completed".*"stage":"phases passed"' "$tmp/out/phased/summary.json" &&
  ok || fail "phased: summary.json: $(cat "$tmp/out/phased/summary.json")"
head -n "$canary" "$tmp/record.ndjson" | record_keys /dev/stdin | cmp -s - "$tmp/canary.keys" &&
  ok || fail "phased: the first $canary devices commanded are not the canary's"

# 5. A canary over a list that cannot be read twice is refused before anything is sent.
write_job piped '{"canary_devices": 100}'
sed -i 's|"devices": {"file": "devices.csv"}|"devices": {"file": "/dev/stdin", "format": "csv"}|' "$tmp/piped.json"
cat "$tmp/devices.csv" | "$bin" run "$tmp/piped.json" >"$tmp/piped.out" 2>"$tmp/piped.err"
rc=$?
[ "$rc" -eq 2 ] && ok || fail "piped: exit $rc, want 2: $(tail -3 "$tmp/piped.err")"
grep -q 'not a regular file' "$tmp/piped.err" && ok || fail "piped: the refusal does not say why: $(cat "$tmp/piped.err")"
[ ! -e "$tmp/out/piped" ] && ok || fail "piped: an output folder was left"

# 6. A human in the loop: a phase approved from another shell, a pause and
# a continue, each recorded in the folder with who and when.
# until_ok CMD: until it succeeds (30 s at most): the rollout reached the state it needs.
until_ok() { wait_until 300 0.1 "$@"; }
emulate '{"max_devices": 50}'
write_job gated '{"phases": [{"devices": "2%", "gate": {"wait_for": "approval"}}], "abort_failure_ratio": 0.05}'
"$bin" approve "$tmp/out/gated" >"$tmp/early.out" 2>&1
[ $? -eq 2 ] && grep -q 'not a rollout' "$tmp/early.out" && ok || fail "approve before the run: $(cat "$tmp/early.out")"
"$bin" run "$tmp/gated.json" >"$tmp/gated.out" 2>"$tmp/gated.err" &
run_pid=$!
# The approval is refused ("nothing waits") until the canary has passed its gate.
until_ok "$bin" approve "$tmp/out/gated" --by "operator-7" && ok || fail "approve: never applied: $(cat "$tmp/until.out")"
grep -q 'the canary approved' "$tmp/until.out" && ok || fail "approve: $(cat "$tmp/until.out")"
wait "$run_pid"
rc=$?
stop_emulator
[ "$rc" -eq 0 ] && ok || fail "gated: exit $rc: $(tail -3 "$tmp/gated.err")"
check_exactly_once "$tmp/out/gated/results.ndjson" "$tmp/record.ndjson" "$n" gated
head -n "$canary" "$tmp/record.ndjson" | record_keys /dev/stdin | cmp -s - "$tmp/canary.keys" &&
  ok || fail "gated: the first $canary devices commanded are not the canary's"
grep -q '"act":"approve","by":"operator-7",.*"applied":true,"result":"the canary approved' "$tmp/out/gated/operator.ndjson" &&
  ok || fail "gated: the approval is not recorded: $(cat "$tmp/out/gated/operator.ndjson")"
grep -q 'fleetcast: approve by operator-7: the canary approved' "$tmp/gated.err" && ok || fail "gated: the run did not say the approval"
"$bin" approve "$tmp/out/gated" >"$tmp/late.out" 2>&1
[ $? -eq 2 ] && grep -q 'no rollout is running' "$tmp/late.out" && ok || fail "approve after the run: $(cat "$tmp/late.out")"

# Pause and continue: 20 requests/s of 50 devices (10 s in all).
emulate '{"max_devices": 50}'
write_job paused '{}' '"rate": {"requests_per_second": 20}'
sed -i 's|"rate": {"requests_per_second": 0}, ||' "$tmp/paused.json"
"$bin" run "$tmp/paused.json" >"$tmp/paused.out" 2>"$tmp/paused.err" &
run_pid=$!
until_ok "$bin" pause "$tmp/out/paused" --by ops && ok || fail "pause: $(cat "$tmp/until.out")"
grep -q 'paused: nothing more is sent' "$tmp/until.out" && ok || fail "pause: $(cat "$tmp/until.out")"
"$bin" pause "$tmp/out/paused" >"$tmp/again.out" 2>&1
[ $? -eq 1 ] && grep -q 'not applied: already paused' "$tmp/again.out" && ok || fail "pause twice: $(cat "$tmp/again.out")"
"$bin" continue "$tmp/out/paused" --by ops >"$tmp/cont.out" 2>&1 && grep -q 'continued after' "$tmp/cont.out" &&
  ok || fail "continue: $(cat "$tmp/cont.out")"
wait "$run_pid"
rc=$?
stop_emulator
[ "$rc" -eq 0 ] && ok || fail "paused: exit $rc: $(tail -3 "$tmp/paused.err")"
check_exactly_once "$tmp/out/paused/results.ndjson" "$tmp/record.ndjson" "$n" paused
[ "$(grep -c '"applied":true' "$tmp/out/paused/operator.ndjson")" -eq 2 ] &&
  [ "$(grep -c '"applied":false' "$tmp/out/paused/operator.ndjson")" -eq 1 ] && ok ||
  fail "paused: operator.ndjson: $(cat "$tmp/out/paused/operator.ndjson")"

# 7. The daemon: the approval through the admin port.
spool="$tmp/spool"
mkdir -p "$spool/incoming"
cp "$tmp/token" "$spool/incoming/token"
cp "$tmp/devices.csv" "$spool/incoming/fleet.csv"
emulate '{"max_devices": 50}'
cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "127.0.0.1:0", "max_jobs": 2,
 "endpoints": {"http://127.0.0.1:$port": {"connections": 2, "requests_per_second": 0}}}
CONF
daemon_pid=
clean_up_daemon_on_exit
daemon_up "$spool" "$tmp/daemon.json"
spool_job "$spool" staged fleet.csv 0 '"rollout": {"phases": [{"devices": "2%", "gate": {"wait_for": "approval"}}]}'
admin_post() { admin_http POST "$1" "X-Fleetcast-Admin: 1"; }
jobs_show "an operator's approval of the canary" && ok || fail "daemon: /jobs never showed the approval awaited: $(admin_http GET /jobs | tail -1)"
answer=$(admin_post /jobs/staged/approve)
echo "$answer" | grep -q '^HTTP/1.[01] 202' && echo "$answer" | grep -q '"approve":"requested"' &&
  ok || fail "daemon: approve answered: $answer"
for _ in $(seq 300); do [ -f "$spool/done/staged/summary.json" ] && break; sleep 0.1; done
[ -f "$spool/done/staged/summary.json" ] && ok || fail "daemon: the approved job did not finish: $(tail -3 "$tmp/daemon.log")"
grep -q '"act":"approve","by":"admin port, client 127.0.0.1:[0-9]*",.*"applied":true' "$spool/done/staged/operator.ndjson" &&
  ok || fail "daemon: the approval is not recorded: $(cat "$spool/done/staged/operator.ndjson" 2>&1)"
grep -q '"event":"job_operator_act"' "$tmp/daemon.log" && ok || fail "daemon: no job_operator_act in the log"
kill -TERM "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=
stop_emulator
check_exactly_once "$spool/done/staged/results.ndjson" "$tmp/record.ndjson" "$n" daemon

! grep -rq "JUDGE-$$" "$tmp/out" "$tmp"/*.err "$tmp"/*.out "$tmp/daemon.log" && ok || fail "the token shows in an output"
finish
