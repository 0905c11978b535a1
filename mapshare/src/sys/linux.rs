//! Linux backend, on rustix (and `libc` for the one call rustix lacks:
//! byte-range open-file-description locks).
//!
//! Segments are files: RAM-backed ones in `/dev/shm` (exactly where glibc's
//! `shm_open` puts them, so any POSIX client can attach by name), file-backed
//! ones anywhere. Opening goes through `openat` with `O_NOFOLLOW` so a name
//! that is a symlink is never followed.

// Reason: this module is the designated home of the OS calls that clippy.toml bans elsewhere.
#![allow(clippy::disallowed_methods)]

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
pub(crate) use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

/// The directory holding POSIX shared-memory objects on Linux.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// An open directory: every name operation is relative to it, so a
/// directory swapped under us between calls changes nothing.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    fd: std::sync::Arc<OwnedFd>,
}

impl Dir {
    /// `open(path, O_DIRECTORY | O_PATH)`.
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let fd = rfs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd: std::sync::Arc::new(fd),
        })
    }

    /// The shared-memory directory, `/dev/shm`: opened once per process and
    /// shared by every segment in it (a process with thousands of segments
    /// open needs one descriptor each, not two).
    ///
    /// A process that closes descriptors it does not own (a daemon's
    /// `close_range`) could leave the number to another file: each call
    /// checks, with one `fstat`, that it is still the directory we opened,
    /// and opens it again if not.
    pub(crate) fn shm() -> io::Result<Dir> {
        static SHM: std::sync::Mutex<Option<(Dir, u64, u64)>> = std::sync::Mutex::new(None);
        let mut cached = SHM.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((d, dev, ino)) = cached.as_ref() {
            if rfs::fstat(&*d.fd).is_ok_and(|st| st.st_dev == *dev && st.st_ino == *ino) {
                return Ok(d.clone());
            }
        }
        let d = Dir::open(Path::new(SHM_DIR))?;
        let st = rfs::fstat(&*d.fd)?;
        *cached = Some((d.clone(), st.st_dev, st.st_ino));
        Ok(d)
    }
}

/// The path of the shared-memory directory, [`SHM_DIR`].
pub(crate) fn shm_dir() -> io::Result<std::path::PathBuf> {
    Ok(std::path::PathBuf::from(SHM_DIR))
}

/// Whether `e` says the file system is full (`ENOSPC`, `EFBIG`).
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EFBIG))
}

/// What `fstat` tells us about a segment file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileInfo {
    pub(crate) size: u64,
    pub(crate) uid: u32,
    pub(crate) mode: u32,
    /// A regular file (not a FIFO, directory, device or socket).
    pub(crate) regular: bool,
}

/// `openat(dir, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)`
/// followed by `fchmod(mode)`, so the mode does not depend on the umask.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/open.2.html)
#[doc(alias = "shm_open")]
pub(crate) fn create_exclusive(dir: &Dir, name: &str, mode: u32) -> io::Result<OwnedFd> {
    let fd = rfs::openat(
        &dir.fd,
        name,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    rfs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(fd)
}

/// `openat(dir, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)` (or `O_RDONLY`).
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/open.2.html)
#[doc(alias = "shm_open")]
pub(crate) fn open_existing(dir: &Dir, name: &str, writable: bool) -> io::Result<OwnedFd> {
    let access = if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    let fd = rfs::openat(
        &dir.fd,
        name,
        access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    Ok(fd)
}

/// `renameat2(dir, from, dir, to, RENAME_NOREPLACE)`: publish a fully
/// initialised file under its final name, atomically, or fail with
/// `EEXIST` if the name is taken.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/renameat2.2.html)
#[doc(alias = "renameat2")]
pub(crate) fn rename_noreplace(dir: &Dir, from: &str, to: &str) -> io::Result<()> {
    rfs::renameat_with(&dir.fd, from, &dir.fd, to, rfs::RenameFlags::NOREPLACE)?;
    Ok(())
}

/// `unlinkat(dir, name, 0)`.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/unlink.2.html)
#[doc(alias = "shm_unlink")]
pub(crate) fn unlink(dir: &Dir, name: &str) -> io::Result<()> {
    rfs::unlinkat(&dir.fd, name, rfs::AtFlags::empty())?;
    Ok(())
}

/// Whether `name` in `dir` is still the file open as `fd`
/// (`fstatat(AT_SYMLINK_NOFOLLOW)` against `fstat`).
pub(crate) fn same_file(dir: &Dir, name: &str, fd: &OwnedFd) -> io::Result<bool> {
    let named = match rfs::statat(&dir.fd, name, rfs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let open = rfs::fstat(fd)?;
    Ok(named.st_dev == open.st_dev && named.st_ino == open.st_ino)
}

/// The names in `dir` (`getdents64`), skipping `.` and `..`.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        out.push(entry?.file_name());
    }
    // Keep the OsString bytes as they are; callers filter on the prefix.
    Ok(out
        .into_iter()
        .map(|n| OsString::from_vec(n.into_vec()))
        .collect())
}

