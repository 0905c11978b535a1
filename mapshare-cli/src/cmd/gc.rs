//! `mapshare gc`: remove the segments nobody alive holds.

use std::process::ExitCode;

use anyhow::Result;
use mapshare::segment;
use serde_json::json;

use crate::cli::GcArgs;
use crate::exit::flat;
use crate::output::{print, print_json, table};

/// Runs the library's collector and says what it removed and what it
/// kept, with why.
pub(crate) fn run(args: &GcArgs) -> Result<ExitCode> {
    let report = segment::gc(args.all).map_err(flat)?;
    if args.json {
        print_json(&json!({
            "removed": report.removed,
            "removed_partial": report.removed_partial,
            "kept": report
                .kept
                .iter()
                .map(|(name, why)| json!({ "name": name, "reason": why }))
                .collect::<Vec<_>>(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for name in &report.removed {
        rows.push(vec![
            "removed".into(),
            name.clone(),
            "no live process held it".into(),
        ]);
    }
    for file in &report.removed_partial {
        rows.push(vec![
            "removed".into(),
            file.clone(),
            "left by a creator that died while initialising".into(),
        ]);
    }
    for (name, why) in &report.kept {
        rows.push(vec!["kept".into(), name.clone(), why.clone()]);
    }
    if rows.is_empty() {
        print("nothing to collect: no mapshare segments in /dev/shm\n")?;
    } else {
        print(&table(&["ACTION", "SEGMENT", "WHY"], &rows))?;
    }
    Ok(ExitCode::SUCCESS)
}
