//! Async waits on shared futex words (feature `tokio`), without a thread
//! per waiter.
//!
//! The shared-memory protocol is unchanged: notifiers still make a plain
//! `futex_wake`. What changes is how a waiting task sleeps on the word,
//! chosen once per process ([`async_backend`]):
//!
//! 1. **io_uring** (Linux 6.7+, when the kernel and any seccomp profile
//!    allow it): each thread that polls a wait gets a ring with
//!    `IORING_OP_FUTEX_WAIT`, registered with tokio as an `AsyncFd`, and
//!    one driver *task* (not a thread) that hands completions to the
//!    waiting tasks. Dropping a pending wait submits
//!    `IORING_OP_ASYNC_CANCEL`; its completion frees the slot.
//! 2. **futex_waitv** (Linux 5.16+): helper threads, each sleeping in
//!    `futex_waitv` on up to 127 registered words plus a private control
//!    word (one thread per 127 concurrent waiters).
//! 3. **blocking**: each wait on a blocking-pool thread
//!    (`spawn_blocking`), the last resort.
//!
//! `MAPSHARE_ASYNC_BACKEND=io_uring|futex_waitv|blocking` forces a choice
//! (tests exercise each).
//!
//! Waits name their word by address (see `sys::async_linux`): the kernel
//! reads it when the wait is armed, which happens while the future borrows
//! the word, and never afterwards, so a cancelled wait outliving the
//! segment's mapping is harmless.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering as StdOrdering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::primitive::AtomicU32 as ShmWord;
use crate::sys::async_linux::{self as os, Uring, WaitWord, Waitv};

/// How this process's async waits sleep (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AsyncBackend {
    /// `IORING_OP_FUTEX_WAIT` on a ring per polling thread, driven by a
    /// tokio task: no extra thread.
    IoUring,
    /// Helper threads in `futex_waitv`, each serving up to 127 waits.
    FutexWaitv,
    /// One blocking-pool thread per pending wait.
    Blocking,
}

impl std::fmt::Display for AsyncBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AsyncBackend::IoUring => "io_uring",
            AsyncBackend::FutexWaitv => "futex_waitv",
            AsyncBackend::Blocking => "blocking",
        })
    }
}

/// The backend this process uses for async waits, chosen at the first
/// call (or at the first async wait): io_uring if the kernel allows it,
/// else `futex_waitv`, else blocking threads; or what
/// `MAPSHARE_ASYNC_BACKEND` says.
pub fn async_backend() -> AsyncBackend {
    static CHOSEN: OnceLock<AsyncBackend> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let forced = std::env::var("MAPSHARE_ASYNC_BACKEND").ok();
        match forced.as_deref() {
            Some("io_uring") => return AsyncBackend::IoUring,
            Some("futex_waitv") => return AsyncBackend::FutexWaitv,
            Some("blocking") => return AsyncBackend::Blocking,
            _ => {}
        }
        if Uring::new(8).is_ok() {
            AsyncBackend::IoUring
        } else if waitv_supported() {
            AsyncBackend::FutexWaitv
        } else {
            AsyncBackend::Blocking
        }
    })
}

/// Whether `futex_waitv` exists: a call on a private word that does not
/// hold the expected value fails with EAGAIN, not ENOSYS.
fn waitv_supported() -> bool {
    let w = AtomicU32::new(1);
    let word = WaitWord {
        addr: w.as_ptr() as usize,
        expected: 0,
        private: true,
    };
    !matches!(
        os::futex_waitv(&[word], Some(Duration::ZERO)),
        Waitv::Unsupported
    )
}

