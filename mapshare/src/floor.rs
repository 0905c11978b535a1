//! The hardware floor for benchmarks: two processes ping-ponging a number
//! on one shared cache line by spinning. Nothing can pass a message between
//! cores faster; `mapshare bench` reports every figure as a ratio to it.

use crate::error::SegmentError;
use crate::layout::{Fingerprint, Kind};
use crate::primitive::{spin_loop, AtomicU64, Ordering};
use crate::segment::{Segment, SegmentOptions, Spec};

/// One word on its own 128-byte line.
///
/// | word | meaning |
/// |---|---|
/// | `value` | the number being ping-ponged; any value is valid |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Line {
    value: AtomicU64,
    _pad: [u64; 15],
}

fn spec() -> Spec {
    Spec {
        kind: Kind::Shared,
        layout: Fingerprint::new("SpinLine", 128, 128),
        check_layout: true,
        min_payload: 128,
    }
}

/// A shared cache line for measuring the floor (see the module docs).
#[derive(Debug)]
pub struct SpinLine {
    seg: Segment,
}

impl SpinLine {
    /// Creates the line, holding 0.
    ///
    /// # Errors
    /// As for any segment creation.
    pub fn create(opts: &SegmentOptions) -> Result<SpinLine, SegmentError> {
        Ok(SpinLine {
            seg: Segment::create(opts, &spec(), 128, |_| {})?,
        })
    }

    /// Opens an existing line.
    ///
    /// # Errors
    /// As for any segment open.
    pub fn open(opts: &SegmentOptions) -> Result<SpinLine, SegmentError> {
        Ok(SpinLine {
            seg: Segment::open(opts, &spec())?,
        })
    }

    fn line(&self) -> &Line {
        self.seg
            .payload()
            .get::<Line>(0)
            .expect("validated at open") // min_payload checked
    }

    /// Stores `v` (Release).
    #[inline]
    pub fn store(&self, v: u64) {
        // SYNC(floor): Release pairs with the Acquire load in `load`.
        self.line().value.store(v, Ordering::Release);
    }

    /// Loads the value (Acquire).
    #[inline]
    pub fn load(&self) -> u64 {
        // SYNC(floor): pairs with `store`.
        self.line().value.load(Ordering::Acquire)
    }

    /// Spins until the value is `v`; `false` if `give_up()` said so first
    /// (checked every 4096 polls).
    #[inline]
    pub fn wait_for(&self, v: u64, mut give_up: impl FnMut() -> bool) -> bool {
        let line = self.line();
        let mut n: u32 = 0;
        while line.value.load(Ordering::Acquire) != v {
            n = n.wrapping_add(1);
            if n % 4096 == 0 && give_up() {
                return false;
            }
            spin_loop();
        }
        true
    }
}
