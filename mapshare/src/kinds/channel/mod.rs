//! Channels: streams of byte messages (or plain-data values) from one or
//! several senders to one receiver, through a named segment.
//!
//! Each sender owns a *lane*, a single-producer single-consumer ring
//! ([`crate::queue::spsc`]); the receiver drains the lanes round-robin. So
//! order is kept per sender, senders never contend with each other, and a
//! sender killed mid-message damages nothing: its half-written slot was
//! never committed, and the next sender to claim the lane continues after
//! its last committed message.
//!
//! Payload layout:
//!
//! ```text
//!    0  ChannelCtl    geometry (copied out and validated on open), receiver token,
//!                     who has ever attached, a connection counter
//!  128  Doorbell      the receiver sleeps here when every lane is empty
//!  256  Doorbell      senders sleep here when their lane is full
//!  384  LaneWords     x lanes (256 bytes each)
//!    R  slots         x lanes x capacity, each `stride` bytes:
//!                     seq u64 | len u64 | (to 64) | data (max_message bytes)
//! ```
//!
//! No system call on the fast path: a message is a copy and a `SeqCst`
//! store of the slot's `seq`; the doorbell is rung (one futex wake) only
//! when its sleepers bit says someone sleeps.
//!
//! # Disconnection
//! As in crossbeam: once every sender has gone (dropped, exited, or killed
//! with SIGKILL) and the lanes are drained, the receiver's `recv` returns
//! [`RecvError::Disconnected`](crate::RecvError::Disconnected); once the
//! receiver has gone, `send` returns
//! [`SendError::Disconnected`](crate::SendError::Disconnected) with the
//! message. Unlike crossbeam, the ends meet by name and may come and go:
//! an end that has never had a peer waits for one (a receiver started
//! before any sender is not disconnected), and a disconnected end may be
//! rejoined by a new peer (a restarted sender takes a lane over, a new
//! receiver the receiver role), after which sending and receiving work
//! again.
//!
//! A dropped end says so at once (its word goes to 0, its peers' bells are
//! rung). A killed one is found by its liveness token: the receiver asks
//! the registry about each lane's owner when it has nothing to read (at
//! most every 50 ms), a sender about the receiver when its lane is full
//! (at most every 5 ms). A sender with room left does not ask: its message
//! waits in the lane for the next receiver (at-least-once, see
//! [`crate::queue::spsc`]).

mod receiver;
mod sender;
mod typed;

pub use receiver::{Receiver, Sample};
pub use sender::{Loan, Sender};
pub use typed::{PodReceiver, PodSender};

use std::time::{Duration, Instant};

use crate::error::SegmentError;
use crate::layout::{Fingerprint, Kind};
use crate::options::{How, Options};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::queue::spsc::{self, LaneWords, Slots, SLOT_DATA_OFFSET};
use crate::region::Region;
use crate::segment::{Location, Segment, SegmentOptions, Spec};
use crate::sync::doorbell::{Doorbell, WaitStrategy};
use crate::sync::Liveness;

const CTL_OFFSET: usize = 0;
const RX_BELL_OFFSET: usize = 128;
const TX_BELL_OFFSET: usize = 256;
const LANES_OFFSET: usize = 384;
const LANE_LEN: usize = 256;

/// Most lanes (senders at once) a channel can have.
pub const MAX_SENDERS: usize = 64;
/// Largest capacity, in messages.
pub const MAX_CAPACITY: usize = 1 << 24;
/// Largest message, in bytes (1 GiB).
pub const MAX_MESSAGE: usize = 1 << 30;
/// Default capacity per sender lane, in messages.
pub(crate) const DEFAULT_CAPACITY: usize = 1024;
/// Default largest message, in bytes.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 4096;

/// How often a receiver with nothing to read asks the registry whether
/// the lanes' owners are alive (each ask is a system call per lane).
const SENDERS_POLL: Duration = Duration::from_millis(50);
/// How often a sender whose lane is full asks whether the receiver lives.
const RECEIVER_POLL: Duration = Duration::from_millis(5);

