"""One process: every kind's calls, errors and conversions."""

from __future__ import annotations

import array
import time

import numpy as np
import pytest

import mapshare

UNICODE = ["grüß dich 👋", "Мир", "世界", "مرحبا", "नमस्ते", "🦀" * 100, ""]


def test_mailbox_round_trip_unicode(names):
    name = names()
    with mapshare.Mailbox.create(name) as mb, mapshare.Mailbox.open(name) as peer:
        for text in UNICODE:
            mb.send(text.encode())
            assert peer.recv(timeout=5).decode() == text
        assert peer.try_recv() is None
        assert mb.max_message == mapshare.DEFAULT_MAILBOX_MAX_MESSAGE


def test_send_accepts_every_buffer_kind(names):
    name = names()
    with mapshare.Mailbox.create(name, max_message=256) as mb:
        payloads = [
            b"bytes",
            bytearray(b"bytearray"),
            memoryview(b"xxmemoryviewxx")[2:-2],
            array.array("i", [1, 2, 3]),
            np.arange(4, dtype=np.uint16),
            np.zeros((2, 3), dtype=np.float64),
        ]
        for p in payloads:
            mb.send(p)
            assert mb.recv() == bytes(memoryview(p).cast("B"))


def test_send_refuses_non_contiguous_and_non_buffers(names):
    with mapshare.Mailbox.create(names()) as mb:
        with pytest.raises(BufferError):
            mb.send(np.arange(10)[::2])
        with pytest.raises(TypeError):
            mb.send("a str is not bytes")
        with pytest.raises(TypeError):
            mb.send(12)


def test_too_large_and_full(names):
    with mapshare.Mailbox.create(names(), max_message=8) as mb:
        with pytest.raises(mapshare.TooLarge) as e:
            mb.send(b"123456789")
        assert isinstance(e.value, ValueError)
        assert "9 bytes" in str(e.value)
        assert mb.try_send(b"one")
        assert mb.is_full
        assert not mb.try_send(b"two")
        with pytest.raises(mapshare.Timeout):
            mb.send(bytearray(b"two"), timeout=0.05)  # a mutable buffer, copied to wait


def test_recv_into_and_buffer_too_small(names):
    with mapshare.Mailbox.create(names()) as mb:
        mb.send("héllo".encode())
        buf = bytearray(16)
        n = mb.recv_into(buf)
        assert buf[:n].decode() == "héllo"
        arr = np.zeros(8, dtype=np.uint8)
        mb.send(b"abc")
        assert mb.recv_into(arr) == 3 and bytes(arr[:3]) == b"abc"
        mb.send(b"0123456789")
        with pytest.raises(mapshare.BufferTooSmall) as e:
            mb.recv_into(bytearray(4))
        assert e.value.message == b"0123456789"  # not lost
        with pytest.raises(TypeError):
            mb.recv_into(b"read-only")


def test_timeouts(names):
    with mapshare.Mailbox.create(names()) as mb:
        t0 = time.monotonic()
        with pytest.raises(mapshare.Timeout) as e:
            mb.recv(timeout=0.2)
        assert time.monotonic() - t0 >= 0.2
        assert isinstance(e.value, TimeoutError) and isinstance(e.value, mapshare.Error)
        with pytest.raises(TimeoutError):
            mb.recv(timeout=0)
        with pytest.raises(ValueError):
            mb.recv(timeout=-1)
        with pytest.raises(ValueError):
            mb.recv(timeout=float("nan"))


def test_open_errors(names):
    name = names()
    with pytest.raises(mapshare.NotFound) as e:
        mapshare.Mailbox.open(name)
    assert isinstance(e.value, FileNotFoundError) and name in str(e.value)
    with pytest.raises(mapshare.InvalidName):
        mapshare.Mailbox.create("bad/name")
    with pytest.raises(ValueError):
        mapshare.Mailbox.create(".hidden")
    with mapshare.Mailbox.create(name):
        with pytest.raises(mapshare.AlreadyExists) as e:
            mapshare.Mailbox.create(name)
        assert isinstance(e.value, FileExistsError)
        with pytest.raises(mapshare.KindMismatch) as e:
            mapshare.Mutex.open(name)
        assert "mailbox" in str(e.value)


def test_closed_handle(names):
    mb = mapshare.Mailbox.create(names())
    mb.close()
    assert mb.closed
    with pytest.raises(ValueError, match="closed"):
        mb.send(b"x")


def test_channel_iteration_ends_at_disconnection(names):
    name = names()
    rx = mapshare.Receiver.create(name, capacity=16, max_message=64, senders=2)
    with rx:
        a, b = mapshare.Sender.open(name), mapshare.Sender.open(name)
        for i in range(5):
            a.send(f"a{i}".encode())
            b.send(f"b{i} ✓".encode())
        assert len(rx) == 10
        a.close()
        b.close()
        got = [m.decode() for m in rx]
        assert sorted(got) == sorted([f"a{i}" for i in range(5)] + [f"b{i} ✓" for i in range(5)])
        with pytest.raises(mapshare.Disconnected):
            rx.recv(timeout=1)
        with pytest.raises(mapshare.Disconnected):
            rx.try_recv()


