//! The journals children report through, in shared memory, and the
//! records in them (module docs of `main`, "Journals").

use std::marker::PhantomData;
use std::time::Duration;

use mapshare::{LockError, LockTimeoutError, Pod, SegmentError, Shared, Zeroable};

use crate::message::Msg;
use crate::setup::{hash_words, LANES, NONE};

/// A journal: two copies of `generation | checksum | record` (module doc).
pub(crate) struct Journal<P: Pod, const W: usize> {
    shared: Shared<[[u64; W]; 2]>,
    name: String,
    _p: PhantomData<fn() -> P>,
}

/// What a journal read found.
pub(crate) enum ReadError {
    /// The lock stayed held (by a live process) past the timeout.
    Busy,
    /// Neither copy is valid, and the journal is not blank.
    Unreadable,
}

impl<P: Pod, const W: usize> Journal<P, W> {
    pub(crate) const WORDS: usize = {
        assert!(std::mem::size_of::<P>() % 8 == 0);
        assert!(std::mem::size_of::<P>() / 8 + 2 <= W);
        std::mem::size_of::<P>() / 8
    };

    pub(crate) fn create(name: &str) -> Result<Self, SegmentError> {
        Ok(Journal {
            shared: Shared::options(name).persistent(true).create()?,
            name: name.to_owned(),
            _p: PhantomData,
        })
    }

    pub(crate) fn open(name: &str) -> Result<Self, SegmentError> {
        Ok(Journal {
            shared: Shared::open(name)?,
            name: name.to_owned(),
            _p: PhantomData,
        })
    }

