//! `mapshare_event_t`: a named auto- or manual-reset event.

use std::ffi::c_char;

use mapshare::{Event, EventMode};

use crate::options::{construct, Accepts, How, Parsed};
use crate::status::{guard, mapshare_status, Result};
use crate::util::{self, form, Form};

/// An event handle (opaque). Thread-safe. Free it with
/// `mapshare_event_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_event_t {
    ev: Event,
}

const ACCEPTS: Accepts = Accepts {
    manual_reset: true,
    capacity: false,
    max_message: false,
    senders: false,
    policy: false,
    history: false,
};

fn make(p: &Parsed, name: &str, how: How) -> Result<mapshare_event_t> {
    let b = p.base::<Event>(name).manual_reset(p.manual_reset());
    Ok(mapshare_event_t {
        ev: crate::options::attach(&b, how)?,
    })
}

/// Creates the event `name`, clear. Options: `manual_reset` (default
/// false: one successful wait consumes the signal), `persistent`, ...;
/// `opts` may be NULL. On failure `*out` is NULL.
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL with `opts->file` set);
///   `opts` is NULL or a valid options struct; `out` points to a writable
///   `mapshare_event_t *`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_event_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "event", ACCEPTS, How::Create, make) }
}

/// Opens the existing event `name` (its mode is the creator's).
///
/// # Safety
/// As `mapshare_event_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_open(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_event_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "event", ACCEPTS, How::Open, make) }
}

/// Opens the event `name`, creating it with `opts` if needed.
///
/// # Safety
/// As `mapshare_event_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_open_or_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_event_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "event", ACCEPTS, How::OpenOrCreate, make) }
}

/// Sets the event and wakes its waiters (`MAPSHARE_INVALID_ARGUMENT` for
/// NULL).
///
/// # Safety
/// - `e` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_notify(e: *mut mapshare_event_t) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        unsafe { util::handle(e, "event") }?.ev.notify();
        Ok(())
    })
}

/// Clears the event.
///
/// # Safety
/// - `e` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_reset(e: *mut mapshare_event_t) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        unsafe { util::handle(e, "event") }?.ev.reset();
        Ok(())
    })
}

/// Waits for the event (consuming the signal of an auto-reset event):
/// `timeout_ns` 0 tries once (`MAPSHARE_EMPTY` when not set),
/// `MAPSHARE_FOREVER` waits as long as it takes, anything else at most
/// that long (`MAPSHARE_TIMEOUT`). `MAPSHARE_FAULT` if a peer shrank the
/// segment.
///
/// # Safety
/// - `e` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_wait(
    e: *mut mapshare_event_t,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(e, "event") }?;
        match form(timeout_ns) {
            Form::Try => h.ev.try_wait()?,
            Form::Forever => h.ev.wait()?,
            Form::Timeout(d) => h.ev.wait_timeout(d)?,
        }
        Ok(())
    })
}

/// Whether the event is set, without consuming it (false for NULL).
///
/// # Safety
/// - `e` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_is_set(e: *const mapshare_event_t) -> bool {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(e, false, |h| h.ev.is_set()) }
}

/// Whether the event is manual-reset (chosen by its creator; false for
/// NULL).
///
/// # Safety
/// - `e` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_is_manual_reset(e: *const mapshare_event_t) -> bool {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(e, false, |h| h.ev.mode() == EventMode::ManualReset) }
}

/// Detaches and frees the handle. NULL is ignored.
///
/// # Safety
/// - `e` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_event_close(e: *mut mapshare_event_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(e) };
}
