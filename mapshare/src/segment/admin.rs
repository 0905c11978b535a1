//! Looking at segments from outside, without attaching: [`inspect`],
//! [`list`], [`unlink`] and [`gc`].

use std::time::Duration;

use super::object::{flags_word, flock_timeout, open_file, read_header};
use super::registry::{any_slot_live, SLOT_LOCK_BASE};
use super::{Location, INIT_LOCK};
use crate::error::SegmentError;
use crate::layout::header::{
    self, Header, FLAG_PERSISTENT, FLAG_UNLINKED, HEADER_LEN, REGISTRY_OFFSET, REGISTRY_SLOTS,
    SLOT_LEN,
};
use crate::name::{Name, FILE_PREFIX, INIT_PREFIX};
use crate::primitive::Ordering;
use crate::region::Region;
use crate::sys::{self, Dir};

/// One process attached to a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// Registry slot.
    pub slot: u32,
    /// Its PID, as it recorded it (0 if it did not).
    pub pid: u32,
    /// When it attached, ms since the Unix epoch.
    pub since_unix_ms: u64,
}

/// What [`inspect`] reads from a segment, without attaching to it.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// Where it lives.
    pub location: Location,
    /// Object size in bytes (from `fstat`).
    pub size: u64,
    /// Owner uid.
    pub owner_uid: u32,
    /// Permission bits.
    pub mode: u32,
    /// The validated header, or why it is not valid.
    pub header: Result<Header, crate::error::HeaderError>,
    /// Live attached processes (empty for an invalid header).
    pub attached: Vec<Attached>,
}

/// Reads a segment's header and registry without attaching (read-only; the
/// same pure validator as `open`, so a corrupt segment gives an error value,
/// never a crash).
///
/// # Errors
/// [`SegmentError`] when the object cannot be opened at all.
pub fn inspect(at: &Location) -> Result<SegmentInfo, SegmentError> {
    let location = at.clone();
    let what = location.to_string();
    let (dir, file) = location.open_dir()?;
    let fd = sys::open_existing(&dir, &file, false).map_err(|e| SegmentError::io(&what, e))?;
    let info = sys::fstat(&fd).map_err(|e| SegmentError::io(&what, e))?;
    let mut out = SegmentInfo {
        location,
        size: info.size,
        owner_uid: info.uid,
        mode: info.mode,
        header: Err(crate::error::HeaderError::TooShort { len: info.size }),
        attached: Vec::new(),
    };
    if !info.regular {
        out.header = Err(crate::error::HeaderError::BadField {
            what: "file type: not a regular file",
        });
        return Ok(out);
    }
    if info.size < HEADER_LEN as u64 || info.size > header::MAX_SEGMENT_LEN {
        if info.size > header::MAX_SEGMENT_LEN {
            out.header = Err(crate::error::HeaderError::BadSize {
                what: "object too large",
            });
        }
        return Ok(out);
    }
    // Read (pread) only the header and registry; never map: inspection
    // never touches the payload, and an object a peer shrinks meanwhile
    // gives a short read, not a SIGBUS.
    let mut head = vec![0u8; HEADER_LEN];
    let n = sys::read_at(&fd, 0, &mut head).map_err(|e| SegmentError::io(&what, e))?;
    out.header = header::decode(&head[..n]).and_then(|h| {
        if n < HEADER_LEN {
            Err(crate::error::HeaderError::TooShort { len: n as u64 })
        } else if h.total_len == info.size {
            Ok(h)
        } else {
            Err(crate::error::HeaderError::BadSize {
                what: "header length differs from the object's size",
            })
        }
    });
    if out.header.is_ok() {
        for i in 0..REGISTRY_SLOTS as u32 {
            if matches!(
                sys::byte_range_locked(&fd, SLOT_LOCK_BASE + u64::from(i), 1),
                Ok(true)
            ) {
                // Slot layout: gen u32, pid u32, since_ms u64 (see `Slot`);
                // inside `head` since the registry ends at HEADER_LEN.
                let off = REGISTRY_OFFSET + i as usize * SLOT_LEN;
                let mut pid = [0u8; 4];
                pid.copy_from_slice(&head[off + 4..off + 8]);
                let mut since = [0u8; 8];
                since.copy_from_slice(&head[off + 8..off + 16]);
                out.attached.push(Attached {
                    slot: i,
                    pid: u32::from_ne_bytes(pid),
                    since_unix_ms: u64::from_ne_bytes(since),
                });
            }
        }
    }
    Ok(out)
}

/// Names of the RAM-backed segments in `/dev/shm` (valid names only).
///
/// # Errors
/// When the shared-memory directory cannot be read.
pub fn list() -> Result<Vec<Name>, SegmentError> {
    let names = sys::shm_dir()
        .and_then(|d| sys::list(&d))
        .map_err(|e| SegmentError::io(sys::SHM_DIR, e))?;
    let mut out: Vec<Name> = names
        .iter()
        .filter_map(|n| n.to_str())
        .filter_map(Name::from_file_name)
        .collect();
    out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(out)
}

