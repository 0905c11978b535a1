//! [`Receiver`] and its zero-copy [`Sample`].

use std::ops::Deref;

use super::{
    busy, bytes_layout, Channel, PeerWatch, DEFAULT_MAX_MESSAGE, EVER_RECEIVER, EVER_SENDER,
    RX_BELL_OFFSET, SENDERS_POLL, TX_BELL_OFFSET,
};
use crate::error::{Fault, RecvTimeoutError, SegmentError};
use crate::options::{self, How, Options};
use crate::primitive::Ordering;
use crate::queue::spsc;
use crate::region::View;
use crate::segment::Location;
use crate::sync::Liveness;
use crate::wait::{recv_forms, Wait};

/// A lane with a message at its head, and the message's length as
/// `spsc::readable` copied it out (`Err` for a corrupt one).
type Ready = (usize, Result<usize, u64>);

/// The receiving end: the one receiver of a channel, draining every lane
/// round-robin.
///
/// Receiving copies the message out ([`Receiver::recv`],
/// [`Receiver::recv_into`]) or lends it in place ([`Receiver::recv_ref`]:
/// a [`Sample`] whose [`View`] copies on access, so no safe code ever
/// holds a slice that a peer could change).
#[derive(Debug)]
pub struct Receiver {
    pub(super) ch: Channel,
    heads: Vec<u64>,
    next: usize,
    senders: PeerWatch,
}

impl options::private::Sealed for Receiver {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let max = o.max_message.unwrap_or(DEFAULT_MAX_MESSAGE);
        Receiver::claim(Channel::attach(o, how, max, bytes_layout(max), false)?)
    }
}
impl options::Attach for Receiver {}
impl options::HasCapacity for Receiver {}
impl options::HasMaxMessage for Receiver {}
impl options::HasSenders for Receiver {}

impl Receiver {
    options::constructors!("a channel, as its receiver,");

    pub(super) fn claim(ch: Channel) -> Result<Receiver, SegmentError> {
        let me = ch.seg.token();
        let ctl = ch.ctl();
        let owner = ctl.receiver.load(Ordering::Acquire);
        let free = owner == 0 || !ch.seg.is_alive(owner);
        // Free or dead -> ours; the CAS on the exact value makes one claimant win.
        if !(free
            && ctl
                .receiver
                .compare_exchange(owner, me, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok())
        {
            return Err(busy(&ch, "a live receiver is attached"));
        }
        let heads = (0..ch.g.lanes)
            .map(|l| spsc::recover_head(ch.lane(l)))
            .collect();
        ch.announce(EVER_RECEIVER);
        Ok(Receiver {
            ch,
            heads,
            next: 0,
            senders: PeerWatch::default(),
        })
    }

    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.ch.g.max_message
    }

    /// Where the channel lives.
    pub fn location(&self) -> &Location {
        self.ch.seg.location()
    }

    /// Queue depth and lane owners (a snapshot).
    pub fn stats(&self) -> super::ChannelStats {
        self.ch.stats()
    }

    /// The lane holding the next message, round-robin, if any, with what
    /// `readable` found there (the length, or a corrupt one).
    #[inline]
    fn ready_lane(&self) -> Option<Ready> {
        let lanes = self.ch.g.lanes;
        (0..lanes)
            .map(|k| (self.next + k) % lanes)
            .find_map(|l| spsc::readable(&self.ch.slots(l), self.heads[l]).map(|len| (l, len)))
    }

    /// Whether every sender has gone: dropped (seen at once: a sender's
    /// drop changes `conn`, and only then is the verdict formed again) or,
    /// with `ask`, killed (asks the registry about each owned lane, at most
    /// every `SENDERS_POLL`). Never before a sender has attached.
    #[inline]
    fn senders_gone(&mut self, ask: bool) -> bool {
        let ch = &self.ch;
        let ctl = ch.ctl();
        if ctl.ever.load(Ordering::Acquire) & EVER_SENDER == 0 {
            return false;
        }
        let judge = || {
            (0..ch.g.lanes).all(|l| {
                // SYNC(conn): Acquire pairs with the sender's CAS in its
                // drop: after a 0 we see every message it committed.
                let owner = ch.lane(l).owner.load(Ordering::Acquire);
                owner == 0 || !ch.seg.is_alive(owner)
            })
        };
        let conn = ctl.conn.load(Ordering::Acquire);
        if ask {
            self.senders.gone(conn, SENDERS_POLL, judge)
        } else {
            self.senders.gone_if_changed(conn, judge)
        }
    }

