//! What every class shares: the handle cells, the keyword options of
//! `create` / `open` / `open_or_create`, sending and receiving with sliced
//! waits, and numpy conversions (numpy is imported only when used).

use std::sync::{Arc, Mutex as StdMutex, TryLockError};
use std::time::Duration;

use mapshare::options::Attach;
use mapshare::{Fault, Options, RecvTimeoutError, SendTimeoutError, TryRecvError};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyTuple};

use crate::buffer::Buffer;
use crate::errors;
use crate::wait;

/// Which terminal call of the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum How {
    Create,
    Open,
    OpenOrCreate,
}

/// The options every kind takes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Common {
    pub(crate) persistent: bool,
    pub(crate) mode: Option<u32>,
    pub(crate) allow_foreign_owner: bool,
    pub(crate) attach_timeout: Option<f64>,
}

impl Common {
    pub(crate) fn apply<K>(self, mut o: Options<K>) -> PyResult<Options<K>> {
        o = o
            .persistent(self.persistent)
            .allow_foreign_owner(self.allow_foreign_owner);
        if let Some(m) = self.mode {
            o = o.mode(m);
        }
        if let Some(t) = wait::timeout_arg(self.attach_timeout)? {
            o = o.attach_timeout(t);
        }
        Ok(o)
    }
}

/// Creates or opens, with the GIL released (an open may wait for a peer's
/// attach lock, up to the attach timeout: one wait, not sliced, so a
/// signal is handled only after it).
pub(crate) fn attach<K: Attach + Send>(py: Python<'_>, o: Options<K>, how: How) -> PyResult<K> {
    py.detach(move || match how {
        How::Create => o.create(),
        How::Open => o.open(),
        How::OpenOrCreate => o.open_or_create(),
    })
    .map_err(|e| errors::segment(py, e))
}

/// A handle whose calls take `&mut self` (channel and ring ends, the
/// blackboard writer): one call at a time; a second thread using the same
/// object meanwhile gets `RuntimeError` rather than a wait without signals.
pub(crate) struct Slot<T> {
    pub(crate) name: String,
    cell: StdMutex<Option<T>>,
}

impl<T> Slot<T> {
    pub(crate) fn new(name: String, v: T) -> Slot<T> {
        Slot {
            name,
            cell: StdMutex::new(Some(v)),
        }
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> PyResult<R>) -> PyResult<R> {
        let mut g = match self.cell.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(format!(
                    "{}: this handle is in use by another thread (open one handle per thread)",
                    self.name
                )))
            }
        };
        match g.as_mut() {
            Some(h) => f(h),
            None => Err(errors::closed(&self.name)),
        }
    }

    /// The handle's lock, held (a wait set holds each source's for the
    /// length of its wait): `RuntimeError` if another call has it (or the
    /// same object was given twice), `ValueError` if closed.
    pub(crate) fn hold(&self) -> PyResult<std::sync::MutexGuard<'_, Option<T>>> {
        let g = match self.cell.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(format!(
                    "{}: this handle is in use by another thread, or given twice",
                    self.name
                )))
            }
        };
        if g.is_none() {
            return Err(errors::closed(&self.name));
        }
        Ok(g)
    }

    /// Drops the handle (detaching from the segment).
    pub(crate) fn close(&self) -> PyResult<()> {
        let taken = self.with_cell(|c| c.take())?;
        drop(taken);
        Ok(())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.with_cell(|c| c.is_none()).unwrap_or(false)
    }

    fn with_cell<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> PyResult<R> {
        match self.cell.try_lock() {
            Ok(mut g) => Ok(f(&mut g)),
            Err(TryLockError::Poisoned(p)) => Ok(f(&mut p.into_inner())),
            Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(format!(
                "{}: this handle is in use by another thread",
                self.name
            ))),
        }
    }
}

/// A handle whose calls take `&self` (mailbox, mutex, event, shared value,
/// blackboard reader): any number of threads may wait on it at once.
pub(crate) struct Handle<T> {
    pub(crate) name: String,
    cell: StdMutex<Option<Arc<T>>>,
}

