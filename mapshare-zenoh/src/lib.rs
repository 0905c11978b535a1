//! Bridges mapshare pub/sub rings, channels and request/response services
//! between hosts over [Zenoh](https://zenoh.io): a segment named NAME on one
//! host appears under the same name on the other, with the same API on both
//! sides (a [`mapshare::Publisher`] here, [`mapshare::Subscriber`]s there; a
//! channel's `Sender`s here, its `Receiver` there; a `Server` here,
//! `Client`s there). No home-made network protocol: Zenoh carries the
//! samples and the queries, over TCP between peers.
//!
//! A ring is bridged both ways (its one publisher may be on either host);
//! channels (`channel` module docs: `--channel-out` / `--channel-in`) and
//! services (`service` module docs: `--serve` / `--call`) one way. This
//! crate's README.md gives the rules and the measured figures.
//!
//! # Keys
//! For a name NAME of kind KIND (`pubsub`, `channel`, `service`):
//!
//! | key | what |
//! | --- | --- |
//! | `mapshare/NAME/pubsub` | a ring's samples: each bridge publishes what its local publisher publishes and subscribes to the others' |
//! | `mapshare/NAME/channel` | a channel's samples, from the `--channel-out` bridge to the `--channel-in` one |
//! | `mapshare/NAME/service` | a service's requests as queries, answered by the `--serve` bridge |
//! | `mapshare/NAME/KIND/{live,reader}/ORIGIN` | liveliness tokens: every ring bridge, channel `out` bridges (`live`), channel `in` bridges (`reader`), `--serve` bridges (`live`) |
//! | `mapshare/NAME/KIND/ack/ORIGIN` | flow control: what a receiving bridge has taken of each sender's stream (see [`FIFO_SAMPLES`]) |
//! | `mapshare/NAME/meta` | a queryable answering this bridge's [`Meta`] as JSON: kind, role, layout fingerprint, capacity, largest message, policy, origin id |
//!
//! Every ring or channel sample carries a [`Tag`] as its attachment: the
//! sending bridge's origin id (random, per bridge process), its sequence
//! number (1, 2, ... per origin) and whether it marks the end of the local
//! publisher (or of every local sender).
//!
//! # Who publishes where (rings)
//! A ring has one publisher, across hosts too. Each bridge joins its local
//! ring as a subscriber and forwards what a local publisher publishes (the
//! *sending* side). When samples come from another host and no local
//! publisher is attached, the bridge claims the ring's publisher role and
//! publishes them (the *receiving* side); messages it reads back from its
//! own subscriber meanwhile are its own, and are not forwarded (with the
//! origin id this is what keeps two bridges of one name from looping). When
//! the remote publisher leaves (an end tag), or the sending bridge's token
//! has been gone for the grace ([`DEFAULT_GRACE`]), the bridge gives the
//! role up: local subscribers see
//! [`Disconnected`](mapshare::RecvError::Disconnected) once they have read
//! everything, as with a local publisher.
//!
//! Both hosts with a live publisher on the same ring is a conflict: the
//! receiving bridge says so and drops the remote samples.
//!
//! # Delivery
//! While the link is up a lossless ring or a channel stays lossless end to
//! end: Zenoh's reliable channel with congestion control `Block`, and a
//! window per receiving bridge. Zenoh has no back-pressure from a
//! subscriber to its publisher, so a sender keeps at most a window of
//! messages unacknowledged by each live receiving bridge; a slow or absent
//! receiver on the far host thus holds the sending bridge back, which stops
//! reading its local ring or channel, which holds the local publisher or
//! senders back, and Zenoh's receive task never waits (had it waited,
//! Zenoh would close the link after its lease). The sending bridge also
//! reads nothing while no remote bridge listens, so a lossless local
//! publisher is held back while the link is down.
//!
//! What a link drop or a killed bridge can lose is what was in flight:
//! read from the ring or channel, handed to Zenoh, not yet delivered on the
//! other host. The receiving side counts gaps by sequence number and drops
//! duplicates; a restarted sending bridge is a new origin (its sequence
//! restarts), so nothing is replayed.
//!
//! # Waiting
//! Idle, the bridge sleeps: its ring threads block on the local ring's
//! doorbell (wait strategy `Block`) and on Zenoh's FIFO, cut in slices of
//! [`SLICE`] to notice a stop (as the `mapshare` CLI does); its channel and
//! service tasks wait on mapshare's async waits and Zenoh's futures. One
//! state polls: a channel whose every sender has gone is looked at every
//! 50 ms for a new one (a receiver has no wait for that).

#![forbid(unsafe_code)]

mod channel;
mod service;
mod window;

pub use channel::{channel_key, channel_live_key, channel_reader_key, BytesSpec};
pub use service::{service_key, service_live_key};

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mapshare::{
    Fingerprint, Policy, Publisher, RecvTimeoutError, SegmentError, SendTimeoutError, Subscriber,
    WaitStrategy,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use zenoh::handlers::FifoChannel;
use zenoh::qos::CongestionControl;
use zenoh::query::{ConsolidationMode, QueryTarget};
use zenoh::sample::Locality;
use zenoh::{Session, Wait};

/// How long one slice of a ring wait lasts: the delay between a stop and
/// the end of the wait.
pub const SLICE: Duration = Duration::from_millis(200);

/// Samples the receiving side buffers between Zenoh and the local ring or
/// channel: room for the senders' windows of unacknowledged messages, so
/// Zenoh's receive task never waits on it (see the `window` module).
pub const FIFO_SAMPLES: usize = window::FIFO;

/// How often a receiving bridge tries to take a ring's publisher role
/// while a local publisher holds it (samples meanwhile are dropped).
const CLAIM_RETRY: Duration = Duration::from_millis(100);

/// How long a sending bridge waits for the remote [`Meta`]s per query.
const META_TIMEOUT: Duration = Duration::from_secs(1);

/// The key of the samples of ring `name`.
pub fn pubsub_key(name: &str) -> String {
    format!("mapshare/{name}/pubsub")
}

/// The liveliness token of bridge `origin` for ring `name`.
pub fn pubsub_live_key(name: &str, origin: u64) -> String {
    format!("mapshare/{name}/pubsub/live/{origin:016x}")
}

/// The key of the metadata queryable of ring `name`.
pub fn meta_key(name: &str) -> String {
    format!("mapshare/{name}/meta")
}

/// The geometry a bridge gives a ring it creates (one that no local
/// process has created yet). The defaults are the `mapshare` CLI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSpec {
    /// Messages the ring holds.
    pub capacity: usize,
    /// Largest message in bytes.
    pub max_message: usize,
    /// What a slow subscriber does to the publisher.
    pub policy: Policy,
}

