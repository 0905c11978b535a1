//! `mapshare-bridge NAME... (--listen ENDPOINT | --connect ENDPOINT)...`:
//! bridges the pub/sub rings NAME... to the other hosts' bridges over Zenoh
//! until SIGINT, SIGTERM or SIGHUP.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use mapshare::Policy;
use mapshare_zenoh::{Bridge, BridgeOptions, RingSpec};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Bridge mapshare pub/sub rings to other hosts over Zenoh.
#[derive(Debug, Parser)]
#[command(name = "mapshare-bridge", version)]
struct Args {
    /// Pub/sub ring names (created here if they do not exist yet).
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// A Zenoh endpoint to listen on, such as tcp/127.0.0.1:7447.
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// A Zenoh endpoint to connect to (retried until it answers, and after
    /// the link drops).
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// Messages a ring holds, if this creates it.
    #[arg(long, value_name = "N", default_value_t = 256)]
    capacity: usize,
    /// Largest message in bytes, if this creates the ring.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    max_message: usize,
    /// What a slow subscriber does, if this creates the ring.
    #[arg(long, value_enum, default_value_t = PolicyArg::Lossless)]
    policy: PolicyArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PolicyArg {
    Lossless,
    Overwrite,
}

fn run(args: Args) -> Result<()> {
    if args.listen.is_empty() && args.connect.is_empty() {
        anyhow::bail!("give at least one --listen or --connect endpoint");
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let opts = BridgeOptions {
        names: args.names,
        listen: args.listen,
        connect: args.connect,
        ring: RingSpec {
            capacity: args.capacity,
            max_message: args.max_message,
            policy: match args.policy {
                PolicyArg::Lossless => Policy::Lossless,
                PolicyArg::Overwrite => Policy::OverwriteOldest,
            },
        },
    };
    let bridge = Bridge::start(&opts)?;
    eprintln!(
        "mapshare-bridge: ready, origin {:016x}, rings {}",
        bridge.origin(),
        opts.names.join(" ")
    );
    let _ = signals.forever().next();
    bridge.stop();
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mapshare-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
