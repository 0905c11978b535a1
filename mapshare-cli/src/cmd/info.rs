//! `mapshare info NAME`: everything the header and registry say about one
//! segment, read without attaching to it.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use mapshare::segment::{self, Attached, SegmentInfo};
use mapshare::Location;
use serde_json::{json, Value};

use crate::cli::InfoArgs;
use crate::exit::flat;
use crate::output::{octal_mode, print, print_json, table, utc, yes_no};

/// Inspects the segment (read-only, through the library's pure header
/// validator) and prints it; a corrupt header is an error, never a crash.
pub(crate) fn run(args: &InfoArgs) -> Result<ExitCode> {
    let opts = match (&args.name, &args.file) {
        (_, Some(path)) => Location::file(path),
        (Some(name), None) => Location::shm(name).map_err(flat)?,
        (None, None) => unreachable!("clap requires NAME or --file"),
    };
    let info = segment::inspect(&opts).map_err(flat)?;
    let what = info.location.to_string();
    let header = match &info.header {
        Ok(h) => h,
        Err(e) => return Err(flat(format!("{what}: {e}"))),
    };
    // Queue details for channels and pub/sub rings. Reading them attaches
    // briefly, so only for a segment someone holds (attaching to one whose
    // last process died would, by the lifetime rule, remove it).
    let details = if info.attached.is_empty() && !header.is_persistent() {
        None
    } else {
        match header.kind {
            mapshare::Kind::Channel => mapshare::channel_stats(&opts).ok().map(channel_json),
            mapshare::Kind::PubSub => mapshare::pubsub_stats(&opts).ok().map(pubsub_json),
            _ => None,
        }
    };
    if args.json {
        let (name, path) = names(&info.location);
        print_json(&json!({
            "name": name,
            "path": path,
            "size": info.size,
            "kind": header.kind.as_str(),
            "layout": {
                "name": header.layout.name(),
                "size": header.layout.size(),
                "align": header.layout.align(),
            },
            "payload_offset": header.payload_offset,
            "payload_len": header.payload_len,
            "persistent": header.is_persistent(),
            "ready": header.is_ready(),
            "creator_pid": header.creator_pid,
            "created_unix_ms": header.created_unix_ms,
            "created": utc(header.created_unix_ms),
            "owner_uid": info.owner_uid,
            "mode": octal_mode(info.mode),
            "attached": info.attached.iter().map(attached_json).collect::<Vec<Value>>(),
            "queue": details,
        }))?;
    } else {
        let mut text = human(&info, header);
        if let Some(d) = &details {
            text.push_str(&human_queue(d));
        }
        print(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The segment's name (`None` for a file) and the path of its file.
fn names(location: &Location) -> (Option<String>, String) {
    match location {
        Location::Shm(n) => (Some(n.to_string()), format!("/dev/shm/mapshare.{n}")),
        Location::File(p) => (None, p.display().to_string()),
    }
}

/// One attached process as JSON.
fn attached_json(a: &Attached) -> Value {
    json!({
        "slot": a.slot,
        "pid": a.pid,
        "since_unix_ms": a.since_unix_ms,
        "since": utc(a.since_unix_ms),
    })
}

/// The text form: one `field  value` line each, then the attached processes.
fn human(info: &SegmentInfo, h: &mapshare::layout::header::Header) -> String {
    let (name, path) = names(&info.location);
    let segment = match name {
        Some(n) => format!("{n} ({path})"),
        None => path,
    };
    let count = info.attached.len();
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
        ("persistent", yes_no(h.is_persistent()).to_owned()),
        (
            "state",
            if h.is_ready() {
                "ready"
            } else {
                "initialising"
            }
            .to_owned(),
        ),
        ("creator pid", h.creator_pid.to_string()),
        ("created", utc(h.created_unix_ms)),
        ("owner uid", info.owner_uid.to_string()),
        ("mode", octal_mode(info.mode)),
        (
            "attached",
            format!("{count} live process{}", if count == 1 { "" } else { "es" }),
        ),
    ];
    let mut out = String::new();
    for (k, v) in fields {
        let _ = writeln!(out, "{k:<12} {v}");
    }
    if count > 0 {
        let rows: Vec<Vec<String>> = info
            .attached
            .iter()
            .map(|a| vec![a.slot.to_string(), a.pid.to_string(), utc(a.since_unix_ms)])
            .collect();
        for line in table(&["SLOT", "PID", "SINCE"], &rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// A channel's queue, as JSON.
fn channel_json(st: mapshare::ChannelStats) -> Value {
    json!({
        "capacity": st.capacity,
        "max_message": st.max_message,
        "depth": st.lanes.iter().map(|l| l.waiting).sum::<u64>(),
        "receiver_alive": st.receiver_alive,
        "lanes": st.lanes.iter().enumerate().map(|(i, l)| json!({
            "lane": i, "waiting": l.waiting, "sent": l.sent, "sender_alive": l.sender_alive,
        })).collect::<Vec<Value>>(),
    })
}

/// A pub/sub ring, as JSON.
fn pubsub_json(st: mapshare::PubSubStats) -> Value {
    json!({
        "capacity": st.capacity,
        "max_message": st.max_message,
        "policy": match st.policy { mapshare::Policy::Lossless => "lossless", _ => "overwrite-oldest" },
        "published": st.published,
        "publisher_alive": st.publisher_alive,
        "depth": st.depth(),
        "subscribers": st.subscribers.iter().map(|s| json!({
            "slot": s.slot, "pid": s.pid, "lag": s.behind, "missed": s.missed, "alive": s.alive,
        })).collect::<Vec<Value>>(),
    })
}

/// The queue details in text form, from their JSON.
fn human_queue(d: &Value) -> String {
    let mut out = String::new();
    let field = |k: &str| d.get(k).map(|v| v.to_string()).unwrap_or_default();
    let _ = writeln!(
        out,
        "{:<12} {} messages of up to {} bytes",
        "capacity",
        field("capacity"),
        field("max_message")
    );
    let _ = writeln!(out, "{:<12} {} waiting", "depth", field("depth"));
    if let Some(p) = d.get("policy").and_then(Value::as_str) {
        let _ = writeln!(
            out,
            "{:<12} {p}, {} published, publisher {}",
            "pubsub",
            field("published"),
            if d.get("publisher_alive") == Some(&Value::Bool(true)) {
                "alive"
            } else {
                "gone"
            }
        );
    }
    let rows: Vec<Vec<String>> = if let Some(subs) = d.get("subscribers").and_then(Value::as_array)
    {
        subs.iter()
            .map(|s| {
                ["slot", "pid", "lag", "missed", "alive"]
                    .iter()
                    .map(|k| s[*k].to_string())
                    .collect()
            })
            .collect()
    } else if let Some(lanes) = d.get("lanes").and_then(Value::as_array) {
        lanes
            .iter()
            .map(|l| {
                ["lane", "waiting", "sent", "sender_alive"]
                    .iter()
                    .map(|k| l[*k].to_string())
                    .collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    let head: &[&str] = if d.get("subscribers").is_some() {
        &["SUB", "PID", "LAG", "MISSED", "ALIVE"]
    } else {
        &["LANE", "WAITING", "SENT", "SENDER"]
    };
    if !rows.is_empty() {
        for line in table(head, &rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}
