//! Windows backend, on `windows-sys` and std's Windows file API.
//!
//! Segments are files, as on Linux: RAM-backed ones (by name) in a
//! per-user directory, `%LOCALAPPDATA%\mapshare` (the temp directory's
//! `mapshare` folder when `LOCALAPPDATA` is unset), created with
//! `FILE_ATTRIBUTE_TEMPORARY` so the cache manager keeps them in memory;
//! file-backed ones anywhere. Each contract item has its Win32 equivalent:
//!
//! | contract item | Win32 |
//! |---|---|
//! | `create_exclusive` / `open_existing` | `CreateFileW` (`CREATE_NEW` / `OPEN_EXISTING`, every share mode, `FILE_FLAG_OPEN_REPARSE_POINT`: a link is opened as itself and refused, never followed) |
//! | `rename_noreplace` | `MoveFileExW` without `MOVEFILE_REPLACE_EXISTING` (the published-last rule) |
//! | `unlink` | `MoveFileExW` to a hidden tombstone name (the name is free at once), then `FileDispositionInfoEx` (POSIX semantics, else the classic delete); a file still mapped somewhere is deleted by its last unmapper |
//! | `same_file` / `fstat` | `GetFileInformationByHandle` (volume serial number and file index; size; attributes) |
//! | `map` | `CreateFileMappingW` over the file handle + `MapViewOfFile` |
//! | `lock_byte` / `byte_range_locked` / `try_flock` | `LockFileEx` byte ranges past the end of the file, released by the system when the process dies, however it dies |
//! | `futex_wait` / `futex_wake` | a named semaphore and a named waiter count per waited word (see below); `WaitOnAddress` for words outside any segment |
//!
//! # Waiting across processes
//! `WaitOnAddress` wakes only threads of the calling process, so a word in
//! a segment is waited on through kernel objects named after the word's
//! identity: the segment file's volume serial number and file index, and
//! the word's offset in the file (`Local\mapshare.fx.V.I.O` a semaphore,
//! `Local\mapshare.fc.V.I.O` a 4-byte section holding the number of
//! sleepers). Every process that maps the same file reaches the same
//! objects, wherever its view lies. A waiter counts itself in, fences,
//! checks the word, and only then sleeps on the semaphore; a waker (after
//! its own store and a fence) takes up to `n` sleepers out of the count
//! and releases the semaphore that many times. So a wake-up is never lost
//! (Dekker: one of the two sees the other's write), and a waker that finds
//! no sleeper makes no system call. A waiter that times out takes itself
//! out of the count, or, if a waker already did, consumes the release
//! meant for it when it is there; a release it misses makes one later
//! sleeper return early, which the contract allows (callers re-check).
//! The objects are opened on first use per mapping and closed when the
//! mapping is unmapped (no waiter can be using them then: every view of
//! the mapping borrows it).
//!
//! # Owner-only access
//! A segment file is created owned by our user with a protected DACL that
//! grants only our user (plus authenticated users' read or write where the
//! mode asks for group or other bits); RAM-backed segments also sit in a
//! per-user directory. `fstat` reports a file our user owns as `euid` (our
//! SID's RID) and any other owner as another number, so an object someone
//! else created under our name is refused (`ForeignOwner`) as on Linux.
//! The named wait objects are created owner-only too, and one that another
//! user created first is refused (the waits then poll).
//!
//! # Differences from Linux
//! - No numeric user ids: `euid` is our SID's RID, and owners are compared
//!   as whole SIDs. Mode bits map onto the DACL only as "owner only" or
//!   "also readable / writable by authenticated users"; `fstat` reports
//!   `0o600` (or `0o400` read-only) whatever the DACL says.
//! - Names are case-insensitive on NTFS: `Jobs` and `jobs` are one segment.
//! - No `fork()`: `fork_epoch` is always 0 and `guard_fork` records nothing.
//! - A file with a mapped view cannot be shrunk (`SetEndOfFile` fails), so
//!   a peer cannot make our view fault the way `ftruncate` can on Linux.
//! - No `futex_waitv`: a `WaitSet` polls in short slices.

// Reason: this module is the designated home of the OS calls that clippy.toml bans elsewhere.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::Duration;

use windows_sys::Win32::Foundation as wf;
use windows_sys::Win32::Storage::FileSystem as wfs;
use windows_sys::Win32::System::Memory as wm;
use windows_sys::Win32::System::Threading as wt;
use windows_sys::Win32::System::IO::OVERLAPPED;

/// An open segment file. std's `File` owns the handle (closed on drop) and
/// gives `seek_read` and `set_len`; the rest takes its raw handle.
pub(crate) type OwnedFd = File;

/// How the shared-memory directory is named in messages.
pub(crate) const SHM_DIR: &str = r"%LOCALAPPDATA%\mapshare";

/// Every share mode: other handles may read, write, rename and delete the
/// file while we hold it open (rename and delete need it of every handle).
const SHARE_ALL: u32 = wfs::FILE_SHARE_READ | wfs::FILE_SHARE_WRITE | wfs::FILE_SHARE_DELETE;

/// A directory: every name is joined to its canonical (`\\?\`) path, so
/// names keep trailing dots and long paths need no `MAX_PATH`.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    path: Arc<PathBuf>,
    /// The shared-memory directory: files created in it are temporary.
    temporary: bool,
}

impl Dir {
    /// The directory at `path`, made canonical.
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let path = std::fs::canonicalize(path)?;
        if !std::fs::metadata(&path)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a directory",
            ));
        }
        Ok(Dir {
            path: Arc::new(path),
            temporary: false,
        })
    }

    /// The shared-memory directory (see [`shm_dir`]), created if missing.
    /// The first call in each process deletes the tombstones that nobody
    /// maps any more (see [`unlink`]).
    pub(crate) fn shm() -> io::Result<Dir> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        let mut d = Dir::open(&shm_dir()?)?;
        d.temporary = true;
        SWEPT.call_once(|| sweep_tombstones(&d.path));
        Ok(d)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// `%LOCALAPPDATA%\mapshare` (or the temp directory's `mapshare` folder),
