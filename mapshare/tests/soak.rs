//! Soak: messages stream through a channel and two pub/sub rings between
//! processes while a supervisor SIGKILLs and restarts senders, receivers,
//! publishers and subscribers at random intervals (50 to 500 ms, uniform),
//! for a configurable duration. Not part of `cargo test` (`test = false`):
//!
//! ```text
//! cargo test --release -p mapshare --test soak -- --duration 600 [--seed N] [--rate MSGS] [--quiet]
//! ```
//!
//! `ci/soak.sh` runs a 20-second version. The exit status is non-zero when
//! a duplicate, a loss, a corrupt delivery, a hang, a failed child, an
//! unrecovered restart or a file left in `/dev/shm` was seen.
//!
//! # Processes
//! The binary is its own supervisor and re-executes itself with `--role`
//! for the children, one per slot:
//!
//! | slot | role | on |
//! |---|---|---|
//! | 0, 1 | `channel-sender` (one lane each, producer id = slot) | channel `<prefix>.chan`, 2 lanes |
//! | 2 | `channel-receiver` | the channel |
//! | 3 | `publisher` | ring `<prefix>.ps`, [`Policy::Lossless`] |
//! | 4, 5 | `subscriber` | `<prefix>.ps` |
//! | 6 | `ow-publisher` | ring `<prefix>.ow`, [`Policy::OverwriteOldest`] |
//! | 7 | `ow-subscriber` (pauses now and then, so it gets lapped) | `<prefix>.ow` |
//!
//! The supervisor creates every segment persistent (so they survive all
//! children being dead at once), then loops: every 50..500 ms it picks a
//! slot at random, kills its process (`Child::kill`, SIGKILL) and starts
//! the role again at once with the next incarnation number. Producers are
//! paced (`--rate` messages per second each); every blocking call in a
//! child has a 50 ms timeout, and children use the default wait strategy.
//! At the end it stops the producers, lets the consumers drain, checks the
//! totals, unlinks the segments, runs `segment::gc(false)` and counts what
//! is left of this run in `/dev/shm` (names with the run's prefix, and
//! creator temp files of the run's processes). Children exit when their
//! supervisor dies; a killed supervisor leaves its persistent segments
//! (`mapshare rm` them, or `mapshare gc --all`).
//!
//! # Messages
//! `magic u32 | producer u32 | incarnation u64 | seq u64 | position u64 |
//! payload length u32 | 0 u32 | checksum u64 | payload`, 48 to 512 bytes;
//! the payload length and bytes are derived from (producer, incarnation,
//! seq). `position` is the ring position the publisher wrote it at
//! (`Publisher::published()` before the publish; 0 on the channel). The
//! checksum covers the header and the payload. A delivery is *corrupt* when
//! the magic, the length or the checksum does not match, or the library
//! reports a corrupt slot.
//!
//! # Journals: what children report, and why a kill loses none of it
//! Each role slot has a journal in shared memory (a `Shared` of two
//! copies, each `generation | checksum | record`). An update takes the
//! `Shared`'s robust lock (accepting `OwnerDied`), picks the valid copy with
//! the higher generation, changes the record and writes it to the *other*
//! copy. `SharedGuard::set` rewrites the valid copy with identical bytes,
//! so a writer killed in the middle can only tear the other one, which its
//! checksum then rejects: a record is always the one of the last completed
//! update. Children update their journal for every message.
//!
//! The channel receiver's journal is its progress: per (producer,
//! incarnation) the last seq taken, cumulative counts, and the message in
//! hand. It is updated *inside* the `recv_with` closure, before the slot
//! is released. A receiver killed after that update but before the release
//! leaves the message in place and the next receiver gets it again (by
//! design: at-least-once for the message in hand). The next receiver
//! recognises it (the predecessor's message in hand, among the first
//! `lanes` messages it takes) and counts it as *redelivered* and drops it;
//! any other seq at or below the last one taken is a *duplicate*.
//!
//! # Checks
//! - Channel: per (producer, incarnation), seqs start at 0 and are
//!   consecutive (a gap is *lost*). At the end, the messages taken once
//!   must add up to what the senders recorded as sent: a sender records
//!   each send after it returns, so a sender killed between the two has
//!   sent one message more than it recorded; fewer taken than recorded is
//!   *lost*, more than recorded plus one per killed sender is *duplicate*.
//!   The drained channel must be empty.
//! - Pub/sub: a subscriber sees only what was published after it joined,
//!   so each subscriber incarnation anchors on its first message; from then
//!   on positions must be consecutive (a gap is *lost*, a step back a
//!   *duplicate*), and per publisher incarnation seqs must be consecutive,
//!   starting at 0 for a publisher that started while the subscriber was
//!   there. On the lossless ring `Lagged` is a loss; on the overwrite ring
//!   it is expected (counted as *overwritten*) and must account exactly for
//!   the positions skipped. Subscribers alive at the end must end exactly at
//!   the ring's published count.
//! - Corrupt: besides being counted, a corrupt message is missing from its
//!   stream, so it also shows as a gap.
//! - Hang: a child whose progress counter has not moved for 5 s (its peers
//!   are always alive: every killed role is restarted at once). It is
//!   reported with its last state and kernel wait channel, killed and
//!   restarted. The random kills spare a child that has made no progress
//!   for 250 ms (legitimate stalls last tens of milliseconds, a few hundred
//!   on a loaded machine), so a stuck child is not killed before it can be
//!   seen hanging. The longest stall per role is printed.
//!
//! # Recovery latency, and the clock
//! From the kill to the first message the restarted role takes (a
//! consumer), or the first message of the new incarnation a consumer takes
//! (a producer). Times cross processes as `SystemTime` nanoseconds
//! (CLOCK_REALTIME): `Instant` cannot be exchanged between processes, and
//! std exposes no other clock they share. A step of the wall clock during
//! a run would distort the samples taken across it (none is expected on a
//! machine kept by NTP, which slews). A restart killed again before its
//! first message gives no sample; such restarts are counted apart.

mod common;

use std::collections::HashSet;
use std::fs;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::XorShift;
use mapshare::segment;
use mapshare::{
    pubsub_stats, ChannelOptions, LockError, Pod, Policy, PubSubOptions, PubSubRecvError,
    PublishError, Publisher, Receiver, RecvTimeoutError, SegmentError, SegmentOptions,
    SendTimeoutError, Sender, Shared, Subscriber, TryRecvError, Zeroable,
};

// ---------------------------------------------------------------- setup

/// Child processes, one per slot.
const SLOTS: usize = 8;
/// Channel lanes (= channel senders).
const LANES: usize = 2;
const CHAN_CAPACITY: usize = 64;
const RING_CAPACITY: usize = 64;
const MAX_MESSAGE: usize = 512;
/// Message header bytes.
const HDR: usize = 48;
const MAGIC: u32 = 0x4b41_4f53; // "SOAK"
/// Timeout of every blocking call in a child (between looks at the phase).
const STEP: Duration = Duration::from_millis(50);
/// Supervisor poll period.
const POLL: Duration = Duration::from_millis(10);
/// No progress for this long is a hang.
const HANG_AFTER: Duration = Duration::from_secs(5);
/// The chaos loop spares a child that has made no progress for this long,
/// so that a stuck child reaches HANG_AFTER instead of being killed (and
/// its hang hidden) by a random kill.
const SPARE_AFTER: Duration = Duration::from_millis(250);
/// A restart whose first message has not been seen after this long is
/// unrecovered (or censored, if it was killed meanwhile).
const RECOVERY_GIVE_UP: Duration = Duration::from_secs(10);
/// How long a child may take to finish once told to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const KILL_MIN_MS: u64 = 50;
const KILL_MAX_MS: u64 = 500;
/// "No value" in journal words.
const NONE: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    ChannelSender,
    ChannelReceiver,
    Publisher,
    Subscriber,
    OwPublisher,
    OwSubscriber,
}

const ROLES: [Role; SLOTS] = [
    Role::ChannelSender,
    Role::ChannelSender,
    Role::ChannelReceiver,
    Role::Publisher,
    Role::Subscriber,
    Role::Subscriber,
    Role::OwPublisher,
    Role::OwSubscriber,
];

