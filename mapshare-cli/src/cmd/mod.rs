//! One module per verb; [`run`] dispatches.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Command;

mod demo;
mod gc;
mod info;
mod lock;
mod ls;
mod pubsub;
mod recv;
mod rm;
mod send;

/// Runs one verb; an `Err` is reported by `main`.
pub(crate) fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Demo => demo::run(),
        Command::DemoRole(args) => demo::run_role(&args),
        Command::Send(args) => send::run(&args),
        Command::Recv(args) => recv::run(&args),
        Command::Lock(args) => lock::run(&args),
        Command::Ls(args) => ls::run(&args),
        Command::Info(args) => info::run(&args),
        Command::Rm(args) => rm::run(&args),
        Command::Gc(args) => gc::run(&args),
        Command::Pub(args) => pubsub::publish(&args),
        Command::Sub(args) => pubsub::subscribe(&args),
    }
}
