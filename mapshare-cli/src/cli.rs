//! The command line, as clap derive structs: one variant per verb.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Named shared memory between processes: send and receive messages, take
/// named locks, and inspect or clean up the segments in `/dev/shm`.
#[derive(Debug, Parser)]
#[command(
    name = "mapshare",
    version,
    after_help = "Exit status: 0 success, 1 error, 2 usage error, 3 timed out \
                  (`lock` returns the command's own status; a --watch ended \
                  by Ctrl-C, 130).\n\
                  Scripts: `mapshare --format json ls` (or `ls --format json`); \
                  every key always present, null when unknown.\n\
                  New here? Run `mapshare demo`."
)]
pub(crate) struct Cli {
    /// How `ls`, `info` and `gc` print: text for people, json for scripts
    /// (JSON Lines with --watch). Before or after the verb.
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The output format of `ls`, `info` and `gc` (the other verbs print
/// messages, not reports, and ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns and `field  value` lines.
    Text,
    /// JSON (one object per line with --watch).
    Json,
}

/// The hidden `--json` of `ls`, `info` and `gc`: the flag they had before
/// `--format`, kept so that old scripts keep working.
#[derive(Debug, Args)]
pub(crate) struct JsonAlias {
    /// Same as `--format json`.
    #[arg(long, hide = true)]
    pub(crate) json: bool,
}

impl JsonAlias {
    /// The format to use: JSON with `--json`, else the global `--format`.
    pub(crate) fn resolve(&self, global: Format) -> Format {
        if self.json {
            Format::Json
        } else {
            global
        }
    }
}

/// `--watch` and its settings, for `ls` and `info`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Keep the view up to date, refreshing it every --interval, until
    /// Ctrl-C (exit status 130) or --count refreshes.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Seconds between two refreshes of --watch (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = parse_interval, default_value = "1", requires = "watch")]
    pub(crate) interval: Duration,
    /// Stop --watch after N refreshes.
    #[arg(long, value_name = "N", requires = "watch",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Two processes hand a record over through shared memory: the tour.
    Demo,
    /// Internal: one side of `demo` (the parent re-runs this binary).
    #[command(hide = true)]
    DemoRole(DemoRoleArgs),
    /// Put one message into the mailbox NAME (created, persistent, if needed).
    Send(SendArgs),
    /// Take the message from the mailbox NAME and print it, waiting for one.
    Recv(RecvArgs),
    /// Run a command while holding the named mutex NAME.
    Lock(LockArgs),
    /// List the segments in /dev/shm (--watch: live, with message rates).
    Ls(LsArgs),
    /// Describe one segment: header, layout, owner, attached processes and
    /// queue (--watch: live).
    Info(InfoArgs),
    /// Remove segments by name (processes attached keep their mapping).
    Rm(RmArgs),
    /// Remove segments no live process holds (persistent ones too with --all).
    Gc(GcArgs),
    /// Publish each line of standard input on the pub/sub ring NAME.
    Pub(PubArgs),
    /// Print each message published on the pub/sub ring NAME, as it arrives.
    Sub(SubArgs),
    /// Offer the request/response service NAME: each request on CMD's
    /// stdin, CMD's stdout back as the response.
    Serve(ServeArgs),
    /// Send TEXT to the service NAME and print its response.
    Request(RequestArgs),
}

/// The service a `serve` or `request` creates if it is the first.
#[derive(Debug, Args)]
pub(crate) struct ServiceArgs {
    /// Clients at once, if this creates the service.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = parse_count)]
    pub(crate) clients: usize,
    /// Requests in flight per client, if this creates the service.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = parse_count)]
    pub(crate) capacity: usize,
    /// Largest request or response in bytes, if this creates the service.
    #[arg(long, value_name = "BYTES", default_value_t = 65536, value_parser = parse_count)]
    pub(crate) max_message: usize,
}

/// `mapshare serve NAME -- CMD [ARGS...]`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Service name; created if it does not exist (gone with its last process).
    #[arg(value_parser = parse_name)]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) service: ServiceArgs,
    /// Exit after answering this many requests.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// The command run once per request, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<OsString>,
}

