//! Request/response services across hosts: the server of service NAME on
//! one host (`serve`), clients on others (`call`).
//!
//! On the server's host the bridge is a client of the service and answers
//! Zenoh queries on `mapshare/NAME/service`: each query's payload is sent
//! as a request, and the response goes back as the query's reply. On a
//! clients' host the bridge is the service's server: each request a local
//! client sends becomes a query, and the reply is answered into that
//! client's lane. Both hosts keep the plain API: a `Server` (or `mapshare
//! serve`) there, `Client`s (or `mapshare request`) here.
//!
//! # Who is the server, and when it is `Disconnected`
//! Each `serve` bridge holds a Zenoh liveliness token while it runs. A
//! `call` bridge takes the server role of its local service only while
//! such a token exists and that bridge's service fits (the same largest
//! message); when the last token goes (the bridge killed, or the link
//! lost) and none is back within the grace period (`--grace`), it gives
//! the role up, and local clients with requests in flight
//! see `Disconnected`, as they do when a local server dies. A request whose
//! server on the other host died (or that found none) is answered with a
//! Zenoh error; the `call` bridge then gives the role up and takes it
//! again at once (a new server epoch): the clients that were waiting see
//! `Disconnected`, and may send again.
//!
//! # Delivery
//! At most once: a request crosses once, as a Zenoh query, and is never
//! retried (the server may have executed it). A `call` bridge forwards
//! every request at once (a server answers them in the order it likes);
//! the `serve` side keeps at most the service's capacity of them in
//! flight to the local server and queues the rest in its memory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use mapshare::{Client, RecvError, ReplyTo, Server, TrySendError};
use tokio::sync::{mpsc, watch};
use zenoh::query::{ConsolidationMode, Query, QueryTarget};
use zenoh::sample::{Locality, SampleKind};
use zenoh::{Session, Wait};

use crate::channel::BytesSpec;
use crate::{check_remote, stopped, Counts, Meta, META_TIMEOUT};

/// How often a `call` bridge tries again to take the server role while a
/// local server holds it.
const ROLE_RETRY: Duration = Duration::from_secs(1);

/// How often a `serve` bridge tries again to send a request into a full
/// request lane.
const LANE_RETRY: Duration = Duration::from_millis(5);

/// Requests a `serve` bridge queues beyond the service's capacity before
/// it refuses more (a busy answer, not an unbounded queue).
const MAX_WAITING: usize = 4096;

/// The key of the queries of service `name`.
pub fn service_key(name: &str) -> String {
    format!("mapshare/{name}/service")
}

/// The liveliness token of the `serve` bridge `origin` of service `name`.
pub fn service_live_key(name: &str, origin: u64) -> String {
    format!("mapshare/{name}/service/live/{origin:016x}")
}

/// What a bridge says of its service on `mapshare/NAME/meta`.
pub(crate) fn service_meta(origin: u64, role: &str, stats: &mapshare::ServiceStats) -> Meta {
    Meta::bytes(origin, "service", role, stats.capacity, stats.max_message)
}

/// Joins service `name` as a client (creating it if needed): the `serve`
/// side's local end, taken before the bridge says `ready`.
pub(crate) fn open_serve(name: &str, spec: BytesSpec) -> Result<Client> {
    spec.apply(Client::options(name))
        .open_or_create()
        .map_err(|e| anyhow!("{name}: joining the service as a client: {e}"))
}

fn claim(name: &str, spec: BytesSpec) -> Result<Server, mapshare::SegmentError> {
    spec.apply(Server::options(name)).open_or_create()
}