/// Sleeps until the shared `word` is woken (or no longer holds
/// `expected`), `timeout` passes, or spuriously: callers re-check their
/// condition, as after a futex wait.
pub(crate) async fn wait(word: &ShmWord, expected: u32, timeout: Duration) {
    let addr = word.as_ptr() as usize;
    let sleep = async {
        match async_backend() {
            AsyncBackend::IoUring => {
                if UringWait::new(addr, expected).await.is_err() {
                    WaitvWait::new(addr, expected).await;
                }
            }
            AsyncBackend::FutexWaitv => WaitvWait::new(addr, expected).await,
            AsyncBackend::Blocking => {
                // A wait dropped before its job started skips the sleep.
                struct Flag(Arc<AtomicBool>);
                impl Drop for Flag {
                    fn drop(&mut self) {
                        self.0.store(true, StdOrdering::Release);
                    }
                }
                let cancelled = Arc::new(AtomicBool::new(false));
                let _flag = Flag(cancelled.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    if !cancelled.load(StdOrdering::Acquire) {
                        os::futex_wait_addr(addr, expected, timeout)
                    }
                })
                .await;
            }
        }
    };
    // The borrow of `word` lasts until this returns (or is dropped): every
    // wait is armed, and every helper-thread read done, within it.
    let _ = tokio::time::timeout(timeout, sleep).await;
    let _ = word;
}

// ------------------------------------------------------------- io_uring

/// One operation slot of a ring.
#[derive(Debug)]
enum Op {
    Free,
    /// Submitted; the task to wake on completion.
    Pending(Option<Waker>),
    /// Completed with this result (`-errno` on error); its future has not
    /// looked yet.
    Done(i32),
    /// Its future was dropped: free the slot when the completion arrives.
    Cancelled,
}

#[derive(Debug)]
struct RingState {
    uring: Uring,
    /// Slot `i`: its generation (in the tag's high half) and state.
    ops: Vec<(u32, Op)>,
    free: Vec<usize>,
    scratch: Vec<os::Completion>,
}

/// A ring and its driver, per polling thread.
#[derive(Debug)]
struct Ring {
    state: Mutex<RingState>,
    /// Set when the driver task ends (its runtime shut down): the ring is
    /// replaced on next use.
    dead: AtomicBool,
    /// The ring's descriptor (owned by `state`'s `Uring`).
    fd: std::os::fd::RawFd,
}

thread_local! {
    static RING: std::cell::RefCell<Option<Arc<Ring>>> = const { std::cell::RefCell::new(None) };
}

fn tag(slot: usize, gen: u32) -> u64 {
    (u64::from(gen) << 32) | slot as u64
}

impl Ring {
    /// This thread's ring, created (with its driver task, in the current
    /// runtime) on first use.
    fn current() -> std::io::Result<Arc<Ring>> {
        RING.with(|r| {
            let mut r = r.borrow_mut();
            if let Some(ring) = r.as_ref().filter(|g| !g.dead.load(StdOrdering::Acquire)) {
                return Ok(ring.clone());
            }
            let uring = Uring::new(4096)?;
            let fd = uring.fd();
            let ring = Arc::new(Ring {
                state: Mutex::new(RingState {
                    uring,
                    ops: Vec::new(),
                    free: Vec::new(),
                    scratch: Vec::new(),
                }),
                dead: AtomicBool::new(false),
                fd,
            });
            // SAFETY: the descriptor is the ring's, owned by the `Uring` in
            // `Ring`, which `RingFd` keeps alive (an `Arc`) for as long as
            // the `AsyncFd` exists; it is never closed or replaced before.
            let afd = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    RingFd(ring.clone()),
                    tokio::io::Interest::READABLE,
                )
            }
            .map_err(std::io::Error::from)?;
            tokio::spawn(drive(KillOnDrop(ring.clone()), afd));
            *r = Some(ring.clone());
            Ok(ring)
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands every completion to its task.
    fn dispatch(&self) {
        let mut st = self.lock();
        let mut done = std::mem::take(&mut st.scratch);
        done.clear();
        st.uring.completions(&mut done);
        for &(t, res) in &done {
            if t == u64::MAX {
                continue; // a cancel's own completion
            }
            let (slot, gen) = ((t & 0xffff_ffff) as usize, (t >> 32) as u32);
            let Some((g, op)) = st.ops.get_mut(slot) else {
                continue;
            };
            if *g != gen {
                continue;
            }
            match std::mem::replace(op, Op::Done(res)) {
                Op::Pending(w) => {
                    if let Some(w) = w {
                        w.wake();
                    }
                }
                Op::Cancelled => {
                    *op = Op::Free;
                    *g = g.wrapping_add(1);
                    st.free.push(slot);
                }
                other => *op = other,
            }
        }
        st.scratch = done;
    }

    /// Marks the ring dead and wakes every pending task (they move on).
    fn kill(&self) {
        self.dead.store(true, StdOrdering::Release);
        let mut st = self.lock();
        for (_, op) in st.ops.iter_mut() {
            if let Op::Pending(w) = op {
                if let Some(w) = w.take() {
                    w.wake();
                }
                *op = Op::Done(0);
            }
        }
    }
}

/// The ring's descriptor, for `AsyncFd`: it holds the ring, so the
/// descriptor stays open for as long as the `AsyncFd` is registered.
struct RingFd(Arc<Ring>);

impl std::os::fd::AsRawFd for RingFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.fd
    }
}

