//! The broadcast ring under pub/sub: one publisher, up to
//! [`MAX_SUBSCRIBERS`] subscribers that join and leave at any time, each
//! reading every message at its own pace.
//!
//! This file holds the shared structures, the geometry, the byte copies
//! and the ring's construction; the publisher's side is in `publisher.rs`,
//! the subscribers' in `subscriber.rs`.
//!
//! # What lives in shared memory, and who writes it
//!
//! | struct / word | writer | readers |
//! |---|---|---|
//! | [`Control`] geometry, `format` | the creator, once | openers copy it out and validate it, once |
//! | [`Control`] `publisher` | a publisher claiming (CAS) or leaving the role | subscribers (disconnection), would-be publishers |
//! | [`Control`] `joins`, `high` | joining subscribers | the publisher (lossless pacing) |
//! | [`TailLine`] `tail` | the publisher, after each message | subscribers |
//! | [`TailLine`] `want` | a lossless publisher, before it sleeps for room | subscribers, after each advance |
//! | [`SubSlot`] `owner` | its subscriber (claim, leave); the publisher (freeing a dead one, CAS) | the publisher |
//! | [`SubSlot`] `cursor` | its subscriber, after each message | the publisher (lossless pacing), `info` |
//! | message slots | the publisher | subscribers |
//!
//! The message slot of position `p` is `stride` words at index
//! `p & (capacity - 1)`: `seq`, `len`, six reserved words, then the data
//! on their own 64-byte lines. Its `seq` word:
//!
//! | `seq` | meaning |
//! |---|---|
//! | `2p + 2` | holds the message of position `p` |
//! | `2p + 1` | the publisher is writing position `p` |
//! | anything else | another position (older: not written yet; newer: overwritten), or garbage |
//!
//! # Algorithm
//! Each slot is a seqlock (H.-J. Boehm, "Can Seqlocks Get Along With
//! Programming Language Memory Models?", MSPC 2012): the publisher stores
//! the odd marker, fences with Release, writes, and stores the even value
//! with Release; a subscriber loads `seq` with Acquire, copies `len` and the
//! data out, fences with Acquire and loads `seq` again. If it changed, the
//! copy may be torn and is thrown away. On an overwrite-oldest ring, where
//! a lapped subscriber's copy races the publisher by design, data move
//! through relaxed `AtomicU64` words ([`store_bytes`], [`load_bytes`]), so
//! this race is defined behaviour in Rust's memory model (and clean under
//! TSan, miri and loom), not only in practice. On a lossless ring nothing
//! races the copy while every process follows the protocol (the publisher
//! never writes a slot a live, paced subscriber has not passed), so data
//! move by the bulk volatile copy of `region` (32-byte loads), and a
//! subscriber may even lend a slot in place ([`Ring::try_lend`]); the
//! `seq` re-check stays, against peers that break the protocol.
//!
//! A lossless publisher that must sleep for room publishes in `want` the
//! cursor the slowest subscriber must reach for room for a quarter of the
//! ring; only the subscriber advance that crosses it rings the room bell
//! (Dekker between the cursor store and the `want` load), and each sleep
//! slice (5 ms) ends with room for one message taken if the batch has not
//! come.
//!
//! Two policies:
//! - **Lossless**: before writing position `p` the publisher checks that no
//!   live subscriber's cursor is at or below `p - capacity` (the Disruptor's
//!   gating sequences). It keeps the slowest cursor of its last scan and
//!   rescans only when that one would block it, or when a subscriber has
//!   joined since. A subscriber that blocks it and whose liveness token is
//!   dead (killed with SIGKILL) is dropped: its slot is freed by a CAS on the
//!   exact token.
//! - **Overwrite-oldest**: the publisher never waits. A subscriber lapped by
//!   it sees a newer `seq` (or a `tail` more than `capacity` ahead), moves to
//!   the oldest message still in the ring and is told how many it missed
//!   (tokio's broadcast `Lagged`).
//!
//! # Joining
//! A subscriber claims a slot (CAS `owner` 0 -> token), stores
//! `cursor = c` (the tail it read), increments `joins`, and reads `tail`
//! again with a read-modify-write (`fetch_add(0)`). The publisher stores
//! every tail with a `swap`, so all writes to `tail` form one release
//! sequence. If the re-read found `t < c + capacity`, the join holds: the
//! publisher's swap of `tail = c + capacity`, which it makes before it may
//! overwrite position `c`, comes after our re-read in `tail`'s modification
//! order, so it synchronizes with it; its `joins` load before writing that
//! position then sees our increment, and its rescan sees our cursor.
//! Otherwise the subscriber starts again from the newer tail (bounded).
//! This argument needs only acquire/release on read-modify-writes, so it
//! holds in loom's model too (which treats `SeqCst` accesses more weakly
//! than C++ does); a plain `SeqCst` load/store version failed there.
//!
//! # What a crash leaves
//! - A publisher killed mid-write leaves one slot marked odd and `tail`
//!   not advanced: subscribers wait as if nothing had been sent. The next
//!   publisher takes over the dead token and rewrites that position.
//! - A subscriber killed leaves its slot owned by a dead token: a lossless
//!   publisher frees it when it would block on it; a joiner may reuse it.
//!
//! # What a hostile peer can do
//! Anyone who can write the segment can make subscribers lose, repeat or
//! misread messages, and can stall a lossless publisher by posing as a live,
//! slow subscriber. It cannot make us read or write out of bounds, panic,
//! allocate more than `max_message` per message, or spin without end: every
//! index is masked, every length clamped, geometry is copied out once, and
//! every loop is bounded or sleeps with a deadline.

