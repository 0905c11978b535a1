//! `mapshare_shared_t` (one value with a robust lock and a data-ready
//! event) and the blackboard ends, with the value's layout given at run
//! time (`mapshare_layout_t`, the core's `Fingerprint`).

use std::ffi::{c_char, c_void, CStr};
use std::sync::Mutex as StdMutex;

use mapshare::options::{Attach, HasLayout};
use mapshare::{BlackboardReaderBytes, BlackboardWriterBytes, Fingerprint, SharedBytes};

use crate::locked::Locked;
use crate::options::{construct, Accepts, How, Parsed};
use crate::status::{guard, mapshare_status, Error, Result, S};
use crate::util::{self, form, Form};

/// The layout of a shared value: a type name, its size and alignment.
/// Two programs agree on a segment when all three match; otherwise open
/// fails with `MAPSHARE_LAYOUT_MISMATCH`. To meet a Rust `Shared<T>` or
/// `BlackboardWriter<T>`, use T's name without its module path
/// (`"Record"`), `size_of::<T>()` and `align_of::<T>()`. From C,
/// `MAPSHARE_LAYOUT(type)` fills it from a type (its name as spelled).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)] // C naming
pub struct mapshare_layout_t {
    /// NUL-terminated UTF-8 type name (kept up to 104 bytes).
    pub type_name: *const c_char,
    /// Size of the value in bytes (at least 1).
    pub size: usize,
    /// Alignment in bytes: a power of two, at most 4096.
    pub align: usize,
}

/// The fingerprint C describes.
///
/// # Safety
/// - `l` is NULL or points to a readable layout whose `type_name` is NULL
///   or a NUL-terminated string.
unsafe fn fingerprint(l: *const mapshare_layout_t) -> Result<Fingerprint> {
    // SAFETY: the caller promises NULL or a readable layout.
    let l = unsafe { l.as_ref() }.ok_or_else(|| Error::null("layout"))?;
    if l.type_name.is_null() {
        return Err(Error::null("layout->type_name"));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(l.type_name) }
        .to_str()
        .map_err(|_| Error::invalid("layout->type_name is not UTF-8"))?;
    if l.size == 0 {
        return Err(Error::new(S::MAPSHARE_INVALID_SIZE, "layout->size is 0"));
    }
    Ok(Fingerprint::new(name, l.size as u64, l.align as u64))
}

const ACCEPTS: Accepts = Accepts {
    capacity: false,
    max_message: false,
    senders: false,
    policy: false,
    manual_reset: false,
    history: false,
};

/// The body of every constructor of a runtime-layout kind `K`: the
/// layout read, then `construct` attaches `K` and hands out `wrap(k)`.
///
/// # Safety
/// As for the public constructors: `name` is NULL or a NUL-terminated
/// string; `layout` is NULL or a readable layout (`fingerprint`); `opts`
/// is NULL or a valid options struct; `out` is NULL or writable.
unsafe fn layout_construct<K: HasLayout + Attach, H>(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut H,
    kind: &str,
    how: How,
    wrap: impl FnOnce(K) -> H,
) -> mapshare_status {
    let make = |p: &Parsed, name: &str, how: How| {
        // SAFETY: the caller promises NULL or a valid layout.
        let fp = unsafe { fingerprint(layout) }?;
        let k: K = crate::options::attach(&p.base::<K>(name).layout(fp), how)?;
        Ok(wrap(k))
    };
    // SAFETY: the caller's promises are this function's.
    unsafe { construct(name, opts, out, kind, ACCEPTS, how, make) }
}

/// A value's bytes copied into a C buffer of `cap` bytes: `MAPSHARE_TOO_SMALL`
/// (nothing copied) with the size in `*out_len` when it does not fit.
fn fits(size: usize, cap: usize) -> Result<()> {
    if size > cap {
        return Err(Error::new(
            S::MAPSHARE_TOO_SMALL,
            format!("the value is {size} bytes, buffer of {cap}"),
        ));
    }
    Ok(())
}

// ---- Shared ----

/// A shared value handle (opaque): the value, its robust lock and its
/// data-ready event. Thread-safe like `mapshare_mutex_t`. Free it with
/// `mapshare_shared_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_shared_t {
    s: Locked<SharedBytes>,
}

/// # Safety
/// As for the public constructors.
unsafe fn shared_construct(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_shared_t,
    how: How,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        layout_construct(name, layout, opts, out, "shared value", how, |s| {
            mapshare_shared_t { s: Locked::new(s) }
        })
    }
}

