//! [`Mailbox`]: a segment holding at most one byte message.
//!
//! Payload layout:
//!
//! ```text
//!   0  MutexWord      guards `full`, `len` and the data
//! 128  EventWord      "filled": bumped after a message is stored
//! 256  EventWord      "emptied": bumped after a message is taken
//! 384  MailboxState   full flag, length, counters
//! 512  data           `capacity` bytes (capacity = header layout size)
//! ```
//!
//! A message is committed by setting `full` *after* its bytes and length,
//! and taken by clearing `full` *after* copying it out, both under the
//! mutex. So a sender killed mid-write leaves the mailbox empty (nothing was
//! sent), and a receiver killed mid-read leaves the message in place for the
//! next receiver: each message is delivered exactly once to a receiver that
//! returns it.
//!
//! `send` and `recv` check that the segment still has its size (one
//! `fstat`) before they touch the payload, and again after every wait: a
//! segment another process shrank gives [`SendError::Truncated`] /
//! [`RecvError::Truncated`] instead of a `SIGBUS`. A shrink racing the
//! access that follows the check can still fault: see "A segment shrunk
//! under us" in [`crate::segment`].

use std::time::{Duration, Instant};

use crate::error::{RecvError, SegmentError, SendError};
use crate::layout::Kind;
use crate::named::guard_result;
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::region::Region;
use crate::segment::{Location, Segment, SegmentOptions, Spec};
use crate::sync::event::{EventWord, MODE_AUTO};
use crate::sync::mutex::{self, MutexWord, Wait};

/// Capacity of a mailbox created without one: 4096 bytes.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 4096;

const MUTEX_OFFSET: usize = 0;
const FILLED_OFFSET: usize = 128;
const EMPTIED_OFFSET: usize = 256;
const STATE_OFFSET: usize = 384;
const DATA_OFFSET: usize = 512;

/// Longest sleep before a waiter looks at the mailbox again.
const RECHECK: Duration = Duration::from_millis(100);

/// Largest capacity accepted at creation (1 GiB).
const MAX_CAPACITY: usize = 1 << 30;

/// The mailbox's shared words.
///
/// | word | meaning |
/// |---|---|
/// | `full` | 0 empty, 1 holds a message (anything else: treated as full, length checked) |
/// | `len` | message length in bytes; checked against the capacity on every read |
/// | `sent`, `received` | message counters (informational) |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct MailboxState {
    full: AtomicU32,
    _r: AtomicU32,
    len: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    _pad: [u64; 12],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<MailboxState>() == 128);

/// The mailbox's capacity is its layout size; openers accept any.
fn spec(capacity: usize) -> Spec {
    Spec {
        kind: Kind::Mailbox,
        layout: crate::layout::Fingerprint::new("mailbox", capacity as u64, 1),
        check_layout: false,
        min_payload: DATA_OFFSET as u64,
    }
}

fn init(p: Region<'_>) {
    if let Some(m) = p.get::<MutexWord>(MUTEX_OFFSET) {
        m.init();
    }
    for off in [FILLED_OFFSET, EMPTIED_OFFSET] {
        if let Some(e) = p.get::<EventWord>(off) {
            e.init(MODE_AUTO);
        }
    }
}

/// One message at a time, between processes, by name.
///
/// `send` waits (with a timeout) until the mailbox is empty; `recv` waits
/// (with a timeout) until it holds a message. Each message is delivered
/// exactly once. A message larger than the capacity is refused, never cut.
///
/// # Examples
/// ```
/// use mapshare::Mailbox;
/// use std::time::Duration;
/// # let name = format!("doc-mailbox-{}", std::process::id());
/// let tx = Mailbox::create(&name, 4096)?;
/// let rx = Mailbox::open(&name)?;
/// tx.send_timeout("grüß dich 👋".as_bytes(), Duration::from_secs(1)).unwrap();
/// assert_eq!(rx.recv_timeout(Duration::from_secs(1)).unwrap(), "grüß dich 👋".as_bytes());
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug)]
pub struct Mailbox {
    seg: Segment,
    capacity: usize,
}

impl Mailbox {
    fn from_segment(seg: Segment) -> Result<Mailbox, SegmentError> {
        let h = seg.header();
        // The capacity is the recorded layout size, and must fit the payload.
        let capacity = h.layout.size();
        if h.payload_len < DATA_OFFSET as u64 + capacity || capacity > MAX_CAPACITY as u64 {
            return Err(SegmentError::Header {
                name: seg.location().to_string(),
                error: crate::error::HeaderError::BadSize {
                    what: "mailbox capacity past the payload",
                },
            });
        }
        Ok(Mailbox {
            seg,
            capacity: capacity as usize,
        })
    }

