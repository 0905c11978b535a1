//! The broadcast ring under pub/sub: one publisher, up to
//! [`MAX_SUBSCRIBERS`] subscribers that join and leave at any time, each
//! reading every message at its own pace.
//!
//! # What lives in shared memory, and who writes it
//!
//! | struct / word | writer | readers |
//! |---|---|---|
//! | [`Control`] geometry | the creator, once | openers copy it out and validate it, once |
//! | [`Control`] `publisher` | a publisher claiming (CAS) or leaving the role | subscribers (disconnection), would-be publishers |
//! | [`Control`] `joins`, `high` | joining subscribers | the publisher (lossless pacing) |
//! | [`TailLine`] `tail` | the publisher, after each message | subscribers |
//! | [`SubSlot`] `owner` | its subscriber (claim, leave); the publisher (freeing a dead one, CAS) | the publisher |
//! | [`SubSlot`] `cursor` | its subscriber, after each message | the publisher (lossless pacing), `info` |
//! | message slots | the publisher | subscribers |
//!
//! The message slot of position `p` is `stride` words at index
//! `p & (capacity - 1)`: `seq`, `len`, then the data. Its `seq` word:
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
//! copy may be torn and is thrown away. Data move through relaxed
//! `AtomicU64` words ([`store_bytes`], [`load_bytes`]), so this race is
//! defined behaviour in Rust's memory model (and clean under TSan, miri and
//! loom), not only in practice.
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

use crate::primitive::{fence, AtomicU32, AtomicU64, Ordering};
use crate::sync::doorbell::{Doorbell, WaitStrategy};
use crate::sync::Liveness;

/// Subscribers attached at once, at most.
pub const MAX_SUBSCRIBERS: usize = 128;
/// Largest ring, in messages.
pub(crate) const MAX_CAPACITY: usize = 1 << 20;
/// Largest message, in bytes (16 MiB).
pub(crate) const MAX_MESSAGE: usize = 1 << 24;
/// Words of slot header (`seq`, `len`) before the data.
const SLOT_HEADER_WORDS: usize = 2;
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
/// | `joins` | joining subscribers (`fetch_add`) | any value; only changes matter |
/// | `high` | joining subscribers (`fetch_max`) | slots ever claimed + 1; clamped on read |
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
    _r: AtomicU32,
    _pad: [u64; 10],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<Control>() == 128);

/// The publisher's position, alone on its line.
///
/// | word | writer | values |
/// |---|---|---|
/// | `tail` | publisher | next position it will write; every earlier one is published |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct TailLine {
    tail: AtomicU64,
    _pad: [u64; 15],
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
crate::pod::shm_state!(TailLine, "one AtomicU64 and u64 padding; repr(C)");
crate::pod::shm_state!(SubSlot, "AtomicU32s, AtomicU64s and u64 padding; repr(C)");

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
            _r: AtomicU32::new(0),
            _pad: [0; 10],
        }
    }
}

