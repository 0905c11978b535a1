//! Unit tests of the ring, on the heap.

use super::heap::HeapRing;
use super::*;
use crate::sync::doorbell::WaitStrategy;
use crate::sync::Liveness;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

/// Tokens are alive unless listed as dead.
struct Peer {
    me: u32,
    dead: &'static Mutex<Vec<u32>>,
}

static NOBODY_DEAD: Mutex<Vec<u32>> = Mutex::new(Vec::new());

impl Peer {
    fn new(me: u32) -> Peer {
        Peer {
            me,
            dead: &NOBODY_DEAD,
        }
    }
}

impl Liveness for Peer {
    fn token(&self) -> u32 {
        self.me
    }
    fn is_alive(&self, token: u32) -> bool {
        !self.dead.lock().unwrap().contains(&token)
    }
}

const BLOCK_FOREVER: Option<(WaitStrategy, Option<Instant>)> = Some((WaitStrategy::Block, None));

fn wait_long() -> Option<(WaitStrategy, Option<Instant>)> {
    Some((
        WaitStrategy::default(),
        Some(Instant::now() + Duration::from_secs(30)),
    ))
}

/// A message for position `i`: its number, then bytes derived from it.
fn message(i: u64) -> Vec<u8> {
    let len = 8 + (i % 37) as usize;
    let mut m = i.to_le_bytes().to_vec();
    m.extend((8..len).map(|k| (i as u8).wrapping_mul(31).wrapping_add(k as u8)));
    m
}

fn check(m: &[u8]) -> u64 {
    assert!(m.len() >= 8, "short message");
    let i = u64::from_le_bytes(m[..8].try_into().unwrap());
    assert_eq!(m, &message(i)[..], "torn or corrupt message {i}");
    i
}

#[test]
fn byte_copies_round_trip_every_length() {
    let words: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
    for n in 0..=32 {
        let src: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(7) + 1).collect();
        assert!(store_bytes(&words, &src));
        let mut out = vec![0u8; n];
        assert!(load_bytes(&words, &mut out));
        assert_eq!(out, src);
    }
    assert!(!store_bytes(&words, &[0; 33]));
    assert!(!load_bytes(&words, &mut [0; 33]));
}

#[test]
fn bulk_copies_round_trip_every_length() {
    let words: Vec<AtomicU64> = (0..40).map(|_| AtomicU64::new(0)).collect();
    // Past 64 bytes the copy takes its 32-byte path (where the CPU has AVX2).
    for n in 0..=320 {
        let src: Vec<u8> = (0..n)
            .map(|b| (b as u8).wrapping_mul(13).wrapping_add(3))
            .collect();
        assert!(crate::region::store_to_words(&words, &src));
        let mut out = vec![0u8; n];
        assert!(crate::region::load_from_words(&words, &mut out));
        assert_eq!(out, src);
        // The same bytes in memory as the word-by-word copy writes.
        let mut again = vec![0u8; n];
        assert!(load_bytes(&words, &mut again));
        assert_eq!(again, src);
    }
    assert!(!crate::region::store_to_words(&words, &[0; 321]));
    assert!(!crate::region::load_from_words(&words, &mut [0; 321]));
}