    /// Finds the next message, waiting as `wait` says. A message waiting
    /// costs no more than finding it; an empty channel one load of `conn`
    /// before the wait, and a look at the senders' liveness between slices
    /// of `SENDERS_POLL`.
    #[inline]
    fn wait_ready(&mut self, wait: Wait) -> Result<Ready, RecvTimeoutError> {
        if let Some(r) = self.ready_lane() {
            return Ok(r);
        }
        let gone = |me: &Self| me.ready_lane().ok_or(RecvTimeoutError::Disconnected);
        if self.senders_gone(false) {
            // Gone: deliver what they committed before they went.
            return gone(self);
        }
        let Some(deadline) = wait.until() else {
            return if self.senders_gone(true) {
                gone(self)
            } else {
                Err(RecvTimeoutError::Timeout)
            };
        };
        loop {
            // Slices, to notice a killed sender (nobody rings for it).
            let conn = self.ch.ctl().conn.load(Ordering::Relaxed);
            let mut found = None;
            let me = &*self;
            me.ch.bell(RX_BELL_OFFSET).wait_until(
                me.ch.wait,
                deadline,
                Some(SENDERS_POLL),
                &|| me.ch.seg.intact(),
                || {
                    found = me.ready_lane();
                    found.is_some() || me.ch.ctl().conn.load(Ordering::Relaxed) != conn
                },
            );
            if let Some(r) = found {
                return Ok(r);
            }
            if !self.ch.seg.intact() {
                return Err(RecvTimeoutError::Fault(Fault::Truncated));
            }
            if self.senders_gone(true) {
                return gone(self);
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
        }
    }

    /// Frees the slot at the head of `lane` (its message is done with).
    #[inline]
    fn release(&mut self, lane: usize) {
        release(&self.ch, &mut self.heads, &mut self.next, lane);
    }

    /// Copies the ready message out with `copy` and frees its slot. Uses
    /// the length `ready_lane` copied out and never looks at the slot's
    /// words again: a peer breaking the protocol could change them between
    /// two looks.
    #[inline]
    fn take<R>(
        &mut self,
        (lane, len): Ready,
        copy: impl FnOnce(View<'_>) -> R,
    ) -> Result<R, RecvTimeoutError> {
        let out = match len {
            Ok(len) => {
                let slots = self.ch.slots(lane);
                let i = spsc::index(&slots, self.heads[lane]);
                let view = slots
                    .region
                    .view(slots.data_offset(i), len)
                    .expect("len <= max_message"); // checked by readable
                Ok(copy(view))
            }
            Err(len) => Err(RecvTimeoutError::Fault(Fault::BadLength {
                len,
                max: self.ch.g.max_message as u64,
            })),
        };
        self.release(lane);
        out
    }

    #[inline]
    fn recv_inner(&mut self, wait: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        let ready = self.wait_ready(wait)?;
        self.take(ready, |v| v.to_vec())
    }

    #[inline]
    fn recv_into_inner(
        &mut self,
        buf: &mut Vec<u8>,
        wait: Wait,
    ) -> Result<usize, RecvTimeoutError> {
        buf.clear();
        let ready = self.wait_ready(wait)?;
        self.take(ready, |v| {
            buf.resize(v.len(), 0);
            v.copy_to_slice(buf);
            v.len()
        })
    }

    #[inline]
    pub(super) fn recv_ref_inner(&mut self, wait: Wait) -> Result<Sample<'_>, RecvTimeoutError> {
        let (lane, len) = self.wait_ready(wait)?;
        let len = match len {
            Ok(len) => len,
            Err(bad) => {
                self.release(lane);
                return Err(RecvTimeoutError::Fault(Fault::BadLength {
                    len: bad,
                    max: self.ch.g.max_message as u64,
                }));
            }
        };
        let Receiver {
            ch, heads, next, ..
        } = self;
        let ch: &Channel = ch;
        let slots = ch.slots(lane);
        let i = spsc::index(&slots, heads[lane]);
        let view = slots
            .region
            .view(slots.data_offset(i), len)
            .expect("len <= max_message"); // checked by readable
        Ok(Sample {
            ch,
            heads,
            next,
            lane,
            view,
        })
    }

    recv_forms!(
        /// Takes the next message, copied out into a new `Vec`.
        ///
        /// # Errors
        /// `Disconnected` once every sender has gone and nothing is left;
        /// `Fault` for a corrupt slot (skipped).
        try_recv, recv, recv_timeout, recv_deadline (&mut self) () -> Vec<u8> = recv_inner
    );

    recv_forms!(
        /// Takes the next message into `buf` (replacing its contents; no
        /// allocation once `buf` has grown to the largest message). Returns
        /// its length.
        ///
        /// # Errors
        /// As [`Receiver::recv`]; `buf` is then empty.
        try_recv_into, recv_into, recv_into_timeout, recv_into_deadline (&mut self) (buf: &mut Vec<u8>) -> usize = recv_into_inner
    );

    recv_forms!(
        /// Lends the next message in place (zero-copy): the [`Sample`]
        /// holds its slot until dropped; read it through its [`View`].
        ///
        /// # Errors
        /// As [`Receiver::recv`].
        try_recv_ref, recv_ref, recv_ref_timeout, recv_ref_deadline (&mut self) () -> Sample<'_> = recv_ref_inner
    );

    /// Messages waiting, summed over the lanes (a snapshot).
    pub fn len(&self) -> usize {
        (0..self.ch.g.lanes)
            .map(|l| {
                let tail = self.ch.lane(l).tail.load(Ordering::Relaxed);
                (tail.wrapping_sub(self.heads[l]) as usize).min(self.ch.g.capacity)
            })
            .sum()
    }

    /// Whether no message is waiting (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.ready_lane().is_none()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if !self.ch.seg.intact() {
            return; // shrunk by a peer: its words are gone (SIGBUS if touched)
        }
        let me = self.ch.seg.token();
        // Ours -> none. SYNC(conn): pairs with the senders' Acquire load.
        let _ = self
            .ch
            .ctl()
            .receiver
            .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
        self.ch.announce(0);
    }
}

