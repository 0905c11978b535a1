//! The blackboard's protocol: the latest value of a plain-data type, one
//! writer, any number of readers, in two seqlocked buffers. Readers never
//! block the writer, and never see a torn value. The public types
//! (`kinds::blackboard`) map it onto a segment; nothing here knows them.
//!
//! # What lives in shared memory, and who writes it
//!
//! | struct / word | writer | readers |
//! |---|---|---|
//! | [`BoardControl`] `latest` | the writer, after each complete write | readers; a new writer (to continue the versions) |
//! | [`BoardControl`] `writer` | a writer claiming (CAS) or leaving the role | readers (disconnection), would-be writers |
//! | buffers 0 and 1, `stride` words each: `seq`, then the value | the writer | readers |
//! | the doorbell | rung by the writer | slept on by readers waiting for a newer version |
//!
//! # Algorithm
//! Two seqlocked buffers, the writer alternating between them: version `v`
//! is written into buffer `v & 1`, then `latest = v` is published. A reader
//! loads `latest`, copies buffer `latest & 1` and checks its `seq` word
//! before and after the copy (as in [`crate::queue::broadcast`]; this is
//! Linux's `seqcount_latch` arrangement, with a version per buffer). The
//! writer only rewrites the buffer a reader copies after it has published
//! a newer version in the other one, so a reader retries only when the
//! writer completes two updates during one copy.
//!
//! Buffer `seq` word:
//!
//! | `seq` | meaning |
//! |---|---|
//! | `2v + 2` | holds version `v`, complete |
//! | `2v + 1` | the writer is writing version `v` |
//! | anything else | garbage: readers retry, then give up ([`Fault::Contended`]) |
//!
//! # What a crash leaves
//! A writer killed mid-write leaves the buffer it was writing marked odd,
//! and `latest` naming the other, complete one: readers keep reading the
//! last complete value, with no retry and no repair needed. The next
//! writer takes the dead token over and continues the versions.
//!
//! # What a hostile peer can do
//! Write any value, any version, or garbage sequence words that make
//! readers give up after a bounded number of attempts. It cannot make a
//! reader hang, panic, or read out of bounds: the buffer size comes from
//! the value's type `T` (checked against the creator's layout fingerprint
//! when the segment is opened), never from shared memory.

use std::time::{Duration, Instant};

use crate::error::{Fault, RecvTimeoutError};
use crate::primitive::{fence, spin_loop, AtomicU32, AtomicU64, Ordering};
use crate::queue::broadcast::{load_bytes, store_bytes};
use crate::sync::doorbell::{Doorbell, WaitStrategy};
use crate::sync::Liveness;

/// Copy attempts before a read gives up (the later ones yield the CPU, so
/// the writer can finish).
const READ_ATTEMPTS: u32 = 1000;
/// Attempts that spin before the later ones yield.
const SPIN_ATTEMPTS: u32 = 16;
/// How often a waiting reader asks the registry whether the writer lives.
const PEER_POLL: Duration = Duration::from_millis(50);

/// The blackboard's control line.
///
/// | word | writer | values |
/// |---|---|---|
/// | `latest` | the writer, after each complete write | version of the newest complete value (0: the initial zeroes) |
/// | `writer` | a writer claiming (CAS) or leaving the role | its liveness token; 0 none |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct BoardControl {
    latest: AtomicU64,
    writer: AtomicU32,
    _r: AtomicU32,
    _pad: [u64; 14],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<BoardControl>() == 128);
crate::pod::shm_state!(
    BoardControl,
    "AtomicU64, AtomicU32s and u64 padding; repr(C)"
);

impl BoardControl {
    /// The writer's liveness token word, as stored (for the registry).
    pub(crate) fn writer_token(&self) -> u32 {
        self.writer.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
impl BoardControl {
    pub(crate) fn new() -> BoardControl {
        BoardControl {
            latest: AtomicU64::new(0),
            writer: AtomicU32::new(0),
            _r: AtomicU32::new(0),
            _pad: [0; 14],
        }
    }
}

/// Words per buffer for a value of `size` bytes: `seq`, then the value,
/// rounded up to 128-byte lines so the two buffers share no line.
pub(crate) fn stride(size: usize) -> usize {
    (1 + size.div_ceil(8)).div_ceil(16) * 16
}

fn published(v: u64) -> u64 {
    v.wrapping_mul(2).wrapping_add(2)
}

fn writing(v: u64) -> u64 {
    v.wrapping_mul(2).wrapping_add(1)
}

/// Whether `v` is newer than `seen` (wrap-safe).
fn is_newer(v: u64, seen: u64) -> bool {
    let d = v.wrapping_sub(seen);
    d != 0 && d <= i64::MAX as u64
}

/// The protocol, on typed views of the shared parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Board<'a> {
    ctl: &'a BoardControl,
    bell: &'a Doorbell,
    words: &'a [AtomicU64],
    stride: usize,
}

impl<'a> Board<'a> {
    pub(crate) fn new(
        ctl: &'a BoardControl,
        bell: &'a Doorbell,
        words: &'a [AtomicU64],
        size: usize,
    ) -> Option<Board<'a>> {
        let stride = stride(size);
        (words.len() >= stride.checked_mul(2)?).then_some(Board {
            ctl,
            bell,
            words,
            stride,
        })
    }

