//! How a command ends: exit codes, and errors that carry their own code.

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Exit status: a timeout ran out.
pub(crate) const TIMED_OUT: u8 = 3;
/// Exit status: the command to run could not be executed (as in a shell).
pub(crate) const CANNOT_EXECUTE: u8 = 126;
/// Exit status: the command to run was not found (as in a shell).
pub(crate) const NOT_FOUND: u8 = 127;

/// An error that ends the program with a given exit status (other errors
/// give 1). Its text is the whole one-line message after `mapshare: `.
#[derive(Debug)]
pub(crate) struct Exit {
    /// The exit status.
    pub(crate) code: u8,
    /// What went wrong, as `<what>: <why>`.
    pub(crate) message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// A "timed out" error (exit status 3).
pub(crate) fn timed_out(message: String) -> anyhow::Error {
    Exit {
        code: TIMED_OUT,
        message,
    }
    .into()
}

/// Prints `err` as one line on stderr and gives its exit status.
pub(crate) fn report(err: &anyhow::Error) -> ExitCode {
    let code = err.downcast_ref::<Exit>().map_or(1, |e| e.code);
    if err
        .downcast_ref::<Exit>()
        .is_some_and(|e| e.message.is_empty())
    {
        return ExitCode::from(code); // interrupted by a signal: quiet, as a shell's tools are
    }
    // `{:#}` joins the context chain with ": ", on one line.
    let text = format!("{err:#}").replace(['\n', '\r'], " ");
    eprintln!("mapshare: {text}");
    ExitCode::from(code)
}

/// The deadline `timeout` from now; `None` (wait for ever) without a
/// timeout, or when the deadline is past what the clock can represent.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// An error from its text alone. Library errors already name the segment
/// and include their cause in their text, so chaining their `source()` as
/// well would print the cause twice.
pub(crate) fn flat(err: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::msg(err.to_string())
}

/// A library error on opening NAME, with the fix where there is one: a
/// name held by a segment of another kind (often a leftover, such as a
/// persistent mailbox from `send`) is freed by `mapshare rm NAME`.
pub(crate) fn open_error(err: mapshare::SegmentError) -> anyhow::Error {
    match &err {
        mapshare::SegmentError::KindMismatch { name, .. } => flat(format!(
            "{err}; if nothing uses it any more, `mapshare rm {name}` removes it"
        )),
        mapshare::SegmentError::NoSpace { requested, .. } if *requested > 0 => flat(format!(
            "{err} ({}); a ring reserves about --capacity x --max-message bytes: ask for less, \
             or free space in {}",
            human_bytes(*requested),
            crate::output::SHM_DIR
        )),
        _ => flat(err),
    }
}

/// Bytes for people: `1.5 GiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Exit status of a usage error (a bad option, name or number).
pub(crate) const USAGE: u8 = 2;

/// Reports a command-line error as one line on stderr (exit status 2);
/// help and version requests print as clap formats them (status 0).
pub(crate) fn usage(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(if err.use_stderr() { USAGE } else { 0 });
    }
    let text = err.render().to_string();
    // The first paragraph, on one line (a list of missing arguments
    // continues on indented lines).
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let first = first.join(" ");
    let first = first.strip_prefix("error: ").unwrap_or(&first);
    eprintln!("mapshare: {first} (see `mapshare --help`)");
    ExitCode::from(USAGE)
}
