#!/usr/bin/env bash
# The README's demo command, exactly.
set -euo pipefail
cargo run --release -p mapshare-cli -- demo
