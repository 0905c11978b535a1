//! `mapshare demo`: the whole recipe in one command.
//!
//! The parent re-runs this binary twice (`mapshare demo-role receiver|sender
//! NAME TEXT`). Both children open the same `Shared<Record>` segment with
//! `open_or_create`, so either may start first. The sender locks the mutex,
//! writes a record with a timestamp and notifies the "data ready" event; the
//! receiver, asleep on that event's futex, wakes, locks, copies the record
//! out, checks the text byte for byte and acknowledges through a second,
//! standalone `Event`, so that the sender stays attached (and the segment
//! alive) until the record has been read. Both segments are
//! non-persistent: they disappear with the last process.
//!
//! The parent relays the children's output in a fixed order (receiver's
//! first line, sender, rest of the receiver), so the transcript reads the
//! same on every run.

use std::io::{self, BufRead, BufReader, Lines, Write};
use std::process::{Child, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use mapshare::{segment, Event, FixedStr, LockTimeoutError, Shared};

use crate::cli::{DemoRole, DemoRoleArgs};
use crate::exit::{flat, timed_out};

/// The text handed over: several scripts, a right-to-left one, combining
/// marks and a 4-byte emoji, so that any length counted in characters
/// instead of bytes would show.
const TEXT: &str = "Grüße, Мир, 世界, مرحبا, नमस्ते, 🦀";

/// How long each side waits for the other.
const PATIENCE: Duration = Duration::from_secs(10);

/// The record both processes agree on. `#[repr(C)]`, no padding
/// (8 + 8 + 4 + 244 = 264 bytes, a multiple of its alignment 8): bytemuck's
/// derive checks that at compile time.
#[repr(C)]
#[derive(Clone, Copy, mapshare::Pod, mapshare::Zeroable)]
#[bytemuck(crate = "mapshare::bytemuck")]
struct Record {
    /// 0 until the sender writes; then 1.
    seq: u64,
    /// When the sender wrote it: wall-clock ns since the Unix epoch (the one
    /// clock two processes can exchange as a number).
    sent_at_ns: u64,
    /// The text, with its exact byte length.
    text: FixedStr<244>,
}

const _: () = assert!(std::mem::size_of::<Record>() == 264);

/// The acknowledgement event's name, beside the record's.
fn ack_name(name: &str) -> String {
    format!("{name}.ack")
}

/// Wall-clock nanoseconds since the Unix epoch.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A child process that is killed if we return early.
struct Kid {
    /// `receiver` or `sender`, padded for the transcript.
    label: &'static str,
    child: Option<Child>,
}

impl Kid {
    fn spawn(role: DemoRole, name: &str) -> Result<(Kid, Lines<BufReader<ChildStdout>>)> {
        let exe = std::env::current_exe().context("finding this program to re-run it")?;
        let (role_arg, label) = match role {
            DemoRole::Receiver => ("receiver", "receiver"),
            DemoRole::Sender => ("sender", "sender  "),
        };
        let mut child = Command::new(&exe)
            .args(["demo-role", role_arg, name, TEXT])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the {role_arg} ({})", exe.display()))?;
        let out = child.stdout.take().context("the child's stdout")?;
        Ok((
            Kid {
                label,
                child: Some(child),
            },
            BufReader::new(out).lines(),
        ))
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn wait(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().context("waited twice")?;
        child.wait().context("waiting for a child")
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Copies `n` lines (or all, for `None`) from a child to our stdout,
/// prefixed with its role; `false` if it ended first.
fn relay(
    kid: &Kid,
    lines: &mut Lines<BufReader<ChildStdout>>,
    n: Option<usize>,
    out: &mut impl Write,
) -> Result<bool> {
    let mut copied = 0;
    while n.is_none_or(|n| copied < n) {
        match lines.next() {
            Some(line) => {
                let line = line.context("reading a child's output")?;
                writeln!(out, "  {} │ {line}", kid.label).context("writing to stdout")?;
                copied += 1;
            }
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// The parent: runs a receiver and a sender, relays what they say, checks
/// that both succeeded and that they left nothing behind.
pub(crate) fn run() -> Result<ExitCode> {
    let name = format!("demo-{}", std::process::id());
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let w = |e: io::Error| anyhow::Error::new(e).context("writing to stdout");
    writeln!(
        out,
        "mapshare demo: one record, handed from one process to another through shared memory\n"
    )
    .map_err(w)?;
    writeln!(
        out,
        "  segment  │ {name}: Shared<Record>, {} bytes (seq u64, sent_at_ns u64, text FixedStr<244>),\n  \
         {blank:8} │ with a robust mutex and a futex \"data ready\" event; the receiver\n  \
         {blank:8} │ acknowledges through the event {}\n",
        std::mem::size_of::<Record>(),
        ack_name(&name),
        blank = "",
    )
    .map_err(w)?;

    // Receiver first, and its "waiting" line before the sender starts (either
    // order would work: both sides use open_or_create). Then the lines are
    // relayed in causal order: sender writes, receiver wakes, sender sees
    // the ack, receiver reports. Each child writes a few short lines, far
    // less than a pipe holds, so reading them in this order never blocks one.
    let (mut receiver, mut rx_lines) = Kid::spawn(DemoRole::Receiver, &name)?;
    let receiver_ready = relay(&receiver, &mut rx_lines, Some(1), &mut out)?;
    let mut sender_status = None;
    if receiver_ready {
        let (mut sender, mut tx_lines) = Kid::spawn(DemoRole::Sender, &name)?;
        relay(&sender, &mut tx_lines, Some(1), &mut out)?;
        relay(&receiver, &mut rx_lines, Some(1), &mut out)?;
        relay(&sender, &mut tx_lines, None, &mut out)?;
        sender_status = Some((sender.pid(), sender.wait()?));
    }
    relay(&receiver, &mut rx_lines, None, &mut out)?;
    let receiver_status = (receiver.pid(), receiver.wait()?);
    writeln!(out).map_err(w)?;

    let mut problems = Vec::new();
    match sender_status {
        Some((pid, s)) if !s.success() => problems.push(format!("the sender (pid {pid}) {s}")),
        Some(_) => {}
        None => problems.push("the receiver ended before the sender could start".to_owned()),
    }
    if !receiver_status.1.success() {
        problems.push(format!(
            "the receiver (pid {}) {}",
            receiver_status.0, receiver_status.1
        ));
    }
    // Non-persistent segments go with their last process: check it.
    let left: Vec<String> = segment::list()
        .map_err(flat)?
        .into_iter()
        .map(|n| n.to_string())
        .filter(|n| *n == name || *n == ack_name(&name))
        .collect();
    for n in &left {
        let _ = segment::unlink(&mapshare::Location::shm(n).map_err(flat)?);
        problems.push(format!(
            "{n} was left in {} (now removed)",
            crate::output::SHM_DIR
        ));
    }

    if problems.is_empty() {
        writeln!(
            out,
            "ok: the text round-tripped byte for byte; both processes exited 0; \
             nothing is left in {}\n\n\
             next, by hand: `mapshare recv hello` in one terminal, then \
             `mapshare send hello 'hi 👋'` in another",
            crate::output::SHM_DIR
        )
        .map_err(w)?;
        Ok(ExitCode::SUCCESS)
    } else {
        drop(out);
        bail!("demo failed: {}", problems.join("; "))
    }
}

/// One child: the receiver or the sender.
pub(crate) fn run_role(args: &DemoRoleArgs) -> Result<ExitCode> {
    match args.role {
        DemoRole::Receiver => receiver(&args.name, &args.text),
        DemoRole::Sender => sender(&args.name, &args.text),
    }
}

/// Prints one line of a child's report.
fn say(line: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Waits for the record, copies it out under the lock, acknowledges, and
/// checks the text against `expected`, byte for byte.
fn receiver(name: &str, expected: &str) -> Result<ExitCode> {
    let shared = Shared::<Record>::open_or_create(name).map_err(flat)?;
    let ack = Event::open_or_create(&ack_name(name)).map_err(flat)?;
    say(&format!(
        "pid {}: opened {name}; asleep on the \"data ready\" event (futex, up to {} s)",
        std::process::id(),
        PATIENCE.as_secs()
    ))?;
    shared
        .wait_timeout(PATIENCE)
        .map_err(|_| timed_out(format!("{name}: timed out waiting for the sender")))?;
    let record = match shared.lock_timeout(PATIENCE) {
        Ok(guard) => guard.get(),
        Err(LockTimeoutError::OwnerDied(guard)) => {
            eprintln!("mapshare: {name}: recovered the lock from a dead owner");
            guard.get()
        }
        Err(_) => return Err(timed_out(format!("{name}: timed out waiting for the lock"))),
    }; // unlocked here: the guard is a temporary of the match
    let received_at = now_ns();
    ack.notify();
    if record.seq != 1 {
        bail!("{name}: woke up to record #{}, expected #1", record.seq);
    }
    say(&format!(
        "woke up; locked the mutex, copied record #{} out, unlocked, acknowledged",
        record.seq
    ))?;
    let text = record
        .text
        .as_str()
        .map_err(|e| flat(format!("{name}: the record's text: {e}")))?;
    say(&format!("text:     \"{text}\""))?;
    say(&format!(
        "length:   {} bytes, {} chars (UTF-8 needs 1 to 4 bytes a char)",
        text.len(),
        text.chars().count()
    ))?;
    let handoff = match received_at.checked_sub(record.sent_at_ns) {
        Some(ns) => format!(
            "{:.1} µs from the sender's timestamp to our copy (wall clock)",
            ns as f64 / 1000.0
        ),
        None => "not measurable: the wall clock went backwards".to_owned(),
    };
    say(&format!("hand-off: {handoff}"))?;
    if text.as_bytes() != expected.as_bytes() {
        bail!(
            "{name}: the text differs from what was sent: got {} bytes, expected {}",
            text.len(),
            expected.len()
        );
    }
    say("check:    identical to the text sent, byte for byte")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the record under the lock, notifies, and stays attached until
/// the receiver acknowledges.
fn sender(name: &str, text: &str) -> Result<ExitCode> {
    let shared = Shared::<Record>::open_or_create(name).map_err(flat)?;
    let ack = Event::open_or_create(&ack_name(name)).map_err(flat)?;
    let text = FixedStr::new(text).map_err(|e| flat(format!("{name}: {e}")))?;
    let mut guard = match shared.lock_timeout(PATIENCE) {
        Ok(g) => g,
        Err(LockTimeoutError::OwnerDied(g)) => {
            eprintln!("mapshare: {name}: recovered the lock from a dead owner");
            g
        }
        Err(_) => return Err(timed_out(format!("{name}: timed out waiting for the lock"))),
    };
    guard.set(&Record {
        seq: 1,
        sent_at_ns: now_ns(),
        text,
    });
    drop(guard);
    shared.notify();
    say(&format!(
        "pid {}: opened {name}; locked the mutex, wrote record #1 ({} bytes of text), \
         unlocked, notified",
        std::process::id(),
        text.len()
    ))?;
    ack.wait_timeout(PATIENCE)
        .map_err(|_| timed_out(format!("{name}: timed out waiting for the receiver")))?;
    say("the receiver acknowledged; detaching (the segment goes with the last process)")?;
    Ok(ExitCode::SUCCESS)
}
