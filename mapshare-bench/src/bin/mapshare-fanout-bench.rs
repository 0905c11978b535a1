//! `mapshare-fanout-bench`: one lossless publisher, 1, 2, 4 and 8
//! subscriber processes, polling and blocking, copying and zero-copy, next
//! to a single-receiver channel with the same wait strategy (issue 12).
//!
//! ```text
//! cargo run --release -p mapshare-bench --bin mapshare-fanout-bench -- [--sizes 64,4K,64K,1M] [--subs 1,2,4,8] [--quick]
//! ```
//!
//! For each configuration it measures, in one run:
//! - **per message**: the publisher streams N messages as fast as the
//!   slowest subscriber allows; the time from the first publish until the
//!   last subscriber has read the N-th, divided by N. Each subscriber reads
//!   every message: *copying* copies the whole message out
//!   (`recv_into`), *zero-copy* reads its 8-byte header in place
//!   (`recv_ref`). The ratio is to the single-receiver channel (copying,
//!   same strategy), and, for copying, to a one-process memcpy of the size.
//! - **latency**: then one message every 50 µs; each subscriber takes the
//!   one-way latency of each (the publisher's wall-clock stamp in the
//!   message against its own clock on receipt, one machine); reported are
//!   the worst subscriber's median and p99.
//!
//! Subscribers are processes of this binary (`<exe> fanout-peer ...`);
//! segments are named `fanout-<pid>-<n>` and removed at the end.

#![forbid(unsafe_code)]

use std::hint::black_box;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use mapshare::options::{HasCapacity, HasMaxMessage};
use mapshare::{Options, Policy, Publisher, Receiver, Sender, Subscriber, WaitStrategy};
use mapshare_bench::stats::{cpu_model, percentile};

const PEER: &str = "fanout-peer";
/// Gap between two latency messages.
const PACE: Duration = Duration::from_micros(50);
/// A peer gives up after this long.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);

/// Publish/subscribe fan-out between processes.
#[derive(Debug, Parser)]
#[command(name = "mapshare-fanout-bench")]
struct Args {
    /// Message sizes in bytes, comma-separated (K and M suffixes; at least 16).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "64,4K,64K,1M")]
    sizes: Vec<usize>,
    /// Subscriber counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    subs: Vec<usize>,
    /// Few messages and one repetition: a smoke test that ends in seconds.
    #[arg(long)]
    quick: bool,
    /// Repetitions of each configuration; the median is reported (default
    /// 3, 1 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    reps: Option<u32>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, mult) = match s.trim().char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1usize << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        _ => (s.trim(), 1),
    };
    let n = digits
        .parse::<usize>()
        .map_err(|_| format!("`{s}` is not a size"))?
        .checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if !(16..=mapshare::MAX_MESSAGE).contains(&n) {
        return Err(format!("`{s}`: sizes run from 16 bytes to 16 MiB"));
    }
    Ok(n)
}

/// How the peers and the publisher wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Polling,
    Blocking,
}

impl How {
    fn strategy(self) -> WaitStrategy {
        match self {
            How::Polling => WaitStrategy::Spin,
            How::Blocking => WaitStrategy::Block,
        }
    }
    fn word(self) -> &'static str {
        match self {
            How::Polling => "polling",
            How::Blocking => "blocking",
        }
    }
}

/// Messages streamed per configuration: about 1 GiB per reader, 2,000 to
/// a million.
fn messages(size: usize, quick: bool) -> u64 {
    let n = ((1u64 << 30) / size as u64).clamp(2000, 1_000_000);
    if quick {
        (n / 50).max(50)
    } else {
        n
    }
}

/// Ring slots: about 4 MiB of ring, 8 to 256 slots.
fn capacity(size: usize) -> usize {
    ((4 << 20) / size).clamp(8, 256)
}

