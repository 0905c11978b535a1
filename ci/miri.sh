#!/usr/bin/env bash
# Miri (nightly) on the code that runs without system calls: the pure
# layout decoders (header, FixedStr, fingerprints), name rules, the lane
# algorithm on heap-backed slots, and the mutex paths that never sleep.
# Twice: Stacked Borrows (the default) and Tree Borrows. Tests that sleep
# on a futex (rustix's raw syscalls) cannot run under Miri, nor can the
# 200 000-message two-thread lane test in reasonable time; loom and TSan
# (ci/loom.sh, ci/san.sh) cover those. Skips, saying why, when the
# toolchain has no Miri (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."

skip() { echo "miri: SKIPPED: $*"; exit 0; }
if ! rustup toolchain list | grep '^nightly' >/dev/null; then
  rustup toolchain install nightly --profile minimal || skip "no nightly toolchain"
fi
if ! rustup component list --toolchain nightly --installed | grep '^miri' >/dev/null; then
  rustup component add miri --toolchain nightly || skip "the nightly toolchain has no miri component"
fi
cargo +nightly miri setup

filters=(
  layout
  name
  queue::spsc
  region::tests
  kinds::channel::tests
  queue::mailbox
  sync::mutex::tests::lock_unlock_on_heap
  sync::mutex::tests::garbage_state_is_recovered_not_hung
)
for model in stacked tree; do
  flags=""
  [ "$model" = tree ] && flags="-Zmiri-tree-borrows"
  start=$(date +%s)
  MIRIFLAGS="$flags" CARGO_TARGET_DIR=target/miri \
    cargo +nightly miri test -p mapshare --lib -- "${filters[@]}" --skip two_threads_keep_order
  echo "miri: $model borrows passed ($(( $(date +%s) - start )) s)"
done
