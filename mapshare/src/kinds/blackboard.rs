//! The blackboard: the latest value of a plain-data `T`, one writer
//! ([`BlackboardWriter`]), any number of readers ([`BlackboardReader`]),
//! on a segment of kind [`Kind::Blackboard`].
//! Readers never block the writer, and never see a torn value.
//!
//! The protocol is the double-buffered seqlock of [`crate::queue::seqlock`]
//! (the algorithm, what a crash leaves, what a hostile peer can do); this
//! module maps it onto a segment. Payload layout:
//!
//! ```text
//!   0  BoardControl  latest version, writer token
//! 128  Doorbell      readers waiting for a newer version sleep here
//! 256  buffer 0      `stride` words: seq | T's bytes
//!   .  buffer 1      the same
//! ```

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::error::{Fault, RecvTimeoutError, SegmentError};
use crate::kinds::shared::{check_len, required_layout, LengthMismatch};
use crate::layout::{Fingerprint, Kind};
use crate::options::{self, How, Options};
use crate::queue::seqlock::{stride, Board, BoardControl};
use crate::region::Region;
use crate::segment::{Location, Segment, Spec};
use crate::sync::doorbell::{Doorbell, WaitStrategy};
use crate::sync::Liveness;
use crate::wait::{recv_forms, Wait};

const CTL_OFFSET: usize = 0;
const BELL_OFFSET: usize = 128;
const BUFFERS_OFFSET: usize = 256;

fn spec(layout: Fingerprint) -> Spec {
    Spec {
        kind: Kind::Blackboard,
        layout,
        check_layout: true,
        min_payload: BUFFERS_OFFSET as u64,
        tokens: |p, f| {
            if let Some(c) = p.get::<BoardControl>(CTL_OFFSET) {
                f(c.writer_token());
            }
        },
        abandoned: crate::segment::never_abandoned,
    }
}

/// The value's size for `layout`, if this platform can address it.
fn value_size(layout: &Fingerprint) -> Result<usize, SegmentError> {
    usize::try_from(layout.size())
        .map_err(|_| SegmentError::InvalidSize("blackboard value too large".into()))
}

fn payload_len(size: usize) -> Result<u64, SegmentError> {
    stride(size)
        .checked_mul(16)
        .and_then(|b| b.checked_add(BUFFERS_OFFSET))
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| SegmentError::InvalidSize("blackboard value too large".into()))
}

fn board_in(p: Region<'_>, size: usize) -> Option<Board<'_>> {
    Board::new(
        p.get::<BoardControl>(CTL_OFFSET)?,
        p.get::<Doorbell>(BELL_OFFSET)?,
        p.slice(BUFFERS_OFFSET, stride(size).checked_mul(2)?)?,
        size,
    )
}

/// Creates or opens the segment of a board of `layout` (shared by the typed
/// and the byte ends) and checks that the payload holds both buffers.
fn attach_segment(
    seg: &crate::segment::SegmentOptions,
    how: How,
    layout: &Fingerprint,
) -> Result<Segment, SegmentError> {
    let size = value_size(layout)?;
    let init = |p: Region<'_>| {
        if let Some(b) = board_in(p, size) {
            b.init();
        }
    };
    let seg = Segment::attach(seg, how, &spec(layout.clone()), payload_len(size)?, init)?;
    if board_in(seg.payload(), size).is_none() {
        return Err(SegmentError::Header {
            name: seg.location().to_string(),
            error: crate::error::HeaderError::BadSize {
                what: "blackboard buffers run past the payload",
            },
        });
    }
    Ok(seg)
}

fn board(seg: &Segment, size: usize) -> Board<'_> {
    board_in(seg.payload(), size).expect("checked at open") // the mapping never changes
}

/// Takes the writer role of an attached board; returns the latest version.
fn claim(seg: &Segment, size: usize) -> Result<u64, SegmentError> {
    board(seg, size).claim(seg).map_err(|_| {
        SegmentError::TooManyAttached(format!(
            "{}: a live blackboard writer is attached",
            seg.location()
        ))
    })
}

/// What a writer's drop does (shared by both writers).
fn release(seg: &Segment, size: usize) {
    if !seg.is_intact() {
        return; // shrunk by a peer: its words are gone (SIGBUS if touched)
    }
    board(seg, size).release(seg.token());
}

/// The writing end of a blackboard: one per board at a time. Writes never
/// wait, whatever the readers do.
///
/// # Examples
/// ```
/// use mapshare::{BlackboardReader, BlackboardWriter};
/// # let name = format!("doc-board-{}", std::process::id());
/// let mut w = BlackboardWriter::<[u64; 3]>::create(&name)?;
/// let r = BlackboardReader::<[u64; 3]>::open(&name)?;
/// w.write(&[1, 2, 3]);
/// assert_eq!(r.read_with_version().unwrap(), ([1, 2, 3], 1));
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
pub struct BlackboardWriter<T: Pod> {
    seg: Segment,
    version: u64,
    _t: PhantomData<fn(T)>,
}