/// `ever` bit: a sender has attached at some time.
const EVER_SENDER: u32 = 1;
/// `ever` bit: a receiver has attached at some time.
const EVER_RECEIVER: u32 = 2;

/// The channel's control line. Geometry words are written once by the
/// creator; openers copy them out and validate them, and never re-read them.
///
/// | word | writer | meaning |
/// |---|---|---|
/// | `capacity` | creator | slots per lane (a power of two) |
/// | `max_message` | creator | largest message in bytes |
/// | `stride` | creator | bytes per slot (`64 + max_message`, rounded up to 64) |
/// | `lanes` | creator | number of lanes |
/// | `base` | creator | first position (tests start near `u64::MAX`) |
/// | `receiver` | receiver (CAS) | liveness token of the receiver; 0 none |
/// | `ever` | every end, on attach (`fetch_or`) | `EVER_SENDER`, `EVER_RECEIVER`: which ends have ever attached |
/// | `conn` | every end, on attach and detach (`fetch_add`) | any value; a change wakes waiters to look at their peers |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct ChannelCtl {
    capacity: AtomicU64,
    max_message: AtomicU64,
    stride: AtomicU64,
    lanes: AtomicU64,
    base: AtomicU64,
    receiver: AtomicU32,
    ever: AtomicU32,
    conn: AtomicU32,
    _r: AtomicU32,
    _pad: [u64; 9],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<ChannelCtl>() == 128);

/// The header of one slot; the message bytes follow it. `meta` words are
/// the producer's to fill before its commit (request/response keeps a
/// request's id and its client's and server's epochs there); channels
/// leave them alone.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SlotHeader {
    seq: AtomicU64,
    len: AtomicU64,
    pub(crate) meta: [AtomicU64; 3],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<SlotHeader>() <= SLOT_DATA_OFFSET);

crate::pod::shm_state!(
    ChannelCtl,
    "AtomicU64s, AtomicU32s and u64 padding; repr(C)"
);
crate::pod::shm_state!(SlotHeader, "five AtomicU64s; repr(C)");

/// Validated geometry, copied out of shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    capacity: usize,
    max_message: usize,
    stride: usize,
    lanes: usize,
    base: u64,
}

impl Geometry {
    fn new(capacity: usize, max_message: usize, lanes: usize, base: u64) -> Option<Geometry> {
        if capacity == 0 || capacity > MAX_CAPACITY || max_message == 0 || max_message > MAX_MESSAGE
        {
            return None;
        }
        if lanes == 0 || lanes > MAX_SENDERS {
            return None;
        }
        let capacity = capacity.next_power_of_two();
        let stride = (SLOT_DATA_OFFSET + max_message).div_ceil(64) * 64;
        Some(Geometry {
            capacity,
            max_message,
            stride,
            lanes,
            base,
        })
    }

    #[inline]
    fn slots_offset(&self) -> usize {
        (LANES_OFFSET + self.lanes * LANE_LEN).div_ceil(128) * 128
    }

    #[inline]
    fn lane_bytes(&self) -> Option<usize> {
        self.slots().lane_bytes()
    }

    #[inline]
    fn slots(&self) -> SlotGeometry {
        SlotGeometry {
            capacity: self.capacity,
            max_message: self.max_message,
            stride: self.stride,
        }
    }

    fn payload_len(&self) -> Option<u64> {
        let rings = self.lane_bytes()?.checked_mul(self.lanes)?;
        Some(self.slots_offset().checked_add(rings)? as u64)
    }

    fn read(ctl: &ChannelCtl) -> Option<Geometry> {
        let g = Geometry::new(
            usize::try_from(ctl.capacity.load(Ordering::Relaxed)).ok()?,
            usize::try_from(ctl.max_message.load(Ordering::Relaxed)).ok()?,
            usize::try_from(ctl.lanes.load(Ordering::Relaxed)).ok()?,
            ctl.base.load(Ordering::Relaxed),
        )?;
        // The stored values must be exactly what `new` derives.
        (g.capacity as u64 == ctl.capacity.load(Ordering::Relaxed)
            && g.stride as u64 == ctl.stride.load(Ordering::Relaxed))
        .then_some(g)
    }
}

