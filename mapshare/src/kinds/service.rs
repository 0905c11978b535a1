//! Request/response: one [`Server`], up to [`MAX_CLIENTS`] [`Client`]s,
//! through one named segment.
//!
//! Each client owns a pair of lanes ([`crate::queue::spsc`]): requests from
//! the client to the server, and responses from the server back to that
//! client only. So a response is routed by construction (it goes into the
//! lane of the client that asked), clients never contend with each other,
//! and a client that never reads cannot fill anyone else's lane. The
//! server drains the request lanes round-robin (fair: a busy client cannot
//! starve the others).
//!
//! Payload layout:
//!
//! ```text
//!    0  ServiceCtl    geometry (copied out and validated on open), the server
//!                     word (epoch << 32 | token), who has ever attached, `conn`
//!  128  Doorbell      the server sleeps here when no request is waiting
//!  256  ClientBlock   x clients (640 bytes each):
//!                       +0   LaneWords  requests (owner: the client; epoch: claims)
//!                       +256 LaneWords  responses (produced by the server)
//!                       +512 Doorbell   the client sleeps here for a response or room
//!    R  request slots  x clients x capacity, each `stride` bytes
//!    S  response slots x clients x capacity, each `stride` bytes:
//!                     seq u64 | len u64 | meta: id u64, client epoch u64,
//!                     server epoch u64 | (to 64) | data (max_message bytes)
//! ```
//!
//! # Who answers, and when it is `Disconnected`
//! Every request carries its client's *epoch* (the lane's claim count) and
//! the *server epoch* it was sent to (the server word's high half, bumped
//! by each server that takes the name). A server answers only requests
//! sent to it by the lane's current client; the client accepts only
//! responses carrying its own epoch. So:
//!
//! - a client killed with requests in flight never blocks the server: its
//!   pending requests are answered into its own lane (nobody reads them; a
//!   client that takes the lane over discards them by epoch), or skipped
//!   once a new client has the lane;
//! - a server killed mid-request gives each client with requests in flight
//!   [`RecvError::Disconnected`](crate::RecvError::Disconnected) from
//!   `recv_response` once it has read every response the server committed
//!   before it died (noticed within about 50 ms: nobody rings for a killed
//!   server);
//! - a restarted server takes the name over (a new epoch): requests sent
//!   to its predecessor are not executed by it (their clients were told
//!   `Disconnected`), new ones are.
//!
//! A request sent to a service that has never had a server waits in its
//! lane for the first one (start the client first, if you like); once a
//! server has come and gone, `request` says `Disconnected` until the next
//! one takes over.
//!
//! # Flow control
//! A client has at most `capacity` requests in flight in shared memory
//! (sent, response not yet taken out of its lane). Responses that arrive
//! while the client waits for room, or while it waits for another id, are
//! moved to a queue in its own memory (`in_flight` counts them too; a
//! client that keeps sending without reading grows that queue), so the
//! response lane always has room for every response it is owed: an honest
//! client never makes the server wait, and `respond` waits only on a
//! client that broke the protocol. A client taking a block over frees
//! whatever its predecessor left unread there. A request the server never
//! answers counts until [`Client::abandon`] gives up on it; a response to
//! a request not in flight (abandoned, answered twice, or forged) is
//! dropped.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{
    Fault, RecvTimeoutError, SegmentError, SendError, SendTimeoutError, TrySendError,
};
use crate::kinds::channel::{PeerWatch, ShmSlots, SlotGeometry};
use crate::layout::{Fingerprint, Kind};
use crate::options::{self, How, Options};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::queue::spsc::{self, LaneWords, Producer, SLOT_DATA_OFFSET};
use crate::region::{Region, View, ViewMut};
use crate::segment::{Location, Segment, SegmentOptions, Spec};
use crate::sync::doorbell::{Doorbell, WaitStrategy};
use crate::sync::Liveness;
use crate::wait::{recv_forms, send_blocking, send_forms, send_try, Wait};

const CTL_OFFSET: usize = 0;
const SERVER_BELL_OFFSET: usize = 128;
const CLIENTS_OFFSET: usize = 256;
const CLIENT_LEN: usize = 640;
const REQ_LANE: usize = 0;
const RESP_LANE: usize = 256;
const CLIENT_BELL: usize = 512;

/// Most clients a service can have attached at once.
pub const MAX_CLIENTS: usize = 64;
/// Default requests in flight per client.
const DEFAULT_CAPACITY: usize = 16;
/// Default largest request or response, in bytes.
const DEFAULT_MAX_MESSAGE: usize = 4096;
/// Default clients at once.
const DEFAULT_CLIENTS: usize = 8;

/// How often a client waiting for a response asks whether the server
/// lives (nobody rings for a killed one).
const SERVER_POLL: Duration = Duration::from_millis(50);
/// How often a server waiting for room in a response lane asks whether
/// the client lives.
const CLIENT_POLL: Duration = Duration::from_millis(5);

/// `ever` bit: a server has attached at some time.
const EVER_SERVER: u32 = 1;

/// Slot meta words.
const META_ID: usize = 0;
const META_CLIENT_EPOCH: usize = 1;
const META_SERVER_EPOCH: usize = 2;

/// The service's control line. Geometry words are written once by the
/// creator; openers copy them out and validate them.
///
/// | word | writer | meaning |
/// |---|---|---|
/// | `capacity` | creator | slots per lane, a power of two: requests in flight per client |
/// | `max_message` | creator | largest request or response in bytes |
/// | `stride` | creator | bytes per slot (`64 + max_message`, rounded up to 64) |
/// | `clients` | creator | client blocks (clients at once) |
/// | `base` | creator | first position |
/// | `server` | a server (CAS) | `epoch << 32 \| token`: the server's epoch (claims so far) and liveness token (0: none) |
/// | `ever` | a server, on attach | `EVER_SERVER` once a server has attached |
/// | `conn` | every end, on attach and detach | any value; a change wakes waiters to look at their peers |
#[repr(C, align(128))]
#[derive(Debug)]
struct ServiceCtl {
    capacity: AtomicU64,
    max_message: AtomicU64,
    stride: AtomicU64,
    clients: AtomicU64,
    base: AtomicU64,
    server: AtomicU64,
    ever: AtomicU32,
    conn: AtomicU32,
    _pad: [u64; 9],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<ServiceCtl>() == 128);
crate::pod::shm_state!(
    ServiceCtl,
    "AtomicU64s, AtomicU32s and u64 padding; repr(C)"
);

fn server_epoch(word: u64) -> u32 {
    (word >> 32) as u32
}

fn server_token(word: u64) -> u32 {
    word as u32
}

/// Validated geometry, copied out of shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    slots: SlotGeometry,
    clients: usize,
    base: u64,
}

impl Geometry {
    fn new(capacity: usize, max_message: usize, clients: usize, base: u64) -> Option<Geometry> {
        if capacity == 0
            || capacity > crate::MAX_CAPACITY
            || max_message == 0
            || max_message > crate::MAX_MESSAGE
            || clients == 0
            || clients > MAX_CLIENTS
        {
            return None;
        }
        let capacity = capacity.next_power_of_two();
        let stride = (SLOT_DATA_OFFSET + max_message).div_ceil(64) * 64;
        Some(Geometry {
            slots: SlotGeometry {
                capacity,
                max_message,
                stride,
            },
            clients,
            base,
        })
    }

    fn slots_offset(&self) -> usize {
        (CLIENTS_OFFSET + self.clients * CLIENT_LEN).div_ceil(128) * 128
    }

    fn payload_len(&self) -> Option<u64> {
        let rings = self
            .slots
            .lane_bytes()?
            .checked_mul(self.clients)?
            .checked_mul(2)?;
        Some(self.slots_offset().checked_add(rings)? as u64)
    }

