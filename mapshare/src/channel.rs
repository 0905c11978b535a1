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
//!    0  ChannelCtl    geometry (copied out and validated on open), receiver token
//!  128  Doorbell      the receiver sleeps here when every lane is empty
//!  256  Doorbell      senders sleep here when their lane is full
//!  384  LaneWords     x lanes (256 bytes each)
//!    R  slots         x lanes x capacity, each `stride` bytes:
//!                     seq u64 | len u64 | (to 64) | data (max_message bytes)
//! ```
//!
//! No system call on the fast path: a message is a copy and a `SeqCst`
//! store of the slot's `seq`; the doorbell is rung (one futex wake) only
//! when its `sleepers` count says someone sleeps.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::SegmentError;
use crate::layout::{Fingerprint, Kind};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::queue::spsc::{self, LaneWords, Producer, Slots, SLOT_DATA_OFFSET};
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

/// The channel's control line. Geometry words are written once by the
/// creator; openers copy them out and validate them, and never re-read them.
///
/// | word | writer | meaning |
/// |---|---|---|
/// | `capacity` | creator | slots per lane (a power of two) |
/// | `max_message` | creator | largest message in bytes |
/// | `stride` | creator | bytes per slot (`16 + max_message`, rounded up to 64) |
/// | `lanes` | creator | number of lanes |
/// | `base` | creator | first position (tests start near `u64::MAX`) |
/// | `receiver` | receiver (CAS) | liveness token of the receiver; 0 none |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct ChannelCtl {
    capacity: AtomicU64,
    max_message: AtomicU64,
    stride: AtomicU64,
    lanes: AtomicU64,
    base: AtomicU64,
    receiver: AtomicU32,
    _r: AtomicU32,
    _pad: [u64; 10],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<ChannelCtl>() == 128);

/// The header of one slot; the message bytes follow it.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SlotHeader {
    seq: AtomicU64,
    len: AtomicU64,
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<SlotHeader>() <= SLOT_DATA_OFFSET);

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
        self.capacity.checked_mul(self.stride)
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

/// How to create or open a channel.
///
/// # Examples
/// ```
/// use mapshare::{ChannelOptions, Receiver, Sender};
/// # let name = format!("doc-chan-{}", std::process::id());
/// let opts = ChannelOptions::new(&name).capacity(64).max_message(256);
/// let mut rx = Receiver::create(&opts)?;
/// let mut tx = Sender::open(&opts)?;
/// tx.send(b"hello").unwrap();
/// assert_eq!(rx.try_recv().unwrap(), b"hello");
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChannelOptions {
    seg: SegmentOptions,
    capacity: usize,
    max_message: usize,
    senders: usize,
    wait: WaitStrategy,
    base: u64,
}

impl ChannelOptions {
    /// A RAM-backed channel named `name`: 1024 messages of up to 4096
    /// bytes, one sender, spin-then-block waiting.
    pub fn new(name: &str) -> ChannelOptions {
        ChannelOptions::with_segment(SegmentOptions::new(name))
    }

    /// A channel in a segment described by `seg` (file-backed, persistent, ...).
    pub fn with_segment(seg: SegmentOptions) -> ChannelOptions {
        ChannelOptions {
            seg,
            capacity: 1024,
            max_message: 4096,
            senders: 1,
            wait: WaitStrategy::default(),
            base: 0,
        }
    }

    /// Messages each sender can have in flight (rounded up to a power of
    /// two; at most 2^24). Used when creating.
    pub fn capacity(mut self, messages: usize) -> Self {
        self.capacity = messages;
        self
    }

    /// Largest message in bytes (at most 1 GiB). Used when creating.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// How many senders may be attached at once (1 to 64). Used when creating.
    pub fn senders(mut self, senders: usize) -> Self {
        self.senders = senders;
        self
    }

    /// How blocking calls wait (this handle only).
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// Keep the channel after its last process detaches.
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
}

