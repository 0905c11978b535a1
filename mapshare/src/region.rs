//! Typed, bounds-checked views of a mapped byte region.
//!
//! The only code that turns offsets into addresses. Control words are handed
//! out as `&T` for `T:` [`ShmState`] (atomics only); payload bytes move only by
//! raw copies into and out of process-local buffers, never as `&[u8]` over
//! memory a peer may write. Every offset and length is checked against the
//! region; a check that fails is `None`, not an out-of-bounds access.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::pod::ShmState;
use crate::sys::Mapping;

/// A byte range of a mapping, borrowed for `'a`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region<'a> {
    base: NonNull<u8>,
    len: usize,
    _life: PhantomData<&'a Mapping>,
}

// SAFETY: a `Region` only hands out atomics (`Sync`) and does raw copies;
// sharing it between threads is what a shared mapping is for.
unsafe impl Send for Region<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for Region<'_> {}

impl<'a> Region<'a> {
    /// The whole of a mapping.
    #[inline]
    pub(crate) fn of(map: &'a Mapping) -> Region<'a> {
        Region {
            base: map.ptr(),
            len: map.len(),
            _life: PhantomData,
        }
    }

    #[inline]
    fn check(&self, off: usize, len: usize) -> Option<()> {
        let end = off.checked_add(len)?;
        (end <= self.len).then_some(())
    }

    /// The sub-range `[off, off + len)`, if it lies inside.
    #[inline]
    pub(crate) fn sub(&self, off: usize, len: usize) -> Option<Region<'a>> {
        self.check(off, len)?;
        // SAFETY: `off <= self.len`, so the result stays inside (or one past
        // the end of) the mapping, which is one allocation.
        let base = unsafe { self.base.add(off) };
        Some(Region {
            base,
            len,
            _life: PhantomData,
        })
    }

    /// The control structure at `off`, if it fits and is aligned.
    #[inline]
    pub(crate) fn get<T: ShmState>(&self, off: usize) -> Option<&'a T> {
        self.check(off, std::mem::size_of::<T>())?;
        let addr = self.base.as_ptr().wrapping_add(off);
        if (addr as usize) % std::mem::align_of::<T>() != 0 {
            return None;
        }
        // SAFETY:
        // 1. in bounds and aligned (checked above), inside a mapping that
        //    outlives 'a;
        // 2. `T: ShmState` is made of atomics, valid for every bit pattern, so
        //    a shared reference is sound even while other processes write it.
        Some(unsafe { &*addr.cast::<T>() })
    }

    /// `n` consecutive control structures starting at `off` (a table of
    /// slots, a ring of words), if they fit and are aligned.
    pub(crate) fn slice<T: ShmState>(&self, off: usize, n: usize) -> Option<&'a [T]> {
        self.check(off, std::mem::size_of::<T>().checked_mul(n)?)?;
        let addr = self.base.as_ptr().wrapping_add(off);
        if (addr as usize) % std::mem::align_of::<T>() != 0 {
            return None;
        }
        // SAFETY:
        // 1. `n` values of `T` lie in bounds and aligned (checked above),
        //    inside one mapping that outlives 'a;
        // 2. as for `get`: `T: ShmState` is made of atomics, valid for every
        //    bit pattern, so shared references are sound while peers write.
        Some(unsafe { std::slice::from_raw_parts(addr.cast::<T>(), n) })
    }

    /// Copies `dst.len()` bytes out of the region, starting at `off`.
    /// Returns `false` (copying nothing) if the range is out of bounds.
    #[inline]
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) -> bool {
        if self.check(off, dst.len()).is_none() {
            return false;
        }
        // SAFETY: the source range is inside the mapping (checked above) and
        // `dst` is a distinct, process-local buffer. A peer writing the bytes
        // meanwhile can only change which bytes we copy, which callers
        // validate after the copy.
        let src = self.base.as_ptr().wrapping_add(off);
        // SAFETY: (as above) `src..src + dst.len()` lies inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
        true
    }

    /// Copies `src` into the region at `off`. Returns `false` (copying
    /// nothing) if the range is out of bounds.
    #[inline]
    pub(crate) fn write(&self, off: usize, src: &[u8]) -> bool {
        if self.check(off, src.len()).is_none() {
            return false;
        }
        // SAFETY: the destination range is inside the writable mapping
        // (checked above); `src` is a distinct, process-local buffer.
        let dst = self.base.as_ptr().wrapping_add(off);
        // SAFETY: (as above) `dst..dst + src.len()` lies inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        true
    }

    /// Runs `f` on the bytes `[off, off + len)` in place (zero-copy read).
    /// `None` if the range is out of bounds.
    ///
    /// # Safety
    /// - By the protocol in force, no process writes the range while `f`
    ///   runs (a consumer holding a committed slot, say).
    /// - A peer that breaks the protocol can still change the bytes under
    ///   `f`: only bytes (every value valid) are exposed, and `f` must treat
    ///   them as untrusted input, validating what it reads.
    pub(crate) unsafe fn with_bytes<R>(
        &self,
        off: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        self.check(off, len)?;
        let p = self.base.as_ptr().wrapping_add(off);
        // SAFETY: in bounds (checked above) of a mapping that outlives the
        // call; exclusive by protocol, as the caller promises.
        let bytes = unsafe { std::slice::from_raw_parts(p, len) };
        Some(f(bytes))
    }

    /// Runs `f` on the bytes `[off, off + len)` in place, writable
    /// (zero-copy write). `None` if the range is out of bounds.
    ///
    /// # Safety
    /// - By the protocol in force, no other process reads or writes the
    ///   range while `f` runs (a producer holding a free slot, say).
    /// - As for [`Region::with_bytes`], a peer breaking the protocol can only
    ///   change byte values.
    pub(crate) unsafe fn with_bytes_mut<R>(
        &self,
        off: usize,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Option<R> {
        self.check(off, len)?;
        let p = self.base.as_ptr().wrapping_add(off);
        // SAFETY: in bounds (checked above) of a writable mapping that
        // outlives the call; exclusive by protocol, as the caller promises.
        let bytes = unsafe { std::slice::from_raw_parts_mut(p, len) };
        Some(f(bytes))
    }

    /// Copies a plain-data value out of the region.
    pub(crate) fn read_pod<T: bytemuck::Pod>(&self, off: usize) -> Option<T> {
        let mut v = T::zeroed();
        self.read(off, bytemuck::bytes_of_mut(&mut v)).then_some(v)
    }

    /// Copies a plain-data value into the region.
    pub(crate) fn write_pod<T: bytemuck::Pod>(&self, off: usize, v: &T) -> bool {
        self.write(off, bytemuck::bytes_of(v))
    }
}
