//! `mapshare-async-bench`: async wake-ups across processes, in one run.
//!
//! - **Wake-up latency**: a round trip between this process (blocking
//!   sender and receiver, `WaitStrategy::Block`) and a child that waits
//!   for each message and answers it: blocking futex waits, then a tokio
//!   current-thread runtime awaiting `recv_async` on each async backend
//!   (io_uring, futex_waitv, blocking threads), then the same ping-pong
//!   over a pipe and a Unix socket awaited through tokio. Medians and p99,
//!   and each one's ratio to the blocking futex pair.
//! - **Wake-ups per second with many waiters**: 10,000 tasks on one
//!   current-thread runtime in the child, each awaiting its own channel;
//!   this process sends to each in turn; messages received per second.
//!
//! Run it release: `cargo run --release -p mapshare-bench --bin
//! mapshare-async-bench`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use mapshare::{Receiver, Sender, WaitStrategy};
use mapshare_bench::stats::{cpu_model, percentile};

#[derive(Debug, Parser)]
struct Args {
    /// Round trips per latency pair.
    #[arg(long, default_value_t = 20_000)]
    rounds: usize,
    /// Waiting tasks for the throughput part.
    #[arg(long, default_value_t = 10_000)]
    waiters: usize,
    /// Messages sent to each waiting task.
    #[arg(long, default_value_t = 20)]
    per_waiter: usize,
    /// Waits started and cancelled at once, per backend.
    #[arg(long, default_value_t = 1_000_000)]
    cancels: usize,
    /// Internal: the child's side.
    #[arg(long, hide = true)]
    role: Option<String>,
    /// Internal: the segment (or socket) name.
    #[arg(long, hide = true)]
    name: Option<String>,
}

const MSG: usize = 8;

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(role) = &args.role {
        return child(role, args.name.as_deref().unwrap_or(""), &args);
    }
    println!(
        "mapshare-async-bench: {} ({} CPUs), {} round trips per pair",
        cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.rounds
    );
    println!(
        "\nwake-up latency, round trip of {MSG} bytes (this process blocking, the child as named)"
    );
    println!(
        "{:<36} {:>10} {:>10} {:>8}",
        "child waits with", "median", "p99", "ratio"
    );
    let base = latency_pair(&args, "futex", "blocking recv (futex)", None)?;
    for (backend, label) in [
        ("io_uring", "tokio recv_async, io_uring"),
        ("futex_waitv", "tokio recv_async, futex_waitv"),
        ("blocking", "tokio recv_async, blocking thread"),
    ] {
        latency_pair(&args, "async", label, Some((backend, base)))?;
    }
    stream_pair(&args, "pipe", "tokio pipe read", base)?;
    stream_pair(&args, "unix", "tokio Unix socket read", base)?;

    println!(
        "\nmany waiters: {} tasks on one thread, each awaiting its own channel, {} messages each",
        args.waiters, args.per_waiter
    );
    for backend in ["io_uring", "futex_waitv"] {
        many_waiters(&args, backend)?;
    }

    println!(
        "\ncancelled waits: {} waits each started and dropped at once, then left to settle",
        args.cancels
    );
    for backend in ["io_uring", "futex_waitv"] {
        let mut child = spawn_child("cancel", "", Some(backend), &args)?;
        let mut out = BufReader::new(child.stdout.take().context("child stdout")?);
        println!("  {backend:<12} {}", line(&mut out)?);
        child.wait()?;
    }
    Ok(())
}

/// Polls `fut` once (it registers its wait) and drops it (which cancels
/// the wait): a cancellation, without a timer's millisecond in between.
async fn poll_once_then_drop<F: std::future::Future>(fut: F) {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let _ = fut.as_mut().poll(cx);
        std::task::Poll::Ready(())
    })
    .await;
}