/// The `serve` side: queries from other hosts to the local server.
pub(crate) async fn serve_side(
    session: Session,
    origin: u64,
    mut client: Client,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let name = counts.name.clone();
    let key = service_key(&name);
    let queryable = session
        .declare_queryable(key.clone())
        .allowed_origin(Locality::Remote)
        .await
        .map_err(|e| anyhow!("declaring a queryable on {key}: {e}"))?;
    let _token = session
        .liveliness()
        .declare_token(service_live_key(&name, origin))
        .await
        .map_err(|e| anyhow!("liveliness token for {key}: {e}"))?;
    // Queries sent to the local server, by request id; queries waiting for
    // room (the client's capacity), oldest first.
    let mut pending: HashMap<u64, Query> = HashMap::new();
    let mut waiting: VecDeque<Query> = VecDeque::new();
    let max = client.max_message();
    loop {
        // As many waiting queries as the client has room for go out now.
        // The request lane full with room in flight (requests a dead server
        // left there): try again shortly, nothing else would wake us.
        let mut lane_full = false;
        while client.in_flight() < client.capacity() {
            let Some(q) = waiting.pop_front() else { break };
            let body = q.payload().map(|p| p.to_bytes()).unwrap_or_default();
            match client.try_request(&body) {
                Ok(id) => {
                    counts.received.fetch_add(1, Ordering::Relaxed);
                    pending.insert(id, q);
                }
                Err(TrySendError::Full(_)) => {
                    waiting.push_front(q);
                    lane_full = true;
                    break;
                }
                Err(TrySendError::TooLarge(_)) => {
                    refuse(
                        &name,
                        &q,
                        &format!(
                            "a request of {} bytes; the service {name} takes at most {max}",
                            body.len()
                        ),
                    )
                    .await;
                }
                Err(TrySendError::Disconnected(_)) => {
                    refuse(
                        &name,
                        &q,
                        &format!("no server of {name} on the serving host"),
                    )
                    .await;
                }
                Err(e) => refuse(&name, &q, &format!("sending the request: {e}")).await,
            }
        }
        tokio::select! {
            () = stopped(&mut stop) => break,
            q = queryable.recv_async() => match q {
                Ok(q) if waiting.len() >= MAX_WAITING => {
                    refuse(&name, &q, &format!(
                        "the serving bridge of {name} has {MAX_WAITING} requests waiting; try again"
                    )).await;
                }
                Ok(q) => waiting.push_back(q),
                Err(_) => break, // the session closed
            },
            () = tokio::time::sleep(LANE_RETRY), if lane_full => {}
            r = client.recv_response_async(), if !pending.is_empty() => match r {
                Ok(resp) => {
                    let Some(q) = pending.remove(&resp.id()) else { continue };
                    let key = q.key_expr().clone();
                    let data = resp.into_data();
                    match tokio::task::block_in_place(|| q.reply(key, data).wait()) {
                        Ok(()) => {
                            counts.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => eprintln!("mapshare-bridge: {name}: replying: {e}"),
                    }
                }
                Err(RecvError::Fault(f)) if f != mapshare::Fault::Truncated => {
                    // One corrupt response (mapshare skipped it): said; its
                    // caller waits on, as a local one would.
                    eprintln!("mapshare-bridge: {name}: a response: {f}");
                }
                Err(e) => {
                    // The server went with our requests: each caller is told.
                    let why = match e {
                        RecvError::Disconnected => format!("the server of {name} went away"),
                        e => format!("the service {name}: {e}"),
                    };
                    eprintln!(
                        "mapshare-bridge: {name}: {why} with {} request(s) in flight",
                        pending.len()
                    );
                    for (id, q) in pending.drain() {
                        client.abandon(id);
                        refuse(&name, &q, &why).await;
                    }
                }
            },
        }
    }
    // Stopping: what is still in flight is answered by nobody; the
    // callers are told so rather than left waiting.
    for q in pending.into_values().chain(waiting) {
        refuse(&name, &q, "the serving bridge stopped").await;
    }
    Ok(())
}

async fn refuse(name: &str, q: &Query, why: &str) {
    if let Err(e) = tokio::task::block_in_place(|| q.reply_err(why.to_string()).wait()) {
        eprintln!("mapshare-bridge: {name}: answering an error: {e}");
    }
}

/// What became of one forwarded request: the response, or why there is
/// none. `generation`: the server role it was taken under.
type Answer = (u64, ReplyTo, Result<Vec<u8>, String>);

/// The `call` side: local clients' requests to the server on another host.
pub(crate) async fn call_side(
    session: Session,
    spec: BytesSpec,
    meta: Meta,
    (timeout, grace): (Duration, Duration),
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let name = counts.name.clone();
    let key = service_key(&name);
    let live_key = format!("mapshare/{name}/service/live/*");
    let live = session
        .liveliness()
        .declare_subscriber(&live_key)
        .history(true)
        .await
        .map_err(|e| anyhow!("liveliness subscriber on {live_key}: {e}"))?;
    let mut servers: HashSet<String> = HashSet::new();
    let mut server: Option<Server> = None;
    // Bumped each time the role is given up: answers to requests taken
    // under an earlier one are dropped (their clients were told).
    let mut generation = 0u64;
    let (tx, mut answers) = mpsc::unbounded_channel::<Answer>();
    let mut told = String::new();
    let mut fit = false;
    let mut claim_said = false;
    // When the last serving bridge's token went: the role is given up at
    // `drop_at` unless one is back first.
    let mut drop_at: Option<tokio::time::Instant> = None;
    loop {
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        if !fit && !servers.is_empty() {
            fit = check_remote(&session, &name, &meta, "serve", false, &mut told).await;
            if !fit && server.take().is_some() {
                // A serving bridge that does not fit joined: its answers
                // could not reach our clients; they see the server gone.
                generation += 1;
            }
        }
        if fit && server.is_none() && !servers.is_empty() {
            match claim(&name, spec) {
                Ok(s) => {
                    claim_said = false;
                    server = Some(s);
                }
                Err(e) => {
                    if !claim_said {
                        eprintln!(
                            "mapshare-bridge: {name}: cannot take the server role here ({e}); \
                             local clients are served by the local server meanwhile"
                        );
                        claim_said = true;
                    }
                }
            }
        }
        let retry = server.is_none() && !servers.is_empty();
        // Biased: answers that came before a serving bridge's token went
        // are delivered before the role is given up.
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return Ok(()),
            Some((g, to, answer)) = answers.recv() => {
                if g != generation {
                    continue;
                }
                let Some(s) = server.as_mut() else { continue };
                match answer {
                    Ok(body) => match s.try_respond(to, &body) {
                        Ok(()) => {
                            counts.received.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Disconnected(_)) => {} // the client went
                        Err(e) => {
                            // The answer cannot reach its client (too large, or a
                            // client that broke the protocol): rather than leave it
                            // waiting forever, the clients waiting see the server go.
                            eprintln!(
                                "mapshare-bridge: {name}: responding: {e}; giving the server role up"
                            );
                            server = None;
                            generation += 1;
                        }
                    },
                    Err(why) => {
                        // No server answered there: the local clients waiting
                        // are told as for a local server that died.
                        eprintln!("mapshare-bridge: {name}: {why}; local clients waiting see the server gone");
                        server = None;
                        generation += 1;
                    }
                }
            }
            s = live.recv_async() => {
                let Ok(s) = s else { return Ok(()) };
                let k = s.key_expr().as_str().to_string();
                if s.kind() == SampleKind::Delete {
                    servers.remove(&k);
                    fit = false;
                    if servers.is_empty() && server.is_some() {
                        eprintln!(
                            "mapshare-bridge: {name}: no serving bridge is reachable; local \
                             clients see the server gone in {grace:?} unless one is back"
                        );
                        drop_at = Some(tokio::time::Instant::now() + grace);
                    }
                } else {
                    servers.insert(k);
                    fit = false;
                    if drop_at.take().is_some() {
                        eprintln!("mapshare-bridge: {name}: a serving bridge is back");
                    }
                }
            }
            () = tokio::time::sleep_until(drop_at.unwrap_or(far)), if drop_at.is_some() => {
                drop_at = None;
                if servers.is_empty() && server.take().is_some() {
                    generation += 1;
                    eprintln!(
                        "mapshare-bridge: {name}: no serving bridge is reachable; \
                         local clients see the server gone"
                    );
                }
            }
            () = tokio::time::sleep(if fit { ROLE_RETRY } else { META_TIMEOUT }), if retry => {}
            r = recv_request(&mut server) => match r {
                Ok(req) => {
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    let to = req.reply_to();
                    let (session, key, tx) = (session.clone(), key.clone(), tx.clone());
                    let g = generation;
                    let name = name.clone();
                    tokio::spawn(async move {
                        let get = session
                            .get(&key)
                            .payload(req.into_data())
                            .target(QueryTarget::BestMatching)
                            .consolidation(ConsolidationMode::None)
                            .allowed_destination(Locality::Remote)
                            .timeout(timeout);
                        let asked = tokio::time::Instant::now();
                        let answer = match tokio::task::block_in_place(|| get.wait()) {
                            Ok(replies) => match replies.recv_async().await {
                                Ok(reply) => match reply.result() {
                                    Ok(sample) => Ok(sample.payload().to_bytes().into_owned()),
                                    Err(e) => Err(String::from_utf8_lossy(&e.payload().to_bytes()).into_owned()),
                                },
                                Err(_) if asked.elapsed() >= timeout => Err(format!(
                                    "no answer from the server of {name} within --call-timeout ({timeout:?})"
                                )),
                                Err(_) => Err(format!(
                                    "no answer from a serving bridge of {name} (gone, or the link lost)"
                                )),
                            },
                            Err(e) => Err(format!("querying {name}: {e}")),
                        };
                        let _ = tx.send((g, to, answer));
                    });
                }
                Err(RecvError::Fault(f)) if f != mapshare::Fault::Truncated => {
                    // One corrupt request (mapshare skipped it): said, and on.
                    eprintln!("mapshare-bridge: {name}: a request: {f}");
                }
                Err(e) => {
                    return Err(anyhow!("{name}: taking requests: {e}"));
                }
            },
        }
    }
}

/// The next request of the server role, if held; never, if not.
async fn recv_request(server: &mut Option<Server>) -> Result<mapshare::Request, RecvError> {
    match server {
        Some(s) => s.recv_request_async().await,
        None => std::future::pending().await,
    }
}
