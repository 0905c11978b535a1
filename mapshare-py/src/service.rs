//! `Server` / `Client` (request/response), with the `Request`, `ReplyTo`
//! and `Response` values they hand out.

use std::time::{Duration, Instant};

use mapshare::RecvTimeoutError;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::common::{
    attach, ctors, handle_methods, recv_raw, recv_with, send_fail, send_with, sent,
    try_recv_result, Common, How, Slot,
};
use crate::errors;
use crate::wait;

/// `clients`, `capacity` and `max_message`, each at least 1 when given
/// (`clients` at most `MAX_CLIENTS`).
fn service_options<K>(
    mut o: mapshare::Options<K>,
    clients: Option<usize>,
    capacity: Option<usize>,
    max_message: Option<usize>,
) -> PyResult<mapshare::Options<K>>
where
    K: mapshare::options::HasCapacity
        + mapshare::options::HasMaxMessage
        + mapshare::options::HasSenders,
{
    if let Some(n) = clients {
        if !(1..=mapshare::MAX_CLIENTS).contains(&n) {
            return Err(PyValueError::new_err(format!(
                "clients must be 1 to {}",
                mapshare::MAX_CLIENTS
            )));
        }
        o = o.senders(n);
    }
    crate::messaging::sizes(o, capacity, max_message)
}

// ---------------------------------------------------------------- values

/// Where a response goes: the client that asked and the request's id.
/// A ``Request`` carries one (``request.reply_to``); keep it to answer
/// later, out of order (``server.respond(reply_to, data)``). Only the
/// server handle that took the request can answer it.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct ReplyTo {
    to: mapshare::ReplyTo,
}

#[pymethods]
impl ReplyTo {
    /// The request's id, as ``Client.request`` returned it to the client.
    #[getter]
    fn id(&self) -> u64 {
        self.to.id()
    }

    /// The client block the request came from (a small number).
    #[getter]
    fn client(&self) -> usize {
        self.to.client()
    }

    fn __repr__(&self) -> String {
        format!(
            "<mapshare.ReplyTo id={} client={}>",
            self.to.id(),
            self.to.client()
        )
    }
}

/// A request taken by a ``Server``: ``id`` (int), ``data`` (bytes),
/// ``client`` (the client block it came from) and ``reply_to`` (where its
/// response goes). Answer it with ``server.respond(request, data)``.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Request {
    to: mapshare::ReplyTo,
    data: Py<PyBytes>,
}

#[pymethods]
impl Request {
    /// The request's id (the one ``Client.request`` returned).
    #[getter]
    fn id(&self) -> u64 {
        self.to.id()
    }

    /// The request's bytes.
    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data.clone_ref(py)
    }

    /// The client block the request came from (a small number).
    #[getter]
    fn client(&self) -> usize {
        self.to.client()
    }

    /// Where the response goes (to answer later, out of order).
    #[getter]
    fn reply_to(&self) -> ReplyTo {
        ReplyTo { to: self.to }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<mapshare.Request id={} client={} {} bytes>",
            self.to.id(),
            self.to.client(),
            self.data.bind(py).as_bytes().len()
        )
    }
}

/// A response taken by a ``Client``: ``id`` (the request it answers, as
/// ``request`` returned it) and ``data`` (bytes). Unpacks as a pair:
/// ``id, data = client.recv_response()``.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Response {
    id: u64,
    data: Py<PyBytes>,
}

#[pymethods]
impl Response {
    /// The id of the request this answers.
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// The response's bytes.
    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data.clone_ref(py)
    }

    fn __len__(&self) -> usize {
        2
    }

    fn __getitem__(&self, py: Python<'_>, i: isize) -> PyResult<Py<PyAny>> {
        match i {
            0 | -2 => Ok(self.id.into_pyobject(py)?.into_any().unbind()),
            1 | -1 => Ok(self.data.clone_ref(py).into_any()),
            _ => Err(pyo3::exceptions::PyIndexError::new_err(
                "a Response is (id, data)",
            )),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<mapshare.Response id={} {} bytes>",
            self.id,
            self.data.bind(py).as_bytes().len()
        )
    }
}

