#!/bin/sh
# Installs, with apt-get, exactly what building and testing fleetcast needs on
# Debian 12 (bookworm). Idempotent: packages already present are left alone.
# Quiet on success, loud on failure (set -e, apt's own errors on stderr).
set -eu

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (it calls apt-get install)" >&2
  exit 1
fi

# The compiler and build tools, then the libraries (all headers or -dev), and
# systemd for `systemd-analyze verify` of the unit in deploy/ and man-db for
# `man -l` of the man page (tests). Qpid Proton: the AMQP 1.0 engine of the
# message subscription (delivery acknowledgements). python3: the tests'
# hostile peers and acknowledgement writers (its standard library only).
packages="
  g++
  cmake
  ninja-build
  ccache
  libboost1.81-dev
  libssl-dev
  libsimdjson-dev
  libfmt-dev
  libcli11-dev
  doctest-dev
  libbenchmark-dev
  libqpid-proton11-dev
  systemd
  man-db
  python3
"

export DEBIAN_FRONTEND=noninteractive
missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing="$missing $p"
  fi
done

if [ -n "$missing" ]; then
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  echo "install-deps.sh: installed:$missing"
fi
