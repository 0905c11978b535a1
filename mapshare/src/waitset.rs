//! [`WaitSet`]: one thread waiting on many sources at once (channel
//! receivers, subscribers, events, mailboxes, request servers and
//! clients), learning which are ready. crossbeam's `Select` is the model.
//!
//! ```
//! use mapshare::{Event, Receiver, Sender, WaitSet, Waitable};
//! use std::time::Duration;
//! # let (a, b) = (format!("doc-ws-a-{}", std::process::id()), format!("doc-ws-b-{}", std::process::id()));
//! let mut rx = Receiver::create(&a)?;
//! let stop = Event::create(&b)?;
//! let mut tx = Sender::open(&a)?;
//! tx.send(b"work")?;
//!
//! let mut set = WaitSet::new();
//! let ready = set.wait_timeout(&[&rx as &dyn Waitable, &stop], Duration::from_secs(1)).unwrap();
//! assert_eq!(ready.first(), Some(0)); // the receiver has a message; the event is not set
//! assert_eq!(rx.try_recv()?, b"work");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it waits
//! Every source has a 32-bit futex word its producers wake (a doorbell, or
//! an event's count). A wait registers as a sleeper on every source's word
//! (the sleepers bit each producer checks before it rings, so a producer
//! with nobody asleep still makes no system call), looks once more at each
//! source, then sleeps in one `futex_waitv` (Linux 5.16+) on all the words:
//! the kernel wakes it when any one of them is woken. Nothing is polled;
//! no wake-up is lost (a source that became ready between the look and the
//! sleep has changed its word, and `futex_waitv` returns at once).
//!
//! `futex_waitv` was chosen over a doorbell per waiting thread because it
//! needs nothing from the producers: the shared-memory protocol of every
//! kind is unchanged, a producer still rings only its own doorbell, and a
//! source can be in any number of wait sets (in any processes) at once.
//! Its limit is 128 words per call: a set of more sources sleeps on the
//! first 128 and looks at the others every millisecond. On kernels without
//! `futex_waitv` (before 5.16) the set looks every millisecond.
//!
//! A source whose segment another process shrank while the set slept
//! (what its own wait reports as `Fault::Truncated`) is listed apart, in
//! [`Ready::truncated`], before anything touches it: a wait woken on one
//! source's word checks that source (one `fstat`) and looks at it alone;
//! any other end of a sleep checks every source before looking at any.
//! (So a wake-up costs one `fstat`, not one per source; a wake-up reports
//! the source that woke it, and the next wait's first look finds any other
//! that became ready meanwhile.)
//!
//! Killed peers are noticed as the sources' own waits notice them: the set
//! sleeps in slices of 50 ms and asks the registry about the sources'
//! peers between slices, so a receiver whose sender was killed becomes
//! ready (its `recv` returns `Disconnected`).
//!
//! # Ready means "would not wait"
//! A source is ready when its next `try_` call would return at once with
//! something to report: a message, a request, a response, a set event, or
//! a state (`Disconnected`, a fault). A source that is disconnected stays
//! ready, as in crossbeam; the one exception is a [`Client`](crate::Client)
//! with no request in flight, which nothing can make ready (its
//! `recv_response` says `Disconnected` at once), so that a set of idle
//! clients sleeps. The set only looks; it takes nothing, so the caller
//! takes what is there with the source's own `try_` call. That call may
//! still say `Empty`: another thread took it first, what was there was
//! stale (a request for an earlier server, a response for an earlier
//! client), or the set saw a killed peer a moment before the source's own
//! cached verdict does (within 50 ms).
//!
//! # Fairness
//! [`Ready`] lists every ready source, starting after the one listed
//! first last time: a caller that serves `ready.first()` (or serves them
//! all, in order) never starves a source behind a busy one.

use std::time::{Duration, Instant};

use crate::primitive::{fence, AtomicU32, Ordering};
use crate::sys::{self, WaitWord, Waitv};

/// Most sources one `futex_waitv` sleeps on.
pub const WAITV_MAX: usize = 128;

/// Set once `futex_waitv` was refused (a kernel before 5.16): every wait
/// of this process then looks every millisecond instead.
static WAITV_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How long a wait sleeps before it asks about killed peers.
const PEER_SLICE: Duration = Duration::from_millis(50);
/// How long a wait sleeps when it cannot sleep on every source at once.
const POLL_SLICE: Duration = Duration::from_millis(1);

