//! Process-shared synchronisation on atomics in a region: [`mutex`] and
//! [`event`]. These modules see only atomics and a liveness oracle, never a
//! file descriptor, so they run on heap memory in unit tests and under loom.

pub(crate) mod doorbell;
pub(crate) mod event;
pub(crate) mod mutex;

use std::time::{Duration, Instant};

/// Tells live lock owners from dead ones.
///
/// A token names one attachment (one open handle) of one process. The
/// segment layer implements this with its registry: a token is a slot and
/// a generation, alive while the slot's byte lock is held by some open file
/// description, which the kernel drops when the process dies.
pub(crate) trait Liveness {
    /// Our own token: non-zero, at most `mutex::TOKEN_MASK`.
    fn token(&self) -> u32;
    /// Whether the attachment named by `token` is still alive. Must answer
    /// `false` for garbage tokens.
    fn is_alive(&self, token: u32) -> bool;
    /// Whether the memory the waits touch is still all there (a segment a
    /// peer shrank is not: touching its lost pages raises `SIGBUS`). Asked
    /// after every sleep, before the shared words are looked at again; may
    /// make a system call. Heap memory is always intact.
    fn intact(&self) -> bool {
        true
    }
}

/// How long to sleep before the next look, given an optional deadline and
/// a cap. `None` when the deadline has passed.
pub(crate) fn next_sleep(
    deadline: Option<Instant>,
    cap: Option<Duration>,
) -> Option<Option<Duration>> {
    match deadline {
        None => Some(cap),
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                return None;
            }
            let left = d - now;
            Some(Some(cap.map_or(left, |c| c.min(left))))
        }
    }
}
