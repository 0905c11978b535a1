//! Heap-backed rings, for unit tests and the loom models.

use super::*;

/// All the shared parts of a ring, on the heap.
pub(crate) struct HeapRing {
    pub(crate) ctl: Control,
    pub(crate) tail: TailLine,
    pub(crate) data_bell: Doorbell,
    pub(crate) room_bell: Doorbell,
    pub(crate) subs: Vec<SubSlot>,
    pub(crate) words: Vec<AtomicU64>,
    pub(crate) g: Geometry,
}

impl HeapRing {
    /// An initialised ring with every subscriber slot.
    #[cfg(not(mapshare_loom))]
    pub(crate) fn new(capacity: usize, max_message: usize, policy: Policy, base: u64) -> Self {
        HeapRing::with_slots(capacity, max_message, policy, base, MAX_SUBSCRIBERS)
    }

    /// An initialised ring with `slots` subscriber slots (loom models
    /// keep them few).
    pub(crate) fn with_slots(
        capacity: usize,
        max_message: usize,
        policy: Policy,
        base: u64,
        slots: usize,
    ) -> Self {
        let g = Geometry::new(capacity, max_message, policy, base).expect("test geometry");
        let h = HeapRing {
            ctl: Control::new(),
            tail: TailLine::new(),
            data_bell: Doorbell::new(),
            room_bell: Doorbell::new(),
            subs: (0..slots).map(|_| SubSlot::new()).collect(),
            words: (0..g.words().expect("test geometry"))
                .map(|_| AtomicU64::new(0))
                .collect(),
            g,
        };
        h.ring().init();
        h
    }

    pub(crate) fn ring(&self) -> Ring<'_> {
        Ring::new(
            &self.ctl,
            &self.tail,
            &self.data_bell,
            &self.room_bell,
            &self.subs,
            &self.words,
            self.g,
        )
        .expect("test ring")
    }
}