#[test]
fn geometry_rounds_and_validates() {
    let g = Geometry::new(5, 100, Policy::Lossless, 0).unwrap();
    // A 64-byte header line, then two lines of data.
    assert_eq!((g.capacity, g.stride), (8, 24));
    assert_eq!(
        Geometry::new(1, 64, Policy::Lossless, 0).unwrap().stride,
        16
    );
    assert_eq!(Geometry::new(1, 0, Policy::Lossless, 0).unwrap().stride, 8);
    let h = HeapRing::new(8, 100, Policy::Lossless, 0);
    for pos in 0..8 {
        assert_eq!(
            h.ring().data_offset(pos) % 64,
            0,
            "data of {pos} off its line"
        );
    }
    assert!(Geometry::new(0, 1, Policy::Lossless, 0).is_none());
    assert!(Geometry::new(MAX_CAPACITY + 1, 1, Policy::Lossless, 0).is_none());
    assert!(Geometry::new(1, MAX_MESSAGE + 1, Policy::Lossless, 0).is_none());
    let h = HeapRing::new(8, 100, Policy::OverwriteOldest, 7);
    assert_eq!(Geometry::read(&h.ctl), Some(h.g));
    h.ctl.capacity.store(6, Ordering::Relaxed); // not a power of two
    assert_eq!(Geometry::read(&h.ctl), None);
    h.ctl.capacity.store(8, Ordering::Relaxed);
    h.ctl.policy.store(99, Ordering::Relaxed);
    assert_eq!(Geometry::read(&h.ctl), None);
    // A ring of an earlier format (0 in the format word) is refused.
    h.ctl.policy.store(POLICY_OVERWRITE, Ordering::Relaxed);
    assert_eq!(Geometry::read(&h.ctl), Some(h.g));
    h.ctl.format.store(0, Ordering::Relaxed);
    assert!(!h.ctl.has_format());
    assert_eq!(Geometry::read(&h.ctl), None);
}

#[test]
fn new_subscriber_sees_only_later_messages() {
    let h = HeapRing::new(4, 64, Policy::Lossless, 0);
    let r = h.ring();
    let p = Peer::new(1);
    let mut st = r.claim_publisher(&p).unwrap();
    r.publish(&mut st, b"before", &p, None).unwrap();
    let mut sub = r.join(&Peer::new(2), 0, 0).unwrap();
    let mut buf = Vec::new();
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Empty);
    r.publish(&mut st, b"after", &p, None).unwrap();
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
    assert_eq!(buf, b"after");
    assert!(matches!(
        r.publish(&mut st, &[0; 65], &p, None),
        Err(PubFail::TooLarge)
    ));
}

#[test]
fn lossless_blocks_on_slowest_and_unblocks_on_read() {
    let h = HeapRing::new(4, 16, Policy::Lossless, 0);
    let r = h.ring();
    let p = Peer::new(1);
    let mut st = r.claim_publisher(&p).unwrap();
    let mut fast = r.join(&Peer::new(2), 0, 0).unwrap();
    let mut slow = r.join(&Peer::new(3), 0, 0).unwrap();
    let mut buf = Vec::new();
    for i in 0..4u64 {
        r.publish(&mut st, &message(i), &p, None).unwrap();
        assert_eq!(r.try_recv(&mut fast, &mut buf), Recv::Message);
    }
    assert_eq!(
        r.publish(&mut st, &message(4), &p, None),
        Err(PubFail::Full)
    );
    assert_eq!(r.try_recv(&mut slow, &mut buf), Recv::Message);
    assert_eq!(check(&buf), 0);
    r.publish(&mut st, &message(4), &p, None).unwrap();
    // A second publisher is refused while the first lives.
    assert_eq!(r.claim_publisher(&Peer::new(9)).err(), Some(1));
}

fn run_lossless(subscribers: usize, n: u64, base: u64, capacity: usize) {
    let h = HeapRing::new(capacity, 64, Policy::Lossless, base);
    let r = h.ring();
    let joined = std::sync::Barrier::new(subscribers + 1);
    std::thread::scope(|s| {
        for k in 0..subscribers {
            let joined = &joined;
            s.spawn(move || {
                let peer = Peer::new(10 + k as u32);
                let mut st = r.join(&peer, 0, 0).unwrap();
                joined.wait();
                let mut buf = Vec::new();
                for want in 0..n {
                    let got = r.recv(&mut st, &mut buf, &peer, wait_long(), LIVENESS_POLL);
                    assert_eq!(got, Recv::Message, "subscriber {k} at {want}");
                    assert_eq!(check(&buf), want, "subscriber {k}: out of order");
                }
                r.leave(&mut st);
            });
        }
        let p = Peer::new(1);
        let mut st = r.claim_publisher(&p).unwrap();
        joined.wait();
        for i in 0..n {
            r.publish(&mut st, &message(i), &p, wait_long()).unwrap();
        }
        r.release_publisher(&st);
    });
}