fn geometry_of(opts: &ChannelOptions) -> Result<Geometry, SegmentError> {
    Geometry::new(opts.capacity, opts.max_message, opts.senders, opts.base)
        .filter(|g| g.payload_len().is_some())
        .ok_or_else(|| {
            SegmentError::InvalidSize(format!(
                "channel capacity {} x {} bytes x {} senders",
                opts.capacity, opts.max_message, opts.senders
            ))
        })
}

fn spec(layout: Fingerprint, check_layout: bool) -> Spec {
    Spec {
        kind: Kind::Channel,
        layout,
        check_layout,
        min_payload: LANES_OFFSET as u64,
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

/// One lane's slots in a mapped region.
struct ShmSlots<'a> {
    region: Region<'a>,
    g: Geometry,
}

impl<'a> ShmSlots<'a> {
    #[inline]
    fn new(payload: Region<'a>, g: Geometry, lane: usize) -> Option<ShmSlots<'a>> {
        let bytes = g.lane_bytes()?;
        let region = payload.sub(g.slots_offset() + lane.checked_mul(bytes)?, bytes)?;
        Some(ShmSlots { region, g })
    }

    #[inline]
    fn header(&self, i: usize) -> &SlotHeader {
        // In bounds by construction: i < capacity and the region holds
        // capacity * stride bytes (checked in `new`).
        self.region
            .get::<SlotHeader>(i * self.g.stride)
            .expect("slot index masked to capacity")
    }

    #[inline]
    fn data_offset(&self, i: usize) -> usize {
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
    fn attach(seg: Segment, wait: WaitStrategy) -> Result<Channel, SegmentError> {
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

    fn create(opts: &ChannelOptions, layout: Fingerprint) -> Result<Channel, SegmentError> {
        let g = geometry_of(opts)?;
        let len = g.payload_len().unwrap_or(u64::MAX);
        let seg = Segment::create(&opts.seg, &spec(layout, true), len, |p| init(p, g))?;
        Channel::attach(seg, opts.wait)
    }

    fn open(
        opts: &ChannelOptions,
        layout: Fingerprint,
        check: bool,
    ) -> Result<Channel, SegmentError> {
        Channel::attach(Segment::open(&opts.seg, &spec(layout, check))?, opts.wait)
    }

    fn open_or_create(
        opts: &ChannelOptions,
        layout: Fingerprint,
        check: bool,
    ) -> Result<Channel, SegmentError> {
        let g = geometry_of(opts)?;
        let len = g.payload_len().unwrap_or(u64::MAX);
        let seg = Segment::open_or_create(&opts.seg, &spec(layout, check), len, |p| init(p, g))?;
        Channel::attach(seg, opts.wait)
    }

    fn ctl(&self) -> &ChannelCtl {
        self.seg
            .payload()
            .get::<ChannelCtl>(CTL_OFFSET)
            .expect("checked at attach") // attach validated it
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
        // payload_len checked
    }
}

/// Why a channel handle could not be attached: the channel's lanes or
/// receiver role are all held by live processes.
fn busy(c: &Channel, what: &str) -> SegmentError {
    SegmentError::TooManyAttached(format!("{}: {what}", c.seg.location()))
}

/// A non-blocking send failed; the message is handed back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The lane is full.
    Full(T),
    /// The message is larger than the channel's maximum.
    TooLarge(T),
}

/// A blocking send failed; the message is handed back.
#[derive(Debug, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// No room before the deadline.
    Timeout(T),
    /// The message is larger than the channel's maximum.
    TooLarge(T),
}

/// A non-blocking receive failed.
#[derive(Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// No message is waiting.
    Empty,
    /// A slot held a length above the maximum (a corrupt peer); it was skipped.
    Corrupt {
        /// The length found.
        len: u64,
    },
}

/// A blocking receive failed.
#[derive(Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// No message before the deadline.
    Timeout,
    /// A slot held a length above the maximum (a corrupt peer); it was skipped.
    Corrupt {
        /// The length found.
        len: u64,
    },
}