#[cfg(test)]
impl TailLine {
    fn new() -> TailLine {
        TailLine {
            tail: AtomicU64::new(0),
            _pad: [0; 15],
        }
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
    /// Words per slot (a multiple of 8: 64-byte slots).
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
        let stride = (SLOT_HEADER_WORDS + max_message.div_ceil(8)).div_ceil(8) * 8;
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
    /// stored values must be exactly what [`Geometry::new`] derives.
    pub(crate) fn read(ctl: &Control) -> Option<Geometry> {
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
    cursor: u64,
    /// The publisher token last asked about, the answer, and when.
    pub_seen: u32,
    pub_alive: bool,
    pub_checked: Option<Instant>,
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
    /// The segment shrank while we waited (see [`Liveness::intact`]).
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
    /// The segment shrank while we waited (see [`Liveness::intact`]).
    Truncated,
}

/// What the slot of a position held.
enum SlotRead {
    Ok,
    Newer,
    Older,
    BadLen(u64),
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
        self.ctl.publisher.store(0, Ordering::Relaxed);
        self.ctl.joins.store(0, Ordering::Relaxed);
        self.ctl.high.store(0, Ordering::Relaxed);
        self.tail.tail.store(g.base, Ordering::Relaxed);
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
    fn slot(&self, pos: u64) -> Option<(&'a AtomicU64, &'a AtomicU64, &'a [AtomicU64])> {
        let i = (pos & (self.g.cap() - 1)) as usize;
        let start = i.checked_mul(self.g.stride)?;
        let words = self.words.get(start..start.checked_add(self.g.stride)?)?;
        match words {
            [seq, len, data @ ..] => Some((seq, len, data)),
            _ => None,
        }
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

    // ---- publisher ----

    /// Takes the publisher role if it is free or its holder is dead.
    /// `Err(holder)` if a live publisher holds it.
    pub(crate) fn claim_publisher(&self, peers: &dyn Liveness) -> Result<PubState, u32> {
        let me = peers.token();
        let cur = self.ctl.publisher.load(Ordering::Acquire);
        if cur != 0 && cur != me && peers.is_alive(cur) {
            return Err(cur);
        }
        // Free or dead -> ours. The CAS on the exact value judged free or
        // dead lets one claimant win.
        // SYNC(publisher): AcqRel: Acquire pairs with the previous
        // publisher's Release in `release_publisher`, so its tail is visible.
        self.ctl
            .publisher
            .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed)?;
        // SYNC(tail): pairs with the SeqCst store in `publish`.
        let tail = self.tail.tail.load(Ordering::Acquire);
        Ok(PubState {
            token: me,
            tail,
            min_cursor: tail,
            joins_seen: 0,
            scanned: false,
            last_liveness: None,
        })
    }

    /// Gives the publisher role up and wakes waiting subscribers, so they
    /// see the disconnection.
    pub(crate) fn release_publisher(&self, st: &PubState) {
        // SYNC(publisher): Release (SeqCst) after our last tail store: a
        // subscriber that sees 0 sees every message we published. SeqCst
        // also orders it before the doorbell's load of its word.
        let _ =
            self.ctl
                .publisher
                .compare_exchange(st.token, 0, Ordering::SeqCst, Ordering::Relaxed);
        self.data_bell.ring();
    }

    /// Whether the publisher may write position `st.tail` now.
    fn has_room(&self, st: &mut PubState, peers: &dyn Liveness) -> bool {
        if self.g.policy == Policy::OverwriteOldest {
            return true;
        }
        let p = st.tail;
        // SYNC(join): happens after a joiner's increment once our `tail`
        // swap has acquired from its `fetch_add(0)` (module doc, "Joining").
        let joins = self.ctl.joins.load(Ordering::SeqCst);
        if st.scanned && joins == st.joins_seen && p.wrapping_sub(st.min_cursor) < self.g.cap() {
            return true;
        }
        st.joins_seen = joins;
        st.scanned = true;
        let check = st
            .last_liveness
            .is_none_or(|t| t.elapsed() >= LIVENESS_POLL);
        let (min, blocked, checked) = self.scan(p, peers, check);
        if checked {
            st.last_liveness = Some(Instant::now());
        }
        st.min_cursor = min;
        !blocked
    }

    /// Finds the slowest live cursor relative to `p`; drops dead blockers
    /// when `check_liveness`. Returns (slowest cursor, blocked, asked the
    /// registry).
    fn scan(&self, p: u64, peers: &dyn Liveness, check_liveness: bool) -> (u64, bool, bool) {
        let cap = self.g.cap();
        // SYNC(join): as for `joins` in `has_room`.
        let high = (self.ctl.high.load(Ordering::SeqCst) as usize).min(MAX_SUBSCRIBERS);
        let (mut min, mut max_lag, mut blocked, mut checked) = (p, 0u64, false, false);
        for s in self.subs.iter().take(high) {
            let owner = s.owner.load(Ordering::SeqCst);
            if owner == 0 {
                continue;
            }
            // SYNC(cursor): SeqCst (Acquire) pairs with the subscriber's
            // SeqCst store in `advance`: its copy of a message happens
            // before we overwrite the slot.
            let c = s.cursor.load(Ordering::SeqCst);
            let lag = p.wrapping_sub(c);
            if is_negative(lag) {
                // Ahead of the publisher: garbage (cursors never pass the
                // tail). It does not pace us.
                continue;
            }
            if lag >= cap {
                if check_liveness {
                    checked = true;
                    if !peers.is_alive(owner) {
                        // Dead (or garbage) owner -> free. The CAS on the
                        // exact token leaves a slot re-claimed meanwhile alone.
                        let _ =
                            s.owner
                                .compare_exchange(owner, 0, Ordering::SeqCst, Ordering::Relaxed);
                        continue;
                    }
                }
                blocked = true;
            }
            if lag > max_lag {
                max_lag = lag;
                min = c;
            }
        }
        (min, blocked, checked)
    }

    /// Writes `msg` at `st.tail` and publishes it. With `wait`, a lossless
    /// publisher waits for room as the strategy says until the deadline.
    pub(crate) fn publish(
        &self,
        st: &mut PubState,
        msg: &[u8],
        peers: &dyn Liveness,
        wait: Option<(WaitStrategy, Option<Instant>)>,
    ) -> Result<(), PubFail> {
        if msg.len() > self.g.max_message {
            return Err(PubFail::TooLarge);
        }
        if !self.has_room(st, peers) {
            let Some((strategy, deadline)) = wait else {
                return Err(PubFail::Full);
            };
            // Wait in slices of LIVENESS_POLL: nobody rings the bell when a
            // subscriber dies, so each slice ends with a look at whether the
            // one we wait for is still alive (in `has_room`).
            loop {
                let slice = Instant::now() + LIVENESS_POLL;
                let until = deadline.map_or(slice, |d| d.min(slice));
                if self
                    .room_bell
                    .wait_until(strategy, Some(until), &|| peers.intact(), || {
                        self.has_room(st, peers)
                    })
                {
                    break;
                }
                // Asked again only when no room came (a sleep may have
                // ended it early): the pages of a shrunk segment are gone.
                if !peers.intact() {
                    return Err(PubFail::Truncated);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(PubFail::Full);
                }
            }
        }
        let pos = st.tail;
        if let Some((seq, len, data)) = self.slot(pos) {
            seq.store(writing(pos), Ordering::Relaxed);
            // SYNC(slot-fence): Release fence orders the odd marker before
            // the data stores; pairs with the subscriber's Acquire fence in
            // `read_slot`: a reader that saw any new data word sees the
            // marker (or later) when it loads `seq` again.
            fence(Ordering::Release);
            store_bytes(data, msg);
            len.store(msg.len() as u64, Ordering::Relaxed);
            // SYNC(slot): Release publishes `len` and the data; pairs with
            // the Acquire load of `seq` in `read_slot`.
            seq.store(published(pos), Ordering::Release);
        }
        st.tail = pos.wrapping_add(1);
        // SYNC(tail): a SeqCst swap: Release pairs with the subscribers'
        // Acquire loads of `tail`; SeqCst orders it before the doorbell's
        // load of its word (Dekker with a subscriber going to sleep); and as
        // a read-modify-write it acquires from a joiner's `fetch_add(0)` in
        // `announce` (module doc, "Joining"). On x86 it costs what a SeqCst
        // store does (both are `xchg`).
        self.tail.tail.swap(st.tail, Ordering::SeqCst);
        self.data_bell.ring();
        Ok(())
    }

    // ---- subscribers ----

    /// Claims a slot whose owner is 0 (or, with `peers`, dead).
    fn claim_slot(&self, token: u32, peers: Option<&dyn Liveness>) -> Option<usize> {
        for (i, s) in self.subs.iter().enumerate() {
            // Free -> ours.
            if s.owner.load(Ordering::Relaxed) == 0
                && s.owner
                    .compare_exchange(0, token, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(i);
            }
        }
        let peers = peers?;
        for (i, s) in self.subs.iter().enumerate() {
            let o = s.owner.load(Ordering::Relaxed);
            // Dead owner -> ours; the CAS on the exact token makes one claimant win.
            if o != 0
                && !peers.is_alive(o)
                && s.owner
                    .compare_exchange(o, token, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(i);
            }
        }
        None
    }

    /// Announces a cursor in our slot (module doc, "Joining"). With
    /// `from_tail`, the cursor is the current tail (a new subscriber);
    /// otherwise `cursor` is kept (a subscriber that lost its slot).
    fn announce(&self, i: usize, cursor: u64, from_tail: bool) -> u64 {
        let Some(s) = self.subs.get(i) else {
            return cursor;
        };
        // SYNC(join): as `joins` below, before our cursor is announced.
        self.ctl.high.fetch_max(i as u32 + 1, Ordering::SeqCst);
        let mut c = if from_tail {
            self.tail.tail.load(Ordering::SeqCst)
        } else {
            cursor
        };
        for _ in 0..JOIN_ATTEMPTS {
            // SYNC(cursor): pairs with the publisher's load in `scan`.
            s.cursor.store(c, Ordering::SeqCst);
            // SYNC(join): made visible to the publisher's `joins` load in
            // `has_room` through the `tail` release sequence below.
            self.ctl.joins.fetch_add(1, Ordering::SeqCst);
            // SYNC(join): a read-modify-write: the publisher's later `swap`
            // of `tail` acquires from it (module doc, "Joining").
            let t = self.tail.tail.fetch_add(0, Ordering::SeqCst);
            if !from_tail || t.wrapping_sub(c) < self.g.cap() {
                break;
            }
            c = t;
        }
        // A publisher may be asleep, blocked on the stale cursor we found.
        self.room_bell.ring();
        c
    }

    /// Joins as a subscriber, starting at the current tail: it receives
    /// the messages published from now on. `None` when every slot is held
    /// by a live subscriber.
    pub(crate) fn join(&self, peers: &dyn Liveness, pid: u32) -> Option<SubState> {
        let token = peers.token();
        let i = self.claim_slot(token, Some(peers))?;
        if let Some(s) = self.subs.get(i) {
            s.pid.store(pid, Ordering::Relaxed);
            s.missed.store(0, Ordering::Relaxed);
        }
        let cursor = self.announce(i, 0, true);
        Some(SubState {
            token,
            slot: Some(i),
            cursor,
            pub_seen: 0,
            pub_alive: false,
            pub_checked: None,
        })
    }

    /// Leaves: frees our slot (if still ours) and wakes a publisher that
    /// may be waiting for us.
    pub(crate) fn leave(&self, st: &mut SubState) {
        if let Some(s) = st.slot.take().and_then(|i| self.subs.get(i)) {
            // Ours -> free.
            let _ = s
                .owner
                .compare_exchange(st.token, 0, Ordering::SeqCst, Ordering::Relaxed);
            self.room_bell.ring();
        }
    }

    /// Moves our cursor to `to` and mirrors it for the publisher.
    fn advance(&self, st: &mut SubState, to: u64) {
        st.cursor = to;
        let Some(i) = st.slot else {
            self.rejoin(st);
            return;
        };
        let Some(s) = self.subs.get(i) else {
            st.slot = None;
            return;
        };
        if s.owner.load(Ordering::Relaxed) != st.token {
            // Someone freed our slot (only a peer breaking the protocol can:
            // we are alive). Find another; the publisher may have lapped us
            // meanwhile, which the next read reports.
            st.slot = None;
            self.rejoin(st);
            return;
        }
        // SYNC(cursor): SeqCst store: Release pairs with the publisher's
        // load in `scan` (our copy happens before it reuses the slot);
        // SeqCst orders it before the doorbell's load of its word (Dekker
        // with a publisher going to sleep).
        s.cursor.store(to, Ordering::SeqCst);
        if self.g.policy == Policy::Lossless {
            self.room_bell.ring();
        }
    }

    /// Claims a free slot again, keeping our cursor. Without one we read on
    /// unpaced (a lossless publisher no longer waits for us).
    fn rejoin(&self, st: &mut SubState) {
        if let Some(i) = self.claim_slot(st.token, None) {
            st.slot = Some(i);
            self.announce(i, st.cursor, false);
        }
    }

    /// Skips to `to`, telling the caller how much it missed.
    fn skip_to(&self, st: &mut SubState, to: u64) -> Recv {
        let missed = to.wrapping_sub(st.cursor);
        if let Some(s) = st.slot.and_then(|i| self.subs.get(i)) {
            s.missed.fetch_add(missed, Ordering::Relaxed);
        }
        self.advance(st, to);
        Recv::Lagged(missed)
    }

    /// Copies the message of `pos` into `buf` if the slot holds it, whole.
    fn read_slot(&self, pos: u64, buf: &mut Vec<u8>) -> SlotRead {
        let Some((seq, len, data)) = self.slot(pos) else {
            return SlotRead::Older;
        };
        let want = published(pos);
        // SYNC(slot): Acquire pairs with the publisher's Release store of
        // `seq` in `publish`.
        let s1 = seq.load(Ordering::Acquire);
        if s1 != want {
            return if is_negative(s1.wrapping_sub(want)) {
                SlotRead::Older
            } else {
                SlotRead::Newer
            };
        }
        // Copy the length out once, then check it before using it.
        let n = len.load(Ordering::Relaxed);
        let fits = n <= self.g.max_message as u64;
        if fits {
            buf.resize(n as usize, 0);
            load_bytes(data, buf);
        }
        // SYNC(slot-fence): pairs with the publisher's Release fence: if a
        // word we copied came from a newer message, `seq` has changed.
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) != s1 {
            buf.clear();
            return SlotRead::Newer;
        }
        if !fits {
            buf.clear();
            return SlotRead::BadLen(n);
        }
        SlotRead::Ok
    }

    /// One receive attempt, without waiting.
    pub(crate) fn try_recv(&self, st: &mut SubState, buf: &mut Vec<u8>) -> Recv {
        let cap = self.g.cap();
        // SYNC(tail): Acquire pairs with the SeqCst store in `publish`.
        let t = self.tail.tail.load(Ordering::Acquire);
        let ahead = t.wrapping_sub(st.cursor);
        if ahead == 0 || is_negative(ahead) {
            // Nothing new (a tail behind us is garbage: wait for it to pass).
            return Recv::Empty;
        }
        if ahead > cap {
            return self.skip_to(st, t.wrapping_sub(cap));
        }
        let pos = st.cursor;
        match self.read_slot(pos, buf) {
            SlotRead::Ok => {
                self.advance(st, pos.wrapping_add(1));
                Recv::Message
            }
            SlotRead::Newer => {
                // Overwritten before or while we copied it.
                let t = self.tail.tail.load(Ordering::Acquire);
                let behind = t.wrapping_sub(pos);
                let to = if behind > cap && !is_negative(behind) {
                    t.wrapping_sub(cap)
                } else {
                    pos.wrapping_add(1)
                };
                self.skip_to(st, to)
            }
            SlotRead::Older => {
                // `tail` says published, the slot says not: garbage, or two
                // publishers at once. Skip it, so the next read goes on.
                self.advance(st, pos.wrapping_add(1));
                Recv::Corrupt { pos, len: 0 }
            }
            SlotRead::BadLen(len) => {
                self.advance(st, pos.wrapping_add(1));
                Recv::Corrupt { pos, len }
            }
        }
    }

    /// Whether something at or after our cursor is published (the wait
    /// condition; `SeqCst` for the doorbell's Dekker pairing).
    fn readable(&self, cursor: u64) -> bool {
        // SYNC(tail): SeqCst load pairs with the SeqCst store in `publish`.
        let ahead = self.tail.tail.load(Ordering::SeqCst).wrapping_sub(cursor);
        ahead != 0 && !is_negative(ahead)
    }

    /// The publisher's token (0: none).
    fn publisher(&self) -> u32 {
        // SYNC(publisher): SeqCst (Acquire) pairs with the store in
        // `release_publisher`; after seeing 0 a tail load sees every message.
        self.ctl.publisher.load(Ordering::SeqCst)
    }

    /// Whether no live publisher holds the ring. Asks the registry (a
    /// system call) at most once per `poll` for the same publisher.
    fn publisher_gone(&self, st: &mut SubState, peers: &dyn Liveness, poll: Duration) -> bool {
        let p = self.publisher();
        if p == 0 {
            return true;
        }
        let due = p != st.pub_seen || st.pub_checked.is_none_or(|t| t.elapsed() >= poll);
        if due {
            st.pub_seen = p;
            st.pub_alive = peers.is_alive(p);
            st.pub_checked = Some(Instant::now());
        }
        !st.pub_alive
    }

    /// Receives one message, waiting as `wait` says. Reports
    /// [`Recv::Disconnected`] when nothing is left and no live publisher
    /// holds the ring; a killed publisher is noticed within `peer_poll`.
    pub(crate) fn recv(
        &self,
        st: &mut SubState,
        buf: &mut Vec<u8>,
        peers: &dyn Liveness,
        wait: Option<(WaitStrategy, Option<Instant>)>,
        peer_poll: Duration,
    ) -> Recv {
        loop {
            match self.try_recv(st, buf) {
                Recv::Empty => {}
                other => return other,
            }
            if self.publisher_gone(st, peers, peer_poll) {
                // Gone: deliver what it published before it went.
                return match self.try_recv(st, buf) {
                    Recv::Empty => Recv::Disconnected,
                    other => other,
                };
            }
            let Some((strategy, deadline)) = wait else {
                return Recv::Empty;
            };
            // Sleep in slices of `peer_poll`, to notice a killed publisher.
            let slice = Instant::now() + peer_poll;
            let until = deadline.map_or(slice, |d| d.min(slice));
            let (cursor, p) = (st.cursor, st.pub_seen);
            let ready =
                self.data_bell
                    .wait_until(strategy, Some(until), &|| peers.intact(), || {
                        self.readable(cursor) || self.ctl.publisher.load(Ordering::Relaxed) != p
                    });
            if !ready && !peers.intact() {
                return Recv::Truncated;
            }
            if !ready && deadline.is_some_and(|d| Instant::now() >= d) {
                return Recv::Empty;
            }
        }
    }

    /// Live subscribers, as `info` shows them.
    pub(crate) fn subscribers(&self, peers: &dyn Liveness) -> Vec<SubView> {
        let high = (self.ctl.high.load(Ordering::Acquire) as usize).min(MAX_SUBSCRIBERS);
        self.subs
            .iter()
            .take(high)
            .enumerate()
            .filter_map(|(slot, s)| {
                let owner = s.owner.load(Ordering::Acquire);
                (owner != 0).then(|| SubView {
                    slot,
                    pid: s.pid.load(Ordering::Relaxed),
                    cursor: s.cursor.load(Ordering::Acquire),
                    missed: s.missed.load(Ordering::Relaxed),
                    alive: peers.is_alive(owner),
                })
            })
            .collect()
    }

    /// The publisher's token and whether it is alive.
    pub(crate) fn publisher_state(&self, peers: &dyn Liveness) -> (u32, bool) {
        let p = self.publisher();
        (p, p != 0 && peers.is_alive(p))
    }
}

/// Heap-backed rings, for unit tests.
#[cfg(test)]
pub(crate) mod heap {
    use super::*;

