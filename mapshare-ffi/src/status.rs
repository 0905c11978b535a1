//! Status codes, the thread-local last error, and the guard every entry
//! point runs in (no panic ever crosses the boundary).

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mapshare::{
    Fault, LockTimeoutError, RecvTimeoutError, SegmentError, SendTimeoutError, TryLockError,
    TryRecvError, TrySendError,
};

/// What a call did. Every function of the C API returns one (or, for the
/// few that cannot fail, documents why not). `MAPSHARE_OK` is 0; every
/// other code comes with a message from
/// `mapshare_last_error_message` on the calling thread.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)] // C naming: `mapshare_status`
pub enum mapshare_status {
    /// Success.
    MAPSHARE_OK = 0,
    /// A wait with a finite `timeout_ns` ran out.
    MAPSHARE_TIMEOUT = 1,
    /// A try (`timeout_ns == 0`) lock: another live process holds it.
    MAPSHARE_WOULD_BLOCK = 2,
    /// A try receive or wait found nothing (no message, event not set).
    MAPSHARE_EMPTY = 3,
    /// A try send found no room.
    MAPSHARE_FULL = 4,
    /// The other side has gone (every sender, the receiver, the publisher).
    /// A new one may attach: calling again is allowed.
    MAPSHARE_DISCONNECTED = 5,
    /// The previous lock owner died holding the lock. The lock IS held by
    /// the caller on return: repair the data, then unlock.
    MAPSHARE_OWNER_DIED = 6,
    /// An overwrite-oldest ring lapped this subscriber: messages were
    /// missed (how many: the `missed` out parameter); the next receive
    /// returns the oldest message still in the ring.
    MAPSHARE_LAGGED = 7,
    /// The caller's buffer is smaller than the message. The needed length
    /// is written to the length out parameter, and nothing is lost: the
    /// next receive returns the same message.
    MAPSHARE_TOO_SMALL = 8,
    /// The message is larger than the segment's largest message; nothing
    /// was sent.
    MAPSHARE_TOO_LARGE = 9,
    /// No segment of that name exists.
    MAPSHARE_NOT_FOUND = 10,
    /// A segment of that name already exists (create).
    MAPSHARE_ALREADY_EXISTS = 11,
    /// The segment holds a value of another layout (type name, size,
    /// alignment) than the one asked for.
    MAPSHARE_LAYOUT_MISMATCH = 12,
    /// The segment holds another kind of object (a mailbox opened as a
    /// mutex, say).
    MAPSHARE_KIND_MISMATCH = 13,
    /// The segment belongs to another user (set `allow_foreign_owner` to
    /// accept it).
    MAPSHARE_FOREIGN_OWNER = 14,
    /// The name breaks the naming rule: 1 to 200 of `A-Z a-z 0-9 . _ -`,
    /// not starting with `.`, as UTF-8.
    MAPSHARE_INVALID_NAME = 15,
    /// A NULL pointer where one is required, an option that does not apply
    /// to the kind, an unknown policy, a lock not held, ...
    MAPSHARE_INVALID_ARGUMENT = 16,
    /// The OS refused access (mode bits).
    MAPSHARE_PERMISSION_DENIED = 17,
    /// Not enough shared memory to reserve the segment.
    MAPSHARE_NO_SPACE = 18,
    /// The requested size is invalid (zero, or too large).
    MAPSHARE_INVALID_SIZE = 19,
    /// The bytes at the start of the object are not a valid mapshare header
    /// (not ours, another format version, a creator that died half-way).
    MAPSHARE_BAD_HEADER = 20,
    /// The role is taken: the registry is full, a live receiver or
    /// publisher is attached, every sender lane is held.
    MAPSHARE_TOO_MANY_ATTACHED = 21,
    /// Another process held the segment's attach lock for longer than the
    /// attach timeout.
    MAPSHARE_BUSY = 22,
    /// Something a peer did (or a damaged segment) that the call detected
    /// and survived: the segment was shrunk, a corrupt message was skipped.
    MAPSHARE_FAULT = 23,
    /// Any other OS error (the message has it).
    MAPSHARE_IO = 24,
    /// A panic inside the library was caught at the boundary (a bug: the
    /// message says where). The handle may be left in any state but a
    /// memory-unsafe one; closing it is allowed.
    MAPSHARE_PANIC = 25,
}

pub(crate) use mapshare_status as S;

/// A failed call: its status and the message for the last-error slot.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) status: S,
    pub(crate) msg: Cow<'static, str>,
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn new(status: S, msg: impl Into<Cow<'static, str>>) -> Error {
        Error {
            status,
            msg: msg.into(),
        }
    }

    pub(crate) fn invalid(msg: impl Into<Cow<'static, str>>) -> Error {
        Error::new(S::MAPSHARE_INVALID_ARGUMENT, msg)
    }

    pub(crate) fn null(what: &'static str) -> Error {
        Error::invalid(format!("{what} is NULL"))
    }
}