    /// The record of the newest valid copy: (record, generation, copy index).
    /// `Err` if no copy is valid and the journal is not blank.
    pub(crate) fn decode(c: &[[u64; W]; 2]) -> Result<(P, u64, Option<usize>), ()> {
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
    pub(crate) fn encode(c: &mut [[u64; W]; 2], gen: u64, valid: Option<usize>, v: &P) {
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
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut P, bool) -> R) -> R {
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
    pub(crate) fn read(&self) -> Result<(P, bool), ReadError> {
        let (c, died) = match self.shared.lock_timeout(Duration::from_millis(200)) {
            Ok(g) => (g.get(), false),
            Err(LockTimeoutError::OwnerDied(g)) => (g.get(), true),
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
pub(crate) struct Head {
    pub(crate) incarnation: u64,
    pub(crate) pid: u64,
    /// One of the `ST_*` codes.
    pub(crate) state: u64,
    /// When `state` last changed (ns).
    pub(crate) state_ns: u64,
    /// Messages sent or taken by this incarnation.
    pub(crate) progress: u64,
    /// Its first one (ns; 0 none yet).
    pub(crate) first_ns: u64,
    pub(crate) last_ns: u64,
    /// Journal lock takeovers from a dead holder (cumulative).
    pub(crate) owner_died: u64,
    /// 1 once this incarnation stopped cleanly.
    pub(crate) finished: u64,
}

pub(crate) const ST_OPENING: u64 = 1;
pub(crate) const ST_RUNNING: u64 = 2;
pub(crate) const ST_WAIT_ROOM: u64 = 3;
pub(crate) const ST_WAIT_MSG: u64 = 4;
pub(crate) const ST_DISCONNECTED: u64 = 5;
pub(crate) const ST_PAUSED: u64 = 6;
pub(crate) const ST_DONE: u64 = 7;

pub(crate) fn state_name(st: u64) -> &'static str {
    match st {
        0 => "not started (journal untouched)",
        ST_OPENING => "opening its segments / claiming its role",
        ST_RUNNING => "running (last operation succeeded)",
        ST_WAIT_ROOM => "waiting for room (send/publish timed out)",
        ST_WAIT_MSG => "waiting for a message (receive timed out)",
        ST_DISCONNECTED => "disconnected: no live peer (being restarted), retrying",
        ST_PAUSED => "pausing on purpose",
        ST_DONE => "done",
        _ => "unknown state",
    }
}

impl Head {
    /// Starts incarnation `inc` (idempotent); `true` if it is new.
    pub(crate) fn start(&mut self, inc: u64, now: u64) -> bool {
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

    pub(crate) fn set_state(&mut self, st: u64, now: u64) {
        if self.state != st {
            self.state = st;
            self.state_ns = now;
        }
    }

    pub(crate) fn tick(&mut self, now: u64) {
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
pub(crate) fn note_seen(ring: &mut [u64], next: &mut u64, inc: u64, now: u64) {
    if ring.chunks_exact(2).any(|e| e[0] == inc) {
        return;
    }
    let i = (*next as usize % (ring.len() / 2)) * 2;
    ring[i] = inc;
    ring[i + 1] = now;
    *next = next.wrapping_add(1);
}

pub(crate) fn seen_at(ring: &[u64], inc: u64) -> Option<u64> {
    ring.chunks_exact(2)
        .find(|e| e[0] == inc && e[1] != 0)
        .map(|e| e[1])
}

/// The journal of a producer or a subscriber.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct RoleRec {
    pub(crate) head: Head,
    /// Producers: messages sent by this incarnation, and by all.
    pub(crate) sent_inc: u64,
    pub(crate) sent_total: u64,
    /// Subscribers (all incarnations).
    pub(crate) delivered_total: u64,
    pub(crate) dup_total: u64,
    pub(crate) lost_total: u64,
    pub(crate) corrupt_total: u64,
    /// Overwrite ring: messages reported missed through `Lagged`, and reports.
    pub(crate) lagged_total: u64,
    pub(crate) lagged_events: u64,
    /// Subscribers: when each publisher incarnation was first seen.
    pub(crate) seen: [u64; 8],
    pub(crate) seen_next: u64,
    /// Subscribers: the next position expected when the stream ended.
    pub(crate) final_pos: u64,
}

pub(crate) type RoleJournal = Journal<RoleRec, 32>;

/// Table sizes of the channel progress.
pub(crate) const PENDING: usize = 8;
pub(crate) const TABLE: usize = 16;

/// The channel receiver's journal: its progress (module doc).
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct ChanRec {
    pub(crate) head: Head,
    /// Every delivery, checked (redelivered and duplicates included).
    pub(crate) delivered_total: u64,
    /// Messages taken once.
    pub(crate) unique_total: u64,
    pub(crate) dup_total: u64,
    pub(crate) redelivered_total: u64,
    pub(crate) lost_total: u64,
    pub(crate) corrupt_total: u64,
    /// The message in hand: producer, incarnation, seq, valid.
    pub(crate) last_taken: [u64; 4],
    /// Messages a dead receiver may have held: PENDING x (producer, incarnation, seq, valid).
    pub(crate) pending: [u64; 4 * PENDING],
    /// TABLE x (producer, incarnation, last seq, last touch); incarnation 0 = empty.
    pub(crate) table: [u64; 4 * TABLE],
    pub(crate) touch: u64,
    /// Per lane producer: 4 x (incarnation, first seen ns).
    pub(crate) seen: [u64; 8 * LANES],
    pub(crate) seen_next: [u64; LANES],
}

pub(crate) type ChanJournal = Journal<ChanRec, 136>;

impl ChanRec {
    pub(crate) fn add_pending(&mut self, m: [u64; 3]) {
        let entries = self.pending.chunks_exact(4);
        if entries.clone().any(|e| e[3] == 1 && e[..3] == m) {
            return;
        }
        let free = entries.clone().position(|e| e[3] == 0).unwrap_or(0);
        self.pending[free * 4..free * 4 + 4].copy_from_slice(&[m[0], m[1], m[2], 1]);
    }

    pub(crate) fn take_pending(&mut self, m: [u64; 3]) -> bool {
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
    pub(crate) fn find(&self, p: u64, inc: u64) -> Option<usize> {
        self.table
            .chunks_exact(4)
            .position(|e| e[1] != 0 && e[0] == p && e[1] == inc)
    }

    /// A new entry (a free one, else the least recently touched).
    pub(crate) fn insert(&mut self, p: u64, inc: u64) -> usize {
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
    pub(crate) fn start(&mut self, inc: u64, now: u64) {
        if self.head.start(inc, now) && self.last_taken[3] == 1 {
            let lt = self.last_taken;
            self.add_pending([lt[0], lt[1], lt[2]]);
        }
    }

    /// Accounts for one delivery (while the message's `Sample` still holds
    /// its slot, before the release).
    pub(crate) fn apply(&mut self, m: Option<Msg>, now: u64) {
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