/// A received message, in place in its slot: it derefs to a [`View`]
/// (whose methods copy), and frees the slot when dropped. The view cannot
/// be taken out of the sample to outlive it:
///
/// ```compile_fail
/// # fn f(rx: &mut mapshare::Receiver) {
/// let sample = rx.try_recv_ref().unwrap();
/// let view = *sample; // error: `View` is not `Copy`
/// drop(sample);
/// view.to_vec();
/// # }
/// ```
#[derive(Debug)]
#[must_use = "the message is consumed when the sample is dropped"]
pub struct Sample<'a> {
    ch: &'a Channel,
    heads: &'a mut Vec<u64>,
    next: &'a mut usize,
    lane: usize,
    view: View<'a>,
}

impl<'a> Deref for Sample<'a> {
    type Target = View<'a>;
    fn deref(&self) -> &View<'a> {
        &self.view
    }
}

impl Drop for Sample<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.ch.seg.forked() {
            return; // the parent's slot, inherited through fork(): not ours to release
        }
        release(self.ch, self.heads, self.next, self.lane);
    }
}

/// Frees the slot at the head of `lane`, moves the round-robin on and
/// wakes a sender waiting for room.
#[inline]
fn release(ch: &Channel, heads: &mut [u64], next: &mut usize, lane: usize) {
    let head = heads[lane];
    heads[lane] = spsc::release(ch.lane(lane), head);
    *next = if lane + 1 == ch.g.lanes { 0 } else { lane + 1 };
    ch.bell(TX_BELL_OFFSET).ring();
}

/// How often an async receiver asks the registry whether its senders
/// live (no one rings for a killed sender). Longer than the blocking
/// form's slice: thousands of async waiters each wake this often.
#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
const ASYNC_SENDERS_POLL: std::time::Duration = std::time::Duration::from_millis(200);