/// Marks its ring dead when dropped: the driver holds it as an
/// argument, so even a driver dropped before its first poll (its runtime
/// shut down at once) marks the ring for replacement.
struct KillOnDrop(Arc<Ring>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// The driver task: waits for the ring to become readable, then hands
/// the completions out.
async fn drive(kill: KillOnDrop, afd: tokio::io::unix::AsyncFd<RingFd>) {
    let ring = kill.0.clone();
    loop {
        let Ok(mut guard) = afd.readable().await else {
            return;
        };
        // Clear first, then drain: a completion after the drain raises
        // readiness again.
        guard.clear_ready();
        ring.dispatch();
    }
}

/// A futex wait on this thread's ring.
struct UringWait {
    addr: usize,
    expected: u32,
    sub: Option<(Arc<Ring>, usize, u32)>,
}

impl UringWait {
    fn new(addr: usize, expected: u32) -> UringWait {
        UringWait {
            addr,
            expected,
            sub: None,
        }
    }
}

impl Future for UringWait {
    type Output = std::io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some((ring, slot, gen)) = &self.sub {
            let mut st = ring.lock();
            let Some((g, op)) = st.ops.get_mut(*slot) else {
                return Poll::Ready(Ok(()));
            };
            if *g != *gen {
                return Poll::Ready(Ok(()));
            }
            return match op {
                Op::Pending(w) => {
                    if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *w = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
                _ => {
                    let res = match op {
                        Op::Done(r) => *r,
                        _ => 0,
                    };
                    *op = Op::Free;
                    *g = g.wrapping_add(1);
                    let s = *slot;
                    st.free.push(s);
                    drop(st);
                    self.sub = None;
                    // Woken, the word changed (EAGAIN), interrupted or
                    // cancelled: look again. Any other error means the ring
                    // cannot wait on this word: fall back.
                    let expected = [
                        0,
                        -libc::EAGAIN,
                        -libc::EINTR,
                        -libc::ECANCELED,
                        -libc::ETIMEDOUT,
                        -libc::EFAULT,
                    ];
                    if res > 0 || expected.contains(&res) {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Ready(Err(std::io::Error::from_raw_os_error(-res)))
                    }
                }
            };
        }
        let ring = Ring::current()?;
        let mut st = ring.lock();
        let slot = match st.free.pop() {
            Some(s) => s,
            None => {
                st.ops.push((0, Op::Free));
                st.ops.len() - 1
            }
        };
        let gen = st.ops[slot].0;
        st.ops[slot].1 = Op::Pending(Some(cx.waker().clone()));
        if let Err(e) = st.uring.wait(self.addr, self.expected, tag(slot, gen)) {
            // The entry may still be queued and go out with a later submit:
            // retire the generation, so its completion matches nothing.
            st.ops[slot].0 = gen.wrapping_add(1);
            st.ops[slot].1 = Op::Free;
            st.free.push(slot);
            return Poll::Ready(Err(e));
        }
        drop(st);
        self.sub = Some((ring, slot, gen));
        Poll::Pending
    }
}

impl Drop for UringWait {
    fn drop(&mut self) {
        let Some((ring, slot, gen)) = self.sub.take() else {
            return;
        };
        let mut st = ring.lock();
        let Some((g, op)) = st.ops.get_mut(slot) else {
            return;
        };
        if *g != gen {
            return;
        }
        match op {
            Op::Pending(_) => {
                *op = Op::Cancelled;
                if st.uring.cancel(tag(slot, gen)).is_err() {
                    // Cannot cancel: the wait ends by itself on the next
                    // wake of its word; the slot is freed then.
                }
            }
            _ => {
                *op = Op::Free;
                *g = g.wrapping_add(1);
                st.free.push(slot);
            }
        }
    }
}

// ---------------------------------------------------------- futex_waitv

/// Waits one helper thread serves besides its control word.
const PER_SHARD: usize = 127;

#[derive(Debug)]
struct Entry {
    id: u64,
    addr: usize,
    expected: u32,
    waker: Waker,
    fired: bool,
}

#[derive(Debug, Default)]
struct ShardState {
    entries: Vec<Entry>,
    next_id: u64,
}

/// One helper thread and the waits it serves.
#[derive(Debug)]
struct Shard {
    state: Mutex<ShardState>,
    /// Bumped (and woken) whenever the set of waits changes.
    control: AtomicU32,
}

impl Shard {
    fn lock(&self) -> std::sync::MutexGuard<'_, ShardState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poke(&self) {
        self.control.fetch_add(1, StdOrdering::SeqCst);
        os::futex_wake_private_addr(self.control.as_ptr() as usize, 1);
    }

    /// The helper thread: sleeps on every registered word at once, and
    /// wakes the task of each word that was woken or changed. It never
    /// reads a word itself (a word's segment may be gone: unmapped, or
    /// shrunk by a peer): the kernel reads them, with fault handling.
    fn serve(self: Arc<Shard>) {
        let mut words = Vec::with_capacity(PER_SHARD + 1);
        let mut ids = Vec::with_capacity(PER_SHARD + 1);
        loop {
            words.clear();
            ids.clear();
            {
                let st = self.lock();
                words.push(WaitWord {
                    addr: self.control.as_ptr() as usize,
                    expected: self.control.load(StdOrdering::SeqCst),
                    private: true,
                });
                ids.push(u64::MAX);
                for e in st.entries.iter().filter(|e| !e.fired).take(PER_SHARD) {
                    words.push(WaitWord {
                        addr: e.addr,
                        expected: e.expected,
                        private: false,
                    });
                    ids.push(e.id);
                }
            }
            let fire: Vec<u64> = match os::futex_waitv(&words, Some(Duration::from_secs(1))) {
                Waitv::Woken(i) => ids.get(i).copied().into_iter().collect(),
                Waitv::TimedOut => Vec::new(),
                // Some word no longer holds its value (or is gone): ask the
                // kernel about each, with a zero timeout.
                Waitv::Changed => words
                    .iter()
                    .zip(&ids)
                    .skip(1)
                    .filter(|(w, _)| {
                        !matches!(
                            os::futex_waitv(&[**w], Some(Duration::ZERO)),
                            Waitv::TimedOut
                        )
                    })
                    .map(|(_, id)| *id)
                    .collect(),
                // No futex_waitv at all: every wait ends (callers look
                // again), at most every 10 ms.
                Waitv::Unsupported => {
                    std::thread::sleep(Duration::from_millis(10));
                    ids.iter().skip(1).copied().collect()
                }
            };
            if fire.is_empty() {
                continue;
            }
            let mut wake = Vec::new();
            let mut passed_on = Vec::new();
            {
                let mut st = self.lock();
                for id in fire {
                    match st.entries.iter_mut().find(|e| e.id == id) {
                        Some(e) if !e.fired => {
                            e.fired = true;
                            wake.push(e.waker.clone());
                        }
                        Some(_) => {}
                        // Its future is gone: a wake-up meant for some
                        // waiter of this word must not end here.
                        None => {
                            if let Some(w) = words.iter().zip(&ids).find(|(_, i)| **i == id) {
                                passed_on.push(w.0.addr);
                            }
                        }
                    }
                }
            }
            for w in wake {
                w.wake();
            }
            for addr in passed_on {
                os::futex_wake_addr(addr, 1);
            }
        }
    }
}

