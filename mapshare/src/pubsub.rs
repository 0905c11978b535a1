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
//!   128  TailLine    the publisher's next position
//!   256  Doorbell    subscribers sleep here when they have read everything
//!   384  Doorbell    a lossless publisher sleeps here when the ring is full
//!   512  SubSlot     x MAX_SUBSCRIBERS (128 bytes each): owner token, cursor
//! 16896  slots       x capacity, `stride` words each: seq | len | data
//! ```
//!
//! No system call on the fast path: a publish is a copy, a few stores and a
//! `swap` of the tail (plus, lossless, one load of `joins` and a cached
//! check of the slowest cursor), and the doorbell is rung (one futex wake)
//! only when its `sleepers` count says someone sleeps.

use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{PubSubRecvError, PublishError, SegmentError};
use crate::layout::{Fingerprint, Kind};
use crate::queue::broadcast::{
    Control, Geometry, PubFail, PubState, Recv, Ring, SubSlot, SubState, TailLine,
};
use crate::region::Region;
use crate::segment::{Location, Segment, SegmentOptions, Spec};
use crate::sync::doorbell::{Doorbell, WaitStrategy};

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
/// [`PubSubRecvError::Disconnected`] within this time.
const PEER_POLL: Duration = Duration::from_millis(50);

/// How to create or open a pub/sub ring: the segment, its geometry (used
/// when creating) and how this handle waits.
///
/// # Examples
/// ```
/// use mapshare::{Policy, PubSubOptions, Publisher, Subscriber};
/// # let name = format!("doc-pubsub-{}", std::process::id());
/// let opts = PubSubOptions::new(&name).capacity(64).max_message(256).policy(Policy::Lossless);
/// let mut publisher = Publisher::create_with(&opts)?;
/// let mut a = Subscriber::open(&name)?;
/// let mut b = Subscriber::open(&name)?;
/// publisher.publish(b"tick").unwrap();
/// assert_eq!(a.try_recv().unwrap(), b"tick");
/// assert_eq!(b.try_recv().unwrap(), b"tick");
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PubSubOptions {
    seg: SegmentOptions,
    capacity: usize,
    max_message: usize,
    policy: Policy,
    wait: WaitStrategy,
    base: u64,
}

impl PubSubOptions {
    /// A RAM-backed ring named `name`: 256 messages of up to 4096 bytes,
    /// lossless, spin-then-block waiting.
    pub fn new(name: &str) -> PubSubOptions {
        PubSubOptions::with_segment(SegmentOptions::new(name))
    }

    /// A ring in a segment described by `seg` (file-backed, persistent, ...).
    pub fn with_segment(seg: SegmentOptions) -> PubSubOptions {
        PubSubOptions {
            seg,
            capacity: 256,
            max_message: 4096,
            policy: Policy::Lossless,
            wait: WaitStrategy::default(),
            base: 0,
        }
    }

    /// Messages the ring holds (rounded up to a power of two; 1 to 2^20).
    /// Used when creating.
    pub fn capacity(mut self, messages: usize) -> Self {
        self.capacity = messages;
        self
    }

    /// Largest message in bytes (at most 16 MiB). Used when creating.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// What the publisher does when a subscriber is a full ring behind
    /// (default [`Policy::Lossless`]). Used when creating.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How blocking calls wait (this handle only).
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// Keep the ring after its last process detaches.
    pub fn persistent(mut self, yes: bool) -> Self {
        self.seg = self.seg.persistent(yes);
        self
    }

    /// First message position (for wrap-around tests).
    #[doc(hidden)]
    pub fn initial_position(mut self, base: u64) -> Self {
        self.base = base;
        self
    }

