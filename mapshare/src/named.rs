//! Standalone named [`Mutex`] and [`Event`] segments.

use std::time::{Duration, Instant};

use crate::error::{LockError, SegmentError, Timeout};
use crate::layout::{Fingerprint, Kind};
use crate::segment::{Location, Segment, SegmentOptions, Spec};
use crate::sync::event::{EventWord, MODE_AUTO, MODE_MANUAL};
use crate::sync::mutex::{self, Acquired, Fail, MutexWord, Wait};
use crate::sync::Liveness;

/// Runs the lock algorithm (shared by every type with a mutex).
pub(crate) fn lock_with(w: &MutexWord, peers: &dyn Liveness, wait: Wait) -> Result<Acquired, Fail> {
    mutex::lock(w, peers, wait)
}

/// Maps a lock outcome to the public guard/error pair.
pub(crate) fn guard_result<G>(
    r: Result<Acquired, Fail>,
    make: impl FnOnce() -> G,
) -> Result<G, LockError<G>> {
    match r {
        Ok(Acquired::Clean) => Ok(make()),
        Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(make())),
        Err(Fail::WouldBlock) => Err(LockError::WouldBlock),
        Err(Fail::Timeout) => Err(LockError::Timeout),
    }
}

/// A robust mutex shared between processes by name.
///
/// A holder killed at any moment (SIGKILL included) never blocks the
/// others: the next `lock`, `try_lock` or `lock_timeout` takes the lock over
/// within a few milliseconds and returns [`LockError::OwnerDied`] with the
/// guard, so the caller knows the protected state may be half-updated.
///
/// # Examples
/// ```
/// use mapshare::Mutex;
/// # let name = format!("doc-mutex-{}", std::process::id());
/// let m = Mutex::create(&name)?;
/// {
///     let _held = m.lock().unwrap();
///     assert!(Mutex::open(&name)?.try_lock().is_err());
/// }
/// assert!(m.try_lock().is_ok());
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug)]
pub struct Mutex {
    seg: Segment,
}

fn mutex_spec() -> Spec {
    Spec {
        kind: Kind::Mutex,
        layout: Fingerprint::new("mutex", 128, 128),
        check_layout: true,
        min_payload: 128,
    }
}

fn init_mutex(p: crate::region::Region<'_>) {
    if let Some(m) = p.get::<MutexWord>(0) {
        m.init();
    }
}

impl Mutex {
    /// Creates the mutex `name` (unlocked).
    ///
    /// # Errors
    /// [`SegmentError::AlreadyExists`], [`SegmentError::InvalidName`], ...
    pub fn create(name: &str) -> Result<Mutex, SegmentError> {
        Mutex::create_with(&SegmentOptions::new(name))
    }

    /// Creates a mutex as `opts` says.
    ///
    /// # Errors
    /// As [`Mutex::create`].
    pub fn create_with(opts: &SegmentOptions) -> Result<Mutex, SegmentError> {
        Ok(Mutex {
            seg: Segment::create(opts, &mutex_spec(), 128, init_mutex)?,
        })
    }

    /// Opens the existing mutex `name`.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`], ...
    pub fn open(name: &str) -> Result<Mutex, SegmentError> {
        Mutex::open_with(&SegmentOptions::new(name))
    }

    /// Opens a mutex as `opts` says.
    ///
    /// # Errors
    /// As [`Mutex::open`].
    pub fn open_with(opts: &SegmentOptions) -> Result<Mutex, SegmentError> {
        Ok(Mutex {
            seg: Segment::open(opts, &mutex_spec())?,
        })
    }

    /// Opens the mutex `name`, creating it if needed.
    ///
    /// # Errors
    /// As [`Mutex::open`] and [`Mutex::create`].
    pub fn open_or_create(name: &str) -> Result<Mutex, SegmentError> {
        Mutex::open_or_create_with(&SegmentOptions::new(name))
    }

    /// Opens or creates a mutex as `opts` says.
    ///
    /// # Errors
    /// As [`Mutex::open`] and [`Mutex::create`].
    pub fn open_or_create_with(opts: &SegmentOptions) -> Result<Mutex, SegmentError> {
        Ok(Mutex {
            seg: Segment::open_or_create(opts, &mutex_spec(), 128, init_mutex)?,
        })
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    fn word(&self) -> &MutexWord {
        self.seg
            .payload()
            .get::<MutexWord>(0)
            .expect("validated at open") // min_payload checked
    }

    fn guard(&self) -> MutexGuard<'_> {
        MutexGuard { mutex: self }
    }

    /// Locks, waiting as long as it takes.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (holding the guard) when the previous owner died holding it.
    pub fn lock(&self) -> Result<MutexGuard<'_>, LockError<MutexGuard<'_>>> {
        guard_result(lock_with(self.word(), &self.seg, Wait::Until(None)), || {
            self.guard()
        })
    }

    /// Locks if that needs no wait; a dead owner's lock is taken over.
    ///
    /// # Errors
    /// [`LockError::WouldBlock`], or [`LockError::OwnerDied`].
    pub fn try_lock(&self) -> Result<MutexGuard<'_>, LockError<MutexGuard<'_>>> {
        guard_result(lock_with(self.word(), &self.seg, Wait::Try), || {
            self.guard()
        })
    }