    fn read(ctl: &ServiceCtl) -> Option<Geometry> {
        let g = Geometry::new(
            usize::try_from(ctl.capacity.load(Ordering::Relaxed)).ok()?,
            usize::try_from(ctl.max_message.load(Ordering::Relaxed)).ok()?,
            usize::try_from(ctl.clients.load(Ordering::Relaxed)).ok()?,
            ctl.base.load(Ordering::Relaxed),
        )?;
        (g.slots.capacity as u64 == ctl.capacity.load(Ordering::Relaxed)
            && g.slots.stride as u64 == ctl.stride.load(Ordering::Relaxed))
        .then_some(g)
    }
}

/// The server's and every client's token words (for the registry).
fn tokens(p: Region<'_>, f: &mut dyn FnMut(u32)) {
    let Some(ctl) = p.get::<ServiceCtl>(CTL_OFFSET) else {
        return;
    };
    f(server_token(ctl.server.load(Ordering::Relaxed)));
    let clients = usize::try_from(ctl.clients.load(Ordering::Relaxed)).unwrap_or(MAX_CLIENTS);
    for c in 0..clients.min(MAX_CLIENTS) {
        if let Some(l) = p.get::<LaneWords>(CLIENTS_OFFSET + c * CLIENT_LEN + REQ_LANE) {
            f(l.owner.load(Ordering::Relaxed));
        }
    }
}

fn init(p: Region<'_>, g: Geometry) {
    let Some(ctl) = p.get::<ServiceCtl>(CTL_OFFSET) else {
        return;
    };
    ctl.capacity
        .store(g.slots.capacity as u64, Ordering::Relaxed);
    ctl.max_message
        .store(g.slots.max_message as u64, Ordering::Relaxed);
    ctl.stride.store(g.slots.stride as u64, Ordering::Relaxed);
    ctl.clients.store(g.clients as u64, Ordering::Relaxed);
    ctl.base.store(g.base, Ordering::Relaxed);
    ctl.server.store(0, Ordering::Relaxed);
    ctl.ever.store(0, Ordering::Relaxed);
    ctl.conn.store(0, Ordering::Relaxed);
    if let Some(b) = p.get::<Doorbell>(SERVER_BELL_OFFSET) {
        b.init();
    }
    for c in 0..g.clients {
        let block = CLIENTS_OFFSET + c * CLIENT_LEN;
        for lane in [REQ_LANE, RESP_LANE] {
            if let Some(l) = p.get::<LaneWords>(block + lane) {
                l.init(g.base);
            }
        }
        if let Some(b) = p.get::<Doorbell>(block + CLIENT_BELL) {
            b.init();
        }
        for dir in [Dir::Request, Dir::Response] {
            if let Some(slots) = slots_in(p, g, dir, c) {
                spsc::init_slots(&slots, g.base);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Request,
    Response,
}

fn slots_in(p: Region<'_>, g: Geometry, dir: Dir, client: usize) -> Option<ShmSlots<'_>> {
    let lane = match dir {
        Dir::Request => client,
        Dir::Response => g.clients + client,
    };
    ShmSlots::at(p, g.slots, g.slots_offset(), lane)
}

fn spec(layout: Fingerprint) -> Spec {
    Spec {
        kind: Kind::Service,
        layout,
        check_layout: false,
        min_payload: CLIENTS_OFFSET as u64,
        tokens,
        abandoned: crate::segment::never_abandoned,
    }
}

/// An attached service segment with its validated geometry.
#[derive(Debug)]
struct Service {
    seg: Segment,
    g: Geometry,
    wait: WaitStrategy,
}

impl Service {
    fn validate(seg: Segment, wait: WaitStrategy) -> Result<Service, SegmentError> {
        let bad = |what| SegmentError::Header {
            name: seg.location().to_string(),
            error: crate::error::HeaderError::BadSize { what },
        };
        let payload = seg.payload();
        let ctl = payload
            .get::<ServiceCtl>(CTL_OFFSET)
            .ok_or_else(|| bad("service control block"))?;
        let g = Geometry::read(ctl).ok_or_else(|| bad("service geometry"))?;
        if g.payload_len()
            .is_none_or(|need| need > seg.header().payload_len)
        {
            return Err(bad("service rings run past the payload"));
        }
        Ok(Service { seg, g, wait })
    }

    fn attach<K>(o: &Options<K>, how: How) -> Result<Service, SegmentError> {
        let capacity = o.capacity.unwrap_or(DEFAULT_CAPACITY);
        let max = o.max_message.unwrap_or(DEFAULT_MAX_MESSAGE);
        let clients = o.senders.unwrap_or(DEFAULT_CLIENTS);
        let geometry =
            Geometry::new(capacity, max, clients, o.base).filter(|g| g.payload_len().is_some());
        let g = match (how, geometry) {
            (_, Some(g)) => g,
            (How::Open, None) => Geometry::new(1, 1, 1, 0).expect("valid"),
            (_, None) => {
                return Err(SegmentError::InvalidSize(format!(
                    "service capacity {capacity} x {max} bytes x {clients} clients"
                )))
            }
        };
        let len = g.payload_len().unwrap_or(u64::MAX);
        let spec = spec(Fingerprint::new("bytes", max as u64, 1));
        let seg = Segment::attach(&o.seg, how, &spec, len, |p| init(p, g))?;
        Service::validate(seg, o.wait)
    }

    fn ctl(&self) -> &ServiceCtl {
        self.seg
            .payload()
            .get::<ServiceCtl>(CTL_OFFSET)
            .expect("checked at attach")
    }

    #[inline]
    fn server_bell(&self) -> &Doorbell {
        self.seg
            .payload()
            .get::<Doorbell>(SERVER_BELL_OFFSET)
            .expect("checked at attach") // min_payload
    }

    #[inline]
    fn lane(&self, client: usize, dir: Dir) -> &LaneWords {
        let off = match dir {
            Dir::Request => REQ_LANE,
            Dir::Response => RESP_LANE,
        };
        self.seg
            .payload()
            .get::<LaneWords>(CLIENTS_OFFSET + client * CLIENT_LEN + off)
            .expect("client < clients") // geometry checked
    }

    #[inline]
    fn client_bell(&self, client: usize) -> &Doorbell {
        self.seg
            .payload()
            .get::<Doorbell>(CLIENTS_OFFSET + client * CLIENT_LEN + CLIENT_BELL)
            .expect("client < clients") // geometry checked
    }

    #[inline]
    fn slots(&self, client: usize, dir: Dir) -> ShmSlots<'_> {
        slots_in(self.seg.payload(), self.g, dir, client).expect("geometry checked at attach")
    }

    /// An end attached or left: record it and wake everyone, so waiters
    /// look at their peers again.
    fn announce(&self, ever: u32) {
        let ctl = self.ctl();
        if ever != 0 {
            ctl.ever.fetch_or(ever, Ordering::SeqCst);
        }
        // SYNC(conn): SeqCst RMW after the end's own CAS, before the rings.
        ctl.conn.fetch_add(1, Ordering::SeqCst);
        self.server_bell().ring();
        for c in 0..self.g.clients {
            self.client_bell(c).ring();
        }
    }

    /// Copies the message at `head` of `slots` out with its meta words, if
    /// one is there: `Err(len)` for a length above the maximum (corrupt).
    /// The meta words are copied out with it; `Err((len, meta))` for a
    /// length above the maximum (a corrupt slot).
    #[allow(clippy::type_complexity)] // Reason: a private helper's one result.
    fn read_slot<'a>(
        slots: &ShmSlots<'a>,
        head: u64,
    ) -> Option<Result<(View<'a>, [u64; 3]), (u64, [u64; 3])>> {
        let got = spsc::readable(slots, head)?;
        let i = spsc::index(slots, head);
        let h = slots.header(i);
        // SYNC(slot): after `readable`'s Acquire load of `seq`, these see
        // what the producer stored before its commit.
        let meta = [
            h.meta[META_ID].load(Ordering::Relaxed),
            h.meta[META_CLIENT_EPOCH].load(Ordering::Relaxed),
            h.meta[META_SERVER_EPOCH].load(Ordering::Relaxed),
        ];
        let len = match got {
            Ok(len) => len,
            Err(bad) => return Some(Err((bad, meta))),
        };
        let view = slots
            .region
            .view(slots.data_offset(i), len)
            .expect("len <= max_message"); // checked by readable
        Some(Ok((view, meta)))
    }

    /// Fills the slot at the producer's tail (data already written) with
    /// its meta words and commits it.
    fn commit(
        slots: &ShmSlots<'_>,
        lane: &LaneWords,
        prod: &mut Producer,
        len: usize,
        meta: [u64; 3],
    ) {
        let h = slots.header(spsc::index(slots, prod.tail));
        for (w, v) in h.meta.iter().zip(meta) {
            w.store(v, Ordering::Relaxed);
        }
        prod.commit(slots, lane, len);
    }

    fn stats(&self) -> ServiceStats {
        let cap = self.g.slots.capacity as u64;
        let depth = |l: &LaneWords| {
            l.tail
                .load(Ordering::Relaxed)
                .wrapping_sub(l.head.load(Ordering::Relaxed))
                .min(cap)
        };
        let clients = (0..self.g.clients)
            .map(|c| {
                let req = self.lane(c, Dir::Request);
                let owner = req.owner.load(Ordering::Relaxed);
                ClientStats {
                    alive: owner != 0 && self.seg.is_alive(owner),
                    requests_waiting: depth(req),
                    responses_waiting: depth(self.lane(c, Dir::Response)),
                    requests_sent: req.tail.load(Ordering::Relaxed).wrapping_sub(self.g.base),
                }
            })
            .collect();
        let s = self.ctl().server.load(Ordering::Relaxed);
        ServiceStats {
            capacity: self.g.slots.capacity,
            max_message: self.g.slots.max_message,
            clients,
            server_alive: server_token(s) != 0 && self.seg.is_alive(server_token(s)),
            server_epoch: server_epoch(s),
        }
    }
}

fn busy(s: &Service, what: &str) -> SegmentError {
    SegmentError::TooManyAttached(format!("{}: {what}", s.seg.location()))
}

/// What `mapshare info` shows about a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStats {
    /// Requests in flight per client.
    pub capacity: usize,
    /// Largest request or response in bytes.
    pub max_message: usize,
    /// One entry per client block.
    pub clients: Vec<ClientStats>,
    /// Whether a live server holds the service.
    pub server_alive: bool,
    /// Servers that have taken the name so far.
    pub server_epoch: u32,
}

/// One client block of a service, as [`ServiceStats`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientStats {
    /// Whether a live client owns it.
    pub alive: bool,
    /// Requests not yet taken by the server.
    pub requests_waiting: u64,
    /// Responses not yet read by the client.
    pub responses_waiting: u64,
    /// Requests sent through it since creation.
    pub requests_sent: u64,
}

