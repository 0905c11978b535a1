//! Criterion benches of a real shared-memory channel, inside one process.
//!
//! `cargo bench -p mapshare --bench queue`. Cross-process figures (latency
//! against the hardware floor, pipes and sockets) come from `mapshare-bench`.
//!
//! - `channel/send_recv_64B`: one thread, `try_send` then `try_recv_with`
//!   of 64 bytes (no heap allocation on the measured path);
//! - `channel/two_threads_64B` and `_4KiB`: a sender thread streams, a
//!   receiver thread reads every byte in place; one element = one message.

#![allow(missing_docs)] // criterion_main! generates an undocumented `main`

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mapshare::{ChannelOptions, Receiver, Sender, WaitStrategy};

/// A channel that removes its name when the bench is done with it.
struct Chan {
    opts: ChannelOptions,
    name: String,
}

impl Chan {
    fn new(capacity: usize, max_message: usize) -> Chan {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bench-queue-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let opts = ChannelOptions::new(&name)
            .capacity(capacity)
            .max_message(max_message)
            .wait_strategy(WaitStrategy::Spin);
        Chan { opts, name }
    }
}

impl Drop for Chan {
    fn drop(&mut self) {
        // Non-persistent: usually gone already with its last handle.
        let _ = mapshare::segment::unlink(&mapshare::SegmentOptions::new(&self.name));
    }
}

fn fold(msg: &[u8]) -> u64 {
    msg.chunks_exact(8).fold(0, |a, w| {
        a ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))
    })
}

fn send_recv(c: &mut Criterion) {
    let chan = Chan::new(64, 64);
    let mut rx = Receiver::create(&chan.opts).expect("create channel");
    let mut tx = Sender::open(&chan.opts).expect("open channel");
    let msg = [7u8; 64];
    let mut g = c.benchmark_group("channel");
    g.throughput(Throughput::Elements(1));
    g.bench_function("send_recv_64B", |b| {
        b.iter(|| {
            tx.try_send(black_box(&msg)).expect("room");
            black_box(rx.try_recv_with(fold).expect("a message"))
        })
    });
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel");
    for (label, size) in [("two_threads_64B", 64usize), ("two_threads_4KiB", 4096)] {
        let chan = Chan::new(1024, size);
        let mut rx = Receiver::create(&chan.opts).expect("create channel");
        let mut tx = Sender::open(&chan.opts).expect("open channel");
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
                            acc ^= rx
                                .recv_timeout_with(Duration::from_secs(10), fold)
                                .expect("a message");
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
