//! The lane: a bounded single-producer single-consumer ring of
//! variable-length messages, with a sequence word per slot.
//!
//! Only the producer writes a slot; the consumer only reads slots and
//! publishes its position in `head`, on its own line. So a slot's cache
//! line travels one way (producer to consumer), and the producer reads the
//! consumer's line only when the credit it cached runs out (once a lap at
//! most). This is the FastForward / Lamport split (Giacomoni et al., PPoPP
//! 2008) with Vyukov-style sequence words: a slot's `seq` says which
//! position it holds, so the consumer needs no shared tail.
//!
//! Slot `i` (= position `p & (capacity - 1)`), `seq` word:
//!
//! | `seq` | meaning |
//! |---|---|
//! | `p + 1` | holds the message of position `p` (written last, by the producer) |
//! | anything else | not (yet) position `p`: an earlier lap, a half-written slot, or garbage |
//!
//! | lane word | writer | meaning |
//! |---|---|---|
//! | `head` | the consumer, after each message | next position to read; the producer's credit |
//! | `tail` | the producer, after each commit | mirror, for `info` only |
//! | `owner` | a producer claiming the lane (CAS) | liveness token; 0 free |
//!
//! Positions are `u64`, compared only by equality and wrapping differences,
//! so they run across the wrap (invariant 8).
//!
//! What a crash leaves: a producer killed before its `seq` store leaves the
//! slot unpublished (the message was never sent); the next producer finds
//! the true tail by scanning forward from `head` over published slots
//! ([`recover_tail`]). A consumer killed before its `head` store leaves the
//! message in place for the next consumer (delivered again: at-least-once
//! for the message in hand).

use crate::primitive::{AtomicU32, AtomicU64, Ordering};

/// Offset of a slot's data: the header (`seq`, `len`) has the slot's first
/// line to itself, so data is 64-byte aligned (copies of large messages
/// stay on the fast path of `memcpy`).
pub(crate) const SLOT_DATA_OFFSET: usize = 64;

/// Where a ring's slots live: shared memory, or the heap in tests.
pub(crate) trait Slots {
    /// Number of slots, a power of two.
    fn capacity(&self) -> u64;
    /// Largest message in bytes.
    fn max_len(&self) -> usize;
    /// The sequence word of slot `i` (`i < capacity`).
    fn seq(&self, i: usize) -> &AtomicU64;
    /// The length word of slot `i`.
    fn len(&self, i: usize) -> &AtomicU64;
}

/// The shared words of one lane. Producer-owned and consumer-owned words
/// sit on separate 128-byte lines (see the module docs for the table).
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct LaneWords {
    pub(crate) owner: AtomicU32,
    /// Claims of the lane so far (request/response: a client's requests
    /// and responses carry it, so a successor never gets a dead client's
    /// answers); channels leave it 0.
    pub(crate) epoch: AtomicU32,
    pub(crate) tail: AtomicU64,
    _pad_a: [u64; 14],
    pub(crate) head: AtomicU64,
    _pad_b: [u64; 15],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<LaneWords>() == 256);
crate::pod::shm_state!(LaneWords, "AtomicU32s, AtomicU64s and u64 padding; repr(C)");

impl LaneWords {
    /// A lane starting at `base` (for heap-backed tests and loom).
    #[cfg(any(test, mapshare_loom))]
    pub(crate) fn new(base: u64) -> LaneWords {
        LaneWords {
            owner: AtomicU32::new(0),
            epoch: AtomicU32::new(0),
            tail: AtomicU64::new(base),
            _pad_a: [0; 14],
            head: AtomicU64::new(base),
            _pad_b: [0; 15],
        }
    }

    /// Sets up an empty lane at `base`; creator only, before publishing.
    pub(crate) fn init(&self, base: u64) {
        self.owner.store(0, Ordering::Relaxed);
        self.epoch.store(0, Ordering::Relaxed);
        self.tail.store(base, Ordering::Relaxed);
        self.head.store(base, Ordering::Relaxed);
    }
}

/// Slot index of position `pos`.
#[inline]
pub(crate) fn index<S: Slots + ?Sized>(s: &S, pos: u64) -> usize {
    (pos & (s.capacity() - 1)) as usize
}

/// Marks every slot as holding the lap before `base`; creator only.
pub(crate) fn init_slots<S: Slots + ?Sized>(s: &S, base: u64) {
    for k in 0..s.capacity() {
        let pos = base.wrapping_add(k);
        // "Holds position pos - capacity": never pos + 1 for a capacity > 0.
        s.seq(index(s, pos)).store(
            pos.wrapping_sub(s.capacity()).wrapping_add(1),
            Ordering::Relaxed,
        );
        s.len(index(s, pos)).store(0, Ordering::Relaxed);
    }
}

