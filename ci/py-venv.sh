#!/usr/bin/env bash
# The venv target/py-venv with the mapshare wheel installed: python3 >= 3.11
# with venv (apt-get when missing), maturin, pytest and numpy in the venv,
# the abi3 wheel built with maturin into target/wheels and installed over
# whatever the venv held. Used by ci/python.sh (every run) and by ci/c.sh
# (when the venv cannot import mapshare, i.e. ci/c.sh run alone), whose
# C <-> Python tests run target/py-venv/bin/python. Fails loudly when
# Python cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/py-venv

fail() { echo "ci/py-venv.sh: $*" >&2; exit 1; }

# python3 with venv and pip (Debian: python3-venv).
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    command -v apt-get >/dev/null || fail "python3 with venv is missing and apt-get is not available"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -q
    $sudo apt-get install -y -q python3 python3-venv python3-pip
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || fail "python3 >= 3.11 is needed (the wheel is abi3-py311), found $(python3 --version)"

python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q maturin pytest numpy

# The wheel, as CI ships it, installed over whatever the venv held.
rm -f "$target"/wheels/mapshare-*.whl
"$venv/bin/maturin" build --release -m mapshare-py/Cargo.toml -o "$target/wheels"
wheel=$(ls "$target"/wheels/mapshare-*-cp311-abi3-*.whl) || fail "no abi3 wheel in $target/wheels"
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel"
(cd / && "$venv/bin/python" -c 'import mapshare, numpy') || fail "$venv cannot import mapshare and numpy"
echo "ci/py-venv.sh: $venv has $(basename "$wheel")"
