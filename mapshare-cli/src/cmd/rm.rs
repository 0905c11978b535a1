//! `mapshare rm NAME...`: unlink segments by name.

use std::process::ExitCode;

use anyhow::Result;
use mapshare::{segment, Location};

use crate::cli::RmArgs;

/// Unlinks every name given; reports each failure on its own line and
/// exits 1 if there was any (the other names are still removed).
pub(crate) fn run(args: &RmArgs) -> Result<ExitCode> {
    let mut failed = false;
    for name in &args.names {
        if let Err(e) = Location::shm(name).and_then(|at| segment::unlink(&at)) {
            eprintln!("mapshare: {e}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