pub(crate) mod private {
    use crate::primitive::AtomicU32;

    /// What a [`WaitSet`](super::WaitSet) needs of a source (sealed).
    pub trait Source {
        /// Whether the source's next `try_` call would return at once
        /// with something to report. `peers`: also ask the registry
        /// whether the peers it waits on live (system calls).
        fn ready(&self, peers: bool) -> bool;

        /// Registers as a sleeper on the source's futex word: the word and
        /// the value to sleep on while it holds it, or `None` if the word
        /// changed meanwhile (look again).
        fn arm(&self) -> Option<(&AtomicU32, u32)>;

        /// Whether the source's segment still backs every mapped page (one
        /// `fstat`): asked after every sleep, before the source is looked at
        /// again.
        fn intact(&self) -> bool;
    }
}

/// A source a [`WaitSet`] can wait on: [`Receiver`](crate::Receiver),
/// [`PodReceiver`](crate::PodReceiver), [`Subscriber`](crate::Subscriber),
/// [`Event`](crate::Event), [`Mailbox`](crate::Mailbox) (a message to
/// receive), [`Server`](crate::Server) (a request) and
/// [`Client`](crate::Client) (a response). Sealed.
pub trait Waitable: private::Source {}

/// Which sources were ready, in fair order (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ready {
    indices: Vec<usize>,
    truncated: Vec<usize>,
}

impl Ready {
    /// The first ready source's index in the slice passed to the wait.
    pub fn first(&self) -> Option<usize> {
        self.indices.first().copied()
    }

    /// Every ready source's index, in fair order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.indices.iter().copied()
    }

    /// Whether source `i` was ready.
    pub fn contains(&self, i: usize) -> bool {
        self.indices.contains(&i)
    }

    /// How many sources were ready.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether none was ready and none was truncated (only
    /// [`WaitSet::try_wait`] returns an empty set).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty() && self.truncated.is_empty()
    }

    /// The sources whose segment another process shrank while the set
    /// slept (`Fault::Truncated` for their own waits). They are not in
    /// [`iter`](Self::iter): any call on them may touch pages that are gone
    /// (`SIGBUS`), so drop them, and leave them out of later waits.
    pub fn truncated(&self) -> &[usize] {
        &self.truncated
    }
}

impl IntoIterator for Ready {
    type Item = usize;
    type IntoIter = std::vec::IntoIter<usize>;
    fn into_iter(self) -> Self::IntoIter {
        self.indices.into_iter()
    }
}

/// Waits on many sources from one thread. It holds no source: each wait
/// borrows the sources for its duration only, so the caller can take
/// from them between waits (`recv` takes `&mut self`). It keeps the
/// fairness cursor and a buffer between waits.
#[derive(Debug, Default)]
pub struct WaitSet {
    next: usize,
    words: Vec<WaitWord>,
}

impl WaitSet {
    /// A wait set.
    pub fn new() -> WaitSet {
        WaitSet::default()
    }

    /// The ready sources, in fair order, without waiting (asks about
    /// killed peers: a system call per source that has peers).
    pub fn try_wait(&mut self, sources: &[&dyn Waitable]) -> Ready {
        self.collect(sources, true)
    }

    /// Waits until at least one source is ready, as long as it takes.
    /// An empty `sources` waits forever (only a signal handler's exit ends it).
    pub fn wait(&mut self, sources: &[&dyn Waitable]) -> Ready {
        loop {
            if let Some(r) = self.wait_inner(sources, None) {
                return r;
            }
        }
    }

