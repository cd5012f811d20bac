#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds two consumers against the installed files only:
# a C++ program through find_package(weft) / weft::weft, run on 3 ranks, and a C program through weft.pc.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
out=$(LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/prefix/bin/weftrun" -n 3 "$tmp/consumer/app")
[ "$(grep -c ': 6$' <<<"$out")" -eq 3 ] || { echo "unexpected output: $out"; exit 1; }
flags=$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs weft)
# shellcheck disable=SC2086
cc "$src/c_app.c" $flags -o "$tmp/c_app"
LD_LIBRARY_PATH="$tmp/prefix/lib" "$tmp/c_app"
echo "install check passed"