    /// The `seq` word and the value words of the buffer of version `v`.
    fn buffer(&self, v: u64) -> Option<(&'a AtomicU64, &'a [AtomicU64])> {
        let start = (v & 1) as usize * self.stride;
        match self.words.get(start..start + self.stride)? {
            [seq, data @ ..] => Some((seq, data)),
            [] => None,
        }
    }

    /// Sets up version 0 (all zeroes); the creator only, before publishing.
    pub(crate) fn init(&self) {
        self.ctl.latest.store(0, Ordering::Relaxed);
        self.ctl.writer.store(0, Ordering::Relaxed);
        self.bell.init();
        for w in self.words {
            w.store(0, Ordering::Relaxed);
        }
        // Buffer 0 holds version 0; buffer 1 "version -1" (2 * -1 + 2 = 0).
        if let Some((seq, _)) = self.buffer(0) {
            seq.store(published(0), Ordering::Relaxed);
        }
        if let Some((seq, _)) = self.buffer(1) {
            seq.store(published(u64::MAX), Ordering::Relaxed);
        }
    }

    /// Takes the writer role if free or its holder is dead; returns the
    /// latest version. `Err(holder)` if a live writer holds it.
    pub(crate) fn claim(&self, peers: &dyn Liveness) -> Result<u64, u32> {
        let me = peers.token();
        let cur = self.ctl.writer.load(Ordering::Acquire);
        if cur != 0 && cur != me && peers.is_alive(cur) {
            return Err(cur);
        }
        // Free or dead -> ours; the CAS on the exact value lets one claimant win.
        // SYNC(writer): Acquire pairs with the previous writer's Release in
        // `release`, so its last `latest` is visible.
        self.ctl
            .writer
            .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed)?;
        // SYNC(latest): pairs with the SeqCst store in `write`.
        Ok(self.ctl.latest.load(Ordering::Acquire))
    }

    /// Gives the writer role up and wakes waiting readers.
    pub(crate) fn release(&self, token: u32) {
        // SYNC(writer): SeqCst after our last `latest` store; also ordered
        // before the doorbell's load of its word.
        let _ = self
            .ctl
            .writer
            .compare_exchange(token, 0, Ordering::SeqCst, Ordering::Relaxed);
        self.bell.ring();
    }

    /// Writes `bytes` as version `v` and publishes it.
    pub(crate) fn write(&self, v: u64, bytes: &[u8]) {
        if let Some((seq, data)) = self.buffer(v) {
            seq.store(writing(v), Ordering::Relaxed);
            // SYNC(board-fence): Release fence orders the odd marker before
            // the data stores; pairs with the reader's Acquire fence in `read`.
            fence(Ordering::Release);
            store_bytes(data, bytes);
            // SYNC(board): Release publishes the data; pairs with the
            // reader's Acquire load of `seq`.
            seq.store(published(v), Ordering::Release);
        }
        // SYNC(latest): SeqCst store: Release pairs with the readers'
        // Acquire load of `latest`; SeqCst orders it before the doorbell's
        // load of its word (Dekker with a reader going to sleep).
        self.ctl.latest.store(v, Ordering::SeqCst);
        self.bell.ring();
    }

    /// Copies the latest complete value into `out`; returns its version.
    pub(crate) fn read(&self, out: &mut [u8]) -> Result<u64, Fault> {
        for attempt in 0..READ_ATTEMPTS {
            // SYNC(latest): Acquire pairs with the SeqCst store in `write`.
            let v = self.ctl.latest.load(Ordering::Acquire);
            if let Some((seq, data)) = self.buffer(v) {
                // SYNC(board): pairs with the Release store in `write`.
                let s1 = seq.load(Ordering::Acquire);
                if s1 == published(v) {
                    load_bytes(data, out);
                    // SYNC(board-fence): pairs with the writer's Release fence.
                    fence(Ordering::Acquire);
                    if seq.load(Ordering::Relaxed) == s1 {
                        return Ok(v);
                    }
                }
            }
            // Under loom every retry must be a loom yield.
            if cfg!(mapshare_loom) || attempt < SPIN_ATTEMPTS {
                spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        Err(Fault::Contended)
    }

    /// The latest version (`SeqCst`: the wait condition's side of the Dekker pair).
    pub(crate) fn latest(&self) -> u64 {
        self.ctl.latest.load(Ordering::SeqCst)
    }

    /// Whether no live writer holds the board.
    pub(crate) fn writer_gone(&self, peers: &dyn Liveness) -> bool {
        // SYNC(writer): pairs with the store in `release`.
        let w = self.ctl.writer.load(Ordering::SeqCst);
        w == 0 || !peers.is_alive(w)
    }

    /// Waits for a version newer than `seen`, then reads it. `wait`: `None`
    /// to try once, else the strategy and deadline.
    pub(crate) fn read_newer(
        &self,
        seen: u64,
        out: &mut [u8],
        peers: &dyn Liveness,
        wait: Option<(WaitStrategy, Option<Instant>)>,
    ) -> Result<u64, RecvTimeoutError> {
        loop {
            if is_newer(self.latest(), seen) {
                return self.read(out).map_err(RecvTimeoutError::Fault);
            }
            if self.writer_gone(peers) {
                // Published just before it went?
                return if is_newer(self.latest(), seen) {
                    self.read(out).map_err(RecvTimeoutError::Fault)
                } else {
                    Err(RecvTimeoutError::Disconnected)
                };
            }
            let Some((strategy, deadline)) = wait else {
                return Err(RecvTimeoutError::Timeout);
            };
            // Sleep in slices, to notice a killed writer.
            let writer = self.ctl.writer.load(Ordering::Relaxed);
            let ready = self.bell.wait_until(
                strategy,
                deadline,
                Some(PEER_POLL),
                &|| peers.intact(),
                || {
                    is_newer(self.latest(), seen)
                        || self.ctl.writer.load(Ordering::Relaxed) != writer
                },
            );
            if !ready && !peers.intact() {
                return Err(RecvTimeoutError::Fault(Fault::Truncated));
            }
            if !ready && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
        }
    }

    /// The async form of [`read_newer`](Self::read_newer) without a
    /// deadline (feature `tokio`).
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub(crate) async fn read_newer_async(
        &self,
        seen: u64,
        out: &mut [u8],
        peers: &(dyn Liveness + Sync),
        poll: std::time::Duration,
    ) -> Result<u64, RecvTimeoutError> {
        loop {
            if is_newer(self.latest(), seen) {
                return self.read(out).map_err(RecvTimeoutError::Fault);
            }
            if self.writer_gone(peers) {
                return if is_newer(self.latest(), seen) {
                    self.read(out).map_err(RecvTimeoutError::Fault)
                } else {
                    Err(RecvTimeoutError::Disconnected)
                };
            }
            let writer = self.ctl.writer.load(Ordering::Relaxed);
            let slice = Instant::now().checked_add(poll);
            crate::asyncio::bell_wait(self.bell, slice, &|| peers.intact(), || {
                is_newer(self.latest(), seen) || self.ctl.writer.load(Ordering::Relaxed) != writer
            })
            .await;
            if !peers.intact() {
                return Err(RecvTimeoutError::Fault(Fault::Truncated));
            }
        }
    }
}

#[cfg(all(test, not(mapshare_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    struct Peer {
        me: u32,
        dead: &'static Mutex<Vec<u32>>,
    }

    impl Liveness for Peer {
        fn token(&self) -> u32 {
            self.me
        }
        fn is_alive(&self, token: u32) -> bool {
            !self.dead.lock().unwrap().contains(&token)
        }
    }

    const K: u64 = 0x5a5a_1234_dead_beef;

    /// A value that is consistent only when written whole.
    fn value(a: u64) -> [u64; 3] {
        [a, a.wrapping_mul(2), a ^ K]
    }

    fn consistent(v: &[u64; 3]) -> bool {
        *v == value(v[0])
    }

    struct HeapBoard {
        ctl: BoardControl,
        bell: Doorbell,
        words: Vec<AtomicU64>,
    }

    impl HeapBoard {
        fn new(size: usize) -> HeapBoard {
            let h = HeapBoard {
                ctl: BoardControl::new(),
                bell: Doorbell::new(),
                words: (0..2 * stride(size)).map(|_| AtomicU64::new(0)).collect(),
            };
            h.board(size).init();
            h
        }

        fn board(&self, size: usize) -> Board<'_> {
            Board::new(&self.ctl, &self.bell, &self.words, size).unwrap()
        }
    }

    fn read3(b: &Board<'_>) -> Result<([u64; 3], u64), Fault> {
        let mut v = [0u64; 3];
        let version = b.read(bytemuck::bytes_of_mut(&mut v))?;
        Ok((v, version))
    }

    #[test]
    fn starts_at_version_zero_with_zeroes() {
        let h = HeapBoard::new(24);
        assert_eq!(read3(&h.board(24)), Ok(([0; 3], 0)));
    }

    #[test]
    fn readers_never_see_a_torn_value_or_an_older_version() {
        static NOBODY: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        let h = HeapBoard::new(24);
        let b = h.board(24);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut last = 0;
                    let mut reads = 0u64;
                    while !done.load(Ordering::Relaxed) || reads == 0 {
                        if let Ok((v, version)) = read3(&b) {
                            assert!(version >= last, "version went back");
                            // Version 0 is the initial zeroes.
                            assert!(version == 0 || consistent(&v), "torn value {v:?}");
                            assert_eq!(v[0], version);
                            last = version;
                            reads += 1;
                        }
                    }
                });
            }
            let p = Peer {
                me: 1,
                dead: &NOBODY,
            };
            let mut version = b.claim(&p).unwrap();
            for _ in 0..200_000 {
                version += 1;
                b.write(version, bytemuck::bytes_of(&value(version)));
            }
            done.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn writer_killed_mid_write_leaves_the_last_value_readable() {
        static DEAD: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        let h = HeapBoard::new(24);
        let b = h.board(24);
        let p = Peer { me: 1, dead: &DEAD };
        let r = Peer { me: 2, dead: &DEAD };
        assert_eq!(b.claim(&p), Ok(0));
        b.write(1, bytemuck::bytes_of(&value(1)));
        // Killed half-way through version 2: odd marker, half the words.
        let (seq, data) = b.buffer(2).unwrap();
        seq.store(writing(2), Ordering::Relaxed);
        data[0].store(2, Ordering::Relaxed);
        DEAD.lock().unwrap().push(1);
        assert_eq!(read3(&b), Ok((value(1), 1)));
        let mut out = [0u64; 3];
        let quick = Some((WaitStrategy::Spin, Some(Instant::now())));
        assert_eq!(
            b.read_newer(1, bytemuck::bytes_of_mut(&mut out), &r, quick),
            Err(RecvTimeoutError::Disconnected)
        );
        // The next writer takes over and continues the versions.
        let p2 = Peer { me: 3, dead: &DEAD };
        assert_eq!(b.claim(&p2), Ok(1));
        b.write(2, bytemuck::bytes_of(&value(2)));
        assert_eq!(
            b.read_newer(1, bytemuck::bytes_of_mut(&mut out), &r, quick),
            Ok(2)
        );
        assert_eq!(out, value(2));
    }

    #[test]
    fn garbage_sequence_words_give_an_error_not_a_hang() {
        let h = HeapBoard::new(24);
        let b = h.board(24);
        for w in &h.words {
            w.store(0xdead_beef, Ordering::Relaxed);
        }
        h.ctl.latest.store(u64::MAX / 2, Ordering::Relaxed);
        assert_eq!(read3(&b), Err(Fault::Contended));
    }

    #[test]
    fn versions_run_across_the_u64_wrap() {
        static NOBODY: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        let h = HeapBoard::new(24);
        let b = h.board(24);
        h.ctl.latest.store(u64::MAX - 2, Ordering::Relaxed);
        let p = Peer {
            me: 1,
            dead: &NOBODY,
        };
        let mut v = b.claim(&p).unwrap();
        for _ in 0..6 {
            let seen = v;
            v = v.wrapping_add(1);
            b.write(v, bytemuck::bytes_of(&value(v)));
            let mut out = [0u64; 3];
            assert_eq!(
                b.read_newer(seen, bytemuck::bytes_of_mut(&mut out), &p, None),
                Ok(v)
            );
            assert_eq!(out, value(v));
        }
        assert!(v < 10, "wrapped");
    }

    #[test]
    fn waiting_reader_wakes_on_write() {
        static NOBODY: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        let h = HeapBoard::new(24);
        let b = h.board(24);
        let p = Peer {
            me: 1,
            dead: &NOBODY,
        };
        b.claim(&p).unwrap();
        std::thread::scope(|s| {
            let t = s.spawn(|| {
                let mut out = [0u64; 3];
                let wait = Some((WaitStrategy::Block, None));
                let v = b.read_newer(0, bytemuck::bytes_of_mut(&mut out), &p, wait);
                (v, out)
            });
            std::thread::sleep(Duration::from_millis(10));
            b.write(1, bytemuck::bytes_of(&value(1)));
            assert_eq!(t.join().unwrap(), (Ok(1), value(1)));
        });
    }
}
