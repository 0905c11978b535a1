//! [`Sender`] and its zero-copy [`Loan`].

use std::ops::Deref;
use std::time::Instant;

use super::{
    busy, bytes_layout, Channel, PeerWatch, DEFAULT_MAX_MESSAGE, EVER_RECEIVER, EVER_SENDER,
    RECEIVER_POLL, RX_BELL_OFFSET, TX_BELL_OFFSET,
};
use crate::error::{Fault, SegmentError, SendError, SendTimeoutError, TrySendError};
use crate::options::{self, How, Options};
use crate::primitive::Ordering;
use crate::queue::spsc::{self, Producer};
use crate::region::ViewMut;
use crate::segment::Location;
use crate::sync::Liveness;
use crate::wait::{send_blocking, send_forms, send_try, Wait};

/// Why a wait for room ended without room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The receiver has gone.
    Disconnected,
    /// The time ran out.
    Timeout,
    /// The segment shrank while we waited.
    Truncated,
}

/// The sending end of a byte channel: owns one lane.
///
/// # Examples
/// Zero-copy: loan a slot, write in place, commit.
/// ```
/// use mapshare::{Receiver, Sender};
/// # let name = format!("doc-loan-{}", std::process::id());
/// let mut rx = Receiver::options(&name).max_message(1 << 20).create()?;
/// let mut tx = Sender::open(&name)?;
/// let mut slot = tx.try_loan().unwrap();
/// assert!(slot.write_at(0, b"frame"));
/// slot.commit(5);
/// let msg = rx.try_recv_ref().unwrap();
/// assert_eq!(msg.to_vec(), b"frame");
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug)]
pub struct Sender {
    pub(super) ch: Channel,
    lane: usize,
    prod: Producer,
    receiver: PeerWatch,
}

impl options::private::Sealed for Sender {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, crate::error::SegmentError> {
        let max = o.max_message.unwrap_or(DEFAULT_MAX_MESSAGE);
        Sender::claim(Channel::attach(o, how, max, bytes_layout(max), false)?)
    }
}
impl options::Attach for Sender {}
impl options::HasCapacity for Sender {}
impl options::HasMaxMessage for Sender {}
impl options::HasSenders for Sender {}

impl Sender {
    options::constructors!("a channel, as a sender,");

