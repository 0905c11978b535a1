//! `mapshare info NAME`: everything the header and registry say about one
//! segment, read without attaching to it; with `--watch`, its queue (or
//! its processes) refreshed, with the message rate.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use mapshare::layout::header::Header;
use mapshare::segment::{self, SegmentInfo};
use mapshare::{Kind, Location};
use serde::Serialize;

use super::watch::{self, per_second, Rates};
use crate::cli::{Format, InfoArgs};
use crate::exit::flat;
use crate::output::{json_line, octal_mode, print, print_json, table, utc, utc_time, yes_no};

/// What `info --format json` prints: every key always present, `null`
/// when unknown.
#[derive(Debug, Serialize)]
struct Info {
    /// The segment's name; `null` for a file.
    name: Option<String>,
    path: String,
    size: u64,
    kind: &'static str,
    layout: Layout,
    payload_offset: u64,
    payload_len: u64,
    persistent: bool,
    ready: bool,
    creator_pid: u32,
    created_unix_ms: u64,
    created: String,
    owner_uid: u32,
    mode: String,
    attached: Vec<Process>,
    /// A channel's or a ring's queue; `null` for other kinds, and when
    /// it was not read (see [`read`]).
    queue: Option<Queue>,
}

/// The payload's layout fingerprint.
#[derive(Debug, Serialize)]
struct Layout {
    name: String,
    size: u64,
    align: u64,
}

/// One attached process.
#[derive(Debug, Serialize)]
struct Process {
    slot: u32,
    pid: u32,
    since_unix_ms: u64,
    since: String,
}

/// Queue details: a channel's or a pub/sub ring's, told apart by keys.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Queue {
    Channel(ChannelQueue),
    PubSub(PubSubQueue),
    Service(ServiceQueue),
}

/// A request/response service.
#[derive(Debug, Serialize)]
struct ServiceQueue {
    /// Requests in flight per client.
    capacity: usize,
    max_message: usize,
    /// Requests waiting for the server, all clients together.
    depth: u64,
    server_alive: bool,
    /// Servers that have taken the name so far.
    server_epoch: u32,
    /// Requests sent since creation, all clients together.
    requests: u64,
    clients: Vec<ServiceClient>,
}

/// One client block of a service (only those ever used are listed).
#[derive(Debug, Serialize)]
struct ServiceClient {
    client: usize,
    alive: bool,
    requests_waiting: u64,
    responses_waiting: u64,
    requests_sent: u64,
}

/// A channel's queue.
#[derive(Debug, Serialize)]
struct ChannelQueue {
    /// Slots per lane.
    capacity: usize,
    max_message: usize,
    /// Messages waiting, all lanes together.
    depth: u64,
    receiver_alive: bool,
    lanes: Vec<Lane>,
}

/// One lane (sender) of a channel.
#[derive(Debug, Serialize)]
struct Lane {
    lane: usize,
    waiting: u64,
    sent: u64,
    sender_alive: bool,
}

/// A pub/sub ring.
#[derive(Debug, Serialize)]
struct PubSubQueue {
    capacity: usize,
    max_message: usize,
    /// `lossless` or `overwrite-oldest`.
    policy: &'static str,
    published: u64,
    publisher_alive: bool,
    /// The most messages a live subscriber has yet to read.
    depth: u64,
    subscribers: Vec<Subscriber>,
}

/// One subscriber slot of a ring.
#[derive(Debug, Serialize)]
struct Subscriber {
    slot: usize,
    pid: u32,
    /// Messages published that it has not read.
    lag: u64,
    missed: u64,
    alive: bool,
}

impl Queue {
    fn channel(st: mapshare::ChannelStats) -> Queue {
        Queue::Channel(ChannelQueue {
            capacity: st.capacity,
            max_message: st.max_message,
            depth: st.lanes.iter().map(|l| l.waiting).sum(),
            receiver_alive: st.receiver_alive,
            lanes: st
                .lanes
                .iter()
                .enumerate()
                .map(|(lane, l)| Lane {
                    lane,
                    waiting: l.waiting,
                    sent: l.sent,
                    sender_alive: l.sender_alive,
                })
                .collect(),
        })
    }

