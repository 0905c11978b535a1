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
//! The protocol (the state words, and the commit order that delivers each
//! message exactly once to a receiver that returns it, whoever is killed
//! when) is in [`crate::queue::mailbox`]; this module maps it onto a
//! segment, and waits.
//!
//! `send` and `recv` check that the segment still has its size (one
//! `fstat`) before they touch the payload, and again after every wait: a
//! segment another process shrank gives [`Fault::Truncated`](crate::Fault::Truncated) instead of a `SIGBUS`. A shrink racing the
//! access that follows the check can still fault: see "A segment shrunk
//! under us" in [`crate::segment`].

use std::time::{Duration, Instant};

use crate::error::{Fault, RecvTimeoutError, SegmentError, SendTimeoutError};
use crate::layout::Kind;
use crate::options::{self, How, Options};
use crate::primitive::Ordering;
use crate::queue::mailbox::{self as protocol, MailboxState};
use crate::region::Region;
use crate::segment::{Location, Segment, Spec};
use crate::sync::event::{EventWord, MODE_AUTO};
use crate::sync::mutex::{self, MutexWord};
use crate::wait::{recv_forms, send_forms, Wait};

/// Largest message of a mailbox created without `max_message`: 4096 bytes.
pub const DEFAULT_MAILBOX_MAX_MESSAGE: usize = 4096;

const MUTEX_OFFSET: usize = 0;
const FILLED_OFFSET: usize = 128;
const EMPTIED_OFFSET: usize = 256;
const STATE_OFFSET: usize = 384;
const DATA_OFFSET: usize = 512;

/// Longest sleep before a waiter looks at the mailbox again.
const RECHECK: Duration = Duration::from_millis(100);

/// Largest capacity accepted at creation (1 GiB).
const MAX_CAPACITY: usize = 1 << 30;

/// The mailbox's capacity is its layout size; openers accept any.
fn spec(capacity: usize) -> Spec {
    Spec {
        kind: Kind::Mailbox,
        layout: crate::layout::Fingerprint::new("mailbox", capacity as u64, 1),
        check_layout: false,
        min_payload: DATA_OFFSET as u64,
        tokens: |p, f| {
            if let Some(m) = p.get::<MutexWord>(MUTEX_OFFSET) {
                f(m.state.load(Ordering::Relaxed));
            }
        },
        // Its lock is held only inside one call; a dead holder is taken
        // over by the next call, which has nothing to report.
        abandoned: crate::segment::never_abandoned,
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

/// Why a mailbox wait ended without an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Timeout,
    Truncated,
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
/// let tx = Mailbox::options(&name).max_message(4096).create()?;
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

impl options::private::Sealed for Mailbox {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let capacity = o.max_message.unwrap_or(DEFAULT_MAILBOX_MAX_MESSAGE);
        if how != How::Open && (capacity == 0 || capacity > MAX_CAPACITY) {
            return Err(SegmentError::InvalidSize(format!(
                "{}: mailbox max_message {capacity}",
                o.seg.location()?
            )));
        }
        let len = (DATA_OFFSET + capacity) as u64;
        let spec = spec(if how == How::Open { 0 } else { capacity });
        Mailbox::from_segment(Segment::attach(&o.seg, how, &spec, len, init)?)
    }
}
impl options::Attach for Mailbox {}
impl options::HasMaxMessage for Mailbox {}

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

    options::constructors!("a mailbox");

    /// Largest message, in bytes.
    pub fn max_message(&self) -> usize {
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
        self.state().is_full()
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

    /// The `capacity` bytes of the message.
    fn data(&self) -> Region<'_> {
        self.seg
            .payload()
            .sub(DATA_OFFSET, self.capacity)
            .expect("validated at open") // capacity checked against the payload
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
        match mutex::lock(self.mutex(), &self.seg, Wait::Until(deadline)) {
            Ok(_) => Some(MailboxGuard {
                mutex: self.mutex(),
            }),
            Err(_) => None,
        }
    }

    fn send_inner<'m>(&self, msg: &'m [u8], wait: Wait) -> Result<(), SendTimeoutError<&'m [u8]>> {
        match wait {
            Wait::Try => self.send_until(msg, Some(Instant::now()), true),
            Wait::Until(d) => self.send_until(msg, d, false),
        }
    }

    send_forms!(
        /// Stores `msg`, waiting for the mailbox to be empty.
        ///
        /// # Errors
        /// `TooLarge` above [`Mailbox::max_message`] (nothing is cut);
        /// `Fault(Truncated)` when another process shrank the segment.
        /// A mailbox has no receiving side that can leave: `Disconnected`
        /// never happens.
        try_send, send, send_timeout, send_deadline (&self) <'m> (msg: &'m [u8]) -> () = send_inner
    );

    /// The waiting loop both directions share: under the lock, `step`
    /// tries the exchange (store or take); when it cannot yet, sleep on
    /// `changed` (bumped by the other side) and try again. Checks the
    /// segment's size before touching it and after each wait.
    fn exchange<R>(
        &self,
        deadline: Option<Instant>,
        once: bool,
        changed: &EventWord,
        done: &EventWord,
        mut step: impl FnMut() -> Option<R>,
    ) -> Result<R, Stop> {
        loop {
            // Before touching the payload, and again after each wait.
            if !self.seg.is_intact() {
                return Err(Stop::Truncated);
            }
            let seen = changed.seq();
            // A try still waits briefly for the lock: it is only ever held for a copy.
            let lock_deadline = if once {
                Some(Instant::now() + Duration::from_millis(50))
            } else {
                deadline
            };
            let Some(guard) = self.lock(lock_deadline) else {
                if !self.seg.is_intact() {
                    return Err(Stop::Truncated);
                }
                return Err(Stop::Timeout);
            };
            if let Some(r) = step() {
                drop(guard);
                done.bump();
                return Ok(r);
            }
            drop(guard);
            if once || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Stop::Timeout);
            }
            // Sleep in slices and look again under the lock: a peer killed
            // between its commit and its wake-up never rings, and the state
            // under the lock is the truth, not the wake-up.
            let slice = Instant::now() + RECHECK;
            changed.wait_change(
                seen,
                Some(deadline.map_or(slice, |d| d.min(slice))),
                &|| self.seg.is_intact(),
            );
        }
    }

    fn send_until<'m>(
        &self,
        msg: &'m [u8],
        deadline: Option<Instant>,
        once: bool,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        if msg.len() > self.capacity {
            return Err(SendTimeoutError::TooLarge(msg));
        }
        let (emptied, filled) = (self.event(EMPTIED_OFFSET), self.event(FILLED_OFFSET));
        self.exchange(deadline, once, emptied, filled, || {
            protocol::store(self.data(), self.state(), msg).then_some(())
        })
        .map_err(|stop| match stop {
            Stop::Timeout => SendTimeoutError::Timeout(msg),
            Stop::Truncated => SendTimeoutError::Fault(msg, Fault::Truncated),
        })
    }

    fn recv_inner(&self, wait: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        match wait {
            Wait::Try => self.recv_until(Some(Instant::now()), true),
            Wait::Until(d) => self.recv_until(d, false),
        }
    }

    recv_forms!(
        /// Takes the message, waiting for one.
        ///
        /// # Errors
        /// `Fault(BadLength)` when a peer stored a length above the
        /// maximum (the mailbox is emptied); `Fault(Truncated)` when
        /// another process shrank the segment. `Disconnected` never happens.
        try_recv, recv, recv_timeout, recv_deadline (&self) () -> Vec<u8> = recv_inner
    );

    fn recv_until(
        &self,
        deadline: Option<Instant>,
        once: bool,
    ) -> Result<Vec<u8>, RecvTimeoutError> {
        let (filled, emptied) = (self.event(FILLED_OFFSET), self.event(EMPTIED_OFFSET));
        self.exchange(deadline, once, filled, emptied, || {
            protocol::take(self.data(), self.state(), self.capacity)
        })
        .map_err(|stop| match stop {
            Stop::Timeout => RecvTimeoutError::Timeout,
            Stop::Truncated => RecvTimeoutError::Fault(Fault::Truncated),
        })?
        .map_err(RecvTimeoutError::Fault)
    }
}

