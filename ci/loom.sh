#!/usr/bin/env bash
# Loom models of the lane, mutex, event and doorbell (crossbeam's settings).
set -euo pipefail
RUSTFLAGS="--cfg mapshare_loom" LOOM_MAX_PREEMPTIONS=2 \
  CARGO_TARGET_DIR=target/loom cargo test -p mapshare --lib --release loom