impl From<SegmentError> for Error {
    fn from(e: SegmentError) -> Error {
        let status = match &e {
            SegmentError::InvalidName(_) => S::MAPSHARE_INVALID_NAME,
            SegmentError::AlreadyExists(_) => S::MAPSHARE_ALREADY_EXISTS,
            SegmentError::NotFound(_) => S::MAPSHARE_NOT_FOUND,
            SegmentError::PermissionDenied(_) => S::MAPSHARE_PERMISSION_DENIED,
            SegmentError::ForeignOwner { .. } => S::MAPSHARE_FOREIGN_OWNER,
            SegmentError::NoSpace { .. } => S::MAPSHARE_NO_SPACE,
            SegmentError::Header { .. } => S::MAPSHARE_BAD_HEADER,
            SegmentError::KindMismatch { .. } => S::MAPSHARE_KIND_MISMATCH,
            SegmentError::LayoutMismatch { .. } => S::MAPSHARE_LAYOUT_MISMATCH,
            SegmentError::TooManyAttached(_) => S::MAPSHARE_TOO_MANY_ATTACHED,
            SegmentError::Busy(_) => S::MAPSHARE_BUSY,
            SegmentError::InvalidSize(_) => S::MAPSHARE_INVALID_SIZE,
            _ => S::MAPSHARE_IO, // `Io` and any variant added later
        };
        Error::new(status, e.to_string())
    }
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Error {
        Error::new(S::MAPSHARE_FAULT, f.to_string())
    }
}

impl From<TryRecvError> for Error {
    fn from(e: TryRecvError) -> Error {
        let status = match e {
            TryRecvError::Empty => S::MAPSHARE_EMPTY,
            TryRecvError::Disconnected => S::MAPSHARE_DISCONNECTED,
            TryRecvError::Lagged(_) => S::MAPSHARE_LAGGED,
            _ => S::MAPSHARE_FAULT,
        };
        Error::new(status, e.to_string())
    }
}

impl From<RecvTimeoutError> for Error {
    fn from(e: RecvTimeoutError) -> Error {
        let status = match e {
            RecvTimeoutError::Timeout => S::MAPSHARE_TIMEOUT,
            RecvTimeoutError::Disconnected => S::MAPSHARE_DISCONNECTED,
            RecvTimeoutError::Lagged(_) => S::MAPSHARE_LAGGED,
            _ => S::MAPSHARE_FAULT,
        };
        Error::new(status, e.to_string())
    }
}

impl From<mapshare::RecvError> for Error {
    fn from(e: mapshare::RecvError) -> Error {
        RecvTimeoutError::from(e).into()
    }
}

impl<T> From<TrySendError<T>> for Error {
    fn from(e: TrySendError<T>) -> Error {
        let status = match &e {
            TrySendError::Full(_) => S::MAPSHARE_FULL,
            TrySendError::Disconnected(_) => S::MAPSHARE_DISCONNECTED,
            TrySendError::TooLarge(_) => S::MAPSHARE_TOO_LARGE,
            _ => S::MAPSHARE_FAULT,
        };
        Error::new(status, e.to_string())
    }
}

impl<T> From<SendTimeoutError<T>> for Error {
    fn from(e: SendTimeoutError<T>) -> Error {
        let status = match &e {
            SendTimeoutError::Timeout(_) => S::MAPSHARE_TIMEOUT,
            SendTimeoutError::Disconnected(_) => S::MAPSHARE_DISCONNECTED,
            SendTimeoutError::TooLarge(_) => S::MAPSHARE_TOO_LARGE,
            _ => S::MAPSHARE_FAULT,
        };
        Error::new(status, e.to_string())
    }
}

impl<T> From<mapshare::SendError<T>> for Error {
    fn from(e: mapshare::SendError<T>) -> Error {
        SendTimeoutError::from(e).into()
    }
}

/// The status of a lock error that did not hand over a guard.
pub(crate) fn lock_status<G>(e: &LockTimeoutError<G>) -> Error {
    match e {
        LockTimeoutError::Timeout => Error::new(S::MAPSHARE_TIMEOUT, e.to_string()),
        _ => Error::new(S::MAPSHARE_FAULT, e.to_string()),
    }
}

/// As [`lock_status`], for a try.
pub(crate) fn try_lock_status<G>(e: &TryLockError<G>) -> Error {
    match e {
        TryLockError::WouldBlock => Error::new(S::MAPSHARE_WOULD_BLOCK, e.to_string()),
        _ => Error::new(S::MAPSHARE_FAULT, e.to_string()),
    }
}

thread_local! {
    /// The last error's message on this thread, NUL-terminated; reused, so
    /// recording a message allocates only when it outgrows the buffer.
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Records `msg` as this thread's last error (an interior NUL ends it).
pub(crate) fn set_last_error(msg: &str) {
    let bytes = msg.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    // A thread being torn down has no slot left: the message is dropped.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut v) = slot.try_borrow_mut() {
            v.clear();
            v.extend_from_slice(&bytes[..end]);
            v.push(0);
        }
    });
}