/// Slot of the channel receiver (its journal is the channel progress).
const RX_SLOT: usize = 2;
const PUB_SLOT: usize = 3;
const OW_PUB_SLOT: usize = 6;
const OW_SUB_SLOT: usize = 7;
const SUB_SLOTS: [usize; 3] = [4, 5, 7];

/// Kill counts are reported by these groups.
const GROUPS: [&str; 4] = [
    "channel-sender",
    "channel-receiver",
    "publisher",
    "subscriber",
];

impl Role {
    const ALL: [Role; 6] = [
        Role::ChannelSender,
        Role::ChannelReceiver,
        Role::Publisher,
        Role::Subscriber,
        Role::OwPublisher,
        Role::OwSubscriber,
    ];

    fn name(self) -> &'static str {
        match self {
            Role::ChannelSender => "channel-sender",
            Role::ChannelReceiver => "channel-receiver",
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::OwPublisher => "ow-publisher",
            Role::OwSubscriber => "ow-subscriber",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }

    fn group(self) -> usize {
        match self {
            Role::ChannelSender => 0,
            Role::ChannelReceiver => 1,
            Role::Publisher | Role::OwPublisher => 2,
            Role::Subscriber | Role::OwSubscriber => 3,
        }
    }
}

/// Segment names of one run: `<prefix>.<what>`.
#[derive(Debug, Clone)]
struct Names {
    prefix: String,
}

impl Names {
    fn chan(&self) -> String {
        format!("{}.chan", self.prefix)
    }
    fn ring(&self, policy: Policy) -> String {
        match policy {
            Policy::Lossless => format!("{}.ps", self.prefix),
            Policy::OverwriteOldest => format!("{}.ow", self.prefix),
        }
    }
    fn ctl(&self) -> String {
        format!("{}.ctl", self.prefix)
    }
    /// The journal of `slot` (the channel receiver's is its progress).
    fn journal(&self, slot: usize) -> String {
        format!("{}.j{slot}", self.prefix)
    }
    fn all(&self) -> Vec<String> {
        let mut v = vec![
            self.chan(),
            self.ring(Policy::Lossless),
            self.ring(Policy::OverwriteOldest),
            self.ctl(),
        ];
        v.extend((0..SLOTS).map(|s| self.journal(s)));
        v
    }
}

fn chan_opts(name: &str) -> ChannelOptions {
    ChannelOptions::new(name)
        .capacity(CHAN_CAPACITY)
        .max_message(MAX_MESSAGE)
        .senders(LANES)
}

fn ring_opts(name: &str, policy: Policy) -> PubSubOptions {
    PubSubOptions::new(name)
        .capacity(RING_CAPACITY)
        .max_message(MAX_MESSAGE)
        .policy(policy)
}

/// Wall-clock nanoseconds (CLOCK_REALTIME): the clock processes can share
/// through std (see the module doc).
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(NONE))
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hash_words(seed: u64, words: &[u64]) -> u64 {
    let mut h = mix(seed ^ 0x243f_6a88_85a3_08d3);
    for &w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 32;
    }
    mix(h ^ words.len() as u64)
}

// ---------------------------------------------------------------- messages

/// A checked message's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Msg {
    producer: u32,
    inc: u64,
    seq: u64,
    pos: u64,
}

fn msg_seed(producer: u32, inc: u64, seq: u64) -> u64 {
    mix((u64::from(producer) << 56) ^ (inc << 32) ^ seq ^ 0x5bd1_e995)
}

fn checksum(m: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ m.len() as u64;
    let mut eat = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(a)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 29;
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    eat(&m[..40]);
    eat(&m[HDR..]);
    mix(h)
}

fn make_message(buf: &mut Vec<u8>, producer: u32, inc: u64, seq: u64, pos: u64) {
    let seed = msg_seed(producer, inc, seq);
    let plen = (seed % (MAX_MESSAGE - HDR + 1) as u64) as usize;
    buf.clear();
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&producer.to_le_bytes());
    buf.extend_from_slice(&inc.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&pos.to_le_bytes());
    buf.extend_from_slice(&(plen as u32).to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&[0u8; 8]);
    let mut x = seed;
    while buf.len() < HDR + plen {
        x = mix(x.wrapping_add(0x9e37_79b9_7f4a_7c15));
        let n = (HDR + plen - buf.len()).min(8);
        buf.extend_from_slice(&x.to_le_bytes()[..n]);
    }
    let sum = checksum(buf);
    buf[40..48].copy_from_slice(&sum.to_le_bytes());
}

/// Checks a message copied out of shared memory; `None` if corrupt.
fn check_message(m: &[u8]) -> Option<Msg> {
    if m.len() < HDR {
        return None;
    }
    let u32_at = |o: usize| u32::from_le_bytes(m[o..o + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |o: usize| u64::from_le_bytes(m[o..o + 8].try_into().unwrap_or([0; 8]));
    let plen = u32_at(32) as usize;
    if u32_at(0) != MAGIC || plen != m.len() - HDR || u64_at(40) != checksum(m) {
        return None;
    }
    Some(Msg {
        producer: u32_at(4),
        inc: u64_at(8),
        seq: u64_at(16),
        pos: u64_at(24),
    })
}

// ---------------------------------------------------------------- journals

/// A journal: two copies of `generation | checksum | record` (module doc).
struct Journal<P: Pod, const W: usize> {
    shared: Shared<[[u64; W]; 2]>,
    name: String,
    _p: PhantomData<fn() -> P>,
}

/// What a journal read found.
enum ReadError {
    /// The lock stayed held (by a live process) past the timeout.
    Busy,
    /// Neither copy is valid, and the journal is not blank.
    Unreadable,
}

impl<P: Pod, const W: usize> Journal<P, W> {
    const WORDS: usize = {
        assert!(std::mem::size_of::<P>() % 8 == 0);
        assert!(std::mem::size_of::<P>() / 8 + 2 <= W);
        std::mem::size_of::<P>() / 8
    };

    fn create(name: &str) -> Result<Self, SegmentError> {
        Ok(Journal {
            shared: Shared::create_with(&SegmentOptions::new(name).persistent(true))?,
            name: name.to_owned(),
            _p: PhantomData,
        })
    }

    fn open(name: &str) -> Result<Self, SegmentError> {
        Ok(Journal {
            shared: Shared::open(name)?,
            name: name.to_owned(),
            _p: PhantomData,
        })
    }

    /// The record of the newest valid copy: (record, generation, copy index).
    /// `Err` if no copy is valid and the journal is not blank.
    fn decode(c: &[[u64; W]; 2]) -> Result<(P, u64, Option<usize>), ()> {
        let n = Self::WORDS;
        let mut best: Option<(usize, u64)> = None;
        for (i, w) in c.iter().enumerate() {
            let gen = w[0];
            if gen != 0
                && w[1] == hash_words(gen, &w[2..2 + n])
                && best.is_none_or(|(_, g)| gen > g)
            {
                best = Some((i, gen));
            }
        }
        match best {
            Some((i, gen)) => {
                let mut v = P::zeroed();
                for (dst, w) in bytemuck::bytes_of_mut(&mut v)
                    .chunks_exact_mut(8)
                    .zip(&c[i][2..2 + n])
                {
                    dst.copy_from_slice(&w.to_ne_bytes());
                }
                Ok((v, gen, Some(i)))
            }
            None if c.iter().flatten().all(|&w| w == 0) => Ok((P::zeroed(), 0, None)),
            None => Err(()),
        }
    }

    /// Writes `v` as generation `gen + 1` into the copy that is not `valid`.
    fn encode(c: &mut [[u64; W]; 2], gen: u64, valid: Option<usize>, v: &P) {
        let n = Self::WORDS;
        let target = valid.map_or(0, |i| 1 - i);
        let w = &mut c[target];
        for (dst, src) in w[2..2 + n]
            .iter_mut()
            .zip(bytemuck::bytes_of(v).chunks_exact(8))
        {
            let mut a = [0u8; 8];
            a.copy_from_slice(src);
            *dst = u64::from_ne_bytes(a);
        }
        w[0] = gen + 1;
        w[1] = hash_words(gen + 1, &w[2..2 + n]);
    }

    /// Child side: changes the record under the lock (waiting as long as it
    /// takes); `f` is told whether the previous holder died holding it.
    fn update<R>(&self, f: impl FnOnce(&mut P, bool) -> R) -> R {
        let (mut g, died) = match self.shared.lock() {
            Ok(g) => (g, false),
            Err(LockError::OwnerDied(g)) => (g, true),
            Err(e) => panic!("journal {}: lock: {e}", self.name),
        };
        let mut c = g.get();
        let Ok((mut v, gen, valid)) = Self::decode(&c) else {
            panic!("journal {}: both copies invalid", self.name);
        };
        let r = f(&mut v, died);
        Self::encode(&mut c, gen, valid, &v);
        g.set(&c);
        r
    }

    /// Supervisor side: a copy of the record.
    fn read(&self) -> Result<(P, bool), ReadError> {
        let (c, died) = match self.shared.lock_timeout(Duration::from_millis(200)) {
            Ok(g) => (g.get(), false),
            Err(LockError::OwnerDied(g)) => (g.get(), true),
            Err(_) => return Err(ReadError::Busy),
        };
        match Self::decode(&c) {
            Ok((v, _, _)) => Ok((v, died)),
            Err(()) => Err(ReadError::Unreadable),
        }
    }
}

/// Words every record starts with.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Head {
    incarnation: u64,
    pid: u64,
    /// One of the `ST_*` codes.
    state: u64,
    /// When `state` last changed (ns).
    state_ns: u64,
    /// Messages sent or taken by this incarnation.
    progress: u64,
    /// Its first one (ns; 0 none yet).
    first_ns: u64,
    last_ns: u64,
    /// Journal lock takeovers from a dead holder (cumulative).
    owner_died: u64,
    /// 1 once this incarnation stopped cleanly.
    finished: u64,
}

const ST_OPENING: u64 = 1;
const ST_RUNNING: u64 = 2;
const ST_WAIT_ROOM: u64 = 3;
const ST_WAIT_MSG: u64 = 4;
const ST_DISCONNECTED: u64 = 5;
const ST_PAUSED: u64 = 6;
const ST_DONE: u64 = 7;

fn state_name(st: u64) -> &'static str {
    match st {
        0 => "not started (journal untouched)",
        ST_OPENING => "opening its segments / claiming its role",
        ST_RUNNING => "running (last operation succeeded)",
        ST_WAIT_ROOM => "waiting for room (send/publish timed out)",
        ST_WAIT_MSG => "waiting for a message (receive timed out)",
        ST_DISCONNECTED => "subscribed, no live publisher",
        ST_PAUSED => "pausing on purpose",
        ST_DONE => "done",
        _ => "unknown state",
    }
}