    /// All the shared parts of a ring, on the heap.
    pub(crate) struct HeapRing {
        pub(crate) ctl: Control,
        pub(crate) tail: TailLine,
        pub(crate) data_bell: Doorbell,
        pub(crate) room_bell: Doorbell,
        pub(crate) subs: Vec<SubSlot>,
        pub(crate) words: Vec<AtomicU64>,
        pub(crate) g: Geometry,
    }

    impl HeapRing {
        /// An initialised ring with every subscriber slot.
        #[cfg(not(mapshare_loom))]
        pub(crate) fn new(capacity: usize, max_message: usize, policy: Policy, base: u64) -> Self {
            HeapRing::with_slots(capacity, max_message, policy, base, MAX_SUBSCRIBERS)
        }

        /// An initialised ring with `slots` subscriber slots (loom models
        /// keep them few).
        pub(crate) fn with_slots(
            capacity: usize,
            max_message: usize,
            policy: Policy,
            base: u64,
            slots: usize,
        ) -> Self {
            let g = Geometry::new(capacity, max_message, policy, base).expect("test geometry");
            let h = HeapRing {
                ctl: Control::new(),
                tail: TailLine::new(),
                data_bell: Doorbell::new(),
                room_bell: Doorbell::new(),
                subs: (0..slots).map(|_| SubSlot::new()).collect(),
                words: (0..g.words().expect("test geometry"))
                    .map(|_| AtomicU64::new(0))
                    .collect(),
                g,
            };
            h.ring().init();
            h
        }

