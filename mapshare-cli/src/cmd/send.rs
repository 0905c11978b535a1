//! `mapshare send NAME TEXT`: store one message in a mailbox.

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use anyhow::{bail, Result};
use mapshare::{Mailbox, SegmentError, SegmentOptions, SendError};

use crate::cli::SendArgs;
use crate::exit::{deadline, flat, timed_out};

/// Opens the mailbox (or creates it, persistent, so that the message
/// outlives this process), waits for room and stores the text's bytes.
pub(crate) fn run(args: &SendArgs) -> Result<ExitCode> {
    let name = &args.name;
    let msg = args.text.as_bytes();
    let opts = SegmentOptions::new(name).persistent(true);
    let mailbox = match Mailbox::open_with(&opts) {
        Ok(m) => m,
        Err(SegmentError::NotFound(_)) => {
            // Refuse before creating anything: a failed send leaves no trace.
            if msg.len() > args.capacity {
                bail!("{name}: {}", too_large(msg.len(), args.capacity));
            }
            Mailbox::open_or_create_with(&opts, args.capacity).map_err(flat)?
        }
        Err(e) => return Err(flat(e)),
    };
    // A receiver that started first created the mailbox non-persistent (so
    // that giving up removes it): make it outlive us before storing.
    mailbox.set_persistent(true).map_err(flat)?;
    let sent = match deadline(args.timeout) {
        Some(d) => mailbox.send_deadline(msg, d),
        None => mailbox.send(msg),
    };
    match sent {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(SendError::Timeout | SendError::Full) => Err(timed_out(format!(
            "{name}: timed out waiting for room in the mailbox"
        ))),
        Err(e) => Err(flat(format!("{name}: {e}"))),
    }
}

/// The library's wording for a message that does not fit.
fn too_large(len: usize, capacity: usize) -> SendError {
    SendError::TooLarge { len, capacity }
}
