#!/usr/bin/env bash
# Regenerates the committed seed inputs (fuzz/seeds/<target>/) from real
# segments made by the library: run it after a layout change, then commit
# the result. ci/fuzz.sh copies the seeds into fuzz/corpus/ before fuzzing.
# Seeds named regress-* are inputs that once crashed a target (each has a
# test in mapshare/tests/fuzz_regressions.rs); they are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d fuzz/seeds ]; then find fuzz/seeds -type f ! -name 'regress-*' -delete; fi
cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/seeds
find fuzz/seeds -type f | sort | sed 's/^/seed: /'