impl<T> Handle<T> {
    pub(crate) fn new(name: String, v: T) -> Handle<T> {
        Handle {
            name,
            cell: StdMutex::new(Some(Arc::new(v))),
        }
    }

    /// The handle (kept alive by the returned `Arc` during a call, even if
    /// another thread closes it meanwhile).
    pub(crate) fn get(&self) -> PyResult<Arc<T>> {
        let g = self.cell.lock().unwrap_or_else(|p| p.into_inner());
        g.clone().ok_or_else(|| errors::closed(&self.name))
    }

    /// Drops this object's reference (the segment is detached once no call
    /// or guard uses it any more). Never fails (a `PyResult` as
    /// [`Slot::close`], for [`handle_methods`]).
    pub(crate) fn close(&self) -> PyResult<()> {
        let taken = self.cell.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
        Ok(())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.cell
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

/// `create`, `open` and `open_or_create` of a kind: each calls
/// `$ty::make(py, how, name, <positional>..., <keyword>..., Common)`. The
/// arguments after `name` are `[positional: Type, ...]`, then
/// `[keyword: Type = default, ...]` (keyword-only), then the options every
/// kind takes. The docs: `$what` fills the usual three (`"mailbox"`), or
/// the three are given.
macro_rules! ctors {
    ($ty:ident, [$($pos:ident: $pty:ty),*], [$($kw:ident: $kty:ty = $kd:tt),*], $what:literal) => {
        $crate::common::ctors!(
            $ty, [$($pos: $pty),*], [$($kw: $kty = $kd),*],
            concat!("Creates the ", $what, " ``name`` (``AlreadyExists`` if it exists)."),
            concat!("Opens the existing ", $what, " ``name`` (``NotFound`` if there is none)."),
            concat!("Opens the ", $what, " ``name``, creating it if needed.")
        );
    };
    ($ty:ident, [$($pos:ident: $pty:ty),*], [$($kw:ident: $kty:ty = $kd:tt),*], $create:expr, $open:expr, $open_or_create:expr) => {
        #[pymethods]
        impl $ty {
            #[doc = $create]
            #[staticmethod]
            #[pyo3(signature = (name, $($pos,)* *, $($kw = $kd,)* persistent=false, mode=None, allow_foreign_owner=false, attach_timeout=None))]
            #[allow(clippy::too_many_arguments)] // Reason: the Python keyword options, one each
            fn create(py: Python<'_>, name: &str, $($pos: $pty,)* $($kw: $kty,)* persistent: bool, mode: Option<u32>, allow_foreign_owner: bool, attach_timeout: Option<f64>) -> PyResult<$ty> {
                let c = $crate::common::Common { persistent, mode, allow_foreign_owner, attach_timeout };
                $ty::make(py, $crate::common::How::Create, name, $($pos,)* $($kw,)* c)
            }

            #[doc = $open]
            #[staticmethod]
            #[pyo3(signature = (name, $($pos,)* *, $($kw = $kd,)* persistent=false, mode=None, allow_foreign_owner=false, attach_timeout=None))]
            #[allow(clippy::too_many_arguments)] // Reason: the Python keyword options, one each
            fn open(py: Python<'_>, name: &str, $($pos: $pty,)* $($kw: $kty,)* persistent: bool, mode: Option<u32>, allow_foreign_owner: bool, attach_timeout: Option<f64>) -> PyResult<$ty> {
                let c = $crate::common::Common { persistent, mode, allow_foreign_owner, attach_timeout };
                $ty::make(py, $crate::common::How::Open, name, $($pos,)* $($kw,)* c)
            }

            #[doc = $open_or_create]
            #[staticmethod]
            #[pyo3(signature = (name, $($pos,)* *, $($kw = $kd,)* persistent=false, mode=None, allow_foreign_owner=false, attach_timeout=None))]
            #[allow(clippy::too_many_arguments)] // Reason: the Python keyword options, one each
            fn open_or_create(py: Python<'_>, name: &str, $($pos: $pty,)* $($kw: $kty,)* persistent: bool, mode: Option<u32>, allow_foreign_owner: bool, attach_timeout: Option<f64>) -> PyResult<$ty> {
                let c = $crate::common::Common { persistent, mode, allow_foreign_owner, attach_timeout };
                $ty::make(py, $crate::common::How::OpenOrCreate, name, $($pos,)* $($kw,)* c)
            }
        }
    };
}

pub(crate) use ctors;

/// The methods every kind shares, by pieces, for a class whose handle
/// (a [`Slot`] or a [`Handle`]) is its field `h` (PyO3 wants them in each
/// class): `@close` is `close` (with the doc given, or the default),
/// `closed` and `location`; `@context` makes the object a context
/// manager that closes on exit; `@repr` is `<mapshare.LABEL NAME>`.
/// `handle_methods!(Type, "Label")` is all three.
macro_rules! handle_methods {
    (@close $ty:ident) => {
        $crate::common::handle_methods!(@close $ty, "Detaches from the segment (also on ``with`` exit).");
    };
    (@close $ty:ident, $doc:literal) => {
        #[pymethods]
        impl $ty {
            #[doc = $doc]
            fn close(&self) -> PyResult<()> {
                self.h.close()
            }

            /// Whether ``close()`` was called.
            #[getter]
            fn closed(&self) -> bool {
                self.h.is_closed()
            }

            /// Where the segment lives.
            #[getter]
            fn location(&self) -> &str {
                &self.h.name
            }
        }
    };
    (@context $ty:ident) => {
        #[pymethods]
        impl $ty {
            fn __enter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            #[pyo3(signature = (*_args))]
            fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
                self.h.close()
            }
        }
    };
    (@repr $ty:ident, $label:literal) => {
        #[pymethods]
        impl $ty {
            fn __repr__(&self) -> String {
                format!(concat!("<mapshare.", $label, " {}>"), self.h.name)
            }
        }
    };
    ($ty:ident, $label:literal) => {
        $crate::common::handle_methods!(@close $ty);
        $crate::common::handle_methods!(@context $ty);
        $crate::common::handle_methods!(@repr $ty, $label);
    };
}

pub(crate) use handle_methods;

// ---- receiving ----

/// Waits in slices for `step` to return something else than a timeout.
/// Outer error: a signal handler's exception (`KeyboardInterrupt`); inner:
/// the library's outcome (a timeout when `timeout` ran out).
pub(crate) fn recv_raw<R: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    mut step: impl FnMut(Duration) -> Result<R, RecvTimeoutError> + Send,
) -> PyResult<Result<R, RecvTimeoutError>> {
    let timeout = wait::timeout_arg(timeout)?;
    let r = wait::sliced(py, timeout, |slice| match step(slice) {
        Err(RecvTimeoutError::Timeout) => None,
        r => Some(r),
    })?;
    Ok(r.unwrap_or(Err(RecvTimeoutError::Timeout)))
}

