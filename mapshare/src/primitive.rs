//! Atomics, from `core` or from loom (crossbeam's switch).
//!
//! Every atomic the algorithms use comes from here, so building with
//! `--cfg mapshare_loom` puts all of them under the model checker.

#![allow(clippy::disallowed_types)] // Reason: this is the one place the atomic types are named.
#![allow(unused_imports)] // Reason: each build uses a subset.

#[cfg(mapshare_loom)]
pub(crate) use loom::hint::spin_loop;
#[cfg(mapshare_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(mapshare_loom))]
pub(crate) use core::hint::spin_loop;
#[cfg(not(mapshare_loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