/// The receiver's and every lane owner's token words (for the registry).
fn tokens(p: Region<'_>, f: &mut dyn FnMut(u32)) {
    let Some(ctl) = p.get::<ChannelCtl>(CTL_OFFSET) else {
        return;
    };
    f(ctl.receiver.load(Ordering::Relaxed));
    let lanes = usize::try_from(ctl.lanes.load(Ordering::Relaxed)).unwrap_or(MAX_SENDERS);
    for lane in 0..lanes.min(MAX_SENDERS) {
        if let Some(l) = p.get::<LaneWords>(LANES_OFFSET + lane * LANE_LEN) {
            f(l.owner.load(Ordering::Relaxed));
        }
    }
}

fn init(p: Region<'_>, g: Geometry) {
    let Some(ctl) = p.get::<ChannelCtl>(CTL_OFFSET) else {
        return;
    };
    ctl.capacity.store(g.capacity as u64, Ordering::Relaxed);
    ctl.max_message
        .store(g.max_message as u64, Ordering::Relaxed);
    ctl.stride.store(g.stride as u64, Ordering::Relaxed);
    ctl.lanes.store(g.lanes as u64, Ordering::Relaxed);
    ctl.base.store(g.base, Ordering::Relaxed);
    ctl.receiver.store(0, Ordering::Relaxed);
    ctl.ever.store(0, Ordering::Relaxed);
    ctl.conn.store(0, Ordering::Relaxed);
    for off in [RX_BELL_OFFSET, TX_BELL_OFFSET] {
        if let Some(b) = p.get::<Doorbell>(off) {
            b.init();
        }
    }
    for lane in 0..g.lanes {
        if let Some(l) = p.get::<LaneWords>(LANES_OFFSET + lane * LANE_LEN) {
            l.init(g.base);
        }
        if let Some(slots) = ShmSlots::new(p, g, lane) {
            spsc::init_slots(&slots, g.base);
        }
    }
}

/// The size of one lane's slots: what [`ShmSlots`] needs of a geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotGeometry {
    /// Slots in the lane, a power of two.
    pub(crate) capacity: usize,
    /// Largest message in bytes.
    pub(crate) max_message: usize,
    /// Bytes per slot (`SLOT_DATA_OFFSET + max_message`, rounded up to 64).
    pub(crate) stride: usize,
}

impl SlotGeometry {
    /// Bytes of one lane's slots, if that fits a `usize`.
    #[inline]
    pub(crate) fn lane_bytes(&self) -> Option<usize> {
        self.capacity.checked_mul(self.stride)
    }
}

/// One lane's slots in a mapped region (channels and request/response).
pub(crate) struct ShmSlots<'a> {
    pub(crate) region: Region<'a>,
    g: SlotGeometry,
}

impl<'a> ShmSlots<'a> {
    #[inline]
    fn new(payload: Region<'a>, g: Geometry, lane: usize) -> Option<ShmSlots<'a>> {
        ShmSlots::at(payload, g.slots(), g.slots_offset(), lane)
    }

    /// Lane `lane` of a run of lanes of geometry `g` starting at `offset`.
    #[inline]
    pub(crate) fn at(
        payload: Region<'a>,
        g: SlotGeometry,
        offset: usize,
        lane: usize,
    ) -> Option<ShmSlots<'a>> {
        let bytes = g.lane_bytes()?;
        let region = payload.sub(offset.checked_add(lane.checked_mul(bytes)?)?, bytes)?;
        Some(ShmSlots { region, g })
    }

    #[inline]
    pub(crate) fn header(&self, i: usize) -> &'a SlotHeader {
        // In bounds by construction: i < capacity and the region holds
        // capacity * stride bytes (checked in `at`).
        self.region
            .get::<SlotHeader>(i * self.g.stride)
            .expect("slot index masked to capacity")
    }

    #[inline]
    pub(crate) fn data_offset(&self, i: usize) -> usize {
        i * self.g.stride + SLOT_DATA_OFFSET
    }
}