use std::time::{Duration, Instant};

use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::sync::doorbell::Doorbell;

mod publisher;
mod subscriber;

/// Subscribers attached at once, at most.
pub const MAX_SUBSCRIBERS: usize = 128;
/// Largest ring, in messages.
pub(crate) const MAX_CAPACITY: usize = 1 << 20;
/// Largest message, in bytes (16 MiB).
pub(crate) const MAX_MESSAGE: usize = 1 << 24;
/// Words of slot header before the data: `seq`, `len` and six reserved
/// words, so the data start on their own 64-byte line (slots are 64-byte
/// multiples and the ring is 64-byte aligned).
pub(crate) const SLOT_HEADER_WORDS: usize = 8;
/// How often a waiting publisher asks the registry whether the subscriber
/// it waits for is still alive (each ask is a system call).
const LIVENESS_POLL: Duration = Duration::from_millis(5);
/// Join attempts before a subscriber accepts a cursor the publisher may
/// already have lapped (it then sees a `Lagged` first).
const JOIN_ATTEMPTS: u32 = 64;

const POLICY_LOSSLESS: u32 = 1;
const POLICY_OVERWRITE: u32 = 2;

/// What a publisher does when the slowest subscriber is a full ring behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Wait for it: every live subscriber sees every message. The slowest
    /// live subscriber paces the publisher; a dead one is dropped.
    Lossless,
    /// Overwrite the oldest message: the publisher never waits, and a
    /// lagging subscriber is told how many messages it missed.
    OverwriteOldest,
}

impl Policy {
    fn to_word(self) -> u32 {
        match self {
            Policy::Lossless => POLICY_LOSSLESS,
            Policy::OverwriteOldest => POLICY_OVERWRITE,
        }
    }

    fn from_word(w: u32) -> Option<Policy> {
        match w {
            POLICY_LOSSLESS => Some(Policy::Lossless),
            POLICY_OVERWRITE => Some(Policy::OverwriteOldest),
            _ => None,
        }
    }
}