impl<T: Pod> BlackboardWriter<T> {
    options::constructors!(
        "a blackboard (created holding `T::zeroed()` as version 0), as its writer,"
    );

    /// Publishes `value` as the next version. Never waits.
    pub fn write(&mut self, value: &T) {
        self.version = self.version.wrapping_add(1);
        board(&self.seg, std::mem::size_of::<T>()).write(self.version, bytemuck::bytes_of(value));
    }

    /// The version of the last value written (0: the initial zeroes, or
    /// what the previous writer left).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }
}

impl<T: Pod> options::private::Sealed for BlackboardWriter<T> {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let seg = attach_segment(&o.seg, how, &Fingerprint::of::<T>())?;
        let version = claim(&seg, std::mem::size_of::<T>())?;
        Ok(BlackboardWriter {
            seg,
            version,
            _t: PhantomData,
        })
    }
}
impl<T: Pod> options::Attach for BlackboardWriter<T> {}

impl<T: Pod> options::private::Sealed for BlackboardReader<T> {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let seg = attach_segment(&o.seg, how, &Fingerprint::of::<T>())?;
        Ok(BlackboardReader {
            seg,
            wait: o.wait,
            _t: PhantomData,
        })
    }
}
impl<T: Pod> options::Attach for BlackboardReader<T> {}

impl<T: Pod> Drop for BlackboardWriter<T> {
    fn drop(&mut self) {
        release(&self.seg, std::mem::size_of::<T>());
    }
}

/// A reading end of a blackboard. Reads copy the latest complete value out;
/// they never wait for the writer and never return a torn value.
pub struct BlackboardReader<T: Pod> {
    seg: Segment,
    wait: WaitStrategy,
    _t: PhantomData<fn() -> T>,
}

impl<T: Pod> BlackboardReader<T> {
    options::constructors!("a blackboard, as a reader,");

    fn read_into(&self, v: &mut T) -> Result<u64, Fault> {
        board(&self.seg, std::mem::size_of::<T>()).read(bytemuck::bytes_of_mut(v))
    }

    /// A copy of the latest complete value.
    ///
    /// # Errors
    /// [`Fault::Contended`]: no consistent copy after many
    /// attempts (a writer faster than the copy, or a corrupting peer).
    pub fn read(&self) -> Result<T, Fault> {
        self.read_with_version().map(|(v, _)| v)
    }

    /// A copy of the latest complete value, with its version (versions
    /// grow by one per write: compare them to tell whether it changed).
    ///
    /// # Errors
    /// As [`BlackboardReader::read`].
    pub fn read_with_version(&self) -> Result<(T, u64), Fault> {
        let mut v = T::zeroed();
        let version = self.read_into(&mut v)?;
        Ok((v, version))
    }

    /// The latest version, without copying the value.
    pub fn version(&self) -> u64 {
        board(&self.seg, std::mem::size_of::<T>()).latest()
    }

    /// Whether a live writer holds the board (asks the registry).
    pub fn writer_alive(&self) -> bool {
        !board(&self.seg, std::mem::size_of::<T>()).writer_gone(&self.seg)
    }

    fn read_newer_inner(&self, seen: u64, wait: Wait) -> Result<(T, u64), RecvTimeoutError> {
        let mut v = T::zeroed();
        let wait = wait.until().map(|deadline| (self.wait, deadline));
        let version = board(&self.seg, std::mem::size_of::<T>()).read_newer(
            seen,
            bytemuck::bytes_of_mut(&mut v),
            &self.seg,
            wait,
        )?;
        Ok((v, version))
    }

    recv_forms!(
        /// Waits for a version newer than `seen`, then reads it: the value
        /// and its version. When there is none it asks the registry whether
        /// the writer lives (a system call).
        ///
        /// # Errors
        /// `Disconnected` (no newer version and no live writer; the last
        /// value stays readable with [`BlackboardReader::read`]),
        /// `Fault(Contended)`.
        try_read_newer, read_newer, read_newer_timeout, read_newer_deadline (&self) (seen: u64) -> (T, u64) = read_newer_inner
    );

