//! The lane: a bounded single-producer single-consumer ring of
//! variable-length messages, with a sequence word per slot.
//!
//! This is Vyukov's bounded queue specialised to one producer and one
//! consumer (as in crossbeam's array flavour, minus the CAS): each slot's
//! `seq` says whose turn it is, so producer and consumer touch only the slot
//! lines and their own counters, and no shared head/tail line bounces
//! between cores on the fast path.
//!
//! Slot `i` (= position `p & (capacity - 1)`), `seq` word:
//!
//! | `seq` | meaning | next writer |
//! |---|---|---|
//! | `p` | free for position `p` | producer fills it, then stores `p + 1` |
//! | `p + 1` | holds the message of position `p` | consumer reads it, then stores `p + capacity` |
//! | anything else | not for us (another lap, or garbage from a peer) | nobody; we wait or skip |
//!
//! `tail` and `head` in [`LaneWords`] mirror the producer's and consumer's
//! private positions after every step; they are read only when a new
//! producer or consumer takes a lane over from a dead one ([`recover_tail`],
//! [`recover_head`]), and by `info`. Positions are `u64` and only compared for
//! equality, so they run across the wrap (invariant 8).
//!
//! What a crash leaves: a producer killed before its `seq` store leaves the
//! slot free (the message was never sent); after it, the message is sent.
//! A consumer killed before its release leaves the message in place for the
//! next consumer (delivered again: at-least-once for the message in hand).

use crate::primitive::{AtomicU32, AtomicU64, Ordering};

/// Bytes of slot header before the data.
pub(crate) const SLOT_HEADER: usize = 16;

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
/// sit on separate 128-byte lines.
///
/// | word | writer | meaning |
/// |---|---|---|
/// | `owner` | a producer claiming the lane (CAS) | liveness token of the producer; 0 free |
/// | `tail` | the producer | its next position (mirror) |
/// | `head` | the consumer | its next position (mirror) |
/// | `sent` | the producer | messages committed (informational) |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct LaneWords {
    pub(crate) owner: AtomicU32,
    _r: AtomicU32,
    pub(crate) tail: AtomicU64,
    pub(crate) sent: AtomicU64,
    _pad_a: [u64; 13],
    pub(crate) head: AtomicU64,
    _pad_b: [u64; 15],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<LaneWords>() == 256);

impl LaneWords {
    /// A lane starting at `base` (for heap-backed tests and loom).
    #[cfg(any(test, mapshare_loom))]
    pub(crate) fn new(base: u64) -> LaneWords {
        LaneWords {
            owner: AtomicU32::new(0),
            _r: AtomicU32::new(0),
            tail: AtomicU64::new(base),
            sent: AtomicU64::new(0),
            _pad_a: [0; 13],
            head: AtomicU64::new(base),
            _pad_b: [0; 15],
        }
    }

    /// Sets up an empty lane at `base`; creator only, before publishing.
    pub(crate) fn init(&self, base: u64) {
        self.owner.store(0, Ordering::Relaxed);
        self.tail.store(base, Ordering::Relaxed);
        self.head.store(base, Ordering::Relaxed);
        self.sent.store(0, Ordering::Relaxed);
    }
}

/// Slot index of position `pos`.
#[inline]
pub(crate) fn index<S: Slots + ?Sized>(s: &S, pos: u64) -> usize {
    (pos & (s.capacity() - 1)) as usize
}

/// Marks every slot free for the lap starting at `base`; creator only.
pub(crate) fn init_slots<S: Slots + ?Sized>(s: &S, base: u64) {
    for k in 0..s.capacity() {
        let pos = base.wrapping_add(k);
        s.seq(index(s, pos)).store(pos, Ordering::Relaxed);
        s.len(index(s, pos)).store(0, Ordering::Relaxed);
    }
}

/// Producer: whether the slot for `tail` is free.
#[inline]
pub(crate) fn can_write<S: Slots + ?Sized>(s: &S, tail: u64) -> bool {
    // SYNC(slot-free): Acquire pairs with the consumer's Release in `release`,
    // so its reads of the old message happen before our writes.
    s.seq(index(s, tail)).load(Ordering::Acquire) == tail
}

/// Producer: publishes the message written into the slot for `tail`.
/// Returns the new tail.
#[inline]
pub(crate) fn commit<S: Slots + ?Sized>(s: &S, lane: &LaneWords, tail: u64, len: usize) -> u64 {
    let i = index(s, tail);
    s.len(i).store(len as u64, Ordering::Relaxed);
    // SYNC(slot-full): Release pairs with the consumer's Acquire in
    // `readable`; SeqCst also orders it before the doorbell's `sleepers`
    // load (Dekker with a consumer going to sleep).
    s.seq(i).store(tail.wrapping_add(1), Ordering::SeqCst);
    let next = tail.wrapping_add(1);
    lane.tail.store(next, Ordering::Relaxed);
    lane.sent.fetch_add(1, Ordering::Relaxed);
    next
}

