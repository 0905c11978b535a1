//! Blocking calls from Python: the GIL is released while waiting, and the
//! wait goes in slices of at most [`SLICE`], with `check_signals` between
//! them, so Ctrl-C (`KeyboardInterrupt`) interrupts any wait within about
//! that long and no call can hang the interpreter.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Longest stretch a wait spends without looking at pending signals.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// A `timeout=` argument in seconds: `None` waits as long as it takes,
/// `0` does not wait.
pub(crate) fn timeout_arg(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(
            "timeout must be a non-negative number of seconds, or None",
        )),
        Some(t) if t.is_infinite() => Ok(None),
        // Beyond `Duration`'s range is "as long as it takes" too.
        Some(t) => Ok(Duration::try_from_secs_f64(t).ok()),
    }
}

/// Runs `step(slice)` with the GIL released until it returns `Some`, each
/// call waiting at most `slice` (never more than [`SLICE`], never past the
/// deadline). Between slices it runs Python's signal handlers: an
/// exception they raise (`KeyboardInterrupt`) ends the wait. `Ok(None)`:
/// the timeout ran out. A zero timeout makes exactly one call with a zero
/// slice (a try).
pub(crate) fn sliced<R: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut step: impl FnMut(Duration) -> Option<R> + Send,
) -> PyResult<Option<R>> {
    // A deadline past what `Instant` can represent: as long as it takes.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        if let Some(r) = py.detach(|| step(slice)) {
            return Ok(Some(r));
        }
        py.check_signals()?;
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return Ok(None);
            }
        }
    }
}