        pub(crate) fn ring(&self) -> Ring<'_> {
            Ring::new(
                &self.ctl,
                &self.tail,
                &self.data_bell,
                &self.room_bell,
                &self.subs,
                &self.words,
                self.g,
            )
            .expect("test ring")
        }
    }
}

#[cfg(all(test, not(mapshare_loom)))]
mod tests {
    use super::heap::HeapRing;
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    /// Tokens are alive unless listed as dead.
    struct Peer {
        me: u32,
        dead: &'static Mutex<Vec<u32>>,
    }

    static NOBODY_DEAD: Mutex<Vec<u32>> = Mutex::new(Vec::new());

    impl Peer {
        fn new(me: u32) -> Peer {
            Peer {
                me,
                dead: &NOBODY_DEAD,
            }
        }
    }

    impl Liveness for Peer {
        fn token(&self) -> u32 {
            self.me
        }
        fn is_alive(&self, token: u32) -> bool {
            !self.dead.lock().unwrap().contains(&token)
        }
    }

    const BLOCK_FOREVER: Option<(WaitStrategy, Option<Instant>)> =
        Some((WaitStrategy::Block, None));

    fn wait_long() -> Option<(WaitStrategy, Option<Instant>)> {
        Some((
            WaitStrategy::default(),
            Some(Instant::now() + Duration::from_secs(30)),
        ))
    }