    /// Locks, waiting at most `timeout` (monotonic clock).
    ///
    /// # Errors
    /// [`LockError::Timeout`], or [`LockError::OwnerDied`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<MutexGuard<'_>, LockError<MutexGuard<'_>>> {
        self.lock_deadline(Instant::now() + timeout)
    }

    /// Locks, waiting until `deadline` at most.
    ///
    /// # Errors
    /// [`LockError::Timeout`], or [`LockError::OwnerDied`].
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> Result<MutexGuard<'_>, LockError<MutexGuard<'_>>> {
        guard_result(
            lock_with(self.word(), &self.seg, Wait::Until(Some(deadline))),
            || self.guard(),
        )
    }
}

/// Holds a [`Mutex`]; unlocks on drop.
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a> {
    mutex: &'a Mutex,
}

impl Drop for MutexGuard<'_> {
    fn drop(&mut self) {
        mutex::unlock(self.mutex.word());
    }
}

/// Whether a successful wait clears the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMode {
    /// One successful wait consumes the signal (Win32 auto-reset).
    AutoReset,
    /// The signal stays until [`Event::reset`]; every wait passes (manual-reset).
    ManualReset,
}

/// A named event: one process says "data is ready", others wait for it.
///
/// Waiters sleep on a futex in the shared segment and wake within
/// microseconds of [`Event::notify`]; a notify that races a wait is never
/// lost.
///
/// # Examples
/// ```
/// use mapshare::{Event, EventMode};
/// use std::time::Duration;
/// # let name = format!("doc-event-{}", std::process::id());
/// let ready = Event::create(&name, EventMode::AutoReset)?;
/// ready.notify();
/// assert!(ready.wait_timeout(Duration::from_millis(1)).is_ok());
/// assert!(ready.wait_timeout(Duration::from_millis(1)).is_err()); // consumed
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug)]
pub struct Event {
    seg: Segment,
}

fn event_spec() -> Spec {
    Spec {
        kind: Kind::Event,
        layout: Fingerprint::new("event", 128, 128),
        check_layout: true,
        min_payload: 128,
    }
}

impl Event {
    /// Creates the event `name`, clear.
    ///
    /// # Errors
    /// [`SegmentError::AlreadyExists`], [`SegmentError::InvalidName`], ...
    pub fn create(name: &str, mode: EventMode) -> Result<Event, SegmentError> {
        Event::create_with(&SegmentOptions::new(name), mode)
    }

    /// Creates an event as `opts` says.
    ///
    /// # Errors
    /// As [`Event::create`].
    pub fn create_with(opts: &SegmentOptions, mode: EventMode) -> Result<Event, SegmentError> {
        Ok(Event {
            seg: Segment::create(opts, &event_spec(), 128, |p| init_event(p, mode))?,
        })
    }

    /// Opens the existing event `name`.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`], ...
    pub fn open(name: &str) -> Result<Event, SegmentError> {
        Event::open_with(&SegmentOptions::new(name))
    }

    /// Opens an event as `opts` says.
    ///
    /// # Errors
    /// As [`Event::open`].
    pub fn open_with(opts: &SegmentOptions) -> Result<Event, SegmentError> {
        Ok(Event {
            seg: Segment::open(opts, &event_spec())?,
        })
    }

    /// Opens the event `name`, creating it (with `mode`) if needed.
    ///
    /// # Errors
    /// As [`Event::open`] and [`Event::create`].
    pub fn open_or_create(name: &str, mode: EventMode) -> Result<Event, SegmentError> {
        Event::open_or_create_with(&SegmentOptions::new(name), mode)
    }

    /// Opens or creates an event as `opts` says.
    ///
    /// # Errors
    /// As [`Event::open`] and [`Event::create`].
    pub fn open_or_create_with(
        opts: &SegmentOptions,
        mode: EventMode,
    ) -> Result<Event, SegmentError> {
        Ok(Event {
            seg: Segment::open_or_create(opts, &event_spec(), 128, |p| init_event(p, mode))?,
        })
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    fn word(&self) -> &EventWord {
        self.seg
            .payload()
            .get::<EventWord>(0)
            .expect("validated at open") // min_payload checked
    }

    /// The mode chosen at creation.
    pub fn mode(&self) -> EventMode {
        if self.word().is_manual() {
            EventMode::ManualReset
        } else {
            EventMode::AutoReset
        }
    }

    /// Sets the event and wakes the waiters.
    pub fn notify(&self) {
        self.word().notify();
    }

    /// Clears the event.
    pub fn reset(&self) {
        self.word().reset();
    }

    /// Whether the event is set (without consuming it).
    pub fn is_set(&self) -> bool {
        self.word().is_set()
    }

    /// Consumes the signal if set (auto-reset), or checks it (manual-reset).
    ///
    /// # Errors
    /// [`Timeout`] when it is not set.
    pub fn try_wait(&self) -> Result<(), Timeout> {
        self.wait_deadline(Instant::now())
    }

    /// Waits for the event, as long as it takes.
    pub fn wait(&self) {
        self.word().wait(None);
    }

    /// Waits for the event at most `timeout` (monotonic clock).
    ///
    /// # Errors
    /// [`Timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.wait_deadline(Instant::now() + timeout)
    }

    /// Waits for the event until `deadline`.
    ///
    /// # Errors
    /// [`Timeout`].
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        if self.word().wait(Some(deadline)) {
            Ok(())
        } else {
            Err(Timeout)
        }
    }
}

fn init_event(p: crate::region::Region<'_>, mode: EventMode) {
    if let Some(e) = p.get::<EventWord>(0) {
        e.init(if mode == EventMode::ManualReset {
            MODE_MANUAL
        } else {
            MODE_AUTO
        });
    }
}
