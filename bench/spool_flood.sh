#!/bin/bash
# How long a running daemon job goes without an answer while thousands of
# job files wait in incoming/: a daemon (max_jobs 1) runs a job at 100
# requests/s against the emulator; FILES job files are moved into incoming/
# at once; /metrics is sampled every 20 ms for 20 s and the longest time
# without a new answer printed, beside the same with no files (the
# baseline). Not a test: a measurement (the README's hardening section).
# usage: bash bench/spool_flood.sh [BUILD_DIR] [FILES]   (defaults: build/release 12000)
set -u
build=${1:-build/release}
files=${2:-12000}
bin=$(realpath "$build/fleetcast")
tmp=$(mktemp -d)
emu=
dpid=
trap 'pkill -P $$ 2>/dev/null; kill $emu $dpid 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp"
"$bin" generate-devices 100000 devs.csv >/dev/null 2>&1
echo "Bearer bench" >token
"$bin" emulate --plain --listen 127.0.0.1:0 --threads 1 2>emu.err &
emu=$!
for _ in $(seq 100); do grep -q serving emu.err && break; sleep 0.05; done
ep=$(sed -n 's|.*serving \(http://127.0.0.1:[0-9]*\)/.*|\1|p' emu.err)
echo '{"admin_listen": "127.0.0.1:0", "max_jobs": 1}' >d.json
round() {  # FILES -> the longest gap
  rm -rf spool stage
  mkdir -p spool/incoming stage
  cp devs.csv token spool/incoming/
  "$bin" daemon --spool spool --config d.json 2>daemon.log &
  dpid=$!
  for _ in $(seq 100); do [ -s spool/admin.address ] && break; sleep 0.05; done
  local admin
  admin=$(cat spool/admin.address)
  cat >stage/job.json <<JOB
{"endpoint": "$ep", "auth": {"token_file": "token"}, "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1}, "devices": {"file": "devs.csv"}, "batch": {"max_devices": 10}, "rate": {"requests_per_second": 100}, "connections": 1}
JOB
  for i in $(seq "$1"); do cp stage/job.json "stage/w$i.json"; done
  mv stage/job.json spool/incoming/run.json
  python3 - "$admin" >gap.out <<'PY' &
import re, sys, time, urllib.request
prev, last, gap, t0 = None, time.time(), 0.0, time.time()
while time.time() - t0 < 20:
    text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode()
    n = sum(float(x) for x in re.findall(r'fleetcast_requests_total\{outcome="accounted"\} (\S+)', text))
    now = time.time()
    if n != prev:
        gap, last, prev = max(gap, now - last), now, n
    time.sleep(0.02)
print(f"{gap * 1000:.0f} ms (answers {prev:.0f})")
PY
  local sampler=$!
  sleep 4  # the job under way, the sampler's first seconds as they are
  [ "$1" -gt 0 ] && find stage -name 'w*.json' -exec mv -t spool/incoming {} +
  wait "$sampler"
  kill -TERM "$dpid"
  wait "$dpid" 2>/dev/null
  cat gap.out
}
echo "longest time without a new answer, $files job files moved in: $(round "$files")"
echo "the same, no job files: $(round 0)"
