//! A robust process-shared mutex on one futex word.
//!
//! The word holds the owner's liveness token, so a waiter can tell whether
//! the owner died; a dead owner's lock is taken over by exactly one waiter
//! (a compare-and-swap on the exact word it judged dead), which learns that
//! the owner died ([`Acquired::OwnerDied`]). This is the kernel's robust
//! futex idea, with the death check done by the waiter through the segment
//! registry instead of the thread's robust list: glibc's robust list keeps
//! pointers inside the shared mutex, which a hostile peer could redirect,
//! and it cannot live beside glibc's own list.
//!
//! Algorithm: Drepper, "Futexes Are Tricky", mutex 3 (a waiters bit instead
//! of a count), plus the owner token.
//!
//! Who writes what: lockers CAS the state from unlocked or from a dead
//! owner's value; the owner swaps it to 0 on unlock; waiters set
//! `WAITERS_BIT`. Nothing else is in the word.

use std::time::Instant;

use crate::primitive::{spin_loop, AtomicU32, Ordering};
use crate::sync::{next_sleep, Liveness};
use crate::sys;

/// Set while someone holds the lock.
pub(crate) const LOCKED_BIT: u32 = 1 << 31;
/// Set when a waiter may be asleep on the word; the unlocker must wake one.
pub(crate) const WAITERS_BIT: u32 = 1 << 30;
/// The owner's liveness token.
pub(crate) const TOKEN_MASK: u32 = (1 << 28) - 1;

/// How often a sleeping waiter wakes to check that the owner is alive.
/// Bounds how long a dead owner's lock stays blocked.
pub(crate) const OWNER_POLL: std::time::Duration = std::time::Duration::from_millis(5);

const SPINS: u32 = 64;

/// The shared state of one mutex, on its own 128-byte line.
///
/// `state`:
///
/// | value | meaning |
/// |---|---|
/// | `0` | unlocked |
/// | `LOCKED_BIT \| token` | locked by `token`, nobody asleep |
/// | `LOCKED_BIT \| WAITERS_BIT \| token` | locked, waiters may be asleep |
/// | anything else | garbage from a peer: treated as locked by a dead owner |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct MutexWord {
    pub(crate) state: AtomicU32,
    _pad: [u32; 31],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<MutexWord>() == 128);
crate::pod::shm_state!(MutexWord, "one AtomicU32 and u32 padding; repr(C)");

impl MutexWord {
    /// Whether the lock bit is set (by anyone, alive or dead).
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED_BIT != 0
    }

    /// An unlocked mutex (for heap-backed tests and loom).
    #[cfg(any(test, mapshare_loom))]
    pub(crate) fn new() -> MutexWord {
        MutexWord {
            state: AtomicU32::new(0),
            _pad: [0; 31],
        }
    }

    /// Resets to unlocked; only the creator calls this, before publishing.
    pub(crate) fn init(&self) {
        self.state.store(0, Ordering::Relaxed);
    }
}

/// How a lock was acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// The lock was free, or released normally.
    Clean,
    /// Taken over from an owner that died holding it.
    OwnerDied,
}

/// Why a lock was not acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fail {
    /// `try_lock` found it held by a live owner.
    WouldBlock,
    /// The deadline passed.
    Timeout,
    /// The memory of the word went away while we slept (a shrunk segment).
    Truncated,
}

pub(crate) use crate::wait::Wait;

fn owner_alive(state: u32, peers: &dyn Liveness) -> bool {
    // Garbage (LOCKED clear but non-zero, or bits 28-29 set) has no live owner.
    state & LOCKED_BIT != 0
        && state & !(LOCKED_BIT | WAITERS_BIT | TOKEN_MASK) == 0
        && peers.is_alive(state & TOKEN_MASK)
}

/// Takes the lock.
pub(crate) fn lock(w: &MutexWord, peers: &dyn Liveness, wait: Wait) -> Result<Acquired, Fail> {
    lock_from(w, peers, wait, false)
}

