"""Shared fixtures: unique segment names (cleaned up, and checked gone from
/dev/shm, after every test, also on failure), and the Rust binaries the
cross-language tests run (built by ci/python.sh; a missing one fails the
test rather than skipping it)."""

from __future__ import annotations

import itertools
import re
import os
import pathlib
import subprocess
import sys

import pytest

import mapshare

REPO = pathlib.Path(__file__).resolve().parents[2]
SHM = pathlib.Path("/dev/shm")
_counter = itertools.count()


def target_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def _binary(rel: str) -> pathlib.Path:
    for profile in ("debug", "release"):
        p = target_dir() / profile / rel
        if p.exists():
            return p
    pytest.fail(
        f"{rel} is not built under {target_dir()}: run `cargo build -p mapshare-cli` and "
        "`cargo build -p mapshare --example sender --example receiver` (ci/python.sh does)"
    )


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The `mapshare` CLI binary."""
    return _binary("mapshare")


@pytest.fixture(scope="session")
def example():
    """Path of a built example of the Rust library (`sender`, `receiver`)."""
    return lambda name: _binary(f"examples/{name}")


class Names:
    """Unique names for one test: `py-<pid>-<test>-<n>`; every name made
    (and `<name>.ack`, which the Rust examples add) is unlinked at the end
    and must be gone from /dev/shm."""

    def __init__(self, test: str):
        self.test = re.sub(r"[^A-Za-z0-9.-]+", "-", test).strip("-")[:60]
        self.made: list[str] = []

    def __call__(self, tag: str = "") -> str:
        name = f"py-{os.getpid()}-{self.test}-{next(_counter)}{'-' + tag if tag else ''}"
        self.made.append(name)
        return name

    def cleanup(self) -> list[str]:
        left = []
        for name in self.made:
            for n in (name, f"{name}.ack"):
                if (SHM / f"mapshare.{n}").exists():
                    left.append(n)
                try:
                    mapshare.unlink(n)
                except mapshare.NotFound:
                    pass
        return left


@pytest.fixture
def names(request):
    """Unique segment names; asserts at the end that the test left none."""
    n = Names(request.node.name)
    yield n
    import gc

    gc.collect()  # handles a failed test left in frames
    n.cleanup()
    left = [n2 for n2 in n.made if (SHM / f"mapshare.{n2}").exists()]
    assert not left, f"left in /dev/shm: {left}"


def run_python(code: str, *args: str, **kw) -> subprocess.Popen:
    """Starts `python -c code args...` with this interpreter (stdout and
    stderr piped, text)."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )
