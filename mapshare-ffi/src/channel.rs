//! `mapshare_sender_t` / `mapshare_receiver_t`: the byte channel, from one
//! or many senders to one receiver.

use std::ffi::{c_char, c_void};
use std::sync::Mutex as StdMutex;

use mapshare::{Receiver, Sender};

use crate::options::{construct, Accepts, How, Parsed};
use crate::status::{guard, mapshare_status, Error, Result, S};
use crate::util::{self, form, Form};

/// A channel's sending end (opaque): owns one lane of the channel. Calls
/// through one handle are serialised (a second thread waits for the
/// first). Free it with `mapshare_sender_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_sender_t {
    tx: StdMutex<Sender>,
}

/// A channel's receiving end (opaque): the one receiver of the channel.
/// Calls through one handle are serialised. Free it with
/// `mapshare_receiver_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_receiver_t {
    rx: StdMutex<Receiver>,
}

const ACCEPTS: Accepts = Accepts {
    capacity: true,
    max_message: true,
    senders: true,
    policy: false,
    manual_reset: false,
    history: false,
};

fn make_tx(p: &Parsed, name: &str, how: How) -> Result<mapshare_sender_t> {
    let b = p.senders(p.max_message(p.capacity(p.base::<Sender>(name))));
    Ok(mapshare_sender_t {
        tx: StdMutex::new(crate::options::attach(&b, how)?),
    })
}

fn make_rx(p: &Parsed, name: &str, how: How) -> Result<mapshare_receiver_t> {
    let b = p.senders(p.max_message(p.capacity(p.base::<Receiver>(name))));
    Ok(mapshare_receiver_t {
        rx: StdMutex::new(crate::options::attach(&b, how)?),
    })
}

/// Creates the channel `name` and attaches as a sender. Options:
/// `capacity` (per sender), `max_message`, `senders`, `persistent`, ...;
/// `opts` may be NULL. On failure `*out` is NULL.
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL with `opts->file` set);
///   `opts` is NULL or a valid options struct; `out` points to a writable
///   `mapshare_sender_t *`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_sender_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_sender_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "sender", ACCEPTS, How::Create, make_tx) }
}

/// Opens the channel `name` as a sender (`MAPSHARE_TOO_MANY_ATTACHED`
/// when every lane is held by a live sender).
///
/// # Safety
/// As `mapshare_sender_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_sender_open(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_sender_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "sender", ACCEPTS, How::Open, make_tx) }
}

/// Opens the channel `name` as a sender, creating it with `opts` if needed.
///
/// # Safety
/// As `mapshare_sender_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_sender_open_or_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_sender_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        construct(
            name,
            opts,
            out,
            "sender",
            ACCEPTS,
            How::OpenOrCreate,
            make_tx,
        )
    }
}

/// Sends the `len` bytes at `data` (copied into the next slot of this
/// sender's lane), waiting for room: `timeout_ns` 0 tries once
/// (`MAPSHARE_FULL`), `MAPSHARE_FOREVER` waits as long as it takes,
/// anything else at most that long (`MAPSHARE_TIMEOUT`).
/// `MAPSHARE_DISCONNECTED` when the receiver has gone (dropped or killed;
/// a new one may attach, so sending again is allowed);
/// `MAPSHARE_TOO_LARGE` above `max_message`.
///
/// # Safety
/// - `tx` is a live handle; `data` points to `len` readable bytes (NULL
///   allowed when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn mapshare_sender_send(
    tx: *mut mapshare_sender_t,
    data: *const c_void,
    len: usize,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(tx, "sender") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let msg = unsafe { util::bytes(data.cast(), len) }?;
        let mut tx = util::lock(&h.tx);
        match form(timeout_ns) {
            Form::Try => tx.try_send(msg)?,
            Form::Forever => tx.send(msg)?,
            Form::Timeout(d) => tx.send_timeout(msg, d)?,
        }
        Ok(())
    })
}

/// The largest message of the channel, in bytes (0 for NULL).
///
/// # Safety
/// - `tx` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_sender_max_message(tx: *const mapshare_sender_t) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(tx, 0, |h| util::lock(&h.tx).max_message()) }
}

/// Messages this sender can have in flight (its lane's capacity; 0 for
/// NULL).
///
/// # Safety
/// - `tx` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_sender_capacity(tx: *const mapshare_sender_t) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(tx, 0, |h| util::lock(&h.tx).capacity()) }
}