/// Resident memory in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn spawn_child(role: &str, name: &str, backend: Option<&str>, args: &Args) -> Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--role", role, "--name", name])
        .args(["--rounds", &args.rounds.to_string()])
        .args(["--waiters", &args.waiters.to_string()])
        .args(["--per-waiter", &args.per_waiter.to_string()])
        .args(["--cancels", &args.cancels.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(b) = backend {
        cmd.env("MAPSHARE_ASYNC_BACKEND", b);
    }
    Ok(cmd.spawn()?)
}

/// Reads one line the child prints on stdout.
fn line(out: &mut BufReader<std::process::ChildStdout>) -> Result<String> {
    let mut l = String::new();
    if out.read_line(&mut l)? == 0 {
        bail!("the child ended early");
    }
    Ok(l.trim().to_owned())
}

fn report(label: &str, mut ns: Vec<u64>, base: Option<u64>) -> u64 {
    ns.sort_unstable();
    let med = percentile(&ns, 50.0).unwrap_or(0);
    let p99 = percentile(&ns, 99.0).unwrap_or(0);
    let ratio = base.map_or("1.00x".to_owned(), |b| {
        format!("{:.2}x", med as f64 / b as f64)
    });
    println!(
        "{label:<36} {:>7.1} µs {:>7.1} µs {ratio:>8}",
        med as f64 / 1000.0,
        p99 as f64 / 1000.0
    );
    med
}

/// A ping-pong over two channels: we send on `NAME-a`, the child answers
/// on `NAME-b`.
fn latency_pair(
    args: &Args,
    role: &str,
    label: &str,
    async_backend: Option<(&str, u64)>,
) -> Result<u64> {
    let name = format!("abench-{}-{role}-{}", std::process::id(), label.len());
    let mut rx = Receiver::options(&format!("{name}-b"))
        .wait_strategy(WaitStrategy::Block)
        .create()?;
    let mut child = spawn_child(role, &name, async_backend.map(|b| b.0), args)?;
    let mut out = BufReader::new(child.stdout.take().context("child stdout")?);
    let ready = line(&mut out)?;
    let mut tx = Sender::options(&format!("{name}-a"))
        .wait_strategy(WaitStrategy::Block)
        .open()?;
    let msg = [7u8; MSG];
    let mut buf = Vec::with_capacity(MSG);
    let warm = args.rounds / 10;
    let mut ns = Vec::with_capacity(args.rounds);
    for i in 0..warm + args.rounds {
        let t = Instant::now();
        tx.send(&msg).map_err(|e| anyhow::anyhow!("send: {e}"))?;
        rx.recv_into(&mut buf)?;
        if i >= warm {
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    drop(tx);
    child.wait()?;
    let want = async_backend.map_or("futex", |b| b.0);
    if ready != want {
        bail!("{label}: the child used {ready}, not {want}");
    }
    Ok(report(label, ns, async_backend.map(|b| b.1)))
}

/// The same ping-pong over a pipe pair (the child's stdin and stdout) or a
/// Unix socket, the child awaiting each read through tokio.
fn stream_pair(args: &Args, kind: &str, label: &str, base: u64) -> Result<()> {
    let msg = [7u8; MSG];
    let mut buf = [0u8; MSG];
    let warm = args.rounds / 10;
    let mut ns = Vec::with_capacity(args.rounds);
    let path = std::env::temp_dir().join(format!("abench-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = (kind == "unix")
        .then(|| std::os::unix::net::UnixListener::bind(&path))
        .transpose()?;
    let mut child = spawn_child(kind, path.to_str().unwrap_or(""), None, args)?;
    let (mut w, mut r): (Box<dyn Write>, Box<dyn Read>) = match &listener {
        Some(l) => {
            let (s, _) = l.accept()?;
            (Box::new(s.try_clone()?), Box::new(s))
        }
        None => (
            Box::new(child.stdin.take().context("stdin")?),
            Box::new(child.stdout.take().context("stdout")?),
        ),
    };
    for i in 0..warm + args.rounds {
        let t = Instant::now();
        w.write_all(&msg)?;
        r.read_exact(&mut buf)?;
        if i >= warm {
            ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    drop(w);
    drop(r);
    child.wait()?;
    let _ = std::fs::remove_file(&path);
    report(label, ns, Some(base));
    Ok(())
}

/// Many waiting tasks in the child; we send `per_waiter` messages to each.
fn many_waiters(args: &Args, backend: &str) -> Result<()> {
    let name = format!("abench-{}-many", std::process::id());
    let mut child = spawn_child("many", &name, Some(backend), args)?;
    let mut out = BufReader::new(child.stdout.take().context("child stdout")?);
    let ready = line(&mut out)?;
    let mut txs: Vec<Sender> = (0..args.waiters)
        .map(|i| Sender::open(&format!("{name}-{i}")))
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    for _ in 0..args.per_waiter {
        for tx in &mut txs {
            tx.send(b"w").map_err(|e| anyhow::anyhow!("send: {e}"))?;
        }
    }
    let result = line(&mut out)?; // the child's own count and time
    let sent = t.elapsed();
    drop(txs);
    child.wait()?;
    let total = args.waiters * args.per_waiter;
    let secs: f64 = result.parse().unwrap_or(sent.as_secs_f64());
    println!(
        "  {backend:<12} {:>10.0} messages/s ({total} in {:.2} s; {ready})",
        total as f64 / secs,
        secs
    );
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The child's sides.
fn child(role: &str, name: &str, args: &Args) -> Result<()> {
    let mut stdout = std::io::stdout();
    match role {
        "futex" | "async" => {
            let mut rx = Receiver::options(&format!("{name}-a"))
                .wait_strategy(WaitStrategy::Block)
                .create()?;
            let mut tx = Sender::options(&format!("{name}-b"))
                .wait_strategy(WaitStrategy::Block)
                .open()?;
            let mut buf = Vec::new();
            if role == "futex" {
                writeln!(stdout, "futex")?;
                stdout.flush()?;
                while rx.recv_into(&mut buf).is_ok() {
                    let _ = tx.send(&buf);
                }
                return Ok(());
            }
            writeln!(stdout, "{}", mapshare::async_backend())?;
            stdout.flush()?;
            runtime()?.block_on(async {
                while rx.recv_into_async(&mut buf).await.is_ok() {
                    let _ = tx.send(&buf);
                }
            });
        }
        "pipe" | "unix" => {
            runtime()?.block_on(async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; MSG];
                if role == "unix" {
                    let mut s = tokio::net::UnixStream::connect(name).await?;
                    while s.read_exact(&mut buf).await.is_ok() {
                        s.write_all(&buf).await?;
                    }
                } else {
                    use std::os::fd::AsFd;
                    let input = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
                    let mut r = tokio::net::unix::pipe::Receiver::from_file(input)?;
                    let mut out = std::io::stdout().lock();
                    while r.read_exact(&mut buf).await.is_ok() {
                        out.write_all(&buf)?;
                        out.flush()?;
                    }
                }
                Ok::<(), anyhow::Error>(())
            })?;
        }
        "many" => {
            let before = threads();
            let mut rxs: Vec<Receiver> = (0..args.waiters)
                .map(|i| {
                    Receiver::options(&format!("{name}-{i}"))
                        .capacity(4)
                        .max_message(8)
                        .create()
                })
                .collect::<Result<_, _>>()?;
            let per = args.per_waiter;
            let n = args.waiters;
            let rt = runtime()?;
            let local = tokio::task::LocalSet::new();
            let secs = local.block_on(&rt, async move {
                let tasks: Vec<_> = rxs
                    .drain(..)
                    .map(|mut rx| {
                        tokio::task::spawn_local(async move {
                            let mut buf = Vec::new();
                            let mut got = 0;
                            let mut first = None;
                            while got < per {
                                if rx.recv_into_async(&mut buf).await.is_err() {
                                    break;
                                }
                                first.get_or_insert_with(Instant::now);
                                got += 1;
                            }
                            (first, Instant::now(), rx)
                        })
                    })
                    .collect();
                while mapshare::pending_waits() < n {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                println!(
                    "{} backend, {} threads added",
                    mapshare::async_backend(),
                    threads() - before
                );
                let _ = std::io::stdout().flush();
                let mut start: Option<Instant> = None;
                let mut end: Option<Instant> = None;
                for t in tasks {
                    if let Ok((f, e, _rx)) = t.await {
                        start = match (start, f) {
                            (Some(s), Some(f)) => Some(s.min(f)),
                            (s, f) => s.or(f),
                        };
                        end = Some(end.map_or(e, |x| x.max(e)));
                    }
                }
                match (start, end) {
                    (Some(s), Some(e)) => (e - s).as_secs_f64(),
                    _ => 0.0,
                }
            });
            println!("{secs}");
        }
        "cancel" => {
            let name = format!("abench-{}-cancel", std::process::id());
            let mut rx = Receiver::create(&name)?;
            let n = args.cancels;
            let line = runtime()?.block_on(async {
                // Warm up (rings, slots, helper threads), then measure.
                for _ in 0..1000 {
                    poll_once_then_drop(rx.recv_async()).await;
                }
                let rss0 = rss_kib();
                let t = Instant::now();
                for i in 0..n {
                    poll_once_then_drop(rx.recv_async()).await;
                    // As a task that does anything else would: let the ring's
                    // driver task hand the cancellations' completions back.
                    if i % 256 == 255 {
                        tokio::task::yield_now().await;
                    }
                }
                let secs = t.elapsed().as_secs_f64();
                let mut settled = Duration::ZERO;
                while mapshare::pending_waits() > 0 && settled < Duration::from_secs(10) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    settled += Duration::from_millis(10);
                }
                format!(
                    "{:.2} µs per cancelled wait; {} still registered after settling; RSS {} -> {} KiB ({})",
                    secs * 1e6 / n as f64,
                    mapshare::pending_waits(),
                    rss0,
                    rss_kib(),
                    mapshare::async_backend()
                )
            });
            println!("{line}");
        }
        other => bail!("unknown role {other}"),
    }
    Ok(())
}
