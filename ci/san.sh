#!/usr/bin/env bash
# Sanitizers (nightly), after crossbeam's ci/san.sh:
# - ThreadSanitizer on the library's unit tests: the multi-thread tests of
#   the lane (spsc), the robust mutex, the event and the doorbell. std is
#   rebuilt with TSan (-Zbuild-std, needs the rust-src component), or TSan
#   would report races inside an uninstrumented std.
# - AddressSanitizer on the library's unit and integration tests (the
#   integration tests re-run their own binary as child processes, so the
#   children run under ASan too).
# SAN=tsan or SAN=asan runs one of them. A sanitizer the toolchain cannot
# run is skipped with a message saying why (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
which="${SAN:-tsan asan}"

skip() { echo "san: SKIPPED: $*"; }
if ! rustup toolchain list | grep '^nightly' >/dev/null; then
  rustup toolchain install nightly --profile minimal || { skip "no nightly toolchain"; exit 0; }
fi

if [[ " $which " == *" tsan "* ]]; then
  if rustup component list --toolchain nightly --installed | grep '^rust-src' >/dev/null ||
     rustup component add rust-src --toolchain nightly; then
    start=$(date +%s)
    RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
      TSAN_OPTIONS="halt_on_error=1" CARGO_TARGET_DIR=target/tsan \
      cargo +nightly test -Zbuild-std --target "$target" -p mapshare --lib
    echo "san: ThreadSanitizer passed ($(( $(date +%s) - start )) s)"
  else
    skip "ThreadSanitizer needs the nightly rust-src component (-Zbuild-std)"
  fi
fi

if [[ " $which " == *" asan "* ]]; then
  start=$(date +%s)
  RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
    ASAN_OPTIONS="detect_leaks=1" CARGO_TARGET_DIR=target/asan \
    cargo +nightly test --target "$target" -p mapshare --lib --tests
  echo "san: AddressSanitizer passed ($(( $(date +%s) - start )) s)"
fi
