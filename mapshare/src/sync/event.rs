//! A process-shared event: "data is ready", without a window or a message
//! loop.
//!
//! Who writes what: `notify` sets `signaled` and bumps `seq` (the futex
//! word); waiters count themselves in `waiters` so a notify with nobody
//! asleep costs no system call; an auto-reset waiter consumes `signaled`
//! with a CAS, a manual-reset one only reads it.
//!
//! No lost wake-up: a waiter reads `seq` before checking `signaled`, and
//! sleeps only while `seq` still holds that value. A `notify` that lands in
//! between changes `seq`, so the kernel returns at once. The `waiters`
//! count and `signaled` are a Dekker pair (each side stores one, then loads
//! the other), hence `SeqCst` on those four accesses.

use std::time::Instant;

use crate::primitive::{AtomicU32, Ordering};
use crate::sync::next_sleep;
use crate::sys;

/// Longest single futex sleep (see `sleep_while`).
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_millis(100);

/// Event mode word: a successful wait consumes the signal.
pub(crate) const MODE_AUTO: u32 = 0;
/// Event mode word: the signal stays set until `reset`.
pub(crate) const MODE_MANUAL: u32 = 1;

/// The shared state of one event, on its own 128-byte line.
///
/// | word | values |
/// |---|---|
/// | `seq` | bumped by every `notify`; the futex word |
/// | `signaled` | `0` clear, `1` set; anything else counts as set |
/// | `waiters` | processes possibly asleep on `seq` (a hint; garbage only costs a wake) |
/// | `mode` | `MODE_AUTO` or `MODE_MANUAL`; anything else acts as manual |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct EventWord {
    seq: AtomicU32,
    signaled: AtomicU32,
    waiters: AtomicU32,
    mode: AtomicU32,
    _pad: [u32; 28],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<EventWord>() == 128);

impl EventWord {
    /// A clear event (for heap-backed tests and loom).
    #[cfg(any(test, mapshare_loom))]
    pub(crate) fn new(mode: u32) -> EventWord {
        EventWord {
            seq: AtomicU32::new(0),
            signaled: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            mode: AtomicU32::new(mode),
            _pad: [0; 28],
        }
    }

    /// Sets up a clear event; only the creator calls this, before publishing.
    pub(crate) fn init(&self, mode: u32) {
        self.seq.store(0, Ordering::Relaxed);
        self.signaled.store(0, Ordering::Relaxed);
        self.waiters.store(0, Ordering::Relaxed);
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
        // and orders before our `waiters` load (Dekker with `wait`).
        self.signaled.store(1, Ordering::SeqCst);
        self.bump();
    }

    /// Bumps `seq` and wakes sleepers, without touching `signaled`: for
    /// callers that keep their own condition (the mailbox).
    pub(crate) fn bump(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) != 0 {
            sys::futex_wake(&self.seq, u32::MAX >> 1);
        }
    }

    /// Clears the signal (manual-reset events).
    pub(crate) fn reset(&self) {
        self.signaled.store(0, Ordering::SeqCst);
    }

    /// Whether the signal is set, without consuming it.
    pub(crate) fn is_set(&self) -> bool {
        self.signaled.load(Ordering::SeqCst) != 0
    }

    fn try_consume(&self) -> bool {
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
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.try_consume() {
                return true;
            }
            let seen = self.seq.load(Ordering::SeqCst);
            if !self.sleep_while(seen, deadline, true) {
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
    pub(crate) fn wait_change(&self, seen: u32, deadline: Option<Instant>) -> bool {
        loop {
            if self.seq() != seen {
                return true;
            }
            if !self.sleep_while(seen, deadline, false) {
                return self.seq() != seen;
            }
        }
    }

    /// One futex sleep on `seq == seen`, registered in `waiters`. `false`
    /// once the deadline has passed.
    fn sleep_while(&self, seen: u32, deadline: Option<Instant>, check_signal: bool) -> bool {
        // Capped: a notifier killed between setting `signaled` and bumping
        // `seq` never wakes us; the next look finds the signal anyway.
        let Some(sleep) = next_sleep(deadline, Some(MAX_SLEEP)) else {
            return false;
        };
        self.waiters.fetch_add(1, Ordering::SeqCst);
        // Re-check after registering (Dekker with `notify`).
        let ready = if check_signal {
            self.is_set()
        } else {
            self.seq() != seen
        };
        if !ready {
            sys::futex_wait(&self.seq, seen, sleep);
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
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
        assert!(e.wait(Some(Instant::now())));
        assert!(!e.wait(Some(Instant::now() + Duration::from_millis(5))));
    }

    #[test]
    fn manual_reset_stays_set_until_reset() {
        let e = EventWord::new(MODE_MANUAL);
        e.notify();
        assert!(e.wait(Some(Instant::now())));
        assert!(e.wait(Some(Instant::now())));
        e.reset();
        assert!(!e.wait(Some(Instant::now())));
    }

    #[test]
    fn notify_wakes_a_sleeping_thread() {
        let e = Arc::new(EventWord::new(MODE_AUTO));
        let e2 = e.clone();
        let t = std::thread::spawn(move || e2.wait(Some(Instant::now() + Duration::from_secs(30))));
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
                    e2.wait(Some(Instant::now() + Duration::from_secs(30))),
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
}
