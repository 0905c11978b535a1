//! [`Shared<T>`]: one plain-data value in a named segment, with a robust
//! mutex and a data-ready event. The whole Win32 recipe in one type.
//!
//! Payload layout: `[MutexWord: 128][EventWord: 128][T at DATA_OFFSET]`.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{LockError, SegmentError, Timeout};
use crate::layout::{Fingerprint, Kind};
use crate::named::{guard_result, lock_with};
use crate::segment::{Location, Segment, SegmentOptions, Spec};
use crate::sync::event::{EventWord, MODE_AUTO};
use crate::sync::mutex::{self, MutexWord, Wait};

const MUTEX_OFFSET: usize = 0;
const EVENT_OFFSET: usize = 128;
const DATA_MIN_OFFSET: usize = 256;

fn data_offset<T>() -> usize {
    let a = std::mem::align_of::<T>().max(1);
    DATA_MIN_OFFSET.div_ceil(a) * a
}

/// A value of type `T` shared between processes by name.
///
/// `T` must be [`Pod`]: `#[repr(C)]`, no padding, no pointers, valid for
/// every bit pattern. Its [`Fingerprint`] (type name, size, alignment) is
/// stored at creation and checked on open: opening with another type is a
/// [`SegmentError::LayoutMismatch`] naming both.
///
/// The value is reached only under the lock, by copy ([`SharedGuard::get`],
/// [`SharedGuard::set`], [`SharedGuard::update`]): no reference into memory
/// another process may write ever escapes.
///
/// # Examples
/// ```
/// use mapshare::Shared;
/// # let name = format!("doc-shared-{}", std::process::id());
/// let counter = Shared::<u64>::create(&name)?;
/// counter.lock().unwrap().update(|n| *n += 1);
/// assert_eq!(Shared::<u64>::open(&name)?.lock().unwrap().get(), 1);
/// assert!(Shared::<u32>::open(&name).is_err()); // another layout
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
pub struct Shared<T: Pod> {
    seg: Segment,
    _t: PhantomData<fn() -> T>,
}

impl<T: Pod> Shared<T> {
    fn spec() -> Spec {
        Spec {
            kind: Kind::Shared,
            layout: Fingerprint::of::<T>(),
            check_layout: true,
            min_payload: (data_offset::<T>() + std::mem::size_of::<T>()) as u64,
        }
    }

    fn payload_len() -> Result<u64, SegmentError> {
        if std::mem::align_of::<T>() > 4096 {
            return Err(SegmentError::InvalidSize("alignment above 4096".into()));
        }
        Ok((data_offset::<T>() + std::mem::size_of::<T>()) as u64)
    }

    fn init(payload: crate::region::Region<'_>) {
        if let Some(m) = payload.get::<MutexWord>(MUTEX_OFFSET) {
            m.init();
        }
        if let Some(e) = payload.get::<EventWord>(EVENT_OFFSET) {
            e.init(MODE_AUTO);
        }
        // The value starts zeroed (a fresh object is all zeroes).
    }

    /// Creates the segment `name`, holding `T::zeroed()`.
    ///
    /// # Errors
    /// [`SegmentError::AlreadyExists`], [`SegmentError::InvalidName`], [`SegmentError::NoSpace`], ...
    pub fn create(name: &str) -> Result<Self, SegmentError> {
        Self::create_with(&SegmentOptions::new(name))
    }

    /// Creates a segment as `opts` says.
    ///
    /// # Errors
    /// As [`Shared::create`].
    pub fn create_with(opts: &SegmentOptions) -> Result<Self, SegmentError> {
        let seg = Segment::create(opts, &Self::spec(), Self::payload_len()?, Self::init)?;
        Ok(Shared {
            seg,
            _t: PhantomData,
        })
    }

    /// Opens the existing segment `name`.
    ///
    /// # Errors
    /// [`SegmentError::NotFound`], [`SegmentError::LayoutMismatch`],
    /// [`SegmentError::KindMismatch`], [`SegmentError::Header`],
    /// [`SegmentError::ForeignOwner`], ...
    pub fn open(name: &str) -> Result<Self, SegmentError> {
        Self::open_with(&SegmentOptions::new(name))
    }

    /// Opens a segment as `opts` says.
    ///
    /// # Errors
    /// As [`Shared::open`].
    pub fn open_with(opts: &SegmentOptions) -> Result<Self, SegmentError> {
        let seg = Segment::open(opts, &Self::spec())?;
        Ok(Shared {
            seg,
            _t: PhantomData,
        })
    }

