//! Segments: create, open, lifetime and the registry of attached processes.
//!
//! # Creation is published last
//! The creator builds the segment under a hidden temporary name
//! (`.mapshare-init.*`), holding a byte lock that says "initialising",
//! reserves its memory (`fallocate`: a full `/dev/shm` is an error now, not a
//! `SIGBUS` later), writes the header and payload, stores `STATE_READY` with
//! Release, and only then renames it to its final name with
//! `RENAME_NOREPLACE`. So a name is either absent or fully initialised; of
//! several racing creators exactly one wins, the others get
//! [`SegmentError::AlreadyExists`]; a creator killed half-way leaves only a
//! hidden file that [`gc`] removes. Openers still check the state word.
//!
//! # Registry and lifetime
//! Each open handle claims a registry slot by taking an open-file-description
//! byte lock (`F_OFD_SETLK`) at `SLOT_LOCK_BASE + slot`. The kernel drops it
//! when the process dies, however it dies, so "slot locked" means "a live
//! process holds it", whatever PIDs were reused since. The slot's bytes in
//! the header (generation, pid, time) are informational, except the
//! generation, which makes liveness tokens (slot and generation: mutex
//! owners, role holders) unique over time. Generations are 20 bits; a
//! claim skips every generation that a token still stored in the payload
//! names (each kind lists its token words), so a slot claimed 2^20 times
//! while a killed owner's token waits in a mutex word never wraps onto
//! that token and makes the dead owner look alive.
//!
//! Attach and detach take `flock` on the segment file, so "I am the last one
//! out, unlink" cannot race "I am attaching". The last handle of a
//! non-persistent segment unlinks its name (the Win32 rule); a segment whose
//! last process was killed is removed by [`gc`], or replaced by the next
//! `open_or_create`. One exception: a mutex (or `Shared`) whose last
//! process died *holding the lock* is taken over by its next opener, not
//! replaced, so that opener's `lock` reports `OwnerDied` (the data may be
//! half-updated): the death of a lock holder is never silent, persistent
//! or not. `gc` still removes it.
//!
//! # `fork()` without `exec`
//! A handle is one registry slot held through one open file description:
//! the slot's byte lock, and with it the handle's liveness token and every
//! role and lock taken under that token, belong to that description. A
//! child created by `fork()` would inherit the descriptor and the mapping,
//! and so share the description: the two processes would be one
//! attachment to every peer (two receivers of one channel, one lock held
//! by two processes), and the parent's death would go unnoticed for as
//! long as the child lives. So, from the first attach on, mapshare installs
//! a `pthread_atfork` child handler, and in the child:
//! - every inherited handle is refused: a call on it panics with a message
//!   that says to open the segment anew (a programming error, like a
//!   `RefCell` borrowed twice; no call can act with the parent's token);
//! - dropping an inherited handle, guard or sample releases nothing of the
//!   parent's (no unlock, no role given up, no unlink): it only unmaps;
//! - the handler detaches the child from the parent's descriptions at
//!   once: each segment descriptor is pointed at `/dev/null` and each
//!   mapping replaced by private zero pages, so the parent's registry
//!   locks die with the parent, whatever the child keeps or does.
//!
//! Opening the segment anew in the child (after the fork) is fine: it gets
//! a slot of its own. `exec` needs nothing either (descriptors are
//! `O_CLOEXEC`). Limits: the table behind the handler holds 1,024 open
//! segments; beyond that, inherited handles are still refused, but their
//! descriptions stay referenced until the child drops them or exits. A
//! `fork()` made by a raw system call that bypasses the C library's
//! `fork` runs no handler and is not covered.
//!
//! # A segment shrunk under us (`SIGBUS`)
//! A process with write access to the object (our own user, or root: the
//! object is 0600 and another user's object is refused) can shrink it with
//! `ftruncate`. The kernel then drops the pages past the new end, and a
//! process touching them through its mapping gets `SIGBUS`, which kills it.
//! No lock or check in shared memory can prevent that; what we do:
//!
//! - Headers are read with `pread`, never through a mapping, and `open`
//!   checks the object's size against the header, so opening, `inspect`
//!   and `gc` never fault on a shrunk object.
//! - `Segment::is_intact` (one `fstat`) tells whether every mapped page
//!   is still backed. Every call that sleeps asks it after each sleep,
//!   before it touches the segment again (the doorbell, event and mutex
//!   waits take it as a closure, through `Liveness::intact`), and returns
//!   [`Fault::Truncated`](crate::Fault::Truncated); mailboxes ask before
//!   every send and receive; the drops of channel, pub/sub and blackboard
//!   ends ask before they release their role; detaching skips the header
//!   words when even the header page is gone. The fast paths that do not
//!   sleep (a message copied into a slot with room, a lock taken without
//!   waiting, a spin-poll) do not ask: a system call there would cost more
//!   than the operation.
//! - What remains: a truncation racing an access in progress, or landing
//!   between the check and the access, or during a fast path, still raises
//!   `SIGBUS`; so does a peer that punches holes into the object while
//!   `/dev/shm` is full (a hole is backed again on the next touch only if
//!   memory is free). We install no signal handler (a library must not
//!   take over a process-wide signal); a caller that shares segments with
//!   processes it does not trust to leave the size alone can install one,
//!   and should prefer a user of its own.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::SegmentError;
use crate::layout::header::{
    self, Header, FLAG_PERSISTENT, FLAG_UNLINKED, HEADER_LEN, STATE_READY,
};
use crate::layout::{Fingerprint, Kind};
use crate::name::{Name, INIT_PREFIX};
use crate::primitive::Ordering;
use crate::region::Region;
use crate::sys::{self, Dir, Mapping, OwnedFd};