macro_rules! impl_error {
    ($t:ty, $($pat:pat => $msg:expr),+ $(,)?) => {
        impl<T> std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self { $($pat => $msg),+ })
            }
        }
        impl<T: std::fmt::Debug> std::error::Error for $t {}
    };
}
impl_error!(TrySendError<T>, TrySendError::Full(_) => "channel is full", TrySendError::TooLarge(_) => "message larger than the channel's maximum");
impl_error!(SendTimeoutError<T>, SendTimeoutError::Timeout(_) => "timed out waiting for room", SendTimeoutError::TooLarge(_) => "message larger than the channel's maximum");

impl std::fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("channel is empty"),
            TryRecvError::Corrupt { len } => write!(f, "corrupt message length {len}; skipped"),
        }
    }
}
impl std::error::Error for TryRecvError {}

impl std::fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting for a message"),
            RecvTimeoutError::Corrupt { len } => write!(f, "corrupt message length {len}; skipped"),
        }
    }
}
impl std::error::Error for RecvTimeoutError {}

/// The sending end: owns one lane of a channel.
///
/// # Examples
/// Zero-copy: loan a slot, write in place, commit.
/// ```
/// use mapshare::{ChannelOptions, Receiver, Sender};
/// # let name = format!("doc-loan-{}", std::process::id());
/// let opts = ChannelOptions::new(&name).max_message(1 << 20);
/// let mut rx = Receiver::create(&opts)?;
/// let mut tx = Sender::open(&opts)?;
/// let mut slot = tx.try_loan().unwrap();
/// let n = slot.with_bytes(|buf| { buf[..5].copy_from_slice(b"frame"); 5 });
/// slot.commit(n);
/// let len = rx.try_recv_with(|msg| msg.len()).unwrap();
/// assert_eq!(len, 5);
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug)]
pub struct Sender {
    ch: Channel,
    lane: usize,
    prod: Producer,
}

impl Sender {
    /// Creates the channel and attaches as its first sender.
    ///
    /// # Errors
    /// [`SegmentError::AlreadyExists`], [`SegmentError::InvalidSize`], ...
    pub fn create(opts: &ChannelOptions) -> Result<Sender, SegmentError> {
        Sender::claim(Channel::create(opts, bytes_layout(opts))?)
    }

    /// Opens an existing channel as a sender.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::TooManyAttached`] (every lane held), ...
    pub fn open(opts: &ChannelOptions) -> Result<Sender, SegmentError> {
        Sender::claim(Channel::open(opts, bytes_layout(opts), false)?)
    }

    /// Opens the channel, creating it if needed.
    ///
    /// # Errors
    /// As [`Sender::open`] and [`Sender::create`].
    pub fn open_or_create(opts: &ChannelOptions) -> Result<Sender, SegmentError> {
        Sender::claim(Channel::open_or_create(opts, bytes_layout(opts), false)?)
    }

