//! End-to-end tests of the `mapshare` binary: real processes, real segments
//! in /dev/shm. Every test uses its own segment names (prefix + pid + test
//! name) and removes them on drop, even after a failure, so the tests run in
//! parallel and leave nothing behind. Times are only bounded from below;
//! the watchdog that kills a hung child is a failsafe, not an assertion.

mod support;
use support::gc_lock;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mapshare::{segment, Location, Options, Shared};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mapshare");

/// A child that runs longer than this is killed and the test fails.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Several scripts, right-to-left text, combining marks, a ZWJ sequence,
/// 4-byte emoji: anything counted in chars instead of bytes would show.
const MIXED: &str = "Grüße, Мир, 世界, مرحبا, नमस्ते, 🦀 👩‍👩‍👧 e\u{301} ½ ﷺ";

/// A segment name unique to this test process and test.
fn unique(test: &str) -> String {
    format!("clitest-{}-{test}", std::process::id())
}

/// Where the segment `name` lives (on Windows in `%LOCALAPPDATA%\mapshare`,
/// or the temp directory's `mapshare` folder, as the library puts it).
fn shm_path(name: &str) -> PathBuf {
    #[cfg(windows)]
    {
        std::env::var_os("LOCALAPPDATA")
            .filter(|v| !v.is_empty())
            .map_or_else(std::env::temp_dir, PathBuf::from)
            .join("mapshare")
            .join(format!("mapshare.{name}"))
    }
    #[cfg(not(windows))]
    {
        PathBuf::from(format!("/dev/shm/mapshare.{name}"))
    }
}

/// A command that exits 0 at once (`true`; on Windows `cmd /c exit 0`).
#[cfg(not(windows))]
const TRUE: &[&str] = &["true"];
#[cfg(windows)]
const TRUE: &[&str] = &["cmd", "/c", "exit", "0"];

/// `args`, then `--`, then [`TRUE`].
fn then_true<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.push("--");
    v.extend_from_slice(TRUE);
    v
}

/// Unlinks the named segments (and a scratch directory) on drop.
struct Cleanup {
    names: Vec<String>,
    dir: Option<PathBuf>,
}

impl Cleanup {
    fn new(names: &[&str]) -> Cleanup {
        Cleanup {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            dir: None,
        }
    }

    /// A fresh scratch directory, removed on drop.
    fn scratch(&mut self, test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(unique(test));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        self.dir = Some(dir.clone());
        dir
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = segment::unlink(&Location::shm(name).unwrap());
            let _ = std::fs::remove_file(shm_path(name));
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What a finished `mapshare` run gave.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    fn stdout_str(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).expect("stdout is JSON")
    }
}

/// Starts `mapshare ARGS` with piped output.
fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_retrying()
        .expect("starting mapshare")
}

/// Waits for a child started by [`spawn`], killing it after [`WATCHDOG`]
/// (its stdout is empty in the result if the caller took it).
fn finish(mut child: Child) -> Run {
    let out = child.stdout.take();
    let mut err = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut out) = out {
            let _ = out.read_to_end(&mut v);
        }
        v
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog: mapshare ran for more than {WATCHDOG:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Runs `mapshare ARGS` to completion.
fn mapshare(args: &[&str]) -> Run {
    finish(spawn(args))
}

/// Polls `cond` until it holds; panics after [`WATCHDOG`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WATCHDOG, "watchdog: never saw {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts that stderr is exactly one line, starting with `mapshare: `.
fn assert_one_line_error(run: &Run) {
    assert!(
        run.stderr.starts_with("mapshare: ")
            && run.stderr.ends_with('\n')
            && run.stderr.lines().count() == 1,
        "not a one-line error: {:?}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{:?}", run.stderr);
}

/// Number of live processes attached to `name` (0 if it does not exist).
fn attached(name: &str) -> usize {
    segment::inspect(&Location::shm(name).unwrap()).map_or(0, |i| i.attached.len())
}

/// `mapshare lock NAME [EXTRA...] -- sh -c '...; exec sleep 60'`, once it
/// holds the lock: the shell writes its pid (the sleep's, after `exec`) and
/// touches a flag file only when the command runs, that is under the lock.
struct Holder {
    child: Option<Child>,
    /// Unix: where the command writes its pid.
    #[cfg(unix)]
    pid_file: PathBuf,
    /// Windows: the mailbox the command waits on.
    #[cfg(windows)]
    sleeper: String,
}

#[cfg(unix)]
impl Holder {
    fn start(name: &str, extra: &[&str], dir: &Path) -> Holder {
        let pid_file = dir.join(format!("{name}.pid"));
        let flag = dir.join(format!("{name}.flag"));
        let script = format!(
            "echo $$ > '{}' && touch '{}' && exec sleep 60",
            pid_file.display(),
            flag.display()
        );
        let mut args = vec!["lock", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", &script]);
        let child = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn_retrying()
            .expect("starting the holder");
        let mut holder = Holder {
            child: Some(child),
            pid_file,
        };
        wait_until("the holder running its command", || {
            if let Some(status) = holder.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the holder exited early: {status}");
            }
            flag.exists()
        });
        holder
    }

    /// SIGKILLs the mapshare process, then the `sleep` it left orphaned.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let pid = pid.trim().to_owned();
            let _ = Command::new("kill")
                .args(["-9", &pid])
                .stderr(Stdio::null())
                .status();
            // The command holds the lock's descriptor (as flock(1)'s does):
            // wait until it has died (gone, or a zombie: its files closed).
            let stat = format!("/proc/{pid}/stat");
            wait_until("the holder's command to die", || {
                std::fs::read_to_string(&stat).map_or(true, |s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
                })
            });
        }
    }
}

