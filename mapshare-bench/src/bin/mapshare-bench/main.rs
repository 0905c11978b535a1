//! `mapshare-bench`: mapshare channels against pipes, Unix sockets and the
//! hardware floor, between two real processes, in one run.
//!
//! ```text
//! cargo run --release -p mapshare-bench --bin mapshare-bench -- [--quick] [--json] [--sizes 64,4K] [--only latency|throughput] [--reps N]
//! ```
//!
//! The parent creates every resource (segments named `bench-<pid>-<n>-*`, a
//! floor line `/dev/shm/mapshare-bench.<pid>-<n>.floor`, a socket path in
//! the temp directory), re-executes itself as the peer (`<exe> bench-peer
//! ...`, see [`PEER_ARG`]) and removes everything again, killing the peer
//! on any error. Every contender runs in its own peer process, and each
//! peer first ping-pongs a number on one shared cache line
//! ([`mapshare_bench::floor::SpinLine`]) for a fraction of a second, so the
//! floor is measured next to every contender, on the same placement of the
//! two processes on the CPUs.
//!
//! Errors are one line on stderr, `mapshare-bench: <what>: <why>`, exit
//! status 1 (2 for a usage error).

#![forbid(unsafe_code)]

mod child;
mod jobs;
mod link;
mod measure;
mod parent;
mod report;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The subcommand the parent puts first when it re-executes itself as the
/// peer: `<exe> bench-peer ARGS...` runs [`child::run`] with `ARGS`.
const PEER_ARG: &str = "bench-peer";

/// Measure mapshare channels, pipes and Unix sockets between two processes,
/// against the hardware floor and memcpy.
#[derive(Debug, Parser)]
#[command(
    name = "mapshare-bench",
    version,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
    /// Internal: the peer.
    #[command(subcommand)]
    peer: Option<Peer>,
}

/// The hidden peer role.
#[derive(Debug, Subcommand)]
enum Peer {
    /// Internal: the peer process (the parent re-runs this binary).
    #[command(name = PEER_ARG, hide = true)]
    BenchPeer {
        /// Passed verbatim to the peer.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Which half of the benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    /// Ping-pong latency only.
    Latency,
    /// One-way throughput only.
    Throughput,
}

/// What to measure: latency and throughput of mapshare channels, pipes and
/// Unix sockets between two processes, as ratios to the hardware floor and
/// to memcpy.
#[derive(Debug, Clone, clap::Args)]
struct BenchArgs {
    /// Message sizes in bytes, comma-separated (suffixes K and M allowed; at least 8).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_size,
        default_value = "64,4096,65536,1048576"
    )]
    sizes: Vec<usize>,
    /// Few iterations and one repetition: a smoke test that ends in seconds.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object on stdout instead of the tables.
    #[arg(long)]
    json: bool,
    /// Run only latency or only throughput.
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Repetitions of every contender; the best is reported (default 3, 1 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    reps: Option<u32>,
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
const STB_SPIN: Duration = Duration::from_micros(50);
/// Interval between messages in the paced spin-then-block test.
const PACED_PERIOD: Duration = Duration::from_micros(20);
/// How long the idle receiver is watched for CPU use.
const IDLE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = match &cli.peer {
        Some(Peer::BenchPeer { args }) => child::run(args),
        None => run(&cli.bench),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` joins the context chain with ": ", on one line.
            let text = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("mapshare-bench: {text}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark: progress on stderr, the tables (or `--json`) on stdout.
fn run(args: &BenchArgs) -> anyhow::Result<()> {
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
    let load = measure::loadavg();
    let results = parent::run_all(&cfg)?;
    let machine = measure::machine(load);
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn peer_arguments_reach_the_peer_verbatim() {
        let cli = Cli::try_parse_from(["mapshare-bench", PEER_ARG, "lat", "--x", "shm.spin.copy"])
            .unwrap();
        let Some(Peer::BenchPeer { args }) = cli.peer else {
            panic!("not the peer: {cli:?}");
        };
        assert_eq!(args, ["lat", "--x", "shm.spin.copy"]);
        let cli = Cli::try_parse_from(["mapshare-bench", "--quick", "--only", "latency"]).unwrap();
        assert!(cli.peer.is_none() && cli.bench.quick);
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert!(parse_size("4").is_err());
        assert!(parse_size("x").is_err());
    }
}
