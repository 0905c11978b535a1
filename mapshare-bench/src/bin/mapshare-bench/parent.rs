//! The parent: creates the resources of each job, spawns the peer, measures
//! the floor and then the contender, and always cleans up.

use std::hint::spin_loop;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use mapshare::{Location, Publisher, Receiver, Sender, Subscriber};
use mapshare_bench::floor::{ByteRing, SpinLine};

use super::child::{FLOOR_DONE, IDLE_CMD, READY};
use super::jobs::{self, Config, Job, Mode, Transport};
use super::link::{Channels, Link, Topics};
use super::measure::{self, expected_fold, ns, one_way, seq_in, seq_of, stamp, Dist};
use super::{IDLE, PACED_PERIOD, PEER_ARG};

/// A job (peer included) that takes longer than this is abandoned.
const JOB_TIMEOUT: Duration = Duration::from_secs(90);
/// Most floor round trips kept per job.
const FLOOR_SAMPLES: usize = 400_000;

/// What the idle peer measured about itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct Idle {
    /// On-CPU time from /proc/self/schedstat, ns.
    pub(super) sched_ns: Option<u64>,
    /// utime + stime from /proc/self/stat, ticks of 1/100 s.
    pub(super) ticks: Option<u64>,
    pub(super) wall_ns: u64,
}

/// The figure a job produced.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    Latency(Dist),
    Paced(Dist, Idle),
    Throughput { msgs_per_s: f64, gb_per_s: f64 },
}

/// One repetition of one contender, with the floor measured next to it.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    pub(super) job: Job,
    pub(super) rep: u32,
    pub(super) floor: Dist,
    pub(super) outcome: Outcome,
    /// Earlier attempts thrown away because their floor had risen.
    pub(super) retries: u32,
}

/// Single-process memcpy, one repetition.
#[derive(Debug, Clone, Copy)]
pub(super) struct Memcpy {
    pub(super) size: usize,
    pub(super) msgs_per_s: f64,
    pub(super) gb_per_s: f64,
}

/// Everything measured in a run.
#[derive(Debug, Clone, Default)]
pub(super) struct Results {
    /// The reference floor: the lowest of the calibration measurements
    /// taken before the first contender.
    pub(super) reference: Option<Dist>,
    pub(super) samples: Vec<Sample>,
    pub(super) memcpy: Vec<Memcpy>,
}

impl Results {
    /// The run's first floor (the calibration), what every later floor is held against.
    pub(super) fn first_floor(&self) -> Option<f64> {
        self.reference.map(|d| d.median_ns)
    }

    /// Whether a floor sample is more than 50% off the run's first, or
    /// time-sliced (then no figure next to it means anything).
    pub(super) fn moved(&self, floor: &Dist) -> bool {
        time_sliced(floor)
            || self
                .first_floor()
                .is_some_and(|f0| (floor.median_ns / f0 - 1.0).abs() > 0.5)
    }

    /// Whether a floor sample is more than 50% above the run's first: the
    /// two processes are placed worse than they were (or share a CPU).
    fn rose(&self, floor: &Dist) -> bool {
        time_sliced(floor)
            || self
                .first_floor()
                .is_some_and(|f0| floor.median_ns > 1.5 * f0)
    }
}

/// Floor-only measurements before the first contender.
const CALIBRATIONS: u32 = 3;
/// Most calibrations while every one so far was time-sliced.
const MAX_CALIBRATIONS: u32 = 10;
/// A one-way floor above this means the two processes took turns on one CPU
/// (the machine is busy with other work) instead of running at once.
const TIME_SLICED_NS: f64 = 5_000.0;

/// See [`TIME_SLICED_NS`].
pub(super) fn time_sliced(floor: &Dist) -> bool {
    floor.median_ns > TIME_SLICED_NS
}

/// Attempts of a job whose floor rose, before its figure is kept (flagged);
/// none with `--quick`.
const RETRIES: u32 = 2;

