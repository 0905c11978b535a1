#!/usr/bin/env bash
# Fuzzing: builds every cargo-fuzz target (nightly) and runs each for
# FUZZ_SECONDS (default 20) from the committed seeds (fuzz/seeds/<target>,
# made from real segments by ci/fuzz-seeds.sh) plus whatever corpus earlier
# runs left in fuzz/corpus. Prints the executions per target and the total.
# A crash, panic, leak or hang (-timeout) fails the step; the input is kept
# in fuzz/artifacts/<target>/. ci/fuzz-long.sh runs each target longer.
#
# Installs the nightly toolchain and cargo-fuzz if missing (cargo-fuzz
# builds from source in about a minute); if they cannot be had, it says so
# and skips, exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-20}"

skip() { echo "fuzz: SKIPPED: $*"; exit 0; }
if ! rustup toolchain list | grep '^nightly' >/dev/null; then
  rustup toolchain install nightly --profile minimal || skip "no nightly toolchain"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked || skip "cannot install cargo-fuzz"
fi

# 16 codegen units: the build takes about half as long, the targets run a
# little slower. `run` must get the same build options, or it rebuilds.
build_opts=(--codegen-units 16)
start=$(date +%s)
cargo +nightly fuzz build "${build_opts[@]}"
echo "fuzz: built every target in $(( $(date +%s) - start )) s"

# Segment files the targets write live here, never in the shm namespace.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-scratch.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
logs="$scratch/logs"
mkdir -p "$logs"

total=0
summary=""
for src in fuzz/fuzz_targets/*.rs; do
  t=$(basename "$src" .rs)
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  if [ -d "fuzz/seeds/$t" ]; then cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true; fi
  log="$logs/$t.log"
  if ! MAPSHARE_FUZZ_DIR="$scratch" cargo +nightly fuzz run "${build_opts[@]}" "$t" "$corpus" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/"
    echo "  reproduce: cargo +nightly fuzz run ${build_opts[*]} $t fuzz/artifacts/$t/<file>"
    echo "  minimise:  cargo +nightly fuzz tmin ${build_opts[*]} $t fuzz/artifacts/$t/<file>"
    exit 1
  fi
  n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  cov=$(grep -o 'DONE *cov: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  line=$(printf '%-14s %12s executions in %4s s, edges covered %s' "$t" "${n:-0}" "$secs" "$cov")
  echo "fuzz: $line"
  summary="$summary$line"$'\n'
  total=$(( total + ${n:-0} ))
done
echo "fuzz: summary (no crash, panic, leak or hang):"
printf '%s' "$summary"
echo "fuzz: $total executions in total without a crash ($(( $(date +%s) - start )) s)"
