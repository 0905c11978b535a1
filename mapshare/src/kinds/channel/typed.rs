//! Typed channel ends: [`PodSender<T>`] and [`PodReceiver<T>`] carry
//! values of a plain-data `T`, with `T`'s layout checked on open.

use std::marker::PhantomData;

use bytemuck::Pod;

use super::{Channel, Receiver, Sender};
use crate::error::{Fault, RecvTimeoutError, SegmentError, SendTimeoutError};
use crate::layout::Fingerprint;
use crate::options::{self, How, Options};
use crate::segment::Location;
use crate::wait::{recv_forms, send_forms, Wait};

/// The sending end of a typed channel of plain-data `T`.
///
/// The channel records `T`'s [`Fingerprint`]; opening it with another type
/// fails with [`SegmentError::LayoutMismatch`], naming both.
///
/// # Examples
/// ```
/// use mapshare::{PodReceiver, PodSender};
/// # let name = format!("doc-pod-{}", std::process::id());
/// let mut rx = PodReceiver::<[u32; 4]>::create(&name)?;
/// let mut tx = PodSender::<[u32; 4]>::open(&name)?;
/// tx.send([1, 2, 3, 4]).unwrap();
/// assert_eq!(rx.recv().unwrap(), [1, 2, 3, 4]);
/// assert!(PodSender::<u64>::open(&name).is_err()); // another layout
/// # Ok::<(), mapshare::SegmentError>(())
/// ```
#[derive(Debug)]
pub struct PodSender<T: Pod> {
    inner: Sender,
    _t: PhantomData<fn(T)>,
}

/// The receiving end of a typed channel of plain-data `T`.
#[derive(Debug)]
pub struct PodReceiver<T: Pod> {
    inner: Receiver,
    _t: PhantomData<fn() -> T>,
}

fn attach_typed<T: Pod, K>(o: &Options<K>, how: How) -> Result<Channel, SegmentError> {
    Channel::attach(
        o,
        how,
        std::mem::size_of::<T>().max(1),
        Fingerprint::of::<T>(),
        true,
    )
}

impl<T: Pod> options::private::Sealed for PodSender<T> {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        Ok(PodSender {
            inner: Sender::claim(attach_typed::<T, _>(o, how)?)?,
            _t: PhantomData,
        })
    }
}
impl<T: Pod> options::Attach for PodSender<T> {}
impl<T: Pod> options::HasCapacity for PodSender<T> {}
impl<T: Pod> options::HasSenders for PodSender<T> {}

impl<T: Pod> options::private::Sealed for PodReceiver<T> {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        Ok(PodReceiver {
            inner: Receiver::claim(attach_typed::<T, _>(o, how)?)?,
            _t: PhantomData,
        })
    }
}
impl<T: Pod> options::Attach for PodReceiver<T> {}
impl<T: Pod> options::HasCapacity for PodReceiver<T> {}
impl<T: Pod> options::HasSenders for PodReceiver<T> {}

impl<T: Pod> PodSender<T> {
    options::constructors!("a typed channel, as a sender,");

    #[inline]
    fn send_inner(&mut self, value: T, wait: Wait) -> Result<(), SendTimeoutError<T>> {
        self.inner
            .send_inner(bytemuck::bytes_of(&value), wait)
            .map_err(|e| e.map(value))
    }

    send_forms!(
        /// Sends `value`.
        ///
        /// # Errors
        /// `Disconnected` (the value handed back) when the receiver has gone.
        try_send, send, send_timeout, send_deadline (&mut self) <> (value: T) -> () = send_inner
    );

    /// Where the channel lives.
    pub fn location(&self) -> &Location {
        self.inner.location()
    }

    /// Values this sender can have in flight.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

impl<T: Pod> PodReceiver<T> {
    options::constructors!("a typed channel, as its receiver,");

    #[inline]
    fn recv_inner(&mut self, wait: Wait) -> Result<T, RecvTimeoutError> {
        let size = std::mem::size_of::<T>();
        let sample = self.inner.recv_ref_inner(wait)?;
        // Copy out, then check: a peer may have stored any length.
        if sample.len() != size {
            let len = sample.len() as u64;
            drop(sample);
            return Err(RecvTimeoutError::Fault(Fault::BadLength {
                len,
                max: size as u64,
            }));
        }
        sample
            .read_pod::<T>(0)
            .ok_or(RecvTimeoutError::Fault(Fault::BadLength {
                len: size as u64,
                max: size as u64,
            }))
    }

    recv_forms!(
        /// Takes the next value.
        ///
        /// # Errors
        /// `Disconnected` once every sender has gone and nothing is left;
        /// `Fault` for a message of the wrong size (skipped).
        try_recv, recv, recv_timeout, recv_deadline (&mut self) () -> T = recv_inner
    );

    /// Where the channel lives.
    pub fn location(&self) -> &Location {
        self.inner.location()
    }

    /// Values waiting (a snapshot).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no value is waiting (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

impl<T: Pod> crate::waitset::private::Source for PodReceiver<T> {
    fn ready(&self, peers: bool) -> bool {
        crate::waitset::private::Source::ready(&self.inner, peers)
    }

    fn arm(&self) -> Option<(&crate::primitive::AtomicU32, u32)> {
        crate::waitset::private::Source::arm(&self.inner)
    }

    fn intact(&self) -> bool {
        crate::waitset::private::Source::intact(&self.inner)
    }
}
impl<T: Pod> crate::waitset::Waitable for PodReceiver<T> {}
