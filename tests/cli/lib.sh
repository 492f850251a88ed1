# Helpers for the end-to-end scripts (sourced by bash): pass/fail counters,
# an emulator on a free loopback port, and the check that every device of a
# run has exactly one result and was commanded no more often than its result
# admits (device by device against the emulator's record; awk only).
# The sourcing script sets: bin (the fleetcast binary), tmp (a scratch folder).
passed=0
failed=0
emu_pid=
ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

emulator_config() {  # JSON -> a config file's path
  local f="$tmp/emu-$RANDOM.json"
  printf '%s\n' "$1" >"$f"
  echo "$f"
}
# The port of an emulator's whole "serving SCHEME://127.0.0.1:PORT/" line
# in FILE, waiting for it (30 s at most); empty when it never came. Remove
# FILE before starting the emulator: the shell truncates it only once the
# background process runs, and a previous emulator's line must not count.
serving_port() {  # FILE SCHEME
  local p=
  for _ in $(seq 300); do
    p=$(sed -n "s|.*serving $2://127.0.0.1:\([0-9]*\)/.*|\1|p" "$1" 2>/dev/null)
    [ -n "$p" ] && break
    sleep 0.1
  done
  echo "$p"
}
start_emulator() {  # extra flags...; sets port and emu_pid (EMU_PORT: that port, not a free one)
  rm -f "$tmp/emu.err"
  "$bin" emulate --plain --listen "127.0.0.1:${EMU_PORT:-0}" --threads 1 "$@" 2>"$tmp/emu.err" &
  emu_pid=$!
  port=$(serving_port "$tmp/emu.err" http)
  [ -n "$port" ] || { echo "emulator did not start: $(cat "$tmp/emu.err")"; exit 1; }
}
# An HTTPS emulator with CONFIG (JSON) on a free loopback port, its
# certificate in $tmp/ca.pem, its record in $tmp/record.ndjson; sets port
# and emu_pid.
start_tls_emulator() {  # CONFIG-JSON
  rm -f "$tmp/emu.err" "$tmp/record.ndjson"
  "$bin" emulate --listen 127.0.0.1:0 --threads 1 --cert-out "$tmp/ca.pem" \
    --record "$tmp/record.ndjson" --config "$(emulator_config "$1")" 2>"$tmp/emu.err" &
  emu_pid=$!
  port=$(serving_port "$tmp/emu.err" https)
  [ -n "$port" ] || { echo "emulator did not start: $(cat "$tmp/emu.err")"; exit 1; }
}
keys_with() {  # RESULTS REGEX -> the sorted deviceKeys of matching lines
  grep -E "$2" "$1" | sed -n 's/.*"deviceKey":"\([^"]*\)".*/\1/p' | sort
}
record_keys() {  # RECORD -> the sorted deviceKeys commanded
  sed -n 's/.*"deviceKey":"\([^"]*\)".*/\1/p' "$1" | sort
}
wait_for_lines() {  # FILE N: until FILE has N lines (4 s at most)
  for _ in $(seq 200); do
    [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return
    sleep 0.02
  done
}
stop_emulator() {  # the record is complete once it stops
  kill -TERM "$emu_pid"
  wait "$emu_pid" 2>/dev/null
  emu_pid=
}

# Every index once; each device commanded once, or more only if uncertain;
# each success was executed by the emulator.
check_exactly_once() {  # RESULTS RECORD COUNT LABEL
  local lines unique
  lines=$(wc -l <"$1")
  unique=$(sed -n 's/^{"index":\([0-9]*\),.*/\1/p' "$1" | sort -un | wc -l)
  [ "$lines" -eq "$3" ] && [ "$unique" -eq "$3" ] && ok || fail "$4: $lines result lines, $unique distinct indices, want $3"
  awk '
    FNR == NR { if (match($0, /"deviceKey":"[^"]*"/)) sent[substr($0, RSTART + 13, RLENGTH - 14)]++; next }
    match($0, /"deviceKey":"[^"]*"/) {
      k = substr($0, RSTART + 13, RLENGTH - 14)
      if (sent[k] > 1 && $0 !~ /"uncertain":true/) bad++
      if ($0 ~ /"status":"succeeded"/ && sent[k] < 1) bad++
    }
    END { exit bad > 0 }' "$2" "$1" && ok || fail "$4: a device was commanded more often than its result admits"
}

# No device with a result in RESULTS-BEFORE was executed twice (RECORD).
check_not_resent() {  # RESULTS-BEFORE RECORD LABEL
  awk 'FNR == NR { if (match($0, /"deviceKey":"[^"]*"/)) had[substr($0, RSTART + 13, RLENGTH - 14)] = 1; next }
       match($0, /"deviceKey":"[^"]*"/) { k = substr($0, RSTART + 13, RLENGTH - 14); if (had[k]) c[k]++ }
       END { for (k in c) if (c[k] > 1) bad++; exit bad > 0 }' "$1" "$2" &&
    ok || fail "$3: a device that had a result before the stop was sent again"
}

# At exit: the daemon ($daemon_pid) and the emulator killed, $tmp removed
# (kept and named when KEEP is set).
clean_up_daemon_on_exit() {
  trap '[ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null; [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"' EXIT
}
# A daemon on SPOOL with CONFIG (admin_listen 127.0.0.1:0); sets daemon_pid
# and aport (its admin port). Its stderr goes to $tmp/daemon.log.
daemon_up() {  # SPOOL CONFIG
  rm -f "$1/admin.address"
  "$bin" daemon --spool "$1" --config "$2" 2>>"$tmp/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 400); do [ -s "$1/admin.address" ] && break; sleep 0.05; done
  aport=$(sed 's/.*://' "$1/admin.address")
  [ -n "$aport" ] || { echo "daemon did not start: $(tail -5 "$tmp/daemon.log")"; exit 1; }
}
admin_http() {  # METHOD PATH [HEADER] -> the whole answer of the admin port on stdout
  exec 3<>"/dev/tcp/127.0.0.1/$aport" || return 1
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n%s\r\n' "$1" "$2" "$aport" "${3:+$3$'\r\n'}" >&3
  timeout 10 cat <&3
  exec 3<&-
}
# Until the daemon's /jobs matches REGEX (grep -E; 300 tries 0.05 s apart,
# plus the requests' own time); false when it never did.
jobs_show() {  # REGEX
  wait_until 300 0.05 jobs_match "$1"
}
jobs_match() { admin_http GET /jobs | grep -qE "$1"; }
# Until CMD succeeds: TRIES tries INTERVAL s apart; false (the caller fails,
# saying what it waited for) when it never did. Its output in $tmp/until.out.
wait_until() {  # TRIES INTERVAL CMD...
  local tries=$1 interval=$2
  shift 2
  for _ in $(seq "$tries"); do
    "$@" >"$tmp/until.out" 2>&1 && return 0
    sleep "$interval"
  done
  return 1
}
# A job file named NAME.json in SPOOL/incoming (written aside, renamed in):
# DEVICES (a file there), 10 devices per request, RATE requests/s, one
# connection, the emulator at $port.
spool_job() {  # SPOOL NAME DEVICES RATE [extra members]
  cat >"$1/incoming/.$2.tmp" <<JOB
{"endpoint": "http://127.0.0.1:$port", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "$3"}, "batch": {"max_devices": 10},
 "rate": {"requests_per_second": $4}, "connections": 1${5:+, $5}}
JOB
  mv "$1/incoming/.$2.tmp" "$1/incoming/$2.json"
}
# A spool for a daemon against the emulator at $port: the token file,
# small.csv and large.csv (distinct devices) in incoming/, and
# $tmp/daemon.json (admin port on loopback, 2 jobs at once); then the daemon.
daemon_with_fleets() {  # SPOOL TOKEN SMALL-COUNT LARGE-COUNT
  mkdir -p "$1/incoming"
  printf 'Bearer %s\n' "$2" >"$1/incoming/token"
  "$bin" generate-devices "$3" "$1/incoming/small.csv" --gateway-every 0 2>/dev/null
  "$bin" generate-devices "$4" "$1/incoming/large.csv" --gateway-every 0 2>/dev/null
  sed -i "2,\$ s/^\([^,]*\),/\1,big-/" "$1/incoming/large.csv"
  cat >"$tmp/daemon.json" <<CONF
{"admin_listen": "127.0.0.1:0", "max_jobs": 2,
 "endpoints": {"http://127.0.0.1:$port": {"connections": 2, "requests_per_second": 0}}}
CONF
  daemon_up "$1" "$tmp/daemon.json"
}

# Each device's delivery in RESULTS against the ack the emulator planned
# for its ticket in RECORD: succ = delivered, fail = delivery_failed, lost
# = null; every line carries the field; devices not accepted have null.
check_deliveries() {  # RESULTS RECORD LABEL
  awk '
    function field(name,   m) {
      if (match($0, "\"" name "\":(\"[^\"]*\"|null)")) {
        m = substr($0, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
        gsub(/"/, "", m); return m
      }
      return "absent"
    }
    FNR == NR { if ($0 ~ /"outcome":"succeeded"/) fate[field("ticket")] = field("ack"); next }
    {
      lines++
      d = field("delivery"); t = field("ticket")
      if (d == "absent") { bad++; if (shown++ < 3) print "no delivery field: " $0; next }
      want = "null"
      if ($0 ~ /"status":"succeeded"/) {
        if (!(t in fate)) { bad++; if (shown++ < 3) print "ticket not issued: " $0; next }
        want = fate[t] == "succ" ? "delivered" : fate[t] == "fail" ? "delivery_failed" : "null"
        n[want]++
      }
      if (d != want) { bad++; if (shown++ < 3) print "want " want ": " $0 }
      if (d != "null" && $0 !~ /"ackAt":[0-9]+/) { bad++; if (shown++ < 3) print "no ackAt: " $0 }
    }
    END {
      printf "%d lines: %d delivered, %d delivery_failed, %d without ack\n", lines, n["delivered"], n["delivery_failed"], n["null"]
      exit bad > 0
    }' "$2" "$1" && ok || fail "$3: a delivery outcome differs from the emulator's record"
}
summary_count() {  # SUMMARY KEY -> the number
  sed -n "s/.*\"deliveries\":{.*\"$2\":\([0-9]*\).*/\1/p" "$1"
}
