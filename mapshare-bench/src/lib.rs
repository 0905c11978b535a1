//! Support code of the two programs of this crate, `mapshare-bench` (the
//! benchmark) and `mapshare-soak` (the kill-and-restart soak). The crate is
//! not published and is no part of the mapshare library or its CLI; both
//! programs use only the library's public API.
//!
//! # Unsafe code
//! Denied (the workspace lint) everywhere but in [`floor`], which turns its
//! mapped line into an `&AtomicU64`.

#[allow(unsafe_code)] // one reference into a mapping; see floor's SAFETY comment
pub mod floor;
pub mod stats;
