//! Publish/subscribe: one [`Publisher`], up to [`MAX_SUBSCRIBERS`]
//! [`Subscriber`]s that join and leave at any time, each reading every
//! message at its own pace, on a segment of kind
//! [`Kind::PubSub`].
//!
//! The protocol is the broadcast ring of [`crate::queue::broadcast`]; this
//! module maps it onto a segment. Payload layout:
//!
//! ```text
//!     0  Control     geometry (copied out and validated on open), publisher token, joins
//!   128  TailLine    the publisher's next position; the cursor it waits for (want)
//!   256  Doorbell    subscribers sleep here when they have read everything
//!   384  Doorbell    a lossless publisher sleeps here when the ring is full
//!   512  SubSlot     x MAX_SUBSCRIBERS (128 bytes each): owner token, cursor
//! 16896  slots       x capacity, `stride` words each: seq | len | 6 reserved | data (64-byte aligned)
//! ```
//!
//! No system call on the fast path: a publish is a copy, a few stores and a
//! `swap` of the tail (plus, lossless, one load of `joins` and a cached
//! check of the slowest cursor), and the doorbell is rung (one futex wake)
//! only when its sleepers bit says someone may sleep.

use std::ops::Deref;
use std::time::Duration;

use crate::error::{
    Fault, RecvTimeoutError, SegmentError, SendError, SendTimeoutError, TrySendError,
};
use crate::layout::{Fingerprint, Kind};
use crate::options::{self, How, Options};
use crate::queue::broadcast::{
    Control, Geometry, Lent, PubFail, PubState, Recv, Ring, SubSlot, SubState, TailLine,
};
use crate::region::{Region, View, ViewMut};
use crate::segment::{Location, Segment, SegmentOptions, Spec};
use crate::sync::doorbell::{Doorbell, WaitStrategy};
use crate::wait::{recv_forms, send_forms, send_try, Wait};

pub use crate::queue::broadcast::{Policy, MAX_SUBSCRIBERS};

const CTL_OFFSET: usize = 0;
const TAIL_OFFSET: usize = 128;
const DATA_BELL_OFFSET: usize = 256;
const ROOM_BELL_OFFSET: usize = 384;
const SUBS_OFFSET: usize = 512;
const SLOTS_OFFSET: usize = SUBS_OFFSET + MAX_SUBSCRIBERS * std::mem::size_of::<SubSlot>();

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(SLOTS_OFFSET == 16896);

/// How often a waiting subscriber asks the registry whether the publisher
/// is still alive: a killed publisher is reported as
/// [`RecvError::Disconnected`](crate::RecvError::Disconnected) within this time.
const PEER_POLL: Duration = Duration::from_millis(50);

/// The same for async subscribers: longer, since thousands of them may
/// each wake this often.
#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
const ASYNC_PEER_POLL: Duration = Duration::from_millis(200);

/// Default ring capacity, in messages.
pub(crate) const DEFAULT_CAPACITY: usize = 256;
/// Default largest message, in bytes.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 4096;

fn geometry<K>(o: &Options<K>) -> Result<Geometry, SegmentError> {
    let capacity = o.capacity.unwrap_or(DEFAULT_CAPACITY);
    let max_message = o.max_message.unwrap_or(DEFAULT_MAX_MESSAGE);
    Geometry::new(capacity, max_message, o.policy, o.base)
        .filter(|g| payload_len(g).is_some())
        .ok_or_else(|| {
            SegmentError::InvalidSize(format!("pubsub capacity {capacity} x {max_message} bytes"))
        })
}

fn payload_len(g: &Geometry) -> Option<u64> {
    let bytes = g.words()?.checked_mul(8)?;
    u64::try_from(SLOTS_OFFSET.checked_add(bytes)?).ok()
}

fn spec(max_message: usize) -> Spec {
    Spec {
        kind: Kind::PubSub,
        // Informational: the geometry lives in the control line.
        layout: Fingerprint::new("pubsub", max_message as u64, 8),
        check_layout: false,
        min_payload: SLOTS_OFFSET as u64,
        tokens: |p, f| {
            if let Some(c) = p.get::<Control>(CTL_OFFSET) {
                f(c.publisher_token());
            }
            for s in p
                .slice::<SubSlot>(SUBS_OFFSET, MAX_SUBSCRIBERS)
                .unwrap_or_default()
            {
                f(s.owner_token());
            }
        },
        abandoned: crate::segment::never_abandoned,
    }
}

