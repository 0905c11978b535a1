//! `mapshare-soak`: messages stream through a channel and two pub/sub rings
//! between processes while a supervisor SIGKILLs and restarts senders,
//! receivers, publishers and subscribers at random intervals (50 to 500 ms by default,
//! uniform), for a configurable duration:
//!
//! ```text
//! cargo run --release -p mapshare-bench --bin mapshare-soak -- --duration 600 [--seed N] [--rate MSGS] [--quiet]
//! ```
//!
//! `ci/soak.sh` runs a 20-second version (15 s in `.ci/run`). The exit
//! status is non-zero when a duplicate, a loss, a corrupt delivery, a hang,
//! a failed child, an unrecovered restart or a file left in `/dev/shm` was
//! seen; 2 for a usage error.
//!
//! # Modules
//! [`setup`] (slots, roles, names, options), [`message`] (what is sent and
//! how it is checked), [`journal`] (what children report), [`roles`] (the
//! children), [`supervisor`] (the chaos loop), [`checks`] (end-of-run
//! checks and totals), [`report`] (the output), [`rng`] (the seeded
//! generator). Only the library's public API is used.
//!
//! # Processes
//! The binary is its own supervisor and re-executes itself with `--role`
//! for the children, one per slot:
//!
//! | slot | role | on |
//! |---|---|---|
//! | 0, 1 | `channel-sender` (one lane each, producer id = slot) | channel `<prefix>.chan`, 2 lanes |
//! | 2 | `channel-receiver` | the channel |
//! | 3 | `publisher` | ring `<prefix>.ps`, [`Policy::Lossless`](mapshare::Policy::Lossless) |
//! | 4, 5 | `subscriber` | `<prefix>.ps` |
//! | 6 | `ow-publisher` | ring `<prefix>.ow`, [`Policy::OverwriteOldest`](mapshare::Policy::OverwriteOldest) |
//! | 7 | `ow-subscriber` (pauses now and then, so it gets lapped) | `<prefix>.ow` |
//!
//! The supervisor creates every segment persistent (so they survive all
//! children being dead at once), then loops: every 50..500 ms (`--kill-every`) it picks a
//! slot at random, kills its process (`Child::kill`, SIGKILL) and starts
//! the role again at once with the next incarnation number. Producers are
//! paced (`--rate` messages per second each); every blocking call in a
//! child has a 50 ms timeout, and children use the default wait strategy.
//! A child told `Disconnected` (its channel or ring peer has gone: killed,
//! and being restarted) tries again after 2 ms; a producer sends the same
//! message again (nothing was sent). Once the consumers drain, a
//! `Disconnected` receive (every producer gone, nothing left) ends them.
//! At the end it stops the producers, lets the consumers drain, checks the
//! totals, unlinks the segments, runs `segment::gc(false)` and counts what
//! is left of this run in `/dev/shm` (names with the run's prefix, and
//! creator temp files of the run's processes). Children exit when their
//! supervisor dies; a killed supervisor leaves its persistent segments
//! (`mapshare rm` them, or `mapshare gc --all`).
//!
//! # Messages
//! `magic u32 | producer u32 | incarnation u64 | seq u64 | position u64 |
//! payload length u32 | 0 u32 | checksum u64 | payload`, 48 to 512 bytes;
//! the payload length and bytes are derived from (producer, incarnation,
//! seq). `position` is the ring position the publisher wrote it at
//! (`Publisher::published()` before the publish; 0 on the channel). The
//! checksum covers the header and the payload. A delivery is *corrupt* when
//! the magic, the length or the checksum does not match, or the library
//! reports a corrupt slot.
//!
//! # Journals: what children report, and why a kill loses none of it
//! Each role slot has a journal in shared memory (a `Shared` of two
//! copies, each `generation | checksum | record`). An update takes the
//! `Shared`'s robust lock (accepting `OwnerDied`), picks the valid copy with
//! the higher generation, changes the record and writes it to the *other*
//! copy. `SharedGuard::set` rewrites the valid copy with identical bytes,
//! so a writer killed in the middle can only tear the other one, which its
//! checksum then rejects: a record is always the one of the last completed
//! update. Children update their journal for every message.
//!
//! The channel receiver's journal is its progress: per (producer,
//! incarnation) the last seq taken, cumulative counts, and the message in
//! hand. It is updated while the message's `Sample` (`recv_ref_timeout`)
//! still holds the slot, which is released only when the sample is dropped,
//! after the update. A receiver killed after that update but before the
//! release leaves the message in place and the next receiver gets it again (by
//! design: at-least-once for the message in hand). The next receiver
//! recognises it (the predecessor's message in hand, among the first
//! `lanes` messages it takes) and counts it as *redelivered* and drops it;
//! any other seq at or below the last one taken is a *duplicate*.
//!
//! # Checks
//! - Channel: per (producer, incarnation), seqs start at 0 and are
//!   consecutive (a gap is *lost*). At the end, the messages taken once
//!   must add up to what the senders recorded as sent: a sender records
//!   each send after it returns, so a sender killed between the two has
//!   sent one message more than it recorded; fewer taken than recorded is
//!   *lost*, more than recorded plus one per killed sender is *duplicate*.
//!   The drained channel must be empty.
//! - Pub/sub: a subscriber sees only what was published after it joined,
//!   so each subscriber incarnation anchors on its first message; from then
//!   on positions must be consecutive (a gap is *lost*, a step back a
//!   *duplicate*), and per publisher incarnation seqs must be consecutive,
//!   starting at 0 for a publisher that started while the subscriber was
//!   there. On the lossless ring `Lagged` is a loss; on the overwrite ring
//!   it is expected (counted as *overwritten*) and must account exactly for
//!   the positions skipped. Subscribers alive at the end must end exactly at
//!   the ring's published count.
//! - Corrupt: besides being counted, a corrupt message is missing from its
//!   stream, so it also shows as a gap.
//! - Hang: a child whose progress counter has not moved for 5 s (its peers
//!   are always alive: every killed role is restarted at once). It is
//!   reported with its last state and kernel wait channel, killed and
//!   restarted. The random kills spare a child that has made no progress
//!   for 250 ms (legitimate stalls last tens of milliseconds, a few hundred
//!   on a loaded machine), so a stuck child is not killed before it can be
//!   seen hanging. The longest stall per role is printed.
//!
//! # Recovery latency, and the clock
//! From the kill to the first message the restarted role takes (a
//! consumer), or the first message of the new incarnation a consumer takes
//! (a producer). Times cross processes as `SystemTime` nanoseconds
//! (CLOCK_REALTIME): `Instant` cannot be exchanged between processes, and
//! std exposes no other clock they share. A step of the wall clock during
//! a run would distort the samples taken across it (none is expected on a
//! machine kept by NTP, which slews). A restart killed again before its
//! first message gives no sample; such restarts are counted apart.

