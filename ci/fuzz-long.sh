#!/usr/bin/env bash
# Fuzzes each target for longer: FUZZ_SECONDS (default 300, five minutes)
# per target, one after the other. Not part of the per-change CI; run it
# nightly or by hand, and put the total it prints in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-300}" exec ci/fuzz.sh