/// Reads the statistics of the service at `at` (attaching for the call,
/// taking no role, writing nothing).
///
/// # Errors
/// [`SegmentError::NotFound`], [`SegmentError::KindMismatch`], ...
pub fn service_stats(at: &Location) -> Result<ServiceStats, SegmentError> {
    let seg = Segment::open(
        &SegmentOptions::at(at),
        &spec(Fingerprint::new("bytes", 0, 1)),
    )?;
    Ok(Service::validate(seg, WaitStrategy::default())?.stats())
}

// ---------------------------------------------------------------- server

/// Where a response goes: the client that asked, and which request it
/// answers. Handed out with each [`Request`]; `Copy`, so a server may keep
/// it and answer later, out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyTo {
    client: usize,
    epoch: u64,
    /// The epoch of the server that took the request: another server (a
    /// later one, or another handle) cannot answer it.
    server: u32,
    id: u64,
}

impl ReplyTo {
    /// The request's id, as [`Client::request`] returned it to the client.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The client block the request came from (a small number; another
    /// client may hold it once this one has gone).
    pub fn client(&self) -> usize {
        self.client
    }
}

/// A request taken by the [`Server`]: its bytes (copied out) and where its
/// response goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    reply_to: ReplyTo,
    data: Vec<u8>,
}

impl Request {
    /// Where the response goes: pass it to [`Server::respond`].
    pub fn reply_to(&self) -> ReplyTo {
        self.reply_to
    }

    /// The request's id (unique per client).
    pub fn id(&self) -> u64 {
        self.reply_to.id
    }

    /// The request's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The request's bytes, by value.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

/// The serving end of a request/response service: the one server, taking
/// requests from every client round-robin and answering each into the
/// lane of the client that asked.
///
/// # Examples
/// ```
/// use mapshare::{Client, Server};
/// # let name = format!("doc-svc-{}", std::process::id());
/// let mut server = Server::create(&name)?;
/// let mut client = Client::open(&name)?;
/// let id = client.request(b"2+2")?;
/// let req = server.recv_request()?;
/// server.respond(req.reply_to(), b"4")?;
/// let resp = client.recv_response()?;
/// assert_eq!((resp.id(), resp.data()), (id, &b"4"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Server {
    svc: Service,
    epoch: u32,
    heads: Vec<u64>,
    prods: Vec<Producer>,
    next: usize,
    watch: Vec<PeerWatch>,
}

impl options::private::Sealed for Server {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        Server::claim(Service::attach(o, how)?)
    }
}
impl options::Attach for Server {}
impl options::HasCapacity for Server {}
impl options::HasMaxMessage for Server {}
impl options::HasSenders for Server {}

/// Why a wait for room ended without room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Disconnected,
    Timeout,
    Truncated,
}

impl Server {
    options::constructors!(
        "a request/response service, as its server (`senders` sets the number of clients at once),"
    );

