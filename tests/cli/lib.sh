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
start_emulator() {  # extra flags...; sets port and emu_pid (EMU_PORT: that port, not a free one)
  "$bin" emulate --plain --listen "127.0.0.1:${EMU_PORT:-0}" --threads 1 "$@" 2>"$tmp/emu.err" &
  emu_pid=$!
  for _ in $(seq 300); do grep -q serving "$tmp/emu.err" && break; sleep 0.1; done
  port=$(sed -n 's|.*serving http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err")
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
