//! Loom models of the lock-free core, all in this one place: the lane
//! (spsc), the robust mutex, the event, the doorbell, the broadcast ring
//! and the blackboard's seqlock. Run with
//! `RUSTFLAGS="--cfg mapshare_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p mapshare --lib --release loom`
//! (`ci/loom.sh`).
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
            b2.wait_until(WaitStrategy::Block, None, None, &|| true, || {
                f2.load(Ordering::SeqCst) == 1
            })
        });
        // SYNC(doorbell): publish with SeqCst, then ring.
        flag.store(1, Ordering::SeqCst);
        bell.ring();
        assert!(sleeper.join().unwrap());
    });
}

/// The broadcast ring (`queue::broadcast`): tiny (one or two slots, one
/// publisher, one subscriber).
mod broadcast {
    use crate::primitive::{AtomicU32, Ordering};
    use crate::queue::broadcast::heap::HeapRing;
    use crate::queue::broadcast::{load_bytes, Lent, Policy, Recv};
    use crate::sync::Liveness;
    use loom::sync::Arc;
    use loom::thread;

    struct Peer(u32);

    impl Liveness for Peer {
        fn token(&self) -> u32 {
            self.0
        }
        fn is_alive(&self, _: u32) -> bool {
            true
        }
    }

    /// Publishes `[v; len]` for each `v` in `values`, retrying while full.
    fn publish_all(h: &HeapRing, values: &[u8], len: usize) {
        let r = h.ring();
        let p = Peer(1);
        let mut st = r.claim_publisher(&p).unwrap();
        for &v in values {
            while r.publish(&mut st, &vec![v; len], &p, None).is_err() {
                thread::yield_now();
            }
        }
    }

