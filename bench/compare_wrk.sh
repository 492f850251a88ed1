#!/bin/bash
# fleetcast's rollout against a ceiling: wrk (which parses nothing) and
# `fleetcast bench` against the same emulator, with the same 100-device
# request body, TLS, 8 connections, in the same run; then the scaling curve:
# devices/s and peak RSS at 10^4, 10^5, 10^6 and 10^7 devices.
#
# usage: bench/compare_wrk.sh [BUILD_DIR [SECONDS [MAX_DEVICES]]]
#   defaults: build/release, 10 s of wrk, 10000000
# Needs wrk, openssl, curl (installed with apt-get when missing, as root).
# Traffic stays on 127.0.0.1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
build=${1:-build/release}
seconds=${2:-10}
max_devices=${3:-10000000}
fleetcast=$build/fleetcast
[ -x "$fleetcast" ] || { echo "no $fleetcast: build first" >&2; exit 2; }
missing=""
for tool in wrk openssl curl; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
tmp=$(mktemp -d)
emu_pid=
trap '[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
path=/v2/binding/enduserapi/batchControlDevice

bench_certificate "$tmp"
bench_body "$tmp" 1
bench_wrk_script "$tmp"

# One emulator thread serves both; the client (wrk or fleetcast) has the other core.
cat >"$tmp/emu.json" <<JSON
{"listen": "127.0.0.1:0", "tls": {"cert": "$tmp/cert.pem", "key": "$tmp/key.pem"}, "threads": 1, "max_devices": 100}
JSON
"$fleetcast" emulate --config "$tmp/emu.json" 2>"$tmp/emu.err" &
emu_pid=$!
for _ in $(seq 100); do grep -q serving "$tmp/emu.err" && break; sleep 0.1; done
port=$(sed -n 's|.*serving https://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err")
url="https://127.0.0.1:$port"

wrk -t1 -c8 -d"${seconds}s" -s "$tmp/post.lua" "$url$path" >"$tmp/wrk.out"
if grep -qE 'Non-2xx|Socket errors' "$tmp/wrk.out"; then cat "$tmp/wrk.out" >&2; exit 1; fi
wrk_rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$tmp/wrk.out")
"$fleetcast" bench --target "$url" --ca-file "$tmp/cert.pem" --devices 1000000 --batch 100 \
  --connections 8 --json >"$tmp/bench.json"
fc_rps=$(sed -n 's/.*"requests_per_s":\([0-9.]*\).*/\1/p' "$tmp/bench.json")
echo "same emulator (1 thread), TLS, 8 connections, 100 devices per request:"
echo "  wrk -t1 -c8 -d${seconds}s:            $wrk_rps requests/s"
echo "  fleetcast bench (1,000,000 devices): $fc_rps requests/s  $(cat "$tmp/bench.json")"
awk -v f="$fc_rps" -v w="$wrk_rps" 'BEGIN { printf "  fleetcast / wrk = %.2f\n", f / w }'
kill "$emu_pid"
wait "$emu_pid" 2>/dev/null || true
emu_pid=

echo "scaling (in-process emulator, 1 thread; TLS; 8 connections; 100 devices per request):"
n=10000
while [ "$n" -le "$max_devices" ]; do
  "$fleetcast" bench --devices "$n" --json >"$tmp/scale.json"
  echo "  $n devices: $(sed -n 's/.*"devices_per_s":\([0-9]*\).*"peak_rss_mib":\([0-9.]*\).*/\1 devices\/s, peak RSS \2 MiB/p' "$tmp/scale.json")"
  n=$((n * 10))
done
