//! Typed, bounds-checked views of a mapped byte region.
//!
//! The only code that turns offsets into addresses. Control words are handed
//! out as `&T` for `T:` [`ShmState`] (atomics only); payload bytes move only by
//! volatile copies into and out of process-local buffers ([`Region::read`],
//! [`Region::write`], and the public [`View`] / [`ViewMut`] built on them),
//! never as a safe `&[u8]` over memory a peer may write. Every offset and
//! length is checked against the region; a check that fails is `None` /
//! `false`, not an out-of-bounds access.
//!
//! # Why volatile
//! Memory another process maps is outside what the Rust abstract machine
//! knows: a peer (buggy, hostile, or merely breaking the protocol) may
//! write it at any moment. A plain load there is a data race the compiler
//! may assume away (re-reading a value it already checked, say), so a
//! checked length could change under safe code. A volatile access is one
//! real load or store of the bytes as they are at that instant; every byte
//! value is valid, so what we copy out is merely untrusted data, which the
//! callers validate after the copy. On x86_64 the copy moves 16 bytes per
//! volatile access (measured on the 2-vCPU AMD EPYC VM: 54 GB/s against
//! `memcpy`'s 59 GB/s at 1 MiB, 88 against 109 at 4 KiB); elsewhere 8.

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

// SAFETY: a `Region` is an address range; it hands out atomics (`Sync`),
// does volatile copies, and builds `View`s whose only non-copying accessors
// are `unsafe fn`s with their own contract. None of that depends on which
// thread does it: sharing it between threads is what a mapping is for.
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
        let src = self.base.as_ptr().wrapping_add(off);
        // SAFETY: `src..src + dst.len()` lies inside the mapping (checked
        // above), which outlives `self`; `dst` is a distinct local buffer.
        unsafe { volatile_copy_in(src, dst) };
        true
    }

    /// Copies `src` into the region at `off`. Returns `false` (copying
    /// nothing) if the range is out of bounds.
    #[inline]
    pub(crate) fn write(&self, off: usize, src: &[u8]) -> bool {
        if self.check(off, src.len()).is_none() {
            return false;
        }
        let dst = self.base.as_ptr().wrapping_add(off);
        // SAFETY: `dst..dst + src.len()` lies inside the writable mapping
        // (checked above); `src` is a distinct local buffer.
        unsafe { volatile_copy_out(src, dst) };
        true
    }

    /// The bytes `[off, off + len)` as a [`View`], if they lie inside.
    pub(crate) fn view(&self, off: usize, len: usize) -> Option<View<'a>> {
        Some(View {
            region: self.sub(off, len)?,
        })
    }

    /// The bytes `[off, off + len)` as a [`ViewMut`], if they lie inside.
    pub(crate) fn view_mut(&self, off: usize, len: usize) -> Option<ViewMut<'a>> {
        Some(ViewMut {
            region: self.sub(off, len)?,
        })
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

/// Copies `out.len()` bytes from the memory of `words` (message words in
/// shared memory: the data of a lossless pub/sub slot) with the volatile
/// copy of [`Region::read`], 32 bytes per load, instead of one relaxed
/// atomic load per word. `false`, copying nothing, if they do not fit.
#[cfg(not(mapshare_loom))] // loom's atomics are not plain memory
#[inline]
pub(crate) fn load_from_words(words: &[crate::primitive::AtomicU64], out: &mut [u8]) -> bool {
    if words.len().checked_mul(8).is_none_or(|n| out.len() > n) {
        return false;
    }
    let src = words.as_ptr().cast::<u8>();
    // SAFETY: `src..src + out.len()` lies inside `words` (checked above),
    // borrowed for the call; an `AtomicU64` is an `UnsafeCell` over 8 plain
    // bytes, so reading them through a pointer derived from a shared
    // reference is allowed. The caller's protocol guarantees that nobody in
    // this process writes them meanwhile (a lossless ring: the publisher
    // never writes a slot a paced subscriber has not passed), so there is
    // no data race in the Rust model; the loads are volatile because a peer
    // in another process that breaks the protocol could still write them,
    // and then we copy out what is there (every byte value is valid),
    // which the caller validates. `out` is a distinct local buffer.
    unsafe { volatile_copy_in(src, out) };
    true
}

