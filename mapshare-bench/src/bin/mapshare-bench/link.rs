//! One side's two directions through mapshare: a channel each way, or a
//! pub/sub ring each way (one subscriber), behind one interface so that the
//! parent and the peer run the same protocol over either.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use mapshare::{Publisher, Receiver, RecvTimeoutError, Sender, Subscriber, View, ViewMut};

/// Sending and receiving on one side of a job.
pub(super) trait Link {
    /// Sends a copy of `buf`.
    fn send(&mut self, buf: &[u8], deadline: Instant) -> anyhow::Result<()>;
    /// Loans a slot, lets `fill` write into it, commits `len` bytes.
    fn send_loaned(
        &mut self,
        len: usize,
        deadline: Instant,
        fill: &mut dyn FnMut(&mut ViewMut<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
    /// Receives the next message in place and hands its view to `read`.
    fn recv_with<R>(
        &mut self,
        deadline: Instant,
        read: impl FnOnce(&View<'_>) -> R,
    ) -> anyhow::Result<R>;
    /// Expects no message for `quiet`.
    fn silent_for(&mut self, quiet: Duration) -> anyhow::Result<()>;
}

/// A channel each way.
pub(super) struct Channels<'a> {
    pub(super) tx: &'a mut Sender,
    pub(super) rx: &'a mut Receiver,
}

/// The two ends' calls have the same shapes; only the sending call's name
/// differs.
macro_rules! link {
    ($ty:ident, $send:ident, $what:literal) => {
        impl Link for $ty<'_> {
            fn send(&mut self, buf: &[u8], deadline: Instant) -> anyhow::Result<()> {
                self.tx
                    .$send(buf, deadline)
                    .map_err(|e| anyhow!(concat!($what, ": {}"), e))
            }

            fn send_loaned(
                &mut self,
                len: usize,
                deadline: Instant,
                fill: &mut dyn FnMut(&mut ViewMut<'_>) -> anyhow::Result<()>,
            ) -> anyhow::Result<()> {
                let mut loan = self
                    .tx
                    .loan_deadline(deadline)
                    .map_err(|e| anyhow!("loan: {e}"))?;
                fill(&mut loan.view_mut())?;
                loan.commit(len);
                Ok(())
            }

            fn recv_with<R>(
                &mut self,
                deadline: Instant,
                read: impl FnOnce(&View<'_>) -> R,
            ) -> anyhow::Result<R> {
                let msg = self
                    .rx
                    .recv_ref_deadline(deadline)
                    .map_err(|e| anyhow!("recv: {e}"))?;
                Ok(read(&msg)) // the slot is given back when `msg` drops
            }

            fn silent_for(&mut self, quiet: Duration) -> anyhow::Result<()> {
                match self.rx.recv_ref_timeout(quiet).map(|m| m.len()) {
                    Err(RecvTimeoutError::Timeout) => Ok(()),
                    other => bail!("expected silence, got {other:?}"),
                }
            }
        }
    };
}

link!(Channels, send_deadline, "send");

/// A pub/sub ring each way, one subscriber on each.
pub(super) struct Topics<'a> {
    pub(super) tx: &'a mut Publisher,
    pub(super) rx: &'a mut Subscriber,
}

link!(Topics, publish_deadline, "publish");
