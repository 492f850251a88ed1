#!/bin/bash
# Through a real HTTP proxy (Debian's tinyproxy, on loopback, with basic
# auth): HTTPS_PROXY with a user and password, the job's `proxy` field,
# NO_PROXY, "direct", a refused password and a proxy that is down. The
# proxy's own log shows each tunnel, and the emulator counted no connection
# the proxy did not make. Skipped (exit 77) where tinyproxy is not installed
# (.ci/run installs it for this test alone).
# usage: proxy_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tmp=$(mktemp -d)
emu_pid=
proxy_pid=
source "$(dirname "$0")/lib.sh"
trap '[ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
command -v tinyproxy >/dev/null || { echo "SKIP: tinyproxy is not installed (apt-get install tinyproxy)"; exit 77; }
unset https_proxy HTTPS_PROXY http_proxy HTTP_PROXY no_proxy NO_PROXY

# A free loopback port for the proxy (tinyproxy takes no port 0).
for _ in $(seq 50); do
  pport=$((20000 + RANDOM % 30000))
  (exec 3<>"/dev/tcp/127.0.0.1/$pport") 2>/dev/null || break
done
cat >"$tmp/tinyproxy.conf" <<CONF
Port $pport
Listen 127.0.0.1
Timeout 30
LogFile "$tmp/tinyproxy.log"
LogLevel Connect
PidFile "$tmp/tinyproxy.pid"
MaxClients 50
Allow 127.0.0.1
BasicAuth fleet s3cret-pw
CONF
tinyproxy -d -c "$tmp/tinyproxy.conf" >"$tmp/tinyproxy.out" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$pport") 2>/dev/null && break; sleep 0.05; done
(exec 3<>"/dev/tcp/127.0.0.1/$pport") 2>/dev/null || { echo "tinyproxy did not start: $(cat "$tmp/tinyproxy.out")"; exit 1; }
tunnels() { grep -c 'Request (file descriptor [0-9]*): CONNECT 127.0.0.1:'"$port"' ' "$tmp/tinyproxy.log"; }
established() { grep -c 'Established connection to host "127.0.0.1"' "$tmp/tinyproxy.log"; }