    /// Waits for a version newer than `seen` without blocking the thread
    /// (feature `tokio`), then reads it: the async form of
    /// [`read_newer`](Self::read_newer) (change notification).
    ///
    /// # Errors
    /// As [`read_newer`](Self::read_newer) (a killed writer is noticed
    /// within about 200 ms).
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn read_newer_async(&self, seen: u64) -> Result<(T, u64), crate::error::RecvError> {
        let mut v = T::zeroed();
        let version = board(&self.seg, std::mem::size_of::<T>())
            .read_newer_async(
                seen,
                bytemuck::bytes_of_mut(&mut v),
                &self.seg,
                std::time::Duration::from_millis(200),
            )
            .await
            .map_err(crate::wait::recv_blocking)?;
        Ok((v, version))
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }
}

impl<T: Pod> std::fmt::Debug for BlackboardWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlackboardWriter")
            .field("location", self.location())
            .field("layout", &Fingerprint::of::<T>())
            .field("version", &self.version)
            .finish()
    }
}

impl<T: Pod> std::fmt::Debug for BlackboardReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlackboardReader")
            .field("location", self.location())
            .field("layout", &Fingerprint::of::<T>())
            .finish()
    }
}

/// The writing end of a blackboard whose value layout is given at run time
/// (for bindings to other languages): the same segment as a
/// [`BlackboardWriter<T>`], the value written as bytes. A board created by
/// `BlackboardWriter::<Record>` opens with
/// [`Fingerprint::new`]`("Record", size, align)`, and the other way round;
/// another layout is [`SegmentError::LayoutMismatch`]. The layout is set
/// with [`Options::layout`] (required).
///
/// # Examples
/// ```
/// use mapshare::{BlackboardReader, BlackboardWriterBytes, Fingerprint};
/// # let name = format!("doc-board-bytes-{}", std::process::id());
/// let mut w = BlackboardWriterBytes::create(&name, Fingerprint::of::<u32>())?;
/// let r = BlackboardReader::<u32>::open(&name)?;
/// w.write(&5u32.to_ne_bytes())?;
/// assert_eq!(r.read_with_version()?, (5, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BlackboardWriterBytes {
    seg: Segment,
    layout: Fingerprint,
    size: usize,
    version: u64,
}

impl BlackboardWriterBytes {
    /// Options for a blackboard of a runtime layout named `name`, as its
    /// writer; set [`Options::layout`], then `create`, `open` or
    /// `open_or_create`.
    pub fn options(name: &str) -> Options<Self> {
        Options::new(name)
    }

    /// Creates a blackboard of `layout` (version 0, all zeroes) named
    /// `name`, as its writer.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).create()
    }

    /// Opens the blackboard named `name`, of `layout`, as its writer.
    ///
    /// # Errors
    /// As [`Options::open`]; [`SegmentError::TooManyAttached`] if a live
    /// writer holds it.
    pub fn open(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).open()
    }

    /// Opens the blackboard named `name`, creating it if needed, as its writer.
    ///
    /// # Errors
    /// As [`Options::open_or_create`].
    pub fn open_or_create(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).open_or_create()
    }

    /// Publishes `value` as the next version. Never waits.
    ///
    /// # Errors
    /// [`LengthMismatch`] (nothing written) unless `value` is exactly the
    /// layout's size.
    pub fn write(&mut self, value: &[u8]) -> Result<(), LengthMismatch> {
        check_len(self.size, value.len())?;
        self.version = self.version.wrapping_add(1);
        board(&self.seg, self.size).write(self.version, value);
        Ok(())
    }

    /// The version of the last value written (0: the initial zeroes, or
    /// what the previous writer left).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The value's layout.
    pub fn layout(&self) -> &Fingerprint {
        &self.layout
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }
}

impl options::private::Sealed for BlackboardWriterBytes {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let layout = required_layout(o)?.clone();
        let size = value_size(&layout)?;
        let seg = attach_segment(&o.seg, how, &layout)?;
        let version = claim(&seg, size)?;
        Ok(BlackboardWriterBytes {
            seg,
            layout,
            size,
            version,
        })
    }
}
impl options::Attach for BlackboardWriterBytes {}
impl options::HasLayout for BlackboardWriterBytes {}

impl Drop for BlackboardWriterBytes {
    fn drop(&mut self) {
        release(&self.seg, self.size);
    }
}

/// A reading end of a blackboard whose value layout is given at run time:
/// the byte form of [`BlackboardReader<T>`] (see [`BlackboardWriterBytes`]).
pub struct BlackboardReaderBytes {
    seg: Segment,
    wait: WaitStrategy,
    layout: Fingerprint,
    size: usize,
}

impl BlackboardReaderBytes {
    /// Options for a blackboard of a runtime layout named `name`, as a
    /// reader; set [`Options::layout`], then `create`, `open` or
    /// `open_or_create`.
    pub fn options(name: &str) -> Options<Self> {
        Options::new(name)
    }

