"""Python against Python in real processes: multiprocessing (spawn start
method) peers, peers killed with SIGKILL, and Ctrl-C (SIGINT) during a
blocking call."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time

import numpy as np
import pytest

import _children
import mapshare
from conftest import run_python

ctx = multiprocessing.get_context("spawn")


def start(target, *args) -> multiprocessing.Process:
    p = ctx.Process(target=target, args=args, daemon=True)
    p.start()
    return p


def reap(p: multiprocessing.Process) -> None:
    p.join(30)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail("child did not finish")


def test_channel_between_processes_ends_at_disconnection(names):
    name = names()
    msgs = [f"{i}: grüß 👋".encode() for i in range(200)]
    with mapshare.Receiver.create(name, capacity=32, max_message=64, senders=2) as rx:
        keep = mapshare.Sender.open(name)  # connected until the child's first message
        p = start(_children.send_messages, name, msgs)
        got = [rx.recv(timeout=30)]
        keep.close()
        got += list(rx)  # ends when the child has exited and everything is read
        reap(p)
        assert p.exitcode == 0
        assert got == msgs


def test_killed_sender_is_noticed(names):
    name, ready = names(), names("ready")
    with mapshare.Receiver.create(name) as rx, mapshare.Event.create(ready) as ev:
        p = start(_children.send_then_hang, name, ready)
        ev.wait(timeout=30)
        assert rx.recv(timeout=30).decode() == "vorher ✓"
        os.kill(p.pid, signal.SIGKILL)
        reap(p)
        with pytest.raises(mapshare.Disconnected):
            rx.recv(timeout=30)


def test_killed_lock_holder_hands_over_the_lock(names):
    name, ready = names(), names("ready")
    m = mapshare.Mutex.create(name)  # (`with mutex:` would lock it)
    with mapshare.Event.create(ready) as ev:
        p = start(_children.hold_lock, name, ready)
        ev.wait(timeout=30)
        assert m.try_lock() is None  # a live holder
        os.kill(p.pid, signal.SIGKILL)
        reap(p)
        assert p.exitcode == -signal.SIGKILL
        with pytest.raises(mapshare.OwnerDied) as e:
            m.lock(timeout=30)
        guard = e.value.guard
        assert isinstance(guard, mapshare.MutexGuard) and guard.locked
        assert mapshare.Mutex.open(name).try_lock() is None  # we hold it now
        with guard:
            pass  # repair here
        assert not guard.locked
        with m.lock(timeout=5) as g:  # clean again
            assert g.locked
    m.close()


def test_killed_shared_holder_leaves_its_half_update(names):
    name, ready = names(), names("ready")
    with mapshare.Shared.create(name, ("u64", 8, 8)) as s, mapshare.Event.create(ready) as ev:
        p = start(_children.hold_shared_lock, name, ready)
        ev.wait(timeout=30)
        pid = p.pid
        os.kill(pid, signal.SIGKILL)
        reap(p)
        with pytest.raises(mapshare.OwnerDied) as e:
            s.get(timeout=30)
        g = e.value.guard
        assert int.from_bytes(g.get(), "little") == pid  # what the dead holder wrote
        g.set(bytes(8))  # repaired
        g.unlock()
        assert s.get(timeout=5) == bytes(8)


def test_numpy_round_trip_between_processes(names):
    a_name, b_name = names("a"), names("b")
    with mapshare.Mailbox.create(a_name) as a, mapshare.Mailbox.create(b_name) as b:
        p = start(_children.numpy_back, a_name, b_name)
        arr = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
        a.send(arr, timeout=30)
        back = b.recv_array(np.float32, (3, 4), timeout=30)
        reap(p)
        assert np.array_equal(back, arr * 2)


def test_mailbox_round_trips_between_processes(names):
    a_name, b_name = names("a"), names("b")
    with mapshare.Mailbox.create(a_name) as a, mapshare.Mailbox.create(b_name) as b:
        p = start(_children.echo, a_name, b_name, 100)
        for i in range(100):
            msg = f"ping {i} · ✓".encode() * (i % 7 + 1)
            a.send(msg, timeout=30)
            assert b.recv(timeout=30) == msg
        reap(p)
        assert p.exitcode == 0


# Each snippet blocks forever in one call of the named kind; the parent
# sends SIGINT and the child must leave that call by KeyboardInterrupt.
BLOCKERS = {
    "mailbox.recv": "h = mapshare.Mailbox.open(name); block = h.recv",
    "receiver.recv": "h = mapshare.Receiver.create(name + '-rx'); k = mapshare.Sender.open(name + '-rx'); block = h.recv",
    "mutex.lock": "h = mapshare.Mutex.open(name + '-m'); block = h.lock",
    "event.wait": "h = mapshare.Event.open(name + '-e'); block = h.wait",
    "mailbox.send": "h = mapshare.Mailbox.open(name); h.try_send(b'x'); block = lambda: h.send(b'full')",
    "server.recv_request": "h = mapshare.Server.create(name + '-s'); block = h.recv_request",
    # A service that never had a server keeps the request: the call waits for an answer.
    "client.call": "h = mapshare.Client.create(name + '-c'); block = lambda: h.call(b'x')",
    "waitset.wait": "h = mapshare.Receiver.create(name + '-w'); k = mapshare.Sender.open(name + '-w'); "
                    "ws = mapshare.WaitSet(); block = lambda: ws.wait([h])",
}

CHILD = """
import sys, time
import mapshare
name = sys.argv[1]
{setup}
print("ready", flush=True)
t0 = None
try:
    block()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(42)
print("returned", flush=True)
"""


@pytest.mark.parametrize("kind", sorted(BLOCKERS))
def test_ctrl_c_interrupts_a_blocking_call(names, kind):
    name = names()
    names.made += [name + "-rx", name + "-m", name + "-e", name + "-s", name + "-c", name + "-w"]
    m = mapshare.Mutex.create(name + "-m")
    with mapshare.Mailbox.create(name) as mb, mapshare.Event.create(name + "-e"):
        held = m.lock(timeout=5)  # the child's lock() waits for it
        child = run_python(CHILD.format(setup=BLOCKERS[kind]), name)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.3)  # let it block
            t0 = time.monotonic()
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=30)
            print(f"{kind}: left the call {1000 * (time.monotonic() - t0):.0f} ms after SIGINT")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        held.unlock()
        assert child.returncode == 42, (out, err)
        assert out.strip() == "interrupted"
    m.close()