/// `pread(fd, buf, offset)`, repeated until `buf` is full or the file
/// ends: the number of bytes read. Reading through the descriptor, not a
/// mapping, means an object a peer has shrunk gives a short read instead of
/// a `SIGBUS`.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/pread.2.html)
#[doc(alias = "pread")]
pub(crate) fn read_at(fd: &OwnedFd, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset.saturating_add(done as u64)) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// `fstat(fd)`.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/fstat.2.html)
pub(crate) fn fstat(fd: &OwnedFd) -> io::Result<FileInfo> {
    let st = rfs::fstat(fd)?;
    Ok(FileInfo {
        size: u64::try_from(st.st_size).unwrap_or(0),
        uid: st.st_uid,
        mode: st.st_mode & 0o7777,
        regular: rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile,
    })
}

/// `ftruncate(fd, len)` then `fallocate(fd, 0, 0, len)`: set the size and
/// reserve the memory now, so that a full `/dev/shm` is an `ENOSPC` here
/// rather than a `SIGBUS` on first touch.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/fallocate.2.html)
#[doc(alias = "fallocate")]
pub(crate) fn reserve(fd: &OwnedFd, len: u64) -> io::Result<()> {
    rfs::ftruncate(fd, len)?;
    match rfs::fallocate(fd, rfs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        // A file system without fallocate: the size is set; nothing more to do.
        Err(Errno::OPNOTSUPP) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A shared mapping of a whole file, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
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

/// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`
/// (`PROT_READ` only when `writable` is false).
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/mmap.2.html)
#[doc(alias = "mmap")]
pub(crate) fn map(fd: &OwnedFd, len: usize, writable: bool) -> io::Result<Mapping> {
    if len == 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let prot = if writable {
        rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE
    } else {
        rustix::mm::ProtFlags::READ
    };
    // SAFETY: we ask the kernel for a fresh mapping (null hint, no MAP_FIXED),
    // so no existing memory of ours is replaced; `fd` is a valid open file.
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            rustix::mm::MapFlags::SHARED,
            fd.as_fd(),
            0,
        )
    }?;
    let ptr =
        NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
    Ok(Mapping { ptr, len })
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned, and every view
        // into the mapping borrows the `Mapping`, so none outlives it.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// `futex(word, FUTEX_WAIT, expected, timeout)` on a shared (not
/// `FUTEX_PRIVATE_FLAG`) word. Returns when woken, when the word no longer
/// holds `expected`, on a signal, or when `timeout` (relative, monotonic)
/// passes; callers re-check their condition in every case.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/futex.2.html)
#[doc(alias = "futex")]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| rustix::thread::futex::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    // Shared futex: never FUTEX_PRIVATE_FLAG on memory other processes map.
    let _ = rustix::thread::futex::wait(
        word,
        rustix::thread::futex::Flags::empty(),
        expected,
        ts.as_ref(),
    );
}

/// `futex(word, FUTEX_WAKE, n)`: wakes up to `n` waiters in any process.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/futex.2.html)
#[doc(alias = "futex")]
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    let _ = rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), n);
}

