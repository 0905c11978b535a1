//! `mapshare_mailbox_t`: one byte message at a time (what `mapshare send`
//! and `mapshare recv` use).

use std::ffi::{c_char, c_void};
use std::sync::Mutex as StdMutex;

use mapshare::Mailbox;

use crate::options::{construct, Accepts, How, Parsed};
use crate::status::{guard, mapshare_status, Error, Result, S};
use crate::util::{self, form, Form};

/// A mailbox handle (opaque). Thread-safe: any thread may send or receive
/// through it. Free it with `mapshare_mailbox_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_mailbox_t {
    mb: Mailbox,
    /// A message taken from the segment that did not fit the caller's
    /// buffer (`MAPSHARE_TOO_SMALL`): the next receive returns it.
    pending: StdMutex<Option<Vec<u8>>>,
}

const ACCEPTS: Accepts = Accepts {
    max_message: true,
    capacity: false,
    senders: false,
    policy: false,
    manual_reset: false,
    history: false,
};

fn make(p: &Parsed, name: &str, how: How) -> Result<mapshare_mailbox_t> {
    let b = p.max_message(p.base::<Mailbox>(name));
    Ok(mapshare_mailbox_t {
        mb: crate::options::attach(&b, how)?,
        pending: StdMutex::new(None),
    })
}

/// Creates the mailbox `name` (fails with `MAPSHARE_ALREADY_EXISTS` if it
/// exists). Options: `max_message` (default 4096), `persistent`, `mode`,
/// `file`, ...; `opts` may be NULL. On success `*out` is a new handle;
/// on failure `*out` is NULL.
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL, refused, unless
///   `opts->file` is set); `opts` is NULL or a valid options struct;
///   `out` points to a writable `mapshare_mailbox_t *`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mailbox_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_mailbox_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "mailbox", ACCEPTS, How::Create, make) }
}

/// Opens the existing mailbox `name` (its size is the segment's own).
/// `MAPSHARE_NOT_FOUND` if there is none, `MAPSHARE_KIND_MISMATCH` if it
/// is not a mailbox.
///
/// # Safety
/// As `mapshare_mailbox_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mailbox_open(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_mailbox_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "mailbox", ACCEPTS, How::Open, make) }
}

/// Opens the mailbox `name`, creating it with `opts` if it does not exist.
///
/// # Safety
/// As `mapshare_mailbox_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mailbox_open_or_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_mailbox_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "mailbox", ACCEPTS, How::OpenOrCreate, make) }
}

/// Stores the `len` bytes at `data`, waiting for the mailbox to be empty:
/// `timeout_ns` 0 tries once (`MAPSHARE_FULL` if a message is waiting),
/// `MAPSHARE_FOREVER` waits as long as it takes, anything else at most
/// that long (`MAPSHARE_TIMEOUT`). `MAPSHARE_TOO_LARGE` above the
/// mailbox's `max_message` (nothing is cut); `MAPSHARE_FAULT` if a peer
/// shrank the segment. The bytes are copied: `data` is the caller's again
/// on return.
///
/// # Safety
/// - `mb` is a live handle; `data` points to `len` readable bytes (NULL
///   allowed when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn mapshare_mailbox_send(
    mb: *mut mapshare_mailbox_t,
    data: *const c_void,
    len: usize,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(mb, "mailbox") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let msg = unsafe { util::bytes(data.cast(), len) }?;
        match form(timeout_ns) {
            Form::Try => h.mb.try_send(msg)?,
            Form::Forever => h.mb.send(msg)?,
            Form::Timeout(d) => h.mb.send_timeout(msg, d)?,
        }
        Ok(())
    })
}

/// Takes the message into `buf` (`cap` bytes) and writes its length to
/// `*out_len`, waiting for one: `timeout_ns` 0 tries once
/// (`MAPSHARE_EMPTY`), `MAPSHARE_FOREVER` waits as long as it takes,
/// anything else at most that long (`MAPSHARE_TIMEOUT`).
///
/// A message longer than `cap` gives `MAPSHARE_TOO_SMALL` with its length
/// in `*out_len`, and is not lost: it was already taken from the segment
/// (a mailbox has no peek), so this handle keeps it and the next
/// `mapshare_mailbox_recv` on it returns it first. Pass `buf = NULL, cap =
/// 0` to learn the length of the next message that way.
///
/// # Safety
/// - `mb` is a live handle; `buf` points to `cap` writable bytes (NULL
///   allowed when `cap` is 0); `out_len` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mailbox_recv(
    mb: *mut mapshare_mailbox_t,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(mb, "mailbox") }?;
        util::required(out_len, "out_len")?;
        // SAFETY: the caller promises `cap` writable bytes at `buf`.
        let buf = unsafe { util::buffer(buf.cast(), cap) }?;
        let mut pending = util::lock(&h.pending);
        let msg = match pending.take() {
            Some(m) => m,
            None => match form(timeout_ns) {
                Form::Try => h.mb.try_recv()?,
                Form::Forever => h.mb.recv()?,
                Form::Timeout(d) => h.mb.recv_timeout(d)?,
            },
        };
        // SAFETY: `out_len` is non-NULL (checked) and writable.
        unsafe { util::put(out_len, msg.len()) };
        if msg.len() > buf.len() {
            let needed = msg.len();
            *pending = Some(msg);
            return Err(Error::new(
                S::MAPSHARE_TOO_SMALL,
                format!("message of {needed} bytes, buffer of {cap}; kept for the next receive"),
            ));
        }
        buf[..msg.len()].copy_from_slice(&msg);
        Ok(())
    })
}

/// The largest message the mailbox takes, in bytes (0 for a NULL handle).
///
/// # Safety
/// - `mb` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mailbox_max_message(mb: *const mapshare_mailbox_t) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(mb, 0, |h| h.mb.max_message()) }
}

/// Makes the mailbox outlive its last process (`true`), or go with it
/// (`false`), as `mapshare send` does before storing.
///
/// # Safety
/// - `mb` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mailbox_set_persistent(
    mb: *mut mapshare_mailbox_t,
    persistent: bool,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(mb, "mailbox") }?;
        Ok(h.mb.set_persistent(persistent)?)
    })
}

/// Detaches and frees the handle (a message it kept after
/// `MAPSHARE_TOO_SMALL` is dropped with it). The last process out removes
/// a non-persistent mailbox. NULL is ignored.
///
/// # Safety
/// - `mb` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_mailbox_close(mb: *mut mapshare_mailbox_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(mb) };
}
