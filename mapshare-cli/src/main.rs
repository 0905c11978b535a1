//! `mapshare`: the command-line tool of the mapshare library.
//!
//! Errors are one line on stderr, `mapshare: <what>: <why>`. Exit status:
//! 0 success, 1 error, 2 usage error, 3 timed out; `lock NAME -- CMD`
//! returns CMD's status.

// Unsafe code is denied, and allowed in one module: the Windows job
// object of `lock` (three system calls, no crate for them).
#![deny(unsafe_code)]

mod cli;
mod cmd;
mod exit;
mod output;
mod signals;
#[cfg(windows)]
#[allow(unsafe_code)]
mod winjob;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::usage(&e),
    };
    signals::install();
    match cmd::run(cli.command, cli.format) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
