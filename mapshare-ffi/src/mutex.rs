//! `mapshare_mutex_t`: a robust named mutex, locked and unlocked by two
//! calls (the Rust guard lives in the handle between them).

use std::ffi::c_char;

use mapshare::Mutex;

use crate::locked::Locked;
use crate::options::{construct, Accepts, How, Parsed};
use crate::status::{guard, mapshare_status, Result};
use crate::util;

/// A mutex handle (opaque). Thread-safe: while one thread holds the lock
/// through it, another thread's `mapshare_mutex_lock` on the same handle
/// waits as a second process would. Free it with `mapshare_mutex_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_mutex_t {
    m: Locked<Mutex>,
}

const ACCEPTS: Accepts = Accepts {
    capacity: false,
    max_message: false,
    senders: false,
    policy: false,
    manual_reset: false,
    history: false,
};

fn make(p: &Parsed, name: &str, how: How) -> Result<mapshare_mutex_t> {
    let m: Mutex = crate::options::attach(&p.base(name), how)?;
    Ok(mapshare_mutex_t { m: Locked::new(m) })
}

/// Creates the mutex `name` (unlocked). Options: `persistent`, `mode`,
/// `file`, ...; `opts` may be NULL. On failure `*out` is NULL.
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL with `opts->file` set);
///   `opts` is NULL or a valid options struct; `out` points to a writable
///   `mapshare_mutex_t *`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mutex_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_mutex_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "mutex", ACCEPTS, How::Create, make) }
}

/// Opens the existing mutex `name`.
///
/// # Safety
/// As `mapshare_mutex_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mutex_open(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_mutex_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "mutex", ACCEPTS, How::Open, make) }
}

/// Opens the mutex `name`, creating it if needed.
///
/// # Safety
/// As `mapshare_mutex_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mutex_open_or_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_mutex_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "mutex", ACCEPTS, How::OpenOrCreate, make) }
}

/// Locks the mutex: `timeout_ns` 0 tries once (`MAPSHARE_WOULD_BLOCK`
/// when a live process holds it), `MAPSHARE_FOREVER` waits as long as it
/// takes, anything else at most that long (`MAPSHARE_TIMEOUT`).
///
/// `MAPSHARE_OK` and `MAPSHARE_OWNER_DIED` both mean the lock IS held on
/// return; `MAPSHARE_OWNER_DIED` says the previous holder died holding
/// it (killed, say), so the data it guards may be half-updated: repair,
/// then `mapshare_mutex_unlock`. A holder killed at any moment never
/// blocks the others. `MAPSHARE_INVALID_ARGUMENT` if the calling thread
/// already holds it through this handle (it is not recursive);
/// `MAPSHARE_FAULT` if a peer shrank the segment.
///
/// # Safety
/// - `m` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mutex_lock(
    m: *mut mapshare_mutex_t,
    timeout_ns: u64,
) -> mapshare_status {
    // SAFETY: the caller promises a live handle (NULL is refused). Taking
    // the reference cannot panic; the lock itself runs in the guard.
    match unsafe { util::handle(m, "mutex") } {
        Ok(h) => h.m.lock(timeout_ns),
        Err(e) => guard(|| Err(e)),
    }
}

/// Unlocks the mutex (normally from the thread that locked it).
/// `MAPSHARE_INVALID_ARGUMENT` if it is not held through this handle.
///
/// # Safety
/// - `m` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mutex_unlock(m: *mut mapshare_mutex_t) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        unsafe { util::handle(m, "mutex") }?.m.unlock()
    })
}

/// Frees the handle, unlocking first if the lock is held through it.
/// NULL is ignored.
///
/// # Safety
/// - `m` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mutex_close(m: *mut mapshare_mutex_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(m) };
}
