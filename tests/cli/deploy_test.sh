#!/bin/sh
# deploy/: install.sh into a temporary root, the installed binary runs, the
# systemd unit passes `systemd-analyze verify` with no warning at all, and
# its sandboxing scores at most 2.0 in `systemd-analyze security` (0 is
# fully locked down, 10 is none). Skipped (77) where systemd-analyze is
# missing, except under CI, which installs it.
# It installs the build it is given (CMake passes the build folder the test
# was configured in), so each preset's suite checks its own binary.
# usage: deploy_test.sh SOURCE_DIR BUILD_DIR
set -u
src=$1
build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! command -v systemd-analyze >/dev/null; then
  [ -n "${CI:-}" ] && { echo "FAIL systemd-analyze is missing under CI"; exit 1; }
  echo "systemd-analyze not installed: skipped"
  exit 77
fi
failed=0
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

sh "$src/deploy/install.sh" --build "$build" --root "$tmp/root" --no-user >"$tmp/install.out" 2>&1 || fail "install.sh: $(cat "$tmp/install.out")"
grep -x "install.sh: installing the build in $(cd "$build" && pwd)" "$tmp/install.out" || fail "install.sh did not say it installs $build: $(cat "$tmp/install.out")"
# The installed binary is the build's own (byte for byte), with the
# build's instrumentation, if any.
cmp -s "$build/fleetcast" "$tmp/root/usr/local/bin/fleetcast" || fail "the installed binary is not $build/fleetcast"
sanitizers=$(ldd "$tmp/root/usr/local/bin/fleetcast" | sed -n 's/^[[:space:]]*\(lib[at]san[^ ]*\) .*/\1/p' | tr '\n' ' ')
echo "installed binary: $tmp/root/usr/local/bin/fleetcast, from $build (sanitizer runtime: ${sanitizers:-none})"
"$tmp/root/usr/local/bin/fleetcast" daemon --help | grep -q 'Usage: fleetcast daemon \[OPTIONS\]' || fail "the installed binary does not run"
[ -f "$tmp/root/etc/fleetcast/daemon.json" ] || fail "no /etc/fleetcast/daemon.json"
# The man page renders (man -l, no warnings) and says what it must.
page=$tmp/root/usr/local/share/man/man1/fleetcast.1
[ -f "$page" ] || fail "no man page installed"
rendered=$(MANWIDTH=80 man -l "$page" 2>/dev/null)
echo "$rendered" | grep -q 'EXIT STATUS' && echo "$rendered" | grep -q -- '--retry-failed' || fail "man -l does not render the page"
warnings=$(man --warnings -l "$page" 2>&1 >/dev/null)
[ -z "$warnings" ] || fail "man page warnings: $warnings"
# Bash completion: commands, a command's options, file names.
completion=$tmp/root/usr/local/share/bash-completion/completions/fleetcast
[ -f "$completion" ] || fail "no bash completion installed"
complete_words() {  # WORDS...: what completing the last one offers
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _fleetcast; echo "${COMPREPLY[*]}"' _ "$completion" "$@"
}
[ "$(complete_words fleetcast ru)" = "run" ] || fail "completion of a command: $(complete_words fleetcast ru)"
[ "$(complete_words fleetcast run --re)" = "--resume --retry-failed --retry-failed=" ] || fail "completion of run's options: $(complete_words fleetcast run --re)"
[ "$(complete_words fleetcast daemon --sp)" = "--spool" ] || fail "completion of daemon's options"
[ "$(complete_words fleetcast check --as d)" = "daemon" ] || fail "completion of check --as"
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
for _ in $(seq 200); do [ -s "$spool/admin.address" ] && break; sleep 0.1; done
[ -s "$spool/admin.address" ] || fail "the daemon does not start with the example config: $(cat "$tmp/d.out")"
kill -TERM "$pid" 2>/dev/null
wait "$pid" || fail "the daemon did not stop with exit 0"
# The image's HEALTHCHECK, run as Docker runs it, against a daemon with the
# image's config (admin port 9464 on every address): healthy while it
# serves, unhealthy once it is gone. EXPOSE names that port; the user is
# numeric (Kubernetes' runAsNonRoot can check it); the binary is stripped.
dockerfile=$src/deploy/Dockerfile
check_cmd=$(sed -n 's/^  CMD \["\/bin\/bash", "-c", "\(.*\)"\]$/\1/p' "$dockerfile" | sed 's/\\\\/\\/g')
[ -n "$check_cmd" ] || fail "no HEALTHCHECK CMD in the Dockerfile"
listen=$(sed -n 's/.*"admin_listen": "\([^"]*\)".*/\1/p' "$src/config/daemon.container.json")
grep -q "^EXPOSE ${listen##*:}\$" "$dockerfile" && [ "${listen%:*}" = "0.0.0.0" ] || fail "EXPOSE does not match the container config's admin_listen $listen"
grep -q '^USER [0-9]*:[0-9]*$' "$dockerfile" && grep -q 'strip --strip-unneeded build/release/fleetcast' "$dockerfile" || fail "the image's user is not numeric or its binary not stripped"
cspool=$tmp/cspool
"$tmp/root/usr/local/bin/fleetcast" daemon --spool "$cspool" --config "$src/config/daemon.container.json" >"$tmp/c.out" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s "$cspool/admin.address" ] && break; sleep 0.1; done
bash -c "$check_cmd" && echo "HEALTHCHECK: healthy" || fail "HEALTHCHECK against a serving daemon: $(cat "$tmp/c.out")"
kill -TERM "$pid" 2>/dev/null
wait "$pid" || fail "the container-config daemon did not stop with exit 0"
bash -c "$check_cmd" 2>/dev/null && fail "HEALTHCHECK passes with no daemon"
[ "$failed" -eq 0 ] && echo "deploy: all passed"
[ "$failed" -eq 0 ]