    fn claim(svc: Service) -> Result<Server, SegmentError> {
        let me = svc.seg.token();
        let ctl = svc.ctl();
        let word = ctl.server.load(Ordering::Acquire);
        let owner = server_token(word);
        let free = owner == 0 || !svc.seg.is_alive(owner);
        let epoch = server_epoch(word).wrapping_add(1).max(1);
        let mine = (u64::from(epoch) << 32) | u64::from(me);
        if !(free
            && ctl
                .server
                .compare_exchange(word, mine, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok())
        {
            return Err(busy(&svc, "a live server is attached"));
        }
        let clients = svc.g.clients;
        let heads = (0..clients)
            .map(|c| spsc::recover_head(svc.lane(c, Dir::Request)))
            .collect();
        let prods = (0..clients)
            .map(|c| {
                Producer::new(spsc::recover_tail(
                    &svc.slots(c, Dir::Response),
                    svc.lane(c, Dir::Response),
                ))
            })
            .collect();
        svc.announce(EVER_SERVER);
        Ok(Server {
            svc,
            epoch,
            heads,
            prods,
            next: 0,
            watch: (0..clients).map(|_| PeerWatch::default()).collect(),
        })
    }

    /// Where the service lives.
    pub fn location(&self) -> &Location {
        self.svc.seg.location()
    }

    /// Largest request or response in bytes.
    pub fn max_message(&self) -> usize {
        self.svc.g.slots.max_message
    }

    /// Requests in flight per client.
    pub fn capacity(&self) -> usize {
        self.svc.g.slots.capacity
    }

    /// Clients at once.
    pub fn max_clients(&self) -> usize {
        self.svc.g.clients
    }

    /// Queue depths and who is attached (a snapshot).
    pub fn stats(&self) -> ServiceStats {
        self.svc.stats()
    }

    /// This server's epoch: how many servers have taken the name, it included.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The next request for us, round-robin over the clients: skips (and
    /// frees) requests sent to an earlier server or by an earlier holder of
    /// the client block.
    fn next_request(&mut self) -> Option<Result<Request, RecvTimeoutError>> {
        let clients = self.svc.g.clients;
        let mut k = 0;
        while k < clients {
            let c = (self.next + k) % clients;
            let slots = self.svc.slots(c, Dir::Request);
            let Some(got) = Service::read_slot(&slots, self.heads[c]) else {
                k += 1;
                continue;
            };
            let out = match got {
                Err((len, _)) => Some(Err(RecvTimeoutError::Fault(Fault::BadLength {
                    len,
                    max: self.svc.g.slots.max_message as u64,
                }))),
                Ok((view, [id, client_epoch, server_epoch])) => {
                    let lane = self.svc.lane(c, Dir::Request);
                    let current = u64::from(lane.epoch.load(Ordering::Acquire));
                    (server_epoch == u64::from(self.epoch) && client_epoch == current).then(|| {
                        Ok(Request {
                            reply_to: ReplyTo {
                                client: c,
                                epoch: client_epoch,
                                server: self.epoch,
                                id,
                            },
                            data: view.to_vec(),
                        })
                    })
                }
            };
            self.heads[c] = spsc::release(self.svc.lane(c, Dir::Request), self.heads[c]);
            self.svc.client_bell(c).ring(); // room for a client waiting to send
            if let Some(out) = out {
                self.next = (c + 1) % clients;
                return Some(out);
            }
            // Stale: look at the same lane again.
        }
        None
    }

    fn recv_request_inner(&mut self, wait: Wait) -> Result<Request, RecvTimeoutError> {
        loop {
            if let Some(r) = self.next_request() {
                return r;
            }
            let Some(deadline) = wait.until() else {
                return Err(RecvTimeoutError::Timeout);
            };
            let svc = &self.svc;
            let heads = &self.heads;
            let ready = svc.server_bell().wait_until(
                svc.wait,
                deadline,
                None,
                &|| svc.seg.intact(),
                || {
                    (0..svc.g.clients)
                        .any(|c| spsc::readable(&svc.slots(c, Dir::Request), heads[c]).is_some())
                },
            );
            if !ready && !svc.seg.intact() {
                return Err(RecvTimeoutError::Fault(Fault::Truncated));
            }
            if !ready && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
        }
    }

    recv_forms!(
        /// Takes the next request, from any client (round-robin), copied
        /// out. A server is never disconnected: clients come and go.
        ///
        /// # Errors
        /// `Fault` for a corrupt slot (skipped) or a truncated segment.
        try_recv_request, recv_request, recv_request_timeout, recv_request_deadline (&mut self) () -> Request = recv_request_inner
    );

    /// Whether the client `to` names still holds its block (cheap: one
    /// load), and, with `ask`, still lives (a system call, at most every
    /// `CLIENT_POLL`).
    fn client_gone(&mut self, to: &ReplyTo, ask: bool) -> bool {
        let lane = self.svc.lane(to.client, Dir::Request);
        if u64::from(lane.epoch.load(Ordering::Acquire)) != to.epoch {
            return true;
        }
        let owner = lane.owner.load(Ordering::Acquire);
        if owner == 0 {
            return true;
        }
        if !ask {
            return false;
        }
        let conn = self.svc.ctl().conn.load(Ordering::Acquire);
        let seg = &self.svc.seg;
        self.watch[to.client].gone(conn, CLIENT_POLL, || !seg.is_alive(owner))
    }

    fn wait_response_room(&mut self, to: &ReplyTo, wait: Wait) -> Result<(), Stop> {
        if to.server != self.epoch || to.client >= self.svc.g.clients || self.client_gone(to, false)
        {
            return Err(Stop::Disconnected);
        }
        let c = to.client;
        let has_room = |me: &mut Self| {
            me.prods[c].can_write(
                &me.svc.slots(c, Dir::Response),
                me.svc.lane(c, Dir::Response),
            )
        };
        if has_room(self) {
            return Ok(());
        }
        let Some(deadline) = wait.until() else {
            return Err(if self.client_gone(to, true) {
                Stop::Disconnected
            } else {
                Stop::Timeout
            });
        };
        loop {
            let (svc, prod) = (&self.svc, &mut self.prods[c]);
            let (slots, words) = (svc.slots(c, Dir::Response), svc.lane(c, Dir::Response));
            let conn = svc.ctl().conn.load(Ordering::Relaxed);
            let mut room = false;
            svc.server_bell().wait_until(
                svc.wait,
                deadline,
                Some(CLIENT_POLL),
                &|| svc.seg.intact(),
                || {
                    room = prod.can_write(&slots, words);
                    room || svc.ctl().conn.load(Ordering::Relaxed) != conn
                },
            );
            if !room && !self.svc.seg.intact() {
                return Err(Stop::Truncated);
            }
            if self.client_gone(to, true) {
                return Err(Stop::Disconnected);
            }
            if room {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Stop::Timeout);
            }
        }
    }

    fn push_response(&mut self, to: &ReplyTo, msg: &[u8]) {
        let c = to.client;
        let slots = self.svc.slots(c, Dir::Response);
        let i = spsc::index(&slots, self.prods[c].tail);
        let ok = slots.region.write(slots.data_offset(i), msg);
        debug_assert!(ok);
        let meta = [to.id, to.epoch, u64::from(self.epoch)];
        Service::commit(
            &slots,
            self.svc.lane(c, Dir::Response),
            &mut self.prods[c],
            msg.len(),
            meta,
        );
        self.svc.client_bell(c).ring();
    }

    fn respond_inner<'m>(
        &mut self,
        to: ReplyTo,
        msg: &'m [u8],
        wait: Wait,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        if msg.len() > self.svc.g.slots.max_message {
            return Err(SendTimeoutError::TooLarge(msg));
        }
        match self.wait_response_room(&to, wait) {
            Ok(()) => {
                self.push_response(&to, msg);
                Ok(())
            }
            Err(Stop::Disconnected) => Err(SendTimeoutError::Disconnected(msg)),
            Err(Stop::Timeout) => Err(SendTimeoutError::Timeout(msg)),
            Err(Stop::Truncated) => Err(SendTimeoutError::Fault(msg, Fault::Truncated)),
        }
    }

    /// Sends `msg` as the response to the request `to` names, into the lane
    /// of the client that asked. An honest client always leaves room for
    /// every response it is owed, so this waits only on a client that
    /// broke the protocol (and then as long as that client lives).
    ///
    /// # Errors
    /// `Disconnected` (the message handed back: drop it) when the client
    /// has gone; `TooLarge` above [`Server::max_message`].
    pub fn respond<'m>(&mut self, to: ReplyTo, msg: &'m [u8]) -> Result<(), SendError<&'m [u8]>> {
        loop {
            match self.respond_inner(to, msg, Wait::FOREVER) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Ok(e) = send_blocking(e) {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// As [`Server::respond`], without waiting: `Full` when the client's
    /// response lane has no room (a client that broke the protocol).
    ///
    /// # Errors
    /// `Full`, `Disconnected`, `TooLarge`.
    pub fn try_respond<'m>(
        &mut self,
        to: ReplyTo,
        msg: &'m [u8],
    ) -> Result<(), TrySendError<&'m [u8]>> {
        self.respond_inner(to, msg, Wait::Try).map_err(send_try)
    }

    /// As [`Server::respond`], waiting at most `timeout` (any `Duration`).
    ///
    /// # Errors
    /// `Timeout`, `Disconnected`, `TooLarge`.
    pub fn respond_timeout<'m>(
        &mut self,
        to: ReplyTo,
        msg: &'m [u8],
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        self.respond_inner(to, msg, Wait::timeout(timeout))
    }

    /// As [`Server::respond`], waiting until `deadline` at most.
    ///
    /// # Errors
    /// As [`Server::respond_timeout`].
    pub fn respond_deadline<'m>(
        &mut self,
        to: ReplyTo,
        msg: &'m [u8],
        deadline: Instant,
    ) -> Result<(), SendTimeoutError<&'m [u8]>> {
        self.respond_inner(to, msg, Wait::deadline(deadline))
    }

    /// Loans the slot the response to `to` will occupy (zero-copy): write
    /// it in place, then [`ResponseLoan::commit`]. Waits as
    /// [`Server::respond_timeout`] does.
    ///
    /// # Errors
    /// `Timeout`, `Disconnected` (the client has gone), `Fault`.
    pub fn loan_response_timeout(
        &mut self,
        to: ReplyTo,
        timeout: Duration,
    ) -> Result<ResponseLoan<'_>, SendTimeoutError<()>> {
        match self.wait_response_room(&to, Wait::timeout(timeout)) {
            Ok(()) => {}
            Err(Stop::Disconnected) => return Err(SendTimeoutError::Disconnected(())),
            Err(Stop::Timeout) => return Err(SendTimeoutError::Timeout(())),
            Err(Stop::Truncated) => return Err(SendTimeoutError::Fault((), Fault::Truncated)),
        }
        let Server {
            svc, prods, epoch, ..
        } = self;
        let svc: &Service = svc;
        let prod = &mut prods[to.client];
        let slots = svc.slots(to.client, Dir::Response);
        let i = spsc::index(&slots, prod.tail);
        let view = slots
            .region
            .view_mut(slots.data_offset(i), svc.g.slots.max_message)
            .expect("slot inside the lane region");
        Ok(ResponseLoan {
            svc,
            prod,
            epoch: *epoch,
            to,
            view,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.svc.seg.intact() || self.svc.seg.forked() {
            return;
        }
        let ctl = self.svc.ctl();
        let me = self.svc.seg.token();
        let word = ctl.server.load(Ordering::Acquire);
        if server_token(word) == me && server_epoch(word) == self.epoch {
            // Ours -> none, keeping the epoch. SYNC(conn): pairs with the
            // clients' Acquire loads.
            let _ = ctl.server.compare_exchange(
                word,
                u64::from(self.epoch) << 32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
        self.svc.announce(0);
    }
}

/// A response slot lent by [`Server::loan_response_timeout`]: write it with
/// [`write_at`](Self::write_at), [`write_pod`](Self::write_pod) or through
/// [`view_mut`](Self::view_mut) (it derefs to a [`ViewMut`] over the whole
/// slot for reading back only); [`commit`](Self::commit) sends the first
/// `len` bytes; dropped uncommitted, nothing is sent.
#[derive(Debug)]
#[must_use = "nothing is sent unless the loan is committed"]
pub struct ResponseLoan<'a> {
    svc: &'a Service,
    prod: &'a mut Producer,
    epoch: u32,
    to: ReplyTo,
    view: ViewMut<'a>,
}

impl<'a> std::ops::Deref for ResponseLoan<'a> {
    type Target = ViewMut<'a>;
    fn deref(&self) -> &ViewMut<'a> {
        &self.view
    }
}

