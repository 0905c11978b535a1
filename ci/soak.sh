#!/usr/bin/env bash
# The soak, short version: 20 s of channel and pub/sub traffic between
# processes that a supervisor SIGKILLs and restarts every 50..500 ms.
# Extra arguments go to the program (e.g. --seed 0x1234 to replay a schedule).
# The long run (figures in the README):
#   cargo run --release -p mapshare-bench --bin mapshare-soak -- --duration 600
# (Its lints run with everything else: ci/clippy.sh covers every workspace target.)
set -euo pipefail
cargo run --release -p mapshare-bench --bin mapshare-soak -- --duration "${SOAK_DURATION:-20}" "$@"
