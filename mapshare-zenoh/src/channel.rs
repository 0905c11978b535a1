//! Channels across hosts: the senders of channel NAME on one host (`out`),
//! its one receiver on another (`in`).
//!
//! A channel has one receiver, so unlike a ring the direction is given:
//! on the senders' host the bridge is the channel's receiver and puts what
//! it takes on `mapshare/NAME/channel`; on the receiver's host the bridge
//! is a sender (one lane) and sends what arrives. The local ends keep the
//! plain API on both hosts: `Sender`s here, the `Receiver` there.
//!
//! While the link is up nothing is lost: Zenoh's reliable channel with
//! congestion control `Block`, the window of `crate::window`, and blocking
//! local sends (a receiver that is slow, or absent however long, holds the
//! stream back up to the senders on the other host). The `out` side takes
//! nothing from the channel while no `in` side listens (their reader
//! tokens), while one does not fit (the [`Meta`] check, made again whenever
//! an `in` side comes or goes), or while two do (a channel has one
//! receiver): the senders' messages wait in their lanes, as for a local
//! receiver that is away.
//!
//! The end crosses: once every sender on the `out` host has gone and the
//! lanes are drained, an end tag tells the `in` side, which drops its
//! sender, so the receiver sees `Disconnected` as it would locally. A
//! killed `out` bridge is noticed too: each `out` bridge holds a Zenoh
//! liveliness token, and the `in` side drops its sender when the token of
//! the bridge it relays goes (killed, or the link lost) and does not come
//! back within the grace period (`--grace`, 2 s by default: a link that
//! recovers sooner is not seen at all). The receiver then sees
//! `Disconnected`, and may receive again when the stream resumes (the `in`
//! side takes a lane again), as with a restarted local sender.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use mapshare::{Receiver, RecvError, SendError, Sender, WaitStrategy};
use tokio::sync::watch;
use zenoh::handlers::FifoChannel;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Locality, SampleKind};
use zenoh::Session;

use crate::window::{ack_key, ack_payload, origin_at_end, parse_ack, AckClock, Window, FIFO};
use crate::{check_remote, stopped, tag_of, Counts, Meta, Sequencer, Tag, Verdict, META_TIMEOUT};

/// How often the `out` side looks for a sender again once every sender
/// has gone (a receiver has no wait for a new sender), and the `in` side
/// tries again to send to a receiver that has gone or to take a lane.
const RETRY: Duration = Duration::from_millis(50);

/// The key of the messages of channel `name`.
pub fn channel_key(name: &str) -> String {
    format!("mapshare/{name}/channel")
}

/// The liveliness tokens of the `out` bridges of channel `name`.
pub fn channel_live_key(name: &str, origin: u64) -> String {
    format!("mapshare/{name}/channel/live/{origin:016x}")
}

/// The geometry a bridge gives a channel or a service it creates; `None`:
/// mapshare's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BytesSpec {
    /// Messages per sender lane (a service: requests in flight per client).
    pub capacity: Option<usize>,
    /// Largest message in bytes.
    pub max_message: Option<usize>,
    /// Senders (a service: clients) at once.
    pub peers: Option<usize>,
}

impl BytesSpec {
    /// `o` with this geometry (what is set) and blocking waits.
    pub(crate) fn apply<K>(self, mut o: mapshare::Options<K>) -> mapshare::Options<K>
    where
        K: mapshare::options::Attach
            + mapshare::options::HasCapacity
            + mapshare::options::HasMaxMessage
            + mapshare::options::HasSenders,
    {
        if let Some(c) = self.capacity {
            o = o.capacity(c);
        }
        if let Some(m) = self.max_message {
            o = o.max_message(m);
        }
        if let Some(p) = self.peers {
            o = o.senders(p);
        }
        o.wait_strategy(WaitStrategy::Block)
    }
}