    /// A message for position `i`: its number, then bytes derived from it.
    fn message(i: u64) -> Vec<u8> {
        let len = 8 + (i % 37) as usize;
        let mut m = i.to_le_bytes().to_vec();
        m.extend((8..len).map(|k| (i as u8).wrapping_mul(31).wrapping_add(k as u8)));
        m
    }

    fn check(m: &[u8]) -> u64 {
        assert!(m.len() >= 8, "short message");
        let i = u64::from_le_bytes(m[..8].try_into().unwrap());
        assert_eq!(m, &message(i)[..], "torn or corrupt message {i}");
        i
    }

    #[test]
    fn byte_copies_round_trip_every_length() {
        let words: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
        for n in 0..=32 {
            let src: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(7) + 1).collect();
            assert!(store_bytes(&words, &src));
            let mut out = vec![0u8; n];
            assert!(load_bytes(&words, &mut out));
            assert_eq!(out, src);
        }
        assert!(!store_bytes(&words, &[0; 33]));
        assert!(!load_bytes(&words, &mut [0; 33]));
    }

    #[test]
    fn geometry_rounds_and_validates() {
        let g = Geometry::new(5, 100, Policy::Lossless, 0).unwrap();
        assert_eq!((g.capacity, g.stride), (8, 16));
        assert!(Geometry::new(0, 1, Policy::Lossless, 0).is_none());
        assert!(Geometry::new(MAX_CAPACITY + 1, 1, Policy::Lossless, 0).is_none());
        assert!(Geometry::new(1, MAX_MESSAGE + 1, Policy::Lossless, 0).is_none());
        let h = HeapRing::new(8, 100, Policy::OverwriteOldest, 7);
        assert_eq!(Geometry::read(&h.ctl), Some(h.g));
        h.ctl.capacity.store(6, Ordering::Relaxed); // not a power of two
        assert_eq!(Geometry::read(&h.ctl), None);
        h.ctl.capacity.store(8, Ordering::Relaxed);
        h.ctl.policy.store(99, Ordering::Relaxed);
        assert_eq!(Geometry::read(&h.ctl), None);
    }

    #[test]
    fn new_subscriber_sees_only_later_messages() {
        let h = HeapRing::new(4, 64, Policy::Lossless, 0);
        let r = h.ring();
        let p = Peer::new(1);
        let mut st = r.claim_publisher(&p).unwrap();
        r.publish(&mut st, b"before", &p, None).unwrap();
        let mut sub = r.join(&Peer::new(2), 0).unwrap();
        let mut buf = Vec::new();
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Empty);
        r.publish(&mut st, b"after", &p, None).unwrap();
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
        assert_eq!(buf, b"after");
        assert!(matches!(
            r.publish(&mut st, &[0; 65], &p, None),
            Err(PubFail::TooLarge)
        ));
    }

    #[test]
    fn lossless_blocks_on_slowest_and_unblocks_on_read() {
        let h = HeapRing::new(4, 16, Policy::Lossless, 0);
        let r = h.ring();
        let p = Peer::new(1);
        let mut st = r.claim_publisher(&p).unwrap();
        let mut fast = r.join(&Peer::new(2), 0).unwrap();
        let mut slow = r.join(&Peer::new(3), 0).unwrap();
        let mut buf = Vec::new();
        for i in 0..4u64 {
            r.publish(&mut st, &message(i), &p, None).unwrap();
            assert_eq!(r.try_recv(&mut fast, &mut buf), Recv::Message);
        }
        assert_eq!(
            r.publish(&mut st, &message(4), &p, None),
            Err(PubFail::Full)
        );
        assert_eq!(r.try_recv(&mut slow, &mut buf), Recv::Message);
        assert_eq!(check(&buf), 0);
        r.publish(&mut st, &message(4), &p, None).unwrap();
        // A second publisher is refused while the first lives.
        assert_eq!(r.claim_publisher(&Peer::new(9)).err(), Some(1));
    }

    fn run_lossless(subscribers: usize, n: u64, base: u64, capacity: usize) {
        let h = HeapRing::new(capacity, 64, Policy::Lossless, base);
        let r = h.ring();
        let joined = std::sync::Barrier::new(subscribers + 1);
        std::thread::scope(|s| {
            for k in 0..subscribers {
                let joined = &joined;
                s.spawn(move || {
                    let peer = Peer::new(10 + k as u32);
                    let mut st = r.join(&peer, 0).unwrap();
                    joined.wait();
                    let mut buf = Vec::new();
                    for want in 0..n {
                        let got = r.recv(&mut st, &mut buf, &peer, wait_long(), LIVENESS_POLL);
                        assert_eq!(got, Recv::Message, "subscriber {k} at {want}");
                        assert_eq!(check(&buf), want, "subscriber {k}: out of order");
                    }
                    r.leave(&mut st);
                });
            }
            let p = Peer::new(1);
            let mut st = r.claim_publisher(&p).unwrap();
            joined.wait();
            for i in 0..n {
                r.publish(&mut st, &message(i), &p, wait_long()).unwrap();
            }
            r.release_publisher(&st);
        });
    }

    #[test]
    fn lossless_one_subscriber_sees_every_message_in_order() {
        run_lossless(1, 50_000, 0, 8);
    }

    #[test]
    fn lossless_four_subscribers_see_every_message_in_order() {
        run_lossless(4, 20_000, 0, 16);
    }

    #[test]
    fn lossless_runs_across_the_u64_wrap() {
        run_lossless(2, 1_000, u64::MAX - 100, 8);
    }

    #[test]
    fn overwrite_tells_a_slow_subscriber_what_it_missed() {
        let h = HeapRing::new(8, 64, Policy::OverwriteOldest, u64::MAX - 10);
        let r = h.ring();
        let p = Peer::new(1);
        let mut st = r.claim_publisher(&p).unwrap();
        let mut sub = r.join(&Peer::new(2), 0).unwrap();
        for i in 0..20u64 {
            r.publish(&mut st, &message(i), &p, None).unwrap(); // never waits
        }
        let mut buf = Vec::new();
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Lagged(12));
        for want in 12..20 {
            assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
            assert_eq!(check(&buf), want);
        }
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Empty);
    }

    #[test]
    fn overwrite_with_racing_publisher_never_tears_or_reorders() {
        let h = HeapRing::new(4, 64, Policy::OverwriteOldest, 0);
        let r = h.ring();
        let n = 200_000u64;
        let done = AtomicBool::new(false);
        let mut sub = r.join(&Peer::new(2), 0).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let p = Peer::new(1);
                let mut st = r.claim_publisher(&p).unwrap();
                for i in 0..n {
                    r.publish(&mut st, &message(i), &p, None).unwrap();
                }
                done.store(true, Ordering::SeqCst);
            });
            let mut buf = Vec::new();
            let (mut next, mut got, mut missed) = (0u64, 0u64, 0u64);
            while next < n {
                match r.try_recv(&mut sub, &mut buf) {
                    Recv::Message => {
                        assert_eq!(check(&buf), next, "reordered");
                        next += 1;
                        got += 1;
                    }
                    Recv::Lagged(k) => {
                        next += k;
                        missed += k;
                    }
                    Recv::Empty => std::hint::spin_loop(),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(got + missed, n);
        });
    }

    #[test]
    fn dead_subscriber_stops_pacing_the_publisher() {
        static DEAD: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        let h = HeapRing::new(4, 16, Policy::Lossless, 0);
        let r = h.ring();
        let p = Peer { me: 1, dead: &DEAD };
        let mut st = r.claim_publisher(&p).unwrap();
        let _stuck = r.join(&Peer::new(77), 0).unwrap();
        for i in 0..4u64 {
            r.publish(&mut st, &message(i), &p, None).unwrap();
        }
        let soon = Some((
            WaitStrategy::Block,
            Some(Instant::now() + Duration::from_millis(20)),
        ));
        assert_eq!(
            r.publish(&mut st, &message(4), &p, soon),
            Err(PubFail::Full)
        );
        DEAD.lock().unwrap().push(77); // "killed"
        r.publish(&mut st, &message(4), &p, BLOCK_FOREVER).unwrap();
        assert!(r.subscribers(&p).is_empty(), "slot freed");
    }

    #[test]
    fn publisher_death_and_takeover() {
        static DEAD: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        let h = HeapRing::new(4, 16, Policy::Lossless, 0);
        let r = h.ring();
        let sub_peer = Peer { me: 2, dead: &DEAD };
        let mut sub = r.join(&sub_peer, 0).unwrap();
        let p1 = Peer::new(1);
        let mut st = r.claim_publisher(&p1).unwrap();
        r.publish(&mut st, &message(0), &p1, None).unwrap();
        // Killed half-way through message 1: odd marker, tail not advanced.
        let (seq, _, _) = r.slot(1).unwrap();
        seq.store(writing(1), Ordering::Relaxed);
        DEAD.lock().unwrap().push(1);
        let mut buf = Vec::new();
        let quick = Some((WaitStrategy::Spin, Some(Instant::now())));
        assert_eq!(
            r.recv(&mut sub, &mut buf, &sub_peer, quick, LIVENESS_POLL),
            Recv::Message
        );
        assert_eq!(
            r.recv(&mut sub, &mut buf, &sub_peer, quick, LIVENESS_POLL),
            Recv::Disconnected
        );
        let p2 = Peer { me: 3, dead: &DEAD };
        let mut st2 = r.claim_publisher(&p2).unwrap();
        assert_eq!(st2.tail(), 1);
        r.publish(&mut st2, &message(1), &p2, None).unwrap();
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
        assert_eq!(check(&buf), 1);
    }

    #[test]
    fn garbage_in_shared_words_gives_errors_or_skips_never_panics() {
        let h = HeapRing::new(4, 16, Policy::Lossless, 0);
        let r = h.ring();
        let p = Peer::new(1);
        let mut st = r.claim_publisher(&p).unwrap();
        let mut sub = r.join(&Peer::new(2), 0).unwrap();
        let mut buf = Vec::new();
        for i in 0..3u64 {
            r.publish(&mut st, &message(i), &p, None).unwrap();
        }
        // A huge length in a published slot: skipped, reported, no allocation.
        let (_, len, _) = r.slot(0).unwrap();
        len.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(
            r.try_recv(&mut sub, &mut buf),
            Recv::Corrupt {
                pos: 0,
                len: u64::MAX
            }
        );
        // A seq word older than the tail says: skipped, reported.
        let (seq, _, _) = r.slot(1).unwrap();
        seq.store(0, Ordering::Relaxed);
        assert_eq!(
            r.try_recv(&mut sub, &mut buf),
            Recv::Corrupt { pos: 1, len: 0 }
        );
        // A seq word "newer" than it: taken as overwritten, skipped.
        let (seq, _, _) = r.slot(2).unwrap();
        seq.store(12345, Ordering::Relaxed);
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Lagged(1));
        // A tail far ahead: reported as a lag, bounded.
        h.tail.tail.store(1 << 40, Ordering::Relaxed);
        assert!(matches!(r.try_recv(&mut sub, &mut buf), Recv::Lagged(_)));
        // A tail behind us: empty, not a spin or a wrap-around read.
        h.tail.tail.store(0, Ordering::Relaxed);
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Empty);
        // Garbage cursors and owners: the publisher is only delayed, and
        // a garbage cursor ahead of it is ignored.
        for s in &h.subs {
            s.cursor.store(u64::MAX / 3, Ordering::Relaxed);
        }
        h.ctl.high.store(u32::MAX, Ordering::Relaxed);
        let mut st = r.claim_publisher(&p).unwrap();
        let _ = r.publish(&mut st, b"x", &p, None);
        // Our slot freed behind our back: we rejoin instead of writing a
        // cursor into a slot that is no longer ours.
        for s in &h.subs {
            s.owner.store(0, Ordering::Relaxed);
        }
        h.tail.tail.store(sub.cursor(), Ordering::Relaxed);
        let mut st = r.claim_publisher(&p).unwrap();
        r.publish(&mut st, b"y", &p, None).unwrap();
        assert_eq!(r.try_recv(&mut sub, &mut buf), Recv::Message);
        assert!(sub.slot.is_some(), "rejoined");
    }
}

