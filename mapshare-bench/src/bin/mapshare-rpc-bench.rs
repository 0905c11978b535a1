//! `mapshare-rpc-bench`: request/response round trips and `WaitSet`
//! wake-ups between two real processes, in one run.
//!
//! ```text
//! cargo run --release -p mapshare-bench --bin mapshare-rpc-bench -- [--rounds N] [--big-rounds N]
//! ```
//!
//! Round trips (this process asks, a peer process answers with a message of
//! the same size), at 64 B and 1 MiB:
//! - **channel pair**: a request channel and a response channel, the floor
//!   a request/response service built on mapshare's channels can reach;
//! - **mapshare Client/Server** (copying `request`/`respond`, and the
//!   zero-copy loans on both sides);
//! - **Unix socket**: a length-prefixed request and response on one stream.
//!
//! Wake-ups (this process sends 8 bytes on one source, the peer wakes, takes
//! it and answers on a reply channel): a peer blocked in `recv` on that one
//! receiver (spin-then-block, the default, and block-only) beside a peer in
//! a `WaitSet` over 1 and over 64 receivers, the message going to a random
//! one of them.
//!
//! Each figure is a median and p99 of per-round round-trip times, with the
//! ratio of its median to its group's first row.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use mapshare::{Client, Options, Receiver, Sender, Server, WaitSet, WaitStrategy, Waitable};
use mapshare_bench::stats::{cpu_model, percentile};

const PEER: &str = "rpc-peer";
const SOURCES: usize = 64;

/// Request/response round trips and WaitSet wake-ups between two processes.
#[derive(Debug, Parser)]
#[command(name = "mapshare-rpc-bench")]
struct Args {
    /// Round trips per contender at 64 B and for the wake-ups.
    #[arg(long, default_value_t = 20_000)]
    rounds: usize,
    /// Round trips per contender at 1 MiB.
    #[arg(long, default_value_t = 1_000)]
    big_rounds: usize,
}

fn main() -> Result<()> {
    let mut argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(PEER) {
        argv.drain(..2);
        return peer(&argv);
    }
    let args = Args::parse();
    let base = format!("rpcbench-{}", std::process::id());
    println!(
        "mapshare-rpc-bench: {}, {} CPUs; median / p99 of per-round round trips",
        cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (size, rounds) in [(64usize, args.rounds), (1 << 20, args.big_rounds)] {
        println!("\nround trip, {} request and response:", human(size));
        let floor = channel_pair(&base, size, rounds)?;
        report("channel pair (floor)", floor.clone(), None);
        let f = median(&floor);
        report(
            "mapshare request/respond",
            rpc(&base, size, rounds, false)?,
            Some(f),
        );
        report(
            "mapshare loans both sides",
            rpc(&base, size, rounds, true)?,
            Some(f),
        );
        report("Unix socket", unix(&base, size, rounds)?, Some(f));
    }
    println!("\nwake-up round trip, 8 bytes, the peer asleep until the message:");
    let one = wake(&base, args.rounds, "recv", WaitStrategy::default())?;
    report(
        "recv on the one receiver, spin-then-block",
        one.clone(),
        None,
    );
    let f = median(&one);
    report(
        "recv on the one receiver, block",
        wake(&base, args.rounds, "recv", WaitStrategy::Block)?,
        Some(f),
    );
    report(
        "WaitSet over 1 receiver",
        wake(&base, args.rounds, "set1", WaitStrategy::Block)?,
        Some(f),
    );
    report(
        "WaitSet over 64 receivers",
        wake(&base, args.rounds, "set64", WaitStrategy::Block)?,
        Some(f),
    );
    Ok(())
}

/// A send error (which borrows the message) as an owned error.
fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} B")
    }
}

fn median(ns: &[u64]) -> u64 {
    let mut s = ns.to_vec();
    s.sort_unstable();
    percentile(&s, 50.0).unwrap_or(0)
}

fn report(label: &str, mut ns: Vec<u64>, base: Option<u64>) {
    ns.sort_unstable();
    let med = percentile(&ns, 50.0).unwrap_or(0);
    let p99 = percentile(&ns, 99.0).unwrap_or(0);
    let ratio = base.map_or("1.00x".to_owned(), |b| {
        format!("{:.2}x", med as f64 / b.max(1) as f64)
    });
    println!(
        "  {label:<44} {:>10.2} µs  p99 {:>10.2} µs  {ratio}",
        med as f64 / 1000.0,
        p99 as f64 / 1000.0
    );
}