/// The control line. Geometry words are written once by the creator;
/// openers copy them out and validate them ([`Geometry::read`]), and never
/// read them again.
///
/// | word | writer | values |
/// |---|---|---|
/// | `capacity` | creator | messages in the ring, a power of two |
/// | `max_message` | creator | largest message in bytes |
/// | `base` | creator | first position (informational; tests start near `u64::MAX`) |
/// | `policy` | creator | `POLICY_LOSSLESS` or `POLICY_OVERWRITE` |
/// | `publisher` | publisher (CAS in, CAS out) | its liveness token; 0 none |
/// | `publishers` | a publisher, once it holds the role (`fetch_add`) | any value; only changes matter |
/// | `joins` | joining subscribers (`fetch_add`) | any value; only changes matter |
/// | `high` | joining subscribers (`fetch_max`) | slots ever claimed + 1; clamped on read |
/// | `format` | creator | [`RING_FORMAT`]: the slot layout and the protocol words in use |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Control {
    capacity: AtomicU64,
    max_message: AtomicU64,
    base: AtomicU64,
    policy: AtomicU32,
    publisher: AtomicU32,
    joins: AtomicU64,
    high: AtomicU32,
    publishers: AtomicU32,
    format: AtomicU64,
    _pad: [u64; 9],
}

/// The ring's format word: 2 for slots with a 64-byte header line and the
/// tail line's `want` word. A ring made before them has 0 there (padding)
/// and is refused, never misread.
pub(crate) const RING_FORMAT: u64 = 2;

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<Control>() == 128);

/// The publisher's position, alone on its line.
///
/// | word | writer | values |
/// |---|---|---|
/// | `tail` | publisher | next position it will write; every earlier one is published |
/// | `want` | a lossless publisher, before it sleeps for room | the cursor the slowest subscriber must reach; subscribers whose cursor crosses it ring the room bell |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct TailLine {
    tail: AtomicU64,
    want: AtomicU64,
    _pad: [u64; 14],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<TailLine>() == 128);

/// One subscriber's slot, alone on its line.
///
/// | word | writer | values |
/// |---|---|---|
/// | `owner` | subscriber (CAS 0 -> token, token -> 0); publisher (dead token -> 0) | 0 free, else a liveness token |
/// | `pid` | subscriber | informational |
/// | `cursor` | subscriber | next position it will read |
/// | `missed` | subscriber | messages it was told it missed (informational) |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct SubSlot {
    owner: AtomicU32,
    pid: AtomicU32,
    cursor: AtomicU64,
    missed: AtomicU64,
    _pad: [u64; 13],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<SubSlot>() == 128);
crate::pod::shm_state!(Control, "AtomicU64s, AtomicU32s and u64 padding; repr(C)");
crate::pod::shm_state!(TailLine, "two AtomicU64s and u64 padding; repr(C)");
crate::pod::shm_state!(SubSlot, "AtomicU32s, AtomicU64s and u64 padding; repr(C)");

impl Control {
    /// The publisher's liveness token word, as stored (for the registry).
    pub(crate) fn publisher_token(&self) -> u32 {
        self.publisher.load(Ordering::Relaxed)
    }

    /// Whether the format word is this build's [`RING_FORMAT`].
    pub(crate) fn has_format(&self) -> bool {
        self.format.load(Ordering::Relaxed) == RING_FORMAT
    }
}

#[cfg(test)]
impl Control {
    fn new() -> Control {
        Control {
            capacity: AtomicU64::new(0),
            max_message: AtomicU64::new(0),
            base: AtomicU64::new(0),
            policy: AtomicU32::new(0),
            publisher: AtomicU32::new(0),
            joins: AtomicU64::new(0),
            high: AtomicU32::new(0),
            publishers: AtomicU32::new(0),
            format: AtomicU64::new(0),
            _pad: [0; 9],
        }
    }
}

#[cfg(test)]
impl TailLine {
    fn new() -> TailLine {
        TailLine {
            tail: AtomicU64::new(0),
            want: AtomicU64::new(0),
            _pad: [0; 14],
        }
    }
}

