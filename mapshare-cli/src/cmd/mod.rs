//! One module per verb; [`run`] dispatches.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Command, Format};

mod demo;
mod gc;
mod info;
mod lock;
mod ls;
mod pubsub;
mod recv;
mod rm;
mod send;
mod service;
mod watch;

/// Runs one verb, `ls`, `info` and `gc` printing in `format` (the global
/// `--format`, unless their hidden `--json` says JSON); an `Err` is
/// reported by `main`.
pub(crate) fn run(command: Command, format: Format) -> Result<ExitCode> {
    match command {
        Command::Demo => demo::run(),
        Command::DemoRole(args) => demo::run_role(&args),
        Command::Send(args) => send::run(&args),
        Command::Recv(args) => recv::run(&args),
        Command::Lock(args) => lock::run(&args),
        Command::Ls(args) => ls::run(&args, args.json.resolve(format)),
        Command::Info(args) => info::run(&args, args.json.resolve(format)),
        Command::Rm(args) => rm::run(&args),
        Command::Gc(args) => gc::run(&args, args.json.resolve(format)),
        Command::Pub(args) => pubsub::publish(&args),
        Command::Sub(args) => pubsub::subscribe(&args),
        Command::Serve(args) => service::serve(&args),
        Command::Request(args) => service::request(&args),
    }
}
