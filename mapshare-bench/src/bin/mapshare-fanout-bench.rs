//! `mapshare-fanout-bench`: one lossless publisher, 1, 2 and 4 subscriber
//! processes, every message read in full, per wait strategy: the cost per
//! published message (issue 12: a spinning publisher or subscriber must
//! not collapse when the machine has fewer cores than spinners).
//!
//! ```text
//! cargo run --release -p mapshare-bench --bin mapshare-fanout-bench -- [--size BYTES] [--messages N]
//! ```

#![forbid(unsafe_code)]

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use mapshare::{Options, Policy, Publisher, Subscriber, WaitStrategy};
use mapshare_bench::stats::cpu_model;

const PEER: &str = "fanout-peer";

/// Publish/subscribe fan-out between processes, per wait strategy.
#[derive(Debug, Parser)]
#[command(name = "mapshare-fanout-bench")]
struct Args {
    /// Message size in bytes.
    #[arg(long, default_value_t = 65536)]
    size: usize,
    /// Messages per run.
    #[arg(long, default_value_t = 5000)]
    messages: u32,
}

fn strategy(s: &str) -> WaitStrategy {
    match s {
        "spin" => WaitStrategy::Spin,
        "block" => WaitStrategy::Block,
        _ => WaitStrategy::default(),
    }
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(PEER) {
        let [_, _, name, how] = &argv[..] else {
            bail!("peer arguments: {argv:?}");
        };
        let mut sub: Subscriber = Options::new(name).wait_strategy(strategy(how)).open()?;
        println!("ready");
        let mut buf = Vec::new();
        // Every message, copied out in full, until the publisher leaves.
        while sub
            .recv_into_timeout(&mut buf, Duration::from_secs(30))
            .is_ok()
        {}
        return Ok(());
    }
    let args = Args::parse();
    println!(
        "mapshare-fanout-bench: {}, {} CPUs; {} messages of {} bytes, lossless ring of 64",
        cpu_model().unwrap_or_else(|| "unknown CPU".into()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.messages,
        args.size
    );
    for how in ["spin", "spin-then-block", "block"] {
        for subs in [1usize, 2, 4] {
            let name = format!("fanout-{}-{how}-{subs}", std::process::id());
            let mut publisher: Publisher = Options::new(&name)
                .capacity(64)
                .max_message(args.size)
                .policy(Policy::Lossless)
                .wait_strategy(strategy(how))
                .create()?;
            let mut kids = Vec::new();
            for _ in 0..subs {
                let mut c = Command::new(std::env::current_exe()?)
                    .args([PEER, &name, how])
                    .stdout(Stdio::piped())
                    .spawn()
                    .context("spawning a subscriber")?;
                let mut line = String::new();
                std::io::BufReader::new(c.stdout.as_mut().expect("piped")).read_line(&mut line)?;
                kids.push(c);
            }
            while publisher.subscriber_count() < subs {
                std::thread::sleep(Duration::from_millis(1));
            }
            let msg = vec![7u8; args.size];
            let t = Instant::now();
            for _ in 0..args.messages {
                publisher
                    .publish(&msg)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            let per = t.elapsed() / args.messages;
            drop(publisher);
            for k in &mut kids {
                k.wait()?;
            }
            println!(
                "  {how:<16} {subs} subscriber(s): {:>9.2} µs per message",
                per.as_secs_f64() * 1e6
            );
        }
    }
    Ok(())
}
