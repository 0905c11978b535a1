#!/usr/bin/env bash
# The C binding (mapshare-ffi), end to end:
#  1. gcc and pkg-config (apt-get, only if missing) and cbindgen 0.29
#     (cargo install into target/tools, not ~/.cargo);
#  2. mapshare-ffi and the CLI in release; the Rust-side tests of the
#     extern functions;
#  3. include/mapshare.h verified against the sources (cbindgen --verify);
#  4. the library installed under target/c-prefix by mapshare-ffi/install.sh,
#     which generates mapshare.pc with that prefix;
#  5. every tests/c/*.c program compiled with -Wall -Wextra -Werror -std=c11
#     under ASan+UBSan, once against the staticlib and once against the
#     cdylib (found through pkg-config), and run (the cross-process tests
#     use the CLI through $MAPSHARE_BIN, and Python through
#     $MAPSHARE_PYTHON: target/py-venv/bin/python, which ci/python.sh
#     leaves with the wheel installed; run alone, ci/c.sh makes it with
#     ci/py-venv.sh, and fails if no Python with mapshare can be had);
#     the README's C example is compiled and run the same two ways;
#  6. /dev/shm checked: nothing the tests made is left.
# Run from anywhere: ci/c.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tgt="${CARGO_TARGET_DIR:-$root/target}"
start=$(date +%s)

say() { echo "c.sh: $*"; }
die() { echo "c.sh: FAILED: $*" >&2; exit 1; }

# ---- 1. tools ----
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
# gcc without the C library's headers (a minimal image without recommends).
if command -v gcc >/dev/null && ! echo '#include <stdio.h>' | gcc -E -x c - >/dev/null 2>&1; then
  need+=(libc6-dev)
