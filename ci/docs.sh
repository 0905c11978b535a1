#!/usr/bin/env bash
# Docs build cleanly: rustdoc warnings are errors, and so is any warning
# cargo prints while documenting the workspace with its dependencies (the
# way `cargo doc --workspace` users run it), such as an output filename
# collision.
set -euo pipefail
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# With dependencies, but not zenoh's ~280 (the bridge's own docs are built
# above; its dependency tree would add minutes and check nothing of ours).
cargo doc --workspace --exclude mapshare-zenoh 2>&1 | tee "$log" >/dev/null
if grep -E '^(warning|error)' "$log"; then
  echo "docs: cargo doc --workspace printed the warnings above"
  exit 1
fi
