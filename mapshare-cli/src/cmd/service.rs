//! `mapshare serve NAME -- CMD` and `mapshare request NAME TEXT`: a local
//! request/response service for shell scripts.

use std::io::{self, Read, Write};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};
use mapshare::{Client, Options, RecvTimeoutError, Server};

use crate::cli::{RequestArgs, ServeArgs, ServiceArgs};
use crate::exit::{deadline, flat, open_error, timed_out, Exit, CANNOT_EXECUTE, NOT_FOUND};
use crate::signals::{self, wait_sliced, Waited};

fn options<K>(name: &str, s: &ServiceArgs) -> Options<K>
where
    K: mapshare::options::HasSenders
        + mapshare::options::HasCapacity
        + mapshare::options::HasMaxMessage,
{
    Options::new(name)
        .senders(s.clients)
        .capacity(s.capacity)
        .max_message(s.max_message)
}

/// Serves NAME: takes each request, runs CMD with the request's bytes on
/// its standard input, and sends what CMD writes to its standard output
/// back as the response (its standard error goes to ours). One request at
/// a time, in the order the clients' requests arrive (round-robin between
/// clients). A CMD that fails is reported on stderr; its output is still
/// the response. A response larger than the service's largest message is
/// not cut: the client gets an empty response and we say so on stderr.
pub(crate) fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let name = &args.name;
    let mut server: Server = options(name, &args.service)
        .open_or_create()
        .map_err(open_error)?;
    let (program, rest) = args
        .command
        .split_first()
        .expect("clap requires at least one word after --"); // `required = true`
    let shown = program.to_string_lossy().into_owned();
    let mut served = 0u64;
    while args.count.is_none_or(|n| served < n) {
        let got = wait_sliced(None, |d| match server.recv_request_deadline(d) {
            Err(RecvTimeoutError::Timeout) => None,
            other => Some(other),
        })?;
        let req = match got {
            Waited::Done(Ok(req)) => req,
            Waited::Done(Err(e)) => return Err(flat(format!("{name}: {e}"))),
            Waited::TimedOut => unreachable!("no deadline"),
        };
        let out = run_command(program, rest, req.data(), &shown)?;
        let out = if out.len() > server.max_message() {
            eprintln!(
                "mapshare: {name}: {shown} wrote {} bytes, more than the service's \
                 largest message ({}): sent an empty response",
                out.len(),
                server.max_message()
            );
            Vec::new()
        } else {
            out
        };
        // A client that has gone is no error: its answer is dropped.
        let _ = server.respond(req.reply_to(), &out);
        served += 1;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs CMD once with `input` on its stdin; its stdout.
fn run_command(
    program: &std::ffi::OsStr,
    rest: &[std::ffi::OsString],
    input: &[u8],
    shown: &str,
) -> Result<Vec<u8>> {
    let spawned = Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
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
    // Feed stdin from a thread, so a command that writes before it has read
    // everything cannot deadlock against us.
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input); // a command that stops reading early is fine
    });
    let mut out = Vec::new();
    let read = child.stdout.take().expect("piped").read_to_end(&mut out);
    let status = child.wait();
    signals::forward_to(None);
    let _ = feeder.join();
    read.with_context(|| format!("reading the output of {shown}"))?;
    let status = status.with_context(|| format!("waiting for {shown}"))?;
    if !status.success() {
        eprintln!("mapshare: {shown}: {status} (its output is the response)");
    }
    signals::check()?;
    Ok(out)
}

/// Sends TEXT as a request to NAME and prints the response (then a
/// newline), waiting for a server if none has come yet.
pub(crate) fn request(args: &RequestArgs) -> Result<ExitCode> {
    let name = &args.name;
    let mut client: Client = options(name, &args.service)
        .open_or_create()
        .map_err(open_error)?;
    let text = args.text.as_encoded_bytes();
    if text.len() > client.max_message() {
        return Err(flat(format!(
            "{name}: the request is {} bytes, the service takes at most {}",
            text.len(),
            client.max_message()
        )));
    }
    let until = deadline(args.timeout);
    let sent = wait_sliced(until, |d| match client.request_deadline(text, d) {
        Err(mapshare::SendTimeoutError::Timeout(_)) => None,
        other => Some(other),
    })?;
    let id = match sent {
        Waited::Done(Ok(id)) => id,
        Waited::Done(Err(mapshare::SendTimeoutError::Disconnected(_))) => {
            return Err(flat(format!(
                "{name}: no server (start one with `mapshare serve {name} -- CMD`)"
            )))
        }
        Waited::Done(Err(e)) => return Err(flat(format!("{name}: {e}"))),
        Waited::TimedOut => {
            return Err(timed_out(format!(
                "{name}: timed out waiting to send the request"
            )))
        }
    };
    let got = wait_sliced(until, |d| {
        let left = d.saturating_duration_since(std::time::Instant::now());
        match client.call_response_timeout(id, left) {
            Err(RecvTimeoutError::Timeout) => None,
            other => Some(other),
        }
    })?;
    match got {
        Waited::Done(Ok(resp)) => {
            let mut out = io::stdout().lock();
            out.write_all(&resp)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .context("writing the response to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
        Waited::Done(Err(RecvTimeoutError::Disconnected)) => Err(flat(format!(
            "{name}: the server went away before it answered"
        ))),
        Waited::Done(Err(e)) => Err(flat(format!("{name}: {e}"))),
        Waited::TimedOut => Err(timed_out(format!(
            "{name}: timed out waiting for the response"
        ))),
    }
}
