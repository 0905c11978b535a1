"""Roles played by child processes started with multiprocessing's *spawn*
start method (a fresh interpreter importing this module)."""

from __future__ import annotations

import os
import time

import mapshare


def send_messages(name: str, messages: list[bytes]) -> None:
    """Opens the channel `name` as a sender, sends `messages`, exits."""
    with mapshare.Sender.open(name) as tx:
        for m in messages:
            tx.send(m, timeout=30)


def send_then_hang(name: str, ready: str) -> None:
    """Sends one message, says so, then sleeps until killed."""
    tx = mapshare.Sender.open(name)
    tx.send("vorher ✓".encode(), timeout=30)
    mapshare.Event.open(ready).notify()
    time.sleep(600)


def hold_lock(name: str, ready: str) -> None:
    """Takes the mutex, writes its pid into the shared value, says so, and
    sleeps holding the lock until killed."""
    m = mapshare.Mutex.open(name)
    g = m.lock(timeout=30)
    assert g.locked
    mapshare.Event.open(ready).notify()
    time.sleep(600)


def hold_shared_lock(name: str, ready: str) -> None:
    """Locks the shared value, half-updates it, and sleeps until killed."""
    s = mapshare.Shared.open(name, ("u64", 8, 8))
    g = s.lock(timeout=30)
    g.set(os.getpid().to_bytes(8, "little"))
    mapshare.Event.open(ready).notify()
    time.sleep(600)


def echo(name_in: str, name_out: str, count: int) -> None:
    """Receives `count` messages on mailbox `name_in`, sends each back on
    mailbox `name_out` (the benchmark's and the round-trip test's peer)."""
    a = mapshare.Mailbox.open(name_in)
    b = mapshare.Mailbox.open(name_out)
    for _ in range(count):
        b.send(a.recv(timeout=30), timeout=30)


def numpy_back(name_in: str, name_out: str) -> None:
    """Receives a float32 3x4 array on mailbox `name_in`, sends back twice
    it on mailbox `name_out`."""
    import numpy as np

    a = mapshare.Mailbox.open(name_in)
    b = mapshare.Mailbox.open(name_out)
    arr = a.recv_array(np.float32, (3, 4), timeout=30)
    b.send(arr * 2, timeout=30)


def serve_upper(name: str, ready: str, count: int) -> None:
    """Serves the service `name` (says so on event `ready`): answers
    `count` requests with their bytes upper-cased, then exits."""
    with mapshare.Server.open_or_create(name) as srv:
        mapshare.Event.open(ready).notify()
        for _ in range(count):
            req = srv.recv_request(timeout=30)
            srv.respond(req, req.data.decode().upper().encode(), timeout=30)


def serve_then_hang(name: str, ready: str) -> None:
    """Takes the service `name`'s first request, says so on event `ready`,
    and sleeps without answering until killed."""
    srv = mapshare.Server.open_or_create(name)
    srv.recv_request(timeout=30)
    mapshare.Event.open(ready).notify()
    time.sleep(600)


def send_after(name: str, delay: float) -> None:
    """Sleeps `delay` seconds, then sends one message on channel `name`."""
    with mapshare.Sender.open(name) as tx:
        time.sleep(delay)
        tx.send("spät ✓".encode(), timeout=30)