    fn geometry(&self) -> Result<Geometry, SegmentError> {
        Geometry::new(self.capacity, self.max_message, self.policy, self.base)
            .filter(|g| payload_len(g).is_some())
            .ok_or_else(|| {
                SegmentError::InvalidSize(format!(
                    "pubsub capacity {} x {} bytes",
                    self.capacity, self.max_message
                ))
            })
    }
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
        let g = Geometry::read(ctl).ok_or_else(|| bad("pubsub geometry"))?;
        if ring_in(payload, g).is_none() {
            return Err(bad("pubsub ring runs past the payload"));
        }
        Ok(Topic { seg, g, wait })
    }

    fn create(opts: &PubSubOptions) -> Result<Topic, SegmentError> {
        let g = opts.geometry()?;
        let len = payload_len(&g).unwrap_or(u64::MAX);
        let seg = Segment::create(&opts.seg, &spec(g.max_message), len, |p| {
            if let Some(r) = ring_in(p, g) {
                r.init();
            }
        })?;
        Topic::attach(seg, opts.wait)
    }

    fn open(opts: &PubSubOptions) -> Result<Topic, SegmentError> {
        Topic::attach(Segment::open(&opts.seg, &spec(0))?, opts.wait)
    }

    fn open_or_create(opts: &PubSubOptions) -> Result<Topic, SegmentError> {
        let g = opts.geometry()?;
        let len = payload_len(&g).unwrap_or(u64::MAX);
        let seg = Segment::open_or_create(&opts.seg, &spec(g.max_message), len, |p| {
            if let Some(r) = ring_in(p, g) {
                r.init();
            }
        })?;
        Topic::attach(seg, opts.wait)
    }

    fn ring(&self) -> Ring<'_> {
        ring_in(self.seg.payload(), self.g).expect("checked at attach") // the mapping never changes
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
/// few milliseconds. With [`Policy::OverwriteOldest`] it never waits.
///
/// Dropping the publisher gives the role up: waiting subscribers see
/// [`PubSubRecvError::Disconnected`] once they have read everything, and a
/// new publisher may open the ring and continue the stream.
#[derive(Debug)]
pub struct Publisher {
    topic: Topic,
    st: PubState,
}

impl Publisher {
    /// Creates the ring `name` with default options and becomes its publisher.
    ///
    /// # Errors
    /// [`SegmentError::AlreadyExists`], [`SegmentError::InvalidName`], ...
    pub fn create(name: &str) -> Result<Publisher, SegmentError> {
        Publisher::create_with(&PubSubOptions::new(name))
    }

    /// Creates a ring as `opts` says and becomes its publisher.
    ///
    /// # Errors
    /// As [`Publisher::create`], and [`SegmentError::InvalidSize`] for a
    /// capacity or message size out of range.
    pub fn create_with(opts: &PubSubOptions) -> Result<Publisher, SegmentError> {
        Publisher::claim(Topic::create(opts)?)
    }

    /// Opens the existing ring `name` as its publisher: the previous one
    /// left or died. The stream continues where it stopped.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::TooManyAttached`] (a live
    /// publisher holds the ring), ...
    pub fn open(name: &str) -> Result<Publisher, SegmentError> {
        Publisher::open_with(&PubSubOptions::new(name))
    }

    /// Opens an existing ring as `opts` says (its geometry is the ring's).
    ///
    /// # Errors
    /// As [`Publisher::open`].
    pub fn open_with(opts: &PubSubOptions) -> Result<Publisher, SegmentError> {
        Publisher::claim(Topic::open(opts)?)
    }

    /// Opens the ring, creating it as `opts` says if it does not exist.
    ///
    /// # Errors
    /// As [`Publisher::open`] and [`Publisher::create_with`].
    pub fn open_or_create_with(opts: &PubSubOptions) -> Result<Publisher, SegmentError> {
        Publisher::claim(Topic::open_or_create(opts)?)
    }

    fn claim(topic: Topic) -> Result<Publisher, SegmentError> {
        match topic.ring().claim_publisher(&topic.seg) {
            Ok(st) => Ok(Publisher { topic, st }),
            Err(_) => Err(SegmentError::TooManyAttached(format!(
                "{}: a live publisher is attached",
                topic.seg.location()
            ))),
        }
    }