    pub(super) fn claim(ch: Channel) -> Result<Sender, SegmentError> {
        let me = ch.seg.token();
        for lane in 0..ch.g.lanes {
            let words = ch.lane(lane);
            let owner = words.owner.load(Ordering::Acquire);
            let free = owner == 0 || !ch.seg.is_alive(owner);
            // Free or dead owner -> ours; the CAS on the exact value makes one claimant win.
            if free
                && words
                    .owner
                    .compare_exchange(owner, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                let tail = spsc::recover_tail(&ch.slots(lane), words);
                ch.announce(EVER_SENDER);
                return Ok(Sender {
                    ch,
                    lane,
                    prod: Producer::new(tail),
                    receiver: PeerWatch::default(),
                });
            }
        }
        Err(busy(&ch, "every sender lane is held by a live sender"))
    }

    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.ch.g.max_message
    }

    /// Messages this sender can have in flight.
    pub fn capacity(&self) -> usize {
        self.ch.g.capacity
    }

    /// Where the channel lives.
    pub fn location(&self) -> &Location {
        self.ch.seg.location()
    }

    /// Queue depth and lane owners (a snapshot).
    pub fn stats(&self) -> super::ChannelStats {
        self.ch.stats()
    }

    #[inline]
    fn has_room(&mut self) -> bool {
        self.prod
            .can_write(&self.ch.slots(self.lane), self.ch.lane(self.lane))
    }

    /// Whether the receiver has gone: dropped (cheap: one load of a
    /// read-mostly line) or, with `ask`, killed (a system call, at most
    /// every `RECEIVER_POLL`). Never before a receiver has attached.
    #[inline]
    fn receiver_gone(&mut self, ask: bool) -> bool {
        let ctl = self.ch.ctl();
        if ctl.ever.load(Ordering::Relaxed) & EVER_RECEIVER == 0 {
            return false;
        }
        // SYNC(conn): Acquire pairs with the receiver's CAS in its drop.
        let r = ctl.receiver.load(Ordering::Acquire);
        if r == 0 {
            return true;
        }
        if !ask {
            return false;
        }
        let conn = ctl.conn.load(Ordering::Acquire);
        let seg = &self.ch.seg;
        self.receiver.gone(conn, RECEIVER_POLL, || {
            ctl.receiver.load(Ordering::Acquire) == r && !seg.is_alive(r)
        })
    }

    /// Waits for room in our lane. The fast path (room) costs a look at
    /// the receiver's word; a full lane asks the registry about a killed
    /// receiver only between slices of `RECEIVER_POLL`.
    #[inline]
    fn wait_room(&mut self, wait: Wait) -> Result<(), Stop> {
        if self.has_room() {
            return if self.receiver_gone(false) {
                Err(Stop::Disconnected)
            } else {
                Ok(())
            };
        }
        if self.receiver_gone(false) {
            return Err(Stop::Disconnected);
        }
        let Some(deadline) = wait.until() else {
            return Err(if self.receiver_gone(true) {
                Stop::Disconnected
            } else {
                Stop::Timeout
            });
        };
        loop {
            // Slices: nobody rings when a receiver is killed.
            let (ch, lane, prod) = (&self.ch, self.lane, &mut self.prod);
            let (slots, words) = (ch.slots(lane), ch.lane(lane));
            let conn = ch.ctl().conn.load(Ordering::Relaxed);
            let mut room = false;
            ch.bell(TX_BELL_OFFSET).wait_until(
                ch.wait,
                deadline,
                Some(RECEIVER_POLL),
                &|| ch.seg.intact(),
                || {
                    room = prod.can_write(&slots, words);
                    room || ch.ctl().conn.load(Ordering::Relaxed) != conn
                },
            );
            if room {
                return if self.receiver_gone(false) {
                    Err(Stop::Disconnected)
                } else {
                    Ok(())
                };
            }
            if !self.ch.seg.intact() {
                return Err(Stop::Truncated);
            }
            if self.receiver_gone(true) {
                return Err(Stop::Disconnected);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Stop::Timeout);
            }
        }
    }

    #[inline]
    fn push(&mut self, msg: &[u8]) {
        let slots = self.ch.slots(self.lane);
        let i = spsc::index(&slots, self.prod.tail);
        let ok = slots.region.write(slots.data_offset(i), msg);
        debug_assert!(ok);
        self.prod.commit(&slots, self.ch.lane(self.lane), msg.len());
        self.ch.bell(RX_BELL_OFFSET).ring();
    }

    #[inline]
    pub(super) fn send_inner<'m>(
        &mut self,
        msg: &'m [u8],
        wait: Wait,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        if msg.len() > self.ch.g.max_message {
            return Err(SendTimeoutError::TooLarge(msg));
        }
        match self.wait_room(wait) {
            Ok(()) => {
                self.push(msg);
                Ok(())
            }
            Err(Stop::Disconnected) => Err(SendTimeoutError::Disconnected(msg)),
            Err(Stop::Timeout) => Err(SendTimeoutError::Timeout(msg)),
            Err(Stop::Truncated) => Err(SendTimeoutError::Fault(msg, Fault::Truncated)),
        }
    }

    send_forms!(
        /// Sends `msg` (copied into the next slot of our lane).
        ///
        /// # Errors
        /// `Disconnected` (the message handed back) when the receiver has
        /// gone; `TooLarge` for a message above [`Sender::max_message`].
        try_send, send, send_timeout, send_deadline (&mut self) <'m> (msg: &'m [u8]) -> () = send_inner
    );

    #[inline]
    fn loan_inner(&mut self, wait: Wait) -> Result<Loan<'_>, SendTimeoutError<()>> {
        match self.wait_room(wait) {
            Ok(()) => {}
            Err(Stop::Disconnected) => return Err(SendTimeoutError::Disconnected(())),
            Err(Stop::Timeout) => return Err(SendTimeoutError::Timeout(())),
            Err(Stop::Truncated) => return Err(SendTimeoutError::Fault((), Fault::Truncated)),
        }
        let Sender { ch, lane, prod, .. } = self;
        let ch: &Channel = ch;
        let slots = ch.slots(*lane);
        let i = spsc::index(&slots, prod.tail);
        let view = slots
            .region
            .view_mut(slots.data_offset(i), ch.g.max_message)
            .expect("slot inside the lane region"); // geometry checked at attach
        Ok(Loan {
            ch,
            lane: *lane,
            prod,
            view,
        })
    }

    /// Loans the next slot of our lane (zero-copy send), waiting for it as
    /// long as it takes: write the message in place, then [`Loan::commit`].
    ///
    /// # Errors
    /// [`SendError::Disconnected`] when the receiver has gone.
    pub fn loan(&mut self) -> Result<Loan<'_>, SendError<()>> {
        // Two borrows of `self` cannot cross a loop that returns one of
        // them, so wait for room first, then take the loan without waiting.
        loop {
            match self.wait_room(Wait::FOREVER) {
                Ok(()) => break,
                Err(Stop::Disconnected) => return Err(SendError::Disconnected(())),
                Err(Stop::Truncated) => return Err(SendError::Fault((), Fault::Truncated)),
                Err(Stop::Timeout) => {}
            }
        }
        self.loan_inner(Wait::Try)
            .map_err(|e| match send_blocking(e) {
                Ok(e) => e,
                Err(()) => SendError::Disconnected(()), // room vanished: only a peer breaking the protocol
            })
    }

    /// As [`Sender::loan`], without waiting.
    ///
    /// # Errors
    /// `Full`, `Disconnected`.
    pub fn try_loan(&mut self) -> Result<Loan<'_>, TrySendError<()>> {
        self.loan_inner(Wait::Try).map_err(send_try)
    }

    /// As [`Sender::loan`], waiting at most `timeout` (any `Duration`).
    ///
    /// # Errors
    /// `Timeout`, `Disconnected`.
    pub fn loan_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Loan<'_>, SendTimeoutError<()>> {
        self.loan_inner(Wait::timeout(timeout))
    }

    /// As [`Sender::loan`], waiting until `deadline` at most.
    ///
    /// # Errors
    /// `Timeout`, `Disconnected`.
    pub fn loan_deadline(&mut self, deadline: Instant) -> Result<Loan<'_>, SendTimeoutError<()>> {
        self.loan_inner(Wait::deadline(deadline))
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if !self.ch.seg.intact() {
            return; // shrunk by a peer: its words are gone (SIGBUS if touched)
        }
        let me = self.ch.seg.token();
        // Ours -> free. SYNC(conn): Release: a receiver that sees 0 sees
        // every message we committed.
        let _ = self.ch.lane(self.lane).owner.compare_exchange(
            me,
            0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        self.ch.announce(0);
    }
}