/// The producer's private view: its tail and its cached credit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Producer {
    pub(crate) tail: u64,
    /// The consumer's `head` as last read: positions below
    /// `head + capacity` are free.
    head: u64,
}

impl Producer {
    /// A producer at `tail` that has not read the consumer's head yet.
    pub(crate) fn new(tail: u64) -> Producer {
        Producer {
            tail,
            head: tail.wrapping_sub(u64::MAX >> 1),
        }
    }

    /// Whether the slot for `tail` is free: from the cached credit, or, when
    /// it runs out, from the consumer's `head`.
    #[inline]
    pub(crate) fn can_write<S: Slots + ?Sized>(&mut self, s: &S, lane: &LaneWords) -> bool {
        if self.tail.wrapping_sub(self.head) < s.capacity() {
            return true;
        }
        // SYNC(slot-free): Acquire pairs with the consumer's store in
        // `release`, so its reads of the old messages happen before our
        // writes into their slots.
        self.head = lane.head.load(Ordering::Acquire);
        self.tail.wrapping_sub(self.head) < s.capacity()
    }

    /// Publishes the message written into the slot for `tail`.
    #[inline]
    pub(crate) fn commit<S: Slots + ?Sized>(&mut self, s: &S, lane: &LaneWords, len: usize) {
        let i = index(s, self.tail);
        s.len(i).store(len as u64, Ordering::Relaxed);
        // SYNC(slot-full): Release pairs with the consumer's Acquire in
        // `readable`; SeqCst also orders it before the doorbell's load of its
        // word (Dekker with a consumer going to sleep).
        s.seq(i).store(self.tail.wrapping_add(1), Ordering::SeqCst);
        self.tail = self.tail.wrapping_add(1);
        lane.tail.store(self.tail, Ordering::Relaxed);
    }
}

/// Consumer: the length of the message at `head`, if one is there. The
/// length is copied out and checked: `Err(len)` for a length above the
/// maximum (a corrupt slot, to be skipped).
#[inline]
pub(crate) fn readable<S: Slots + ?Sized>(s: &S, head: u64) -> Option<Result<usize, u64>> {
    let i = index(s, head);
    // SYNC(slot-full): Acquire pairs with the producer's store in `commit`.
    if s.seq(i).load(Ordering::Acquire) != head.wrapping_add(1) {
        return None;
    }
    let len = s.len(i).load(Ordering::Relaxed);
    Some(if len <= s.max_len() as u64 {
        Ok(len as usize)
    } else {
        Err(len)
    })
}

/// Consumer: done with the message at `head`; its slot is the producer's
/// again. Returns the new head.
#[inline]
pub(crate) fn release(lane: &LaneWords, head: u64) -> u64 {
    let next = head.wrapping_add(1);
    // SYNC(slot-free): Release pairs with the producer's Acquire in
    // `can_write`; SeqCst orders it before the doorbell's load of its word.
    lane.head.store(next, Ordering::SeqCst);
    next
}

/// A producer taking over a lane: the true tail is the first position at
/// or after the consumer's head whose slot is not published (the mirror
/// may lag if the previous producer died between its commit and the mirror
/// store). Bounded by the capacity.
pub(crate) fn recover_tail<S: Slots + ?Sized>(s: &S, lane: &LaneWords) -> u64 {
    let mut t = lane.head.load(Ordering::Acquire);
    for _ in 0..s.capacity() {
        if s.seq(index(s, t)).load(Ordering::Acquire) == t.wrapping_add(1) {
            t = t.wrapping_add(1);
        } else {
            break;
        }
    }
    t
}

/// A consumer taking over: the head as the previous consumer left it.
pub(crate) fn recover_head(lane: &LaneWords) -> u64 {
    lane.head.load(Ordering::Acquire)
}

/// Heap-backed slots, for unit tests and loom: data bytes live in relaxed
/// atomics so that loom reports a consumer reading a stale message.
#[cfg(any(test, mapshare_loom))]
pub(crate) mod heap {
    use super::*;

    pub(crate) struct HeapSlots {
        seq: Vec<AtomicU64>,
        len: Vec<AtomicU64>,
        pub(crate) data: Vec<AtomicU64>, // one u64 of payload per slot
    }

    impl HeapSlots {
        pub(crate) fn new(capacity: u64) -> HeapSlots {
            let n = capacity as usize;
            HeapSlots {
                seq: (0..n).map(|_| AtomicU64::new(0)).collect(),
                len: (0..n).map(|_| AtomicU64::new(0)).collect(),
                data: (0..n).map(|_| AtomicU64::new(0)).collect(),
            }
        }
    }