/// Creates the shared value `name` of `layout`, all zeroes. Options:
/// `persistent`, `mode`, `file`, ...; `opts` may be NULL. On failure
/// `*out` is NULL.
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL with `opts->file` set);
///   `layout` points to a valid layout; `opts` is NULL or a valid options
///   struct; `out` points to a writable `mapshare_shared_t *`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_create(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_shared_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { shared_construct(name, layout, opts, out, How::Create) }
}

/// Opens the shared value `name`, whose layout must be `layout`
/// (`MAPSHARE_LAYOUT_MISMATCH` naming both otherwise).
///
/// # Safety
/// As `mapshare_shared_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_open(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_shared_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { shared_construct(name, layout, opts, out, How::Open) }
}

/// Opens the shared value `name`, creating it (all zeroes) if needed.
///
/// # Safety
/// As `mapshare_shared_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_open_or_create(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_shared_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { shared_construct(name, layout, opts, out, How::OpenOrCreate) }
}

/// Locks the value, as `mapshare_mutex_lock`:
/// `MAPSHARE_OK` or `MAPSHARE_OWNER_DIED` (the previous holder died; the
/// lock IS held and the value may be half-updated), `MAPSHARE_WOULD_BLOCK`
/// (try), `MAPSHARE_TIMEOUT`.
///
/// # Safety
/// - `s` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_lock(
    s: *mut mapshare_shared_t,
    timeout_ns: u64,
) -> mapshare_status {
    // SAFETY: the caller promises a live handle (NULL is refused). Taking
    // the reference cannot panic; the lock itself runs in the guard.
    match unsafe { util::handle(s, "shared value") } {
        Ok(h) => h.s.lock(timeout_ns),
        Err(e) => guard(|| Err(e)),
    }
}

/// Unlocks the value (`MAPSHARE_INVALID_ARGUMENT` if not held through
/// this handle).
///
/// # Safety
/// - `s` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_unlock(s: *mut mapshare_shared_t) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        unsafe { util::handle(s, "shared value") }?.s.unlock()
    })
}

/// Copies the value into `buf` (`cap` bytes, at least the layout's size)
/// and writes its size to `*out_len`. The lock must be held through this
/// handle (`MAPSHARE_INVALID_ARGUMENT` otherwise); `MAPSHARE_TOO_SMALL`
/// (nothing copied, the size in `*out_len`) for a smaller buffer.
///
/// # Safety
/// - `s` is a live handle; `buf` points to `cap` writable bytes (NULL
///   allowed when `cap` is 0); `out_len` is NULL or a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_read(
    s: *mut mapshare_shared_t,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(s, "shared value") }?;
        // SAFETY: the caller promises `cap` writable bytes at `buf`.
        let buf = unsafe { util::buffer(buf.cast(), cap) }?;
        let size = h.s.obj().size();
        // SAFETY: the caller promises NULL or a writable size_t.
        unsafe { util::put(out_len, size) };
        fits(size, cap)?;
        h.s.with_guard(|g| {
            g.get_into(&mut buf[..size])
                .map_err(|e| Error::invalid(e.to_string()))
        })
    })
}

/// Replaces the value with the `len` bytes at `data`, which must be
/// exactly the layout's size (`MAPSHARE_INVALID_ARGUMENT`, nothing
/// stored, otherwise). The lock must be held through this handle.
///
/// # Safety
/// - `s` is a live handle; `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_write(
    s: *mut mapshare_shared_t,
    data: *const c_void,
    len: usize,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(s, "shared value") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let src = unsafe { util::bytes(data.cast(), len) }?;
        h.s.with_guard(|g| g.set(src).map_err(|e| Error::invalid(e.to_string())))
    })
}

/// The value's size in bytes (0 for NULL).
///
/// # Safety
/// - `s` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_size(s: *const mapshare_shared_t) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(s, 0, |h| h.s.obj().size()) }
}

/// Signals "data is ready" (auto-reset: one wait consumes it). Needs no
/// lock.
///
/// # Safety
/// - `s` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_notify(s: *mut mapshare_shared_t) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        unsafe { util::handle(s, "shared value") }?.s.obj().notify();
        Ok(())
    })
}