/// `mapshare request NAME TEXT`.
#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// Service name; created if it does not exist yet (the request then
    /// waits for the first server).
    #[arg(value_parser = parse_name)]
    pub(crate) name: String,
    /// The request; its bytes are sent exactly.
    #[arg(allow_hyphen_values = true)]
    pub(crate) text: OsString,
    /// Wait at most this long for the response, sending included (seconds;
    /// default: as long as it takes). Exit status 3 when it runs out.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub(crate) timeout: Option<Duration>,
    #[command(flatten)]
    pub(crate) service: ServiceArgs,
}

/// Policy of a ring `pub` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PolicyArg {
    /// The slowest live subscriber paces the publisher: nothing is lost.
    Lossless,
    /// The publisher never waits; a subscriber that falls a ring behind is
    /// told how many messages it missed.
    Overwrite,
}

/// The ring a `pub` or `sub` creates if it is the first.
#[derive(Debug, Args)]
pub(crate) struct RingArgs {
    /// Messages the ring holds, if this creates it (a power of two; the
    /// ring reserves about capacity x max-message bytes of memory).
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = parse_count)]
    pub(crate) capacity: usize,
    /// Largest message in bytes, if this creates it; `pub` refuses a
    /// longer one.
    #[arg(long, value_name = "BYTES", default_value_t = 4096, value_parser = parse_count)]
    pub(crate) max_message: usize,
    /// What to do with a slow subscriber, if this creates the ring.
    #[arg(long, value_enum, default_value_t = PolicyArg::Lossless)]
    pub(crate) policy: PolicyArg,
}

/// `mapshare pub NAME`.
#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    /// Ring name; created if it does not exist (gone with its last process).
    #[arg(value_parser = parse_name)]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) ring: RingArgs,
    /// Records end with NUL, not newline, and are published byte for byte
    /// (as `xargs -0` reads them); without it a `\r` before the newline is
    /// dropped.
    #[arg(long, short = '0')]
    pub(crate) null: bool,
    /// Wait until this many subscribers have joined before publishing (when
    /// subscribers may start after the publisher; those started before it
    /// receive everything anyway).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) wait_subscribers: usize,
    /// Give up when a publish (or the wait for subscribers) takes longer
    /// than this (seconds). Exit status 3.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub(crate) timeout: Option<Duration>,
}

/// `mapshare sub NAME`.
#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    /// Ring name; created if no publisher has yet (a subscriber started
    /// first receives everything the publisher publishes).
    #[arg(value_parser = parse_name)]
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) ring: RingArgs,
    /// End each message with NUL instead of newline (byte-exact output).
    #[arg(long, short = '0')]
    pub(crate) null: bool,
    /// Exit after this many messages.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Start with up to the last N messages published before joining that
    /// the ring still holds (at most its capacity - 1), then go on live.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) history: usize,
    /// Give up when no message arrives for this long (seconds). Exit status 3.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub(crate) timeout: Option<Duration>,
}

/// `mapshare send NAME TEXT`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Mailbox name (1 to 200 of A-Z a-z 0-9 . _ -).
    #[arg(value_parser = parse_name)]
    pub(crate) name: String,
    /// The message; its bytes are stored exactly, never cut.
    #[arg(allow_hyphen_values = true)]
    pub(crate) text: OsString,
    /// Wait at most this long for room in the mailbox (seconds, fractions
    /// allowed; default: wait as long as it takes).
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub(crate) timeout: Option<Duration>,
    /// Capacity of the mailbox if this creates it (bytes).
    #[arg(long, value_name = "BYTES", default_value_t = mapshare::DEFAULT_MAILBOX_MAX_MESSAGE, value_parser = parse_count)]
    pub(crate) capacity: usize,
}

/// `mapshare recv NAME`.
#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    /// Mailbox name; created if it does not exist yet (removed again if we
    /// give up before a sender came).
    #[arg(value_parser = parse_name)]
    pub(crate) name: String,
    /// Wait at most this long for a message (seconds, fractions allowed;
    /// default: wait as long as it takes). Exit status 3 when it runs out.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub(crate) timeout: Option<Duration>,
}