    fn publish_until(
        &mut self,
        msg: &[u8],
        wait: Option<Option<Instant>>,
    ) -> Result<(), PublishError> {
        let wait = wait.map(|deadline| (self.topic.wait, deadline));
        let r = self.topic.ring();
        match r.publish(&mut self.st, msg, &self.topic.seg, wait) {
            Ok(()) => Ok(()),
            Err(PubFail::TooLarge) => Err(PublishError::TooLarge {
                len: msg.len(),
                max: self.topic.g.max_message,
            }),
            Err(PubFail::Full) if wait.is_none() => Err(PublishError::Full),
            Err(PubFail::Full) => Err(PublishError::Timeout),
        }
    }

    /// Publishes `msg` if that needs no wait.
    ///
    /// # Errors
    /// [`PublishError::Full`] (lossless: a live subscriber is a full ring
    /// behind), [`PublishError::TooLarge`].
    pub fn try_publish(&mut self, msg: &[u8]) -> Result<(), PublishError> {
        self.publish_until(msg, None)
    }

    /// Publishes `msg`, waiting for the slowest live subscriber as long as
    /// it takes (lossless rings only ever wait).
    ///
    /// # Errors
    /// [`PublishError::TooLarge`].
    pub fn publish(&mut self, msg: &[u8]) -> Result<(), PublishError> {
        self.publish_until(msg, Some(None))
    }