/// The ring in a payload, if every part fits.
fn ring_in(p: Region<'_>, g: Geometry) -> Option<Ring<'_>> {
    Ring::new(
        p.get::<Control>(CTL_OFFSET)?,
        p.get::<TailLine>(TAIL_OFFSET)?,
        p.get::<Doorbell>(DATA_BELL_OFFSET)?,
        p.get::<Doorbell>(ROOM_BELL_OFFSET)?,
        p.slice::<SubSlot>(SUBS_OFFSET, MAX_SUBSCRIBERS)?,
        p.slice(SLOTS_OFFSET, g.words()?)?,
        g,
    )
}

/// An attached pub/sub segment with its validated geometry.
#[derive(Debug)]
struct Topic {
    seg: Segment,
    g: Geometry,
    wait: WaitStrategy,
}

impl Topic {
    fn attach(seg: Segment, wait: WaitStrategy) -> Result<Topic, SegmentError> {
        let bad = |what| SegmentError::Header {
            name: seg.location().to_string(),
            error: crate::error::HeaderError::BadSize { what },
        };
        let payload = seg.payload();
        let ctl = payload
            .get::<Control>(CTL_OFFSET)
            .ok_or_else(|| bad("pubsub control line"))?;
        if !ctl.has_format() {
            return Err(bad(
                "pubsub ring format (made by an earlier build of mapshare 0.2: re-create it)",
            ));
        }
        let g = Geometry::read(ctl).ok_or_else(|| bad("pubsub geometry"))?;
        if ring_in(payload, g).is_none() {
            return Err(bad("pubsub ring runs past the payload"));
        }
        Ok(Topic { seg, g, wait })
    }

    fn attach_as<K>(o: &Options<K>, how: How) -> Result<Topic, SegmentError> {
        if how == How::Open {
            return Topic::attach(Segment::open(&o.seg, &spec(0))?, o.wait);
        }
        let g = geometry(o)?;
        let len = payload_len(&g).unwrap_or(u64::MAX);
        let seg = Segment::attach(&o.seg, how, &spec(g.max_message), len, |p| {
            if let Some(r) = ring_in(p, g) {
                r.init();
            }
        })?;
        Topic::attach(seg, o.wait)
    }

    fn ring(&self) -> Ring<'_> {
        ring_in(self.seg.payload(), self.g).expect("checked at attach") // the mapping never changes
    }

    /// What a ring's answer means to the caller.
    fn outcome(&self, got: Recv, len: usize) -> Result<usize, RecvTimeoutError> {
        match got {
            Recv::Message => Ok(len),
            Recv::Lagged(n) => Err(RecvTimeoutError::Lagged(n)),
            Recv::Empty => Err(RecvTimeoutError::Timeout),
            Recv::Disconnected => Err(RecvTimeoutError::Disconnected),
            Recv::Truncated => Err(RecvTimeoutError::Fault(Fault::Truncated)),
            Recv::Corrupt { pos, len: 0 } => {
                Err(RecvTimeoutError::Fault(Fault::BadSlot { position: pos }))
            }
            Recv::Corrupt { len, .. } => Err(RecvTimeoutError::Fault(Fault::BadLength {
                len,
                max: self.g.max_message as u64,
            })),
        }
    }

    /// The sample of a successful [`Ring::try_lend`].
    fn sample<'a>(
        &'a self,
        st: &'a mut SubState,
        scratch: &'a [u8],
        lent: Option<Lent>,
    ) -> SubSample<'a> {
        match lent {
            Some(Lent::InPlace { pos, len }) => {
                let view = self
                    .seg
                    .payload()
                    .view(SLOTS_OFFSET + self.ring().data_offset(pos), len)
                    .expect("slot inside the ring"); // len <= max_message, geometry checked
                SubSample {
                    view,
                    hold: Some(Hold {
                        topic: self,
                        st,
                        pos,
                    }),
                }
            }
            // Copied (or, never, nothing: an empty view).
            _ => SubSample {
                view: View::local(scratch),
                hold: None,
            },
        }
    }

    fn stats(&self) -> PubSubStats {
        let r = self.ring();
        let tail = r.tail();
        let (_, publisher_alive) = r.publisher_state(&self.seg);
        let subscribers = r
            .subscribers(&self.seg)
            .into_iter()
            .map(|s| SubscriberStats {
                slot: s.slot,
                pid: s.pid,
                behind: tail.wrapping_sub(s.cursor),
                missed: s.missed,
                alive: s.alive,
            })
            .collect();
        PubSubStats {
            capacity: self.g.capacity,
            max_message: self.g.max_message,
            policy: self.g.policy,
            published: r.published(),
            publisher_alive,
            subscribers,
        }
    }
}

