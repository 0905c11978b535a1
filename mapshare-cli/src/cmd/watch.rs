//! `--watch`: a view redrawn every interval until a signal (or `--count`
//! refreshes), and the rates of the message counters it shows.

use std::collections::HashMap;
use std::hash::Hash;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use crate::cli::{Format, WatchArgs};
use crate::output::print;
use crate::signals;

/// Clears a terminal: cursor home, then erase the screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Prints `frame()` every `args.interval`: in text, redrawn in place on a
/// terminal, else each refresh followed by a blank line; in JSON, one line
/// each (the frame is that line). Ends after `args.count` refreshes, or
/// with exit status 128 + the signal when one is caught (sleeps run in
/// slices of [`signals::SLICE`], so that is prompt).
pub(crate) fn run(
    args: &WatchArgs,
    format: Format,
    mut frame: impl FnMut() -> Result<String>,
) -> Result<ExitCode> {
    let redraw = format == Format::Text && std::io::stdout().is_terminal();
    let mut shown = 0u64;
    let mut next = Instant::now();
    loop {
        signals::check()?;
        let body = frame()?;
        let text = match format {
            Format::Json => body,
            Format::Text if redraw => format!("{CLEAR}{body}"),
            Format::Text => format!("{body}\n"),
        };
        print(&text)?;
        shown += 1;
        if args.count.is_some_and(|n| shown >= n) {
            return Ok(ExitCode::SUCCESS);
        }
        // The next refresh is due one interval after this one was; after a
        // slow refresh (later than that), one interval from now.
        next = (next + args.interval).max(Instant::now());
        loop {
            signals::check()?;
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(signals::SLICE));
        }
    }
}

/// Which instance of a segment a counter was read from: its creator's pid
/// and creation time, so that a segment removed and made anew under the
/// same name starts its rate afresh.
pub(crate) type Identity = (u32, u64);

/// The last reading of each message counter, to tell the rate of the next.
#[derive(Debug)]
pub(crate) struct Rates<K> {
    /// Readings of the previous refresh.
    previous: HashMap<K, Reading>,
    /// Readings of this refresh.
    current: HashMap<K, Reading>,
}

/// One reading of a counter.
#[derive(Debug, Clone, Copy)]
struct Reading {
    identity: Identity,
    count: u64,
    at: Instant,
}

impl<K: Hash + Eq> Rates<K> {
    /// No readings yet.
    pub(crate) fn new() -> Rates<K> {
        Rates {
            previous: HashMap::new(),
            current: HashMap::new(),
        }
    }

    /// Starts a refresh: the readings of the last one become the previous
    /// (and a counter not read in it is forgotten).
    pub(crate) fn refresh(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// Records that `key`'s counter read `count` now and returns its rate
    /// per second since the previous refresh; `None` on its first reading,
    /// or when the segment is another one or its counter went backwards.
    pub(crate) fn rate(&mut self, key: K, identity: Identity, count: u64) -> Option<f64> {
        let now = Reading {
            identity,
            count,
            at: Instant::now(),
        };
        let rate = self.previous.get(&key).and_then(|before| {
            let secs = now.at.duration_since(before.at).as_secs_f64();
            let more = count.checked_sub(before.count)?;
            #[allow(clippy::cast_precision_loss)] // a rate, not a count
            (before.identity == identity && secs > 0.0).then(|| more as f64 / secs)
        });
        self.current.insert(key, now);
        rate
    }
}

/// A rate for people: `12.5/s`, or `-` when unknown.
pub(crate) fn per_second(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}/s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_need_two_readings_of_the_same_segment() {
        let mut r = Rates::new();
        assert_eq!(r.rate("a", (1, 1), 10), None);
        std::thread::sleep(std::time::Duration::from_millis(10));
        r.refresh();
        let rate = r.rate("a", (1, 1), 20).unwrap();
        assert!(rate > 0.0, "{rate}");
        r.refresh();
        assert_eq!(r.rate("a", (1, 1), 5), None, "went backwards");
        r.refresh();
        assert_eq!(r.rate("a", (2, 1), 6), None, "made anew");
        r.refresh();
        r.refresh();
        assert_eq!(r.rate("a", (2, 1), 7), None, "forgotten");
        assert_eq!(per_second(None), "-");
        assert_eq!(per_second(Some(12.54)), "12.5/s");
    }
}
