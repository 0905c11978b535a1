//! [`Shared<T>`]: one plain-data value in a named segment, with a robust
//! mutex and a data-ready event. The whole Win32 recipe in one type.
//! [`SharedBytes`] is the same segment with the value's layout given at run
//! time (for bindings to other languages): both forms share every function
//! below that knows the layout, so they interoperate by construction.
//!
//! Payload layout: `[MutexWord: 128][EventWord: 128][value at data_offset]`,
//! the value's offset being 256 rounded up to its alignment.

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
/// Largest alignment a shared value may ask for (a page).
const MAX_ALIGN: u64 = 4096;

/// Where the value starts for a layout of alignment `align`.
fn data_offset(align: usize) -> usize {
    let a = align.max(1);
    DATA_MIN_OFFSET.div_ceil(a) * a
}

/// The value's offset and size for `layout`, checked: the alignment a power
/// of two of at most [`MAX_ALIGN`], the whole payload addressable.
fn geometry(layout: &Fingerprint) -> Result<(usize, usize), SegmentError> {
    if !layout.align().is_power_of_two() || layout.align() > MAX_ALIGN {
        return Err(SegmentError::InvalidSize(format!(
            "{layout}: alignment must be a power of two up to {MAX_ALIGN}"
        )));
    }
    let offset = data_offset(layout.align() as usize); // <= 4096: fits
    let size = usize::try_from(layout.size())
        .ok()
        .filter(|s| {
            s.checked_add(offset)
                .is_some_and(|e| e <= isize::MAX as usize)
        })
        .ok_or_else(|| SegmentError::InvalidSize(format!("{layout}: value too large")))?;
    Ok((offset, size))
}

/// The segment spec for a value of `layout` (shared by both forms).
fn spec(layout: Fingerprint, offset: usize, size: usize) -> Spec {
    Spec {
        kind: Kind::Shared,
        layout,
        check_layout: true,
        min_payload: (offset + size) as u64,
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

fn init(payload: crate::region::Region<'_>) {
    if let Some(m) = payload.get::<MutexWord>(MUTEX_OFFSET) {
        m.init();
    }
    if let Some(e) = payload.get::<EventWord>(EVENT_OFFSET) {
        e.init(MODE_AUTO);
    }
    // The value starts zeroed (a fresh object is all zeroes).
}

/// Creates or opens the segment of a value of `layout`.
fn attach_segment(
    seg: &crate::segment::SegmentOptions,
    how: How,
    layout: &Fingerprint,
) -> Result<Segment, SegmentError> {
    let (offset, size) = geometry(layout)?;
    let spec = spec(layout.clone(), offset, size);
    Segment::attach(seg, how, &spec, (offset + size) as u64, init)
}

fn mutex_of(seg: &Segment) -> &MutexWord {
    seg.payload()
        .get::<MutexWord>(MUTEX_OFFSET)
        .expect("validated at open") // min_payload checked
}

fn event_of(seg: &Segment) -> &EventWord {
    seg.payload()
        .get::<EventWord>(EVENT_OFFSET)
        .expect("validated at open") // min_payload checked
}

fn wait_on(seg: &Segment, wait: Wait) -> Result<(), RecvTimeoutError> {
    crate::kinds::event::wait_event(seg, event_of(seg), wait)
}

/// What a guard's drop does (shared by both guards).
fn unlock(seg: &Segment) {
    if seg.forked() {
        return; // the parent's lock, inherited through fork(): not ours to release
    }
    mutex::unlock(mutex_of(seg));
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
    options::constructors!("a value of `T` (created as `T::zeroed()`)");

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    fn mutex(&self) -> &MutexWord {
        mutex_of(&self.seg)
    }

    fn event(&self) -> &EventWord {
        event_of(&self.seg)
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
        wait_on(&self.seg, wait)
    }

    recv_forms!(
        /// Waits for [`Shared::notify`] (consuming it), as for an
        /// auto-reset [`Event`](crate::Event).
        try_wait, wait, wait_timeout, wait_deadline (&self) () -> () = wait_inner
    );
}

impl<T: Pod> options::private::Sealed for Shared<T> {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let seg = attach_segment(&o.seg, how, &Fingerprint::of::<T>())?;
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
            .read_pod::<T>(data_offset(std::mem::align_of::<T>()))
            .expect("validated at open") // min_payload checked
    }

    /// Replaces the value.
    pub fn set(&mut self, value: &T) {
        let ok = self
            .shared
            .seg
            .payload()
            .write_pod(data_offset(std::mem::align_of::<T>()), value);
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
        unlock(&self.shared.seg);
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

/// A byte buffer of the wrong length was given for a value of a runtime
/// layout ([`SharedBytes`], the byte blackboard ends): nothing was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthMismatch {
    /// The layout's size in bytes.
    pub expected: usize,
    /// The length given.
    pub found: usize,
}

impl std::fmt::Display for LengthMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the value is {} bytes, {} were given",
            self.expected, self.found
        )
    }
}

impl std::error::Error for LengthMismatch {}

pub(crate) fn check_len(expected: usize, found: usize) -> Result<(), LengthMismatch> {
    if expected == found {
        Ok(())
    } else {
        Err(LengthMismatch { expected, found })
    }
}

