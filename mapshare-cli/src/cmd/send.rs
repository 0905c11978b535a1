//! `mapshare send NAME TEXT`: store one message in a mailbox.

#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use anyhow::{bail, Result};
use mapshare::{Mailbox, SegmentError, SendTimeoutError};

use crate::cli::SendArgs;
use crate::exit::{deadline, flat, open_error, timed_out};
use crate::signals::{wait_sliced, Waited};

/// Opens the mailbox (or creates it, persistent, so that the message
/// outlives this process), waits for room and stores the text's bytes.
pub(crate) fn run(args: &SendArgs) -> Result<ExitCode> {
    let name = &args.name;
    // Unix: the argument's bytes as they are. Windows: arguments are
    // UTF-16; the text is sent as UTF-8 (refused if it is not Unicode).
    #[cfg(unix)]
    let msg = args.text.as_bytes();
    #[cfg(not(unix))]
    let msg = args
        .text
        .to_str()
        .ok_or_else(|| flat(format!("{name}: the text is not valid Unicode")))?
        .as_bytes();
    let opts = Mailbox::options(name).persistent(true);
    let mailbox = match opts.open() {
        Ok(m) => m,
        Err(SegmentError::NotFound(_)) => {
            // Refuse before creating anything: a failed send leaves no trace.
            if msg.len() > args.capacity {
                bail!(
                    "{name}: message of {} bytes exceeds the mailbox capacity of {} bytes",
                    msg.len(),
                    args.capacity
                );
            }
            opts.max_message(args.capacity)
                .open_or_create()
                .map_err(open_error)?
        }
        Err(e) => return Err(open_error(e)),
    };
    // A receiver that started first created the mailbox non-persistent (so
    // that giving up removes it): make it outlive us before storing.
    mailbox.set_persistent(true).map_err(flat)?;
    let sent = wait_sliced(deadline(args.timeout), |d| {
        match mailbox.send_deadline(msg, d) {
            Err(SendTimeoutError::Timeout(_)) => None,
            other => Some(other),
        }
    })?;
    match sent {
        Waited::Done(Ok(())) => Ok(ExitCode::SUCCESS),
        Waited::TimedOut => Err(timed_out(format!(
            "{name}: timed out waiting for room in the mailbox"
        ))),
        Waited::Done(Err(SendTimeoutError::TooLarge(m))) => Err(flat(format!(
            "{name}: message of {} bytes exceeds the mailbox capacity of {} bytes",
            m.len(),
            mailbox.max_message()
        ))),
        Waited::Done(Err(e)) => Err(flat(format!("{name}: {e}"))),
    }
}
