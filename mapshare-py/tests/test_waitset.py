"""`WaitSet`: one thread waiting on receivers, subscribers, events,
mailboxes, servers and clients at once; fair order, timeouts, a source
made ready by another process while the set sleeps."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

import _children
import mapshare

ctx = multiprocessing.get_context("spawn")


def test_every_kind_of_source(names):
    n = {k: names(k) for k in ("rx", "sub", "ev", "mb", "svc")}
    with mapshare.Receiver.create(n["rx"]) as rx, mapshare.Sender.open(n["rx"]) as tx, \
            mapshare.Publisher.create(n["sub"]) as pub, mapshare.Subscriber.open(n["sub"]) as sub, \
            mapshare.Event.create(n["ev"]) as ev, mapshare.Mailbox.create(n["mb"]) as mb, \
            mapshare.Server.create(n["svc"]) as srv, mapshare.Client.open(n["svc"]) as cl:
        ws = mapshare.WaitSet()
        sources = [rx, sub, ev, mb, srv, cl]
        assert ws.try_wait(sources) == []
        with pytest.raises(mapshare.Timeout):
            ws.wait(sources, timeout=0.1)
        tx.send(b"a")
        assert ws.wait(sources, timeout=5) == [0]
        assert rx.try_recv() == b"a"
        pub.publish(b"b")
        assert ws.wait(sources, timeout=5) == [1]
        assert sub.try_recv() == b"b"
        ev.notify()
        assert ws.wait(sources, timeout=5) == [2]
        assert ev.try_wait()
        mb.send(b"c")
        assert ws.wait(sources, timeout=5) == [3]
        assert mb.try_recv() == b"c"
        i = cl.request(b"d")
        assert ws.wait(sources, timeout=5) == [4]
        req = srv.try_recv_request()
        assert req.data == b"d"
        srv.respond(req, b"D")
        assert ws.wait(sources, timeout=5) == [5]
        assert tuple(cl.try_recv_response()) == (i, b"D")
        assert ws.try_wait(sources) == []


def test_fair_order(names):
    a, b = names("a"), names("b")
    with mapshare.Mailbox.create(a) as ma, mapshare.Mailbox.create(b) as mb:
        ma.send(b"1")
        mb.send(b"2")
        ws = mapshare.WaitSet()
        first = ws.wait([ma, mb], timeout=5)
        assert sorted(first) == [0, 1]
        second = ws.wait([ma, mb], timeout=5)  # both still ready: the other one first
        assert second[0] != first[0]


def test_bad_sources(names):
    name = names()
    ws = mapshare.WaitSet()
    with mapshare.Receiver.create(name) as rx:
        with pytest.raises(TypeError):
            ws.wait([rx, b"not a source"], timeout=0)
        with pytest.raises(RuntimeError, match="given twice"):
            ws.wait([rx, rx], timeout=0)
        assert ws.try_wait([rx]) == []  # the failed calls let go of it
    with pytest.raises(ValueError, match="closed"):
        ws.wait([rx], timeout=0)
    with pytest.raises(mapshare.Timeout):
        ws.wait([], timeout=0.05)


def test_source_in_use_meanwhile(names):
    name = names()
    with mapshare.Receiver.create(name) as rx, mapshare.Sender.open(name) as tx:
        ws = mapshare.WaitSet()
        outcome = []

        def waiter():
            try:
                ws.wait([rx], timeout=1)
            except mapshare.Timeout as e:
                outcome.append(e)

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.2)
        with pytest.raises(RuntimeError, match="in use"):
            rx.try_recv()
        t.join()
        assert len(outcome) == 1  # nothing came: it timed out
        tx.send(b"x")
        assert rx.recv(timeout=5) == b"x"


def test_ready_from_another_process(names):
    name, stop = names(), names("stop")
    with mapshare.Receiver.create(name) as rx, mapshare.Event.create(stop) as ev:
        p = ctx.Process(target=_children.send_after, args=(name, 0.3), daemon=True)
        p.start()
        ws = mapshare.WaitSet()
        t0 = time.monotonic()
        assert ws.wait([ev, rx], timeout=30) == [1]
        assert time.monotonic() - t0 < 25
        assert rx.try_recv().decode() == "spät ✓"
        p.join(30)
        assert p.exitcode == 0
        # Every sender gone: the receiver is ready (its recv says Disconnected).
        assert ws.wait([ev, rx], timeout=30) == [1]
        with pytest.raises(mapshare.Disconnected):
            rx.try_recv()