impl Default for RingSpec {
    fn default() -> Self {
        RingSpec {
            capacity: 256,
            max_message: 4096,
            policy: Policy::Lossless,
        }
    }
}

/// What a bridge says of its local segment on `mapshare/NAME/meta`: the
/// sending side of a ring or channel, and the calling side of a service,
/// compare it with their own and refuse a mismatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The answering bridge's origin id (hex), as in its [`Tag`]s.
    pub origin: String,
    /// The segment kind: `pubsub`, `channel` or `service`.
    pub kind: String,
    /// What the bridge is for this name: empty for a ring (both ways);
    /// `out` or `in` for a channel (its senders or its receiver on this
    /// host); `serve` or `call` for a service (its server or its clients
    /// on this host).
    #[serde(default)]
    pub role: String,
    /// The layout fingerprint, as mapshare prints it.
    pub layout: String,
    /// Messages the ring holds (a channel: per sender; a service: per
    /// client).
    pub capacity: usize,
    /// Largest message in bytes.
    pub max_message: usize,
    /// `lossless` or `overwrite-oldest`; empty for channels and services.
    #[serde(default)]
    pub policy: String,
}

impl Meta {
    fn of(origin: u64, sub: &Subscriber) -> Meta {
        Meta {
            origin: format!("{origin:016x}"),
            kind: "pubsub".into(),
            role: String::new(),
            layout: Fingerprint::new("pubsub", sub.max_message() as u64, 8).to_string(),
            capacity: sub.capacity(),
            max_message: sub.max_message(),
            policy: policy_name(sub.policy()).into(),
        }
    }

    /// A channel's or a service's meta: byte messages of `max_message`.
    fn bytes(origin: u64, kind: &str, role: &str, capacity: usize, max_message: usize) -> Meta {
        Meta {
            origin: format!("{origin:016x}"),
            kind: kind.into(),
            role: role.into(),
            layout: Fingerprint::new("bytes", max_message as u64, 1).to_string(),
            capacity,
            max_message,
            policy: String::new(),
        }
    }

    /// Whether a segment described by `other` can carry this one's
    /// messages unchanged. Rings: everything but the origin equal (a
    /// subscriber's history and pacing depend on the geometry). Channels
    /// and services: the same kind and layout (so the same largest
    /// message); capacities are each host's own flow control.
    pub fn same_layout(&self, other: &Meta) -> bool {
        if self.kind != "pubsub" {
            return (&self.kind, &self.layout) == (&other.kind, &other.layout);
        }
        (
            &self.kind,
            &self.layout,
            self.capacity,
            self.max_message,
            &self.policy,
        ) == (
            &other.kind,
            &other.layout,
            other.capacity,
            other.max_message,
            &other.policy,
        )
    }
}

impl fmt::Display for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind.as_str() {
            "pubsub" => write!(
                f,
                "{} ring, layout {}, capacity {}, max message {}, {}",
                self.kind, self.layout, self.capacity, self.max_message, self.policy
            ),
            _ => write!(
                f,
                "{} ({}), layout {}, capacity {}, max message {}",
                self.kind, self.role, self.layout, self.capacity, self.max_message
            ),
        }
    }
}

/// What the answers to a meta query say of the remote side a bridge
/// would send to: `Ok` when they are what `ours` needs, else the sentence
/// to say (and to wait on). `peer_role`: the role the remote side must
/// have; `one`: exactly one such side may exist (a channel has one
/// receiver). Answers of other roles are ignored.
fn judge(
    answers: &[Meta],
    ours: &Meta,
    peer_role: &str,
    one: bool,
    key: &str,
) -> Result<(), String> {
    let peers: Vec<&Meta> = answers.iter().filter(|m| m.role == peer_role).collect();
    if peers.is_empty() {
        return Err(format!("no remote bridge answers on {key} yet; waiting"));
    }
    let wrong: Vec<String> = peers
        .iter()
        .filter(|m| !m.same_layout(ours))
        .map(|m| format!("{} on bridge {}", m, m.origin))
        .collect();
    if !wrong.is_empty() {
        return Err(format!(
            "refusing to send: the remote side is {}, ours is {} (bridge {}); waiting",
            wrong.join("; "),
            ours,
            ours.origin
        ));
    }
    if one && peers.len() > 1 {
        let who: Vec<&str> = peers.iter().map(|m| m.origin.as_str()).collect();
        return Err(format!(
            "refusing to send: {} bridges on other hosts take this {} in ({}), and it has one \
             receiver; waiting until one is left",
            peers.len(),
            ours.kind,
            who.join(", ")
        ));
    }
    Ok(())
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Lossless => "lossless",
        _ => "overwrite-oldest",
    }
}

/// The attachment of every sample on `mapshare/NAME/pubsub` and
/// `mapshare/NAME/channel`: 17 bytes, origin (u64 LE), sequence (u64 LE,
/// never `u64::MAX`), flags (bit 0: the end of the local publisher, or of
/// every local sender; such a sample has an empty payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// The sending bridge's origin id.
    pub origin: u64,
    /// 1, 2, ... per origin; an end tag carries the last data sequence.
    pub seq: u64,
    /// The local publisher left: no data.
    pub end: bool,
}

impl Tag {
    /// Encoded length.
    pub const LEN: usize = 17;

    /// The wire form.
    pub fn encode(&self) -> [u8; Tag::LEN] {
        let mut b = [0u8; Tag::LEN];
        b[..8].copy_from_slice(&self.origin.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16] = u8::from(self.end);
        b
    }

