#!/usr/bin/env bash
# `mapshare-bench --quick`: the benchmark runs end to end and cleans up (its
# figures are not judged here: CI machines are too noisy for that).
set -euo pipefail
cargo run --release -p mapshare-bench --bin mapshare-bench -- --quick --json > target/bench-quick.json
python3 -c "import json; d=json.load(open('target/bench-quick.json')); print('bench smoke:', len(d.get('targets', [])), 'targets evaluated')" 2>/dev/null || true
# The async benchmark, small: every backend and peer runs end to end.
cargo run --release -p mapshare-bench --bin mapshare-async-bench -- \
  --rounds 2000 --waiters 1000 --per-waiter 3 --cancels 20000
# The request/response and WaitSet benchmark, small: every contender runs.
cargo run --release -p mapshare-bench --bin mapshare-rpc-bench -- --rounds 300 --big-rounds 20
# The fan-out benchmark, small: every strategy, reader and subscriber count
# runs (two sizes).
cargo run --release -p mapshare-bench --bin mapshare-fanout-bench -- --quick --sizes 64,64K
