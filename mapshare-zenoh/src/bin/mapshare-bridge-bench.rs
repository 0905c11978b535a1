//! `mapshare-bridge-bench`: a mapshare pub/sub ring bridged between two
//! hosts by `mapshare-bridge`, beside direct Zenoh and a TCP socket, on the
//! same loopback TCP link, in one run.
//!
//! ```text
//! cargo build --release -p mapshare-zenoh      # the bench and the bridge beside it
//! target/release/mapshare-bridge-bench [--quick] [--sizes 64,4K,64K,1M] [--rounds N] [--repeat N]
//! ```
//!
//! Needs root: the two "hosts" are mount namespaces (`unshare -m
//! --propagation private`), each with its own tmpfs at /dev/shm, as in
//! `tests/hosts.rs`. Without them the bench fails at once, saying so.
//!
//! Every contender is two processes, A (the driver) and B (the echo),
//! linked over `127.0.0.1` TCP:
//! - **bridged**: A publishes on ring `ping` and subscribes `pong` on host
//!   A; B subscribes `ping` and publishes `pong` on host B; a
//!   `mapshare-bridge ping pong` on each host (B's `--listen`, A's
//!   `--connect`) carries both rings. The ends wait with
//!   `WaitStrategy::Block` (and, latency only, once more with
//!   `WaitStrategy::Spin`: "polling");
//! - **direct Zenoh**: a peer session in each process, configured by
//!   [`mapshare_zenoh::zenoh_config`] as the bridge's is (peer, TCP only, no
//!   multicast scouting), B listening, A connecting; a publisher with
//!   `CongestionControl::Block` (reliable, Zenoh's default) and a
//!   subscriber on a FIFO of [`mapshare_zenoh::FIFO_SAMPLES`], as the
//!   bridge declares them;
//! - **TCP socket**: one stream, `TCP_NODELAY`, frames of a 4-byte length
//!   and the message, each frame one `write`.
//!
//! Latency: A sends a message of the size, B sends it back; A waits for
//! it. Until one comes back A sends a probe every 200 ms (a subscriber not
//! yet matched loses them), then warms up and times the round trips
//! (median and nearest-rank p99). Throughput: A sends messages flat out,
//! numbered, at least a minimum count and for at least 1 s; B checks each
//! number and length, and answers an end marker with its count; the time
//! runs from A's first send to A's receipt of that answer (so it includes
//! one trip back, a fraction of a millisecond in a second or more).
//!
//! Each contender runs `--repeat` times (3) at each size, each time in
//! fresh processes (and fresh hosts and bridges), the contenders
//! interleaved; the tables show the median run, and every run is listed
//! below them. On 2 shared cores a blocking round trip depends on where the
//! scheduler puts the two ends (a wake-up of an idle vCPU costs tens of
//! microseconds): one run alone can mislead.
//!
//! Cleanup: every process started is killed when its guard drops (also on
//! a panic or an error), and by the signal thread on SIGINT, SIGTERM or
//! SIGHUP; a host's tmpfs goes with its namespace; the real /dev/shm is
//! checked at the end for anything of this run.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use mapshare::{Policy, Publisher, RecvTimeoutError, Subscriber, WaitStrategy};
use serde::{Deserialize, Serialize};
use zenoh::handlers::{FifoChannel, FifoChannelHandler};
use zenoh::qos::CongestionControl;
use zenoh::sample::{Locality, Sample};
use zenoh::Wait;

/// `argv[1]` of this program re-run as A or B; `argv[2]` is the [`Role`].
const CHILD: &str = "--bench-child";
/// Longest anything may take before the bench gives up, loudly.
const LIMIT: Duration = Duration::from_secs(60);
/// How long A waits for a probe's answer before it sends the next.
const PROBE: Duration = Duration::from_millis(200);

/// Message kinds, the first byte of every message.
const PING: u8 = 1;
const FLOOD: u8 = 2;
const END: u8 = 3;
const QUIT: u8 = 4;
/// Kind (1 byte) and number (u64 LE).
const HEADER_LEN: usize = 9;
/// The end marker's answer: header (count), errors (u64 LE).
const ANSWER_LEN: usize = HEADER_LEN + 8;
/// The smallest size measured: room for the answer.
const MIN_SIZE: usize = 32;

/// A mapshare-bridge ring bridged between two hosts, beside direct Zenoh
/// and a TCP socket, on one loopback TCP link.
#[derive(Debug, Parser)]
#[command(name = "mapshare-bridge-bench")]
struct Args {
    /// A smoke run of a few seconds (CI): a few hundred round trips and a
    /// few thousand messages per contender and size.
    #[arg(long)]
    quick: bool,
    /// Message sizes, comma-separated (such as 64,4K,64K,1M; at least 32).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "64,4K,64K")]
    sizes: Vec<usize>,
    /// Timed round trips per contender and size [default: 2000; --quick: 300].
    #[arg(long)]
    rounds: Option<usize>,
    /// Runs of each contender at each size, each in fresh processes (and
    /// hosts and bridges), interleaved; the median run is shown
    /// [default: 3; --quick: 1].
    #[arg(long)]
    repeat: Option<usize>,
    /// Leave out the bridged latency with polling ends.
    #[arg(long)]
    no_polling: bool,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mul) = match t.strip_suffix("KiB").or_else(|| t.strip_suffix('K')) {
        Some(n) => (n, 1 << 10),
        None => match t.strip_suffix("MiB").or_else(|| t.strip_suffix('M')) {
            Some(n) => (n, 1 << 20),
            None => (t.strip_suffix('B').unwrap_or(t), 1),
        },
    };
    let n: usize = num.trim().parse().map_err(|e| format!("size {s:?}: {e}"))?;
    let n = n.checked_mul(mul).ok_or(format!("size {s:?}: too large"))?;
    if !(MIN_SIZE..=1 << 24).contains(&n) {
        return Err(format!("size {s:?}: from {MIN_SIZE} B to 16 MiB"));
    }
    Ok(n)
}