    fn claim(ch: Channel) -> Result<Sender, SegmentError> {
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
                return Ok(Sender {
                    ch,
                    lane,
                    prod: Producer::new(tail),
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

    #[inline]
    fn has_room(&mut self) -> bool {
        self.prod
            .can_write(&self.ch.slots(self.lane), self.ch.lane(self.lane))
    }

    fn wait_room(&mut self, deadline: Option<Instant>) -> bool {
        if self.has_room() {
            return true;
        }
        let (ch, lane, prod) = (&self.ch, self.lane, &mut self.prod);
        let (slots, words) = (ch.slots(lane), ch.lane(lane));
        ch.bell(TX_BELL_OFFSET)
            .wait_until(ch.wait, deadline, || prod.can_write(&slots, words))
    }

    #[inline]
    fn push(&mut self, msg: &[u8]) {
        let slots = self.ch.slots(self.lane);
        let i = spsc::index(&slots, self.prod.tail);
        let ok = slots.region.write(slots.data_offset(i), msg);
        debug_assert!(ok);
        self.prod.commit(&slots, self.ch.lane(self.lane), msg.len());
        self.ch.bell(RX_BELL_OFFSET).ring_one();
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`], [`TrySendError::TooLarge`].
    pub fn try_send<'m>(&mut self, msg: &'m [u8]) -> Result<(), TrySendError<&'m [u8]>> {
        if msg.len() > self.ch.g.max_message {
            return Err(TrySendError::TooLarge(msg));
        }
        if !self.has_room() {
            return Err(TrySendError::Full(msg));
        }
        self.push(msg);
        Ok(())
    }

    /// Sends `msg`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// [`SendTimeoutError::TooLarge`] only.
    pub fn send<'m>(&mut self, msg: &'m [u8]) -> Result<(), SendTimeoutError<&'m [u8]>> {
        self.send_until(msg, None)
    }

    /// Sends `msg`, waiting for room at most `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], [`SendTimeoutError::TooLarge`].
    pub fn send_timeout<'m>(
        &mut self,
        msg: &'m [u8],
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        self.send_until(msg, Some(Instant::now() + timeout))
    }

    /// Sends `msg`, waiting for room until `deadline`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], [`SendTimeoutError::TooLarge`].
    pub fn send_deadline<'m>(
        &mut self,
        msg: &'m [u8],
        deadline: Instant,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        self.send_until(msg, Some(deadline))
    }

    fn send_until<'m>(
        &mut self,
        msg: &'m [u8],
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        if msg.len() > self.ch.g.max_message {
            return Err(SendTimeoutError::TooLarge(msg));
        }
        if !self.wait_room(deadline) {
            return Err(SendTimeoutError::Timeout(msg));
        }
        self.push(msg);
        Ok(())
    }

    /// Loans the next slot if it is free now (zero-copy send).
    ///
    /// # Errors
    /// [`TrySendError::Full`].
    pub fn try_loan(&mut self) -> Result<Loan<'_>, TrySendError<()>> {
        if self.has_room() {
            Ok(Loan { tx: self })
        } else {
            Err(TrySendError::Full(()))
        }
    }

    /// Loans the next slot, waiting as long as it takes.
    pub fn loan(&mut self) -> Loan<'_> {
        self.wait_room(None);
        Loan { tx: self }
    }

    /// Loans the next slot, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`].
    pub fn loan_timeout(&mut self, timeout: Duration) -> Result<Loan<'_>, SendTimeoutError<()>> {
        self.loan_deadline(Instant::now() + timeout)
    }

    /// Loans the next slot, waiting until `deadline`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`].
    pub fn loan_deadline(&mut self, deadline: Instant) -> Result<Loan<'_>, SendTimeoutError<()>> {
        if self.wait_room(Some(deadline)) {
            Ok(Loan { tx: self })
        } else {
            Err(SendTimeoutError::Timeout(()))
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let me = self.ch.seg.token();
        let _ = self.ch.lane(self.lane).owner.compare_exchange(
            me,
            0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// A slot loaned by [`Sender::loan`]: write the message in place, then
/// [`Loan::commit`] it. Dropped without a commit, nothing is sent.
#[derive(Debug)]
#[must_use = "nothing is sent until the loan is committed"]
pub struct Loan<'a> {
    tx: &'a mut Sender,
}

impl Loan<'_> {
    /// Bytes available (the channel's maximum message size).
    pub fn max_len(&self) -> usize {
        self.tx.ch.g.max_message
    }

    /// Runs `f` on the slot's bytes, in place in shared memory (the slot is
    /// ours until the commit; the receiver reads none of it before).
    pub fn with_bytes<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let slots = self.tx.ch.slots(self.tx.lane);
        let i = spsc::index(&slots, self.tx.prod.tail);
        // SAFETY: the slot at our tail is free (checked before the loan was
        // made) and only this sender owns the lane, so no process following
        // the protocol reads or writes it until we commit.
        unsafe {
            slots
                .region
                .with_bytes_mut(slots.data_offset(i), self.tx.ch.g.max_message, f)
        }
        .expect("slot inside the lane region") // geometry checked at attach
    }

    /// Copies `bytes` into the slot at `offset`; `false` if it does not fit.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) -> bool {
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > self.max_len())
        {
            return false;
        }
        let slots = self.tx.ch.slots(self.tx.lane);
        let i = spsc::index(&slots, self.tx.prod.tail);
        slots.region.write(slots.data_offset(i) + offset, bytes)
    }

    /// Publishes the first `len` bytes of the slot (clamped to the capacity).
    pub fn commit(self, len: usize) {
        let len = len.min(self.max_len());
        let slots = self.tx.ch.slots(self.tx.lane);
        self.tx
            .prod
            .commit(&slots, self.tx.ch.lane(self.tx.lane), len);
        self.tx.ch.bell(RX_BELL_OFFSET).ring_one();
    }
}

