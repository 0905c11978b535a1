//! `mapshare-bridge [NAME...] [--channel-out NAME] [--channel-in NAME]
//! [--serve NAME] [--call NAME] (--listen ENDPOINT | --connect ENDPOINT)...`:
//! bridges pub/sub rings, channels and request/response services to the
//! other hosts' bridges over Zenoh until SIGINT, SIGTERM or SIGHUP.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use mapshare::Policy;
use mapshare_zenoh::{Bridge, BridgeOptions, BytesSpec, RingSpec};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Bridge mapshare pub/sub rings, channels and services to other hosts
/// over Zenoh.
///
/// A ring is bridged both ways (its one publisher may be on either host).
/// A channel or a service is bridged one way, said on each host: the host
/// of a channel's senders says --channel-out, the host of its receiver
/// --channel-in; the host of a service's server says --serve, the hosts of
/// its clients --call.
#[derive(Debug, Parser)]
#[command(name = "mapshare-bridge", version)]
struct Args {
    /// Pub/sub ring names (created here if they do not exist yet).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// A channel whose senders are on this host: what they send goes to
    /// its receiver on another host (this bridge is the receiver here).
    #[arg(long, value_name = "NAME")]
    channel_out: Vec<String>,
    /// A channel whose receiver is on this host: it receives what senders
    /// on another host send (this bridge is a sender here).
    #[arg(long, value_name = "NAME")]
    channel_in: Vec<String>,
    /// A service whose server is on this host: clients on other hosts are
    /// answered by it (this bridge is a client here).
    #[arg(long, value_name = "NAME")]
    serve: Vec<String>,
    /// A service whose clients are on this host: their requests go to the
    /// server on another host (this bridge is the server here).
    #[arg(long, value_name = "NAME")]
    call: Vec<String>,
    /// A Zenoh endpoint to listen on, such as tcp/127.0.0.1:7447.
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// A Zenoh endpoint to connect to (retried until it answers, and after
    /// the link drops).
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// Messages a ring holds (a channel: per sender; a service: requests
    /// in flight per client), if this creates it (default: rings: 256; channels:
    /// mapshare's default; services: 4, as `mapshare serve`).
    #[arg(long, value_name = "N")]
    capacity: Option<usize>,
    /// Largest message in bytes, if this creates the ring, channel or
    /// service (default: rings: 4096; channels: mapshare's default; services:
    /// 65536, as `mapshare serve`).
    #[arg(long, value_name = "BYTES")]
    max_message: Option<usize>,
    /// What a slow subscriber does, if this creates the ring.
    #[arg(long, value_enum, default_value_t = PolicyArg::Lossless)]
    policy: PolicyArg,
    /// Senders at once, if this creates a channel (default: mapshare's own).
    #[arg(long, value_name = "N")]
    senders: Option<usize>,
    /// Clients at once, if this creates a service (default: 8, as `mapshare serve`).
    #[arg(long, value_name = "N")]
    clients: Option<usize>,
    /// How long a --call bridge waits for the answer to one request, in
    /// seconds (default: a day). A lost link or a dead serving bridge ends the wait
    /// sooner; either way the clients waiting see the server gone.
    #[arg(long, value_name = "SECS")]
    call_timeout: Option<f64>,
    /// How long a remote end may be unreachable (its bridge killed, or the
    /// link lost) before the local ends see it gone, in seconds (default: 2): a
    /// shorter cut goes unseen by a ring's subscribers and a channel's
    /// receiver (a service's requests in flight fail at once).
    #[arg(long, value_name = "SECS")]
    grace: Option<f64>,
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
    let secs = |flag: &str, v: Option<f64>, zero: bool| match v {
        None => Ok(None),
        Some(s) if s.is_finite() && (s > 0.0 || (zero && s == 0.0)) && s <= 1e9 => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        Some(s) => Err(anyhow::anyhow!("{flag} {s}: give a number of seconds")),
    };
    let call_timeout = secs("--call-timeout", args.call_timeout, false)?;
    let grace = secs("--grace", args.grace, true)?;
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    let opts = BridgeOptions {
        names: args.names,
        channels_out: args.channel_out,
        channels_in: args.channel_in,
        serve: args.serve,
        call: args.call,
        listen: args.listen,
        connect: args.connect,
        ring: RingSpec {
            capacity: args.capacity.unwrap_or(256),
            max_message: args.max_message.unwrap_or(4096),
            policy: match args.policy {
                PolicyArg::Lossless => Policy::Lossless,
                PolicyArg::Overwrite => Policy::OverwriteOldest,
            },
        },
        channel: BytesSpec {
            capacity: args.capacity,
            max_message: args.max_message,
            peers: args.senders,
        },
        service: BytesSpec {
            capacity: Some(args.capacity.unwrap_or(4)),
            max_message: Some(args.max_message.unwrap_or(65536)),
            peers: Some(args.clients.unwrap_or(8)),
        },
        call_timeout,
        grace,
    };
    let mut bridge = Bridge::start(&opts)?;
    eprintln!(
        "mapshare-bridge: ready, origin {:016x}, bridging {}",
        bridge.origin(),
        opts.all_names()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // A signal stops the bridge (exit 0); a failed channel or service
    // task too, with exit status 1.
    let (tx, events) = std::sync::mpsc::channel::<Option<String>>();
    let t = tx.clone();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = t.send(None);
        }
    });
    if let Some(failures) = bridge.failures() {
        std::thread::spawn(move || {
            for f in failures {
                let _ = tx.send(Some(f));
            }
        });
    }
    let failure = events.recv().ok().flatten();
    bridge.stop();
    match failure {
        None => Ok(()),
        Some(f) => anyhow::bail!("{f}; stopped"),
    }
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