#[test]
fn lossless_one_subscriber_sees_every_message_in_order() {
    run_lossless(1, 50_000, 0, 8);
}

#[test]
fn lossless_four_subscribers_see_every_message_in_order() {
    run_lossless(4, 20_000, 0, 16);
}

#[test]
fn lossless_runs_across_the_u64_wrap() {
    run_lossless(2, 1_000, u64::MAX - 100, 8);
}

#[test]
fn overwrite_tells_a_slow_subscriber_what_it_missed() {
    let h = HeapRing::new(8, 64, Policy::OverwriteOldest, u64::MAX - 10);
    let r = h.ring();
    let p = Peer::new(1);
    let mut st = r.claim_publisher(&p).unwrap();
    let mut sub = r.join(&Peer::new(2), 0, 0).unwrap();
    for i in 0..20u64 {
        r.publish(&mut st, &message(i), &p, None).unwrap(); // never waits
    }
    let mut buf = Vec::new();
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Lagged(12));
    for want in 12..20 {
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
        assert_eq!(check(&buf), want);
    }
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Empty);
}

#[test]
fn overwrite_with_racing_publisher_never_tears_or_reorders() {
    let h = HeapRing::new(4, 64, Policy::OverwriteOldest, 0);
    let r = h.ring();
    let n = 200_000u64;
    let done = AtomicBool::new(false);
    let mut sub = r.join(&Peer::new(2), 0, 0).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let p = Peer::new(1);
            let mut st = r.claim_publisher(&p).unwrap();
            for i in 0..n {
                r.publish(&mut st, &message(i), &p, None).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut buf = Vec::new();
        let (mut next, mut got, mut missed) = (0u64, 0u64, 0u64);
        while next < n {
            match r.try_recv(&mut sub, &mut buf) {
                Recv::Message => {
                    assert_eq!(check(&buf), next, "reordered");
                    next += 1;
                    got += 1;
                }
                Recv::Lagged(k) => {
                    next += k;
                    missed += k;
                }
                Recv::Empty => std::hint::spin_loop(),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got + missed, n);
    });
}

#[test]
fn dead_subscriber_stops_pacing_the_publisher() {
    static DEAD: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    let h = HeapRing::new(4, 16, Policy::Lossless, 0);
    let r = h.ring();
    let p = Peer { me: 1, dead: &DEAD };
    let mut st = r.claim_publisher(&p).unwrap();
    let _stuck = r.join(&Peer::new(77), 0, 0).unwrap();
    for i in 0..4u64 {
        r.publish(&mut st, &message(i), &p, None).unwrap();
    }
    let soon = Some((
        WaitStrategy::Block,
        Some(Instant::now() + Duration::from_millis(20)),
    ));
    assert_eq!(
        r.publish(&mut st, &message(4), &p, soon),
        Err(PubFail::Full)
    );
    DEAD.lock().unwrap().push(77); // "killed"
    r.publish(&mut st, &message(4), &p, BLOCK_FOREVER).unwrap();
    assert!(r.subscribers(&p).is_empty(), "slot freed");
}