/// A lane with a message at its head, and the message's length as
/// `spsc::readable` copied it out (`Err` for a corrupt one).
type Ready = (usize, Result<usize, u64>);

/// The receiving end: the one receiver of a channel, draining every lane.
#[derive(Debug)]
pub struct Receiver {
    ch: Channel,
    heads: Vec<u64>,
    next: usize,
}

impl Receiver {
    /// Creates the channel and attaches as its receiver.
    ///
    /// # Errors
    /// [`SegmentError::AlreadyExists`], [`SegmentError::InvalidSize`], ...
    pub fn create(opts: &ChannelOptions) -> Result<Receiver, SegmentError> {
        Receiver::claim(Channel::create(opts, bytes_layout(opts))?)
    }

    /// Opens an existing channel as its receiver.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::TooManyAttached`] (a live receiver exists), ...
    pub fn open(opts: &ChannelOptions) -> Result<Receiver, SegmentError> {
        Receiver::claim(Channel::open(opts, bytes_layout(opts), false)?)
    }

    /// Opens the channel, creating it if needed.
    ///
    /// # Errors
    /// As [`Receiver::open`] and [`Receiver::create`].
    pub fn open_or_create(opts: &ChannelOptions) -> Result<Receiver, SegmentError> {
        Receiver::claim(Channel::open_or_create(opts, bytes_layout(opts), false)?)
    }

    fn claim(ch: Channel) -> Result<Receiver, SegmentError> {
        let me = ch.seg.token();
        let ctl = ch.ctl();
        let owner = ctl.receiver.load(Ordering::Acquire);
        let free = owner == 0 || !ch.seg.is_alive(owner);
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
        Ok(Receiver { ch, heads, next: 0 })
    }

    /// Largest message in bytes.
    pub fn max_message(&self) -> usize {
        self.ch.g.max_message
    }

    /// Where the channel lives.
    pub fn location(&self) -> &Location {
        self.ch.seg.location()
    }

    /// The lane holding the next message, round-robin, if any, with what
    /// `readable` found there (the length, or a corrupt one).
    fn ready_lane(&self) -> Option<Ready> {
        let lanes = self.ch.g.lanes;
        (0..lanes)
            .map(|k| (self.next + k) % lanes)
            .find_map(|l| spsc::readable(&self.ch.slots(l), self.heads[l]).map(|len| (l, len)))
    }

