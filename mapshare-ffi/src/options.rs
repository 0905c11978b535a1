//! `mapshare_options_t`: the Rust `Options<K>` builder as a C struct.

use std::ffi::c_char;
use std::time::Duration;

use mapshare::options::{HasCapacity, HasMaxMessage, HasPolicy, HasSenders};
use mapshare::{Options, Policy};

use crate::status::{Error, Result};

/// Lossless ring: the slowest live subscriber paces the publisher.
pub const MAPSHARE_POLICY_LOSSLESS: u32 = 0;
/// Overwrite-oldest ring: the publisher never waits; a lapped subscriber
/// gets `MAPSHARE_LAGGED`.
pub const MAPSHARE_POLICY_OVERWRITE_OLDEST: u32 = 1;

/// How to create or open a segment: the Rust builder's setters as fields.
///
/// Fill it with `mapshare_options_init` first (every field at its
/// default), then set what you need; passing NULL instead of options
/// means the defaults. A zero size field means "the kind's default".
/// Sizes are used when creating; opening takes the segment's own (checked,
/// never trusted). A field the kind has no use for must stay at its
/// default (`capacity` for a mutex, say): otherwise the call fails with
/// `MAPSHARE_INVALID_ARGUMENT`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)] // C naming
pub struct mapshare_options_t {
    /// Back the segment by the file at this path (NUL-terminated) instead
    /// of `/dev/shm/mapshare.NAME`; the `name` argument is then ignored
    /// and may be NULL. Default NULL.
    pub file: *const c_char,
    /// Keep the segment after its last process detaches, until
    /// `mapshare_unlink` / `mapshare rm` (default false: gone with its last
    /// process). Used when creating.
    pub persistent: bool,
    /// Accept a segment owned by another user (default false).
    pub allow_foreign_owner: bool,
    /// Manual-reset event (stays set until reset) instead of auto-reset.
    /// Events only; used when creating.
    pub manual_reset: bool,
    /// Permission bits of a created segment, whatever the umask; 0 means
    /// the default, 0600.
    pub mode: u32,
    /// What a pub/sub ring does when a subscriber is a full ring behind:
    /// `MAPSHARE_POLICY_LOSSLESS` (default) or
    /// `MAPSHARE_POLICY_OVERWRITE_OLDEST`. Pub/sub only.
    pub policy: u32,
    /// How long to wait for a peer holding the segment's attach lock, in
    /// nanoseconds; 0 means the default, 5 s.
    pub attach_timeout_ns: u64,
    /// Messages a queue holds (channels: per sender), rounded up to a power
    /// of two; 0: the kind's default. Channels and pub/sub.
    pub capacity: usize,
    /// Largest message in bytes; 0: the kind's default (4096). Mailboxes,
    /// channels, pub/sub.
    pub max_message: usize,
    /// How many senders may be attached at once (1 to 64); 0: the default.
    /// Channels only.
    pub senders: usize,
    /// Late joining: a subscriber starts with up to this many messages
    /// published before it joined that the ring still holds (at most its
    /// capacity - 1); 0 (default): only later ones. Subscribers only.
    pub history: usize,
}

impl Default for mapshare_options_t {
    fn default() -> Self {
        mapshare_options_t {
            file: std::ptr::null(),
            persistent: false,
            allow_foreign_owner: false,
            manual_reset: false,
            mode: 0,
            policy: MAPSHARE_POLICY_LOSSLESS,
            attach_timeout_ns: 0,
            capacity: 0,
            max_message: 0,
            senders: 0,
            history: 0,
        }
    }
}

/// Sets every field of `*opts` to its default. Does nothing if `opts` is
/// NULL.
///
/// # Safety
/// - `opts` is NULL or points to a writable `mapshare_options_t`.
#[no_mangle]
pub unsafe extern "C" fn mapshare_options_init(opts: *mut mapshare_options_t) {
    // SAFETY: the caller promises NULL or a writable, aligned struct.
    unsafe { crate::util::put(opts, mapshare_options_t::default()) };
}

/// Which of the kind-specific fields a kind accepts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Accepts {
    pub(crate) capacity: bool,
    pub(crate) max_message: bool,
    pub(crate) senders: bool,
    pub(crate) policy: bool,
    pub(crate) manual_reset: bool,
    pub(crate) history: bool,
}

/// The C options, read and checked once.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    o: mapshare_options_t,
    file: Option<std::path::PathBuf>,
}

