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

/// Something a peer did (or a damaged segment) that a call detected and
/// survived: no crash, no out-of-bounds access, no hang. Carried by the
/// `Fault` variant of every send, receive, wait and lock error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Another process shrank the segment below the size it had when we
    /// opened it: its memory is gone, and touching it would raise `SIGBUS`.
    /// Nothing was sent or received; the handle is of no further use (see
    /// "A segment shrunk under us" in [`segment`](crate::segment)).
    Truncated,
    /// A stored message length exceeds the maximum (a peer broke the
    /// protocol); the message was skipped.
    BadLength {
        /// The length found.
        len: u64,
        /// The largest valid length.
        max: u64,
    },
    /// The slot of a published message held garbage (its sequence word
    /// contradicts the stream's position); the message was skipped.
    BadSlot {
        /// Its position in the stream.
        position: u64,
    },
    /// No consistent copy after many attempts: a writer faster than the
    /// copy, or a peer corrupting sequence words.
    Contended,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Truncated => write!(
                f,
                "segment was truncated by another process; its memory is gone"
            ),
            Fault::BadLength { len, max } => write!(
                f,
                "corrupt message length {len} (maximum {max}); message skipped"
            ),
            Fault::BadSlot { position } => {
                write!(f, "corrupt slot for message {position}; message skipped")
            }
            Fault::Contended => write!(f, "no consistent copy after many attempts"),
        }
    }
}

impl std::error::Error for Fault {}

/// A non-blocking send failed; the message is handed back
/// (channels, pub/sub, mailboxes).
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum TrySendError<T> {
    /// No room now (the channel lane, a lossless ring's slowest subscriber,
    /// or the mailbox is full).
    Full(T),
    /// The receiving side has gone (dropped, exited or killed). A new
    /// receiver may attach later: sending again is allowed.
    Disconnected(T),
    /// The message is larger than the maximum; nothing was sent.
    TooLarge(T),
    /// A fault in the segment (see [`Fault`]); nothing was sent.
    Fault(T, Fault),
}

/// A send with a timeout or deadline failed; the message is handed back.
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum SendTimeoutError<T> {
    /// Still no room when the time ran out.
    Timeout(T),
    /// The receiving side has gone (see [`TrySendError::Disconnected`]).
    Disconnected(T),
    /// The message is larger than the maximum; nothing was sent.
    TooLarge(T),
    /// A fault in the segment (see [`Fault`]); nothing was sent.
    Fault(T, Fault),
}

/// A blocking send failed; the message is handed back. A blocking send
/// waits as long as it takes for room, so it fails only when waiting
/// cannot help.
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The receiving side has gone (see [`TrySendError::Disconnected`]).
    Disconnected(T),
    /// The message is larger than the maximum; nothing was sent.
    TooLarge(T),
    /// A fault in the segment (see [`Fault`]); nothing was sent.
    Fault(T, Fault),
}

macro_rules! send_error_common {
    ($t:ident { $($var:ident => $msg:literal),* }) => {
        impl<T> $t<T> {
            /// The message that was not sent.
            pub fn into_inner(self) -> T {
                match self {
                    $( $t::$var(m) => m, )*
                    $t::Disconnected(m) | $t::TooLarge(m) | $t::Fault(m, _) => m,
                }
            }

            /// Whether the receiving side has gone.
            pub fn is_disconnected(&self) -> bool {
                matches!(self, $t::Disconnected(_))
            }
        }

        impl<T> fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $t::$var(_) => f.write_str(concat!(stringify!($var), "(..)")), )*
                    $t::Disconnected(_) => f.write_str("Disconnected(..)"),
                    $t::TooLarge(_) => f.write_str("TooLarge(..)"),
                    $t::Fault(_, fault) => write!(f, "Fault(.., {fault:?})"),
                }
            }
        }

        impl<T> fmt::Display for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $t::$var(_) => f.write_str($msg), )*
                    $t::Disconnected(_) => f.write_str("sending on a disconnected channel: the receiving side has gone"),
                    $t::TooLarge(_) => f.write_str("message larger than the maximum"),
                    $t::Fault(_, fault) => write!(f, "{fault}"),
                }
            }
        }

        impl<T> std::error::Error for $t<T> {}
    };
}

send_error_common!(TrySendError { Full => "no room: the queue is full" });
send_error_common!(SendTimeoutError { Timeout => "timed out waiting for room" });
send_error_common!(SendError {});

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        match e {
            SendError::Disconnected(m) => TrySendError::Disconnected(m),
            SendError::TooLarge(m) => TrySendError::TooLarge(m),
            SendError::Fault(m, f) => TrySendError::Fault(m, f),
        }
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        match e {
            SendError::Disconnected(m) => SendTimeoutError::Disconnected(m),
            SendError::TooLarge(m) => SendTimeoutError::TooLarge(m),
            SendError::Fault(m, f) => SendTimeoutError::Fault(m, f),
        }
    }
}

impl<T> SendTimeoutError<T> {
    /// The same failure with the message replaced (typed senders hand back
    /// the value, not its bytes).
    pub(crate) fn map<U>(self, m: U) -> SendTimeoutError<U> {
        match self {
            SendTimeoutError::Timeout(_) => SendTimeoutError::Timeout(m),
            SendTimeoutError::Disconnected(_) => SendTimeoutError::Disconnected(m),
            SendTimeoutError::TooLarge(_) => SendTimeoutError::TooLarge(m),
            SendTimeoutError::Fault(_, f) => SendTimeoutError::Fault(m, f),
        }
    }
}