#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
impl Mailbox {
    /// The async form of `exchange`, without a deadline: the lock (held
    /// by anyone only for a copy) is taken as the blocking form takes it,
    /// the wait for the other side is awaited.
    async fn exchange_async<R>(
        &self,
        changed: &EventWord,
        done: &EventWord,
        mut step: impl FnMut() -> Option<R> + Send,
    ) -> Result<R, Stop> {
        loop {
            if !self.seg.is_intact() {
                return Err(Stop::Truncated);
            }
            let seen = changed.seq();
            // Awaited too: a holder stopped mid-copy must not block the
            // runtime's thread (a dead one is taken over).
            let guard = match mutex::lock_async(self.mutex(), &self.seg).await {
                Ok(_) => MailboxGuard {
                    mutex: self.mutex(),
                },
                Err(_) => return Err(Stop::Truncated),
            };
            if let Some(r) = step() {
                drop(guard);
                done.bump();
                return Ok(r);
            }
            drop(guard);
            let slice = Instant::now().checked_add(RECHECK);
            let seg = &self.seg;
            crate::asyncio::event_change(changed, seen, slice, &|| seg.is_intact()).await;
        }
    }

    /// Stores `msg` once the mailbox is empty, without blocking the thread
    /// (feature `tokio`): the async form of [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send): `TooLarge(msg)`, `Fault(msg, Truncated)`.
    pub async fn send_async<'m>(
        &self,
        msg: &'m [u8],
    ) -> Result<(), crate::error::SendError<&'m [u8]>> {
        use crate::error::SendError;
        if msg.len() > self.capacity {
            return Err(SendError::TooLarge(msg));
        }
        let (emptied, filled) = (self.event(EMPTIED_OFFSET), self.event(FILLED_OFFSET));
        self.exchange_async(emptied, filled, || {
            protocol::store(self.data(), self.state(), msg).then_some(())
        })
        .await
        .map_err(|_| SendError::Fault(msg, Fault::Truncated))
    }

    /// Takes the message, waiting for one without blocking the thread
    /// (feature `tokio`): the async form of [`recv`](Self::recv).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_async(&self) -> Result<Vec<u8>, crate::error::RecvError> {
        use crate::error::RecvError;
        let (filled, emptied) = (self.event(FILLED_OFFSET), self.event(EMPTIED_OFFSET));
        self.exchange_async(filled, emptied, || {
            protocol::take(self.data(), self.state(), self.capacity)
        })
        .await
        .map_err(|_| RecvError::Fault(Fault::Truncated))?
        .map_err(RecvError::Fault)
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

impl crate::waitset::private::Source for Mailbox {
    fn ready(&self, _peers: bool) -> bool {
        self.is_full()
    }

    fn intact(&self) -> bool {
        self.seg.is_intact()
    }

    fn arm(&self) -> Option<(&crate::primitive::AtomicU32, u32)> {
        let w = self.event(FILLED_OFFSET);
        let seen = w.seq();
        w.arm(seen).map(|v| (w.word(), v))
    }
}
impl crate::waitset::Waitable for Mailbox {}
