//! `Mailbox`, `Sender` / `Receiver`, `Publisher` / `Subscriber`.

use std::time::Duration;

use mapshare::{Policy, RecvTimeoutError};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffer::Buffer;
use crate::common::{
    attach, ctors, handle_methods, into_buffer, recv_raw, recv_with, send_fail, send_with, sent,
    try_recv_result, ArrayDtype, Common, Handle, How, Slot,
};
use crate::errors;

// ---------------------------------------------------------------- Mailbox

/// A mailbox: at most one byte message at a time, delivered exactly once.
/// What ``mapshare send`` / ``mapshare recv`` use.
///
/// ``Mailbox.create(name)``, ``Mailbox.open(name)`` or
/// ``Mailbox.open_or_create(name)``, with keyword options ``max_message``
/// (bytes, default 4096, used when creating), ``persistent`` (keep the
/// segment after the last process detaches; default False), ``mode``
/// (permission bits, default 0o600), ``allow_foreign_owner``,
/// ``attach_timeout`` (seconds).
///
/// ``send(data, timeout=None)`` waits for room; ``recv(timeout=None)``
/// waits for a message and returns ``bytes``. A timeout (seconds; None
/// waits as long as it takes) raises ``mapshare.Timeout``, a
/// ``TimeoutError``. Usable as a context manager (``close()`` on exit).
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Mailbox {
    pub(crate) h: Handle<mapshare::Mailbox>,
}

impl Mailbox {
    fn make(
        py: Python<'_>,
        how: How,
        name: &str,
        max_message: Option<usize>,
        c: Common,
    ) -> PyResult<Mailbox> {
        let mut o = c.apply(mapshare::Mailbox::options(name))?;
        if let Some(m) = max_message {
            o = o.max_message(m);
        }
        let mb = attach(py, o, how)?;
        Ok(Mailbox {
            h: Handle::new(mb.location().to_string(), mb),
        })
    }
}

#[pymethods]
impl Mailbox {
    /// Sends ``data`` (bytes, bytearray, memoryview, a C-contiguous numpy
    /// array: its bytes), waiting for room at most ``timeout`` seconds
    /// (None: as long as it takes). Raises ``Timeout``, ``TooLarge``.
    #[pyo3(signature = (data, timeout=None))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let mb = self.h.get()?;
        let max = mb.max_message();
        let done = send_with(py, &self.h.name, data, timeout, max, |m, d| {
            mb.send_timeout(m, d).map_err(send_fail)
        })?;
        sent(py, &self.h.name, done)
    }

    /// Sends ``data`` if the mailbox is empty now; returns whether it did.
    fn try_send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let mb = self.h.get()?;
        let max = mb.max_message();
        send_with(py, &self.h.name, data, Some(0.0), max, |m, d| {
            mb.send_timeout(m, d).map_err(send_fail)
        })
    }

    /// Receives the message (``bytes``), waiting at most ``timeout``
    /// seconds (None: as long as it takes). Raises ``Timeout``.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyBytes>> {
        let mb = self.h.get()?;
        let v = recv_with(py, &self.h.name, timeout, |d| mb.recv_timeout(d))?;
        Ok(PyBytes::new(py, &v))
    }

    /// The message if there is one now, else None.
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mb = self.h.get()?;
        let r = try_recv_result(py, &self.h.name, mb.try_recv())?;
        Ok(r.map(|v| PyBytes::new(py, &v)))
    }

    /// Receives the message into ``buffer`` (writable, C-contiguous: a
    /// bytearray, a numpy array...); returns its length. A message longer
    /// than the buffer raises ``BufferTooSmall``, which holds it.
    #[pyo3(signature = (buffer, timeout=None))]
    fn recv_into(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let buf = Buffer::get_writable(buffer)?;
        let mb = self.h.get()?;
        let v = recv_with(py, &self.h.name, timeout, |d| mb.recv_timeout(d))?;
        into_buffer(py, &self.h.name, &buf, v)
    }

    /// Receives the message as a new numpy array of ``dtype`` (reshaped to
    /// ``shape`` if given). A message that does not fit them raises
    /// ``LengthMismatch``, which holds it.
    #[pyo3(signature = (dtype, shape=None, timeout=None))]
    fn recv_array<'py>(
        &self,
        py: Python<'py>,
        dtype: &Bound<'py, PyAny>,
        shape: Option<&Bound<'py, PyAny>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let dtype = ArrayDtype::new(py, dtype)?;
        let mb = self.h.get()?;
        let v = recv_with(py, &self.h.name, timeout, |d| mb.recv_timeout(d))?;
        dtype.array(py, &self.h.name, &v, shape)
    }

    /// Largest message in bytes.
    #[getter]
    fn max_message(&self) -> PyResult<usize> {
        Ok(self.h.get()?.max_message())
    }

    /// Whether a message is waiting.
    #[getter]
    fn is_full(&self) -> PyResult<bool> {
        Ok(self.h.get()?.is_full())
    }

    /// Whether the segment outlives its last process.
    #[getter]
    fn persistent(&self) -> PyResult<bool> {
        Ok(self.h.get()?.is_persistent())
    }

    /// Makes the segment persistent (or not) from now on.
    fn set_persistent(&self, py: Python<'_>, yes: bool) -> PyResult<()> {
        self.h
            .get()?
            .set_persistent(yes)
            .map_err(|e| errors::segment(py, e))
    }
}