fn opts<K: HasCapacity + HasMaxMessage>(name: &str, size: usize, how: How) -> Options<K> {
    Options::new(name)
        .capacity(capacity(size))
        .max_message(size)
        .wait_strategy(how.strategy())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn header(msg: &[u8]) -> (u64, u64) {
    let w = |k: usize| u64::from_le_bytes(msg[8 * k..8 * k + 8].try_into().expect("8 bytes"));
    (w(0), w(1))
}

/// The peer: `fanout-peer NAME SIZE HOW READ STREAM PACED` with READ one
/// of `copy`, `zero` (subscribers) or `channel` (the reference receiver).
/// Prints `ready`, then after the run `DONE_NS P50_NS P99_NS`.
fn peer(args: &[String]) -> Result<()> {
    let [name, size, how, read, stream, paced] = args else {
        bail!("peer arguments: {args:?}");
    };
    let size: usize = size.parse()?;
    let how = if how == "polling" {
        How::Polling
    } else {
        How::Blocking
    };
    let (stream, paced): (u64, u64) = (stream.parse()?, paced.parse()?);
    let deadline = Instant::now() + PEER_TIMEOUT;
    let mut buf = Vec::with_capacity(size);
    let mut lat = Vec::with_capacity(paced as usize);
    let mut done = 0;
    let mut on_message = |i: u64, seq: u64, stamp: u64| -> Result<()> {
        if seq != i {
            bail!("peer: message {seq}, expected {i}");
        }
        if i + 1 == stream {
            done = now_ns();
        }
        if i >= stream {
            lat.push(now_ns().saturating_sub(stamp));
        }
        Ok(())
    };
    if read == "channel" {
        let mut rx: Receiver = opts(name, size, how).open()?;
        println!("ready");
        for i in 0..stream + paced {
            rx.recv_into_deadline(&mut buf, deadline)
                .map_err(|e| anyhow!("peer: {e}"))?;
            let (seq, stamp) = header(&buf);
            on_message(i, seq, stamp)?;
        }
    } else {
        let mut sub: Subscriber = opts(name, size, how).open()?;
        println!("ready");
        for i in 0..stream + paced {
            let (seq, stamp) = if read == "zero" {
                let s = sub
                    .recv_ref_deadline(deadline)
                    .map_err(|e| anyhow!("peer: {e}"))?;
                (
                    s.u64_le_at(0).unwrap_or(u64::MAX),
                    s.u64_le_at(8).unwrap_or(0),
                )
            } else {
                sub.recv_into_deadline(&mut buf, deadline)
                    .map_err(|e| anyhow!("peer: {e}"))?;
                black_box(&buf);
                header(&buf)
            };
            on_message(i, seq, stamp)?;
        }
    }
    lat.sort_unstable();
    println!(
        "{done} {} {}",
        percentile(&lat, 0.5).unwrap_or(0),
        percentile(&lat, 0.99).unwrap_or(0)
    );
    Ok(())
}

/// Runs one configuration `reps` times; the repetition with the median
/// time per message.
fn median_run(
    size: usize,
    subs: usize,
    how: How,
    read: &str,
    quick: bool,
    reps: u32,
) -> Result<Figures> {
    let mut runs = (0..reps)
        .map(|_| run(size, subs, how, read, quick))
        .collect::<Result<Vec<_>>>()?;
    runs.sort_by(|a, b| a.per_msg_ns.total_cmp(&b.per_msg_ns));
    Ok(runs.swap_remove(runs.len() / 2))
}

/// One configuration's figures.
struct Figures {
    per_msg_ns: f64,
    p50_ns: u64,
    p99_ns: u64,
}

/// The sending side of a run: a publisher or the reference channel sender.
enum Out {
    Pub(Publisher),
    Chan(Sender),
}

impl Out {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        match self {
            Out::Pub(p) => p.publish(msg).map_err(|e| anyhow!("publish: {e}")),
            Out::Chan(s) => s.send(msg).map_err(|e| anyhow!("send: {e}")),
        }
    }
}