n=3000
"$bin" generate-devices "$n" "$tmp/devices.csv" --gateway-every 0 2>/dev/null
echo "Bearer proxy-test-token" >"$tmp/token"
start_tls_emulator() {  # RECORD: TLS, its certificate in $tmp/emu.pem
  rm -f "$tmp/emu.err"
  "$bin" emulate --listen 127.0.0.1:0 --threads 1 --cert-out "$tmp/emu.pem" --record "$1" 2>"$tmp/emu.err" &
  emu_pid=$!
  port=$(serving_port "$tmp/emu.err" https)
  [ -n "$port" ] || { echo "emulator did not start: $(cat "$tmp/emu.err")"; exit 1; }
}
emulator_connections() {  # after stop_emulator: the connections it accepted
  sed -n 's/.*"connections":\([0-9]*\).*/\1/p' "$tmp/emu.err"
}
write_job() {  # NAME [extra members]
  cat >"$tmp/$1.json" <<JOB
{"endpoint": "https://127.0.0.1:$port", "auth": {"token_file": "token"}, "tls": {"ca_file": "emu.pem"},
 "command": {"type": 2, "data": "[]"}, "devices": {"file": "devices.csv"},
 "batch": {"max_devices": 100}, "rate": {"requests_per_second": 0}, "connections": 3,
 "retry": {"max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 50},
 "output": {"dir": "out/$1"}${2:+, $2}}
JOB
}
run_job() {  # NAME [env...]: the exit status in rc, output in $tmp/NAME.out
  local name=$1
  shift
  (cd "$tmp" && env "$@" "$bin" run "$name.json" >"$tmp/$name.out" 2>&1)
  rc=$?
}

# 1. HTTPS_PROXY with a user and password: every device once, every
#    connection through the proxy.
start_tls_emulator "$tmp/rec1.ndjson"
write_job env
run_job env HTTPS_PROXY="http://fleet:s3cret-pw@127.0.0.1:$pport"
stop_emulator
[ "$rc" -eq 0 ] && ok || fail "through HTTPS_PROXY: exit $rc: $(tail -3 "$tmp/env.out")"
grep -q "through the proxy 127.0.0.1:$pport (HTTPS_PROXY)" "$tmp/env.out" && ok || fail "the run does not say it goes through the proxy"
check_exactly_once "$tmp/out/env/results.ndjson" "$tmp/rec1.ndjson" "$n" "through the proxy"
t=$(tunnels)
accepted=$(emulator_connections)
echo "proxy: $t tunnels in tinyproxy's log, $(established) established; the emulator accepted $accepted connections"
[ "$t" -ge 1 ] && [ "$t" -eq "$accepted" ] && [ "$(established)" -eq "$t" ] && ok ||
  fail "tunnels $t, established $(established), emulator connections $accepted: not every connection went through the proxy"

# 2. The job's proxy field (no environment); "direct" against the environment;
#    NO_PROXY.
start_tls_emulator "$tmp/rec2.ndjson"
before=$(tunnels)
write_job field "\"proxy\": \"http://fleet:s3cret-pw@127.0.0.1:$pport\""
run_job field
[ "$rc" -eq 0 ] && [ "$(tunnels)" -gt "$before" ] && ok || fail "the job's proxy field: exit $rc, tunnels $before -> $(tunnels)"
before=$(tunnels)
write_job direct '"proxy": "direct"'
run_job direct HTTPS_PROXY="http://fleet:s3cret-pw@127.0.0.1:$pport"
[ "$rc" -eq 0 ] && [ "$(tunnels)" -eq "$before" ] && ok || fail "\"direct\": exit $rc, tunnels $before -> $(tunnels)"
write_job noproxy
run_job noproxy HTTPS_PROXY="http://fleet:s3cret-pw@127.0.0.1:$pport" NO_PROXY="example.com, 127.0.0.0/8"
[ "$rc" -eq 0 ] && [ "$(tunnels)" -eq "$before" ] && ! grep -q 'through the proxy' "$tmp/noproxy.out" && ok ||
  fail "NO_PROXY: exit $rc, tunnels $before -> $(tunnels)"

# 3. A refused password and a proxy that is down: the job fails with the
#    proxy's answer or the cause, nothing sent, resumable.
stop_emulator
start_tls_emulator "$tmp/rec3.ndjson"
write_job refused
run_job refused HTTPS_PROXY="http://fleet:wrong@127.0.0.1:$pport"
[ "$rc" -eq 1 ] && grep -q "the proxy 127.0.0.1:$pport refused the tunnel to 127.0.0.1:$port: HTTP 40[17]" "$tmp/refused.out" && ok ||
  fail "a refused password: exit $rc: $(grep 'failed' "$tmp/refused.out" | head -2)"
grep -q '"job_failed":3000' "$tmp/out/refused/summary.json" && ok || fail "a refused tunnel: every device job_failed"
write_job down
run_job down HTTPS_PROXY="http://fleet:s3cret-pw@127.0.0.1:1"
[ "$rc" -eq 1 ] && grep -q "cannot connect to https://127.0.0.1:$port through the proxy 127.0.0.1:1" "$tmp/down.out" && ok ||
  fail "a proxy that is down: exit $rc: $(grep 'failed' "$tmp/down.out" | head -2)"
write_job malformed
run_job malformed HTTPS_PROXY="socks5://127.0.0.1:1080"
[ "$rc" -eq 2 ] && grep -q 'HTTPS_PROXY: must be http://' "$tmp/malformed.out" && ok || fail "a malformed HTTPS_PROXY: exit $rc: $(cat "$tmp/malformed.out")"
stop_emulator
[ ! -s "$tmp/rec3.ndjson" ] && ok || fail "refused runs sent $(wc -l <"$tmp/rec3.ndjson") devices"

# Neither the token nor the proxy's password in any output of fleetcast.
if grep -rqF -e 's3cret-pw' -e 'proxy-test-token' "$tmp/out" "$tmp"/*.out; then
  fail "the token or the proxy password appears in an output"
else ok; fi
finish