def test_channel_sender_without_receiver(names):
    name = names()
    rx = mapshare.Receiver.create(name)
    tx = mapshare.Sender.open(name)
    rx.close()
    with pytest.raises(mapshare.Disconnected):
        tx.send(b"nobody", timeout=1)
    tx.close()


def test_numpy_arrays_round_trip(names):
    name = names()
    with mapshare.Receiver.create(name, max_message=1 << 20) as rx:
        tx = mapshare.Sender.open(name)
        a = np.random.default_rng(1).standard_normal((64, 32)).astype(np.float32)
        tx.send(a)
        b = rx.recv_array(np.float32, a.shape)
        assert b.dtype == np.float32 and b.shape == a.shape and np.array_equal(a, b)
        b[0, 0] = 1.0  # a new, writable array
        rec = np.zeros(3, dtype=[("id", "<u4"), ("x", "<f8")])
        rec["id"] = [1, 2, 3]
        tx.send(rec)
        assert np.array_equal(rx.recv_array(rec.dtype), rec)
        tx.send(b"12345")
        with pytest.raises(ValueError):
            rx.recv_array(np.uint32)
        tx.close()


def test_recv_array_loses_nothing_on_a_bad_dtype_or_shape(names):
    # A dtype numpy refuses is refused before anything is received; a
    # message that does not fit the dtype or the shape raises
    # LengthMismatch (a ValueError) holding the message, as
    # BufferTooSmall does for recv_into.
    name = names()
    with mapshare.Receiver.create(name) as rx, mapshare.Sender.open(name) as tx:
        tx.send(b"12345")
        with pytest.raises(TypeError):
            rx.recv_array("not a dtype", timeout=5)
        with pytest.raises(mapshare.LengthMismatch) as e:
            rx.recv_array(np.uint32, timeout=5)
        assert isinstance(e.value, ValueError) and e.value.message == b"12345"
        tx.send(bytes(range(12)))
        with pytest.raises(mapshare.LengthMismatch) as e:
            rx.recv_array(np.uint8, (5, 5), timeout=5)
        assert e.value.message == bytes(range(12))
        tx.send(b"last")
        assert rx.recv(timeout=5) == b"last"
        assert rx.try_recv() is None
    with mapshare.Mailbox.create(names()) as mb:
        mb.send(b"kept")
        with pytest.raises(TypeError):
            mb.recv_array("not a dtype", timeout=5)
        assert mb.recv(timeout=5) == b"kept"


def test_pubsub_every_subscriber_gets_everything(names):
    name = names()
    with mapshare.Publisher.create(name, capacity=8, max_message=64) as pub:
        subs = [mapshare.Subscriber.open(name) for _ in range(3)]
        assert pub.subscriber_count == 3
        assert pub.policy == "lossless"
        for text in UNICODE[:5]:
            pub.publish(text.encode())
        assert pub.published == 5
        for s in subs:
            assert [s.recv(timeout=5).decode() for _ in range(5)] == UNICODE[:5]
        with pytest.raises(mapshare.TooLarge):
            pub.publish(b"x" * 65)
    for s in subs:
        assert not s.publisher_alive
        assert list(s) == []
        s.close()


def test_pubsub_history_gives_a_late_joiner_the_last_messages(names):
    name = names()
    with mapshare.Publisher.create(name, capacity=8) as pub:
        for i in range(10):
            pub.publish(b"%d" % i)
        with mapshare.Subscriber.open(name) as plain:
            with pytest.raises(mapshare.Timeout):
                plain.recv(timeout=0)
        with mapshare.Subscriber.open(name, history=3) as three, \
                mapshare.Subscriber.open(name, history=100) as most:
            pub.publish(b"10")
            assert [three.recv(timeout=5) for _ in range(4)] == [b"7", b"8", b"9", b"10"]
            # Clamped to capacity - 1: the oldest slot may be the one rewritten next.
            assert [most.recv(timeout=5) for _ in range(8)] == [b"%d" % i for i in range(3, 11)]
    with pytest.raises((OverflowError, TypeError)):
        mapshare.Subscriber.open(names(), history=-1)


def test_pubsub_overwrite_oldest_lags(names):
    name = names()
    with mapshare.Publisher.create(name, capacity=2, policy="overwrite_oldest") as pub:
        with mapshare.Subscriber.open(name) as s:
            for i in range(6):
                pub.publish(b"%d" % i)
            with pytest.raises(mapshare.Lagged) as e:
                s.recv(timeout=1)
            assert e.value.missed == 4
            assert s.recv(timeout=1) == b"4"
    with pytest.raises(ValueError):
        mapshare.Publisher.create(names(), policy="sometimes")


