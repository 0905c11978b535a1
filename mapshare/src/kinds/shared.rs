//! [`Shared<T>`]: one plain-data value in a named segment, with a robust
//! mutex and a data-ready event. The whole Win32 recipe in one type.
//!
//! Payload layout: `[MutexWord: 128][EventWord: 128][T at DATA_OFFSET]`.

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::error::{LockTimeoutError, RecvTimeoutError, SegmentError};
use crate::kinds::mutex::lock_guard;
use crate::layout::{Fingerprint, Kind};
use crate::options::{self, How, Options};
use crate::primitive::Ordering;
use crate::segment::{Location, Segment, Spec};
use crate::sync::event::{EventWord, MODE_AUTO};
use crate::sync::mutex::{self, MutexWord};
use crate::wait::{lock_forms, recv_forms, Wait};

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
            tokens: |p, f| {
                if let Some(m) = p.get::<MutexWord>(MUTEX_OFFSET) {
                    f(m.state.load(Ordering::Relaxed));
                }
            },
            abandoned: |p| {
                p.get::<MutexWord>(MUTEX_OFFSET)
                    .is_some_and(MutexWord::is_locked)
            },
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

    options::constructors!("a value of `T` (created as `T::zeroed()`)");

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

    fn lock_inner(
        &self,
        wait: Wait,
    ) -> Result<SharedGuard<'_, T>, LockTimeoutError<SharedGuard<'_, T>>> {
        lock_guard(&self.seg, self.mutex(), wait, || SharedGuard {
            shared: self,
        })
    }

    lock_forms!(
        /// Locks the value.
        SharedGuard<'_, T> = lock_inner
    );

    /// Locks the value without blocking the thread (feature `tokio`): the
    /// async form of [`lock`](Self::lock), with the same errors.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn lock_async(
        &self,
    ) -> Result<SharedGuard<'_, T>, crate::error::LockError<SharedGuard<'_, T>>> {
        crate::kinds::mutex::lock_guard_async(&self.seg, self.mutex(), || SharedGuard {
            shared: self,
        })
        .await
    }

    /// Waits for "data is ready" without blocking the thread (feature
    /// `tokio`): the async form of [`wait`](Self::wait).
    ///
    /// # Errors
    /// `Fault(Truncated)` if a peer shrank the segment.
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn wait_async(&self) -> Result<(), crate::error::RecvError> {
        let seg = &self.seg;
        if crate::asyncio::event_wait(self.event(), None, &|| seg.is_intact()).await {
            Ok(())
        } else {
            Err(crate::error::RecvError::Fault(
                crate::error::Fault::Truncated,
            ))
        }
    }

    /// Signals "data is ready" (auto-reset: one wait consumes it).
    pub fn notify(&self) {
        self.event().notify();
    }

    fn wait_inner(&self, wait: Wait) -> Result<(), RecvTimeoutError> {
        crate::kinds::event::wait_event(&self.seg, self.event(), wait)
    }

    recv_forms!(
        /// Waits for [`Shared::notify`] (consuming it), as for an
        /// auto-reset [`Event`](crate::Event).
        try_wait, wait, wait_timeout, wait_deadline (&self) () -> () = wait_inner
    );
}

impl<T: Pod> options::private::Sealed for Shared<T> {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let seg = Segment::attach(&o.seg, how, &Self::spec(), Self::payload_len()?, Self::init)?;
        Ok(Shared {
            seg,
            _t: PhantomData,
        })
    }
}
impl<T: Pod> options::Attach for Shared<T> {}

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
        if self.shared.seg.forked() {
            return; // the parent's lock, inherited through fork(): not ours to release
        }
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