fi
if [[ ${#need[@]} -gt 0 ]]; then
  say "installing ${need[*]} (apt-get)"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update
  $sudo apt-get install -y "${need[@]}"
fi
cbindgen="$root/target/tools/bin/cbindgen"
if ! [[ -x "$cbindgen" ]] || ! "$cbindgen" --version | grep '^cbindgen 0\.29\.' >/dev/null; then
  say "installing cbindgen 0.29 into target/tools"
  cargo install --locked cbindgen --version '^0.29' --root "$root/target/tools"
fi
say "$("$cbindgen" --version), $(gcc --version | head -n1), pkg-config $(pkg-config --version)"

# ---- 2. build, Rust-side tests ----
cargo build --release -p mapshare-ffi -p mapshare-cli
cargo test -p mapshare-ffi
cli="$tgt/release/mapshare"
[[ -x "$cli" ]] || die "$cli was not built"

# ---- 3. the header matches the sources ----
"$cbindgen" --quiet --config mapshare-ffi/cbindgen.toml --crate mapshare-ffi \
  --output mapshare-ffi/include/mapshare.h --verify mapshare-ffi \
  || die "mapshare-ffi/include/mapshare.h is stale: regenerate it (command in mapshare-ffi/cbindgen.toml)"
say "header verified"

# ---- 4. install under a staging prefix, with its mapshare.pc ----
prefix="$tgt/c-prefix"
rm -rf "$prefix"
mapshare-ffi/install.sh "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --exists --print-errors mapshare || die "pkg-config cannot find mapshare"
[[ "$(pkg-config --modversion mapshare)" == "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)" ]] \
  || die "mapshare.pc has the wrong version"
say "pkg-config: $(pkg-config --cflags --libs mapshare); static: $(pkg-config --variable=staticlib mapshare) $(pkg-config --variable=static_deps mapshare)"

# ---- 5. C tests, both libraries, under ASan + UBSan ----
out="$tgt/ctest"
rm -rf "$out"
mkdir -p "$out"
cflags=(-Wall -Wextra -Werror -std=c11 -g -O1 -fno-omit-frame-pointer
        -fsanitize=address,undefined -fno-sanitize-recover=undefined)
read -r -a pc_cflags <<< "$(pkg-config --cflags mapshare)"
read -r -a pc_libs <<< "$(pkg-config --libs mapshare)"
read -r -a static_deps <<< "$(pkg-config --variable=static_deps mapshare)"
staticlib="$(pkg-config --variable=staticlib mapshare)"
libdir="$(pkg-config --variable=libdir mapshare)"
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export MAPSHARE_BIN="$cli"

# Python with the mapshare wheel (and numpy) for tests/c/test_python.c: the
# venv ci/python.sh made, else made now the same way. Never skipped.
py="$tgt/py-venv/bin/python"
py_ok() { [[ -x "$py" ]] && (cd / && "$py" -I -c 'import mapshare, numpy') >/dev/null 2>&1; }
if ! py_ok; then
  say "$py cannot import mapshare: building the wheel into it (ci/py-venv.sh)"
  ci/py-venv.sh || die "ci/py-venv.sh failed: no Python with mapshare for the C <-> Python tests"
  py_ok || die "$py cannot import mapshare and numpy"
fi
export MAPSHARE_PYTHON="$py"
say "MAPSHARE_PYTHON=$py ($("$py" --version), mapshare from $(cd / && "$py" -I -c 'import mapshare, os; print(os.path.dirname(mapshare.__file__))'))"

shm_ours() { find /dev/shm -maxdepth 1 -name 'mapshare.c-*' -printf '%f\n' 2>/dev/null | sort; }
before="$(shm_ours)"

tests=(mapshare-ffi/tests/c/*.c)
[[ ${#tests[@]} -gt 0 && -f "${tests[0]}" ]] || die "no C tests found"
ran=0
for src in "${tests[@]}"; do
  t="$(basename "$src" .c)"
  gcc "${cflags[@]}" "${pc_cflags[@]}" "$src" "$staticlib" "${static_deps[@]}" -o "$out/${t}_static"
  gcc "${cflags[@]}" "${pc_cflags[@]}" "$src" "${pc_libs[@]}" -Wl,-rpath,"$libdir" -o "$out/${t}_shared"
  # Each links the library it claims to.
  # grep without -q reads all of ldd's output: `grep -q` exits at the first
  # match, and ldd, killed by SIGPIPE, then fails the pipeline (pipefail).
  ldd "$out/${t}_shared" | grep "libmapshare_ffi.so => $libdir/" >/dev/null || die "${t}_shared does not load $libdir/libmapshare_ffi.so"
  if ldd "$out/${t}_static" | grep libmapshare_ffi >/dev/null; then die "${t}_static loads libmapshare_ffi.so"; fi
  for kind in static shared; do
    say "running ${t}_$kind"
    "$out/${t}_$kind" || die "${t}_$kind exited with status $?"
    ran=$((ran + 1))
  done
done

# The README's ten-line example, as written (a unique name instead of "hello").
example_name="c-example-$$"
awk '/^```c$/ {on=1; next} /^```$/ && on {exit} on' mapshare-ffi/README.md \
  | sed "s/\"hello\"/\"$example_name\"/g" > "$out/readme_example.c"
grep -q "$example_name" "$out/readme_example.c" || die "no C example found in mapshare-ffi/README.md"
for kind in static shared; do
  if [[ $kind == static ]]; then link=("$staticlib" "${static_deps[@]}"); else link=("${pc_libs[@]}" -Wl,-rpath,"$libdir"); fi
  gcc "${cflags[@]}" "${pc_cflags[@]}" "$out/readme_example.c" "${link[@]}" -o "$out/readme_example_$kind"
  [[ "$("$out/readme_example_$kind")" == "hi" ]] || die "the README example ($kind) did not print hi"
done
say "README example builds and prints hi (static and shared)"

# ---- 6. nothing left behind ----
after="$(shm_ours)"
if [[ "$after" != "$before" ]]; then
  die "left in /dev/shm: $(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"
fi
say "all passed: $ran C test runs (static and shared, ASan+UBSan) in $(( $(date +%s) - start )) s; /dev/shm clean"
