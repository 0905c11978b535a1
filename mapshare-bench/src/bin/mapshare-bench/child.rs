//! The peer: opens what the parent created, answers the floor ping-pong,
//! then echoes (latency) or reads every byte (throughput).

use std::fs::File;
use std::hint::{black_box, spin_loop};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use mapshare::{Publisher, Receiver, Sender, Subscriber};
use mapshare_bench::floor::{ByteRing, SpinLine};

use super::jobs::{Job, Mode, Transport};
use super::link::{Channels, Link, Topics};
use super::measure::{cpu_time, fold, seq_in, seq_of};
use super::IDLE;

/// The line's value once the peer has attached everything.
pub(super) const READY: u64 = 1;
/// The parent's "floor is over" value (never reached by counting).
pub(super) const FLOOR_DONE: u64 = u64::MAX;
/// The message number that asks the paced peer to go idle and report.
pub(super) const IDLE_CMD: u64 = u64::MAX;
/// The peer gives up on a job after this long.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let (job, [line, ping, pong, sock]) = Job::decode(args)?;
    let deadline = Instant::now() + PEER_TIMEOUT;
    let ppid = std::os::unix::process::parent_id();
    let orphan = move || std::os::unix::process::parent_id() != ppid || Instant::now() > deadline;
    let line = SpinLine::open(Path::new(&line))
        .with_context(|| format!("bench peer: floor line {line}"))?;
    match job.transport {
        Transport::Shm {
            loaned,
            topic: false,
            ..
        } => {
            let mut rx: Receiver = job.channel(&ping).open().context("bench peer: ping")?;
            let mut tx: Sender = job.channel(&pong).open().context("bench peer: pong")?;
            floor(&line, &orphan)?;
            let link = Channels {
                rx: &mut rx,
                tx: &mut tx,
            };
            Shm { link, deadline }.run(&job, loaned)
        }
        Transport::Shm {
            loaned,
            topic: true,
            ..
        } => {
            // Joined before READY: the parent publishes only after it.
            let mut rx: Subscriber = job.channel(&ping).open().context("bench peer: ping")?;
            let mut tx: Publisher = job.channel(&pong).open().context("bench peer: pong")?;
            floor(&line, &orphan)?;
            let link = Topics {
                rx: &mut rx,
                tx: &mut tx,
            };
            Shm { link, deadline }.run(&job, loaned)
        }
        Transport::Raw => {
            let (ping, pong) = (
                ByteRing::open(&ByteRing::path_for(&ping))?,
                ByteRing::open(&ByteRing::path_for(&pong))?,
            );
            floor(&line, &orphan)?;
            stream(&job, &mut ping.reader(), &mut pong.writer())
        }
        Transport::Pipe => {
            let mut r = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
            let mut w = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
            floor(&line, &orphan)?;
            stream(&job, &mut r, &mut w)
        }
        Transport::Uds => {
            let mut w = UnixStream::connect(&sock).with_context(|| format!("connect {sock}"))?;
            let mut r = w.try_clone()?;
            floor(&line, &orphan)?;
            stream(&job, &mut r, &mut w)
        }
    }
}

/// Says [`READY`], then answers every value the parent stores with that
/// value plus one, until [`FLOOR_DONE`].
fn floor(line: &SpinLine, orphan: &impl Fn() -> bool) -> anyhow::Result<()> {
    line.store(READY);
    let mut last = READY;
    loop {
        let mut polls: u32 = 0;
        let v = loop {
            let v = line.load();
            if v != last {
                break v;
            }
            polls = polls.wrapping_add(1);
            if polls % 4096 == 0 && orphan() {
                bail!("bench peer: the parent went away during the floor");
            }
            spin_loop();
        };
        if v == FLOOR_DONE {
            return Ok(());
        }
        line.store(v + 1);
        last = v + 1;
    }
}

struct Shm<L: Link> {
    link: L,
    deadline: Instant,
}

impl<L: Link> Shm<L> {
    fn run(&mut self, job: &Job, loaned: bool) -> anyhow::Result<()> {
        match (job.mode, loaned) {
            (Mode::Latency, false) => self.echo(job, false),
            (Mode::Latency, true) => self.echo_loaned(job),
            (Mode::Paced, _) => self.echo(job, true),
            (Mode::Throughput, _) => self.sink(job),
        }
    }