/// On Windows the holder's command is another `mapshare recv` waiting on
/// the mailbox `NAME-sleep` (it is running once that mailbox exists), and
/// `kill` ends it with a send: killing the holder (`TerminateProcess`)
/// does not end its command, and the lock is free at once (byte locks
/// belong to the process that took them).
#[cfg(windows)]
impl Holder {
    fn start(name: &str, extra: &[&str], _dir: &Path) -> Holder {
        let sleeper = format!("{name}-sleep");
        let mut args = vec!["lock", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", BIN, "recv", &sleeper, "--timeout", "60"]);
        let child = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn_retrying()
            .expect("starting the holder");
        let mut holder = Holder {
            child: Some(child),
            sleeper,
        };
        wait_until("the holder running its command", || {
            if let Some(status) = holder.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the holder exited early: {status}");
            }
            shm_path(&holder.sleeper).exists()
        });
        holder
    }

    /// Kills the mapshare process (`TerminateProcess`), then ends the
    /// `recv` it left running.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
            let _ = mapshare(&["send", &self.sleeper, "done"]);
            wait_until("the holder's command to end", || {
                attached(&self.sleeper) == 0
            });
            let _ = mapshare(&["rm", &self.sleeper]);
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- send/recv

#[test]
fn send_then_recv_prints_exact_text_and_newline() {
    let name = unique("send-recv");
    let _c = Cleanup::new(&[&name]);
    let sent = mapshare(&["send", &name, "hello, world"]);
    assert_eq!(sent.code(), 0, "{sent:?}");
    assert!(sent.stdout.is_empty() && sent.stderr.is_empty(), "{sent:?}");
    assert!(shm_path(&name).exists(), "send makes a persistent mailbox");

    let got = mapshare(&["recv", &name, "--timeout", "10"]);
    assert_eq!(got.code(), 0, "{got:?}");
    assert_eq!(got.stdout, b"hello, world\n");
    assert!(got.stderr.is_empty(), "{got:?}");

    // The message was taken: the mailbox is empty now.
    let again = mapshare(&["recv", &name, "--timeout", "0.1"]);
    assert_eq!(again.code(), 3, "{again:?}");
}

#[test]
fn recv_started_first_blocks_until_send() {
    let name = unique("recv-first");
    let _c = Cleanup::new(&[&name]);
    let receiver = spawn(&["recv", &name, "--timeout", "50"]);
    // The receiver creates the mailbox, then sleeps on it.
    wait_until("the receiver's mailbox", || shm_path(&name).exists());
    wait_until("the receiver attached", || attached(&name) == 1);
    thread::sleep(Duration::from_millis(200));
    let mut receiver = receiver;
    assert!(
        receiver.try_wait().unwrap().is_none(),
        "recv returned before anything was sent"
    );

    let sent = mapshare(&["send", &name, "late but here"]);
    assert_eq!(sent.code(), 0, "{sent:?}");
    let got = finish(receiver);
    assert_eq!(got.code(), 0, "{got:?}");
    assert_eq!(got.stdout, b"late but here\n");
}

#[test]
fn multi_script_text_round_trips_byte_for_byte() {
    let name = unique("mixed");
    let _c = Cleanup::new(&[&name]);
    assert!(MIXED.len() > MIXED.chars().count(), "needs multibyte text");
    let sent = mapshare(&["send", &name, MIXED]);
    assert_eq!(sent.code(), 0, "{sent:?}");
    let got = mapshare(&["recv", &name, "--timeout", "10"]);
    assert_eq!(got.code(), 0, "{got:?}");
    let mut expected = MIXED.as_bytes().to_vec();
    expected.push(b'\n');
    assert_eq!(got.stdout, expected);
}

#[test]
fn text_exactly_at_capacity_fits_and_leading_hyphen_is_text() {
    let name = unique("exact-cap");
    let _c = Cleanup::new(&[&name]);
    let text = "-é-世-🦀-"; // 13 bytes, starts with a hyphen
    assert_eq!(text.len(), 13);
    let sent = mapshare(&["send", &name, "--capacity", "13", text]);
    assert_eq!(sent.code(), 0, "{sent:?}");
    let got = mapshare(&["recv", &name, "--timeout", "10"]);
    assert_eq!(got.stdout, format!("{text}\n").as_bytes());
}

#[test]
#[cfg(unix)] // Unix by nature: arguments as raw bytes (Windows arguments are UTF-16: a non-Unicode text is refused).
fn bytes_that_are_not_utf8_are_delivered_raw() {
    use std::os::unix::ffi::OsStrExt;

    let name = unique("raw-bytes");
    let _c = Cleanup::new(&[&name]);
    let raw: &[u8] = b"ok \xff\xfe \xc3( end";
    let sent = finish(
        Command::new(BIN)
            .arg("send")
            .arg(&name)
            .arg(std::ffi::OsStr::from_bytes(raw))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn_retrying()
            .unwrap(),
    );
    assert_eq!(sent.code(), 0, "{sent:?}");
    let got = mapshare(&["recv", &name, "--timeout", "10"]);
    assert_eq!(got.code(), 0, "{got:?}");
    assert_eq!(got.stdout, [raw, b"\n"].concat());
}

#[test]
fn recv_timeout_on_missing_mailbox_exits_3_and_leaves_nothing() {
    let name = unique("recv-timeout");
    let _c = Cleanup::new(&[&name]);
    let start = Instant::now();
    let got = mapshare(&["recv", &name, "--timeout", "0.3"]);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(got.code(), 3, "{got:?}");
    assert!(got.stdout.is_empty());
    assert_eq!(
        got.stderr,
        format!("mapshare: {name}: timed out waiting for a message\n")
    );
    assert!(
        !shm_path(&name).exists(),
        "recv left the mailbox it created"
    );
}

#[test]
fn recv_timeout_keeps_a_mailbox_it_did_not_create() {
    let name = unique("recv-keeps");
    let _c = Cleanup::new(&[&name]);
    assert_eq!(mapshare(&["send", &name, "one"]).code(), 0);
    assert_eq!(mapshare(&["recv", &name]).stdout, b"one\n");
    let got = mapshare(&["recv", &name, "--timeout", "0.1"]);
    assert_eq!(got.code(), 3, "{got:?}");
    assert!(
        shm_path(&name).exists(),
        "recv removed a mailbox it did not create"
    );
}

#[test]
fn send_larger_than_capacity_exits_1_and_stores_nothing() {
    let name = unique("too-large");
    let _c = Cleanup::new(&[&name]);
    // A new mailbox: refused before anything is created.
    let text = "x".repeat(11);
    let sent = mapshare(&["send", &name, &text, "--capacity", "10"]);
    assert_eq!(sent.code(), 1, "{sent:?}");
    assert_one_line_error(&sent);
    assert!(
        sent.stderr.contains("11 bytes") && sent.stderr.contains("10 bytes"),
        "{:?}",
        sent.stderr
    );
    assert!(
        !shm_path(&name).exists(),
        "a refused send created the mailbox"
    );

    // An existing mailbox of 16 bytes: its capacity decides, nothing is cut.
    assert_eq!(
        mapshare(&["send", &name, "a", "--capacity", "16"]).code(),
        0
    );
    assert_eq!(mapshare(&["recv", &name]).stdout, b"a\n");
    let big = "é".repeat(9); // 18 bytes, 9 chars
    let sent = mapshare(&["send", &name, &big, "--capacity", "4096"]);
    assert_eq!(sent.code(), 1, "{sent:?}");
    assert_one_line_error(&sent);
    assert!(
        sent.stderr.contains("18 bytes") && sent.stderr.contains("16 bytes"),
        "{:?}",
        sent.stderr
    );
    let got = mapshare(&["recv", &name, "--timeout", "0.2"]);
    assert_eq!(got.code(), 3, "something was stored: {got:?}");
}

#[test]
fn send_timeout_on_full_mailbox_exits_3_and_keeps_the_first() {
    let name = unique("full");
    let _c = Cleanup::new(&[&name]);
    assert_eq!(mapshare(&["send", &name, "first"]).code(), 0);
    let start = Instant::now();
    let sent = mapshare(&["send", &name, "second", "--timeout", "0.2"]);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(sent.code(), 3, "{sent:?}");
    assert_eq!(
        sent.stderr,
        format!("mapshare: {name}: timed out waiting for room in the mailbox\n")
    );
    assert_eq!(mapshare(&["recv", &name]).stdout, b"first\n");
}

#[test]
fn send_waits_for_room_then_delivers_in_order() {
    let name = unique("wait-room");
    let _c = Cleanup::new(&[&name]);
    assert_eq!(mapshare(&["send", &name, "1"]).code(), 0);
    let second = spawn(&["send", &name, "2", "--timeout", "50"]);
    wait_until("the second sender attached", || attached(&name) == 1);
    assert_eq!(mapshare(&["recv", &name]).stdout, b"1\n");
    assert_eq!(finish(second).code(), 0);
    assert_eq!(mapshare(&["recv", &name]).stdout, b"2\n");
}

// --------------------------------------------------------------------- lock

#[test]
fn lock_returns_the_command_exit_status() {
    let name = unique("lock-status");
    let _c = Cleanup::new(&[&name]);
    #[cfg(unix)]
    let run = mapshare(&["lock", &name, "--", "sh", "-c", "exit 7"]);
    #[cfg(windows)]
    let run = mapshare(&["lock", &name, "--", "cmd", "/c", "exit", "7"]);
    assert_eq!(run.code(), 7, "{run:?}");
    let run = mapshare(&then_true(&["lock", &name]));
    assert_eq!(run.code(), 0, "{run:?}");
    #[cfg(unix)]
    {
        let run = mapshare(&[
            "lock",
            &name,
            "--",
            "sh",
            "-c",
            "printf 'out %s' \"$0\"",
            "é",
        ]);
        assert_eq!(run.stdout, "out é".as_bytes(), "inherits stdout and args");
    }
    // Windows: no sh; the command is mapshare itself, printing a message
    // it is given the name of.
    #[cfg(windows)]
    {
        let inner = format!("{name}-inner");
        assert_eq!(mapshare(&["send", &inner, "out é"]).code(), 0);
        let run = mapshare(&["lock", &name, "--", BIN, "recv", &inner]);
        assert_eq!(run.stdout, "out é\n".as_bytes(), "inherits stdout and args");
        assert_eq!(mapshare(&["rm", &inner]).code(), 0);
    }
    assert!(
        !shm_path(&name).exists(),
        "a non-persistent mutex stays behind"
    );
}

#[test]
#[cfg(unix)] // Unix by nature: signals.
fn lock_reports_a_signal_death_as_128_plus_signo() {
    let name = unique("lock-signal");
    let _c = Cleanup::new(&[&name]);
    let run = mapshare(&["lock", &name, "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(run.code(), 128 + 9, "{run:?}");
}

#[test]
fn lock_with_missing_command_exits_127() {
    let name = unique("lock-127");
    let _c = Cleanup::new(&[&name]);
    let run = mapshare(&["lock", &name, "--", "no-such-command-mapshare-test"]);
    assert_eq!(run.code(), 127, "{run:?}");
    assert_one_line_error(&run);
    assert!(run
        .stderr
        .contains("no-such-command-mapshare-test: command not found"));
}

#[test]
fn lock_waiter_takes_over_from_a_killed_holder() {
    let name = unique("lock-takeover");
    let mut c = Cleanup::new(&[&name]);
    let dir = c.scratch("lock-takeover");
    let mut holder = Holder::start(&name, &[], &dir);
    let waiter = spawn(&then_true(&["lock", &name, "--timeout", "50"]));
    wait_until("the waiter attached", || attached(&name) == 2);
    holder.kill();
    let run = finish(waiter);
    assert_eq!(run.code(), 0, "{run:?}");
    assert_eq!(
        run.stderr,
        format!("mapshare: {name}: recovered the lock from a dead owner (a holder died holding it; what it guarded may be half done)\n")
    );
    assert!(!shm_path(&name).exists(), "the last one out removes it");
}

#[test]
fn lock_after_a_killed_holder_succeeds() {
    let name = unique("lock-after-kill");
    let mut c = Cleanup::new(&[&name]);
    let dir = c.scratch("lock-after-kill");
    let mut holder = Holder::start(&name, &[], &dir);
    holder.kill();
    // Non-persistent: with its last process dead the mutex is gone, and
    // this locker starts afresh.
    let run = mapshare(&then_true(&["lock", &name, "--timeout", "10"]));
    assert_eq!(run.code(), 0, "{run:?}");
}

#[test]
fn persistent_lock_reports_a_holder_killed_earlier() {
    let name = unique("lock-persistent");
    let mut c = Cleanup::new(&[&name]);
    let dir = c.scratch("lock-persistent");
    let mut holder = Holder::start(&name, &["--persistent"], &dir);
    holder.kill();
    assert!(
        shm_path(&name).exists(),
        "a persistent mutex outlives its holder"
    );
    let run = mapshare(&then_true(&["lock", &name, "--timeout", "10"]));
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr.contains("recovered the lock from a dead owner"),
        "{:?}",
        run.stderr
    );
    // Released cleanly this time.
    let run = mapshare(&then_true(&["lock", &name, "--timeout", "10"]));
    assert_eq!((run.code(), run.stderr.as_str()), (0, ""));
}

#[test]
fn lock_timeout_while_held_exits_3_without_running() {
    let name = unique("lock-timeout");
    let mut c = Cleanup::new(&[&name]);
    let dir = c.scratch("lock-timeout");
    let _holder = Holder::start(&name, &[], &dir);
    let marker = dir.join("ran");
    let marker_arg = marker.display().to_string();
    let start = Instant::now();
    let run = mapshare(&[
        "lock",
        &name,
        "--timeout",
        "0.3",
        "--",
        "touch",
        &marker_arg,
    ]);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(run.code(), 3, "{run:?}");
    assert_eq!(
        run.stderr,
        format!("mapshare: {name}: timed out waiting for the lock\n")
    );
    assert!(!marker.exists(), "ran the command without the lock");
}

#[test]
#[cfg(unix)] // Unix by nature: its read-modify-write is a POSIX sh script.
fn lock_serialises_read_modify_write() {
    let name = unique("lock-counter");
    let mut c = Cleanup::new(&[&name]);
    let dir = c.scratch("lock-counter");
    let counter = dir.join("n");
    std::fs::write(&counter, "0").unwrap();
    let script = format!(
        "n=$(cat '{0}'); sleep 0.02; echo $((n + 1)) > '{0}'",
        counter.display()
    );
    let kids: Vec<Child> = (0..6)
        .map(|_| spawn(&["lock", &name, "--", "sh", "-c", &script]))
        .collect();
    for kid in kids {
        let run = finish(kid);
        assert_eq!(run.code(), 0, "{run:?}");
    }
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "6");
}

// ------------------------------------------------------ ls / info / rm / gc

#[test]
fn ls_and_info_json_describe_a_segment() {
    let name = unique("ls-info");
    let _c = Cleanup::new(&[&name]);
    let value = Shared::<u64>::create(&name).unwrap();

    let ls = mapshare(&["ls", "--json"]);
    assert_eq!(ls.code(), 0, "{ls:?}");
    let list = ls.json();
    let entry = list
        .as_array()
        .expect("an array")
        .iter()
        .find(|e| e["name"] == name.as_str())
        .expect("ls lists the segment");
    assert_eq!(entry["kind"], "shared");
    assert_eq!(entry["persistent"], false);
    assert_eq!(entry["attached"], 1);
    assert!(entry["size"].as_u64().unwrap() >= 4096 + 8);
    assert_eq!(entry["error"], Value::Null);

    let info = mapshare(&["info", &name, "--json"]);
    assert_eq!(info.code(), 0, "{info:?}");
    let v = info.json();
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["kind"], "shared");
    assert_eq!(v["layout"]["name"], "u64");
    assert_eq!(v["layout"]["size"], 8);
    assert_eq!(v["layout"]["align"], 8);
    assert_eq!(v["persistent"], false);
    assert_eq!(v["creator_pid"], std::process::id());
    assert_eq!(v["mode"], "0600");
    let attached = v["attached"].as_array().unwrap();
    assert_eq!(attached.len(), 1);
    assert_eq!(attached[0]["pid"], std::process::id());