impl SubSlot {
    /// The subscriber's liveness token word, as stored (for the registry).
    pub(crate) fn owner_token(&self) -> u32 {
        self.owner.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
impl SubSlot {
    fn new() -> SubSlot {
        SubSlot {
            owner: AtomicU32::new(0),
            pid: AtomicU32::new(0),
            cursor: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            _pad: [0; 13],
        }
    }
}

/// Validated geometry, a process-local copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Messages in the ring, a power of two.
    pub(crate) capacity: usize,
    /// Largest message in bytes.
    pub(crate) max_message: usize,
    /// Words per slot (a multiple of 8: 64-byte slots; the data start at
    /// word [`SLOT_HEADER_WORDS`]).
    pub(crate) stride: usize,
    /// The policy.
    pub(crate) policy: Policy,
    /// First position.
    pub(crate) base: u64,
}

impl Geometry {
    /// Geometry for a new ring; `capacity` is rounded up to a power of two.
    /// `None` when a value is out of range.
    pub(crate) fn new(
        capacity: usize,
        max_message: usize,
        policy: Policy,
        base: u64,
    ) -> Option<Geometry> {
        if capacity == 0 || capacity > MAX_CAPACITY || max_message > MAX_MESSAGE {
            return None;
        }
        let stride = SLOT_HEADER_WORDS + max_message.div_ceil(64) * 8;
        let g = Geometry {
            capacity: capacity.next_power_of_two(),
            max_message,
            stride,
            policy,
            base,
        };
        g.words()?;
        Some(g)
    }

    /// Words the message slots take.
    pub(crate) fn words(&self) -> Option<usize> {
        self.capacity.checked_mul(self.stride)
    }

    /// Copies the geometry out of a control line and validates it: the
    /// format word must be [`RING_FORMAT`] and the stored values exactly
    /// what [`Geometry::new`] derives.
    pub(crate) fn read(ctl: &Control) -> Option<Geometry> {
        if ctl.format.load(Ordering::Relaxed) != RING_FORMAT {
            return None;
        }
        let capacity = ctl.capacity.load(Ordering::Relaxed);
        let max_message = ctl.max_message.load(Ordering::Relaxed);
        let policy = Policy::from_word(ctl.policy.load(Ordering::Relaxed))?;
        let base = ctl.base.load(Ordering::Relaxed);
        let g = Geometry::new(
            usize::try_from(capacity).ok()?,
            usize::try_from(max_message).ok()?,
            policy,
            base,
        )?;
        (g.capacity as u64 == capacity).then_some(g)
    }

    fn cap(&self) -> u64 {
        self.capacity as u64
    }
}

/// The seq word of a slot holding position `pos`.
fn published(pos: u64) -> u64 {
    pos.wrapping_mul(2).wrapping_add(2)
}

/// The seq word of a slot while the publisher writes position `pos`.
fn writing(pos: u64) -> u64 {
    pos.wrapping_mul(2).wrapping_add(1)
}

/// Whether a wrapping distance is "behind" (the upper half of `u64`).
fn is_negative(d: u64) -> bool {
    d > i64::MAX as u64
}

/// Copies `bytes` into `words` with relaxed stores (native byte order, the
/// last word zero-padded). `false`, storing nothing, if they do not fit.
pub(crate) fn store_bytes(words: &[AtomicU64], bytes: &[u8]) -> bool {
    if bytes.len().div_ceil(8) > words.len() {
        return false;
    }
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    let full = bytes.len() / 8;
    for (w, c) in words.iter().zip(chunks) {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        w.store(u64::from_ne_bytes(a), Ordering::Relaxed);
    }
    if !rest.is_empty() {
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        if let Some(w) = words.get(full) {
            w.store(u64::from_ne_bytes(a), Ordering::Relaxed);
        }
    }
    true
}

/// Fills `out` from `words` with relaxed loads. `false`, filling nothing,
/// if `words` is too short.
pub(crate) fn load_bytes(words: &[AtomicU64], out: &mut [u8]) -> bool {
    if out.len().div_ceil(8) > words.len() {
        return false;
    }
    let full = out.len() / 8;
    let mut chunks = out.chunks_exact_mut(8);
    for (w, c) in words.iter().zip(&mut chunks) {
        c.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        if let Some(w) = words.get(full) {
            let a = w.load(Ordering::Relaxed).to_ne_bytes();
            let n = rest.len();
            rest.copy_from_slice(&a[..n]);
        }
    }
    true
}

/// A ring: typed views of its shared parts and its validated geometry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring<'a> {
    ctl: &'a Control,
    tail: &'a TailLine,
    data_bell: &'a Doorbell,
    room_bell: &'a Doorbell,
    subs: &'a [SubSlot],
    words: &'a [AtomicU64],
    g: Geometry,
}