/// A non-blocking receive (or wait) found nothing, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryRecvError {
    /// Nothing is waiting (no message; an event not set; no newer value).
    Empty,
    /// Nothing is waiting and the sending side has gone (every sender, the
    /// publisher or the writer left or died). A new one may attach later:
    /// receiving again is allowed.
    Disconnected,
    /// The publisher overwrote this many messages before we read them
    /// (overwrite-oldest rings); the next receive returns the oldest
    /// message still in the ring.
    Lagged(u64),
    /// A fault (see [`Fault`]); a corrupt message was skipped.
    Fault(Fault),
}

/// A receive (or wait) with a timeout or deadline found nothing in time, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// Nothing arrived in time.
    Timeout,
    /// See [`TryRecvError::Disconnected`].
    Disconnected,
    /// See [`TryRecvError::Lagged`].
    Lagged(u64),
    /// See [`TryRecvError::Fault`].
    Fault(Fault),
}

/// A blocking receive (or wait) failed. It waits as long as it takes, so
/// it fails only when waiting cannot help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// See [`TryRecvError::Disconnected`].
    Disconnected,
    /// See [`TryRecvError::Lagged`].
    Lagged(u64),
    /// See [`TryRecvError::Fault`].
    Fault(Fault),
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("nothing is waiting"),
            TryRecvError::Disconnected => RecvError::Disconnected.fmt(f),
            TryRecvError::Lagged(n) => RecvError::Lagged(*n).fmt(f),
            TryRecvError::Fault(x) => x.fmt(f),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting"),
            RecvTimeoutError::Disconnected => RecvError::Disconnected.fmt(f),
            RecvTimeoutError::Lagged(n) => RecvError::Lagged(*n).fmt(f),
            RecvTimeoutError::Fault(x) => x.fmt(f),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Disconnected => {
                f.write_str("nothing is waiting and the sending side has gone")
            }
            RecvError::Lagged(n) => write!(f, "lagged behind the publisher: {n} messages missed"),
            RecvError::Fault(x) => x.fmt(f),
        }
    }
}

impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}
impl std::error::Error for RecvError {}

impl From<RecvError> for TryRecvError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Disconnected => TryRecvError::Disconnected,
            RecvError::Lagged(n) => TryRecvError::Lagged(n),
            RecvError::Fault(f) => TryRecvError::Fault(f),
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Disconnected => RecvTimeoutError::Disconnected,
            RecvError::Lagged(n) => RecvTimeoutError::Lagged(n),
            RecvError::Fault(f) => RecvTimeoutError::Fault(f),
        }
    }
}

/// A blocking lock returned without a clean lock.
///
/// `OwnerDied` carries the guard: the lock *is* held, but the previous
/// owner died holding it, so the protected data may be half-updated.
/// Handling the error is the acknowledgement (Win32's `WAIT_ABANDONED`,
/// std's poisoning).
#[derive(Debug)]
#[non_exhaustive]
pub enum LockError<G> {
    /// The previous owner died while holding the lock; we hold it now.
    OwnerDied(G),
    /// A fault in the segment (see [`Fault`]); the lock is not held.
    Fault(Fault),
}

/// `try_lock` returned without a clean lock.
#[derive(Debug)]
#[non_exhaustive]
pub enum TryLockError<G> {
    /// See [`LockError::OwnerDied`].
    OwnerDied(G),
    /// Another live process holds it.
    WouldBlock,
    /// See [`LockError::Fault`].
    Fault(Fault),
}

/// `lock_timeout` / `lock_deadline` returned without a clean lock.
#[derive(Debug)]
#[non_exhaustive]
pub enum LockTimeoutError<G> {
    /// See [`LockError::OwnerDied`].
    OwnerDied(G),
    /// Not acquired in time.
    Timeout,
    /// See [`LockError::Fault`].
    Fault(Fault),
}

macro_rules! lock_error_common {
    ($t:ident { $($var:ident => $msg:literal),* }) => {
        impl<G> $t<G> {
            /// The guard, if the lock was taken (after an owner died).
            pub fn into_guard(self) -> Option<G> {
                match self {
                    $t::OwnerDied(g) => Some(g),
                    _ => None,
                }
            }
        }

        impl<G> fmt::Display for $t<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $t::OwnerDied(_) => {
                        f.write_str("previous lock owner died while holding the lock")
                    }
                    $( $t::$var => f.write_str($msg), )*
                    $t::Fault(x) => x.fmt(f),
                }
            }
        }

        impl<G: fmt::Debug> std::error::Error for $t<G> {}
    };
}

lock_error_common!(LockError {});
lock_error_common!(TryLockError { WouldBlock => "lock is held by another process" });
lock_error_common!(LockTimeoutError { Timeout => "timed out waiting for the lock" });

impl<G> From<LockError<G>> for TryLockError<G> {
    fn from(e: LockError<G>) -> Self {
        match e {
            LockError::OwnerDied(g) => TryLockError::OwnerDied(g),
            LockError::Fault(f) => TryLockError::Fault(f),
        }
    }
}

impl<G> From<LockError<G>> for LockTimeoutError<G> {
    fn from(e: LockError<G>) -> Self {
        match e {
            LockError::OwnerDied(g) => LockTimeoutError::OwnerDied(g),
            LockError::Fault(f) => LockTimeoutError::Fault(f),
        }
    }
}
