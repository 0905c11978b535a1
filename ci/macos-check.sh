#!/usr/bin/env bash
# macOS, compile-checked (issue 9, item 7): `cargo check` of the library
# (with and without `tokio`) and the CLI for x86_64-apple-darwin and
# aarch64-apple-darwin, so the `sys` contract keeps compiling there. The
# library's macOS backend is still the `unsupported` stub (every call says
# `Unsupported`); docs/macos.md is the plan for a real one.
#
# There is no macOS C toolchain here: signal-hook's build script compiles a
# small C file, so CC and AR for the target are `true` (a check never
# links, and the file's object is never used by a check).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in x86_64-apple-darwin aarch64-apple-darwin; do
  rustup target add "$t" >/dev/null
  T=${t//-/_}
  export "CC_$T=true" "AR_$T=true"
  RUSTFLAGS="-D warnings" CRATE_CC_NO_DEFAULTS=1 cargo check -q -p mapshare -p mapshare-cli --target "$t"
  RUSTFLAGS="-D warnings" cargo check -q -p mapshare --features tokio --target "$t"
  echo "macos-check: $t: the library and the CLI compile"
done