/// Loom models of the ring: tiny (one or two slots, one publisher, one
/// subscriber). Run with
/// `RUSTFLAGS="--cfg mapshare_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p mapshare --lib --release loom`.
#[cfg(all(test, mapshare_loom))]
mod loom_models {
    use super::heap::HeapRing;
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    struct Peer(u32);

    impl Liveness for Peer {
        fn token(&self) -> u32 {
            self.0
        }
        fn is_alive(&self, _: u32) -> bool {
            true
        }
    }

    /// Publishes `[v; len]` for each `v` in `values`, retrying while full.
    fn publish_all(h: &HeapRing, values: &[u8], len: usize) {
        let r = h.ring();
        let p = Peer(1);
        let mut st = r.claim_publisher(&p).unwrap();
        for &v in values {
            while r.publish(&mut st, &vec![v; len], &p, None).is_err() {
                thread::yield_now();
            }
        }
    }

    #[test]
    fn loom_broadcast_overwrite_never_tears_or_reorders() {
        loom::model(|| {
            let h = Arc::new(HeapRing::with_slots(
                1,
                16,
                Policy::OverwriteOldest,
                u64::MAX,
                1,
            ));
            let mut sub = h.ring().join(&Peer(2), 0).unwrap();
            let h2 = h.clone();
            let publisher = thread::spawn(move || publish_all(&h2, &[1, 2], 16));
            let r = h.ring();
            let mut buf = Vec::new();
            // Every message is either received whole, in order, or counted
            // as missed: the two add up to what was published.
            let (mut seen, mut last) = (0u64, 0u8);
            while seen < 2 {
                match r.try_recv(&mut sub, &mut buf) {
                    Recv::Message => {
                        assert_eq!(buf.len(), 16);
                        let v = buf[0];
                        assert!(buf.iter().all(|&b| b == v), "torn: {buf:?}");
                        assert!(v > last, "reordered or repeated");
                        last = v;
                        seen += 1;
                    }
                    Recv::Lagged(n) => seen += n,
                    Recv::Empty => thread::yield_now(),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(seen, 2);
            publisher.join().unwrap();
        });
    }

    #[test]
    fn loom_broadcast_lossless_delivers_every_message_in_order() {
        loom::model(|| {
            let h = Arc::new(HeapRing::with_slots(1, 8, Policy::Lossless, u64::MAX, 1));
            let mut sub = h.ring().join(&Peer(2), 0).unwrap();
            let h2 = h.clone();
            let publisher = thread::spawn(move || publish_all(&h2, &[1, 2], 8));
            let r = h.ring();
            let mut buf = Vec::new();
            for want in 1..=2u8 {
                loop {
                    match r.try_recv(&mut sub, &mut buf) {
                        Recv::Message => break,
                        Recv::Empty => thread::yield_now(),
                        other => panic!("{other:?}"),
                    }
                }
                assert_eq!(buf, vec![want; 8]);
            }
            publisher.join().unwrap();
        });
    }

    #[test]
    fn loom_broadcast_join_racing_a_lossless_publisher_never_lags() {
        loom::model(|| {
            let h = Arc::new(HeapRing::with_slots(1, 8, Policy::Lossless, 0, 1));
            let done = Arc::new(AtomicU32::new(0));
            let (h2, d2) = (h.clone(), done.clone());
            let publisher = thread::spawn(move || {
                publish_all(&h2, &[1, 2], 8);
                d2.store(1, Ordering::SeqCst);
            });
            let r = h.ring();
            let mut sub = r.join(&Peer(2), 0).unwrap();
            let mut buf = Vec::new();
            // Whatever came before the join, the stream after it is gapless.
            let mut last: Option<u8> = None;
            let mut check = |v: u8| {
                assert!(last.is_none_or(|l| v == l + 1), "a message was lost");
                last = Some(v);
            };
            loop {
                match r.try_recv(&mut sub, &mut buf) {
                    Recv::Message => check(buf[0]),
                    Recv::Empty if done.load(Ordering::SeqCst) == 1 => {
                        if r.try_recv(&mut sub, &mut buf) == Recv::Empty {
                            break;
                        }
                        check(buf[0]);
                    }
                    Recv::Empty => thread::yield_now(),
                    other => panic!("joined subscriber got {other:?}"),
                }
            }
            publisher.join().unwrap();
        });
    }
}
