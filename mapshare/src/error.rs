//! Every public error type.

use std::fmt;
use std::io;

use crate::layout::Fingerprint;

/// Why a segment could not be created, opened, inspected or unlinked.
#[derive(Debug)]
#[non_exhaustive]
pub enum SegmentError {
    /// The name breaks the naming rule (1 to 200 of `A-Z a-z 0-9 . _ -`, not starting with `.`).
    InvalidName(String),
    /// A segment of that name already exists (`create`).
    AlreadyExists(String),
    /// No segment of that name exists (`open`).
    NotFound(String),
    /// The OS refused access (mode bits).
    PermissionDenied(String),
    /// The object belongs to another user, and the caller did not opt in
    /// with `allow_foreign_owner`. Someone may be squatting the name.
    ForeignOwner {
        /// The segment.
        name: String,
        /// Owner of the object.
        owner_uid: u32,
        /// Our effective uid.
        our_uid: u32,
    },
    /// Not enough shared memory to reserve the segment (full `/dev/shm`).
    NoSpace {
        /// The segment.
        name: String,
        /// Bytes we tried to reserve.
        requested: u64,
    },
    /// The bytes at the start of the object are not a valid mapshare header.
    Header {
        /// The segment.
        name: String,
        /// What is wrong with it.
        error: HeaderError,
    },
    /// The segment holds another kind of object (a mailbox opened as a mutex, say).
    KindMismatch {
        /// The segment.
        name: String,
        /// Kind we asked for.
        expected: &'static str,
        /// Kind the header holds.
        found: String,
    },
    /// The segment holds a value of another layout than the one asked for.
    LayoutMismatch {
        /// The segment.
        name: String,
        /// Layout of the type we opened it with.
        expected: Fingerprint,
        /// Layout recorded by the creator.
        found: Fingerprint,
    },
    /// The registry of attached processes is full.
    TooManyAttached(String),
    /// Another process held the segment's attach lock for longer than the
    /// open timeout (a peer stuck, or hostile).
    Busy(String),
    /// The requested size is invalid (zero, or too large for this platform).
    InvalidSize(String),
    /// Any other OS error, kept as is.
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        source: io::Error,
    },
}

