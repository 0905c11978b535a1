//! `mapshare bench`: mapshare channels against pipes, Unix sockets and the
//! hardware floor, between two real processes, in one run.
//!
//! The parent creates every resource (segments named `bench-<pid>-<n>-*`, a
//! socket path in the temp directory), re-executes itself as the peer
//! (`<exe> bench-peer ...`, see [`PEER_ARG`]) and removes everything again,
//! killing the peer on any error. Every contender runs in its own peer
//! process, and each peer first ping-pongs a number on one shared cache line
//! ([`mapshare::floor::SpinLine`]) for a fraction of a second, so the floor
//! is measured next to every contender, on the same placement of the two
//! processes on the CPUs.
//!
//! Wiring: the CLI's `bench` subcommand calls [`run`]; a hidden subcommand
//! named exactly [`PEER_ARG`] taking every remaining argument verbatim calls
//! [`peer`].

mod child;
mod jobs;
mod parent;
mod report;
mod stats;

use std::time::Duration;

/// The argument the parent puts first when it re-executes itself as the
/// peer. The binary calling [`run`] must route `<exe> bench-peer ARGS...` to
/// [`peer`] with `ARGS`.
pub(crate) const PEER_ARG: &str = "bench-peer";

/// Which half of the benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Only {
    /// Ping-pong latency only.
    Latency,
    /// One-way throughput only.
    Throughput,
}

/// `mapshare bench`: latency and throughput of mapshare channels, pipes and
/// Unix sockets between two processes, as ratios to the hardware floor and
/// to memcpy.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BenchArgs {
    /// Message sizes in bytes, comma-separated (suffixes K and M allowed; at least 8).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_size,
        default_value = "64,4096,65536,1048576"
    )]
    pub(crate) sizes: Vec<usize>,
    /// Few iterations and one repetition: a smoke test that ends in seconds.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print one JSON object on stdout instead of the tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// Run only latency or only throughput.
    #[arg(long, value_enum)]
    pub(crate) only: Option<Only>,
    /// Repetitions of every contender; the best is reported (default 3, 1 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub(crate) reps: Option<u32>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1usize << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        _ => (s, 1),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 64, 4K, 1M)"))?;
    let n = n
        .checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if !(8..=mapshare::MAX_MESSAGE).contains(&n) {
        return Err(format!(
            "`{s}`: sizes run from 8 bytes to {} bytes",
            mapshare::MAX_MESSAGE
        ));
    }
    Ok(n)
}

/// How long the peer spins before it sleeps in spin-then-block mode.
pub(super) const STB_SPIN: Duration = Duration::from_micros(50);
/// Interval between messages in the paced spin-then-block test.
pub(super) const PACED_PERIOD: Duration = Duration::from_micros(20);
/// How long the idle receiver is watched for CPU use.
pub(super) const IDLE: Duration = Duration::from_secs(1);

/// Runs the benchmark: progress on stderr, the tables (or `--json`) on stdout.
pub(crate) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let cfg = jobs::Config {
        sizes,
        quick: args.quick,
        reps: args.reps.unwrap_or(if args.quick { 1 } else { 3 }),
        latency: args.only != Some(Only::Throughput),
        throughput: args.only != Some(Only::Latency),
    };
    let load = stats::loadavg();
    let results = parent::run_all(&cfg)?;
    let machine = stats::machine(load);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report::json(&cfg, &machine, &results))?
        );
    } else {
        print!("{}", report::human(&cfg, &machine, &results));
    }
    Ok(())
}

/// The peer role, run in the re-executed child: `args` are what follows
/// [`PEER_ARG`].
pub(crate) fn peer(args: &[String]) -> anyhow::Result<()> {
    child::run(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(parse_size("4").is_err());
        assert!(parse_size("x").is_err());
    }
}
