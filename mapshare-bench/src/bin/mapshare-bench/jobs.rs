//! What is measured: the run's plan, and one job as both sides see it (the
//! parent encodes it into the peer's arguments, the peer decodes it).

use std::time::Duration;

use anyhow::{bail, Context};
use mapshare::options::{HasCapacity, HasMaxMessage};
use mapshare::{Options, WaitStrategy};

use super::STB_SPIN;

/// The run as the user asked for it.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) sizes: Vec<usize>,
    pub(super) quick: bool,
    pub(super) reps: u32,
    pub(super) latency: bool,
    pub(super) throughput: bool,
}

impl Config {
    /// How long the floor is ping-ponged before every contender.
    pub(super) fn floor_time(&self) -> Duration {
        Duration::from_millis(if self.quick { 30 } else { 200 })
    }
}

/// How a mapshare handle waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    Spin,
    Block,
    SpinThenBlock,
}

impl Wait {
    pub(super) fn strategy(self) -> WaitStrategy {
        match self {
            Wait::Spin => WaitStrategy::Spin,
            Wait::Block => WaitStrategy::Block,
            Wait::SpinThenBlock => WaitStrategy::SpinThenBlock { spin: STB_SPIN },
        }
    }
}

/// What carries the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// A mapshare channel each way (`topic`: a lossless pub/sub ring each
    /// way, one subscriber on each); `loaned`: zero-copy (write and read
    /// only an 8-byte header in place) instead of copying the whole message.
    Shm {
        wait: Wait,
        loaned: bool,
        topic: bool,
    },
    /// Two byte rings in shared memory moved by plain `memcpy`, spinning
    /// (`mapshare_bench::floor::ByteRing`): the copy floor.
    Raw,
    /// The peer's stdin and stdout.
    Pipe,
    /// A connected `UnixStream`.
    Uds,
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Ping-pong round trips.
    Latency,
    /// One message every [`super::PACED_PERIOD`], then an idle receiver's CPU use.
    Paced,
    /// The parent streams, the peer reads every byte.
    Throughput,
}

/// One contender, one repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Job {
    pub(super) transport: Transport,
    pub(super) mode: Mode,
    pub(super) size: usize,
    /// Round trips (latency) or messages (throughput) measured.
    pub(super) count: u64,
    /// Round trips or messages before measuring.
    pub(super) warmup: u64,
}

impl Job {
    /// The contender's name in tables and JSON.
    pub(super) fn name(&self) -> &'static str {
        match (self.transport, self.mode) {
            (_, Mode::Paced) => "mapshare spin-then-block, 1 msg / 20 us",
            (
                Transport::Shm {
                    wait,
                    loaned,
                    topic: false,
                },
                _,
            ) => match (wait, loaned) {
                (Wait::Spin, false) => "mapshare polling",
                (Wait::Spin, true) => "mapshare polling, loaned",
                (Wait::Block, false) => "mapshare blocking",
                (Wait::Block, true) => "mapshare blocking, loaned",
                (Wait::SpinThenBlock, false) => "mapshare spin-then-block",
                (Wait::SpinThenBlock, true) => "mapshare spin-then-block, loaned",
            },
            (
                Transport::Shm {
                    wait,
                    loaned,
                    topic: true,
                },
                _,
            ) => match (wait, loaned) {
                (Wait::Spin, false) => "pub/sub polling",
                (Wait::Spin, true) => "pub/sub polling, loaned",
                (Wait::Block, false) => "pub/sub blocking",
                (Wait::Block, true) => "pub/sub blocking, loaned",
                (Wait::SpinThenBlock, false) => "pub/sub spin-then-block",
                (Wait::SpinThenBlock, true) => "pub/sub spin-then-block, loaned",
            },
            (Transport::Raw, _) => "raw shm memcpy (floor)",
            (Transport::Pipe, _) => "pipe",
            (Transport::Uds, _) => "unix socket",
        }
    }

    /// The peer's arguments after [`super::PEER_ARG`], given the names.
    pub(super) fn encode(&self, line: &str, ping: &str, pong: &str, sock: &str) -> Vec<String> {
        let transport = match self.transport {
            Transport::Shm {
                wait,
                loaned,
                topic,
            } => format!(
                "{}.{}.{}",
                if topic { "ps" } else { "shm" },
                match wait {
                    Wait::Spin => "spin",
                    Wait::Block => "block",
                    Wait::SpinThenBlock => "stb",
                },
                if loaned { "loan" } else { "copy" }
            ),
            Transport::Raw => "raw".into(),
            Transport::Pipe => "pipe".into(),
            Transport::Uds => "uds".into(),
        };
        let mode = match self.mode {
            Mode::Latency => "lat",
            Mode::Paced => "paced",
            Mode::Throughput => "tput",
        };
        vec![
            mode.into(),
            transport,
            self.size.to_string(),
            self.count.to_string(),
            self.warmup.to_string(),
            line.into(),
            ping.into(),
            pong.into(),
            sock.into(),
        ]
    }

    /// The inverse of [`Job::encode`]: the job and the four names.
    pub(super) fn decode(args: &[String]) -> anyhow::Result<(Job, [String; 4])> {
        let [mode, transport, size, count, warmup, line, ping, pong, sock] = args else {
            bail!("bench peer: expected 9 arguments, got {}", args.len());
        };
        let mode = match mode.as_str() {
            "lat" => Mode::Latency,
            "paced" => Mode::Paced,
            "tput" => Mode::Throughput,
            m => bail!("bench peer: unknown mode {m}"),
        };
        let transport = match transport.split('.').collect::<Vec<_>>()[..] {
            ["raw"] => Transport::Raw,
            ["pipe"] => Transport::Pipe,
            ["uds"] => Transport::Uds,
            [kind @ ("shm" | "ps"), wait, payload] => Transport::Shm {
                wait: match wait {
                    "spin" => Wait::Spin,
                    "block" => Wait::Block,
                    "stb" => Wait::SpinThenBlock,
                    w => bail!("bench peer: unknown wait {w}"),
                },
                loaned: payload == "loan",
                topic: kind == "ps",
            },
            _ => bail!("bench peer: unknown transport {transport}"),
        };
        let job = Job {
            transport,
            mode,
            size: size.parse().context("bench peer: size")?,
            count: count.parse().context("bench peer: count")?,
            warmup: warmup.parse().context("bench peer: warmup")?,
        };
        Ok((
            job,
            [line.clone(), ping.clone(), pong.clone(), sock.clone()],
        ))
    }

    /// Options of either end (`K`: `Sender` or `Receiver`, `Publisher` or
    /// `Subscriber`) of the ping (parent to peer) or pong channel or ring.
    pub(super) fn channel<K: HasCapacity + HasMaxMessage>(&self, name: &str) -> Options<K> {
        let Transport::Shm { wait, .. } = self.transport else {
            unreachable!("channel options of a non-mapshare job") // callers match on Shm first
        };
        Options::new(name)
            .capacity(capacity(self.mode, self.size))
            .max_message(self.size)
            .wait_strategy(wait.strategy())
    }
}

