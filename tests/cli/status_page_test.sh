#!/bin/bash
# The daemon's status page (/ of the admin port) in a real browser: Debian's
# chromium, headless, against a running daemon with two jobs, one finished
# with failed devices, one aborted by its canary and one running at 2
# requests/s. The page's script
# reads /jobs and draws it; the test reads the DOM the browser built and
# checks what it shows against /jobs: the jobs and their states, the
# progress bar, the failures by reason with their counts, the tiles.
# STATUS_PAGE_SCREENSHOT=FILE also saves a screenshot (the README's).
# Skipped (77) without chromium, except under FLEETCAST_REQUIRE_TOOLS (CI's
# step that installs it).
# usage: status_page_test.sh FLEETCAST
set -u
bin=$1
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  [ -n "${FLEETCAST_REQUIRE_TOOLS:-}" ] && { echo "FAIL chromium is missing"; exit 1; }
  echo "chromium not installed: skipped"
  exit 77
fi
tmp=$(mktemp -d)
daemon_pid=
source "$(dirname "$0")/lib.sh"
trap '[ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null; [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"' EXIT
spool=$tmp/spool

start_emulator --config "$(emulator_config '{"latency_ms": {"fixed": 1, "random": 0}, "device_failure_ratio": 0.2}')"
daemon_with_fleets "$spool" status-page-token 300 20000

spool_job "$spool" finished-job small.csv 0
for _ in $(seq 200); do [ -f "$spool/done/finished-job/summary.json" ] && break; sleep 0.05; done
[ -f "$spool/done/finished-job/summary.json" ] && ok || fail "the small job did not finish: $(tail -3 "$tmp/daemon.log")"
spool_job "$spool" canary-job small.csv 0 '"rollout": {"canary_devices": 50, "abort_failure_ratio": 0.05}'
for _ in $(seq 200); do [ -f "$spool/failed/canary-job/summary.json" ] && break; sleep 0.05; done
[ -f "$spool/failed/canary-job/summary.json" ] && ok || fail "the canary job was not aborted: $(ls "$spool"/*)"
spool_job "$spool" running-job large.csv 2
for _ in $(seq 200); do admin_http GET /jobs | grep -q '"name":"running-job","state":"running".*"devices_per_second":[1-9]' && break; sleep 0.1; done

# The page itself: served by the binary, no outside resource.
page=$(admin_http GET /)
echo "$page" | head -1 | grep -q ' 200 ' && echo "$page" | grep -qi '^content-type: text/html' && ok || fail "GET / is not an HTML page: $(echo "$page" | head -3)"
echo "$page" | grep -Eq '(src|href)="(https?:)?//' && fail "the page loads something from elsewhere" || ok

# What the browser shows, after its script fetched /jobs (virtual time: the
# page's 2 s refresh runs without the test waiting for it).
"$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --user-data-dir="$tmp/profile" --virtual-time-budget=5000 --dump-dom "http://127.0.0.1:$aport/" \
  >"$tmp/dom.html" 2>"$tmp/browser.err"
jobs=$(admin_http GET /jobs | sed '1,/^\r*$/d')
grep -q 'data-rendered="[1-9]' "$tmp/dom.html" && ok || fail "the page's script did not draw the jobs: $(head -c 300 "$tmp/dom.html"; tail -3 "$tmp/browser.err")"
grep -q '<tr class="job" data-name="finished-job" data-state="completed">' "$tmp/dom.html" && ok || fail "the finished job is not shown as completed"
grep -q '<tr class="job" data-name="running-job" data-state="running">' "$tmp/dom.html" && ok || fail "the running job is not shown as running"
grep -q '<tr class="job" data-name="canary-job" data-state="aborted">' "$tmp/dom.html" && ok || fail "the aborted job is not shown as aborted"
# The canary: about 50 devices, a sample of the list; the rest never sent.
verdict=$(grep -o '<div class="verdict">aborted by the canary: [0-9]* of its [0-9]* devices failed' "$tmp/dom.html")
c=$(echo "$verdict" | sed -n 's/.* of its \([0-9]*\) devices.*/\1/p')
[ -n "$c" ] && [ "$c" -ge 30 ] && [ "$c" -le 70 ] && ok || fail "the canary's verdict is not shown: $(grep -o '<div class="verdict">[^<]*' "$tmp/dom.html")"
grep -q "data-reason=\"aborted\" data-count=\"$((300 - ${c:-0}))\">aborted $((300 - ${c:-0}))<" "$tmp/dom.html" && ok ||
  fail "the canary job's $((300 - ${c:-0})) devices never sent are not shown"
# Failures by reason: the same count as /jobs, which is the job's summary.
want=$(echo "$jobs" | grep -o '"name":"finished-job"[^}]*"by_reason":{[^}]*}' | sed -n 's/.*"device_failed":\([0-9]*\).*/\1/p')
summary_failed=$(sed -n 's/.*"device_failed":\([0-9]*\).*/\1/p' "$spool/done/finished-job/summary.json")
[ -n "$want" ] && [ "$want" -gt 0 ] && [ "$want" = "$summary_failed" ] && ok || fail "/jobs device_failed '$want', summary.json '$summary_failed'"
grep -q "data-reason=\"device_failed\" data-count=\"$want\">device_failed $want<" "$tmp/dom.html" && ok || fail "the page does not show device_failed $want: $(grep -o '<span class="chip[^<]*<' "$tmp/dom.html")"
# The running job's bar: a share of its 20,000 devices, above 0 and below 100.
pct=$(grep -o '<tr class="job" data-name="running-job".*' "$tmp/dom.html" | grep -o 'aria-valuenow="[0-9.]*"' | head -1 | tr -dc '0-9.')
awk -v p="${pct:-x}" 'BEGIN { exit !(p + 0 > 0 && p + 0 < 100) }' && ok || fail "running job's bar at '$pct'"
grep -Eq 'of ~?20,000<' "$tmp/dom.html" && ok || fail "the running job's total (20,000) is not shown"
grep -q '<b id="t-running">1</b>' "$tmp/dom.html" && grep -q '<b id="t-finished">2</b>' "$tmp/dom.html" && ok || fail "tiles: $(grep -o '<b id="t-[a-z]*">[^<]*' "$tmp/dom.html" | tr '\n' ' ')"
grep -q '<span id="daemon" class="ready">ready</span>' "$tmp/dom.html" && ok || fail "the daemon is not shown ready"
grep -q 'status-page-token' "$tmp/dom.html" && fail "the token shows on the page" || ok

# A change from another site's page is refused even from loopback (CSRF);
# the same request without Origin (a script, curl) is taken.
admin_http POST /jobs/running-job/cancel "Origin: http://evil.example" | head -1 | grep -q ' 403 ' && ok || fail "a cross-site cancel was not refused"
grep -q '"name":"running-job","state":"running"' <<<"$(admin_http GET /jobs)" && ok || fail "the refused cancel stopped the job"

if [ -n "${STATUS_PAGE_SCREENSHOT:-}" ]; then
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
    --virtual-time-budget=5000 --window-size=1280,420 --screenshot="$STATUS_PAGE_SCREENSHOT" \
    "http://127.0.0.1:$aport/" 2>/dev/null
  echo "screenshot: $STATUS_PAGE_SCREENSHOT"
fi
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=
finish