/// The publishing end of a pub/sub ring: one per ring at a time.
///
/// Publishing never makes a system call unless a subscriber sleeps. With
/// [`Policy::Lossless`] a publish waits while the slowest live subscriber
/// is a full ring behind; a subscriber killed meanwhile is dropped within a
/// few milliseconds. A publisher that has to sleep for room waits for room
/// for a quarter of the ring (one wake-up, then a batch of publishes
/// without waiting), or at most 5 ms for room for one. With
/// [`Policy::OverwriteOldest`] it never waits.
///
/// Dropping the publisher gives the role up: waiting subscribers see
/// [`RecvError::Disconnected`](crate::RecvError::Disconnected) once they have read everything, and a
/// new publisher may open the ring and continue the stream.
#[derive(Debug)]
pub struct Publisher {
    topic: Topic,
    st: PubState,
    /// Where a loan is staged on an overwrite-oldest ring.
    stage: Vec<u8>,
}

impl Publisher {
    options::constructors!("a pub/sub ring, as its publisher,");

    fn claim(topic: Topic) -> Result<Publisher, SegmentError> {
        match topic.ring().claim_publisher(&topic.seg) {
            Ok(st) => Ok(Publisher {
                topic,
                st,
                stage: Vec::new(),
            }),
            Err(_) => Err(SegmentError::TooManyAttached(format!(
                "{}: a live publisher is attached",
                topic.seg.location()
            ))),
        }
    }