impl Head {
    /// Starts incarnation `inc` (idempotent); `true` if it is new.
    fn start(&mut self, inc: u64, now: u64) -> bool {
        let new = self.incarnation != inc;
        if new {
            self.incarnation = inc;
            self.pid = u64::from(std::process::id());
            self.progress = 0;
            self.first_ns = 0;
            self.last_ns = 0;
            self.finished = 0;
        }
        self.set_state(ST_OPENING, now);
        new
    }

    fn set_state(&mut self, st: u64, now: u64) {
        if self.state != st {
            self.state = st;
            self.state_ns = now;
        }
    }

    fn tick(&mut self, now: u64) {
        self.progress += 1;
        if self.first_ns == 0 {
            self.first_ns = now;
        }
        self.last_ns = now;
        self.set_state(ST_RUNNING, now);
    }
}

/// Remembers when incarnation `inc` of a producer was first seen, in a
/// ring of 4 `(incarnation, ns)` pairs.
fn note_seen(ring: &mut [u64], next: &mut u64, inc: u64, now: u64) {
    if ring.chunks_exact(2).any(|e| e[0] == inc) {
        return;
    }
    let i = (*next as usize % (ring.len() / 2)) * 2;
    ring[i] = inc;
    ring[i + 1] = now;
    *next = next.wrapping_add(1);
}

fn seen_at(ring: &[u64], inc: u64) -> Option<u64> {
    ring.chunks_exact(2)
        .find(|e| e[0] == inc && e[1] != 0)
        .map(|e| e[1])
}

/// The journal of a producer or a subscriber.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct RoleRec {
    head: Head,
    /// Producers: messages sent by this incarnation, and by all.
    sent_inc: u64,
    sent_total: u64,
    /// Subscribers (all incarnations).
    delivered_total: u64,
    dup_total: u64,
    lost_total: u64,
    corrupt_total: u64,
    /// Overwrite ring: messages reported missed through `Lagged`, and reports.
    lagged_total: u64,
    lagged_events: u64,
    /// Subscribers: when each publisher incarnation was first seen.
    seen: [u64; 8],
    seen_next: u64,
    /// Subscribers: the next position expected when the stream ended.
    final_pos: u64,
}

type RoleJournal = Journal<RoleRec, 32>;

/// Table sizes of the channel progress.
const PENDING: usize = 8;
const TABLE: usize = 16;

/// The channel receiver's journal: its progress (module doc).
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct ChanRec {
    head: Head,
    /// Every delivery, checked (redelivered and duplicates included).
    delivered_total: u64,
    /// Messages taken once.
    unique_total: u64,
    dup_total: u64,
    redelivered_total: u64,
    lost_total: u64,
    corrupt_total: u64,
    /// The message in hand: producer, incarnation, seq, valid.
    last_taken: [u64; 4],
    /// Messages a dead receiver may have held: PENDING x (producer, incarnation, seq, valid).
    pending: [u64; 4 * PENDING],
    /// TABLE x (producer, incarnation, last seq, last touch); incarnation 0 = empty.
    table: [u64; 4 * TABLE],
    touch: u64,
    /// Per lane producer: 4 x (incarnation, first seen ns).
    seen: [u64; 8 * LANES],
    seen_next: [u64; LANES],
}

type ChanJournal = Journal<ChanRec, 136>;

impl ChanRec {
    fn add_pending(&mut self, m: [u64; 3]) {
        let entries = self.pending.chunks_exact(4);
        if entries.clone().any(|e| e[3] == 1 && e[..3] == m) {
            return;
        }
        let free = entries.clone().position(|e| e[3] == 0).unwrap_or(0);
        self.pending[free * 4..free * 4 + 4].copy_from_slice(&[m[0], m[1], m[2], 1]);
    }

    fn take_pending(&mut self, m: [u64; 3]) -> bool {
        match self
            .pending
            .chunks_exact(4)
            .position(|e| e[3] == 1 && e[..3] == m)
        {
            Some(i) => {
                self.pending[i * 4 + 3] = 0;
                true
            }
            None => false,
        }
    }

    /// The table entry of (producer, incarnation), if any.
    fn find(&self, p: u64, inc: u64) -> Option<usize> {
        self.table
            .chunks_exact(4)
            .position(|e| e[1] != 0 && e[0] == p && e[1] == inc)
    }

    /// A new entry (a free one, else the least recently touched).
    fn insert(&mut self, p: u64, inc: u64) -> usize {
        let i = self
            .table
            .chunks_exact(4)
            .enumerate()
            .min_by_key(|(_, e)| if e[1] == 0 { 0 } else { e[3] + 1 })
            .map_or(0, |(i, _)| i);
        self.table[i * 4..i * 4 + 4].copy_from_slice(&[p, inc, NONE, 0]);
        i
    }

    /// A new receiver incarnation: its predecessor's message in hand may come again.
    fn start(&mut self, inc: u64, now: u64) {
        if self.head.start(inc, now) && self.last_taken[3] == 1 {
            let lt = self.last_taken;
            self.add_pending([lt[0], lt[1], lt[2]]);
        }
    }

