//! The C API of mapshare: `include/mapshare.h` (generated from this crate
//! by cbindgen), `libmapshare_ffi.so` and `libmapshare_ffi.a`.
//!
//! # Rules of the API
//! - **Handles** are opaque pointers (`mapshare_mailbox_t *`, ...), made by
//!   `mapshare_<kind>_create`, `_open` or `_open_or_create` and freed by
//!   `mapshare_<kind>_close` (which accepts NULL). The caller owns a
//!   handle; it must close it once and not use it afterwards. Every
//!   buffer passed in stays the caller's: the library copies what it
//!   needs before returning.
//! - **Status codes**: every call that can fail returns a
//!   `mapshare_status`; `MAPSHARE_OK` is 0. On failure the calling
//!   thread's `mapshare_last_error_message` holds the library's text.
//! - **Timeouts** are `uint64_t timeout_ns` on the monotonic clock: `0`
//!   tries once without waiting, `MAPSHARE_FOREVER` (`UINT64_MAX`) waits as
//!   long as it takes, anything else at most that many nanoseconds.
//! - **Buffers** come with their lengths. A receive into a buffer that is
//!   too small returns `MAPSHARE_TOO_SMALL` with the needed length, and
//!   loses nothing.
//! - **No panic crosses the boundary**: every entry point catches unwinds
//!   and returns `MAPSHARE_PANIC`.
//!
//! # Unsafe code
//! The whole crate is an FFI boundary: `#[no_mangle]` functions taking raw
//! pointers. Each `unsafe` block states what it relies on; the raw-pointer
//! reads and writes are funnelled through `util`, and the promises each
//! function asks of its C caller are in its `# Safety` section (and in the
//! header's comments).

// The entry points are `#[no_mangle] unsafe extern "C"` functions: the
// workspace's `unsafe_code = "deny"` is lifted for this crate only, which
// is nothing but that boundary.
#![allow(unsafe_code)]
#![warn(missing_docs)]

mod channel;
mod event;
mod locked;
mod mailbox;
mod mutex;
mod options;
mod pubsub;
mod shared;
mod status;
mod util;

use std::ffi::c_char;

pub use channel::{
    mapshare_receiver_close, mapshare_receiver_create, mapshare_receiver_len,
    mapshare_receiver_max_message, mapshare_receiver_open, mapshare_receiver_open_or_create,
    mapshare_receiver_recv, mapshare_receiver_t, mapshare_sender_capacity, mapshare_sender_close,
    mapshare_sender_create, mapshare_sender_max_message, mapshare_sender_open,
    mapshare_sender_open_or_create, mapshare_sender_send, mapshare_sender_t,
};
pub use event::{
    mapshare_event_close, mapshare_event_create, mapshare_event_is_manual_reset,
    mapshare_event_is_set, mapshare_event_notify, mapshare_event_open,
    mapshare_event_open_or_create, mapshare_event_reset, mapshare_event_t, mapshare_event_wait,
};
pub use mailbox::{
    mapshare_mailbox_close, mapshare_mailbox_create, mapshare_mailbox_max_message,
    mapshare_mailbox_open, mapshare_mailbox_open_or_create, mapshare_mailbox_recv,
    mapshare_mailbox_send, mapshare_mailbox_set_persistent, mapshare_mailbox_t,
};
pub use mutex::{
    mapshare_mutex_close, mapshare_mutex_create, mapshare_mutex_lock, mapshare_mutex_open,
    mapshare_mutex_open_or_create, mapshare_mutex_t, mapshare_mutex_unlock,
};
pub use options::{
    mapshare_options_init, mapshare_options_t, MAPSHARE_POLICY_LOSSLESS,
    MAPSHARE_POLICY_OVERWRITE_OLDEST,
};
pub use pubsub::{
    mapshare_publisher_close, mapshare_publisher_create, mapshare_publisher_max_message,
    mapshare_publisher_open, mapshare_publisher_open_or_create, mapshare_publisher_publish,
    mapshare_publisher_subscriber_count, mapshare_publisher_t, mapshare_subscriber_behind,
    mapshare_subscriber_close, mapshare_subscriber_create, mapshare_subscriber_open,
    mapshare_subscriber_open_or_create, mapshare_subscriber_recv, mapshare_subscriber_t,
};
pub use shared::{
    mapshare_blackboard_reader_close, mapshare_blackboard_reader_create,
    mapshare_blackboard_reader_open, mapshare_blackboard_reader_open_or_create,
    mapshare_blackboard_reader_read, mapshare_blackboard_reader_read_newer,
    mapshare_blackboard_reader_size, mapshare_blackboard_reader_t,
    mapshare_blackboard_reader_version, mapshare_blackboard_reader_writer_alive,
    mapshare_blackboard_writer_close, mapshare_blackboard_writer_create,
    mapshare_blackboard_writer_open, mapshare_blackboard_writer_open_or_create,
    mapshare_blackboard_writer_t, mapshare_blackboard_writer_version,
    mapshare_blackboard_writer_write, mapshare_layout_t, mapshare_shared_close,
    mapshare_shared_create, mapshare_shared_lock, mapshare_shared_notify, mapshare_shared_open,
    mapshare_shared_open_or_create, mapshare_shared_read, mapshare_shared_size, mapshare_shared_t,
    mapshare_shared_unlock, mapshare_shared_wait, mapshare_shared_write,
};
#[cfg(feature = "test-hooks")]
pub use status::mapshare_test_panic;
pub use status::{
    mapshare_last_error, mapshare_last_error_message, mapshare_status, mapshare_status_name,
};
pub use util::MAPSHARE_FOREVER;

/// Removes the segment `name` (`/dev/shm/mapshare.NAME`) now, as
/// `mapshare rm` does: processes attached keep their mappings; the name
/// is free at once. `MAPSHARE_NOT_FOUND` if there is none.
///
/// # Safety
/// - `name` is a NUL-terminated string (NULL is refused).
#[no_mangle]
pub unsafe extern "C" fn mapshare_unlink(name: *const c_char) -> mapshare_status {
    status::guard(|| {
        // SAFETY: the caller promises a NUL-terminated string (or NULL).
        let name = unsafe { util::name(name) }?;
        let at = mapshare::Location::shm(name)?;
        Ok(mapshare::segment::unlink(&at)?)
    })
}

/// The library's version, `"MAJOR.MINOR.PATCH"` (static; never free it).
#[no_mangle]
pub extern "C" fn mapshare_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
