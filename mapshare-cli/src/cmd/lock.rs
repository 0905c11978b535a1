//! `mapshare lock NAME -- CMD [ARGS...]`: run a command under a named mutex.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::Result;
use mapshare::{LockTimeoutError, Mutex};

use crate::cli::LockArgs;
use crate::exit::{deadline, flat, timed_out, Exit, CANNOT_EXECUTE, NOT_FOUND};

/// Takes the mutex (taking it over from a holder that died), runs the
/// command with inherited stdio while holding it, and returns its status.
pub(crate) fn run(args: &LockArgs) -> Result<ExitCode> {
    let name = &args.name;
    let mutex = Mutex::options(name)
        .persistent(args.persistent)
        .open_or_create()
        .map_err(flat)?;
    let locked = match deadline(args.timeout) {
        Some(d) => mutex.lock_deadline(d),
        None => mutex.lock().map_err(LockTimeoutError::from),
    };
    let _guard = match locked {
        Ok(guard) => guard,
        Err(LockTimeoutError::OwnerDied(guard)) => {
            eprintln!("mapshare: {name}: recovered the lock from a dead owner");
            guard
        }
        Err(LockTimeoutError::Timeout) => {
            return Err(timed_out(format!("{name}: timed out waiting for the lock")));
        }
        Err(e) => return Err(flat(format!("{name}: {e}"))),
    };
    let (program, rest) = args
        .command
        .split_first()
        .expect("clap requires at least one word after --"); // `required = true`
    let shown = program.to_string_lossy();
    match Command::new(program).args(rest).status() {
        Ok(status) => Ok(ExitCode::from(exit_code(status))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Exit {
            code: NOT_FOUND,
            message: format!("{shown}: command not found"),
        }
        .into()),
        Err(e) => Err(Exit {
            code: CANNOT_EXECUTE,
            message: format!("{shown}: cannot run: {e}"),
        }
        .into()),
    }
}

/// A child's status as a shell reports it: its exit code, or 128 + the
/// number of the signal that killed it.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + (sig & 0x7f)).unwrap_or(255),
        (None, None) => 1,
    }
}