/// `FUTEX2_SIZE_U32`: a 32-bit futex word (futex2 flags). Never
/// `FUTEX2_PRIVATE` on a shared word.
pub(crate) const FUTEX2_SIZE_U32: u32 = 0x02;
/// `FUTEX2_PRIVATE`: for our own process-local control words.
const FUTEX2_PRIVATE: u32 = 128;

/// `struct futex_waitv` (linux/futex.h).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// `struct __kernel_timespec`: 64-bit fields on every architecture, as
/// `futex_waitv` takes it (unlike `libc::timespec` on 32-bit targets).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// One word for [`futex_waitv`]: its address, the value it must still
/// hold for us to sleep, and whether it is process-private.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitWord {
    pub(crate) addr: usize,
    pub(crate) expected: u32,
    pub(crate) private: bool,
}

/// How a `futex_waitv` ended.
#[derive(Debug)]
pub(crate) enum Waitv {
    /// Woken on this word.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    // Reason: only the async layer asks which.
    Woken(usize),
    /// A word no longer held its expected value (or the call was
    /// interrupted, or a word could not be read): look at them all again.
    Changed,
    /// The timeout passed.
    TimedOut,
    /// The kernel has no `futex_waitv` (before 5.16) or refused the call.
    Unsupported,
}

/// `futex_waitv(words, flags 0, timeout, CLOCK_MONOTONIC)`: sleeps until one
/// of up to 128 words is woken. Reads no memory itself.
///
/// # References
///  - [Linux](https://docs.kernel.org/userspace-api/futex2.html)
pub(crate) fn futex_waitv(words: &[WaitWord], timeout: Option<Duration>) -> Waitv {
    let v: Vec<FutexWaitv> = words
        .iter()
        .map(|w| FutexWaitv {
            val: u64::from(w.expected),
            uaddr: w.addr as u64,
            flags: FUTEX2_SIZE_U32 | if w.private { FUTEX2_PRIVATE } else { 0 },
            reserved: 0,
        })
        .collect();
    // futex_waitv takes an absolute time on the given clock.
    let ts = timeout.map(|d| {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let mut sec = now
            .tv_sec
            .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut nsec = now.tv_nsec + i64::from(d.subsec_nanos());
        if nsec >= 1_000_000_000 {
            nsec -= 1_000_000_000;
            sec = sec.saturating_add(1);
        }
        KernelTimespec {
            tv_sec: sec,
            tv_nsec: nsec,
        }
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const KernelTimespec);
    // SAFETY: `v` is a valid array of `v.len()` `futex_waitv` entries that
    // lives across the call; `ts_ptr` is null or points at a live
    // timespec. The kernel reads the words at their addresses with fault
    // handling (a bad address is EFAULT, not a fault in our process).
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            v.as_ptr(),
            v.len() as libc::c_uint,
            0 as libc::c_uint,
            ts_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    if r >= 0 {
        return Waitv::Woken(r as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::EFAULT) => Waitv::Changed,
        Some(libc::ETIMEDOUT) => Waitv::TimedOut,
        _ => Waitv::Unsupported,
    }
}

fn ofd_lock(
    fd: &OwnedFd,
    cmd: libc::c_int,
    typ: libc::c_short,
    start: u64,
    len: u64,
) -> io::Result<libc::flock> {
    // SAFETY: `flock` is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = i64::try_from(start).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    fl.l_len = i64::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    fl.l_pid = 0; // required for OFD locks
                  // SAFETY: `fd` is a valid open descriptor and `fl` a valid, writable
                  // `struct flock` that lives across the call; F_OFD_* take exactly that.
    let rc = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            cmd,
            &mut fl as *mut libc::flock,
        )
    };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fl)
    }
}