fn shards() -> &'static Mutex<Vec<Arc<Shard>>> {
    static SHARDS: OnceLock<Mutex<Vec<Arc<Shard>>>> = OnceLock::new();
    SHARDS.get_or_init(|| Mutex::new(Vec::new()))
}

/// A futex wait served by a helper thread.
struct WaitvWait {
    addr: usize,
    expected: u32,
    reg: Option<(Arc<Shard>, u64)>,
}

impl WaitvWait {
    fn new(addr: usize, expected: u32) -> WaitvWait {
        WaitvWait {
            addr,
            expected,
            reg: None,
        }
    }
}

impl Future for WaitvWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some((shard, id)) = &self.reg {
            let mut st = shard.lock();
            let Some(i) = st.entries.iter().position(|e| e.id == *id) else {
                return Poll::Ready(());
            };
            if st.entries[i].fired {
                st.entries.swap_remove(i);
                drop(st);
                self.reg = None;
                return Poll::Ready(());
            }
            if !st.entries[i].waker.will_wake(cx.waker()) {
                st.entries[i].waker = cx.waker().clone();
            }
            return Poll::Pending;
        }
        // Under the shards lock from the choice to the push, so no shard
        // ever serves more than PER_SHARD waits.
        let mut all = shards().lock().unwrap_or_else(|e| e.into_inner());
        let shard = match all.iter().find(|s| s.lock().entries.len() < PER_SHARD) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(Shard {
                    state: Mutex::new(ShardState::default()),
                    control: AtomicU32::new(0),
                });
                let t = s.clone();
                if std::thread::Builder::new()
                    .name("mapshare-waitv".into())
                    .spawn(move || t.serve())
                    .is_err()
                {
                    return Poll::Ready(()); // spurious: the caller re-checks
                }
                all.push(s.clone());
                s
            }
        };
        let id = {
            let mut st = shard.lock();
            let id = st.next_id;
            st.next_id += 1;
            st.entries.push(Entry {
                id,
                addr: self.addr,
                expected: self.expected,
                waker: cx.waker().clone(),
                fired: false,
            });
            id
        };
        drop(all);
        shard.poke();
        self.reg = Some((shard, id));
        Poll::Pending
    }
}