/// Consumer: the length of the message at `head`, if one is there. The
/// length is copied out and clamped-checked: `Err(len)` for a length above
/// the maximum (a corrupt slot, to be skipped).
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

/// Consumer: frees the slot at `head` for the producer's next lap. Returns
/// the new head.
#[inline]
pub(crate) fn release<S: Slots + ?Sized>(s: &S, lane: &LaneWords, head: u64) -> u64 {
    // SYNC(slot-free): Release pairs with the producer's Acquire in
    // `can_write`; SeqCst orders it before the doorbell's `sleepers` load.
    s.seq(index(s, head))
        .store(head.wrapping_add(s.capacity()), Ordering::SeqCst);
    let next = head.wrapping_add(1);
    lane.head.store(next, Ordering::Relaxed);
    next
}

/// A producer taking over a lane: the mirrored tail may be one step behind
/// if the previous producer died between its commit and its mirror store;
/// step over committed slots (bounded by the capacity).
pub(crate) fn recover_tail<S: Slots + ?Sized>(s: &S, lane: &LaneWords) -> u64 {
    let mut t = lane.tail.load(Ordering::Acquire);
    for _ in 0..s.capacity() {
        let seq = s.seq(index(s, t)).load(Ordering::Acquire);
        if seq == t.wrapping_add(1) || seq == t.wrapping_add(s.capacity()) {
            t = t.wrapping_add(1);
        } else {
            break;
        }
    }
    t
}

/// A consumer taking over: the mirrored head may be one step behind if the
/// previous consumer died between its release and its mirror store.
pub(crate) fn recover_head<S: Slots + ?Sized>(s: &S, lane: &LaneWords) -> u64 {
    let h = lane.head.load(Ordering::Acquire);
    if s.seq(index(s, h)).load(Ordering::Acquire) == h.wrapping_add(s.capacity()) {
        h.wrapping_add(1)
    } else {
        h
    }
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

    fn send(s: &HeapSlots, lane: &LaneWords, tail: &mut u64, v: u64) -> bool {
        if !can_write(s, *tail) {
            return false;
        }
        s.data[index(s, *tail)].store(v, Ordering::Relaxed);
        *tail = commit(s, lane, *tail, 8);
        true
    }

    fn recv(s: &HeapSlots, lane: &LaneWords, head: &mut u64) -> Option<u64> {
        readable(s, *head)?.ok()?;
        let v = s.data[index(s, *head)].load(Ordering::Relaxed);
        *head = release(s, lane, *head);
        Some(v)
    }

    #[test]
    fn fifo_and_full_and_empty() {
        let s = HeapSlots::new(4);
        init_slots(&s, 0);
        let lane = LaneWords::new(0);
        let (mut t, mut h) = (0, 0);
        assert_eq!(recv(&s, &lane, &mut h), None);
        for v in 0..4 {
            assert!(send(&s, &lane, &mut t, v));
        }
        assert!(!send(&s, &lane, &mut t, 99), "full");
        for v in 0..4 {
            assert_eq!(recv(&s, &lane, &mut h), Some(v));
        }
        assert_eq!(recv(&s, &lane, &mut h), None);
    }

    #[test]
    fn runs_across_the_u64_wrap() {
        let base = u64::MAX - 5;
        let s = HeapSlots::new(4);
        init_slots(&s, base);
        let lane = LaneWords::new(base);
        let (mut t, mut h) = (base, base);
        for v in 0..100u64 {
            assert!(send(&s, &lane, &mut t, v));
            assert_eq!(recv(&s, &lane, &mut h), Some(v));
        }
        assert!(t < base, "wrapped");
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
        assert!(!can_write(&s, 0));
        let _ = lane;
    }

    #[test]
    fn recovery_steps_over_unmirrored_commit_and_release() {
        let s = HeapSlots::new(4);
        init_slots(&s, 0);
        let lane = LaneWords::new(0);
        let mut t = 0;
        assert!(send(&s, &lane, &mut t, 1));
        lane.tail.store(0, Ordering::Relaxed); // died before the mirror store
        assert_eq!(recover_tail(&s, &lane), 1);
        let mut h = 0;
        assert_eq!(recv(&s, &lane, &mut h), Some(1));
        lane.head.store(0, Ordering::Relaxed);
        assert_eq!(recover_head(&s, &lane), 1);
    }

    #[test]
    fn two_threads_keep_order() {
        let s = Arc::new(HeapSlots::new(8));
        init_slots(&*s, 0);
        let lane = Arc::new(LaneWords::new(0));
        let n = 200_000u64;
        let (s2, l2) = (s.clone(), lane.clone());
        let p = std::thread::spawn(move || {
            let mut t = 0;
            for v in 0..n {
                while !send(&s2, &l2, &mut t, v) {
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
        p.join().unwrap();
    }
}