/// Takes the lock without blocking the thread (feature `tokio`): tries,
/// then sleeps on the word asynchronously with the waiters bit set, as
/// the blocking form does, looking at the owner's liveness after each
/// sleep.
#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
pub(crate) async fn lock_async(
    w: &MutexWord,
    peers: &(dyn Liveness + Sync),
) -> Result<Acquired, Fail> {
    let mut waited = false;
    loop {
        match lock_from(w, peers, Wait::Try, waited) {
            Err(Fail::WouldBlock) => {}
            done => return done,
        }
        let s = w.state.load(Ordering::Acquire);
        if s == 0 {
            continue;
        }
        // Ask for a wake-up: locked -> locked with waiters.
        if s & WAITERS_BIT == 0
            && w.state
                .compare_exchange(s, s | WAITERS_BIT, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        waited = true;
        crate::asyncio::wait(&w.state, s | WAITERS_BIT, OWNER_POLL).await;
        if !peers.intact() {
            return Err(Fail::Truncated);
        }
    }
}

/// [`lock`], for a caller that has slept on the word already (`waited`:
/// the lock it takes keeps the waiters bit, since others may sleep too).
fn lock_from(
    w: &MutexWord,
    peers: &dyn Liveness,
    wait: Wait,
    waited: bool,
) -> Result<Acquired, Fail> {
    let me = LOCKED_BIT | (peers.token() & TOKEN_MASK);
    // Fast path: unlocked -> locked by us.
    // SYNC(mutex): Acquire pairs with the Release swap in `unlock`; Release
    // publishes our registry slot (its generation) with our token, so a
    // waiter that reads the token with Acquire sees the slot's generation.
    let first = if waited { me | WAITERS_BIT } else { me };
    if w.state
        .compare_exchange(0, first, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        return Ok(Acquired::Clean);
    }
    let mut waited = waited;
    let mut spins = 0;
    let mut rounds: u32 = 0;
    let mut check_owner = matches!(wait, Wait::Try);
    loop {
        // A peer that keeps changing the word makes every CAS fail: look at
        // the clock now and then, so a deadline still ends the wait.
        rounds = rounds.wrapping_add(1);
        if rounds % 256 == 0 {
            match wait {
                Wait::Try if rounds >= 1024 => return Err(Fail::WouldBlock),
                Wait::Until(Some(d)) if Instant::now() >= d => return Err(Fail::Timeout),
                _ => {}
            }
        }
        // Acquire: the owner's registry slot (its generation) was written
        // before it locked; the liveness check below must see it.
        let s = w.state.load(Ordering::Acquire);
        if s == 0 {
            // Unlocked: take it, keeping WAITERS if we slept (others may too).
            let new = if waited { me | WAITERS_BIT } else { me };
            // SYNC(mutex): as on the fast path.
            if w.state
                .compare_exchange(0, new, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Acquired::Clean);
            }
            continue;
        }
        if check_owner && !owner_alive(s, peers) {
            // Dead owner (or garbage): locked by us, waking ones kept.
            // Exactly one taker wins this CAS on the exact value judged dead.
            // SYNC(mutex): Acquire pairs with the dead owner's writes as far as
            // they went (Release in any earlier `unlock`).
            if w.state
                .compare_exchange(
                    s,
                    me | (s & WAITERS_BIT),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return Ok(Acquired::OwnerDied);
            }
            continue;
        }
        let deadline = match wait {
            Wait::Try => return Err(Fail::WouldBlock),
            Wait::Until(d) => d,
        };
        if spins < SPINS {
            spins += 1;
            spin_loop();
            continue;
        }
        // Ask for a wake-up: locked -> locked with waiters.
        if s & WAITERS_BIT == 0
            && w.state
                .compare_exchange(s, s | WAITERS_BIT, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let Some(sleep) = next_sleep(deadline, Some(OWNER_POLL)) else {
            return Err(Fail::Timeout);
        };
        waited = true;
        sys::futex_wait(&w.state, s | WAITERS_BIT, sleep);
        // Before the word is looked at again: a segment a peer shrank
        // while we slept would raise SIGBUS there.
        if !peers.intact() {
            return Err(Fail::Truncated);
        }
        // Whether woken, timed out or interrupted: look again, and check the
        // owner's liveness before sleeping once more.
        check_owner = true;
    }
}

/// Releases the lock; wakes one sleeper if any may be waiting.
pub(crate) fn unlock(w: &MutexWord) {
    // SYNC(mutex): Release publishes the critical section to the next locker.
    let s = w.state.swap(0, Ordering::Release);
    if s & WAITERS_BIT != 0 {
        sys::futex_wake(&w.state, 1);
    }
}

#[cfg(all(test, not(mapshare_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    struct Fake {
        me: u32,
        dead: u32,
    }

    impl Liveness for Fake {
        fn token(&self) -> u32 {
            self.me
        }
        fn is_alive(&self, token: u32) -> bool {
            token != self.dead
        }
    }

    #[test]
    fn lock_unlock_on_heap() {
        let w = MutexWord::new();
        let p = Fake { me: 1, dead: 99 };
        assert_eq!(lock(&w, &p, Wait::Try), Ok(Acquired::Clean));
        assert_eq!(
            lock(&w, &Fake { me: 2, dead: 99 }, Wait::Try),
            Err(Fail::WouldBlock)
        );
        unlock(&w);
        assert_eq!(lock(&w, &p, Wait::Try), Ok(Acquired::Clean));
    }

    #[test]
    fn dead_owner_is_taken_over_on_each_path() {
        for wait in [
            Wait::Try,
            Wait::Until(None),
            Wait::Until(Some(Instant::now() + Duration::from_secs(5))),
        ] {
            let w = MutexWord::new();
            w.state.store(LOCKED_BIT | 7, Ordering::Relaxed);
            assert_eq!(
                lock(&w, &Fake { me: 1, dead: 7 }, wait),
                Ok(Acquired::OwnerDied)
            );
            assert_eq!(w.state.load(Ordering::Relaxed) & TOKEN_MASK, 1);
        }
    }

    #[test]
    fn garbage_state_is_recovered_not_hung() {
        let w = MutexWord::new();
        w.state.store(0x1234_5678, Ordering::Relaxed); // LOCKED clear, non-zero
        assert_eq!(
            lock(&w, &Fake { me: 1, dead: 0 }, Wait::Try),
            Ok(Acquired::OwnerDied)
        );
    }

    #[test]
    fn timeout_when_live_owner_keeps_it() {
        let w = MutexWord::new();
        w.state.store(LOCKED_BIT | 7, Ordering::Relaxed);
        let start = Instant::now();
        let r = lock(
            &w,
            &Fake { me: 1, dead: 0 },
            Wait::Until(Some(start + Duration::from_millis(30))),
        );
        assert_eq!(r, Err(Fail::Timeout));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn threads_count_under_lock() {
        let w = Arc::new(MutexWord::new());
        let counter = Arc::new(AtomicU32::new(0));
        let inside = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (1..=4)
            .map(|t| {
                let (w, c, inside) = (w.clone(), counter.clone(), inside.clone());
                std::thread::spawn(move || {
                    let p = Fake { me: t, dead: 0 };
                    for _ in 0..2000 {
                        assert_eq!(lock(&w, &p, Wait::Until(None)), Ok(Acquired::Clean));
                        assert!(!inside.swap(true, Ordering::Relaxed), "two holders at once");
                        let v = c.load(Ordering::Relaxed);
                        c.store(v + 1, Ordering::Relaxed);
                        inside.store(false, Ordering::Relaxed);
                        unlock(&w);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::Relaxed), 8000);
    }
}