/// Waits for "data is ready" (consuming it): `timeout_ns` 0 tries once
/// (`MAPSHARE_EMPTY`), `MAPSHARE_FOREVER` waits as long as it takes,
/// anything else at most that long (`MAPSHARE_TIMEOUT`). Do not hold the
/// lock while waiting if the notifier needs it.
///
/// # Safety
/// - `s` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_wait(
    s: *mut mapshare_shared_t,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let v = unsafe { util::handle(s, "shared value") }?.s.obj();
        match form(timeout_ns) {
            Form::Try => v.try_wait()?,
            Form::Forever => v.wait()?,
            Form::Timeout(d) => v.wait_timeout(d)?,
        }
        Ok(())
    })
}

/// Frees the handle, unlocking first if the lock is held through it.
/// NULL is ignored.
///
/// # Safety
/// - `s` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_shared_close(s: *mut mapshare_shared_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(s) };
}

// ---- Blackboard ----

/// A blackboard's writer (opaque; one live writer per board). Calls
/// through one handle are serialised. Free it with
/// `mapshare_blackboard_writer_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_blackboard_writer_t {
    w: StdMutex<BlackboardWriterBytes>,
}

/// A blackboard's reader (opaque; any number per board). Thread-safe.
/// Free it with `mapshare_blackboard_reader_close`.
#[allow(non_camel_case_types)] // C naming
#[derive(Debug)]
pub struct mapshare_blackboard_reader_t {
    r: BlackboardReaderBytes,
}

/// # Safety
/// As for the public constructors.
unsafe fn writer_construct(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_blackboard_writer_t,
    how: How,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        layout_construct(name, layout, opts, out, "blackboard writer", how, |w| {
            mapshare_blackboard_writer_t {
                w: StdMutex::new(w),
            }
        })
    }
}

/// # Safety
/// As for the public constructors.
unsafe fn reader_construct(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_blackboard_reader_t,
    how: How,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe {
        layout_construct(name, layout, opts, out, "blackboard reader", how, |r| {
            mapshare_blackboard_reader_t { r }
        })
    }
}

/// Creates the blackboard `name` of `layout` (version 0, all zeroes) and
/// attaches as its writer. On failure `*out` is NULL.
///
/// # Safety
/// - `name` is a NUL-terminated string (or NULL with `opts->file` set);
///   `layout` points to a valid layout; `opts` is NULL or a valid options
///   struct; `out` points to a writable handle pointer.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_writer_create(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_blackboard_writer_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { writer_construct(name, layout, opts, out, How::Create) }
}

/// Opens the blackboard `name` of `layout` as its writer
/// (`MAPSHARE_TOO_MANY_ATTACHED` while a live writer holds it).
///
/// # Safety
/// As `mapshare_blackboard_writer_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_writer_open(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_blackboard_writer_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { writer_construct(name, layout, opts, out, How::Open) }
}

/// Opens the blackboard `name` as its writer, creating it if needed.
///
/// # Safety
/// As `mapshare_blackboard_writer_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_writer_open_or_create(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_blackboard_writer_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { writer_construct(name, layout, opts, out, How::OpenOrCreate) }
}

/// Publishes the `len` bytes at `data` as the next version (never
/// waits). `len` must be exactly the layout's size
/// (`MAPSHARE_INVALID_ARGUMENT`, nothing written, otherwise).
///
/// # Safety
/// - `w` is a live handle; `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_writer_write(
    w: *mut mapshare_blackboard_writer_t,
    data: *const c_void,
    len: usize,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(w, "blackboard writer") }?;
        // SAFETY: the caller promises `len` readable bytes at `data`.
        let src = unsafe { util::bytes(data.cast(), len) }?;
        util::lock(&h.w)
            .write(src)
            .map_err(|e| Error::invalid(e.to_string()))
    })
}

/// The version of the last value written (0 for NULL, or before the
/// first write).
///
/// # Safety
/// - `w` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_writer_version(
    w: *const mapshare_blackboard_writer_t,
) -> u64 {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(w, 0, |h| util::lock(&h.w).version()) }
}

/// Detaches and frees the writer; readers then see the writer gone
/// (`MAPSHARE_DISCONNECTED` from a waiting read). NULL is ignored.
///
/// # Safety
/// - `w` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_writer_close(w: *mut mapshare_blackboard_writer_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(w) };
}

/// Creates the blackboard `name` of `layout` and attaches as a reader.
///
/// # Safety
/// As `mapshare_blackboard_writer_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_create(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_blackboard_reader_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { reader_construct(name, layout, opts, out, How::Create) }
}

/// Opens the blackboard `name` of `layout` as a reader.
///
/// # Safety
/// As `mapshare_blackboard_writer_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_open(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_blackboard_reader_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { reader_construct(name, layout, opts, out, How::Open) }
}

