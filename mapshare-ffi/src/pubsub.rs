//! `mapshare_publisher_t` / `mapshare_subscriber_t`: one publisher, many
//! subscribers, each at its own pace (what `mapshare pub` / `sub` use).

use std::ffi::{c_char, c_void};
use std::sync::Mutex as StdMutex;

use mapshare::{Publisher, RecvTimeoutError, Subscriber, TryRecvError};

use crate::options::{construct, Accepts, How, Parsed};
use crate::status::{guard, mapshare_status, Error, Result, S};
use crate::util::{self, form, Form};

/// A pub/sub ring's publisher (opaque; one live publisher per ring).
/// Calls through one handle are serialised. Free it with
/// `mapshare_publisher_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_publisher_t {
    p: StdMutex<Publisher>,
}

/// A pub/sub ring's subscriber (opaque). Calls through one handle are
/// serialised. Free it with `mapshare_subscriber_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_subscriber_t {
    s: StdMutex<SubState>,
}

#[derive(Debug)]
struct SubState {
    sub: Subscriber,
    /// The last message received (reused: no allocation once grown).
    buf: Vec<u8>,
    /// `buf` holds a message that did not fit the caller's buffer: the
    /// next receive returns it.
    pending: bool,
}

const ACCEPTS: Accepts = Accepts {
    capacity: true,
    max_message: true,
    policy: true,
    senders: false,
    manual_reset: false,
    history: false,
};

fn make_pub(p: &Parsed, name: &str, how: How) -> Result<mapshare_publisher_t> {
    let b = p.policy(p.max_message(p.capacity(p.base::<Publisher>(name))));
    Ok(mapshare_publisher_t {
        p: StdMutex::new(crate::options::attach(&b, how)?),
    })
}

/// A subscriber also takes `history`.
const SUB_ACCEPTS: Accepts = Accepts {
    history: true,
    ..ACCEPTS
};

fn make_sub(p: &Parsed, name: &str, how: How) -> Result<mapshare_subscriber_t> {
    let b = p.history(p.policy(p.max_message(p.capacity(p.base::<Subscriber>(name)))));
    Ok(mapshare_subscriber_t {
        s: StdMutex::new(SubState {
            sub: crate::options::attach(&b, how)?,
            buf: Vec::new(),
            pending: false,
        }),
    })
}

/// Creates the pub/sub ring `name` and attaches as its publisher.
/// Options: `capacity` (default 256), `max_message` (default 4096),
/// `policy`, `persistent`, ...; `opts` may be NULL. On failure `*out` is
/// NULL. (`mapshare pub`/`sub` create rings with these same defaults.)
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL with `opts->file` set);
///   `opts` is NULL or a valid options struct; `out` points to a writable
///   `mapshare_publisher_t *`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_publisher_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_publisher_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "publisher", ACCEPTS, How::Create, make_pub) }
}

/// Opens the ring `name` as its publisher (`MAPSHARE_TOO_MANY_ATTACHED`
/// while a live publisher holds it).
///
/// # Safety
/// As `mapshare_publisher_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_publisher_open(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_publisher_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "publisher", ACCEPTS, How::Open, make_pub) }
}

/// Opens the ring `name` as its publisher, creating it with `opts` if
/// needed.
///
/// # Safety
/// As `mapshare_publisher_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_publisher_open_or_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_publisher_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        construct(
            name,
            opts,
            out,
            "publisher",
            ACCEPTS,
            How::OpenOrCreate,
            make_pub,
        )
    }
}

/// Publishes the `len` bytes at `data` to every subscriber. A lossless
/// ring waits while the slowest live subscriber is a full ring behind:
/// `timeout_ns` 0 tries once (`MAPSHARE_FULL`), `MAPSHARE_FOREVER` waits
/// as long as it takes, anything else at most that long
/// (`MAPSHARE_TIMEOUT`); an overwrite-oldest ring never waits. Publishing
/// with no subscriber is not an error. `MAPSHARE_TOO_LARGE` above
/// `max_message`.
///
/// # Safety
/// - `p` is a live handle; `data` points to `len` readable bytes (NULL
///   allowed when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn mapshare_publisher_publish(
    p: *mut mapshare_publisher_t,
    data: *const c_void,
    len: usize,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(p, "publisher") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let msg = unsafe { util::bytes(data.cast(), len) }?;
        let mut p = util::lock(&h.p);
        match form(timeout_ns) {
            Form::Try => p.try_publish(msg)?,
            Form::Forever => p.publish(msg)?,
            Form::Timeout(d) => p.publish_timeout(msg, d)?,
        }
        Ok(())
    })
}

/// Live subscribers of the ring (asks the registry about each; 0 for
/// NULL).
///
/// # Safety
/// - `p` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_publisher_subscriber_count(
    p: *const mapshare_publisher_t,
) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(p, 0, |h| util::lock(&h.p).subscriber_count()) }
}

/// The ring's largest message, in bytes (0 for NULL).
///
/// # Safety
/// - `p` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_publisher_max_message(p: *const mapshare_publisher_t) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(p, 0, |h| util::lock(&h.p).max_message()) }
}

