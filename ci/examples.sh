#!/usr/bin/env bash
# Runs the sender/receiver example pair once, in both start orders.
set -euo pipefail
cargo build --release -p mapshare --examples
dir=target/release/examples
name="ci-example-$$"
"$dir/receiver" "$name" & rx=$!
"$dir/sender" "$name"
wait "$rx"
"$dir/sender" "$name" & tx=$!
sleep 0.2
"$dir/receiver" "$name"
wait "$tx"
# The async example: a tokio receiver, a blocking sender in another process.
cargo build --release -p mapshare --features tokio --example async_channel
out=$("$dir/async_channel" recv "$name-async" & rx=$!; "$dir/async_channel" send "$name-async"; wait "$rx")
echo "$out"
grep -q "3 messages; the sender has gone" <<<"$out" || { echo "examples: async_channel failed"; exit 1; }