crate::region::loan_writes!(ResponseLoan);

impl ResponseLoan<'_> {
    /// Sends the first `len` bytes of the slot (at most its size) as the
    /// response.
    pub fn commit(self, len: usize) {
        let len = len.min(self.view.len());
        let ResponseLoan {
            svc,
            prod,
            epoch,
            to,
            ..
        } = self;
        let c = to.client;
        let slots = svc.slots(c, Dir::Response);
        let meta = [to.id, to.epoch, u64::from(epoch)];
        Service::commit(&slots, svc.lane(c, Dir::Response), prod, len, meta);
        svc.client_bell(c).ring();
    }
}

// ---------------------------------------------------------------- client

/// A response taken by a [`Client`]: the id of the request it answers and
/// its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    id: u64,
    data: Vec<u8>,
}

impl Response {
    /// The id of the request it answers ([`Client::request`]'s result).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The response's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The response's bytes, by value.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

/// Where the server stands, for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    /// No server has ever attached: requests wait for the first one
    /// (epoch 1).
    Never,
    /// A live server of this epoch.
    Live(u32),
    /// A server came and went; none is attached now (or a dead one).
    Gone,
}

/// A requesting end of a request/response service: owns a client block,
/// sends requests and reads the responses to them (only to them).
///
/// # Examples
/// Several requests in flight, answered out of order, each response
/// matched to its request by id:
/// ```
/// use mapshare::{Client, Server};
/// # let name = format!("doc-svc2-{}", std::process::id());
/// let mut server = Server::options(&name).capacity(4).create()?;
/// let mut client = Client::open(&name)?;
/// let a = client.request(b"a")?;
/// let b = client.request(b"b")?;
/// let (ra, rb) = (server.recv_request()?, server.recv_request()?);
/// server.respond(rb.reply_to(), b"B")?;
/// server.respond(ra.reply_to(), b"A")?;
/// assert_eq!(client.call_response(b)?, b"B"); // waits for that id, keeps others
/// assert_eq!(client.call_response(a)?, b"A");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    svc: Service,
    me: usize,
    epoch: u64,
    prod: Producer,
    head: u64,
    next_id: u64,
    /// The ids of our requests in flight, oldest first (at most `capacity`):
    /// a response is taken only for one of them, and only once.
    outstanding: VecDeque<u64>,
    /// The server epoch the requests in flight went to.
    tag: u32,
    /// Responses moved out of the lane while waiting for room, or while
    /// looking for another id.
    buffered: VecDeque<Response>,
    server: PeerWatch,
}

impl options::private::Sealed for Client {
    fn attach(o: &Options<Self>, how: How) -> Result<Self, SegmentError> {
        Client::claim(Service::attach(o, how)?)
    }
}
impl options::Attach for Client {}
impl options::HasCapacity for Client {}
impl options::HasMaxMessage for Client {}
impl options::HasSenders for Client {}

impl Client {
    options::constructors!("a request/response service, as a client,");

    fn claim(svc: Service) -> Result<Client, SegmentError> {
        let me = svc.seg.token();
        for c in 0..svc.g.clients {
            let words = svc.lane(c, Dir::Request);
            let owner = words.owner.load(Ordering::Acquire);
            let free = owner == 0 || !svc.seg.is_alive(owner);
            if free
                && words
                    .owner
                    .compare_exchange(owner, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                let epoch = words.epoch.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
                let tail = spsc::recover_tail(&svc.slots(c, Dir::Request), words);
                // Free what the previous holder left unread in our response
                // lane (none of it can be ours), so every response we are
                // owed finds room and the server never waits on us.
                let resp = svc.lane(c, Dir::Response);
                let slots = svc.slots(c, Dir::Response);
                let mut head = spsc::recover_head(resp);
                for _ in 0..svc.g.slots.capacity {
                    if spsc::readable(&slots, head).is_none() {
                        break;
                    }
                    head = spsc::release(resp, head);
                }
                svc.announce(0);
                return Ok(Client {
                    svc,
                    me: c,
                    epoch: u64::from(epoch),
                    prod: Producer::new(tail),
                    head,
                    next_id: 1,
                    outstanding: VecDeque::new(),
                    tag: 0,
                    buffered: VecDeque::new(),
                    server: PeerWatch::default(),
                });
            }
        }
        Err(busy(&svc, "every client block is held by a live client"))
    }

    /// Where the service lives.
    pub fn location(&self) -> &Location {
        self.svc.seg.location()
    }

    /// Largest request or response in bytes.
    pub fn max_message(&self) -> usize {
        self.svc.g.slots.max_message
    }

    /// Requests this client may have in flight at once.
    pub fn capacity(&self) -> usize {
        self.svc.g.slots.capacity
    }

    /// Requests sent whose response has not been read yet (those whose
    /// response has arrived and waits in this handle included).
    pub fn in_flight(&self) -> usize {
        self.outstanding.len() + self.buffered.len()
    }

    /// Gives up on request `id`: it no longer counts against `capacity`,
    /// and its response, if one comes, is dropped. For a request the server
    /// will never answer (a server that dropped it, or a `call_timeout`
    /// that ran out). Returns whether `id` was in flight.
    ///
    /// A server that does answer it later puts that answer in a slot of
    /// this client's lane that nothing counted: it stays there until this
    /// client's next `request` or `recv_response` drops it, and a server
    /// answering with the blocking [`Server::respond`] may wait for that
    /// call if the lane is full.
    pub fn abandon(&mut self, id: u64) -> bool {
        if let Some(i) = self.buffered.iter().position(|r| r.id == id) {
            self.buffered.remove(i);
            return true;
        }
        match self.outstanding.iter().position(|&o| o == id) {
            Some(i) => {
                self.outstanding.remove(i);
                true
            }
            None => false,
        }
    }

