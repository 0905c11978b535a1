//! Criterion benches of a real shared-memory channel, inside one process.
//!
//! `cargo bench -p mapshare --bench queue`. Cross-process figures (latency
//! against the hardware floor, pipes and sockets) come from `mapshare-bench`.
//!
//! - `channel/send_recv_64B`: one thread, `try_send` then `try_recv_ref`
//!   of 64 bytes, read in place (no heap allocation on the measured path);
//! - `channel/two_threads_64B` and `_4KiB`: a sender thread streams, a
//!   receiver thread reads every byte in place; one element = one message.

#![allow(missing_docs)] // criterion_main! generates an undocumented `main`

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mapshare::options::{HasCapacity, HasMaxMessage};
use mapshare::{Location, Options, Receiver, Sender, View, WaitStrategy};

/// A channel that removes its name when the bench is done with it.
struct Chan {
    name: String,
    capacity: usize,
    max_message: usize,
}

impl Chan {
    fn new(capacity: usize, max_message: usize) -> Chan {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bench-queue-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Chan {
            name,
            capacity,
            max_message,
        }
    }

    /// Options for either end.
    fn opts<K: HasCapacity + HasMaxMessage>(&self) -> Options<K> {
        Options::new(&self.name)
            .capacity(self.capacity)
            .max_message(self.max_message)
            .wait_strategy(WaitStrategy::Spin)
    }

    /// Creates the channel as its receiver, and opens a sender.
    fn ends(&self) -> (Receiver, Sender) {
        let rx = self.opts().create().expect("create channel");
        let tx = self.opts().open().expect("open channel");
        (rx, tx)
    }
}

impl Drop for Chan {
    fn drop(&mut self) {
        // Non-persistent: usually gone already with its last handle.
        if let Ok(at) = Location::shm(&self.name) {
            let _ = mapshare::segment::unlink(&at);
        }
    }
}

/// Reads every 8-byte word of the message in place (no copy of the whole).
fn fold(msg: &View<'_>) -> u64 {
    (0..msg.len() / 8).fold(0, |a, i| a ^ msg.u64_le_at(8 * i).expect("inside"))
}

fn send_recv(c: &mut Criterion) {
    let chan = Chan::new(64, 64);
    let (mut rx, mut tx) = chan.ends();
    let msg = [7u8; 64];
    let mut g = c.benchmark_group("channel");
    g.throughput(Throughput::Elements(1));
    g.bench_function("send_recv_64B", |b| {
        b.iter(|| {
            tx.try_send(black_box(&msg)).expect("room");
            black_box(fold(&rx.try_recv_ref().expect("a message")))
        })
    });
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel");
    for (label, size) in [("two_threads_64B", 64usize), ("two_threads_4KiB", 4096)] {
        let chan = Chan::new(1024, size);
        let (mut rx, mut tx) = chan.ends();
        let msg = vec![3u8; size];
        g.throughput(Throughput::Elements(1));
        g.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    let rx = &mut rx;
                    let reader = s.spawn(move || {
                        let mut acc = 0u64;
                        for _ in 0..iters {
                            acc ^= fold(
                                &rx.recv_ref_timeout(Duration::from_secs(10))
                                    .expect("a message"),
                            );
                        }
                        acc
                    });
                    for _ in 0..iters {
                        tx.send(&msg).expect("fits");
                    }
                    black_box(reader.join().expect("reader"));
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, send_recv, two_threads);
criterion_main!(benches);
