//! `Mutex` (with `MutexGuard`) and `Event`, and the sliced lock that the
//! shared value's guard uses too.
//!
//! A guard outlives the Python call that took it (it is a context manager,
//! or handed over by `OwnerDied`), so it owns a reference to its handle and
//! borrows from it, through `self_cell` (no unsafe code of ours).

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use mapshare::{Fault, LockTimeoutError, RecvTimeoutError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::common::{attach, ctors, handle_methods, recv_raw, Common, Handle, How};
use crate::errors;
use crate::wait;

/// How one attempt at a lock ended, guard-free (to leave the wait loop).
pub(crate) enum LockFail {
    Timeout,
    Fault(Fault),
    Other(String),
}

/// Turns a lock attempt's outcome into (guard, owner died) or a failure.
pub(crate) fn lock_outcome<G>(r: Result<G, LockTimeoutError<G>>) -> Result<(G, bool), LockFail> {
    match r {
        Ok(g) => Ok((g, false)),
        Err(LockTimeoutError::OwnerDied(g)) => Ok((g, true)),
        Err(LockTimeoutError::Timeout) => Err(LockFail::Timeout),
        Err(LockTimeoutError::Fault(f)) => Err(LockFail::Fault(f)),
        Err(e) => Err(LockFail::Other(e.to_string())),
    }
}

/// Takes a lock in slices (GIL released, signals checked): `attempt(slice)`
/// makes one bounded attempt and returns the held guard and whether the
/// previous owner died. `Ok(None)`: the timeout ran out.
pub(crate) fn lock_sliced<H: Send>(
    py: Python<'_>,
    what: &str,
    timeout: Option<f64>,
    mut attempt: impl FnMut(Duration) -> Result<(H, bool), LockFail> + Send,
) -> PyResult<Option<(H, bool)>> {
    let timeout = wait::timeout_arg(timeout)?;
    let r = wait::sliced(py, timeout, |slice| match attempt(slice) {
        Err(LockFail::Timeout) => None,
        r => Some(r),
    })?;
    match r {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(LockFail::Fault(f))) => Err(errors::raise(py, "Fault", format!("{what}: {f}"))),
        Some(Err(LockFail::Other(m))) => Err(errors::raise(py, "Error", format!("{what}: {m}"))),
        Some(Err(LockFail::Timeout)) => Ok(None),
    }
}

/// Hands a guard to Python: returned as is, or (previous owner died)
/// raised inside `OwnerDied`, whose `guard` holds it.
pub(crate) fn hand_over<T: pyo3::PyClass>(
    py: Python<'_>,
    what: &str,
    guard: Py<T>,
    died: bool,
) -> PyResult<Py<T>> {
    if !died {
        return Ok(guard);
    }
    Err(errors::raise_with(
        py,
        "OwnerDied",
        format!(
            "{what}: previous lock owner died while holding the lock; the lock is held now by exc.guard (repair the data, then unlock)"
        ),
        &[("guard", guard.into_bound(py).into_any())],
    ))
}

/// The lock a guard object (`MutexGuard`, `SharedGuard`) holds: held
/// until `unlock()`, `with` exit or garbage collection of the object.
pub(crate) struct Held<H> {
    pub(crate) name: String,
    held: StdMutex<Option<H>>,
}

impl<H> Held<H> {
    pub(crate) fn new(name: String, h: H) -> Held<H> {
        Held {
            name,
            held: StdMutex::new(Some(h)),
        }
    }

    /// Unlocks (again: nothing).
    pub(crate) fn release(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(held); // unlocks
    }

    pub(crate) fn locked(&self) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Runs `f` on the held guard; `ValueError` once unlocked.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut H) -> PyResult<R>) -> PyResult<R> {
        let mut g = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(h) => f(h),
            None => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "{}: the guard was unlocked",
                self.name
            ))),
        }
    }
}

/// `unlock`, `locked`, the context manager and `repr` of a guard class
/// whose [`Held`] is its field `g`.
macro_rules! guard_methods {
    ($ty:ident, $label:literal) => {
        #[pymethods]
        impl $ty {
            /// Releases the lock (again: nothing).
            fn unlock(&self) {
                self.g.release();
            }

            /// Whether this guard still holds the lock.
            #[getter]
            fn locked(&self) -> bool {
                self.g.locked()
            }

            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            #[pyo3(signature = (*_args))]
            fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
                self.g.release();
            }

            fn __repr__(&self) -> String {
                let state = if self.g.locked() {
                    "locked"
                } else {
                    "unlocked"
                };
                format!(concat!("<mapshare.", $label, " {} {}>"), self.g.name, state)
            }
        }
    };
}

pub(crate) use guard_methods;

type HeldGuard<'a> = mapshare::MutexGuard<'a>;

self_cell::self_cell!(
    /// A mutex guard beside the handle it borrows.
    pub(crate) struct HeldMutex {
        owner: Arc<mapshare::Mutex>,
        #[covariant]
        dependent: HeldGuard,
    }
);

/// A robust named mutex shared between processes.
///
/// A holder killed at any moment (SIGKILL included) never blocks the
/// others: the next ``lock`` takes the lock over and raises
/// ``OwnerDied``, whose ``guard`` attribute holds the lock: the protected
/// data may be half-updated, so the caller must look.
///
/// ``Mutex.create / open / open_or_create(name, *, persistent=False,
/// mode=None, allow_foreign_owner=False, attach_timeout=None)``.
/// ``lock(timeout=None)`` returns a ``MutexGuard`` (a context manager with
/// ``unlock()``); ``with mutex:`` locks and unlocks around a block.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Mutex {
    h: Handle<mapshare::Mutex>,
    /// Guards taken by `__enter__`, released by `__exit__`.
    entered: StdMutex<Vec<Py<MutexGuard>>>,
}