/// A slot loaned by [`Sender::loan`]: write the message in place with
/// [`write_at`](Self::write_at), [`write_pod`](Self::write_pod) or through
/// [`view_mut`](Self::view_mut), then [`Loan::commit`] it. It derefs to its
/// [`ViewMut`] for reading back only, so the view cannot leave the loan to
/// be written after the commit:
///
/// ```compile_fail
/// # fn f(a: &mut mapshare::Sender, b: &mut mapshare::Sender) {
/// let (mut x, mut y) = (a.try_loan().unwrap(), b.try_loan().unwrap());
/// std::mem::swap(&mut *x, &mut *y); // error: no `DerefMut`
/// # }
/// ```
///
/// Dropped without a commit, nothing is sent.
#[derive(Debug)]
#[must_use = "nothing is sent until the loan is committed"]
pub struct Loan<'a> {
    ch: &'a Channel,
    lane: usize,
    prod: &'a mut Producer,
    view: ViewMut<'a>,
}

impl<'a> Deref for Loan<'a> {
    type Target = ViewMut<'a>;
    fn deref(&self) -> &ViewMut<'a> {
        &self.view
    }
}

crate::region::loan_writes!(Loan);

impl Loan<'_> {
    /// Publishes the first `len` bytes of the slot (clamped to its length).
    pub fn commit(self, len: usize) {
        let len = len.min(self.view.len());
        let slots = self.ch.slots(self.lane);
        self.prod.commit(&slots, self.ch.lane(self.lane), len);
        self.ch.bell(RX_BELL_OFFSET).ring();
    }
}

