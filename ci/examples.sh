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