/// Opens the blackboard `name` as a reader, creating it if needed.
///
/// # Safety
/// As `mapshare_blackboard_writer_create`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_open_or_create(
    name: *const c_char,
    layout: *const mapshare_layout_t,
    opts: *const crate::mapshare_options_t,
    out: *mut *mut mapshare_blackboard_reader_t,
) -> mapshare_status {
    // SAFETY: the caller's promises are this function's.
    unsafe { reader_construct(name, layout, opts, out, How::OpenOrCreate) }
}

/// Copies the latest complete value (never torn; never blocks the
/// writer) into `buf` (`cap` bytes, at least the layout's size), its size
/// to `*out_len` and its version to `*out_version` (either may be NULL).
/// `MAPSHARE_TOO_SMALL` (nothing copied, the size in `*out_len`) for a
/// smaller buffer; `MAPSHARE_FAULT` when no consistent copy could be made.
///
/// # Safety
/// - `r` is a live handle; `buf` points to `cap` writable bytes;
///   `out_len` and `out_version` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_read(
    r: *mut mapshare_blackboard_reader_t,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    out_version: *mut u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(r, "blackboard reader") }?;
        // SAFETY: the caller promises `cap` writable bytes at `buf`.
        let buf = unsafe { util::buffer(buf.cast(), cap) }?;
        let size = h.r.size();
        // SAFETY: the caller promises NULL or a writable size_t.
        unsafe { util::put(out_len, size) };
        fits(size, cap)?;
        let version = h.r.read_into(&mut buf[..size])?;
        // SAFETY: the caller promises NULL or a writable u64.
        unsafe { util::put(out_version, version) };
        Ok(())
    })
}

/// Waits for a version newer than `seen`, then copies it as
/// `mapshare_blackboard_reader_read` does: `timeout_ns` 0 tries once
/// (`MAPSHARE_EMPTY` if nothing newer), `MAPSHARE_FOREVER` waits as long as
/// it takes, anything else at most that long (`MAPSHARE_TIMEOUT`).
/// `MAPSHARE_DISCONNECTED` when nothing newer is there and the writer has
/// gone. A too-small buffer is refused before waiting (`MAPSHARE_TOO_SMALL`).
///
/// # Safety
/// As `mapshare_blackboard_reader_read`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_read_newer(
    r: *mut mapshare_blackboard_reader_t,
    seen: u64,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    out_version: *mut u64,
    timeout_ns: u64,
) -> mapshare_status {
    guard(|| {
        // SAFETY: the caller promises a live handle.
        let h = unsafe { util::handle(r, "blackboard reader") }?;
        // SAFETY: the caller promises `cap` writable bytes at `buf`.
        let buf = unsafe { util::buffer(buf.cast(), cap) }?;
        let size = h.r.size();
        // SAFETY: the caller promises NULL or a writable size_t.
        unsafe { util::put(out_len, size) };
        fits(size, cap)?;
        let dst = &mut buf[..size];
        let version = match form(timeout_ns) {
            Form::Try => h.r.try_read_newer_into(seen, dst)?,
            Form::Forever => h.r.read_newer_into(seen, dst)?,
            Form::Timeout(d) => h.r.read_newer_into_timeout(seen, dst, d)?,
        };
        // SAFETY: the caller promises NULL or a writable u64.
        unsafe { util::put(out_version, version) };
        Ok(())
    })
}

/// The latest version, without copying the value (0 for NULL).
///
/// # Safety
/// - `r` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_version(
    r: *const mapshare_blackboard_reader_t,
) -> u64 {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(r, 0, |h| h.r.version()) }
}

/// Whether a live writer holds the board (asks the registry; false for
/// NULL).
///
/// # Safety
/// - `r` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_writer_alive(
    r: *const mapshare_blackboard_reader_t,
) -> bool {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(r, false, |h| h.r.writer_alive()) }
}

/// The value's size in bytes (0 for NULL).
///
/// # Safety
/// - `r` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_size(
    r: *const mapshare_blackboard_reader_t,
) -> usize {
    // SAFETY: the caller promises NULL or a live handle.
    unsafe { util::query(r, 0, |h| h.r.size()) }
}

/// Detaches and frees the reader. NULL is ignored.
///
/// # Safety
/// - `r` is NULL or a live handle that no other thread is using; it must
///   not be used again.
#[no_mangle]
pub unsafe extern "C" fn mapshare_blackboard_reader_close(r: *mut mapshare_blackboard_reader_t) {
    // SAFETY: the caller promises NULL or a live handle, used by no one else.
    unsafe { util::close(r) };
}