mod admin;
mod object;
mod registry;

pub(crate) use registry::{no_tokens, TokenWords};

pub use admin::{gc, inspect, list, unlink, Attached, GcReport, SegmentInfo};
use object::{flags_word, flock_timeout, open_file, read_header, state_word};

/// Byte-lock offset held by a creator while it initialises.
const INIT_LOCK: u64 = registry::SLOT_LOCK_BASE - 1;

/// Default time to wait for another process's attach lock.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a segment lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// RAM-backed: the POSIX shared-memory object `/mapshare.NAME`.
    Shm(Name),
    /// Backed by a file at this path.
    File(PathBuf),
}

impl Location {
    fn open_dir(&self) -> Result<(Dir, String), SegmentError> {
        match self {
            Location::Shm(name) => {
                let dir = Dir::shm().map_err(|e| {
                    SegmentError::io(format!("{}: opening {}", name, sys::SHM_DIR), e)
                })?;
                Ok((dir, name.file_name()))
            }
            Location::File(path) => {
                let file = path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .ok_or_else(|| SegmentError::InvalidName(path.display().to_string()))?
                    .to_owned();
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let dir = Dir::open(parent).map_err(|e| {
                    SegmentError::io(format!("{}: opening directory", path.display()), e)
                })?;
                Ok((dir, file))
            }
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Shm(n) => write!(f, "{n}"),
            Location::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Location {
    /// The RAM-backed segment `name` (`/dev/shm/mapshare.NAME`).
    ///
    /// # Errors
    /// [`SegmentError::InvalidName`].
    pub fn shm(name: &str) -> Result<Location, SegmentError> {
        Name::new(name).map(Location::Shm)
    }

    /// The file-backed segment at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Location {
        Location::File(path.into())
    }
}

/// Where a segment lives and how to attach to it: the segment half of
/// [`Options`](crate::Options).
#[derive(Debug, Clone)]
pub(crate) struct SegmentOptions {
    name: String,
    file: Option<PathBuf>,
    persistent: bool,
    mode: u32,
    allow_foreign_owner: bool,
    timeout: Duration,
}

impl SegmentOptions {
    /// A RAM-backed segment named `name` (checked when used): non-persistent,
    /// mode 0600, own objects only, 5 s attach timeout.
    pub(crate) fn new(name: &str) -> SegmentOptions {
        SegmentOptions {
            name: name.to_owned(),
            file: None,
            persistent: false,
            mode: 0o600,
            allow_foreign_owner: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A segment backed by the file at `path` instead of RAM.
    pub(crate) fn file(path: impl Into<PathBuf>) -> SegmentOptions {
        let path = path.into();
        let mut o = SegmentOptions::new(&path.display().to_string());
        o.file = Some(path);
        o
    }

    /// Keep the segment after its last process detaches, until
    /// [`unlink`] (default `false`: gone with the last process).
    pub(crate) fn persistent(mut self, yes: bool) -> Self {
        self.persistent = yes;
        self
    }

    /// Permission bits for a created segment, applied whatever the umask
    /// (default `0o600`: this user only).
    pub(crate) fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Accept a segment owned by another user (default `false`: such an
    /// object is refused, since anyone can pre-create a name).
    pub(crate) fn allow_foreign_owner(mut self, yes: bool) -> Self {
        self.allow_foreign_owner = yes;
        self
    }

    /// How long to wait for a peer holding the attach lock (default 5 s).
    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where the segment lives, after checking the name.
    ///
    /// # Errors
    /// [`SegmentError::InvalidName`].
    pub(crate) fn at(location: &Location) -> SegmentOptions {
        match location {
            Location::Shm(n) => SegmentOptions::new(n.as_str()),
            Location::File(p) => SegmentOptions::file(p.clone()),
        }
    }

    pub(crate) fn location(&self) -> Result<Location, SegmentError> {
        match &self.file {
            Some(p) => Ok(Location::File(p.clone())),
            None => Name::new(&self.name).map(Location::Shm),
        }
    }
}

/// What a typed handle asks of the segment it opens.
pub(crate) struct Spec {
    pub(crate) kind: Kind,
    /// The payload layout written at creation.
    pub(crate) layout: Fingerprint,
    /// Whether `open` insists on the same layout (`false`: sizes chosen at
    /// creation, such as a mailbox's capacity, are accepted as found).
    pub(crate) check_layout: bool,
    /// Smallest payload an opener can work with.
    pub(crate) min_payload: u64,
    /// Where the kind keeps liveness tokens (see [`TokenWords`]).
    pub(crate) tokens: TokenWords,
    /// Whether a segment whose processes all died holds state its next
    /// user must be told about (a lock held by a dead owner): such a
    /// non-persistent segment is taken over by the next opener instead of
    /// being removed (see "Registry and lifetime").
    pub(crate) abandoned: fn(Region<'_>) -> bool,
}

/// [`Spec::abandoned`] of a kind with nothing to report.
pub(crate) fn never_abandoned(_: Region<'_>) -> bool {
    false
}

/// An attached segment: mapping, descriptor and registry slot. Dropping it
/// detaches (and unlinks the name if it was the last, non-persistent one).
#[derive(Debug)]
pub(crate) struct Segment {
    location: Location,
    dir: Dir,
    file: String,
    /// Our descriptor's and mapping's entry in the fork table (see
    /// [`sys::guard_fork`]); before `fd` and `map`, so it is dropped first.
    _fork: sys::ForkGuard,
    fd: OwnedFd,
    map: Mapping,
    header: Header,
    slot: u32,
    gen: u32,
    /// [`sys::fork_epoch`] when we attached: another value means we are in
    /// a child created by `fork()`, and this handle is the parent's.
    epoch: u32,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn round_up(v: u64, to: u64) -> Option<u64> {
    v.checked_add(to - 1).map(|x| x / to * to)
}

/// Removes a file on drop unless disarmed: a half-built segment never stays.
struct TmpGuard<'a> {
    dir: &'a Dir,
    name: String,
    armed: bool,
}

impl Drop for TmpGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = sys::unlink(self.dir, &self.name);
        }
    }
}

impl Segment {
    /// Creates, opens, or opens-or-creates, as `how` says.
    pub(crate) fn attach(
        opts: &SegmentOptions,
        how: crate::options::How,
        spec: &Spec,
        payload_len: u64,
        init: impl Fn(Region<'_>),
    ) -> Result<Segment, SegmentError> {
        use crate::options::How;
        match how {
            How::Create => Segment::create(opts, spec, payload_len, &init),
            How::Open => Segment::open(opts, spec),
            How::OpenOrCreate => Segment::open_or_create(opts, spec, payload_len, init),
        }
    }

    /// Creates a new segment; `init` fills the payload before it is published.
    pub(crate) fn create(
        opts: &SegmentOptions,
        spec: &Spec,
        payload_len: u64,
        init: impl FnOnce(Region<'_>),
    ) -> Result<Segment, SegmentError> {
        let location = opts.location()?;
        let what = location.to_string();
        let (dir, file) = location.open_dir()?;
        let payload_offset = HEADER_LEN as u64;
        let page = sys::page_size() as u64;
        let total_len = payload_offset
            .checked_add(payload_len)
            .and_then(|v| round_up(v, page))
            .filter(|&v| v <= header::MAX_SEGMENT_LEN)
            .ok_or_else(|| SegmentError::InvalidSize(what.clone()))?;
        let layout = &spec.layout;
        let map_len =
            usize::try_from(total_len).map_err(|_| SegmentError::InvalidSize(what.clone()))?;

        let mut attempts = 0;
        let (tmp, fd, mut guard) = loop {
            attempts += 1;
            if attempts > 16 {
                return Err(SegmentError::Busy(what));
            }
            // Unguessable (64 random bits), so no other user can squat the
            // name we are about to create; one that exists anyway is skipped.
            let tmp = format!("{INIT_PREFIX}{}.{:016x}", sys::pid(), sys::random_u64());
            let fd = match sys::create_exclusive(&dir, &tmp, opts.mode) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(SegmentError::io(&what, e)),
            };
            let guard = TmpGuard {
                dir: &dir,
                name: tmp.clone(),
                armed: true,
            };
            // "Initialising": held until the name is published, so gc can
            // tell a dead creator's leftovers from work in progress. gc takes
            // this same lock before it removes a temp file, so it may catch
            // ours in the instant before we lock it: then our lock fails (gc
            // holds it) or the name no longer leads to our file (gc removed
            // it). Start again under a new name; once we hold the lock and
            // the name is ours, gc cannot take it from us.
            let locked = sys::lock_byte(&fd, INIT_LOCK)
                .map_err(|e| SegmentError::io(format!("{what}: lock"), e))?;
            if locked
                && sys::same_file(&dir, &tmp, &fd)
                    .map_err(|e| SegmentError::io(format!("{what}: lock"), e))?
            {
                break (tmp, fd, guard);
            }
        };
        sys::reserve(&fd, total_len).map_err(|e| {
            if sys::is_no_space(&e) {
                SegmentError::NoSpace {
                    name: what.clone(),
                    requested: total_len,
                }
            } else {
                SegmentError::io(format!("{what}: reserving {total_len} bytes"), e)
            }
        })?;
        let map = sys::map(&fd, map_len, true)
            .map_err(|e| SegmentError::io(format!("{what}: mmap"), e))?;
        let fork = sys::guard_fork(&fd, &map);

        let pid = sys::pid();
        let header = Header {
            kind: spec.kind,
            state: header::STATE_INIT,
            flags: if opts.persistent { FLAG_PERSISTENT } else { 0 },
            total_len,
            payload_offset,
            payload_len,
            layout: layout.clone(),
            creator_pid: pid,
            created_unix_ms: now_ms(),
        };
        let region = Region::of(&map);
        region.write(0, &header::encode(&header));
        if let Some(payload) = region.sub(payload_offset as usize, payload_len as usize) {
            init(payload);
        }
        // Claim slot 0 for ourselves before anyone can see the segment.
        let (slot, gen) = registry::claim_first(&fd, region, pid, header.created_unix_ms, &what)?;
        // SYNC(ready): Release publishes the header, registry and payload to
        // openers, which load the state with Acquire.
        state_word(region).store(STATE_READY, Ordering::Release);

        match sys::rename_noreplace(&dir, &tmp, &file) {
            Ok(()) => guard.armed = false,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SegmentError::AlreadyExists(what))
            }
            Err(e) => return Err(SegmentError::io(format!("{what}: publishing"), e)),
        }
        drop(guard);
        let _ = sys::unlock_byte(&fd, INIT_LOCK);
        let mut header = header;
        header.state = STATE_READY;
        Ok(Segment::attached(
            location, dir, file, fork, fd, map, header, slot, gen,
        ))
    }

    /// The handle over a segment we attached to (slot claimed), guarded
    /// against use in a forked child.
    #[allow(clippy::too_many_arguments)] // Reason: the struct's own fields, once.
    fn attached(
        location: Location,
        dir: Dir,
        file: String,
        fork: sys::ForkGuard,
        fd: OwnedFd,
        map: Mapping,
        header: Header,
        slot: u32,
        gen: u32,
    ) -> Segment {
        Segment {
            location,
            dir,
            file,
            _fork: fork,
            fd,
            map,
            header,
            slot,
            gen,
            epoch: sys::fork_epoch(),
        }
    }

    /// Our descriptor, whose open file description holds our registry
    /// slot's byte lock (see [`Mutex::liveness_fd`](crate::Mutex::liveness_fd)).
    #[cfg(all(target_os = "linux", not(mapshare_loom)))]
    pub(crate) fn liveness_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.check_not_forked();
        self.fd.as_fd()
    }

    /// Whether this handle was inherited through `fork()`: we are the
    /// child, and the handle (its registry slot, its roles and locks) is
    /// the parent's. Such a handle must neither act nor release anything.
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        sys::fork_epoch() != self.epoch
    }

