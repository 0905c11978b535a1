//! Loom models of the lock-free core: the lane (spsc), the robust mutex,
//! the event and the doorbell. Run with
//! `RUSTFLAGS="--cfg mapshare_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p mapshare --lib --release loom`.
//!
//! They live inside the crate (not in `tests/`) because the algorithms are
//! crate-private; they run on heap memory, with the futex replaced by a
//! loom-aware wait (`sys/unsupported.rs`). Models are tiny (2 slots, 2
//! threads), as STYLE asks.

use loom::sync::Arc;
use loom::thread;

use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::queue::spsc::{self, heap::HeapSlots, LaneWords, Producer};
use crate::sync::doorbell::{Doorbell, WaitStrategy};
use crate::sync::event::{EventWord, MODE_AUTO};
use crate::sync::mutex::{self, Acquired, Fail, MutexWord, Wait, LOCKED_BIT};
use crate::sync::Liveness;

struct Peer {
    me: u32,
    dead: Arc<AtomicU32>,
}

impl Liveness for Peer {
    fn token(&self) -> u32 {
        self.me
    }
    fn is_alive(&self, token: u32) -> bool {
        token != self.dead.load(Ordering::SeqCst)
    }
}

#[test]
fn loom_spsc_delivers_in_order_without_stale_data() {
    loom::model(|| {
        let slots = Arc::new(HeapSlots::new(2));
        spsc::init_slots(&*slots, u64::MAX - 1); // also crosses the wrap
        let lane = Arc::new(LaneWords::new(u64::MAX - 1));
        let (s2, l2) = (slots.clone(), lane.clone());
        let producer = thread::spawn(move || {
            let mut p = Producer::new(u64::MAX - 1);
            for v in 1..=3u64 {
                while !p.can_write(&*s2, &l2) {
                    thread::yield_now();
                }
                s2.data[spsc::index(&*s2, p.tail)].store(v, Ordering::Relaxed);
                p.commit(&*s2, &l2, 8);
            }
        });
        let mut head = u64::MAX - 1;
        for want in 1..=3u64 {
            loop {
                if let Some(len) = spsc::readable(&*slots, head) {
                    assert_eq!(len, Ok(8));
                    break;
                }
                thread::yield_now();
            }
            assert_eq!(
                slots.data[spsc::index(&*slots, head)].load(Ordering::Relaxed),
                want
            );
            head = spsc::release(&lane, head);
        }
        producer.join().unwrap();
    });
}

#[test]
fn loom_mutex_excludes_and_hands_over() {
    loom::model(|| {
        let w = Arc::new(MutexWord::new());
        let dead = Arc::new(AtomicU32::new(0));
        let counter = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (1..=2)
            .map(|t| {
                let (w, dead, counter) = (w.clone(), dead.clone(), counter.clone());
                thread::spawn(move || {
                    let p = Peer { me: t, dead };
                    assert_eq!(mutex::lock(&w, &p, Wait::Until(None)), Ok(Acquired::Clean));
                    // A non-atomic increment, split: a second holder would lose it.
                    let v = counter.load(Ordering::Relaxed);
                    counter.store(v + 1, Ordering::Relaxed);
                    mutex::unlock(&w);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.load(Ordering::Relaxed), 2);
        assert_eq!(w.state.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn loom_dead_owner_is_taken_over_by_exactly_one() {
    loom::model(|| {
        let w = Arc::new(MutexWord::new());
        let dead = Arc::new(AtomicU32::new(9));
        w.state.store(LOCKED_BIT | 9, Ordering::Relaxed); // owner 9 died holding it
        let threads: Vec<_> = (1..=2)
            .map(|t| {
                let (w, dead) = (w.clone(), dead.clone());
                thread::spawn(move || mutex::lock(&w, &Peer { me: t, dead }, Wait::Try))
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let died = results
            .iter()
            .filter(|r| **r == Ok(Acquired::OwnerDied))
            .count();
        let blocked = results
            .iter()
            .filter(|r| **r == Err(Fail::WouldBlock))
            .count();
        assert_eq!((died, blocked), (1, 1), "{results:?}");
    });
}

#[test]
fn loom_event_notify_racing_wait_is_not_lost() {
    loom::model(|| {
        let e = Arc::new(EventWord::new(MODE_AUTO));
        let e2 = e.clone();
        let waiter = thread::spawn(move || e2.wait(None, &|| true));
        e.notify();
        assert!(waiter.join().unwrap());
        assert!(!e.is_set(), "auto-reset: consumed");
    });
}

#[test]
fn loom_doorbell_ring_racing_sleep_is_not_lost() {
    loom::model(|| {
        let bell = Arc::new(Doorbell::new());
        let flag = Arc::new(AtomicU64::new(0));
        let (b2, f2) = (bell.clone(), flag.clone());
        let sleeper = thread::spawn(move || {
            b2.wait_until(WaitStrategy::Block, None, &|| true, || {
                f2.load(Ordering::SeqCst) == 1
            })
        });
        // SYNC(doorbell): publish with SeqCst, then ring.
        flag.store(1, Ordering::SeqCst);
        bell.ring();
        assert!(sleeper.join().unwrap());
    });
}