fn spawn(
    role: &str,
    name: &str,
    size: usize,
    extra: &str,
) -> Result<(Child, BufReader<std::process::ChildStdout>)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([PEER, role, name, &size.to_string(), extra])
        .stdout(Stdio::piped())
        .spawn()
        .context("spawning the peer")?;
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line)?;
    if line.trim() != "ready" {
        let _ = child.kill();
        bail!("peer {role}: {line:?}");
    }
    Ok((child, out))
}

fn finish(mut child: Child) -> Result<()> {
    let st = child.wait()?;
    if !st.success() {
        bail!("peer exited {st}");
    }
    Ok(())
}

fn warmup(rounds: usize) -> usize {
    (rounds / 10).max(10)
}

fn channel_pair(base: &str, size: usize, rounds: usize) -> Result<Vec<u64>> {
    let (req, resp) = (format!("{base}-req"), format!("{base}-resp"));
    let mut tx: Sender = Options::new(&req).capacity(4).max_message(size).create()?;
    let mut rx: Receiver = Options::new(&resp).capacity(4).max_message(size).create()?;
    let (child, _out) = spawn("pair", base, size, "")?;
    let msg = vec![7u8; size];
    let mut buf = Vec::with_capacity(size);
    let mut ns = Vec::with_capacity(rounds);
    for i in 0..rounds + warmup(rounds) {
        let t = Instant::now();
        tx.send(&msg).map_err(err)?;
        rx.recv_into(&mut buf)?;
        if i >= warmup(rounds) {
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    tx.send(&[]).map_err(err)?;
    finish(child)?;
    Ok(ns)
}

fn rpc(base: &str, size: usize, rounds: usize, loans: bool) -> Result<Vec<u64>> {
    let name = format!("{base}-svc");
    let mut client: Client = Options::new(&name)
        .capacity(4)
        .senders(1)
        .max_message(size)
        .create()?;
    let (child, _out) = spawn("server", &name, size, if loans { "loans" } else { "" })?;
    let msg = vec![7u8; size];
    let mut ns = Vec::with_capacity(rounds);
    let long = Duration::from_secs(30);
    for i in 0..rounds + warmup(rounds) {
        let t = Instant::now();
        if loans {
            let mut loan = client.loan_request_timeout(long)?;
            loan.write_at(0, &msg);
            let id = loan.commit(size);
            let r = client.recv_response_timeout(long)?;
            if r.id() != id || r.data().len() != size {
                bail!("wrong response");
            }
        } else {
            let id = client.request(&msg).map_err(err)?;
            let r = client.recv_response()?;
            if r.id() != id || r.data().len() != size {
                bail!("wrong response");
            }
        }
        if i >= warmup(rounds) {
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    client.request(&[]).map_err(err)?;
    client.recv_response()?;
    finish(child)?;
    Ok(ns)
}

fn unix(base: &str, size: usize, rounds: usize) -> Result<Vec<u64>> {
    let path = std::env::temp_dir().join(format!("{base}.sock"));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let (child, _out) = spawn("unix", &path.to_string_lossy(), size, "")?;
    let (mut s, _) = listener.accept()?;
    let _ = std::fs::remove_file(&path);
    let msg = vec![7u8; size];
    let mut buf = vec![0u8; size];
    let mut ns = Vec::with_capacity(rounds);
    for i in 0..rounds + warmup(rounds) {
        let t = Instant::now();
        s.write_all(&(size as u32).to_le_bytes())?;
        s.write_all(&msg)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        s.read_exact(&mut buf[..u32::from_le_bytes(len) as usize])?;
        if i >= warmup(rounds) {
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    s.write_all(&0u32.to_le_bytes())?;
    finish(child)?;
    Ok(ns)
}

fn wake(base: &str, rounds: usize, how: &str, strategy: WaitStrategy) -> Result<Vec<u64>> {
    let n = if how == "set64" { SOURCES } else { 1 };
    let reply = format!("{base}-reply");
    // This side sleeps at once for the answer (a spinning waiter can hold
    // the CPU the woken peer was placed on, and would measure itself).
    let mut rx: Receiver = Options::new(&reply)
        .capacity(4)
        .max_message(8)
        .wait_strategy(WaitStrategy::Block)
        .create()?;
    let mut txs = Vec::new();
    for k in 0..n {
        txs.push(
            Options::<Sender>::new(&format!("{base}-src-{k}"))
                .capacity(4)
                .max_message(8)
                .wait_strategy(strategy)
                .create()?,
        );
    }
    let extra = format!("{how}:{}", matches!(strategy, WaitStrategy::Block) as u8);
    let (child, _out) = spawn("waiter", base, n, &extra)?;
    let mut ns = Vec::with_capacity(rounds);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = Vec::new();
    for i in 0..rounds + warmup(rounds) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x % n as u64) as usize;
        // Let the peer fall asleep: this measures a wake-up, not a spin.
        std::thread::sleep(Duration::from_micros(200));
        let t = Instant::now();
        txs[k].send(&(k as u64).to_le_bytes()).map_err(err)?;
        rx.recv_into(&mut buf)?;
        if i >= warmup(rounds) {
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    txs[0].send(&[]).map_err(err)?;
    finish(child)?;
    Ok(ns)
}

fn peer(argv: &[String]) -> Result<()> {
    let [role, name, size, extra] = argv else {
        bail!("peer arguments: {argv:?}");
    };
    let size: usize = size.parse()?;
    let ready = || -> Result<()> {
        println!("ready");
        std::io::stdout().flush()?;
        Ok(())
    };
    match role.as_str() {
        "pair" => {
            let mut rx: Receiver = Options::new(&format!("{name}-req")).open()?;
            let mut tx: Sender = Options::new(&format!("{name}-resp")).open()?;
            ready()?;
            let mut buf = Vec::with_capacity(size);
            loop {
                rx.recv_into(&mut buf)?;
                if buf.is_empty() {
                    return Ok(());
                }
                tx.send(&buf).map_err(err)?;
            }
        }
        "server" => {
            let mut server = Server::open(name)?;
            ready()?;
            let loans = extra == "loans";
            let long = Duration::from_secs(30);
            loop {
                let req = server.recv_request()?;
                let quit = req.data().is_empty();
                if loans && !quit {
                    let mut out = server.loan_response_timeout(req.reply_to(), long)?;
                    out.write_at(0, req.data());
                    out.commit(req.data().len());
                } else {
                    server.respond(req.reply_to(), req.data()).map_err(err)?;
                }
                if quit {
                    return Ok(());
                }
            }
        }
        "unix" => {
            let mut s = UnixStream::connect(name)?;
            ready()?;
            let mut buf = vec![0u8; size];
            loop {
                let mut len = [0u8; 4];
                s.read_exact(&mut len)?;
                let len = u32::from_le_bytes(len) as usize;
                if len == 0 {
                    return Ok(());
                }
                s.read_exact(&mut buf[..len])?;
                s.write_all(&(len as u32).to_le_bytes())?;
                s.write_all(&buf[..len])?;
            }
        }
        "waiter" => {
            let n = size;
            let (how, block) = extra.split_once(':').unwrap_or((extra, "0"));
            let strategy = if block == "1" {
                WaitStrategy::Block
            } else {
                WaitStrategy::default()
            };
            let mut rxs: Vec<Receiver> = (0..n)
                .map(|k| {
                    Options::new(&format!("{name}-src-{k}"))
                        .wait_strategy(strategy)
                        .open()
                })
                .collect::<Result<_, _>>()?;
            let mut tx: Sender = Options::new(&format!("{name}-reply")).open()?;
            ready()?;
            let mut set = WaitSet::new();
            let mut buf = Vec::new();
            loop {
                let k = if how == "recv" {
                    rxs[0].recv_into(&mut buf)?;
                    0
                } else {
                    let srcs: Vec<&dyn Waitable> = rxs.iter().map(|r| r as &dyn Waitable).collect();
                    let k = set.wait(&srcs).first().expect("a ready source");
                    drop(srcs);
                    rxs[k].try_recv_into(&mut buf)?;
                    k
                };
                if buf.is_empty() {
                    return Ok(());
                }
                if buf != (k as u64).to_le_bytes() {
                    bail!("source {k} got {buf:?}");
                }
                tx.send(&buf).map_err(err)?;
            }
        }
        other => bail!("unknown peer role {other}"),
    }
}
