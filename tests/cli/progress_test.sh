#!/bin/bash
# The progress line as an operator sees it: in a pseudo-terminal of 80
# columns (script(1) opens it) a percentage and an ETA within the first
# seconds, no line wider than 79 columns, what the run waits for; plain lines
# without escapes in a log and with TERM=dumb; --quiet; --json.
# usage: progress_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tmp=$(mktemp -d)
emu_pid=
source "$(dirname "$0")/lib.sh"
trap '[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
command -v script >/dev/null || { echo "SKIP: script(1) (util-linux) is missing"; exit 0; }

n=30000
"$bin" generate-devices "$n" "$tmp/devices.csv" --gateway-every 0 2>/dev/null
echo "Bearer progress-test" >"$tmp/token"
start_emulator --config "$(emulator_config '{"latency_ms": 5}')"
write_job() {  # NAME RATE
  cat >"$tmp/$1.json" <<JOB
{"endpoint": "http://127.0.0.1:$port", "auth": {"token_file": "token"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "devices.csv"},
 "batch": {"max_devices": 100}, "rate": {"requests_per_second": $2}, "connections": 2,
 "output": {"dir": "out/$1"}}
JOB
}
segments() {  # FILE: the drawn lines, one a line (\r and \n split, escapes gone)
  tr '\r' '\n' <"$1" | sed 's/\x1b\[K//g' | grep -v '^$'
}

# Pseudo-terminals may be missing (a chroot without devpts): then the
# terminal checks are skipped, said, and the test ends as skipped (77).
have_pty=yes
script -q -c true /dev/null >/dev/null 2>&1 || have_pty=
if [ -z "$have_pty" ]; then
  echo "SKIP: no pseudo-terminal can be opened here ($(script -q -c true /dev/null 2>&1 | head -1)); the terminal checks are skipped"
fi

if [ -n "$have_pty" ]; then
# 1. A terminal of 80 columns: percentage and ETA early, never wider than 79.
write_job tty 60  # 6,000 devices/s: about 5 s
(cd "$tmp" && TERM=xterm script -q -c "stty cols 80; exec '$bin' run tty.json" /dev/null >"$tmp/tty.out" 2>&1)
# An ETA early in the run: the first line that has one is drawn before a
# third of the fleet is done (the run's own order of events, not a clock).
first_eta=$(segments "$tmp/tty.out" | grep -E '^ *[0-9]+% [0-9,]+/~?30,000 devices, .*ETA [0-9]' | head -1)
pct=$(echo "$first_eta" | sed -E 's/^ *([0-9]+)%.*/\1/')
[ -n "$first_eta" ] && [ "$pct" -lt 34 ] && ok ||
  fail "no percentage and ETA before a third of the devices: ${first_eta:-none}; $(segments "$tmp/tty.out" | head -3)"
wide=$(segments "$tmp/tty.out" | grep -v '^fleetcast: ' | awk 'length($0) > 79' | wc -l)
drawn=$(segments "$tmp/tty.out" | grep -c '% ')
[ "$wide" -eq 0 ] && [ "$drawn" -ge 5 ] && ok || fail "$wide of $drawn progress lines are wider than 79 columns"
segments "$tmp/tty.out" | grep -q 'waiting: the rate limit' && ok || fail "a rate-limited run does not say it waits for the rate limit"
segments "$tmp/tty.out" | grep -q '^100% 30,000/30,000 devices' && ok || fail "the last line is not 100%: $(segments "$tmp/tty.out" | tail -2)"
grep -q "30000 sent in .* devices/s over the whole run" "$tmp/tty.out" && ok || fail "the closing line: $(tail -1 "$tmp/tty.out")"

# A narrow terminal: still one line each.
write_job narrow 0
(cd "$tmp" && TERM=xterm script -q -c "stty cols 40; exec '$bin' run narrow.json" /dev/null >"$tmp/narrow.out" 2>&1)
wide=$(segments "$tmp/narrow.out" | grep -v '^fleetcast: ' | awk 'length($0) > 39' | wc -l)
[ "$wide" -eq 0 ] && ok || fail "40 columns: $wide lines wider than 39"

# 2. TERM=dumb on a terminal, and a log: plain lines, no escapes, no \r.
write_job dumb 0
(cd "$tmp" && TERM=dumb script -q -c "exec '$bin' run dumb.json" /dev/null >"$tmp/dumb.out" 2>&1)
# (a pseudo-terminal ends lines with \r\n: only a \r elsewhere redraws)
! grep -q $'\x1b' "$tmp/dumb.out" && ! sed 's/\r$//' "$tmp/dumb.out" | grep -q $'\r' &&
  grep -q '^fleetcast: .*devices' "$tmp/dumb.out" && ok || fail "TERM=dumb: escapes or carriage returns in the output"
fi  # have_pty
write_job log 0
(cd "$tmp" && "$bin" run log.json >"$tmp/log.out" 2>"$tmp/log.err")
! grep -q $'\x1b' "$tmp/log.err" && ! grep -q $'\r' "$tmp/log.err" && grep -q '^fleetcast: .*devices' "$tmp/log.err" && ok || fail "a log: $(head -3 "$tmp/log.err")"

# What a run waits for: the time window, said on the plain line too.
opens=$(date -u -d '+3 seconds' +%Y-%m-%dT%H:%M:%SZ)
write_job window 0
sed -i "s|\"output\"|\"rollout\": {\"not_before\": \"$opens\"}, \"output\"|" "$tmp/window.json"
(cd "$tmp" && "$bin" run window.json >"$tmp/window.out" 2>"$tmp/window.err")
grep -q 'waiting: the time window (opens in [0-9]* s)' "$tmp/window.err" && ok || fail "the time window: $(head -3 "$tmp/window.err")"

# 3. --quiet says nothing; --json prints the summary on stdout.
write_job quiet 0
(cd "$tmp" && "$bin" run quiet.json --quiet >"$tmp/quiet.out" 2>"$tmp/quiet.err")
[ $? -eq 0 ] && [ ! -s "$tmp/quiet.out" ] && [ ! -s "$tmp/quiet.err" ] && ok || fail "--quiet: $(cat "$tmp/quiet.out" "$tmp/quiet.err")"
write_job json 0
(cd "$tmp" && "$bin" run json.json --json >"$tmp/json.out" 2>/dev/null)
cmp -s "$tmp/json.out" "$tmp/out/json/summary.json" && grep -q '"state":"completed"' "$tmp/json.out" && ok || fail "--json: $(head -c 300 "$tmp/json.out")"
stop_emulator
finish || exit 1
[ -n "$have_pty" ] || exit 77