    #[test]
    fn loom_broadcast_overwrite_never_tears_or_reorders() {
        loom::model(|| {
            let h = Arc::new(HeapRing::with_slots(
                1,
                16,
                Policy::OverwriteOldest,
                u64::MAX,
                1,
            ));
            let mut sub = h.ring().join(&Peer(2), 0, 0).unwrap();
            let h2 = h.clone();
            let publisher = thread::spawn(move || publish_all(&h2, &[1, 2], 16));
            let r = h.ring();
            let mut buf = Vec::new();
            // Every message is either received whole, in order, or counted
            // as missed: the two add up to what was published.
            let (mut seen, mut last) = (0u64, 0u8);
            while seen < 2 {
                match r.try_recv(&mut sub, &mut buf) {
                    Recv::Message => {
                        assert_eq!(buf.len(), 16);
                        let v = buf[0];
                        assert!(buf.iter().all(|&b| b == v), "torn: {buf:?}");
                        assert!(v > last, "reordered or repeated");
                        last = v;
                        seen += 1;
                    }
                    Recv::Lagged(n) => seen += n,
                    Recv::Empty => thread::yield_now(),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(seen, 2);
            publisher.join().unwrap();
        });
    }

    #[test]
    fn loom_broadcast_lossless_delivers_every_message_in_order() {
        loom::model(|| {
            let h = Arc::new(HeapRing::with_slots(1, 8, Policy::Lossless, u64::MAX, 1));
            let mut sub = h.ring().join(&Peer(2), 0, 0).unwrap();
            let h2 = h.clone();
            let publisher = thread::spawn(move || publish_all(&h2, &[1, 2], 8));
            let r = h.ring();
            let mut buf = Vec::new();
            for want in 1..=2u8 {
                loop {
                    match r.try_recv(&mut sub, &mut buf) {
                        Recv::Message => break,
                        Recv::Empty => thread::yield_now(),
                        other => panic!("{other:?}"),
                    }
                }
                assert_eq!(buf, vec![want; 8]);
            }
            publisher.join().unwrap();
        });
    }

    #[test]
    fn loom_broadcast_join_racing_a_lossless_publisher_never_lags() {
        loom::model(|| {
            let h = Arc::new(HeapRing::with_slots(1, 8, Policy::Lossless, 0, 1));
            let done = Arc::new(AtomicU32::new(0));
            let (h2, d2) = (h.clone(), done.clone());
            let publisher = thread::spawn(move || {
                publish_all(&h2, &[1, 2], 8);
                d2.store(1, Ordering::SeqCst);
            });
            let r = h.ring();
            let mut sub = r.join(&Peer(2), 0, 0).unwrap();
            let mut buf = Vec::new();
            // Whatever came before the join, the stream after it is gapless.
            let mut last: Option<u8> = None;
            let mut check = |v: u8| {
                assert!(last.is_none_or(|l| v == l + 1), "a message was lost");
                last = Some(v);
            };
            loop {
                match r.try_recv(&mut sub, &mut buf) {
                    Recv::Message => check(buf[0]),
                    Recv::Empty if done.load(Ordering::SeqCst) == 1 => {
                        if r.try_recv(&mut sub, &mut buf) == Recv::Empty {
                            break;
                        }
                        check(buf[0]);
                    }
                    Recv::Empty => thread::yield_now(),
                    other => panic!("joined subscriber got {other:?}"),
                }
            }
            publisher.join().unwrap();
        });
    }

    #[test]
    fn loom_broadcast_lent_slot_is_never_rewritten_while_held() {
        loom::model(|| {
            // Capacity 1: the second message must wait for the first's slot.
            let h = Arc::new(HeapRing::with_slots(1, 8, Policy::Lossless, 0, 1));
            let mut sub = h.ring().join(&Peer(2), 0, 0).unwrap();
            let h2 = h.clone();
            let publisher = thread::spawn(move || publish_all(&h2, &[1, 2], 8));
            let r = h.ring();
            for want in 1..=2u8 {
                let mut lent = None;
                loop {
                    match r.try_lend(&mut sub, &mut lent, &mut Vec::new()) {
                        Recv::Message => break,
                        Recv::Empty => thread::yield_now(),
                        other => panic!("{other:?}"),
                    }
                }
                let Some(Lent::InPlace { pos, len }) = lent else {
                    panic!("not lent in place: {lent:?}");
                };
                assert_eq!(len, 8);
                let read = || {
                    let (_, _, data) = r.slot(pos).unwrap();
                    let mut out = vec![0u8; 8];
                    assert!(load_bytes(data, &mut out));
                    out
                };
                assert_eq!(read(), vec![want; 8]);
                thread::yield_now(); // the publisher may run here: not on our slot
                assert_eq!(read(), vec![want; 8], "a lent slot was rewritten");
                r.consume(&mut sub, pos);
            }
            publisher.join().unwrap();
        });
    }

    #[test]
    fn loom_broadcast_history_join_racing_a_lossless_publisher_never_tears() {
        loom::model(|| {
            let h = Arc::new(HeapRing::with_slots(2, 8, Policy::Lossless, 0, 1));
            let done = Arc::new(AtomicU32::new(0));
            let (h2, d2) = (h.clone(), done.clone());
            let publisher = thread::spawn(move || {
                publish_all(&h2, &[1, 2, 3], 8);
                d2.store(1, Ordering::SeqCst);
            });
            let r = h.ring();
            // Up to one message from before the join (capacity - 1).
            let mut sub = r.join(&Peer(2), 0, 1).unwrap();
            let mut buf = Vec::new();
            let mut last: Option<u8> = None;
            let mut check = |buf: &[u8]| {
                let v = buf[0];
                assert!(buf.iter().all(|&b| b == v), "torn: {buf:?}");
                assert!(last.is_none_or(|l| v == l + 1), "a message was lost");
                last = Some(v);
            };
            loop {
                match r.try_recv(&mut sub, &mut buf) {
                    Recv::Message => check(&buf),
                    Recv::Empty if done.load(Ordering::SeqCst) == 1 => {
                        match r.try_recv(&mut sub, &mut buf) {
                            Recv::Empty => break,
                            Recv::Message => check(&buf),
                            other => panic!("joined subscriber got {other:?}"),
                        }
                    }
                    Recv::Empty => thread::yield_now(),
                    other => panic!("joined subscriber got {other:?}"),
                }
            }
            assert_eq!(last, Some(3));
            publisher.join().unwrap();
        });
    }
}

/// The blackboard's double-buffered seqlock (`queue::seqlock`).
mod seqlock {
    use crate::primitive::AtomicU64;
    use crate::queue::seqlock::{stride, Board, BoardControl};
    use crate::sync::doorbell::Doorbell;
    use loom::sync::Arc;
    use loom::thread;

    struct Heap {
        ctl: BoardControl,
        bell: Doorbell,
        words: Vec<AtomicU64>,
    }

    fn board(h: &Heap) -> Board<'_> {
        Board::new(&h.ctl, &h.bell, &h.words, 16).unwrap()
    }

    #[test]
    fn loom_blackboard_reads_are_whole_and_never_go_back() {
        loom::model(|| {
            let h = Arc::new(Heap {
                ctl: BoardControl::new(),
                bell: Doorbell::new(),
                words: (0..2 * stride(16)).map(|_| AtomicU64::new(0)).collect(),
            });
            board(&h).init();
            let h2 = h.clone();
            let writer = thread::spawn(move || {
                let b = board(&h2);
                for v in 1..=3u64 {
                    b.write(v, bytemuck::bytes_of(&[v, v]));
                }
            });
            let b = board(&h);
            let mut last = 0;
            for _ in 0..2 {
                let mut out = [0u64; 2];
                if let Ok(version) = b.read(bytemuck::bytes_of_mut(&mut out)) {
                    assert_eq!(out, [version, version], "torn");
                    assert!(version >= last);
                    last = version;
                }
            }
            writer.join().unwrap();
        });
    }
}
