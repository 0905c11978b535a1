//! Named shared memory between processes on one machine, done right.
//!
//! The classic recipe (a named file mapping, a named mutex taken with a
//! timeout, a "data is ready" message) with its sharp edges removed, and
//! the messaging kinds built on it. Every kind lives in a named segment
//! (`/dev/shm/mapshare.NAME`, or a file) and has one shape:
//! `K::create(name)`, `K::open(name)`, `K::open_or_create(name)`, or
//! `K::options(name)` for an [`Options<K>`] builder (persistence, mode,
//! sizes, wait strategy) ending in `create` / `open` / `open_or_create`.
//! Every waiting call comes in four forms (`try_x`, `x`, `x_timeout`,
//! `x_deadline`) with crossbeam's errors ([`error`]).
//!
//! # The kinds
//!
//! **[`Shared<T>`]**: one plain-data value with a robust lock and a
//! data-ready event: the whole recipe in one type. `T`'s layout (type name,
//! size, alignment) is checked on open; [`FixedStr`] keeps exact UTF-8 byte
//! lengths. [`SharedBytes`] (and [`BlackboardWriterBytes`] /
//! [`BlackboardReaderBytes`]) are the same segments with the layout given
//! at run time as a [`Fingerprint`], for bindings to other languages.
//! ```
//! use mapshare::{FixedStr, Pod, Shared, Zeroable};
//!
//! #[derive(Clone, Copy, Pod, Zeroable)]
//! #[repr(C)]
//! #[bytemuck(crate = "mapshare::bytemuck")] // the derive's path, or depend on bytemuck
//! struct Record {
//!     id: u64,
//!     text: FixedStr<60>, // 4 + 60 bytes: no padding, as Pod requires
//! }
//!
//! # let name = format!("doc-hello-{}", std::process::id());
//! let writer = Shared::<Record>::create(&name)?; // another process: Shared::open(&name)
//! writer.lock().unwrap().set(&Record { id: 1, text: FixedStr::new("héllo, 世界 🦀")? });
//! writer.notify();
//!
//! let reader = Shared::<Record>::open(&name)?;
//! reader.wait_timeout(std::time::Duration::from_secs(1))?;
//! let got = reader.lock().unwrap().get(); // a guard error borrows `reader`: handle it here
//! assert_eq!(got.text.as_str()?, "héllo, 世界 🦀");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **[`Mutex`]** and **[`Event`]**: a robust named mutex (a holder killed
//! with SIGKILL never blocks the others: the next locker gets
//! [`LockError::OwnerDied`] with the guard) and an auto- or manual-reset
//! event.
//! ```
//! use mapshare::{Event, LockError, Mutex};
//! # let name = format!("doc-lock-{}", std::process::id());
//! let m = Mutex::open_or_create(&name)?;
//! let guard = match m.lock() {
//!     Ok(g) => g,
//!     Err(LockError::OwnerDied(g)) => g, // the previous holder died: repair, then go on
//!     Err(e) => return Err(e.to_string().into()), // a fault: the guard error borrows `m`
//! };
//! drop(guard);
//! # let ev = format!("doc-ev-{}", std::process::id());
//! let ready = Event::options(&ev).manual_reset(true).create()?;
//! ready.notify();
//! assert!(ready.try_wait().is_ok() && ready.try_wait().is_ok()); // manual: stays set
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **[`Mailbox`]**: one byte message at a time, delivered exactly once;
//! what `mapshare send` / `mapshare recv` use.
//! ```
//! use mapshare::Mailbox;
//! # let name = format!("doc-mbox-{}", std::process::id());
//! let mb = Mailbox::create(&name)?;
//! mb.send("grüß dich 👋".as_bytes())?;
//! assert_eq!(Mailbox::open(&name)?.recv()?, "grüß dich 👋".as_bytes());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Channels**: lock-free queues from one or many [`Sender`]s to one
//! [`Receiver`] (bytes) or [`PodSender<T>`] / [`PodReceiver<T>`] (typed),
//! with no system call on the fast path, zero-copy [`Sender::loan`] and
//! [`Receiver::recv_ref`], and crossbeam's disconnection: a receiver whose
//! senders have all gone (even killed) gets `Disconnected`, never a hang.
//! ```
//! use mapshare::{Receiver, RecvError, Sender};
//! # let name = format!("doc-chan-{}", std::process::id());
//! let mut rx = Receiver::options(&name).capacity(64).max_message(256).create()?;
//! let mut tx = Sender::open(&name)?;
//! tx.send(b"hello")?;
//! let mut slot = tx.loan()?; // zero-copy: write in place, then commit
//! slot.write_at(0, b"world");
//! slot.commit(5);
//! drop(tx);
//! assert_eq!(rx.recv()?, b"hello");
//! assert_eq!(rx.recv_ref()?.to_vec(), b"world"); // a `Sample`, read by copies
//! assert_eq!(rx.recv(), Err(RecvError::Disconnected)); // every sender has gone
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Publish/subscribe**: one [`Publisher`], up to [`MAX_SUBSCRIBERS`]
//! [`Subscriber`]s, each reading every message at its own pace;
//! [`Policy::Lossless`] or [`Policy::OverwriteOldest`].
//! ```
//! use mapshare::{Policy, Publisher, Subscriber};
//! # let name = format!("doc-ps-{}", std::process::id());
//! let mut publisher = Publisher::options(&name).policy(Policy::Lossless).create()?;
//! let (mut a, mut b) = (Subscriber::open(&name)?, Subscriber::open(&name)?);
//! publisher.publish(b"tick")?;
//! assert_eq!((a.recv()?, b.recv()?), (b"tick".to_vec(), b"tick".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Blackboard**: the latest value of a plain-data `T`, one
//! [`BlackboardWriter`], any number of [`BlackboardReader`]s; never torn,
//! readers never block the writer.
//! ```
//! use mapshare::{BlackboardReader, BlackboardWriter};
//! # let name = format!("doc-bb-{}", std::process::id());
//! let mut w = BlackboardWriter::<[u64; 3]>::create(&name)?;
//! let r = BlackboardReader::<[u64; 3]>::open(&name)?;
//! w.write(&[1, 2, 3]);
//! assert_eq!(r.read_with_version()?, ([1, 2, 3], 1));
//! assert_eq!(r.read_newer(0)?, ([1, 2, 3], 1)); // waits for a version newer than 0
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Peers are untrusted
//! Bytes another process wrote are copied out and validated; they never
//! cause a crash, an out-of-bounds access or a hang, and safe code never
//! holds a slice over memory a peer may write: the zero-copy [`View`] and
//! [`ViewMut`] copy on access (the raw slices sit behind `unsafe fn`s). A
//! peer that dies is noticed by everyone waiting on it. See the README's
//! "Guarantees" for what a hostile peer can and cannot do.
//!
//! # Layout of the crate
//! `sys` (the only OS calls) < `layout` (pure header code, fuzzed) <
//! `sync` (mutex, event, doorbell on atomics) and `queue` (the lane, ring,
//! seqlock and mailbox algorithms, one file each) < `segment` (create,
//! open, registry, lifetime) < `kinds` (the public types), with
//! [`options`], [`error`] and the four-form waiting of `wait` shared by
//! all of them.
//!
//! # Unsafe code
//! `unsafe` is denied crate-wide and allowed only in these modules:
//! `sys` (system calls), `region` (offsets to references, volatile copies,
//! the views), `pod` (the plain-data contracts, and the `shm_state!`
//! declarations each control structure makes where it is defined).

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
mod pod;
#[allow(unsafe_code)]
mod region;
#[allow(unsafe_code)]
mod sys;

