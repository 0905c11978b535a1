//! Named shared memory between processes on one machine, done right.
//!
//! The classic recipe (a named file mapping, a named mutex taken with a
//! timeout, a "data is ready" message) with its sharp edges removed:
//!
//! - **Segments** by name, RAM-backed (`/dev/shm/mapshare.NAME`) or
//!   file-backed, created exclusively with mode 0600 and published only when
//!   fully initialised ([`SegmentOptions`]).
//! - **Typed access**: [`Shared<T>`] checks `T`'s layout on open;
//!   [`FixedStr`] keeps exact UTF-8 byte lengths.
//! - **Robust [`Mutex`]**: a holder killed with SIGKILL never blocks the
//!   others; the next locker is told ([`LockError::OwnerDied`]).
//! - **[`Event`]s**: futex-based, auto- or manual-reset, no lost wake-ups.
//! - **[`Mailbox`]**: one byte message at a time, delivered exactly once.
//! - Bytes another process wrote are untrusted: they are copied out and
//!   validated, and never cause a crash, an out-of-bounds access or a hang.
//!
//! # Example
//! ```
//! use mapshare::{FixedStr, Pod, Shared, Zeroable};
//!
//! #[derive(Clone, Copy, Pod, Zeroable)]
//! #[repr(C)]
//! struct Record {
//!     id: u64,
//!     text: FixedStr<60>, // 4 + 60 bytes: no padding, as Pod requires
//! }
//!
//! # let name = format!("doc-hello-{}", std::process::id());
//! let writer = Shared::<Record>::create(&name)?; // another process: Shared::open(&name)
//! writer.lock().unwrap().set(&Record { id: 1, text: FixedStr::new("héllo, 世界 🦀").unwrap() });
//! writer.notify();
//!
//! let reader = Shared::<Record>::open(&name)?;
//! reader.wait_timeout(std::time::Duration::from_secs(1)).unwrap();
//! let got = reader.lock().unwrap().get();
//! assert_eq!(got.text.as_str().unwrap(), "héllo, 世界 🦀");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Unsafe code
//! `unsafe` is denied crate-wide and allowed only in these modules:
//! `sys` (system calls), `region` (offsets to references, raw copies),
//! `pod` (the plain-data contracts), `channel` (zero-copy loans: scoped
//! slices over a slot the protocol has handed us).

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
mod channel;
#[allow(unsafe_code)]
mod pod;
#[allow(unsafe_code)]
mod region;
#[allow(unsafe_code)]
mod sys;

mod blackboard;
mod error;
pub mod layout;
mod mailbox;
mod name;
mod named;
mod primitive;
mod pubsub;
pub(crate) mod queue;
pub mod segment;
mod shared;
pub(crate) mod sync;

#[cfg(all(test, mapshare_loom))]
mod loom_tests;

pub use bytemuck::{self, Pod, Zeroable};
pub use channel::{
    channel_stats, ChannelOptions, ChannelStats, Loan, PodReceiver, PodSender, Receiver,
    RecvTimeoutError, SendTimeoutError, Sender, TryRecvError, TrySendError, MAX_CAPACITY,
    MAX_MESSAGE, MAX_SENDERS,
};
pub use error::{HeaderError, LockError, RecvError, SegmentError, SendError, StrError, Timeout};
pub use layout::fixed_str::{FixedStr, Truncation};
pub use layout::{Fingerprint, Kind};
pub use mailbox::{Mailbox, DEFAULT_MAILBOX_CAPACITY};
pub use name::{Name, NAME_MAX_LEN};
pub use named::{Event, EventMode, Mutex, MutexGuard};
pub use segment::{Location, SegmentOptions};
pub use shared::{Shared, SharedGuard};
pub use sync::doorbell::WaitStrategy;

pub use blackboard::{BlackboardReader, BlackboardWriter};
pub use error::{BlackboardError, PubSubRecvError, PublishError};
pub use pubsub::{
    pubsub_stats, Policy, PubSubOptions, PubSubStats, Publisher, Subscriber, SubscriberStats,
    MAX_SUBSCRIBERS,
};
