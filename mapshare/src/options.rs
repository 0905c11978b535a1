//! [`Options<K>`]: the one builder for every kind.
//!
//! Every kind `K` (a [`Shared<T>`](crate::Shared), [`Mutex`](crate::Mutex),
//! [`Event`](crate::Event), [`Mailbox`](crate::Mailbox), channel ends,
//! pub/sub ends, blackboard ends) has
//!
//! - `K::create(name)`, `K::open(name)`, `K::open_or_create(name)` with the
//!   defaults, and
//! - `K::options(name)` (or [`Options::file`]) returning an `Options<K>`
//!   whose setters say where it lives, how long it lives, who may open it,
//!   its sizes and how its blocking calls wait, ending in
//!   [`Options::create`], [`Options::open`] or [`Options::open_or_create`].
//!
//! A setter exists only where it means something: `capacity` for queues,
//! `max_message` for byte messages, `senders` for channels, `policy` for
//! pub/sub rings, `history` for subscribers, `manual_reset` for events. Sizes are used when creating;
//! opening takes the segment's own (checked, never trusted).
//!
//! ```
//! use mapshare::{Options, Receiver, Sender};
//! # let name = format!("doc-options-{}", std::process::id());
//! let rx = Receiver::options(&name).capacity(64).max_message(256).persistent(false).create()?;
//! let tx: Sender = Options::new(&name).open()?;
//! # drop((rx, tx));
//! # Ok::<(), mapshare::SegmentError>(())
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::SegmentError;
use crate::queue::broadcast::Policy;
use crate::segment::SegmentOptions;
use crate::sync::doorbell::WaitStrategy;

/// How to create or open a `K`: location, lifetime, permissions, sizes,
/// waiting. See the [module docs](self).
pub struct Options<K> {
    pub(crate) seg: SegmentOptions,
    pub(crate) wait: WaitStrategy,
    pub(crate) capacity: Option<usize>,
    pub(crate) max_message: Option<usize>,
    pub(crate) senders: Option<usize>,
    pub(crate) policy: Policy,
    pub(crate) manual_reset: bool,
    /// Messages a joining subscriber takes from before its join ([`HasHistory`]).
    pub(crate) history: usize,
    /// The payload layout of a runtime-layout kind ([`HasLayout`]).
    pub(crate) layout: Option<crate::layout::Fingerprint>,
    /// First message position; only the crate's own tests move it (to run
    /// the rings across the `u64` wrap).
    pub(crate) base: u64,
    _k: PhantomData<fn() -> K>,
}

impl<K> Clone for Options<K> {
    fn clone(&self) -> Self {
        Options {
            seg: self.seg.clone(),
            wait: self.wait,
            capacity: self.capacity,
            max_message: self.max_message,
            senders: self.senders,
            policy: self.policy,
            manual_reset: self.manual_reset,
            history: self.history,
            layout: self.layout.clone(),
            base: self.base,
            _k: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Options<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("kind", &std::any::type_name::<K>())
            .field("segment", &self.seg)
            .field("wait", &self.wait)
            .field("capacity", &self.capacity)
            .field("max_message", &self.max_message)
            .field("senders", &self.senders)
            .field("policy", &self.policy)
            .field("manual_reset", &self.manual_reset)
            .field("history", &self.history)
            .field("layout", &self.layout)
            .finish()
    }
}

pub(crate) use private::How;

pub(crate) mod private {
    /// Which of the three terminal calls was made (public in a private
    /// module: nameable by this crate only).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum How {
        /// `create`.
        Create,
        /// `open`.
        Open,
        /// `open_or_create`.
        OpenOrCreate,
    }

    /// Seals [`Attach`](super::Attach): only this crate's kinds implement it.
    pub trait Sealed: Sized {
        /// Creates or opens the kind as `o` says.
        fn attach(
            o: &super::Options<Self>,
            how: super::How,
        ) -> Result<Self, crate::error::SegmentError>;
    }
}