/// The inverse of [`load_from_words`]: copies `bytes` into the memory of
/// `words` with volatile stores. `false`, storing nothing, if they do not
/// fit. Bytes of the last word past `bytes.len()` are left as they were.
#[cfg(not(mapshare_loom))]
#[inline]
pub(crate) fn store_to_words(words: &[crate::primitive::AtomicU64], bytes: &[u8]) -> bool {
    if words.len().checked_mul(8).is_none_or(|n| bytes.len() > n) {
        return false;
    }
    let dst = words.as_ptr().cast::<u8>().cast_mut();
    // SAFETY: `dst..dst + bytes.len()` lies inside `words` (checked above);
    // writing through a shared reference is allowed because `AtomicU64` is
    // an `UnsafeCell`; the caller's protocol guarantees nobody in this
    // process reads or writes them meanwhile (the slot is the publisher's
    // until it publishes it); volatile, since other processes map these
    // bytes; `bytes` is a distinct local buffer.
    unsafe { volatile_copy_out(bytes, dst) };
    true
}

/// Copies `dst.len()` bytes from `src` with volatile loads, 32 bytes per
/// load where the CPU has AVX2 (checked once, then a cached flag), else 16
/// (SSE2, every x86_64), else 8.
///
/// # Safety
/// - `src..src + dst.len()` is valid for reads (it may be written by other
///   processes meanwhile: every byte value is valid);
/// - `dst` does not overlap it.
#[inline]
unsafe fn volatile_copy_in(src: *const u8, dst: &mut [u8]) {
    // SAFETY: the caller's contract; `dst` is valid for its length.
    unsafe { volatile_copy_in_raw(src, dst.as_mut_ptr(), dst.len()) }
}

/// As [`volatile_copy_in`], into `n` possibly uninitialised bytes at `d`.
///
/// # Safety
/// - `src..src + n` valid for reads, `d..d + n` valid for writes, not
///   overlapping.
#[inline]
unsafe fn volatile_copy_in_raw(src: *const u8, d: *mut u8, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if n >= 64 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the caller's contract; AVX2 is present (checked above).
        return unsafe { avx2::copy_in(src, d, n) };
    }
    // SAFETY: the caller's contract.
    unsafe { copy_in::<Chunk>(src, d, n) }
}

/// Copies `src` to `dst` with volatile stores (chunks as for
/// [`volatile_copy_in`]).
///
/// # Safety
/// - `dst..dst + src.len()` is valid for writes;
/// - `src` does not overlap it.
#[inline]
unsafe fn volatile_copy_out(src: &[u8], dst: *mut u8) {
    #[cfg(target_arch = "x86_64")]
    if src.len() >= 64 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the caller's contract; AVX2 is present (checked above).
        return unsafe { avx2::copy_out(src, dst) };
    }
    // SAFETY: the caller's contract.
    unsafe { copy_out::<Chunk>(src, dst) }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::__m256i;

    /// # Safety
    /// As `volatile_copy_in`, and the CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn copy_in(src: *const u8, d: *mut u8, n: usize) {
        // SAFETY: the caller's contract.
        unsafe { super::copy_in::<__m256i>(src, d, n) }
    }

    /// # Safety
    /// As `volatile_copy_out`, and the CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn copy_out(src: &[u8], dst: *mut u8) {
        // SAFETY: the caller's contract.
        unsafe { super::copy_out::<__m256i>(src, dst) }
    }
}

/// The volatile copy in of `n` bytes from `src` to `d`, in chunks of `T`
/// (a plain-data register type).
///
/// # Safety
/// - `src..src + n` valid for reads, `d..d + n` valid for writes (it may be
///   uninitialised), not overlapping;
/// - `T` is valid for every bit pattern.
#[inline(always)]
unsafe fn copy_in<T: Copy>(src: *const u8, d: *mut u8, n: usize) {
    let chunk = std::mem::size_of::<T>();
    let mut i = 0;
    // Bytes up to the chunk alignment of the source.
    while i < n && (src as usize).wrapping_add(i) % chunk != 0 {
        // SAFETY: `i < n`: inside the source range (caller's contract).
        let b = unsafe { src.wrapping_add(i).read_volatile() };
        // SAFETY: `i < n`: inside the destination (caller's contract).
        unsafe { d.wrapping_add(i).write(b) };
        i += 1;
    }
    while i + chunk <= n {
        let p = src.wrapping_add(i).cast::<T>();
        // SAFETY: `p` is chunk-aligned (loop above) and its bytes lie inside
        // the source range; any bit pattern is a valid `T`.
        let v = unsafe { p.read_volatile() };
        // SAFETY: the chunk at `d + i` lies inside the destination;
        // unaligned store.
        unsafe { d.wrapping_add(i).cast::<T>().write_unaligned(v) };
        i += chunk;
    }
    while i < n {
        // SAFETY: `i < n`: inside the source range (caller's contract).
        let b = unsafe { src.wrapping_add(i).read_volatile() };
        // SAFETY: `i < n`: inside the destination (caller's contract).
        unsafe { d.wrapping_add(i).write(b) };
        i += 1;
    }
}