ctors!(Mailbox, [], [max_message: Option<usize> = None], "mailbox");
handle_methods!(Mailbox, "Mailbox");

// ---------------------------------------------------------------- channel

/// `capacity` and `max_message`, each at least 1 when given.
pub(crate) fn sizes<K>(
    mut o: mapshare::Options<K>,
    capacity: Option<usize>,
    max_message: Option<usize>,
) -> PyResult<mapshare::Options<K>>
where
    K: mapshare::options::HasCapacity + mapshare::options::HasMaxMessage,
{
    if let Some(c) = capacity {
        if c == 0 {
            return Err(PyValueError::new_err("capacity must be at least 1"));
        }
        o = o.capacity(c);
    }
    if let Some(m) = max_message {
        if m == 0 {
            return Err(PyValueError::new_err("max_message must be at least 1"));
        }
        o = o.max_message(m);
    }
    Ok(o)
}

fn channel_options<K>(
    o: mapshare::Options<K>,
    capacity: Option<usize>,
    max_message: Option<usize>,
    senders: Option<usize>,
) -> PyResult<mapshare::Options<K>>
where
    K: mapshare::options::HasCapacity
        + mapshare::options::HasMaxMessage
        + mapshare::options::HasSenders,
{
    let mut o = sizes(o, capacity, max_message)?;
    if let Some(s) = senders {
        if !(1..=mapshare::MAX_SENDERS).contains(&s) {
            return Err(PyValueError::new_err(format!(
                "senders must be 1 to {}",
                mapshare::MAX_SENDERS
            )));
        }
        o = o.senders(s);
    }
    Ok(o)
}

/// A sending end of a channel: lock-free queues of byte messages from one
/// or many senders to one ``Receiver``.
///
/// ``Sender.create / open / open_or_create(name, *, capacity=None,
/// max_message=None, senders=None, persistent=False, mode=None,
/// allow_foreign_owner=False, attach_timeout=None)``; the sizes are used
/// when creating. ``send(data, timeout=None)`` waits for room in this
/// sender's lane; it raises ``Disconnected`` when no receiver is attached.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Sender {
    h: Slot<mapshare::Sender>,
}

/// The receiving end of a channel. ``recv(timeout=None)`` returns
/// ``bytes``; once every sender has gone (even killed) and everything is
/// read, it raises ``Disconnected``. Iterating over a receiver yields
/// messages until then.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Receiver {
    pub(crate) h: Slot<mapshare::Receiver>,
}

macro_rules! channel_ctors {
    ($ty:ident, $rust:ty) => {
        ctors!($ty, [], [capacity: Option<usize> = None, max_message: Option<usize> = None, senders: Option<usize> = None], "channel");

        impl $ty {
            #[allow(clippy::too_many_arguments)] // Reason: the Python keyword options, one each
            fn make(py: Python<'_>, how: How, name: &str, capacity: Option<usize>, max_message: Option<usize>, senders: Option<usize>, c: Common) -> PyResult<$ty> {
                let o = channel_options(c.apply(<$rust>::options(name))?, capacity, max_message, senders)?;
                let h = attach(py, o, how)?;
                Ok($ty { h: Slot::new(h.location().to_string(), h) })
            }
        }
    };
}