    /// Copies each message out and sends it back; `paced`: stop at
    /// [`IDLE_CMD`] and report the idle CPU use instead.
    fn echo(&mut self, job: &Job, paced: bool) -> anyhow::Result<()> {
        let mut buf = vec![0u8; job.size];
        for _ in 0..job.warmup + job.count + u64::from(paced) {
            let n = self
                .link
                .recv_with(self.deadline, |msg| {
                    let n = msg.len();
                    msg.copy_to_slice(&mut buf[..n]);
                    n
                })
                .map_err(|e| anyhow!("bench peer: {e}"))?;
            if paced && seq_of(&buf[..n]) == IDLE_CMD {
                return self.idle(job);
            }
            self.link
                .send(&buf[..n], self.deadline)
                .map_err(|e| anyhow!("bench peer: {e}"))?;
        }
        Ok(())
    }

    /// Reads and writes only the 8-byte header of each message, in place.
    fn echo_loaned(&mut self, job: &Job) -> anyhow::Result<()> {
        for _ in 0..job.warmup + job.count {
            let seq = self
                .link
                .recv_with(self.deadline, seq_in)
                .map_err(|e| anyhow!("bench peer: {e}"))?;
            self.link
                .send_loaned(job.size, self.deadline, &mut |loan| {
                    if !loan.write_at(0, &seq.to_le_bytes()) {
                        bail!(
                            "a loaned slot of {} bytes has no room for the header",
                            loan.len()
                        );
                    }
                    Ok(())
                })
                .map_err(|e| anyhow!("bench peer: {e}"))?;
        }
        Ok(())
    }

    /// Waits [`IDLE`] for a message that does not come, then sends back
    /// (on-CPU ns, CPU ticks, wall ns) over that wait.
    fn idle(&mut self, job: &Job) -> anyhow::Result<()> {
        let (s0, t0) = cpu_time();
        let w0 = Instant::now();
        self.link
            .silent_for(IDLE)
            .map_err(|e| anyhow!("bench peer: {e}"))?;
        let wall = w0.elapsed();
        let (s1, t1) = cpu_time();
        let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => u64::MAX,
        };
        let mut msg = vec![0u8; job.size.max(24)];
        msg[..8].copy_from_slice(&delta(s0, s1).to_le_bytes());
        msg[8..16].copy_from_slice(&delta(t0, t1).to_le_bytes());
        let wall_ns = u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX);
        msg[16..24].copy_from_slice(&wall_ns.to_le_bytes());
        self.link
            .send(&msg[..job.size], self.deadline)
            .map_err(|e| anyhow!("bench peer: {e}"))
    }

    /// Folds every byte of `warmup` then `count` messages (each copied out
    /// of its slot into one reused buffer: the library hands out no slice
    /// of shared memory); after each round sends the fold back.
    fn sink(&mut self, job: &Job) -> anyhow::Result<()> {
        for round in [job.warmup, job.count] {
            let mut acc = 0u64;
            for _ in 0..round {
                // One pass: 4 KiB pieces copied out of the slot and folded.
                self.link
                    .recv_with(self.deadline, |msg| {
                        msg.for_each_chunk(|piece| acc ^= fold(piece))
                    })
                    .map_err(|e| anyhow!("bench peer: {e}"))?;
            }
            self.link
                .send(&black_box(acc).to_le_bytes(), self.deadline)
                .map_err(|e| anyhow!("bench peer: {e}"))?;
        }
        Ok(())
    }
}

/// Pipes and sockets: echo (latency) or fold every byte (throughput).
fn stream(job: &Job, r: &mut impl Read, w: &mut impl Write) -> anyhow::Result<()> {
    let mut buf = vec![0u8; job.size];
    match job.mode {
        Mode::Latency | Mode::Paced => {
            for _ in 0..job.warmup + job.count {
                r.read_exact(&mut buf)?;
                w.write_all(&buf)?;
            }
        }
        Mode::Throughput => {
            for round in [job.warmup, job.count] {
                let mut acc = 0u64;
                for _ in 0..round {
                    r.read_exact(&mut buf)?;
                    acc ^= fold(&buf);
                }
                w.write_all(&black_box(acc).to_le_bytes())?;
            }
        }
    }
    w.flush()?;
    Ok(())
}
