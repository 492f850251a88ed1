#!/bin/sh
# deploy/: install.sh into a temporary root, the installed binary runs, the
# systemd unit passes `systemd-analyze verify` with no warning at all, and
# its sandboxing scores at most 2.0 in `systemd-analyze security` (0 is
# fully locked down, 10 is none). Skipped (77) where systemd-analyze is
# missing, except under CI, which installs it.
# usage: deploy_test.sh SOURCE_DIR
set -u
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! command -v systemd-analyze >/dev/null; then
  [ -n "${CI:-}" ] && { echo "FAIL systemd-analyze is missing under CI"; exit 1; }
  echo "systemd-analyze not installed: skipped"
  exit 77
fi
failed=0
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

sh "$src/deploy/install.sh" --root "$tmp/root" --no-user >"$tmp/install.out" 2>&1 || fail "install.sh: $(cat "$tmp/install.out")"
"$tmp/root/usr/local/bin/fleetcast" daemon --help | grep -q 'Usage: fleetcast daemon \[OPTIONS\]' || fail "the installed binary does not run"
[ -f "$tmp/root/etc/fleetcast/daemon.json" ] || fail "no /etc/fleetcast/daemon.json"
unit=$tmp/fleetcast.service
# The unit as installed, pointing at the binary in the temporary root.
sed "s|^ExecStart=/usr/local/bin/fleetcast|ExecStart=$tmp/root/usr/local/bin/fleetcast|" \
  "$tmp/root/etc/systemd/system/fleetcast.service" >"$unit"
out=$(systemd-analyze verify "$unit" 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ] || fail "systemd-analyze verify (exit $rc): $out"
score=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for fleetcast.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure level ${score:-unknown}, want <= 2.0"
echo "systemd-analyze security: exposure $score"
# The example config parses (the daemon refuses a bad one).
spool=$tmp/spool
timeout 10 "$tmp/root/usr/local/bin/fleetcast" daemon --spool "$spool" --config "$src/config/daemon.example.json" >"$tmp/d.out" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -s "$spool/admin.address" ] && break; sleep 0.1; done
[ -s "$spool/admin.address" ] || fail "the daemon does not start with the example config: $(cat "$tmp/d.out")"
kill -TERM "$pid" 2>/dev/null
wait "$pid" || fail "the daemon did not stop with exit 0"
[ "$failed" -eq 0 ] && echo "deploy: all passed"
[ "$failed" -eq 0 ]