    /// Opens `name`, creating it if it does not exist.
    ///
    /// # Errors
    /// As [`Shared::open`] and [`Shared::create`].
    pub fn open_or_create(name: &str) -> Result<Self, SegmentError> {
        Self::open_or_create_with(&SegmentOptions::new(name))
    }

    /// Opens or creates a segment as `opts` says.
    ///
    /// # Errors
    /// As [`Shared::open`] and [`Shared::create`].
    pub fn open_or_create_with(opts: &SegmentOptions) -> Result<Self, SegmentError> {
        let seg = Segment::open_or_create(opts, &Self::spec(), Self::payload_len()?, Self::init)?;
        Ok(Shared {
            seg,
            _t: PhantomData,
        })
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    fn mutex(&self) -> &MutexWord {
        self.seg
            .payload()
            .get::<MutexWord>(MUTEX_OFFSET)
            .expect("validated at open") // min_payload checked
    }

    fn event(&self) -> &EventWord {
        self.seg
            .payload()
            .get::<EventWord>(EVENT_OFFSET)
            .expect("validated at open") // min_payload checked
    }

    fn guard(&self) -> SharedGuard<'_, T> {
        SharedGuard { shared: self }
    }

    /// Locks the value, waiting as long as it takes.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (holding the guard) when the previous owner
    /// died holding the lock: the value may be half-updated.
    pub fn lock(&self) -> Result<SharedGuard<'_, T>, LockError<SharedGuard<'_, T>>> {
        guard_result(
            lock_with(self.mutex(), &self.seg, Wait::Until(None)),
            || self.guard(),
        )
    }

    /// Locks the value if that needs no wait (a dead owner's lock is taken over).
    ///
    /// # Errors
    /// [`LockError::WouldBlock`], or [`LockError::OwnerDied`] as for [`Shared::lock`].
    pub fn try_lock(&self) -> Result<SharedGuard<'_, T>, LockError<SharedGuard<'_, T>>> {
        guard_result(lock_with(self.mutex(), &self.seg, Wait::Try), || {
            self.guard()
        })
    }

    /// Locks the value, waiting at most `timeout` (monotonic clock).
    ///
    /// # Errors
    /// [`LockError::Timeout`], or [`LockError::OwnerDied`] as for [`Shared::lock`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<SharedGuard<'_, T>, LockError<SharedGuard<'_, T>>> {
        self.lock_deadline(Instant::now() + timeout)
    }

    /// Locks the value, waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Shared::lock_timeout`].
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> Result<SharedGuard<'_, T>, LockError<SharedGuard<'_, T>>> {
        guard_result(
            lock_with(self.mutex(), &self.seg, Wait::Until(Some(deadline))),
            || self.guard(),
        )
    }

    /// Signals "data is ready" (auto-reset: one wait consumes it).
    pub fn notify(&self) {
        self.event().notify();
    }

    /// Waits for [`Shared::notify`], as long as it takes.
    pub fn wait(&self) {
        self.event().wait(None);
    }

    /// Waits for [`Shared::notify`] at most `timeout`.
    ///
    /// # Errors
    /// [`Timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.wait_deadline(Instant::now() + timeout)
    }

    /// Waits for [`Shared::notify`] until `deadline`.
    ///
    /// # Errors
    /// [`Timeout`].
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        if self.event().wait(Some(deadline)) {
            Ok(())
        } else {
            Err(Timeout)
        }
    }
}

/// Holds the lock of a [`Shared<T>`]; unlocks on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SharedGuard<'a, T: Pod> {
    shared: &'a Shared<T>,
}

impl<T: Pod> SharedGuard<'_, T> {
    /// A copy of the value.
    pub fn get(&self) -> T {
        self.shared
            .seg
            .payload()
            .read_pod::<T>(data_offset::<T>())
            .expect("validated at open") // min_payload checked
    }

    /// Replaces the value.
    pub fn set(&mut self, value: &T) {
        let ok = self
            .shared
            .seg
            .payload()
            .write_pod(data_offset::<T>(), value);
        debug_assert!(ok);
    }

    /// Copies the value out, lets `f` change the copy, and stores it back.
    pub fn update<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut v = self.get();
        let r = f(&mut v);
        self.set(&v);
        r
    }
}

impl<T: Pod> Drop for SharedGuard<'_, T> {
    fn drop(&mut self) {
        mutex::unlock(self.shared.mutex());
    }
}

impl<T: Pod> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("location", self.location())
            .field("layout", &Fingerprint::of::<T>())
            .finish()
    }
}

impl<T: Pod> std::fmt::Debug for SharedGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedGuard")
            .field("location", self.shared.location())
            .finish_non_exhaustive()
    }
}
