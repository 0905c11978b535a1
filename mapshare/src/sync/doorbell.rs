//! A doorbell: how a waiting peer sleeps, and how a busy peer wakes it with
//! no system call (and no write to a shared line) while nobody sleeps.
//!
//! One futex word, `seq`: bit 0 ([`SLEEPERS_BIT`]) says "someone may be
//! asleep on this word", the other bits count the rings that found it set.
//! A sleeper sets the bit (compare-and-swap), re-checks its condition and
//! sleeps while `seq` still holds the value with the bit. A ringer, *after*
//! publishing its data with a `SeqCst` store, loads `seq`; only if the bit is
//! set does it swap in the next count with the bit clear, and wake every
//! sleeper. The `SeqCst` publication and load pair with the sleeper's
//! `SeqCst` compare-and-swap and re-check (Dekker): either the ringer sees
//! the bit, or the sleeper's re-check sees the data. A ring between the
//! sleeper's compare-and-swap and its futex call changes `seq`, so the
//! kernel does not put it to sleep.
//!
//! # Why a bit and not a count
//! A count of sleepers (0.1) is never decremented by a sleeper killed with
//! SIGKILL while asleep, so from then on every message paid a futex wake.
//! The bit heals: the next ring clears it (one wake system call, waking
//! nobody), and only a live sleeper sets it again. The price is that a
//! ring wakes every sleeper of the bell, not one; each re-checks its own
//! condition and sleeps again (this is Drepper's mutex 3, "Futexes Are
//! Tricky", applied to a wait queue).
//!
//! | `seq` | meaning |
//! |---|---|
//! | even | nobody asleep (as far as ringers need to know) |
//! | odd | someone may be asleep: the next ring clears the bit and wakes all |

use std::time::{Duration, Instant};

use crate::primitive::{spin_loop, AtomicU32, Ordering};
use crate::sync::next_sleep;
use crate::sys;

/// How a blocking call waits for its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Poll without sleeping: the lowest latency, one core busy while
    /// waiting. After about a thousand empty polls (a few microseconds) the
    /// waiter yields its CPU every 64 polls, so spinners outnumbering the
    /// cores never starve the peer they wait for (a lossless publisher and
    /// two polling subscribers on 2 cores: 99-166 µs per 64 KiB message
    /// without the yield, 5.6-11 µs with it).
    Spin,
    /// Sleep on a futex at once: no CPU while idle, a wake-up costs a
    /// system call on both sides.
    Block,
    /// Poll for `spin` (yielding as [`Spin`](Self::Spin) does), then sleep:
    /// polling latency under steady traffic, no CPU when idle. The default
    /// (50 µs). With more waiting processes than cores, prefer `Block` on
    /// the side that asks and waits for an answer: its spin can hold the
    /// CPU the woken peer needs (`mapshare-rpc-bench` measured a wake-up
    /// round trip of 114 µs with a spinning asker, 7 µs with a blocking one).
    SpinThenBlock {
        /// How long to poll before sleeping.
        spin: Duration,
    },
}

impl Default for WaitStrategy {
    /// Spin for 50 µs, then sleep.
    fn default() -> Self {
        WaitStrategy::SpinThenBlock {
            spin: Duration::from_micros(50),
        }
    }
}

/// Polls after which a spinning waiter yields its CPU every 64 polls (a
/// few microseconds of spinning: steady traffic is found well before).
const YIELD_AFTER_POLLS: u32 = 1024;

/// Bit 0 of a doorbell's `seq`: someone may be asleep on it.
pub(crate) const SLEEPERS_BIT: u32 = 1;

/// The shared word of one doorbell, on its own 128-byte line (the module
/// docs have its state table; any value is valid: garbage costs at most
/// one wake-up).
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Doorbell {
    seq: AtomicU32,
    _pad: [u32; 31],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<Doorbell>() == 128);
crate::pod::shm_state!(Doorbell, "one AtomicU32 and u32 padding; repr(C)");

/// Longest single futex sleep: bounds the cost of a lost wake-up caused by
/// a peer that broke the protocol (or died between publishing and ringing).
pub(crate) const MAX_SLEEP: Duration = Duration::from_millis(100);

