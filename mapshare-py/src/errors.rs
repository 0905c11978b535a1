//! Every Rust error of the library mapped to the Python exception classes
//! of `mapshare._errors`, with the library's own message text.
//!
//! The classes are Python classes (so they can also derive from
//! `FileNotFoundError`, `TimeoutError`...); this module looks them up by
//! name and sets their extra attributes (`expected`/`found`, `missed`,
//! `guard`, `message`).

use mapshare::{Fault, Fingerprint, RecvTimeoutError, SegmentError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// An exception of class `class` (from `mapshare._errors`) with `msg`.
pub(crate) fn raise(py: Python<'_>, class: &str, msg: impl Into<String>) -> PyErr {
    let msg: String = msg.into();
    let made = (|| -> PyResult<PyErr> {
        let cls = py.import("mapshare._errors")?.getattr(class)?;
        Ok(PyErr::from_value(cls.call1((msg.clone(),))?))
    })();
    made.unwrap_or_else(|e| e) // the module is missing: its ImportError says so
}

/// As [`raise`], with attributes set on the exception object.
pub(crate) fn raise_with<'py>(
    py: Python<'py>,
    class: &str,
    msg: impl Into<String>,
    attrs: &[(&str, Bound<'py, PyAny>)],
) -> PyErr {
    let err = raise(py, class, msg);
    for (k, v) in attrs {
        if let Err(e) = err.value(py).setattr(*k, v) {
            return e;
        }
    }
    err
}

/// `(type_name, size, align)`.
pub(crate) fn fingerprint_tuple<'py>(py: Python<'py>, f: &Fingerprint) -> Bound<'py, PyAny> {
    PyTuple::new(
        py,
        [
            f.name().into_pyobject(py).map(|v| v.into_any()),
            f.size().into_pyobject(py).map(|v| v.into_any()),
            f.align().into_pyobject(py).map(|v| v.into_any()),
        ]
        .into_iter()
        .map(|r| r.expect("str and int conversions cannot fail")),
    )
    .expect("a 3-tuple")
    .into_any()
}

/// A segment could not be created or opened.
pub(crate) fn segment(py: Python<'_>, e: SegmentError) -> PyErr {
    let msg = e.to_string();
    let class = match &e {
        SegmentError::InvalidName(_) => "InvalidName",
        SegmentError::AlreadyExists(_) => "AlreadyExists",
        SegmentError::NotFound(_) => "NotFound",
        SegmentError::PermissionDenied(_) => "PermissionDenied",
        SegmentError::ForeignOwner { .. } => "ForeignOwner",
        SegmentError::NoSpace { .. } => "NoSpace",
        SegmentError::Header { .. } => "BadHeader",
        SegmentError::KindMismatch { .. } => "KindMismatch",
        SegmentError::LayoutMismatch {
            expected, found, ..
        } => {
            return raise_with(
                py,
                "LayoutMismatch",
                msg,
                &[
                    ("expected", fingerprint_tuple(py, expected)),
                    ("found", fingerprint_tuple(py, found)),
                ],
            )
        }
        SegmentError::TooManyAttached(_) => "TooManyAttached",
        SegmentError::Busy(_) => "Busy",
        SegmentError::InvalidSize(_) => "InvalidSize",
        _ => "Error", // Io, and variants added later
    };
    raise(py, class, msg)
}

/// A fault a call survived.
pub(crate) fn fault(py: Python<'_>, f: Fault) -> PyErr {
    raise(py, "Fault", f.to_string())
}

/// A receive (or wait) that did not get its value, except a timeout.
pub(crate) fn recv(py: Python<'_>, what: &str, e: RecvTimeoutError) -> PyErr {
    match e {
        RecvTimeoutError::Timeout => timeout(py, what),
        RecvTimeoutError::Disconnected => raise(
            py,
            "Disconnected",
            format!("{what}: the other side has gone and nothing is left"),
        ),
        RecvTimeoutError::Lagged(n) => {
            let missed = n.into_pyobject(py).expect("an int").into_any();
            raise_with(
                py,
                "Lagged",
                format!("{what}: {n} messages were overwritten before we read them"),
                &[("missed", missed)],
            )
        }
        RecvTimeoutError::Fault(f) => raise(py, "Fault", format!("{what}: {f}")),
        _ => raise(py, "Error", format!("{what}: {e}")),
    }
}

/// A blocking call ran out of time.
pub(crate) fn timeout(py: Python<'_>, what: &str) -> PyErr {
    raise(py, "Timeout", format!("{what}: timed out"))
}

/// A handle used after `close()`.
pub(crate) fn closed(what: &str) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(format!("{what}: the handle is closed"))
}