/// The publisher's private state. Its `tail` is authoritative: the shared
/// one is only a mirror for subscribers.
#[derive(Debug)]
pub(crate) struct PubState {
    token: u32,
    tail: u64,
    /// The slowest live cursor of the last scan.
    min_cursor: u64,
    /// `joins` as of the last scan.
    joins_seen: u64,
    scanned: bool,
    last_liveness: Option<Instant>,
}

impl PubState {
    /// Next position to write.
    pub(crate) fn tail(&self) -> u64 {
        self.tail
    }
}

/// A subscriber's private state. Its `cursor` is authoritative: the shared
/// one is only a mirror for the publisher.
#[derive(Debug)]
pub(crate) struct SubState {
    token: u32,
    /// Our slot, or `None` if we lost it (see [`Ring::try_recv`]).
    slot: Option<usize>,
    /// Whether our last join (or rejoin) held, so the publisher paces us
    /// and we may lend slots in place.
    lendable: bool,
    cursor: u64,
    /// The publisher token last asked about, the answer, and when.
    pub_seen: u32,
    pub_alive: bool,
    pub_checked: Option<Instant>,
    /// At our join: whether a live publisher held the ring, and the
    /// `publishers` count. A subscriber that joined a ring without one is
    /// disconnected only once a publisher has come since (and gone).
    pub_at_join: bool,
    publishers_at_join: u32,
}

impl SubState {
    /// Next position to read.
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }
}

/// Why a publish did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PubFail {
    /// Longer than the ring's `max_message`.
    TooLarge,
    /// Lossless: a live subscriber is a full ring behind (until the deadline).
    Full,
    /// The segment shrank while we waited (see [`Liveness::intact`](crate::sync::Liveness::intact)).
    Truncated,
}

/// What one receive attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recv {
    /// A message, now in the buffer.
    Message,
    /// The publisher lapped us: this many messages are gone. The cursor
    /// has moved to the oldest message still in the ring.
    Lagged(u64),
    /// Nothing new (or the deadline passed).
    Empty,
    /// Nothing new, and no live publisher.
    Disconnected,
    /// The slot of `pos` held garbage (a length of `len` bytes, or a
    /// sequence word that contradicts `tail`); it was skipped.
    Corrupt { pos: u64, len: u64 },
    /// The segment shrank while we waited (see [`Liveness::intact`](crate::sync::Liveness::intact)).
    Truncated,
}

/// What the slot of a position held.
enum SlotRead {
    Ok,
    Newer,
    Older,
    BadLen(u64),
}

/// How [`Ring::try_lend`] delivered a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lent {
    /// In its slot: `len` bytes of the slot of `pos`, until consumed.
    InPlace { pos: u64, len: usize },
    /// Copied into the caller's buffer (the ring cannot lend).
    Copied,
}

/// What the shared part of a receive attempt found: a good slot at a
/// position, or the outcome to return.
enum Took {
    Read(u64),
    Done(Recv),
}

/// One subscriber, as `info` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubView {
    pub(crate) slot: usize,
    pub(crate) pid: u32,
    pub(crate) cursor: u64,
    pub(crate) missed: u64,
    pub(crate) alive: bool,
}

