#!/usr/bin/env bash
# The README's test command: every test. The Rust workspace (`cargo test
# --workspace`, which also works on its own), then the Python binding
# (ci/python.sh: the wheel, `pip install ./mapshare-py`, pytest across
# processes and languages) and the C binding (ci/c.sh: the header verified,
# the C tests under ASan+UBSan against both libraries, C <-> CLI and
# C <-> Python). Each installs what it needs into target/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
ci/python.sh
ci/c.sh