impl Slots for ShmSlots<'_> {
    #[inline]
    fn capacity(&self) -> u64 {
        self.g.capacity as u64
    }
    #[inline]
    fn max_len(&self) -> usize {
        self.g.max_message
    }
    #[inline]
    fn seq(&self, i: usize) -> &AtomicU64 {
        &self.header(i).seq
    }
    #[inline]
    fn len(&self, i: usize) -> &AtomicU64 {
        &self.header(i).len
    }
}

/// An attached channel segment with its validated geometry.
#[derive(Debug)]
struct Channel {
    seg: Segment,
    g: Geometry,
    wait: WaitStrategy,
}

impl Channel {
    fn validate(seg: Segment, wait: WaitStrategy) -> Result<Channel, SegmentError> {
        let bad = |what| SegmentError::Header {
            name: seg.location().to_string(),
            error: crate::error::HeaderError::BadSize { what },
        };
        let payload = seg.payload();
        let ctl = payload
            .get::<ChannelCtl>(CTL_OFFSET)
            .ok_or_else(|| bad("channel control block"))?;
        let g = Geometry::read(ctl).ok_or_else(|| bad("channel geometry"))?;
        if g.payload_len()
            .is_none_or(|need| need > seg.header().payload_len)
        {
            return Err(bad("channel rings run past the payload"));
        }
        Ok(Channel { seg, g, wait })
    }

    /// Creates or opens the channel `o` describes, for messages of
    /// `layout`. With `check`, an opener insists on that layout.
    fn attach<K>(
        o: &Options<K>,
        how: How,
        max_message: usize,
        layout: Fingerprint,
        check: bool,
    ) -> Result<Channel, SegmentError> {
        let capacity = o.capacity.unwrap_or(DEFAULT_CAPACITY);
        let senders = o.senders.unwrap_or(1);
        let geometry = Geometry::new(capacity, max_message, senders, o.base)
            .filter(|g| g.payload_len().is_some());
        let g = match (how, geometry) {
            (_, Some(g)) => g,
            // Opening only: the sizes are the segment's, whatever we asked.
            (How::Open, None) => Geometry::new(1, 1, 1, 0).expect("valid"),
            (_, None) => {
                return Err(SegmentError::InvalidSize(format!(
                    "channel capacity {capacity} x {max_message} bytes x {senders} senders"
                )))
            }
        };
        let spec = Spec {
            kind: Kind::Channel,
            layout,
            check_layout: check,
            min_payload: LANES_OFFSET as u64,
            tokens,
            abandoned: crate::segment::never_abandoned,
        };
        let len = g.payload_len().unwrap_or(u64::MAX);
        let seg = Segment::attach(&o.seg, how, &spec, len, |p| init(p, g))?;
        Channel::validate(seg, o.wait)
    }

    fn ctl(&self) -> &ChannelCtl {
        self.seg
            .payload()
            .get::<ChannelCtl>(CTL_OFFSET)
            .expect("checked at attach")
    }

    #[inline]
    fn bell(&self, off: usize) -> &Doorbell {
        self.seg
            .payload()
            .get::<Doorbell>(off)
            .expect("checked at attach") // min_payload
    }

    #[inline]
    fn lane(&self, lane: usize) -> &LaneWords {
        self.seg
            .payload()
            .get::<LaneWords>(LANES_OFFSET + lane * LANE_LEN)
            .expect("lane < lanes") // geometry checked
    }