    /// Publishes `msg` to every subscriber without blocking the thread
    /// (feature `tokio`): the async form of [`publish`](Self::publish). A
    /// lossless ring waits (awaiting) while the slowest live subscriber is
    /// a full ring behind; dropping the future before it completes
    /// publishes nothing.
    ///
    /// # Errors
    /// As [`publish`](Self::publish): `TooLarge(msg)`, `Fault(msg, Truncated)`.
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn publish_async<'m>(
        &mut self,
        msg: &'m [u8],
    ) -> Result<(), crate::error::SendError<&'m [u8]>> {
        use crate::error::SendError;
        let r = self.topic.ring();
        match r
            .publish_async(&mut self.st, msg, &self.topic.seg, ASYNC_PEER_POLL)
            .await
        {
            Ok(()) => Ok(()),
            Err(PubFail::TooLarge) => Err(SendError::TooLarge(msg)),
            Err(_) => Err(SendError::Fault(msg, Fault::Truncated)),
        }
    }

    fn publish_inner<'m>(
        &mut self,
        msg: &'m [u8],
        wait: Wait,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        let strategy = wait.until().map(|deadline| (self.topic.wait, deadline));
        let r = self.topic.ring();
        match r.publish(&mut self.st, msg, &self.topic.seg, strategy) {
            Ok(()) => Ok(()),
            Err(PubFail::TooLarge) => Err(SendTimeoutError::TooLarge(msg)),
            Err(PubFail::Full) => Err(SendTimeoutError::Timeout(msg)),
            Err(PubFail::Truncated) => Err(SendTimeoutError::Fault(msg, Fault::Truncated)),
        }
    }

    send_forms!(
        /// Publishes `msg` to every subscriber. A lossless ring waits while
        /// the slowest live subscriber is a full ring behind; an
        /// overwrite-oldest ring never waits. Publishing with no subscriber
        /// is not an error: the message is dropped in the ring.
        ///
        /// # Errors
        /// `TooLarge` above [`Publisher::max_message`].
        try_publish, publish, publish_timeout, publish_deadline (&mut self) <'m> (msg: &'m [u8]) -> () = publish_inner
    );

    fn loan_inner(&mut self, wait: Wait) -> Result<PubLoan<'_>, SendTimeoutError<()>> {
        let strategy = wait.until().map(|deadline| (self.topic.wait, deadline));
        let Publisher { topic, st, stage } = self;
        let topic: &Topic = topic;
        let r = topic.ring();
        match r.wait_room(st, &topic.seg, strategy) {
            Ok(()) => {}
            Err(PubFail::Full) => return Err(SendTimeoutError::Timeout(())),
            Err(_) => return Err(SendTimeoutError::Fault((), Fault::Truncated)),
        }
        let max = topic.g.max_message;
        let view = if r.lends() {
            r.begin(st);
            let off = SLOTS_OFFSET + r.data_offset(st.tail());
            topic
                .seg
                .payload()
                .view_mut(off, max)
                .expect("slot inside the ring") // geometry checked at attach
        } else {
            if stage.len() < max {
                stage.resize(max, 0); // once: later loans reuse it as it is
            }
            ViewMut::local(&mut stage[..max])
        };
        Ok(PubLoan { topic, st, view })
    }

    /// Lends the next slot of the ring for writing in place (zero-copy
    /// publish), waiting for room as [`publish`](Self::publish) does:
    /// write the message through the [`ViewMut`] it derefs to (of
    /// [`max_message`](Self::max_message) bytes), then [`PubLoan::commit`].
    /// Dropped without a commit, nothing is published.
    ///
    /// On a lossless ring the bytes go straight into the slot. On an
    /// overwrite-oldest ring they are staged in the publisher's own memory
    /// and copied on commit: a lapped subscriber may be reading the slot
    /// (the publisher never waits for one), so only the seqlock's own copy
    /// may write it.
    ///
    /// # Errors
    /// `Fault(Truncated)` if a peer shrank the segment.
    pub fn loan(&mut self) -> Result<PubLoan<'_>, SendError<()>> {
        // Without a deadline the wait for room ends only with room or a
        // shrunk segment.
        self.loan_inner(Wait::FOREVER).map_err(|e| match e {
            SendTimeoutError::Fault((), f) => SendError::Fault((), f),
            _ => SendError::Fault((), Fault::Contended), // never: no deadline
        })
    }

    /// As [`Publisher::loan`], without waiting.
    ///
    /// # Errors
    /// `Full` (lossless: a live subscriber is a full ring behind), `Fault`.
    pub fn try_loan(&mut self) -> Result<PubLoan<'_>, TrySendError<()>> {
        self.loan_inner(Wait::Try).map_err(send_try)
    }

    /// As [`Publisher::loan`], waiting at most `timeout` (any `Duration`).
    ///
    /// # Errors
    /// `Timeout`, `Fault`.
    pub fn loan_timeout(&mut self, timeout: Duration) -> Result<PubLoan<'_>, SendTimeoutError<()>> {
        self.loan_inner(Wait::timeout(timeout))
    }

    /// As [`Publisher::loan`], waiting until `deadline` at most.
    ///
    /// # Errors
    /// `Timeout`, `Fault`.
    pub fn loan_deadline(
        &mut self,
        deadline: std::time::Instant,
    ) -> Result<PubLoan<'_>, SendTimeoutError<()>> {
        self.loan_inner(Wait::deadline(deadline))
    }

    /// Waits for room without blocking the thread, then lends the slot
    /// (feature `tokio`): the async form of [`loan`](Self::loan).
    ///
    /// # Errors
    /// As [`loan`](Self::loan).
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn loan_async(&mut self) -> Result<PubLoan<'_>, SendError<()>> {
        loop {
            let r = self.topic.ring();
            r.wait_room_async(&mut self.st, &self.topic.seg, ASYNC_PEER_POLL)
                .await
                .map_err(|_| SendError::Fault((), Fault::Truncated))?;
            // Room can go again only if a subscriber rejoins behind us
            // (its slot was freed by a peer breaking the protocol): wait
            // again then. The check borrows nothing, so the loop may.
            if r.wait_room(&mut self.st, &self.topic.seg, None).is_ok() {
                break;
            }
        }
        self.loan_inner(Wait::Try).map_err(|e| match e {
            SendTimeoutError::Fault((), f) => SendError::Fault((), f),
            _ => SendError::Fault((), Fault::Contended), // never: room was there just now
        })
    }

    /// Live subscribers (asks the registry about each: a system call apiece).
    pub fn subscriber_count(&self) -> usize {
        self.topic
            .ring()
            .subscribers(&self.topic.seg)
            .iter()
            .filter(|s| s.alive)
            .count()
    }

    /// Messages published on this ring since it was created.
    pub fn published(&self) -> u64 {
        self.st.tail().wrapping_sub(self.topic.g.base)
    }

    /// Messages the ring holds.
    pub fn capacity(&self) -> usize {
        self.topic.g.capacity
    }

    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.topic.g.max_message
    }

    /// The ring's policy.
    pub fn policy(&self) -> Policy {
        self.topic.g.policy
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.topic.seg.location()
    }

    /// Capacity, subscribers and their lag (a snapshot).
    pub fn stats(&self) -> PubSubStats {
        self.topic.stats()
    }
}

