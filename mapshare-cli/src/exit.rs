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