    /// Refuses use of a handle inherited through `fork()` (see
    /// "`fork()` without `exec`" in the module docs).
    #[inline]
    fn check_not_forked(&self) {
        if self.forked() {
            used_in_forked_child(&self.location);
        }
    }

    /// Opens an existing segment and attaches to it.
    pub(crate) fn open(opts: &SegmentOptions, spec: &Spec) -> Result<Segment, SegmentError> {
        let location = opts.location()?;
        let what = location.to_string();
        let (dir, file) = location.open_dir()?;
        // A few retries: the name can be unlinked or replaced between our
        // open and our attach lock.
        for _ in 0..8 {
            let (fd, map, info) = open_file(&dir, &file, &what, opts.allow_foreign_owner, true)?;
            let fork = sys::guard_fork(&fd, &map);
            let header = read_header(&fd, info.size, &what)?;
            if !header.is_ready() {
                return Err(SegmentError::Header {
                    name: what,
                    error: crate::error::HeaderError::NotInitialized,
                });
            }
            // SYNC(ready): Acquire pairs with the creator's Release store.
            if state_word(Region::of(&map)).load(Ordering::Acquire) != STATE_READY {
                return Err(SegmentError::Header {
                    name: what,
                    error: crate::error::HeaderError::NotInitialized,
                });
            }
            if header.kind != spec.kind {
                return Err(SegmentError::KindMismatch {
                    name: what,
                    expected: spec.kind.as_str(),
                    found: header.kind.to_string(),
                });
            }
            if spec.check_layout && spec.layout != header.layout {
                return Err(SegmentError::LayoutMismatch {
                    name: what,
                    expected: spec.layout.clone(),
                    found: header.layout,
                });
            }
            if header.payload_len < spec.min_payload {
                return Err(SegmentError::Header {
                    name: what,
                    error: crate::error::HeaderError::BadSize {
                        what: "payload too small for its kind",
                    },
                });
            }
            flock_timeout(&fd, opts.timeout, &what)?;
            let attached = Self::attach_locked(&dir, &file, &fd, &map, &header, spec, &what);
            let _ = sys::unflock(&fd);
            match attached? {
                Some((slot, gen)) => {
                    return Ok(Segment::attached(
                        location, dir, file, fork, fd, map, header, slot, gen,
                    ))
                }
                None => continue,
            }
        }
        Err(SegmentError::NotFound(what))
    }

