//! The subscribers' side of the ring: joining, leaving and announcing a
//! cursor, reading a slot, receiving, and the view `info` shows.

use std::time::{Duration, Instant};

use super::{
    is_negative, published, Lent, Policy, Recv, Ring, SlotRead, SubState, SubView, Took,
    JOIN_ATTEMPTS, MAX_SUBSCRIBERS,
};
use crate::primitive::{fence, AtomicU64, Ordering};
use crate::sync::doorbell::{Doorbell, WaitStrategy};
use crate::sync::Liveness;

impl<'a> Ring<'a> {
    /// Claims a slot whose owner is 0 (or, with `peers`, dead).
    fn claim_slot(&self, token: u32, peers: Option<&dyn Liveness>) -> Option<usize> {
        for (i, s) in self.subs.iter().enumerate() {
            // Free -> ours.
            if s.owner.load(Ordering::Relaxed) == 0
                && s.owner
                    .compare_exchange(0, token, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(i);
            }
        }
        let peers = peers?;
        for (i, s) in self.subs.iter().enumerate() {
            let o = s.owner.load(Ordering::Relaxed);
            // Dead owner -> ours; the CAS on the exact token makes one claimant win.
            if o != 0
                && !peers.is_alive(o)
                && s.owner
                    .compare_exchange(o, token, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                return Some(i);
            }
        }
        None
    }

    /// Announces a cursor in our slot (module doc, "Joining"). With
    /// `from_tail = Some(h)`, the cursor is `h` messages before the current
    /// tail (a new subscriber; `h` is clamped to what the ring holds, and
    /// halved at each retry after the second, so that a publisher racing
    /// ahead cannot make every attempt fail); otherwise `cursor` is kept (a subscriber that
    /// lost its slot). Returns the cursor and whether the join *holds*: the
    /// re-read of `tail` was less than a ring past it, so a lossless
    /// publisher sees the cursor before it rewrites that position (only
    /// then may the subscriber lend slots in place).
    fn announce(&self, i: usize, cursor: u64, from_tail: Option<u64>) -> (u64, bool) {
        let Some(s) = self.subs.get(i) else {
            return (cursor, false);
        };
        let lossless = self.g.policy == Policy::Lossless;
        // The oldest slot may be the one the publisher is rewriting (it may
        // be writing position `tail`), so at most capacity - 1 back; and
        // never before the first message.
        let back = |t: u64, h: u64| h.min(self.g.cap() - 1).min(t.wrapping_sub(self.g.base));
        // SYNC(join): as `joins` below, before our cursor is announced.
        self.ctl.high.fetch_max(i as u32 + 1, Ordering::SeqCst);
        let mut c = match from_tail {
            Some(h) => {
                let t = self.tail.tail.load(Ordering::SeqCst);
                t.wrapping_sub(back(t, h))
            }
            None => cursor,
        };
        let mut holds = false;
        for attempt in 1..=JOIN_ATTEMPTS {
            // SYNC(cursor): pairs with the publisher's load in `scan`.
            s.cursor.store(c, Ordering::SeqCst);
            // SYNC(join): made visible to the publisher's `joins` load in
            // `has_room` through the `tail` release sequence below.
            self.ctl.joins.fetch_add(1, Ordering::SeqCst);
            // SYNC(join): a read-modify-write: the publisher's later `swap`
            // of `tail` acquires from it (module doc, "Joining"): if it is
            // less than a ring past our cursor, the publisher sees our
            // cursor before it rewrites that position.
            let t = self.tail.tail.fetch_add(0, Ordering::SeqCst);
            holds = t.wrapping_sub(c) < self.g.cap();
            // An overwrite-oldest publisher never waits for us: nothing to
            // make hold (a lap shows as `Lagged`).
            let Some(h) = from_tail.filter(|_| lossless) else {
                break;
            };
            if holds {
                break;
            }
            // Retry with the whole history twice, then halve it (from what
            // the ring holds, not from what was asked) at each attempt: a
            // publisher racing ahead cannot make every attempt fail.
            let h = h.min(self.g.cap() - 1) >> attempt.saturating_sub(2).min(63);
            c = t.wrapping_sub(back(t, h));
        }
        // A publisher may be asleep, blocked on the stale cursor we found.
        self.room_bell.ring();
        (c, holds)
    }