impl Drop for WaitvWait {
    fn drop(&mut self) {
        if let Some((shard, id)) = self.reg.take() {
            let mut st = shard.lock();
            let unfired = st.entries.iter().position(|e| e.id == id).map(|i| {
                let e = st.entries.swap_remove(i);
                !e.fired
            });
            drop(st);
            // Let the helper stop waiting on the word now (a wake-up that
            // still reaches it for this entry is passed on).
            if unfired == Some(true) {
                shard.poke();
            }
        }
    }
}

/// Helper threads the `futex_waitv` backend runs now (for tests).
#[doc(hidden)]
pub fn waitv_threads() -> usize {
    shards().lock().map_or(0, |s| s.len())
}

/// Waits registered with the kernel or a helper thread and not yet given
/// back (for tests: after cancelled waits settle, 0). Counts this thread's
/// ring and every helper thread.
#[doc(hidden)]
pub fn pending_waits() -> usize {
    let ring = RING.with(|r| {
        r.borrow().as_ref().map_or(0, |ring| {
            ring.lock()
                .ops
                .iter()
                .filter(|(_, op)| !matches!(op, Op::Free))
                .count()
        })
    });
    let helpers: usize = shards()
        .lock()
        .map_or(0, |s| s.iter().map(|sh| sh.lock().entries.len()).sum());
    ring + helpers
}

/// Sleeps on a doorbell until `ready()`, `deadline` (`None`: as long as
/// it takes), or until `intact()` says the segment shrank (then `false`).
/// The async form of the sleep phase of `Doorbell::wait_until` (Block).
pub(crate) async fn bell_wait(
    bell: &crate::sync::doorbell::Doorbell,
    deadline: Option<Instant>,
    intact: &(dyn Fn() -> bool + Sync),
    mut ready: impl FnMut() -> bool + Send,
) -> bool {
    loop {
        if ready() {
            return true;
        }
        let Some(timeout) =
            crate::sync::next_sleep(deadline, Some(crate::sync::doorbell::MAX_SLEEP))
        else {
            return ready();
        };
        if let Some(s) = bell.arm() {
            crate::primitive::fence(crate::primitive::Ordering::SeqCst);
            if ready() {
                return true;
            }
            wait(
                bell.word(),
                s,
                timeout.unwrap_or(crate::sync::doorbell::MAX_SLEEP),
            )
            .await;
        }
        if !intact() {
            return false;
        }
    }
}