/// Removes a segment's name (`shm_unlink`). Processes attached keep their
/// mapping; new opens fail with `NotFound`.
///
/// # Errors
/// [`SegmentError::NotFound`], [`SegmentError::PermissionDenied`], ...
pub fn unlink(at: &Location) -> Result<(), SegmentError> {
    let location = at.clone();
    let what = location.to_string();
    let (dir, file) = location.open_dir()?;
    // Under the attach lock, and only while the name still means the file
    // we opened: mark it unlinked (a racing attacher retries), then unlink.
    for _ in 0..4 {
        let Ok((fd, map, _)) = open_file(&dir, &file, &what, true, true) else {
            break;
        };
        let locked = flock_timeout(&fd, Duration::from_secs(1), &what).is_ok();
        if !matches!(sys::same_file(&dir, &file, &fd), Ok(true)) {
            continue; // replaced meanwhile: look at the new one
        }
        // The marker only under the lock (attachers rely on it: a marked
        // file still under its name while they hold the lock is the
        // leftover of a remover that died, and they finish the removal).
        if locked && read_header(&fd, map.len() as u64, &what).is_ok() {
            flags_word(Region::of(&map)).fetch_or(FLAG_UNLINKED, Ordering::AcqRel);
        }
        let r = sys::unlink(&dir, &file).map_err(|e| SegmentError::io(&what, e));
        if locked {
            let _ = sys::unflock(&fd);
        }
        return r;
    }
    // Not one of ours (or not openable): remove the name as it is.
    sys::unlink(&dir, &file).map_err(|e| SegmentError::io(what, e))
}

/// What [`gc`] did.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Segments removed: nobody alive held them.
    pub removed: Vec<String>,
    /// Leftovers of creators that died while initialising, removed.
    pub removed_partial: Vec<String>,
    /// Segments kept, with why.
    pub kept: Vec<(String, String)>,
}

/// Removes RAM-backed segments that no live process holds: non-persistent
/// ones always, persistent ones too when `all` is set. Also removes what
/// creators killed during initialisation left behind.
///
/// # Errors
/// When the shared-memory directory cannot be read.
pub fn gc(all: bool) -> Result<GcReport, SegmentError> {
    let mut report = GcReport::default();
    let dir = Dir::shm().map_err(|e| SegmentError::io(sys::SHM_DIR, e))?;
    let names = sys::shm_dir()
        .and_then(|d| sys::list(&d))
        .map_err(|e| SegmentError::io(sys::SHM_DIR, e))?;
    for raw in names {
        let Some(file) = raw.to_str() else { continue };
        if file.starts_with(INIT_PREFIX) {
            let Ok(fd) = sys::open_existing(&dir, file, true) else {
                continue;
            };
            if sys::fstat(&fd)
                .map(|i| i.uid == sys::euid())
                .unwrap_or(false)
                // Take the creator's lock ourselves (not just test it), and
                // keep it until the unlink: a creator that has just created
                // the file then fails to lock it and starts again.
                && matches!(sys::lock_byte(&fd, INIT_LOCK), Ok(true))
                && sys::unlink(&dir, file).is_ok()
            {
                report.removed_partial.push(file.to_owned());
            }
            continue;
        }
        let Some(name) = file
            .strip_prefix(FILE_PREFIX)
            .filter(|n| crate::name::is_valid(n))
        else {
            continue;
        };
        let (fd, map, info) = match open_file(&dir, file, name, false, true) {
            Ok(x) => x,
            Err(e) => {
                report.kept.push((name.to_owned(), e.to_string()));
                continue;
            }
        };
        // Only valid segments are collected (the flags come later, live).
        if let Err(e) = read_header(&fd, info.size, name) {
            report
                .kept
                .push((name.to_owned(), format!("not removed: {e}")));
            continue;
        }
        if flock_timeout(&fd, Duration::from_millis(200), name).is_err() {
            report.kept.push((name.to_owned(), "busy".into()));
            continue;
        }
        let live = any_slot_live(&fd).unwrap_or(true);
        // The flags as they are now, under the attach lock (a copy read
        // before it may predate a `set_persistent`), read with pread, not
        // through the mapping: the object may have shrunk meanwhile.
        let flags = match sys::fstat(&fd)
            .ok()
            .and_then(|i| read_header(&fd, i.size, name).ok())
        {
            Some(h) => h.flags,
            None => {
                report
                    .kept
                    .push((name.to_owned(), "changed while we looked".into()));
                let _ = sys::unflock(&fd);
                continue;
            }
        };
        if live {
            report.kept.push((name.to_owned(), "in use".into()));
        } else if flags & FLAG_PERSISTENT != 0 && flags & FLAG_UNLINKED == 0 && !all {
            report
                .kept
                .push((name.to_owned(), "persistent (gc --all removes it)".into()));
        } else if matches!(sys::same_file(&dir, file, &fd), Ok(true)) {
            flags_word(Region::of(&map)).fetch_or(FLAG_UNLINKED, Ordering::AcqRel);
            match sys::unlink(&dir, file) {
                Ok(()) => report.removed.push(name.to_owned()),
                Err(e) => report
                    .kept
                    .push((name.to_owned(), format!("unlink failed: {e}"))),
            }
        } else {
            report.kept.push((
                name.to_owned(),
                "replaced by a new segment meanwhile".into(),
            ));
        }
        let _ = sys::unflock(&fd);
    }
    Ok(report)
}
