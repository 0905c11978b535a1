//! `mapshare ls`: the segments in /dev/shm, one line each.

use std::process::ExitCode;

use anyhow::Result;
use mapshare::{segment, Location, SegmentError};
use serde::Serialize;

use crate::cli::Format;
use crate::exit::flat;
use crate::output::{print, print_json, table, yes_no};

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

/// Lists the segments, inspecting each without attaching to it.
pub(crate) fn run(format: Format) -> Result<ExitCode> {
    let rows = scan()?;
    match format {
        Format::Json => print_json(&rows)?,
        Format::Text if rows.is_empty() => print(NONE)?,
        Format::Text => {
            let notes = rows.iter().any(|r| r.error.is_some());
            print(&table(&header(notes), rows.iter().map(|r| cells(r, notes))))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `ls` says of an empty /dev/shm.
const NONE: &str = "no mapshare segments in /dev/shm\n";

/// Every segment in /dev/shm.
fn scan() -> Result<Vec<Row>> {
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
                rows.push(row(None, 0, None, 0, Some(e.to_string())));
                continue;
            }
        };
        match segment::inspect(&at) {
            Ok(info) => rows.push(match &info.header {
                Ok(h) => row(
                    Some(h.kind.to_string()),
                    info.size,
                    Some(h.is_persistent()),
                    info.attached.len(),
                    None,
                ),
                Err(e) => row(None, info.size, None, 0, Some(e.to_string())),
            }),
            // Removed since we listed it.
            Err(SegmentError::NotFound(_)) => {}
            Err(e) => rows.push(row(None, 0, None, 0, Some(e.to_string()))),
        }
    }
    Ok(rows)
}

/// The table's header; with `notes`, a last column says why a segment is
/// invalid.
fn header(notes: bool) -> Vec<&'static str> {
    let mut header = vec!["NAME", "KIND", "SIZE", "PERSISTENT", "ATTACHED"];
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