/// A kind that lives in a segment: everything [`Options`] can build.
/// Sealed: implemented by this crate's kinds only.
pub trait Attach: private::Sealed {}

/// Kinds with a capacity in messages (channels, pub/sub rings).
pub trait HasCapacity: Attach {}
/// Kinds carrying byte messages of a chosen maximum size (byte channels,
/// pub/sub rings, mailboxes).
pub trait HasMaxMessage: Attach {}
/// Channel ends: how many senders may be attached at once.
pub trait HasSenders: Attach {}
/// Pub/sub ends: what a full ring does.
pub trait HasPolicy: Attach {}
/// Subscribers: messages to take from before the join.
pub trait HasHistory: Attach {}
/// Kinds whose payload layout is given at run time rather than by a type
/// ([`SharedBytes`](crate::SharedBytes), the byte blackboard ends).
pub trait HasLayout: Attach {}

impl<K> Options<K> {
    /// A RAM-backed `K` named `name` (checked when used: 1 to 200 of
    /// `A-Z a-z 0-9 . _ -`, not starting with `.`): gone with its last
    /// process, mode 0600, own objects only, 5 s attach timeout, the
    /// default [`WaitStrategy`], the kind's default sizes.
    pub fn new(name: &str) -> Options<K> {
        Options::with_segment(SegmentOptions::new(name))
    }

    /// A `K` backed by the file at `path` instead of RAM (otherwise as
    /// [`Options::new`]).
    pub fn file(path: impl Into<PathBuf>) -> Options<K> {
        Options::with_segment(SegmentOptions::file(path))
    }

    fn with_segment(seg: SegmentOptions) -> Options<K> {
        Options {
            seg,
            wait: WaitStrategy::default(),
            capacity: None,
            max_message: None,
            senders: None,
            policy: Policy::Lossless,
            manual_reset: false,
            history: 0,
            layout: None,
            base: 0,
            _k: PhantomData,
        }
    }

    /// Keep the segment after its last process detaches, until
    /// [`segment::unlink`](crate::segment::unlink) or `mapshare rm`
    /// (default `false`: gone with the last process, the Win32 rule).
    /// Used when creating.
    pub fn persistent(mut self, yes: bool) -> Self {
        self.seg = self.seg.persistent(yes);
        self
    }

    /// Permission bits of a created segment, whatever the umask (default
    /// `0o600`: this user only).
    pub fn mode(mut self, mode: u32) -> Self {
        self.seg = self.seg.mode(mode);
        self
    }

    /// Accept a segment owned by another user (default `false`: such an
    /// object is refused, since anyone can pre-create a name).
    pub fn allow_foreign_owner(mut self, yes: bool) -> Self {
        self.seg = self.seg.allow_foreign_owner(yes);
        self
    }

    /// How long to wait for a peer holding the segment's attach lock
    /// (default 5 s).
    pub fn attach_timeout(mut self, timeout: Duration) -> Self {
        self.seg = self.seg.timeout(timeout);
        self
    }

    /// How this handle's blocking calls wait (default: spin 50 µs, then
    /// sleep). Used by every kind that waits for a peer's data or room.
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }
}

impl<K: Attach> Options<K> {
    /// Creates the segment and attaches to it.
    ///
    /// # Errors
    /// [`SegmentError::AlreadyExists`], [`SegmentError::InvalidName`],
    /// [`SegmentError::InvalidSize`], [`SegmentError::NoSpace`], ...
    pub fn create(&self) -> Result<K, SegmentError> {
        K::attach(self, How::Create)
    }

    /// Opens the existing segment and attaches to it; its kind and, for
    /// typed kinds, its layout must match.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`],
    /// [`SegmentError::LayoutMismatch`], [`SegmentError::ForeignOwner`],
    /// [`SegmentError::Header`], [`SegmentError::TooManyAttached`] (a role
    /// held by a live process), ...
    pub fn open(&self) -> Result<K, SegmentError> {
        K::attach(self, How::Open)
    }

