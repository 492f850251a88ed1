#!/bin/bash
# Delivery acknowledgements from a real AMQP 1.0 broker: Debian's RabbitMQ
# with its rabbitmq_amqp1_0 plugin, TLS on loopback (a certificate made here
# with openssl), every login checked by an auth backend this test provides
# (amqp_auth.py through rabbitmq_auth_backend_http: the documented AccessKey
# username with its timestamp, the SHA-256 password). REQACKs come from the
# emulator's acknowledgement file through a publisher written apart from
# fleetcast (reqack_publisher.py, Qpid Proton's Python binding), into
# vhost quec-open, queue a.1.fleetcast; fleetcast reads it as
# /amq/queue/a.1.fleetcast (RabbitMQ 3's address form). Checked: every
# device's delivery outcome against the emulator's record; the broker
# cutting fleetcast's connection mid-run (a new login, a new username);
# a SIGKILL during the wait and --resume; a refused secret; a missing queue
# (refused at once with the broker's reason); no secret in any output.
# Skipped (77) without rabbitmq-server, python3-qpid-proton or openssl
# (.ci/run installs them for this test alone), unless
# FLEETCAST_REQUIRE_TOOLS is set.
# usage: rabbitmq_test.sh FLEETCAST SOURCE_DIR
set -u
bin=$1
tmp=$(mktemp -d)
here=$(dirname "$0")
emu_pid=
auth_pid=
pub_pid=
py=/usr/bin/python3
rmq=/usr/lib/rabbitmq/bin
missing=
[ -x "$rmq/rabbitmq-server" ] || missing="$missing rabbitmq-server"
"$py" -c 'import proton' 2>/dev/null || missing="$missing python3-qpid-proton"
command -v openssl >/dev/null || missing="$missing openssl"
if [ -n "$missing" ]; then
  [ -n "${FLEETCAST_REQUIRE_TOOLS:-}" ] && { echo "FAIL missing:$missing"; exit 1; }
  echo "skipped: missing$missing"
  exit 77