    /// Creates a blackboard of `layout` named `name`, as a reader.
    ///
    /// # Errors
    /// As [`Options::create`].
    pub fn create(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).create()
    }

    /// Opens the blackboard named `name`, of `layout`, as a reader.
    ///
    /// # Errors
    /// As [`Options::open`].
    pub fn open(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).open()
    }

    /// Opens the blackboard named `name`, creating it if needed, as a reader.
    ///
    /// # Errors
    /// As [`Options::open_or_create`].
    pub fn open_or_create(name: &str, layout: Fingerprint) -> Result<Self, SegmentError> {
        Self::options(name).layout(layout).open_or_create()
    }

    /// Copies the latest complete value into `dst`; returns its version.
    ///
    /// # Errors
    /// As [`BlackboardReader::read`].
    ///
    /// # Panics
    /// If `dst` is not exactly the layout's size (a caller's mistake).
    pub fn read_into(&self, dst: &mut [u8]) -> Result<u64, Fault> {
        assert_eq!(
            dst.len(),
            self.size,
            "buffer length must be the layout's size"
        );
        board(&self.seg, self.size).read(dst)
    }

    /// A copy of the latest complete value, with its version.
    ///
    /// # Errors
    /// As [`BlackboardReader::read`].
    pub fn read_with_version(&self) -> Result<(Vec<u8>, u64), Fault> {
        let mut v = vec![0; self.size];
        let version = self.read_into(&mut v)?;
        Ok((v, version))
    }

    /// A copy of the latest complete value.
    ///
    /// # Errors
    /// As [`BlackboardReader::read`].
    pub fn read(&self) -> Result<Vec<u8>, Fault> {
        self.read_with_version().map(|(v, _)| v)
    }

    /// The latest version, without copying the value.
    pub fn version(&self) -> u64 {
        board(&self.seg, self.size).latest()
    }

    /// Whether a live writer holds the board (asks the registry).
    pub fn writer_alive(&self) -> bool {
        !board(&self.seg, self.size).writer_gone(&self.seg)
    }

    /// The value's layout.
    pub fn layout(&self) -> &Fingerprint {
        &self.layout
    }

    /// The value's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    fn read_newer_into_inner(
        &self,
        seen: u64,
        dst: &mut [u8],
        wait: Wait,
    ) -> Result<u64, RecvTimeoutError> {
        assert_eq!(
            dst.len(),
            self.size,
            "buffer length must be the layout's size"
        );
        let wait = wait.until().map(|deadline| (self.wait, deadline));
        board(&self.seg, self.size).read_newer(seen, dst, &self.seg, wait)
    }

    fn read_newer_inner(&self, seen: u64, wait: Wait) -> Result<(Vec<u8>, u64), RecvTimeoutError> {
        let mut v = vec![0; self.size];
        let version = self.read_newer_into_inner(seen, &mut v, wait)?;
        Ok((v, version))
    }

    recv_forms!(
        /// Waits for a version newer than `seen`, then reads it: the value
        /// and its version, as [`BlackboardReader::read_newer`].
        ///
        /// # Errors
        /// As [`BlackboardReader::read_newer`].
        try_read_newer, read_newer, read_newer_timeout, read_newer_deadline (&self) (seen: u64) -> (Vec<u8>, u64) = read_newer_inner
    );

    recv_forms!(
        /// Waits for a version newer than `seen`, then copies it into
        /// `dst` and returns its version.
        ///
        /// # Errors
        /// As [`BlackboardReader::read_newer`].
        ///
        /// # Panics
        /// If `dst` is not exactly the layout's size (a caller's mistake).
        try_read_newer_into, read_newer_into, read_newer_into_timeout, read_newer_into_deadline (&self) (seen: u64, dst: &mut [u8]) -> u64 = read_newer_into_inner
    );
}

impl options::private::Sealed for BlackboardReaderBytes {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let layout = required_layout(o)?.clone();
        let size = value_size(&layout)?;
        let seg = attach_segment(&o.seg, how, &layout)?;
        Ok(BlackboardReaderBytes {
            seg,
            wait: o.wait,
            layout,
            size,
        })
    }
}
impl options::Attach for BlackboardReaderBytes {}
impl options::HasLayout for BlackboardReaderBytes {}

impl std::fmt::Debug for BlackboardWriterBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlackboardWriterBytes")
            .field("location", self.location())
            .field("layout", &self.layout)
            .field("version", &self.version)
            .finish()
    }
}

impl std::fmt::Debug for BlackboardReaderBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlackboardReaderBytes")
            .field("location", self.location())
            .field("layout", &self.layout)
            .finish()
    }
}