#[test]
fn publisher_death_and_takeover() {
    static DEAD: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    let h = HeapRing::new(4, 16, Policy::Lossless, 0);
    let r = h.ring();
    let sub_peer = Peer { me: 2, dead: &DEAD };
    let mut sub = r.join(&sub_peer, 0, 0).unwrap();
    let p1 = Peer::new(1);
    let mut st = r.claim_publisher(&p1).unwrap();
    r.publish(&mut st, &message(0), &p1, None).unwrap();
    // Killed half-way through message 1: odd marker, tail not advanced.
    let (seq, _, _) = r.slot(1).unwrap();
    seq.store(writing(1), Ordering::Relaxed);
    DEAD.lock().unwrap().push(1);
    let mut buf = Vec::new();
    let quick = Some((WaitStrategy::Spin, Some(Instant::now())));
    assert_eq!(
        r.recv(&mut sub, &mut buf, &sub_peer, quick, LIVENESS_POLL),
        Recv::Message
    );
    assert_eq!(
        r.recv(&mut sub, &mut buf, &sub_peer, quick, LIVENESS_POLL),
        Recv::Disconnected
    );
    let p2 = Peer { me: 3, dead: &DEAD };
    let mut st2 = r.claim_publisher(&p2).unwrap();
    assert_eq!(st2.tail(), 1);
    r.publish(&mut st2, &message(1), &p2, None).unwrap();
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
    assert_eq!(check(&buf), 1);
}

#[test]
fn garbage_in_shared_words_gives_errors_or_skips_never_panics() {
    let h = HeapRing::new(4, 16, Policy::Lossless, 0);
    let r = h.ring();
    let p = Peer::new(1);
    let mut st = r.claim_publisher(&p).unwrap();
    let mut sub = r.join(&Peer::new(2), 0, 0).unwrap();
    let mut buf = Vec::new();
    for i in 0..3u64 {
        r.publish(&mut st, &message(i), &p, None).unwrap();
    }
    // A huge length in a published slot: skipped, reported, no allocation.
    let (_, len, _) = r.slot(0).unwrap();
    len.store(u64::MAX, Ordering::Relaxed);
    assert_eq!(
        r.try_recv(&mut sub, &mut buf),
        Recv::Corrupt {
            pos: 0,
            len: u64::MAX
        }
    );
    // A seq word older than the tail says: skipped, reported.
    let (seq, _, _) = r.slot(1).unwrap();
    seq.store(0, Ordering::Relaxed);
    assert_eq!(
        r.try_recv(&mut sub, &mut buf),
        Recv::Corrupt { pos: 1, len: 0 }
    );
    // A seq word "newer" than it: taken as overwritten, skipped.
    let (seq, _, _) = r.slot(2).unwrap();
    seq.store(12345, Ordering::Relaxed);
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Lagged(1));
    // A tail far ahead: reported as a lag, bounded.
    h.tail.tail.store(1 << 40, Ordering::Relaxed);
    assert!(matches!(r.try_recv(&mut sub, &mut buf), Recv::Lagged(_)));
    // A tail behind us: empty, not a spin or a wrap-around read.
    h.tail.tail.store(0, Ordering::Relaxed);
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Empty);
    // Garbage cursors and owners: the publisher is only delayed, and
    // a garbage cursor ahead of it is ignored.
    for s in &h.subs {
        s.cursor.store(u64::MAX / 3, Ordering::Relaxed);
    }
    h.ctl.high.store(u32::MAX, Ordering::Relaxed);
    let mut st = r.claim_publisher(&p).unwrap();
    let _ = r.publish(&mut st, b"x", &p, None);
    // Our slot freed behind our back: we rejoin instead of writing a
    // cursor into a slot that is no longer ours.
    for s in &h.subs {
        s.owner.store(0, Ordering::Relaxed);
    }
    h.tail.tail.store(sub.cursor(), Ordering::Relaxed);
    let mut st = r.claim_publisher(&p).unwrap();
    r.publish(&mut st, b"y", &p, None).unwrap();
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
    assert!(sub.slot.is_some(), "rejoined");
}

/// The data of a lent slot, copied out word by word.
fn lent_bytes(r: &Ring<'_>, pos: u64, len: usize) -> Vec<u8> {
    let (_, _, data) = r.slot(pos).unwrap();
    let mut out = vec![0; len];
    assert!(load_bytes(data, &mut out));
    out
}