impl options::private::Sealed for Publisher {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        Publisher::claim(Topic::attach_as(o, how)?)
    }
}
impl options::Attach for Publisher {}
impl options::HasCapacity for Publisher {}
impl options::HasMaxMessage for Publisher {}
impl options::HasPolicy for Publisher {}

impl options::private::Sealed for Subscriber {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let topic = Topic::attach_as(o, how)?;
        let joined = topic
            .ring()
            .join(&topic.seg, std::process::id(), o.history as u64);
        match joined {
            Some(st) => Ok(Subscriber {
                topic,
                st,
                scratch: Vec::new(),
            }),
            None => Err(SegmentError::TooManyAttached(format!(
                "{}: all {MAX_SUBSCRIBERS} subscriber slots are held",
                topic.seg.location()
            ))),
        }
    }
}
impl options::Attach for Subscriber {}
impl options::HasCapacity for Subscriber {}
impl options::HasMaxMessage for Subscriber {}
impl options::HasPolicy for Subscriber {}
impl options::HasHistory for Subscriber {}

impl Drop for Publisher {
    fn drop(&mut self) {
        if !self.topic.seg.is_intact() {
            return; // shrunk by a peer: its words are gone (SIGBUS if touched)
        }
        self.topic.ring().release_publisher(&self.st);
    }
}

/// A receiving end of a pub/sub ring. It receives every message published
/// after it joined, in order, at its own pace.
///
/// With [`Policy::OverwriteOldest`], a subscriber that falls a full ring
/// behind gets [`RecvError::Lagged`](crate::RecvError::Lagged) with the number of messages it
/// missed, then the oldest message still in the ring.
#[derive(Debug)]
pub struct Subscriber {
    topic: Topic,
    st: SubState,
    /// Where a sample of an overwrite-oldest ring is copied to.
    scratch: Vec<u8>,
}

impl Subscriber {
    options::constructors!("a pub/sub ring, as a subscriber,");

    fn recv_into_inner(
        &mut self,
        buf: &mut Vec<u8>,
        wait: Wait,
    ) -> Result<usize, RecvTimeoutError> {
        let strategy = wait.until().map(|deadline| (self.topic.wait, deadline));
        let r = self.topic.ring();
        let got = r.recv(&mut self.st, buf, &self.topic.seg, strategy, PEER_POLL);
        if got != Recv::Message {
            buf.clear();
        }
        self.topic.outcome(got, buf.len())
    }

    /// Takes the next message without blocking the thread (feature
    /// `tokio`): the async form of [`recv`](Self::recv), with the same
    /// errors. Dropping the future cancels the wait and loses nothing.
    ///
    /// # Errors
    /// As [`recv`](Self::recv) (a killed publisher is noticed within about
    /// 200 ms).
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn recv_async(&mut self) -> Result<Vec<u8>, crate::error::RecvError> {
        let mut buf = Vec::new();
        self.recv_into_async(&mut buf).await.map(|_| buf)
    }