    impl Slots for HeapSlots {
        fn capacity(&self) -> u64 {
            self.seq.len() as u64
        }
        fn max_len(&self) -> usize {
            8
        }
        fn seq(&self, i: usize) -> &AtomicU64 {
            &self.seq[i]
        }
        fn len(&self, i: usize) -> &AtomicU64 {
            &self.len[i]
        }
    }
}

#[cfg(all(test, not(mapshare_loom)))]
mod tests {
    use super::heap::HeapSlots;
    use super::*;
    use std::sync::Arc;

    fn send(s: &HeapSlots, lane: &LaneWords, p: &mut Producer, v: u64) -> bool {
        if !p.can_write(s, lane) {
            return false;
        }
        s.data[index(s, p.tail)].store(v, Ordering::Relaxed);
        p.commit(s, lane, 8);
        true
    }

    fn recv(s: &HeapSlots, lane: &LaneWords, head: &mut u64) -> Option<u64> {
        readable(s, *head)?.ok()?;
        let v = s.data[index(s, *head)].load(Ordering::Relaxed);
        *head = release(lane, *head);
        Some(v)
    }

    #[test]
    fn fifo_and_full_and_empty() {
        let s = HeapSlots::new(4);
        init_slots(&s, 0);
        let lane = LaneWords::new(0);
        let (mut p, mut h) = (Producer::new(0), 0);
        assert_eq!(recv(&s, &lane, &mut h), None);
        for v in 0..4 {
            assert!(send(&s, &lane, &mut p, v));
        }
        assert!(!send(&s, &lane, &mut p, 99), "full");
        for v in 0..4 {
            assert_eq!(recv(&s, &lane, &mut h), Some(v));
        }
        assert_eq!(recv(&s, &lane, &mut h), None);
        assert!(send(&s, &lane, &mut p, 4), "room again after the reads");
    }

    #[test]
    fn runs_across_the_u64_wrap() {
        for base in [u64::MAX - 5, u64::MAX, 0, 3] {
            let s = HeapSlots::new(4);
            init_slots(&s, base);
            let lane = LaneWords::new(base);
            let (mut p, mut h) = (Producer::new(base), base);
            assert_eq!(
                recv(&s, &lane, &mut h),
                None,
                "nothing before the first send"
            );
            for v in 0..100u64 {
                assert!(send(&s, &lane, &mut p, v));
                assert_eq!(recv(&s, &lane, &mut h), Some(v));
            }
        }
    }

    #[test]
    fn garbage_seq_and_len_are_skipped_not_trusted() {
        let s = HeapSlots::new(4);
        init_slots(&s, 0);
        let lane = LaneWords::new(0);
        s.seq(0).store(1, Ordering::Relaxed);
        s.len(0).store(u64::MAX, Ordering::Relaxed);
        assert_eq!(readable(&s, 0), Some(Err(u64::MAX)));
        s.seq(0).store(12345, Ordering::Relaxed);
        assert_eq!(readable(&s, 0), None);
        // A garbage head gives the producer no room, or room it then uses:
        // wrong data at worst, never an out-of-bounds index.
        lane.head.store(u64::MAX / 3, Ordering::Relaxed);
        let mut p = Producer::new(0);
        let _ = p.can_write(&s, &lane);
        assert!(index(&s, p.tail) < 4);
    }

    #[test]
    fn recovery_finds_the_true_tail_and_head() {
        let s = HeapSlots::new(4);
        init_slots(&s, 0);
        let lane = LaneWords::new(0);
        let mut p = Producer::new(0);
        assert!(send(&s, &lane, &mut p, 1));
        assert!(send(&s, &lane, &mut p, 2));
        lane.tail.store(0, Ordering::Relaxed); // died before the mirror stores
        assert_eq!(recover_tail(&s, &lane), 2);
        let mut h = recover_head(&lane);
        assert_eq!(recv(&s, &lane, &mut h), Some(1));
        assert_eq!(recover_head(&lane), 1);
        assert_eq!(recover_tail(&s, &lane), 2);
    }

    #[test]
    fn two_threads_keep_order() {
        let s = Arc::new(HeapSlots::new(8));
        init_slots(&*s, 0);
        let lane = Arc::new(LaneWords::new(0));
        let n = 200_000u64;
        let (s2, l2) = (s.clone(), lane.clone());
        let producer = std::thread::spawn(move || {
            let mut p = Producer::new(0);
            for v in 0..n {
                while !send(&s2, &l2, &mut p, v) {
                    std::hint::spin_loop();
                }
            }
        });
        let mut h = 0;
        for v in 0..n {
            loop {
                if let Some(got) = recv(&s, &lane, &mut h) {
                    assert_eq!(got, v);
                    break;
                }
                std::hint::spin_loop();
            }
        }
        producer.join().unwrap();
    }
}