/// What one run of a contender does at one size.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Plan {
    rounds: usize,
    warmup: usize,
    /// Messages A sends at least (0: no throughput run).
    flood_min: u64,
    /// And for at least this long.
    flood_secs: f64,
}

impl Plan {
    fn new(args: &Args, size: usize) -> Plan {
        let (full, quick) = match size {
            0..=1024 => (100_000, 3_000),
            1025..=16384 => (30_000, 1_000),
            16385..=262_144 => (5_000, 300),
            _ => (500, 30),
        };
        let rounds = args.rounds.unwrap_or(if args.quick { 300 } else { 2_000 });
        Plan {
            rounds,
            warmup: (rounds / 10).max(10),
            flood_min: if args.quick { quick } else { full },
            flood_secs: if args.quick { 0.0 } else { 1.0 },
        }
    }

    fn latency_only(self) -> Plan {
        Plan {
            flood_min: 0,
            ..self
        }
    }
}

/// Messages a bridged ring holds, at `size` bytes each: the bridge's
/// default 256, fewer above 64 KiB (16 MiB a ring).
fn capacity(size: usize) -> usize {
    if size <= 1 << 16 {
        256
    } else {
        ((16 << 20) / size).max(8)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Side {
    /// A: sends, times.
    Drive,
    /// B: answers, counts.
    Echo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum LinkSpec {
    /// A bridged pair of rings (on each host, inside its namespace).
    Rings {
        ping: String,
        pong: String,
        capacity: usize,
        max_message: usize,
        spin: bool,
    },
    /// A Zenoh peer session: B listens on the endpoint, A connects.
    Zenoh { endpoint: String },
    /// A TCP stream: B listens on a port of its own, A connects to it.
    Tcp { port: u16 },
}

/// What a child process is to do (`argv[2]`, as JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Role {
    side: Side,
    link: LinkSpec,
    size: usize,
    plan: Plan,
}

/// What A reports (one `result` line of JSON on its stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Outcome {
    /// Round trips timed, and their median and p99.
    rounds: usize,
    median_ns: u64,
    p99_ns: u64,
    /// Probes sent until one came back, and how long that took.
    probes: u64,
    setup_ms: f64,
    flood: Option<Flood>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Flood {
    sent: u64,
    /// As B counted them.
    received: u64,
    /// Messages B found out of sequence or of the wrong length.
    bad: u64,
    elapsed_ns: u64,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(CHILD) {
        return match child(argv.get(2).map_or("", String::as_str)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mapshare-bridge-bench (child): {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mapshare-bridge-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------
// The children: A and B.

/// One way to carry messages both ways between A and B.
trait Link {
    /// Sends `msg` (waiting for room as long as it takes).
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// The next message into `buf`; `false` if none came within `timeout`.
    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<bool>;
}

/// A: publishes `ping`, subscribes `pong`; B the other way round.
struct Rings {
    tx: Publisher,
    rx: Subscriber,
}

impl Rings {
    fn open(spec: &LinkSpec, side: Side) -> Result<Rings> {
        let LinkSpec::Rings {
            ping,
            pong,
            capacity,
            max_message,
            spin,
        } = spec
        else {
            bail!("not a ring link: {spec:?}");
        };
        let wait = if *spin {
            WaitStrategy::Spin
        } else {
            WaitStrategy::Block
        };
        let (out, inn) = match side {
            Side::Drive => (ping, pong),
            Side::Echo => (pong, ping),
        };
        // Subscribe first: what arrives before we join is not ours.
        let rx = Subscriber::options(inn)
            .capacity(*capacity)
            .max_message(*max_message)
            .policy(Policy::Lossless)
            .wait_strategy(wait)
            .open_or_create()
            .with_context(|| format!("subscribing ring {inn}"))?;
        let tx = Publisher::options(out)
            .capacity(*capacity)
            .max_message(*max_message)
            .policy(Policy::Lossless)
            .wait_strategy(wait)
            .open_or_create()
            .with_context(|| format!("publishing on ring {out}"))?;
        Ok(Rings { tx, rx })
    }
}

impl Link for Rings {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.tx.publish(msg).map_err(|e| anyhow!("publishing: {e}"))
    }

    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<bool> {
        match self.rx.recv_into_timeout(buf, timeout) {
            Ok(_) => Ok(true),
            Err(RecvTimeoutError::Timeout) => Ok(false),
            Err(e) => Err(anyhow!("receiving: {e}")),
        }
    }
}

/// A Zenoh peer: A publishes `bench/ping` and subscribes `bench/pong`.
struct Zenoh {
    session: zenoh::Session,
    tx: zenoh::pubsub::Publisher<'static>,
    rx: zenoh::pubsub::Subscriber<FifoChannelHandler<Sample>>,
}

impl Zenoh {
    fn open(endpoint: &str, side: Side) -> Result<Zenoh> {
        let ep = vec![endpoint.to_string()];
        let (listen, connect, out, inn) = match side {
            Side::Drive => (vec![], ep, "bench/ping", "bench/pong"),
            Side::Echo => (ep, vec![], "bench/pong", "bench/ping"),
        };
        let config = mapshare_zenoh::zenoh_config(&listen, &connect)?;
        let session = zenoh::open(config)
            .wait()
            .map_err(|e| anyhow!("opening a zenoh session: {e}"))?;
        let tx = session
            .declare_publisher(out)
            .congestion_control(CongestionControl::Block)
            .allowed_destination(Locality::Remote)
            .wait()
            .map_err(|e| anyhow!("declaring a publisher on {out}: {e}"))?;
        let rx = session
            .declare_subscriber(inn)
            .allowed_origin(Locality::Remote)
            .with(FifoChannel::new(mapshare_zenoh::FIFO_SAMPLES))
            .wait()
            .map_err(|e| anyhow!("declaring a subscriber on {inn}: {e}"))?;
        Ok(Zenoh { session, tx, rx })
    }

    fn close(self) {
        drop(self.tx);
        drop(self.rx);
        if let Err(e) = self.session.close().wait() {
            eprintln!("mapshare-bridge-bench: closing the zenoh session: {e}");
        }
    }
}

impl Link for Zenoh {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.tx
            .put(msg.to_vec())
            .wait()
            .map_err(|e| anyhow!("zenoh put: {e}"))
    }

    fn recv(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<bool> {
        match self.rx.recv_timeout(timeout) {
            Ok(Some(s)) => {
                buf.clear();
                buf.extend_from_slice(&s.payload().to_bytes());
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(anyhow!("zenoh receive: {e}")),
        }
    }
}

/// A TCP stream carrying frames: length (u32 LE), message.
struct Tcp {
    r: BufReader<TcpStream>,
    w: TcpStream,
    frame: Vec<u8>,
    /// The largest frame accepted (twice the size).
    max: usize,
}

impl Tcp {
    fn new(s: TcpStream, size: usize) -> Result<Tcp> {
        s.set_nodelay(true)?;
        // A peer that died mid-run fails the read, not hangs it.
        s.set_read_timeout(Some(LIMIT))?;
        Ok(Tcp {
            r: BufReader::with_capacity(1 << 18, s.try_clone()?),
            w: s,
            frame: Vec::with_capacity(size + 4),
            max: 2 * size,
        })
    }
}

impl Link for Tcp {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.frame.clear();
        self.frame
            .extend_from_slice(&u32::try_from(msg.len())?.to_le_bytes());
        self.frame.extend_from_slice(msg);
        self.w.write_all(&self.frame).context("tcp write")
    }

    /// Waits as long as it takes (up to [`LIMIT`]): TCP loses nothing,
    /// and B is connected before A's first message.
    fn recv(&mut self, buf: &mut Vec<u8>, _timeout: Duration) -> Result<bool> {
        let mut len = [0u8; 4];
        self.r.read_exact(&mut len).context("tcp read")?;
        let len = u32::from_le_bytes(len) as usize;
        if len > self.max {
            bail!("a frame of {len} bytes");
        }
        buf.resize(len, 0);
        self.r.read_exact(buf).context("tcp read")?;
        Ok(true)
    }
}

fn put_header(msg: &mut [u8], kind: u8, n: u64) {
    msg[0] = kind;
    msg[1..HEADER_LEN].copy_from_slice(&n.to_le_bytes());
}

fn header(msg: &[u8]) -> Result<(u8, u64)> {
    if msg.len() < HEADER_LEN {
        bail!("a message of {} bytes", msg.len());
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&msg[1..HEADER_LEN]);
    Ok((msg[0], u64::from_le_bytes(n)))
}

fn child(json: &str) -> Result<()> {
    let role: Role = serde_json::from_str(json).context("the child's role")?;
    let ready = |what: &str| -> Result<()> {
        println!("{what}");
        std::io::stdout().flush()?;
        Ok(())
    };
    match (&role.link, role.side) {
        (LinkSpec::Rings { .. }, side) => {
            let mut link = Rings::open(&role.link, side)?;
            if side == Side::Echo {
                ready("ready")?;
            }
            play(&mut link, &role)
        }
        (LinkSpec::Zenoh { endpoint }, side) => {
            let mut link = Zenoh::open(endpoint, side)?;
            if side == Side::Echo {
                ready("ready")?;
            }
            let r = play(&mut link, &role);
            link.close();
            r
        }
        (LinkSpec::Tcp { .. }, Side::Echo) => {
            let l = TcpListener::bind("127.0.0.1:0").context("tcp listen")?;
            ready(&format!("ready {}", l.local_addr()?.port()))?;
            let (s, _) = l.accept().context("tcp accept")?;
            play(&mut Tcp::new(s, role.size)?, &role)
        }
        (LinkSpec::Tcp { port }, Side::Drive) => {
            let s = TcpStream::connect(("127.0.0.1", *port)).context("tcp connect")?;
            play(&mut Tcp::new(s, role.size)?, &role)
        }
    }
}

fn play(link: &mut dyn Link, role: &Role) -> Result<()> {
    match role.side {
        Side::Drive => {
            let out = drive(link, role)?;
            println!("result {}", serde_json::to_string(&out)?);
            std::io::stdout().flush()?;
            Ok(())
        }
        Side::Echo => echo(link, role.size),
    }
}

/// A: probes, round trips, then the flood; then tells B to quit.
fn drive(link: &mut dyn Link, role: &Role) -> Result<Outcome> {
    let plan = role.plan;
    let mut msg = vec![0x5a_u8; role.size];
    let mut buf = Vec::with_capacity(role.size);
    let mut n = 0u64;

    // Probes until one comes back: the path is up and matched.
    let t0 = Instant::now();
    'probe: loop {
        if t0.elapsed() > LIMIT {
            bail!("no answer from B in {} s ({n} probes)", LIMIT.as_secs());
        }
        n += 1;
        put_header(&mut msg, PING, n);
        link.send(&msg)?;
        let until = Instant::now() + PROBE;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if !link.recv(&mut buf, left)? {
                break;
            }
            if header(&buf)? == (PING, n) {
                break 'probe;
            }
            // An earlier probe's answer, late: skipped.
        }
    }
    let probes = n;
    let setup_ms = t0.elapsed().as_secs_f64() * 1e3;

    // Round trips: each waits for its own answer (the path keeps order).
    let mut rtt = Vec::with_capacity(plan.rounds);
    for i in 0..plan.warmup + plan.rounds {
        n += 1;
        put_header(&mut msg, PING, n);
        let t = Instant::now();
        link.send(&msg)?;
        loop {
            if !link.recv(&mut buf, LIMIT)? {
                bail!("round trip {n}: no answer in {} s", LIMIT.as_secs());
            }
            match header(&buf)? {
                (PING, m) if m == n => break,
                (PING, m) if m < n => {} // a probe's, late
                other => bail!("round trip {n}: answer {other:?}"),
            }
        }
        let ns = t.elapsed().as_nanos() as u64;
        if buf.len() != role.size {
            bail!("round trip {n}: {} bytes back", buf.len());
        }
        if i >= plan.warmup {
            rtt.push(ns);
        }
    }
    rtt.sort_unstable();

    let flood = if plan.flood_min > 0 {
        Some(flood(link, plan, &mut msg, &mut buf)?)
    } else {
        None
    };

    // B answers the quit before it goes; not waited for long.
    let mut quit = [0u8; MIN_SIZE];
    put_header(&mut quit, QUIT, 0);
    link.send(&quit)?;
    let _ = link.recv(&mut buf, Duration::from_secs(5));

    Ok(Outcome {
        rounds: rtt.len(),
        median_ns: percentile(&rtt, 50.0),
        p99_ns: percentile(&rtt, 99.0),
        probes,
        setup_ms,
        flood,
    })
}

/// A's throughput run: numbered messages flat out, then the end marker,
/// and B's count.
fn flood(link: &mut dyn Link, plan: Plan, msg: &mut [u8], buf: &mut Vec<u8>) -> Result<Flood> {
    let min_time = Duration::from_secs_f64(plan.flood_secs);
    let t0 = Instant::now();
    let mut sent = 0u64;
    loop {
        // The clock is read every 64 messages only.
        if sent >= plan.flood_min && sent % 64 == 0 && t0.elapsed() >= min_time {
            break;
        }
        put_header(msg, FLOOD, sent);
        link.send(msg)?;
        sent += 1;
    }
    let mut end = [0u8; MIN_SIZE];
    put_header(&mut end, END, sent);
    link.send(&end)?;
    loop {
        if !link.recv(buf, LIMIT)? {
            bail!("no count from B in {} s", LIMIT.as_secs());
        }
        if let (END, received) = header(buf)? {
            let elapsed_ns = t0.elapsed().as_nanos() as u64;
            if buf.len() < ANSWER_LEN {
                bail!("a short count: {} bytes", buf.len());
            }
            let mut bad = [0u8; 8];
            bad.copy_from_slice(&buf[HEADER_LEN..ANSWER_LEN]);
            return Ok(Flood {
                sent,
                received,
                bad: u64::from_le_bytes(bad),
                elapsed_ns,
            });
        }
    }
}

/// B: answers pings, counts and checks floods, answers the end marker
/// with its count, quits when told.
fn echo(link: &mut dyn Link, size: usize) -> Result<()> {
    let mut buf = Vec::with_capacity(size);
    let (mut expect, mut got, mut bad) = (0u64, 0u64, 0u64);
    loop {
        if !link.recv(&mut buf, LIMIT)? {
            bail!("nothing from A in {} s", LIMIT.as_secs());
        }
        match header(&buf)? {
            (PING, _) => link.send(&buf)?,
            (FLOOD, n) => {
                if n != expect || buf.len() != size {
                    bad += 1;
                }
                expect = n + 1;
                got += 1;
            }
            (END, _) => {
                let mut answer = [0u8; MIN_SIZE];
                put_header(&mut answer, END, got);
                answer[HEADER_LEN..ANSWER_LEN].copy_from_slice(&bad.to_le_bytes());
                link.send(&answer)?;
                (expect, got, bad) = (0, 0, 0);
            }
            (QUIT, _) => {
                link.send(&buf)?;
                return Ok(());
            }
            other => bail!("unknown message {other:?}"),
        }
    }
}

/// The nearest-rank `p`th percentile of `sorted` (0 when empty), as
/// `mapshare-bench`'s `stats::percentile`.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------
// The parent: hosts, bridges, children, and cleaning up after them.

/// The pids of every process this run started and has not reaped yet: the
/// signal thread kills them.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// `kill -SIG pid...` (util-linux or procps, as `unshare` and `nsenter`):
/// this crate has no system-call dependency of its own.
fn kill(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A started process, killed and reaped when dropped unless it has ended.
struct Proc {
    what: String,
    child: Child,
    stdout: Option<BufReader<ChildStdout>>,
    /// Its stderr so far, if captured.
    stderr: Option<Arc<Mutex<String>>>,
    /// The thread that reads it (to its end: the process has exited).
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(what: &str, mut cmd: Command, capture_stderr: bool) -> Result<Proc> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        if capture_stderr {
            cmd.stderr(Stdio::piped());
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
        live().push(child.id());
        let stdout = child.stdout.take().map(BufReader::new);
        let (stderr, reader) = child.stderr.take().map_or((None, None), |e| {
            let text = Arc::new(Mutex::new(String::new()));
            let t = text.clone();
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(e).lines() {
                    let Ok(line) = line else { break };
                    let mut g = t.lock().unwrap_or_else(|e| e.into_inner());
                    g.push_str(&line);
                    g.push('\n');
                }
            });
            (Some(text), Some(reader))
        });
        Ok(Proc {
            what: what.to_string(),
            child,
            stdout,
            stderr,
            reader,
        })
    }

    /// The next line on its stdout.
    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let out = self.stdout.as_mut().context("stdout not piped")?;
        if out.read_line(&mut line)? == 0 {
            let st = self.child.wait()?;
            bail!("{} ended ({st}) without a word{}", self.what, self.tail());
        }
        Ok(line.trim_end().to_string())
    }

    fn stderr_text(&self) -> String {
        self.stderr.as_ref().map_or(String::new(), |t| {
            t.lock().unwrap_or_else(|e| e.into_inner()).clone()
        })
    }

    fn tail(&self) -> String {
        let t = self.stderr_text();
        if t.is_empty() {
            String::new()
        } else {
            format!(": {}", t.trim_end())
        }
    }

    /// Waits until its stderr says `word`.
    fn wait_for(&mut self, word: &str) -> Result<()> {
        let until = Instant::now() + LIMIT;
        while !self.stderr_text().contains(word) {
            if let Some(st) = self.child.try_wait()? {
                bail!("{} exited ({st}){}", self.what, self.tail());
            }
            if Instant::now() > until {
                bail!(
                    "{} not {word} in {} s{}",
                    self.what,
                    LIMIT.as_secs(),
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Waits for it to end, at most `limit`; then it is killed, an error.
    fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                bail!(
                    "{} still running after {} s: killed",
                    self.what,
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, and what it said on stderr once it has exited.
    fn terminate(mut self) -> Result<String> {
        kill("TERM", &[self.child.id()]);
        let st = self.wait(Duration::from_secs(10))?;
        // Its stderr reader has read everything once the pipe is closed.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let text = self.stderr_text();
        if !st.success() {
            bail!("{} exited {st}: {text}", self.what);
        }
        Ok(text)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let pid = self.child.id();
        live().retain(|&p| p != pid);
    }
}

/// A mount namespace with its own tmpfs at /dev/shm, kept alive by a `cat`
/// reading a pipe from us (as in `tests/hosts.rs`). Dropping it kills
/// whatever still runs inside, then the `cat`: the namespace and its
/// tmpfs go with the last of them.
struct Host {
    keeper: Child,
    _stdin: ChildStdin,
    _stdout: ChildStdout,
}

impl Host {
    fn new() -> Result<Host> {
        let mut keeper = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o size=256m tmpfs /dev/shm && echo up && exec cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running unshare (util-linux) to make a mount namespace")?;
        let stdin = keeper.stdin.take().context("piped")?;
        let mut stdout = keeper.stdout.take().context("piped")?;
        let mut line = [0u8; 3];
        if stdout.read_exact(&mut line).is_err() || &line != b"up\n" {
            let _ = keeper.kill();
            let err = keeper
                .wait_with_output()
                .map(|o| o.stderr)
                .unwrap_or_default();
            bail!(
                "this bench needs root: each host is a mount namespace with its own /dev/shm \
                 (`unshare -m` + `mount -t tmpfs`), and one could not be made: {}",
                String::from_utf8_lossy(&err).trim()
            );
        }
        live().push(keeper.id());
        Ok(Host {
            keeper,
            _stdin: stdin,
            _stdout: stdout,
        })
    }

    /// `program` run inside this host.
    fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{}/ns/mnt", self.keeper.id()))
            .arg("--")
            .arg(program);
        c
    }

    /// What is in this host's /dev/shm.
    fn shm(&self) -> Result<Vec<String>> {
        let out = self
            .cmd(Path::new("ls"))
            .args(["-A", "/dev/shm"])
            .output()?;
        if !out.status.success() {
            bail!("ls /dev/shm in a host: {}", out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// The pids of the processes in this host but its keeper.
    fn members(&self) -> Vec<u32> {
        let me = self.keeper.id();
        let Ok(ns) = std::fs::read_link(format!("/proc/{me}/ns/mnt")) else {
            return Vec::new();
        };
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| {
                pid != me
                    && std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() == Some(ns.clone())
            })
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        kill("KILL", &self.members());
        let _ = self.keeper.kill();
        let _ = self.keeper.wait();
        let pid = self.keeper.id();
        live().retain(|&p| p != pid);
    }
}

/// A port nothing listens on now (bound and released).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// What every contender's run needs.
struct Env {
    exe: PathBuf,
    bridge: PathBuf,
    /// Starts every ring name of this run.
    prefix: String,
    /// What looked odd, said after the tables.
    notes: Vec<String>,
}

impl Env {
    fn role(&self, side: Side, link: &LinkSpec, size: usize, plan: Plan) -> Result<String> {
        Ok(serde_json::to_string(&Role {
            side,
            link: link.clone(),
            size,
            plan,
        })?)
    }

    /// Starts B (its stdout says `ready`) and A, and collects A's result.
    fn pair(&self, b: Command, a: Command, what: &str) -> Result<(Proc, Proc)> {
        let mut echo = Proc::spawn(&format!("{what} B"), b, false)?;
        let word = echo.line()?;
        if !word.starts_with("ready") {
            bail!("{what} B said {word:?}");
        }
        let drive = Proc::spawn(&format!("{what} A"), a, false)?;
        Ok((echo, drive))
    }

    fn child_cmd(&self, host: Option<&Host>, role: String) -> Command {
        let mut c = match host {
            Some(h) => h.cmd(&self.exe),
            None => Command::new(&self.exe),
        };
        c.arg(CHILD).arg(role);
        c
    }
}

/// A's `result` line, and both ends exited well.
fn outcome(mut echo: Proc, mut drive: Proc) -> Result<Outcome> {
    let line = loop {
        let l = drive.line()?;
        if let Some(r) = l.strip_prefix("result ") {
            break r.to_string();
        }
    };
    let st = drive.wait(LIMIT)?;
    if !st.success() {
        bail!("{} exited {st}", drive.what);
    }
    let st = echo.wait(Duration::from_secs(10))?;
    if !st.success() {
        bail!("{} exited {st}", echo.what);
    }
    Ok(serde_json::from_str(&line)?)
}

fn bridged(env: &mut Env, size: usize, plan: Plan, spin: bool) -> Result<Outcome> {
    let what = if spin { "bridged (polling)" } else { "bridged" };
    let a = Host::new()?;
    let b = Host::new()?;
    let port = free_port()?;
    let (ping, pong) = (
        format!("{}-ping", env.prefix),
        format!("{}-pong", env.prefix),
    );
    let cap = capacity(size);
    let bridge = |h: &Host, flag: &str, side: &str| -> Result<Proc> {
        let mut c = h.cmd(&env.bridge);
        c.args([&ping, &pong])
            .arg(flag)
            .arg(format!("tcp/127.0.0.1:{port}"))
            .args(["--capacity", &cap.to_string()])
            .args(["--max-message", &size.to_string()]);
        let mut p = Proc::spawn(&format!("mapshare-bridge on host {side}"), c, true)?;
        p.wait_for("ready")?;
        Ok(p)
    };
    let bb = bridge(&b, "--listen", "B")?;
    let ba = bridge(&a, "--connect", "A")?;
    let link = LinkSpec::Rings {
        ping: ping.clone(),
        pong: pong.clone(),
        capacity: cap,
        max_message: size,
        spin,
    };
    let (echo, drive) = env.pair(
        env.child_cmd(Some(&b), env.role(Side::Echo, &link, size, plan)?),
        env.child_cmd(Some(&a), env.role(Side::Drive, &link, size, plan)?),
        what,
    )?;
    let out = outcome(echo, drive)?;
    let log_a = ba.terminate()?;
    let log_b = bb.terminate()?;
    // Both hosts' rings go with their last process.
    for (h, side) in [(&a, "A"), (&b, "B")] {
        let left = h.shm()?;
        if !left.is_empty() {
            env.notes.push(format!(
                "{what}, {}: host {side}'s /dev/shm still held {left:?} after every process ended",
                human(size)
            ));
        }
    }
    check_bridge_logs(env, what, size, &ping, &pong, &log_a, &log_b);
    Ok(out)
}

/// A bridge's `NAME: sent S, received R` line.
fn counts(log: &str, name: &str) -> Option<(u64, u64)> {
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix(&format!("mapshare-bridge: {name}: sent ")))?;
    let (s, r) = line.split_once(", received ")?;
    Some((s.trim().parse().ok()?, r.trim().parse().ok()?))
}

/// Notes what the bridges said beyond `ready` and their counts, and
/// whether each ring's messages crossed as many as were sent.
fn check_bridge_logs(
    env: &mut Env,
    what: &str,
    size: usize,
    ping: &str,
    pong: &str,
    log_a: &str,
    log_b: &str,
) {
    for (log, side) in [(log_a, "A"), (log_b, "B")] {
        for l in log.lines() {
            let routine = l.contains(": ready, origin")
                || l.contains(": sent ")
                || l.contains("no remote bridge answers")
                || l.contains("the remote rings match now");
            if !routine {
                env.notes
                    .push(format!("{what}, {}: bridge {side} said: {l}", human(size)));
            }
        }
    }
    for (name, from, to, fs, ts) in [
        (ping, log_a, log_b, "A", "B"),
        (pong, log_b, log_a, "B", "A"),
    ] {
        match (counts(from, name), counts(to, name)) {
            (Some((sent, _)), Some((_, received))) if sent == received => {}
            (s, r) => env.notes.push(format!(
                "{what}, {}: ring {name}: bridge {fs} sent/received {s:?}, bridge {ts} {r:?}",
                human(size)
            )),
        }
    }
}

fn zenoh_direct(env: &mut Env, size: usize, plan: Plan) -> Result<Outcome> {
    let link = LinkSpec::Zenoh {
        endpoint: format!("tcp/127.0.0.1:{}", free_port()?),
    };
    let (echo, drive) = env.pair(
        env.child_cmd(None, env.role(Side::Echo, &link, size, plan)?),
        env.child_cmd(None, env.role(Side::Drive, &link, size, plan)?),
        "direct Zenoh",
    )?;
    outcome(echo, drive)
}

fn tcp(env: &mut Env, size: usize, plan: Plan) -> Result<Outcome> {
    let mut echo = Proc::spawn(
        "TCP B",
        env.child_cmd(
            None,
            env.role(Side::Echo, &LinkSpec::Tcp { port: 0 }, size, plan)?,
        ),
        false,
    )?;
    let word = echo.line()?;
    let port: u16 = word
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("TCP B said {word:?}"))?;
    let link = LinkSpec::Tcp { port };
    let drive = Proc::spawn(
        "TCP A",
        env.child_cmd(None, env.role(Side::Drive, &link, size, plan)?),
        false,
    )?;
    outcome(echo, drive)
}

fn human(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn load() -> String {
    read_trim("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The names in the real /dev/shm that belong to this run.
fn ours_in_shm(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.contains(prefix))
        .collect()
}

/// Kills every process of this run on SIGINT, SIGTERM or SIGHUP, then
/// exits (their hosts, and the hosts' tmpfs, go with them).
fn watch_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let pids = live().clone();
            kill("KILL", &pids);
            eprintln!(
                "mapshare-bridge-bench: signal {sig}: killed the {} process(es) it had started",
                pids.len()
            );
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// A contender's runs at one size.
struct Reps(Vec<Outcome>);

impl Reps {
    /// The run of the median median (the upper one of an even count).
    fn lat(&self) -> &Outcome {
        let mut v: Vec<&Outcome> = self.0.iter().collect();
        v.sort_by_key(|o| o.median_ns);
        v[v.len() / 2]
    }

    /// The throughput run of the median rate.
    fn flood(&self) -> Option<&Flood> {
        let mut v: Vec<&Flood> = self.0.iter().filter_map(|o| o.flood.as_ref()).collect();
        v.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
        v.get(v.len() / 2).copied()
    }
}

/// The three contenders at one size.
struct Row {
    size: usize,
    bridged: Reps,
    polling: Option<Reps>,
    zenoh: Reps,
    tcp: Reps,
}

fn run(args: &Args) -> Result<()> {
    watch_signals()?;
    let exe = std::env::current_exe().context("this program's path")?;
    let bridge = exe.with_file_name("mapshare-bridge");
    if !bridge.exists() {
        bail!(
            "{} is missing: build it beside this bench (cargo build --release -p mapshare-zenoh)",
            bridge.display()
        );
    }
    // Fail at once, not after the first contenders, where hosts cannot be made.
    drop(Host::new()?);
    let mut env = Env {
        exe,
        bridge,
        prefix: format!("mbb-{}", std::process::id()),
        notes: Vec::new(),
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "mapshare-bridge-bench: {} ({cpus} CPUs), Linux {}, load average {} at the start{}",
        cpu_model(),
        read_trim("/proc/sys/kernel/osrelease"),
        load(),
        if args.quick { " (--quick)" } else { "" }
    );
    println!(
        "Every contender: two processes, A and B, over loopback TCP (127.0.0.1). bridged: A and B \
         in two mount-namespace hosts, a mapshare-bridge on each ({}), lossless rings; direct \
         Zenoh: a peer session in A and B, configured as the bridge's; TCP: one stream, \
         TCP_NODELAY, length-prefixed frames.",
        env.bridge.display()
    );
    let repeat = args.repeat.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let mut rows = Vec::new();
    for &size in &args.sizes {
        let plan = Plan::new(args, size);
        let mut row = Row {
            size,
            bridged: Reps(Vec::new()),
            polling: (!args.no_polling).then(|| Reps(Vec::new())),
            zenoh: Reps(Vec::new()),
            tcp: Reps(Vec::new()),
        };
        for k in 1..=repeat {
            eprintln!(
                "mapshare-bridge-bench: {}, run {k} of {repeat} ...",
                human(size)
            );
            row.bridged.0.push(bridged(&mut env, size, plan, false)?);
            if let Some(p) = &mut row.polling {
                p.0.push(bridged(&mut env, size, plan.latency_only(), true)?);
            }
            row.zenoh.0.push(zenoh_direct(&mut env, size, plan)?);
            row.tcp.0.push(tcp(&mut env, size, plan)?);
        }
        rows.push(row);
    }
    print!("{}", report(args, repeat, &rows));
    println!("load average {} at the end", load());
    for n in &env.notes {
        println!("note: {n}");
    }
    let left = ours_in_shm(&env.prefix);
    if !left.is_empty() {
        bail!("the real /dev/shm holds this run's {left:?}: a ring escaped its host");
    }
    Ok(())
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// `n` in thousands or millions.
fn count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn rate(f: &Flood) -> f64 {
    f.received as f64 / (f.elapsed_ns.max(1) as f64 / 1e9)
}

fn report(args: &Args, repeat: usize, rows: &[Row]) -> String {
    let mut s = String::new();
    let first = rows.first().map(|r| Plan::new(args, r.size));
    let runs = if repeat > 1 {
        format!("; each contender ran {repeat} times (fresh processes, interleaved), the median run is shown")
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "\nLatency: round trip A -> B -> A, {} timed after {} warm-up, median / p99 (nearest rank), µs{runs}",
        first.map_or(0, |p| p.rounds),
        first.map_or(0, |p| p.warmup),
    );
    let _ = writeln!(
        s,
        "{:<8} {:>20} {:>20} {:>20} {:>20} {:>16} {:>16}",
        "size",
        "bridged (Block)",
        "bridged (polling)",
        "direct Zenoh",
        "TCP",
        "bridged/zenoh",
        "bridged/tcp"
    );
    let cell = |o: &Outcome| format!("{:.1} / {:.1}", us(o.median_ns), us(o.p99_ns));
    let ratios = |b: &Outcome, o: &Outcome| {
        format!(
            "{} / {}",
            ratio(b.median_ns as f64, o.median_ns as f64),
            ratio(b.p99_ns as f64, o.p99_ns as f64)
        )
    };
    for r in rows {
        let (b, z, t) = (r.bridged.lat(), r.zenoh.lat(), r.tcp.lat());
        let _ = writeln!(
            s,
            "{:<8} {:>20} {:>20} {:>20} {:>20} {:>16} {:>16}",
            human(r.size),
            cell(b),
            r.polling.as_ref().map_or("-".into(), |p| cell(p.lat())),
            cell(z),
            cell(t),
            ratios(b, z),
            ratios(b, t),
        );
    }
    let _ = writeln!(
        s,
        "(ratios: median / p99 of bridged (Block) over the other; above 1 the bridge is slower)"
    );

    let least = rows
        .iter()
        .map(|r| format!("{} at {}", Plan::new(args, r.size).flood_min, human(r.size)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        s,
        "\nThroughput: A -> B flat out, numbered messages (B checks each), at least {least}{}; \
         timed from A's first send to B's count back at A; messages/s and MB/s (10^6 bytes of payload){runs}",
        if args.quick { "" } else { ", and at least 1 s" },
    );
    let _ = writeln!(
        s,
        "{:<8} {:>22} {:>22} {:>22} {:>14} {:>14}",
        "size", "bridged", "direct Zenoh", "TCP", "bridged/zenoh", "bridged/tcp"
    );
    let tcell = |f: Option<&Flood>, size: usize| match f {
        Some(f) => format!(
            "{}/s {:.1} MB/s",
            count(rate(f)),
            rate(f) * size as f64 / 1e6
        ),
        None => "-".into(),
    };
    let rate_of = |f: Option<&Flood>| f.map_or(0.0, rate);
    for r in rows {
        let (b, z, t) = (r.bridged.flood(), r.zenoh.flood(), r.tcp.flood());
        let _ = writeln!(
            s,
            "{:<8} {:>22} {:>22} {:>22} {:>14} {:>14}",
            human(r.size),
            tcell(b, r.size),
            tcell(z, r.size),
            tcell(t, r.size),
            ratio(rate_of(b), rate_of(z)),
            ratio(rate_of(b), rate_of(t)),
        );
    }
    let _ = writeln!(
        s,
        "(ratios: messages/s of bridged over the other; below 1 the bridge is slower)"
    );

    let _ = writeln!(
        s,
        "\nEvery run: round-trip median / p99 µs; messages sent / counted by B / out of sequence \
         or wrong length, seconds, messages/s; probes until the path answered, ms"
    );
    for r in rows {
        let mut contenders = vec![("bridged", &r.bridged)];
        if let Some(p) = &r.polling {
            contenders.push(("bridged (polling)", p));
        }
        contenders.push(("direct Zenoh", &r.zenoh));
        contenders.push(("TCP", &r.tcp));
        for (name, reps) in contenders {
            for (k, o) in reps.0.iter().enumerate() {
                let flood = o.flood.as_ref().map_or("latency only".into(), |f| {
                    format!(
                        "{} / {} / {}, {:.2} s, {}/s",
                        f.sent,
                        f.received,
                        f.bad,
                        f.elapsed_ns as f64 / 1e9,
                        count(rate(f))
                    )
                });
                let _ = writeln!(
                    s,
                    "  {:<8} {:<18} run {}: {:.1} / {:.1}; {flood}; {} probe(s), {:.0} ms",
                    human(r.size),
                    name,
                    k + 1,
                    us(o.median_ns),
                    us(o.p99_ns),
                    o.probes,
                    o.setup_ms
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("8").is_err());
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&s, 50.0), 50);
        assert_eq!(percentile(&s, 99.0), 99);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn bridge_counts_are_read_from_its_log() {
        let log =
            "mapshare-bridge: ready, origin 1, rings a b\nmapshare-bridge: a: sent 5, received 0\n";
        assert_eq!(counts(log, "a"), Some((5, 0)));
        assert_eq!(counts(log, "b"), None);
    }
}
