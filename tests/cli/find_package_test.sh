#!/bin/sh
# The library as a user gets it: install this build into a scratch prefix,
# then build out of tree with find_package(fleetcast), each at the
# compiler's default standard (C++20 comes with the targets), and run:
#   examples/embed            fleetcast::net, a session killed and resumed on a thread pool;
#   tests/consumers/plugin    fleetcast linked into a shared module a host dlopen()s
#                             (the archives are position-independent);
#   tests/consumers/core_only fleetcast::core alone, with OpenSSL hidden from
#                             find_package; no target of net's loaded, no libssl
#                             or Proton linked.
# usage: find_package_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
config=$(find "$tmp/prefix" -name fleetcastConfig.cmake)
test -n "$config"
test -f "$(dirname "$config")/fleetcastConfigVersion.cmake"
test -f "$tmp/prefix/include/fleetcast/net/client/rollout.hpp"
test -f "$tmp/prefix/include/fleetcast/core/protocol/api_errc.hpp"
# Internal headers stay out of the package; no Find module is installed.
test ! -e "$tmp/prefix/include/fleetcast/core/dispatch/dispatcher.hpp"
test ! -e "$tmp/prefix/include/fleetcast/core/job/job_checks.hpp"
test -z "$(find "$tmp/prefix" -name 'Find*.cmake')"
# Nothing pushed on consumers but C++20: no compile definition, no module path.
if grep -n 'INTERFACE_COMPILE_DEFINITIONS\|CMAKE_MODULE_PATH' "$(dirname "$config")"/*.cmake |
     grep -v '^[^:]*:[0-9]*:#'; then
  echo "the package pushes a definition or a module path on its consumers" >&2
  exit 1
fi
passed=$((passed + 1))

# consumer NAME SOURCE [CMAKE ARGS...]: configure and build it out of tree.
consumer() {
  name=$1
  dir=$2
  shift 2
  # No CMAKE_CXX_STANDARD: g++ 12's default (gnu++17) unless the targets say otherwise.
  cmake -S "$dir" -B "$tmp/$name" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" "$@" >"$tmp/$name.configure.log" 2>&1 ||
    { cat "$tmp/$name.configure.log"; exit 1; }
  cmake --build "$tmp/$name" >"$tmp/$name.build.log" 2>&1 || { cat "$tmp/$name.build.log"; exit 1; }
  grep -q -- '-std=gnu++20' "$tmp/$name/build.ninja" ||
    { echo "$name: not compiled as C++20 (cxx_std_20 not exported)" >&2; exit 1; }
}

consumer embed "$src/examples/embed"
"$tmp/embed/embed_example" >"$tmp/out.txt"
cat "$tmp/out.txt"
grep -q '^resumed: 300 of 300 devices succeeded over 2 runs$' "$tmp/out.txt"
passed=$((passed + 1))

consumer plugin "$src/tests/consumers/plugin"
"$tmp/plugin/plugin_host" "$tmp/plugin/libfleetcast_plugin.so" | tee "$tmp/plugin.txt"
grep -q '^plugin: 25 of 25 devices succeeded$' "$tmp/plugin.txt"
passed=$((passed + 1))

consumer core_only "$src/tests/consumers/core_only" -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON
"$tmp/core_only/core_only" | tee "$tmp/core.txt"
grep -q '^core only: 2 devices, 1 refused; 5032 is Token verification failed (fleetcast.api)$' "$tmp/core.txt"
readelf -d "$tmp/core_only/core_only" | grep NEEDED >"$tmp/core.needed"
grep -q 'libstdc++' "$tmp/core.needed"  # the listing itself works
if grep -E 'libssl|libcrypto|proton' "$tmp/core.needed"; then
  echo "core_only links what only net needs" >&2
  exit 1
fi
passed=$((passed + 1))

# The version file: a newer minor than this one is refused.
mkdir "$tmp/newer"
printf 'cmake_minimum_required(VERSION 3.25)\nproject(newer LANGUAGES CXX)\nfind_package(fleetcast 99.0 REQUIRED COMPONENTS core)\n' >"$tmp/newer/CMakeLists.txt"
if cmake -S "$tmp/newer" -B "$tmp/newer/b" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  >"$tmp/newer.log" 2>&1; then
  echo "find_package(fleetcast 99.0) was accepted" >&2
  exit 1
fi
grep -q 'compatible with requested version "99.0"' "$tmp/newer.log" && grep -q 'version: 0.1.0' "$tmp/newer.log" ||
  { echo "find_package(fleetcast 99.0) failed, but not for its version:" >&2; cat "$tmp/newer.log" >&2; exit 1; }
passed=$((passed + 1))
echo "$passed passed, 0 failed"