/// How often an async sender whose lane is full asks whether the
/// receiver lives (see the receiver's `ASYNC_SENDERS_POLL`).
#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
const ASYNC_RECEIVER_POLL: std::time::Duration = std::time::Duration::from_millis(200);

#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
impl Sender {
    /// Sends `msg` without blocking the thread while the lane is full
    /// (feature `tokio`): the async form of [`send`](Self::send), with the
    /// same errors, which hand the message back. Dropping the future before
    /// it completes sends nothing.
    ///
    /// # Errors
    /// As [`send`](Self::send): `Disconnected(msg)` once the receiver has
    /// gone (a killed one within about 200 ms), `TooLarge(msg)`, `Fault`.
    pub async fn send_async<'m>(
        &mut self,
        msg: &'m [u8],
    ) -> Result<(), crate::error::SendError<&'m [u8]>> {
        if msg.len() > self.ch.g.max_message {
            return Err(SendError::TooLarge(msg));
        }
        match self.wait_room_async().await {
            Ok(()) => {
                self.push(msg);
                Ok(())
            }
            Err(Stop::Disconnected) => Err(SendError::Disconnected(msg)),
            Err(_) => Err(SendError::Fault(msg, Fault::Truncated)),
        }
    }

    /// Waits for a free slot without blocking the thread, then lends it
    /// (feature `tokio`): the async form of [`loan`](Self::loan).
    ///
    /// # Errors
    /// As [`loan`](Self::loan).
    pub async fn loan_async(&mut self) -> Result<Loan<'_>, SendError<()>> {
        match self.wait_room_async().await {
            Ok(()) => {}
            Err(Stop::Disconnected) => return Err(SendError::Disconnected(())),
            Err(_) => return Err(SendError::Fault((), Fault::Truncated)),
        }
        self.loan_inner(Wait::Try)
            .map_err(|e| match send_blocking(e) {
                Ok(e) => e,
                Err(()) => SendError::Disconnected(()), // room vanished: only a peer breaking the protocol
            })
    }

    /// The async form of `wait_room` without a deadline.
    async fn wait_room_async(&mut self) -> Result<(), Stop> {
        loop {
            if self.has_room() {
                return if self.receiver_gone(false) {
                    Err(Stop::Disconnected)
                } else {
                    Ok(())
                };
            }
            if self.receiver_gone(true) {
                return Err(Stop::Disconnected);
            }
            let (ch, lane, prod) = (&self.ch, self.lane, &mut self.prod);
            let (slots, words) = (ch.slots(lane), ch.lane(lane));
            let conn = ch.ctl().conn.load(Ordering::Relaxed);
            let slice = Instant::now().checked_add(ASYNC_RECEIVER_POLL);
            crate::asyncio::bell_wait(ch.bell(TX_BELL_OFFSET), slice, &|| ch.seg.intact(), || {
                prod.can_write(&slots, words) || ch.ctl().conn.load(Ordering::Relaxed) != conn
            })
            .await;
            if !self.ch.seg.intact() {
                return Err(Stop::Truncated);
            }
        }
    }
}