/// Runs every job `cfg.reps` times (round-robin, so that a bad spell of the
/// machine hits one repetition of many contenders, not all of one).
pub(super) fn run_all(cfg: &Config) -> anyhow::Result<Results> {
    let plan = jobs::plan(cfg);
    let memcpys = if cfg.throughput { cfg.sizes.len() } else { 0 };
    let total = (plan.len() + memcpys) * cfg.reps as usize;
    let mut out = Results::default();
    // Calibration: the floor alone, a few times; the lowest is the reference,
    // so that a bad first spell does not make every later floor look moved.
    let calibration = Job {
        transport: Transport::Shm {
            wait: jobs::Wait::Spin,
            loaned: false,
            topic: false,
        },
        mode: Mode::Latency,
        size: 64,
        count: 0,
        warmup: 0,
    };
    let mut i = 0;
    while i < CALIBRATIONS
        || (i < MAX_CALIBRATIONS && out.reference.is_some_and(|r| time_sliced(&r)))
    {
        if i >= CALIBRATIONS {
            std::thread::sleep(Duration::from_millis(500));
        }
        let floor = run_job(cfg, &calibration, 0)?.floor;
        i += 1;
        eprintln!(
            "[calibration {i}] floor: median {:.1} ns, p99 {:.1} ns{}",
            floor.median_ns,
            floor.p99_ns,
            if time_sliced(&floor) {
                " (time-sliced: the machine is busy)"
            } else {
                ""
            }
        );
        if out.reference.is_none_or(|r| floor.median_ns < r.median_ns) {
            out.reference = Some(floor);
        }
    }
    let mut k = 0;
    for rep in 0..cfg.reps {
        for job in &plan {
            k += 1;
            eprint!(
                "[{k}/{total}] rep {}/{}: {} {} {} ...",
                rep + 1,
                cfg.reps,
                job.name(),
                size_label(job.size),
                match job.mode {
                    Mode::Latency => "latency",
                    Mode::Paced => "paced latency + idle CPU",
                    Mode::Throughput => "throughput",
                }
            );
            let mut sample = run_job(cfg, job, rep)?;
            while !cfg.quick && sample.retries < RETRIES && out.rose(&sample.floor) {
                eprint!(
                    " floor moved ({:.0} ns), again in 0.5 s ...",
                    sample.floor.median_ns
                );
                std::thread::sleep(Duration::from_millis(500));
                let retries = sample.retries + 1;
                sample = run_job(cfg, job, rep)?;
                sample.retries = retries;
            }
            let moved = if out.moved(&sample.floor) {
                " FLOOR MOVED"
            } else {
                ""
            };
            eprintln!(
                " {} (floor {:.0} ns{moved})",
                summary(&sample.outcome),
                sample.floor.median_ns
            );
            out.samples.push(sample);
        }
        if cfg.throughput {
            for &size in &cfg.sizes {
                k += 1;
                eprint!(
                    "[{k}/{total}] rep {}/{}: memcpy {} ...",
                    rep + 1,
                    cfg.reps,
                    size_label(size)
                );
                let n = jobs::messages(
                    Transport::Shm {
                        wait: jobs::Wait::Spin,
                        loaned: false,
                        topic: false,
                    },
                    size,
                    cfg.quick,
                );
                let (msgs_per_s, gb_per_s) = measure::memcpy(size, n);
                eprintln!(" {gb_per_s:.2} GB/s");
                out.memcpy.push(Memcpy {
                    size,
                    msgs_per_s,
                    gb_per_s,
                });
            }
        }
    }
    Ok(out)
}

fn summary(o: &Outcome) -> String {
    match o {
        Outcome::Latency(d) | Outcome::Paced(d, _) => {
            format!("median {:.0} ns, p99 {:.0} ns", d.median_ns, d.p99_ns)
        }
        Outcome::Throughput {
            msgs_per_s,
            gb_per_s,
        } => format!("{:.3} M msgs/s, {gb_per_s:.2} GB/s", msgs_per_s / 1e6),
    }
}

