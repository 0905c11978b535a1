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
# The request/response example: a server in a WaitSet, two clients, a stop.
cargo build --release -p mapshare --example service
"$dir/service" serve "$name-svc" & srv=$!
out=$("$dir/service" call "$name-svc" 6 7; "$dir/service" call "$name-svc" -3 5)
echo "$out"
grep -q "6 x 7 = 42" <<<"$out" && grep -q -- "-3 x 5 = -15" <<<"$out" || { echo "examples: service failed"; exit 1; }
until [ -e "/dev/shm/mapshare.$name-svc-stop" ]; do sleep 0.05; done
"$dir/service" stop "$name-svc"
wait "$srv"