#[test]
fn a_lent_slot_is_never_rewritten_until_consumed() {
    // Lossless, capacity 2: with one message lent, the publisher may write
    // one more, then waits for the lent slot however long it is held.
    let h = HeapRing::new(2, 32, Policy::Lossless, u64::MAX - 1); // across the wrap
    let r = h.ring();
    let p = Peer::new(1);
    let mut st = r.claim_publisher(&p).unwrap();
    let mut sub = r.join(&Peer::new(2), 0, 0).unwrap();
    for i in 0..20u64 {
        r.publish(&mut st, &message(i), &p, None).unwrap();
        let mut lent = None;
        assert_eq!(
            r.try_lend(&mut sub, &mut lent, &mut Vec::new()),
            Recv::Message
        );
        let Some(Lent::InPlace { pos, len }) = lent else {
            panic!("not lent in place: {lent:?}");
        };
        let first = lent_bytes(&r, pos, len);
        assert_eq!(check(&first), i);
        // One more fits; the one after would rewrite our slot: refused.
        r.publish(&mut st, &message(i + 1000), &p, None).unwrap();
        assert_eq!(
            r.publish(&mut st, &message(i + 2000), &p, None),
            Err(PubFail::Full)
        );
        assert_eq!(lent_bytes(&r, pos, len), first, "lent slot rewritten");
        r.consume(&mut sub, pos);
        // The one published while we held the sample comes next, whole.
        let mut buf = Vec::new();
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
        assert_eq!(check(&buf), i + 1000);
    }
}

#[test]
fn lending_reports_lags_and_bad_slots_as_copying_does() {
    let h = HeapRing::new(4, 16, Policy::Lossless, 0);
    let r = h.ring();
    let p = Peer::new(1);
    let mut st = r.claim_publisher(&p).unwrap();
    let mut sub = r.join(&Peer::new(2), 0, 0).unwrap();
    let mut lent = None;
    assert_eq!(
        r.try_lend(&mut sub, &mut lent, &mut Vec::new()),
        Recv::Empty
    );
    r.publish(&mut st, b"ok", &p, None).unwrap();
    // A peer scribbles a length past max_message: skipped, reported.
    r.slot(0).unwrap().1.store(1 << 40, Ordering::Relaxed);
    assert_eq!(
        r.try_lend(&mut sub, &mut lent, &mut Vec::new()),
        Recv::Corrupt {
            pos: 0,
            len: 1 << 40
        }
    );
    assert!(lent.is_none());
    assert_eq!(
        r.try_lend(&mut sub, &mut lent, &mut Vec::new()),
        Recv::Empty
    );
}

#[test]
fn history_starts_a_joiner_before_the_tail() {
    for policy in [Policy::Lossless, Policy::OverwriteOldest] {
        let h = HeapRing::new(8, 64, policy, u64::MAX - 3); // across the wrap
        let r = h.ring();
        let p = Peer::new(1);
        let mut st = r.claim_publisher(&p).unwrap();
        let mut buf = Vec::new();
        // Fewer published than asked for: all of them.
        r.publish(&mut st, &message(0), &p, None).unwrap();
        r.publish(&mut st, &message(1), &p, None).unwrap();
        let mut early = r.join(&Peer::new(2), 0, 5).unwrap();
        for want in 0..2 {
            assert_eq!(r.try_recv(&mut early, &mut buf), Recv::Message);
            assert_eq!(check(&buf), want);
        }
        assert_eq!(r.try_recv(&mut early, &mut buf), Recv::Empty);
        r.leave(&mut early);
        for i in 2..20 {
            r.publish(&mut st, &message(i), &p, None).unwrap();
        }
        // The last 3 of 20.
        let mut three = r.join(&Peer::new(3), 0, 3).unwrap();
        // More than the ring holds: capacity - 1 (the oldest slot is the
        // one the publisher writes next).
        let mut all = r.join(&Peer::new(4), 0, 1000).unwrap();
        for want in 17..20 {
            assert_eq!(r.try_recv(&mut three, &mut buf), Recv::Message);
            assert_eq!(check(&buf), want);
        }
        for want in 13..20 {
            assert_eq!(r.try_recv(&mut all, &mut buf), Recv::Message);
            assert_eq!(check(&buf), want);
        }
        // Lossless: the joiners pace the publisher from where they start.
        if policy == Policy::Lossless {
            let mut late = r.join(&Peer::new(5), 0, 7).unwrap();
            assert_eq!(
                r.publish(&mut st, &message(20), &p, None),
                Ok(()),
                "7 behind of 8: one more fits"
            );
            assert_eq!(
                r.publish(&mut st, &message(21), &p, None),
                Err(PubFail::Full)
            );
            assert_eq!(r.try_recv(&mut late, &mut buf), Recv::Message);
            assert_eq!(check(&buf), 13);
            r.publish(&mut st, &message(21), &p, None).unwrap();
        }
    }
}