/// Joins channel `name` as its receiver (creating it if needed): the
/// `out` side's local end. Done before the bridge says `ready`, so a
/// receiver already attached is an error at start.
pub(crate) fn open_out(name: &str, spec: BytesSpec) -> Result<Receiver> {
    spec.apply(Receiver::options(name))
        .open_or_create()
        .map_err(|e| anyhow!("{name}: joining the channel as its receiver: {e}"))
}

/// Takes a sender lane of channel `name` (creating it if needed): the `in`
/// side's local end. The bridge takes one at start and holds it until the
/// remote senders end, so a receiver here waits for them as for local
/// senders that have not come yet.
pub(crate) fn open_in(name: &str, spec: BytesSpec) -> Result<Sender, mapshare::SegmentError> {
    spec.apply(Sender::options(name)).open_or_create()
}

/// What a bridge says of its channel on `mapshare/NAME/meta`.
pub(crate) fn channel_meta(origin: u64, role: &str, stats: &mapshare::ChannelStats) -> Meta {
    Meta::bytes(origin, "channel", role, stats.capacity, stats.max_message)
}

/// The liveliness tokens of the `in` bridges of channel `name`.
pub fn channel_reader_key(name: &str, origin: u64) -> String {
    format!("mapshare/{name}/channel/reader/{origin:016x}")
}

/// A put that may wait for Zenoh's queue (congestion control `Block`):
/// on a thread of its own, not the runtime's worker.
pub(crate) fn put_blocking(
    zpub: &zenoh::pubsub::Publisher<'_>,
    payload: Vec<u8>,
    tag: &Tag,
) -> zenoh::Result<()> {
    use zenoh::Wait;
    tokio::task::block_in_place(|| zpub.put(payload).attachment(tag.encode().to_vec()).wait())
}

/// Takes the next message once every `in` side has room in its window.
async fn recv_with_room(
    window: &Window,
    rx: &mut Receiver,
    buf: &mut Vec<u8>,
) -> Result<usize, RecvError> {
    window.room().await;
    rx.recv_into_async(buf).await
}

