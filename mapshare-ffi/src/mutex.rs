//! `mapshare_mutex_t`: a robust named mutex, locked and unlocked by two
//! calls (the Rust guard lives in the handle between them).

use std::ffi::c_char;
use std::sync::Mutex as StdMutex;
use std::thread::ThreadId;

use mapshare::{LockError, LockTimeoutError, Mutex, MutexGuard, TryLockError};

use crate::options::{construct, Accepts, How, Parsed};
use crate::status::{
    guard, guard_value, lock_status, mapshare_status, try_lock_status, Error, Result, S,
};
use crate::util::{self, form, Form};

/// A mutex handle (opaque). Thread-safe: while one thread holds the lock
/// through it, another thread's `mapshare_mutex_lock` on the same handle
/// waits as a second process would. Free it with [`mapshare_mutex_close`].
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_mutex_t {
    /// The lock held through this handle, and the thread that took it.
    /// Declared first: dropped before the mutex it borrows.
    held: StdMutex<Option<(MutexGuard<'static>, ThreadId)>>,
    /// A `Box<Mutex>` turned into a pointer when the handle was made, freed
    /// by the handle's `Drop` once `held` is empty.
    mutex: *const Mutex,
}

impl mapshare_mutex_t {
    fn new(m: Mutex) -> mapshare_mutex_t {
        mapshare_mutex_t {
            held: StdMutex::new(None),
            mutex: Box::into_raw(Box::new(m)),
        }
    }

    fn mutex(&self) -> &'static Mutex {
        // SAFETY: `mutex` comes from `Box::into_raw` in `new` and is freed
        // only in `Drop`, after every guard borrowing it is gone; a guard
        // and every other use of the reference live in `held` or in one
        // call through the handle, and the handle is not dropped while it
        // is in use (the close contract). So the reference, though typed
        // 'static, is valid for as long as it is used.
        unsafe { &*self.mutex }
    }
}

impl Drop for mapshare_mutex_t {
    fn drop(&mut self) {
        // Releases a lock held through this handle (the guard's drop).
        drop(util::lock(&self.held).take());
        // SAFETY: from `Box::into_raw` in `new`, freed only here, once; the
        // guard that borrowed it was dropped just above.
        drop(unsafe { Box::from_raw(self.mutex.cast_mut()) });
    }
}

const ACCEPTS: Accepts = Accepts {
    capacity: false,
    max_message: false,
    senders: false,
    policy: false,
    manual_reset: false,
};

fn make(p: &Parsed, name: &str, how: How) -> Result<mapshare_mutex_t> {
    let m: Mutex = crate::options::attach(&p.base(name), how)?;
    Ok(mapshare_mutex_t::new(m))
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
/// As [`mapshare_mutex_create`].
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
/// As [`mapshare_mutex_create`].
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
/// then [`mapshare_mutex_unlock`]. A holder killed at any moment never
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
    let mut died = false;
    let status = guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(m, "mutex") }?;
        let me = std::thread::current().id();
        if matches!(&*util::lock(&h.held), Some((_, t)) if *t == me) {
            return Err(Error::invalid(
                "this thread already holds the mutex through this handle (not recursive)",
            ));
        }
        // Not holding `held` while waiting: the holder unlocks through it.
        let mutex = h.mutex();
        let guard = match form(timeout_ns) {
            Form::Try => match mutex.try_lock() {
                Ok(g) => g,
                Err(TryLockError::OwnerDied(g)) => {
                    died = true;
                    g
                }
                Err(e) => return Err(try_lock_status(&e)),
            },
            Form::Forever => match mutex.lock() {
                Ok(g) => g,
                Err(LockError::OwnerDied(g)) => {
                    died = true;
                    g
                }
                Err(e) => return Err(Error::new(S::MAPSHARE_FAULT, e.to_string())),
            },
            Form::Timeout(d) => match mutex.lock_timeout(d) {
                Ok(g) => g,
                Err(LockTimeoutError::OwnerDied(g)) => {
                    died = true;
                    g
                }
                Err(e) => return Err(lock_status(&e)),
            },
        };
        *util::lock(&h.held) = Some((guard, me));
        Ok(())
    });
    if status == S::MAPSHARE_OK && died {
        crate::status::set_last_error(
            "previous lock owner died while holding the lock; the lock is held now",
        );
        return S::MAPSHARE_OWNER_DIED;
    }
    status
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
        let h = unsafe { util::handle(m, "mutex") }?;
        let held = util::lock(&h.held).take();
        match held {
            Some((g, _)) => {
                drop(g);
                Ok(())
            }
            None => Err(Error::invalid("the mutex is not held through this handle")),
        }
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
    guard_value((), || drop(unsafe { util::take(m) }));
}