    fn pubsub(st: mapshare::PubSubStats) -> Queue {
        Queue::PubSub(PubSubQueue {
            capacity: st.capacity,
            max_message: st.max_message,
            policy: match st.policy {
                mapshare::Policy::Lossless => "lossless",
                _ => "overwrite-oldest",
            },
            published: st.published,
            publisher_alive: st.publisher_alive,
            depth: st.depth(),
            subscribers: st
                .subscribers
                .iter()
                .map(|s| Subscriber {
                    slot: s.slot,
                    pid: s.pid,
                    lag: s.behind,
                    missed: s.missed,
                    alive: s.alive,
                })
                .collect(),
        })
    }

    fn service(st: mapshare::ServiceStats) -> Queue {
        Queue::Service(ServiceQueue {
            capacity: st.capacity,
            max_message: st.max_message,
            depth: st.clients.iter().map(|c| c.requests_waiting).sum(),
            server_alive: st.server_alive,
            server_epoch: st.server_epoch,
            requests: st.clients.iter().map(|c| c.requests_sent).sum(),
            clients: st
                .clients
                .iter()
                .enumerate()
                .filter(|(_, c)| c.alive || c.requests_sent != 0)
                .map(|(client, c)| ServiceClient {
                    client,
                    alive: c.alive,
                    requests_waiting: c.requests_waiting,
                    responses_waiting: c.responses_waiting,
                    requests_sent: c.requests_sent,
                })
                .collect(),
        })
    }

    /// Messages sent (a channel, all lanes), published (a ring) or
    /// requests sent (a service) since it was made.
    fn messages(&self) -> u64 {
        match self {
            Queue::Channel(c) => c.lanes.iter().map(|l| l.sent).sum(),
            Queue::PubSub(p) => p.published,
            Queue::Service(s) => s.requests,
        }
    }

    /// Capacity and depth lines, in text.
    fn text(&self) -> String {
        let (capacity, max_message, depth) = match self {
            Queue::Channel(c) => (c.capacity, c.max_message, c.depth),
            Queue::PubSub(p) => (p.capacity, p.max_message, p.depth),
            Queue::Service(s) => (s.capacity, s.max_message, s.depth),
        };
        let mut out = format!(
            "{:<12} {capacity} messages of up to {max_message} bytes\n{:<12} {depth} waiting\n",
            "capacity", "depth"
        );
        match self {
            Queue::Channel(c) => out.push_str(&indent(&lanes_table(c))),
            Queue::PubSub(p) => {
                let _ = writeln!(
                    out,
                    "{:<12} {}, {} published, publisher {}",
                    "pubsub",
                    p.policy,
                    p.published,
                    if p.publisher_alive { "alive" } else { "gone" }
                );
                out.push_str(&indent(&subscribers_table(p)));
            }
            Queue::Service(s) => {
                let _ = writeln!(
                    out,
                    "{:<12} server {} (epoch {}), {} requests sent",
                    "service",
                    alive(s.server_alive),
                    s.server_epoch,
                    s.requests
                );
                out.push_str(&indent(&clients_table(s)));
            }
        }
        out
    }
}

/// A service's client blocks, in text (nothing without clients).
fn clients_table(s: &ServiceQueue) -> String {
    if s.clients.is_empty() {
        return String::new();
    }
    let rows = s.clients.iter().map(|c| {
        [
            c.client.to_string(),
            c.requests_waiting.to_string(),
            c.responses_waiting.to_string(),
            c.requests_sent.to_string(),
            c.alive.to_string(),
        ]
    });
    table(&["CLIENT", "REQUESTS", "RESPONSES", "SENT", "ALIVE"], rows)
}

/// A channel's lanes, in text (nothing without lanes).
fn lanes_table(c: &ChannelQueue) -> String {
    if c.lanes.is_empty() {
        return String::new();
    }
    let rows = c.lanes.iter().map(|l| {
        [
            l.lane.to_string(),
            l.waiting.to_string(),
            l.sent.to_string(),
            l.sender_alive.to_string(),
        ]
    });
    table(&["LANE", "WAITING", "SENT", "SENDER"], rows)
}