/// [`recv_raw`] with every failure raised.
pub(crate) fn recv_with<R: Send>(
    py: Python<'_>,
    what: &str,
    timeout: Option<f64>,
    step: impl FnMut(Duration) -> Result<R, RecvTimeoutError> + Send,
) -> PyResult<R> {
    recv_raw(py, timeout, step)?.map_err(|e| errors::recv(py, what, e))
}

/// A `try_` receive's outcome: `None` when there is nothing now.
pub(crate) fn try_recv_result<R>(
    py: Python<'_>,
    what: &str,
    r: Result<R, TryRecvError>,
) -> PyResult<Option<R>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(TryRecvError::Empty) => Ok(None),
        Err(TryRecvError::Disconnected) => {
            Err(errors::recv(py, what, RecvTimeoutError::Disconnected))
        }
        Err(TryRecvError::Lagged(n)) => Err(errors::recv(py, what, RecvTimeoutError::Lagged(n))),
        Err(TryRecvError::Fault(f)) => Err(errors::recv(py, what, RecvTimeoutError::Fault(f))),
        Err(e) => Err(errors::raise(py, "Error", format!("{what}: {e}"))),
    }
}

/// Copies a received message into a caller's writable buffer; returns its
/// length. A message longer than the buffer is raised as `BufferTooSmall`
/// holding it (never lost).
pub(crate) fn into_buffer(
    py: Python<'_>,
    what: &str,
    buf: &Buffer,
    msg: Vec<u8>,
) -> PyResult<usize> {
    if msg.len() > buf.len() {
        let n = msg.len();
        let cap = buf.len();
        let message = PyBytes::new(py, &msg).into_any();
        return Err(errors::raise_with(
            py,
            "BufferTooSmall",
            format!("{what}: a message of {n} bytes does not fit the buffer of {cap} bytes"),
            &[("message", message)],
        ));
    }
    buf.write(py, &msg)?;
    Ok(msg.len())
}