/// `mapshare lock NAME -- CMD [ARGS...]`.
#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    /// Mutex name; created if it does not exist.
    #[arg(value_parser = parse_name)]
    pub(crate) name: String,
    /// Wait at most this long for the lock (seconds, fractions allowed;
    /// default: wait as long as it takes). Exit status 3 when it runs out.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub(crate) timeout: Option<Duration>,
    /// Keep the mutex after its last process exits (until `mapshare rm`), so
    /// that a holder killed while nobody else waited is still reported to
    /// the next locker. Default: gone with its last process.
    #[arg(long)]
    pub(crate) persistent: bool,
    /// The command to run while holding the lock, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<OsString>,
}

/// `mapshare ls`.
#[derive(Debug, Args)]
#[command(
    after_help = "With --format json: an array of {name, kind, size, persistent, \
                   attached, error}. With --watch, a MESSAGES and a RATE column \
                   (messages sent or published, per second since the last \
                   refresh) for channels and pub/sub rings; with --format json, \
                   one {time, segments} object per line, each segment with \
                   messages and rate too."
)]
pub(crate) struct LsArgs {
    #[command(flatten)]
    pub(crate) json: JsonAlias,
    #[command(flatten)]
    pub(crate) watch: WatchArgs,
}

/// `mapshare info NAME` or `mapshare info --file PATH`.
#[derive(Debug, Args)]
#[command(
    after_help = "With --format json: one object, with the queue's details for a \
                   channel or pub/sub ring under \"queue\" (null for other kinds). \
                   With --watch: a channel's depth per lane, messages sent and \
                   their rate; a ring's depth, publish rate and each subscriber's \
                   lag; the attached processes of other kinds. With --format json, \
                   each refresh is a line: the same object plus time, messages \
                   and rate."
)]
pub(crate) struct InfoArgs {
    /// Segment name.
    #[arg(value_parser = parse_name, required_unless_present = "file", conflicts_with = "file")]
    pub(crate) name: Option<String>,
    /// A file-backed segment at this path, instead of a name in /dev/shm.
    #[arg(long, value_name = "PATH")]
    pub(crate) file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) json: JsonAlias,
    #[command(flatten)]
    pub(crate) watch: WatchArgs,
}

/// `mapshare rm NAME...`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Segment names.
    #[arg(value_parser = parse_name, required = true)]
    pub(crate) names: Vec<String>,
}

/// `mapshare gc`.
#[derive(Debug, Args)]
#[command(after_help = "With --format json: {removed, removed_partial, kept: [{name, reason}]}.")]
pub(crate) struct GcArgs {
    /// Remove persistent segments that no process holds, too (such as
    /// mailboxes with an undelivered message).
    #[arg(long)]
    pub(crate) all: bool,
    #[command(flatten)]
    pub(crate) json: JsonAlias,
}

/// `mapshare demo-role ROLE NAME TEXT` (hidden).
#[derive(Debug, Args)]
pub(crate) struct DemoRoleArgs {
    /// Which side to play.
    #[arg(value_enum)]
    pub(crate) role: DemoRole,
    /// Segment name.
    pub(crate) name: String,
    /// The text to send, or the text the receiver expects.
    pub(crate) text: String,
}

/// The two sides of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DemoRole {
    /// Waits for the record and checks it.
    Receiver,
    /// Writes the record and notifies.
    Sender,
}

/// Checks a segment name (the library's rules), so a bad one is a usage
/// error (exit status 2) before anything is touched.
fn parse_name(s: &str) -> Result<String, String> {
    mapshare::Location::shm(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

/// Parses a size or count of at least 1.
fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err(format!("{s:?}: must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// Parses a number of seconds (`2`, `0.25`) into a [`Duration`].
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?}: seconds must be a finite number >= 0"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?}: too many seconds"))
}

/// Parses the seconds between two refreshes: more than zero.
fn parse_interval(s: &str) -> Result<Duration, String> {
    match parse_secs(s)? {
        d if d.is_zero() => Err(format!("{s:?}: the interval must be more than 0 seconds")),
        d => Ok(d),
    }
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
    fn parse_secs_accepts_fractions_and_rejects_nonsense() {
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_secs("3"), Ok(Duration::from_secs(3)));
        for bad in ["", "-1", "abc", "inf", "NaN", "1e300"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }
}