    /// Under `flock`: checks the name still means this file, removes a stale
    /// segment, claims a slot. `Ok(None)`: look the name up again.
    fn attach_locked(
        dir: &Dir,
        file: &str,
        fd: &OwnedFd,
        map: &Mapping,
        header: &Header,
        spec: &Spec,
        what: &str,
    ) -> Result<Option<(u32, u32)>, SegmentError> {
        let region = Region::of(map);
        let flags = flags_word(region).load(Ordering::Acquire);
        if !sys::same_file(dir, file, fd).map_err(|e| SegmentError::io(what, e))? {
            return Ok(None);
        }
        if flags & FLAG_UNLINKED != 0 {
            // Marked for removal, yet still under its name while we hold the
            // attach lock: the marker is set only under this lock and the
            // unlink follows under it, so its remover died in between.
            // Finish the removal (crash-safe), and report the name absent.
            let _ = sys::unlink(dir, file);
            return Err(SegmentError::NotFound(what.to_owned()));
        }
        let payload = usize::try_from(header.payload_offset)
            .ok()
            .zip(usize::try_from(header.payload_len).ok())
            .and_then(|(off, len)| region.sub(off, len));
        let live = registry::any_slot_live(fd).map_err(|e| SegmentError::io(what, e))?;
        if !live && flags & FLAG_PERSISTENT == 0 && !payload.is_some_and(spec.abandoned) {
            // Its last process died without detaching: by the lifetime rule
            // the segment is gone. Finish the job, and report it absent.
            flags_word(region).fetch_or(FLAG_UNLINKED, Ordering::AcqRel);
            let _ = sys::unlink(dir, file);
            return Err(SegmentError::NotFound(what.to_owned()));
        }
        registry::claim(fd, region, payload, spec.tokens, what).map(Some)
    }