impl SegmentError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> SegmentError {
        let context = context.into();
        match source.kind() {
            io::ErrorKind::PermissionDenied => SegmentError::PermissionDenied(context),
            io::ErrorKind::NotFound => SegmentError::NotFound(context),
            io::ErrorKind::AlreadyExists => SegmentError::AlreadyExists(context),
            _ if source.raw_os_error() == Some(28) => SegmentError::NoSpace {
                name: context,
                requested: 0,
            },
            _ => SegmentError::Io { context, source },
        }
    }
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentError::InvalidName(n) => write!(
                f,
                "invalid segment name {n:?}: use 1 to 200 of A-Z a-z 0-9 . _ -, not starting with '.'"
            ),
            SegmentError::AlreadyExists(n) => write!(f, "{n}: already exists"),
            SegmentError::NotFound(n) => write!(f, "{n}: no such segment"),
            SegmentError::PermissionDenied(n) => write!(f, "{n}: permission denied"),
            SegmentError::ForeignOwner { name, owner_uid, our_uid } => write!(
                f,
                "{name}: owned by uid {owner_uid}, not by us (uid {our_uid}); refusing to use it (allow_foreign_owner to opt in)"
            ),
            SegmentError::NoSpace { name, requested } => {
                write!(f, "{name}: not enough shared memory to reserve {requested} bytes")
            }
            SegmentError::Header { name, error } => write!(f, "{name}: {error}"),
            SegmentError::KindMismatch { name, expected, found } => {
                write!(f, "{name}: is a {found}, not a {expected}")
            }
            SegmentError::LayoutMismatch { name, expected, found } => write!(
                f,
                "{name}: layout mismatch: we expect {expected}, the segment holds {found}"
            ),
            SegmentError::TooManyAttached(n) => write!(f, "{n}: too many processes attached"),
            SegmentError::Busy(n) => write!(f, "{n}: attach lock held by another process for too long"),
            SegmentError::InvalidSize(n) => write!(f, "{n}: invalid size"),
            SegmentError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for SegmentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SegmentError::Io { source, .. } => Some(source),
            SegmentError::Header { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// What is wrong with a segment header. Produced by the pure validator, so
/// garbage written by anyone gives one of these, never a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// Fewer bytes than a header.
    TooShort {
        /// Bytes available.
        len: u64,
    },
    /// The magic bytes are not `MAPSHARE`: not one of ours.
    BadMagic,
    /// Another format version.
    VersionMismatch {
        /// Version in the segment.
        found: u32,
        /// Version this library speaks.
        expected: u32,
    },
    /// A kind this library does not know.
    UnknownKind(u32),
    /// The creator has not finished initialising (or died doing so).
    NotInitialized,
    /// The header's size fields disagree with each other or with the file.
    BadSize {
        /// What disagrees.
        what: &'static str,
    },
    /// A field holds a value outside its range.
    BadField {
        /// Which field.
        what: &'static str,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::TooShort { len } => write!(
                f,
                "not a mapshare segment: {len} bytes, shorter than a header"
            ),
            HeaderError::BadMagic => write!(f, "not a mapshare segment: bad magic"),
            HeaderError::VersionMismatch { found, expected } => {
                write!(
                    f,
                    "format version {found}, this library speaks version {expected}"
                )
            }
            HeaderError::UnknownKind(k) => write!(f, "unknown segment kind {k}"),
            HeaderError::NotInitialized => {
                write!(f, "not initialised (creator still working, or died)")
            }
            HeaderError::BadSize { what } => write!(f, "corrupt header: {what}"),
            HeaderError::BadField { what } => write!(f, "corrupt header: bad {what}"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Why a lock was not taken.
///
/// `OwnerDied` carries the guard: the lock *is* held, but the previous owner
/// died holding it, so the protected data may be half-updated. Handling the
/// error is the acknowledgement (Win32's `WAIT_ABANDONED`, std's poisoning).
#[derive(Debug)]
pub enum LockError<G> {
    /// The previous owner died while holding the lock; we hold it now.
    OwnerDied(G),
    /// `try_lock`: another live process holds it.
    WouldBlock,
    /// `lock_timeout` / `lock_deadline`: not acquired in time.
    Timeout,
}

impl<G> LockError<G> {
    /// The guard, if the lock was taken (after an owner died).
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => write!(f, "previous lock owner died while holding the lock"),
            LockError::WouldBlock => write!(f, "lock is held by another process"),
            LockError::Timeout => write!(f, "timed out waiting for the lock"),
        }
    }
}

impl<G: fmt::Debug> std::error::Error for LockError<G> {}

/// A wait for an event ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out")
    }
}

impl std::error::Error for Timeout {}

/// Why a mailbox send failed. The message is handed back where it was not stored.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The message is larger than the mailbox capacity; nothing was stored.
    TooLarge {
        /// Message length in bytes.
        len: usize,
        /// Mailbox capacity in bytes.
        capacity: usize,
    },
    /// `try_send`: the mailbox holds a message already.
    Full,
    /// `send_timeout`: the mailbox stayed full.
    Timeout,
    /// Another process shrank the segment below the size it had when we
    /// opened it: its memory is gone, nothing was stored. The handle is of
    /// no further use (see "A segment shrunk under us" in [`segment`](crate::segment)).
    Truncated,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::TooLarge { len, capacity } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the mailbox capacity of {capacity} bytes"
                )
            }
            SendError::Full => write!(f, "mailbox is full"),
            SendError::Timeout => write!(f, "timed out waiting for room in the mailbox"),
            SendError::Truncated => write!(
                f,
                "mailbox segment was truncated by another process; its memory is gone"
            ),
        }
    }
}

impl std::error::Error for SendError {}

/// Why a mailbox receive failed.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    /// `try_recv`: the mailbox is empty.
    Empty,
    /// `recv_timeout`: no message arrived in time.
    Timeout,
    /// The stored length exceeds the capacity: a peer corrupted the mailbox.
    /// The message is dropped and the mailbox emptied.
    Corrupt {
        /// The length found.
        len: u64,
        /// The mailbox capacity.
        capacity: u64,
    },
    /// Another process shrank the segment below the size it had when we
    /// opened it: its memory is gone, nothing was received. The handle is
    /// of no further use (see "A segment shrunk under us" in [`segment`](crate::segment)).
    Truncated,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => write!(f, "mailbox is empty"),
            RecvError::Timeout => write!(f, "timed out waiting for a message"),
            RecvError::Corrupt { len, capacity } => {
                write!(
                    f,
                    "corrupt mailbox: message length {len} exceeds capacity {capacity}"
                )
            }
            RecvError::Truncated => write!(
                f,
                "mailbox segment was truncated by another process; its memory is gone"
            ),
        }
    }
}