/// `fcntl(fd, F_OFD_SETLK, {F_WRLCK, start, 1})`: takes a write lock on one
/// byte for this open file description. `Ok(false)` if another description
/// holds it. The kernel drops the lock when the last descriptor of the
/// description closes, so a killed process releases it: that is how we tell
/// live peers from dead ones, whatever PIDs have been reused since.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/fcntl.2.html)
#[doc(alias = "F_OFD_SETLK")]
pub(crate) fn lock_byte(fd: &OwnedFd, offset: u64) -> io::Result<bool> {
    match ofd_lock(
        fd,
        libc::F_OFD_SETLK,
        libc::F_WRLCK as libc::c_short,
        offset,
        1,
    ) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `fcntl(fd, F_OFD_SETLK, {F_UNLCK, start, 1})`.
#[doc(alias = "F_OFD_SETLK")]
pub(crate) fn unlock_byte(fd: &OwnedFd, offset: u64) -> io::Result<()> {
    ofd_lock(
        fd,
        libc::F_OFD_SETLK,
        libc::F_UNLCK as libc::c_short,
        offset,
        1,
    )
    .map(|_| ())
}

/// `fcntl(fd, F_OFD_GETLK, {F_RDLCK, start, len})`: whether any *other*
/// open file description holds a write lock on a byte of the range.
#[doc(alias = "F_OFD_GETLK")]
pub(crate) fn byte_range_locked(fd: &OwnedFd, start: u64, len: u64) -> io::Result<bool> {
    if len == 0 {
        return Ok(false);
    }
    // A read-lock probe conflicts with every write lock, and needs no write access.
    let fl = ofd_lock(
        fd,
        libc::F_OFD_GETLK,
        libc::F_RDLCK as libc::c_short,
        start,
        len,
    )?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// `flock(fd, LOCK_EX | LOCK_NB)`: `Ok(false)` if someone else holds it.
#[doc(alias = "flock")]
pub(crate) fn try_flock(fd: &OwnedFd) -> io::Result<bool> {
    match rfs::flock(fd, rfs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `flock(fd, LOCK_UN)`.
#[doc(alias = "flock")]
pub(crate) fn unflock(fd: &OwnedFd) -> io::Result<()> {
    rfs::flock(fd, rfs::FlockOperation::Unlock)?;
    Ok(())
}

/// `getpid()`.
pub(crate) fn pid() -> u32 {
    rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

/// `geteuid()`.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The page size.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// 64 random bits from the kernel (`getrandom(2)`), for names no other
/// user can guess. Falls back to the clock and pid mixed by std's
/// randomly keyed hasher if the call fails (it cannot block or fail on
/// Linux 3.17+ once the pool is initialised).
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/getrandom.2.html)
#[doc(alias = "getrandom")]
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    match rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()) {
        Ok(8) => u64::from_ne_bytes(b),
        _ => {
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
    }
}

/// Incremented in every child created by `fork()` (a `pthread_atfork`
/// child handler), so a handle can tell it was inherited: see "`fork()`
/// without `exec`" in the segment docs.
static FORK_EPOCH: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The open segments (descriptor and mapping), which the child handler
/// detaches from the parent's open file descriptions: a child must never
/// keep its parent's registry locks alive. A process with more open
/// segments than this still refuses their use in a child; only their
/// descriptions stay referenced until the child drops the handles.
const FORK_ENTRIES: usize = 1024;

/// One open segment. `fd` says the state: `-1` free, `-2` being filled,
/// `-3` detached in a forked child (until its handle is dropped),
/// otherwise the descriptor, published (Release) after `addr` and `len`.
struct ForkEntry {
    fd: std::sync::atomic::AtomicI32,
    addr: std::sync::atomic::AtomicUsize,
    len: std::sync::atomic::AtomicUsize,
}

static FORK_TABLE: [ForkEntry; FORK_ENTRIES] = [const {
    ForkEntry {
        fd: std::sync::atomic::AtomicI32::new(-1),
        addr: std::sync::atomic::AtomicUsize::new(0),
        len: std::sync::atomic::AtomicUsize::new(0),
    }
}; FORK_ENTRIES];

/// How many `fork()`s lie between the process's start and this process.
#[inline]
pub(crate) fn fork_epoch() -> u32 {
    FORK_EPOCH.load(std::sync::atomic::Ordering::Relaxed)
}

/// A segment's entry in the fork table: dropping it forgets the entry.
/// Declare it before the descriptor and the mapping it names, so it is
/// dropped first (see [`unguard_fork`]).
#[derive(Debug)]
pub(crate) struct ForkGuard(Option<usize>);

impl Drop for ForkGuard {
    fn drop(&mut self) {
        if let Some(entry) = self.0 {
            unguard_fork(entry);
        }
    }
}

/// Records a segment's descriptor and mapping for the fork child handler
/// (installed on first use), as soon as both exist and before any lock is
/// taken through the descriptor, so no fork can hand a child a lock the
/// handler does not know about.
///
/// # References
///  - [POSIX](https://pubs.opengroup.org/onlinepubs/9799919799/functions/pthread_atfork.html)
pub(crate) fn guard_fork(fd: &OwnedFd, map: &Mapping) -> ForkGuard {
    ForkGuard(register_fork(fd, map))
}

fn register_fork(fd: &OwnedFd, map: &Mapping) -> Option<usize> {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::Ordering;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // SAFETY: registers a plain `extern "C"` function with no
        // preconditions; it runs in the child of every later fork and
        // makes only async-signal-safe system calls (see below).
        let _ = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    let entry = FORK_TABLE.iter().position(|e| {
        e.fd.compare_exchange(-1, -2, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    })?;
    let e = &FORK_TABLE[entry];
    e.addr.store(map.ptr.as_ptr() as usize, Ordering::Relaxed);
    e.len.store(map.len, Ordering::Relaxed);
    e.fd.store(fd.as_raw_fd(), Ordering::Release);
    Some(entry)
}

/// Forgets a table entry of [`guard_fork`]: call it before the mapping is
/// unmapped and the descriptor closed, so the child handler never touches
/// an address or a number reused since.
fn unguard_fork(entry: usize) {
    if let Some(e) = FORK_TABLE.get(entry) {
        e.fd.store(-1, std::sync::atomic::Ordering::Release);
    }
}

/// Runs in the child right after `fork()`, on the forking thread, where
/// only async-signal-safe calls are allowed: an atomic add, and the
/// system calls `open`, `mmap`, `dup3` and `close` (`mmap` is not on
/// POSIX's list, but on Linux it is a plain system call that takes no
/// user-space lock). It marks every inherited handle as inherited, and
/// detaches the child from the parent's open file descriptions, which
/// hold the parent's registry byte locks: both references go, the
/// descriptor (pointed at `/dev/null`, close-on-exec like the original)
/// and the mapping (replaced in place by private zero pages, so a stale
/// pointer in the child reads zeros instead of faulting, and never reaches
/// the parent's memory).
extern "C" fn after_fork_in_child() {
    use std::sync::atomic::Ordering;
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    // SAFETY: a NUL-terminated path; `open` is async-signal-safe.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    for e in &FORK_TABLE {
        let fd = e.fd.load(Ordering::Acquire);
        if fd < 0 {
            continue;
        }
        let (addr, len) = (
            e.addr.load(Ordering::Relaxed),
            e.len.load(Ordering::Relaxed),
        );
        // SAFETY: `addr..addr + len` is a segment mapping that was live at
        // the fork (entries are cleared before their mapping goes), so
        // `MAP_FIXED` replaces exactly that mapping and nothing else.
        let _ = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if null >= 0 && fd != null {
            // SAFETY: `fd` is a segment descriptor open at the fork
            // (entries are cleared before their descriptor closes), so
            // replacing it closes only our own reference; `dup3` is
            // async-signal-safe.
            let _ = unsafe { libc::dup3(null, fd, libc::O_CLOEXEC) };
        }
        // Detached: a later fork of this child (which may have closed and
        // reused the number since, as daemons do) leaves it alone.
        e.fd.store(-3, Ordering::Relaxed);
    }
    if null >= 0 {
        // SAFETY: `null` is the descriptor opened above; `close` is
        // async-signal-safe.
        let _ = unsafe { libc::close(null) };
    }
}