    /// This subscriber as a [`Stream`](futures_core::Stream) of messages
    /// (feature `tokio`), ending once the publisher has gone and
    /// everything is read; `Lagged` comes through as an item.
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub fn into_stream(self) -> crate::asyncio::MessageStream<Subscriber> {
        crate::asyncio::MessageStream::new(self, |mut sub| {
            Box::pin(async move {
                let r = sub.recv_async().await;
                (sub, r)
            })
        })
    }

    /// Like [`recv_async`](Self::recv_async), into `buf`; returns the
    /// message's length.
    ///
    /// # Errors
    /// As [`recv_async`](Self::recv_async).
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn recv_into_async(
        &mut self,
        buf: &mut Vec<u8>,
    ) -> Result<usize, crate::error::RecvError> {
        let r = self.topic.ring();
        let got = r
            .recv_async(&mut self.st, &self.topic.seg, ASYNC_PEER_POLL, |r, st| {
                r.try_recv(st, buf)
            })
            .await;
        if got != Recv::Message {
            buf.clear();
        }
        self.topic
            .outcome(got, buf.len())
            .map_err(crate::wait::recv_blocking)
    }

    fn recv_inner(&mut self, wait: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        let mut buf = Vec::new();
        self.recv_into_inner(&mut buf, wait).map(|_| buf)
    }

    recv_forms!(
        /// Takes the next message, copied into a new `Vec`.
        ///
        /// # Errors
        /// `Disconnected` once nothing is left and no live publisher holds
        /// the ring (it left or died; a new one may take over, so receiving
        /// again is allowed). A subscriber that joined a ring no publisher
        /// held waits for one instead: it is disconnected only after a
        /// publisher has come and gone; `Lagged(missed)` on an overwrite-oldest ring
        /// that lapped us; `Fault` for a corrupt slot (skipped).
        try_recv, recv, recv_timeout, recv_deadline (&mut self) () -> Vec<u8> = recv_inner
    );

    recv_forms!(
        /// Takes the next message into `buf` (replacing its contents; no
        /// allocation once `buf` has grown to the largest message). Returns
        /// its length.
        ///
        /// # Errors
        /// As [`Subscriber::recv`]; `buf` is then empty.
        try_recv_into, recv_into, recv_into_timeout, recv_into_deadline (&mut self) (buf: &mut Vec<u8>) -> usize = recv_into_inner
    );