channel_ctors!(Sender, mapshare::Sender);
channel_ctors!(Receiver, mapshare::Receiver);

handle_methods!(Sender, "Sender");
handle_methods!(Receiver, "Receiver");
handle_methods!(Publisher, "Publisher");
handle_methods!(Subscriber, "Subscriber");

#[pymethods]
impl Sender {
    /// Sends ``data`` (any C-contiguous buffer: its bytes), waiting for
    /// room at most ``timeout`` seconds (None: as long as it takes).
    /// Raises ``Timeout``, ``TooLarge``, ``Disconnected``.
    #[pyo3(signature = (data, timeout=None))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let name = &self.h.name;
        let done = self.h.with(|tx| {
            let max = tx.max_message();
            send_with(py, name, data, timeout, max, |m, d| {
                tx.send_timeout(m, d).map_err(send_fail)
            })
        })?;
        sent(py, name, done)
    }

    /// Sends ``data`` if there is room now; returns whether it did.
    fn try_send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let name = &self.h.name;
        self.h.with(|tx| {
            let max = tx.max_message();
            send_with(py, name, data, Some(0.0), max, |m, d| {
                tx.send_timeout(m, d).map_err(send_fail)
            })
        })
    }

    /// Messages this sender's lane holds.
    #[getter]
    fn capacity(&self) -> PyResult<usize> {
        self.h.with(|tx| Ok(tx.capacity()))
    }

    /// Largest message in bytes.
    #[getter]
    fn max_message(&self) -> PyResult<usize> {
        self.h.with(|tx| Ok(tx.max_message()))
    }
}

/// The receive calls of a `Slot` of a receiving kind (`Receiver`, `Subscriber`).
macro_rules! recv_methods {
    ($ty:ident) => {
        #[pymethods]
        impl $ty {
            /// Receives the next message (``bytes``), waiting at most
            /// ``timeout`` seconds (None: as long as it takes). Raises
            /// ``Timeout``, ``Disconnected`` (the other side has gone and
            /// everything was read).
            #[pyo3(signature = (timeout=None))]
            fn recv<'py>(
                &self,
                py: Python<'py>,
                timeout: Option<f64>,
            ) -> PyResult<Bound<'py, PyBytes>> {
                let name = &self.h.name;
                let v = self
                    .h
                    .with(|rx| recv_with(py, name, timeout, |d| rx.recv_timeout(d)))?;
                Ok(PyBytes::new(py, &v))
            }

            /// The next message if there is one now, else None.
            fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
                let name = &self.h.name;
                let r = self.h.with(|rx| try_recv_result(py, name, rx.try_recv()))?;
                Ok(r.map(|v| PyBytes::new(py, &v)))
            }

            /// Receives the next message into ``buffer`` (writable,
            /// C-contiguous); returns its length. A message longer than the
            /// buffer raises ``BufferTooSmall``, which holds it.
            #[pyo3(signature = (buffer, timeout=None))]
            fn recv_into(
                &self,
                py: Python<'_>,
                buffer: &Bound<'_, PyAny>,
                timeout: Option<f64>,
            ) -> PyResult<usize> {
                let buf = Buffer::get_writable(buffer)?;
                let name = &self.h.name;
                let v = self
                    .h
                    .with(|rx| recv_with(py, name, timeout, |d| rx.recv_timeout(d)))?;
                into_buffer(py, name, &buf, v)
            }

            /// Receives the next message as a new numpy array of ``dtype``
            /// (reshaped to ``shape`` if given). A message that does not fit
            /// them raises ``LengthMismatch``, which holds it.
            #[pyo3(signature = (dtype, shape=None, timeout=None))]
            fn recv_array<'py>(
                &self,
                py: Python<'py>,
                dtype: &Bound<'py, PyAny>,
                shape: Option<&Bound<'py, PyAny>>,
                timeout: Option<f64>,
            ) -> PyResult<Bound<'py, PyAny>> {
                let dtype = ArrayDtype::new(py, dtype)?;
                let name = &self.h.name;
                let v = self
                    .h
                    .with(|rx| recv_with(py, name, timeout, |d| rx.recv_timeout(d)))?;
                dtype.array(py, name, &v, shape)
            }

            fn __iter__(slf: Py<Self>) -> Py<Self> {
                slf
            }

            /// The next message; the iteration ends at disconnection.
            fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
                let name = &self.h.name;
                let r = self
                    .h
                    .with(|rx| recv_raw(py, None, |d| rx.recv_timeout(d)))?;
                match r {
                    Ok(v) => Ok(Some(PyBytes::new(py, &v))),
                    Err(RecvTimeoutError::Disconnected) => Ok(None),
                    Err(e) => Err(errors::recv(py, name, e)),
                }
            }

            /// Largest message in bytes.
            #[getter]
            fn max_message(&self) -> PyResult<usize> {
                self.h.with(|rx| Ok(rx.max_message()))
            }
        }
    };
}

