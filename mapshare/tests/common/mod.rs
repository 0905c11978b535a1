//! Helpers shared by the integration tests: unique names, a cleanup guard,
//! a watchdog, temp dirs for file handshakes, and child processes that
//! re-run this test binary (ipc-channel style: no `fork()` in the harness).
//!
//! # Child processes
//! The parent runs `current_exe() --exact <test> --nocapture --test-threads=1`
//! with `MAPSHARE_TEST_ROLE`, `MAPSHARE_TEST_NAME` (the segment),
//! `MAPSHARE_TEST_DIR` (a temp dir for handshake files) and
//! `MAPSHARE_TEST_ARG` set. The test function starts with
//!
//! ```text
//! if let Some(child) = common::child() {
//!     child.run(|c| match c.role.as_str() { ... });
//! }
//! ```
//!
//! `run` plays the role, drops everything the role created, and exits with
//! [`CHILD_OK`]. The parent checks for exactly that code, so a child that ran
//! no test at all (a typo in the test name makes the harness run zero tests
//! and exit 0) is a failure, not a silent pass.

// Reason: every test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mapshare::segment;
use mapshare::{Location, SegmentError};

/// Exit code of a child that played its role to the end.
pub(crate) const CHILD_OK: i32 = 42;

/// How long any test (parent or child) may run before the watchdog aborts it.
pub(crate) const WATCHDOG_LIMIT: Duration = Duration::from_secs(60);

const ENV_ROLE: &str = "MAPSHARE_TEST_ROLE";
const ENV_NAME: &str = "MAPSHARE_TEST_NAME";
const ENV_DIR: &str = "MAPSHARE_TEST_DIR";
const ENV_ARG: &str = "MAPSHARE_TEST_ARG";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn next() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A segment name no other test (in this or another process) uses:
/// `t-<pid>-<test>-<counter>`.
pub(crate) fn unique_name(test: &str) -> String {
    format!("t-{}-{}-{}", std::process::id(), test, next())
}

/// The directory of RAM-backed segments: `/dev/shm`, or on Windows
/// `%LOCALAPPDATA%\mapshare` (the temp directory's `mapshare` folder
/// without `LOCALAPPDATA`), as the library's backend computes it.
pub(crate) fn shm_dir() -> PathBuf {
    #[cfg(windows)]
    {
        std::env::var_os("LOCALAPPDATA")
            .filter(|v| !v.is_empty())
            .map_or_else(std::env::temp_dir, PathBuf::from)
            .join("mapshare")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/dev/shm")
    }
}

/// `/dev/shm/mapshare.<name>` (on Windows, in [`shm_dir`]).
pub(crate) fn shm_path(name: &str) -> PathBuf {
    shm_dir().join(format!("mapshare.{name}"))
}

/// Positional file I/O: std's Unix `FileExt`, or on Windows the same four
/// calls over `seek_read` / `seek_write` (tests write over live segment
/// files, as a buggy or hostile peer would).
#[cfg(unix)]
#[allow(unused_imports)] // Reason: only the tests that write over segment files use it.
pub(crate) use std::os::unix::fs::FileExt;

/// See the Unix `FileExt`: the same calls on Windows.
#[cfg(windows)]
pub(crate) trait FileExt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize>;
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, offset)? {
                0 => return Err(std::io::ErrorKind::WriteZero.into()),
                n => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

#[cfg(windows)]
impl FileExt for fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        match std::os::windows::fs::FileExt::seek_read(self, buf, offset) {
            // Reading at the end of file is an error on Windows, 0 on Unix.
            Err(e) if e.raw_os_error() == Some(38) => Ok(0),
            other => other,
        }
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize> {
        std::os::windows::fs::FileExt::seek_write(self, buf, offset)
    }
}

/// Unlinks a RAM-backed segment on drop (also after a panic); a missing one is fine.
#[derive(Debug)]
pub(crate) struct Cleanup {
    names: Vec<String>,
}

impl Cleanup {
    pub(crate) fn new(name: &str) -> Cleanup {
        Cleanup {
            names: vec![name.to_owned()],
        }
    }