impl Doorbell {
    /// A quiet doorbell (for heap-backed tests and loom).
    #[cfg(any(test, mapshare_loom))]
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            seq: AtomicU32::new(0),
            _pad: [0; 31],
        }
    }

    /// Resets; only the creator calls this, before publishing.
    pub(crate) fn init(&self) {
        self.seq.store(0, Ordering::Relaxed);
    }

    /// Wakes every sleeper, if there is one. Call after publishing with a
    /// `SeqCst` store (or a `SeqCst` fence).
    #[inline]
    pub(crate) fn ring(&self) {
        // loom models SeqCst loads and stores as Acquire/Release, without the
        // single total order that makes this Dekker pair correct in the real
        // memory model (and on x86, where the caller's SeqCst store is an
        // `xchg`, a full barrier); a SeqCst fence gives loom that order.
        #[cfg(mapshare_loom)]
        crate::primitive::fence(Ordering::SeqCst);
        // SYNC(doorbell): SeqCst load pairs with the sleeper's SeqCst CAS in `sleep`.
        let s = self.seq.load(Ordering::SeqCst);
        if s & SLEEPERS_BIT != 0 {
            self.wake(s);
        }
    }

    /// The slow half of `ring`: sleepers -> nobody asleep, next count; wake all.
    #[cold]
    fn wake(&self, s: u32) {
        // If the CAS fails, another ringer cleared the bit and woke everyone
        // (a sleeper only ever sets the bit, which was set already).
        if self
            .seq
            .compare_exchange(s, s.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            sys::futex_wake(&self.seq, u32::MAX >> 1);
        }
    }

    /// Whether the sleepers bit is set: the next ring makes a wake system
    /// call (`info` shows it; tests count wake-ups with it).
    pub(crate) fn sleepers_flagged(&self) -> bool {
        self.seq.load(Ordering::SeqCst) & SLEEPERS_BIT != 0
    }

    /// One futex sleep, unless `ready()` holds after registering. Returns
    /// `false` once the deadline has passed.
    fn sleep(&self, ready: &mut impl FnMut() -> bool, deadline: Option<Instant>) -> bool {
        let Some(timeout) = next_sleep(deadline, Some(MAX_SLEEP)) else {
            return false;
        };
        let Some(s) = self.arm() else {
            return true; // changed meanwhile: look again
        };
        // The callers' condition loads are Acquire, not SeqCst: this fence
        // puts them after our registration in the total order, so either the
        // ringer sees the bit or we see its publication (slow path only).
        crate::primitive::fence(Ordering::SeqCst);
        if !ready() {
            sys::futex_wait(&self.seq, s, timeout);
        }
        true
    }

    /// Registers a sleeper: sets the sleepers bit (nobody asleep -> someone
    /// may be asleep, or it is set already) and returns the value to sleep
    /// on, or `None` if the word changed meanwhile (a ring, or another
    /// sleeper): look again. The caller then fences (`SeqCst`), re-checks
    /// its condition and sleeps on [`word`](Self::word) while it holds the
    /// value (the blocking sleep here, or an async wait).
    pub(crate) fn arm(&self) -> Option<u32> {
        let s = self.seq.load(Ordering::Relaxed);
        if s & SLEEPERS_BIT != 0 {
            return Some(s);
        }
        // SYNC(doorbell): SeqCst CAS pairs with the SeqCst load in `ring`.
        self.seq
            .compare_exchange(s, s | SLEEPERS_BIT, Ordering::SeqCst, Ordering::Relaxed)
            .ok()
            .map(|_| s | SLEEPERS_BIT)
    }

    /// The futex word sleepers wait on.
    pub(crate) fn word(&self) -> &AtomicU32 {
        &self.seq
    }

    /// Waits until `ready()` returns true, `deadline` passes, or `slice`
    /// (from now) runs out, as the strategy says. Returns the last value of
    /// `ready()`, or `false` at once when `intact()`, asked after every
    /// futex sleep before anything shared is looked at again, says the
    /// memory is gone. Callers that must look at something nobody rings for
    /// (a peer's liveness) pass a `slice`: one clock read serves it and the
    /// spin phase.
    pub(crate) fn wait_until(
        &self,
        strategy: WaitStrategy,
        deadline: Option<Instant>,
        slice: Option<Duration>,
        intact: &dyn Fn() -> bool,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        if ready() {
            return true;
        }
        // No clock read before the first 64 polls: a message that arrives
        // while we spin costs no system call and no clock read (a vDSO
        // clock read per empty poll halved small-message throughput). The
        // slice and the spin budget start at the first look at the clock.
        let mut deadline = deadline;
        let mut started = false;
        let start = |deadline: &mut Option<Instant>, now: Instant| {
            if let Some(end) = slice.and_then(|s| now.checked_add(s)) {
                *deadline = Some(deadline.map_or(end, |d| d.min(end)));
            }
            match strategy {
                WaitStrategy::SpinThenBlock { spin } => now.checked_add(spin),
                _ => None,
            }
        };
        let mut spin_until = None;
        // Spin phase (none for Block): look at the clock every 64 polls.
        let mut polls: u32 = 0;
        if strategy != WaitStrategy::Block {
            loop {
                if ready() {
                    return true;
                }
                polls = polls.wrapping_add(1);
                if polls % 64 == 0 {
                    let now = Instant::now();
                    if !started {
                        started = true;
                        spin_until = start(&mut deadline, now);
                    }
                    if deadline.is_some_and(|d| now >= d) {
                        return ready();
                    }
                    if spin_until.is_some_and(|s| now >= s) {
                        break;
                    }
                    // Long past a busy peer's pace: let whoever shares
                    // this CPU run (the peer we wait for, on a machine
                    // with fewer cores than spinners) before spinning on.
                    if polls >= YIELD_AFTER_POLLS {
                        std::thread::yield_now();
                    }
                }
                spin_loop();
            }
        }
        if !started {
            start(&mut deadline, Instant::now());
        }
        // Sleep phase.
        loop {
            if ready() {
                return true;
            }
            let slept = self.sleep(&mut ready, deadline);
            if !intact() {
                return false;
            }
            if !slept {
                return ready();
            }
        }
    }
}