recv_methods!(Receiver);
recv_methods!(Subscriber);

#[pymethods]
impl Receiver {
    /// Messages waiting now, over every lane.
    fn __len__(&self) -> PyResult<usize> {
        self.h.with(|rx| Ok(rx.len()))
    }
}

// ---------------------------------------------------------------- pub/sub

fn policy_arg(policy: Option<&str>) -> PyResult<Option<Policy>> {
    match policy {
        None => Ok(None),
        Some("lossless") => Ok(Some(Policy::Lossless)),
        Some("overwrite_oldest" | "overwrite") => Ok(Some(Policy::OverwriteOldest)),
        Some(p) => Err(PyValueError::new_err(format!(
            "policy must be 'lossless' or 'overwrite_oldest', not {p:?}"
        ))),
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::OverwriteOldest => "overwrite_oldest",
        _ => "lossless",
    }
}

fn ring_options<K>(
    o: mapshare::Options<K>,
    capacity: Option<usize>,
    max_message: Option<usize>,
    policy: Option<&str>,
) -> PyResult<mapshare::Options<K>>
where
    K: mapshare::options::HasCapacity
        + mapshare::options::HasMaxMessage
        + mapshare::options::HasPolicy,
{
    let mut o = sizes(o, capacity, max_message)?;
    if let Some(p) = policy_arg(policy)? {
        o = o.policy(p);
    }
    Ok(o)
}

/// The publishing end of a pub/sub ring: one publisher, many subscribers,
/// each reading every message at its own pace.
///
/// ``Publisher.create / open / open_or_create(name, *, capacity=None,
/// max_message=None, policy=None, persistent=False, mode=None,
/// allow_foreign_owner=False, attach_timeout=None)``; ``policy`` is
/// ``"lossless"`` (default: a full ring waits for the slowest subscriber)
/// or ``"overwrite_oldest"`` (never waits; a subscriber a ring behind gets
/// ``Lagged``). The CLI's ``mapshare pub`` / ``sub`` use capacity 256,
/// max_message 4096, lossless.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Publisher {
    h: Slot<mapshare::Publisher>,
}

/// A subscribing end of a pub/sub ring. ``recv(timeout=None)`` returns
/// ``bytes``; once the publisher has gone and everything is read it raises
/// ``Disconnected``; iteration ends there. ``Lagged`` (with ``missed``):
/// an ``overwrite_oldest`` ring overwrote messages before we read them.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Subscriber {
    pub(crate) h: Slot<mapshare::Subscriber>,
}

macro_rules! ring_ctors {
    ($ty:ident, $rust:ty) => {
        ctors!($ty, [], [capacity: Option<usize> = None, max_message: Option<usize> = None, policy: Option<&str> = None], "ring");

        #[pymethods]
        impl $ty {
            /// Messages the ring holds.
            #[getter]
            fn capacity(&self) -> PyResult<usize> {
                self.h.with(|x| Ok(x.capacity()))
            }

            /// ``"lossless"`` or ``"overwrite_oldest"``.
            #[getter]
            fn policy(&self) -> PyResult<&'static str> {
                self.h.with(|x| Ok(policy_name(x.policy())))
            }
        }

        impl $ty {
            #[allow(clippy::too_many_arguments)] // Reason: the Python keyword options, one each
            fn make(py: Python<'_>, how: How, name: &str, capacity: Option<usize>, max_message: Option<usize>, policy: Option<&str>, c: Common) -> PyResult<$ty> {
                let o = ring_options(c.apply(<$rust>::options(name))?, capacity, max_message, policy)?;
                let h = attach(py, o, how)?;
                Ok($ty { h: Slot::new(h.location().to_string(), h) })
            }
        }
    };
}