    /// Joins as a subscriber, starting `history` messages before the
    /// current tail (clamped to what the ring holds; 0: the messages
    /// published from now on). `None` when every slot is held by a live
    /// subscriber.
    pub(crate) fn join(&self, peers: &dyn Liveness, pid: u32, history: u64) -> Option<SubState> {
        let token = peers.token();
        let i = self.claim_slot(token, Some(peers))?;
        if let Some(s) = self.subs.get(i) {
            s.pid.store(pid, Ordering::Relaxed);
            s.missed.store(0, Ordering::Relaxed);
        }
        let (cursor, holds) = self.announce(i, 0, Some(history));
        // Count first, then the holder: a publisher that claims in between
        // shows in one or the other (it counts itself after its claim).
        let publishers_at_join = self.ctl.publishers.load(Ordering::Acquire);
        let p = self.publisher();
        Some(SubState {
            token,
            slot: Some(i),
            lendable: holds,
            cursor,
            pub_seen: p,
            pub_alive: p != 0 && peers.is_alive(p),
            pub_checked: Some(Instant::now()),
            pub_at_join: p != 0 && peers.is_alive(p),
            publishers_at_join,
        })
    }

    /// Leaves: frees our slot (if still ours) and wakes a publisher that
    /// may be waiting for us.
    pub(crate) fn leave(&self, st: &mut SubState) {
        if let Some(s) = st.slot.take().and_then(|i| self.subs.get(i)) {
            // Ours -> free.
            let _ = s
                .owner
                .compare_exchange(st.token, 0, Ordering::SeqCst, Ordering::Relaxed);
            self.room_bell.ring();
        }
    }

    /// Moves our cursor to `to` and mirrors it for the publisher.
    fn advance(&self, st: &mut SubState, to: u64) {
        let from = st.cursor;
        st.cursor = to;
        let Some(i) = st.slot else {
            self.rejoin(st);
            return;
        };
        let Some(s) = self.subs.get(i) else {
            st.slot = None;
            return;
        };
        if s.owner.load(Ordering::Relaxed) != st.token {
            // Someone freed our slot (only a peer breaking the protocol can:
            // we are alive). Find another; the publisher may have lapped us
            // meanwhile, which the next read reports.
            st.slot = None;
            self.rejoin(st);
            return;
        }
        // SYNC(cursor): SeqCst store: Release pairs with the publisher's
        // load in `scan` (our copy happens before it reuses the slot);
        // SeqCst orders it before the doorbell's load of its word (Dekker
        // with a publisher going to sleep).
        s.cursor.store(to, Ordering::SeqCst);
        if self.g.policy == Policy::Lossless {
            // loom lacks the SeqCst total order of plain loads and stores
            // (see `Doorbell::ring`); a fence gives it.
            #[cfg(mapshare_loom)]
            crate::primitive::fence(Ordering::SeqCst);
            // SYNC(room-want): SeqCst load after our SeqCst cursor store;
            // pairs with the publisher's store in `want_room`. Only the
            // advance that crosses the publisher's mark can end its wait:
            // the others need not ring (a ring with the sleepers bit set
            // is a system call, and wakes it for nothing).
            let want = self.tail.want.load(Ordering::SeqCst);
            if is_negative(from.wrapping_sub(want)) && !is_negative(to.wrapping_sub(want)) {
                self.room_bell.ring();
            }
        }
    }

    /// Claims a free slot again, keeping our cursor. Without one we read on
    /// unpaced (a lossless publisher no longer waits for us).
    fn rejoin(&self, st: &mut SubState) {
        if let Some(i) = self.claim_slot(st.token, None) {
            st.slot = Some(i);
            st.lendable = self.announce(i, st.cursor, None).1;
        }
    }

    /// Skips to `to`, telling the caller how much it missed.
    fn skip_to(&self, st: &mut SubState, to: u64) -> Recv {
        let missed = to.wrapping_sub(st.cursor);
        if let Some(s) = st.slot.and_then(|i| self.subs.get(i)) {
            s.missed.fetch_add(missed, Ordering::Relaxed);
        }
        self.advance(st, to);
        Recv::Lagged(missed)
    }

