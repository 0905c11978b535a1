//! A process-shared event: "data is ready", without a window or a message
//! loop.
//!
//! Who writes what: `notify` sets `signaled` and bumps `seq` (the futex
//! word); a waiter about to sleep sets bit 0 of `seq` ([`WAITERS_BIT`]), so
//! a notify with nobody asleep costs no system call; an auto-reset waiter
//! consumes `signaled` with a CAS, a manual-reset one only reads it.
//!
//! No lost wake-up: a waiter reads `seq` before checking `signaled`, and
//! sleeps only while `seq` still holds that value (with the bit). A
//! `notify` that lands in between changes `seq`, so the kernel returns at
//! once. The bit and `signaled` are a Dekker pair (each side writes one,
//! then reads the other), hence `SeqCst` on those accesses.
//!
//! A waiter killed while asleep leaves the bit set: the next notify clears
//! it (one wake system call that wakes nobody), and only a live waiter
//! sets it again. 0.1 kept a count of waiters there, which a killed waiter
//! raised for good (see [`crate::sync::doorbell`], "Why a bit").

use std::time::Instant;

use crate::primitive::{AtomicU32, Ordering};
use crate::sync::next_sleep;
use crate::sys;

/// Longest single futex sleep (see `sleep_while`).
pub(crate) const MAX_SLEEP: std::time::Duration = std::time::Duration::from_millis(100);

/// Event mode word: a successful wait consumes the signal.
pub(crate) const MODE_AUTO: u32 = 0;
/// Event mode word: the signal stays set until `reset`.
pub(crate) const MODE_MANUAL: u32 = 1;

/// The shared state of one event, on its own 128-byte line.
///
/// | word | values |
/// |---|---|
/// | `seq` | bits 1..: advanced by every `notify` / `bump`; bit 0 ([`WAITERS_BIT`]): someone may be asleep. The futex word |
/// | `signaled` | `0` clear, `1` set; anything else counts as set |
/// | `_unused` | was the waiter count in format 1; always 0 |
/// | `mode` | `MODE_AUTO` or `MODE_MANUAL`; anything else acts as manual |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct EventWord {
    seq: AtomicU32,
    signaled: AtomicU32,
    _unused: AtomicU32,
    mode: AtomicU32,
    _pad: [u32; 28],
}

/// Bit 0 of `seq`: a waiter may be asleep; the next `bump` wakes everyone.
pub(crate) const WAITERS_BIT: u32 = 1;

/// `seq` without the waiters bit: what changes with each notification.
fn count(seq: u32) -> u32 {
    seq & !WAITERS_BIT
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<EventWord>() == 128);
crate::pod::shm_state!(EventWord, "AtomicU32s and u32 padding; repr(C)");

impl EventWord {
    /// A clear event (for heap-backed tests and loom).
    #[cfg(any(test, mapshare_loom))]
    pub(crate) fn new(mode: u32) -> EventWord {
        EventWord {
            seq: AtomicU32::new(0),
            signaled: AtomicU32::new(0),
            _unused: AtomicU32::new(0),
            mode: AtomicU32::new(mode),
            _pad: [0; 28],
        }
    }

    /// Sets up a clear event; only the creator calls this, before publishing.
    pub(crate) fn init(&self, mode: u32) {
        self.seq.store(0, Ordering::Relaxed);
        self.signaled.store(0, Ordering::Relaxed);
        self._unused.store(0, Ordering::Relaxed);
        self.mode.store(mode, Ordering::Relaxed);
    }

    /// Whether this is a manual-reset event.
    pub(crate) fn is_manual(&self) -> bool {
        self.mode.load(Ordering::Relaxed) != MODE_AUTO
    }

    /// Sets the event and wakes every waiter (auto-reset: one of them
    /// consumes it; the others sleep again).
    pub(crate) fn notify(&self) {
        // SYNC(event): SeqCst store pairs with the SeqCst load in `try_consume`
        // and orders before the look at the waiters bit in `bump`.
        self.signaled.store(1, Ordering::SeqCst);
        self.bump();
    }

