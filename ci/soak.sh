#!/usr/bin/env bash
# The soak test, short version: 20 s of channel and pub/sub traffic between
# processes that a supervisor SIGKILLs and restarts every 50..500 ms.
# Extra arguments go to the test (e.g. --seed 0x1234 to replay a schedule).
# The long run (figures in the README):
#   cargo test --release -p mapshare --test soak -- --duration 600
set -euo pipefail
# `clippy --all-targets` skips `test = false` targets, so lint this one here.
cargo clippy -p mapshare --test soak -- -D warnings
cargo test --release -p mapshare --test soak -- --duration "${SOAK_DURATION:-20}" "$@"
