"""Python-to-Python benchmark of mapshare beside the standard library.

Two measurements, each between two processes (multiprocessing, spawn):

- latency: round trips of a 64-byte message (parent sends, child echoes);
- throughput: 1 MiB messages from the child to the parent.

Transports: mapshare Mailbox, mapshare channel (Sender/Receiver),
multiprocessing.Queue, multiprocessing.Pipe, and raw
multiprocessing.shared_memory with a hand-made flag byte (busy-polled: the
floor any shared-memory scheme pays in pure Python, with none of the
safety). Prints medians and p99 of the per-message times and each
transport's ratio to mapshare's channel.

    python mapshare-py/bench/bench.py [--round-trips N] [--mib N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from multiprocessing import shared_memory

import mapshare

SMALL = 64
BIG = 1 << 20
ctx = mp.get_context("spawn")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# ---------------------------------------------------------------- children


def child_mailbox_echo(a: str, b: str, n: int) -> None:
    ping, pong = mapshare.Mailbox.open(a), mapshare.Mailbox.open(b)
    for _ in range(n):
        pong.send(ping.recv())


def child_channel_echo(a: str, b: str, n: int) -> None:
    rx = mapshare.Receiver.open(a)
    tx = mapshare.Sender.open(b)
    for _ in range(n):
        tx.send(rx.recv())


def child_queue_echo(q_in, q_out, n: int) -> None:
    for _ in range(n):
        q_out.put(q_in.get())


def child_pipe_echo(conn, n: int) -> None:
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def _attach(name: str) -> shared_memory.SharedMemory:
    # Spawned children share the parent's resource tracker: the parent's
    # unlink unregisters the name for both.
    return shared_memory.SharedMemory(name=name)


def child_shm_echo(name: str, n: int, size: int) -> None:
    shm = _attach(name)
    buf = shm.buf
    for _ in range(n):
        while buf[0] != 1:
            pass
        buf[64 + size : 64 + 2 * size] = buf[64 : 64 + size]  # read the ping, write the pong
        buf[0] = 2
    del buf
    shm.close()


def child_mailbox_stream(a: str, n: int) -> None:
    mb = mapshare.Mailbox.open(a)
    payload = os.urandom(BIG)
    for _ in range(n):
        mb.send(payload)


def child_channel_stream(a: str, n: int) -> None:
    tx = mapshare.Sender.open(a)
    payload = os.urandom(BIG)
    for _ in range(n):
        tx.send(payload)


def child_queue_stream(q, n: int) -> None:
    payload = os.urandom(BIG)
    for _ in range(n):
        q.put(payload)


def child_pipe_stream(conn, n: int) -> None:
    payload = os.urandom(BIG)
    for _ in range(n):
        conn.send_bytes(payload)


def child_shm_stream(name: str, n: int) -> None:
    shm = _attach(name)
    buf = shm.buf
    payload = os.urandom(BIG)
    for _ in range(n):
        while buf[0] != 0:
            pass
        buf[64 : 64 + BIG] = payload
        buf[0] = 1
    del buf
    shm.close()


# ----------------------------------------------------------------- latency


def run(target, *args) -> mp.Process:
    p = ctx.Process(target=target, args=args, daemon=True)
    p.start()
    return p


def lat_mailbox(n: int, tag: str) -> list[float]:
    a, b = f"bench-{tag}-mba", f"bench-{tag}-mbb"
    with mapshare.Mailbox.create(a, max_message=SMALL) as ping, mapshare.Mailbox.create(b, max_message=SMALL) as pong:
        p = run(child_mailbox_echo, a, b, n)
        msg = os.urandom(SMALL)
        out = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            ping.send(msg)
            pong.recv()
            out.append(time.perf_counter_ns() - t0)
        p.join()
    return out


def lat_channel(n: int, tag: str) -> list[float]:
    a, b = f"bench-{tag}-cha", f"bench-{tag}-chb"
    with mapshare.Receiver.create(b, capacity=4, max_message=SMALL) as rx:
        child_rx = mapshare.Receiver.create(a, capacity=4, max_message=SMALL)
        tx = mapshare.Sender.open(a)
        child_rx.close()  # the child takes the receiving end
        p = run(child_channel_echo, a, b, n)
        msg = os.urandom(SMALL)
        out = []
        # Until the child's receiver attaches, a send may see no receiver.
        while True:
            try:
                tx.send(msg)
                break
            except mapshare.Disconnected:
                time.sleep(0.001)
        rx.recv()
        for _ in range(n - 1):
            t0 = time.perf_counter_ns()
            tx.send(msg)
            rx.recv()
            out.append(time.perf_counter_ns() - t0)
        p.join()
        tx.close()
    return out


def lat_queue(n: int, tag: str) -> list[float]:
    q_in, q_out = ctx.Queue(), ctx.Queue()
    p = run(child_queue_echo, q_in, q_out, n)
    msg = os.urandom(SMALL)
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        q_in.put(msg)
        q_out.get()
        out.append(time.perf_counter_ns() - t0)
    p.join()
    return out


def lat_pipe(n: int, tag: str) -> list[float]:
    here, there = ctx.Pipe()
    p = run(child_pipe_echo, there, n)
    msg = os.urandom(SMALL)
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        here.send_bytes(msg)
        here.recv_bytes()
        out.append(time.perf_counter_ns() - t0)
    p.join()
    return out


def lat_shm(n: int, tag: str) -> list[float]:
    shm = shared_memory.SharedMemory(create=True, size=64 + 2 * SMALL)
    buf = shm.buf
    buf[0] = 0
    p = run(child_shm_echo, shm.name, n, SMALL)
    msg = os.urandom(SMALL)
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        buf[64 : 64 + SMALL] = msg
        buf[0] = 1
        while buf[0] != 2:
            pass
        bytes(buf[64 + SMALL : 64 + 2 * SMALL])
        buf[0] = 0
        out.append(time.perf_counter_ns() - t0)
    p.join()
    del buf
    shm.close()
    shm.unlink()
    return out


# -------------------------------------------------------------- throughput


def tput_mailbox(n: int, tag: str) -> tuple[list[float], float]:
    a = f"bench-{tag}-mbt"
    with mapshare.Mailbox.create(a, max_message=BIG) as mb:
        p = run(child_mailbox_stream, a, n)
        mb.recv()
        return _stream(n - 1, mb.recv, p)


def tput_channel(n: int, tag: str) -> tuple[list[float], float]:
    a = f"bench-{tag}-cht"
    with mapshare.Receiver.create(a, capacity=8, max_message=BIG) as rx:
        p = run(child_channel_stream, a, n)
        rx.recv()
        return _stream(n - 1, rx.recv, p)


def tput_queue(n: int, tag: str) -> tuple[list[float], float]:
    q = ctx.Queue()
    p = run(child_queue_stream, q, n)
    q.get()
    return _stream(n - 1, q.get, p)


def tput_pipe(n: int, tag: str) -> tuple[list[float], float]:
    here, there = ctx.Pipe(duplex=False)
    p = run(child_pipe_stream, there, n)
    here.recv_bytes()
    return _stream(n - 1, here.recv_bytes, p)


def tput_shm(n: int, tag: str) -> tuple[list[float], float]:
    shm = shared_memory.SharedMemory(create=True, size=64 + BIG)
    buf = shm.buf
    buf[0] = 0
    p = run(child_shm_stream, shm.name, n)

    def get() -> bytes:
        while buf[0] != 1:
            pass
        data = bytes(buf[64 : 64 + BIG])
        buf[0] = 0
        return data

    get()
    r = _stream(n - 1, get, p)
    del get
    del buf
    shm.close()
    shm.unlink()
    return r


def _stream(n: int, get, p: mp.Process) -> tuple[list[float], float]:
    out = []
    start = t = time.perf_counter_ns()
    for _ in range(n):
        data = get()
        assert len(data) == BIG
        now = time.perf_counter_ns()
        out.append(now - t)
        t = now
    total = (time.perf_counter_ns() - start) / 1e9
    p.join()
    return out, n * BIG / total / (1 << 20)


TRANSPORTS = [
    ("mapshare channel", lat_channel, tput_channel),
    ("mapshare Mailbox", lat_mailbox, tput_mailbox),
    ("multiprocessing.Queue", lat_queue, tput_queue),
    ("multiprocessing.Pipe", lat_pipe, tput_pipe),
    ("shared_memory + flag (busy poll)", lat_shm, tput_shm),
]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--round-trips", type=int, default=20000)
    ap.add_argument("--mib", type=int, default=500, help="1 MiB messages per throughput run")
    args = ap.parse_args()
    tag = str(os.getpid())
    print(f"mapshare-py bench: Python {platform.python_version()}, {cpu_model()}, "
          f"{os.cpu_count()} CPUs, {platform.platform()}")
    print(f"latency: {args.round_trips} round trips of {SMALL} B; throughput: {args.mib} messages of 1 MiB")
    print()
    lat: dict[str, tuple[float, float]] = {}
    print(f"{'64 B round trip':34} {'median us':>10} {'p99 us':>10} {'x channel':>10}")
    for label, f, _ in TRANSPORTS:
        xs = f(args.round_trips, tag)
        lat[label] = (statistics.median(xs) / 1000, pct(xs, 0.99) / 1000)
    base = lat["mapshare channel"][0]
    for label, (med, p99) in lat.items():
        print(f"{label:34} {med:10.1f} {p99:10.1f} {med / base:10.2f}")
    print()
    print(f"{'1 MiB messages':34} {'MiB/s':>10} {'median us':>10} {'p99 us':>10} {'x channel':>10}")
    tp: dict[str, tuple[float, float, float]] = {}
    for label, _, g in TRANSPORTS:
        xs, rate = g(args.mib, tag)
        tp[label] = (rate, statistics.median(xs) / 1000, pct(xs, 0.99) / 1000)
    base = tp["mapshare channel"][0]
    for label, (rate, med, p99) in tp.items():
        print(f"{label:34} {rate:10.0f} {med:10.1f} {p99:10.1f} {rate / base:10.2f}")
    print()
    print("x channel: latency as a multiple of the mapshare channel's median (lower is better);")
    print("throughput as a multiple of its MiB/s (higher is better).")


if __name__ == "__main__":
    sys.exit(main())
