//! `mapshare recv NAME`: wait for a message, print it, empty the mailbox.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use mapshare::{Mailbox, Options, RecvTimeoutError, SegmentError};

use crate::cli::RecvArgs;
use crate::exit::{deadline, flat, open_error, timed_out};
use crate::signals::{wait_sliced, Waited};

/// Opens the mailbox, or creates it if the sender has not yet, so that
/// either side may start first; then sleeps on its futex until a message
/// arrives or the timeout runs out.
///
/// A mailbox we create is *not* persistent: if we give up, dropping our
/// handle removes it, atomically with respect to a sender attaching (the
/// library decides "last one out" under the segment's attach lock). A
/// sender makes it persistent before storing its message, so a message is
/// never removed with it.
pub(crate) fn run(args: &RecvArgs) -> Result<ExitCode> {
    let name = &args.name;
    let opts = Mailbox::options(name);
    let (mailbox, created) = open_or_create(&opts)?;
    // In slices, so a signal ends the wait; returning drops the handle,
    // which removes a mailbox we created unless a sender has attached.
    let got = wait_sliced(deadline(args.timeout), |d| match mailbox.recv_deadline(d) {
        Err(RecvTimeoutError::Timeout) => None,
        other => Some(other),
    })?;
    match got {
        Waited::Done(Ok(msg)) => print_message(&msg),
        Waited::TimedOut => {
            if created {
                // A sender may have slipped its message in since the
                // deadline passed: deliver it rather than lose it.
                if let Ok(msg) = mailbox.try_recv() {
                    return print_message(&msg);
                }
            }
            // Dropping the handle removes a mailbox we created, unless a
            // sender has attached (and made it persistent) meanwhile.
            drop(mailbox);
            Err(timed_out(format!(
                "{name}: timed out waiting for a message"
            )))
        }
        Waited::Done(Err(e)) => Err(flat(format!("{name}: {e}"))),
    }
}

/// Opens the mailbox or creates it (non-persistent, default capacity), and
/// says whether we created it. This is `Options::open_or_create` spelled
/// out, since only the creator may remove the mailbox again on a timeout.
fn open_or_create(opts: &Options<Mailbox>) -> Result<(Mailbox, bool)> {
    let mut last = None;
    for _ in 0..16 {
        match opts.open() {
            Ok(m) => return Ok((m, false)),
            Err(SegmentError::NotFound(_)) => {}
            Err(e) => return Err(open_error(e)),
        }
        match opts.create() {
            Ok(m) => return Ok((m, true)),
            // Another process created it between our open and our create.
            Err(e @ SegmentError::AlreadyExists(_)) => last = Some(e),
            Err(e) => return Err(open_error(e)),
        }
    }
    Err(flat(last.map_or_else(
        || "the mailbox keeps appearing and disappearing".to_owned(),
        |e| e.to_string(),
    )))
}

/// Prints the message exactly, then one newline. Bytes that are not UTF-8
/// are written as they are: the message is never altered.
fn print_message(msg: &[u8]) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    out.write_all(msg)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("writing the message to stdout")?;
    Ok(ExitCode::SUCCESS)
}
