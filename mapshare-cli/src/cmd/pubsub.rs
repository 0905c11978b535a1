//! `mapshare pub NAME` and `mapshare sub NAME`: publish/subscribe from
//! shell pipelines, one message per line (or per NUL-terminated record
//! with `--null`, byte-exact).
//!
//! Either side may start first: both create the ring if it does not exist
//! yet (lossless by default), and a subscriber that joined before the
//! publisher receives everything that publisher publishes, then exits 0
//! once it is gone and everything is read.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mapshare::{Options, Policy, Publisher, RecvTimeoutError, SendTimeoutError, Subscriber};

use crate::cli::{PolicyArg, PubArgs, RingArgs, SubArgs};
use crate::exit::{deadline, flat, open_error, timed_out};
use crate::signals::{self, wait_sliced, Waited, SLICE};

/// The options of a ring this process may create: the same from `pub`
/// and `sub`, so whichever starts first makes the ring the other expects.
fn ring_options<K>(mut o: Options<K>, ring: &RingArgs) -> Options<K>
where
    K: mapshare::options::HasCapacity
        + mapshare::options::HasMaxMessage
        + mapshare::options::HasPolicy,
{
    o = o
        .capacity(ring.capacity)
        .max_message(ring.max_message)
        .policy(match ring.policy {
            PolicyArg::Lossless => Policy::Lossless,
            PolicyArg::Overwrite => Policy::OverwriteOldest,
        });
    o
}

/// One record read from stdin, or why reading stopped.
enum Record {
    Data(Vec<u8>),
    /// Longer than the ring's largest message: refused before reading on.
    TooLong,
    Failed(io::Error),
}

