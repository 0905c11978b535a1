//! The Python binding of mapshare: the native module `mapshare._mapshare`,
//! re-exported by the pure-Python package `mapshare` (see
//! `python/mapshare/__init__.py`, the stubs `_mapshare.pyi`, and
//! `README.md`).
//!
//! Only the library's public API is used. Every blocking call releases the
//! GIL and waits in slices of at most 50 ms, checking for signals between
//! them (`wait`), so Ctrl-C interrupts it. The one wait that is not sliced
//! is `create` / `open`'s wait for a peer's attach lock (GIL released too),
//! bounded by `attach_timeout` (default 5 s; None or infinity keep the
//! default): Ctrl-C is seen when it ends. `unsafe` is confined to
//! `buffer` (in-place access to Python buffers).

// Reason: in-place reads and writes of Python buffers; every block has its SAFETY.
#[allow(unsafe_code)]
mod buffer;
mod common;
mod errors;
mod messaging;
mod service;
mod sync;
mod values;
mod wait;
mod waitset;

use pyo3::prelude::*;

/// Removes the segment ``name`` (``/dev/shm/mapshare.NAME``) now, as
/// ``mapshare rm`` does: processes attached keep their mapping; the name is
/// free at once. Raises ``NotFound`` if there is none.
#[pyfunction]
fn unlink(py: Python<'_>, name: &str) -> PyResult<()> {
    let at = mapshare::Location::shm(name).map_err(|e| errors::segment(py, e))?;
    mapshare::segment::unlink(&at).map_err(|e| errors::segment(py, e))
}

/// Named shared memory between processes (native part; use the ``mapshare`` package).
#[pymodule]
fn _mapshare(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<messaging::Mailbox>()?;
    m.add_class::<messaging::Sender>()?;
    m.add_class::<messaging::Receiver>()?;
    m.add_class::<messaging::Publisher>()?;
    m.add_class::<messaging::Subscriber>()?;
    m.add_class::<service::Server>()?;
    m.add_class::<service::Client>()?;
    m.add_class::<service::Request>()?;
    m.add_class::<service::ReplyTo>()?;
    m.add_class::<service::Response>()?;
    m.add_class::<waitset::WaitSet>()?;
    m.add_class::<sync::Mutex>()?;
    m.add_class::<sync::MutexGuard>()?;
    m.add_class::<sync::Event>()?;
    m.add_class::<values::Shared>()?;
    m.add_class::<values::SharedGuard>()?;
    m.add_class::<values::BlackboardWriter>()?;
    m.add_class::<values::BlackboardReader>()?;
    m.add_function(wrap_pyfunction!(unlink, m)?)?;
    m.add("SLICE_SECONDS", wait::SLICE.as_secs_f64())?;
    m.add("MAX_SENDERS", mapshare::MAX_SENDERS)?;
    m.add("MAX_SUBSCRIBERS", mapshare::MAX_SUBSCRIBERS)?;
    m.add("MAX_CLIENTS", mapshare::MAX_CLIENTS)?;
    m.add(
        "DEFAULT_MAILBOX_MAX_MESSAGE",
        mapshare::DEFAULT_MAILBOX_MAX_MESSAGE,
    )?;
    Ok(())
}