/// Reads `opts` (NULL: defaults) for a kind that accepts `accepts`.
///
/// # Safety
/// - `opts` is NULL or points to a readable `mapshare_options_t` whose
///   `file` is NULL or a NUL-terminated string.
pub(crate) unsafe fn parse(
    opts: *const mapshare_options_t,
    kind: &str,
    accepts: Accepts,
) -> Result<Parsed> {
    // SAFETY: the caller promises NULL or a readable, aligned struct.
    let o = unsafe { opts.as_ref() }.copied().unwrap_or_default();
    let refuse = |field: &str| {
        Err(Error::invalid(format!(
            "option {field} does not apply to a {kind}"
        )))
    };
    if o.capacity != 0 && !accepts.capacity {
        return refuse("capacity");
    }
    if o.max_message != 0 && !accepts.max_message {
        return refuse("max_message");
    }
    if o.senders != 0 && !accepts.senders {
        return refuse("senders");
    }
    if o.policy != MAPSHARE_POLICY_LOSSLESS && !accepts.policy {
        return refuse("policy");
    }
    if o.manual_reset && !accepts.manual_reset {
        return refuse("manual_reset");
    }
    if o.history != 0 && !accepts.history {
        return refuse("history");
    }
    if o.policy > MAPSHARE_POLICY_OVERWRITE_OLDEST {
        return Err(Error::invalid(format!("unknown policy {}", o.policy)));
    }
    let file = if o.file.is_null() {
        None
    } else {
        // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
        let c = unsafe { std::ffi::CStr::from_ptr(o.file) };
        use std::os::unix::ffi::OsStrExt;
        Some(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(
            c.to_bytes(),
        )))
    };
    Ok(Parsed { o, file })
}

impl Parsed {
    /// Whether a segment name is needed (not file-backed).
    pub(crate) fn needs_name(&self) -> bool {
        self.file.is_none()
    }

    /// The builder for `name` with the common fields set.
    pub(crate) fn base<K>(&self, name: &str) -> Options<K> {
        let mut b = match &self.file {
            Some(path) => Options::file(path.clone()),
            None => Options::new(name),
        };
        b = b
            .persistent(self.o.persistent)
            .allow_foreign_owner(self.o.allow_foreign_owner);
        if self.o.mode != 0 {
            b = b.mode(self.o.mode);
        }
        if self.o.attach_timeout_ns != 0 {
            b = b.attach_timeout(Duration::from_nanos(self.o.attach_timeout_ns));
        }
        b
    }

    pub(crate) fn capacity<K: HasCapacity>(&self, b: Options<K>) -> Options<K> {
        if self.o.capacity != 0 {
            b.capacity(self.o.capacity)
        } else {
            b
        }
    }

    pub(crate) fn max_message<K: HasMaxMessage>(&self, b: Options<K>) -> Options<K> {
        if self.o.max_message != 0 {
            b.max_message(self.o.max_message)
        } else {
            b
        }
    }

    pub(crate) fn senders<K: HasSenders>(&self, b: Options<K>) -> Options<K> {
        if self.o.senders != 0 {
            b.senders(self.o.senders)
        } else {
            b
        }
    }

    pub(crate) fn policy<K: HasPolicy>(&self, b: Options<K>) -> Options<K> {
        b.policy(if self.o.policy == MAPSHARE_POLICY_OVERWRITE_OLDEST {
            Policy::OverwriteOldest
        } else {
            Policy::Lossless
        })
    }

    pub(crate) fn history(
        &self,
        b: Options<mapshare::Subscriber>,
    ) -> Options<mapshare::Subscriber> {
        b.history(self.o.history)
    }

    pub(crate) fn manual_reset(&self) -> bool {
        self.o.manual_reset
    }
}

/// Create, open, or open-or-create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    Create,
    Open,
    OpenOrCreate,
}

/// Runs the terminal call `how` says.
pub(crate) fn attach<K: mapshare::options::Attach>(b: &Options<K>, how: How) -> Result<K> {
    Ok(match how {
        How::Create => b.create()?,
        How::Open => b.open()?,
        How::OpenOrCreate => b.open_or_create()?,
    })
}

/// The body of every `mapshare_<kind>_{create,open,open_or_create}`:
/// checks the arguments, reads the options, attaches with `make`, and
/// hands the handle out through `out` (NULL on failure).
///
/// # Safety
/// - `name` is NULL or a NUL-terminated string; `opts` as for `parse`;
///   `out` is NULL or a writable `*mut H`.
pub(crate) unsafe fn construct<H>(
    name: *const c_char,
    opts: *const mapshare_options_t,
    out: *mut *mut H,
    kind: &str,
    accepts: Accepts,
    how: How,
    make: impl FnOnce(&Parsed, &str, How) -> Result<H>,
) -> crate::status::S {
    crate::status::guard(|| {
        crate::util::required(out, "out")?;
        // SAFETY: `out` is non-NULL and, as the caller promises, writable.
        unsafe { crate::util::put(out, std::ptr::null_mut()) };
        // SAFETY: as the caller promises for `opts`.
        let parsed = unsafe { parse(opts, kind, accepts) }?;
        let name = if parsed.needs_name() {
            // SAFETY: as the caller promises for `name`.
            unsafe { crate::util::name(name) }?
        } else {
            ""
        };
        let h = make(&parsed, name, how)?;
        // SAFETY: `out` is non-NULL and writable (checked above).
        unsafe { crate::util::give(out, h) };
        Ok(())
    })
}
