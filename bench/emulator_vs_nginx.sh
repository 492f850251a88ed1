#!/bin/bash
# The emulator's throughput against a ceiling: nginx answering a static file
# of the same size as the emulator's answer, both over TLS with the same
# certificate, both loaded by wrk with the same 100-device request body at 8
# connections, in the same run on the same machine, alternating rounds.
# Prints requests/s of each round, the means and the ratio.
#
# usage: bench/emulator_vs_nginx.sh [BUILD_DIR [SECONDS [ROUNDS [THREADS]]]]
#   defaults: build/release, 10 s per round, 3 rounds, 2 server threads
# Needs (installed with apt-get when missing, as root): nginx-light, wrk,
# openssl, curl. Traffic stays on 127.0.0.1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
build=${1:-build/release}
seconds=${2:-10}
rounds=${3:-3}
threads=${4:-2}
fleetcast=$build/fleetcast
[ -x "$fleetcast" ] || { echo "no $fleetcast: build first (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }

missing=""
for tool in nginx:nginx-light wrk:wrk openssl:openssl curl:curl; do
  command -v "${tool%%:*}" >/dev/null || [ -x "/usr/sbin/${tool%%:*}" ] || missing="$missing ${tool#*:}"
done
if [ -n "$missing" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d)
emu_pid=
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
path=/v2/binding/enduserapi/batchControlDevice

bench_certificate "$tmp"

bench_body "$tmp" 7919

cat >"$tmp/emu.json" <<JSON
{"listen": "127.0.0.1:0", "tls": {"cert": "$tmp/cert.pem", "key": "$tmp/key.pem"},
 "threads": $threads, "max_devices": 100}
JSON
"$fleetcast" emulate --config "$tmp/emu.json" 2>"$tmp/emu.err" &
emu_pid=$!
for _ in $(seq 100); do grep -q serving "$tmp/emu.err" && break; sleep 0.1; done
emu_port=$(sed -n 's|.*serving https://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/emu.err")
[ -n "$emu_port" ] || { cat "$tmp/emu.err" >&2; exit 1; }
curl -sS --cacert "$tmp/cert.pem" -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' \
  --data-binary @"$tmp/body.json" "https://localhost:$emu_port$path" >"$tmp/answer.json"
grep -q '"code":200' "$tmp/answer.json" || { echo "emulator answered: $(cat "$tmp/answer.json")" >&2; exit 1; }
answer_size=$(stat -c %s "$tmp/answer.json")

# nginx serving that answer as a static file (POST re-served as the file).
mkdir -p "$tmp/www${path%/*}"
cp "$tmp/answer.json" "$tmp/www$path"
chmod 755 "$tmp"
chmod -R a+rX "$tmp/www"  # nginx workers run as an unprivileged user
for _ in $(seq 20); do
  ng_port=$((20000 + RANDOM % 20000))
  (exec 3<>"/dev/tcp/127.0.0.1/$ng_port") 2>/dev/null || break
done
cat >"$tmp/nginx.conf" <<CONF
worker_processes $threads;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  server {
    listen 127.0.0.1:$ng_port ssl;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    keepalive_requests 1000000;
    location / {
      root $tmp/www;
      default_type application/json;
      error_page 405 =200 \$uri;
    }
  }
}
CONF
"$nginx_bin" -c "$tmp/nginx.conf" -p "$tmp"
sleep 0.5
ng_size=$(curl -sS -o "$tmp/ng_answer" -w "%{size_download}" --cacert "$tmp/cert.pem" --data-binary @"$tmp/body.json" "https://localhost:$ng_port$path")
[ "$ng_size" -eq "$answer_size" ] || { echo "nginx answered $ng_size bytes, expected $answer_size:" >&2; head -c 300 "$tmp/ng_answer" >&2; cat "$tmp/nginx.err" >&2; exit 1; }

bench_wrk_script "$tmp"

measure() {  # PORT -> requests/s (fails on any non-2xx answer or socket error)
  wrk -t2 -c8 -d"${seconds}s" -s "$tmp/post.lua" "https://127.0.0.1:$1$path" >"$tmp/wrk.out"
  if grep -qE 'Non-2xx|Socket errors' "$tmp/wrk.out"; then cat "$tmp/wrk.out" >&2; exit 1; fi
  sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$tmp/wrk.out"
}

echo "request $(stat -c %s "$tmp/body.json") bytes (100 devices), answer $answer_size bytes; TLS; wrk -t2 -c8 -d${seconds}s; $threads server threads; $(nproc) cores"
ng_sum=0
emu_sum=0
for r in $(seq "$rounds"); do
  ng=$(measure "$ng_port")
  emu=$(measure "$emu_port")
  echo "round $r: nginx $ng requests/s, emulator $emu requests/s"
  ng_sum=$(echo "$ng_sum + $ng" | bc -l 2>/dev/null || awk -v a="$ng_sum" -v b="$ng" 'BEGIN{print a+b}')
  emu_sum=$(awk -v a="$emu_sum" -v b="$emu" 'BEGIN{print a+b}')
done
awk -v n="$ng_sum" -v e="$emu_sum" -v r="$rounds" 'BEGIN {
  printf "mean: nginx %.0f requests/s, emulator %.0f requests/s, emulator/nginx = %.2f\n", n / r, e / r, e / n }'