    /// Queue depths and who is attached (a snapshot).
    pub fn stats(&self) -> ServiceStats {
        self.svc.stats()
    }

    /// Where the server stands; `ask`: also ask the registry whether the
    /// attached one lives (a system call, at most every `SERVER_POLL`
    /// unless an end came or went).
    fn server_state(&mut self, ask: bool) -> ServerState {
        let ctl = self.svc.ctl();
        // SYNC(conn): Acquire pairs with the server's CAS in claim and drop.
        let word = ctl.server.load(Ordering::Acquire);
        let (epoch, token) = (server_epoch(word), server_token(word));
        if token == 0 {
            return if ctl.ever.load(Ordering::Acquire) & EVER_SERVER == 0 {
                ServerState::Never
            } else {
                ServerState::Gone
            };
        }
        let conn = ctl.conn.load(Ordering::Acquire);
        let seg = &self.svc.seg;
        let dead = if ask {
            self.server.gone(conn, SERVER_POLL, || !seg.is_alive(token))
        } else {
            self.server.gone_if_changed(conn, || !seg.is_alive(token))
        };
        if dead {
            ServerState::Gone
        } else {
            ServerState::Live(epoch)
        }
    }

    /// Whether the server our requests in flight went to has gone.
    fn tag_gone(&mut self, ask: bool) -> bool {
        match self.server_state(ask) {
            ServerState::Never => self.tag != 1,
            ServerState::Live(e) => e != self.tag,
            ServerState::Gone => true,
        }
    }

    /// The next response for us from the lane, discarding those meant for
    /// an earlier holder of our block.
    fn take_from_lane(&mut self) -> Option<Result<Response, RecvTimeoutError>> {
        loop {
            let slots = self.svc.slots(self.me, Dir::Response);
            let got = Service::read_slot(&slots, self.head)?;
            // Ours only if it carries our epoch and answers a request in
            // flight (once: a second answer to it is dropped).
            let (id, epoch) = match &got {
                Ok((_, [id, epoch, _])) | Err((_, [id, epoch, _])) => (*id, *epoch),
            };
            let pos = (epoch == self.epoch)
                .then(|| self.outstanding.iter().position(|&o| o == id))
                .flatten();
            let out = pos.map(|i| {
                self.outstanding.remove(i);
                match got {
                    Err((len, _)) => Err(RecvTimeoutError::Fault(Fault::BadLength {
                        len,
                        max: self.svc.g.slots.max_message as u64,
                    })),
                    Ok((view, _)) => Ok(Response {
                        id,
                        data: view.to_vec(),
                    }),
                }
            });
            self.head = spsc::release(self.svc.lane(self.me, Dir::Response), self.head);
            self.svc.server_bell().ring(); // room for a server waiting to respond
            if let Some(out) = out {
                return Some(out);
            }
        }
    }

    fn response_ready(&self) -> bool {
        spsc::readable(&self.svc.slots(self.me, Dir::Response), self.head).is_some()
    }