/// The numpy dtype of a `recv_array`, resolved before anything is
/// received: a dtype numpy refuses raises then, and no message is taken.
pub(crate) struct ArrayDtype<'py> {
    np: Bound<'py, PyModule>,
    dtype: Bound<'py, PyAny>,
    itemsize: usize,
}

impl<'py> ArrayDtype<'py> {
    pub(crate) fn new(py: Python<'py>, dtype: &Bound<'py, PyAny>) -> PyResult<ArrayDtype<'py>> {
        let np = py.import("numpy")?;
        let dtype = np.getattr("dtype")?.call1((dtype,))?;
        let itemsize: usize = dtype.getattr("itemsize")?.extract()?;
        if itemsize == 0 {
            return Err(PyValueError::new_err(
                "a dtype of 0-byte items cannot hold a message",
            ));
        }
        Ok(ArrayDtype {
            np,
            dtype,
            itemsize,
        })
    }

    /// A received message as a new writable numpy array of this dtype
    /// (and `shape`, if given: its size must match the message). A
    /// message that does not fit raises `LengthMismatch` (a `ValueError`)
    /// holding it in `message`: it is already taken, so never dropped.
    pub(crate) fn array(
        &self,
        py: Python<'py>,
        what: &str,
        msg: &[u8],
        shape: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mismatch = |why: String| {
            let message = PyBytes::new(py, msg).into_any();
            errors::raise_with(
                py,
                "LengthMismatch",
                format!("{what}: {why}"),
                &[("message", message)],
            )
        };
        if msg.len() % self.itemsize != 0 {
            return Err(mismatch(format!(
                "a message of {} bytes is not a whole number of {}-byte items",
                msg.len(),
                self.itemsize
            )));
        }
        let arr = self
            .np
            .getattr("empty")?
            .call1((msg.len() / self.itemsize, &self.dtype))?;
        Buffer::get(&arr)?.write(py, msg)?;
        match shape {
            Some(s) => arr
                .call_method1("reshape", (s,))
                .map_err(|e| mismatch(format!("a message of {} bytes: {e}", msg.len()))),
            None => Ok(arr),
        }
    }
}

// ---- sending ----

/// Why a send did not happen (lifetime-free, to leave the wait loop).
#[derive(Debug)]
pub(crate) enum SendFail {
    Timeout,
    Disconnected,
    TooLarge,
    Fault(Fault),
    Other(String),
}

pub(crate) fn send_fail<M>(e: SendTimeoutError<M>) -> SendFail {
    match e {
        SendTimeoutError::Timeout(_) => SendFail::Timeout,
        SendTimeoutError::Disconnected(_) => SendFail::Disconnected,
        SendTimeoutError::TooLarge(_) => SendFail::TooLarge,
        SendTimeoutError::Fault(_, f) => SendFail::Fault(f),
        _ => SendFail::Other("send failed".into()),
    }
}

fn send_error(py: Python<'_>, what: &str, len: usize, max: usize, e: SendFail) -> PyErr {
    match e {
        SendFail::Timeout => errors::timeout(py, what),
        SendFail::Disconnected => errors::raise(
            py,
            "Disconnected",
            format!("{what}: the receiving side has gone"),
        ),
        SendFail::TooLarge => errors::raise(
            py,
            "TooLarge",
            format!("{what}: a message of {len} bytes exceeds the maximum of {max} bytes"),
        ),
        SendFail::Fault(f) => errors::raise(py, "Fault", format!("{what}: {f}")),
        SendFail::Other(m) => errors::raise(py, "Error", format!("{what}: {m}")),
    }
}