    /// Bumps `seq` and wakes sleepers, without touching `signaled`: for
    /// callers that keep their own condition (the mailbox).
    pub(crate) fn bump(&self) {
        // Any -> next count, waiters bit clear.
        // SYNC(event): SeqCst read-modify-write: orders our `signaled` store
        // before the look at the waiters bit (Dekker with `sleep_while`).
        let old = self
            .seq
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                Some(count(s).wrapping_add(2))
            })
            .unwrap_or_else(|s| s); // the closure never refuses
        if old & WAITERS_BIT != 0 {
            sys::futex_wake(&self.seq, u32::MAX >> 1);
        }
    }

    /// Whether the waiters bit is set (tests check that it heals).
    #[cfg(all(test, not(mapshare_loom)))]
    pub(crate) fn waiters_flagged(&self) -> bool {
        self.seq.load(Ordering::SeqCst) & WAITERS_BIT != 0
    }

    /// Clears the signal (manual-reset events).
    pub(crate) fn reset(&self) {
        self.signaled.store(0, Ordering::SeqCst);
    }

    /// Whether the signal is set, without consuming it.
    pub(crate) fn is_set(&self) -> bool {
        self.signaled.load(Ordering::SeqCst) != 0
    }

    pub(crate) fn try_consume(&self) -> bool {
        if self.is_manual() {
            return self.is_set();
        }
        // SYNC(event): pairs with the SeqCst store in `notify`.
        let s = self.signaled.load(Ordering::SeqCst);
        s != 0
            && self
                .signaled
                .compare_exchange(s, 0, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
    }

    /// Waits for the signal (consuming it in auto-reset mode) until the
    /// deadline. `true` if signalled.
    ///
    /// `intact()` is asked after every sleep, before the word is looked at
    /// again: `false` there ends the wait at once (unsignalled).
    pub(crate) fn wait(&self, deadline: Option<Instant>, intact: &dyn Fn() -> bool) -> bool {
        loop {
            if self.try_consume() {
                return true;
            }
            let seen = self.seq.load(Ordering::SeqCst);
            let slept = self.sleep_while(seen, deadline, true);
            if !intact() {
                return false;
            }
            if !slept {
                return self.try_consume();
            }
        }
    }

    /// The current notification count, for [`EventWord::wait_change`].
    pub(crate) fn seq(&self) -> u32 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Waits until `seq` differs from `seen` or the deadline passes.
    /// `true` if it changed.
    /// `intact()` as for [`EventWord::wait`].
    pub(crate) fn wait_change(
        &self,
        seen: u32,
        deadline: Option<Instant>,
        intact: &dyn Fn() -> bool,
    ) -> bool {
        loop {
            if count(self.seq()) != count(seen) {
                return true;
            }
            let slept = self.sleep_while(seen, deadline, false);
            if !intact() {
                return false;
            }
            if !slept {
                return count(self.seq()) != count(seen);
            }
        }
    }

    /// Registers a waiter while `seq` still counts `seen`: sets the waiters
    /// bit (nobody asleep -> a waiter may be asleep, if not set already)
    /// and returns the value to sleep on, or `None` if `seq` changed
    /// meanwhile (look again). The caller then fences (`SeqCst`), re-checks
    /// and sleeps on the word while it holds that value.
    pub(crate) fn arm(&self, seen: u32) -> Option<u32> {
        let s = self.seq.load(Ordering::Relaxed);
        if count(s) != count(seen) {
            return None;
        }
        let flagged = s | WAITERS_BIT;
        // SYNC(event): SeqCst CAS pairs with the SeqCst RMW in `bump`.
        if s != flagged
            && self
                .seq
                .compare_exchange(s, flagged, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(flagged)
    }

    /// The futex word waiters sleep on.
    pub(crate) fn word(&self) -> &AtomicU32 {
        &self.seq
    }

    /// One futex sleep while `seq` still counts `seen`, with the waiters
    /// bit set. `false` once the deadline has passed.
    fn sleep_while(&self, seen: u32, deadline: Option<Instant>, check_signal: bool) -> bool {
        // Capped: a notifier killed between setting `signaled` and bumping
        // `seq` never wakes us; the next look finds the signal anyway.
        let Some(sleep) = next_sleep(deadline, Some(MAX_SLEEP)) else {
            return false;
        };
        let Some(flagged) = self.arm(seen) else {
            return true; // notified or changed meanwhile: look again
        };
        crate::primitive::fence(Ordering::SeqCst);
        // Re-check after registering (Dekker with `notify`).
        let ready = if check_signal {
            self.is_set()
        } else {
            count(self.seq()) != count(seen)
        };
        if !ready {
            sys::futex_wait(&self.seq, flagged, sleep);
        }
        true
    }
}

#[cfg(all(test, not(mapshare_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn auto_reset_consumes_once() {
        let e = EventWord::new(MODE_AUTO);
        e.notify();
        assert!(e.wait(Some(Instant::now()), &|| true));
        assert!(!e.wait(Some(Instant::now() + Duration::from_millis(5)), &|| true));
    }

    #[test]
    fn manual_reset_stays_set_until_reset() {
        let e = EventWord::new(MODE_MANUAL);
        e.notify();
        assert!(e.wait(Some(Instant::now()), &|| true));
        assert!(e.wait(Some(Instant::now()), &|| true));
        e.reset();
        assert!(!e.wait(Some(Instant::now()), &|| true));
    }

    #[test]
    fn notify_wakes_a_sleeping_thread() {
        let e = Arc::new(EventWord::new(MODE_AUTO));
        let e2 = e.clone();
        let t = std::thread::spawn(move || {
            e2.wait(Some(Instant::now() + Duration::from_secs(30)), &|| true)
        });
        std::thread::sleep(Duration::from_millis(20));
        e.notify();
        assert!(t.join().unwrap());
    }

    #[test]
    fn racing_notify_and_wait_lose_nothing() {
        let e = Arc::new(EventWord::new(MODE_AUTO));
        let n = 2000;
        let e2 = e.clone();
        let t = std::thread::spawn(move || {
            let mut got = 0;
            while got < n {
                assert!(
                    e2.wait(Some(Instant::now() + Duration::from_secs(30)), &|| true),
                    "lost wake-up after {got}"
                );
                got += 1;
            }
        });
        for _ in 0..n {
            e.notify();
            // Wait until consumed, so each notify is one signal.
            while e.is_set() {
                std::thread::yield_now();
            }
        }
        t.join().unwrap();
    }

    #[test]
    fn a_dead_waiters_flag_is_cleared_by_the_next_notify() {
        let e = EventWord::new(MODE_AUTO);
        assert!(!e.wait(Some(Instant::now() + Duration::from_millis(1)), &|| true));
        assert!(
            e.waiters_flagged(),
            "a waiter that timed out (or died) leaves the bit"
        );
        e.notify();
        assert!(!e.waiters_flagged(), "the notify heals the event");
        assert!(e.wait(Some(Instant::now()), &|| true));
        let seen = e.seq();
        e.bump();
        assert!(
            e.wait_change(seen, Some(Instant::now()), &|| true),
            "a bump is a change"
        );
    }
}