    /// Parses the wire form; `None` for anything else.
    pub fn decode(b: &[u8]) -> Option<Tag> {
        if b.len() != Tag::LEN || b[16] > 1 {
            return None;
        }
        let seq = u64::from_le_bytes(b[8..16].try_into().ok()?);
        // No stream reaches u64::MAX; a peer that says so is not believed
        // (the receiving side counts one past it).
        if seq == u64::MAX {
            return None;
        }
        Some(Tag {
            origin: u64::from_le_bytes(b[..8].try_into().ok()?),
            seq,
            end: b[16] == 1,
        })
    }
}

/// What to bridge and how to reach the other hosts.
#[derive(Debug, Clone, Default)]
pub struct BridgeOptions {
    /// Pub/sub ring names (both ways).
    pub names: Vec<String>,
    /// Channels whose senders are on this host: their messages go to the
    /// receiver on another host.
    pub channels_out: Vec<String>,
    /// Channels whose receiver is on this host: it receives what senders
    /// on another host send.
    pub channels_in: Vec<String>,
    /// Services whose server is on this host: it answers clients on other
    /// hosts.
    pub serve: Vec<String>,
    /// Services whose clients are on this host: their requests go to the
    /// server on another host.
    pub call: Vec<String>,
    /// Zenoh endpoints to listen on (`tcp/127.0.0.1:7447`).
    pub listen: Vec<String>,
    /// Zenoh endpoints to connect to; retried until they answer, and again
    /// after the link drops.
    pub connect: Vec<String>,
    /// The geometry of rings the bridge creates.
    pub ring: RingSpec,
    /// The geometry of channels the bridge creates.
    pub channel: BytesSpec,
    /// The geometry of services the bridge creates.
    pub service: BytesSpec,
    /// How long a `call` bridge waits for the answer to one request
    /// (`None`: a day; a lost link or a dead serving bridge ends the wait
    /// earlier, with the server seen gone).
    pub call_timeout: Option<Duration>,
    /// How long a remote end may be unreachable before the local ends see
    /// it gone (`None`: [`DEFAULT_GRACE`], whose docs say what it covers).
    pub grace: Option<Duration>,
}

/// How long a bridged remote end may be unreachable (its bridge's Zenoh
/// liveliness token gone: killed, or the link lost) before the local ends
/// see it gone. A link that recovers sooner goes unseen by a ring's
/// subscribers and a channel's receiver; Zenoh retries a lost connection
/// after 1 s, then backing off to 4 s, so a longer cut may outlast it. A
/// service's requests in flight are not covered: Zenoh ends a query whose
/// link goes, and the clients waiting see the server gone at once. A host
/// that vanishes without closing its connections is noticed only after
/// Zenoh's lease (10 s), plus the grace.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

impl BridgeOptions {
    /// Every name bridged, whatever its kind.
    pub fn all_names(&self) -> impl Iterator<Item = &String> {
        self.names
            .iter()
            .chain(&self.channels_out)
            .chain(&self.channels_in)
            .chain(&self.serve)
            .chain(&self.call)
    }
}

/// What a bridged channel or service has carried, said when the bridge
/// stops (`NAME: sent S, received R`).
#[derive(Debug)]
struct Counts {
    name: String,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counts {
    fn new(name: &str) -> Arc<Counts> {
        Arc::new(Counts {
            name: name.to_string(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        })
    }
}

/// Resolves once the bridge stops (or its stop sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The Zenoh configuration of a bridge: a peer, no multicast scouting,
/// only the given endpoints.
///
/// # Errors
/// An endpoint Zenoh cannot parse.
pub fn zenoh_config(listen: &[String], connect: &[String]) -> Result<zenoh::Config> {
    let mut c = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, k: &str, v: String| {
        c.insert_json5(k, &v)
            .map_err(|e| anyhow::anyhow!("zenoh config {k} = {v}: {e}"))
    };
    set(&mut c, "mode", "\"peer\"".into())?;
    set(&mut c, "scouting/multicast/enabled", "false".into())?;
    set(&mut c, "listen/endpoints", serde_json::to_string(listen)?)?;
    set(&mut c, "connect/endpoints", serde_json::to_string(connect)?)?;
    Ok(c)
}

/// A random origin id for this bridge process.
fn new_origin() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    h.finish() | 1 // never 0
}

/// A running bridge: one sending and one receiving thread per ring.
#[derive(Debug)]
pub struct Bridge {
    session: Session,
    origin: u64,
    stop: Arc<AtomicBool>,
    rings: Vec<Arc<RingState>>,
    threads: Vec<JoinHandle<()>>,
    /// Keeps the meta queryables declared.
    _meta: Vec<zenoh::query::Queryable<()>>,
    /// Keeps the rings' liveliness tokens declared.
    _tokens: Vec<zenoh::liveliness::LivelinessToken>,
    /// The channels' and services' tasks run here.
    runtime: tokio::runtime::Runtime,
    tasks: Vec<(String, tokio::task::JoinHandle<()>)>,
    links: Vec<Arc<Counts>>,
    stop_tasks: watch::Sender<bool>,
    /// A task that ended before the bridge stopped says why here.
    failed: std::sync::mpsc::Sender<String>,
    failures: Option<std::sync::mpsc::Receiver<String>>,
}

/// What a ring's two threads share.
#[derive(Debug)]
struct RingState {
    name: String,
    origin: u64,
    meta: Meta,
    stop: Arc<AtomicBool>,
    /// This bridge holds the local publisher role: what its subscriber
    /// reads is its own and is not forwarded.
    importing: AtomicBool,
    /// Messages sent to other hosts, and received from them and published.
    sent: AtomicU64,
    received: AtomicU64,
    /// A remote bridge listens on the key (Zenoh's matching status).
    /// And how often it changed: the remote bridges are checked again
    /// after a change.
    matching: Mutex<(bool, u64)>,
    wake: Condvar,
    /// The remote bridges of this ring whose liveliness token has gone,
    /// and since when (the token back: removed).
    vanished: Mutex<HashMap<u64, Instant>>,
    /// How long a vanished bridge we publish for is waited for.
    grace: Duration,
    /// What the other bridges have acknowledged of what we sent.
    window: window::Window,
}

impl RingState {
    fn set_matching(&self, m: bool) {
        let mut g = self.matching.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = m;
        g.1 += 1;
        drop(g);
        self.wake.notify_all();
    }

    /// Marks the remote bridges to be checked again before the next send.
    fn recheck(&self) {
        self.matching.lock().unwrap_or_else(|e| e.into_inner()).1 += 1;
    }

