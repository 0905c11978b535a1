//! `mapshare lock NAME -- CMD [ARGS...]`: run a command under a named mutex.

use std::io;
#[cfg(unix)]
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::Result;
use mapshare::{LockTimeoutError, Mutex};

use crate::cli::LockArgs;
use crate::exit::{deadline, flat, open_error, timed_out, Exit, CANNOT_EXECUTE, NOT_FOUND};
use crate::signals::{self, wait_sliced, Waited};

/// Takes the mutex (taking it over from a holder that died), runs the
/// command with inherited stdio while holding it, and returns its status.
///
/// The command inherits a duplicate of the mutex handle's liveness
/// descriptor (see `Mutex::liveness_fd`), as `flock(1)` passes its lock's
/// descriptor: if this process is killed (even with SIGKILL), the lock
/// stays held until the command, and whatever inherited the descriptor
/// from it, has exited. Only then does the next locker take it over, and
/// it is told so. Signals that reach us while the command runs are
/// forwarded to it (see `signals`), and we wait for it.
///
/// On Windows byte locks belong to the process that took them, so the lock
/// lasts as long as this process; the command runs in a kill-on-close job
/// with it (see `winjob`): if this process is killed, the command and
/// everything it started end with it, before the next locker takes the
/// lock over (and is told so). Never two guarded commands at once, on
/// either system.
pub(crate) fn run(args: &LockArgs) -> Result<ExitCode> {
    let name = &args.name;
    let mutex = Mutex::options(name)
        .persistent(args.persistent)
        .open_or_create()
        .map_err(open_error)?;
    let locked = wait_sliced(deadline(args.timeout), |d| match mutex.lock_deadline(d) {
        Err(LockTimeoutError::Timeout) => None,
        other => Some(other),
    })?;
    let _guard = match locked {
        Waited::Done(Ok(guard)) => guard,
        Waited::Done(Err(LockTimeoutError::OwnerDied(guard))) => {
            eprintln!(
                "mapshare: {name}: recovered the lock from a dead owner \
                 (a holder died holding it; what it guarded may be half done)"
            );
            guard
        }
        Waited::TimedOut => {
            return Err(timed_out(format!("{name}: timed out waiting for the lock")));
        }
        Waited::Done(Err(e)) => return Err(flat(format!("{name}: {e}"))),
    };
    let (program, rest) = args
        .command
        .split_first()
        .expect("clap requires at least one word after --"); // `required = true`
    let shown = program.to_string_lossy();
    // Without O_CLOEXEC: the command keeps our registry slot, and with it
    // the lock, alive for as long as it runs. (Linux only, as the library's
    // backend is; elsewhere `open_or_create` above has already failed.)
    #[cfg(target_os = "linux")]
    let inherited = rustix::io::dup(mutex.liveness_fd())
        .map_err(|e| flat(format!("{name}: duplicating the lock's descriptor: {e}")))?;
    #[cfg(not(target_os = "linux"))]
    let inherited: Option<std::fs::File> = None; // Windows: see the doc comment above.
    #[cfg(windows)]
    if let Err(e) = crate::winjob::die_together() {
        // Refused where this process is in a job that forbids nesting:
        // the command would outlive a killed `mapshare`, so do not run it.
        return Err(flat(format!(
            "{name}: cannot tie {shown} to this process (a job object): {e}"
        )));
    }
    let spawned = Command::new(program).args(rest).spawn();
    drop(inherited);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Exit {
                code: NOT_FOUND,
                message: format!("{shown}: command not found"),
            }
            .into())
        }
        Err(e) => {
            return Err(Exit {
                code: CANNOT_EXECUTE,
                message: format!("{shown}: cannot run: {e}"),
            }
            .into())
        }
    };
    signals::forward_to(Some(child.id()));
    let status = child.wait();
    signals::forward_to(None);
    let status = status.map_err(|e| flat(format!("{shown}: waiting for it: {e}")))?;
    Ok(ExitCode::from(exit_code(status)))
}

/// A child's status as a shell reports it: its exit code, or 128 + the
/// number of the signal that killed it.
fn exit_code(status: ExitStatus) -> u8 {
    #[cfg(unix)]
    let signal = status.signal();
    #[cfg(not(unix))]
    let signal: Option<i32> = None; // no signals: every status has a code
    match (status.code(), signal) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + (sig & 0x7f)).unwrap_or(255),
        (None, None) => 1,
    }
}