/// A ring's subscribers, in text (nothing without subscribers).
fn subscribers_table(p: &PubSubQueue) -> String {
    if p.subscribers.is_empty() {
        return String::new();
    }
    let rows = p.subscribers.iter().map(|s| {
        [
            s.slot.to_string(),
            s.pid.to_string(),
            s.lag.to_string(),
            s.missed.to_string(),
            s.alive.to_string(),
        ]
    });
    table(&["SUB", "PID", "LAG", "MISSED", "ALIVE"], rows)
}

/// The attached processes, in text (nothing without any).
fn processes_table(attached: &[Process]) -> String {
    if attached.is_empty() {
        return String::new();
    }
    let rows = attached
        .iter()
        .map(|a| [a.slot.to_string(), a.pid.to_string(), a.since.clone()]);
    table(&["SLOT", "PID", "SINCE"], rows)
}

/// Each line of `text` indented by two spaces.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Inspects the segment (read-only, through the library's pure header
/// validator) and prints it; a corrupt header is an error, never a crash.
pub(crate) fn run(args: &InfoArgs, format: Format) -> Result<ExitCode> {
    let at = match (&args.name, &args.file) {
        (_, Some(path)) => Location::file(path),
        (Some(name), None) => Location::shm(name).map_err(flat)?,
        (None, None) => unreachable!("clap requires NAME or --file"),
    };
    if args.watch.watch {
        let mut rates = Rates::new();
        return watch::run(&args.watch, format, || {
            frame(&at, &mut rates, format, args.watch.interval)
        });
    }
    let (info, header) = read(&at)?;
    match format {
        Format::Json => print_json(&info)?,
        Format::Text => {
            let mut text = human(&info, &header);
            if let Some(q) = &info.queue {
                text.push_str(&q.text());
            }
            print(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the segment at `at`: its header, registry and, for a channel or
/// a ring, its queue. Reading the queue attaches briefly, so only for a
/// segment someone holds or that is persistent (attaching to one whose
/// last process died would, by the lifetime rule, remove it).
fn read(at: &Location) -> Result<(Info, Header)> {
    let info = segment::inspect(at).map_err(flat)?;
    let header = match &info.header {
        Ok(h) => h.clone(),
        Err(e) => return Err(flat(format!("{}: {e}", info.location))),
    };
    let queue = if info.attached.is_empty() && !header.is_persistent() {
        None
    } else {
        match header.kind {
            Kind::Channel => mapshare::channel_stats(at).ok().map(Queue::channel),
            Kind::PubSub => mapshare::pubsub_stats(at).ok().map(Queue::pubsub),
            Kind::Service => mapshare::service_stats(at).ok().map(Queue::service),
            _ => None,
        }
    };
    Ok((describe(&info, &header, queue), header))
}

/// The JSON form of what [`read`] found.
fn describe(info: &SegmentInfo, h: &Header, queue: Option<Queue>) -> Info {
    let (name, path) = names(&info.location);
    Info {
        name,
        path,
        size: info.size,
        kind: h.kind.as_str(),
        layout: Layout {
            name: h.layout.name().to_owned(),
            size: h.layout.size(),
            align: h.layout.align(),
        },
        payload_offset: h.payload_offset,
        payload_len: h.payload_len,
        persistent: h.is_persistent(),
        ready: h.is_ready(),
        creator_pid: h.creator_pid,
        created_unix_ms: h.created_unix_ms,
        created: utc(h.created_unix_ms),
        owner_uid: info.owner_uid,
        mode: octal_mode(info.mode),
        attached: info
            .attached
            .iter()
            .map(|a| Process {
                slot: a.slot,
                pid: a.pid,
                since_unix_ms: a.since_unix_ms,
                since: utc(a.since_unix_ms),
            })
            .collect(),
        queue,
    }
}

/// The segment's name (`None` for a file) and the path of its file.
fn names(location: &Location) -> (Option<String>, String) {
    match location {
        Location::Shm(n) => (
            Some(n.to_string()),
            format!(
                "{}{}mapshare.{n}",
                crate::output::SHM_DIR,
                std::path::MAIN_SEPARATOR
            ),
        ),
        Location::File(p) => (None, p.display().to_string()),
    }
}

/// `N live process(es)`.
fn live(count: usize) -> String {
    format!("{count} live process{}", if count == 1 { "" } else { "es" })
}

/// The text form: one `field  value` line each, then the attached processes.
fn human(info: &Info, h: &Header) -> String {
    let segment = match &info.name {
        Some(n) => format!("{n} ({})", info.path),
        None => info.path.clone(),
    };
    let fields = [
        ("segment", segment),
        ("kind", h.kind.to_string()),
        (
            "size",
            format!(
                "{} bytes (payload {} bytes at offset {})",
                info.size, h.payload_len, h.payload_offset
            ),
        ),
        ("layout", h.layout.to_string()),
        ("persistent", yes_no(info.persistent).to_owned()),
        (
            "state",
            if info.ready { "ready" } else { "initialising" }.to_owned(),
        ),
        ("creator pid", h.creator_pid.to_string()),
        ("created", info.created.clone()),
        ("owner uid", info.owner_uid.to_string()),
        ("mode", info.mode.clone()),
        ("attached", live(info.attached.len())),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        let _ = writeln!(out, "{k:<12} {v}");
    }
    out.push_str(&indent(&processes_table(&info.attached)));
    out
}

/// One refresh of `info --watch` in JSON Lines: the `info` object, the
/// time, and the queue's message counter (sent on a channel, published on
/// a ring) with its rate per second since the last refresh (`null` for
/// other kinds, and at first).
#[derive(Debug, Serialize)]
struct Watched {
    time: String,
    #[serde(flatten)]
    info: Info,
    messages: Option<u64>,
    rate: Option<f64>,
}

/// One refresh of `info --watch`.
fn frame(at: &Location, rates: &mut Rates<()>, format: Format, every: Duration) -> Result<String> {
    rates.refresh();
    let time = utc_time(SystemTime::now());
    let (info, h) = read(at)?;
    let messages = info.queue.as_ref().map(Queue::messages);
    let rate = messages.and_then(|n| rates.rate((), (h.creator_pid, h.created_unix_ms), n));
    if format == Format::Json {
        return json_line(&Watched {
            time,
            info,
            messages,
            rate,
        });
    }
    let what = info.name.clone().unwrap_or_else(|| info.path.clone());
    let mut out = format!(
        "{what} ({}) at {time}, every {every:?} (Ctrl-C ends)\n",
        h.kind
    );
    let _ = writeln!(out, "{:<12} {}", "attached", live(info.attached.len()));
    let rate = per_second(rate);
    match &info.queue {
        Some(Queue::Channel(c)) => {
            let _ = writeln!(
                out,
                "{:<12} {} waiting ({} per lane)",
                "depth", c.depth, c.capacity
            );
            let _ = writeln!(
                out,
                "{:<12} {} messages, {rate}",
                "sent",
                messages.unwrap_or(0)
            );
            let _ = writeln!(out, "{:<12} {}", "receiver", alive(c.receiver_alive));
            out.push_str(&indent(&lanes_table(c)));
        }
        Some(Queue::PubSub(p)) => {
            let _ = writeln!(
                out,
                "{:<12} {} waiting ({} slots)",
                "depth", p.depth, p.capacity
            );
            let _ = writeln!(out, "{:<12} {} messages, {rate}", "published", p.published);
            let _ = writeln!(
                out,
                "{:<12} {} ({})",
                "publisher",
                alive(p.publisher_alive),
                p.policy
            );
            out.push_str(&indent(&subscribers_table(p)));
        }
        Some(q @ Queue::Service(_)) => out.push_str(&q.text()),
        None if matches!(h.kind, Kind::Channel | Kind::PubSub | Kind::Service) => {
            let why = if info.attached.is_empty() && !info.persistent {
                "not read: no live process holds it"
            } else {
                "could not be read"
            };
            let _ = writeln!(out, "{:<12} {why}", "queue");
        }
        None => out.push_str(&indent(&processes_table(&info.attached))),
    }
    Ok(out)
}

/// `alive` or `gone`.
fn alive(b: bool) -> &'static str {
    if b {
        "alive"
    } else {
        "gone"
    }
}