    /// Opens the segment, creating it if it does not exist.
    ///
    /// # Errors
    /// As [`Options::open`] and [`Options::create`].
    pub fn open_or_create(&self) -> Result<K, SegmentError> {
        K::attach(self, How::OpenOrCreate)
    }
}

impl<K: HasCapacity> Options<K> {
    /// Messages the queue holds (channels: per sender), rounded up to a
    /// power of two. Used when creating.
    pub fn capacity(mut self, messages: usize) -> Self {
        self.capacity = Some(messages);
        self
    }
}

impl<K: HasMaxMessage> Options<K> {
    /// Largest message in bytes. Used when creating.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = Some(bytes);
        self
    }
}

impl<K: HasSenders> Options<K> {
    /// How many senders may be attached at once (1 to 64). Used when creating.
    pub fn senders(mut self, senders: usize) -> Self {
        self.senders = Some(senders);
        self
    }
}

impl<K: HasPolicy> Options<K> {
    /// What the publisher does when a subscriber is a full ring behind
    /// (default [`Policy::Lossless`]). Used when creating.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
}

impl<K: HasHistory> Options<K> {
    /// Late joining: the subscriber starts with up to the last `n` messages
    /// published before it joined that the ring still holds (at most its
    /// capacity − 1: the oldest slot may be the one being rewritten), then
    /// receives everything after them. Default 0: only messages published
    /// after the join. A lossless publisher waits for the joiner to read
    /// them, as for any other message.
    pub fn history(mut self, n: usize) -> Self {
        self.history = n;
        self
    }
}

impl<K: HasLayout> Options<K> {
    /// The payload's layout (type name, size, alignment), written when
    /// creating and checked when opening, exactly as a typed kind's
    /// `Fingerprint::of::<T>()`: a segment created by `Shared::<Record>`
    /// opens as [`SharedBytes`](crate::SharedBytes) with
    /// `Fingerprint::new("Record", size, align)`, and the other way round.
    /// Required: without it `create` and `open` fail with
    /// [`SegmentError::InvalidSize`].
    pub fn layout(mut self, layout: crate::layout::Fingerprint) -> Self {
        self.layout = Some(layout);
        self
    }
}

impl Options<crate::Event> {
    /// A manual-reset event (the signal stays set until `reset`; every
    /// wait passes) instead of auto-reset (one wait consumes it). Used
    /// when creating.
    pub fn manual_reset(mut self, yes: bool) -> Self {
        self.manual_reset = yes;
        self
    }
}

/// `K::options`, `K::create`, `K::open`, `K::open_or_create` for a kind.
macro_rules! constructors {
    ($what:literal) => {
        #[doc = concat!("Options for ", $what, " named `name`, to set before `create`, `open` or `open_or_create`.")]
        pub fn options(name: &str) -> $crate::Options<Self> {
            $crate::Options::new(name)
        }

        #[doc = concat!("Creates ", $what, " named `name` with the default options.")]
        ///
        /// # Errors
        /// As [`Options::create`](crate::Options::create).
        pub fn create(name: &str) -> Result<Self, $crate::SegmentError> {
            $crate::Options::new(name).create()
        }

        #[doc = concat!("Opens ", $what, " named `name`.")]
        ///
        /// # Errors
        /// As [`Options::open`](crate::Options::open).
        pub fn open(name: &str) -> Result<Self, $crate::SegmentError> {
            $crate::Options::new(name).open()
        }

        #[doc = concat!("Opens ", $what, " named `name`, creating it with the default options if needed.")]
        ///
        /// # Errors
        /// As [`Options::open_or_create`](crate::Options::open_or_create).
        pub fn open_or_create(name: &str) -> Result<Self, $crate::SegmentError> {
            $crate::Options::new(name).open_or_create()
        }
    };
}

pub(crate) use constructors;
