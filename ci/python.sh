#!/usr/bin/env bash
# The Python binding (mapshare-py): builds the abi3 wheel with maturin and
# installs it into the venv target/py-venv (ci/py-venv.sh, shared with
# ci/c.sh, whose C <-> Python tests use that venv), checks that `pip install
# ./mapshare-py` (what the README says) works too, builds the Rust CLI and
# examples the cross-language tests run, runs the pytest suite, and checks
# that /dev/shm is left clean. Needs python3 >= 3.11 with venv (installed
# with apt-get when missing); everything else goes into target/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/py-venv
src_venv=$target/py-venv-src

fail() { echo "ci/python.sh: $*" >&2; exit 1; }

# Segments of ours before the run (another run's leftovers are not ours to judge).
ours() { find /dev/shm -maxdepth 1 -name 'mapshare.py-*' -printf '%f\n' 2>/dev/null | sort; }
before=$(ours)

# The venv with the wheel (python3 checked, installed when missing).
ci/py-venv.sh
wheel=$(ls "$target"/wheels/mapshare-*-cp311-abi3-*.whl) || fail "no abi3 wheel in $target/wheels"

# `pip install ./mapshare-py` from the source tree, in a venv of its own.
python3 -m venv "$src_venv"
"$src_venv/bin/python" -m pip install -q --upgrade pip
"$src_venv/bin/python" -m pip install -q ./mapshare-py
(cd / && "$src_venv/bin/python" -c '
import os, mapshare
name = f"py-{os.getpid()}-pip-install"
with mapshare.Mailbox.create(name) as mb:
    mb.send("pip install ./mapshare-py ✓".encode())
    print(mb.recv(timeout=5).decode())
')

# What the cross-language tests run (two builds: `--example` with two -p
# flags builds only examples).
cargo build -p mapshare-cli
cargo build -p mapshare --example sender --example receiver

# From mapshare-py/ the installed wheel is imported (the sources are under python/).
(cd mapshare-py && "$venv/bin/python" -m pytest -v -p no:cacheprovider tests)

after=$(ours)
left=$(comm -13 <(echo "$before") <(echo "$after"))
[ -z "$left" ] || fail "segments left in /dev/shm: $left"
echo "ci/python.sh: ok (wheel $(basename "$wheel"))"
