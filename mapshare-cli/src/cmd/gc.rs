//! `mapshare gc`: remove the segments nobody alive holds.

use std::process::ExitCode;

use anyhow::Result;
use mapshare::segment;
use serde::Serialize;

use crate::cli::{Format, GcArgs};
use crate::exit::flat;
use crate::output::{print, print_json, table};

/// What `gc --format json` prints.
#[derive(Debug, Serialize)]
struct Report {
    /// Segments removed: no live process held them.
    removed: Vec<String>,
    /// Files removed that a creator left while initialising.
    removed_partial: Vec<String>,
    /// Segments kept, with why.
    kept: Vec<Kept>,
}

/// One kept segment.
#[derive(Debug, Serialize)]
struct Kept {
    name: String,
    reason: String,
}

/// Runs the library's collector and says what it removed and what it
/// kept, with why.
pub(crate) fn run(args: &GcArgs, format: Format) -> Result<ExitCode> {
    let report = segment::gc(args.all).map_err(flat)?;
    let report = Report {
        removed: report.removed,
        removed_partial: report.removed_partial,
        kept: report
            .kept
            .into_iter()
            .map(|(name, reason)| Kept { name, reason })
            .collect(),
    };
    match format {
        Format::Json => print_json(&report)?,
        Format::Text => print(&text(&report))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The text form: one line per segment, removed ones first.
fn text(report: &Report) -> String {
    let removed = report
        .removed
        .iter()
        .map(|name| ["removed", name, "no live process held it"]);
    let partial = report.removed_partial.iter().map(|file| {
        [
            "removed",
            file,
            "left by a creator that died while initialising",
        ]
    });
    let kept = report
        .kept
        .iter()
        .map(|k| ["kept", k.name.as_str(), k.reason.as_str()]);
    let rows: Vec<[&str; 3]> = removed.chain(partial).chain(kept).collect();
    if rows.is_empty() {
        format!(
            "nothing to collect: no mapshare segments in {}\n",
            crate::output::SHM_DIR
        )
    } else {
        table(&["ACTION", "SEGMENT", "WHY"], rows)
    }
}
