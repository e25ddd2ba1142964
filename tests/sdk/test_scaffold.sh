#!/usr/bin/env bash
# sdk.scaffold: the out-of-tree round trip a plugin author makes.
#   1. install the SDK of this build into a temporary prefix (cmake --install --component sdk);
#   2. generate a plugin with tools/lintel-plugin;
#   3. configure it with find_package(LintelSDK) from that prefix, build it, run its test (ctest);
#   4. check the pkg-config files: lintel-sdk's cflags, and a build of the same test with
#      lintel-testkit's cflags and libs only.
# Usage: test_scaffold.sh SOURCE_DIR BUILD_DIR. LINTEL_SCAFFOLD_FLAGS (sanitizer flags of a
# sanitized build) are passed to the generated project's compiler and linker.
set -euo pipefail

src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
flags=${LINTEL_SCAFFOLD_FLAGS:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { echo "== $*"; }

step "install the SDK into $tmp/prefix"
cmake --install "$build" --component sdk --prefix "$tmp/prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log"; exit 1; }
for f in include/lintel/plugin.h include/lintel/version.h include/lintel/testkit.h \
    lib/liblintel-testkit.a lib/pkgconfig/lintel-sdk.pc lib/pkgconfig/lintel-testkit.pc \
    lib/cmake/LintelSDK/LintelSDKConfig.cmake lib/cmake/LintelSDK/LintelSDKConfigVersion.cmake; do
    [ -f "$tmp/prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done

step "refuse bad names"
for bad in Bad 1abc a_b "" -x; do
    if "$src/tools/lintel-plugin" new "$bad" "$tmp/bad" 2>/dev/null; then
        echo "accepted bad name \"$bad\""
        exit 1
    fi
done

step "generate hello-world"
"$src/tools/lintel-plugin" new hello-world "$tmp/hello-world"
if "$src/tools/lintel-plugin" new hello-world "$tmp/hello-world" 2>/dev/null; then
    echo "overwrote a non-empty directory"
    exit 1
fi

step "configure, build and test it with find_package(LintelSDK)"
CFLAGS="$flags" LDFLAGS="$flags" cmake -S "$tmp/hello-world" -B "$tmp/hello-build" \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="-Werror" >"$tmp/configure.log" ||
    { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/hello-build"
ctest --test-dir "$tmp/hello-build" --output-on-failure
[ -f "$tmp/hello-build/hello-world.so" ] || { echo "no hello-world.so"; exit 1; }
exported=$(nm -D --defined-only "$tmp/hello-build/hello-world.so" | awk '{print $3}')
[ "$exported" = lintel_plugin_v1 ] || { echo "exports more than the descriptor: $exported"; exit 1; }

step "pkg-config"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags lintel-sdk)
echo "lintel-sdk cflags: $cflags"
incdir=${cflags#-I}
incdir=${incdir%% *}
[ -f "$incdir/lintel/plugin.h" ] || { echo "bad cflags: $cflags"; exit 1; }
# The same plugin and test, built with pkg-config alone.
read -ra extra <<<"$flags"
read -ra sdk_flags <<<"$(pkg-config --cflags lintel-sdk)"
read -ra kit_flags <<<"$(pkg-config --cflags --libs lintel-testkit)"
cc "${extra[@]}" -std=c11 -fPIC -shared -fvisibility=hidden "${sdk_flags[@]}" \
    "$tmp/hello-world/hello-world.c" -o "$tmp/pc-hello-world.so"
cc "${extra[@]}" -std=c11 -DHELLO_WORLD_SO="\"$tmp/pc-hello-world.so\"" \
    "$tmp/hello-world/test_hello_world.c" "${kit_flags[@]}" -o "$tmp/pc-test"
"$tmp/pc-test" >"$tmp/pc-test.log" || { cat "$tmp/pc-test.log"; exit 1; }

step "load it into a running lintel"
# The generated plugin answers like example-header: a response header from its config.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
oport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/plugins"
cp "$tmp/hello-build/hello-world.so" "$tmp/plugins/"
cat >"$tmp/gw.yaml" <<YAML
listen: [ { address: "127.0.0.1:$port" } ]
admin: { enabled: false }
workers: 1
plugin_paths: ["$tmp/plugins"]
upstreams:
  o: { targets: [ { address: "127.0.0.1:$oport" } ] }
routes:
  - name: hello
    match: { paths: ["/"] }
    upstream: o
    plugins: [ { name: hello-world, config: { name: X-Hello, value: scaffolded } } ]
YAML
"$build/lintel" -t -c "$tmp/gw.yaml"
"$build/lintel-test-origin" --port "$oport" --name o >"$tmp/origin.log" 2>&1 &
origin_pid=$!
LINTEL_RUN_DIR="$tmp" "$build/lintel" -c "$tmp/gw.yaml" >"$tmp/lintel.log" 2>&1 &
gw_pid=$!
trap 'kill $gw_pid $origin_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
got=""
for _ in $(seq 1 50); do
    got=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/x" | tr -d '\r' | grep -i '^x-hello:' || true)
    [ -n "$got" ] && break
    sleep 0.1
done
[ "$got" = "X-Hello: scaffolded" ] || { echo "gateway answer lacks X-Hello: '$got'"; cat "$tmp/lintel.log"; exit 1; }
kill -TERM $gw_pid
wait $gw_pid || { echo "lintel did not stop cleanly"; cat "$tmp/lintel.log"; exit 1; }

echo "sdk.scaffold: ok"