    /// Waits until a response is in the lane (`Ok(true)`), the time runs out
    /// (`Ok(false)`), or the server our requests went to has gone.
    fn wait_response(&mut self, deadline: Option<Instant>) -> Result<bool, RecvTimeoutError> {
        loop {
            if self.response_ready() {
                return Ok(true);
            }
            if self.tag_gone(true) {
                // Gone: read what it committed before it went.
                return if self.response_ready() {
                    Ok(true)
                } else {
                    Err(RecvTimeoutError::Disconnected)
                };
            }
            let svc = &self.svc;
            let (me, head) = (self.me, self.head);
            let conn = svc.ctl().conn.load(Ordering::Relaxed);
            let ready = svc.client_bell(me).wait_until(
                svc.wait,
                deadline,
                Some(SERVER_POLL),
                &|| svc.seg.intact(),
                || {
                    spsc::readable(&svc.slots(me, Dir::Response), head).is_some()
                        || svc.ctl().conn.load(Ordering::Relaxed) != conn
                },
            );
            if !ready && !self.svc.seg.intact() {
                return Err(RecvTimeoutError::Fault(Fault::Truncated));
            }
            if !ready && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(self.response_ready());
            }
        }
    }

    /// Writes off the requests in flight: their server has gone.
    fn write_off(&mut self) {
        self.outstanding.clear();
    }

    fn recv_response_inner(&mut self, wait: Wait) -> Result<Response, RecvTimeoutError> {
        loop {
            if let Some(r) = self.buffered.pop_front() {
                return Ok(r);
            }
            if let Some(r) = self.take_from_lane() {
                return r;
            }
            if self.outstanding.is_empty() {
                return Err(RecvTimeoutError::Disconnected);
            }
            let deadline = match wait.until() {
                None => {
                    if self.tag_gone(true) && !self.response_ready() {
                        self.write_off();
                        return Err(RecvTimeoutError::Disconnected);
                    }
                    if self.response_ready() {
                        continue;
                    }
                    return Err(RecvTimeoutError::Timeout);
                }
                Some(d) => d,
            };
            match self.wait_response(deadline) {
                Ok(true) => {}
                Ok(false) => return Err(RecvTimeoutError::Timeout),
                Err(RecvTimeoutError::Disconnected) => {
                    self.write_off();
                    return Err(RecvTimeoutError::Disconnected);
                }
                Err(e) => return Err(e),
            }
        }
    }

    recv_forms!(
        /// Takes the next response to any of our requests in flight, copied
        /// out (match it to its request by [`Response::id`]).
        ///
        /// # Errors
        /// `Disconnected` when no response can come: nothing is in flight,
        /// or the server our requests went to has gone (killed ones are
        /// noticed within about 50 ms) and every response it committed has
        /// been read; the requests in flight are then written off.
        /// `Fault` for a corrupt slot (skipped) or a truncated segment.
        try_recv_response, recv_response, recv_response_timeout, recv_response_deadline (&mut self) () -> Response = recv_response_inner
    );

    /// Waits for the response to request `id`, keeping any other response
    /// that arrives meanwhile for a later [`recv_response`](Self::recv_response).
    ///
    /// # Errors
    /// As [`recv_response`](Self::recv_response).
    pub fn call_response(&mut self, id: u64) -> Result<Vec<u8>, crate::error::RecvError> {
        self.call_response_inner(id, Wait::FOREVER)
            .map_err(crate::wait::recv_blocking)
    }

    /// As [`call_response`](Self::call_response), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_response_timeout`](Self::recv_response_timeout).
    pub fn call_response_timeout(
        &mut self,
        id: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, RecvTimeoutError> {
        self.call_response_inner(id, Wait::timeout(timeout))
    }

    fn call_response_inner(&mut self, id: u64, wait: Wait) -> Result<Vec<u8>, RecvTimeoutError> {
        if let Some(i) = self.buffered.iter().position(|r| r.id == id) {
            return Ok(self.buffered.remove(i).expect("index found").data);
        }
        let mut kept = Vec::new();
        let out = loop {
            match self.take_from_lane() {
                Some(Ok(r)) if r.id == id => break Ok(r.data),
                Some(Ok(r)) => kept.push(r),
                Some(Err(e)) => break Err(e),
                None if self.outstanding.is_empty() => break Err(RecvTimeoutError::Disconnected),
                None => match wait.until() {
                    None => {
                        break Err(if self.tag_gone(true) && !self.response_ready() {
                            self.write_off();
                            RecvTimeoutError::Disconnected
                        } else {
                            RecvTimeoutError::Timeout
                        })
                    }
                    Some(d) => match self.wait_response(d) {
                        Ok(true) => {}
                        Ok(false) => break Err(RecvTimeoutError::Timeout),
                        Err(e) => {
                            if e == RecvTimeoutError::Disconnected {
                                self.write_off();
                            }
                            break Err(e);
                        }
                    },
                },
            }
        };
        self.buffered.extend(kept);
        out
    }

    /// Waits until a request may be sent: fewer than `capacity` in flight
    /// (moving arrived responses to `buffered` to make room) and a free
    /// slot in our request lane; settles the server epoch to send to.
    fn wait_room(&mut self, wait: Wait) -> Result<(), Stop> {
        loop {
            let state = self.server_state(false);
            if !self.outstanding.is_empty() && self.tag_gone(false) {
                // Our requests in flight went to a server that has gone.
                self.drain_lane();
                self.write_off();
                return Err(Stop::Disconnected);
            }
            match state {
                ServerState::Gone => return Err(Stop::Disconnected),
                ServerState::Never => self.tag = 1,
                ServerState::Live(e) => self.tag = e,
            }
            while self.outstanding.len() >= self.svc.g.slots.capacity {
                match self.take_from_lane() {
                    Some(Ok(r)) => self.buffered.push_back(r),
                    Some(Err(_)) => {} // corrupt: skipped
                    None => break,
                }
            }
            let room = self.outstanding.len() < self.svc.g.slots.capacity
                && self.prod.can_write(
                    &self.svc.slots(self.me, Dir::Request),
                    self.svc.lane(self.me, Dir::Request),
                );
            if room {
                return Ok(());
            }
            let Some(deadline) = wait.until() else {
                return Err(if self.tag_gone(true) {
                    Stop::Disconnected
                } else {
                    Stop::Timeout
                });
            };
            // Full: wait for a response or for the server to take requests.
            let svc = &self.svc;
            let (me, head) = (self.me, self.head);
            let conn = svc.ctl().conn.load(Ordering::Relaxed);
            let prod = &mut self.prod;
            let full = self.outstanding.len() >= svc.g.slots.capacity;
            let moved = svc.client_bell(me).wait_until(
                svc.wait,
                deadline,
                Some(SERVER_POLL),
                &|| svc.seg.intact(),
                || {
                    let progress = if full {
                        spsc::readable(&svc.slots(me, Dir::Response), head).is_some()
                    } else {
                        prod.can_write(&svc.slots(me, Dir::Request), svc.lane(me, Dir::Request))
                    };
                    progress || svc.ctl().conn.load(Ordering::Relaxed) != conn
                },
            );
            // `wait_until` asked after each of its sleeps: only a wait that
            // ended without progress looks again (one fstat).
            if !moved && !self.svc.seg.intact() {
                return Err(Stop::Truncated);
            }
            if self.tag_gone(true) && self.server_state(false) == ServerState::Gone {
                return Err(Stop::Disconnected);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Stop::Timeout);
            }
        }
    }

    /// Moves every response in the lane to `buffered` (the server that
    /// sent them has gone; they are still answers).
    fn drain_lane(&mut self) {
        while let Some(r) = self.take_from_lane() {
            if let Ok(r) = r {
                self.buffered.push_back(r);
            }
        }
    }

    fn push_request(&mut self, len: usize) -> u64 {
        let mut parts = self.sending();
        parts.push(len)
    }

    /// The parts of `self` a request being sent needs (a loan holds them
    /// beside its view of the slot).
    fn sending(&mut self) -> Sending<'_> {
        Sending {
            svc: &self.svc,
            me: self.me,
            epoch: self.epoch,
            tag: self.tag,
            prod: &mut self.prod,
            next_id: &mut self.next_id,
            outstanding: &mut self.outstanding,
        }
    }

    fn request_inner<'m>(
        &mut self,
        msg: &'m [u8],
        wait: Wait,
    ) -> Result<u64, SendTimeoutError<&'m [u8]>> {
        if msg.len() > self.svc.g.slots.max_message {
            return Err(SendTimeoutError::TooLarge(msg));
        }
        match self.wait_room(wait) {
            Ok(()) => {
                let slots = self.svc.slots(self.me, Dir::Request);
                let i = spsc::index(&slots, self.prod.tail);
                let ok = slots.region.write(slots.data_offset(i), msg);
                debug_assert!(ok);
                Ok(self.push_request(msg.len()))
            }
            Err(Stop::Disconnected) => Err(SendTimeoutError::Disconnected(msg)),
            Err(Stop::Timeout) => Err(SendTimeoutError::Timeout(msg)),
            Err(Stop::Truncated) => Err(SendTimeoutError::Fault(msg, Fault::Truncated)),
        }
    }

    send_forms!(
        /// Sends `msg` as a request; returns its id, which its
        /// [`Response`] carries. Waits for room when `capacity` requests
        /// are in flight (responses arriving meanwhile are kept) or the
        /// server has not yet taken earlier ones.
        ///
        /// # Errors
        /// `Disconnected` (the message handed back) when a server came and
        /// went and none holds the service now, or when the server our
        /// requests in flight went to has gone (they are written off:
        /// send again to reach its successor); `TooLarge` above
        /// [`Client::max_message`]. A service that has never had a server
        /// keeps the request for the first one.
        try_request, request, request_timeout, request_deadline (&mut self) <'m> (msg: &'m [u8]) -> u64 = request_inner
    );

    /// Sends `msg` and waits for its response: [`request_timeout`](Self::request_timeout)
    /// then [`call_response_timeout`](Self::call_response_timeout), within
    /// one `timeout` overall.
    ///
    /// # Errors
    /// [`CallError`]: the request could not be sent, or no response came.
    pub fn call_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<Vec<u8>, CallError> {
        let deadline = Instant::now().checked_add(timeout);
        let wait = Wait::Until(deadline);
        let id = self.request_inner(msg, wait).map_err(|e| match e {
            SendTimeoutError::Timeout(_) => CallError::Timeout,
            SendTimeoutError::Disconnected(_) => CallError::Disconnected,
            SendTimeoutError::TooLarge(_) => CallError::TooLarge,
            SendTimeoutError::Fault(_, f) => CallError::Fault(f),
        })?;
        self.call_response_inner(id, wait).map_err(|e| match e {
            RecvTimeoutError::Timeout => CallError::Timeout,
            RecvTimeoutError::Disconnected | RecvTimeoutError::Lagged(_) => CallError::Disconnected,
            RecvTimeoutError::Fault(f) => CallError::Fault(f),
        })
    }

    /// Loans the slot of our next request (zero-copy): write it in place,
    /// then [`RequestLoan::commit`], which returns the request's id. Waits
    /// for room as [`Client::request_timeout`] does.
    ///
    /// # Errors
    /// `Timeout`, `Disconnected`, `Fault`.
    pub fn loan_request_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<RequestLoan<'_>, SendTimeoutError<()>> {
        match self.wait_room(Wait::timeout(timeout)) {
            Ok(()) => {}
            Err(Stop::Disconnected) => return Err(SendTimeoutError::Disconnected(())),
            Err(Stop::Timeout) => return Err(SendTimeoutError::Timeout(())),
            Err(Stop::Truncated) => return Err(SendTimeoutError::Fault((), Fault::Truncated)),
        }
        let parts = self.sending();
        let slots = parts.svc.slots(parts.me, Dir::Request);
        let i = spsc::index(&slots, parts.prod.tail);
        let view = slots
            .region
            .view_mut(slots.data_offset(i), parts.svc.g.slots.max_message)
            .expect("slot inside the lane region");
        Ok(RequestLoan { parts, view })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.svc.seg.intact() || self.svc.seg.forked() {
            return;
        }
        let me = self.svc.seg.token();
        let _ = self.svc.lane(self.me, Dir::Request).owner.compare_exchange(
            me,
            0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        self.svc.announce(0);
    }
}

/// A request slot lent by [`Client::loan_request_timeout`]: write it with
/// [`write_at`](Self::write_at), [`write_pod`](Self::write_pod) or through
/// [`view_mut`](Self::view_mut) (it derefs to a [`ViewMut`] over the whole
/// slot for reading back only); [`commit`](Self::commit) sends the first
/// `len` bytes and returns the request's id; dropped uncommitted, nothing
/// is sent.
#[derive(Debug)]
#[must_use = "nothing is sent unless the loan is committed"]
pub struct RequestLoan<'a> {
    parts: Sending<'a>,
    view: ViewMut<'a>,
}

