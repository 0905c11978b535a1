//! End-to-end flow control: a sending bridge keeps at most [`WINDOW`]
//! messages and [`WINDOW_BYTES`] bytes unacknowledged by each live
//! receiving bridge.
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
//! dropped on purpose) every quarter window, in messages or bytes
//! ([`AckClock`]). The sender counts the
//! receivers by their liveliness tokens: a receiver that appears is owed
//! nothing yet (its window starts at the sender's current sequence), one
//! that goes is no longer waited for.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

/// Messages a sender may have unacknowledged per receiver: enough for
/// small messages to stream at Zenoh's pace across an acknowledgement's
/// round trip (a few hundred µs here).
pub(crate) const WINDOW: u64 = 4096;

/// Bytes a sender may have unacknowledged per receiver: what a receiving
/// bridge may hold in its FIFO for one sender.
pub(crate) const WINDOW_BYTES: u64 = 8 << 20;

/// The FIFO between Zenoh and a receiving bridge, in samples: a whole
/// window from each of up to 16 senders, so Zenoh's receive task never
/// waits on it (its memory is bounded by the windows' bytes).
pub(crate) const FIFO: usize = 16 * WINDOW as usize;

/// When a receiving bridge acknowledges: every quarter window, in
/// messages or in bytes, per sending origin, and at each end.
#[derive(Debug, Default)]
pub(crate) struct AckClock {
    /// Per origin: the last sequence number acknowledged, and the bytes
    /// taken since.
    last: HashMap<u64, (u64, u64)>,
}

impl AckClock {
    /// Message `seq` of `origin`, `len` bytes, was taken: whether to
    /// acknowledge up to it now.
    pub(crate) fn take(&mut self, origin: u64, seq: u64, len: usize, end: bool) -> bool {
        // The first message of a sender is acknowledged at once: whatever
        // the sender counted before we were routed is then settled.
        let first = !self.last.contains_key(&origin);
        let (last, bytes) = self.last.entry(origin).or_insert((0, 0));
        *bytes += len as u64;
        let due =
            first || end || seq.saturating_sub(*last) >= WINDOW / 4 || *bytes >= WINDOW_BYTES / 4;
        if due {
            *last = (*last).max(seq);
            *bytes = 0;
        }
        due
    }

    /// What to acknowledge when the stream pauses: per origin, the last
    /// sequence number taken (`taken`) if it is not acknowledged yet.
    pub(crate) fn flush(&mut self, taken: &HashMap<u64, u64>) -> Vec<(u64, u64)> {
        let mut due = Vec::new();
        for (&o, &seq) in taken {
            if let Some((last, bytes)) = self.last.get_mut(&o) {
                if seq > *last {
                    *last = seq;
                    *bytes = 0;
                    due.push((o, seq));
                }
            }
        }
        due
    }
}

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
    /// The last sequence number sent, and the bytes sent through it.
    sent: u64,
    total: u64,
    /// The bytes sent through each sequence number from `base + 1` to
    /// `sent`; through `base`: `base_total` (older ones are dropped once
    /// every receiver has acknowledged them).
    totals: std::collections::VecDeque<u64>,
    base: u64,
    base_total: u64,
    /// Per live receiver: the last sequence number it acknowledged.
    acked: HashMap<u64, u64>,
}

impl State {
    fn total_at(&self, seq: u64) -> u64 {
        match seq.checked_sub(self.base + 1) {
            None => self.base_total,
            Some(i) => self.totals.get(i as usize).copied().unwrap_or(self.total),
        }
    }

    /// Forgets the totals every receiver is past.
    fn prune(&mut self) {
        let min = self.acked.values().copied().min().unwrap_or(self.sent);
        while self.base < min {
            let Some(t) = self.totals.pop_front() else {
                break;
            };
            self.base += 1;
            self.base_total = t;
        }
    }
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
        let mut s = self.lock();
        s.acked.remove(&receiver);
        s.prune();
        drop(s);
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
        s.prune();
        drop(s);
        self.wake();
    }

    fn has_room(s: &State) -> bool {
        s.acked
            .values()
            .all(|&a| s.sent - a < WINDOW && s.total - s.total_at(a) < WINDOW_BYTES)
    }

    /// Counts message `seq` (the one after the last), `len` bytes, as sent.
    pub(crate) fn sent(&self, seq: u64, len: usize) {
        let mut s = self.lock();
        s.sent = seq;
        s.total += len as u64;
        let t = s.total;
        s.totals.push_back(t);
        s.prune();
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
        let send = |from: u64, to: u64| (from..=to).for_each(|q| w.sent(q, 8));
        send(1, WINDOW - 1);
        assert!(w.wait_room(Duration::ZERO));
        send(WINDOW, WINDOW);
        assert!(!w.wait_room(Duration::from_millis(1)), "a full window");
        w.ack(1, WINDOW + 5); // beyond what was sent: ignored
        assert!(!w.wait_room(Duration::ZERO));
        w.ack(1, 10);
        assert!(w.wait_room(Duration::ZERO));
        w.ack(1, WINDOW);
        w.join(2); // a newcomer is owed nothing sent before
        send(WINDOW + 1, 2 * WINDOW - 1);
        assert!(w.wait_room(Duration::ZERO));
        w.ack(1, 2 * WINDOW - 1);
        send(2 * WINDOW, 2 * WINDOW);
        assert!(!w.wait_room(Duration::ZERO), "receiver 2 holds it");
        w.leave(2);
        assert!(w.wait_room(Duration::ZERO));
        // Bytes count too: a few large messages fill it.
        let big = (WINDOW_BYTES / 3) as usize;
        let s = 2 * WINDOW;
        (1..=3).for_each(|k| w.sent(s + k, big));
        assert!(!w.wait_room(Duration::ZERO), "a window full of bytes");
        w.ack(1, s + 1);
        assert!(w.wait_room(Duration::ZERO));
        assert!(
            w.lock().totals.len() <= 3,
            "acknowledged totals are forgotten"
        );
    }

    #[test]
    fn acks_come_every_quarter_window_in_messages_or_bytes() {
        let mut c = AckClock::default();
        let acks: Vec<u64> = (1..=WINDOW).filter(|&q| c.take(7, q, 1, false)).collect();
        assert_eq!(
            acks,
            vec![1, WINDOW / 4 + 1, WINDOW / 2 + 1, 3 * WINDOW / 4 + 1],
            "the first at once"
        );
        let big = (WINDOW_BYTES / 4) as usize;
        assert!(
            c.take(7, WINDOW + 1, big, false),
            "a quarter window of bytes"
        );
        assert!(c.take(7, WINDOW + 2, 0, true), "an end");
        assert!(
            c.take(8, 100, 1, false),
            "another origin: its first at once"
        );
        assert!(!c.take(8, 101, 1, false));
        let taken = HashMap::from([(8, 101), (7, WINDOW + 2)]);
        assert_eq!(c.flush(&taken), vec![(8, 101)], "what a pause settles");
        assert_eq!(c.flush(&taken), vec![]);
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
