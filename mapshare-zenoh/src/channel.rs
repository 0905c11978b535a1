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

use std::collections::{HashMap, HashSet};
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

/// Joins channel `name` as its receiver (creating it if needed): the
/// `out` side's local end. Done before the bridge says `ready`, so a
/// receiver already attached is an error at start.
pub(crate) fn open_out(name: &str, spec: BytesSpec) -> Result<Receiver> {
    let mut o = Receiver::options(name).wait_strategy(WaitStrategy::Block);
    if let Some(c) = spec.capacity {
        o = o.capacity(c);
    }
    if let Some(m) = spec.max_message {
        o = o.max_message(m);
    }
    if let Some(p) = spec.peers {
        o = o.senders(p);
    }
    o.open_or_create()
        .map_err(|e| anyhow!("{name}: joining the channel as its receiver: {e}"))
}

/// Takes a sender lane of channel `name` (creating it if needed): the `in`
/// side's local end. The bridge takes one at start and holds it until the
/// remote senders end, so a receiver here waits for them as for local
/// senders that have not come yet.
pub(crate) fn open_in(name: &str, spec: BytesSpec) -> Result<Sender, mapshare::SegmentError> {
    let mut o = Sender::options(name).wait_strategy(WaitStrategy::Block);
    if let Some(c) = spec.capacity {
        o = o.capacity(c);
    }
    if let Some(m) = spec.max_message {
        o = o.max_message(m);
    }
    if let Some(p) = spec.peers {
        o = o.senders(p);
    }
    o.open_or_create()
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
                    let len = buf.len();
                    match put_blocking(&zpub, std::mem::take(&mut buf), &tag) {
                        Ok(()) => {
                            counts.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => eprintln!("mapshare-bridge: {name}: sending: {e}"),
                    }
                    window.sent(seq, len);
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
    loop {
        let next_drop = lanes.values().filter_map(|l| l.drop_at).min();
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
        };
        let Some(tag) = tag_of(&name, &sample) else {
            continue;
        };
        if tag.origin == origin {
            continue;
        }
        let verdict = seqs.accept(&name, &tag);
        if verdict == Verdict::End {
            // Drop its lane: the receiver sees its senders gone once it has
            // read everything, unless other senders remain.
            lanes.remove(&tag.origin);
            if lanes.is_empty() {
                spare = None;
            }
        }
        if verdict == Verdict::Deliver {
            let lane = lanes.entry(tag.origin).or_insert_with(|| Lane {
                tx: spare.take(),
                drop_at: None,
            });
            if lane.drop_at.take().is_some() {
                eprintln!(
                    "mapshare-bridge: {name}: the sending bridge {:016x} is back",
                    tag.origin
                );
            }
            let payload = sample.payload().to_bytes();
            deliver(&name, &payload, spec, &mut lane.tx, &mut stop, &counts).await;
        }
        // What we took (delivered, dropped, or seen twice) frees the
        // sender's window.
        if clock.take(
            tag.origin,
            tag.seq,
            sample.payload().len(),
            verdict == Verdict::End,
        ) {
            use zenoh::Wait;
            let ack = ack_payload(tag.origin, tag.seq);
            if let Err(e) = tokio::task::block_in_place(|| acks.put(ack.to_vec()).wait()) {
                eprintln!("mapshare-bridge: {name}: acknowledging: {e}");
            }
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
}

/// Sends one remote message into the local channel, taking a lane if we
/// hold none, waiting (and holding the stream) while the receiver here is
/// away or no lane is free; returns early only on a stop.
async fn deliver(
    name: &str,
    payload: &[u8],
    spec: BytesSpec,
    tx: &mut Option<Sender>,
    stop: &mut watch::Receiver<bool>,
    counts: &Counts,
) {
    let mut said_busy = false;
    loop {
        if tx.is_none() {
            match open_in(name, spec) {
                Ok(s) => {
                    *tx = Some(s);
                }
                Err(e) => {
                    if !said_busy {
                        eprintln!(
                            "mapshare-bridge: {name}: cannot take a sender lane here ({e}); \
                                 holding the stream until one is free"
                        );
                        said_busy = true;
                    }
                    tokio::select! {
                        () = stopped(stop) => return,
                        () = tokio::time::sleep(RETRY) => continue,
                    }
                }
            }
        }
        let s = tx.as_mut().expect("opened above");
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