    /// The slot of `pos`, if its `seq` says it holds that position (with
    /// the `seq` value read); else what it holds instead.
    #[allow(clippy::type_complexity)] // Reason: the slot's three parts and the value read
    fn published_slot(
        &self,
        pos: u64,
    ) -> Result<(&'a AtomicU64, u64, &'a AtomicU64, &'a [AtomicU64]), SlotRead> {
        let Some((seq, len, data)) = self.slot(pos) else {
            return Err(SlotRead::Older);
        };
        let want = published(pos);
        // SYNC(slot): Acquire pairs with the publisher's Release store of
        // `seq` in `finish`: the length and the data it wrote are visible.
        let s1 = seq.load(Ordering::Acquire);
        if s1 != want {
            return Err(if is_negative(s1.wrapping_sub(want)) {
                SlotRead::Older
            } else {
                SlotRead::Newer
            });
        }
        Ok((seq, s1, len, data))
    }

    /// Copies the message of `pos` into `buf` if the slot holds it, whole.
    fn read_slot(&self, pos: u64, buf: &mut Vec<u8>) -> SlotRead {
        let (seq, s1, len, data) = match self.published_slot(pos) {
            Ok(parts) => parts,
            Err(other) => return other,
        };
        // Copy the length out once, then check it before using it.
        let n = len.load(Ordering::Relaxed);
        let fits = n <= self.g.max_message as u64;
        if fits {
            buf.resize(n as usize, 0);
            self.get(data, buf);
        }
        // SYNC(slot-fence): pairs with the publisher's Release fence: if a
        // word we copied came from a newer message, `seq` has changed.
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) != s1 {
            buf.clear();
            return SlotRead::Newer;
        }
        if !fits {
            buf.clear();
            return SlotRead::BadLen(n);
        }
        SlotRead::Ok
    }

    /// One receive attempt, without waiting.
    pub(crate) fn try_recv(&self, st: &mut SubState, buf: &mut Vec<u8>) -> Recv {
        match self.try_take(st, |pos| self.read_slot(pos, buf)) {
            Took::Read(pos) => {
                self.advance(st, pos.wrapping_add(1));
                Recv::Message
            }
            Took::Done(r) => r,
        }
    }

    /// One attempt to lend the next message in place, without waiting.
    /// Only a lossless ring whose publisher paces us (our slot held, our
    /// join or rejoin held) lends: the publisher then never rewrites the
    /// slot until [`Ring::consume`] moves our cursor past it, and
    /// [`Recv::Message`] leaves [`Lent::InPlace`] in `out` with the cursor
    /// where it is. Otherwise the message is copied into `scratch`
    /// (validated, as [`Ring::try_recv`] does) and `out` says
    /// [`Lent::Copied`].
    pub(crate) fn try_lend(
        &self,
        st: &mut SubState,
        out: &mut Option<Lent>,
        scratch: &mut Vec<u8>,
    ) -> Recv {
        if self.g.policy != Policy::Lossless || st.slot.is_none() || !st.lendable {
            let got = self.try_recv(st, scratch);
            if got == Recv::Message {
                *out = Some(Lent::Copied);
            }
            return got;
        }
        match self.try_take(st, |pos| self.check_slot(pos)) {
            Took::Read(pos) => {
                let len = self
                    .slot(pos)
                    .map_or(0, |(_, len, _)| len.load(Ordering::Relaxed) as usize);
                *out = Some(Lent::InPlace {
                    pos,
                    len: len.min(self.g.max_message),
                });
                Recv::Message
            }
            Took::Done(r) => r,
        }
    }

    /// Ends a loan of [`Ring::try_lend`]: moves our cursor past `pos`.
    pub(crate) fn consume(&self, st: &mut SubState, pos: u64) {
        self.advance(st, pos.wrapping_add(1));
    }

    /// The shared part of a receive attempt: finds the next position and
    /// lets `read` look at its slot; everything but a good read (lags,
    /// corrupt slots) is handled here.
    fn try_take(&self, st: &mut SubState, read: impl FnOnce(u64) -> SlotRead) -> Took {
        let cap = self.g.cap();
        // SYNC(tail): Acquire pairs with the SeqCst store in `publish`.
        let t = self.tail.tail.load(Ordering::Acquire);
        let ahead = t.wrapping_sub(st.cursor);
        if ahead == 0 || is_negative(ahead) {
            // Nothing new (a tail behind us is garbage: wait for it to pass).
            return Took::Done(Recv::Empty);
        }
        if ahead > cap {
            return Took::Done(self.skip_to(st, t.wrapping_sub(cap)));
        }
        let pos = st.cursor;
        Took::Done(match read(pos) {
            SlotRead::Ok => return Took::Read(pos),
            SlotRead::Newer => {
                // Overwritten before or while we copied it.
                let t = self.tail.tail.load(Ordering::Acquire);
                let behind = t.wrapping_sub(pos);
                let to = if behind > cap && !is_negative(behind) {
                    t.wrapping_sub(cap)
                } else {
                    pos.wrapping_add(1)
                };
                self.skip_to(st, to)
            }
            SlotRead::Older => {
                // `tail` says published, the slot says not: garbage, or two
                // publishers at once. Skip it, so the next read goes on.
                self.advance(st, pos.wrapping_add(1));
                Recv::Corrupt { pos, len: 0 }
            }
            SlotRead::BadLen(len) => {
                self.advance(st, pos.wrapping_add(1));
                Recv::Corrupt { pos, len }
            }
        })
    }

    /// As [`Ring::read_slot`] without the copy: whether the slot holds the
    /// message of `pos` with a valid length.
    fn check_slot(&self, pos: u64) -> SlotRead {
        let (_, _, len, _) = match self.published_slot(pos) {
            Ok(parts) => parts,
            Err(other) => return other,
        };
        let n = len.load(Ordering::Relaxed);
        if n > self.g.max_message as u64 {
            return SlotRead::BadLen(n);
        }
        SlotRead::Ok
    }

    /// Whether something at or after our cursor is published (the wait
    /// condition; `SeqCst` for the doorbell's Dekker pairing).
    fn readable(&self, cursor: u64) -> bool {
        // SYNC(tail): SeqCst load pairs with the SeqCst store in `publish`.
        let ahead = self.tail.tail.load(Ordering::SeqCst).wrapping_sub(cursor);
        ahead != 0 && !is_negative(ahead)
    }

    /// For a wait set: whether `recv` would return at once (a message, a
    /// lag, or a publisher that came and went; a killed one only with
    /// `peers`, which asks the registry).
    pub(crate) fn poll_ready(&self, st: &SubState, peers: Option<&dyn Liveness>) -> bool {
        if self.readable(st.cursor) {
            return true;
        }
        let came =
            st.pub_at_join || self.ctl.publishers.load(Ordering::Acquire) != st.publishers_at_join;
        if !came {
            return false;
        }
        let p = self.publisher();
        p == 0 || peers.is_some_and(|l| !l.is_alive(p))
    }

    /// The doorbell subscribers sleep on for data.
    pub(crate) fn data_bell(&self) -> &'a Doorbell {
        self.data_bell
    }

    /// The publisher's token (0: none).
    fn publisher(&self) -> u32 {
        // SYNC(publisher): SeqCst (Acquire) pairs with the store in
        // `release_publisher`; after seeing 0 a tail load sees every message.
        self.ctl.publisher.load(Ordering::SeqCst)
    }

    /// Whether the publisher is gone: no live publisher holds the ring,
    /// and one did at our join or has come since (a subscriber that joined
    /// first waits for its publisher, as a channel's receiver waits for its
    /// first sender). Asks the registry (a system call) at most once per
    /// `poll` for the same publisher.
    ///
    /// Without `ask` the registry is asked only about a publisher not seen
    /// before (no clock read): the look a receive takes before its first
    /// wait, on the fast path of a ping-pong; the waits end in slices of
    /// `poll`, after which the full look is taken.
    fn publisher_gone(
        &self,
        st: &mut SubState,
        peers: &dyn Liveness,
        poll: Duration,
        ask: bool,
    ) -> bool {
        let p = self.publisher();
        let came = |st: &SubState| {
            st.pub_at_join || self.ctl.publishers.load(Ordering::Acquire) != st.publishers_at_join
        };
        if p == 0 {
            return came(st);
        }
        let due = p != st.pub_seen || (ask && st.pub_checked.is_none_or(|t| t.elapsed() >= poll));
        if due {
            st.pub_seen = p;
            st.pub_alive = peers.is_alive(p);
            st.pub_checked = Some(Instant::now());
        }
        !st.pub_alive && came(st)
    }

    /// Receives one message, waiting as `wait` says. Reports
    /// [`Recv::Disconnected`] when nothing is left and no live publisher
    /// holds the ring; a killed publisher is noticed within `peer_poll`.
    pub(crate) fn recv(
        &self,
        st: &mut SubState,
        buf: &mut Vec<u8>,
        peers: &dyn Liveness,
        wait: Option<(WaitStrategy, Option<Instant>)>,
        peer_poll: Duration,
    ) -> Recv {
        self.recv_with(st, peers, wait, peer_poll, |r, st| r.try_recv(st, buf))
    }

    /// The receive loop around `attempt` (a copy or a loan): what
    /// [`Ring::recv`] does with [`Ring::try_recv`].
    pub(crate) fn recv_with(
        &self,
        st: &mut SubState,
        peers: &dyn Liveness,
        wait: Option<(WaitStrategy, Option<Instant>)>,
        peer_poll: Duration,
        mut attempt: impl FnMut(&Self, &mut SubState) -> Recv,
    ) -> Recv {
        // The registry is asked (and the clock read) only once a wait has
        // ended without a message, or when there is no waiting.
        let mut ask = wait.is_none();
        loop {
            match attempt(self, st) {
                Recv::Empty => {}
                other => return other,
            }
            if self.publisher_gone(st, peers, peer_poll, ask) {
                // Gone: deliver what it published before it went.
                return match attempt(self, st) {
                    Recv::Empty => Recv::Disconnected,
                    other => other,
                };
            }
            let Some((strategy, deadline)) = wait else {
                return Recv::Empty;
            };
            // At the deadline, after the full look at the publisher.
            if ask && deadline.is_some_and(|d| Instant::now() >= d) {
                return Recv::Empty;
            }
            // Sleep in slices of `peer_poll`, to notice a killed publisher.
            let (cursor, p) = (st.cursor, st.pub_seen);
            let ready = self.data_bell.wait_until(
                strategy,
                deadline,
                Some(peer_poll),
                &|| peers.intact(),
                || self.readable(cursor) || self.ctl.publisher.load(Ordering::Relaxed) != p,
            );
            if !ready && !peers.intact() {
                return Recv::Truncated;
            }
            // A wait that ended without a message (a slice, the deadline)
            // is followed by the full look.
            ask |= !ready;
        }
    }

    /// The async form of [`recv_with`](Self::recv_with) without a deadline
    /// (feature `tokio`): the same checks, the doorbell sleep awaited.
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub(crate) async fn recv_async(
        &self,
        st: &mut SubState,
        peers: &(dyn Liveness + Sync),
        peer_poll: Duration,
        mut attempt: impl FnMut(&Self, &mut SubState) -> Recv,
    ) -> Recv {
        let mut ask = false;
        loop {
            match attempt(self, st) {
                Recv::Empty => {}
                other => return other,
            }
            if self.publisher_gone(st, peers, peer_poll, ask) {
                return match attempt(self, st) {
                    Recv::Empty => Recv::Disconnected,
                    other => other,
                };
            }
            let (cursor, p) = (st.cursor, st.pub_seen);
            let slice = Instant::now().checked_add(peer_poll);
            let ready =
                crate::asyncio::bell_wait(self.data_bell, slice, &|| peers.intact(), || {
                    self.readable(cursor) || self.ctl.publisher.load(Ordering::Relaxed) != p
                })
                .await;
            if !ready && !peers.intact() {
                return Recv::Truncated;
            }
            ask = true;
        }
    }

    /// Live subscribers, as `info` shows them.
    pub(crate) fn subscribers(&self, peers: &dyn Liveness) -> Vec<SubView> {
        let high = (self.ctl.high.load(Ordering::Acquire) as usize).min(MAX_SUBSCRIBERS);
        self.subs
            .iter()
            .take(high)
            .enumerate()
            .filter_map(|(slot, s)| {
                let owner = s.owner.load(Ordering::Acquire);
                (owner != 0).then(|| SubView {
                    slot,
                    pid: s.pid.load(Ordering::Relaxed),
                    cursor: s.cursor.load(Ordering::Acquire),
                    missed: s.missed.load(Ordering::Relaxed),
                    alive: peers.is_alive(owner),
                })
            })
            .collect()
    }

    /// The publisher's token and whether it is alive.
    pub(crate) fn publisher_state(&self, peers: &dyn Liveness) -> (u32, bool) {
        let p = self.publisher();
        (p, p != 0 && peers.is_alive(p))
    }
}
