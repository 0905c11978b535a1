//! [`Event`]: a standalone named event ("data is ready").

use crate::error::{Fault, RecvTimeoutError, SegmentError};
use crate::layout::{Fingerprint, Kind};
use crate::options::{self, How, Options};
use crate::region::Region;
use crate::segment::{Location, Segment, Spec};
use crate::sync::event::{EventWord, MODE_AUTO, MODE_MANUAL};
use crate::sync::Liveness;
use crate::wait::{recv_forms, Wait};

/// Waits for the event word `w` of `seg` (shared by [`Event`] and
/// [`Shared`](crate::Shared)): the timeout form, with the segment checked
/// after every sleep.
pub(crate) fn wait_event(seg: &Segment, w: &EventWord, wait: Wait) -> Result<(), RecvTimeoutError> {
    let deadline = match wait {
        Wait::Try => Some(std::time::Instant::now()),
        Wait::Until(d) => d,
    };
    if w.wait(deadline, &|| seg.intact()) {
        Ok(())
    } else if !seg.intact() {
        Err(RecvTimeoutError::Fault(Fault::Truncated))
    } else {
        Err(RecvTimeoutError::Timeout)
    }
}

/// Whether a successful wait clears the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventMode {
    /// One successful wait consumes the signal (Win32 auto-reset).
    AutoReset,
    /// The signal stays until [`Event::reset`]; every wait passes (manual-reset).
    ManualReset,
}

/// A named event: one process says "data is ready", others wait for it.
///
/// Waiters sleep on a futex in the shared segment and wake within
/// microseconds of [`Event::notify`]; a notify that races a wait is never
/// lost. Auto-reset unless created with
/// [`Options::manual_reset`](crate::Options::manual_reset).
///
/// A wait is a receive of the signal, so it uses the receive errors: a
/// `try_wait` on a clear event is [`TryRecvError::Empty`](crate::TryRecvError::Empty),
/// a `wait_timeout` that runs out is [`RecvTimeoutError::Timeout`]. An
/// event has no sending side that can leave: `Disconnected` never happens.
///
/// # Examples
/// ```
/// use mapshare::Event;
/// use std::time::Duration;
/// # let name = format!("doc-event-{}", std::process::id());
/// let ready = Event::create(&name)?;
/// ready.notify();
/// assert!(ready.wait_timeout(Duration::from_millis(1)).is_ok());
/// assert!(ready.try_wait().is_err()); // consumed
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug)]
pub struct Event {
    seg: Segment,
}

fn spec() -> Spec {
    Spec {
        kind: Kind::Event,
        layout: Fingerprint::new("event", 128, 128),
        check_layout: true,
        min_payload: 128,
        tokens: crate::segment::no_tokens,
        abandoned: crate::segment::never_abandoned,
    }
}

fn init(p: Region<'_>, manual: bool) {
    if let Some(e) = p.get::<EventWord>(0) {
        e.init(if manual { MODE_MANUAL } else { MODE_AUTO });
    }
}

impl options::private::Sealed for Event {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        let manual = o.manual_reset;
        Ok(Event {
            seg: Segment::attach(&o.seg, how, &spec(), 128, |p| init(p, manual))?,
        })
    }
}
impl options::Attach for Event {}

impl Event {
    options::constructors!("an auto-reset event");

    /// Where the segment lives.
    pub fn location(&self) -> &Location {
        self.seg.location()
    }

    fn word(&self) -> &EventWord {
        self.seg
            .payload()
            .get::<EventWord>(0)
            .expect("validated at open") // min_payload checked
    }

    /// The mode chosen at creation.
    pub fn mode(&self) -> EventMode {
        if self.word().is_manual() {
            EventMode::ManualReset
        } else {
            EventMode::AutoReset
        }
    }

    /// Sets the event and wakes the waiters.
    pub fn notify(&self) {
        self.word().notify();
    }

    /// Clears the event.
    pub fn reset(&self) {
        self.word().reset();
    }

    /// Whether the event is set (without consuming it).
    pub fn is_set(&self) -> bool {
        self.word().is_set()
    }

    fn wait_inner(&self, wait: Wait) -> Result<(), RecvTimeoutError> {
        wait_event(&self.seg, self.word(), wait)
    }

    recv_forms!(
        /// Waits for the event (consuming the signal of an auto-reset event).
        try_wait, wait, wait_timeout, wait_deadline (&self) () -> () = wait_inner
    );

    /// Waits for the event without blocking the thread (feature `tokio`):
    /// the async form of [`wait`](Self::wait). Dropping the future cancels
    /// the wait and consumes nothing. Combine with `tokio::time::timeout`
    /// for a deadline.
    ///
    /// # Errors
    /// `Fault(Truncated)` if a peer shrank the segment.
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub async fn wait_async(&self) -> Result<(), crate::error::RecvError> {
        let seg = &self.seg;
        if crate::asyncio::event_wait(self.word(), None, &|| seg.intact()).await {
            Ok(())
        } else {
            Err(crate::error::RecvError::Fault(Fault::Truncated))
        }
    }
}

impl crate::waitset::private::Source for Event {
    fn ready(&self, _peers: bool) -> bool {
        self.word().is_set()
    }

    fn intact(&self) -> bool {
        self.seg.is_intact()
    }

    fn arm(&self) -> Option<(&crate::primitive::AtomicU32, u32)> {
        let w = self.word();
        let seen = w.seq();
        w.arm(seen).map(|v| (w.word(), v))
    }
}
impl crate::waitset::Waitable for Event {}