    /// Accounts for one delivery (inside `recv_with`, before the release).
    fn apply(&mut self, m: Option<Msg>, now: u64) {
        let taken_before = self.head.progress;
        self.head.tick(now);
        self.delivered_total += 1;
        let Some(m) = m.filter(|m| (m.producer as usize) < LANES && m.inc != 0) else {
            self.corrupt_total += 1;
            return;
        };
        let (p, inc) = (u64::from(m.producer), m.inc);
        self.touch += 1;
        let accept = match self.find(p, inc) {
            None => {
                // A new incarnation's first message must be its seq 0.
                self.lost_total += m.seq;
                let i = self.insert(p, inc);
                Some(i)
            }
            Some(i) => {
                let last = self.table[i * 4 + 2];
                if m.seq == last.wrapping_add(1) {
                    Some(i)
                } else if m.seq > last {
                    self.lost_total += m.seq - last - 1;
                    Some(i)
                } else if taken_before < LANES as u64 && self.take_pending([p, inc, m.seq]) {
                    self.redelivered_total += 1;
                    None
                } else {
                    self.dup_total += 1;
                    None
                }
            }
        };
        if let Some(i) = accept {
            self.unique_total += 1;
            self.table[i * 4 + 2] = m.seq;
            self.table[i * 4 + 3] = self.touch;
            let (lo, hi) = (m.producer as usize * 8, m.producer as usize * 8 + 8);
            note_seen(
                &mut self.seen[lo..hi],
                &mut self.seen_next[m.producer as usize],
                inc,
                now,
            );
        }
        self.last_taken = [p, inc, m.seq, 1];
        // The messages a dead predecessor held sit at the heads of their
        // lanes: they come within the first LANES deliveries, or never.
        if self.head.progress >= LANES as u64 {
            self.pending = [0; 4 * PENDING];
        }
    }
}

// ---------------------------------------------------------------- children

/// The control segment's words: `[phase, ...]`.
type Ctl = [u64; 8];
/// Phases: 0 run, 1 producers stop, 2 consumers drain and stop.
const PHASE_RUN: u64 = 0;
const PHASE_DRAIN: u64 = 2;

struct Ctx {
    role: Role,
    slot: usize,
    inc: u64,
    names: Names,
    rate: f64,
    rng: XorShift,
    ctl: Shared<Ctl>,
    ppid: u32,
    checked: Instant,
    phase: u64,
}

impl Ctx {
    /// The phase, re-read every 20 ms; exits if the supervisor is gone.
    fn phase(&mut self) -> u64 {
        if self.checked.elapsed() >= Duration::from_millis(20) {
            self.checked = Instant::now();
            if std::os::unix::process::parent_id() != self.ppid {
                eprintln!("{}: supervisor gone; exiting", self.role.name());
                std::process::exit(3);
            }
            let g = match self.ctl.lock() {
                Ok(g) | Err(LockError::OwnerDied(g)) => g,
                Err(e) => panic!("control lock: {e}"),
            };
            self.phase = g.get()[0];
        }
        self.phase
    }

    /// Sleeps `lo..hi` ms once in `one_in` calls.
    fn maybe_pause(&mut self, one_in: u64, lo: u64, hi: u64) -> bool {
        if self.rng.below(one_in) != 0 {
            return false;
        }
        std::thread::sleep(Duration::from_millis(lo + self.rng.below(hi - lo)));
        true
    }

    /// A pause of `lo..hi` ms once in `one_in` calls (zero otherwise), to
    /// take inside a critical window, so that kills land there too.
    fn hold(&mut self, one_in: u64, lo: u64, hi: u64) -> Duration {
        if self.phase != PHASE_RUN || self.rng.below(one_in) != 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(lo + self.rng.below(hi - lo))
    }