/// The volatile copy out, in chunks of `T`.
///
/// # Safety
/// As [`volatile_copy_out`]; `T` is valid for every bit pattern.
#[inline(always)]
unsafe fn copy_out<T: Copy>(src: &[u8], dst: *mut u8) {
    let chunk = std::mem::size_of::<T>();
    let n = src.len();
    let s = src.as_ptr();
    let mut i = 0;
    while i < n && (dst as usize).wrapping_add(i) % chunk != 0 {
        // SAFETY: `i < n`: inside the destination range (caller's contract).
        unsafe { dst.wrapping_add(i).write_volatile(src[i]) };
        i += 1;
    }
    while i + chunk <= n {
        // SAFETY: the chunk at `s + i` lies inside `src`; unaligned load.
        let v = unsafe { s.wrapping_add(i).cast::<T>().read_unaligned() };
        let p = dst.wrapping_add(i).cast::<T>();
        // SAFETY: `p` is chunk-aligned (loop above), its bytes inside the
        // destination range.
        unsafe { p.write_volatile(v) };
        i += chunk;
    }
    while i < n {
        // SAFETY: `i < n`: inside the destination range (caller's contract).
        unsafe { dst.wrapping_add(i).write_volatile(src[i]) };
        i += 1;
    }
}

/// The unit of a volatile copy without AVX2: one SSE register on x86_64.
#[cfg(target_arch = "x86_64")]
type Chunk = core::arch::x86_64::__m128i;
#[cfg(not(target_arch = "x86_64"))]
type Chunk = u64;

/// Bytes in shared memory that the protocol has lent us (a received
/// message in its slot), reached only by copies: nothing here can hand
/// safe code a slice whose bytes change under it.
///
/// The bytes are untrusted: a peer breaking the protocol may rewrite them
/// at any moment. Every method copies out what is there at that instant;
/// validate what you copied, not what you saw earlier.
///
/// Not `Clone`: a view lent by a [`Sample`](crate::Sample) cannot be kept
/// after the sample frees its slot (a copy would then read bytes the
/// sender is already rewriting), and a slice from [`View::as_slice`] lives
/// no longer than the sample.
pub struct View<'a> {
    region: Region<'a>,
}

/// Bytes in shared memory lent to us for writing (a loaned slot), reached
/// only by copies. See [`View`].
pub struct ViewMut<'a> {
    region: Region<'a>,
}

impl std::fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("len", &self.len()).finish()
    }
}

impl std::fmt::Debug for ViewMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewMut").field("len", &self.len()).finish()
    }
}

