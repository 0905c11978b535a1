//! Which types may live in shared memory.
//!
//! User payloads ([`Shared<T>`](crate::Shared)) must be [`bytemuck::Pod`]:
//! `#[repr(C)]` (or transparent), no padding, no pointers, valid for every
//! bit pattern (so no `bool`, `char`, enums or `NonZero*`). bytemuck's derive
//! checks all of that at compile time, which is why we use it rather than a
//! trait of our own.
//!
//! Our own control structures (mutex and event words, registry slots) are
//! made of atomics and implement the crate-private [`ShmState`].

use crate::layout::fixed_str::FixedStr;

// SAFETY: `FixedStr<N>` is `#[repr(C)]` with fields `[u8; 4]` and `[u8; N]`:
// alignment 1, so no padding, and every bit pattern of both is valid.
unsafe impl<const N: usize> bytemuck::Zeroable for FixedStr<N> {}
// SAFETY: as above; it is also `Copy + 'static` and holds no pointers.
unsafe impl<const N: usize> bytemuck::Pod for FixedStr<N> {}

/// A control structure that lives in shared memory and is reached by
/// reference (`&Self`) from every attached process.
///
/// # Safety
/// Implementors must be:
/// - `#[repr(C)]`, made only of atomics (and plain integers never written
///   after initialisation), so every bit pattern is valid and concurrent
///   access from other processes is not a data race;
/// - free of pointers, references and handles;
/// - no larger than their declared slot in the segment layout.
pub(crate) unsafe trait ShmState: Sync {}

// SAFETY: an atomic integer: valid for every bit pattern, no pointers.
unsafe impl ShmState for crate::primitive::AtomicU64 {}

/// Declares that a control structure may live in shared memory: an
/// `unsafe impl ShmState`, written where the type is defined so this
/// module need not know the kinds above it.
///
/// The invocation states why the type meets the contract of [`ShmState`]
/// (a `#[repr(C)]` struct of atomics and never-written padding); review it
/// as a `// SAFETY:` comment. It also pins at compile time that the type
/// holds nothing to drop (no pointers, no handles).
macro_rules! shm_state {
    ($t:ty, $why:literal) => {
        #[cfg(not(mapshare_loom))] // loom atomics have drop glue
        const _: () = assert!(!std::mem::needs_drop::<$t>(), $why);
        #[allow(unsafe_code)] // Reason: the one unsafe impl this macro exists for.
                              // SAFETY: as the invocation's justification says; checked by review.
        unsafe impl $crate::pod::ShmState for $t {}
    };
}

pub(crate) use shm_state;
