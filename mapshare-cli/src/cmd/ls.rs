//! `mapshare ls`: the segments in /dev/shm, one line each.

use std::process::ExitCode;

use anyhow::Result;
use mapshare::{segment, Location, SegmentError};
use serde_json::{json, Value};

use crate::cli::LsArgs;
use crate::exit::flat;
use crate::output::{print, print_json, table, yes_no};

/// One listed segment.
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
pub(crate) fn run(args: &LsArgs) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for name in segment::list().map_err(flat)? {
        let name = name.as_str();
        match Location::shm(name).and_then(|at| segment::inspect(&at)) {
            Ok(info) => rows.push(match &info.header {
                Ok(h) => Row {
                    name: name.to_owned(),
                    kind: Some(h.kind.to_string()),
                    size: info.size,
                    persistent: Some(h.is_persistent()),
                    attached: info.attached.len(),
                    error: None,
                },
                Err(e) => Row {
                    name: name.to_owned(),
                    kind: None,
                    size: info.size,
                    persistent: None,
                    attached: 0,
                    error: Some(e.to_string()),
                },
            }),
            // Removed since we listed it.
            Err(SegmentError::NotFound(_)) => {}
            Err(e) => rows.push(Row {
                name: name.to_owned(),
                kind: None,
                size: 0,
                persistent: None,
                attached: 0,
                error: Some(e.to_string()),
            }),
        }
    }
    if args.json {
        print_json(&Value::Array(rows.iter().map(to_json).collect()))?;
    } else if rows.is_empty() {
        print("no mapshare segments in /dev/shm\n")?;
    } else {
        let notes = rows.iter().any(|r| r.error.is_some());
        let cells: Vec<Vec<String>> = rows.iter().map(|r| to_cells(r, notes)).collect();
        let mut header = vec!["NAME", "KIND", "SIZE", "PERSISTENT", "ATTACHED"];
        if notes {
            header.push("NOTE");
        }
        print(&table(&header, &cells))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The stable JSON form: every key always present, `null` when unknown.
fn to_json(r: &Row) -> Value {
    json!({
        "name": r.name,
        "kind": r.kind,
        "size": r.size,
        "persistent": r.persistent,
        "attached": r.attached,
        "error": r.error,
    })
}

/// Table cells; with `notes`, a last column says why a segment is invalid.
fn to_cells(r: &Row, notes: bool) -> Vec<String> {
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
