//! The system calls behind the async waits (feature `tokio`): an
//! io_uring ring with `IORING_OP_FUTEX_WAIT` (Linux 6.7+), `futex_waitv`
//! (Linux 5.16+) for the helper-thread fallback, and a plain futex wait by
//! address for the last resort.
//!
//! Every wait here names its word by *address*, never by reference: the
//! kernel reads the word (with fault handling) when the wait is armed and
//! never touches it afterwards, so a wait that outlives the segment's
//! mapping (a cancelled future whose handle was dropped before the kernel
//! reported the cancellation) costs nothing and cannot fault us. No Rust
//! code dereferences these addresses.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// `FUTEX_BITSET_MATCH_ANY`, for io_uring's futex wait.
const MATCH_ANY: u64 = 0xffff_ffff;

pub(crate) use super::backend::{futex_waitv, WaitWord, Waitv, FUTEX2_SIZE_U32};

/// `futex(addr, FUTEX_WAKE_PRIVATE, n)` on a process-local control word.
pub(crate) fn futex_wake_private_addr(addr: usize, n: u32) {
    // SAFETY: FUTEX_WAKE reads no memory; the address only names the queue.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        )
    };
}

/// `futex(addr, FUTEX_WAKE, n)` on a shared word named by address (a
/// stale address is harmless: the kernel checks it).
pub(crate) fn futex_wake_addr(addr: usize, n: u32) {
    // SAFETY: FUTEX_WAKE reads no memory; the address only names the queue.
    let _ = unsafe { libc::syscall(libc::SYS_futex, addr, libc::FUTEX_WAKE, n) };
}

/// `futex(addr, FUTEX_WAIT, expected, timeout)` on a shared word named by
/// address (the last-resort backend, on a blocking thread).
// Reason: `c_long` is `i32` on 32-bit targets, where the conversion can fail.
#[allow(clippy::unnecessary_fallible_conversions)]
pub(crate) fn futex_wait_addr(addr: usize, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::try_from(timeout.subsec_nanos()).unwrap_or(0),
    };
    // SAFETY: the kernel reads the word at `addr` with fault handling (a
    // stale address is EFAULT); `ts` lives across the call.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_futex,
            addr,
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

/// An io_uring ring for futex waits.
pub(crate) struct Uring {
    ring: io_uring::IoUring,
}

impl std::fmt::Debug for Uring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uring")
            .field("fd", &self.ring.as_raw_fd())
            .finish()
    }
}

/// One completion: the operation's tag and its result (`-errno` on error).
pub(crate) type Completion = (u64, i32);

impl Uring {
    /// A ring of `entries` submissions, if the kernel allows io_uring (a
    /// container's seccomp profile often does not) and supports futex
    /// waits on it.
    pub(crate) fn new(entries: u32) -> io::Result<Uring> {
        let ring = io_uring::IoUring::builder().build(entries)?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(io_uring::opcode::FutexWait::CODE)
            || !probe.is_supported(io_uring::opcode::AsyncCancel::CODE)
        {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring without IORING_OP_FUTEX_WAIT (Linux 6.7+)",
            ));
        }
        Ok(Uring { ring })
    }

    /// The ring's descriptor: readable when completions are waiting.
    pub(crate) fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Queues a wait on the shared word at `addr` while it holds
    /// `expected`, tagged `tag`, and submits it: the kernel arms it (reads
    /// the word) before this returns.
    pub(crate) fn wait(&mut self, addr: usize, expected: u32, tag: u64) -> io::Result<()> {
        let sqe = io_uring::opcode::FutexWait::new(
            addr as *const u32,
            u64::from(expected),
            MATCH_ANY,
            FUTEX2_SIZE_U32,
        )
        .build()
        .user_data(tag);
        self.push(&sqe)
    }

    /// Asks the kernel to cancel the operation tagged `tag`; its
    /// completion (`-ECANCELED`, or its result if it won the race) still
    /// arrives. The cancel itself completes under tag `u64::MAX`.
    pub(crate) fn cancel(&mut self, tag: u64) -> io::Result<()> {
        let sqe = io_uring::opcode::AsyncCancel::new(tag)
            .build()
            .user_data(u64::MAX);
        self.push(&sqe)
    }

    fn push(&mut self, sqe: &io_uring::squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: a futex wait or cancel entry refers to no buffer of
            // ours: the futex address is read by the kernel when the entry
            // is submitted (below, before we return) and never written.
            let pushed = unsafe { self.ring.submission().push(sqe) }.is_ok();
            if pushed {
                self.ring.submit()?;
                return Ok(());
            }
            // Full: hand the queue to the kernel and try again.
            self.ring.submit()?;
        }
    }

    /// Takes every completion waiting, flushing the kernel's overflow
    /// backlog too (a full completion queue stalls the ring until it is
    /// flushed by entering the kernel).
    pub(crate) fn completions(&mut self, out: &mut Vec<Completion>) {
        loop {
            {
                let cq = self.ring.completion();
                out.extend(cq.map(|c| (c.user_data(), c.result())));
            }
            if !self.ring.submission().cq_overflow() {
                return;
            }
            // GETEVENTS with nothing to wait for flushes the backlog.
            if self.ring.submit_and_wait(0).is_err() {
                return;
            }
        }
    }
}
