//! `Shared` (with `SharedGuard`), `BlackboardWriter`, `BlackboardReader`:
//! values of a layout given at run time (a numpy dtype or a
//! `(type_name, size, align)` tuple) whose fingerprint matches a Rust
//! `#[repr(C)]` struct of the same name, size and alignment.

use std::sync::Arc;

use mapshare::{RecvTimeoutError, SharedBytes};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::common::{
    attach, ctors, handle_methods, recv_raw, recv_with, Common, Handle, How, Layout, Slot,
};
use crate::errors;
use crate::sync::{guard_methods, hand_over, lock_outcome, lock_sliced, Held};

type HeldGuard<'a> = mapshare::SharedBytesGuard<'a>;

self_cell::self_cell!(
    /// A shared value's guard beside the handle it borrows.
    pub(crate) struct HeldShared {
        owner: Arc<SharedBytes>,
        #[covariant]
        dependent: HeldGuard,
    }
);

/// One value shared between processes by name, with a robust lock and a
/// data-ready event: the Rust ``Shared<T>``, its ``T`` given as a layout.
///
/// ``Shared.create / open / open_or_create(name, layout, *,
/// type_name=None, persistent=False, mode=None, allow_foreign_owner=False,
/// attach_timeout=None)``. ``layout`` is a numpy dtype (use
/// ``align=True`` to match ``#[repr(C)]``; ``type_name`` is the Rust
/// struct's name, derived for plain scalars such as ``"f8"`` -> ``f64``)
/// or a ``(type_name, size, align)`` tuple. Opening a value of another
/// layout raises ``LayoutMismatch`` naming both.
///
/// ``get(timeout=None)`` returns the value (a numpy scalar of the dtype,
/// or ``bytes`` for a tuple layout); ``set(value, timeout=None)`` stores
/// it; each locks around the copy. ``lock(timeout=None)`` returns a
/// ``SharedGuard`` for several steps under one lock. ``notify()`` and
/// ``wait(timeout=None)`` are the data-ready event.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Shared {
    h: Handle<SharedBytes>,
    layout: Arc<Layout>,
}

/// Holds the lock of a ``Shared`` value: ``get()``, ``set(value)``,
/// ``unlock()``; a context manager.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct SharedGuard {
    layout: Arc<Layout>,
    g: Held<HeldShared>,
}

impl Shared {
    fn make(
        py: Python<'_>,
        how: How,
        name: &str,
        layout: &Bound<'_, PyAny>,
        type_name: Option<&str>,
        c: Common,
    ) -> PyResult<Shared> {
        let layout = Layout::from_py(py, layout, type_name)?;
        let o = c
            .apply(SharedBytes::options(name))?
            .layout(layout.fingerprint.clone());
        let s = attach(py, o, how)?;
        Ok(Shared {
            h: Handle::new(s.location().to_string(), s),
            layout: Arc::new(layout),
        })
    }

    fn take(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<(Py<SharedGuard>, bool)> {
        let s = self.h.get()?;
        let r = lock_sliced(py, &self.h.name, timeout, |slice| {
            let mut died = false;
            let held = HeldShared::try_new(s.clone(), |s| {
                lock_outcome(s.lock_timeout(slice)).map(|(g, d)| {
                    died = d;
                    g
                })
            })?;
            Ok((held, died))
        })?;
        let Some((held, died)) = r else {
            return Err(errors::timeout(py, &self.h.name));
        };
        let g = Py::new(
            py,
            SharedGuard {
                layout: self.layout.clone(),
                g: Held::new(self.h.name.clone(), held),
            },
        )?;
        Ok((g, died))
    }
}

#[pymethods]
impl Shared {
    /// Locks the value, waiting at most ``timeout`` seconds (None: as long
    /// as it takes); returns the ``SharedGuard``. Raises ``Timeout``, or
    /// ``OwnerDied`` (the lock is then held by ``exc.guard``).
    #[pyo3(signature = (timeout=None))]
    fn lock(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<SharedGuard>> {
        let (g, died) = self.take(py, timeout)?;
        hand_over(py, &self.h.name, g, died)
    }

    /// A copy of the value, taken under the lock.
    #[pyo3(signature = (timeout=None))]
    fn get<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let (g, died) = self.take(py, timeout)?;
        let g = hand_over(py, &self.h.name, g, died)?;
        let v = g.get().get(py);
        g.get().g.release();
        v
    }

