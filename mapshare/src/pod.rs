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

// SAFETY: three `AtomicU32`s and padding of `u32`s; `#[repr(C)]`.
unsafe impl ShmState for crate::sync::mutex::MutexWord {}
// SAFETY: `AtomicU32`s only; `#[repr(C)]`.
unsafe impl ShmState for crate::sync::event::EventWord {}
// SAFETY: `AtomicU32`s and an `AtomicU64`; `#[repr(C)]`.
unsafe impl ShmState for crate::segment::Slot {}
// SAFETY: `AtomicU32`s and `AtomicU64`s; `#[repr(C)]`.
unsafe impl ShmState for crate::mailbox::MailboxState {}
// SAFETY: `AtomicU32`s only; `#[repr(C)]`.
unsafe impl ShmState for crate::segment::HeaderWords {}
// SAFETY: `AtomicU32`s and padding; `#[repr(C)]`.
unsafe impl ShmState for crate::sync::doorbell::Doorbell {}
// SAFETY: `AtomicU64`s and `AtomicU32`s; `#[repr(C)]`.
unsafe impl ShmState for crate::channel::ChannelCtl {}
// SAFETY: two `AtomicU64`s; `#[repr(C)]`.
unsafe impl ShmState for crate::channel::SlotHeader {}
// SAFETY: `AtomicU32`s and `AtomicU64`s; `#[repr(C)]`.
unsafe impl ShmState for crate::queue::spsc::LaneWords {}
// SAFETY: an atomic integer: valid for every bit pattern, no pointers.
unsafe impl ShmState for crate::primitive::AtomicU64 {}
// SAFETY: `AtomicU64`s, `AtomicU32`s and `u64` padding; `#[repr(C)]`.
unsafe impl ShmState for crate::queue::broadcast::Control {}
// SAFETY: one `AtomicU64` and `u64` padding; `#[repr(C)]`.
unsafe impl ShmState for crate::queue::broadcast::TailLine {}
// SAFETY: `AtomicU32`s, `AtomicU64`s and `u64` padding; `#[repr(C)]`.
unsafe impl ShmState for crate::queue::broadcast::SubSlot {}
// SAFETY: `AtomicU64`s, `AtomicU32`s and `u64` padding; `#[repr(C)]`.
unsafe impl ShmState for crate::blackboard::BoardControl {}