    /// Retries `open` (a role may be held for a moment by nobody we can
    /// see: a claim racing ours); bounded by the supervisor's hang check.
    fn open<T>(&mut self, what: &str, mut open: impl FnMut() -> Result<T, SegmentError>) -> T {
        let mut tries = 0u64;
        loop {
            match open() {
                Ok(t) => return t,
                Err(e) => {
                    tries += 1;
                    if tries == 1 || tries % 1000 == 0 {
                        eprintln!("{}: {what} failed ({tries} tries): {e}", self.role.name());
                    }
                    if std::os::unix::process::parent_id() != self.ppid {
                        std::process::exit(3);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

/// Paces a producer to `rate` messages per second, in bursts of about a
/// millisecond's worth.
struct Pace {
    start: Instant,
    rate: f64,
    done: u64,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            start: Instant::now(),
            rate,
            done: 0,
        }
    }

    fn next(&mut self) {
        loop {
            let due = (self.start.elapsed().as_secs_f64() * self.rate) as u64;
            let burst = (self.rate / 20.0) as u64 + 1; // no catch-up beyond 50 ms
            if due > self.done + burst {
                self.done = due - burst;
            }
            if self.done < due {
                self.done += 1;
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn run_child(args: &Args) -> ExitCode {
    let role = args.role.expect("a role");
    let names = Names {
        prefix: args.prefix.clone(),
    };
    let ctl = Shared::<Ctl>::open(&names.ctl()).expect("open the control segment");
    let mut cx = Ctx {
        role,
        slot: args.slot,
        inc: args.inc,
        names,
        rate: args.rate,
        rng: XorShift::new(mix(args.seed ^ ((args.slot as u64) << 40) ^ args.inc)),
        ctl,
        ppid: std::os::unix::process::parent_id(),
        checked: Instant::now() - Duration::from_secs(1),
        phase: 0,
    };
    match role {
        Role::ChannelSender => run_sender(&mut cx),
        Role::ChannelReceiver => run_receiver(&mut cx),
        Role::Publisher => run_publisher(&mut cx, Policy::Lossless),
        Role::OwPublisher => run_publisher(&mut cx, Policy::OverwriteOldest),
        Role::Subscriber => run_subscriber(&mut cx, Policy::Lossless),
        Role::OwSubscriber => run_subscriber(&mut cx, Policy::OverwriteOldest),
    }
    ExitCode::SUCCESS
}

fn role_journal(cx: &Ctx) -> RoleJournal {
    let j = RoleJournal::open(&cx.names.journal(cx.slot)).expect("open journal");
    let inc = cx.inc;
    j.update(|r, died| {
        r.head.owner_died += u64::from(died);
        if r.head.start(inc, now_ns()) {
            r.sent_inc = 0;
            r.final_pos = NONE;
        }
    });
    j
}

fn set_state(j: &RoleJournal, st: u64) {
    j.update(|r, died| {
        r.head.owner_died += u64::from(died);
        r.head.set_state(st, now_ns());
    });
}

fn finish(j: &RoleJournal, final_pos: u64) {
    j.update(|r, _| {
        r.head.finished = 1;
        r.head.set_state(ST_DONE, now_ns());
        r.final_pos = final_pos;
    });
}

fn run_sender(cx: &mut Ctx) {
    let j = role_journal(cx);
    let opts = chan_opts(&cx.names.chan());
    let mut tx = cx.open("Sender::open", || Sender::open(&opts));
    let (producer, inc) = (cx.slot as u32, cx.inc);
    let mut pace = Pace::new(cx.rate);
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    let mut seq = 0u64;
    'run: while cx.phase() == PHASE_RUN {
        pace.next();
        make_message(&mut buf, producer, inc, seq, 0);
        loop {
            match tx.send_timeout(&buf, STEP) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(_)) => {
                    set_state(&j, ST_WAIT_ROOM);
                    if cx.phase() != PHASE_RUN {
                        break 'run;
                    }
                }
                Err(SendTimeoutError::TooLarge(m)) => panic!("message of {} bytes", m.len()),
            }
        }
        let in_lock = cx.hold(4000, 1, 4);
        j.update(|r, _| {
            r.sent_inc = seq + 1;
            r.sent_total += 1;
            r.head.tick(now_ns());
            std::thread::sleep(in_lock);
        });
        seq += 1;
    }
    finish(&j, NONE);
    drop(tx);
}

fn run_receiver(cx: &mut Ctx) {
    let j = ChanJournal::open(&cx.names.journal(RX_SLOT)).expect("open progress journal");
    let inc = cx.inc;
    j.update(|r, died| {
        r.head.owner_died += u64::from(died);
        r.start(inc, now_ns());
    });
    let opts = chan_opts(&cx.names.chan());
    let mut rx = cx.open("Receiver::open", || Receiver::open(&opts));
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    let mut taken = 0u64; // receive attempts: no pause before the first
    loop {
        let phase = cx.phase();
        if phase == PHASE_RUN && taken > 0 && cx.maybe_pause(4000, 5, 30) {
            continue;
        }
        taken += 1;
        // Now and then hold the journal lock, or the message in place after
        // recording it (a slow in-place consumer), for a few ms: kills land
        // in those windows too (lock takeover, redelivery).
        let in_lock = cx.hold(4000, 1, 4);
        let in_place = cx.hold(1000, 1, 5);
        let got = rx.recv_timeout_with(STEP, |bytes| {
            // Copy out, then validate (peers are untrusted).
            buf.clear();
            buf.extend_from_slice(bytes);
            let m = check_message(&buf);
            j.update(|r, died| {
                r.head.owner_died += u64::from(died);
                r.apply(m, now_ns());
                std::thread::sleep(in_lock);
            });
            std::thread::sleep(in_place);
        });
        match got {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                if phase >= PHASE_DRAIN {
                    break; // the senders are gone and the lanes are empty
                }
                j.update(|r, _| r.head.set_state(ST_WAIT_MSG, now_ns()));
            }
            Err(RecvTimeoutError::Corrupt { len }) => {
                eprintln!("channel-receiver: corrupt slot (length {len})");
                j.update(|r, _| {
                    r.head.tick(now_ns());
                    r.delivered_total += 1;
                    r.corrupt_total += 1;
                });
            }
        }
    }
    j.update(|r, _| {
        r.head.finished = 1;
        r.head.set_state(ST_DONE, now_ns());
    });
    drop(rx);
}

fn run_publisher(cx: &mut Ctx, policy: Policy) {
    let j = role_journal(cx);
    let opts = ring_opts(&cx.names.ring(policy), policy);
    let mut publisher = cx.open("Publisher::open", || Publisher::open_with(&opts));
    let (producer, inc) = (cx.slot as u32, cx.inc);
    let mut pace = Pace::new(cx.rate);
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    let mut seq = 0u64;
    'run: while cx.phase() == PHASE_RUN {
        pace.next();
        let pos = publisher.published();
        make_message(&mut buf, producer, inc, seq, pos);
        loop {
            match publisher.publish_timeout(&buf, STEP) {
                Ok(()) => break,
                Err(PublishError::Timeout) => {
                    set_state(&j, ST_WAIT_ROOM);
                    if cx.phase() != PHASE_RUN {
                        break 'run;
                    }
                }
                Err(e) => panic!("publish: {e}"),
            }
        }
        let in_lock = cx.hold(4000, 1, 4);
        j.update(|r, _| {
            r.sent_inc = seq + 1;
            r.sent_total += 1;
            r.head.tick(now_ns());
            std::thread::sleep(in_lock);
        });
        seq += 1;
    }
    finish(&j, NONE);
    drop(publisher);
}

/// A subscriber incarnation's view of the stream (module doc, "Checks").
struct SubCheck {
    lossless: bool,
    producer: u32,
    /// Next position expected (None: not anchored yet).
    expected: Option<u64>,
    /// Publisher incarnation and last seq seen.
    current: Option<(u64, u64)>,
    /// A `Lagged` since the last message (overwrite ring).
    lagged: bool,
}

impl SubCheck {
    fn message(&mut self, r: &mut RoleRec, m: Option<Msg>, now: u64) {
        r.head.tick(now);
        r.delivered_total += 1;
        let Some(m) = m.filter(|m| m.producer == self.producer && m.inc != 0) else {
            r.corrupt_total += 1;
            self.expected = None;
            self.current = None;
            return;
        };
        let mut clean = true;
        match self.expected {
            Some(e) if m.pos < e => {
                r.dup_total += 1;
                return;
            }
            Some(e) if m.pos > e => {
                r.lost_total += m.pos - e;
                clean = false;
            }
            _ => {}
        }
        self.expected = Some(m.pos + 1);
        // Counted only when the position was right, so an anomaly counts once.
        match self.current {
            _ if !clean => {}
            None => {}
            Some((inc, last)) if m.inc == inc => {
                if m.seq <= last {
                    r.dup_total += 1;
                } else if m.seq != last + 1 && !self.lagged {
                    r.lost_total += m.seq - last - 1;
                }
            }
            // A publisher that started while we were here: from its seq 0.
            Some((inc, _)) if m.inc > inc && m.seq != 0 && !self.lagged => {
                r.lost_total += m.seq;
            }
            Some((inc, _)) if m.inc > inc => {}
            Some(_) => r.dup_total += 1, // an older publisher after a newer one
        }
        self.current = Some((m.inc, m.seq));
        self.lagged = false;
        note_seen(&mut r.seen, &mut r.seen_next, m.inc, now);
    }

    fn lagged(&mut self, r: &mut RoleRec, n: u64) {
        if self.lossless {
            r.lost_total += n;
        } else {
            r.lagged_total += n;
            r.lagged_events += 1;
        }
        self.expected = self.expected.map(|e| e + n);
        self.lagged = true;
    }
}

fn run_subscriber(cx: &mut Ctx, policy: Policy) {
    let j = role_journal(cx);
    let opts = ring_opts(&cx.names.ring(policy), policy);
    let mut sub = cx.open("Subscriber::open", || Subscriber::open_with(&opts));
    let lossless = policy == Policy::Lossless;
    let mut chk = SubCheck {
        lossless,
        producer: if lossless { PUB_SLOT } else { OW_PUB_SLOT } as u32,
        expected: None,
        current: None,
        lagged: false,
    };
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    // The overwrite subscriber pauses often enough to be lapped; none
    // pauses before its first message (that would count as recovery time).
    let (one_in, lo, hi) = if lossless {
        (2000, 5, 30)
    } else {
        (500, 10, 60)
    };
    let mut taken = 0u64;
    loop {
        let phase = cx.phase();
        if phase == PHASE_RUN && taken > 0 && cx.rng.below(one_in) == 0 {
            set_state(&j, ST_PAUSED);
            cx.maybe_pause(1, lo, hi);
        }
        let got = sub.recv_into_timeout(&mut buf, STEP);
        let now = now_ns();
        match got {
            Ok(_) => {
                taken += 1;
                let m = check_message(&buf);
                let in_lock = cx.hold(4000, 1, 4);
                j.update(|r, _| {
                    chk.message(r, m, now);
                    std::thread::sleep(in_lock);
                });
            }
            Err(PubSubRecvError::Lagged(n)) => j.update(|r, _| chk.lagged(r, n)),
            Err(PubSubRecvError::Disconnected) => {
                if phase >= PHASE_DRAIN {
                    break; // the publisher stopped and we read everything
                }
                set_state(&j, ST_DISCONNECTED);
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(PubSubRecvError::Timeout | PubSubRecvError::Empty) => set_state(&j, ST_WAIT_MSG),
            Err(PubSubRecvError::Corrupt { position, len }) => {
                eprintln!(
                    "{}: corrupt slot at {position} (length {len})",
                    cx.role.name()
                );
                j.update(|r, _| {
                    r.head.tick(now);
                    r.delivered_total += 1;
                    r.corrupt_total += 1;
                });
                chk.expected = Some(position + 1);
            }
        }
    }
    finish(&j, chk.expected.unwrap_or(NONE));
    drop(sub);
}

// ---------------------------------------------------------------- supervisor

#[derive(Debug)]
struct Args {
    duration: Duration,
    seed: u64,
    rate: f64,
    quiet: bool,
    role: Option<Role>,
    slot: usize,
    inc: u64,
    prefix: String,
}

const USAGE: &str = "usage: soak [--duration SECS] [--seed N] [--rate MSGS_PER_SEC] [--quiet]";

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        duration: Duration::from_secs(30),
        seed: now_ns() ^ (u64::from(std::process::id()) << 32),
        rate: 20_000.0,
        quiet: false,
        role: None,
        slot: 0,
        inc: 0,
        prefix: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--duration" => {
                let v = value()?;
                let secs: f64 = v.parse().map_err(|_| format!("bad duration {v}"))?;
                if !(secs > 0.0 && secs < 1e7) {
                    return Err(format!("bad duration {v}"));
                }
                a.duration = Duration::from_secs_f64(secs);
            }
            "--seed" => {
                let v = value()?;
                a.seed = parse_u64(&v).ok_or(format!("bad seed {v}"))?;
            }
            "--rate" => {
                let v = value()?;
                a.rate = v.parse().map_err(|_| format!("bad rate {v}"))?;
                if !(a.rate >= 1.0 && a.rate <= 1e7) {
                    return Err(format!("bad rate {v}"));
                }
            }
            "--quiet" => a.quiet = true,
            // Internal: the child roles.
            "--role" => {
                let v = value()?;
                a.role = Some(Role::parse(&v).ok_or(format!("bad role {v}"))?);
            }
            "--slot" => a.slot = value()?.parse().map_err(|_| "bad slot")?,
            "--inc" => a.inc = value()?.parse().map_err(|_| "bad incarnation")?,
            "--prefix" => a.prefix = value()?,
            // What a test harness may pass along.
            "--nocapture" | "--test-threads=1" => {}
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// One slot's running process.
struct Proc {
    child: Child,
    pid: u32,
    inc: u64,
    log: PathBuf,
    /// Progress counter last seen, and when it last changed (or the spawn).
    progress: u64,
    changed: Instant,
}

/// A kill waiting for its recovery sample.
struct Pending {
    slot: usize,
    /// The restarted incarnation.
    inc: u64,
    kill_ns: u64,
    at: Instant,
    /// That incarnation was killed too before a sample was seen.
    killed_early: bool,
}

#[derive(Default, Clone, Copy)]
struct Totals {
    chan_delivered: u64,
    chan_unique: u64,
    chan_dup: u64,
    chan_redelivered: u64,
    chan_lost: u64,
    chan_corrupt: u64,
    ps_delivered: u64,
    ps_dup: u64,
    ps_lost: u64,
    ps_corrupt: u64,
    ow_lagged: u64,
    ow_lagged_events: u64,
    sent: [u64; SLOTS],
    owner_died: u64,
}

struct Sup {
    args: Args,
    names: Names,
    exe: PathBuf,
    logdir: PathBuf,
    ctl: Shared<Ctl>,
    chan_j: ChanJournal,
    role_j: Vec<Option<RoleJournal>>,
    chan: ChanRec,
    recs: [RoleRec; SLOTS],
    procs: Vec<Option<Proc>>,
    incs: [u64; SLOTS],
    rng: XorShift,
    pids: HashSet<u32>,
    kills: [u64; 4],
    /// Incarnations ended by SIGKILL, per slot (chaos and hang kills).
    sigkilled: [u64; SLOTS],
    pending: Vec<Pending>,
    samples: Vec<(usize, u64)>,
    censored: u64,
    unrecovered: u64,
    hangs: u64,
    failures: u64,
    journal_errors: u64,
    sup_owner_died: u64,
    /// Longest time without progress, per kill group (during the run).
    longest_stall: [Duration; 4],
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into())
}

fn proc_info(pid: u32) -> String {
    let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?");
    format!("kernel state {state}, wchan {wchan:?}")
}

fn tail_of(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}

impl Sup {
    fn new(args: Args) -> Result<Sup, String> {
        let pid = std::process::id();
        let names = Names {
            prefix: format!("soak-{pid}-{:06x}", now_ns() & 0xff_ffff),
        };
        // Create every segment persistent; drop the roles taken to create
        // the channel and rings (the lane and the publisher role are freed).
        let seg = |name: String| move |e: SegmentError| format!("create {name}: {e}");
        drop(
            Sender::create(&chan_opts(&names.chan()).persistent(true))
                .map_err(seg(names.chan()))?,
        );
        for policy in [Policy::Lossless, Policy::OverwriteOldest] {
            let name = names.ring(policy);
            drop(
                Publisher::create_with(&ring_opts(&name, policy).persistent(true))
                    .map_err(seg(name.clone()))?,
            );
        }
        let ctl = Shared::<Ctl>::create_with(&SegmentOptions::new(&names.ctl()).persistent(true))
            .map_err(seg(names.ctl()))?;
        let chan_j =
            ChanJournal::create(&names.journal(RX_SLOT)).map_err(seg(names.journal(RX_SLOT)))?;
        let mut role_j = Vec::new();
        for slot in 0..SLOTS {
            role_j.push(if slot == RX_SLOT {
                None
            } else {
                let name = names.journal(slot);
                Some(RoleJournal::create(&name).map_err(seg(name.clone()))?)
            });
        }
        let logdir = std::env::temp_dir().join(format!("mapshare-{}", names.prefix));
        fs::create_dir_all(&logdir).map_err(|e| format!("{}: {e}", logdir.display()))?;
        let rng = XorShift::new(args.seed);
        let mut pids = HashSet::new();
        pids.insert(pid);
        Ok(Sup {
            args,
            names,
            exe: std::env::current_exe().expect("current_exe"),
            logdir,
            ctl,
            chan_j,
            role_j,
            chan: ChanRec::zeroed(),
            recs: [RoleRec::zeroed(); SLOTS],
            procs: (0..SLOTS).map(|_| None).collect(),
            incs: [0; SLOTS],
            rng,
            pids,
            kills: [0; 4],
            sigkilled: [0; SLOTS],
            pending: Vec::new(),
            samples: Vec::new(),
            censored: 0,
            unrecovered: 0,
            hangs: 0,
            failures: 0,
            journal_errors: 0,
            sup_owner_died: 0,
            longest_stall: [Duration::ZERO; 4],
        })
    }

    fn spawn(&mut self, slot: usize) {
        self.incs[slot] += 1;
        let inc = self.incs[slot];
        let role = ROLES[slot];
        let log = self
            .logdir
            .join(format!("{}-{slot}-{inc}.log", role.name()));
        let err = fs::File::create(&log).expect("create child log");
        let child = Command::new(&self.exe)
            .args(["--role", role.name(), "--prefix", &self.names.prefix])
            .args(["--slot", &slot.to_string(), "--inc", &inc.to_string()])
            .args(["--seed", &self.args.seed.to_string()])
            .args(["--rate", &self.args.rate.to_string()])
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn child");
        let pid = child.id();
        self.pids.insert(pid);
        self.procs[slot] = Some(Proc {
            child,
            pid,
            inc,
            log,
            progress: 0,
            changed: Instant::now(),
        });
    }

    /// SIGKILL, reap, forget the log.
    fn kill(&mut self, slot: usize) {
        if let Some(mut p) = self.procs[slot].take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
            let _ = fs::remove_file(&p.log);
            self.sigkilled[slot] += 1;
            for q in &mut self.pending {
                if q.slot == slot && q.inc == p.inc {
                    q.killed_early = true;
                }
            }
        }
    }

    fn set_phase(&mut self, phase: u64) {
        let mut g = match self.ctl.lock() {
            Ok(g) => g,
            Err(LockError::OwnerDied(g)) => {
                self.sup_owner_died += 1;
                g
            }
            Err(e) => panic!("control lock: {e}"),
        };
        g.update(|c| c[0] = phase);
    }

    fn read_journals(&mut self) {
        for slot in 0..SLOTS {
            self.read_journal(slot);
        }
    }

    /// Reads `slot`'s journal (under its lock: this waits for a child in
    /// its critical section to leave it).
    fn read_journal(&mut self, slot: usize) {
        let (got, died) = if slot == RX_SLOT {
            match self.chan_j.read() {
                Ok((r, died)) => {
                    self.chan = r;
                    (Ok(()), died)
                }
                Err(e) => (Err(e), false),
            }
        } else if let Some(j) = &self.role_j[slot] {
            match j.read() {
                Ok((r, died)) => {
                    self.recs[slot] = r;
                    (Ok(()), died)
                }
                Err(e) => (Err(e), false),
            }
        } else {
            (Ok(()), false)
        };
        self.sup_owner_died += u64::from(died);
        if let Err(ReadError::Unreadable) = got {
            self.journal_error(slot);
        }
    }

    fn journal_error(&mut self, slot: usize) {
        self.journal_errors += 1;
        eprintln!("soak: ERROR: journal of slot {slot} unreadable (both copies invalid)");
    }

    fn head(&self, slot: usize) -> Head {
        if slot == RX_SLOT {
            self.chan.head
        } else {
            self.recs[slot].head
        }
    }

    /// Reaps children that exited on their own (a failure during the run).
    fn reap(&mut self, respawn: bool) {
        for (slot, role) in ROLES.iter().enumerate() {
            let Some(p) = &mut self.procs[slot] else {
                continue;
            };
            let Ok(Some(status)) = p.child.try_wait() else {
                continue;
            };
            let p = self.procs[slot].take().expect("present");
            if respawn || !status.success() {
                self.failures += 1;
                eprintln!(
                    "soak: FAILURE: {} (slot {slot}, incarnation {}, pid {}) exited: {status}; log {}:\n{}",
                    role.name(),
                    p.inc,
                    p.pid,
                    p.log.display(),
                    tail_of(&p.log, 30)
                );
            } else {
                let _ = fs::remove_file(&p.log);
            }
            if respawn {
                self.spawn(slot);
            }
        }
    }

    fn poll(&mut self, hang_check: bool) {
        self.reap(hang_check);
        self.read_journals();
        for (slot, role) in ROLES.iter().enumerate() {
            let head = self.head(slot);
            let Some(p) = &mut self.procs[slot] else {
                continue;
            };
            let progress = if head.incarnation == p.inc {
                head.progress
            } else {
                0
            };
            if progress != p.progress {
                if hang_check {
                    let g = role.group();
                    self.longest_stall[g] = self.longest_stall[g].max(p.changed.elapsed());
                }
                p.progress = progress;
                p.changed = Instant::now();
            } else if hang_check && p.changed.elapsed() >= HANG_AFTER {
                let (pid, inc, idle) = (p.pid, p.inc, p.changed.elapsed());
                self.hang(slot, pid, inc, idle, &head);
                self.kill(slot);
                self.spawn(slot);
            }
        }
        self.resolve();
    }

    fn hang(&mut self, slot: usize, pid: u32, inc: u64, idle: Duration, head: &Head) {
        self.hangs += 1;
        let (state, since) = if head.incarnation == inc {
            (
                state_name(head.state),
                ms(now_ns().saturating_sub(head.state_ns)),
            )
        } else {
            (state_name(0), "-".into())
        };
        eprintln!(
            "soak: HANG: {} (slot {slot}, incarnation {inc}, pid {pid}) made no progress for {:.1} s \
             (progress {}); it was {state} for {since} ms; {}",
            ROLES[slot].name(),
            idle.as_secs_f64(),
            if head.incarnation == inc { head.progress } else { 0 },
            proc_info(pid),
        );
    }

    /// When the first message of `inc` of `slot`'s role was seen (ns).
    fn first_seen(&self, slot: usize, inc: u64) -> Option<u64> {
        match ROLES[slot] {
            Role::ChannelSender => seen_at(&self.chan.seen[slot * 8..slot * 8 + 8], inc),
            Role::Publisher => [4, 5]
                .iter()
                .filter_map(|&s| seen_at(&self.recs[s].seen, inc))
                .min(),
            Role::OwPublisher => seen_at(&self.recs[OW_SUB_SLOT].seen, inc),
            Role::ChannelReceiver | Role::Subscriber | Role::OwSubscriber => {
                let h = self.head(slot);
                (h.incarnation == inc && h.first_ns != 0).then_some(h.first_ns)
            }
        }
    }

    fn resolve(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            if let Some(ns) = self.first_seen(p.slot, p.inc) {
                self.samples
                    .push((ROLES[p.slot].group(), ns.saturating_sub(p.kill_ns)));
            } else if p.at.elapsed() >= RECOVERY_GIVE_UP {
                if p.killed_early {
                    self.censored += 1;
                } else {
                    self.unrecovered += 1;
                    eprintln!(
                        "soak: ERROR: {} (slot {}) incarnation {} showed no message {} s after the kill",
                        ROLES[p.slot].name(),
                        p.slot,
                        p.inc,
                        RECOVERY_GIVE_UP.as_secs()
                    );
                }
            } else {
                self.pending.push(p);
            }
        }
    }