impl std::error::Error for RecvError {}

/// A string does not fit a [`FixedStr`](crate::FixedStr), or its stored bytes are invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrError {
    /// The text is `len` bytes long; the buffer holds `capacity`.
    TooLong {
        /// Text length in bytes (not characters).
        len: usize,
        /// Capacity in bytes.
        capacity: usize,
    },
    /// The stored length is larger than the buffer (corrupt).
    BadLength {
        /// Length found.
        len: u32,
        /// Capacity in bytes.
        capacity: usize,
    },
    /// The stored bytes are not UTF-8 (corrupt).
    NotUtf8 {
        /// Bytes up to here are valid.
        valid_up_to: usize,
    },
}

impl fmt::Display for StrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrError::TooLong { len, capacity } => {
                write!(f, "text of {len} bytes does not fit in {capacity} bytes")
            }
            StrError::BadLength { len, capacity } => {
                write!(f, "stored length {len} exceeds capacity {capacity}")
            }
            StrError::NotUtf8 { valid_up_to } => {
                write!(f, "stored text is not UTF-8 after byte {valid_up_to}")
            }
        }
    }
}

impl std::error::Error for StrError {}

/// Why a [`Publisher`](crate::Publisher) did not publish a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The message is longer than the ring's maximum; nothing was published.
    TooLarge {
        /// Message length in bytes.
        len: usize,
        /// The ring's largest message in bytes.
        max: usize,
    },
    /// `try_publish` (lossless ring): a live subscriber is a full ring behind.
    Full,
    /// `publish_timeout` / `publish_deadline`: still full when time ran out.
    Timeout,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::TooLarge { len, max } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the ring's maximum of {max} bytes"
                )
            }
            PublishError::Full => write!(f, "a subscriber is a full ring behind"),
            PublishError::Timeout => write!(f, "timed out waiting for the slowest subscriber"),
        }
    }
}

impl std::error::Error for PublishError {}

/// Why a [`Subscriber`](crate::Subscriber) did not receive a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSubRecvError {
    /// `try_recv`: nothing new.
    Empty,
    /// `recv_timeout` / `recv_deadline`: nothing new in time.
    Timeout,
    /// The publisher overwrote this many messages before we read them. The
    /// subscriber now stands at the oldest message still in the ring: the
    /// next receive returns it.
    Lagged(u64),
    /// Nothing new, and no live publisher: it left or died. Receiving again
    /// is allowed (a new publisher may take over).
    Disconnected,
    /// The slot of a published message held garbage (a peer broke the
    /// protocol); the message was skipped.
    Corrupt {
        /// Its position in the stream.
        position: u64,
        /// The length found (0 when the sequence word was the problem).
        len: u64,
    },
}

impl fmt::Display for PubSubRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PubSubRecvError::Empty => write!(f, "no new message"),
            PubSubRecvError::Timeout => write!(f, "timed out waiting for a message"),
            PubSubRecvError::Lagged(n) => {
                write!(f, "lagged behind the publisher: {n} messages missed")
            }
            PubSubRecvError::Disconnected => write!(f, "no new message and no live publisher"),
            PubSubRecvError::Corrupt { position, len } => write!(
                f,
                "corrupt slot for message {position} (length {len}); skipped"
            ),
        }
    }
}

impl std::error::Error for PubSubRecvError {}

/// Why a [`BlackboardReader`](crate::BlackboardReader) returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlackboardError {
    /// `try_read_newer`: no version newer than the one given.
    Unchanged,
    /// `read_newer_timeout` / `read_newer_deadline`: none in time.
    Timeout,
    /// Nothing newer, and no live writer: it left or died. The last
    /// complete value stays readable with `read`.
    Disconnected,
    /// No consistent copy after many attempts: the writer updates faster
    /// than we can copy, or a peer corrupted the sequence words.
    Contended,
}

impl fmt::Display for BlackboardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlackboardError::Unchanged => write!(f, "no newer value"),
            BlackboardError::Timeout => write!(f, "timed out waiting for a newer value"),
            BlackboardError::Disconnected => write!(f, "no newer value and no live writer"),
            BlackboardError::Contended => {
                write!(f, "no consistent copy of the value after many attempts")
            }
        }
    }
}

impl std::error::Error for BlackboardError {}
