//! SIGINT, SIGTERM and SIGHUP: caught on a thread of their own, so that a
//! verb waiting on shared memory ends its wait (every wait runs in short
//! slices, see [`wait_sliced`]), drops its handles (which cleans up what
//! the lifetime rules say) and exits with the conventional status,
//! 128 + the signal's number. A second signal while the first is being
//! handled ends the process at once.
//!
//! While `lock` runs its command, signals are forwarded to the command
//! instead (SIGINT only when a process sent it: a terminal's Ctrl-C has
//! already reached the whole foreground group), and `lock` waits for it.
//!
//! Windows has no signals: nothing is caught there (Ctrl-C, `taskkill`
//! and `TerminateProcess` end the process at once; the system releases its
//! locks and registry slots, and what it attached is removed by the next
//! opener or `gc`), so [`caught`] is always `None`.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

#[cfg(unix)]
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
#[cfg(unix)]
use signal_hook::iterator::exfiltrator::WithOrigin;
#[cfg(unix)]
use signal_hook::iterator::SignalsInfo;
#[cfg(unix)]
use signal_hook::low_level::siginfo::Cause;

use crate::exit::Exit;

/// The first signal caught (0: none).
static CAUGHT: AtomicI32 = AtomicI32::new(0);
/// The command `lock` runs (0: none): signals go to it.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// How long one slice of a wait lasts: the delay between a signal and the
/// end of the wait it interrupts.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// Nothing to catch on Windows (see the module docs).
#[cfg(not(unix))]
pub(crate) fn install() {}

/// Starts catching the signals. Without a thread (the system refused), the
/// default actions stay: the process dies of the signal, as before.
#[cfg(unix)]
pub(crate) fn install() {
    let Ok(mut signals) = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for origin in signals.forever() {
                let sig = origin.signal;
                let child = CHILD.load(Ordering::Acquire);
                if child > 0 {
                    let from_tty = sig == SIGINT && !matches!(origin.cause, Cause::Sent(_));
                    if !from_tty {
                        forward(child, sig);
                    }
                    continue;
                }
                if CAUGHT
                    .compare_exchange(0, sig, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    // A second one: the user insists.
                    std::process::exit(128 + sig);
                }
            }
        });
}

#[cfg(unix)]
fn forward(child: i32, sig: i32) {
    let (Some(pid), Some(signal)) = (
        rustix::process::Pid::from_raw(child),
        rustix::process::Signal::from_named_raw(sig),
    ) else {
        return;
    };
    let _ = rustix::process::kill_process(pid, signal);
}

/// Routes signals to the command `pid` from now on (`None`: back to us).
pub(crate) fn forward_to(pid: Option<u32>) {
    let raw = pid.and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    CHILD.store(raw, Ordering::Release);
}

/// The signal caught, if any.
pub(crate) fn caught() -> Option<i32> {
    match CAUGHT.load(Ordering::Acquire) {
        0 => None,
        sig => Some(sig),
    }
}

/// The quiet error that ends a verb interrupted by `sig`: exit status
/// 128 + `sig`, as a shell reports a death by that signal.
pub(crate) fn interrupted(sig: i32) -> anyhow::Error {
    Exit {
        code: u8::try_from(128 + sig).unwrap_or(255),
        message: String::new(),
    }
    .into()
}

/// Fails with [`interrupted`] if a signal was caught.
pub(crate) fn check() -> anyhow::Result<()> {
    match caught() {
        Some(sig) => Err(interrupted(sig)),
        None => Ok(()),
    }
}

/// How a sliced wait ended.
pub(crate) enum Waited<T> {
    /// The call finished (successfully or not) with this.
    Done(T),
    /// The caller's deadline passed.
    TimedOut,
}

/// Runs a waiting call in slices of [`SLICE`] until `until` (`None`: as
/// long as it takes), ending early with [`interrupted`] when a signal is
/// caught. `op(deadline)` waits until `deadline` and returns `None` if it
/// timed out, or `Some` with its outcome.
pub(crate) fn wait_sliced<T>(
    until: Option<Instant>,
    mut op: impl FnMut(Instant) -> Option<T>,
) -> anyhow::Result<Waited<T>> {
    loop {
        check()?;
        let slice = Instant::now() + SLICE;
        let d = until.map_or(slice, |u| u.min(slice));
        if let Some(v) = op(d) {
            return Ok(Waited::Done(v));
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            return Ok(Waited::TimedOut);
        }
    }
}