fn request_of(py: Python<'_>, r: mapshare::Request) -> Request {
    let to = r.reply_to();
    Request {
        to,
        data: PyBytes::new(py, r.data()).unbind(),
    }
}

fn response_of(py: Python<'_>, r: mapshare::Response) -> Response {
    Response {
        id: r.id(),
        data: PyBytes::new(py, r.data()).unbind(),
    }
}

// ---------------------------------------------------------------- Server

/// The server of a request/response service: takes requests from up to
/// ``clients`` clients (round-robin) and answers each, in any order.
/// What ``mapshare serve NAME -- CMD`` is. One live server at a time holds
/// a service (another raises ``TooManyAttached``); a successor may take it once the
/// holder has gone (even killed).
///
/// ``Server.create / open / open_or_create(name, *, clients=None,
/// capacity=None, max_message=None, persistent=False, mode=None,
/// allow_foreign_owner=False, attach_timeout=None)``: ``clients`` (clients
/// at once, default 8), ``capacity`` (requests in flight per client,
/// default 16), ``max_message`` (bytes, default 4096) are used when
/// creating.
///
/// ``recv_request(timeout=None)`` returns a ``Request``;
/// ``respond(request, data)`` answers it. A server is never disconnected:
/// clients come and go.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Server {
    pub(crate) h: Slot<mapshare::Server>,
}

/// A client of a request/response service: ``request(data)`` sends a
/// request and returns its id, ``recv_response()`` takes the next
/// response (a ``Response``: ``id``, ``data``), ``call(data)`` does both
/// for one request. What ``mapshare request NAME TEXT`` is. At most
/// ``capacity`` requests are in flight at once (``request`` waits for room).
///
/// Options as ``Server``'s. ``Disconnected`` is raised when no response
/// can come: the server the requests went to has gone (killed ones are
/// noticed within about 50 ms), or nothing is in flight.
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct Client {
    pub(crate) h: Slot<mapshare::Client>,
}

macro_rules! service_ctors {
    ($ty:ident, $rust:ty, $what:literal) => {
        ctors!($ty, [], [clients: Option<usize> = None, capacity: Option<usize> = None, max_message: Option<usize> = None], $what);

        impl $ty {
            #[allow(clippy::too_many_arguments)] // Reason: the Python keyword options, one each
            fn make(py: Python<'_>, how: How, name: &str, clients: Option<usize>, capacity: Option<usize>, max_message: Option<usize>, c: Common) -> PyResult<$ty> {
                let o = service_options(c.apply(mapshare::Options::<$rust>::new(name))?, clients, capacity, max_message)?;
                let h = attach(py, o, how)?;
                Ok($ty { h: Slot::new(h.location().to_string(), h) })
            }
        }
    };
}

service_ctors!(Server, mapshare::Server, "service (as its server)");
service_ctors!(Client, mapshare::Client, "service (as a client)");
handle_methods!(Server, "Server");
handle_methods!(Client, "Client");

/// The `ReplyTo` of a `Request` or a `ReplyTo` object.
fn reply_to_of(to: &Bound<'_, PyAny>) -> PyResult<mapshare::ReplyTo> {
    if let Ok(r) = to.cast::<Request>() {
        return Ok(r.get().to);
    }
    if let Ok(r) = to.cast::<ReplyTo>() {
        return Ok(r.get().to);
    }
    Err(PyTypeError::new_err(
        "respond() takes the Request (or its reply_to) it answers",
    ))
}