fi
source "$here/lib.sh"
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
amqps=$(free_port)
plain=$(free_port)  # the publisher's own listener: cutting fleetcast's leaves it be
dist=$(free_port)
epmd=$(free_port)
# The broker's and rabbitmqctl's cookie, epmd, and the plugins rabbitmqctl knows.
export HOME=$tmp/home ERL_EPMD_PORT=$epmd RABBITMQ_ENABLED_PLUGINS_FILE=$tmp/enabled_plugins
mkdir -p "$HOME"
# The node is named @localhost: Erlang's resolver is told that name itself,
# so a machine without an /etc/hosts entry for it (a bare chroot) still runs.
printf '{host, {127,0,0,1}, ["localhost"]}.\n{lookup, [file, native]}.\n' >"$tmp/inetrc"
export ERL_INETRC=$tmp/inetrc
node=fleetcast-test@localhost
ctl() { "$rmq/rabbitmqctl" -n "$node" "$@"; }
cleanup() {
  for p in $emu_pid $auth_pid $pub_pid; do kill "$p" 2>/dev/null; done
  ctl stop >/dev/null 2>&1
  epmd -kill >/dev/null 2>&1
  [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

# TLS: a CA, and the broker's certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fleetcast-test-ca \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$tmp/broker.key" \
  -out "$tmp/broker.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tmp/san.ext"
openssl x509 -req -in "$tmp/broker.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 2 -extfile "$tmp/san.ext" -out "$tmp/broker.pem" 2>/dev/null

# The credentials, and the auth backend that checks them.
key="AK$$fleetcastkey"
printf '%s\n' "$key" >"$tmp/access_key"
secret="AS-$$-secret-not-for-output"
printf '%s\n' "$secret" >"$tmp/access_secret"
printf '%s\n' "Bearer TOKEN-$$-not-for-output" >"$tmp/token"
pub_pass="publisher-$$"
"$py" "$here/amqp_auth.py" "$tmp/auth.port" "$tmp/auth.log" "$key" "$tmp/access_secret" \
  publisher "$pub_pass" 2>"$tmp/auth.err" &
auth_pid=$!
for _ in $(seq 200); do [ -s "$tmp/auth.port" ] && break; sleep 0.05; done
ap=$(cat "$tmp/auth.port")

# The broker.
cat >"$tmp/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$plain
listeners.ssl.default = 127.0.0.1:$amqps
ssl_options.cacertfile = $tmp/ca.pem
ssl_options.certfile = $tmp/broker.pem
ssl_options.keyfile = $tmp/broker.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
auth_backends.1 = http
auth_http.http_method = post
auth_http.user_path = http://127.0.0.1:$ap/auth/user
auth_http.vhost_path = http://127.0.0.1:$ap/auth/vhost
auth_http.resource_path = http://127.0.0.1:$ap/auth/resource
auth_http.topic_path = http://127.0.0.1:$ap/auth/topic
loopback_users = none
distribution.listener.interface = 127.0.0.1
distribution.listener.port_range.min = $dist
distribution.listener.port_range.max = $dist
log.console = false
log.file.level = info
CONF
echo '[rabbitmq_amqp1_0,rabbitmq_auth_backend_http].' >"$tmp/enabled_plugins"
env RABBITMQ_CONFIG_FILE="$tmp/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$tmp/enabled_plugins" \
  RABBITMQ_MNESIA_BASE="$tmp/mnesia" RABBITMQ_LOG_BASE="$tmp/log" RABBITMQ_NODENAME="$node" \
  RABBITMQ_PID_FILE="$tmp/rabbit.pid" "$rmq/rabbitmq-server" >"$tmp/broker.out" 2>&1 &
started=
for _ in $(seq 1200); do  # the broker says when it is up (60 s at most)
  grep -q 'Server startup complete' "$tmp/log/$node.log" 2>/dev/null && { started=1; break; }
  grep -q 'BOOT FAILED' "$tmp/broker.out" && break
  sleep 0.05
done
[ -n "$started" ] || { echo "FAIL the broker did not start: $(tail -5 "$tmp/broker.out")"; exit 1; }
ctl add_vhost quec-open >/dev/null 2>&1 || { echo "FAIL add_vhost"; exit 1; }
echo "RabbitMQ $(ctl version 2>/dev/null) on 127.0.0.1:$amqps (TLS), AMQP 1.0 plugin"

n=3000
"$bin" generate-devices "$n" "$tmp/devices.csv" 2>/dev/null
# The emulator (plain HTTP on loopback) writes each REQACK it plans to
# $tmp/emitted-NAME.ndjson; the publisher takes them to the broker.
start_run() {  # NAME EMULATOR-ACKS-FIELDS
  rm -f "$tmp/emitted-$1.ndjson" "$tmp/pub.stop"
  touch "$tmp/emitted-$1.ndjson"
  rm -f "$tmp/emu.err" "$tmp/record.ndjson"
  "$bin" emulate --plain --listen 127.0.0.1:0 --threads 1 --record "$tmp/record.ndjson" \
    --config "$(emulator_config '{"max_devices": 100, "acks": {"ndjson": "'"$tmp/emitted-$1.ndjson"'", '"$2"'}}')" \
    2>"$tmp/emu.err" &
  emu_pid=$!
  port=$(serving_port "$tmp/emu.err" http)
  [ -n "$port" ] || { echo "FAIL emulator: $(cat "$tmp/emu.err")"; exit 1; }
  "$py" "$here/reqack_publisher.py" "$tmp/emitted-$1.ndjson" 127.0.0.1 "$plain" - \
    vhost:quec-open a.1.fleetcast publisher "$pub_pass" "$tmp/pub.stop" >"$tmp/pub-$1.out" 2>"$tmp/pub-$1.err" &
  pub_pid=$!
  for _ in $(seq 400); do grep -qx attached "$tmp/pub-$1.out" && break; sleep 0.05; done
  grep -qx attached "$tmp/pub-$1.out" || { echo "FAIL publisher: $(cat "$tmp/pub-$1.err")"; exit 1; }
}
end_run() {  # NAME: the publisher stops once all it read is accepted; the emulator's record completes
  touch "$tmp/pub.stop"
  wait "$pub_pid"
  pub_pid=
  stop_emulator
}
write_job() {  # NAME SECRET-FILE QUEUE TIMEOUT
  cat >"$tmp/$1.json" <<JOB
{"name": "$1", "endpoint": "http://127.0.0.1:$port", "auth": {"token_file": "token"},
 "tls": {"ca_file": "ca.pem"},
 "command": {"type": 2, "data": "[{\"switch\":true}]", "isCache": 1, "cacheTime": 600, "isCover": 1},
 "devices": {"file": "devices.csv"}, "batch": {"max_devices": 100},
 "rate": {"requests_per_second": ${RPS:-0}}, "connections": 2,
 "acks": {"amqp": {"url": "amqps://127.0.0.1:$amqps/quec-open", "access_key_file": "access_key",
   "access_secret_file": "$2", "queue": "$3", "hostname": "vhost:quec-open",
   "source": "/amq/queue/$3"}, "timeout_s": $4}}
JOB
}

# 1. Every device's outcome, failures and losses included, joined through
#    the broker; the broker cuts fleetcast's connection twice mid-run.
start_run joined '"delay_ms": 20, "delay_random_ms": 300, "fail_ratio": 0.1, "loss_ratio": 0.02, "duplicate_ratio": 0.05'
RPS=5 write_job joined access_secret a.1.fleetcast 5
"$bin" run "$tmp/joined.json" >"$tmp/joined.out" 2>"$tmp/joined.err" &
run_pid=$!
# The broker kills every connection of its TLS listener (fleetcast's only:
# the publisher uses the plain one); RabbitMQ 3.10's rabbitmqctl does not
# list AMQP 1.0 connections, so through Ranch, the listener's library.
cut_subscription() {
  ctl eval "[exit(P, kill) || P <- ranch:procs({acceptor, {127,0,0,1}, $amqps}, connections)]."
}
# fleetcast's receiving links on the queue, as the broker counts them.
consumers() {
  ctl list_queues -p quec-open name consumers 2>/dev/null | awk '$1 == "a.1.fleetcast" { print $2 }'
}
for cut in 1 2; do
  for _ in $(seq 400); do  # until fleetcast has logged in (again)
    [ "$(grep -c '^allow ver=1' "$tmp/auth.log")" -ge "$cut" ] && break
    sleep 0.05
  done
  [ "$(grep -c '^allow ver=1' "$tmp/auth.log")" -ge "$cut" ] || fail "joined: login $cut never came"
  # and its link is attached (a cut before that is a failed connection, not
  # a dropped subscription: its backoff is longer than the run).
  for _ in $(seq 100); do [ "$(consumers)" = 1 ] && break; sleep 0.1; done
  killed=
  for _ in $(seq 50); do
    killed=$(cut_subscription 2>&1)
    case "$killed" in "[true"*) break ;; esac
    sleep 0.1
  done
  case "$killed" in
    "[true"*) ok ;;
    *) fail "joined: no fleetcast connection to cut ($cut): the broker answered: $killed" ;;
  esac
  for _ in $(seq 100); do [ "$(consumers)" = 0 ] && break; sleep 0.1; done  # the broker let go of it