    #[inline]
    fn slots(&self, lane: usize) -> ShmSlots<'_> {
        ShmSlots::new(self.seg.payload(), self.g, lane).expect("geometry checked at attach")
    }

    /// An end attached or left: record it, and wake the peers so they
    /// look again (a receiver sleeping on an empty channel whose last
    /// sender just left, say).
    fn announce(&self, ever: u32) {
        let ctl = self.ctl();
        if ever != 0 {
            ctl.ever.fetch_or(ever, Ordering::SeqCst);
        }
        // SYNC(conn): SeqCst RMW, after the end's own CAS; ordered before
        // the doorbells' loads (the waiters' conditions read `conn`).
        ctl.conn.fetch_add(1, Ordering::SeqCst);
        self.bell(RX_BELL_OFFSET).ring();
        self.bell(TX_BELL_OFFSET).ring();
    }

    fn stats(&self) -> ChannelStats {
        let depth = (0..self.g.lanes)
            .map(|l| {
                let w = self.lane(l);
                let tail = w.tail.load(Ordering::Relaxed);
                let waiting = tail.wrapping_sub(w.head.load(Ordering::Relaxed));
                let owner = w.owner.load(Ordering::Relaxed);
                LaneStats {
                    waiting: waiting.min(self.g.capacity as u64),
                    sent: tail.wrapping_sub(self.g.base),
                    sender_alive: owner != 0 && self.seg.is_alive(owner),
                }
            })
            .collect();
        let r = self.ctl().receiver.load(Ordering::Relaxed);
        ChannelStats {
            capacity: self.g.capacity,
            max_message: self.g.max_message,
            lanes: depth,
            receiver_alive: r != 0 && self.seg.is_alive(r),
            receiver_may_sleep: self.bell(RX_BELL_OFFSET).sleepers_flagged(),
        }
    }
}

/// Why a channel handle could not be attached: the channel's lanes or
/// receiver role are all held by live processes.
fn busy(c: &Channel, what: &str) -> SegmentError {
    SegmentError::TooManyAttached(format!("{}: {what}", c.seg.location()))
}

/// A liveness verdict cached for `poll`: asks the registry again when the
/// tokens it was about change, or when it is older than `poll`.
#[derive(Debug, Default)]
pub(crate) struct PeerWatch {
    /// `conn` when last judged.
    conn: u32,
    at: Option<Instant>,
    gone: bool,
}

impl PeerWatch {
    /// The verdict as it stands, asking `judge` again only when `conn`
    /// changed (an end came or went): no clock, no system call otherwise.
    pub(crate) fn gone_if_changed(&mut self, conn: u32, judge: impl FnOnce() -> bool) -> bool {
        if self.at.is_none() || conn != self.conn {
            self.gone = judge();
            self.conn = conn;
            self.at = Some(Instant::now());
        }
        self.gone
    }

    /// Whether the peers are gone, asking `judge` (which may make system
    /// calls) only when `conn` changed or the verdict is older than `poll`.
    pub(crate) fn gone(&mut self, conn: u32, poll: Duration, judge: impl FnOnce() -> bool) -> bool {
        let stale = self.at.is_none_or(|t| t.elapsed() >= poll) || conn != self.conn;
        if stale {
            self.gone = judge();
            self.conn = conn;
            self.at = Some(Instant::now());
        }
        self.gone
    }
}

/// What `mapshare info` shows about a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStats {
    /// Slots per sender lane.
    pub capacity: usize,
    /// Largest message in bytes.
    pub max_message: usize,
    /// One entry per lane (senders at once).
    pub lanes: Vec<LaneStats>,
    /// Whether a live receiver holds the channel.
    pub receiver_alive: bool,
    /// Whether the receiver's doorbell says someone may sleep on it: then
    /// the next message costs the sender one futex wake system call, and
    /// clears it. A receiver killed while asleep leaves it set only until
    /// that next message.
    pub receiver_may_sleep: bool,
}

/// One lane of a channel, as [`ChannelStats`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneStats {
    /// Messages waiting.
    pub waiting: u64,
    /// Messages sent on it since creation.
    pub sent: u64,
    /// Whether a live sender owns it.
    pub sender_alive: bool,
}

/// Reads the statistics of the channel at `at`: queue depth per lane,
/// messages sent, whether a live sender owns each lane and a live receiver
/// the channel.
///
/// It attaches to the segment for the duration of the call (so it shows in
/// the registry meanwhile) and takes no role; nothing is written.
///
/// # Errors
/// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`] (not a
/// channel), [`SegmentError::Header`] (corrupt geometry), ...
pub fn channel_stats(at: &Location) -> Result<ChannelStats, SegmentError> {
    let spec = Spec {
        kind: Kind::Channel,
        layout: Fingerprint::new("bytes", 0, 1),
        check_layout: false,
        min_payload: LANES_OFFSET as u64,
        tokens,
        abandoned: crate::segment::never_abandoned,
    };
    let seg = Segment::open(&SegmentOptions::at(at), &spec)?;
    Ok(Channel::validate(seg, WaitStrategy::default())?.stats())
}