/// Runs one configuration: `read` is `copy`, `zero` or `channel`.
fn run(size: usize, subs: usize, how: How, read: &str, quick: bool) -> Result<Figures> {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "fanout-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let stream = messages(size, quick);
    let paced: u64 = if quick { 200 } else { 2000 };
    let mut out = if read == "channel" {
        Out::Chan(opts::<Sender>(&name, size, how).create()?)
    } else {
        Out::Pub(
            opts::<Publisher>(&name, size, how)
                .policy(Policy::Lossless)
                .create()?,
        )
    };
    let mut kids: Vec<Child> = Vec::new();
    let result = (|| {
        for _ in 0..subs {
            let mut c = Command::new(std::env::current_exe()?)
                .args([
                    PEER,
                    &name,
                    &size.to_string(),
                    how.word(),
                    read,
                    &stream.to_string(),
                    &paced.to_string(),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .context("spawning a subscriber")?;
            let mut line = String::new();
            std::io::BufReader::new(c.stdout.as_mut().expect("piped")).read_line(&mut line)?;
            if line.trim() != "ready" {
                bail!("a peer did not start: {line:?}");
            }
            kids.push(c);
        }
        if let Out::Pub(p) = &out {
            while p.subscriber_count() < subs {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let mut msg = vec![0x5au8; size];
        let t0 = now_ns();
        for i in 0..stream {
            msg[..8].copy_from_slice(&i.to_le_bytes());
            out.send(&msg)?;
        }
        let mut next = Instant::now();
        for i in stream..stream + paced {
            next += PACE;
            while Instant::now() < next {
                std::hint::spin_loop();
            }
            msg[..8].copy_from_slice(&i.to_le_bytes());
            msg[8..16].copy_from_slice(&now_ns().to_le_bytes());
            out.send(&msg)?;
        }
        let (mut done, mut p50, mut p99) = (0u64, 0u64, 0u64);
        for c in &mut kids {
            let mut text = String::new();
            std::io::Read::read_to_string(c.stdout.as_mut().expect("piped"), &mut text)?;
            let status = c.wait()?;
            if !status.success() {
                bail!("a peer failed ({status})");
            }
            let f: Vec<u64> = text
                .split_whitespace()
                .map(|w| w.parse().unwrap_or(0))
                .collect();
            let [d, a, b] = f[..] else {
                bail!("a peer's report: {text:?}");
            };
            (done, p50, p99) = (done.max(d), p50.max(a), p99.max(b));
        }
        Ok(Figures {
            per_msg_ns: done.saturating_sub(t0) as f64 / stream as f64,
            p50_ns: p50,
            p99_ns: p99,
        })
    })();
    for c in &mut kids {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop(out);
    result
}

/// Single-process memcpy of `size` bytes: ns per copy (best of 3).
fn memcpy_ns(size: usize) -> f64 {
    let src = vec![1u8; size];
    let mut dst = vec![0u8; size];
    let n = ((1u64 << 30) / size as u64).clamp(100, 1_000_000);
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn us(ns: f64) -> String {
    if ns >= 1e4 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{:.2} us", ns / 1e3)
    }
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(PEER) {
        return peer(&argv[2..]);
    }
    let args = Args::parse();
    let reps = args.reps.unwrap_or(if args.quick { 1 } else { 3 });
    println!(
        "mapshare-fanout-bench: {}, {} CPUs; lossless rings of about 4 MiB (8 to 256 slots)",
        cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "per msg = time from the first publish until the last subscriber read the last of N, / N; \
         latency: one message every {} us, the worst subscriber's median and p99; \
         each row the median of {reps} repetition(s)",
        PACE.as_micros()
    );
    let mut verdicts = Vec::new();
    for &size in &args.sizes {
        let mc = memcpy_ns(size);
        println!(
            "\n{} (memcpy in one process {}; N = {})",
            label(size),
            us(mc),
            messages(size, args.quick)
        );
        println!(
            "{:<9} {:<10} {:>5} {:>12} {:>10} {:>10} {:>11} {:>9}",
            "wait", "reader", "subs", "per msg", "median", "p99", "x channel", "x memcpy"
        );
        for how in [How::Polling, How::Blocking] {
            let ch = median_run(size, 1, how, "channel", args.quick, reps)
                .with_context(|| format!("{} channel, {}", how.word(), label(size)))?;
            println!(
                "{:<9} {:<10} {:>5} {:>12} {:>10} {:>10} {:>11} {:>9.2}",
                how.word(),
                "channel",
                1,
                us(ch.per_msg_ns),
                us(ch.p50_ns as f64),
                us(ch.p99_ns as f64),
                "1.00",
                ch.per_msg_ns / mc
            );
            for read in ["copy", "zero"] {
                for &subs in &args.subs {
                    let f =
                        median_run(size, subs, how, read, args.quick, reps).with_context(|| {
                            format!("{} {read}, {subs} subscribers, {}", how.word(), label(size))
                        })?;
                    let x = f.per_msg_ns / ch.per_msg_ns;
                    println!(
                        "{:<9} {:<10} {:>5} {:>12} {:>10} {:>10} {:>11.2} {:>9}",
                        how.word(),
                        if read == "copy" {
                            "copying"
                        } else {
                            "zero-copy"
                        },
                        subs,
                        us(f.per_msg_ns),
                        us(f.p50_ns as f64),
                        us(f.p99_ns as f64),
                        x,
                        if read == "copy" {
                            format!("{:.2}", f.per_msg_ns / mc)
                        } else {
                            "-".into()
                        }
                    );
                    if how == How::Blocking && read == "copy" && subs == 4 {
                        verdicts.push((size, x));
                    }
                }
            }
        }
    }
    println!("\nTarget: blocking fan-out to 4 subscribers no slower than a single-subscriber blocking channel x 2");
    for (size, x) in verdicts {
        println!(
            "  [{}] {}: {x:.2}x the channel's time per message",
            if x <= 2.0 { "MET" } else { "NOT MET" },
            label(size)
        );
    }
    Ok(())
}