/// The `out` side: the local channel (this bridge its receiver) to Zenoh.
pub(crate) async fn out_side(
    session: Session,
    origin: u64,
    mut rx: Receiver,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let name = counts.name.clone();
    let key = channel_key(&name);
    let meta = channel_meta(origin, "out", &rx.stats());
    let zpub = session
        .declare_publisher(key.clone())
        .congestion_control(CongestionControl::Block)
        .allowed_destination(Locality::Remote)
        .await
        .map_err(|e| anyhow!("declaring a publisher on {key}: {e}"))?;
    let _token = session
        .liveliness()
        .declare_token(channel_live_key(&name, origin))
        .await
        .map_err(|e| anyhow!("liveliness token for {key}: {e}"))?;
    // The `in` sides, by their tokens, and their acknowledgements.
    let readers_key = format!("mapshare/{name}/channel/reader/*");
    let readers = session
        .liveliness()
        .declare_subscriber(&readers_key)
        .history(true)
        .await
        .map_err(|e| anyhow!("liveliness subscriber on {readers_key}: {e}"))?;
    let window = Arc::new(Window::default());
    let w = window.clone();
    session
        .declare_subscriber(format!("mapshare/{name}/channel/ack/*"))
        .allowed_origin(Locality::Remote)
        .callback(move |s| {
            let from = origin_at_end(s.key_expr().as_str());
            if let (Some(from), Some((to, seq))) = (from, parse_ack(&s.payload().to_bytes())) {
                if to == origin {
                    w.ack(from, seq);
                }
            }
        })
        .background()
        .await
        .map_err(|e| anyhow!("acknowledgements of {key}: {e}"))?;

    let mut present: HashSet<u64> = HashSet::new();
    let mut fit = false;
    let mut told = String::new();
    let mut seq = 0u64;
    // Every sender here has gone and the end was said (it is said again to
    // an `in` side that joins or comes back meanwhile).
    let mut ended = false;
    let mut sent_since_end = false;
    let mut buf = Vec::new();
    loop {
        // Take nothing from the channel until one `in` side listens and
        // fits, and has room in its window.
        if !present.is_empty() && !fit {
            fit = check_remote(&session, &name, &meta, "in", true, &mut told).await;
        }
        let ready = !present.is_empty() && fit;
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return Ok(()),
            r = readers.recv_async() => {
                let Ok(r) = r else { return Ok(()) }; // the session closed
                let Some(o) = origin_at_end(r.key_expr().as_str()) else { continue };
                // Readers came or went: check them again before sending.
                fit = false;
                if r.kind() == SampleKind::Delete {
                    present.remove(&o);
                    window.leave(o);
                    continue;
                }
                present.insert(o);
                window.join(o);
                if ended {
                    // It may have missed the end (joined since, or the link
                    // flapped): say it again, harmless to one that has it.
                    let tag = Tag { origin, seq, end: true };
                    if let Err(e) = put_blocking(&zpub, Vec::new(), &tag) {
                        eprintln!("mapshare-bridge: {name}: sending the end: {e}");
                    }
                }
            }
            () = tokio::time::sleep(META_TIMEOUT), if !present.is_empty() && !fit => {}
            got = recv_with_room(&window, &mut rx, &mut buf), if ready => match got {
                Ok(_) => {
                    seq += 1;
                    let tag = Tag { origin, seq, end: false };
                    // Counted before the put: an acknowledgement may come
                    // back before the put returns.
                    window.sent(seq, buf.len());
                    match put_blocking(&zpub, std::mem::take(&mut buf), &tag) {
                        Ok(()) => {
                            counts.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => eprintln!("mapshare-bridge: {name}: sending: {e}"),
                    }
                    sent_since_end = true;
                    ended = false;
                }
                Err(RecvError::Disconnected) => {
                    if sent_since_end {
                        let tag = Tag { origin, seq, end: true };
                        if let Err(e) = put_blocking(&zpub, Vec::new(), &tag) {
                            eprintln!("mapshare-bridge: {name}: sending the end: {e}");
                        }
                        sent_since_end = false;
                        ended = true;
                    }
                    // Every sender has gone: the receiver answers at once
                    // until one attaches again (it has no wait for that).
                    tokio::select! {
                        () = stopped(&mut stop) => return Ok(()),
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
                Err(RecvError::Fault(mapshare::Fault::Truncated)) => {
                    return Err(anyhow!("{name}: the channel's segment was truncated"));
                }
                Err(e) => {
                    // A corrupt message (skipped by mapshare): said, and on.
                    eprintln!("mapshare-bridge: {name}: receiving: {e}");
                }
            }
        }
    }
}

/// The `in` side: Zenoh to the local channel (this bridge one sender).
pub(crate) async fn in_side(
    session: Session,
    origin: u64,
    spec: BytesSpec,
    first: Sender,
    grace: Duration,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let name = counts.name.clone();
    let key = channel_key(&name);
    let zsub = session
        .declare_subscriber(key.clone())
        .allowed_origin(Locality::Remote)
        .with(FifoChannel::new(FIFO))
        .await
        .map_err(|e| anyhow!("declaring a subscriber on {key}: {e}"))?;
    // Who we are to the `out` sides (their window counts us), and where we
    // acknowledge what we took.
    let _token = session
        .liveliness()
        .declare_token(channel_reader_key(&name, origin))
        .await
        .map_err(|e| anyhow!("liveliness token for {key}: {e}"))?;
    let ack_key = ack_key(&name, "channel", origin);
    let acks = session
        .declare_publisher(ack_key.clone())
        .congestion_control(CongestionControl::Block)
        .allowed_destination(Locality::Remote)
        .await
        .map_err(|e| anyhow!("declaring a publisher on {ack_key}: {e}"))?;
    let live_key = format!("mapshare/{name}/channel/live/*");
    let live = session
        .liveliness()
        .declare_subscriber(&live_key)
        .history(true)
        .await
        .map_err(|e| anyhow!("liveliness subscriber on {live_key}: {e}"))?;

    // A lane per sending bridge (several hosts may send into one channel),
    // each dropped on its own end, or when its bridge has been unreachable
    // for the grace; the lane taken at start goes to the first of them.
    let mut lanes: HashMap<u64, Lane> = HashMap::new();
    let mut spare = Some(first);
    let mut seqs = Sequencer::default();
    let mut clock = AckClock::default();
    // Per sending origin, the last sequence number taken; whether some are
    // not acknowledged yet (acknowledged when the stream pauses).
    let mut taken: HashMap<u64, u64> = HashMap::new();
    let mut unacked = false;
    let ack = |o: u64, seq: u64| {
        use zenoh::Wait;
        let b = ack_payload(o, seq);
        if let Err(e) = tokio::task::block_in_place(|| acks.put(b.to_vec()).wait()) {
            eprintln!("mapshare-bridge: {name}: acknowledging: {e}");
        }
    };
    loop {
        let next_drop = lanes.values().filter_map(|l| l.drop_at).min();
        let parked = lanes.values().any(|l| !l.parked.is_empty());
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        // Biased: the samples a bridge sent before its token went are all
        // in the FIFO before the token's removal (one link, in order), and
        // are delivered first.
        let sample = tokio::select! {
            biased;
            () = stopped(&mut stop) => return Ok(()),
            s = zsub.recv_async() => match s {
                Ok(s) => s,
                Err(_) => return Ok(()), // the session closed
            },
            s = live.recv_async() => {
                let Ok(s) = s else { return Ok(()) }; // the session closed
                let Some(o) = origin_at_end(s.key_expr().as_str()) else { continue };
                let Some(lane) = lanes.get_mut(&o) else { continue };
                if s.kind() == SampleKind::Delete {
                    eprintln!(
                        "mapshare-bridge: {name}: the sending bridge {o:016x} is unreachable; \
                         the receiver here sees it gone in {grace:?} unless it is back"
                    );
                    lane.drop_at = Some(tokio::time::Instant::now() + grace);
                } else if lane.drop_at.take().is_some() {
                    eprintln!("mapshare-bridge: {name}: the sending bridge {o:016x} is back");
                }
                continue;
            }
            () = tokio::time::sleep_until(next_drop.unwrap_or(far)), if next_drop.is_some() => {
                let now = tokio::time::Instant::now();
                lanes.retain(|o, l| {
                    let keep = l.drop_at.is_none_or(|t| t > now);
                    if !keep {
                        eprintln!(
                            "mapshare-bridge: {name}: the sending bridge {o:016x} is gone; \
                             the receiver here sees its lane gone"
                        );
                    }
                    keep
                });
                continue;
            }
            () = tokio::time::sleep(RETRY), if parked => {
                // Lanes may have come free: deliver what waits, in order.
                for (o, lane) in &mut lanes {
                    while let Some((tag, payload)) = lane.parked.front() {
                        if !take_lane(&name, spec, &mut lane.tx, &mut lane.said_busy) {
                            break;
                        }
                        let (tag, payload) = (*tag, payload.clone());
                        deliver(&name, &payload, &mut lane.tx, &mut stop, &counts).await;
                        lane.parked.pop_front();
                        taken.insert(*o, tag.seq);
                        unacked = true;
                        if clock.take(*o, tag.seq, payload.len(), false) {
                            ack(*o, tag.seq);
                        }
                    }
                }
                lanes.retain(|_, l| !(l.ended && l.parked.is_empty()));
                continue;
            }
            () = tokio::time::sleep(RETRY), if unacked && !parked => {
                for (o, seq) in clock.flush(&taken) {
                    ack(o, seq);
                }
                unacked = false;
                continue;
            }
        };
        let Some(tag) = tag_of(&name, &sample) else {
            continue;
        };
        if tag.origin == origin {
            continue;
        }
        let verdict = seqs.accept(&name, &tag);
        if verdict == Verdict::End {
            // Drop its lane (once what waits for a lane is delivered): the
            // receiver sees its senders gone once it has read everything,
            // unless other senders remain.
            match lanes.get_mut(&tag.origin) {
                Some(l) if !l.parked.is_empty() => l.ended = true,
                _ => {
                    // A sender waiting for a lane gets this one, with no
                    // moment where the receiver could see no sender.
                    let tx = lanes.remove(&tag.origin).and_then(|l| l.tx);
                    if let Some(w) = lanes
                        .values_mut()
                        .find(|l| l.tx.is_none() && !l.parked.is_empty())
                    {
                        w.tx = tx;
                    }
                }
            }
            if lanes.is_empty() {
                spare = None;
            }
        }
        if verdict == Verdict::Deliver {
            let lane = lanes.entry(tag.origin).or_insert_with(|| Lane {
                tx: spare.take(),
                drop_at: None,
                parked: VecDeque::new(),
                ended: false,
                said_busy: false,
            });
            if lane.drop_at.take().is_some() {
                eprintln!(
                    "mapshare-bridge: {name}: the sending bridge {:016x} is back",
                    tag.origin
                );
            }
            let payload = sample.payload().to_bytes().into_owned();
            // No lane free here: this sender's messages wait (unacknowledged,
            // so its window holds it back) while the others go on.
            if !lane.parked.is_empty() || !take_lane(&name, spec, &mut lane.tx, &mut lane.said_busy)
            {
                lane.parked.push_back((tag, payload));
                continue;
            }
            deliver(&name, &payload, &mut lane.tx, &mut stop, &counts).await;
        }
        // What we took (delivered, dropped, or seen twice) frees the
        // sender's window.
        taken.insert(tag.origin, tag.seq);
        unacked = true;
        if clock.take(
            tag.origin,
            tag.seq,
            sample.payload().len(),
            verdict == Verdict::End,
        ) {
            ack(tag.origin, tag.seq);
        }
        if *stop.borrow() {
            return Ok(());
        }
    }
}

/// The `in` side's lane for one sending bridge.
#[derive(Debug)]
struct Lane {
    /// Our sender handle (`None` until a lane is free here).
    tx: Option<Sender>,
    /// Its bridge's token went: the lane is dropped then, unless it is back.
    drop_at: Option<tokio::time::Instant>,
    /// Messages waiting for a lane to come free here, oldest first.
    parked: VecDeque<(Tag, Vec<u8>)>,
    /// Its end came while messages wait: dropped once they are delivered.
    ended: bool,
    /// "No lane free" was said.
    said_busy: bool,
}

/// Makes sure `tx` holds a sender lane, taking one if it is free; says
/// once when none is.
fn take_lane(name: &str, spec: BytesSpec, tx: &mut Option<Sender>, said: &mut bool) -> bool {
    if tx.is_some() {
        return true;
    }
    match open_in(name, spec) {
        Ok(s) => {
            *tx = Some(s);
            *said = false;
            true
        }
        Err(e) => {
            if !*said {
                eprintln!(
                    "mapshare-bridge: {name}: cannot take a sender lane here ({e}); \
                     this sender's stream waits until one is free (give the channel more \
                     senders)"
                );
                *said = true;
            }
            false
        }
    }
}

/// Sends one remote message into the local channel through the lane in
/// `tx` (taken: see [`take_lane`]), waiting (and holding the stream) while
/// the receiver here is away; returns early only on a stop.
async fn deliver(
    name: &str,
    payload: &[u8],
    tx: &mut Option<Sender>,
    stop: &mut watch::Receiver<bool>,
    counts: &Counts,
) {
    let Some(s) = tx.as_mut() else { return };
    loop {
        tokio::select! {
            () = stopped(stop) => return,
            r = s.send_async(payload) => match r {
                Ok(()) => {
                    counts.received.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(SendError::Disconnected(_)) => {
                    // The receiver here came and went: hold the stream
                    // (and, through Zenoh, the senders there) until the
                    // next one attaches.
                    tokio::select! {
                        () = stopped(stop) => return,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
                Err(e) => {
                    eprintln!("mapshare-bridge: {name}: sending locally: {e}; dropped");
                    break;
                }
            }
        }
    }
}