#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
#[allow(unsafe_code)]
mod asyncio;
pub mod error;
mod kinds;
pub mod layout;
mod name;
pub mod options;
mod primitive;
pub(crate) mod queue;
pub mod segment;
pub(crate) mod sync;
mod wait;
pub mod waitset;

#[cfg(all(test, mapshare_loom))]
mod loom_tests;

#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
pub use asyncio::{async_backend, pending_waits, waitv_threads, AsyncBackend, MessageStream};
pub use bytemuck::{self, Pod, Zeroable};
pub use error::{
    Fault, HeaderError, LockError, LockTimeoutError, RecvError, RecvTimeoutError, SegmentError,
    SendError, SendTimeoutError, StrError, TryLockError, TryRecvError, TrySendError,
};
pub use kinds::blackboard::{
    BlackboardReader, BlackboardReaderBytes, BlackboardWriter, BlackboardWriterBytes,
};
pub use kinds::channel::{
    channel_stats, ChannelStats, LaneStats, Loan, PodReceiver, PodSender, Receiver, Sample, Sender,
    MAX_CAPACITY, MAX_MESSAGE, MAX_SENDERS,
};
pub use kinds::event::{Event, EventMode};
pub use kinds::mailbox::{Mailbox, DEFAULT_MAILBOX_MAX_MESSAGE};
pub use kinds::mutex::{Mutex, MutexGuard};
pub use kinds::pubsub::{
    pubsub_stats, Policy, PubLoan, PubSubStats, Publisher, SubSample, Subscriber, SubscriberStats,
    MAX_SUBSCRIBERS,
};
pub use kinds::service::{
    service_stats, CallError, Client, ClientStats, ReplyTo, Request, RequestLoan, Response,
    ResponseLoan, Server, ServiceStats, MAX_CLIENTS,
};
pub use kinds::shared::{LengthMismatch, Shared, SharedBytes, SharedBytesGuard, SharedGuard};
pub use layout::fixed_str::{FixedStr, Truncation};
pub use layout::{Fingerprint, Kind};
pub use name::{Name, NAME_MAX_LEN};
pub use options::Options;
pub use region::{View, ViewMut};
pub use segment::Location;
pub use sync::doorbell::WaitStrategy;
pub use waitset::{Ready, WaitSet, Waitable};