    let human = mapshare(&["info", &name]);
    assert_eq!(human.code(), 0, "{human:?}");
    let text = human.stdout_str();
    for needle in [name.as_str(), "shared", "u64 (size 8, align 8)", "0600"] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    let table = mapshare(&["ls"]).stdout_str();
    assert!(table.starts_with("NAME "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("shared")),
        "{table}"
    );
    drop(value);
    assert!(!shm_path(&name).exists());
}

#[test]
fn info_reads_a_file_backed_segment() {
    let mut c = Cleanup::new(&[]);
    let dir = c.scratch("info-file");
    let path = dir.join("segment.bin");
    let _value = Options::<Shared<[u32; 4]>>::file(&path).create().unwrap();
    let run = mapshare(&["info", "--file", path.to_str().unwrap(), "--json"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let v = run.json();
    assert_eq!(v["kind"], "shared");
    assert_eq!(v["name"], Value::Null);
    assert_eq!(v["path"], path.to_str().unwrap());
    assert_eq!(v["layout"]["size"], 16);
}

#[test]
fn info_on_garbage_exits_1_with_a_one_line_error() {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let name = unique("garbage");
    let _c = Cleanup::new(&[&name]);
    let mut bytes = vec![0u8; 4096];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(shm_path(&name))
        .unwrap()
        .write_all(&bytes)
        .unwrap();

    for args in [vec!["info", &name], vec!["info", &name, "--json"]] {
        let run = mapshare(&args);
        assert_eq!(run.code(), 1, "{run:?}");
        assert_one_line_error(&run);
        assert!(
            run.stderr
                .starts_with(&format!("mapshare: {name}: not a mapshare segment")),
            "{:?}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
    // Every other verb copes too.
    let ls = mapshare(&["ls", "--json"]);
    assert_eq!(ls.code(), 0, "{ls:?}");
    let entry = ls
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name.as_str())
        .cloned()
        .expect("ls lists it");
    assert_eq!(entry["kind"], Value::Null);
    assert!(entry["error"]
        .as_str()
        .unwrap()
        .contains("not a mapshare segment"));
    for args in [
        vec!["recv", &name, "--timeout", "0.1"],
        vec!["send", &name, "hi", "--timeout", "0.1"],
        vec!["lock", &name, "--timeout", "0.1", "--", "true"],
    ] {
        let run = mapshare(&args);
        assert_eq!(run.code(), 1, "{args:?}: {run:?}");
        assert_one_line_error(&run);
    }
    assert_eq!(
        std::fs::read(shm_path(&name)).unwrap(),
        bytes,
        "left as found"
    );
}

#[test]
fn rm_removes_and_fails_on_a_missing_name() {
    let name = unique("rm");
    let other = unique("rm-other");
    let _c = Cleanup::new(&[&name, &other]);
    assert_eq!(mapshare(&["send", &name, "x"]).code(), 0);
    assert_eq!(mapshare(&["send", &other, "y"]).code(), 0);
    let run = mapshare(&["rm", &name]);
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(!shm_path(&name).exists());

    let run = mapshare(&["rm", &name]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert_eq!(run.stderr, format!("mapshare: {name}: no such segment\n"));

    // One missing name does not stop the others.
    let run = mapshare(&["rm", &name, &other]);
    assert_eq!(run.code(), 1, "{run:?}");
    assert!(!shm_path(&other).exists());
}

#[test]
fn gc_removes_the_segment_of_a_killed_process() {
    let _gc = gc_lock();
    let name = unique("gc-dead");
    let kept = unique("gc-kept");
    let mut c = Cleanup::new(&[&name, &kept]);
    let dir = c.scratch("gc-dead");
    assert_eq!(mapshare(&["send", &kept, "undelivered"]).code(), 0);
    // Another process running `gc` at the same time (another run of these
    // tests, say) may collect our dead segment first: that is fine, the
    // segment is gone either way. Try a few times to see our own gc report
    // it; under such contention, settle for "gone after gc".
    let mut collected_by_us = false;
    for _ in 0..20 {
        let mut holder = Holder::start(&name, &[], &dir);
        holder.kill();
        assert_eq!(attached(&name), 0);

        let run = mapshare(&["gc", "--json"]);
        assert_eq!(run.code(), 0, "{run:?}");
        let v = run.json();
        assert!(!shm_path(&name).exists(), "gc left a dead segment: {v}");
        let why = v["kept"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == kept.as_str())
            .map(|k| k["reason"].as_str().unwrap().to_owned())
            .expect("the persistent mailbox is kept");
        assert!(why.contains("persistent"), "{why}");
        assert!(shm_path(&kept).exists());
        if v["removed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == name.as_str())
        {
            collected_by_us = true;
            break;
        }
    }
    if !collected_by_us {
        eprintln!("note: other gc runs always collected {name} before ours did");
    }

    let run = mapshare(&["gc"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let text = run.stdout_str();
    assert!(
        text.lines()
            .any(|l| l.starts_with("kept") && l.contains(&kept) && l.contains("persistent")),
        "{text}"
    );
}

// ------------------------------------------------------- --format / --watch

/// The entry of `ls --format json` output `v` for the segment `name`.
fn ls_entry(v: &Value, name: &str) -> Value {
    v.as_array()
        .expect("an array")
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("ls does not list {name}: {v}"))
}

/// A channel `name` held by this process with `queued` messages waiting.
fn channel_with(name: &str, queued: usize) -> (mapshare::Receiver, mapshare::Sender) {
    let rx = mapshare::Receiver::create(name).expect("create the channel");
    let mut tx = mapshare::Sender::open(name).expect("open a sender");
    for i in 0..queued {
        tx.send(format!("message {i}").as_bytes()).unwrap();
    }
    (rx, tx)
}

/// The value of the `key  value` line of `text` (empty if there is none).
fn field<'t>(text: &'t str, key: &str) -> &'t str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).filter(|v| v.starts_with(' ')))
        .map_or("", str::trim)
}

/// The JSON lines of `run`'s stdout, each parsed.
fn json_lines(run: &Run) -> Vec<Value> {
    run.stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l:?}")))
        .collect()
}

#[test]
fn format_json_before_or_after_the_verb_is_the_hidden_json() {
    let _gc = gc_lock();
    let name = unique("format");
    let _c = Cleanup::new(&[&name]);
    assert_eq!(mapshare(&["send", &name, "kept"]).code(), 0);

    let runs = [
        mapshare(&["info", &name, "--json"]),
        mapshare(&["info", &name, "--format", "json"]),
        mapshare(&["--format", "json", "info", &name]),
        mapshare(&["--format", "text", "info", &name, "--json"]),
    ];
    for run in &runs {
        assert_eq!(run.code(), 0, "{run:?}");
        assert_eq!(run.stdout, runs[0].stdout, "{run:?}");
    }
    let v = runs[0].json();
    assert_eq!(v["kind"], "mailbox");
    assert_eq!(v["queue"], Value::Null);

    // `ls` and `gc` list segments of other tests too, which come and go:
    // compare what they say of ours.
    let ls: Vec<Value> = [
        mapshare(&["ls", "--json"]),
        mapshare(&["ls", "--format", "json"]),
        mapshare(&["--format", "json", "ls"]),
    ]
    .iter()
    .map(|run| {
        assert_eq!(run.code(), 0, "{run:?}");
        ls_entry(&run.json(), &name)
    })
    .collect();
    assert!(ls.iter().all(|e| *e == ls[0]), "{ls:?}");
    assert_eq!(ls[0]["kind"], "mailbox");
    assert_eq!(ls[0]["persistent"], true);

    for args in [
        vec!["gc", "--json"],
        vec!["gc", "--format", "json"],
        vec!["--format", "json", "gc"],
    ] {
        let run = mapshare(&args);
        assert_eq!(run.code(), 0, "{run:?}");
        let v = run.json();
        for key in ["removed", "removed_partial", "kept"] {
            assert!(v[key].is_array(), "{args:?}: {key}: {v}");
        }
        assert!(
            v["kept"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["name"] == name.as_str() && k["reason"].is_string()),
            "{args:?}: {v}"
        );
    }

    // Text stays the default, and `--format text` says so explicitly.
    let text = mapshare(&["info", &name]);
    assert_eq!(
        mapshare(&["info", &name, "--format", "text"]).stdout,
        text.stdout
    );
    assert!(text.stdout_str().starts_with("segment "), "{text:?}");

    // The old flag still works but is no longer advertised.
    for verb in ["ls", "info", "gc"] {
        let help = mapshare(&[verb, "--help"]).stdout_str();
        assert!(help.contains("--format"), "{verb}: {help}");
        assert!(!help.contains("--json"), "{verb}: {help}");
    }
}

#[test]
fn info_watch_prints_json_lines_with_a_channel_depth() {
    let name = unique("watch-info");
    let _c = Cleanup::new(&[&name]);
    let (_rx, _tx) = channel_with(&name, 3);

    let run = mapshare(&[
        "info",
        &name,
        "--watch",
        "--count",
        "2",
        "--interval",
        "0.1",
        "--format",
        "json",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    let frames = json_lines(&run);
    assert_eq!(frames.len(), 2, "{}", run.stdout_str());
    for f in &frames {
        assert_eq!(f["name"], name.as_str());
        assert_eq!(f["kind"], "channel");
        assert!(f["time"].as_str().unwrap().ends_with('Z'), "{f}");
        assert_eq!(f["queue"]["depth"], 3, "{f}");
        assert_eq!(f["queue"]["lanes"][0]["waiting"], 3, "{f}");
        assert_eq!(f["messages"], 3, "{f}");
        assert_eq!(f["attached"].as_array().unwrap().len(), 2, "{f}");
    }
    // A rate needs two readings; nothing was sent in between.
    assert_eq!(frames[0]["rate"], Value::Null);
    assert_eq!(frames[1]["rate"].as_f64(), Some(0.0));

    let run = mapshare(&[
        "info",
        &name,
        "--watch",
        "--count",
        "2",
        "--interval",
        "0.1",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    let text = run.stdout_str();
    let refreshes: Vec<&str> = text.split("\n\n").filter(|s| !s.is_empty()).collect();
    assert_eq!(refreshes.len(), 2, "{text}");
    for r in refreshes {
        assert!(r.starts_with(&format!("{name} (channel) at ")), "{r}");
        assert!(field(r, "depth").starts_with("3 waiting"), "{r}");
        assert!(field(r, "sent").starts_with("3 messages"), "{r}");
        assert!(r.contains("LANE  WAITING  SENT  SENDER"), "{r}");
    }
    assert!(!text.contains('\x1b'), "no screen clearing into a pipe");
}

#[test]
fn ls_watch_prints_each_refresh_with_message_counts() {
    // `ls --watch` attaches briefly to every live channel and ring, other
    // tests' too: not while `watch_leaves_a_dead_ring_in_place` kills one.
    let _gc = gc_lock();
    let name = unique("watch-ls");
    let _c = Cleanup::new(&[&name]);
    let (_rx, _tx) = channel_with(&name, 2);

    let run = mapshare(&["ls", "--watch", "--count", "2", "--interval", "0.1"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let text = run.stdout_str();
    assert_eq!(text.matches("mapshare ls at ").count(), 2, "{text}");
    assert_eq!(text.matches("\nNAME ").count(), 2, "{text}");
    // NAME KIND SIZE PERSISTENT ATTACHED MESSAGES RATE, our row in each.
    let ours: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name} ")))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(ours.len(), 2, "{text}");
    assert_eq!(
        ours[0][1..],
        ["channel", ours[0][2], "no", "2", "2", "-"],
        "{text}"
    );
    assert_eq!(ours[1][5..], ["2", "0.0/s"], "{text}");
    assert!(text.ends_with("\n\n"), "a blank line after each refresh");

    let run = mapshare(&[
        "--format",
        "json",
        "ls",
        "--watch",
        "--count",
        "2",
        "--interval",
        "0.1",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    let frames = json_lines(&run);
    assert_eq!(frames.len(), 2, "{}", run.stdout_str());
    for f in &frames {
        assert!(f["time"].is_string(), "{f}");
        let e = ls_entry(&f["segments"], &name);
        assert_eq!(e["kind"], "channel");
        assert_eq!(e["attached"], 2);
        assert_eq!(e["error"], Value::Null);
        assert_eq!(e["messages"], 2);
    }
    assert_eq!(ls_entry(&frames[0]["segments"], &name)["rate"], Value::Null);
    assert_eq!(
        ls_entry(&frames[1]["segments"], &name)["rate"].as_f64(),
        Some(0.0)
    );
}

#[test]
fn watch_leaves_a_dead_ring_in_place() {
    // Attaching to a non-persistent segment nobody holds would remove it:
    // the watch reads no queue then. (No `gc` may run meanwhile.)
    let _gc = gc_lock();
    let name = unique("watch-dead");
    let _c = Cleanup::new(&[&name]);
    let mut sub = spawn(&["sub", &name, "--timeout", "60"]);
    wait_until("the subscriber attached", || attached(&name) == 1);
    sub.kill().unwrap(); // SIGKILL: nothing detaches
    sub.wait().unwrap();
    assert_eq!(attached(&name), 0);

    let run = mapshare(&[
        "info",
        &name,
        "--watch",
        "--count",
        "2",
        "--interval",
        "0.1",
        "--json",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    for f in json_lines(&run) {
        assert_eq!(f["kind"], "pubsub");
        assert_eq!(f["queue"], Value::Null, "{f}");
        assert_eq!(f["messages"], Value::Null, "{f}");
    }
    let run = mapshare(&["info", &name, "--watch", "--count", "1"]);
    assert!(
        run.stdout_str()
            .contains("not read: no live process holds it"),
        "{run:?}"
    );
    let run = mapshare(&[
        "ls",
        "--watch",
        "--count",
        "2",
        "--interval",
        "0.1",
        "--json",
    ]);
    assert_eq!(run.code(), 0, "{run:?}");
    for f in json_lines(&run) {
        assert_eq!(
            ls_entry(&f["segments"], &name)["messages"],
            Value::Null,
            "{f}"
        );
    }
    assert!(shm_path(&name).exists(), "a watch removed the dead ring");
}

/// Starts `mapshare ARGS` and waits for its first line of output (by then
/// it catches signals); returns the child and that line.
fn spawn_until_first_line(args: &[&str]) -> (Child, String) {
    use std::io::BufRead;
    let mut child = spawn(args);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining, so that the child never blocks on a full pipe.
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    let Ok(line) = rx.recv_timeout(WATCHDOG) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("watchdog: no output from {args:?}");
    };
    (child, line)
}

#[test]
#[cfg(unix)] // Unix by nature: SIGINT.
fn watch_ends_with_130_on_sigint() {
    let _gc = gc_lock(); // `ls --watch`: see ls_watch_prints_each_refresh_with_message_counts
    let name = unique("watch-int");
    let _c = Cleanup::new(&[&name]);
    let (_rx, _tx) = channel_with(&name, 1);
    for args in [
        vec![
            "info",
            name.as_str(),
            "--watch",
            "--interval",
            "0.1",
            "--format",
            "json",
        ],
        vec!["ls", "--watch", "--interval", "30"],
    ] {
        let (child, first) = spawn_until_first_line(&args);
        assert!(!first.is_empty(), "{args:?}");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success());
        let run = finish(child);
        assert_eq!(run.code(), 130, "{args:?}: {run:?}");
        assert!(run.stderr.is_empty(), "{args:?}: {run:?}");
    }
}

#[test]
fn info_watch_ends_with_an_error_when_the_segment_goes() {
    let name = unique("watch-gone");
    let _c = Cleanup::new(&[&name]);
    assert_eq!(mapshare(&["send", &name, "x"]).code(), 0);
    let (child, first) = spawn_until_first_line(&["info", &name, "--watch", "--interval", "0.1"]);
    assert!(
        first.starts_with(&format!("{name} (mailbox) at ")),
        "{first}"
    );
    assert_eq!(mapshare(&["rm", &name]).code(), 0);
    let run = finish(child);
    assert_eq!(run.code(), 1, "{run:?}");
    assert_one_line_error(&run);
    assert!(run.stderr.contains("no such segment"), "{run:?}");
}

// --------------------------------------------------------- names and usage

#[test]
fn invalid_name_is_a_usage_error_and_creates_nothing() {
    for bad in ["../x", ".hidden", "a/b", "", "sp ace"] {
        for args in [
            vec!["send", bad, "hi"],
            vec!["recv", bad, "--timeout", "0.1"],
            vec!["lock", bad, "--", "true"],
            vec!["info", bad],
            vec!["rm", bad],
        ] {
            let run = mapshare(&args);
            assert_eq!(run.code(), 2, "{args:?}: {run:?}");
            assert_one_line_error(&run);
            assert!(run.stderr.contains("invalid segment name"), "{run:?}");
        }
    }
    for path in [
        "/dev/shm/mapshare.../x",
        "/dev/x",
        "/dev/shm/x",
        "/dev/shm/mapshare..hidden",
    ] {
        assert!(!Path::new(path).exists(), "{path} was created");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["send", "only-a-name"],
        vec!["lock", "name"],
        vec!["lock", "name", "true"],
        vec!["recv", "name", "--timeout", "-1"],
        vec!["recv", "name", "--timeout", "soon"],
        vec!["info"],
        vec!["rm"],
        vec!["ls", "--format", "yaml"],
        vec!["--format", "xml", "ls"],
        vec!["ls", "--interval", "1"],
        vec!["ls", "--count", "2"],
        vec!["ls", "--watch", "--count", "0"],
        vec!["info", "name", "--watch", "--interval", "0"],
        vec!["info", "name", "--watch", "--interval", "soon"],
    ] {
        let run = mapshare(&args);
        assert_eq!(run.code(), 2, "{args:?}: {run:?}");
    }
}

// --------------------------------------------------------------------- demo

#[test]
fn demo_exits_0_and_prints_the_text() {
    let child = spawn(&["demo"]);
    let demo_name = format!("demo-{}", child.id());
    let _c = Cleanup::new(&[&demo_name, &format!("{demo_name}.ack")]);
    let run = finish(child);
    assert_eq!(run.code(), 0, "{run:?}");
    let out = run.stdout_str();
    assert!(out.contains("Grüße, Мир, 世界, مرحبا, नमस्ते, 🦀"), "{out}");
    assert!(out.contains("byte for byte"), "{out}");
    assert!(out.contains(" µs "), "{out}");
    assert!(!shm_path(&demo_name).exists());
    assert!(!shm_path(&format!("{demo_name}.ack")).exists());
}

/// `mapshare pub NAME` fed `input` on stdin, with `extra` arguments.
fn spawn_pub(name: &str, extra: &[&str], input: &'static [u8]) -> Child {
    let mut child = Command::new(BIN)
        .args(["pub", name])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_retrying()
        .expect("starting mapshare pub");
    let mut stdin = child.stdin.take().unwrap();
    thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(input);
    });
    child
}

#[test]
fn pub_lines_reach_every_subscriber_in_order() {
    let name = unique("pubsub");
    let _c = Cleanup::new(&[&name]);
    let input: &'static [u8] = b"one\nzwei \xf0\x9f\xa6\x80\n\nthree\r\nlast without newline";
    let publisher = spawn_pub(
        &name,
        &["--wait-subscribers", "2", "--timeout", "30"],
        input,
    );
    let subs: Vec<Child> = (0..2)
        .map(|_| spawn(&["sub", &name, "--timeout", "30"]))
        .collect();
    let published = finish(publisher);
    assert_eq!(published.code(), 0, "{published:?}");
    for sub in subs {
        let got = finish(sub);
        assert_eq!(got.code(), 0, "{got:?}");
        assert_eq!(
            got.stdout_str(),
            "one\nzwei 🦀\n\nthree\nlast without newline\n",
            "every line, in order, CR LF trimmed"
        );
    }
    assert!(
        !shm_path(&name).exists(),
        "the ring goes with its last process"
    );
}

#[test]
fn sub_count_stops_after_n_and_sub_timeout_exits_3() {
    let name = unique("subcount");
    let _c = Cleanup::new(&[&name]);
    let publisher = spawn_pub(
        &name,
        &["--wait-subscribers", "1", "--timeout", "30"],
        b"a\nb\nc\nd\n",
    );
    let got = mapshare(&["sub", &name, "--count", "2", "--timeout", "30"]);
    assert_eq!(got.code(), 0, "{got:?}");
    assert_eq!(got.stdout, b"a\nb\n");
    assert_eq!(finish(publisher).code(), 0);
    let none = mapshare(&["sub", &unique("nobody"), "--timeout", "0.2"]);
    assert_eq!(none.code(), 3, "{none:?}");
    assert_one_line_error(&none);
}

#[test]
fn info_shows_pubsub_depth_subscribers_and_lag() {
    let name = unique("pubsub-info");
    let _c = Cleanup::new(&[&name]);
    // A lossless ring of 4 and a subscriber (this test process) that never
    // reads: the publisher fills the ring and waits, the subscriber 4 behind.
    let publisher = spawn_pub(
        &name,
        &[
            "--capacity",
            "4",
            "--wait-subscribers",
            "1",
            "--timeout",
            "30",
        ],
        b"1\n2\n3\n4\n5\n6\n",
    );
    let sub = loop {
        match mapshare::Subscriber::open(&name) {
            Ok(s) => break s,
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    };
    wait_until("the ring to fill", || {
        let run = mapshare(&["info", &name, "--json"]);
        run.code() == 0 && run.json()["queue"]["depth"] == 4
    });
    let info = mapshare(&["info", &name, "--json"]).json();
    let q = &info["queue"];
    assert_eq!(q["capacity"], 4);
    assert_eq!(q["policy"], "lossless");
    assert_eq!(q["publisher_alive"], true);
    let subs = q["subscribers"].as_array().unwrap();
    assert!(
        subs.iter()
            .any(|s| s["alive"] == true && s["lag"] == 4 && s["pid"] == std::process::id()),
        "{q}"
    );
    let text = mapshare(&["info", &name]).stdout_str();
    assert!(text.contains("lossless") && text.contains("LAG"), "{text}");
    // Once the subscriber leaves, the lossless publisher finishes.
    drop(sub);
    assert_eq!(finish(publisher).code(), 0);
}

#[test]
#[cfg(unix)] // Unix by nature: a FIFO made with mkfifo.
fn admin_verbs_survive_a_fifo_and_a_directory_under_the_prefix() {
    let _gc = gc_lock();
    let fifo = unique("fifo");
    let dir = unique("dir");
    let (fifo_path, dir_path) = (shm_path(&fifo), shm_path(&dir));
    struct Gone(PathBuf, PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            let _ = std::fs::remove_dir(&self.1);
        }
    }
    let _gone = Gone(fifo_path.clone(), dir_path.clone());
    assert!(Command::new("mkfifo")
        .arg(&fifo_path)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir(&dir_path).unwrap();
    // None of them may hang on the FIFO, crash, or remove what is not ours.
    let ls = mapshare(&["ls", "--json"]);
    assert_eq!(ls.code(), 0, "{}", ls.stderr);
    let out = String::from_utf8_lossy(&ls.stdout);
    assert!(
        out.contains(&fifo) && out.contains("not a regular file"),
        "{out}"
    );
    for name in [&fifo, &dir] {
        let info = mapshare(&["info", name]);
        assert_eq!(info.code(), 1, "info {name}: {}", info.stderr);
        assert_one_line_error(&info);
    }
    let gc = mapshare(&["gc"]);
    assert_eq!(gc.code(), 0, "{}", gc.stderr);
    assert!(fifo_path.exists() && dir_path.exists(), "gc removed them");
    // A leftover that is not a segment is named, with the way out.
    let lock = mapshare(&["lock", &fifo, "--", "true"]);
    assert_ne!(lock.code(), 0);
    assert_one_line_error(&lock);
}

/// `Command::spawn`, tried again (up to 5 times, 100 ms apart) when Wine
/// fails the CreateProcess with ERROR_INTERNAL_ERROR (1359): seen in CI
/// under Wine 8, a fault of the emulator, never of the program started.
/// Elsewhere exactly `spawn`.
trait SpawnRetry {
    fn spawn_retrying(&mut self) -> std::io::Result<std::process::Child>;
}

impl SpawnRetry for std::process::Command {
    fn spawn_retrying(&mut self) -> std::io::Result<std::process::Child> {
        let mut tries = 0;
        loop {
            match self.spawn() {
                Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && tries < 5 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                done => return done,
            }
        }
    }
}
