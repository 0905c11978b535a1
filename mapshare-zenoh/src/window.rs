//! End-to-end flow control: a sending bridge keeps at most [`WINDOW`]
//! messages unacknowledged by each live receiving bridge.
//!
//! Why: Zenoh has no back-pressure from a subscriber to its publisher. A
//! receiving bridge that stops taking samples (its local receiver away, a
//! slow lossless subscriber) would block Zenoh's receive task in the FIFO's
//! callback, stop the whole link from being read, and after Zenoh's lease
//! (10 s) or `wait_before_close` (5 s) the link is closed and what it
//! buffered is lost. With the window, the FIFO (twice the window) never
//! fills: the sender waits instead, which holds its local ring or channel,
//! and so the local publisher or senders, back.
//!
//! Each receiving bridge puts, on `mapshare/NAME/KIND/ack/RECEIVER`, the
//! sending origin and the last sequence number it has taken (delivered, or
//! dropped on purpose) every [`ACK_EVERY`] messages. The sender counts the
//! receivers by their liveliness tokens: a receiver that appears is owed
//! nothing yet (its window starts at the sender's current sequence), one
//! that goes is no longer waited for.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// Messages a sender may have unacknowledged per receiver.
pub(crate) const WINDOW: u64 = 128;

/// A receiver acknowledges every this many messages (and at each end).
pub(crate) const ACK_EVERY: u64 = WINDOW / 4;

/// The FIFO between Zenoh and a receiving bridge: room for a whole window
/// and what else may come meanwhile (end tags, a restarted sender's first
/// window), so Zenoh's receive task never waits on it.
pub(crate) const FIFO: usize = 4 * WINDOW as usize;

/// The key a receiving bridge `receiver` acknowledges on.
pub(crate) fn ack_key(name: &str, kind: &str, receiver: u64) -> String {
    format!("mapshare/{name}/{kind}/ack/{receiver:016x}")
}

/// The payload of an acknowledgement: the sending origin and the last
/// sequence number taken, both u64 LE.
pub(crate) fn ack_payload(origin: u64, seq: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&origin.to_le_bytes());
    b[8..].copy_from_slice(&seq.to_le_bytes());
    b
}

/// Parses [`ack_payload`]; `None` for anything else.
pub(crate) fn parse_ack(b: &[u8]) -> Option<(u64, u64)> {
    if b.len() != 16 {
        return None;
    }
    Some((
        u64::from_le_bytes(b[..8].try_into().ok()?),
        u64::from_le_bytes(b[8..].try_into().ok()?),
    ))
}

/// The receiver origin at the end of a liveliness or ack key.
pub(crate) fn origin_at_end(key: &str) -> Option<u64> {
    let hex = key.rsplit('/').next()?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

#[derive(Debug, Default)]
struct State {
    /// The last sequence number sent.
    sent: u64,
    /// Per live receiver: the last sequence number it acknowledged.
    acked: HashMap<u64, u64>,
}

/// A sender's window, updated from Zenoh callbacks, waited on by a thread
/// (rings) or a task (channels).
#[derive(Debug)]
pub(crate) struct Window {
    state: Mutex<State>,
    cv: Condvar,
    changed: watch::Sender<u64>,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            state: Mutex::default(),
            cv: Condvar::new(),
            changed: watch::Sender::new(0),
        }
    }
}

impl Window {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.cv.notify_all();
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver's token appeared: it is owed nothing sent before.
    pub(crate) fn join(&self, receiver: u64) {
        let mut s = self.lock();
        let sent = s.sent;
        s.acked.entry(receiver).or_insert(sent);
        drop(s);
        self.wake();
    }

    /// A receiver's token went: no longer waited for.
    pub(crate) fn leave(&self, receiver: u64) {
        self.lock().acked.remove(&receiver);
        self.wake();
    }

    /// An acknowledgement from `receiver` up to `seq` (a stale or
    /// out-of-range one changes nothing).
    pub(crate) fn ack(&self, receiver: u64, seq: u64) {
        let mut s = self.lock();
        let sent = s.sent;
        if let Some(a) = s.acked.get_mut(&receiver) {
            if seq > *a && seq <= sent {
                *a = seq;
            }
        }
        drop(s);
        self.wake();
    }

    fn has_room(s: &State) -> bool {
        s.acked.values().all(|&a| s.sent - a < WINDOW)
    }

    /// Counts message `seq` as sent (call after a put).
    pub(crate) fn sent(&self, seq: u64) {
        self.lock().sent = seq;
    }

    /// Waits (a thread) until every live receiver has room, at most
    /// `slice`; returns whether there is room.
    pub(crate) fn wait_room(&self, slice: Duration) -> bool {
        let s = self.lock();
        let (s, _) = self
            .cv
            .wait_timeout_while(s, slice, |s| !Self::has_room(s))
            .unwrap_or_else(|e| e.into_inner());
        Self::has_room(&s)
    }

    /// Waits (a task) until every live receiver has room.
    pub(crate) async fn room(&self) {
        let mut rx = self.changed.subscribe();
        loop {
            if Self::has_room(&self.lock()) {
                return;
            }
            // A change after the look above marks `rx` changed: no lost
            // wake-up.
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_holds_the_window_until_it_acks_or_leaves() {
        let w = Window::default();
        assert!(w.wait_room(Duration::ZERO), "nobody to wait for");
        w.join(1);
        w.sent(WINDOW - 1);
        assert!(w.wait_room(Duration::ZERO));
        w.sent(WINDOW);
        assert!(!w.wait_room(Duration::from_millis(1)), "a full window");
        w.ack(1, WINDOW + 5); // beyond what was sent: ignored
        assert!(!w.wait_room(Duration::ZERO));
        w.ack(1, 10);
        assert!(w.wait_room(Duration::ZERO));
        w.ack(1, WINDOW);
        w.join(2); // a newcomer is owed nothing sent before
        w.sent(2 * WINDOW - 1);
        assert!(w.wait_room(Duration::ZERO));
        w.ack(1, 2 * WINDOW - 1);
        w.sent(2 * WINDOW);
        assert!(!w.wait_room(Duration::ZERO), "receiver 2 holds it");
        w.leave(2);
        assert!(w.wait_room(Duration::ZERO));
    }

    #[test]
    fn acks_round_trip_and_keys_name_the_receiver() {
        assert_eq!(parse_ack(&ack_payload(7, 99)), Some((7, 99)));
        assert_eq!(parse_ack(&[0; 15]), None);
        let k = ack_key("x", "channel", 0xab);
        assert_eq!(origin_at_end(&k), Some(0xab));
        assert_eq!(origin_at_end("mapshare/x/channel/live/zz"), None);
    }
}