    /// Stores ``value`` under the lock: a buffer of exactly the layout's
    /// size, or (with a dtype) anything ``numpy.asarray(value, dtype)``
    /// makes one value of. Raises ``LengthMismatch``.
    #[pyo3(signature = (value, timeout=None))]
    fn set(&self, py: Python<'_>, value: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let bytes = self.layout.to_bytes(py, value)?;
        let (g, died) = self.take(py, timeout)?;
        let g = hand_over(py, &self.h.name, g, died)?;
        let r = g.get().store(py, &bytes);
        g.get().g.release();
        r
    }

    /// Signals "data is ready" (auto-reset: one wait consumes it).
    fn notify(&self) -> PyResult<()> {
        self.h.get()?.notify();
        Ok(())
    }

    /// Waits for ``notify`` at most ``timeout`` seconds (None: as long as it
    /// takes), consuming it. Raises ``Timeout``.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let s = self.h.get()?;
        recv_with(py, &self.h.name, timeout, |d| s.wait_timeout(d))
    }

    /// Consumes a pending ``notify`` if there is one; returns whether.
    fn try_wait(&self, py: Python<'_>) -> PyResult<bool> {
        let s = self.h.get()?;
        match recv_raw(py, Some(0.0), |d| s.wait_timeout(d))? {
            Ok(()) => Ok(true),
            Err(RecvTimeoutError::Timeout) => Ok(false),
            Err(e) => Err(errors::recv(py, &self.h.name, e)),
        }
    }

    /// ``(type_name, size, align)``.
    #[getter]
    fn layout<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.layout.tuple(py)
    }

    /// The numpy dtype, or None for a tuple layout.
    #[getter]
    fn dtype(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.layout.dtype.as_ref().map(|d| d.clone_ref(py))
    }

    /// Size of the value in bytes.
    #[getter]
    fn size(&self) -> usize {
        self.layout.size()
    }

    fn __repr__(&self) -> String {
        format!(
            "<mapshare.Shared {} {}>",
            self.h.name, self.layout.fingerprint
        )
    }
}

ctors!(
    Shared,
    [layout: &Bound<'_, PyAny>],
    [type_name: Option<&str> = None],
    "Creates the value ``name`` (all zeroes) of ``layout``.",
    "Opens the value ``name``, whose layout must be ``layout``.",
    "Opens the value ``name``, creating it if needed."
);
handle_methods!(@close Shared, "Drops this object's handle (a guard still held keeps the segment\nattached until it unlocks).");
handle_methods!(@context Shared);

impl SharedGuard {
    fn get<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let bytes = self.g.with(|h| Ok(h.borrow_dependent().get()))?;
        self.layout.value_of(py, &bytes)
    }

    fn store(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<()> {
        self.g.with(|h| {
            h.with_dependent_mut(|_, g| g.set(bytes))
                .map_err(|e| errors::raise(py, "LengthMismatch", format!("{}: {e}", self.g.name)))
        })
    }
}

#[pymethods]
impl SharedGuard {
    /// A copy of the value.
    #[pyo3(name = "get")]
    fn py_get<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.get(py)
    }

    /// Stores ``value`` (as ``Shared.set``).
    #[pyo3(name = "set")]
    fn py_set(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = self.layout.to_bytes(py, value)?;
        self.store(py, &bytes)
    }
}

guard_methods!(SharedGuard, "SharedGuard");

// ------------------------------------------------------------- blackboard

/// The writing end of a blackboard: the latest value of a layout, one
/// writer, any number of readers; writes never wait and readers never see
/// a torn value. The Rust ``BlackboardWriter<T>``, ``T`` given as a layout
/// (as for ``Shared``).
///
/// ``BlackboardWriter.create / open / open_or_create(name, layout, *,
/// type_name=None, persistent=False, ...)``; ``write(value)`` publishes
/// the next version. A second live writer is refused (``TooManyAttached``).
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct BlackboardWriter {
    h: Slot<mapshare::BlackboardWriterBytes>,
    layout: Layout,
}