    /// Also unlink `name` on drop.
    pub(crate) fn add(&mut self, name: &str) {
        self.names.push(name.to_owned());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.names {
            match Location::shm(name).and_then(|at| segment::unlink(&at)) {
                Ok(()) | Err(SegmentError::NotFound(_)) => {}
                Err(e) => eprintln!("cleanup of {name}: {e}"),
            }
            // Whatever `unlink` thought of it (a symlink, garbage, a bad
            // name used on purpose), the file must not outlive the test.
            let _ = fs::remove_file(shm_path(name));
        }
    }
}

/// Aborts the whole process if it is still alive after the limit: a hung
/// test fails loudly instead of hanging CI. Disarmed on drop.
#[derive(Debug)]
pub(crate) struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

pub(crate) fn watchdog(test: &str) -> Watchdog {
    watchdog_for(test, WATCHDOG_LIMIT)
}

pub(crate) fn watchdog_for(test: &str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let test = test.to_owned();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!(
                "watchdog: {test} (pid {}) still running after {limit:?}; aborting",
                std::process::id()
            );
            std::process::abort();
        }
    });
    Watchdog { _disarm: tx }
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(test: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "mapshare-test-{}-{}-{}",
            std::process::id(),
            test,
            next()
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn join(&self, file: &str) -> PathBuf {
        self.path.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Creates the flag file `dir/flag` (its existence is the signal).
pub(crate) fn signal(dir: &Path, flag: &str) {
    fs::File::create(dir.join(flag)).expect("create flag file");
}

/// Writes `bytes` to `dir/file` atomically (temp file + rename).
pub(crate) fn write_atomic(dir: &Path, file: &str, bytes: &[u8]) {
    let tmp = dir.join(format!("{file}.tmp"));
    fs::write(&tmp, bytes).expect("write result file");
    fs::rename(&tmp, dir.join(file)).expect("rename result file");
}

/// Waits (polling; bounded only by the watchdog) until `dir/flag` exists.
pub(crate) fn wait_for_flag(dir: &Path, flag: &str) {
    let path = dir.join(flag);
    while !path.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Like [`wait_for_flag`], but gives up (returns `false`) when `child` exits first.
pub(crate) fn wait_for_flag_or_exit(dir: &Path, flag: &str, child: &mut ChildProc) -> bool {
    let path = dir.join(flag);
    loop {
        if path.exists() {
            return true;
        }
        if child.has_exited() {
            return path.exists();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What a re-executed child is asked to do.
#[derive(Debug)]
pub(crate) struct ChildCtx {
    pub(crate) role: String,
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) arg: String,
}

impl ChildCtx {
    /// Waits for the parent's (or a sibling's) flag file.
    pub(crate) fn wait_for(&self, flag: &str) {
        wait_for_flag(&self.dir, flag);
    }

    /// Raises a flag file for the parent.
    pub(crate) fn signal(&self, flag: &str) {
        signal(&self.dir, flag);
    }

    /// Plays the role, then exits the process with [`CHILD_OK`]. Everything
    /// `f` owns is dropped before the exit (segments detach cleanly); a
    /// panic in `f` unwinds into the harness, which exits with a failure.
    pub(crate) fn run(self, f: impl FnOnce(&ChildCtx)) -> ! {
        let _wd = watchdog(&format!("child role {}", self.role));
        f(&self);
        std::process::exit(CHILD_OK);
    }
}

/// `Some` when this process is a child started by [`spawn_child`].
pub(crate) fn child() -> Option<ChildCtx> {
    let role = std::env::var(ENV_ROLE).ok()?;
    Some(ChildCtx {
        role,
        name: std::env::var(ENV_NAME).unwrap_or_default(),
        dir: std::env::var_os(ENV_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir),
        arg: std::env::var(ENV_ARG).unwrap_or_default(),
    })
}

/// A child process running one role of one test. Killed (SIGKILL) and
/// reaped on drop if still running.
#[derive(Debug)]
pub(crate) struct ChildProc {
    child: std::process::Child,
    role: String,
    log: PathBuf,
    exited: Option<std::process::ExitStatus>,
}

/// Starts this test binary again as a child playing `role` of `test` on
/// segment `name`, with `dir` for handshake files and a free-form `arg`.
pub(crate) fn spawn_child(test: &str, role: &str, name: &str, dir: &Path, arg: &str) -> ChildProc {
    spawn_child_via(&[], test, role, name, dir, arg)
}

impl ChildProc {
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Whether it has exited (reaping it if so).
    pub(crate) fn has_exited(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited.is_some()
    }

    /// Waits for the child and asserts that it played its role to the end.
    pub(crate) fn wait_ok(&mut self) {
        let status = match self.exited {
            Some(s) => s,
            None => {
                let s = self.child.wait().expect("wait for child");
                self.exited = Some(s);
                s
            }
        };
        assert_eq!(
            status.code(),
            Some(CHILD_OK),
            "child {} (pid {}) failed: {status}\n--- child output ---\n{}",
            self.role,
            self.child.id(),
            self.log_text()
        );
    }

    /// SIGKILL (`Child::kill`), then reap it: once this returns the process
    /// is gone, and so is every lock the kernel held for it.
    pub(crate) fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = Some(self.child.wait().expect("wait for killed child"));
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_file(&self.log);
    }
}

/// A tiny deterministic PRNG (xorshift64*), seeded per call site.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    /// Seeded from the clock and pid; the seed is printed so a failure can be replayed.
    pub(crate) fn from_time(what: &str) -> XorShift {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = t ^ (u64::from(std::process::id()) << 32);
        eprintln!("{what}: PRNG seed {seed:#x}");
        XorShift::new(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

/// Names in `/dev/shm` (on Windows, in [`shm_dir`]; none before the
/// library first made it).
pub(crate) fn shm_listing() -> BTreeSet<String> {
    let dir = match fs::read_dir(shm_dir()) {
        Ok(dir) => dir,
        Err(e) if cfg!(windows) && e.kind() == std::io::ErrorKind::NotFound => {
            return BTreeSet::new()
        }
        Err(e) => panic!("read {}: {e}", shm_dir().display()),
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// `.mapshare-init.<pid>.*` files of any of `pids` (creators' hidden temp files).
pub(crate) fn init_leftovers(pids: &[u32]) -> Vec<String> {
    shm_listing()
        .into_iter()
        .filter(|f| {
            pids.iter()
                .any(|p| f.starts_with(&format!(".mapshare-init.{p}.")))
        })
        .collect()
}

/// The final check of a multi-process test: each of `names` is gone from
/// `/dev/shm`, and no creator temp file of ours or of our children is left.
///
/// Other tests of this process run in parallel and briefly own temp files
/// with our pid while they create segments. So a temp file only counts as
/// left over if it is still there once the ones it was seen with are gone
/// (a creation in progress takes milliseconds; a leak stays for ever).
pub(crate) fn assert_clean(names: &[&str], child_pids: &[u32]) {
    for name in names {
        let p = shm_path(name);
        assert!(!p.exists(), "{} left behind", p.display());
    }
    let mut pids = vec![std::process::id()];
    pids.extend_from_slice(child_pids);
    let first: BTreeSet<String> = init_leftovers(&pids).into_iter().collect();
    if first.is_empty() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now: BTreeSet<String> = init_leftovers(&pids).into_iter().collect();
        let stuck: Vec<&String> = first.intersection(&now).collect();
        if stuck.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "creator temp files left in /dev/shm: {stuck:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Like [`spawn_child`], but runs the test binary through `wrapper`: a
/// command and its arguments that end by executing the rest of the command
/// line, for example `unshare -m -- sh -c '<setup> && exec "$0" "$@"'`
/// (a child in a private mount namespace with its own `/dev/shm`). An empty
/// `wrapper` runs the test binary directly.
pub(crate) fn spawn_child_via(
    wrapper: &[&str],
    test: &str,
    role: &str,
    name: &str,
    dir: &Path,
    arg: &str,
) -> ChildProc {
    let exe = std::env::current_exe().expect("current_exe");
    let log = dir.join(format!("child-{role}-{}.log", next()));
    let out = fs::File::create(&log).expect("create child log");
    let err = out.try_clone().expect("clone log fd");
    let mut cmd = match wrapper.split_first() {
        Some((program, wrapper_args)) => {
            let mut c = Command::new(program);
            c.args(wrapper_args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let child = cmd
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ENV_ROLE, role)
        .env(ENV_NAME, name)
        .env(ENV_DIR, dir)
        .env(ENV_ARG, arg)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn_retrying()
        .expect("spawn child test process");
    ChildProc {
        child,
        role: role.to_owned(),
        log,
        exited: None,
    }
}

/// Held while a test calls `gc`, or leaves a dead segment for `gc` to find.
pub(crate) struct GcLock(#[allow(dead_code)] fs::File);

/// `gc` is global: it removes every unattached segment of ours in
/// `/dev/shm`, whichever test left it. Tests that leave a segment
/// unattached on purpose, or that assert what `gc` reports, take this lock
/// so they do not see each other's. A `flock` on a file in the temporary
/// directory, so it holds across test processes (nextest runs each test
/// in its own, the CLI tests take the same file) and across threads.
#[allow(dead_code)] // Reason: not every test binary calls gc.
pub(crate) fn gc_lock() -> GcLock {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("mapshare-tests-gc.lock"))
        .expect("open the gc lock file");
    #[cfg(unix)]
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    // `LockFileEx` (std's, Rust 1.89+: tests only, not the library's MSRV).
    #[cfg(windows)]
    #[allow(clippy::incompatible_msrv)]
    // Reason: test code, built by the toolchain CI installs.
    f.lock().expect("LockFileEx");
    GcLock(f)
}

/// Waits until the thread `task` (`PID/task/TID`, as `/proc/thread-self`
/// links to) has just gone to sleep in a futex: asleep, and its count of
/// voluntary context switches changed since we began to watch; or asleep
/// all along for 500 ms (a wait without slices). The caller then has the
/// rest of that sleep (every sliced wait sleeps at least 5 ms) to act on
/// memory the thread will touch when it wakes: a test that shrinks a
/// segment must not land in the awake moments of a sliced wait, which are
/// the documented fast-path SIGBUS window, not what such a test is about.
pub(crate) fn wait_until_freshly_asleep(task: &str) {
    let base = Path::new("/proc").join(task.trim());
    let asleep = || fs::read_to_string(base.join("wchan")).is_ok_and(|w| w.contains("futex"));
    let switches = || {
        fs::read_to_string(base.join("status")).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
    };
    while !asleep() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let (first, since) = (switches(), Instant::now());
    loop {
        let now = switches();
        if asleep() && (now != first || since.elapsed() >= Duration::from_millis(500)) {
            return;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// A test message of the pub/sub tests: `[seq u64][seq-dependent filler]
/// [checksum u64]`, 16 to `16 + spread - 1` bytes.
pub(crate) fn make_message(seq: u64, spread: u64, buf: &mut Vec<u8>) {
    let len = 16 + (seq.wrapping_mul(2_654_435_761) % spread) as usize;
    buf.clear();
    buf.extend_from_slice(&seq.to_le_bytes());
    for i in 0..len - 16 {
        buf.push((seq as u8).wrapping_add(i as u8));
    }
    let sum = checksum(buf);
    buf.extend_from_slice(&sum.to_le_bytes());
}

/// FNV-1a of `bytes`.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Checks a [`make_message`]'s checksum; returns its sequence number.
pub(crate) fn check_message(m: &[u8]) -> u64 {
    assert!(m.len() >= 16, "short message: {} bytes", m.len());
    let (body, sum) = m.split_at(m.len() - 8);
    assert_eq!(
        checksum(body),
        u64::from_le_bytes(sum.try_into().unwrap()),
        "corrupt message"
    );
    u64::from_le_bytes(m[0..8].try_into().unwrap())
}

/// `Command::spawn`, tried again (up to 5 times, 100 ms apart) when Wine
/// fails the CreateProcess with ERROR_INTERNAL_ERROR (1359): seen in CI
/// under Wine 8, a fault of the emulator, never of the program started.
/// Elsewhere exactly `spawn`.
pub(crate) trait SpawnRetry {
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