    fn recv_ref_inner(&mut self, wait: Wait) -> Result<SubSample<'_>, RecvTimeoutError> {
        let strategy = wait.until().map(|deadline| (self.topic.wait, deadline));
        let Subscriber { topic, st, scratch } = self;
        let topic: &Topic = topic;
        let r = topic.ring();
        let mut lent = None;
        // The ring lends in place where it can (lossless, paced), else
        // copies into our scratch buffer (a seqlock cannot lend).
        let got = r.recv_with(st, &topic.seg, strategy, PEER_POLL, |r, st| {
            r.try_lend(st, &mut lent, scratch)
        });
        topic.outcome(got, 0)?;
        Ok(topic.sample(st, scratch, lent))
    }

    recv_forms!(
        /// Lends the next message (zero-copy on a lossless ring): the
        /// [`SubSample`] derefs to a [`View`] of it (whose methods copy)
        /// and keeps the publisher off its slot until dropped; the next
        /// receive waits for the drop (it borrows the subscriber).
        ///
        /// On a lossless ring the view is of the slot itself, so holding a
        /// sample holds the publisher back once it is a ring ahead (a
        /// killed subscriber's hold is dropped with it). On an
        /// overwrite-oldest ring the publisher never waits, so a seqlock
        /// cannot lend: the sample is a validated copy in the subscriber's
        /// own memory (no allocation once it has grown to the largest
        /// message).
        ///
        /// # Errors
        /// As [`Subscriber::recv`].
        try_recv_ref, recv_ref, recv_ref_timeout, recv_ref_deadline (&mut self) () -> SubSample<'_> = recv_ref_inner
    );

    /// Lends the next message without blocking the thread (feature
    /// `tokio`): the async form of [`recv_ref`](Self::recv_ref).
    ///
    /// # Errors
    /// As [`recv_async`](Self::recv_async).
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn recv_ref_async(&mut self) -> Result<SubSample<'_>, crate::error::RecvError> {
        let Subscriber { topic, st, scratch } = self;
        let topic: &Topic = topic;
        let r = topic.ring();
        let mut lent = None;
        let got = r
            .recv_async(st, &topic.seg, ASYNC_PEER_POLL, |r, st| {
                r.try_lend(st, &mut lent, scratch)
            })
            .await;
        topic.outcome(got, 0).map_err(crate::wait::recv_blocking)?;
        Ok(topic.sample(st, scratch, lent))
    }

    /// Messages published that this subscriber has not read yet (more than
    /// the capacity means it has lagged: the excess is lost).
    pub fn behind(&self) -> u64 {
        let ahead = self.topic.ring().tail().wrapping_sub(self.st.cursor());
        if ahead > i64::MAX as u64 {
            0 // a tail behind us is garbage
        } else {
            ahead
        }
    }

    /// Whether a live publisher holds the ring (asks the registry).
    pub fn publisher_alive(&self) -> bool {
        self.topic.ring().publisher_state(&self.topic.seg).1
    }

    /// Messages the ring holds.
    pub fn capacity(&self) -> usize {
        self.topic.g.capacity
    }

    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.topic.g.max_message
    }

    /// The ring's policy.
    pub fn policy(&self) -> Policy {
        self.topic.g.policy
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.topic.seg.location()
    }

    /// Capacity, subscribers and their lag (a snapshot).
    pub fn stats(&self) -> PubSubStats {
        self.topic.stats()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if !self.topic.seg.is_intact() {
            return; // shrunk by a peer: its words are gone (SIGBUS if touched)
        }
        self.topic.ring().leave(&mut self.st);
    }
}

/// A slot lent by [`Publisher::loan`]: write the message with
/// [`write_at`](Self::write_at), [`write_pod`](Self::write_pod) or through
/// [`view_mut`](Self::view_mut), then [`PubLoan::commit`] it. It derefs to
/// its [`ViewMut`] for reading back only: the view cannot leave the loan
/// to be written after the commit.
/// Dropped without a commit, nothing is published (subscribers never see
/// the slot).
///
/// ```compile_fail
/// # fn f(a: &mut mapshare::Publisher, b: &mut mapshare::Publisher) {
/// let (mut x, mut y) = (a.try_loan().unwrap(), b.try_loan().unwrap());
/// std::mem::swap(&mut *x, &mut *y); // error: no `DerefMut`
/// # }
/// ```
#[derive(Debug)]
#[must_use = "nothing is published until the loan is committed"]
pub struct PubLoan<'a> {
    topic: &'a Topic,
    st: &'a mut PubState,
    view: ViewMut<'a>,
}

impl<'a> Deref for PubLoan<'a> {
    type Target = ViewMut<'a>;
    fn deref(&self) -> &ViewMut<'a> {
        &self.view
    }
}

crate::region::loan_writes!(PubLoan);

impl PubLoan<'_> {
    /// Publishes the first `len` bytes of the slot (clamped to its length)
    /// to every subscriber.
    pub fn commit(self, len: usize) {
        let len = len.min(self.view.len());
        let r = self.topic.ring();
        if !r.lends() {
            // Staged in our memory: copy it in as `publish` does, through a
            // buffer on the stack (its length a multiple of the word).
            if let Some(data) = r.begin(self.st) {
                let mut chunk = [0u8; 1024];
                for (i, words) in data.chunks(chunk.len() / 8).enumerate() {
                    let off = i * chunk.len();
                    let n = len.saturating_sub(off).min(chunk.len());
                    if n == 0 {
                        break;
                    }
                    self.view.read_at(off, &mut chunk[..n]);
                    crate::queue::broadcast::store_bytes(words, &chunk[..n]);
                }
            }
        }
        r.finish(self.st, len);
    }
}