#[cfg(all(test, not(mapshare_loom)))]
mod tests {
    use super::*;
    use crate::primitive::AtomicU64;
    use std::sync::Arc;

    #[test]
    fn block_wakes_on_ring() {
        let bell = Arc::new(Doorbell::new());
        let flag = Arc::new(AtomicU64::new(0));
        let (b2, f2) = (bell.clone(), flag.clone());
        let t = std::thread::spawn(move || {
            b2.wait_until(
                WaitStrategy::Block,
                Some(Instant::now() + Duration::from_secs(30)),
                None,
                &|| true,
                || f2.load(Ordering::SeqCst) == 1,
            )
        });
        std::thread::sleep(Duration::from_millis(10));
        flag.store(1, Ordering::SeqCst);
        bell.ring();
        assert!(t.join().unwrap());
    }

    #[test]
    fn deadline_ends_every_strategy() {
        let bell = Doorbell::new();
        for s in [
            WaitStrategy::Spin,
            WaitStrategy::Block,
            WaitStrategy::default(),
        ] {
            let start = Instant::now();
            assert!(!bell.wait_until(
                s,
                Some(start + Duration::from_millis(5)),
                None,
                &|| true,
                || { false }
            ));
            assert!(start.elapsed() >= Duration::from_millis(5));
        }
    }

    #[test]
    fn a_dead_sleepers_flag_costs_one_ring_then_none() {
        let bell = Doorbell::new();
        // A sleeper registers, then "dies" asleep: it never clears anything.
        assert!(!bell.wait_until(
            WaitStrategy::Block,
            Some(Instant::now() + Duration::from_millis(1)),
            None,
            &|| true,
            || false
        ));
        assert!(bell.sleepers_flagged(), "a sleeper leaves the bit set");
        bell.ring(); // the one wake system call, waking nobody
        assert!(!bell.sleepers_flagged(), "the ring heals the bell");
        bell.ring(); // and from now on a ring is a load
        assert!(!bell.sleepers_flagged());
    }
}