def test_mutex_lock_forms(names):
    name = names()
    m = mapshare.Mutex.create(name)
    other = mapshare.Mutex.open(name)
    with m as g:
        assert g.locked
        assert other.try_lock() is None
        with pytest.raises(mapshare.Timeout):
            other.lock(timeout=0.1)
    assert not g.locked
    g = other.lock(timeout=1)
    g.unlock()
    g.unlock()  # again: nothing
    with other.lock() as g2:
        assert "locked" in repr(g2)
    m.close()
    other.close()


def test_event_auto_and_manual(names):
    e = mapshare.Event.create(names())
    assert not e.manual_reset
    e.notify()
    e.wait(timeout=1)
    assert not e.try_wait()
    with pytest.raises(mapshare.Timeout):
        e.wait(timeout=0.05)
    m = mapshare.Event.create(names(), manual_reset=True)
    m.notify()
    assert m.try_wait() and m.try_wait() and m.is_set
    m.reset()
    assert not m.is_set
    e.close()
    m.close()


RECORD = np.dtype(
    [("id", "<u8"), ("sent_unix_ns", "<u8"), ("text_len", "<u4"), ("text", "S236")],
    align=True,
)


def test_shared_value_with_dtype(names):
    name = names()
    s = mapshare.Shared.create(name, RECORD, type_name="Record")
    assert s.layout == ("Record", 256, 8) and s.size == 256
    text = "Grüße 🦀".encode()
    s.set((1, 2, len(text), text))
    v = mapshare.Shared.open(name, RECORD, type_name="Record").get(timeout=1)
    assert v["id"] == 1 and bytes(v["text"][: v["text_len"]]).decode() == "Grüße 🦀"
    with s.lock(timeout=1) as g:
        r = g.get()
        r["id"] = 2
        g.set(r)
    assert s.get()["id"] == 2
    s.notify()
    s.wait(timeout=1)
    assert not s.try_wait()
    with pytest.raises(mapshare.LengthMismatch):
        s.set(b"short")
    s.close()


def test_shared_layout_mismatch_names_both(names):
    name = names()
    s = mapshare.Shared.create(name, RECORD, type_name="Record")
    wrong = np.dtype([("id", "<u8"), ("text", "S248")], align=True)  # 256 bytes, align 8, another name
    with pytest.raises(mapshare.LayoutMismatch) as e:
        mapshare.Shared.open(name, wrong, type_name="Other")
    assert e.value.expected == ("Other", 256, 8)
    assert e.value.found == ("Record", 256, 8)
    assert "Other (size 256, align 8)" in str(e.value) and "Record (size 256, align 8)" in str(e.value)
    with pytest.raises(mapshare.LayoutMismatch):
        mapshare.Shared.open(name, ("Record", 256, 4))
    with pytest.raises(TypeError, match="type_name"):
        mapshare.Shared.open(name, RECORD)  # a struct needs its Rust name
    packed = np.dtype(RECORD.descr)  # without align=True numpy says align 1: not repr(C)
    with pytest.raises(mapshare.LayoutMismatch, match="align 1"):
        mapshare.Shared.open(name, packed, type_name="Record")
    s.close()


def test_scalar_layouts_take_rust_names(names):
    for dt, rust in [("f8", "f64"), (np.int32, "i32"), ("u1", "u8"), (("<u8", (3,)), "[u64; 3]")]:
        s = mapshare.Shared.create(names(), dt)
        assert s.layout[0] == rust
        s.close()


def test_blackboard(names):
    name = names()
    w = mapshare.BlackboardWriter.create(name, ("<u8", (3,)))
    r = mapshare.BlackboardReader.open(name, ("[u64; 3]", 24, 8))
    assert r.read_with_version() == (bytes(24), 0)
    w.write(np.array([1, 2, 3], dtype=np.uint64))
    assert w.version == 1
    v, version = r.read_newer(0, timeout=1)
    assert version == 1 and np.frombuffer(v, np.uint64).tolist() == [1, 2, 3]
    with pytest.raises(mapshare.Timeout):
        r.read_newer(1, timeout=0.05)
    with pytest.raises(mapshare.TooManyAttached):
        mapshare.BlackboardWriter.open(name, ("[u64; 3]", 24, 8))
    assert r.writer_alive
    w.close()
    assert not r.writer_alive
    with pytest.raises(mapshare.Disconnected):
        r.read_newer(1, timeout=1)
    r.close()


def test_help_is_useful():
    doc = mapshare.Mailbox.__doc__
    assert "exactly once" in doc and "timeout" in doc
    assert "max_message" in mapshare.Mailbox.create.__text_signature__
    assert mapshare.Mutex.lock.__doc__ and "OwnerDied" in mapshare.Mutex.lock.__doc__
    for cls in (mapshare.Sender, mapshare.Receiver, mapshare.Publisher, mapshare.Subscriber,
                mapshare.Shared, mapshare.BlackboardWriter, mapshare.BlackboardReader, mapshare.Event):
        assert cls.__doc__ and cls.create.__doc__