    /// Takes the message `ready_lane` found through `f`, then frees its slot.
    ///
    /// Uses the length `ready_lane` copied out and never looks at the
    /// slot's words again: a peer breaking the protocol could change them
    /// between two looks (a slot that was committed, then is not).
    fn take<R>(&mut self, (lane, len): Ready, f: impl FnOnce(&[u8]) -> R) -> Result<R, u64> {
        let slots = self.ch.slots(lane);
        let head = self.heads[lane];
        let out = match len {
            Ok(len) => {
                let i = spsc::index(&slots, head);
                // SAFETY: the slot at our head is committed (seq == head + 1)
                // and stays ours until `release`: no sender following the
                // protocol writes it meanwhile.
                Ok(
                    unsafe { slots.region.with_bytes(slots.data_offset(i), len, f) }
                        .expect("len <= max_message"),
                ) // checked by readable
            }
            Err(bad) => Err(bad),
        };
        self.heads[lane] = spsc::release(self.ch.lane(lane), head);
        self.next = if lane + 1 == self.ch.g.lanes {
            0
        } else {
            lane + 1
        };
        self.ch.bell(TX_BELL_OFFSET).ring();
        out
    }

    fn recv_until<R>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, RecvTimeoutError> {
        let ready = match self.ready_lane() {
            Some(r) => r,
            None => {
                let mut found = None;
                let woke = self
                    .ch
                    .bell(RX_BELL_OFFSET)
                    .wait_until(self.ch.wait, deadline, || {
                        found = self.ready_lane();
                        found.is_some()
                    });
                match (woke, found) {
                    (true, Some(r)) => r,
                    _ => return Err(RecvTimeoutError::Timeout),
                }
            }
        };
        self.take(ready, f)
            .map_err(|len| RecvTimeoutError::Corrupt { len })
    }

    /// Runs `f` on the next message in place (zero-copy), if one is waiting,
    /// then frees its slot.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], [`TryRecvError::Corrupt`].
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, TryRecvError> {
        let Some(ready) = self.ready_lane() else {
            return Err(TryRecvError::Empty);
        };
        self.take(ready, f)
            .map_err(|len| TryRecvError::Corrupt { len })
    }

    /// Runs `f` on the next message in place, waiting as long as it takes.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Corrupt`] only.
    pub fn recv_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvTimeoutError> {
        self.recv_until(None, f)
    }

    /// Runs `f` on the next message in place, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], [`RecvTimeoutError::Corrupt`].
    pub fn recv_timeout_with<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, RecvTimeoutError> {
        self.recv_until(Some(Instant::now() + timeout), f)
    }

    /// Runs `f` on the next message in place, waiting until `deadline`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], [`RecvTimeoutError::Corrupt`].
    pub fn recv_deadline_with<R>(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, RecvTimeoutError> {
        self.recv_until(Some(deadline), f)
    }

    /// Takes the next message if one is waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], [`TryRecvError::Corrupt`].
    pub fn try_recv(&mut self) -> Result<Vec<u8>, TryRecvError> {
        self.try_recv_with(<[u8]>::to_vec)
    }

    /// Takes the next message, waiting as long as it takes.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Corrupt`] only.
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_with(<[u8]>::to_vec)
    }

    /// Takes the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], [`RecvTimeoutError::Corrupt`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_timeout_with(timeout, <[u8]>::to_vec)
    }

    /// Takes the next message, waiting until `deadline`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], [`RecvTimeoutError::Corrupt`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_deadline_with(deadline, <[u8]>::to_vec)
    }

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
        let me = self.ch.seg.token();
        let _ = self
            .ch
            .ctl()
            .receiver
            .compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

fn bytes_layout(opts: &ChannelOptions) -> Fingerprint {
    Fingerprint::new("bytes", opts.max_message as u64, 1)
}

/// The sending end of a typed channel of plain-data `T`.
///
/// The channel records `T`'s [`Fingerprint`]; opening it with another type
/// fails with [`SegmentError::LayoutMismatch`].
#[derive(Debug)]
pub struct PodSender<T: Pod> {
    inner: Sender,
    _t: PhantomData<fn(T)>,
}