/// Detaches and frees the sender: its lane is released, and a receiver
/// that has read everything and has no other sender gets
/// `MAPSHARE_DISCONNECTED`. NULL is ignored.
///
/// # Safety
/// - `tx` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_sender_close(tx: *mut mapshare_sender_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(tx) };
}

/// Creates the channel `name` and attaches as its receiver. Options as
/// for `mapshare_sender_create`.
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL with `opts->file` set);
///   `opts` is NULL or a valid options struct; `out` points to a writable
///   `mapshare_receiver_t *`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_receiver_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_receiver_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "receiver", ACCEPTS, How::Create, make_rx) }
}

/// Opens the channel `name` as its receiver (`MAPSHARE_TOO_MANY_ATTACHED`
/// when a live receiver is attached).
///
/// # Safety
/// As `mapshare_receiver_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_receiver_open(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_receiver_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, "receiver", ACCEPTS, How::Open, make_rx) }
}

/// Opens the channel `name` as its receiver, creating it with `opts` if
/// needed.
///
/// # Safety
/// As `mapshare_receiver_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_receiver_open_or_create(
    name: *const c_char,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_receiver_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        construct(
            name,
            opts,
            out,
            "receiver",
            ACCEPTS,
            How::OpenOrCreate,
            make_rx,
        )
    }
}

/// Takes the next message into `buf` (`cap` bytes) and writes its length
/// to `*out_len`, waiting for one: `timeout_ns` 0 tries once
/// (`MAPSHARE_EMPTY`), `MAPSHARE_FOREVER` waits as long as it takes,
/// anything else at most that long (`MAPSHARE_TIMEOUT`).
/// `MAPSHARE_DISCONNECTED` once every sender has gone (a killed one is
/// noticed too) and nothing is left; `MAPSHARE_FAULT` for a corrupt slot
/// (skipped).
///
/// A message longer than `cap` gives `MAPSHARE_TOO_SMALL` with its length
/// in `*out_len` and stays queued in the channel: the next receive
/// returns it. `buf = NULL, cap = 0` asks for the next message's length.
/// The message is copied once, from its slot straight into `buf`.
///
/// # Safety
/// - `rx` is a live handle; `buf` points to `cap` writable bytes (NULL
///   allowed when `cap` is 0); `out_len` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_receiver_recv(
    rx: *mut mapshare_receiver_t,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(rx, "receiver") }?;
        util::required(out_len, "out_len")?;
        // SAFETY: the caller promises `cap` writable bytes at `buf`.
        let buf = unsafe { util::buffer(buf.cast(), cap) }?;
        let mut rx = util::lock(&h.rx);
        let sample = match form(timeout_ns) {
            Form::Try => rx.try_recv_ref()?,
            Form::Forever => rx.recv_ref()?,
            Form::Timeout(d) => rx.recv_ref_timeout(d)?,
        };
        let len = sample.len();
        // SAFETY: `out_len` is non-NULL (checked) and writable.
        unsafe { util::put(out_len, len) };
        if len > buf.len() {
            // Not dropped: the sample's drop is what frees the slot, so
            // forgetting it leaves the message at the head of its lane
            // (the sample holds only references; nothing leaks).
            std::mem::forget(sample);
            return Err(Error::new(
                S::MAPSHARE_TOO_SMALL,
                format!("message of {len} bytes, buffer of {cap}; it stays queued"),
            ));
        }
        sample.read_at(0, &mut buf[..len]);
        drop(sample);
        Ok(())
    })
}

/// Messages waiting, summed over the lanes (a snapshot; 0 for NULL).
///
/// # Safety
/// - `rx` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_receiver_len(rx: *const mapshare_receiver_t) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(rx, 0, |h| util::lock(&h.rx).len()) }
}

/// The largest message of the channel, in bytes (0 for NULL).
///
/// # Safety
/// - `rx` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_receiver_max_message(rx: *const mapshare_receiver_t) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(rx, 0, |h| util::lock(&h.rx).max_message()) }
}

/// Detaches and frees the receiver; senders then get
/// `MAPSHARE_DISCONNECTED`. Messages still queued stay in the segment
/// for a receiver that attaches later. NULL is ignored.
///
/// # Safety
/// - `rx` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_receiver_close(rx: *mut mapshare_receiver_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(rx) };
}