/// `64 B`, `4 KiB`, `1 MiB`.
pub(super) fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size % (1 << 20) == 0 {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size % (1 << 10) == 0 {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// Whatever a job leaves behind: killed and removed on every path out.
#[derive(Debug, Default)]
struct Cleanup {
    child: Option<Child>,
    names: Vec<String>,
    sock: Option<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            if !matches!(c.try_wait(), Ok(Some(_))) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        for n in &self.names {
            // Non-persistent segments may already be gone with their last user.
            if let Ok(at) = Location::shm(n) {
                let _ = mapshare::segment::unlink(&at);
            }
        }
        if let Some(p) = &self.sock {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The peer is gone, or the job ran out of time.
fn gone(child: &mut Child, deadline: Instant) -> bool {
    Instant::now() > deadline || !matches!(child.try_wait(), Ok(None))
}

fn peer_failed(child: &mut Child, what: &str) -> anyhow::Error {
    match child.try_wait() {
        Ok(Some(status)) => anyhow!("bench: the peer exited ({status}) {what}"),
        _ => anyhow!("bench: the peer did not answer in {JOB_TIMEOUT:?} {what}"),
    }
}

static JOBS: AtomicU32 = AtomicU32::new(0);

fn run_job(cfg: &Config, job: &Job, rep: u32) -> anyhow::Result<Sample> {
    let mut cleanup = Cleanup::default();
    let job_id = format!(
        "{}-{}",
        std::process::id(),
        JOBS.fetch_add(1, Ordering::Relaxed)
    );
    let base = format!("bench-{job_id}");
    let [ping_name, pong_name] = ["ping", "pong"].map(|s| format!("{base}-{s}"));
    let sock = std::env::temp_dir().join(format!("mapshare-{base}.sock"));

    // Declared after `cleanup`, so dropped (its file removed) before it.
    let line_path = SpinLine::path_for(&job_id);
    let line = SpinLine::create(&line_path)
        .with_context(|| format!("bench: floor line {}", line_path.display()))?;
    let mut shm = None;
    let mut topics = None;
    let mut raw = None;
    let mut listener = None;
    match job.transport {
        Transport::Shm { topic: false, .. } => {
            let tx: Sender = job
                .channel(&ping_name)
                .create()
                .context("bench: ping channel")?;
            cleanup.names.push(ping_name.clone());
            let rx: Receiver = job
                .channel(&pong_name)
                .create()
                .context("bench: pong channel")?;
            cleanup.names.push(pong_name.clone());
            shm = Some((tx, rx));
        }
        Transport::Shm { topic: true, .. } => {
            let tx: Publisher = job
                .channel(&ping_name)
                .create()
                .context("bench: ping ring")?;
            cleanup.names.push(ping_name.clone());
            // Joined before the peer starts, so it gets every message.
            let rx: Subscriber = job
                .channel(&pong_name)
                .create()
                .context("bench: pong ring")?;
            cleanup.names.push(pong_name.clone());
            topics = Some((tx, rx));
        }
        Transport::Uds => {
            let l =
                UnixListener::bind(&sock).with_context(|| format!("bind {}", sock.display()))?;
            cleanup.sock = Some(sock.clone());
            l.set_nonblocking(true)?;
            listener = Some(l);
        }
        Transport::Raw => {
            let cap = (4 << 20).max(2 * job.size);
            let ping = ByteRing::create(&ByteRing::path_for(&ping_name), cap)
                .context("bench: ping byte ring")?;
            let pong = ByteRing::create(&ByteRing::path_for(&pong_name), cap)
                .context("bench: pong byte ring")?;
            raw = Some((ping, pong));
        }
        Transport::Pipe => {}
    }

    let exe = std::env::current_exe().context("bench: finding this executable")?;
    let piped = job.transport == Transport::Pipe;
    let io = || if piped { Stdio::piped() } else { Stdio::null() };
    let child = Command::new(exe)
        .arg(PEER_ARG)
        .args(job.encode(
            &line_path.display().to_string(),
            &ping_name,
            &pong_name,
            &sock.display().to_string(),
        ))
        .stdin(io())
        .stdout(io())
        .stderr(Stdio::inherit())
        .spawn()
        .context("bench: starting the peer")?;
    let child = cleanup.child.insert(child);
    let deadline = Instant::now() + JOB_TIMEOUT;

    let stream = match listener {
        Some(l) => loop {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false)?;
                    break Some(s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if gone(child, deadline) {
                        return Err(peer_failed(child, "before connecting"));
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(e) => return Err(e).context("bench: accept"),
            }
        },
        None => None,
    };

    if !line.wait_for(READY, || gone(child, deadline)) {
        return Err(peer_failed(child, "before it was ready"));
    }
    let floor = measure_floor(&line, cfg.floor_time(), || gone(child, deadline))
        .ok_or_else(|| peer_failed(child, "during the floor"))?;

    let outcome = match (job.transport, shm, topics, stream) {
        (Transport::Shm { loaned, .. }, Some((mut tx, mut rx)), _, _) => Shm {
            link: Channels {
                tx: &mut tx,
                rx: &mut rx,
            },
            deadline,
        }
        .run(job, loaned)?,
        (Transport::Shm { loaned, .. }, _, Some((mut tx, mut rx)), _) => Shm {
            link: Topics {
                tx: &mut tx,
                rx: &mut rx,
            },
            deadline,
        }
        .run(job, loaned)?,
        (Transport::Raw, ..) => {
            let (ping, pong) = raw.as_ref().expect("created above"); // by transport
            stream_job(job, &mut pong.reader(), &mut ping.writer())?
        }
        (Transport::Pipe, ..) => {
            let mut w = child.stdin.take().context("peer stdin")?;
            let mut r = child.stdout.take().context("peer stdout")?;
            stream_job(job, &mut r, &mut w)?
        }
        (Transport::Uds, _, _, Some(s)) => {
            let mut r = s.try_clone()?;
            let mut w = s;
            stream_job(job, &mut r, &mut w)?
        }
        _ => unreachable!("resources match the transport"), // created above by transport
    };

    loop {
        match child.try_wait()? {
            Some(status) if status.success() => break,
            Some(status) => bail!("bench: the peer failed ({status})"),
            None if Instant::now() > deadline => bail!("bench: the peer did not exit"),
            None => std::thread::sleep(Duration::from_micros(100)),
        }
    }
    Ok(Sample {
        job: *job,
        rep,
        floor,
        outcome,
        retries: 0,
    })
}

/// Ping-pongs the line for `time`: stores 2k, waits for 2k + 1. `None` if
/// `gone()` said so.
fn measure_floor(line: &SpinLine, time: Duration, mut gone: impl FnMut() -> bool) -> Option<Dist> {
    let mut v = READY + 1;
    let mut samples: Vec<u32> = Vec::with_capacity(FLOOR_SAMPLES);
    let warm_until = Instant::now() + time / 10;
    let mut start = Instant::now();
    let mut t0 = start;
    loop {
        line.store(v);
        if !line.wait_for(v + 1, &mut gone) {
            return None;
        }
        v += 2;
        let t1 = Instant::now();
        if t1 < warm_until {
            start = t1;
        } else {
            samples.push(ns(t1 - t0));
            if samples.len() == FLOOR_SAMPLES || t1 - start >= time {
                break;
            }
        }
        t0 = t1;
    }
    line.store(FLOOR_DONE);
    Some(one_way(&mut samples))
}

struct Shm<L: Link> {
    link: L,
    deadline: Instant,
}

fn check_echo(got: u64, want: u64) -> anyhow::Result<()> {
    if got != want {
        bail!("bench: the peer echoed message {got}, expected {want}");
    }
    Ok(())
}

impl<L: Link> Shm<L> {
    fn run(&mut self, job: &Job, loaned: bool) -> anyhow::Result<Outcome> {
        Ok(match (job.mode, loaned) {
            (Mode::Latency, false) => Outcome::Latency(self.latency(job)?),
            (Mode::Latency, true) => Outcome::Latency(self.latency_loaned(job)?),
            (Mode::Paced, _) => self.paced(job)?,
            (Mode::Throughput, _) => self.throughput(job)?,
        })
    }

    fn send(&mut self, buf: &[u8]) -> anyhow::Result<()> {
        self.link
            .send(buf, self.deadline)
            .map_err(|e| anyhow!("bench: {e}"))
    }

    /// Receives the next message, copies all of it into `back` (which must
    /// be large enough) and frees its slot; its message number.
    fn recv_copy(&mut self, back: &mut [u8]) -> anyhow::Result<u64> {
        let n = self
            .link
            .recv_with(self.deadline, |msg| {
                let n = msg.len();
                msg.copy_to_slice(&mut back[..n]);
                n
            })
            .map_err(|e| anyhow!("bench: {e}"))?;
        Ok(seq_of(&back[..n]))
    }

    /// Receives the next message and reads only its first 8 bytes, in its
    /// slot (the message number, or a fold); frees the slot.
    fn recv_seq(&mut self) -> anyhow::Result<u64> {
        self.link
            .recv_with(self.deadline, seq_in)
            .map_err(|e| anyhow!("bench: {e}"))
    }

    /// Copying ping-pong: the whole message goes in with `send` and out
    /// (copied from its slot into a local buffer) with `recv_ref`, on both
    /// sides.
    fn latency(&mut self, job: &Job) -> anyhow::Result<Dist> {
        let mut buf = vec![0xa5u8; job.size];
        let mut back = vec![0u8; job.size];
        let mut samples = Vec::with_capacity(job.count as usize);
        let mut t0 = Instant::now();
        for i in 0..job.warmup + job.count {
            stamp(&mut buf, i);
            self.send(&buf)?;
            let got = self.recv_copy(&mut back)?;
            let t1 = Instant::now();
            check_echo(got, i)?;
            if i >= job.warmup {
                samples.push(ns(t1 - t0));
            }
            t0 = t1;
        }
        Ok(one_way(&mut samples))
    }

    /// Zero-copy ping-pong: loan a slot, write the 8-byte header in place,
    /// commit the full size; the receiver reads the header in place.
    fn latency_loaned(&mut self, job: &Job) -> anyhow::Result<Dist> {
        let mut samples = Vec::with_capacity(job.count as usize);
        let mut t0 = Instant::now();
        for i in 0..job.warmup + job.count {
            self.link
                .send_loaned(job.size, self.deadline, &mut |loan| {
                    if !loan.write_at(0, &i.to_le_bytes()) {
                        bail!(
                            "a loaned slot of {} bytes has no room for the header",
                            loan.len()
                        );
                    }
                    Ok(())
                })
                .map_err(|e| anyhow!("bench: {e}"))?;
            let got = self.recv_seq()?;
            let t1 = Instant::now();
            check_echo(got, i)?;
            if i >= job.warmup {
                samples.push(ns(t1 - t0));
            }
            t0 = t1;
        }
        Ok(one_way(&mut samples))
    }

    /// One copying round trip every [`PACED_PERIOD`], then the idle test.
    fn paced(&mut self, job: &Job) -> anyhow::Result<Outcome> {
        let mut buf = vec![0xa5u8; job.size];
        let mut back = vec![0u8; job.size];
        let mut samples = Vec::with_capacity(job.count as usize);
        let mut next = Instant::now();
        for i in 0..job.warmup + job.count {
            next += PACED_PERIOD;
            let mut t0 = Instant::now();
            while t0 < next {
                spin_loop();
                t0 = Instant::now();
            }
            if t0 > next + PACED_PERIOD {
                next = t0; // fell behind (preempted): do not burst to catch up
            }
            stamp(&mut buf, i);
            self.send(&buf)?;
            let got = self.recv_copy(&mut back)?;
            let t1 = Instant::now();
            check_echo(got, i)?;
            if i >= job.warmup {
                samples.push(ns(t1 - t0));
            }
        }
        stamp(&mut buf, IDLE_CMD);
        self.send(&buf)?;
        let (sched, ticks, wall_ns) = self
            .link
            .recv_with(self.deadline + IDLE, |report| {
                let word = |k: usize| report.u64_le_at(8 * k).unwrap_or(u64::MAX);
                (word(0), word(1), word(2))
            })
            .map_err(|e| anyhow!("bench: idle report: {e}"))?;
        let idle = Idle {
            sched_ns: (sched != u64::MAX).then_some(sched),
            ticks: (ticks != u64::MAX).then_some(ticks),
            wall_ns,
        };
        Ok(Outcome::Paced(one_way(&mut samples), idle))
    }

    /// Streams `warmup`, then `count` copied messages; the peer copies each
    /// out, folds every byte and answers with the fold, which is checked.
    fn throughput(&mut self, job: &Job) -> anyhow::Result<Outcome> {
        let template: Vec<u8> = (0..job.size).map(|i| (i * 31 + 7) as u8).collect();
        let mut buf = template.clone();
        let mut result = None;
        for n in [job.warmup, job.count] {
            let want = expected_fold(&template, n);
            let t0 = Instant::now();
            for i in 0..n {
                stamp(&mut buf, i);
                self.send(&buf)?;
            }
            let got = self.recv_seq()?;
            let secs = t0.elapsed().as_secs_f64();
            if got != want {
                bail!("bench: the peer's fold {got:#x} is not {want:#x}: bytes lost");
            }
            result = Some(rates(job.size, n, secs));
        }
        Ok(result.expect("two rounds"))
    }
}

fn rates(size: usize, n: u64, secs: f64) -> Outcome {
    Outcome::Throughput {
        msgs_per_s: n as f64 / secs,
        gb_per_s: n as f64 * size as f64 / secs / 1e9,
    }
}

/// Pipes and sockets, the same protocols as through the channel.
fn stream_job(job: &Job, r: &mut impl Read, w: &mut impl Write) -> anyhow::Result<Outcome> {
    let template: Vec<u8> = (0..job.size).map(|i| (i * 31 + 7) as u8).collect();
    let mut buf = template.clone();
    match job.mode {
        Mode::Latency | Mode::Paced => {
            let mut back = vec![0u8; job.size];
            let mut samples = Vec::with_capacity(job.count as usize);
            let mut t0 = Instant::now();
            for i in 0..job.warmup + job.count {
                stamp(&mut buf, i);
                w.write_all(&buf)?;
                r.read_exact(&mut back)?;
                let t1 = Instant::now();
                check_echo(seq_of(&back), i)?;
                if i >= job.warmup {
                    samples.push(ns(t1 - t0));
                }
                t0 = t1;
            }
            Ok(Outcome::Latency(one_way(&mut samples)))
        }
        Mode::Throughput => {
            let mut result = None;
            let mut ack = [0u8; 8];
            for n in [job.warmup, job.count] {
                let want = expected_fold(&template, n);
                let t0 = Instant::now();
                for i in 0..n {
                    stamp(&mut buf, i);
                    w.write_all(&buf)?;
                }
                r.read_exact(&mut ack)?;
                let secs = t0.elapsed().as_secs_f64();
                let got = u64::from_le_bytes(ack);
                if got != want {
                    bail!("bench: the peer's fold {got:#x} is not {want:#x}: bytes lost");
                }
                result = Some(rates(job.size, n, secs));
            }
            Ok(result.expect("two rounds"))
        }
    }
}