done
for _ in $(seq 400); do  # and it logs in again after the second
  [ "$(grep -c '^allow ver=1' "$tmp/auth.log")" -ge 3 ] && break
  sleep 0.05
done
wait "$run_pid"
rc=$?
end_run joined
[ "$rc" -eq 1 ] && ok || fail "joined: exit $rc (1: some not delivered): $(tail -3 "$tmp/joined.err")"
check_exactly_once "$tmp/out/joined/results.ndjson" "$tmp/record.ndjson" "$n" joined
check_deliveries "$tmp/out/joined/results.ndjson" "$tmp/record.ndjson" joined
logins=$(grep '^allow ver=1' "$tmp/auth.log" | sort -u | wc -l)
[ "$logins" -ge 3 ] && ok || fail "joined: $logins distinct logins, want a new username per connection (3); the auth log: $(cut -c1-60 "$tmp/auth.log" | tail -5); the run: $(grep -i 'subscription' "$tmp/joined.err" | tail -5)"
grep -q '^deny' "$tmp/auth.log" && fail "joined: a login was refused: $(grep '^deny' "$tmp/auth.log" | head -2)" || ok

# 2. SIGKILL while waiting for acknowledgements, then --resume: nothing is
#    sent again, the broker gives again what was not settled, every outcome
#    is joined.
start_run killed '"delay_ms": 2000, "delay_random_ms": 1000, "fail_ratio": 0.1'
write_job killed access_secret a.1.fleetcast 20
"$bin" run "$tmp/killed.json" >/dev/null 2>"$tmp/killed.err" &
run_pid=$!
for _ in $(seq 600); do  # sent everything, and some outcomes are in
  grep -q 'waiting for' "$tmp/killed.err" && [ -s "$tmp/out/killed/deliveries.ndjson" ] && break
  sleep 0.05