fn bytes_layout(max_message: usize) -> Fingerprint {
    Fingerprint::new("bytes", max_message as u64, 1)
}

/// The production slot path (geometry, `ShmSlots`, volatile copies, views)
/// on a heap-backed region: runs under Miri (`ci/miri.sh`).
#[cfg(all(test, not(mapshare_loom)))]
mod tests {
    use super::*;
    use crate::queue::spsc::Producer;
    use crate::region::HeapRegion;

    fn channel(capacity: usize, max: usize, base: u64) -> (HeapRegion, Geometry) {
        let g = Geometry::new(capacity, max, 1, base).unwrap();
        let heap = HeapRegion::new(g.payload_len().unwrap() as usize);
        init(heap.region(), g);
        (heap, g)
    }

    /// Sends and receives `n` messages one by one, checking each byte.
    fn round_trips(heap: &HeapRegion, g: Geometry, n: u64) {
        let p = heap.region();
        let ctl = p.get::<ChannelCtl>(CTL_OFFSET).unwrap();
        assert_eq!(Geometry::read(ctl), Some(g), "geometry reads back");
        let lane = p.get::<LaneWords>(LANES_OFFSET).unwrap();
        let slots = ShmSlots::new(p, g, 0).unwrap();
        let mut prod = Producer::new(spsc::recover_tail(&slots, lane));
        let mut head = spsc::recover_head(lane);
        for k in 0..n {
            let msg: Vec<u8> = (0..(k as usize % g.max_message) + 1)
                .map(|i| (k as u8).wrapping_mul(31).wrapping_add(i as u8))
                .collect();
            assert!(prod.can_write(&slots, lane));
            let i = spsc::index(&slots, prod.tail);
            assert!(slots.region.write(slots.data_offset(i), &msg));
            prod.commit(&slots, lane, msg.len());
            let len = spsc::readable(&slots, head).unwrap().unwrap();
            let view = slots
                .region
                .view(slots.data_offset(spsc::index(&slots, head)), len)
                .unwrap();
            assert_eq!(view.to_vec(), msg);
            head = spsc::release(lane, head);
        }
        assert!(spsc::readable(&slots, head).is_none());
    }

    #[test]
    fn slots_round_trip_and_run_across_the_u64_wrap() {
        for base in [0, u64::MAX - 5, u64::MAX] {
            let (heap, g) = channel(4, 100, base);
            round_trips(&heap, g, 40);
        }
    }

    #[test]
    fn geometry_from_garbage_is_refused_not_trusted() {
        let (heap, _) = channel(4, 100, 0);
        let ctl = heap.region().get::<ChannelCtl>(CTL_OFFSET).unwrap();
        ctl.stride.store(8, Ordering::Relaxed);
        assert_eq!(Geometry::read(ctl), None);
        ctl.stride.store(192, Ordering::Relaxed);
        ctl.lanes.store(1 << 40, Ordering::Relaxed);
        assert_eq!(Geometry::read(ctl), None);
    }

    #[test]
    fn a_peer_rewriting_a_lent_message_changes_only_later_copies() {
        // The interleaving the 0.1 closure API turned into undefined
        // behaviour, run single-threaded so Miri can check it: a copy
        // validated as UTF-8 stays valid whatever the slot holds later.
        let (heap, g) = channel(2, 64, 0);
        let p = heap.region();
        let slots = ShmSlots::new(p, g, 0).unwrap();
        let text = "grüße 🦀".as_bytes();
        assert!(slots.region.write(slots.data_offset(0), text));
        let view = slots.region.view(slots.data_offset(0), text.len()).unwrap();
        let copy = view.to_vec();
        let s = std::str::from_utf8(&copy).unwrap();
        // The "peer" rewrites one byte into an invalid UTF-8 lead byte.
        assert!(slots.region.write(slots.data_offset(0) + 3, &[0xff]));
        assert_eq!(s.chars().count(), 7);
        assert!(std::str::from_utf8(&view.to_vec()).is_err());
    }
}