    fn check_capacity(opts: &SegmentOptions, capacity: usize) -> Result<u64, SegmentError> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(SegmentError::InvalidSize(format!(
                "{}: mailbox capacity {capacity}",
                opts.location()?
            )));
        }
        Ok((DATA_OFFSET + capacity) as u64)
    }

    /// Creates the mailbox `name`, empty, holding messages of up to `capacity` bytes.
    ///
    /// # Errors
    /// [`SegmentError::AlreadyExists`], [`SegmentError::InvalidSize`] (0 or above 1 GiB), ...
    pub fn create(name: &str, capacity: usize) -> Result<Mailbox, SegmentError> {
        Mailbox::create_with(&SegmentOptions::new(name), capacity)
    }

    /// Creates a mailbox as `opts` says.
    ///
    /// # Errors
    /// As [`Mailbox::create`].
    pub fn create_with(opts: &SegmentOptions, capacity: usize) -> Result<Mailbox, SegmentError> {
        let len = Mailbox::check_capacity(opts, capacity)?;
        Mailbox::from_segment(Segment::create(opts, &spec(capacity), len, init)?)
    }

    /// Opens the existing mailbox `name`, whatever its capacity.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`], ...
    pub fn open(name: &str) -> Result<Mailbox, SegmentError> {
        Mailbox::open_with(&SegmentOptions::new(name))
    }

    /// Opens a mailbox as `opts` says.
    ///
    /// # Errors
    /// As [`Mailbox::open`].
    pub fn open_with(opts: &SegmentOptions) -> Result<Mailbox, SegmentError> {
        Mailbox::from_segment(Segment::open(opts, &spec(0))?)
    }

    /// Opens a mailbox, or creates it with `capacity` if it does not exist.
    ///
    /// # Errors
    /// As [`Mailbox::open`] and [`Mailbox::create`].
    pub fn open_or_create_with(
        opts: &SegmentOptions,
        capacity: usize,
    ) -> Result<Mailbox, SegmentError> {
        let len = Mailbox::check_capacity(opts, capacity)?;
        Mailbox::from_segment(Segment::open_or_create(opts, &spec(capacity), len, init)?)
    }

    /// Largest message, in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    /// Makes the mailbox outlive its last process (`true`), or go with it
    /// (`false`). Done under the attach lock: a receiver that created a
    /// non-persistent mailbox and gives up cannot remove it once a sender
    /// has made it persistent.
    ///
    /// # Errors
    /// [`SegmentError::Busy`] if a peer holds the attach lock too long.
    pub fn set_persistent(&self, yes: bool) -> Result<(), SegmentError> {
        self.seg.set_persistent(yes)
    }

    /// Whether the mailbox outlives its last process.
    pub fn is_persistent(&self) -> bool {
        self.seg.is_persistent()
    }

    /// Whether a message is waiting (a snapshot).
    pub fn is_full(&self) -> bool {
        self.state().full.load(Ordering::Acquire) != 0
    }

    fn mutex(&self) -> &MutexWord {
        self.seg
            .payload()
            .get::<MutexWord>(MUTEX_OFFSET)
            .expect("validated at open") // min_payload checked
    }

    fn event(&self, off: usize) -> &EventWord {
        self.seg
            .payload()
            .get::<EventWord>(off)
            .expect("validated at open") // min_payload checked
    }

    fn state(&self) -> &MailboxState {
        self.seg
            .payload()
            .get::<MailboxState>(STATE_OFFSET)
            .expect("validated at open") // min_payload checked
    }

    /// Locks the mailbox; a dead holder's lock is taken over (the commit
    /// order makes the state consistent whatever it was doing).
    fn lock(&self, deadline: Option<Instant>) -> Option<MailboxGuard<'_>> {
        let r = mutex::lock(self.mutex(), &self.seg, Wait::Until(deadline));
        match guard_result(r, || MailboxGuard {
            mutex: self.mutex(),
        }) {
            Ok(g) => Some(g),
            Err(crate::error::LockError::OwnerDied(g)) => Some(g),
            Err(_) => None,
        }
    }

    /// Stores `msg` if the mailbox is empty, without waiting for room.
    ///
    /// # Errors
    /// [`SendError::Full`], [`SendError::TooLarge`], [`SendError::Truncated`].
    pub fn try_send(&self, msg: &[u8]) -> Result<(), SendError> {
        match self.send_until(msg, Some(Instant::now()), true) {
            Err(SendError::Timeout) => Err(SendError::Full),
            r => r,
        }
    }

    /// Stores `msg`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// [`SendError::TooLarge`], [`SendError::Truncated`].
    pub fn send(&self, msg: &[u8]) -> Result<(), SendError> {
        self.send_until(msg, None, false)
    }

    /// Stores `msg`, waiting for room at most `timeout`.
    ///
    /// # Errors
    /// [`SendError::Timeout`], [`SendError::TooLarge`], [`SendError::Truncated`].
    pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.send_until(msg, Some(Instant::now() + timeout), false)
    }

    /// Stores `msg`, waiting for room until `deadline`.
    ///
    /// # Errors
    /// [`SendError::Timeout`], [`SendError::TooLarge`], [`SendError::Truncated`].
    pub fn send_deadline(&self, msg: &[u8], deadline: Instant) -> Result<(), SendError> {
        self.send_until(msg, Some(deadline), false)
    }

    fn send_until(
        &self,
        msg: &[u8],
        deadline: Option<Instant>,
        once: bool,
    ) -> Result<(), SendError> {
        if msg.len() > self.capacity {
            return Err(SendError::TooLarge {
                len: msg.len(),
                capacity: self.capacity,
            });
        }
        let emptied = self.event(EMPTIED_OFFSET);
        loop {
            // Before touching the payload, and again after each wait.
            if !self.seg.is_intact() {
                return Err(SendError::Truncated);
            }
            let seen = emptied.seq();
            // A try still waits briefly for the lock: it is only ever held for a copy.
            let lock_deadline = if once {
                Some(Instant::now() + Duration::from_millis(50))
            } else {
                deadline
            };
            let guard = self.lock(lock_deadline).ok_or(SendError::Timeout)?;
            let st = self.state();
            if st.full.load(Ordering::Relaxed) == 0 {
                self.seg.payload().write(DATA_OFFSET, msg);
                st.len.store(msg.len() as u64, Ordering::Relaxed);
                st.sent.fetch_add(1, Ordering::Relaxed);
                // SYNC(mailbox): Release commits the bytes; pairs with the
                // Acquire load of `full` in `recv_until` (and the mutex).
                st.full.store(1, Ordering::Release);
                drop(guard);
                self.event(FILLED_OFFSET).bump();
                return Ok(());
            }
            drop(guard);
            if once || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendError::Timeout);
            }
            // Sleep in slices and look again under the lock: a peer killed
            // between its commit and its wake-up never rings, and the state
            // under the lock is the truth, not the wake-up.
            let slice = Instant::now() + RECHECK;
            emptied.wait_change(seen, Some(deadline.map_or(slice, |d| d.min(slice))));
        }
    }

    /// Takes the message if there is one, without waiting.
    ///
    /// # Errors
    /// [`RecvError::Empty`], [`RecvError::Corrupt`], [`RecvError::Truncated`].
    pub fn try_recv(&self) -> Result<Vec<u8>, RecvError> {
        match self.recv_until(Some(Instant::now()), true) {
            Err(RecvError::Timeout) => Err(RecvError::Empty),
            r => r,
        }
    }

    /// Takes the next message, waiting as long as it takes.
    ///
    /// # Errors
    /// [`RecvError::Corrupt`], [`RecvError::Truncated`].
    pub fn recv(&self) -> Result<Vec<u8>, RecvError> {
        self.recv_until(None, false)
    }

    /// Takes the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`], [`RecvError::Corrupt`], [`RecvError::Truncated`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        self.recv_until(Some(Instant::now() + timeout), false)
    }

    /// Takes the next message, waiting until `deadline`.
    ///
    /// # Errors
    /// [`RecvError::Timeout`], [`RecvError::Corrupt`], [`RecvError::Truncated`].
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Vec<u8>, RecvError> {
        self.recv_until(Some(deadline), false)
    }

    fn recv_until(&self, deadline: Option<Instant>, once: bool) -> Result<Vec<u8>, RecvError> {
        let filled = self.event(FILLED_OFFSET);
        loop {
            // Before touching the payload, and again after each wait.
            if !self.seg.is_intact() {
                return Err(RecvError::Truncated);
            }
            let seen = filled.seq();
            let lock_deadline = if once {
                Some(Instant::now() + Duration::from_millis(50))
            } else {
                deadline
            };
            let guard = self.lock(lock_deadline).ok_or(RecvError::Timeout)?;
            let st = self.state();
            // SYNC(mailbox): pairs with the Release store in `send_until`.
            if st.full.load(Ordering::Acquire) != 0 {
                // Copy the length out once, then check it.
                let len = st.len.load(Ordering::Relaxed);
                let result = if len > self.capacity as u64 {
                    Err(RecvError::Corrupt {
                        len,
                        capacity: self.capacity as u64,
                    })
                } else {
                    let mut buf = vec![0u8; len as usize];
                    if self.seg.payload().read(DATA_OFFSET, &mut buf) {
                        Ok(buf)
                    } else {
                        Err(RecvError::Corrupt {
                            len,
                            capacity: self.capacity as u64,
                        })
                    }
                };
                st.received.fetch_add(1, Ordering::Relaxed);
                st.full.store(0, Ordering::Release);
                drop(guard);
                self.event(EMPTIED_OFFSET).bump();
                return result;
            }
            drop(guard);
            if once || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvError::Timeout);
            }
            // Sleep in slices and look again under the lock: a peer killed
            // between its commit and its wake-up never rings, and the state
            // under the lock is the truth, not the wake-up.
            let slice = Instant::now() + RECHECK;
            filled.wait_change(seen, Some(deadline.map_or(slice, |d| d.min(slice))));
        }
    }
}

struct MailboxGuard<'a> {
    mutex: &'a MutexWord,
}

impl Drop for MailboxGuard<'_> {
    fn drop(&mut self) {
        mutex::unlock(self.mutex);
    }
}