#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
impl Receiver {
    /// Takes the next message, waiting as long as it takes without
    /// blocking the thread (feature `tokio`): the async form of
    /// [`recv`](Self::recv), with the same errors. Dropping the future
    /// cancels the wait and loses nothing: a message is taken only when
    /// the future completes. Combine with `tokio::time::timeout` for a
    /// deadline.
    ///
    /// # Errors
    /// As [`recv`](Self::recv): `Disconnected` once every sender has gone
    /// (a killed one within about 200 ms) and the lanes are drained;
    /// `Fault` for what a peer broke.
    pub async fn recv_async(&mut self) -> Result<Vec<u8>, crate::error::RecvError> {
        let ready = self
            .wait_ready_async()
            .await
            .map_err(crate::wait::recv_blocking)?;
        self.take(ready, |v| v.to_vec())
            .map_err(crate::wait::recv_blocking)
    }

    /// Like [`recv_async`](Self::recv_async), into `buf` (cleared first);
    /// returns the message's length.
    ///
    /// # Errors
    /// As [`recv_async`](Self::recv_async).
    pub async fn recv_into_async(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<usize, crate::error::RecvError> {
        buf.clear();
        let ready = self
            .wait_ready_async()
            .await
            .map_err(crate::wait::recv_blocking)?;
        self.take(ready, |v| {
            buf.resize(v.len(), 0);
            v.copy_to_slice(buf);
            v.len()
        })
        .map_err(crate::wait::recv_blocking)
    }

    /// This receiver as a [`Stream`](futures_core::Stream) of messages
    /// (feature `tokio`), ending once every sender has gone and the lanes
    /// are drained.
    pub fn into_stream(self) -> crate::asyncio::MessageStream<Receiver> {
        crate::asyncio::MessageStream::new(self, |mut rx| {
            Box::pin(async move {
                let r = rx.recv_async().await;
                (rx, r)
            })
        })
    }

    /// The async form of `wait_ready`: the same checks, with the doorbell
    /// sleep awaited instead of blocking.
    async fn wait_ready_async(&mut self) -> Result<Ready, RecvTimeoutError> {
        loop {
            if let Some(r) = self.ready_lane() {
                return Ok(r);
            }
            if self.senders_gone(true) {
                return self.ready_lane().ok_or(RecvTimeoutError::Disconnected);
            }
            let conn = self.ch.ctl().conn.load(Ordering::Relaxed);
            let slice = std::time::Instant::now().checked_add(ASYNC_SENDERS_POLL);
            let mut found = None;
            let me = &*self;
            crate::asyncio::bell_wait(
                me.ch.bell(RX_BELL_OFFSET),
                slice,
                &|| me.ch.seg.intact(),
                || {
                    found = me.ready_lane();
                    found.is_some() || me.ch.ctl().conn.load(Ordering::Relaxed) != conn
                },
            )
            .await;
            if let Some(r) = found {
                return Ok(r);
            }
            if !self.ch.seg.intact() {
                return Err(RecvTimeoutError::Fault(Fault::Truncated));
            }
        }
    }
}

impl crate::waitset::private::Source for Receiver {
    fn ready(&self, peers: bool) -> bool {
        if self.ready_lane().is_some() {
            return true;
        }
        let ch = &self.ch;
        if ch.ctl().ever.load(Ordering::Acquire) & EVER_SENDER == 0 {
            return false; // waits for its first sender
        }
        // Every sender dropped (owner 0) or, asking the registry, killed.
        (0..ch.g.lanes).all(|l| {
            let owner = ch.lane(l).owner.load(Ordering::Acquire);
            owner == 0 || (peers && !ch.seg.is_alive(owner))
        })
    }

    fn intact(&self) -> bool {
        self.ch.seg.is_intact()
    }

    fn arm(&self) -> Option<(&crate::primitive::AtomicU32, u32)> {
        let bell = self.ch.bell(RX_BELL_OFFSET);
        bell.arm().map(|v| (bell.word(), v))
    }
}
impl crate::waitset::Waitable for Receiver {}
