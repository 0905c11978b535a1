#!/usr/bin/env bash
# Installs the C library built by `cargo build --release -p mapshare-ffi`
# under PREFIX: include/mapshare.h, lib/libmapshare_ffi.{so,a} and
# lib/pkgconfig/mapshare.pc (from mapshare.pc.in, with PREFIX filled in).
#
#   mapshare-ffi/install.sh PREFIX        (e.g. /usr/local, or a staging dir)
#
# Builds nothing but a one-off query of the static library's system
# dependencies (rustc --print native-static-libs; or set
# MAPSHARE_STATIC_DEPS). Run from anywhere.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 PREFIX" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
mkdir -p "$1"
prefix="$(cd "$1" && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}/release"
for f in libmapshare_ffi.so libmapshare_ffi.a; do
  [[ -f "$target/$f" ]] || { echo "install.sh: $target/$f missing: run cargo build --release -p mapshare-ffi first" >&2; exit 1; }
done
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)"
[[ -n "$version" ]] || { echo "install.sh: no version in $root/Cargo.toml" >&2; exit 1; }
# What a program linking the static library must add (libc, pthread, ...),
# as rustc reports it for this target; MAPSHARE_STATIC_DEPS overrides the
# query (for an install run as root without cargo on its PATH).
deps="${MAPSHARE_STATIC_DEPS:-}"
[[ -n "$deps" ]] || deps="$(cd "$root" && cargo rustc --quiet --release -p mapshare-ffi --lib --crate-type staticlib \
          -- --print native-static-libs 2>&1 | sed -n 's/^note: native-static-libs: //p' | tail -n1)"
[[ -n "$deps" ]] || { echo "install.sh: rustc did not report the native static libraries" >&2; exit 1; }
install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 "$here/include/mapshare.h" "$prefix/include/mapshare.h"
install -m 0755 "$target/libmapshare_ffi.so" "$prefix/lib/libmapshare_ffi.so"
install -m 0644 "$target/libmapshare_ffi.a" "$prefix/lib/libmapshare_ffi.a"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@STATIC_DEPS@|$deps|g" \
  "$here/mapshare.pc.in" > "$prefix/lib/pkgconfig/mapshare.pc"
echo "install.sh: installed under $prefix (pkg-config: PKG_CONFIG_PATH=$prefix/lib/pkgconfig)"