#![forbid(unsafe_code)]

mod checks;
mod journal;
mod message;
mod report;
mod rng;
mod roles;
mod setup;
mod supervisor;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::setup::{now_ns, Role};

/// Channel and pub/sub traffic between processes that a supervisor SIGKILLs
/// and restarts every 50 to 500 ms (`--kill-every`); every message is checked.
#[derive(Debug, Parser)]
#[command(name = "mapshare-soak", version)]
pub(crate) struct Args {
    /// How long the chaos runs, in seconds (fractions allowed).
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Seed of the kill schedule and the children's pauses, decimal or 0x
    /// hex, to replay a run (default: from the clock and the pid; printed).
    #[arg(
        long,
        value_name = "N",
        value_parser = parse_u64,
        default_value_t = default_seed(),
        hide_default_value = true
    )]
    pub(crate) seed: u64,
    /// Messages per second each producer sends (1 to 10,000,000).
    #[arg(long, value_name = "MSGS_PER_SEC", default_value_t = 20_000.0, value_parser = parse_rate)]
    pub(crate) rate: f64,
    /// The pause between two random kills, in ms: uniform in MIN..MAX.
    #[arg(long, value_name = "MIN..MAX", default_value = "50..500", value_parser = parse_range)]
    pub(crate) kill_every: (u64, u64),
    /// No progress line every 10 s.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Internal: run as this child role (the supervisor re-runs this binary).
    #[arg(long, value_enum, hide = true)]
    pub(crate) role: Option<Role>,
    /// Internal: the child's slot.
    #[arg(long, hide = true, default_value_t = 0)]
    pub(crate) slot: usize,
    /// Internal: the child's incarnation.
    #[arg(long, hide = true, default_value_t = 0)]
    pub(crate) inc: u64,
    /// Internal: the run's segment name prefix.
    #[arg(long, hide = true, default_value = "")]
    pub(crate) prefix: String,
}

fn default_seed() -> u64 {
    now_ns() ^ (u64::from(std::process::id()) << 32)
}

fn parse_u64(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
    .ok_or(format!("bad seed {s}"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("bad duration {s}"))?;
    if !(secs > 0.0 && secs < 1e7) {
        return Err(format!("bad duration {s}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("bad range {s} (want MIN..MAX in ms, 1 <= MIN <= MAX)");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a == 0 || a > b || b > 3_600_000 {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s.parse().map_err(|_| format!("bad rate {s}"))?;
    if !(1.0..=1e7).contains(&rate) {
        return Err(format!("bad rate {s}"));
    }
    Ok(rate)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.role.is_some() {
        roles::run_child(&args)
    } else {
        supervisor::supervise(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_parse_and_bad_values_are_refused() {
        let a = Args::try_parse_from(["soak", "--duration", "1.5", "--seed", "0x1f", "--quiet"])
            .unwrap();
        assert_eq!(a.duration, Duration::from_millis(1500));
        assert_eq!(
            (a.seed, a.rate, a.quiet, a.role),
            (31, 20_000.0, true, None)
        );
        let child = Args::try_parse_from([
            "soak",
            "--role",
            "ow-subscriber",
            "--prefix",
            "p",
            "--slot",
            "7",
            "--inc",
            "3",
            "--seed",
            "5",
            "--rate",
            "100",
        ])
        .unwrap();
        assert_eq!(child.role, Some(Role::OwSubscriber));
        assert_eq!((child.slot, child.inc, child.prefix.as_str()), (7, 3, "p"));
        for bad in [
            ["--duration", "0"],
            ["--duration", "x"],
            ["--rate", "0.5"],
            ["--seed", "0xg"],
            ["--role", "nobody"],
        ] {
            assert!(
                Args::try_parse_from(["soak", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }
}
