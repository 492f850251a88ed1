#!/bin/sh
# Installs a built fleetcast as a service: the binary and library under
# PREFIX, the man page and bash completion, the systemd unit, a system user
# and group `fleetcast`, and /etc/fleetcast/daemon.json (kept if present).
# Run as root from the source folder:
#   sh deploy/install.sh [--build DIR] [--root DIR] [--prefix /usr/local] [--no-user]
# --build names the build folder to install (default build/release, what
# `cmake --preset release && cmake --build --preset release` makes; any
# folder configured from this source tree will do). --root installs into
# another filesystem root (an image, a test).
set -eu
root=
build=
prefix=/usr/local
make_user=yes
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --no-user) make_user=no; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
src=$(cd "$(dirname "$0")/.." && pwd)
[ -n "$build" ] || build=$src/build/release
[ -x "$build/fleetcast" ] && [ -f "$build/cmake_install.cmake" ] || {
  echo "install.sh: no built fleetcast in $build: build first (cmake --preset release && cmake --build --preset release), or name the build folder with --build DIR" >&2
  exit 1
}
build=$(cd "$build" && pwd)
echo "install.sh: installing the build in $build"

DESTDIR=$root cmake --install "$build" --prefix "$prefix" >/dev/null
install -d "$root/etc/systemd/system" "$root/etc/fleetcast" "$root$prefix/share/doc/fleetcast"
sed "s|/usr/local/bin/fleetcast|$prefix/bin/fleetcast|; s|/usr/local/share/doc|$prefix/share/doc|" \
  "$src/deploy/systemd/fleetcast.service" >"$root/etc/systemd/system/fleetcast.service"
chmod 0644 "$root/etc/systemd/system/fleetcast.service"
[ -e "$root/etc/fleetcast/daemon.json" ] || install -m 0644 "$src/config/daemon.example.json" "$root/etc/fleetcast/daemon.json"
install -m 0644 "$src/README.md" "$root$prefix/share/doc/fleetcast/README.md"
install -d "$root$prefix/share/man/man1" "$root$prefix/share/bash-completion/completions"
install -m 0644 "$src/docs/fleetcast.1" "$root$prefix/share/man/man1/fleetcast.1"
install -m 0644 "$src/deploy/bash-completion/fleetcast" "$root$prefix/share/bash-completion/completions/fleetcast"
if [ "$make_user" = yes ] && ! getent passwd fleetcast >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/fleetcast --shell /usr/sbin/nologin fleetcast
fi
echo "installed: $root$prefix/bin/fleetcast, $root/etc/systemd/system/fleetcast.service, $root/etc/fleetcast/daemon.json"
[ -n "$root" ] || echo "next: put the token in /etc/fleetcast/token (mode 0600), then: systemctl daemon-reload && systemctl enable --now fleetcast"