done
kill -KILL "$run_pid"
wait "$run_pid" 2>/dev/null
decided=$(grep -c '^{"index":[0-9]' "$tmp/out/killed/deliveries.ndjson")
[ "$decided" -gt 0 ] && [ "$decided" -lt "$n" ] && ok || fail "killed: $decided outcomes at the kill"
"$bin" run "$tmp/killed.json" --resume >/dev/null 2>"$tmp/resumed.err"
rc=$?
end_run killed
[ "$rc" -eq 1 ] && ok || fail "resumed: exit $rc: $(tail -3 "$tmp/resumed.err")"
grep -q '"requests":0}]' "$tmp/out/killed/summary.json" && ok || fail "resumed: requests were sent again"
check_exactly_once "$tmp/out/killed/results.ndjson" "$tmp/record.ndjson" "$n" resumed
check_deliveries "$tmp/out/killed/results.ndjson" "$tmp/record.ndjson" resumed

# 3. A secret the auth backend refuses, and a queue the broker does not
#    have: refused at once (exit 2) with the broker's reason, nothing sent.
start_run refused '"delay_ms": 5'
printf 'wrong-secret\n' >"$tmp/wrong_secret"
write_job refused wrong_secret a.1.fleetcast 5
timeout 60 "$bin" run "$tmp/refused.json" >/dev/null 2>"$tmp/refused.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q 'refused us' "$tmp/refused.err" && grep -q 'nothing was sent' "$tmp/refused.err" &&
  grep -q '^deny ver=1.* wrong password' "$tmp/auth.log" && ok ||
  fail "refused: exit $rc: $(cat "$tmp/refused.err")"
write_job noqueue access_secret a.1.nosuch 5
timeout 60 "$bin" run "$tmp/noqueue.json" >/dev/null 2>"$tmp/noqueue.err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "NOT_FOUND - no queue 'a.1.nosuch'" "$tmp/noqueue.err" && ok ||
  fail "noqueue: exit $rc: $(cat "$tmp/noqueue.err")"
end_run refused
[ ! -s "$tmp/record.ndjson" ] && ok || fail "refused: something was sent"

# No token, AccessKey or AccessSecret, and no SASL username, in any output.
if grep -rqF -e "TOKEN-$$" -e "$secret" -e "$key" "$tmp/out" "$tmp"/*.err "$tmp"/*.out 2>/dev/null; then
  fail "a credential appears in an output"
else
  ok
fi
finish