/// created if missing.
pub(crate) fn shm_dir() -> io::Result<PathBuf> {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let dir = BASE.get_or_init(|| {
        std::env::var_os("LOCALAPPDATA")
            .filter(|v| !v.is_empty())
            .map_or_else(std::env::temp_dir, PathBuf::from)
            .join("mapshare")
    });
    std::fs::create_dir_all(dir)?;
    Ok(dir.clone())
}

/// What `GetFileInformationByHandle` tells us about a segment file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileInfo {
    pub(crate) size: u64,
    /// The owner: [`euid`] when it is our user, otherwise another value
    /// (the owner SID's RID; see [`fstat`]).
    pub(crate) uid: u32,
    /// `0o600`, or `0o400` for a read-only file: the ACL, not these bits,
    /// decides who may open it.
    pub(crate) mode: u32,
    /// A plain file (not a directory, nor a symbolic link or junction).
    pub(crate) regular: bool,
}

/// A file's identity: volume serial number and file index.
type FileId = (u32, u64);

fn file_info(fd: &File) -> io::Result<wfs::BY_HANDLE_FILE_INFORMATION> {
    // SAFETY: an all-zero BY_HANDLE_FILE_INFORMATION is a valid value
    // (plain integers and FILETIMEs).
    let mut info: wfs::BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` owns an open file handle, and `info` is a writable
    // structure of the type the call fills.
    let ok = unsafe { wfs::GetFileInformationByHandle(fd.as_raw_handle(), &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

fn file_id(info: &wfs::BY_HANDLE_FILE_INFORMATION) -> FileId {
    (
        info.dwVolumeSerialNumber,
        (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
    )
}

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

/// A link (symbolic link, junction) under a segment's name: refused, as
/// `O_NOFOLLOW` refuses one on Linux.
fn refuse_link(fd: File) -> io::Result<File> {
    let info = file_info(&fd)?;
    if info.dwFileAttributes & wfs::FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a symbolic link or junction; not followed",
        ));
    }
    Ok(fd)
}

/// `CreateFileW(dir\name, GENERIC_READ | GENERIC_WRITE, share all,
/// {owner-only security descriptor}, CREATE_NEW)`: the file is owned by our
/// user, and its DACL (protected: nothing inherited) grants only our user,
/// plus read (`mode & 0o044`) and write (`mode & 0o022`) to authenticated
/// users when `mode` asks for group or other access.
///
/// # References
///  - [CreateFileW](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-createfilew)
#[doc(alias = "CreateFileW")]
pub(crate) fn create_exclusive(dir: &Dir, name: &str, mode: u32) -> io::Result<OwnedFd> {
    let attributes = if dir.temporary {
        wfs::FILE_ATTRIBUTE_TEMPORARY
    } else {
        wfs::FILE_ATTRIBUTE_NORMAL
    };
    let sid = sid_string(user_sid()?);
    let mut sddl = format!("O:{sid}D:P(A;;FA;;;{sid})");
    if mode & 0o044 != 0 {
        sddl.push_str("(A;;FR;;;AU)");
    }
    if mode & 0o022 != 0 {
        sddl.push_str("(A;;FW;;;AU)");
    }
    let sd = SecurityDescriptor::from_sddl(&sddl)?;
    let sa = sd.attributes();
    let path = wide(dir.join(name).as_os_str());
    // SAFETY: `path` is a NUL-terminated UTF-16 string and `sa` a live
    // SECURITY_ATTRIBUTES whose descriptor (`sd`) outlives the call; no
    // template file.
    let h = unsafe {
        wfs::CreateFileW(
            path.as_ptr(),
            wf::GENERIC_READ | wf::GENERIC_WRITE,
            SHARE_ALL,
            &sa,
            wfs::CREATE_NEW,
            attributes | wfs::FILE_FLAG_OPEN_REPARSE_POINT,
            std::ptr::null_mut(),
        )
    };
    if h == wf::INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a fresh file handle that nothing else owns; the `File`
    // takes it over and closes it once.
    Ok(unsafe { <File as std::os::windows::io::FromRawHandle>::from_raw_handle(h) })
}

/// The SID of the user this process runs as (the token's user), as bytes;
/// looked up once.
fn user_sid() -> io::Result<&'static [u8]> {
    static SID: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(sid) = SID.get() {
        return Ok(sid);
    }
    let sid = token_user_sid()?;
    Ok(SID.get_or_init(|| sid))
}

fn token_user_sid() -> io::Result<Vec<u8>> {
    use windows_sys::Win32::Security as ws;
    let mut token: wf::HANDLE = std::ptr::null_mut();
    // SAFETY: no arguments; returns a pseudo-handle that needs no close.
    let process = unsafe { wt::GetCurrentProcess() };
    // SAFETY: `process` is our pseudo-handle; `token` receives a new
    // handle, owned below.
    let ok = unsafe { wt::OpenProcessToken(process, ws::TOKEN_QUERY, &mut token) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = Handle(token);
    let mut len = 0u32;
    // SAFETY: a size query: no buffer, `len` receives the size needed.
    let _ = unsafe {
        ws::GetTokenInformation(token.0, ws::TokenUser, std::ptr::null_mut(), 0, &mut len)
    };
    // u64s: aligned for TOKEN_USER (a pointer and a u32).
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    let size = u32::try_from(buf.len() * 8).unwrap_or(u32::MAX);
    // SAFETY: `buf` is a writable, aligned buffer of `size` bytes.
    let ok = unsafe {
        ws::GetTokenInformation(
            token.0,
            ws::TokenUser,
            buf.as_mut_ptr().cast(),
            size,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call filled a TOKEN_USER at the start of `buf`.
    let sid = unsafe { (*buf.as_ptr().cast::<ws::TOKEN_USER>()).User.Sid };
    Ok(sid_bytes(sid))
}

/// The bytes of the SID at `sid` (a SID the system returned).
fn sid_bytes(sid: windows_sys::Win32::Security::PSID) -> Vec<u8> {
    // SAFETY: `sid` points at a valid SID, which the system returned.
    let len = unsafe { windows_sys::Win32::Security::GetLengthSid(sid) } as usize;
    // SAFETY: a valid SID is `GetLengthSid` bytes long, and lives as long
    // as the structure that returned it, which outlives this copy.
    unsafe { std::slice::from_raw_parts(sid.cast::<u8>(), len) }.to_vec()
}

/// A SID in its string form (`S-1-5-21-...`), from its bytes: revision,
/// sub-authority count, 6-byte big-endian authority, then little-endian
/// 32-bit sub-authorities.
fn sid_string(sid: &[u8]) -> String {
    let count = sid.get(1).copied().unwrap_or(0) as usize;
    let authority = sid
        .get(2..8)
        .map_or(0, |a| a.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)));
    let mut out = format!("S-{}-{authority}", sid.first().copied().unwrap_or(1));
    for i in 0..count {
        if let Some(b) = sid.get(8 + 4 * i..12 + 4 * i) {
            out.push_str(&format!(
                "-{}",
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            ));
        }
    }
    out
}

/// The last sub-authority of a SID: the relative id (RID) that tells the
/// users of one machine or domain apart (1000 and up, like a uid).
fn rid(sid: &[u8]) -> u32 {
    let count = sid.get(1).copied().unwrap_or(0) as usize;
    match count
        .checked_sub(1)
        .and_then(|i| sid.get(8 + 4 * i..12 + 4 * i))
    {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

/// The owner SID of the object behind `h` (`GetSecurityInfo`).
fn owner_sid(
    h: wf::HANDLE,
    ty: windows_sys::Win32::Security::Authorization::SE_OBJECT_TYPE,
) -> io::Result<Vec<u8>> {
    use windows_sys::Win32::Security as ws;
    let mut owner: ws::PSID = std::ptr::null_mut();
    let mut sd: ws::PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `h` is a live handle; the out-pointers are valid, and the
    // ones we do not want are null, as the call allows.
    let rc = unsafe {
        ws::Authorization::GetSecurityInfo(
            h,
            ty,
            ws::OWNER_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc as i32));
    }
    let sd = SecurityDescriptor(sd);
    let out = if owner.is_null() {
        Vec::new()
    } else {
        sid_bytes(owner)
    };
    drop(sd);
    Ok(out)
}

/// A security descriptor the system allocated (`LocalAlloc`), freed on drop.
struct SecurityDescriptor(windows_sys::Win32::Security::PSECURITY_DESCRIPTOR);

impl SecurityDescriptor {
    /// `ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl)`.
    fn from_sddl(sddl: &str) -> io::Result<SecurityDescriptor> {
        use windows_sys::Win32::Security::Authorization as wa;
        let w = wide(OsStr::new(sddl));
        let mut sd = std::ptr::null_mut();
        // SAFETY: `w` is NUL-terminated; `sd` receives a LocalAlloc'd
        // descriptor, owned below; the size is not asked for.
        let ok = unsafe {
            wa::ConvertStringSecurityDescriptorToSecurityDescriptorW(
                w.as_ptr(),
                wa::SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SecurityDescriptor(sd))
    }

    /// Non-inheritable security attributes with this descriptor (valid as
    /// long as `self`).
    fn attributes(&self) -> windows_sys::Win32::Security::SECURITY_ATTRIBUTES {
        windows_sys::Win32::Security::SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<windows_sys::Win32::Security::SECURITY_ATTRIBUTES>()
                as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by the system with LocalAlloc, freed once.
            let _ = unsafe { wf::LocalFree(self.0) };
        }
    }
}

/// The security attributes of our named kernel objects (wait objects):
/// owned by our user, who alone has access.
fn kernel_object_sd() -> io::Result<SecurityDescriptor> {
    let sid = sid_string(user_sid()?);
    SecurityDescriptor::from_sddl(&format!("O:{sid}D:P(A;;GA;;;{sid})"))
}

/// Whether the `Create*` call just made (successfully) opened an object
/// that existed (its last error is `ERROR_ALREADY_EXISTS`).
fn existed() -> bool {
    io::Error::last_os_error().raw_os_error() == Some(wf::ERROR_ALREADY_EXISTS as i32)
}

/// A named object we created, or one that existed: refused unless our
/// user owns it (another user may create the name first, to meddle with
/// our wake-ups).
fn check_ours(h: &Handle, existed: bool) -> io::Result<()> {
    if existed
        && owner_sid(
            h.0,
            windows_sys::Win32::Security::Authorization::SE_KERNEL_OBJECT,
        )? != user_sid()?
    {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    Ok(())
}

/// `CreateFileW(dir\name, GENERIC_READ [| GENERIC_WRITE], share all,
/// OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT)`; a link is refused.
///
/// # References
///  - [CreateFileW](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-createfilew)
#[doc(alias = "CreateFileW")]
pub(crate) fn open_existing(dir: &Dir, name: &str, writable: bool) -> io::Result<OwnedFd> {
    let fd = OpenOptions::new()
        .read(true)
        .write(writable)
        .share_mode(SHARE_ALL)
        .custom_flags(wfs::FILE_FLAG_OPEN_REPARSE_POINT)
        .open(dir.join(name))?;
    refuse_link(fd)
}

/// `MoveFileExW(from, to, 0)`: publish a fully initialised file under its
/// final name, or fail with `ERROR_ALREADY_EXISTS` if the name is taken.
///
/// # References
///  - [MoveFileExW](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-movefileexw)
#[doc(alias = "MoveFileExW")]
pub(crate) fn rename_noreplace(dir: &Dir, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (
        wide(dir.join(from).as_os_str()),
        wide(dir.join(to).as_os_str()),
    );
    // SAFETY: both are NUL-terminated UTF-16 strings that live across the call.
    let ok = unsafe { wfs::MoveFileExW(from.as_ptr(), to.as_ptr(), 0) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Prefix of the hidden name a segment file takes when [`unlink`] cannot
/// delete it because it is mapped (`.mapshare-dead.PID.RANDOM`).
const TOMBSTONE_PREFIX: &str = ".mapshare-dead.";

/// Removes the name at once: renames the file to a hidden tombstone name
/// (`.mapshare-dead.PID.RANDOM`, never a segment name) in the same
/// directory, then deletes that. Where a view of the file is still mapped
/// (in any process), Windows refuses the delete (`ERROR_ACCESS_DENIED`):
/// the last process to unmap it deletes the tombstone (see `Drop for
/// Mapping`; the first [`Dir::shm`] of each process sweeps what killed
/// processes left). Either way the name is free at once, as after `unlink`
/// on Linux, and a delete only ever targets a tombstone name: a segment
/// created meanwhile under the old name is never hit by a delete that
/// completes late (a classic delete takes effect at the last close).
/// A directory is refused, as `unlink` refuses one on Linux.
///
/// # References
///  - [MoveFileExW](https://learn.microsoft.com/en-us/windows/win32/api/winbase/nf-winbase-movefileexw)
///  - [FILE_DISPOSITION_INFO_EX](https://learn.microsoft.com/en-us/windows/win32/api/winbase/ns-winbase-file_disposition_info_ex)
#[doc(alias = "DeleteFileW")]
pub(crate) fn unlink(dir: &Dir, name: &str) -> io::Result<()> {
    let fd = OpenOptions::new()
        .access_mode(wfs::FILE_READ_ATTRIBUTES)
        .share_mode(SHARE_ALL)
        .custom_flags(wfs::FILE_FLAG_OPEN_REPARSE_POINT | wfs::FILE_FLAG_BACKUP_SEMANTICS)
        .open(dir.join(name))?;
    let is_dir = file_info(&fd)?.dwFileAttributes & wfs::FILE_ATTRIBUTE_DIRECTORY != 0;
    drop(fd);
    if is_dir {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a directory"));
    }
    for _ in 0..16 {
        let dead = format!("{TOMBSTONE_PREFIX}{}.{:016x}", pid(), random_u64());
        match rename_noreplace(dir, name, &dead) {
            Ok(()) => {
                // Refused while mapped: the last unmapper deletes it.
                let _ = delete(&dir.join(&dead));
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

/// Deletes the file at `path` (not following a link): POSIX semantics
/// first, then the classic delete.
fn delete(path: &Path) -> io::Result<()> {
    let fd = OpenOptions::new()
        .access_mode(wfs::DELETE)
        .share_mode(SHARE_ALL)
        .custom_flags(wfs::FILE_FLAG_OPEN_REPARSE_POINT | wfs::FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    let ex = wfs::FILE_DISPOSITION_INFO_EX {
        Flags: wfs::FILE_DISPOSITION_FLAG_DELETE
            | wfs::FILE_DISPOSITION_FLAG_POSIX_SEMANTICS
            | wfs::FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE,
    };
    // SAFETY: `fd` is an open handle with DELETE access; the buffer is a
    // live FILE_DISPOSITION_INFO_EX of the size passed.
    let ok = unsafe {
        wfs::SetFileInformationByHandle(
            fd.as_raw_handle(),
            wfs::FileDispositionInfoEx,
            (&ex as *const wfs::FILE_DISPOSITION_INFO_EX).cast(),
            std::mem::size_of::<wfs::FILE_DISPOSITION_INFO_EX>() as u32,
        )
    };
    if ok != 0 {
        return Ok(());
    }
    let classic = wfs::FILE_DISPOSITION_INFO { DeleteFile: true };
    // SAFETY: as above, with a live FILE_DISPOSITION_INFO.
    let ok = unsafe {
        wfs::SetFileInformationByHandle(
            fd.as_raw_handle(),
            wfs::FileDispositionInfo,
            (&classic as *const wfs::FILE_DISPOSITION_INFO).cast(),
            std::mem::size_of::<wfs::FILE_DISPOSITION_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The path the open file `fd` has now (`GetFinalPathNameByHandleW`).
fn final_path(fd: &File) -> io::Result<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    let mut buf = vec![0u16; 512];
    loop {
        // SAFETY: `fd` owns an open handle; `buf` is a writable buffer of
        // the length passed.
        let n = unsafe {
            wfs::GetFinalPathNameByHandleW(
                fd.as_raw_handle(),
                buf.as_mut_ptr(),
                buf.len() as u32,
                wfs::FILE_NAME_NORMALIZED,
            )
        } as usize;
        if n == 0 {
            return Err(io::Error::last_os_error());
        }
        if n < buf.len() {
            buf.truncate(n);
            return Ok(PathBuf::from(OsString::from_wide(&buf)));
        }
        buf.resize(n + 1, 0);
    }
}

/// Deletes the tombstones (see [`unlink`]) in `dir` that no process maps
/// any more: those left by processes killed while they mapped one.
fn sweep_tombstones(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TOMBSTONE_PREFIX))
        {
            let _ = delete(&entry.path());
        }
    }
}

/// Whether `name` in `dir` is still the file open as `fd` (volume serial
/// number and file index of both).
pub(crate) fn same_file(dir: &Dir, name: &str, fd: &OwnedFd) -> io::Result<bool> {
    let named = match OpenOptions::new()
        .access_mode(0)
        .share_mode(SHARE_ALL)
        .custom_flags(wfs::FILE_FLAG_OPEN_REPARSE_POINT | wfs::FILE_FLAG_BACKUP_SEMANTICS)
        .open(dir.join(name))
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        // A name whose classic delete is pending is on its way out.
        Err(e) if e.raw_os_error() == Some(wf::ERROR_ACCESS_DENIED as i32) => return Ok(false),
        Err(e) => return Err(e),
    };
    let (a, b) = (file_id(&file_info(&named)?), file_id(&file_info(fd)?));
    // Both are in `dir`, so on one volume: Wine 8 reports serial number 0
    // for a handle whose file was renamed since it was opened; compare the
    // serial numbers only where both are known.
    Ok(a.1 == b.1 && (a.0 == b.0 || a.0 == 0 || b.0 == 0))
}

/// The names in `dir` (`FindFirstFileW`/`FindNextFileW`, through std).
pub(crate) fn list(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        out.push(entry?.file_name());
    }
    Ok(out)
}

/// `ReadFile` at `offset` (an `OVERLAPPED` position, through std's
/// `seek_read`), repeated until `buf` is full or the file ends.
///
/// # References
///  - [ReadFile](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-readfile)
#[doc(alias = "ReadFile")]
pub(crate) fn read_at(fd: &OwnedFd, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match fd.seek_read(&mut buf[done..], offset.saturating_add(done as u64)) {
            Ok(0) => break,
            Ok(n) => done += n,
            // Reading at or past the end of file.
            Err(e) if e.raw_os_error() == Some(wf::ERROR_HANDLE_EOF as i32) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `GetFileInformationByHandle(fd)`.
///
/// # References
///  - [GetFileInformationByHandle](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-getfileinformationbyhandle)
pub(crate) fn fstat(fd: &OwnedFd) -> io::Result<FileInfo> {
    let info = file_info(fd)?;
    let attrs = info.dwFileAttributes;
    let owner = owner_sid(
        fd.as_raw_handle(),
        windows_sys::Win32::Security::Authorization::SE_FILE_OBJECT,
    )?;
    let uid = uid_for(&owner, user_sid()?);
    Ok(FileInfo {
        size: (u64::from(info.nFileSizeHigh) << 32) | u64::from(info.nFileSizeLow),
        uid,
        mode: if attrs & wfs::FILE_ATTRIBUTE_READONLY != 0 {
            0o400
        } else {
            0o600
        },
        regular: attrs & (wfs::FILE_ATTRIBUTE_DIRECTORY | wfs::FILE_ATTRIBUTE_REPARSE_POINT) == 0,
    })
}

/// `SetFileInformationByHandle(FileEndOfFileInfo, len)`: sets the size. On
/// NTFS the clusters are allocated now (files are not sparse unless asked),
/// so a full disk is `ERROR_DISK_FULL` here, not a fault later.
///
/// # References
///  - [SetEndOfFile](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-setendoffile)
#[doc(alias = "SetEndOfFile")]
pub(crate) fn reserve(fd: &OwnedFd, len: u64) -> io::Result<()> {
    fd.set_len(len)
}

/// The uid `fstat` reports for a file whose owner SID is `owner`, when we
/// are `ours`: our RID ([`euid`]) for our own SID; another owner's RID,
/// with the top bit flipped if it happens to equal ours (a user of another
/// machine or domain), so that the owner check still tells them apart.
fn uid_for(owner: &[u8], ours: &[u8]) -> u32 {
    let mine = rid(ours);
    if owner == ours {
        return mine;
    }
    let r = rid(owner);
    if r == mine {
        r ^ 0x8000_0000
    } else {
        r
    }
}

/// Whether `e` says the disk (or the quota) is full.
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(wf::ERROR_DISK_FULL | wf::ERROR_HANDLE_DISK_FULL | wf::ERROR_DISK_QUOTA_EXCEEDED)
    )
}

/// A shared view of a whole file, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    /// A handle of the file, to delete it on drop if it was unlinked while
    /// mapped (a tombstone: see [`unlink`]).
    file: File,
}

// SAFETY: a `Mapping` is a plain address range that owns no thread-bound
// state; all access to its bytes goes through `region` (atomics, volatile
// copies, and the views' `unsafe fn` slices, each with its own contract),
// which is equally valid from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Base address.
    #[inline]
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A kernel object handle, closed on drop.
#[derive(Debug)]
struct Handle(wf::HANDLE);

// SAFETY: a kernel object handle is a process-wide value, usable from any thread.
unsafe impl Send for Handle {}
// SAFETY: as for `Send`; every call we make on it is thread-safe.
unsafe impl Sync for Handle {}

impl Handle {
    /// Wraps the result of a `Create*` call (null on failure).
    fn new(h: wf::HANDLE) -> io::Result<Handle> {
        if h.is_null() {
            Err(io::Error::last_os_error())
        } else {
            Ok(Handle(h))
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: we own this handle (returned by a successful Create*
        // call) and close it exactly once.
        let _ = unsafe { wf::CloseHandle(self.0) };
    }
}

/// `CreateFileMappingW(fd, NULL, PAGE_READWRITE, 0, 0, NULL)` +
/// `MapViewOfFile(FILE_MAP_READ | FILE_MAP_WRITE, 0, len)` (read-only
/// when `writable` is false). The section handle is closed at once: the
/// view keeps the section alive.
///
/// # References
///  - [CreateFileMappingW](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-createfilemappingw)
///  - [MapViewOfFile](https://learn.microsoft.com/en-us/windows/win32/api/memoryapi/nf-memoryapi-mapviewoffile)
#[doc(alias = "mmap")]
#[doc(alias = "MapViewOfFile")]
pub(crate) fn map(fd: &OwnedFd, len: usize, writable: bool) -> io::Result<Mapping> {
    if len == 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // The key of the wait objects of this file's words. Always from a
    // handle opened (or created) just before, never from one whose file was
    // renamed since: Wine 8 reports volume serial number 0 for those.
    let id = file_id(&file_info(fd)?);
    // Before the view exists, so that no error path below leaks it.
    let file = fd.try_clone()?;
    let (protect, access) = if writable {
        (wm::PAGE_READWRITE, wm::FILE_MAP_READ | wm::FILE_MAP_WRITE)
    } else {
        (wm::PAGE_READONLY, wm::FILE_MAP_READ)
    };
    // SAFETY: `fd` owns an open file handle; no security attributes and no
    // name (null pointers are allowed for both).
    let raw = unsafe {
        wm::CreateFileMappingW(
            fd.as_raw_handle(),
            std::ptr::null(),
            protect,
            0,
            0,
            std::ptr::null(),
        )
    };
    let section = Handle::new(raw)?;
    // SAFETY: a fresh view of a section we hold, placed by the system (no
    // address given), so no memory of ours is replaced.
    let view = unsafe { wm::MapViewOfFile(section.0, access, 0, 0, len) };
    let ptr = NonNull::new(view.Value.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
    let mapping = Mapping { ptr, len, file };
    lock_table().push(MapEntry {
        start: ptr.as_ptr() as usize,
        len,
        id,
        words: HashMap::new(),
    });
    Ok(mapping)
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Forget the wait objects of this view's words first: no waiter can
        // be on them (every view of the mapping borrows it).
        let start = self.ptr.as_ptr() as usize;
        let entry = {
            let mut table = lock_table();
            table
                .iter()
                .position(|e| e.start == start)
                .map(|i| table.swap_remove(i))
        };
        drop(entry);
        // SAFETY: `ptr` is exactly what `MapViewOfFile` returned, and every
        // view into the mapping borrows the `Mapping`, so none outlives it.
        let _ = unsafe {
            wm::UnmapViewOfFile(wm::MEMORY_MAPPED_VIEW_ADDRESS {
                Value: self.ptr.as_ptr().cast(),
            })
        };
        // Unlinked while mapped: whoever unmaps last deletes it (an earlier
        // one fails, as a peer still maps it).
        delete_if_tombstone(&self.file);
    }
}

/// Deletes the file open as `fd` if [`unlink`] made it a tombstone: its
/// path (`GetFinalPathNameByHandleW`) has a tombstone name (Windows), or
/// no longer leads to it (Wine 8 keeps reporting the name a handle was
/// opened under): then every tombstone of its directory that nobody maps
/// any more is deleted.
fn delete_if_tombstone(fd: &File) {
    let Ok(path) = final_path(fd) else {
        return;
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    if name.starts_with(TOMBSTONE_PREFIX) {
        let _ = delete(&path);
        return;
    }
    let still_named = Dir {
        path: Arc::new(dir.to_owned()),
        temporary: false,
    };
    if !matches!(same_file(&still_named, name, fd), Ok(true)) {
        sweep_tombstones(dir);
    }
}

/// The named wait objects of one word (see "Waiting across processes").
#[derive(Debug)]
struct WaitObjects {
    sem: Handle,
    /// The view of the 4-byte sleeper count; unmapped on drop, before
    /// `_section` is closed.
    count: NonNull<AtomicU32>,
    _section: Handle,
}

// SAFETY: the handles are process-wide, and `count` points at an atomic
// in a view that lives as long as this value, usable from any thread.
unsafe impl Send for WaitObjects {}
// SAFETY: as for `Send`: the count is only reached as an atomic.
unsafe impl Sync for WaitObjects {}

impl WaitObjects {
    fn open(id: FileId, offset: usize) -> io::Result<WaitObjects> {
        let key = format!("{:08x}.{:016x}.{offset:x}", id.0, id.1);
        let sem_name = wide(OsStr::new(&format!(r"Local\mapshare.fx.{key}")));
        let count_name = wide(OsStr::new(&format!(r"Local\mapshare.fc.{key}")));
        let sd = kernel_object_sd()?;
        let sa = sd.attributes();
        // SAFETY: a NUL-terminated name and live security attributes that
        // outlive the call. Creates the semaphore, or opens the one a peer
        // created under that name.
        let sem =
            Handle::new(unsafe { wt::CreateSemaphoreW(&sa, 0, i32::MAX, sem_name.as_ptr()) })?;
        check_ours(&sem, existed())?;
        // SAFETY: as above; a page-file-backed section of 4 bytes (the
        // system zero-fills a new one), or a peer's of that name.
        let section = Handle::new(unsafe {
            wm::CreateFileMappingW(
                wf::INVALID_HANDLE_VALUE,
                &sa,
                wm::PAGE_READWRITE,
                0,
                4,
                count_name.as_ptr(),
            )
        })?;
        check_ours(&section, existed())?;
        // SAFETY: a fresh view of the section we hold, placed by the system.
        let view = unsafe {
            wm::MapViewOfFile(section.0, wm::FILE_MAP_READ | wm::FILE_MAP_WRITE, 0, 0, 4)
        };
        let count =
            NonNull::new(view.Value.cast::<AtomicU32>()).ok_or_else(io::Error::last_os_error)?;
        Ok(WaitObjects {
            sem,
            count,
            _section: section,
        })
    }

    fn count(&self) -> &AtomicU32 {
        // SAFETY: `count` is the base of a live, page-aligned view of at
        // least 4 bytes, read and written only as this atomic by every
        // process; it lives as long as `self`.
        unsafe { self.count.as_ref() }
    }

    /// Takes one sleeper out of the count if any is left: `false` if a
    /// waker took them all out already.
    fn leave(&self) -> bool {
        self.count()
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
            .is_ok()
    }
}

impl Drop for WaitObjects {
    fn drop(&mut self) {
        // SAFETY: the view `MapViewOfFile` returned, unmapped once; no
        // reference to the count outlives `self`.
        let _ = unsafe {
            wm::UnmapViewOfFile(wm::MEMORY_MAPPED_VIEW_ADDRESS {
                Value: self.count.as_ptr().cast(),
            })
        };
    }
}

/// One view of a segment file, and the wait objects of its words in use.
struct MapEntry {
    start: usize,
    len: usize,
    id: FileId,
    words: HashMap<usize, Arc<WaitObjects>>,
}

static TABLE: StdMutex<Vec<MapEntry>> = StdMutex::new(Vec::new());

fn lock_table() -> std::sync::MutexGuard<'static, Vec<MapEntry>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a word is: in one of our segment views (its wait objects), or
/// outside every one (process-local memory).
enum Place {
    Shared(Arc<WaitObjects>),
    Local,
}

fn place(word: &AtomicU32) -> io::Result<Place> {
    let addr = word as *const AtomicU32 as usize;
    let mut table = lock_table();
    let Some(entry) = table
        .iter_mut()
        .find(|e| addr >= e.start && addr - e.start < e.len)
    else {
        return Ok(Place::Local);
    };
    let offset = addr - entry.start;
    if let Some(w) = entry.words.get(&offset) {
        return Ok(Place::Shared(w.clone()));
    }
    let w = Arc::new(WaitObjects::open(entry.id, offset)?);
    entry.words.insert(offset, w.clone());
    Ok(Place::Shared(w))
}

/// A timeout in whole milliseconds, rounded up (never 0 for a non-zero
/// wait, never `INFINITE` for a finite one).
fn millis(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => wt::INFINITE,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).map_or(wt::INFINITE - 1, |ms| ms.min(wt::INFINITE - 1))
        }
    }
}

/// Waits until `word` is woken by [`futex_wake`] in any process, no longer
/// holds `expected`, or `timeout` passes; may return early (callers
/// re-check their condition in every case).
///
/// A word in a segment sleeps on its named semaphore (see "Waiting across
/// processes"); any other word on `WaitOnAddress`.
///
/// # References
///  - [WaitForSingleObject](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-waitforsingleobject)
///  - [WaitOnAddress](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-waitonaddress)
#[doc(alias = "futex")]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ms = millis(timeout);
    let w = match place(word) {
        Ok(Place::Shared(w)) => w,
        Ok(Place::Local) => {
            // SAFETY: `word` is a live 4-byte atomic and `expected` a live
            // u32 to compare it with; both outlive the call.
            let _ = unsafe {
                wt::WaitOnAddress(
                    (word as *const AtomicU32).cast(),
                    (&expected as *const u32).cast(),
                    4,
                    ms,
                )
            };
            return;
        }
        Err(_) => {
            // No wait objects (out of handles): a short sleep keeps the
            // caller's loop correct, if slower.
            std::thread::sleep(Duration::from_millis(u64::from(ms.min(1))));
            return;
        }
    };
    // SYNC(futex): count in, then look at the word; the waker stores the
    // word, then looks at the count. SeqCst on both sides (Dekker).
    w.count().fetch_add(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if word.load(Ordering::SeqCst) != expected {
        if !w.leave() {
            // SAFETY: `sem` is a live semaphore handle; a zero timeout.
            let _ = unsafe { wt::WaitForSingleObject(w.sem.0, 0) };
        }
        return;
    }
    // SAFETY: `sem` is a live semaphore handle.
    let r = unsafe { wt::WaitForSingleObject(w.sem.0, ms) };
    if r != wf::WAIT_OBJECT_0 && !w.leave() {
        // A waker counted us out after our timeout: take its release if it
        // is there already (a later one only wakes some sleeper early).
        // SAFETY: as above, with a zero timeout.
        let _ = unsafe { wt::WaitForSingleObject(w.sem.0, 0) };
    }
}

/// Wakes up to `n` waiters of `word` in any process. No system call when
/// nobody sleeps on it (after the first call per word and mapping, which
/// opens its wait objects).
///
/// # References
///  - [ReleaseSemaphore](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-releasesemaphore)
///  - [WakeByAddressAll](https://learn.microsoft.com/en-us/windows/win32/api/synchapi/nf-synchapi-wakebyaddressall)
#[doc(alias = "futex")]
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    let w = match place(word) {
        Ok(Place::Shared(w)) => w,
        Ok(Place::Local) => {
            let addr = (word as *const AtomicU32).cast();
            if n == 1 {
                // SAFETY: any address may be passed; wakes a waiter on it.
                unsafe { wt::WakeByAddressSingle(addr) };
            } else {
                // SAFETY: as above, every waiter.
                unsafe { wt::WakeByAddressAll(addr) };
            }
            return;
        }
        // No wait objects could be opened: waiters poll (see futex_wait).
        Err(_) => return,
    };
    // SYNC(futex): the caller's store to the word, then the count.
    fence(Ordering::SeqCst);
    let mut sleepers = w.count().load(Ordering::SeqCst);
    loop {
        if sleepers == 0 {
            return;
        }
        let take = sleepers.min(n).min(i32::MAX as u32);
        match w.count().compare_exchange(
            sleepers,
            sleepers - take,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => break,
            Err(now) => sleepers = now,
        }
    }
    let take = sleepers.min(n).min(i32::MAX as u32);
    // SAFETY: `sem` is a live semaphore handle; no previous count asked.
    let _ = unsafe { wt::ReleaseSemaphore(w.sem.0, take as i32, std::ptr::null_mut()) };
}

/// One word for [`futex_waitv`] (never waited on here).
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)] // Reason: the contract's type; `futex_waitv` reads none of it here.
pub(crate) struct WaitWord {
    pub(crate) addr: usize,
    pub(crate) expected: u32,
    pub(crate) private: bool,
}

/// How a `futex_waitv` ended.
#[derive(Debug)]
#[allow(dead_code)] // Reason: only `Unsupported` is built here.
pub(crate) enum Waitv {
    Woken(usize),
    Changed,
    TimedOut,
    Unsupported,
}

/// No `futex_waitv` on Windows: callers poll the words in short slices.
pub(crate) fn futex_waitv(_words: &[WaitWord], _timeout: Option<Duration>) -> Waitv {
    Waitv::Unsupported
}

/// Offset of the byte that stands for `flock` (far past any segment and
/// the registry's byte locks).
const FLOCK_OFFSET: u64 = 1 << 41;

fn overlapped(offset: u64) -> OVERLAPPED {
    // SAFETY: an all-zero OVERLAPPED is valid (no event, offset 0).
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = offset as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    ov
}

/// `LockFileEx(fd, flags | LOCKFILE_FAIL_IMMEDIATELY, start, len)`:
/// `Ok(false)` if another handle holds a conflicting lock.
fn lock_range(fd: &OwnedFd, exclusive: bool, start: u64, len: u64) -> io::Result<bool> {
    let mut ov = overlapped(start);
    let flags = wfs::LOCKFILE_FAIL_IMMEDIATELY
        | if exclusive {
            wfs::LOCKFILE_EXCLUSIVE_LOCK
        } else {
            0
        };
    // SAFETY: `fd` owns an open file handle (synchronous, so the call
    // completes before it returns) and `ov` is a live OVERLAPPED.
    let ok = unsafe {
        wfs::LockFileEx(
            fd.as_raw_handle(),
            flags,
            0,
            len as u32,
            (len >> 32) as u32,
            &mut ov,
        )
    };
    if ok != 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error().map(|c| c as u32) {
        Some(wf::ERROR_LOCK_VIOLATION) | Some(wf::ERROR_IO_PENDING) => Ok(false),
        _ => Err(e),
    }
}

fn unlock_range(fd: &OwnedFd, start: u64, len: u64) -> io::Result<()> {
    let mut ov = overlapped(start);
    // SAFETY: as in `lock_range`.
    let ok = unsafe {
        wfs::UnlockFileEx(
            fd.as_raw_handle(),
            0,
            len as u32,
            (len >> 32) as u32,
            &mut ov,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `LockFileEx(fd, EXCLUSIVE | FAIL_IMMEDIATELY, offset, 1)`: `Ok(false)`
/// if another handle holds it. The system releases it when the process
/// dies, however it dies: that is how we tell live peers from dead ones,
/// whatever process ids have been reused since. Unlike an `F_OFD_SETLK`
/// lock, a byte our own handle holds cannot be locked again through it
/// (no caller does).
///
/// # References
///  - [LockFileEx](https://learn.microsoft.com/en-us/windows/win32/api/fileapi/nf-fileapi-lockfileex)
#[doc(alias = "LockFileEx")]
pub(crate) fn lock_byte(fd: &OwnedFd, offset: u64) -> io::Result<bool> {
    lock_range(fd, true, offset, 1)
}

/// `UnlockFileEx(fd, offset, 1)`.
#[doc(alias = "UnlockFileEx")]
pub(crate) fn unlock_byte(fd: &OwnedFd, offset: u64) -> io::Result<()> {
    unlock_range(fd, offset, 1)
}

/// Whether another handle holds a lock on a byte of the range. Windows has
/// no `F_GETLK`: we take a shared lock on the range (refused if anyone
/// holds an exclusive one) and release it at once. The callers never ask
/// about a byte their own handle holds. For that instant, a peer's
/// `lock_byte` in the range fails as if the byte were held (a claim then
/// takes the next free registry slot).
#[doc(alias = "LockFileEx")]
pub(crate) fn byte_range_locked(fd: &OwnedFd, start: u64, len: u64) -> io::Result<bool> {
    if len == 0 {
        return Ok(false);
    }
    if lock_range(fd, false, start, len)? {
        unlock_range(fd, start, len)?;
        Ok(false)
    } else {
        Ok(true)
    }
}

/// `flock(LOCK_EX | LOCK_NB)`'s equivalent: an exclusive lock on one byte
/// far past the end (see `FLOCK_OFFSET`). `Ok(false)` if someone else
/// holds it.
#[doc(alias = "LockFileEx")]
pub(crate) fn try_flock(fd: &OwnedFd) -> io::Result<bool> {
    lock_range(fd, true, FLOCK_OFFSET, 1)
}

/// Releases [`try_flock`]'s lock.
#[doc(alias = "UnlockFileEx")]
pub(crate) fn unflock(fd: &OwnedFd) -> io::Result<()> {
    unlock_range(fd, FLOCK_OFFSET, 1)
}

/// `GetCurrentProcessId()`.
pub(crate) fn pid() -> u32 {
    std::process::id()
}

/// Our user's relative id (the last sub-authority of the token user's
/// SID: 1000 and up for ordinary users, like a uid). Windows has no
/// numeric user ids; owners are compared as whole SIDs (see [`fstat`]).
pub(crate) fn euid() -> u32 {
    user_sid().map_or(0, rid)
}

/// `GetSystemInfo().dwPageSize`.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: an all-zero SYSTEM_INFO is valid (integers and pointers).
        let mut info: windows_sys::Win32::System::SystemInformation::SYSTEM_INFO =
            unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a writable SYSTEM_INFO; the call cannot fail.
        unsafe { windows_sys::Win32::System::SystemInformation::GetSystemInfo(&mut info) };
        usize::try_from(info.dwPageSize)
            .ok()
            .filter(|&p| p > 0)
            .unwrap_or(4096)
    })
}

/// 64 random bits: std's `RandomState`, whose keys come from the system's
/// random number generator (`ProcessPrng`), keyed afresh per call, over
/// the pid and the clock.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(pid());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Always 0: Windows has no `fork()`.
#[inline]
pub(crate) fn fork_epoch() -> u32 {
    0
}

/// Nothing to guard: Windows has no `fork()`.
#[derive(Debug)]
pub(crate) struct ForkGuard;

/// Nothing to record: Windows has no `fork()`.
pub(crate) fn guard_fork(_fd: &OwnedFd, _map: &Mapping) -> ForkGuard {
    ForkGuard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_strings_and_rids_decode_the_sid_bytes() {
        // S-1-5-21-1-2-3-1001
        let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 1, 2, 3, 1001] {
            sid.extend_from_slice(&sub.to_le_bytes());
        }
        assert_eq!(sid_string(&sid), "S-1-5-21-1-2-3-1001");
        assert_eq!(rid(&sid), 1001);
        assert_eq!(rid(&[1, 0, 0, 0, 0, 0, 0, 5]), 0);
        assert_eq!(rid(&[]), 0);
    }

    /// Our own segment files report our uid, which is not 0 (Wine 8 keeps
    /// no file owner but the Unix user's: a file created with another
    /// owner in its security descriptor still reports ours there, so the
    /// refusal of foreign owners is tested through `uid_for`).
    #[test]
    fn our_files_report_our_uid() {
        let dir = Dir::shm().unwrap();
        let name = format!("mapshare.t-{}-owner-test", pid());
        let _ = unlink(&dir, &name);
        let ours = create_exclusive(&dir, &name, 0o600).unwrap();
        assert_eq!(fstat(&ours).unwrap().uid, euid());
        assert_ne!(euid(), 0);
        drop(ours);
        unlink(&dir, &name).unwrap();
    }

    #[test]
    fn another_owner_never_gets_our_uid() {
        let sid = |subs: &[u32]| {
            let mut v = vec![1u8, subs.len() as u8, 0, 0, 0, 0, 0, 5];
            for s in subs {
                v.extend_from_slice(&s.to_le_bytes());
            }
            v
        };
        let ours = sid(&[21, 1, 2, 3, 1001]);
        assert_eq!(uid_for(&ours, &ours), 1001);
        // Administrators (S-1-5-32-544), another user of our machine, and
        // a user of another domain with our RID.
        assert_eq!(uid_for(&sid(&[32, 544]), &ours), 544);
        assert_eq!(uid_for(&sid(&[21, 1, 2, 3, 1002]), &ours), 1002);
        assert_ne!(uid_for(&sid(&[21, 9, 9, 9, 1001]), &ours), 1001);
        assert_ne!(uid_for(&[], &ours), 1001);
    }
}