/// Slots per channel: a few for ping-pong; for streaming about 2 MiB of
/// ring, so that it stays in the shared cache.
fn capacity(mode: Mode, size: usize) -> usize {
    match mode {
        Mode::Latency | Mode::Paced => 4,
        Mode::Throughput => ((2 << 20) / (size + 16)).clamp(4, 1024),
    }
}

/// Round trips for a latency job of `size` bytes.
fn round_trips(size: usize, quick: bool) -> u64 {
    let n: u64 = match size {
        0..=1024 => 20_000,
        1025..=16384 => 10_000,
        16385..=262_144 => 2_000,
        _ => 300,
    };
    if quick {
        (n / 20).max(20)
    } else {
        n
    }
}

/// Messages for a throughput job: about 1 GiB through a channel and 256 MiB
/// through the kernel (which is 5 to 50 times slower), within bounds.
pub(super) fn messages(t: Transport, size: usize, quick: bool) -> u64 {
    let (budget, lo, hi) = match t {
        Transport::Shm { .. } | Transport::Raw => (1u64 << 30, 1000, 4_000_000),
        Transport::Pipe | Transport::Uds => (1 << 28, 500, 300_000),
    };
    let n = (budget / size as u64).clamp(lo, hi);
    if quick {
        (n / 32).max(50)
    } else {
        n
    }
}

/// Every job of one repetition, in run order.
pub(super) fn plan(cfg: &Config) -> Vec<Job> {
    let shm = |wait, loaned| Transport::Shm {
        wait,
        loaned,
        topic: false,
    };
    let ps = |wait, loaned| Transport::Shm {
        wait,
        loaned,
        topic: true,
    };
    let mut out = Vec::new();
    if cfg.latency {
        for &size in &cfg.sizes {
            let count = round_trips(size, cfg.quick);
            for transport in [
                shm(Wait::Spin, false),
                shm(Wait::Spin, true),
                shm(Wait::Block, false),
                ps(Wait::Spin, false),
                ps(Wait::Spin, true),
                ps(Wait::Block, false),
                Transport::Raw,
                Transport::Pipe,
                Transport::Uds,
            ] {
                out.push(Job {
                    transport,
                    mode: Mode::Latency,
                    size,
                    count,
                    warmup: (count / 10).max(10),
                });
            }
        }
        let count = if cfg.quick { 1000 } else { 10_000 };
        out.push(Job {
            transport: shm(Wait::SpinThenBlock, false),
            mode: Mode::Paced,
            size: 64,
            count,
            warmup: count / 10,
        });
    }
    if cfg.throughput {
        for &size in &cfg.sizes {
            for transport in [
                shm(Wait::Spin, false),
                shm(Wait::Block, false),
                ps(Wait::Spin, false),
                ps(Wait::Block, false),
                Transport::Raw,
                Transport::Pipe,
                Transport::Uds,
            ] {
                let count = messages(transport, size, cfg.quick);
                out.push(Job {
                    transport,
                    mode: Mode::Throughput,
                    size,
                    count,
                    warmup: (count / 10).max(10),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_peer_arguments() {
        let cfg = Config {
            sizes: vec![64, 1 << 20],
            quick: false,
            reps: 1,
            latency: true,
            throughput: true,
        };
        for job in plan(&cfg) {
            let args = job.encode("l", "a", "b", "s");
            let (back, names) = Job::decode(&args).unwrap();
            assert_eq!(back, job);
            assert_eq!(names, ["l", "a", "b", "s"].map(String::from));
        }
    }
}