    /// Kills a random child and restarts its role. No journal is read just
    /// before the kill: a read waits for a child inside its journal's
    /// critical section to leave it, and the kill would then never land
    /// there (the lock takeover path would go untested).
    fn chaos_kill(&mut self) {
        // A random child, among those that made progress lately.
        let live: Vec<usize> = (0..SLOTS)
            .filter(|&s| {
                self.procs[s]
                    .as_ref()
                    .is_some_and(|p| p.changed.elapsed() < SPARE_AFTER)
            })
            .collect();
        if live.is_empty() {
            return;
        }
        let slot = live[self.rng.below(live.len() as u64) as usize];
        let kill_ns = now_ns();
        self.kill(slot);
        self.kills[ROLES[slot].group()] += 1;
        // The victim's journal as it died: its own recovery sample.
        self.read_journal(slot);
        self.resolve();
        self.spawn(slot);
        self.pending.push(Pending {
            slot,
            inc: self.incs[slot],
            kill_ns,
            at: Instant::now(),
            killed_early: false,
        });
    }

    fn totals(&self) -> Totals {
        let c = &self.chan;
        let mut t = Totals {
            chan_delivered: c.delivered_total,
            chan_unique: c.unique_total,
            chan_dup: c.dup_total,
            chan_redelivered: c.redelivered_total,
            chan_lost: c.lost_total,
            chan_corrupt: c.corrupt_total,
            owner_died: c.head.owner_died,
            ..Totals::default()
        };
        for slot in 0..SLOTS {
            if slot == RX_SLOT {
                continue;
            }
            let r = &self.recs[slot];
            t.sent[slot] = r.sent_total;
            t.owner_died += r.head.owner_died;
            if SUB_SLOTS.contains(&slot) {
                t.ps_delivered += r.delivered_total;
                t.ps_dup += r.dup_total;
                t.ps_lost += r.lost_total;
                t.ps_corrupt += r.corrupt_total;
                t.ow_lagged += r.lagged_total;
                t.ow_lagged_events += r.lagged_events;
            }
        }
        t
    }

