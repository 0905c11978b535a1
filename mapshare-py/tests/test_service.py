"""Request/response (`Server` / `Client`): in one process, against the
`mapshare serve` / `mapshare request` CLI in real processes, and Python
against Python with multiprocessing (a server killed with SIGKILL while a
client waits), with timeouts."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import _children
import mapshare

ctx = multiprocessing.get_context("spawn")

# The CLI's defaults (`--clients 8 --capacity 4 --max-message 65536`), so
# either side may be the one that creates the service.
CLI_SIZES = dict(clients=8, capacity=4, max_message=65536)
TEXTS = ["grüß dich 👋", "Мир · 世界 · مرحبا · नमस्ते", "🦀" * 50]


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


def finish(p: subprocess.Popen, timeout: float = 30):
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"{p.args} did not finish: {out!r} {err!r}")


# ---- in one process

def test_request_respond_in_one_process(names):
    name = names()
    with mapshare.Server.create(name, clients=2, capacity=4, max_message=64) as srv, \
            mapshare.Client.open(name) as cl:
        assert (srv.max_message, srv.capacity, srv.max_clients) == (64, 4, 2)
        assert (cl.max_message, cl.capacity, cl.in_flight) == (64, 4, 0)
        a = cl.request("eins 👋".encode())
        b = cl.request(np.arange(4, dtype=np.uint8))  # any C-contiguous buffer
        assert a != b and cl.in_flight == 2
        ra = srv.recv_request(timeout=5)
        rb = srv.recv_request(timeout=5)
        assert (ra.id, ra.data) == (a, "eins 👋".encode())
        assert (rb.id, rb.data) == (b, bytes([0, 1, 2, 3]))
        assert ra.reply_to.id == a and ra.reply_to.client == ra.client
        # Out of order, one by its Request, one by its ReplyTo, from a bytearray.
        srv.respond(rb.reply_to, bytearray(b"zwei"))
        srv.respond(ra, b"EINS")
        r = cl.recv_response(timeout=5)
        assert (r.id, r.data) == (b, b"zwei")
        rid, data = cl.recv_response(timeout=5)  # unpacks as (id, data)
        assert (rid, data) == (a, b"EINS")
        assert cl.in_flight == 0
        with pytest.raises(mapshare.Disconnected):
            cl.recv_response(timeout=1)  # nothing in flight: none can come
        assert srv.try_recv_request() is None
        with pytest.raises(TypeError):
            srv.respond(b"not a request", b"x")


def test_call_keeps_other_responses(names):
    name = names()
    with mapshare.Server.create(name) as srv, mapshare.Client.open(name) as cl:
        first = cl.request(b"first")
        second = cl.request(b"second")
        for _ in range(2):
            req = srv.recv_request(timeout=5)
            srv.respond(req, req.data.upper())
        assert cl.call_response(second, timeout=5) == b"SECOND"
        assert tuple(cl.recv_response(timeout=5)) == (first, b"FIRST")


def test_timeouts(names):
    name = names()
    with mapshare.Server.create(name, capacity=1) as srv, mapshare.Client.open(name) as cl:
        t0 = time.monotonic()
        with pytest.raises(mapshare.Timeout):
            srv.recv_request(timeout=0.2)
        assert 0.15 < time.monotonic() - t0 < 5
        with pytest.raises(TimeoutError):  # a Timeout is a TimeoutError
            cl.call(b"unanswered", timeout=0.2)
        try:
            cl.call_response(1, timeout=0.1)
        except mapshare.Timeout as e:
            assert e.id == 1
        assert cl.in_flight == 1
        # capacity 1: a second request waits for room, then times out.
        with pytest.raises(mapshare.Timeout) as e:
            cl.request(b"no room", timeout=0.2)
        assert e.value.id is None
        assert cl.try_request(b"no room") is None
        assert cl.abandon(1) and not cl.abandon(1)
        assert cl.in_flight == 0
        srv.recv_request(timeout=5)  # the abandoned one
        with pytest.raises(mapshare.Timeout) as e:
            cl.call(b"again", timeout=0.3)
        assert e.value.id is not None
        req = srv.recv_request(timeout=5)
        srv.respond(req, b"late")
        assert cl.recv_response(timeout=5).data == b"late"


def test_too_large_and_bad_options(names):
    name = names()
    with mapshare.Server.create(name, max_message=8) as srv, mapshare.Client.open(name) as cl:
        with pytest.raises(mapshare.TooLarge):
            cl.request(b"x" * 9)
        cl.request(b"ok")
        with pytest.raises(mapshare.TooLarge):
            srv.respond(srv.recv_request(timeout=5), b"y" * 9)
    with pytest.raises(ValueError):
        mapshare.Server.create(names(), clients=0)
    with pytest.raises(ValueError):
        mapshare.Client.create(names(), clients=mapshare.MAX_CLIENTS + 1)


def test_one_live_server(names):
    name = names()
    with mapshare.Server.create(name) as srv:
        with pytest.raises(mapshare.TooManyAttached, match="a live server is attached"):
            mapshare.Server.open(name)
        assert repr(srv) == f"<mapshare.Server {srv.location}>"
    assert srv.closed
    with pytest.raises(ValueError):
        srv.recv_request(timeout=0)


# ---- against the CLI

@pytest.mark.parametrize("text", TEXTS)
def test_python_client_calls_cli_server(names, cli, text):
    name = names()
    p = subprocess.Popen([cli, "serve", name, "--count", "2", "--", "tr", "a-z", "A-Z"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The service may not exist yet: a request waits for the first server.
        with mapshare.Client.open_or_create(name, **CLI_SIZES) as cl:
            # `tr a-z A-Z` upper-cases ASCII letters only, as bytes.upper() does.
            assert cl.call(text.encode(), timeout=20) == text.encode().upper()
            i = cl.request(f"zwei: {text}".encode(), timeout=20)
            r = cl.recv_response(timeout=20)
            assert r.id == i and r.data == f"zwei: {text}".encode().upper()
    except BaseException:
        p.kill()
        raise
    finally:
        out, err = finish(p)
    assert p.returncode == 0, err


@pytest.mark.parametrize("text", TEXTS)
def test_cli_request_to_python_server(names, cli, text):
    name = names()
    with mapshare.Server.open_or_create(name, **CLI_SIZES) as srv:
        p = subprocess.Popen([cli, "request", name, text, "--timeout", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        req = srv.recv_request(timeout=20)
        assert req.data.decode() == text
        srv.respond(req, f"» {text[::-1]} «".encode())
        out, err = finish(p)
        assert p.returncode == 0, err
        assert out.decode() == f"» {text[::-1]} «\n"


def test_cli_request_times_out_against_silent_python_server(names, cli):
    name = names()
    with mapshare.Server.open_or_create(name, **CLI_SIZES) as srv:
        p = subprocess.run([cli, "request", name, "hallo", "--timeout", "0.3"],
                           capture_output=True, timeout=30)
        assert p.returncode == 3, p.stderr
        assert srv.recv_request(timeout=5).data == b"hallo"  # taken, never answered


# ---- Python <-> Python

def test_python_server_in_another_process(names):
    name, ready = names(), names("ready")
    with mapshare.Event.create(ready) as ev, mapshare.Client.open_or_create(name) as cl:
        p = start(_children.serve_upper, name, ready, len(TEXTS) + 1)
        ev.wait(timeout=30)
        for t in TEXTS:
            assert cl.call(t.encode(), timeout=30).decode() == t.upper()
        ids = [cl.request(b"x", timeout=30)]
        assert cl.recv_response(timeout=30).id == ids[0]
        reap(p)
        assert p.exitcode == 0
        # The server exited: nothing more can come.
        with pytest.raises(mapshare.Disconnected):
            cl.call(b"nobody", timeout=30)


def test_killed_server_disconnects_a_waiting_client(names):
    name, ready = names(), names("ready")
    with mapshare.Event.create(ready) as ev, mapshare.Client.open_or_create(name) as cl:
        p = start(_children.serve_then_hang, name, ready)
        rid = cl.request("bitte 👋".encode(), timeout=30)
        ev.wait(timeout=30)  # the server has taken it
        assert cl.in_flight == 1

        def kill_soon():
            time.sleep(0.3)
            os.kill(p.pid, signal.SIGKILL)

        import threading

        killer = threading.Thread(target=kill_soon)
        killer.start()
        t0 = time.monotonic()
        with pytest.raises(mapshare.Disconnected):
            cl.recv_response(timeout=30)  # waiting when the server dies
        assert time.monotonic() - t0 < 10
        killer.join()
        reap(p)
        assert p.exitcode == -signal.SIGKILL
        assert cl.in_flight == 0  # written off
        assert not cl.abandon(rid)