/// Runs an entry point's body: `Ok` is `MAPSHARE_OK`; an error's status
/// is returned and its message recorded; a panic is caught and returned
/// as `MAPSHARE_PANIC` with its message.
pub(crate) fn guard(f: impl FnOnce() -> Result<()>) -> mapshare_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => S::MAPSHARE_OK,
        Ok(Err(e)) => {
            set_last_error(&e.msg);
            e.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            set_last_error(&format!("panic in mapshare: {what}"));
            // The payload's own drop could panic in turn: forget it.
            std::mem::forget(payload);
            S::MAPSHARE_PANIC
        }
    }
}

/// As [`guard`], for the functions that return a value instead of a
/// status: a panic gives `fallback`.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        set_last_error("panic in mapshare");
        std::mem::forget(payload);
        fallback
    })
}

/// The calling thread's last error message: NUL-terminated UTF-8, the
/// library's own text (`"mb-1: no such segment"`), or `""` if no call on
/// this thread has failed yet. Valid until the next mapshare call on this
/// thread; never NULL; owned by the library (do not free it).
#[no_mangle]
pub extern "C" fn mapshare_last_error_message() -> *const c_char {
    static EMPTY: &[u8; 1] = b"\0";
    guard_value(EMPTY.as_ptr().cast(), || {
        LAST_ERROR
            .try_with(|slot| match slot.try_borrow() {
                Ok(v) if !v.is_empty() => v.as_ptr().cast(),
                _ => EMPTY.as_ptr().cast(),
            })
            .unwrap_or(EMPTY.as_ptr().cast())
    })
}

/// Copies the calling thread's last error message into `buf` (`len`
/// bytes), cut if need be and always NUL-terminated when `len > 0`.
/// Returns the message's full length without its NUL: a return value `>=
/// len` means it was cut. `buf` may be NULL when `len` is 0 (to ask for
/// the length).
///
/// # Safety
/// - `buf` is NULL with `len == 0`, or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn mapshare_last_error(buf: *mut c_char, len: usize) -> usize {
    guard_value(0, || {
        LAST_ERROR
            .try_with(|slot| {
                let v = slot.try_borrow().map(|v| v.clone()).unwrap_or_default();
                let msg = v.strip_suffix(&[0]).unwrap_or(&v);
                if len > 0 && !buf.is_null() {
                    let n = msg.len().min(len - 1);
                    // SAFETY: the caller gives `len` writable bytes at `buf`
                    // (checked non-NULL); we write `n + 1 <= len` of them.
                    let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
                    out[..n].copy_from_slice(&msg[..n]);
                    out[n] = 0;
                }
                msg.len()
            })
            .unwrap_or(0)
    })
}

/// A static, NUL-terminated name for a status (`"MAPSHARE_TIMEOUT"`);
/// `"MAPSHARE_UNKNOWN"` for a value that is not a status. Never NULL;
/// never free it.
#[no_mangle]
pub extern "C" fn mapshare_status_name(status: i32) -> *const c_char {
    let s: &'static [u8] = match status {
        0 => b"MAPSHARE_OK\0",
        1 => b"MAPSHARE_TIMEOUT\0",
        2 => b"MAPSHARE_WOULD_BLOCK\0",
        3 => b"MAPSHARE_EMPTY\0",
        4 => b"MAPSHARE_FULL\0",
        5 => b"MAPSHARE_DISCONNECTED\0",
        6 => b"MAPSHARE_OWNER_DIED\0",
        7 => b"MAPSHARE_LAGGED\0",
        8 => b"MAPSHARE_TOO_SMALL\0",
        9 => b"MAPSHARE_TOO_LARGE\0",
        10 => b"MAPSHARE_NOT_FOUND\0",
        11 => b"MAPSHARE_ALREADY_EXISTS\0",
        12 => b"MAPSHARE_LAYOUT_MISMATCH\0",
        13 => b"MAPSHARE_KIND_MISMATCH\0",
        14 => b"MAPSHARE_FOREIGN_OWNER\0",
        15 => b"MAPSHARE_INVALID_NAME\0",
        16 => b"MAPSHARE_INVALID_ARGUMENT\0",
        17 => b"MAPSHARE_PERMISSION_DENIED\0",
        18 => b"MAPSHARE_NO_SPACE\0",
        19 => b"MAPSHARE_INVALID_SIZE\0",
        20 => b"MAPSHARE_BAD_HEADER\0",
        21 => b"MAPSHARE_TOO_MANY_ATTACHED\0",
        22 => b"MAPSHARE_BUSY\0",
        23 => b"MAPSHARE_FAULT\0",
        24 => b"MAPSHARE_IO\0",
        25 => b"MAPSHARE_PANIC\0",
        _ => b"MAPSHARE_UNKNOWN\0",
    };
    s.as_ptr().cast()
}

/// Panics on purpose inside the guard, to prove that a panic comes back as
/// `MAPSHARE_PANIC` with its message (feature `test-hooks`, this crate's
/// tests only; not in the header).
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub extern "C" fn mapshare_test_panic() -> mapshare_status {
    guard(|| panic!("mapshare_test_panic was called"))
}