/// One bounded send attempt: `(message, slice)`.
type SendStep<'s> = dyn FnMut(&[u8], Duration) -> Result<(), SendFail> + Send + 's;

/// Sends the bytes of `obj` (any C-contiguous buffer) with `step(msg,
/// slice)`, waiting in slices. `bytes` are sent in place with the GIL
/// released; other buffers (which Python code may write) are tried once in
/// place with the GIL held, and copied only if the call has to wait.
/// `Ok(false)`: the timeout ran out (raised by the caller, or returned by
/// a `try_`).
pub(crate) fn send_with(
    py: Python<'_>,
    what: &str,
    obj: &Bound<'_, PyAny>,
    timeout: Option<f64>,
    max: usize,
    mut step: impl FnMut(&[u8], Duration) -> Result<(), SendFail> + Send,
) -> PyResult<bool> {
    let timeout = wait::timeout_arg(timeout)?;
    let waited = |py: Python<'_>, msg: &[u8], step: &mut SendStep<'_>| {
        let len = msg.len();
        let r = wait::sliced(py, timeout, |slice| match step(msg, slice) {
            Err(SendFail::Timeout) => None,
            r => Some(r),
        })?;
        match r {
            None => Ok(false),
            Some(Ok(())) => Ok(true),
            Some(Err(e)) => Err(send_error(py, what, len, max, e)),
        }
    };
    if let Ok(b) = obj.cast::<PyBytes>() {
        return waited(py, b.as_bytes(), &mut step);
    }
    let buf = Buffer::get(obj)?;
    let len = buf.len();
    match buf.with_bytes(py, |msg| step(msg, Duration::ZERO)) {
        Ok(()) => return Ok(true),
        Err(SendFail::Timeout) => {}
        Err(e) => return Err(send_error(py, what, len, max, e)),
    }
    if timeout == Some(Duration::ZERO) {
        return Ok(false);
    }
    let copy = buf.with_bytes(py, |msg| msg.to_vec());
    drop(buf);
    waited(py, &copy, &mut step)
}

/// Raises the timeout of a blocking send.
pub(crate) fn sent(py: Python<'_>, what: &str, done: bool) -> PyResult<()> {
    if done {
        Ok(())
    } else {
        Err(errors::timeout(py, what))
    }
}

// ---- layouts and values ----

/// A value layout given from Python: a numpy dtype (the type name from
/// `type_name=`, or derived for plain scalars and 1-D subarrays), or a
/// `(type_name, size, align)` tuple.
pub(crate) struct Layout {
    pub(crate) fingerprint: mapshare::Fingerprint,
    pub(crate) dtype: Option<Py<PyAny>>,
}

