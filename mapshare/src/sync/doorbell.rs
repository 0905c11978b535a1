//! A doorbell: how a waiting peer sleeps, and how a busy peer wakes it with
//! no system call (and no write to a shared line) while nobody sleeps.
//!
//! Who writes what: a sleeper counts itself in `sleepers`, reads `seq`,
//! re-checks its condition and sleeps on `seq`; a ringer, *after* publishing
//! its data with a `SeqCst` store, reads `sleepers` and only if non-zero
//! bumps `seq` and wakes everyone. The `SeqCst` publication and the
//! `SeqCst` load of `sleepers` pair with the sleeper's `SeqCst` increment
//! and re-check (Dekker): either the ringer sees the sleeper, or the
//! sleeper's re-check sees the data. A bump between the sleeper's read of
//! `seq` and its futex call changes `seq`, so the kernel does not sleep.

use std::time::{Duration, Instant};

use crate::primitive::{spin_loop, AtomicU32, Ordering};
use crate::sync::next_sleep;
use crate::sys;

/// How a blocking call waits for its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Poll without sleeping: the lowest latency, one core busy while waiting.
    Spin,
    /// Sleep on a futex at once: no CPU while idle, a wake-up costs a
    /// system call on both sides.
    Block,
    /// Poll for `spin`, then sleep: polling latency under steady traffic, no
    /// CPU when idle.
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

/// The shared words of one doorbell, on their own 128-byte line.
///
/// | word | meaning |
/// |---|---|
/// | `seq` | futex word; bumped by a ring that found sleepers |
/// | `sleepers` | peers that may be asleep (a hint: garbage only costs a wake-up) |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Doorbell {
    seq: AtomicU32,
    sleepers: AtomicU32,
    _pad: [u32; 30],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<Doorbell>() == 128);

/// Longest single futex sleep: bounds the cost of a lost wake-up caused by
/// a peer that broke the protocol (or died between publishing and ringing).
const MAX_SLEEP: Duration = Duration::from_millis(100);

impl Doorbell {
    /// A quiet doorbell (for heap-backed tests and loom).
    #[cfg(any(test, mapshare_loom))]
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            seq: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            _pad: [0; 30],
        }
    }

    /// Resets; only the creator calls this, before publishing.
    pub(crate) fn init(&self) {
        self.seq.store(0, Ordering::Relaxed);
        self.sleepers.store(0, Ordering::Relaxed);
    }

    /// Wakes every sleeper, if there is one. Call after publishing with a
    /// `SeqCst` store (or a `SeqCst` fence).
    #[inline]
    pub(crate) fn ring(&self) {
        self.ring_n(u32::MAX >> 1);
    }

    /// As [`Doorbell::ring`], waking one sleeper: for a bell only one peer
    /// sleeps on (a channel's receiver).
    #[inline]
    pub(crate) fn ring_one(&self) {
        self.ring_n(1);
    }

    #[inline]
    fn ring_n(&self, n: u32) {
        // loom models SeqCst loads and stores as Acquire/Release, without the
        // single total order that makes this Dekker pair correct in the real
        // memory model (and on x86, where the caller's SeqCst store is an
        // `xchg`, a full barrier); a SeqCst fence gives loom that order.
        #[cfg(mapshare_loom)]
        crate::primitive::fence(Ordering::SeqCst);
        // SYNC(doorbell): SeqCst load pairs with the SeqCst increment in `sleep`.
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.seq.fetch_add(1, Ordering::SeqCst);
            sys::futex_wake(&self.seq, n);
        }
    }

    /// One futex sleep, unless `ready()` holds after registering. Returns
    /// `false` once the deadline has passed.
    fn sleep(&self, ready: &mut impl FnMut() -> bool, deadline: Option<Instant>) -> bool {
        let Some(timeout) = next_sleep(deadline, Some(MAX_SLEEP)) else {
            return false;
        };
        // SYNC(doorbell): pairs with the SeqCst load in `ring`.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // The callers' condition loads are Acquire, not SeqCst: this fence
        // puts them after our registration in the total order, so either the
        // ringer sees us or we see its publication (slow path only).
        crate::primitive::fence(Ordering::SeqCst);
        let seen = self.seq.load(Ordering::SeqCst);
        if !ready() {
            sys::futex_wait(&self.seq, seen, timeout);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        true
    }

    /// Waits until `ready()` returns true or `deadline` passes, as the
    /// strategy says. Returns the last value of `ready()`.
    pub(crate) fn wait_until(
        &self,
        strategy: WaitStrategy,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        if ready() {
            return true;
        }
        let spin_until = match strategy {
            WaitStrategy::Spin => None,
            WaitStrategy::Block => Some(Instant::now()),
            WaitStrategy::SpinThenBlock { spin } => Some(Instant::now() + spin),
        };
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
                    if deadline.is_some_and(|d| now >= d) {
                        return ready();
                    }
                    if spin_until.is_some_and(|s| now >= s) {
                        break;
                    }
                }
                spin_loop();
            }
        }
        // Sleep phase.
        loop {
            if ready() {
                return true;
            }
            if !self.sleep(&mut ready, deadline) {
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
            assert!(!bell.wait_until(s, Some(start + Duration::from_millis(5)), || false));
            assert!(start.elapsed() >= Duration::from_millis(5));
        }
    }
}