/// A reading end of a blackboard: ``read()`` returns the latest value,
/// ``read_with_version()`` the value and its version, ``read_newer(seen,
/// timeout=None)`` waits for a version newer than ``seen`` (raises
/// ``Disconnected`` if there is none and no live writer).
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct BlackboardReader {
    h: Handle<mapshare::BlackboardReaderBytes>,
    layout: Layout,
}

macro_rules! board_ctors {
    ($ty:ident, $wrap:ident, $rust:ty) => {
        impl $ty {
            fn make(py: Python<'_>, how: How, name: &str, layout: &Bound<'_, PyAny>, type_name: Option<&str>, c: Common) -> PyResult<$ty> {
                let layout = Layout::from_py(py, layout, type_name)?;
                let o = c.apply(<$rust>::options(name))?.layout(layout.fingerprint.clone());
                let h = attach(py, o, how)?;
                Ok($ty { h: $wrap::new(h.location().to_string(), h), layout })
            }
        }

        ctors!(
            $ty,
            [layout: &Bound<'_, PyAny>],
            [type_name: Option<&str> = None],
            "Creates the blackboard ``name`` (version 0, all zeroes) of ``layout``.",
            "Opens the blackboard ``name``, whose layout must be ``layout``.",
            "Opens the blackboard ``name``, creating it if needed."
        );

        #[pymethods]
        impl $ty {
            /// ``(type_name, size, align)``.
            #[getter]
            fn layout<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
                self.layout.tuple(py)
            }

            /// The numpy dtype, or None for a tuple layout.
            #[getter]
            fn dtype(&self, py: Python<'_>) -> Option<Py<PyAny>> {
                self.layout.dtype.as_ref().map(|d| d.clone_ref(py))
            }
        }
    };
}

board_ctors!(BlackboardWriter, Slot, mapshare::BlackboardWriterBytes);
board_ctors!(BlackboardReader, Handle, mapshare::BlackboardReaderBytes);

#[pymethods]
impl BlackboardWriter {
    /// Publishes ``value`` (as ``Shared.set`` takes it) as the next
    /// version. Never waits.
    fn write(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = self.layout.to_bytes(py, value)?;
        let name = &self.h.name;
        self.h.with(|w| {
            w.write(&bytes)
                .map_err(|e| errors::raise(py, "LengthMismatch", format!("{name}: {e}")))
        })
    }

    /// The version of the last value written.
    #[getter]
    fn version(&self) -> PyResult<u64> {
        self.h.with(|w| Ok(w.version()))
    }
}

handle_methods!(BlackboardWriter, "BlackboardWriter");

#[pymethods]
impl BlackboardReader {
    /// The latest complete value.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.h.get()?;
        let v = r.read().map_err(|f| errors::fault(py, f))?;
        self.layout.value_of(py, &v)
    }

    /// ``(value, version)`` of the latest complete value.
    fn read_with_version<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, u64)> {
        let r = self.h.get()?;
        let (v, version) = r.read_with_version().map_err(|f| errors::fault(py, f))?;
        Ok((self.layout.value_of(py, &v)?, version))
    }

    /// Waits for a version newer than ``seen`` at most ``timeout`` seconds
    /// (None: as long as it takes) and returns ``(value, version)``.
    /// Raises ``Timeout``, ``Disconnected`` (no newer version and no live
    /// writer; ``read()`` still returns the last value).
    #[pyo3(signature = (seen, timeout=None))]
    fn read_newer<'py>(
        &self,
        py: Python<'py>,
        seen: u64,
        timeout: Option<f64>,
    ) -> PyResult<(Bound<'py, PyAny>, u64)> {
        let r = self.h.get()?;
        let (v, version) = recv_with(py, &self.h.name, timeout, |d| r.read_newer_timeout(seen, d))?;
        Ok((self.layout.value_of(py, &v)?, version))
    }

    /// The latest version number, without copying the value.
    #[getter]
    fn version(&self) -> PyResult<u64> {
        Ok(self.h.get()?.version())
    }

    /// Whether a live writer holds the board.
    #[getter]
    fn writer_alive(&self) -> PyResult<bool> {
        Ok(self.h.get()?.writer_alive())
    }

    fn __repr__(&self) -> String {
        format!(
            "<mapshare.BlackboardReader {} {}>",
            self.h.name, self.layout.fingerprint
        )
    }
}

handle_methods!(@close BlackboardReader);
handle_methods!(@context BlackboardReader);
