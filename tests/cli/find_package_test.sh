#!/bin/sh
# The library as a user gets it: install this build into a scratch prefix,
# build examples/embed out of tree with find_package(fleetcast), run it.
# usage: find_package_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/lib/cmake/fleetcast/fleetcastConfig.cmake" || test -f "$tmp/prefix/lib/x86_64-linux-gnu/cmake/fleetcast/fleetcastConfig.cmake"
test -f "$tmp/prefix/include/fleetcast/net/client/rollout.hpp"
# Internal headers stay out of the package.
test ! -e "$tmp/prefix/include/fleetcast/core/dispatch/dispatcher.hpp"
test ! -e "$tmp/prefix/include/fleetcast/core/job/job_checks.hpp"
cmake -S "$src/examples/embed" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
"$tmp/build/embed_example" >"$tmp/out.txt"
cat "$tmp/out.txt"
grep -q '^3 of 3 devices succeeded in 2 requests$' "$tmp/out.txt"
echo "1 passed, 0 failed"
