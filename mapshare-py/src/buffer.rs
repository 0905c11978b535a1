//! The bytes of Python buffer-protocol objects (`bytes`, `bytearray`,
//! `memoryview`, numpy arrays of any dtype, `array.array`...), read and
//! written in place: the only module with `unsafe` code.
//!
//! A buffer's memory belongs to its exporter, and any Python code may
//! change it (a `bytearray` resized? no: an exported buffer cannot be
//! resized, but its bytes can be written). So a slice over it is formed
//! only while this thread holds the GIL and runs no Python code, for the
//! length of one copy; the one exception is `bytes`, which is immutable,
//! reached through PyO3's safe `PyBytes::as_bytes`. The GIL keeps Python
//! code out, not a writer that runs without it (see `with_bytes`).

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;

/// A C-contiguous buffer of some object, held (exported) while this lives.
pub(crate) struct Buffer {
    buf: PyUntypedBuffer,
}

impl Buffer {
    /// The buffer of `obj`, which must be C-contiguous (any dtype: only
    /// its bytes count).
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<Buffer> {
        let buf = PyUntypedBuffer::get(obj).map_err(|e| {
            PyTypeError::new_err(format!(
                "a bytes-like object is required (bytes, bytearray, memoryview, a numpy array): {e}"
            ))
        })?;
        if !buf.is_c_contiguous() {
            return Err(PyBufferError::new_err(
                "the buffer is not C-contiguous (use numpy.ascontiguousarray)",
            ));
        }
        Ok(Buffer { buf })
    }

    /// As [`Buffer::get`], for a buffer to write into: refused at once
    /// if read-only (before any wait).
    pub(crate) fn get_writable(obj: &Bound<'_, PyAny>) -> PyResult<Buffer> {
        let b = Buffer::get(obj)?;
        if b.buf.readonly() {
            return Err(PyTypeError::new_err(
                "the buffer is read-only (use a bytearray or a writable numpy array)",
            ));
        }
        Ok(b)
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len_bytes()
    }

    /// Runs `f` on the buffer's bytes. The GIL token proves that no other
    /// Python thread runs meanwhile; `f` must not call into Python.
    pub(crate) fn with_bytes<R>(&self, _py: Python<'_>, f: impl FnOnce(&[u8]) -> R) -> R {
        let len = self.buf.len_bytes();
        if len == 0 {
            return f(&[]);
        }
        let ptr = self.buf.buf_ptr().cast::<u8>().cast_const();
        // SAFETY:
        // 1. `ptr..ptr + len` is the exporter's memory for this C-contiguous
        //    buffer (checked in `get`), valid while `self.buf` holds the
        //    export, which outlives this call; `len > 0`, so `ptr` is non-null;
        // 2. no Python code writes it during `f`: we hold the GIL (the
        //    `Python` token) and `f` calls no Python code (the caller's
        //    promise, and every `f` in this crate is a plain copy), so no
        //    other Python thread runs. The GIL does not exclude a writer
        //    outside it (a C extension that released it, such as a
        //    `readinto` in another thread, or another process when the
        //    buffer is itself shared memory): such a writer races with the
        //    copy, as with CPython's own `bytes(memoryview)`. `f` only
        //    copies the bytes, which are valid for any pattern, so the
        //    most it can see is a torn message.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
        f(bytes)
    }

    /// Copies `src` to the start of the buffer, which must be writable and
    /// at least as long.
    pub(crate) fn write(&self, _py: Python<'_>, src: &[u8]) -> PyResult<()> {
        if self.buf.readonly() {
            return Err(PyTypeError::new_err("the buffer is read-only"));
        }
        if src.len() > self.buf.len_bytes() {
            return Err(PyBufferError::new_err("the buffer is too small"));
        }
        if src.is_empty() {
            return Ok(());
        }
        let dst = self.buf.buf_ptr().cast::<u8>();
        // SAFETY:
        // 1. `dst..dst + src.len()` lies inside the writable (checked),
        //    C-contiguous (checked in `get`) buffer exported to us until
        //    `self.buf` drops, after this call;
        // 2. `src` is our own memory (a received message), so the ranges
        //    do not overlap; we hold the GIL, so no Python thread touches
        //    the buffer meanwhile; any byte pattern is valid for it.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
        Ok(())
    }
}