impl<'a> Ring<'a> {
    /// A ring over its parts (1 to [`MAX_SUBSCRIBERS`] subscriber slots);
    /// `None` if the parts do not match the geometry.
    pub(crate) fn new(
        ctl: &'a Control,
        tail: &'a TailLine,
        data_bell: &'a Doorbell,
        room_bell: &'a Doorbell,
        subs: &'a [SubSlot],
        words: &'a [AtomicU64],
        g: Geometry,
    ) -> Option<Ring<'a>> {
        let subs_ok = !subs.is_empty() && subs.len() <= MAX_SUBSCRIBERS;
        (subs_ok && words.len() >= g.words()?).then_some(Ring {
            ctl,
            tail,
            data_bell,
            room_bell,
            subs,
            words,
            g,
        })
    }

    /// Sets up an empty ring; the creator only, before publishing.
    pub(crate) fn init(&self) {
        let g = self.g;
        self.ctl.capacity.store(g.cap(), Ordering::Relaxed);
        self.ctl
            .max_message
            .store(g.max_message as u64, Ordering::Relaxed);
        self.ctl.base.store(g.base, Ordering::Relaxed);
        self.ctl.policy.store(g.policy.to_word(), Ordering::Relaxed);
        self.ctl.format.store(RING_FORMAT, Ordering::Relaxed);
        self.ctl.publisher.store(0, Ordering::Relaxed);
        self.ctl.joins.store(0, Ordering::Relaxed);
        self.ctl.high.store(0, Ordering::Relaxed);
        self.tail.tail.store(g.base, Ordering::Relaxed);
        self.tail.want.store(g.base, Ordering::Relaxed);
        self.data_bell.init();
        self.room_bell.init();
        for s in self.subs {
            s.owner.store(0, Ordering::Relaxed);
            s.pid.store(0, Ordering::Relaxed);
            s.cursor.store(g.base, Ordering::Relaxed);
            s.missed.store(0, Ordering::Relaxed);
        }
        // Each slot says it holds the position one lap before the first
        // one that will use it: "older", so nobody reads it as a message.
        for k in 0..g.cap() {
            let pos = g.base.wrapping_add(k);
            if let Some((seq, len, _)) = self.slot(pos) {
                seq.store(published(pos.wrapping_sub(g.cap())), Ordering::Relaxed);
                len.store(0, Ordering::Relaxed);
            }
        }
    }

    /// The `seq`, `len` and data words of the slot of `pos`. Always `Some`
    /// for a ring built by [`Ring::new`]; callers treat `None` as corrupt.
    pub(crate) fn slot(&self, pos: u64) -> Option<(&'a AtomicU64, &'a AtomicU64, &'a [AtomicU64])> {
        let i = (pos & (self.g.cap() - 1)) as usize;
        let start = i.checked_mul(self.g.stride)?;
        let words = self.words.get(start..start.checked_add(self.g.stride)?)?;
        match words {
            [seq, len, ..] => Some((seq, len, words.get(SLOT_HEADER_WORDS..)?)),
            _ => None,
        }
    }

    /// Byte offset of the data of `pos`'s slot from the start of the
    /// message words (for a zero-copy view of it).
    pub(crate) fn data_offset(&self, pos: u64) -> usize {
        let i = (pos & (self.g.cap() - 1)) as usize;
        (i * self.g.stride + SLOT_HEADER_WORDS) * 8 // in range: `words()` did not overflow
    }

    /// Whether message bytes move by the bulk volatile copy (a lossless
    /// ring: the publisher never writes a slot a subscriber may be reading,
    /// so nothing races the copy) rather than one relaxed atomic per word
    /// (overwrite-oldest: a lapped subscriber's copy races the publisher's
    /// by design, which the seqlock check detects and atomics make defined).
    fn bulk(&self) -> bool {
        cfg!(not(mapshare_loom)) && self.g.policy == Policy::Lossless
    }

    /// Copies `msg` into the data words of a slot, as [`Ring::bulk`] says.
    fn put(&self, data: &[AtomicU64], msg: &[u8]) {
        #[cfg(not(mapshare_loom))]
        if self.bulk() {
            crate::region::store_to_words(data, msg);
            return;
        }
        store_bytes(data, msg);
    }

    /// Fills `out` from the data words of a slot, as [`Ring::bulk`] says.
    fn get(&self, data: &[AtomicU64], out: &mut [u8]) {
        #[cfg(not(mapshare_loom))]
        if self.bulk() {
            crate::region::load_from_words(data, out);
            return;
        }
        load_bytes(data, out);
    }

    /// Messages published since creation (the shared tail minus the base).
    pub(crate) fn published(&self) -> u64 {
        self.tail
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.g.base)
    }

    /// The shared tail.
    pub(crate) fn tail(&self) -> u64 {
        self.tail.tail.load(Ordering::Acquire)
    }
}

#[cfg(test)]
pub(crate) mod heap;

#[cfg(all(test, not(mapshare_loom)))]
mod tests;