    /// Wakes the sending thread after `importing` or `stop` changed (under
    /// the lock, so that the wake-up cannot fall between its look and its
    /// sleep).
    fn poke(&self) {
        let g = self.matching.lock().unwrap_or_else(|e| e.into_inner());
        self.wake.notify_all();
        drop(g);
    }

    fn epoch(&self) -> u64 {
        self.matching.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Sleeps until a remote bridge listens, the bridge imports, or stops.
    fn wait_listener(&self) {
        let mut m = self.matching.lock().unwrap_or_else(|e| e.into_inner());
        while !m.0 && !self.importing.load(Ordering::Acquire) && !self.stop.load(Ordering::Acquire)
        {
            m = self.wake.wait(m).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Bridge {
    /// Opens the Zenoh session, joins (or creates) every ring and starts
    /// bridging.
    ///
    /// # Errors
    /// A ring that cannot be opened or created, or a Zenoh session that
    /// cannot be opened (an endpoint it cannot listen on).
    pub fn start(opts: &BridgeOptions) -> Result<Bridge> {
        if opts.all_names().next().is_none() {
            bail!("nothing to bridge: give a ring, a channel or a service");
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = opts.all_names().find(|n| !seen.insert(n.as_str())) {
            bail!("{twice} is named twice: a name is bridged once, as one kind and one direction");
        }
        let config = zenoh_config(&opts.listen, &opts.connect)?;
        let session = zenoh::open(config)
            .wait()
            .map_err(|e| anyhow::anyhow!("opening the zenoh session: {e}"))?;
        let origin = new_origin();
        let stop = Arc::new(AtomicBool::new(false));
        let (failed, failures) = std::sync::mpsc::channel();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mapshare-bridge")
            .enable_all() // time, and IO for mapshare's io_uring waits
            .build()
            .context("starting the bridge's runtime")?;
        let mut bridge = Bridge {
            session,
            origin,
            stop,
            rings: Vec::new(),
            threads: Vec::new(),
            _meta: Vec::new(),
            _tokens: Vec::new(),
            runtime,
            tasks: Vec::new(),
            links: Vec::new(),
            stop_tasks: watch::Sender::new(false),
            failed,
            failures: Some(failures),
        };
        let grace = opts.grace.unwrap_or(DEFAULT_GRACE);
        for name in &opts.names {
            bridge.add_ring(name, opts.ring, grace)?;
        }
        let (session, stop) = (bridge.session.clone(), bridge.stop_tasks.subscribe());
        for name in &opts.channels_out {
            let rx = channel::open_out(name, opts.channel)?;
            bridge.declare_meta(name, &channel::channel_meta(origin, "out", &rx.stats()))?;
            let c = Counts::new(name);
            let t = channel::out_side(session.clone(), origin, rx, c.clone(), stop.clone());
            bridge.spawn(c, t);
        }
        for name in &opts.channels_in {
            let tx = channel::open_in(name, opts.channel)
                .map_err(|e| anyhow::anyhow!("{name}: joining the channel as a sender: {e}"))?;
            bridge.declare_meta(name, &channel::channel_meta(origin, "in", &tx.stats()))?;
            let c = Counts::new(name);
            let t = channel::in_side(
                session.clone(),
                origin,
                opts.channel,
                tx,
                grace,
                c.clone(),
                stop.clone(),
            );
            bridge.spawn(c, t);
        }
        for name in &opts.serve {
            let client = service::open_serve(name, opts.service)?;
            bridge.declare_meta(
                name,
                &service::service_meta(origin, "serve", &client.stats()),
            )?;
            let c = Counts::new(name);
            let t = service::serve_side(session.clone(), origin, client, c.clone(), stop.clone());
            bridge.spawn(c, t);
        }
        for name in &opts.call {
            // The service's geometry, read without taking a role; a service
            // not made yet is created through a client handle (which, unlike
            // a server, leaves no trace when dropped).
            let stats = match mapshare::service_stats(&mapshare::Location::shm(name)?) {
                Ok(s) => s,
                Err(SegmentError::NotFound(_)) => service::open_serve(name, opts.service)?.stats(),
                Err(e) => bail!("{name}: reading the service: {e}"),
            };
            let meta = service::service_meta(origin, "call", &stats);
            bridge.declare_meta(name, &meta)?;
            let c = Counts::new(name);
            let timeout = opts.call_timeout.unwrap_or(Duration::from_secs(86_400));
            let t = service::call_side(
                session.clone(),
                opts.service,
                meta,
                (timeout, grace),
                c.clone(),
                stop.clone(),
            );
            bridge.spawn(c, t);
        }
        Ok(bridge)
    }

    /// This bridge's origin id.
    pub fn origin(&self) -> u64 {
        self.origin
    }

    fn spawn(
        &mut self,
        counts: Arc<Counts>,
        task: impl std::future::Future<Output = Result<()>> + Send + 'static,
    ) {
        let name = counts.name.clone();
        self.links.push(counts);
        let (failed, stop, n) = (
            self.failed.clone(),
            self.stop_tasks.subscribe(),
            name.clone(),
        );
        let inner = self.runtime.spawn(task);
        // A task that ends (an error, a panic) before the stop ends the
        // bridge: half a bridge running would hide the failure.
        let watch = self.runtime.spawn(async move {
            let why = match inner.await {
                Ok(Ok(())) if *stop.borrow() => return,
                Ok(Ok(())) => "stopped bridging (the session closed)".to_string(),
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) => format!("the bridging task failed: {e}"),
            };
            eprintln!("mapshare-bridge: {n}: {why}");
            let _ = failed.send(format!("{n}: {why}"));
        });
        self.tasks.push((name, watch));
    }

    /// The failures of the bridge's channel and service tasks, each said
    /// once, as it happens (the first call takes the receiver; a task that
    /// failed has already said so on stderr). Any of them means the bridge
    /// no longer bridges that name: stop it.
    pub fn failures(&mut self) -> Option<std::sync::mpsc::Receiver<String>> {
        self.failures.take()
    }

    /// Answers `mapshare/NAME/meta` with `meta`.
    fn declare_meta(&mut self, name: &str, meta: &Meta) -> Result<()> {
        let meta_json = serde_json::to_string(meta)?;
        let mkey = meta_key(name);
        let reply_key = mkey.clone();
        let queryable = self
            .session
            .declare_queryable(&mkey)
            .callback(move |q| {
                if let Err(e) = q.reply(&reply_key, meta_json.clone()).wait() {
                    eprintln!("mapshare-bridge: answering {reply_key}: {e}");
                }
            })
            .wait()
            .map_err(|e| anyhow::anyhow!("declaring {mkey}: {e}"))?;
        self._meta.push(queryable);
        Ok(())
    }

    fn add_ring(&mut self, name: &str, spec: RingSpec, grace: Duration) -> Result<()> {
        let sub = join(name, spec)?;
        let state = Arc::new(RingState {
            name: name.to_string(),
            origin: self.origin,
            meta: Meta::of(self.origin, &sub),
            stop: self.stop.clone(),
            importing: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            matching: Mutex::new((false, 0)),
            wake: Condvar::new(),
            vanished: Mutex::new(HashMap::new()),
            grace,
            window: window::Window::default(),
        });
        self.declare_meta(name, &state.meta)?;
        let st = state.clone();
        let prefix = pubsub_live_key(name, 0);
        let prefix = prefix[..prefix.len() - 16].to_string();
        self.session
            .liveliness()
            .declare_subscriber(format!("{prefix}*"))
            .callback(move |s| {
                let Some(o) = s
                    .key_expr()
                    .as_str()
                    .strip_prefix(&prefix)
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                else {
                    return;
                };
                let gone = s.kind() == zenoh::sample::SampleKind::Delete;
                let mut v = st.vanished.lock().unwrap_or_else(|e| e.into_inner());
                if gone {
                    v.insert(o, Instant::now());
                } else {
                    v.remove(&o);
                }
                drop(v);
                // Every other bridge of the ring takes our samples: our
                // window waits for the live ones.
                match (o == st.origin, gone) {
                    (true, _) => {}
                    (false, true) => st.window.leave(o),
                    (false, false) => {
                        st.window.join(o);
                        // A bridge joined: check the remote rings again
                        // before the next send (Zenoh's matching status
                        // changes only when the first comes or the last goes).
                        st.recheck();
                    }
                }
            })
            .history(true)
            .background()
            .wait()
            .map_err(|e| anyhow::anyhow!("liveliness subscriber of {name}: {e}"))?;

        let st = state.clone();
        self.session
            .declare_subscriber(format!("mapshare/{name}/pubsub/ack/*"))
            .allowed_origin(Locality::Remote)
            .callback(move |s| {
                let from = window::origin_at_end(s.key_expr().as_str());
                if let (Some(from), Some((to, seq))) =
                    (from, window::parse_ack(&s.payload().to_bytes()))
                {
                    if to == st.origin {
                        st.window.ack(from, seq);
                    }
                }
            })
            .background()
            .wait()
            .map_err(|e| anyhow::anyhow!("acknowledgements of {name}: {e}"))?;
        let ack_key = window::ack_key(name, "pubsub", self.origin);
        let acks = self
            .session
            .declare_publisher(ack_key.clone())
            .congestion_control(CongestionControl::Block)
            .allowed_destination(Locality::Remote)
            .wait()
            .map_err(|e| anyhow::anyhow!("declaring a publisher on {ack_key}: {e}"))?;

        let key = pubsub_key(name);
        let zpub = self
            .session
            .declare_publisher(key.clone())
            .congestion_control(CongestionControl::Block)
            .allowed_destination(Locality::Remote)
            .wait()
            .map_err(|e| anyhow::anyhow!("declaring a publisher on {key}: {e}"))?;
        let st = state.clone();
        zpub.matching_listener()
            .callback(move |m| st.set_matching(m.matching()))
            .background()
            .wait()
            .map_err(|e| anyhow::anyhow!("matching listener on {key}: {e}"))?;
        let zsub = self
            .session
            .declare_subscriber(key.clone())
            .allowed_origin(Locality::Remote)
            .with(FifoChannel::new(FIFO_SAMPLES))
            .wait()
            .map_err(|e| anyhow::anyhow!("declaring a subscriber on {key}: {e}"))?;
        // Who is alive: a receiving bridge gives the publisher role up when
        // the token of the bridge it publishes for goes for good, and a
        // sending one counts the live receivers in its window. Declared
        // after our subscriber, so that a sender that sees it is already
        // routed to us (else it could fill a window we never acknowledge).
        let token = self
            .session
            .liveliness()
            .declare_token(pubsub_live_key(name, self.origin))
            .wait()
            .map_err(|e| anyhow::anyhow!("liveliness token of {name}: {e}"))?;
        self._tokens.push(token);

        let st = state.clone();
        let session = self.session.clone();
        let t_out = std::thread::Builder::new()
            .name(format!("out-{name}"))
            .spawn(move || send_loop(&st, &session, sub, spec, &zpub))
            .context("spawning a thread")?;
        let st = state.clone();
        let t_in = std::thread::Builder::new()
            .name(format!("in-{name}"))
            .spawn(move || recv_loop(&st, zsub, &acks))
            .context("spawning a thread")?;
        self.threads.push(t_out);
        self.threads.push(t_in);
        self.rings.push(state);
        Ok(())
    }

    /// Stops every thread, leaves the rings and closes the session.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        for r in &self.rings {
            r.poke();
        }
        // The tasks first: a serving bridge answers its callers' queries
        // (with an error) while the session is still open.
        let _ = self.stop_tasks.send(true);
        for (name, t) in self.tasks.drain(..) {
            if let Err(e) = self.runtime.block_on(t) {
                eprintln!("mapshare-bridge: {name}: {e}");
            }
        }
        if let Err(e) = self.session.close().wait() {
            eprintln!("mapshare-bridge: closing the zenoh session: {e}");
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for r in &self.rings {
            eprintln!(
                "mapshare-bridge: {}: sent {}, received {}",
                r.name,
                r.sent.load(Ordering::Relaxed),
                r.received.load(Ordering::Relaxed)
            );
        }
        for c in &self.links {
            eprintln!(
                "mapshare-bridge: {}: sent {}, received {}",
                c.name,
                c.sent.load(Ordering::Relaxed),
                c.received.load(Ordering::Relaxed)
            );
        }
    }
}

/// Joins the local ring as a subscriber, creating it with `spec` if needed.
fn join(name: &str, spec: RingSpec) -> Result<Subscriber, SegmentError> {
    Subscriber::options(name)
        .capacity(spec.capacity)
        .max_message(spec.max_message)
        .policy(spec.policy)
        .wait_strategy(WaitStrategy::Block)
        .open_or_create()
}

/// The sending side: local ring to Zenoh.
fn send_loop(
    st: &RingState,
    session: &Session,
    mut sub: Subscriber,
    spec: RingSpec,
    zpub: &zenoh::pubsub::Publisher<'_>,
) {
    let mut seq = 0u64;
    // The matching epoch whose remote bridges have been checked.
    let mut verified = None;
    let mut buf = Vec::new();
    // Data sent since the local publisher was last seen to leave.
    let mut sent_since_end = false;
    while !st.stop.load(Ordering::Acquire) {
        let importing = st.importing.load(Ordering::Acquire);
        if !importing {
            st.wait_listener();
            // Read nothing more while a remote bridge has a full window.
            if !st.window.wait_room(SLICE) {
                continue;
            }
        }
        let got = sub.recv_into_deadline(&mut buf, Instant::now() + SLICE);
        match got {
            Ok(_) => {
                if st.importing.load(Ordering::Acquire) {
                    continue; // our own publish, of remote samples
                }
                let epoch = st.epoch();
                if verified != Some(epoch) {
                    if !verify(st, session) {
                        return; // stopped
                    }
                    verified = Some(epoch);
                }
                seq += 1;
                let tag = Tag {
                    origin: st.origin,
                    seq,
                    end: false,
                };
                let msg = std::mem::take(&mut buf);
                // Counted before the put: an acknowledgement may come back
                // before the put returns.
                st.window.sent(seq, msg.len());
                let put = zpub.put(msg).attachment(tag.encode().to_vec()).wait();
                match put {
                    Ok(()) => {
                        st.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => eprintln!("mapshare-bridge: {}: sending: {e}", st.name),
                }
                sent_since_end = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if sent_since_end && !st.importing.load(Ordering::Acquire) {
                    let tag = Tag {
                        origin: st.origin,
                        seq,
                        end: true,
                    };
                    if let Err(e) = zpub
                        .put(Vec::<u8>::new())
                        .attachment(tag.encode().to_vec())
                        .wait()
                    {
                        eprintln!("mapshare-bridge: {}: sending the end: {e}", st.name);
                    }
                }
                sent_since_end = false;
                // A subscriber that has seen its publisher go answers at
                // once from now on: join again, to sleep until the next.
                drop(sub);
                sub = loop {
                    match join(&st.name, spec) {
                        Ok(s) => break s,
                        Err(e) => {
                            eprintln!("mapshare-bridge: {}: joining again: {e}", st.name);
                            if st.stop.load(Ordering::Acquire) {
                                return;
                            }
                            std::thread::sleep(SLICE);
                        }
                    }
                };
            }
            Err(RecvTimeoutError::Lagged(n)) => {
                eprintln!("mapshare-bridge: {}: missed {n} local message(s)", st.name);
            }
            Err(e) => eprintln!("mapshare-bridge: {}: {e}", st.name),
        }
    }
}

/// What a receiving side knows of the sending bridges of one name: the
/// sequence number each is expected to send next. Says what it finds:
/// gaps (lost on the way), duplicates, and joining a stream midway.
#[derive(Debug, Default)]
struct Sequencer {
    next: HashMap<u64, u64>,
}

/// What to do with a tagged sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Deliver its payload.
    Deliver,
    /// The remote end left: give the local role up.
    End,
    /// Seen already: drop it.
    Duplicate,
}

impl Sequencer {
    fn accept(&mut self, name: &str, tag: &Tag) -> Verdict {
        let next = self.next.entry(tag.origin).or_insert_with(|| {
            if tag.seq > 1 {
                // We (re)started while it was sending: what it sent before
                // went to a previous bridge here, or was lost with it.
                eprintln!(
                    "mapshare-bridge: {name}: joined the stream of {:016x} at its message {}",
                    tag.origin, tag.seq
                );
            }
            // An end tag carries the last data sequence, already sent.
            tag.seq + u64::from(tag.end)
        });
        if tag.end {
            if tag.seq + 1 > *next {
                lost(name, tag.origin, tag.seq + 1 - *next);
                *next = tag.seq + 1;
            }
            return Verdict::End;
        }
        if tag.seq < *next {
            eprintln!(
                "mapshare-bridge: {name}: duplicate {} from {:016x}, dropped",
                tag.seq, tag.origin
            );
            return Verdict::Duplicate;
        }
        if tag.seq > *next {
            lost(name, tag.origin, tag.seq - *next);
        }
        *next = tag.seq + 1;
        Verdict::Deliver
    }
}

/// The tag of a sample from another bridge, or `None` (said) for a sample
/// without one.
fn tag_of(name: &str, sample: &zenoh::sample::Sample) -> Option<Tag> {
    let tag = sample.attachment().and_then(|a| Tag::decode(&a.to_bytes()));
    if tag.is_none() {
        eprintln!("mapshare-bridge: {name}: a sample without a mapshare tag, dropped");
    }
    tag
}

/// The receiving side: Zenoh to the local ring.
fn recv_loop(
    st: &RingState,
    zsub: zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<zenoh::sample::Sample>>,
    acks: &zenoh::pubsub::Publisher<'_>,
) {
    let mut publisher: Option<Publisher> = None;
    let mut seqs = Sequencer::default();
    let mut clock = window::AckClock::default();
    // Per sending origin, the last sequence number taken.
    let mut taken: HashMap<u64, u64> = HashMap::new();
    let mut conflict_told = false;
    // While a local publisher holds the ring, claims are tried this often
    // (each is an open of the segment), not per sample.
    let mut claim_at = Instant::now();
    // The remote bridge we publish for.
    let mut importing_from: Option<u64> = None;
    loop {
        // While we publish for a remote bridge, look every slice whether
        // its token has gone for longer than the grace: then it is dead (or
        // unreachable), and local subscribers must see their publisher go.
        // Each slice without a sample: what was taken since the last
        // acknowledgement is acknowledged (a stream that pauses must not
        // leave its sender's window short), and, while we publish for a
        // remote bridge, whether its token has gone for longer than the
        // grace: then it is dead (or unreachable), and local subscribers
        // must see their publisher go.
        let sample = match zsub.recv_timeout(SLICE) {
            Ok(Some(s)) => s,
            Ok(None) => {
                for (o, seq) in clock.flush(&taken) {
                    ack(st, acks, o, seq);
                }
                let gone = importing_from.is_some_and(|o| {
                    let v = st.vanished.lock().unwrap_or_else(|e| e.into_inner());
                    v.get(&o).is_some_and(|at| at.elapsed() >= st.grace)
                });
                if gone {
                    eprintln!(
                        "mapshare-bridge: {}: the sending bridge {:016x} is gone; \
                         subscribers here see their publisher gone",
                        st.name,
                        importing_from.unwrap_or(0)
                    );
                    importing_from = None;
                    if let Some(p) = publisher.take() {
                        release(st, p);
                    }
                }
                if st.stop.load(Ordering::Acquire) {
                    break;
                }
                continue;
            }
            Err(_) => break, // the session closed
        };
        if st.stop.load(Ordering::Acquire) {
            break;
        }
        let Some(tag) = tag_of(&st.name, &sample) else {
            continue;
        };
        if tag.origin == st.origin {
            continue; // ours, routed back
        }
        // Taken from the FIFO: what the sender may send next (whatever we
        // do with it: publish, drop as a duplicate or in a conflict).
        taken.insert(tag.origin, tag.seq);
        if clock.take(tag.origin, tag.seq, sample.payload().len(), tag.end) {
            ack(st, acks, tag.origin, tag.seq);
        }
        match seqs.accept(&st.name, &tag) {
            Verdict::Deliver => {}
            Verdict::Duplicate => continue,
            Verdict::End => {
                if let Some(p) = publisher.take() {
                    release(st, p);
                }
                importing_from = None;
                continue;
            }
        }
        importing_from = Some(tag.origin);
        if publisher.is_none() {
            if Instant::now() < claim_at {
                continue; // a local publisher held it a moment ago
            }
            match claim(st) {
                Ok(p) => {
                    conflict_told = false;
                    publisher = Some(p);
                }
                Err(e) => {
                    if !conflict_told {
                        eprintln!(
                            "mapshare-bridge: {}: cannot publish samples from {:016x} here \
                             ({e}); dropping them while a local publisher holds the ring",
                            st.name, tag.origin
                        );
                        conflict_told = true;
                    }
                    claim_at = Instant::now() + CLAIM_RETRY;
                    continue;
                }
            }
        }
        let p = publisher.as_mut().expect("claimed above");
        let payload = sample.payload().to_bytes();
        loop {
            match p.publish_deadline(&payload, Instant::now() + SLICE) {
                Ok(()) => {
                    st.received.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(SendTimeoutError::Timeout(_)) if !st.stop.load(Ordering::Acquire) => {}
                Err(SendTimeoutError::Timeout(_)) => return,
                Err(e) => {
                    eprintln!("mapshare-bridge: {}: publishing locally: {e}", st.name);
                    break;
                }
            }
        }
    }
}

/// Acknowledges `origin`'s stream up to `seq` (see `window`).
fn ack(st: &RingState, acks: &zenoh::pubsub::Publisher<'_>, origin: u64, seq: u64) {
    if let Err(e) = acks.put(window::ack_payload(origin, seq).to_vec()).wait() {
        eprintln!("mapshare-bridge: {}: acknowledging: {e}", st.name);
    }
}

fn lost(name: &str, origin: u64, n: u64) {
    eprintln!("mapshare-bridge: {name}: {n} message(s) from {origin:016x} lost on the way");
}

/// Asks the remote bridges of the ring for their [`Meta`] until they
/// answer and all match ours, or the bridge stops (`false`). A mismatch is
/// said once, naming both layouts, and asked again every second: the local
/// publisher is held back meanwhile (a lossless ring), nothing is sent.
///
/// The sending side checks, not the receiving one: a receiver waiting for
/// an answer while samples fill its FIFO would stall the link the answer
/// comes on.
fn verify(st: &RingState, session: &Session) -> bool {
    let key = meta_key(&st.name);
    let mut told = String::new();
    while !st.stop.load(Ordering::Acquire) {
        let answers = match meta_query(session, &key).wait() {
            Ok(r) => std::iter::from_fn(|| r.recv().ok())
                .filter_map(|reply| parse_meta(&reply))
                .collect::<Vec<_>>(),
            Err(e) => {
                eprintln!("mapshare-bridge: {}: querying {key}: {e}", st.name);
                std::thread::sleep(META_TIMEOUT);
                continue;
            }
        };
        match judge(&answers, &st.meta, "", false, &key) {
            Ok(()) => {
                if !told.is_empty() {
                    eprintln!("mapshare-bridge: {}: the remote rings match now", st.name);
                }
                return true;
            }
            Err(say) => {
                if say != told {
                    eprintln!("mapshare-bridge: {}: {say}", st.name);
                    told = say;
                }
            }
        }
        std::thread::sleep(META_TIMEOUT);
    }
    false
}

/// The query for every remote bridge's [`Meta`] of a name. Every bridge
/// answers on the same key: no consolidation, or only one answer would be
/// kept.
fn meta_query<'a>(
    session: &'a Session,
    key: &'a str,
) -> zenoh::session::SessionGetBuilder<'a, 'a, zenoh::handlers::DefaultHandler> {
    session
        .get(key)
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .allowed_destination(Locality::Remote)
        .timeout(META_TIMEOUT)
}

fn parse_meta(reply: &zenoh::query::Reply) -> Option<Meta> {
    let sample = reply.result().ok()?;
    serde_json::from_slice::<Meta>(&sample.payload().to_bytes()).ok()
}

/// The async form of the check before sending (channels and services):
/// asks every remote bridge of the name for its [`Meta`] and judges the
/// answers (see [`judge`]). `told`: what was last said, so a sentence is
/// said once, not every second. Returns whether the remote side is fit.
async fn check_remote(
    session: &Session,
    name: &str,
    ours: &Meta,
    peer_role: &str,
    one: bool,
    told: &mut String,
) -> bool {
    let key = meta_key(name);
    let answers = match meta_query(session, &key).await {
        Ok(r) => {
            let mut v = Vec::new();
            while let Ok(reply) = r.recv_async().await {
                v.extend(parse_meta(&reply));
            }
            v
        }
        Err(e) => {
            eprintln!("mapshare-bridge: {name}: querying {key}: {e}");
            return false;
        }
    };
    match judge(&answers, ours, peer_role, one, &key) {
        Ok(()) => {
            if !told.is_empty() {
                eprintln!("mapshare-bridge: {name}: the remote side is fit now");
            }
            told.clear();
            true
        }
        Err(say) => {
            if say != *told {
                eprintln!("mapshare-bridge: {name}: {say}");
                *told = say;
            }
            false
        }
    }
}

/// Waits until this process's subscriber of the ring has read everything
/// (at most a few seconds; only when the role changes).
fn drained(st: &RingState) {
    let Ok(at) = mapshare::Location::shm(&st.name) else {
        return;
    };
    let me = std::process::id();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !st.stop.load(Ordering::Acquire) {
        match mapshare::pubsub_stats(&at) {
            Ok(s) if s.subscribers.iter().any(|x| x.pid == me && x.behind > 0) => {}
            _ => return,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Takes the local publisher role for samples from another host.
fn claim(st: &RingState) -> Result<Publisher, SegmentError> {
    let p = Publisher::options(&st.name)
        .wait_strategy(WaitStrategy::Block)
        .open()?;
    // What a local publisher left before it went is forwarded first.
    drained(st);
    st.importing.store(true, Ordering::Release);
    st.poke();
    Ok(p)
}

/// Gives the role up: local subscribers see the publisher gone.
fn release(st: &RingState, p: Publisher) {
    drop(p);
    // Our own subscriber reads what we published before it forwards again.
    drained(st);
    st.importing.store(false, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_round_trips_and_rejects_garbage() {
        let t = Tag {
            origin: 0xdead_beef,
            seq: 42,
            end: true,
        };
        assert_eq!(Tag::decode(&t.encode()), Some(t));
        assert_eq!(Tag::decode(&[0; 16]), None);
        let mut max = t.encode();
        max[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            Tag::decode(&max),
            None,
            "a sequence number that would overflow"
        );
        let mut b = t.encode();
        b[16] = 7;
        assert_eq!(Tag::decode(&b), None);
    }

    #[test]
    fn meta_mismatch_ignores_origin_only() {
        let a = Meta {
            origin: "1".into(),
            kind: "pubsub".into(),
            role: String::new(),
            layout: "pubsub (size 4096, align 8)".into(),
            capacity: 256,
            max_message: 4096,
            policy: "lossless".into(),
        };
        let mut b = a.clone();
        b.origin = "2".into();
        assert!(a.same_layout(&b));
        b.capacity = 512;
        assert!(!a.same_layout(&b));
    }

    #[test]
    fn judge_wants_one_fitting_peer_of_the_other_role() {
        let ours = Meta::bytes(1, "channel", "out", 16, 4096);
        let fit = Meta::bytes(2, "channel", "in", 64, 4096); // capacity is each host's own
        let other_role = Meta::bytes(3, "channel", "out", 16, 4096);
        let k = "mapshare/x/meta";
        assert!(judge(&[], &ours, "in", true, k)
            .unwrap_err()
            .contains("no remote bridge"));
        assert!(judge(std::slice::from_ref(&other_role), &ours, "in", true, k).is_err());
        assert_eq!(
            judge(&[fit.clone(), other_role], &ours, "in", true, k),
            Ok(())
        );
        let big = Meta::bytes(4, "channel", "in", 16, 65536);
        let said = judge(&[big], &ours, "in", true, k).unwrap_err();
        assert!(
            said.contains("max message 65536") && said.contains("max message 4096"),
            "{said}"
        );
        let two = judge(
            &[fit.clone(), Meta::bytes(5, "channel", "in", 16, 4096)],
            &ours,
            "in",
            true,
            k,
        );
        assert!(two.unwrap_err().contains("one receiver"));
        // Services may have several serving bridges.
        let svc = Meta::bytes(1, "service", "call", 4, 65536);
        let s2 = Meta::bytes(2, "service", "serve", 4, 65536);
        let s3 = Meta::bytes(3, "service", "serve", 8, 65536);
        assert_eq!(judge(&[s2, s3], &svc, "serve", false, k), Ok(()));
        // A channel is not a service of the same size.
        assert!(judge(
            &[Meta::bytes(2, "service", "in", 16, 4096)],
            &ours,
            "in",
            true,
            k
        )
        .is_err());
    }

    #[test]
    fn sequencer_drops_duplicates_and_counts_gaps() {
        let mut s = Sequencer::default();
        let t = |seq, end| Tag {
            origin: 7,
            seq,
            end,
        };
        assert_eq!(s.accept("x", &t(1, false)), Verdict::Deliver);
        assert_eq!(s.accept("x", &t(1, false)), Verdict::Duplicate);
        assert_eq!(s.accept("x", &t(4, false)), Verdict::Deliver); // 2, 3 lost
        assert_eq!(s.next[&7], 5);
        assert_eq!(s.accept("x", &t(3, false)), Verdict::Duplicate);
        assert_eq!(s.accept("x", &t(6, true)), Verdict::End); // 5, 6 lost
        assert_eq!(s.next[&7], 7);
        // A stream joined midway starts where it is; an end first starts after it.
        assert_eq!(
            s.accept(
                "x",
                &Tag {
                    origin: 8,
                    seq: 50,
                    end: false
                }
            ),
            Verdict::Deliver
        );
        assert_eq!(
            s.accept(
                "x",
                &Tag {
                    origin: 9,
                    seq: 3,
                    end: true
                }
            ),
            Verdict::End
        );
        assert_eq!(s.next[&9], 4);
    }

    #[test]
    fn config_accepts_tcp_endpoints() {
        zenoh_config(
            &["tcp/127.0.0.1:7447".into()],
            &["tcp/127.0.0.1:7448".into()],
        )
        .unwrap();
    }
}
