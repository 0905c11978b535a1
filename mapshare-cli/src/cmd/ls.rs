//! `mapshare ls`: the segments in /dev/shm, one line each; with `--watch`,
//! refreshed, with the message rate of channels and pub/sub rings.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Result;
use mapshare::{segment, Kind, Location, SegmentError};
use serde::Serialize;

use super::watch::{self, per_second, Identity, Rates};
use crate::cli::{Format, LsArgs};
use crate::exit::flat;
use crate::output::{json_line, print, print_json, table, utc_time, yes_no};

/// One listed segment: what `ls --format json` prints of it (every key
/// always present, `null` when unknown).
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    kind: Option<String>,
    size: u64,
    persistent: Option<bool>,
    attached: usize,
    /// Why the segment could not be read or is not valid.
    error: Option<String>,
}

/// A listed segment whose message counter can be read: a channel or a
/// pub/sub ring that a live process holds, or that is persistent
/// (attaching to a dead non-persistent one would remove it).
#[derive(Debug)]
struct Counter {
    kind: Kind,
    at: Location,
    identity: Identity,
}

/// Lists the segments, inspecting each without attaching to it.
pub(crate) fn run(args: &LsArgs, format: Format) -> Result<ExitCode> {
    if args.watch.watch {
        let mut rates = Rates::new();
        return watch::run(&args.watch, format, || {
            frame(&mut rates, format, args.watch.interval)
        });
    }
    let rows: Vec<Row> = scan()?.into_iter().map(|(row, _)| row).collect();
    match format {
        Format::Json => print_json(&rows)?,
        Format::Text if rows.is_empty() => print(NONE)?,
        Format::Text => {
            let notes = rows.iter().any(|r| r.error.is_some());
            print(&table(
                &header(notes, &[]),
                rows.iter().map(|r| cells(r, notes)),
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `ls` says of an empty /dev/shm.
#[cfg(not(windows))]
const NONE: &str = "no mapshare segments in /dev/shm\n";
/// What `ls` says of an empty segment directory.
#[cfg(windows)]
const NONE: &str = "no mapshare segments in %LOCALAPPDATA%\\mapshare\n";

/// Every segment in /dev/shm, with its counter when it has one to read.
fn scan() -> Result<Vec<(Row, Option<Counter>)>> {
    let mut rows = Vec::new();
    for name in segment::list().map_err(flat)? {
        let name = name.as_str();
        let row = |kind, size, persistent, attached, error| Row {
            name: name.to_owned(),
            kind,
            size,
            persistent,
            attached,
            error,
        };
        let at = match Location::shm(name) {
            Ok(at) => at,
            Err(e) => {
                rows.push((row(None, 0, None, 0, Some(e.to_string())), None));
                continue;
            }
        };
        match segment::inspect(&at) {
            Ok(info) => rows.push(match &info.header {
                Ok(h) => {
                    let held = !info.attached.is_empty() || h.is_persistent();
                    let counted = matches!(h.kind, Kind::Channel | Kind::PubSub | Kind::Service);
                    let counter = (held && counted).then_some(Counter {
                        kind: h.kind,
                        at,
                        identity: (h.creator_pid, h.created_unix_ms),
                    });
                    let r = row(
                        Some(h.kind.to_string()),
                        info.size,
                        Some(h.is_persistent()),
                        info.attached.len(),
                        None,
                    );
                    (r, counter)
                }
                Err(e) => (row(None, info.size, None, 0, Some(e.to_string())), None),
            }),
            // Removed since we listed it.
            Err(SegmentError::NotFound(_)) => {}
            Err(e) => rows.push((row(None, 0, None, 0, Some(e.to_string())), None)),
        }
    }
    Ok(rows)
}

/// One refresh of `ls --watch` as JSON Lines: the time and the segments.
#[derive(Debug, Serialize)]
struct Frame {
    time: String,
    segments: Vec<WatchedRow>,
}

/// A segment in `ls --watch`: its `ls` row, its message counter (sent on
/// a channel, published on a ring) and that counter's rate per second
/// since the last refresh (`null` for other kinds, and at first).
#[derive(Debug, Serialize)]
struct WatchedRow {
    #[serde(flatten)]
    row: Row,
    messages: Option<u64>,
    rate: Option<f64>,
}

/// One refresh of `ls --watch`.
fn frame(rates: &mut Rates<String>, format: Format, every: std::time::Duration) -> Result<String> {
    rates.refresh();
    let time = utc_time(SystemTime::now());
    let segments: Vec<WatchedRow> = scan()?
        .into_iter()
        .map(|(row, counter)| {
            let messages = counter.and_then(|c| {
                let n = messages(&c)?;
                Some((n, rates.rate(row.name.clone(), c.identity, n)))
            });
            WatchedRow {
                row,
                messages: messages.map(|(n, _)| n),
                rate: messages.and_then(|(_, r)| r),
            }
        })
        .collect();
    if format == Format::Json {
        return json_line(&Frame { time, segments });
    }
    let mut out = format!("mapshare ls at {time}, every {every:?} (Ctrl-C ends)\n");
    if segments.is_empty() {
        out.push_str(NONE);
        return Ok(out);
    }
    let notes = segments.iter().any(|s| s.row.error.is_some());
    let rows = segments.iter().map(|s| {
        let mut cells = cells(&s.row, false);
        cells.push(s.messages.map_or_else(|| "-".to_owned(), |n| n.to_string()));
        cells.push(if s.messages.is_some() {
            per_second(s.rate)
        } else {
            "-".to_owned()
        });
        if notes {
            cells.push(s.row.error.clone().unwrap_or_default());
        }
        cells
    });
    out.push_str(&table(&header(notes, &["MESSAGES", "RATE"]), rows));
    Ok(out)
}

/// The messages sent on a channel, or published on a ring, since it was
/// made; `None` if they cannot be read (gone, say).
fn messages(c: &Counter) -> Option<u64> {
    match c.kind {
        Kind::Channel => mapshare::channel_stats(&c.at)
            .ok()
            .map(|s| s.lanes.iter().map(|l| l.sent).sum()),
        Kind::PubSub => mapshare::pubsub_stats(&c.at).ok().map(|s| s.published),
        Kind::Service => mapshare::service_stats(&c.at)
            .ok()
            .map(|s| s.clients.iter().map(|c| c.requests_sent).sum()),
        _ => None,
    }
}

/// The table's header: the columns, `extra` ones, and with `notes` a last
/// one saying why a segment is invalid.
fn header<'a>(notes: bool, extra: &[&'a str]) -> Vec<&'a str> {
    let mut header = vec!["NAME", "KIND", "SIZE", "PERSISTENT", "ATTACHED"];
    header.extend_from_slice(extra);
    if notes {
        header.push("NOTE");
    }
    header
}

/// Table cells; with `notes`, a last column says why a segment is invalid.
fn cells(r: &Row, notes: bool) -> Vec<String> {
    let mut cells = vec![
        r.name.clone(),
        r.kind.clone().unwrap_or_else(|| "?".to_owned()),
        r.size.to_string(),
        r.persistent.map_or("?", yes_no).to_owned(),
        r.attached.to_string(),
    ];
    if notes {
        cells.push(r.error.clone().unwrap_or_default());
    }
    cells
}