    /// Stops `slots` (already told to) within STOP_TIMEOUT; a child that
    /// does not stop is a hang.
    fn wait_stopped(&mut self, slots: &[usize]) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            self.poll(false);
            if slots.iter().all(|&s| self.procs[s].is_none()) {
                return;
            }
            if Instant::now() >= deadline {
                for &slot in slots {
                    if let Some(p) = &self.procs[slot] {
                        let (pid, inc) = (p.pid, p.inc);
                        let head = self.head(slot);
                        eprintln!("soak: child did not stop when told to");
                        self.hang(slot, pid, inc, STOP_TIMEOUT, &head);
                        self.kill(slot);
                    }
                }
                return;
            }
            std::thread::sleep(POLL);
        }
    }

    fn run(&mut self) {
        let start = Instant::now();
        for slot in 0..SLOTS {
            self.spawn(slot);
        }
        let until = start + self.args.duration;
        let mut next_kill = start + self.kill_interval();
        let mut next_report = start + Duration::from_secs(10);
        loop {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep(POLL.min(next_kill.saturating_duration_since(now)));
            // Kill before polling, not right after a poll (see chaos_kill).
            if Instant::now() >= next_kill {
                self.chaos_kill();
                next_kill = Instant::now() + self.kill_interval();
            }
            self.poll(true);
            if !self.args.quiet && Instant::now() >= next_report {
                next_report += Duration::from_secs(10);
                let t = self.totals();
                eprintln!(
                    "soak: [{:>5.0} s] kills {}, channel {} taken, pubsub {} taken, dup {}, lost {}, corrupt {}, hangs {}",
                    start.elapsed().as_secs_f64(),
                    self.kills.iter().sum::<u64>(),
                    t.chan_delivered,
                    t.ps_delivered,
                    t.chan_dup + t.ps_dup,
                    t.chan_lost + t.ps_lost,
                    t.chan_corrupt + t.ps_corrupt,
                    self.hangs,
                );
            }
        }
        // Stop: producers first, then let the consumers drain.
        self.set_phase(1);
        self.wait_stopped(&[0, 1, PUB_SLOT, OW_PUB_SLOT]);
        self.set_phase(PHASE_DRAIN);
        self.wait_stopped(&[RX_SLOT, 4, 5, OW_SUB_SLOT]);
        self.read_journals();
        // Restarts still pending at the end: no verdict either way.
        self.resolve();
    }

    fn kill_interval(&mut self) -> Duration {
        Duration::from_millis(KILL_MIN_MS + self.rng.below(KILL_MAX_MS - KILL_MIN_MS + 1))
    }
}

