//! Stub backend: compiles anywhere, and every call fails with `Unsupported`
//! (memmap2's approach), so the portable layers keep building. Under
//! `mapshare_loom` it also stands in for the OS, since loom models only
//! touch heap regions and the loom-aware futex in `primitive`.

#![allow(dead_code)] // Reason: the stub exists to satisfy the contract, not to be called.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::ptr::NonNull;
use std::time::Duration;

use crate::primitive::AtomicU32;

/// An owned descriptor on this platform (never constructed).
#[derive(Debug)]
pub(crate) struct OwnedFd(());

pub(crate) const SHM_DIR: &str = "/dev/shm";

fn unsupported<T>() -> io::Result<T> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[derive(Debug)]
pub(crate) struct Dir(());

impl Dir {
    pub(crate) fn open(_path: &Path) -> io::Result<Dir> {
        unsupported()
    }
    pub(crate) fn shm() -> io::Result<Dir> {
        unsupported()
    }
}

pub(crate) fn shm_dir() -> io::Result<std::path::PathBuf> {
    unsupported()
}

pub(crate) fn is_no_space(_e: &io::Error) -> bool {
    false
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FileInfo {
    pub(crate) size: u64,
    pub(crate) uid: u32,
    pub(crate) mode: u32,
    pub(crate) regular: bool,
}

pub(crate) fn create_exclusive(_dir: &Dir, _name: &str, _mode: u32) -> io::Result<OwnedFd> {
    unsupported()
}
pub(crate) fn open_existing(_dir: &Dir, _name: &str, _writable: bool) -> io::Result<OwnedFd> {
    unsupported()
}
pub(crate) fn rename_noreplace(_dir: &Dir, _from: &str, _to: &str) -> io::Result<()> {
    unsupported()
}
pub(crate) fn unlink(_dir: &Dir, _name: &str) -> io::Result<()> {
    unsupported()
}
pub(crate) fn same_file(_dir: &Dir, _name: &str, _fd: &OwnedFd) -> io::Result<bool> {
    unsupported()
}
pub(crate) fn list(_dir: &Path) -> io::Result<Vec<OsString>> {
    unsupported()
}
pub(crate) fn read_at(_fd: &OwnedFd, _offset: u64, _buf: &mut [u8]) -> io::Result<usize> {
    unsupported()
}
pub(crate) fn fstat(_fd: &OwnedFd) -> io::Result<FileInfo> {
    unsupported()
}
pub(crate) fn reserve(_fd: &OwnedFd, _len: u64) -> io::Result<()> {
    unsupported()
}

#[derive(Debug)]
pub(crate) struct Mapping(());

impl Mapping {
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        NonNull::dangling()
    }
    pub(crate) fn len(&self) -> usize {
        0
    }
}

pub(crate) fn map(_fd: &OwnedFd, _len: usize, _writable: bool) -> io::Result<Mapping> {
    unsupported()
}

/// Under loom: an untimed futex, modelled as "yield until the word is no
/// longer `expected`", so a lost wake-up shows up as a model that never
/// ends. Elsewhere a yield keeps the portable code's loops correct.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
    #[cfg(mapshare_loom)]
    while word.load(crate::primitive::Ordering::SeqCst) == expected {
        loom::thread::yield_now();
    }
    #[cfg(not(mapshare_loom))]
    {
        let _ = (word, expected);
        std::thread::yield_now();
    }
}
pub(crate) fn futex_wake(_word: &AtomicU32, _n: u32) {}
pub(crate) fn lock_byte(_fd: &OwnedFd, _offset: u64) -> io::Result<bool> {
    unsupported()
}
pub(crate) fn unlock_byte(_fd: &OwnedFd, _offset: u64) -> io::Result<()> {
    unsupported()
}
pub(crate) fn byte_range_locked(_fd: &OwnedFd, _start: u64, _len: u64) -> io::Result<bool> {
    unsupported()
}
pub(crate) fn try_flock(_fd: &OwnedFd) -> io::Result<bool> {
    unsupported()
}
pub(crate) fn unflock(_fd: &OwnedFd) -> io::Result<()> {
    unsupported()
}
pub(crate) fn pid() -> u32 {
    std::process::id()
}
pub(crate) fn euid() -> u32 {
    0
}
pub(crate) fn page_size() -> usize {
    4096
}

/// 64 bits from std's randomly keyed hasher (no OS randomness here).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(pid());
    h.finish()
}

pub(crate) fn fork_epoch() -> u32 {
    0
}

#[derive(Debug)]
pub(crate) struct ForkGuard;

pub(crate) fn guard_fork(_fd: &OwnedFd, _map: &Mapping) -> ForkGuard {
    ForkGuard
}

/// One word for [`futex_waitv`] (never used here).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitWord {
    pub(crate) addr: usize,
    pub(crate) expected: u32,
    pub(crate) private: bool,
}

/// How a `futex_waitv` ended.
#[derive(Debug)]
pub(crate) enum Waitv {
    Woken(usize),
    Changed,
    TimedOut,
    Unsupported,
}

/// No `futex_waitv` here: callers fall back to one word at a time.
pub(crate) fn futex_waitv(_words: &[WaitWord], _timeout: Option<Duration>) -> Waitv {
    Waitv::Unsupported
}
