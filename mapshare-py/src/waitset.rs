//! `WaitSet`: one thread waiting on many sources at once (receivers,
//! subscribers, events, mailboxes, servers, clients), in slices like every
//! other wait.
//!
//! Each source's handle is held for the length of the wait: a `Slot`'s
//! lock (another thread using that object meanwhile gets `RuntimeError`,
//! as for any call on it), a `Handle`'s `Arc`. The GIL is released while
//! waiting: only the Rust handles (`&mut T` of a `Send` `T`, `&T` of a
//! `Sync` one) cross into the wait.

use std::sync::{Mutex as StdMutex, MutexGuard, TryLockError};

use mapshare::Waitable;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;

use crate::errors;
use crate::messaging::{Mailbox, Receiver, Subscriber};
use crate::service::{Client, Server};
use crate::sync::Event;
use crate::wait;

/// A source's lock or reference, held on the calling thread.
enum Held<'a> {
    Receiver(MutexGuard<'a, Option<mapshare::Receiver>>),
    Subscriber(MutexGuard<'a, Option<mapshare::Subscriber>>),
    Server(MutexGuard<'a, Option<mapshare::Server>>),
    Client(MutexGuard<'a, Option<mapshare::Client>>),
    Event(std::sync::Arc<mapshare::Event>),
    Mailbox(std::sync::Arc<mapshare::Mailbox>),
}

/// What crosses into the wait (with the GIL released): `Send`.
enum Src<'a> {
    Receiver(&'a mut mapshare::Receiver),
    Subscriber(&'a mut mapshare::Subscriber),
    Server(&'a mut mapshare::Server),
    Client(&'a mut mapshare::Client),
    Event(&'a mapshare::Event),
    Mailbox(&'a mapshare::Mailbox),
}

impl Src<'_> {
    fn waitable(&self) -> &dyn Waitable {
        match self {
            Src::Receiver(r) => &**r,
            Src::Subscriber(s) => &**s,
            Src::Server(s) => &**s,
            Src::Client(c) => &**c,
            Src::Event(e) => *e,
            Src::Mailbox(m) => *m,
        }
    }
}

fn hold<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Held<'a>> {
    if let Ok(r) = obj.cast::<Receiver>() {
        return Ok(Held::Receiver(r.get().h.hold()?));
    }
    if let Ok(s) = obj.cast::<Subscriber>() {
        return Ok(Held::Subscriber(s.get().h.hold()?));
    }
    if let Ok(s) = obj.cast::<Server>() {
        return Ok(Held::Server(s.get().h.hold()?));
    }
    if let Ok(c) = obj.cast::<Client>() {
        return Ok(Held::Client(c.get().h.hold()?));
    }
    if let Ok(e) = obj.cast::<Event>() {
        return Ok(Held::Event(e.get().h.get()?));
    }
    if let Ok(m) = obj.cast::<Mailbox>() {
        return Ok(Held::Mailbox(m.get().h.get()?));
    }
    Err(PyTypeError::new_err(format!(
        "a WaitSet waits on Receiver, Subscriber, Event, Mailbox, Server or Client objects, not {}",
        obj.get_type().name()?
    )))
}

fn src<'a>(h: &'a mut Held<'_>) -> Src<'a> {
    // `hold` checked each slot holds its handle.
    const OPEN: &str = "held open";
    match h {
        Held::Receiver(g) => Src::Receiver(g.as_mut().expect(OPEN)),
        Held::Subscriber(g) => Src::Subscriber(g.as_mut().expect(OPEN)),
        Held::Server(g) => Src::Server(g.as_mut().expect(OPEN)),
        Held::Client(g) => Src::Client(g.as_mut().expect(OPEN)),
        Held::Event(e) => Src::Event(e),
        Held::Mailbox(m) => Src::Mailbox(m),
    }
}

/// Waits on many sources from one thread: ``Receiver``, ``Subscriber``
/// (a message), ``Event`` (set), ``Mailbox`` (a message), ``Server`` (a
/// request), ``Client`` (a response), in any mix.
///
/// ``wait(sources, timeout=None)`` returns the indices (in ``sources``)
/// of those ready, in fair order (the first one ready after the previous
/// wait's first comes first, so no source starves); then take from them
/// with their ``try_`` calls. It raises ``Timeout`` when ``timeout``
/// seconds pass with none ready, and ``Fault`` (``truncated``: their
/// indices) when another process shrank a source's segment (drop those).
/// ``try_wait(sources)`` never waits (an empty list when none is ready).
/// A source whose peers have gone is ready (its receive raises
/// ``Disconnected``). The set holds no source between waits; during one,
/// each source object is in use (another thread's call on it raises
/// ``RuntimeError``).
#[pyclass(module = "mapshare", frozen)]
pub(crate) struct WaitSet {
    ws: StdMutex<mapshare::WaitSet>,
}

#[pymethods]
impl WaitSet {
    #[new]
    fn new() -> WaitSet {
        WaitSet {
            ws: StdMutex::new(mapshare::WaitSet::new()),
        }
    }

    /// The indices of the ready ``sources``, in fair order, waiting at most
    /// ``timeout`` seconds (None: as long as it takes) for one. Raises
    /// ``Timeout``, ``Fault``.
    #[pyo3(signature = (sources, timeout=None))]
    fn wait(
        &self,
        py: Python<'_>,
        sources: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Vec<usize>> {
        let timeout = wait::timeout_arg(timeout)?;
        self.run(py, sources, |ws, refs| {
            wait::sliced(py, timeout, |slice| {
                let r: Vec<&dyn Waitable> = refs.iter().map(Src::waitable).collect();
                ws.wait_timeout(&r, slice)
            })
        })
    }

    /// The indices of the ready ``sources`` now, in fair order (an empty
    /// list when none is).
    fn try_wait(&self, py: Python<'_>, sources: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        self.run(py, sources, |ws, refs| {
            let r: Vec<&dyn Waitable> = refs.iter().map(Src::waitable).collect();
            Ok(Some(ws.try_wait(&r)))
        })
    }

    fn __repr__(&self) -> &'static str {
        "<mapshare.WaitSet>"
    }
}

impl WaitSet {
    /// Holds every source, runs `f`, and turns its `Ready` into indices
    /// (`None`: the time ran out).
    fn run(
        &self,
        py: Python<'_>,
        sources: &Bound<'_, PyAny>,
        f: impl FnOnce(&mut mapshare::WaitSet, &mut Vec<Src<'_>>) -> PyResult<Option<mapshare::Ready>>,
    ) -> PyResult<Vec<usize>> {
        let objs: Vec<Bound<'_, PyAny>> = sources.try_iter()?.collect::<PyResult<_>>()?;
        let mut held = objs.iter().map(hold).collect::<PyResult<Vec<_>>>()?;
        let mut ws = match self.ws.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(
                    "this WaitSet is waiting in another thread (make one per thread)",
                ))
            }
        };
        let mut refs: Vec<Src<'_>> = held.iter_mut().map(src).collect();
        let ready = f(&mut ws, &mut refs)?;
        drop(refs);
        drop(held);
        let Some(ready) = ready else {
            return Err(errors::timeout(py, "WaitSet.wait"));
        };
        if !ready.truncated().is_empty() {
            let t = ready.truncated().to_vec();
            let tv = t.clone().into_pyobject(py)?.into_any();
            return Err(errors::raise_with(
                py,
                "Fault",
                format!("WaitSet.wait: the segments of sources {t:?} were truncated by another process: drop them"),
                &[("truncated", tv)],
            ));
        }
        Ok(ready.iter().collect())
    }
}