#[pymethods]
impl Server {
    /// Takes the next request, from any client (round-robin), waiting at
    /// most ``timeout`` seconds (None: as long as it takes). Returns a
    /// ``Request``. Raises ``Timeout``.
    #[pyo3(signature = (timeout=None))]
    fn recv_request(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Request> {
        let name = &self.h.name;
        let r = self
            .h
            .with(|s| recv_with(py, name, timeout, |d| s.recv_request_timeout(d)))?;
        Ok(request_of(py, r))
    }

    /// The next request if there is one now, else None.
    fn try_recv_request(&self, py: Python<'_>) -> PyResult<Option<Request>> {
        let name = &self.h.name;
        let r = self
            .h
            .with(|s| try_recv_result(py, name, s.try_recv_request()))?;
        Ok(r.map(|r| request_of(py, r)))
    }

    /// Sends ``data`` (any C-contiguous buffer: its bytes) as the response
    /// to ``request`` (a ``Request``, or its ``reply_to``). Waits (at most
    /// ``timeout`` seconds; None: as long as it takes) only on a client
    /// that broke the protocol. Raises ``Disconnected`` when the client
    /// has gone (drop the answer), ``TooLarge``, ``Timeout``.
    #[pyo3(signature = (request, data, timeout=None))]
    fn respond(
        &self,
        py: Python<'_>,
        request: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let to = reply_to_of(request)?;
        let name = &self.h.name;
        let done = self.h.with(|s| {
            let max = s.max_message();
            send_with(py, name, data, timeout, max, |m, d| {
                s.respond_timeout(to, m, d).map_err(send_fail)
            })
        })?;
        sent(py, name, done)
    }

    /// Largest request or response in bytes.
    #[getter]
    fn max_message(&self) -> PyResult<usize> {
        self.h.with(|s| Ok(s.max_message()))
    }

    /// Requests in flight per client.
    #[getter]
    fn capacity(&self) -> PyResult<usize> {
        self.h.with(|s| Ok(s.capacity()))
    }

    /// Clients at once.
    #[getter]
    fn max_clients(&self) -> PyResult<usize> {
        self.h.with(|s| Ok(s.max_clients()))
    }

    /// How many servers have taken the name, this one included.
    #[getter]
    fn epoch(&self) -> PyResult<u32> {
        self.h.with(|s| Ok(s.epoch()))
    }
}

#[pymethods]
impl Client {
    /// Sends ``data`` (any C-contiguous buffer) as a request and returns
    /// its id (the ``id`` of its ``Response``), waiting for room at most
    /// ``timeout`` seconds (None: as long as it takes) when ``capacity``
    /// requests are in flight. Raises ``Timeout``, ``TooLarge``,
    /// ``Disconnected`` (a server came and went and none holds the service
    /// now; a service that never had a server keeps the request for the
    /// first one).
    #[pyo3(signature = (data, timeout=None))]
    fn request(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<u64> {
        let name = &self.h.name;
        let id = self
            .h
            .with(|c| request_on(py, name, c, data, wait::timeout_arg(timeout)?))?;
        id.ok_or_else(|| errors::timeout(py, name))
    }

    /// Sends ``data`` as a request if there is room now; returns its id,
    /// or None.
    fn try_request(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let name = &self.h.name;
        self.h
            .with(|c| request_on(py, name, c, data, Some(Duration::ZERO)))
    }

    /// Takes the next response to any request in flight (a ``Response``:
    /// ``id``, ``data``), waiting at most ``timeout`` seconds (None: as
    /// long as it takes). Raises ``Timeout``; ``Disconnected`` when none
    /// can come (nothing in flight, or the server has gone and every
    /// response it sent was read: the requests in flight are written off).
    #[pyo3(signature = (timeout=None))]
    fn recv_response(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Response> {
        let name = &self.h.name;
        let r = self.h.with(|c| {
            recv_raw(py, timeout, |d| c.recv_response_timeout(d))?
                .map_err(|e| client_error(py, name, None, e))
        })?;
        Ok(response_of(py, r))
    }

    /// The next response if there is one now, else None.
    fn try_recv_response(&self, py: Python<'_>) -> PyResult<Option<Response>> {
        let name = &self.h.name;
        let r = self.h.with(|c| match c.try_recv_response() {
            Err(mapshare::TryRecvError::Disconnected) => {
                Err(client_error(py, name, None, RecvTimeoutError::Disconnected))
            }
            r => try_recv_result(py, name, r),
        })?;
        Ok(r.map(|r| response_of(py, r)))
    }

    /// Waits for the response to request ``id`` (bytes), at most
    /// ``timeout`` seconds; other responses arriving meanwhile are kept for
    /// ``recv_response``. Raises ``Timeout`` (``id`` stays in flight),
    /// ``Disconnected``.
    #[pyo3(signature = (id, timeout=None))]
    fn call_response<'py>(
        &self,
        py: Python<'py>,
        id: u64,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let name = &self.h.name;
        let v = self.h.with(|c| {
            recv_raw(py, timeout, |d| c.call_response_timeout(id, d))?
                .map_err(|e| client_error(py, name, Some(id), e))
        })?;
        Ok(PyBytes::new(py, &v))
    }

    /// Sends ``data`` as a request and waits for its response (bytes),
    /// both within ``timeout`` seconds (None: as long as it takes). Raises
    /// ``Timeout`` (if the request was sent, the exception's ``id`` is its
    /// id: it stays in flight, and its answer may still come to
    /// ``recv_response``; ``abandon(e.id)`` gives up on it),
    /// ``Disconnected``, ``TooLarge``.
    #[pyo3(signature = (data, timeout=None))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let name = &self.h.name;
        let t = wait::timeout_arg(timeout)?;
        let deadline = t.and_then(|t| Instant::now().checked_add(t));
        let v = self.h.with(|c| {
            let Some(id) = request_on(py, name, c, data, t)? else {
                return Err(errors::timeout(py, name));
            };
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64());
            recv_raw(py, left, |d| c.call_response_timeout(id, d))?
                .map_err(|e| client_error(py, name, Some(id), e))
        })?;
        Ok(PyBytes::new(py, &v))
    }