/// Detaches and frees the publisher: subscribers get
/// `MAPSHARE_DISCONNECTED` once they have read everything (a new
/// publisher may take the ring over). NULL is ignored.
///
/// # Safety
/// - `p` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_publisher_close(p: *mut mapshare_publisher_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(p) };
}

/// Joins the ring `name` as a subscriber, creating it with `opts` if it
/// does not exist (as `mapshare sub` does, so either side may start
/// first). A subscriber that joined before the publisher receives
/// everything it publishes.
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL with `opts->file` set);
///   `opts` is NULL or a valid options struct; `out` points to a writable
///   `mapshare_subscriber_t *`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_subscriber_open_or_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_subscriber_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        construct(
            name,
            opts,
            out,
            "subscriber",
            SUB_ACCEPTS,
            How::OpenOrCreate,
            make_sub,
        )
    }
}

/// Creates the ring `name` and joins it as a subscriber.
///
/// # Safety
/// As `mapshare_subscriber_open_or_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_subscriber_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_subscriber_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        construct(
            name,
            opts,
            out,
            "subscriber",
            SUB_ACCEPTS,
            How::Create,
            make_sub,
        )
    }
}

/// Joins the existing ring `name` as a subscriber.
///
/// # Safety
/// As `mapshare_subscriber_open_or_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_subscriber_open(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_subscriber_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        construct(
            name,
            opts,
            out,
            "subscriber",
            SUB_ACCEPTS,
            How::Open,
            make_sub,
        )
    }
}

/// Takes the next message into `buf` (`cap` bytes) and writes its length
/// to `*out_len`, waiting for one: `timeout_ns` 0 tries once
/// (`MAPSHARE_EMPTY`), `MAPSHARE_FOREVER` waits as long as it takes,
/// anything else at most that long (`MAPSHARE_TIMEOUT`).
///
/// `MAPSHARE_DISCONNECTED` once the publisher has gone (left or killed)
/// and everything is read; `MAPSHARE_LAGGED` on an overwrite-oldest ring
/// that lapped us, with the number of messages missed in `*out_missed`
/// (if not NULL), the next receive returning the oldest message still
/// there; `MAPSHARE_FAULT` for a corrupt slot (skipped).
///
/// A message longer than `cap` gives `MAPSHARE_TOO_SMALL` with its length
/// in `*out_len` and is not lost: a subscriber's cursor has already moved
/// past it (the ring has no peek), so this handle keeps it and the next
/// receive on it returns it first.
///
/// # Safety
/// - `s` is a live handle; `buf` points to `cap` writable bytes (NULL
///   allowed when `cap` is 0); `out_len` points to a writable `size_t`;
///   `out_missed` is NULL or points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_subscriber_recv(
    s: *mut mapshare_subscriber_t,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    out_missed: *mut u64,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(s, "subscriber") }?;
        util::required(out_len, "out_len")?;
        // SAFETY: the caller promises `cap` writable bytes at `buf`.
        let out = unsafe { util::buffer(buf.cast(), cap) }?;
        let mut st = util::lock(&h.s);
        let SubState { sub, buf, pending } = &mut *st;
        if !*pending {
            let got = match form(timeout_ns) {
                Form::Try => sub
                    .try_recv_into(buf)
                    .map_err(|e| (lagged_try(&e), e.into())),
                Form::Forever => sub.recv_into(buf).map_err(|e| {
                    let e = RecvTimeoutError::from(e);
                    (lagged(&e), e.into())
                }),
                Form::Timeout(d) => sub
                    .recv_into_timeout(buf, d)
                    .map_err(|e| (lagged(&e), e.into())),
            };
            if let Err((missed, e)) = got {
                if let Some(n) = missed {
                    // SAFETY: the caller promises NULL or a writable u64.
                    unsafe { util::put(out_missed, n) };
                }
                return Err(e);
            }
        }
        let len = buf.len();
        // SAFETY: `out_len` is non-NULL (checked) and writable.
        unsafe { util::put(out_len, len) };
        if len > out.len() {
            *pending = true;
            return Err(Error::new(
                S::MAPSHARE_TOO_SMALL,
                format!("message of {len} bytes, buffer of {cap}; kept for the next receive"),
            ));
        }
        *pending = false;
        out[..len].copy_from_slice(buf);
        Ok(())
    })
}

fn lagged(e: &RecvTimeoutError) -> Option<u64> {
    match e {
        RecvTimeoutError::Lagged(n) => Some(*n),
        _ => None,
    }
}

fn lagged_try(e: &TryRecvError) -> Option<u64> {
    match e {
        TryRecvError::Lagged(n) => Some(*n),
        _ => None,
    }
}

/// Messages published that this subscriber has not read yet (a snapshot;
/// more than the capacity means it has lagged; 0 for NULL).
///
/// # Safety
/// - `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_subscriber_behind(s: *const mapshare_subscriber_t) -> u64 {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(s, 0, |h| util::lock(&h.s).sub.behind()) }
}

/// Leaves the ring and frees the handle (a message kept after
/// `MAPSHARE_TOO_SMALL` is dropped with it). NULL is ignored.
///
/// # Safety
/// - `s` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_subscriber_close(s: *mut mapshare_subscriber_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(s) };
}