#[test]
fn a_sleeping_publisher_is_rung_only_by_the_advance_it_waits_for() {
    // Capacity 8, full: a sleeping publisher waits for room for a quarter of
    // the ring (2 messages), so for the subscriber's cursor to reach 2.
    let h = std::sync::Arc::new(HeapRing::new(8, 64, Policy::Lossless, 0));
    let r = h.ring();
    let p = Peer::new(1);
    let mut st = r.claim_publisher(&p).unwrap();
    let mut sub = r.join(&Peer::new(2), 0, 0).unwrap();
    for i in 0..8 {
        r.publish(&mut st, &message(i), &p, None).unwrap();
    }
    let h2 = h.clone();
    let publisher = std::thread::spawn(move || {
        let r = h2.ring();
        let p = Peer::new(1);
        r.publish(&mut st, &message(8), &p, BLOCK_FOREVER).unwrap();
        // The batch it waited for: the next one fits without waiting.
        r.publish(&mut st, &message(9), &p, None).unwrap();
    });
    while !h.room_bell.sleepers_flagged() {
        std::thread::yield_now();
    }
    let rings = h.room_bell.word().load(Ordering::SeqCst);
    let mut buf = Vec::new();
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
    assert_eq!(check(&buf), 0);
    // Cursor 1: not what the publisher waits for: no ring, it sleeps on.
    assert!(h.room_bell.sleepers_flagged());
    assert_eq!(h.room_bell.word().load(Ordering::SeqCst), rings);
    assert!(!publisher.is_finished());
    // Cursor 2: the crossing advance rings (the count moves on) and the
    // publisher publishes both.
    assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
    assert_ne!(h.room_bell.word().load(Ordering::SeqCst), rings);
    publisher.join().unwrap();
    for want in 2..10 {
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
        assert_eq!(check(&buf), want);
    }
}

#[test]
fn a_sleeping_publisher_takes_room_for_one_when_the_batch_does_not_come() {
    // The subscriber frees one slot and stops: the publisher, waiting for a
    // batch of 2, must still publish (at the end of a sleep slice), in the
    // blocking form and in the deadline form alike.
    for deadline in [None, Some(Instant::now() + Duration::from_secs(3600))] {
        let h = std::sync::Arc::new(HeapRing::new(8, 64, Policy::Lossless, 0));
        let r = h.ring();
        let p = Peer::new(1);
        let mut st = r.claim_publisher(&p).unwrap();
        let mut sub = r.join(&Peer::new(2), 0, 0).unwrap();
        for i in 0..8 {
            r.publish(&mut st, &message(i), &p, None).unwrap();
        }
        let h2 = h.clone();
        let publisher = std::thread::spawn(move || {
            let r = h2.ring();
            let p = Peer::new(1);
            r.publish(
                &mut st,
                &message(8),
                &p,
                Some((WaitStrategy::Block, deadline)),
            )
        });
        while !h.room_bell.sleepers_flagged() {
            std::thread::yield_now();
        }
        let mut buf = Vec::new();
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
        assert_eq!(publisher.join().unwrap(), Ok(()));
        for want in 1..9 {
            assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
            assert_eq!(check(&buf), want);
        }
    }
}