    /// Gives up on request ``id``: it no longer counts against
    /// ``capacity`` and its response, if one comes, is dropped. Returns
    /// whether ``id`` was in flight.
    fn abandon(&self, id: u64) -> PyResult<bool> {
        self.h.with(|c| Ok(c.abandon(id)))
    }

    /// Requests sent whose response has not been read yet.
    #[getter]
    fn in_flight(&self) -> PyResult<usize> {
        self.h.with(|c| Ok(c.in_flight()))
    }

    /// Largest request or response in bytes.
    #[getter]
    fn max_message(&self) -> PyResult<usize> {
        self.h.with(|c| Ok(c.max_message()))
    }

    /// Requests this client may have in flight at once.
    #[getter]
    fn capacity(&self) -> PyResult<usize> {
        self.h.with(|c| Ok(c.capacity()))
    }
}

/// Sends a request within `timeout`; `Ok(None)`: the time ran out.
fn request_on(
    py: Python<'_>,
    name: &str,
    c: &mut mapshare::Client,
    data: &Bound<'_, PyAny>,
    timeout: Option<Duration>,
) -> PyResult<Option<u64>> {
    let max = c.max_message();
    let mut id = None;
    let t = timeout.map(|t| t.as_secs_f64());
    let done = send_with(py, name, data, t, max, |m, d| {
        c.request_timeout(m, d)
            .map(|i| id = Some(i))
            .map_err(send_fail)
    })?;
    Ok(if done { id } else { None })
}

/// A wait for a response that failed: a timeout waiting for request `id`
/// carries it; `Disconnected` says why no response can come.
fn client_error(py: Python<'_>, name: &str, id: Option<u64>, e: RecvTimeoutError) -> PyErr {
    match (e, id) {
        (RecvTimeoutError::Timeout, Some(id)) => {
            let idv = id.into_pyobject(py).expect("an int").into_any();
            errors::raise_with(
                py,
                "Timeout",
                format!("{name}: timed out waiting for the response to request {id}"),
                &[("id", idv)],
            )
        }
        (RecvTimeoutError::Disconnected, _) => errors::raise(
            py,
            "Disconnected",
            format!(
                "{name}: no response can come (nothing is in flight, or the server has gone \
                 and every response it sent was read)"
            ),
        ),
        (e, _) => errors::recv(py, name, e),
    }
}
