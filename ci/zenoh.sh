#!/usr/bin/env bash
# The Zenoh bridge (mapshare-zenoh): builds `mapshare-bridge` and the
# `mapshare` CLI its tests drive, then runs its tests: two "hosts" on this
# machine, each a mount namespace with its own tmpfs at /dev/shm, bridged
# over loopback TCP (needs root: `unshare -m`; the tests fail, saying so,
# where namespaces cannot be made). Zenoh is built TCP-only (no default
# features), which keeps a cold build to a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
cargo build -p mapshare-cli -p mapshare-zenoh --all-targets
echo "zenoh: built in $(( $(date +%s) - start )) s"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run -p mapshare-zenoh
else
  cargo test -p mapshare-zenoh
fi
cargo run -q -p mapshare-zenoh --features bench --bin mapshare-bridge-bench -- --quick  # smoke run of the bench, debug: adds ~9 s
echo "zenoh: done in $(( $(date +%s) - start )) s"
