//! `mapshare`: the command-line tool of the mapshare library.
//!
//! Errors are one line on stderr, `mapshare: <what>: <why>`. Exit status:
//! 0 success, 1 error, 2 usage error, 3 timed out; `lock NAME -- CMD`
//! returns CMD's status.

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