/// Reads records ending in `delim` (or at the end of input) into `buf`,
/// never holding more than `limit` bytes of one: `Ok(false)` at the end of
/// the input, `Err(TooLong)` as soon as a record passes `limit`.
fn read_record(
    input: &mut impl BufRead,
    delim: u8,
    limit: usize,
    buf: &mut Vec<u8>,
) -> std::result::Result<bool, Record> {
    buf.clear();
    loop {
        let avail = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Record::Failed(e)),
        };
        if avail.is_empty() {
            return Ok(!buf.is_empty());
        }
        let (take, done) = match avail.iter().position(|&b| b == delim) {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > limit {
            return Err(Record::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        input.consume(take + usize::from(done));
        if done {
            return Ok(true);
        }
    }
}

/// Reads stdin on a thread of its own (a read cannot be interrupted by our
/// signal thread), handing records over through a small queue.
fn spawn_reader(delim: u8, limit: usize, strip_cr: bool) -> mpsc::Receiver<Record> {
    let (tx, rx) = mpsc::sync_channel(16);
    std::thread::spawn(move || {
        let mut input = io::stdin().lock();
        // One more byte in line mode: a `\r` before the newline is stripped.
        let read_limit = limit + usize::from(strip_cr);
        loop {
            let mut buf = Vec::new();
            let rec = match read_record(&mut input, delim, read_limit, &mut buf) {
                Ok(false) => return,
                Ok(true) => {
                    if strip_cr && buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                    if buf.len() > limit {
                        Record::TooLong
                    } else {
                        Record::Data(buf)
                    }
                }
                Err(r) => r,
            };
            let last = !matches!(rec, Record::Data(_));
            if tx.send(rec).is_err() || last {
                return;
            }
        }
    });
    rx
}

/// Publishes each line of stdin (without its newline and a `\r` before
/// it), or each NUL-terminated record with `--null`. Exits 0 at the end of
/// the input; subscribers then see the publisher gone once they have read
/// everything.
pub(crate) fn publish(args: &PubArgs) -> Result<ExitCode> {
    let name = &args.name;
    let mut publisher = ring_options(Publisher::options(name), &args.ring)
        .open_or_create()
        .map_err(open_error)?;
    if args.wait_subscribers > 0 {
        let until = deadline(args.timeout);
        while publisher.subscriber_count() < args.wait_subscribers {
            signals::check()?;
            if until.is_some_and(|d| Instant::now() >= d) {
                return Err(timed_out(format!(
                    "{name}: timed out waiting for {} subscriber(s)",
                    args.wait_subscribers
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let (delim, what) = if args.null {
        (0, "record")
    } else {
        (b'\n', "line")
    };
    let max = publisher.max_message();
    let records = spawn_reader(delim, max, !args.null);
    let mut n = 0u64;
    loop {
        signals::check()?;
        let rec = match records.recv_timeout(SLICE) {
            Ok(rec) => rec,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break, // end of input
        };
        n += 1;
        let msg = match rec {
            Record::Data(msg) => msg,
            Record::TooLong => {
                return Err(flat(format!(
                    "{name}: {what} {n} is longer than the ring's largest message, {max} bytes \
                     (--max-message when the ring is created)"
                )))
            }
            Record::Failed(e) => return Err(flat(format!("reading standard input: {e}"))),
        };
        let sent = wait_sliced(deadline(args.timeout), |d| {
            match publisher.publish_deadline(&msg, d) {
                Err(SendTimeoutError::Timeout(_)) => None,
                other => Some(other),
            }
        })?;
        match sent {
            Waited::Done(Ok(())) => {}
            Waited::TimedOut => {
                return Err(timed_out(format!(
                    "{name}: timed out publishing {what} {n}"
                )))
            }
            Waited::Done(Err(e)) => return Err(flat(format!("{name}: {what} {n}: {e}"))),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Joins the ring (creating it if no publisher has yet), then prints every
/// message as it arrives, followed by a newline (a NUL with `--null`).
/// Exits 0 when the publisher is gone and every message has been read, or
/// after `--count` messages.
pub(crate) fn subscribe(args: &SubArgs) -> Result<ExitCode> {
    let name = &args.name;
    let mut sub = ring_options(Subscriber::options(name), &args.ring)
        .history(args.history)
        .open_or_create()
        .map_err(open_error)?;
    let end: &[u8] = if args.null { b"\0" } else { b"\n" };
    let mut out = io::stdout().lock();
    let mut buf = Vec::new();
    let mut got = 0u64;
    // The timeout counts from the last message (or the start).
    let mut until = deadline(args.timeout);
    while args.count.is_none_or(|c| got < c) {
        let r = wait_sliced(until, |d| match sub.recv_into_deadline(&mut buf, d) {
            Err(RecvTimeoutError::Timeout) => None,
            other => Some(other),
        })?;
        match r {
            Waited::Done(Ok(_)) => {
                got += 1;
                until = deadline(args.timeout);
                out.write_all(&buf)
                    .and_then(|()| out.write_all(end))
                    .context("writing to stdout")?;
                // Flush per message: `sub` is used in pipelines, live.
                out.flush().context("writing to stdout")?;
            }
            Waited::Done(Err(RecvTimeoutError::Lagged(n))) => {
                eprintln!("mapshare: {name}: missed {n} message(s)")
            }
            Waited::Done(Err(RecvTimeoutError::Disconnected)) => break,
            Waited::TimedOut => {
                return Err(timed_out(format!(
                    "{name}: timed out waiting for a message"
                )))
            }
            Waited::Done(Err(e)) => eprintln!("mapshare: {name}: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8], delim: u8, limit: usize) -> Vec<std::result::Result<Vec<u8>, ()>> {
        let mut r = io::BufReader::with_capacity(3, input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            match read_record(&mut r, delim, limit, &mut buf) {
                Ok(true) => out.push(Ok(buf.clone())),
                Ok(false) => return out,
                Err(_) => {
                    out.push(Err(()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn records_are_split_exactly_and_bounded() {
        assert_eq!(
            records(b"ab\ncd\n\nlast", b'\n', 4),
            vec![
                Ok(b"ab".to_vec()),
                Ok(b"cd".to_vec()),
                Ok(vec![]),
                Ok(b"last".to_vec())
            ]
        );
        assert_eq!(
            records(b"a\0b\nc\0", 0, 8),
            vec![Ok(b"a".to_vec()), Ok(b"b\nc".to_vec())]
        );
        // Refused as soon as it passes the limit, whatever follows.
        assert_eq!(
            records(b"ok\ntoolong\nnever", b'\n', 4),
            vec![Ok(b"ok".to_vec()), Err(())]
        );
        assert_eq!(records(b"", b'\n', 4), vec![]);
    }
}