    /// Waits at most `timeout` (any `Duration`) for a source to be ready;
    /// `None` when the time ran out.
    pub fn wait_timeout(&mut self, sources: &[&dyn Waitable], timeout: Duration) -> Option<Ready> {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.wait_inner(sources, Some(d)),
            None => Some(self.wait(sources)),
        }
    }

    /// Waits until `deadline` at most; `None` when it passed.
    pub fn wait_deadline(&mut self, sources: &[&dyn Waitable], deadline: Instant) -> Option<Ready> {
        self.wait_inner(sources, Some(deadline))
    }

    /// Ready sources in fair order; advances the cursor past the first.
    fn collect(&mut self, sources: &[&dyn Waitable], peers: bool) -> Ready {
        let n = sources.len();
        if n == 0 {
            return Ready::default();
        }
        let start = self.next % n;
        let indices: Vec<usize> = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| sources[i].ready(peers))
            .collect();
        if let Some(&f) = indices.first() {
            self.next = f + 1;
        }
        Ready {
            indices,
            truncated: Vec::new(),
        }
    }

    /// After a sleep: the sources whose segment was shrunk meanwhile, as a
    /// result, before anything touches them.
    fn truncated(sources: &[&dyn Waitable]) -> Option<Ready> {
        let truncated: Vec<usize> = (0..sources.len())
            .filter(|&i| !sources[i].intact())
            .collect();
        (!truncated.is_empty()).then(|| Ready {
            indices: Vec::new(),
            truncated,
        })
    }

    fn wait_inner(
        &mut self,
        sources: &[&dyn Waitable],
        deadline: Option<Instant>,
    ) -> Option<Ready> {
        let r = self.collect(sources, false);
        if !r.is_empty() {
            return Some(r);
        }
        let mut peers_at = Instant::now();
        loop {
            let now = Instant::now();
            if now.duration_since(peers_at) >= PEER_SLICE {
                peers_at = now;
                let r = self.collect(sources, true);
                if !r.is_empty() {
                    return Some(r);
                }
            }
            if deadline.is_some_and(|d| now >= d) {
                let r = self.collect(sources, true);
                return (!r.is_empty()).then_some(r);
            }
            // Register on every word, then look once more: a source made
            // ready after this look changed its word, so the sleep below
            // returns at once. Without futex_waitv, register on nothing (a
            // set bit would cost every ring a wake system call) and look
            // every millisecond.
            self.words.clear();
            let mut changed = false;
            let armed = if WAITV_REFUSED.load(std::sync::atomic::Ordering::Relaxed) {
                0
            } else {
                WAITV_MAX
            };
            for s in sources.iter().take(armed) {
                match s.arm() {
                    Some((word, expected)) => self.words.push(WaitWord {
                        addr: word as *const AtomicU32 as usize,
                        expected,
                        private: false,
                    }),
                    None => {
                        changed = true;
                        break;
                    }
                }
            }
            if !changed {
                // Our registrations (SeqCst CASes) before the looks, as
                // each kind's own sleep orders them.
                fence(Ordering::SeqCst);
                let r = self.collect(sources, false);
                if !r.is_empty() {
                    return Some(r);
                }
                let mut slice = PEER_SLICE.saturating_sub(now.duration_since(peers_at));
                if sources.len() > self.words.len() {
                    slice = slice.min(POLL_SLICE);
                }
                if let Some(d) = deadline {
                    slice = slice.min(d.saturating_duration_since(now));
                }
                let woken = if self.words.is_empty() {
                    std::thread::sleep(slice);
                    None
                } else {
                    self.sleep(slice)
                };
                // Woken on one word: look at that source alone (one fstat,
                // then its words), touching no other after the sleep.
                if let Some(i) = woken.filter(|&i| i < sources.len()) {
                    if !sources[i].intact() {
                        return Some(Ready {
                            indices: Vec::new(),
                            truncated: vec![i],
                        });
                    }
                    if sources[i].ready(false) {
                        self.next = i + 1;
                        return Some(Ready {
                            indices: vec![i],
                            truncated: Vec::new(),
                        });
                    }
                }
                // Otherwise (a slice's end, a word that changed, a wake
                // for another sleeper of the same bell) every source is
                // checked before any is looked at again.
                if let Some(t) = Self::truncated(sources) {
                    return Some(t);
                }
            }
            let r = self.collect(sources, false);
            if !r.is_empty() {
                return Some(r);
            }
        }
    }

    /// One `futex_waitv` on the armed words; the index of the word it was
    /// woken on, if one.
    fn sleep(&self, slice: Duration) -> Option<usize> {
        match sys::futex_waitv(&self.words, Some(slice)) {
            Waitv::Woken(i) => Some(i),
            Waitv::Changed | Waitv::TimedOut => None,
            // No futex_waitv (before Linux 5.16): look every millisecond
            // from now on.
            Waitv::Unsupported => {
                WAITV_REFUSED.store(true, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(slice.min(POLL_SLICE));
                None
            }
        }
    }
}
