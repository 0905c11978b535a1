//! `mapshare pub NAME` and `mapshare sub NAME`: publish/subscribe from
//! shell pipelines, one message per line.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mapshare::{Policy, Publisher, RecvTimeoutError, SegmentError, SendTimeoutError, Subscriber};

use crate::cli::{PolicyArg, PubArgs, SubArgs};
use crate::exit::{deadline, flat, timed_out};

/// Publishes each line of stdin (without its newline). Exits 0 at the end
/// of the input; subscribers then see the publisher gone once they have
/// read everything.
pub(crate) fn publish(args: &PubArgs) -> Result<ExitCode> {
    let name = &args.name;
    let policy = match args.policy {
        PolicyArg::Lossless => Policy::Lossless,
        PolicyArg::Overwrite => Policy::OverwriteOldest,
    };
    let mut publisher = Publisher::options(name)
        .capacity(args.capacity)
        .max_message(args.max_message)
        .policy(policy)
        .open_or_create()
        .map_err(flat)?;
    if args.wait_subscribers > 0 {
        let until = deadline(args.timeout);
        while publisher.subscriber_count() < args.wait_subscribers {
            if until.is_some_and(|d| Instant::now() >= d) {
                return Err(timed_out(format!(
                    "{name}: timed out waiting for {} subscriber(s)",
                    args.wait_subscribers
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let stdin = io::stdin().lock();
    for (n, line) in stdin.split(b'\n').enumerate() {
        let mut line = line.context("reading standard input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let sent = match deadline(args.timeout) {
            Some(d) => publisher.publish_deadline(&line, d),
            None => publisher.publish(&line).map_err(SendTimeoutError::from),
        };
        match sent {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => {
                return Err(timed_out(format!(
                    "{name}: timed out publishing line {}",
                    n + 1
                )))
            }
            Err(e) => return Err(flat(format!("{name}: line {}: {e}", n + 1))),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for the ring to exist, then prints every message as it arrives,
/// followed by a newline. Exits 0 when the publisher is gone and every
/// message has been read, or after `--count` messages.
pub(crate) fn subscribe(args: &SubArgs) -> Result<ExitCode> {
    let name = &args.name;
    let started = Instant::now();
    let mut sub = loop {
        match Subscriber::open(name) {
            Ok(s) => break s,
            Err(SegmentError::NotFound(_)) => {
                if args.timeout.is_some_and(|t| started.elapsed() >= t) {
                    return Err(timed_out(format!(
                        "{name}: timed out waiting for a publisher"
                    )));
                }
                // No futex to sleep on before the segment exists: poll.
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(flat(e)),
        }
    };
    let mut out = io::stdout().lock();
    let mut buf = Vec::new();
    let mut got = 0u64;
    while args.count.is_none_or(|c| got < c) {
        let r = match deadline(args.timeout) {
            Some(d) => sub.recv_into_deadline(&mut buf, d),
            None => sub.recv_into(&mut buf).map_err(RecvTimeoutError::from),
        };
        match r {
            Ok(_) => {
                got += 1;
                out.write_all(&buf)
                    .and_then(|()| out.write_all(b"\n"))
                    .context("writing to stdout")?;
                // Flush per message: `sub` is used in pipelines, live.
                out.flush().context("writing to stdout")?;
            }
            Err(RecvTimeoutError::Lagged(n)) => {
                eprintln!("mapshare: {name}: missed {n} message(s)")
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                return Err(timed_out(format!(
                    "{name}: timed out waiting for a message"
                )))
            }
            Err(e) => eprintln!("mapshare: {name}: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
