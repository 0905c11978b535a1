//! [`Mutex`]: a standalone named robust mutex.

use crate::error::{Fault, LockTimeoutError, SegmentError};
use crate::layout::{Fingerprint, Kind};
use crate::options::{self, How, Options};
use crate::primitive::Ordering;
use crate::region::Region;
use crate::segment::{Location, Segment, Spec};
use crate::sync::mutex::{self, Acquired, Fail, MutexWord};
use crate::sync::Liveness;
use crate::wait::{lock_forms, Wait};

/// Runs the lock algorithm and maps its outcome to the timeout-form
/// result (shared by every kind with a mutex). A wait that slept checks
/// that the segment still backs the mutex's page before it looks again.
pub(crate) fn lock_guard<G>(
    seg: &Segment,
    w: &MutexWord,
    wait: Wait,
    make: impl FnOnce() -> G,
) -> Result<G, LockTimeoutError<G>> {
    match mutex::lock(w, seg as &dyn Liveness, wait) {
        Ok(Acquired::Clean) => Ok(make()),
        Ok(Acquired::OwnerDied) => Err(LockTimeoutError::OwnerDied(make())),
        Err(Fail::WouldBlock) | Err(Fail::Timeout) => Err(LockTimeoutError::Timeout),
        Err(Fail::Truncated) => Err(LockTimeoutError::Fault(Fault::Truncated)),
    }
}

/// [`lock_guard`] without blocking the thread (feature `tokio`).
#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
pub(crate) async fn lock_guard_async<G>(
    seg: &Segment,
    w: &MutexWord,
    make: impl FnOnce() -> G,
) -> Result<G, crate::error::LockError<G>> {
    use crate::error::LockError;
    match mutex::lock_async(w, seg).await {
        Ok(Acquired::Clean) => Ok(make()),
        Ok(Acquired::OwnerDied) => Err(LockError::OwnerDied(make())),
        Err(Fail::Truncated) => Err(LockError::Fault(Fault::Truncated)),
        Err(Fail::WouldBlock) | Err(Fail::Timeout) => {
            unreachable!("an async lock has no deadline") // lock_async loops until it holds the lock
        }
    }
}

/// A robust mutex shared between processes by name.
///
/// A holder killed at any moment (SIGKILL included) never blocks the
/// others: the next `lock`, `try_lock` or `lock_timeout` takes the lock over
/// within a few milliseconds and returns
/// [`OwnerDied`](crate::LockError::OwnerDied) with the guard, so the caller
/// knows the protected state may be half-updated.
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

fn spec() -> Spec {
    Spec {
        kind: Kind::Mutex,
        layout: Fingerprint::new("mutex", 128, 128),
        check_layout: true,
        min_payload: 128,
        tokens: |p, f| {
            if let Some(m) = p.get::<MutexWord>(0) {
                f(m.state.load(Ordering::Relaxed));
            }
        },
        abandoned: |p| p.get::<MutexWord>(0).is_some_and(MutexWord::is_locked),
    }
}

fn init(p: Region<'_>) {
    if let Some(m) = p.get::<MutexWord>(0) {
        m.init();
    }
}

impl options::private::Sealed for Mutex {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        Ok(Mutex {
            seg: Segment::attach(&o.seg, how, &spec(), 128, init)?,
        })
    }
}
impl options::Attach for Mutex {}

impl Mutex {
    options::constructors!("a mutex");

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    /// The descriptor whose open file description holds this handle's
    /// registry slot, and so the liveness of every lock this handle takes.
    ///
    /// A process that inherits a duplicate of it (without `O_CLOEXEC`)
    /// keeps this handle's attachment alive until the last copy is closed,
    /// however this process ends: a lock held through this handle then
    /// stays held, and is reported `OwnerDied` to the next locker only
    /// once every copy is gone. This is how `flock(1)` passes its lock to
    /// the command it runs, and how `mapshare lock NAME -- CMD` keeps CMD
    /// protected even if the `mapshare` process is killed. Only pass it to
    /// a process that runs *under* the lock: it must not take the lock
    /// itself through this descriptor's slot.
    ///
    /// # Examples
    /// ```
    /// use std::os::fd::AsRawFd;
    /// # let name = format!("doc-mutex-fd-{}", std::process::id());
    /// let m = mapshare::Mutex::create(&name)?;
    /// assert!(m.liveness_fd().as_raw_fd() >= 0);
    /// # Ok::<(), mapshare::SegmentError>(())
    /// ```
    #[cfg(all(target_os = "linux", not(mapshare_loom)))]
    pub fn liveness_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.seg.liveness_fd()
    }

    fn word(&self) -> &MutexWord {
        self.seg
            .payload()
            .get::<MutexWord>(0)
            .expect("validated at open") // min_payload checked
    }

    fn lock_inner(&self, wait: Wait) -> Result<MutexGuard<'_>, LockTimeoutError<MutexGuard<'_>>> {
        lock_guard(&self.seg, self.word(), wait, || MutexGuard { mutex: self })
    }

    lock_forms!(
        /// Locks the mutex.
        MutexGuard<'_> = lock_inner
    );

    /// Locks the mutex without blocking the thread (feature `tokio`): the
    /// async form of [`lock`](Self::lock), with the same errors
    /// (`OwnerDied` hands over the guard). Dropping the future before it
    /// completes takes nothing.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn lock_async(
        &self,
    ) -> Result<MutexGuard<'_>, crate::error::LockError<MutexGuard<'_>>> {
        lock_guard_async(&self.seg, self.word(), || MutexGuard { mutex: self }).await
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
        if self.mutex.seg.forked() {
            return; // the parent's lock, inherited through fork(): not ours to release
        }
        mutex::unlock(self.mutex.word());
    }
}
