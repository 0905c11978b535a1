//! Reading what C hands us (names, buffers, handles, timeouts) and writing
//! the out parameters. Every raw-pointer access of the crate is here or in
//! the `close` functions.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use crate::status::{Error, Result};

/// `timeout_ns` meaning "wait as long as it takes".
pub const MAPSHARE_FOREVER: u64 = u64::MAX;

/// How long a call may wait, from its `timeout_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// `0`: one look, no waiting.
    Try,
    /// `MAPSHARE_FOREVER`.
    Forever,
    /// Anything else, in nanoseconds (monotonic clock).
    Timeout(Duration),
}

pub(crate) fn form(timeout_ns: u64) -> Form {
    match timeout_ns {
        0 => Form::Try,
        MAPSHARE_FOREVER => Form::Forever,
        ns => Form::Timeout(Duration::from_nanos(ns)),
    }
}

/// The name behind a C string, as UTF-8.
///
/// # Safety
/// - `p` is NULL or points to a NUL-terminated string that stays valid
///   and unchanged for the returned lifetime.
pub(crate) unsafe fn name<'a>(p: *const c_char) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::null("name"));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string
    // valid for 'a.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| {
        Error::new(
            crate::status::S::MAPSHARE_INVALID_NAME,
            format!("invalid segment name {c:?}: not UTF-8"),
        )
    })
}

/// The bytes `(p, len)` C passes in; `p` may be NULL when `len` is 0.
///
/// # Safety
/// - `p` points to `len` readable bytes that stay valid for 'a (or
///   `len == 0`).
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::null("data"));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid("length above PTRDIFF_MAX"));
    }
    // SAFETY: non-NULL, len <= isize::MAX, and the caller promises `len`
    // readable bytes valid for 'a; u8 has no alignment or validity needs.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The writable buffer `(p, cap)` C passes in; `p` may be NULL when `cap`
/// is 0.
///
/// # Safety
/// - `p` points to `cap` writable bytes that nothing else reads or writes
///   for 'a (or `cap == 0`).
pub(crate) unsafe fn buffer<'a>(p: *mut u8, cap: usize) -> Result<&'a mut [u8]> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::null("buf"));
    }
    if cap > isize::MAX as usize {
        return Err(Error::invalid("buffer length above PTRDIFF_MAX"));
    }
    // SAFETY: non-NULL, cap <= isize::MAX, and the caller promises `cap`
    // writable bytes, not aliased, valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, cap) })
}

/// The handle behind a pointer the library returned.
///
/// # Safety
/// - `p` is NULL or a handle this library returned, not yet closed, and
///   not closed while the reference lives.
pub(crate) unsafe fn handle<'a, T>(p: *const T, what: &'static str) -> Result<&'a T> {
    // SAFETY: the caller promises NULL or a live handle (a Box we leaked).
    unsafe { p.as_ref() }.ok_or_else(|| Error::null(what))
}

/// Writes an out parameter, if the caller gave one.
///
/// # Safety
/// - `p` is NULL or points to a writable, aligned `T`.
pub(crate) unsafe fn put<T>(p: *mut T, v: T) {
    // SAFETY: the caller promises NULL or a writable, aligned `T`.
    if let Some(slot) = unsafe { p.as_mut() } {
        *slot = v;
    }
}

/// Checks that a required out parameter is there.
pub(crate) fn required<T>(p: *mut T, what: &'static str) -> Result<()> {
    if p.is_null() {
        Err(Error::null(what))
    } else {
        Ok(())
    }
}

/// Hands a new handle to C: `*out = Box::into_raw(v)`.
///
/// # Safety
/// - `out` is a writable, aligned `*mut T` (checked non-NULL by the caller).
pub(crate) unsafe fn give<T>(out: *mut *mut T, v: T) {
    let p = Box::into_raw(Box::new(v));
    // SAFETY: the caller promises `out` is writable and aligned.
    unsafe { put(out, p) };
}

/// Takes back a handle the library gave out (NULL: nothing).
///
/// # Safety
/// - `p` is NULL or a handle this library returned, not yet closed, and
///   used by no other thread now or later.
pub(crate) unsafe fn take<T>(p: *mut T) -> Option<Box<T>> {
    if p.is_null() {
        None
    } else {
        // SAFETY: a pointer from `give` (Box::into_raw), closed only once,
        // as the caller promises.
        Some(unsafe { Box::from_raw(p) })
    }
}

/// The body of the calls that read one value through a handle
/// (`mapshare_sender_capacity`, ...): `f` on the handle, or `fallback` for
/// NULL and for a panic (caught: none crosses the boundary).
///
/// # Safety
/// - `p` is NULL or a handle this library returned, not yet closed, and
///   not closed during the call.
pub(crate) unsafe fn query<T, R: Copy>(p: *const T, fallback: R, f: impl FnOnce(&T) -> R) -> R {
    crate::status::guard_value(fallback, || {
        // SAFETY: the caller promises NULL or a live handle.
        unsafe { p.as_ref() }.map_or(fallback, f)
    })
}

/// The body of every `mapshare_<kind>_close`: frees a handle the library
/// gave out (NULL: nothing), catching a panic of its drop.
///
/// # Safety
/// - As [`take`]: `p` is NULL or a live handle that no other thread is
///   using, never used again.
pub(crate) unsafe fn close<T>(p: *mut T) {
    // SAFETY: the caller's promise is `take`'s.
    crate::status::guard_value((), || drop(unsafe { take(p) }));
}

/// Locks a handle's inner state; a panic that poisoned it left it in a
/// state that is still memory-safe, so the poison is ignored.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
