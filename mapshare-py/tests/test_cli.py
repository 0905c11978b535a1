"""Python against the Rust side, in real processes: the `mapshare` CLI's
send/recv (a mailbox) and pub/sub (a ring) in both directions, and the Rust
library's `sender` / `receiver` examples sharing a `#[repr(C)]` record with
a numpy dtype, each side checking the other's layout."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

import mapshare

TEXTS = ["grüß dich 👋", "Мир · 世界 · مرحبا · नमस्ते", "🦀" * 50]

# The Rust examples' record: id u64, sent_unix_ns u64, text FixedStr<236>
# (a u32 byte length, then 236 bytes): 256 bytes, align 8, no padding.
RECORD = np.dtype(
    [("id", "<u8"), ("sent_unix_ns", "<u8"), ("text_len", "<u4"), ("text", "S236")],
    align=True,
)
EXAMPLE_TEXT = "Grüße, Мир, 世界, مرحبا, नमस्ते, 🦀"


def finish(p: subprocess.Popen, timeout: float = 30) -> tuple[str, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"{p.args} did not finish: {out!r} {err!r}")
    return out, err


@pytest.mark.parametrize("text", TEXTS)
def test_python_sends_cli_receives(names, cli, text):
    name = names()
    with mapshare.Mailbox.open_or_create(name) as mb:
        mb.send(text.encode(), timeout=10)
        p = subprocess.Popen([cli, "recv", name, "--timeout", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = finish(p)
        assert p.returncode == 0, err
        assert out == text.encode() + b"\n"


@pytest.mark.parametrize("text", TEXTS)
def test_cli_sends_python_receives(names, cli, text):
    name = names()
    subprocess.run([cli, "send", name, text, "--timeout", "20"], check=True, timeout=30)
    with mapshare.Mailbox.open(name) as mb:
        assert mb.persistent  # the CLI's send keeps its message for a later recv
        assert mb.recv(timeout=10).decode() == text
    mapshare.unlink(name)


def test_cli_recv_times_out_cleanly(names, cli):
    name = names()
    p = subprocess.run([cli, "recv", name, "--timeout", "0.2"], capture_output=True, timeout=30)
    assert p.returncode == 3, p.stderr


def test_python_publishes_cli_subscribes(names, cli):
    name = names()
    p = subprocess.Popen([cli, "sub", name, "--count", str(len(TEXTS)), "--timeout", "20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with mapshare.Publisher.open_or_create(name, capacity=256, max_message=4096) as pub:
            pub.wait_subscribers(1, timeout=20)
            for t in TEXTS:
                pub.publish(t.encode(), timeout=10)
            out, err = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert out.decode().splitlines() == TEXTS


def test_cli_publishes_python_subscribes(names, cli):
    name = names()
    with mapshare.Subscriber.create(name, capacity=256, max_message=4096) as sub:
        lines = "".join(t + "\n" for t in TEXTS).encode()
        subprocess.run([cli, "pub", name], input=lines, check=True, timeout=30)
        got = [sub.recv(timeout=10).decode() for _ in TEXTS]
        assert got == TEXTS
        assert list(sub) == []  # the publisher has gone: iteration ends
        with pytest.raises(mapshare.Disconnected):
            sub.recv(timeout=5)


def open_when_there(name: str, layout, **kw) -> mapshare.Shared:
    deadline = time.monotonic() + 20
    while True:
        try:
            return mapshare.Shared.open(name, layout, **kw)
        except mapshare.NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_rust_writer_python_reader_checks_layouts(names, example):
    name = names()
    p = subprocess.Popen([example("sender"), name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The wrong dtype first: refused, with both layouts named.
        wrong = np.dtype([("id", "<u8"), ("sent_unix_ns", "<u8"), ("text", "S232")], align=True)
        with pytest.raises(mapshare.LayoutMismatch) as e:
            open_when_there(name, wrong, type_name="Record")
        assert e.value.expected == ("Record", 248, 8)
        assert e.value.found == ("Record", 256, 8)
        assert "Record (size 248, align 8)" in str(e.value)
        assert "Record (size 256, align 8)" in str(e.value)
        # The right one: the Rust record read field by field.
        with open_when_there(name, RECORD, type_name="Record") as shared:
            shared.wait(timeout=20)
            rec = shared.get(timeout=10)
            assert rec["id"] == 1 and rec["sent_unix_ns"] > 0
            assert bytes(rec["text"][: rec["text_len"]]).decode() == EXAMPLE_TEXT
            with mapshare.Event.open(f"{name}.ack") as ack:
                ack.notify()
            out, err = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "delivered" in out.decode()


def test_python_writer_rust_reader(names, example):
    name = names()
    text = "Python → Rust: héllo, 世界 🐍🦀"
    raw = text.encode()
    with mapshare.Shared.create(name, RECORD, type_name="Record") as shared, \
            mapshare.Event.create(f"{name}.ack") as ack:
        shared.set((7, time.time_ns(), len(raw), raw))
        shared.notify()
        p = subprocess.Popen([example("receiver"), name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ack.wait(timeout=20)
        out, err = finish(p)
    assert p.returncode == 0, err
    assert f'record 7 says "{text}"' in out.decode()


def test_rust_refuses_a_python_value_of_another_layout(names, example):
    name = names()
    wrong = np.dtype([("id", "<u8"), ("text", "S240")], align=True)  # 248 bytes
    with mapshare.Shared.create(name, wrong, type_name="Record"):
        p = subprocess.Popen([example("receiver"), name], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = finish(p)
    assert p.returncode != 0
    err = err.decode()
    assert "LayoutMismatch" in err
    assert "Record (size 256, align 8)" in err and "Record (size 248, align 8)" in err