ring_ctors!(Publisher, mapshare::Publisher);

// A subscriber's constructors also take `history`: up to that many
// messages from before the join (at most capacity - 1).
ctors!(Subscriber, [], [capacity: Option<usize> = None, max_message: Option<usize> = None, policy: Option<&str> = None, history: usize = 0], "ring");

#[pymethods]
impl Subscriber {
    /// Messages the ring holds.
    #[getter]
    fn capacity(&self) -> PyResult<usize> {
        self.h.with(|x| Ok(x.capacity()))
    }

    /// ``"lossless"`` or ``"overwrite_oldest"``.
    #[getter]
    fn policy(&self) -> PyResult<&'static str> {
        self.h.with(|x| Ok(policy_name(x.policy())))
    }
}

impl Subscriber {
    #[allow(clippy::too_many_arguments)] // Reason: the Python keyword options, one each
    fn make(
        py: Python<'_>,
        how: How,
        name: &str,
        capacity: Option<usize>,
        max_message: Option<usize>,
        policy: Option<&str>,
        history: usize,
        c: Common,
    ) -> PyResult<Subscriber> {
        let o = ring_options(
            c.apply(mapshare::Subscriber::options(name))?,
            capacity,
            max_message,
            policy,
        )?
        .history(history);
        let h = attach(py, o, how)?;
        Ok(Subscriber {
            h: Slot::new(h.location().to_string(), h),
        })
    }
}

#[pymethods]
impl Publisher {
    /// Publishes ``data`` (any C-contiguous buffer: its bytes). A lossless
    /// ring waits for room at most ``timeout`` seconds (None: as long as
    /// it takes). Raises ``Timeout``, ``TooLarge``.
    #[pyo3(signature = (data, timeout=None))]
    fn publish(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let name = &self.h.name;
        let done = self.h.with(|p| {
            let max = p.max_message();
            send_with(py, name, data, timeout, max, |m, d| {
                p.publish_timeout(m, d).map_err(send_fail)
            })
        })?;
        sent(py, name, done)
    }

    /// Publishes ``data`` if there is room now; returns whether it did.
    fn try_publish(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        let name = &self.h.name;
        self.h.with(|p| {
            let max = p.max_message();
            send_with(py, name, data, Some(0.0), max, |m, d| {
                p.publish_timeout(m, d).map_err(send_fail)
            })
        })
    }

    /// Subscribers attached now.
    #[getter]
    fn subscriber_count(&self) -> PyResult<usize> {
        self.h.with(|p| Ok(p.subscriber_count()))
    }

    /// Messages published so far on this ring.
    #[getter]
    fn published(&self) -> PyResult<u64> {
        self.h.with(|p| Ok(p.published()))
    }

    /// Largest message in bytes.
    #[getter]
    fn max_message(&self) -> PyResult<usize> {
        self.h.with(|p| Ok(p.max_message()))
    }

    /// Waits until at least ``n`` subscribers are attached, at most
    /// ``timeout`` seconds (None: as long as it takes). Raises ``Timeout``.
    #[pyo3(signature = (n, timeout=None))]
    fn wait_subscribers(&self, py: Python<'_>, n: usize, timeout: Option<f64>) -> PyResult<()> {
        let name = &self.h.name;
        self.h.with(|p| {
            recv_with(py, name, timeout, |d| {
                if p.subscriber_count() >= n {
                    Ok(())
                } else {
                    std::thread::sleep(d.min(Duration::from_millis(2)));
                    Err(RecvTimeoutError::Timeout)
                }
            })
        })
    }
}

#[pymethods]
impl Subscriber {
    /// Messages published and not yet read by this subscriber.
    #[getter]
    fn behind(&self) -> PyResult<u64> {
        self.h.with(|s| Ok(s.behind()))
    }

    /// Whether a live publisher is attached.
    #[getter]
    fn publisher_alive(&self) -> PyResult<bool> {
        self.h.with(|s| Ok(s.publisher_alive()))
    }
}