/// The receiving end of a typed channel of plain-data `T`.
#[derive(Debug)]
pub struct PodReceiver<T: Pod> {
    inner: Receiver,
    _t: PhantomData<fn() -> T>,
}

fn pod_opts<T>(opts: &ChannelOptions) -> ChannelOptions {
    opts.clone().max_message(std::mem::size_of::<T>().max(1))
}

impl<T: Pod> PodSender<T> {
    /// Creates a typed channel and attaches as a sender.
    ///
    /// # Errors
    /// As [`Sender::create`].
    pub fn create(opts: &ChannelOptions) -> Result<Self, SegmentError> {
        let o = pod_opts::<T>(opts);
        Ok(PodSender {
            inner: Sender::claim(Channel::create(&o, Fingerprint::of::<T>())?)?,
            _t: PhantomData,
        })
    }

    /// Opens a typed channel as a sender; the layout of `T` must match.
    ///
    /// # Errors
    /// As [`Sender::open`], and [`SegmentError::LayoutMismatch`].
    pub fn open(opts: &ChannelOptions) -> Result<Self, SegmentError> {
        let o = pod_opts::<T>(opts);
        Ok(PodSender {
            inner: Sender::claim(Channel::open(&o, Fingerprint::of::<T>(), true)?)?,
            _t: PhantomData,
        })
    }

    /// Opens or creates a typed channel as a sender.
    ///
    /// # Errors
    /// As [`PodSender::open`] and [`PodSender::create`].
    pub fn open_or_create(opts: &ChannelOptions) -> Result<Self, SegmentError> {
        let o = pod_opts::<T>(opts);
        let ch = Channel::open_or_create(&o, Fingerprint::of::<T>(), true)?;
        Ok(PodSender {
            inner: Sender::claim(ch)?,
            _t: PhantomData,
        })
    }

    /// Sends `value` if there is room now; hands it back if not.
    ///
    /// # Errors
    /// [`TrySendError::Full`].
    pub fn try_send(&mut self, value: T) -> Result<(), TrySendError<T>> {
        self.inner
            .try_send(bytemuck::bytes_of(&value))
            .map_err(|_| TrySendError::Full(value))
    }

    /// Sends `value`, waiting for room as long as it takes.
    pub fn send(&mut self, value: T) {
        let _ = self.inner.send(bytemuck::bytes_of(&value));
    }

    /// Sends `value`, waiting at most `timeout`; hands it back on timeout.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`].
    pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline(value, Instant::now() + timeout)
    }

    /// Sends `value`, waiting until `deadline`; hands it back on timeout.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`].
    pub fn send_deadline(
        &mut self,
        value: T,
        deadline: Instant,
    ) -> Result<(), SendTimeoutError<T>> {
        self.inner
            .send_deadline(bytemuck::bytes_of(&value), deadline)
            .map_err(|_| SendTimeoutError::Timeout(value))
    }
}

fn to_pod<T: Pod>(bytes: &[u8]) -> Option<T> {
    // Copy out, then check the length: a peer may have stored any length.
    (bytes.len() == std::mem::size_of::<T>()).then(|| bytemuck::pod_read_unaligned(bytes))
}

impl<T: Pod> PodReceiver<T> {
    /// Creates a typed channel and attaches as its receiver.
    ///
    /// # Errors
    /// As [`Receiver::create`].
    pub fn create(opts: &ChannelOptions) -> Result<Self, SegmentError> {
        let o = pod_opts::<T>(opts);
        Ok(PodReceiver {
            inner: Receiver::claim(Channel::create(&o, Fingerprint::of::<T>())?)?,
            _t: PhantomData,
        })
    }

    /// Opens a typed channel as its receiver; the layout of `T` must match.
    ///
    /// # Errors
    /// As [`Receiver::open`], and [`SegmentError::LayoutMismatch`].
    pub fn open(opts: &ChannelOptions) -> Result<Self, SegmentError> {
        let o = pod_opts::<T>(opts);
        Ok(PodReceiver {
            inner: Receiver::claim(Channel::open(&o, Fingerprint::of::<T>(), true)?)?,
            _t: PhantomData,
        })
    }