impl<'a> View<'a> {
    /// A view of process-local bytes (a validated copy lent as a sample).
    pub(crate) fn local(buf: &'a [u8]) -> View<'a> {
        View {
            region: Region {
                base: NonNull::from(buf).cast(),
                len: buf.len(),
                _life: PhantomData,
            },
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }

    /// Copies `dst.len()` bytes starting at `offset` into `dst`; `false`
    /// (copying nothing) if they do not lie inside.
    pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> bool {
        self.region.read(offset, dst)
    }

    /// Copies all of it into `dst`.
    ///
    /// # Panics
    /// If `dst.len()` differs from [`View::len`] (as `slice::copy_from_slice`).
    pub fn copy_to_slice(&self, dst: &mut [u8]) {
        assert_eq!(
            dst.len(),
            self.len(),
            "destination length must equal the view's"
        );
        self.region.read(0, dst);
    }

    /// A copy of all of it.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len()];
        self.region.read(0, &mut v);
        v
    }

    /// Visits all of it in order, copied a piece at a time (at most 4 KiB,
    /// pieces a multiple of 8 bytes but the last) into a buffer on the stack:
    /// one pass over the message, for consumers that read every byte once
    /// (a checksum, a write to a file) and need no copy of the whole.
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8])) {
        // Not zeroed: the copy initialises exactly what `f` sees (zeroing
        // 4 KiB per message halved the throughput of 4 KiB messages).
        let mut buf = std::mem::MaybeUninit::<[u8; 4096]>::uninit();
        let mut off = 0;
        while off < self.len() {
            let n = (self.len() - off).min(4096);
            let src = self.region.base.as_ptr().wrapping_add(off);
            let dst = buf.as_mut_ptr().cast::<u8>();
            // SAFETY: `src..src + n` lies inside the view (`off + n <= len`),
            // which lies inside a mapping that outlives 'a; `dst` is our
            // 4096-byte local buffer and `n <= 4096`.
            unsafe { volatile_copy_in_raw(src, dst, n) };
            // SAFETY: the copy above initialised the first `n` bytes.
            let piece = unsafe { std::slice::from_raw_parts(dst, n) };
            f(piece);
            off += n;
        }
    }

    /// A copy of the plain-data value at `offset` (any alignment), if it
    /// lies inside. Integers are stored in this machine's byte order; use
    /// `u32::from_le` and friends for a fixed one.
    pub fn read_pod<T: bytemuck::Pod>(&self, offset: usize) -> Option<T> {
        self.region.read_pod(offset)
    }

    /// The byte at `offset`.
    pub fn u8_at(&self, offset: usize) -> Option<u8> {
        self.read_pod(offset)
    }

    /// The little-endian `u16` at `offset`.
    pub fn u16_le_at(&self, offset: usize) -> Option<u16> {
        self.read_pod(offset).map(u16::from_le)
    }

    /// The little-endian `u32` at `offset`.
    pub fn u32_le_at(&self, offset: usize) -> Option<u32> {
        self.read_pod(offset).map(u32::from_le)
    }

    /// The little-endian `u64` at `offset`.
    pub fn u64_le_at(&self, offset: usize) -> Option<u64> {
        self.read_pod(offset).map(u64::from_le)
    }

    /// The bytes as a slice, in place (zero-copy).
    ///
    /// # Safety
    /// No process may write these bytes while the slice lives. The protocol
    /// guarantees that for peers that follow it (the sender has committed
    /// the slot and does not touch it again until it is released); calling
    /// this asserts that every process with write access to the segment
    /// follows the protocol. A peer that breaks it would make the slice
    /// change under safe code: undefined behaviour.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: in bounds of a mapping that outlives 'a (built by
        // `Region::sub`); unchanging while the slice lives, as the caller
        // promises.
        unsafe { std::slice::from_raw_parts(self.region.base.as_ptr(), self.region.len) }
    }
}

impl<'a> ViewMut<'a> {
    /// A writable view of process-local bytes (a loan staged in private
    /// memory, copied into shared memory on commit).
    pub(crate) fn local(buf: &'a mut [u8]) -> ViewMut<'a> {
        let len = buf.len();
        ViewMut {
            region: Region {
                base: NonNull::from(buf).cast(),
                len,
                _life: PhantomData,
            },
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }

    /// The same bytes, for as long as `self` is borrowed: how a loan lends
    /// its view without letting it out (through a `&mut ViewMut`, safe code
    /// could swap two loans' views, and write a slot after its commit).
    pub(crate) fn reborrow(&mut self) -> ViewMut<'_> {
        ViewMut {
            region: self.region,
        }
    }

    /// The same bytes, for reading back.
    pub fn as_view(&self) -> View<'_> {
        View {
            region: self.region,
        }
    }

    /// Copies `src` into the bytes at `offset`; `false` (copying nothing)
    /// if it does not fit.
    pub fn write_at(&mut self, offset: usize, src: &[u8]) -> bool {
        self.region.write(offset, src)
    }

    /// Copies the plain-data value to `offset` (any alignment); `false` if
    /// it does not fit.
    pub fn write_pod<T: bytemuck::Pod>(&mut self, offset: usize, value: &T) -> bool {
        self.region.write_pod(offset, value)
    }

    /// Copies `dst.len()` bytes starting at `offset` into `dst`; `false`
    /// if they do not lie inside.
    pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> bool {
        self.region.read(offset, dst)
    }

    /// The bytes as a mutable slice, in place (zero-copy write).
    ///
    /// # Safety
    /// No other process may read or write these bytes while the slice
    /// lives. The protocol guarantees that for peers that follow it (the
    /// slot is ours until we commit); calling this asserts that every
    /// process with access to the segment follows it.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: in bounds of a writable mapping that outlives 'a; exclusive
        // while the slice lives, as the caller promises.
        unsafe { std::slice::from_raw_parts_mut(self.region.base.as_ptr(), self.region.len) }
    }
}