/// Holds a ``Mutex``. ``unlock()`` (or leaving a ``with`` block) releases
/// it; so does garbage collection of the guard.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct MutexGuard {
    g: Held<HeldMutex>,
}

impl Mutex {
    fn make(py: Python<'_>, how: How, name: &str, c: Common) -> PyResult<Mutex> {
        let o = c.apply(mapshare::Mutex::options(name))?;
        let m = attach(py, o, how)?;
        Ok(Mutex {
            h: Handle::new(m.location().to_string(), m),
            entered: StdMutex::new(Vec::new()),
        })
    }

    /// Locks in slices; the guard, whether the owner died; `None`: timed out.
    fn take(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<Option<(Py<MutexGuard>, bool)>> {
        let m = self.h.get()?;
        let r = lock_sliced(py, &self.h.name, timeout, |slice| {
            let mut died = false;
            let held = HeldMutex::try_new(m.clone(), |m| {
                lock_outcome(m.lock_timeout(slice)).map(|(g, d)| {
                    died = d;
                    g
                })
            })?;
            Ok((held, died))
        })?;
        match r {
            None => Ok(None),
            Some((held, died)) => {
                let g = Py::new(
                    py,
                    MutexGuard {
                        g: Held::new(self.h.name.clone(), held),
                    },
                )?;
                Ok(Some((g, died)))
            }
        }
    }
}

#[pymethods]
impl Mutex {
    /// Locks, waiting at most ``timeout`` seconds (None: as long as it
    /// takes); returns the ``MutexGuard``. Raises ``Timeout``, or
    /// ``OwnerDied`` (the lock is then held by ``exc.guard``).
    #[pyo3(signature = (timeout=None))]
    fn lock(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<MutexGuard>> {
        match self.take(py, timeout)? {
            Some((g, died)) => hand_over(py, &self.h.name, g, died),
            None => Err(errors::timeout(py, &self.h.name)),
        }
    }

    /// Locks if no live process holds the lock now; else returns None.
    /// A dead owner's lock is taken over (``OwnerDied``, with the guard).
    fn try_lock(&self, py: Python<'_>) -> PyResult<Option<Py<MutexGuard>>> {
        match self.take(py, Some(0.0))? {
            Some((g, died)) => hand_over(py, &self.h.name, g, died).map(Some),
            None => Ok(None),
        }
    }

    /// ``with mutex:`` locks as long as it takes (``OwnerDied`` is raised
    /// from the ``with`` statement, holding the guard); the guard is
    /// returned.
    fn __enter__(&self, py: Python<'_>) -> PyResult<Py<MutexGuard>> {
        let g = self.lock(py, None)?;
        self.entered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(g.clone_ref(py));
        Ok(g)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        let g = self.entered.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(g) = g {
            g.get().g.release();
        }
    }
}

ctors!(Mutex, [], [], "mutex");
handle_methods!(@close Mutex, "Drops this object's handle (guards still held keep the segment\nattached until they unlock).");
handle_methods!(@repr Mutex, "Mutex");
guard_methods!(MutexGuard, "MutexGuard");

// ------------------------------------------------------------------ Event

/// A named event: one process says "data is ready", others wait for it.
///
/// ``Event.create / open / open_or_create(name, *, manual_reset=False,
/// persistent=False, mode=None, allow_foreign_owner=False,
/// attach_timeout=None)``. Auto-reset (one ``wait`` consumes a
/// ``notify``) unless ``manual_reset=True`` (the signal stays until
/// ``reset()``). ``wait(timeout=None)`` raises ``Timeout``.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Event {
    pub(crate) h: Handle<mapshare::Event>,
}

impl Event {
    fn make(
        py: Python<'_>,
        how: How,
        name: &str,
        manual_reset: bool,
        c: Common,
    ) -> PyResult<Event> {
        let o = c
            .apply(mapshare::Event::options(name))?
            .manual_reset(manual_reset);
        let e = attach(py, o, how)?;
        Ok(Event {
            h: Handle::new(e.location().to_string(), e),
        })
    }
}

#[pymethods]
impl Event {
    /// Sets the signal, waking waiters.
    fn notify(&self) -> PyResult<()> {
        self.h.get()?.notify();
        Ok(())
    }

    /// Clears the signal (manual-reset events).
    fn reset(&self) -> PyResult<()> {
        self.h.get()?.reset();
        Ok(())
    }

    /// Whether the signal is set now.
    #[getter]
    fn is_set(&self) -> PyResult<bool> {
        Ok(self.h.get()?.is_set())
    }

    /// Whether the event is manual-reset.
    #[getter]
    fn manual_reset(&self) -> PyResult<bool> {
        Ok(self.h.get()?.mode() == mapshare::EventMode::ManualReset)
    }

    /// Waits for the signal at most ``timeout`` seconds (None: as long as
    /// it takes); consumes it if auto-reset. Raises ``Timeout``.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let e = self.h.get()?;
        crate::common::recv_with(py, &self.h.name, timeout, |d| e.wait_timeout(d))
    }

    /// Consumes the signal if it is set now; returns whether it was.
    fn try_wait(&self, py: Python<'_>) -> PyResult<bool> {
        let e = self.h.get()?;
        match recv_raw(py, Some(0.0), |d| e.wait_timeout(d))? {
            Ok(()) => Ok(true),
            Err(RecvTimeoutError::Timeout) => Ok(false),
            Err(err) => Err(errors::recv(py, &self.h.name, err)),
        }
    }
}

ctors!(Event, [], [manual_reset: bool = false], "event");
handle_methods!(Event, "Event");
