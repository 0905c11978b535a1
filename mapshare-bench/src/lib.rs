//! Support code of the two programs of this crate, `mapshare-bench` (the
//! benchmark) and `mapshare-soak` (the kill-and-restart soak). The crate is
//! not published and is no part of the mapshare library or its CLI; both
//! programs use only the library's public API.
//!
//! # Unsafe code
//! Denied (the workspace lint) everywhere but in [`floor`], which turns its
//! mapped lines into `&AtomicU64`s and copies bytes in and out of its byte
//! ring with `memcpy`.

#[allow(unsafe_code)] // references and copies into mappings; see floor's SAFETY comments
pub mod floor;
pub mod stats;
