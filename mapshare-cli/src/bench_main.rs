//! `mapshare-bench`: the benchmark engine of `mapshare bench`, runnable on
//! its own until the CLI wires its `bench` subcommand.
//!
//! ```text
//! mapshare-bench [--sizes 64,4K,64K,1M] [--quick] [--json] [--only latency|throughput] [--reps N]
//! ```
//!
//! It re-executes itself as `mapshare-bench bench-peer ...` for the peer
//! process, exactly as `mapshare bench` does with `mapshare bench-peer ...`.

#![forbid(unsafe_code)]

mod bench;

use std::process::ExitCode;

use clap::Parser;

/// Latency and throughput of mapshare channels, pipes and Unix sockets
/// between two processes, against the hardware floor and memcpy.
#[derive(Debug, Parser)]
#[command(name = "mapshare-bench")]
struct Cli {
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = match argv.get(1).map(String::as_str) {
        Some(bench::PEER_ARG) => bench::peer(&argv[2..]),
        _ => bench::run(&Cli::parse().args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mapshare-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