    /// Opens or creates a typed channel as its receiver.
    ///
    /// # Errors
    /// As [`PodReceiver::open`] and [`PodReceiver::create`].
    pub fn open_or_create(opts: &ChannelOptions) -> Result<Self, SegmentError> {
        let o = pod_opts::<T>(opts);
        let ch = Channel::open_or_create(&o, Fingerprint::of::<T>(), true)?;
        Ok(PodReceiver {
            inner: Receiver::claim(ch)?,
            _t: PhantomData,
        })
    }

    /// Takes the next value if one is waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], [`TryRecvError::Corrupt`] (a message of the wrong size).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.inner
            .try_recv_with(|b| to_pod::<T>(b).ok_or(b.len() as u64))?
            .map_err(|len| TryRecvError::Corrupt { len })
    }

    /// Takes the next value, waiting as long as it takes.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Corrupt`] only.
    pub fn recv(&mut self) -> Result<T, RecvTimeoutError> {
        self.inner
            .recv_with(|b| to_pod::<T>(b).ok_or(b.len() as u64))?
            .map_err(|len| RecvTimeoutError::Corrupt { len })
    }

    /// Takes the next value, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], [`RecvTimeoutError::Corrupt`].
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline(Instant::now() + timeout)
    }

    /// Takes the next value, waiting until `deadline`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], [`RecvTimeoutError::Corrupt`].
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.inner
            .recv_deadline_with(deadline, |b| to_pod::<T>(b).ok_or(b.len() as u64))?
            .map_err(|len| RecvTimeoutError::Corrupt { len })
    }
}

/// What `mapshare info` shows about a channel, read without attaching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStats {
    /// Slots per sender lane.
    pub capacity: usize,
    /// Largest message in bytes.
    pub max_message: usize,
    /// Lanes (senders at once).
    pub lanes: usize,
    /// Per lane: (messages waiting, messages sent since creation, owned by a sender).
    pub depth: Vec<(u64, u64, bool)>,
}

impl Channel {
    fn stats(&self) -> ChannelStats {
        let depth = (0..self.g.lanes)
            .map(|l| {
                let w = self.lane(l);
                let waiting = w
                    .tail
                    .load(Ordering::Relaxed)
                    .wrapping_sub(w.head.load(Ordering::Relaxed));
                let owner = w.owner.load(Ordering::Relaxed);
                (
                    waiting.min(self.g.capacity as u64),
                    w.tail.load(Ordering::Relaxed).wrapping_sub(self.g.base),
                    owner != 0 && self.seg.is_alive(owner),
                )
            })
            .collect();
        ChannelStats {
            capacity: self.g.capacity,
            max_message: self.g.max_message,
            lanes: self.g.lanes,
            depth,
        }
    }
}

impl Sender {
    /// Queue depth and lane owners (a snapshot).
    pub fn stats(&self) -> ChannelStats {
        self.ch.stats()
    }
}

impl Receiver {
    /// Queue depth and lane owners (a snapshot).
    pub fn stats(&self) -> ChannelStats {
        self.ch.stats()
    }
}

/// Reads the statistics of the channel `opts` names: queue depth per lane,
/// messages sent, whether a live sender owns each lane.
///
/// It attaches to the segment for the duration of the call (so it shows in
/// the registry meanwhile) and takes no role; nothing is written.
///
/// # Errors
/// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`] (not a
/// channel), [`SegmentError::Header`] (corrupt geometry), ...
pub fn channel_stats(opts: &SegmentOptions) -> Result<ChannelStats, SegmentError> {
    let o = ChannelOptions::with_segment(opts.clone());
    Ok(Channel::open(&o, Fingerprint::new("bytes", 0, 1), false)?.stats())
}