/// The Rust name of a numpy scalar dtype (`f64`, `u32`...), or of a 1-D
/// subarray of one (`[u64; 3]`), as `Fingerprint::of` writes it.
fn rust_name(dtype: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if !dtype.getattr("fields")?.is_none() {
        return Ok(None); // a struct: only its author knows the Rust name
    }
    let sub = dtype.getattr("subdtype")?;
    if !sub.is_none() {
        let (base, shape): (Bound<'_, PyAny>, Vec<usize>) = sub.extract()?;
        return Ok(match (rust_name(&base)?, shape.as_slice()) {
            (Some(b), [n]) => Some(format!("[{b}; {n}]")),
            _ => None,
        });
    }
    let kind: String = dtype.getattr("kind")?.extract()?;
    let size: usize = dtype.getattr("itemsize")?.extract()?;
    let byteorder: String = dtype.getattr("byteorder")?.extract()?;
    if byteorder
        == (if cfg!(target_endian = "little") {
            ">"
        } else {
            "<"
        })
    {
        return Ok(None); // not the native order: not a Rust integer
    }
    Ok(match (kind.as_str(), size) {
        ("f", 4 | 8) | ("i" | "u", 1 | 2 | 4 | 8) => Some(format!("{}{}", kind, size * 8)),
        _ => None,
    })
}

impl Layout {
    pub(crate) fn from_py(
        py: Python<'_>,
        layout: &Bound<'_, PyAny>,
        type_name: Option<&str>,
    ) -> PyResult<Layout> {
        // `(str, int, int)` is a layout; any other tuple is a numpy dtype
        // spec (`("<u8", (3,))`).
        let triple = layout
            .cast::<PyTuple>()
            .ok()
            .and_then(|t| t.extract::<(String, u64, u64)>().ok());
        if let Some((name, size, align)) = triple {
            if type_name.is_some() {
                return Err(PyTypeError::new_err(
                    "type_name= goes with a dtype; a layout tuple names its type itself",
                ));
            }
            return Ok(Layout {
                fingerprint: mapshare::Fingerprint::new(&name, size, align),
                dtype: None,
            });
        }
        // Anything numpy.dtype() accepts: a dtype, "f8", numpy.float64, a list of fields...
        let dtype = py.import("numpy")?.getattr("dtype")?.call1((layout,))?;
        let size: u64 = dtype.getattr("itemsize")?.extract()?;
        let align: u64 = dtype.getattr("alignment")?.extract()?;
        let name = match type_name {
            Some(n) => n.to_owned(),
            None => rust_name(&dtype)?.ok_or_else(|| {
                PyTypeError::new_err(
                    "type_name= is required for this dtype: the name of the Rust #[repr(C)] struct it mirrors",
                )
            })?,
        };
        Ok(Layout {
            fingerprint: mapshare::Fingerprint::new(&name, size, align),
            dtype: Some(dtype.unbind()),
        })
    }

    pub(crate) fn size(&self) -> usize {
        self.fingerprint.size() as usize // a layout the library accepted fits
    }

    /// The bytes of `value` for this layout: any buffer of exactly the
    /// size, or (with a dtype) anything `numpy.asarray(value, dtype)` takes
    /// that holds one value (a tuple of fields, a structured scalar...).
    pub(crate) fn to_bytes(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        let plain = value.is_instance_of::<PyBytes>()
            || value.is_instance_of::<PyByteArray>()
            || value.is_instance_of::<PyMemoryView>();
        let bytes = match (&self.dtype, plain) {
            (Some(dtype), false) => {
                // `base`: the element type of a subarray dtype (`[u64; 3]`
                // takes `[1, 2, 3]`), the dtype itself otherwise.
                let base = dtype.bind(py).getattr("base")?;
                let arr = py
                    .import("numpy")?
                    .getattr("asarray")?
                    .call1((value, base))?;
                let b = arr.call_method0("tobytes")?;
                b.cast::<PyBytes>()?.as_bytes().to_vec()
            }
            _ => {
                let buf = Buffer::get(value)?;
                buf.with_bytes(py, |b| b.to_vec())
            }
        };
        if bytes.len() != self.size() {
            return Err(errors::raise(
                py,
                "LengthMismatch",
                format!(
                    "the value is {} bytes ({}), {} were given",
                    self.size(),
                    self.fingerprint,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// A value read as bytes, as Python sees it: with a dtype, a numpy
    /// scalar of it (a structured `numpy.void` for a struct, whose fields
    /// read and write as `v["id"]`); without, `bytes`.
    pub(crate) fn value_of<'py>(
        &self,
        py: Python<'py>,
        bytes: &[u8],
    ) -> PyResult<Bound<'py, PyAny>> {
        match &self.dtype {
            None => Ok(PyBytes::new(py, bytes).into_any()),
            Some(dtype) => {
                // A fresh, writable one-item array: its item reads and
                // writes fields in place (then `set` it back).
                let arr = py
                    .import("numpy")?
                    .getattr("empty")?
                    .call1((1, dtype.bind(py)))?;
                Buffer::get(&arr)?.write(py, bytes)?;
                arr.get_item(0)
            }
        }
    }

    pub(crate) fn tuple<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        errors::fingerprint_tuple(py, &self.fingerprint)
    }
}
