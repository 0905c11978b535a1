#!/usr/bin/env bash
# Windows, under Wine (issue 9): builds the library and the CLI for
# x86_64-pc-windows-gnu and runs, under Wine, the library's unit tests, its
# multi-process integration tests (real processes re-running the test .exe;
# holders killed with TerminateProcess, round trips in both start orders,
# events across processes, killed senders), the CLI's tests, and a few
# end-to-end runs of mapshare.exe (ci/windows/e2e.sh).
#
# Installs what it needs (Debian's mingw-w64 and wine, the rustup target)
# and fails loudly when a piece is missing: it never skips. Wine 8.0 has
# no bcryptprimitives.dll, whose ProcessPrng Rust's std (1.78+) imports, so
# a stub built here from ci/windows/processprng.c goes into the prefix's
# system32. The Wine prefix is made afresh under target/ on every run:
# Wine hands out the same process ids run after run, so a previous run's
# leftovers would look like this run's.
set -euo pipefail
cd "$(dirname "$0")/.."
T=x86_64-pc-windows-gnu

fail() { echo "windows: $*" >&2; exit 1; }

if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! command -v wine >/dev/null; then
  echo "windows: installing gcc-mingw-w64-x86-64 and wine (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update failed"
  apt-get install -y -qq gcc-mingw-w64-x86-64 wine >/dev/null || fail "apt-get install failed"
fi
command -v x86_64-w64-mingw32-gcc >/dev/null || fail "no x86_64-w64-mingw32-gcc"
command -v wine >/dev/null || fail "no wine"
rustup target add "$T" >/dev/null || fail "rustup target add $T failed"
echo "windows: $(wine --version), $(x86_64-w64-mingw32-gcc --version | head -1)"

export WINEPREFIX="$PWD/target/wine"
export WINEDEBUG=-all
# No Mono or Gecko install prompts (nothing here uses .NET or HTML).
export WINEDLLOVERRIDES="mscoree=;mshtml="
wineserver -k 2>/dev/null || true
rm -rf "$WINEPREFIX"
mkdir -p "$WINEPREFIX"
wineboot -i >/dev/null 2>&1 || fail "wineboot -i failed"
wineserver -w
sys32="$WINEPREFIX/drive_c/windows/system32"
[ -d "$sys32" ] || fail "no $sys32 after wineboot"

x86_64-w64-mingw32-gcc -shared -O2 -s -o "target/bcryptprimitives.dll" \
  ci/windows/processprng.c -ladvapi32 || fail "building the ProcessPrng stub failed"
cp target/bcryptprimitives.dll "$sys32/bcryptprimitives.dll"

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
# Lints on the Windows build too (sys/windows.rs, the cfg'd code and tests).
cargo clippy -q --target "$T" -p mapshare -p mapshare-cli --all-targets -- -D warnings
cargo build -q --target "$T" -p mapshare -p mapshare-cli
exe="target/$T/debug/mapshare.exe"
version=$(wine "$exe" --version) || fail "mapshare.exe does not start under Wine (ProcessPrng stub?)"
echo "windows: $version runs under Wine"

# The library: unit tests, then the integration tests (multi-process).
timeout 1800 cargo test -q --target "$T" -p mapshare --lib --tests
# The CLI's tests (tests/shell.rs is bash scripts: Unix only, compiled out).
timeout 900 cargo test -q --target "$T" -p mapshare-cli
ci/windows/e2e.sh "$exe"

# Nothing may be left: no segment, no creator's temp file, no tombstone.
left=$(ls -A "$WINEPREFIX/drive_c/users/$(id -un)/AppData/Local/mapshare" 2>/dev/null || true)
if [ -n "$left" ]; then
  echo "windows: left behind in %LOCALAPPDATA%\mapshare:"; echo "$left"; exit 1
fi
wineserver -k 2>/dev/null || true
echo "windows: all passed under Wine"