/// The writing methods of a loan type whose slot view is its field
/// `view`: a loan derefs to its [`ViewMut`] for reading only, and lends it
/// for writing through these, which cannot let the view escape the loan
/// (no `DerefMut`: `std::mem::swap` of two loans' views would leave one
/// loan's slot writable after its commit).
macro_rules! loan_writes {
    ($ty:ident) => {
        impl $ty<'_> {
            /// Copies `src` into the slot at `offset`; `false` (copying
            /// nothing) if it does not fit.
            pub fn write_at(&mut self, offset: usize, src: &[u8]) -> bool {
                self.view.write_at(offset, src)
            }

            /// Copies the plain-data value into the slot at `offset` (any
            /// alignment); `false` if it does not fit.
            pub fn write_pod<T: bytemuck::Pod>(&mut self, offset: usize, value: &T) -> bool {
                self.view.write_pod(offset, value)
            }

            /// The slot for writing, borrowed from the loan (for
            /// [`ViewMut::as_mut_slice`]; it cannot outlive the loan).
            pub fn view_mut(&mut self) -> $crate::region::ViewMut<'_> {
                self.view.reborrow()
            }
        }
    };
}
pub(crate) use loan_writes;

/// A heap-backed region for unit tests and Miri: the production copy and
/// slot paths run on it unchanged.
#[cfg(test)]
pub(crate) struct HeapRegion {
    ptr: NonNull<u8>,
    len: usize,
}

#[cfg(test)]
impl HeapRegion {
    const ALIGN: usize = 4096;

    /// `len` zeroed bytes, 4096-aligned.
    pub(crate) fn new(len: usize) -> HeapRegion {
        let layout = std::alloc::Layout::from_size_align(len.max(1), Self::ALIGN).expect("layout");
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        HeapRegion {
            ptr: NonNull::new(p).expect("allocation"),
            len,
        }
    }

    /// The whole allocation as a region.
    pub(crate) fn region(&self) -> Region<'_> {
        Region {
            base: self.ptr,
            len: self.len,
            _life: PhantomData,
        }
    }
}

#[cfg(test)]
impl Drop for HeapRegion {
    fn drop(&mut self) {
        let layout =
            std::alloc::Layout::from_size_align(self.len.max(1), Self::ALIGN).expect("layout");
        // SAFETY: allocated in `new` with this very layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_copies_round_trip_every_offset_and_length() {
        let heap = HeapRegion::new(256);
        let r = heap.region();
        for off in 0..40 {
            for len in 0..70 {
                let src: Vec<u8> = (0..len).map(|i| (i * 7 + off) as u8).collect();
                assert!(r.write(off, &src));
                let mut back = vec![0u8; len];
                assert!(r.read(off, &mut back));
                assert_eq!(back, src, "off {off} len {len}");
            }
        }
        assert!(!r.read(250, &mut [0u8; 7]));
        assert!(!r.write(usize::MAX, &[1]));
    }

    #[test]
    fn views_copy_and_bounds_check() {
        let heap = HeapRegion::new(128);
        let r = heap.region();
        let mut w = r.view_mut(8, 16).unwrap();
        assert!(w.write_at(0, &0x0102_0304u32.to_le_bytes()));
        assert!(!w.write_at(14, &[0; 4]));
        assert!(w.write_pod(8, &7u64));
        let v = r.view(8, 16).unwrap();
        assert_eq!(v.u32_le_at(0), Some(0x0102_0304));
        assert_eq!(v.read_pod::<u64>(8), Some(7));
        assert_eq!(v.u64_le_at(9), None);
        assert_eq!(v.to_vec().len(), 16);
        let large = HeapRegion::new(9000);
        let pattern: Vec<u8> = (0..9000u32).map(|i| (i * 7) as u8).collect();
        assert!(large.region().write(0, &pattern));
        for len in [0, 1, 128, 256, 257, 4096, 4097, 9000] {
            let v = large.region().view(0, len).unwrap();
            let (mut seen, mut pieces) = (Vec::new(), Vec::new());
            v.for_each_chunk(|c| {
                pieces.push(c.len());
                seen.extend_from_slice(c);
            });
            assert_eq!(seen, &pattern[..len], "len {len}");
            assert!(pieces.iter().all(|&p| p <= 4096), "{pieces:?}");
        }
        assert!(r.view(120, 16).is_none());
    }
}