    /// Publishes `msg`, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`PublishError::Timeout`], [`PublishError::TooLarge`].
    pub fn publish_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), PublishError> {
        self.publish_until(msg, Some(Some(Instant::now() + timeout)))
    }

    /// Publishes `msg`, waiting until `deadline` at most.
    ///
    /// # Errors
    /// [`PublishError::Timeout`], [`PublishError::TooLarge`].
    pub fn publish_deadline(&mut self, msg: &[u8], deadline: Instant) -> Result<(), PublishError> {
        self.publish_until(msg, Some(Some(deadline)))
    }

    /// Publishes the bytes of a plain-data value, waiting as
    /// [`Publisher::publish`] does. Subscribers read it back with
    /// [`bytemuck::pod_read_unaligned`] after checking the length.
    ///
    /// # Errors
    /// [`PublishError::TooLarge`].
    pub fn publish_pod<T: Pod>(&mut self, value: &T) -> Result<(), PublishError> {
        self.publish(bytemuck::bytes_of(value))
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

impl Drop for Publisher {
    fn drop(&mut self) {
        self.topic.ring().release_publisher(&self.st);
    }
}

/// A receiving end of a pub/sub ring. It receives every message published
/// after it joined, in order, at its own pace.
///
/// With [`Policy::OverwriteOldest`], a subscriber that falls a full ring
/// behind gets [`PubSubRecvError::Lagged`] with the number of messages it
/// missed, then the oldest message still in the ring.
#[derive(Debug)]
pub struct Subscriber {
    topic: Topic,
    st: SubState,
}

impl Subscriber {
    /// Joins the ring `name`.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`],
    /// [`SegmentError::TooManyAttached`] (all [`MAX_SUBSCRIBERS`] slots held
    /// by live subscribers), ...
    pub fn open(name: &str) -> Result<Subscriber, SegmentError> {
        Subscriber::open_with(&PubSubOptions::new(name))
    }

    /// Joins a ring as `opts` says (its geometry is the ring's; the wait
    /// strategy is this subscriber's).
    ///
    /// # Errors
    /// As [`Subscriber::open`].
    pub fn open_with(opts: &PubSubOptions) -> Result<Subscriber, SegmentError> {
        let topic = Topic::open(opts)?;
        let joined = topic.ring().join(&topic.seg, std::process::id());
        match joined {
            Some(st) => Ok(Subscriber { topic, st }),
            None => Err(SegmentError::TooManyAttached(format!(
                "{}: all {MAX_SUBSCRIBERS} subscriber slots are held",
                topic.seg.location()
            ))),
        }
    }

    fn recv_until(
        &mut self,
        buf: &mut Vec<u8>,
        wait: Option<Option<Instant>>,
    ) -> Result<usize, PubSubRecvError> {
        let strategy = wait.map(|deadline| (self.topic.wait, deadline));
        let r = self.topic.ring();
        let got = r.recv(&mut self.st, buf, &self.topic.seg, strategy, PEER_POLL);
        if got != Recv::Message {
            buf.clear();
        }
        match got {
            Recv::Message => Ok(buf.len()),
            Recv::Lagged(n) => Err(PubSubRecvError::Lagged(n)),
            Recv::Empty if wait.is_none() => Err(PubSubRecvError::Empty),
            Recv::Empty => Err(PubSubRecvError::Timeout),
            Recv::Disconnected => Err(PubSubRecvError::Disconnected),
            Recv::Corrupt { pos, len } => Err(PubSubRecvError::Corrupt { position: pos, len }),
        }
    }

    /// Takes the next message if there is one, without waiting.
    ///
    /// # Errors
    /// [`PubSubRecvError::Empty`], [`PubSubRecvError::Lagged`],
    /// [`PubSubRecvError::Disconnected`], [`PubSubRecvError::Corrupt`].
    pub fn try_recv(&mut self) -> Result<Vec<u8>, PubSubRecvError> {
        let mut buf = Vec::new();
        self.recv_until(&mut buf, None).map(|_| buf)
    }

    /// Takes the next message, waiting as long as it takes (or until the
    /// publisher is gone).
    ///
    /// # Errors
    /// [`PubSubRecvError::Lagged`], [`PubSubRecvError::Disconnected`],
    /// [`PubSubRecvError::Corrupt`].
    pub fn recv(&mut self) -> Result<Vec<u8>, PubSubRecvError> {
        let mut buf = Vec::new();
        self.recv_until(&mut buf, Some(None)).map(|_| buf)
    }

    /// Takes the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`PubSubRecvError::Timeout`], and as [`Subscriber::recv`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, PubSubRecvError> {
        let mut buf = Vec::new();
        self.recv_until(&mut buf, Some(Some(Instant::now() + timeout)))
            .map(|_| buf)
    }

    /// Takes the next message, waiting until `deadline` at most.
    ///
    /// # Errors
    /// [`PubSubRecvError::Timeout`], and as [`Subscriber::recv`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Vec<u8>, PubSubRecvError> {
        let mut buf = Vec::new();
        self.recv_until(&mut buf, Some(Some(deadline))).map(|_| buf)
    }

    /// As [`Subscriber::try_recv`], into `buf` (replacing its contents;
    /// no allocation once `buf` has grown to the largest message).
    /// Returns the message length.
    ///
    /// # Errors
    /// As [`Subscriber::try_recv`]; `buf` is then empty.
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, PubSubRecvError> {
        self.recv_until(buf, None)
    }

    /// As [`Subscriber::recv`], into `buf`. Returns the message length.
    ///
    /// # Errors
    /// As [`Subscriber::recv`].
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, PubSubRecvError> {
        self.recv_until(buf, Some(None))
    }

    /// As [`Subscriber::recv_timeout`], into `buf`. Returns the message length.
    ///
    /// # Errors
    /// As [`Subscriber::recv_timeout`].
    pub fn recv_into_timeout(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, PubSubRecvError> {
        self.recv_until(buf, Some(Some(Instant::now() + timeout)))
    }

    /// As [`Subscriber::recv_deadline`], into `buf`. Returns the message length.
    ///
    /// # Errors
    /// As [`Subscriber::recv_deadline`].
    pub fn recv_into_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<usize, PubSubRecvError> {
        self.recv_until(buf, Some(Some(deadline)))
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
        self.topic.ring().leave(&mut self.st);
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
pub fn pubsub_stats(opts: &SegmentOptions) -> Result<PubSubStats, SegmentError> {
    let topic = Topic::attach(Segment::open(opts, &spec(0))?, WaitStrategy::default())?;
    Ok(topic.stats())
}