/// One armed sleep on an event's word while its count is still `seen` and
/// `quiet()` (asked after arming, Dekker with the notifier) holds: the
/// async form of `EventWord::sleep_while`. `false` once `deadline` passed.
async fn event_sleep(
    ev: &crate::sync::event::EventWord,
    seen: u32,
    deadline: Option<Instant>,
    quiet: impl Fn() -> bool,
) -> bool {
    let max = crate::sync::event::MAX_SLEEP;
    let Some(timeout) = crate::sync::next_sleep(deadline, Some(max)) else {
        return false;
    };
    if let Some(flagged) = ev.arm(seen) {
        crate::primitive::fence(crate::primitive::Ordering::SeqCst);
        if quiet() {
            wait(ev.word(), flagged, timeout.unwrap_or(max)).await;
        }
    }
    true
}

/// The async form of `EventWord::wait`: waits for the signal (consuming
/// it in auto-reset mode) until `deadline`; `false` on timeout, or at once
/// when `intact()` says the segment shrank.
pub(crate) async fn event_wait(
    ev: &crate::sync::event::EventWord,
    deadline: Option<Instant>,
    intact: &(dyn Fn() -> bool + Sync),
) -> bool {
    loop {
        if ev.try_consume() {
            return true;
        }
        if !event_sleep(ev, ev.seq(), deadline, || !ev.is_set()).await {
            return ev.try_consume();
        }
        if !intact() {
            return false;
        }
    }
}

/// The async form of `EventWord::wait_change`: waits until the event's
/// count differs from `seen` or `deadline` passes; `true` if it changed.
pub(crate) async fn event_change(
    ev: &crate::sync::event::EventWord,
    seen: u32,
    deadline: Option<Instant>,
    intact: &(dyn Fn() -> bool + Sync),
) -> bool {
    let changed = |ev: &crate::sync::event::EventWord| ev.seq() & !1 != seen & !1;
    loop {
        if changed(ev) {
            return true;
        }
        if !event_sleep(ev, seen, deadline, || !changed(ev)).await {
            return changed(ev);
        }
        if !intact() {
            return false;
        }
    }
}

/// The next message of a handle, as a boxed future that owns it.
type NextMessage<H> =
    Pin<Box<dyn Future<Output = (H, Result<Vec<u8>, crate::error::RecvError>)> + Send>>;

/// A channel [`Receiver`](crate::Receiver) or a
/// [`Subscriber`](crate::Subscriber) as a [`Stream`](futures_core::Stream)
/// of messages (feature `tokio`): made by `into_stream`. It yields each
/// message (and each error that does not end the stream, such as
/// `Lagged` or a `Fault`), and ends once the peer has gone and everything
/// is read (`Disconnected`). [`into_inner`](Self::into_inner) gives the
/// handle back.
pub struct MessageStream<H> {
    handle: Option<H>,
    pending: Option<NextMessage<H>>,
    next: fn(H) -> NextMessage<H>,
    ended: bool,
}

impl<H> std::fmt::Debug for MessageStream<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("waiting", &self.pending.is_some())
            .finish()
    }
}

impl<H> MessageStream<H> {
    pub(crate) fn new(handle: H, next: fn(H) -> NextMessage<H>) -> MessageStream<H> {
        MessageStream {
            handle: Some(handle),
            pending: None,
            next,
            ended: false,
        }
    }

    /// The handle back, unless a wait is in progress (a stream dropped or
    /// given up mid-wait drops its handle with the wait).
    pub fn into_inner(self) -> Option<H> {
        self.handle
    }
}

impl<H> Unpin for MessageStream<H> {}

impl<H> futures_core::Stream for MessageStream<H> {
    type Item = Result<Vec<u8>, crate::error::RecvError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.pending.is_none() {
            let Some(h) = self.handle.take() else {
                return Poll::Ready(None);
            };
            self.pending = Some((self.next)(h));
        }
        let Some(fut) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((h, r)) => {
                self.pending = None;
                if matches!(r, Err(crate::error::RecvError::Disconnected)) {
                    // Ended; keep the handle for `into_inner`, and let the
                    // next poll see the end (and not wait again).
                    self.handle = Some(h);
                    self.ended = true;
                    return Poll::Ready(None);
                }
                self.handle = Some(h);
                Poll::Ready(Some(r))
            }
        }
    }
}