    /// Creates the segment, or opens it if it exists.
    pub(crate) fn open_or_create(
        opts: &SegmentOptions,
        spec: &Spec,
        payload_len: u64,
        init: impl Fn(Region<'_>),
    ) -> Result<Segment, SegmentError> {
        for _ in 0..16 {
            match Segment::open(opts, spec) {
                Err(SegmentError::NotFound(_)) => {}
                other => return other,
            }
            match Segment::create(opts, spec, payload_len, &init) {
                Err(SegmentError::AlreadyExists(_)) => {}
                other => return other,
            }
        }
        Err(SegmentError::Busy(opts.location()?.to_string()))
    }

    /// The payload bytes.
    #[inline]
    pub(crate) fn payload(&self) -> Region<'_> {
        self.check_not_forked();
        Region::of(&self.map)
            .sub(
                self.header.payload_offset as usize,
                self.header.payload_len as usize,
            )
            .expect("payload bounds were validated against the mapping at open")
        // our own invariant
    }

    /// The decoded header as of open.
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// Where it lives.
    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    /// Sets or clears the persistent flag, under the attach lock, so it
    /// cannot race a last handle deciding whether to unlink.
    pub(crate) fn set_persistent(&self, yes: bool) -> Result<(), SegmentError> {
        self.check_not_forked();
        let what = self.location.to_string();
        flock_timeout(&self.fd, Duration::from_secs(5), &what)?;
        let flags = flags_word(Region::of(&self.map));
        if yes {
            flags.fetch_or(FLAG_PERSISTENT, Ordering::AcqRel);
        } else {
            flags.fetch_and(!FLAG_PERSISTENT, Ordering::AcqRel);
        }
        let _ = sys::unflock(&self.fd);
        Ok(())
    }