/// What the end-of-run checks found beyond the journals.
#[derive(Default)]
struct EndChecks {
    chan_sent: u64,
    chan_tail_lost: u64,
    chan_extra: u64,
    chan_left: u64,
    ps_published: [u64; 2],
    ps_tail_lost: u64,
    ps_extra: u64,
}

fn end_checks(sup: &Sup, t: &Totals) -> EndChecks {
    let mut e = EndChecks {
        chan_sent: t.sent[0] + t.sent[1],
        ..EndChecks::default()
    };
    // Each killed sender may have sent one message it did not record.
    let slack = sup.sigkilled[0] + sup.sigkilled[1];
    e.chan_tail_lost = e.chan_sent.saturating_sub(t.chan_unique);
    e.chan_extra = t.chan_unique.saturating_sub(e.chan_sent + slack);
    // Nothing may be left in the drained channel.
    match Receiver::open(&chan_opts(&sup.names.chan())) {
        Ok(mut rx) => {
            while !matches!(rx.try_recv(), Err(TryRecvError::Empty)) {
                e.chan_left += 1;
            }
        }
        Err(err) => eprintln!("soak: ERROR: cannot open the channel to check it is empty: {err}"),
    }
    for (k, policy) in [Policy::Lossless, Policy::OverwriteOldest]
        .into_iter()
        .enumerate()
    {
        let name = sup.names.ring(policy);
        let published = match pubsub_stats(&SegmentOptions::new(&name)) {
            Ok(s) => s.published,
            Err(err) => {
                eprintln!("soak: ERROR: pubsub_stats({name}): {err}");
                continue;
            }
        };
        e.ps_published[k] = published;
        let subs: &[usize] = if k == 0 { &[4, 5] } else { &[OW_SUB_SLOT] };
        for &s in subs {
            let r = &sup.recs[s];
            if r.head.finished == 1 && r.final_pos != NONE {
                e.ps_tail_lost += published.saturating_sub(r.final_pos);
                e.ps_extra += r.final_pos.saturating_sub(published);
            }
        }
    }
    e
}

fn leftovers(prefix: &str, pids: &HashSet<u32>) -> Vec<String> {
    common::shm_listing()
        .into_iter()
        .filter(|f| {
            f.contains(prefix)
                || f.strip_prefix(".mapshare-init.")
                    .and_then(|rest| rest.split('.').next())
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(|p| pids.contains(&p))
        })
        .collect()
}

fn supervise(args: Args) -> ExitCode {
    let limit = args.duration + Duration::from_secs(300);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("soak: watchdog: still running after {limit:?}; aborting");
        std::process::abort();
    });
    let started = Instant::now();
    let mut sup = match Sup::new(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soak: setup failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !sup.args.quiet {
        eprintln!(
            "soak: {} s, seed {:#x}, segments {}.*, child logs in {}",
            sup.args.duration.as_secs_f64(),
            sup.args.seed,
            sup.names.prefix,
            sup.logdir.display()
        );
    }
    sup.run();
    let elapsed = started.elapsed();
    let t = sup.totals();
    let e = end_checks(&sup, &t);

    // Clean up: detach, unlink, gc, then count what is left of this run.
    let names = sup.names.clone();
    let pids = sup.pids.clone();
    let logdir = sup.logdir.clone();
    let procs_left = sup.procs.iter().filter(|p| p.is_some()).count();
    let samples = std::mem::take(&mut sup.samples);
    let (seed, rate) = (sup.args.seed, sup.args.rate);
    let (kills, censored, unrecovered) = (sup.kills, sup.censored, sup.unrecovered);
    let (hangs, failures, journal_errors) = (sup.hangs, sup.failures, sup.journal_errors);
    let (sup_owner_died, still_pending) = (sup.sup_owner_died, sup.pending.len());
    let longest_stall = sup.longest_stall;
    drop(sup);
    for name in names.all() {
        match segment::unlink(&SegmentOptions::new(&name)) {
            Ok(()) | Err(SegmentError::NotFound(_)) => {}
            Err(err) => eprintln!("soak: unlink {name}: {err}"),
        }
    }
    let gc = segment::gc(false);
    if let Err(err) = &gc {
        eprintln!("soak: gc: {err}");
    }
    let left = leftovers(&names.prefix, &pids);
    if failures == 0 {
        let _ = fs::remove_dir_all(&logdir);
    }

    let duplicates = t.chan_dup + t.ps_dup + e.chan_extra + e.ps_extra;
    let lost = t.chan_lost + e.chan_tail_lost + e.chan_left + t.ps_lost + e.ps_tail_lost;
    let corrupt = t.chan_corrupt + t.ps_corrupt;
    let mut lat: Vec<u64> = samples.iter().map(|s| s.1).collect();
    lat.sort_unstable();
    let kills_total: u64 = kills.iter().sum();
    let ok = duplicates == 0
        && lost == 0
        && corrupt == 0
        && hangs == 0
        && failures == 0
        && unrecovered == 0
        && journal_errors == 0
        && procs_left == 0
        && left.is_empty()
        && gc.is_ok();

    // Details (not part of the stable block).
    println!(
        "soak: details: sent channel {} (taken once {}, drained channel held {}), published lossless {} / overwrite {}; \
         subscriber end positions off by {} (lost) / {} (extra)",
        e.chan_sent, t.chan_unique, e.chan_left, e.ps_published[0], e.ps_published[1], e.ps_tail_lost, e.ps_extra
    );
    println!(
        "soak: details: overwrite ring: {} messages overwritten before read, in {} Lagged reports (expected)",
        t.ow_lagged, t.ow_lagged_events
    );
    println!(
        "soak: details: journal lock taken over from a dead holder {} times (children {}, supervisor {}); \
         restarts killed again before their first message {}; still pending at the end {}; unrecovered {}; journal errors {}",
        t.owner_died + sup_owner_died, t.owner_died, sup_owner_died, censored, still_pending, unrecovered, journal_errors
    );
    for (g, name) in GROUPS.iter().enumerate() {
        let mut v: Vec<u64> = samples.iter().filter(|s| s.0 == g).map(|s| s.1).collect();
        v.sort_unstable();
        println!(
            "soak: details: recovery after killing a {name:<16}: p50 {} ms, p99 {} ms, max {} ms ({} samples); \
             longest stall of a {name} {} ms",
            ms(percentile(&v, 50.0)),
            ms(percentile(&v, 99.0)),
            ms(v.last().copied().unwrap_or(0)),
            v.len(),
            longest_stall[g].as_millis()
        );
    }
    if !left.is_empty() {
        println!("soak: left in /dev/shm: {left:?}");
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "soak: {:.0} s, seed {:#x}, rate {}/s per producer, machine {}, {cpus} cpus",
        elapsed.as_secs_f64(),
        seed,
        rate,
        cpu_model()
    );
    println!(
        "  kills survived                  {kills_total} ({} {}, {} {}, {} {}, {} {})",
        GROUPS[0], kills[0], GROUPS[1], kills[1], GROUPS[2], kills[2], GROUPS[3], kills[3]
    );
    println!(
        "  messages delivered+checked      {} (channel {}, pubsub {})",
        t.chan_delivered + t.ps_delivered,
        t.chan_delivered,
        t.ps_delivered
    );
    println!("  duplicates                      {duplicates}");
    println!(
        "  redelivered after receiver kill {} (dropped by sequence)",
        t.chan_redelivered
    );
    println!("  lost (lossless gaps)            {lost}");
    println!("  corrupt deliveries              {corrupt}");
    println!("  hangs                           {hangs}");
    println!("  child failures                  {failures}");
    println!(
        "  recovery latency                p50 {} ms, p99 {} ms, max {} ms ({} samples)",
        ms(percentile(&lat, 50.0)),
        ms(percentile(&lat, 99.0)),
        ms(lat.last().copied().unwrap_or(0)),
        lat.len()
    );
    println!("  left in /dev/shm after gc       {}", left.len());
    println!(
        "  result                          {}",
        if ok { "PASS" } else { "FAIL" }
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A supervisor unwinding from a panic takes its children with it.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("soak: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.role.is_some() {
        run_child(&args)
    } else {
        supervise(args)
    }
}
