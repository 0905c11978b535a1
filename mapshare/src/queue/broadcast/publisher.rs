//! The publisher's side of the ring: taking and giving up the role,
//! lossless pacing (the scan of the subscribers' cursors) and publishing.

use std::time::Instant;

use super::{
    is_negative, published, writing, Policy, PubFail, PubState, Ring, LIVENESS_POLL,
    MAX_SUBSCRIBERS,
};
use crate::primitive::{fence, AtomicU64, Ordering};
use crate::sync::doorbell::WaitStrategy;
use crate::sync::Liveness;

impl<'a> Ring<'a> {
    /// Takes the publisher role if it is free or its holder is dead.
    /// `Err(holder)` if a live publisher holds it.
    pub(crate) fn claim_publisher(&self, peers: &dyn Liveness) -> Result<PubState, u32> {
        let me = peers.token();
        let cur = self.ctl.publisher.load(Ordering::Acquire);
        if cur != 0 && cur != me && peers.is_alive(cur) {
            return Err(cur);
        }
        // Free or dead -> ours. The CAS on the exact value judged free or
        // dead lets one claimant win.
        // SYNC(publisher): AcqRel: Acquire pairs with the previous
        // publisher's Release in `release_publisher`, so its tail is visible.
        self.ctl
            .publisher
            .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed)?;
        // SYNC(publisher): Release before our first tail store; subscribers
        // that see us gone (Acquire on `publisher`) see this count.
        self.ctl.publishers.fetch_add(1, Ordering::Release);
        // SYNC(tail): pairs with the SeqCst store in `publish`.
        let tail = self.tail.tail.load(Ordering::Acquire);
        Ok(PubState {
            token: me,
            tail,
            min_cursor: tail,
            joins_seen: 0,
            scanned: false,
            last_liveness: None,
        })
    }

    /// Gives the publisher role up and wakes waiting subscribers, so they
    /// see the disconnection.
    pub(crate) fn release_publisher(&self, st: &PubState) {
        // SYNC(publisher): Release (SeqCst) after our last tail store: a
        // subscriber that sees 0 sees every message we published. SeqCst
        // also orders it before the doorbell's load of its word.
        let _ =
            self.ctl
                .publisher
                .compare_exchange(st.token, 0, Ordering::SeqCst, Ordering::Relaxed);
        self.data_bell.ring();
    }

    /// Whether the publisher may write positions `st.tail` to `st.tail +
    /// ahead` now (`ahead` 0: the next one).
    fn has_room(&self, st: &mut PubState, peers: &dyn Liveness, ahead: u64) -> bool {
        if self.g.policy == Policy::OverwriteOldest {
            return true;
        }
        let p = st.tail;
        let last = p.wrapping_add(ahead);
        // SYNC(join): happens after a joiner's increment once our `tail`
        // swap has acquired from its `fetch_add(0)` (module doc, "Joining").
        let joins = self.ctl.joins.load(Ordering::SeqCst);
        if st.scanned && joins == st.joins_seen && last.wrapping_sub(st.min_cursor) < self.g.cap() {
            return true;
        }
        st.joins_seen = joins;
        st.scanned = true;
        let check = st
            .last_liveness
            .is_none_or(|t| t.elapsed() >= LIVENESS_POLL);
        let (min, blocked, checked) = self.scan(p, ahead, peers, check);
        if checked {
            st.last_liveness = Some(Instant::now());
        }
        st.min_cursor = min;
        !blocked
    }

    /// Before sleeping for room: how many positions past the next one to
    /// wait for (a quarter of the ring, so that one wake-up buys a batch of
    /// publishes instead of one), published in `want` as the cursor the
    /// slowest subscriber must reach. Subscribers ring the room bell only
    /// when their cursor crosses it: while the publisher sleeps, the other
    /// advances cost no system call and wake nobody.
    fn want_room(&self, st: &PubState) -> u64 {
        let ahead = (self.g.cap() / 4).max(1) - 1;
        let want = st
            .tail
            .wrapping_add(ahead)
            .wrapping_sub(self.g.cap())
            .wrapping_add(1);
        // SYNC(room-want): SeqCst store before the doorbell registration
        // (SeqCst CAS and fence) and the re-check; pairs with the
        // subscriber's SeqCst cursor store and `want` load in `advance`:
        // either our re-check sees its cursor or it sees our `want`.
        self.tail.want.store(want, Ordering::SeqCst);
        ahead
    }

    /// Finds the slowest live cursor relative to `p`; drops dead blockers
    /// when `check_liveness`. Returns (slowest cursor, blocked, asked the
    /// registry).
    fn scan(
        &self,
        p: u64,
        ahead: u64,
        peers: &dyn Liveness,
        check_liveness: bool,
    ) -> (u64, bool, bool) {
        let cap = self.g.cap();
        // SYNC(join): as for `joins` in `has_room`.
        let high = (self.ctl.high.load(Ordering::SeqCst) as usize).min(MAX_SUBSCRIBERS);
        let (mut min, mut max_lag, mut blocked, mut checked) = (p, 0u64, false, false);
        for s in self.subs.iter().take(high) {
            let owner = s.owner.load(Ordering::SeqCst);
            if owner == 0 {
                continue;
            }
            // SYNC(cursor): SeqCst (Acquire) pairs with the subscriber's
            // SeqCst store in `advance`: its copy of a message happens
            // before we overwrite the slot.
            let c = s.cursor.load(Ordering::SeqCst);
            let lag = p.wrapping_sub(c);
            if is_negative(lag) {
                // Ahead of the publisher: garbage (cursors never pass the
                // tail). It does not pace us.
                continue;
            }
            if lag.saturating_add(ahead) >= cap {
                if check_liveness {
                    checked = true;
                    if !peers.is_alive(owner) {
                        // Dead (or garbage) owner -> free. The CAS on the
                        // exact token leaves a slot re-claimed meanwhile alone.
                        let _ =
                            s.owner
                                .compare_exchange(owner, 0, Ordering::SeqCst, Ordering::Relaxed);
                        continue;
                    }
                }
                blocked = true;
            }
            if lag > max_lag {
                max_lag = lag;
                min = c;
            }
        }
        (min, blocked, checked)
    }

    /// The async form of a lossless [`publish`](Self::publish) without a
    /// deadline (feature `tokio`): waits for room awaiting the doorbell,
    /// looking at the slowest subscriber's liveness every `poll`.
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub(crate) async fn publish_async(
        &self,
        st: &mut PubState,
        msg: &[u8],
        peers: &(dyn Liveness + Sync),
        poll: std::time::Duration,
    ) -> Result<(), PubFail> {
        if msg.len() > self.g.max_message {
            return Err(PubFail::TooLarge);
        }
        loop {
            self.wait_room_async(st, peers, poll).await?;
            match self.publish(st, msg, peers, None) {
                // Room went again (a subscriber rejoined behind us): wait.
                Err(PubFail::Full) => {}
                done => return done,
            }
        }
    }

    /// The async form of [`wait_room`](Self::wait_room) without a deadline.
    #[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
    pub(crate) async fn wait_room_async(
        &self,
        st: &mut PubState,
        peers: &(dyn Liveness + Sync),
        poll: std::time::Duration,
    ) -> Result<(), PubFail> {
        while !self.has_room(st, peers, 0) {
            let slice = Instant::now().checked_add(poll);
            let ahead = self.want_room(st);
            crate::asyncio::bell_wait(self.room_bell, slice, &|| peers.intact(), || {
                self.has_room(st, peers, ahead)
            })
            .await;
            if !peers.intact() {
                return Err(PubFail::Truncated);
            }
        }
        Ok(())
    }

    /// Writes `msg` at `st.tail` and publishes it. With `wait`, a lossless
    /// publisher waits for room as the strategy says until the deadline.
    pub(crate) fn publish(
        &self,
        st: &mut PubState,
        msg: &[u8],
        peers: &dyn Liveness,
        wait: Option<(WaitStrategy, Option<Instant>)>,
    ) -> Result<(), PubFail> {
        if msg.len() > self.g.max_message {
            return Err(PubFail::TooLarge);
        }
        self.wait_room(st, peers, wait)?;
        if let Some(data) = self.begin(st) {
            self.put(data, msg);
        }
        self.finish(st, msg.len());
        Ok(())
    }

    /// Waits until position `st.tail` may be written (lossless: no live
    /// subscriber a full ring behind), as `wait` says; `None`: only looks.
    pub(crate) fn wait_room(
        &self,
        st: &mut PubState,
        peers: &dyn Liveness,
        wait: Option<(WaitStrategy, Option<Instant>)>,
    ) -> Result<(), PubFail> {
        if self.has_room(st, peers, 0) {
            return Ok(());
        }
        let Some((strategy, deadline)) = wait else {
            return Err(PubFail::Full);
        };
        // Spin phase: for room for one message.
        match strategy {
            WaitStrategy::Spin => return self.wait_room_spinning(st, peers, deadline),
            WaitStrategy::SpinThenBlock { spin } => {
                let end = Instant::now()
                    .checked_add(spin)
                    .map(|e| deadline.map_or(e, |d| d.min(e)));
                if self.room_bell.wait_until(
                    WaitStrategy::Spin,
                    end.or(deadline),
                    None,
                    &|| peers.intact(),
                    || self.has_room(st, peers, 0),
                ) {
                    return Ok(());
                }
            }
            WaitStrategy::Block => {}
        }
        // Sleep phase: for room for a batch, woken by the subscriber whose
        // advance makes it. Slices of LIVENESS_POLL: nobody rings the bell
        // when a subscriber dies, so each slice ends with a look at whether
        // the one we wait for is still alive (in `has_room`), and with room
        // for one message taken if the batch has not come (a slow
        // subscriber then costs a publish at most one slice, not a quarter
        // of the ring).
        loop {
            let ahead = self.want_room(st);
            if self.room_bell.wait_until(
                WaitStrategy::Block,
                deadline,
                Some(LIVENESS_POLL),
                &|| peers.intact(),
                || self.has_room(st, peers, ahead),
            ) {
                return Ok(());
            }
            // Asked again only when no room came (a sleep may have ended
            // it early): the pages of a shrunk segment are gone.
            if !peers.intact() {
                return Err(PubFail::Truncated);
            }
            // Room for one, though not for the batch, is room.
            if self.has_room(st, peers, 0) {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PubFail::Full);
            }
        }
    }

    /// The rest of a [`WaitStrategy::Spin`] wait for room: spin in slices
    /// (each slice's end looks at liveness, in `has_room`) until the
    /// deadline.
    fn wait_room_spinning(
        &self,
        st: &mut PubState,
        peers: &dyn Liveness,
        deadline: Option<Instant>,
    ) -> Result<(), PubFail> {
        loop {
            if self.room_bell.wait_until(
                WaitStrategy::Spin,
                deadline,
                Some(LIVENESS_POLL),
                &|| peers.intact(),
                || self.has_room(st, peers, 0),
            ) {
                return Ok(());
            }
            if !peers.intact() {
                return Err(PubFail::Truncated);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PubFail::Full);
            }
        }
    }

    /// Starts writing position `st.tail` (after [`Ring::wait_room`]):
    /// marks its slot as being written and returns its data words. `None`
    /// only for a ring whose parts do not match its geometry (never, for a
    /// ring built by [`Ring::new`]).
    pub(crate) fn begin(&self, st: &PubState) -> Option<&'a [AtomicU64]> {
        let pos = st.tail;
        let (seq, _, data) = self.slot(pos)?;
        seq.store(writing(pos), Ordering::Relaxed);
        // SYNC(slot-fence): Release fence orders the odd marker before the
        // data stores; pairs with the subscriber's Acquire fence in
        // `read_slot`: a reader that saw any new data word sees the marker
        // (or later) when it loads `seq` again.
        fence(Ordering::Release);
        Some(data)
    }

    /// Publishes position `st.tail`, begun by [`Ring::begin`], with `n`
    /// bytes of data (at most `max_message`).
    pub(crate) fn finish(&self, st: &mut PubState, n: usize) {
        let pos = st.tail;
        if let Some((seq, len, _)) = self.slot(pos) {
            len.store(n.min(self.g.max_message) as u64, Ordering::Relaxed);
            // SYNC(slot): Release publishes `len` and the data; pairs with
            // the Acquire load of `seq` in `read_slot` / `check_slot`.
            seq.store(published(pos), Ordering::Release);
        }
        st.tail = pos.wrapping_add(1);
        // SYNC(tail): a SeqCst swap: Release pairs with the subscribers'
        // Acquire loads of `tail`; SeqCst orders it before the doorbell's
        // load of its word (Dekker with a subscriber going to sleep); and as
        // a read-modify-write it acquires from a joiner's `fetch_add(0)` in
        // `announce` (module doc, "Joining"). On x86 it costs what a SeqCst
        // store does (both are `xchg`).
        self.tail.tail.swap(st.tail, Ordering::SeqCst);
        self.data_bell.ring();
    }

    /// Whether message bytes are written in place through a loan (a
    /// lossless ring) or staged and copied on commit (overwrite-oldest:
    /// see [`Ring::bulk`]).
    pub(crate) fn lends(&self) -> bool {
        self.bulk()
    }
}