/// A [`Shared<T>`] whose layout is given at run time: the same segment, the
/// same lock and event, the value reached as bytes.
///
/// For bindings to other languages, which cannot name `T`: a segment
/// created by `Shared::<Record>` opens as `SharedBytes` with
/// [`Fingerprint::new`]`("Record", size, align)` (the type name without
/// its module path, as [`Fingerprint::of`] writes it), and the other way
/// round; any other layout is [`SegmentError::LayoutMismatch`] naming both.
/// The layout is set with [`Options::layout`] (required).
///
/// # Examples
/// ```
/// use mapshare::{Fingerprint, Shared, SharedBytes};
/// # let name = format!("doc-shared-bytes-{}", std::process::id());
/// let typed = Shared::<u64>::create(&name)?;
/// typed.lock().unwrap().set(&7);
/// let bytes = SharedBytes::open(&name, Fingerprint::of::<u64>())?;
/// assert_eq!(bytes.lock().unwrap().get(), 7u64.to_ne_bytes());
/// bytes.lock().unwrap().set(&9u64.to_ne_bytes())?;
/// assert_eq!(typed.lock().unwrap().get(), 9);
/// assert!(SharedBytes::open(&name, Fingerprint::new("u64", 8, 4)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedBytes {
    seg: Segment,
    layout: Fingerprint,
    offset: usize,
    size: usize,
}

impl SharedBytes {
    /// Options for a value of a runtime layout named `name`; set
    /// [`Options::layout`], then `create`, `open` or `open_or_create`.
    pub fn options(name: &str) -> Options<Self> {
        Options::new(name)
    }

    /// Creates a value of `layout` (all zeroes) named `name`, with the
    /// default options.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).create()
    }

    /// Opens the value named `name`, whose layout must be `layout`.
    ///
    /// # Errors
    /// As [`Options::open`]; [`SegmentError::LayoutMismatch`] for another layout.
    pub fn open(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).open()
    }

    /// Opens the value named `name`, creating it (all zeroes) if needed.
    ///
    /// # Errors
    /// As [`Options::open_or_create`].
    pub fn open_or_create(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).open_or_create()
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    /// The value's layout.
    pub fn layout(&self) -> &Fingerprint {
        &self.layout
    }

    /// The value's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    fn lock_inner(
        &self,
        wait: Wait,
    ) -> Result<SharedBytesGuard<'_>, LockTimeoutError<SharedBytesGuard<'_>>> {
        lock_guard(&self.seg, mutex_of(&self.seg), wait, || SharedBytesGuard {
            shared: self,
        })
    }

    lock_forms!(
        /// Locks the value.
        SharedBytesGuard<'_> = lock_inner
    );

    /// Signals "data is ready" (auto-reset: one wait consumes it).
    pub fn notify(&self) {
        event_of(&self.seg).notify();
    }

    fn wait_inner(&self, wait: Wait) -> Result<(), RecvTimeoutError> {
        wait_on(&self.seg, wait)
    }

    recv_forms!(
        /// Waits for [`SharedBytes::notify`] or [`Shared::notify`]
        /// (consuming it), as for an auto-reset [`Event`](crate::Event).
        try_wait, wait, wait_timeout, wait_deadline (&self) () -> () = wait_inner
    );
}

/// The layout an [`Options`] for a runtime-layout kind was given.
pub(crate) fn required_layout<K>(o: &Options<K>) -> Result<&Fingerprint, SegmentError> {
    match &o.layout {
        Some(layout) => Ok(layout),
        None => Err(SegmentError::InvalidSize(format!(
            "{}: no layout given (Options::layout)",
            o.seg.location()?
        ))),
    }
}

impl options::private::Sealed for SharedBytes {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let layout = required_layout(o)?.clone();
        let (offset, size) = geometry(&layout)?;
        let seg = attach_segment(&o.seg, how, &layout)?;
        Ok(SharedBytes {
            seg,
            layout,
            offset,
            size,
        })
    }
}
impl options::Attach for SharedBytes {}
impl options::HasLayout for SharedBytes {}

/// Holds the lock of a [`SharedBytes`]; unlocks on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SharedBytesGuard<'a> {
    shared: &'a SharedBytes,
}

impl SharedBytesGuard<'_> {
    /// Copies the value into `dst`, which must be exactly
    /// [`SharedBytes::size`] bytes long.
    ///
    /// # Errors
    /// [`LengthMismatch`] (nothing copied) for another length.
    pub fn get_into(&self, dst: &mut [u8]) -> Result<(), LengthMismatch> {
        check_len(self.shared.size, dst.len())?;
        let ok = self.shared.seg.payload().read(self.shared.offset, dst);
        debug_assert!(ok); // min_payload checked at open
        Ok(())
    }

    /// A copy of the value.
    pub fn get(&self) -> Vec<u8> {
        let mut v = vec![0; self.shared.size];
        let ok = self.get_into(&mut v);
        debug_assert!(ok.is_ok());
        v
    }

    /// Replaces the value with `src`, which must be exactly
    /// [`SharedBytes::size`] bytes long.
    ///
    /// # Errors
    /// [`LengthMismatch`] (nothing stored) for another length.
    pub fn set(&mut self, src: &[u8]) -> Result<(), LengthMismatch> {
        check_len(self.shared.size, src.len())?;
        let ok = self.shared.seg.payload().write(self.shared.offset, src);
        debug_assert!(ok); // min_payload checked at open
        Ok(())
    }
}

impl Drop for SharedBytesGuard<'_> {
    fn drop(&mut self) {
        unlock(&self.shared.seg);
    }
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytes")
            .field("location", self.location())
            .field("layout", &self.layout)
            .finish()
    }
}

impl std::fmt::Debug for SharedBytesGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytesGuard")
            .field("location", self.shared.location())
            .finish_non_exhaustive()
    }
}
