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

fn spec<T: Pod>() -> Spec {
    Spec {
        kind: Kind::Blackboard,
        layout: Fingerprint::of::<T>(),
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

fn payload_len<T: Pod>() -> Result<u64, SegmentError> {
    stride(std::mem::size_of::<T>())
        .checked_mul(16)
        .and_then(|b| b.checked_add(BUFFERS_OFFSET))
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| SegmentError::InvalidSize("blackboard value too large".into()))
}

fn board_in<T: Pod>(p: Region<'_>) -> Option<Board<'_>> {
    let size = std::mem::size_of::<T>();
    Board::new(
        p.get::<BoardControl>(CTL_OFFSET)?,
        p.get::<Doorbell>(BELL_OFFSET)?,
        p.slice(BUFFERS_OFFSET, stride(size).checked_mul(2)?)?,
        size,
    )
}

fn init<T: Pod>(p: Region<'_>) {
    if let Some(b) = board_in::<T>(p) {
        b.init();
    }
}

/// Checks that the payload holds both buffers for `T`.
fn check<T: Pod>(seg: Segment) -> Result<Segment, SegmentError> {
    if board_in::<T>(seg.payload()).is_none() {
        return Err(SegmentError::Header {
            name: seg.location().to_string(),
            error: crate::error::HeaderError::BadSize {
                what: "blackboard buffers run past the payload",
            },
        });
    }
    Ok(seg)
}

fn board<T: Pod>(seg: &Segment) -> Board<'_> {
    board_in::<T>(seg.payload()).expect("checked at open") // the mapping never changes
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

    fn claim(seg: Segment) -> Result<Self, SegmentError> {
        match board::<T>(&seg).claim(&seg) {
            Ok(version) => Ok(BlackboardWriter {
                seg,
                version,
                _t: PhantomData,
            }),
            Err(_) => Err(SegmentError::TooManyAttached(format!(
                "{}: a live blackboard writer is attached",
                seg.location()
            ))),
        }
    }

    /// Publishes `value` as the next version. Never waits.
    pub fn write(&mut self, value: &T) {
        self.version = self.version.wrapping_add(1);
        board::<T>(&self.seg).write(self.version, bytemuck::bytes_of(value));
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
        let seg = Segment::attach(&o.seg, how, &spec::<T>(), payload_len::<T>()?, init::<T>)?;
        Self::claim(check::<T>(seg)?)
    }
}
impl<T: Pod> options::Attach for BlackboardWriter<T> {}

impl<T: Pod> options::private::Sealed for BlackboardReader<T> {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let seg = Segment::attach(&o.seg, how, &spec::<T>(), payload_len::<T>()?, init::<T>)?;
        Ok(BlackboardReader {
            seg: check::<T>(seg)?,
            wait: o.wait,
            _t: PhantomData,
        })
    }
}
impl<T: Pod> options::Attach for BlackboardReader<T> {}

impl<T: Pod> Drop for BlackboardWriter<T> {
    fn drop(&mut self) {
        if !self.seg.is_intact() {
            return; // shrunk by a peer: its words are gone (SIGBUS if touched)
        }
        board::<T>(&self.seg).release(self.seg.token());
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
        board::<T>(&self.seg).read(bytemuck::bytes_of_mut(v))
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
        board::<T>(&self.seg).latest()
    }

    /// Whether a live writer holds the board (asks the registry).
    pub fn writer_alive(&self) -> bool {
        !board::<T>(&self.seg).writer_gone(&self.seg)
    }

    fn read_newer_inner(&self, seen: u64, wait: Wait) -> Result<(T, u64), RecvTimeoutError> {
        let mut v = T::zeroed();
        let wait = wait.until().map(|deadline| (self.wait, deadline));
        let version = board::<T>(&self.seg).read_newer(
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
        let version = board::<T>(&self.seg)
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