    /// Whether the object still backs every page we mapped: its size, from
    /// `fstat`, is at least our mapping's length (the header's `total_len`
    /// when we opened it). A peer that shrank it makes this `false`, and
    /// touching the lost pages would raise `SIGBUS` (see the module docs).
    /// A grown object is harmless to us and counts as intact. Costs one
    /// system call: for slow paths only.
    pub(crate) fn is_intact(&self) -> bool {
        !self.forked() && sys::fstat(&self.fd).is_ok_and(|info| info.size >= self.map.len() as u64)
    }

    /// Whether the persistent flag is set now.
    pub(crate) fn is_persistent(&self) -> bool {
        self.check_not_forked();
        flags_word(Region::of(&self.map)).load(Ordering::Acquire) & FLAG_PERSISTENT != 0
    }
}

/// The panic of a handle used in a child created by `fork()`.
#[cold]
#[inline(never)]
#[track_caller]
fn used_in_forked_child(location: &Location) -> ! {
    panic!(
        "mapshare: {location}: a handle inherited through fork() was used in the child; \
         it is the parent's attachment (its slot, roles and locks). Open the segment anew \
         in the child (see \"fork() without exec\" in the mapshare::segment docs)"
    )
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.forked() {
            // The parent's attachment: leave its slot, flags and name
            // alone; only unmap and close (our descriptor is /dev/null by
            // now, and the mapping private zero pages: see `sys::guard_fork`).
            return;
        }
        let region = Region::of(&self.map);
        let locked = flock_timeout(&self.fd, Duration::from_secs(1), "").is_ok();
        // The registry and the flags live in the first page. If a peer
        // shrank the object below it, touching them would raise SIGBUS:
        // then only release our locks, and leave the name (we can no
        // longer tell whether it is persistent).
        let header_backed = sys::fstat(&self.fd).is_ok_and(|info| info.size >= HEADER_LEN as u64);
        registry::release(&self.fd, region, self.slot, header_backed);
        if locked && !header_backed {
            let _ = sys::unflock(&self.fd);
        } else if locked {
            let flags = flags_word(region).load(Ordering::Acquire);
            if flags & FLAG_PERSISTENT == 0
                && flags & FLAG_UNLINKED == 0
                && matches!(registry::any_slot_live(&self.fd), Ok(false))
            {
                flags_word(region).fetch_or(FLAG_UNLINKED, Ordering::AcqRel);
                if matches!(sys::same_file(&self.dir, &self.file, &self.fd), Ok(true)) {
                    let _ = sys::unlink(&self.dir, &self.file);
                }
            }
            let _ = sys::unflock(&self.fd);
        }
    }
}
