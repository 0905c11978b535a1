//! The object under a segment's name, reached before (or without)
//! attaching: opened and checked (regular file, owner, size), its header
//! read with `pread`, its attach lock (`flock`), and the atomic words of
//! the header's first line. Shared by attaching and by the admin functions.

use std::time::{Duration, Instant};

use crate::error::SegmentError;
use crate::layout::header::{self, Header, HEADER_LEN};
use crate::primitive::AtomicU32;
use crate::region::Region;
use crate::sys::{self, Dir, Mapping, OwnedFd};

/// Takes `flock` on `fd`, retrying until `timeout`.
pub(super) fn flock_timeout(
    fd: &OwnedFd,
    timeout: Duration,
    what: &str,
) -> Result<(), SegmentError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(50);
    loop {
        match sys::try_flock(fd) {
            Ok(true) => return Ok(()),
            Ok(false) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            Ok(false) => return Err(SegmentError::Busy(what.to_owned())),
            Err(e) => return Err(SegmentError::io(format!("{what}: flock"), e)),
        }
    }
}

/// Reads the header with `pread` and validates it. Not through the
/// mapping: an object a peer shrank after our `fstat` (garbage rewritten
/// in place, say) then gives `TooShort` here instead of a `SIGBUS`, which
/// matters most to `gc`, which looks at every object in the directory.
pub(super) fn read_header(
    fd: &OwnedFd,
    file_size: u64,
    what: &str,
) -> Result<Header, SegmentError> {
    let mut fixed = [0u8; header::FIXED_LEN];
    let n = sys::read_at(fd, 0, &mut fixed).map_err(|e| SegmentError::io(what, e))?;
    if n < fixed.len() {
        return Err(SegmentError::Header {
            name: what.to_owned(),
            error: crate::error::HeaderError::TooShort { len: n as u64 },
        });
    }
    let h = header::decode(&fixed).map_err(|error| SegmentError::Header {
        name: what.to_owned(),
        error,
    })?;
    if h.total_len != file_size {
        return Err(SegmentError::Header {
            name: what.to_owned(),
            error: crate::error::HeaderError::BadSize {
                what: "header length differs from the object's size",
            },
        });
    }
    Ok(h)
}

/// Something under a segment's name that is not a regular file (a FIFO, a
/// directory, a device): never mapped, never read.
fn not_regular(what: &str) -> SegmentError {
    SegmentError::Header {
        name: what.to_owned(),
        error: crate::error::HeaderError::BadField {
            what: "file type: not a regular file",
        },
    }
}

/// Opens an existing object's file and checks ownership and size; maps it.
pub(super) fn open_file(
    dir: &Dir,
    file: &str,
    what: &str,
    allow_foreign_owner: bool,
    writable: bool,
) -> Result<(OwnedFd, Mapping, sys::FileInfo), SegmentError> {
    let fd = sys::open_existing(dir, file, writable).map_err(|e| match e.raw_os_error() {
        Some(40) => {
            SegmentError::PermissionDenied(format!("{what} (a symbolic link; not followed)"))
        }
        _ => SegmentError::io(what, e),
    })?;
    let info = sys::fstat(&fd).map_err(|e| SegmentError::io(what, e))?;
    if !info.regular {
        return Err(not_regular(what));
    }
    let our_uid = sys::euid();
    if info.uid != our_uid && !allow_foreign_owner {
        return Err(SegmentError::ForeignOwner {
            name: what.to_owned(),
            owner_uid: info.uid,
            our_uid,
        });
    }
    if info.size < HEADER_LEN as u64 {
        return Err(SegmentError::Header {
            name: what.to_owned(),
            error: crate::error::HeaderError::TooShort { len: info.size },
        });
    }
    if info.size > header::MAX_SEGMENT_LEN {
        return Err(SegmentError::Header {
            name: what.to_owned(),
            error: crate::error::HeaderError::BadSize {
                what: "object too large",
            },
        });
    }
    let len = usize::try_from(info.size).map_err(|_| SegmentError::InvalidSize(what.to_owned()))?;
    let map =
        sys::map(&fd, len, writable).map_err(|e| SegmentError::io(format!("{what}: mmap"), e))?;
    Ok((fd, map, info))
}

pub(super) fn state_word(region: Region<'_>) -> &AtomicU32 {
    region
        .get::<HeaderWords>(0)
        .map(|h| &h.state)
        .expect("header is inside every mapping") // checked size >= HEADER_LEN
}

pub(super) fn flags_word(region: Region<'_>) -> &AtomicU32 {
    region
        .get::<HeaderWords>(0)
        .map(|h| &h.flags)
        .expect("header is inside every mapping") // checked size >= HEADER_LEN
}

/// The atomic words of the header's first line (the rest is plain bytes,
/// read through `header::decode`).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct HeaderWords {
    _magic: [AtomicU32; 2],
    _version: AtomicU32,
    _kind: AtomicU32,
    state: AtomicU32,
    flags: AtomicU32,
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::offset_of!(HeaderWords, state) == header::OFF_STATE);
#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::offset_of!(HeaderWords, flags) == header::OFF_FLAGS);
crate::pod::shm_state!(HeaderWords, "AtomicU32s only; repr(C)");