/// What sending a request touches of a [`Client`].
#[derive(Debug)]
struct Sending<'a> {
    svc: &'a Service,
    me: usize,
    epoch: u64,
    tag: u32,
    prod: &'a mut Producer,
    next_id: &'a mut u64,
    outstanding: &'a mut VecDeque<u64>,
}

impl Sending<'_> {
    /// Commits the request of `len` bytes written at the tail; its id.
    fn push(&mut self, len: usize) -> u64 {
        let id = *self.next_id;
        *self.next_id = id.wrapping_add(1).max(1);
        let slots = self.svc.slots(self.me, Dir::Request);
        Service::commit(
            &slots,
            self.svc.lane(self.me, Dir::Request),
            self.prod,
            len,
            [id, self.epoch, u64::from(self.tag)],
        );
        self.outstanding.push_back(id);
        self.svc.server_bell().ring();
        id
    }
}

impl<'a> std::ops::Deref for RequestLoan<'a> {
    type Target = ViewMut<'a>;
    fn deref(&self) -> &ViewMut<'a> {
        &self.view
    }
}

crate::region::loan_writes!(RequestLoan);

impl RequestLoan<'_> {
    /// Sends the first `len` bytes of the slot (at most its size) as a
    /// request; returns its id.
    pub fn commit(mut self, len: usize) -> u64 {
        let len = len.min(self.view.len());
        self.parts.push(len)
    }
}

/// Why [`Client::call_timeout`] got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The time ran out (the request may still be answered: a later
    /// `recv_response` gets it).
    Timeout,
    /// No server holds the service, or the one that had the request has
    /// gone.
    Disconnected,
    /// The request is larger than the service's largest message.
    TooLarge,
    /// A peer broke the shared memory.
    Fault(Fault),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout => f.write_str("timed out waiting for the response"),
            CallError::Disconnected => f.write_str("no server holds the service"),
            CallError::TooLarge => f.write_str("the request is larger than the service allows"),
            CallError::Fault(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CallError {}

impl crate::waitset::private::Source for Server {
    fn ready(&self, _peers: bool) -> bool {
        let svc = &self.svc;
        (0..svc.g.clients)
            .any(|c| spsc::readable(&svc.slots(c, Dir::Request), self.heads[c]).is_some())
    }

    fn intact(&self) -> bool {
        self.svc.seg.is_intact()
    }

    fn arm(&self) -> Option<(&AtomicU32, u32)> {
        let bell = self.svc.server_bell();
        bell.arm().map(|v| (bell.word(), v))
    }
}
impl crate::waitset::Waitable for Server {}

impl crate::waitset::private::Source for Client {
    fn ready(&self, peers: bool) -> bool {
        if !self.buffered.is_empty() || self.response_ready() {
            return true;
        }
        if self.outstanding.is_empty() {
            // Nothing can come: not ready (a set of idle clients would
            // otherwise never sleep), though `recv_response` would return
            // `Disconnected` at once.
            return false;
        }
        // The server our requests went to has gone (killed: with `peers`).
        let ctl = self.svc.ctl();
        let word = ctl.server.load(Ordering::Acquire);
        let (epoch, token) = (server_epoch(word), server_token(word));
        if token == 0 {
            return ctl.ever.load(Ordering::Acquire) & EVER_SERVER != 0 || self.tag != 1;
        }
        epoch != self.tag || (peers && !self.svc.seg.is_alive(token))
    }

    fn intact(&self) -> bool {
        self.svc.seg.is_intact()
    }

    fn arm(&self) -> Option<(&AtomicU32, u32)> {
        let bell = self.svc.client_bell(self.me);
        bell.arm().map(|v| (bell.word(), v))
    }
}
impl crate::waitset::Waitable for Client {}

/// How often an async client asks whether its server lives (nobody rings
/// for a killed one); longer than the blocking form's slice, as for the
/// other async waits.
#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
const ASYNC_SERVER_POLL: Duration = Duration::from_millis(200);

#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
impl Server {
    /// Takes the next request without blocking the thread (feature
    /// `tokio`): the async form of [`recv_request`](Self::recv_request).
    /// Dropping the future loses nothing.
    ///
    /// # Errors
    /// As [`recv_request`](Self::recv_request).
    pub async fn recv_request_async(&mut self) -> Result<Request, crate::error::RecvError> {
        loop {
            if let Some(r) = self.next_request() {
                return r.map_err(crate::wait::recv_blocking);
            }
            let svc = &self.svc;
            let heads = &self.heads;
            let woke =
                crate::asyncio::bell_wait(svc.server_bell(), None, &|| svc.seg.intact(), || {
                    (0..svc.g.clients)
                        .any(|c| spsc::readable(&svc.slots(c, Dir::Request), heads[c]).is_some())
                })
                .await;
            if !woke && !self.svc.seg.intact() {
                return Err(crate::error::RecvError::Fault(Fault::Truncated));
            }
        }
    }
}

#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
impl Client {
    /// Sends `msg` as a request without blocking the thread (feature
    /// `tokio`): the async form of [`request`](Self::request), with the
    /// same errors. Dropping the future sends nothing.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub async fn request_async<'m>(&mut self, msg: &'m [u8]) -> Result<u64, SendError<&'m [u8]>> {
        loop {
            match self.request_inner(msg, Wait::Try) {
                Ok(id) => return Ok(id),
                Err(SendTimeoutError::Timeout(_)) => {}
                Err(e) => {
                    return Err(send_blocking(e).unwrap_or(SendError::Disconnected(msg)));
                }
            }
            let svc = &self.svc;
            let (me, head) = (self.me, self.head);
            let conn = svc.ctl().conn.load(Ordering::Relaxed);
            let slice = Instant::now().checked_add(ASYNC_SERVER_POLL);
            let full = self.outstanding.len() >= svc.g.slots.capacity;
            let tail = self.prod.tail;
            let woke =
                crate::asyncio::bell_wait(svc.client_bell(me), slice, &|| svc.seg.intact(), || {
                    let progress = if full {
                        spsc::readable(&svc.slots(me, Dir::Response), head).is_some()
                    } else {
                        // Room once the server has taken our oldest request.
                        let lane = svc.lane(me, Dir::Request);
                        tail.wrapping_sub(lane.head.load(Ordering::Acquire))
                            < svc.g.slots.capacity as u64
                    };
                    progress || svc.ctl().conn.load(Ordering::Relaxed) != conn
                })
                .await;
            if !woke && !self.svc.seg.intact() {
                return Err(SendError::Fault(msg, Fault::Truncated));
            }
        }
    }

    /// Takes the next response without blocking the thread (feature
    /// `tokio`): the async form of [`recv_response`](Self::recv_response),
    /// with the same errors (a killed server is noticed within about
    /// 200 ms). Dropping the future loses nothing.
    ///
    /// # Errors
    /// As [`recv_response`](Self::recv_response).
    pub async fn recv_response_async(&mut self) -> Result<Response, crate::error::RecvError> {
        loop {
            match self.recv_response_inner(Wait::Try) {
                Err(RecvTimeoutError::Timeout) => {}
                other => return other.map_err(crate::wait::recv_blocking),
            }
            let svc = &self.svc;
            let (me, head) = (self.me, self.head);
            let conn = svc.ctl().conn.load(Ordering::Relaxed);
            let slice = Instant::now().checked_add(ASYNC_SERVER_POLL);
            let woke =
                crate::asyncio::bell_wait(svc.client_bell(me), slice, &|| svc.seg.intact(), || {
                    spsc::readable(&svc.slots(me, Dir::Response), head).is_some()
                        || svc.ctl().conn.load(Ordering::Relaxed) != conn
                })
                .await;
            if !woke && !self.svc.seg.intact() {
                return Err(crate::error::RecvError::Fault(Fault::Truncated));
            }
        }
    }
}