#[test]
fn history_joins_racing_a_publisher_lend_only_what_stays_put() {
    // A lossless publisher runs flat out on a ring of 8 while subscribers
    // join again and again asking for 7 messages of history and lend each
    // one in place: a lent slot must never change while it is held (a join
    // that did not hold copies instead).
    let h = std::sync::Arc::new(HeapRing::new(8, 64, Policy::Lossless, 0));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (h2, stop2) = (h.clone(), stop.clone());
    let publisher = std::thread::spawn(move || {
        let r = h2.ring();
        let p = Peer::new(1);
        let mut st = r.claim_publisher(&p).unwrap();
        let mut i = 0;
        while !stop2.load(Ordering::Relaxed) {
            let wait = Some((
                WaitStrategy::Spin,
                Some(Instant::now() + Duration::from_millis(1)),
            ));
            if r.publish(&mut st, &message(i), &p, wait).is_ok() {
                i += 1;
            }
        }
        i
    });
    let r = h.ring();
    let mut scratch = Vec::new();
    let (mut in_place, mut copied) = (0u32, 0u32);
    // Until the publisher has run through the ring many times (it runs
    // whenever no joined subscriber holds it back).
    while r.published() < 20_000 {
        let mut sub = r.join(&Peer::new(2), 0, 7).unwrap();
        for _ in 0..4 {
            let mut lent = None;
            match r.try_lend(&mut sub, &mut lent, &mut scratch) {
                Recv::Message => {}
                Recv::Empty => continue,
                other => panic!("a joined subscriber got {other:?}"),
            }
            match lent.unwrap() {
                Lent::InPlace { pos, len } => {
                    in_place += 1;
                    let first = lent_bytes(&r, pos, len);
                    check(&first);
                    std::thread::yield_now();
                    assert_eq!(lent_bytes(&r, pos, len), first, "a lent slot changed");
                    r.consume(&mut sub, pos);
                }
                Lent::Copied => {
                    copied += 1;
                    check(&scratch);
                }
            }
        }
        r.leave(&mut sub);
    }
    stop.store(true, Ordering::Relaxed);
    let published = publisher.join().unwrap();
    assert!(
        published > 0 && in_place > 0,
        "{published} published, {in_place} lent"
    );
    eprintln!("{published} published; {in_place} lent in place, {copied} copied");
}

/// Not a test: the copy primitives side by side (issue 12: atomic words
/// against the volatile bulk copy against `memcpy`), in one process, hot
/// in the cache. `cargo test --release -p mapshare --lib copy_primitives
/// -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run by hand"]
fn copy_primitives_side_by_side() {
    for size in [4096usize, 64 << 10, 1 << 20] {
        let words: Vec<AtomicU64> = (0..size / 8).map(|i| AtomicU64::new(i as u64)).collect();
        let mut out = vec![0u8; size];
        let rounds = ((1usize << 31) / size).max(16);
        let time = |f: &mut dyn FnMut(&mut [u8])| {
            let mut out = vec![0u8; size];
            let t = Instant::now();
            for _ in 0..rounds {
                f(&mut out);
                std::hint::black_box(&mut out);
            }
            (size * rounds) as f64 / t.elapsed().as_secs_f64() / 1e9
        };
        let atomic = time(&mut |o| {
            load_bytes(&words, o);
        });
        let volatile = time(&mut |o| {
            crate::region::load_from_words(&words, o);
        });
        let src: Vec<u8> = vec![7; size];
        let memcpy = time(&mut |o| o.copy_from_slice(std::hint::black_box(&src)));
        out.copy_from_slice(&src);
        eprintln!(
            "{size:>8} B: atomic words {atomic:6.1} GB/s, volatile bulk {volatile:6.1} GB/s, \
             memcpy {memcpy:6.1} GB/s"
        );
    }
}
