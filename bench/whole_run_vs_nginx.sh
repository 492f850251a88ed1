#!/bin/bash
# The whole run, the way an operator lives it, against a server nobody here
# wrote: nginx 1.22 with its Lua module (Debian's libnginx-mod-http-lua and
# lua-cjson), one worker, TLS, decoding every 100-device request and
# answering each device with a ticket of its own. Side by side in one
# script, alternating:
#   wrk: the same request body at 8 connections (wrk parses nothing,
#        writes nothing: the ceiling a client can reach);
#   fleetcast run: a job of N devices, 100 per request, 8 connections, from
#        process start to exit with every output written (results.ndjson,
#        result.json, summary.json, fsynced).
# For each: devices/s (wall clock), client CPU per device (user + system of
# the client process, /usr/bin/time), and fleetcast's ratios to wrk; also
# fleetcast's peak RSS and the time after its last answer (the closing
# line's "writing the outputs").
#
# usage: bench/whole_run_vs_nginx.sh [BUILD_DIR [DEVICES [ROUNDS [WRK_SECONDS]]]]
#   defaults: build/release, 1000000, 3, 10
# Needs (installed with apt-get when missing, as root): nginx-light,
# libnginx-mod-http-lua, lua-cjson, wrk, openssl, curl, time. Traffic stays
# on 127.0.0.1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
build=${1:-build/release}
devices=${2:-1000000}
rounds=${3:-3}
seconds=${4:-10}
fleetcast=$(realpath "$build/fleetcast")
[ -x "$fleetcast" ] || { echo "no $fleetcast: build first (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }

need=""
for p in nginx-light libnginx-mod-http-lua lua-cjson wrk openssl curl time; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
  # RUNLEVEL=1: the package's own nginx service is not started.
  apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

tmp=$(mktemp -d)
cleanup() {
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
chmod 755 "$tmp"
path=/v2/binding/enduserapi/batchControlDevice
bench_certificate "$tmp"
bench_body "$tmp" 1
bench_wrk_script "$tmp"

for _ in $(seq 20); do
  port=$((20000 + RANDOM % 20000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
cat >"$tmp/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/body;
  client_body_buffer_size 1m;
  client_max_body_size 1m;
  lua_package_cpath "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;";
  init_by_lua_block { cjson = require "cjson"; tickets = 0 }
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    keepalive_requests 10000000;
    location = $path {
      content_by_lua_block {
        ngx.req.read_body()
        local req = cjson.decode(ngx.req.get_body_data())
        local out, n = {}, 0
        for _, d in ipairs(req.deviceList) do
          tickets = tickets + 1
          n = n + 1
          out[n] = '{"data":{"productKey":' .. cjson.encode(d.productKey) .. ',"deviceKey":' ..
                   cjson.encode(d.deviceKey) .. '},"ticket":"' .. tickets .. '"}'
        end
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"code":200,"msg":"","extMsg":null,"data":{"successList":[', table.concat(out, ","),
                  '],"failureList":[]}}')
      }
    }
  }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp" -e "$tmp/nginx.err"
sleep 0.3
url="https://127.0.0.1:$port"
curl -sS --cacert "$tmp/cert.pem" -H 'Content-Type: application/json' --data-binary @"$tmp/body.json" \
  "https://localhost:$port$path" >"$tmp/answer.json"
grep -q '"ticket":"100"' "$tmp/answer.json" || { echo "nginx answered: $(head -c 300 "$tmp/answer.json")" >&2; cat "$tmp/nginx.err" >&2; exit 1; }

"$fleetcast" generate-devices "$devices" "$tmp/devices.csv" --gateway-every 0 2>/dev/null
printf 'Bearer bench\n' >"$tmp/token"
job() {  # OUTPUT_DIR -> a job file's path
  cat >"$tmp/job.json" <<JOB
{"name": "bench", "endpoint": "$url", "auth": {"token_file": "$tmp/token"},
 "tls": {"ca_file": "$tmp/cert.pem"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "qos": 1, "isCache": 1, "cacheTime": 3600, "isCover": 1},
 "devices": {"file": "$tmp/devices.csv"}, "batch": {"max_devices": 100},
 "rate": {"requests_per_second": 0}, "connections": 8, "output": {"dir": "$1"}}
JOB
  echo "$tmp/job.json"
}

echo "nginx $(nginx -v 2>&1 | sed 's|.*/||') + Lua (1 worker, per-device tickets), TLS, 8 connections, 100 devices per request, $(nproc) cores"
printf '%-6s %-10s %12s %14s %10s %10s %12s\n' round client devices/s "CPU µs/dev" "RSS MiB" "after s" "wall s"
sum() { awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; }
w_rate_sum=0 w_cpu_sum=0 f_rate_sum=0 f_cpu_sum=0
for r in $(seq "$rounds"); do
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/wrk.time" \
    wrk -t1 -c8 -d"${seconds}s" -s "$tmp/post.lua" "$url$path" >"$tmp/wrk.out"
  if grep -qE 'Non-2xx|Socket errors' "$tmp/wrk.out"; then cat "$tmp/wrk.out" >&2; exit 1; fi
  requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$tmp/wrk.out")
  read -r w_wall w_user w_sys _ <"$tmp/wrk.time"
  w_rate=$(awk -v n="$requests" -v t="$seconds" 'BEGIN { printf "%.0f", n * 100 / t }')
  w_cpu=$(awk -v n="$requests" -v u="$w_user" -v s="$w_sys" 'BEGIN { printf "%.3f", (u + s) * 1e6 / (n * 100) }')
  printf '%-6s %-10s %12s %14s %10s %10s %12s\n' "$r" wrk "$w_rate" "$w_cpu" - - "$w_wall"

  rm -rf "$tmp/out"
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/fc.time" ${BENCH_WRAP:-} "$fleetcast" run "$(job "$tmp/out")" >"$tmp/fc.out" 2>"$tmp/fc.err" ||
    { echo "fleetcast run failed: $(cat "$tmp/fc.err" "$tmp/fc.out")" >&2; exit 1; }
  grep -q "\"by_status\":{\"succeeded\":$devices," "$tmp/out/summary.json" ||
    grep -q "\"succeeded\":$devices" "$tmp/out/summary.json" ||
    { echo "not every device succeeded: $(cat "$tmp/out/summary.json")" >&2; exit 1; }
  [ -s "$tmp/out/result.json" ] || { echo "no result.json" >&2; exit 1; }
  read -r f_wall f_user f_sys f_rss <"$tmp/fc.time"
  [ -n "${BENCH_VERBOSE:-}" ] && echo "       fleetcast user $f_user s, system $f_sys s; $(tail -1 "$tmp/fc.out")"
  after=$(sed -n 's/.*(\([0-9.]*\) s of it writing the outputs.*/\1/p' "$tmp/fc.out")
  f_rate=$(awk -v n="$devices" -v t="$f_wall" 'BEGIN { printf "%.0f", n / t }')
  f_cpu=$(awk -v n="$devices" -v u="$f_user" -v s="$f_sys" 'BEGIN { printf "%.3f", (u + s) * 1e6 / n }')
  printf '%-6s %-10s %12s %14s %10s %10s %12s\n' "$r" fleetcast "$f_rate" "$f_cpu" \
    "$(awk -v k="$f_rss" 'BEGIN { printf "%.0f", k / 1024 }')" "$after" "$f_wall"
  awk -v fr="$f_rate" -v wr="$w_rate" -v fc="$f_cpu" -v wc="$w_cpu" \
    'BEGIN { printf "       ratio: devices/s %.2f of wrk, CPU per device %.2f times wrk\n", fr / wr, fc / wc }'
  w_rate_sum=$(sum "$w_rate_sum" "$w_rate"); w_cpu_sum=$(sum "$w_cpu_sum" "$w_cpu")
  f_rate_sum=$(sum "$f_rate_sum" "$f_rate"); f_cpu_sum=$(sum "$f_cpu_sum" "$f_cpu")
done
awk -v fr="$f_rate_sum" -v wr="$w_rate_sum" -v fc="$f_cpu_sum" -v wc="$w_cpu_sum" -v n="$rounds" 'BEGIN {
  printf "mean of %d rounds: wrk %.0f devices/s, %.3f µs CPU/device; fleetcast %.0f devices/s, %.3f µs CPU/device\n", n, wr / n, wc / n, fr / n, fc / n
  printf "fleetcast / wrk: devices/s %.2f, CPU per device %.2f times\n", fr / wr, fc / wc }'