/// A message lent by [`Subscriber::recv_ref`]: it derefs to a [`View`]
/// (whose methods copy) and, on a lossless ring, keeps the publisher off
/// its slot until dropped. The view cannot outlive the sample:
///
/// ```compile_fail
/// # fn f(sub: &mut mapshare::Subscriber) {
/// let sample = sub.try_recv_ref().unwrap();
/// let view = *sample; // error: `View` is not `Copy`
/// drop(sample);
/// view.to_vec();
/// # }
/// ```
#[derive(Debug)]
#[must_use = "the message is consumed when the sample is dropped"]
pub struct SubSample<'a> {
    view: View<'a>,
    /// The slot held (lent in place); `None` for a copy.
    hold: Option<Hold<'a>>,
}

/// What a sample lent in place gives back when dropped.
#[derive(Debug)]
struct Hold<'a> {
    topic: &'a Topic,
    st: &'a mut SubState,
    pos: u64,
}

impl<'a> Deref for SubSample<'a> {
    type Target = View<'a>;
    fn deref(&self) -> &View<'a> {
        &self.view
    }
}

impl SubSample<'_> {
    /// Whether the view is of the slot itself (a lossless ring) rather
    /// than of a validated copy.
    pub fn is_in_place(&self) -> bool {
        self.hold.is_some()
    }
}

impl Drop for SubSample<'_> {
    fn drop(&mut self) {
        let Some(h) = self.hold.as_mut() else {
            return;
        };
        if h.topic.seg.forked() {
            return; // the parent's hold, inherited through fork(): not ours to release
        }
        h.topic.ring().consume(h.st, h.pos);
    }
}

/// What `mapshare info` shows about a pub/sub ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubStats {
    /// Messages the ring holds.
    pub capacity: usize,
    /// Largest message in bytes.
    pub max_message: usize,
    /// The ring's policy.
    pub policy: Policy,
    /// Messages published since creation.
    pub published: u64,
    /// Whether a live publisher holds the ring.
    pub publisher_alive: bool,
    /// Subscriber slots in use (dead ones included until they are freed).
    pub subscribers: Vec<SubscriberStats>,
}

impl PubSubStats {
    /// Queue depth: the most messages any live subscriber has yet to read,
    /// at most the capacity.
    pub fn depth(&self) -> u64 {
        self.subscribers
            .iter()
            .filter(|s| s.alive && s.behind <= i64::MAX as u64)
            .map(|s| s.behind.min(self.capacity as u64))
            .max()
            .unwrap_or(0)
    }
}

/// One subscriber slot, as [`PubSubStats`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Slot index.
    pub slot: usize,
    /// PID it recorded when it joined (informational).
    pub pid: u32,
    /// Messages published that it has not read (above the capacity: lagging).
    pub behind: u64,
    /// Messages it was told it missed (overwrite-oldest rings).
    pub missed: u64,
    /// Whether its process is alive.
    pub alive: bool,
}

/// Reads the statistics of the pub/sub ring `opts` names.
///
/// It attaches to the segment for the duration of the call (so it shows in
/// the registry meanwhile), and reads only: no role is taken, nothing in
/// the ring is written.
///
/// # Errors
/// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`] (not a
/// pub/sub ring), [`SegmentError::Header`] (corrupt geometry), ...
pub fn pubsub_stats(at: &Location) -> Result<PubSubStats, SegmentError> {
    let seg = Segment::open(&SegmentOptions::at(at), &spec(0))?;
    let topic = Topic::attach(seg, WaitStrategy::default())?;
    Ok(topic.stats())
}

impl crate::waitset::private::Source for Subscriber {
    fn ready(&self, peers: bool) -> bool {
        let peers: Option<&dyn crate::sync::Liveness> =
            if peers { Some(&self.topic.seg) } else { None };
        self.topic.ring().poll_ready(&self.st, peers)
    }

    fn intact(&self) -> bool {
        self.topic.seg.is_intact()
    }

    fn arm(&self) -> Option<(&crate::primitive::AtomicU32, u32)> {
        let bell = self.topic.ring().data_bell();
        bell.arm().map(|v| (bell.word(), v))
    }
}
impl crate::waitset::Waitable for Subscriber {}
