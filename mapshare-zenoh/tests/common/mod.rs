//! The two-host harness of the bridge's tests: "hosts" as mount
//! namespaces with their own tmpfs at /dev/shm, `mapshare-bridge`s in
//! them, a TCP relay to cut the link, child processes, checksummed
//! messages.
#![allow(dead_code)] // Reason: each test binary uses a part of the harness.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const ENV_ROLE: &str = "MAPSHARE_ZENOH_ROLE";
pub(crate) const ENV_NAME: &str = "MAPSHARE_ZENOH_NAME";
pub(crate) const ENV_COUNT: &str = "MAPSHARE_ZENOH_COUNT";
pub(crate) const ENV_PACE_US: &str = "MAPSHARE_ZENOH_PACE_US";
pub(crate) const ENV_READY: &str = "MAPSHARE_ZENOH_READY";
/// A publisher waits for this file before its first message, if set.
pub(crate) const ENV_GO: &str = "MAPSHARE_ZENOH_GO";
/// Exit code of a child that played its role to the end.
pub(crate) const CHILD_OK: i32 = 42;
/// Longest a test may wait for anything.
pub(crate) const LIMIT: Duration = Duration::from_secs(120);

pub(crate) static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn unique(test: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("z-{}-{test}-{n}", std::process::id())
}

pub(crate) fn scratch_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(test));
    fs::create_dir_all(&d).unwrap();
    d
}

/// A port nothing listens on now (bound and released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mount namespace with a private tmpfs at /dev/shm, kept alive by a
/// `cat` on a pipe from us: it (and the tmpfs) ends when we drop it or die.
pub(crate) struct Host {
    pub(crate) keeper: Child,
    pub(crate) _stdin: ChildStdin,
}

impl Host {
    pub(crate) fn new() -> Host {
        let mut keeper = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o size=256m tmpfs /dev/shm && echo up && exec cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running unshare (util-linux) for a mount namespace");
        let stdin = keeper.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(keeper.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() != "up" {
            let out = keeper.wait_with_output().unwrap();
            panic!(
                "these tests need a mount namespace with its own /dev/shm \
                 (`unshare -m` + `mount -t tmpfs`, as root), and could not make one: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Host {
            keeper,
            _stdin: stdin,
        }
    }

    /// `program` run inside this host.
    pub(crate) fn cmd(&self, program: impl AsRef<Path>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{}/ns/mnt", self.keeper.id()))
            .arg("--")
            .arg(program.as_ref());
        c
    }

    /// What is left in this host's /dev/shm.
    pub(crate) fn shm(&self) -> Vec<String> {
        let out = self.cmd("ls").args(["-A", "/dev/shm"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Subscribers of ring `name` here (through `mapshare info`).
    pub(crate) fn subscribers(&self, name: &str) -> usize {
        let out = self
            .cmd(cli())
            .args(["--format", "json", "info", name])
            .output()
            .unwrap();
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return 0;
        };
        v["queue"]["subscribers"].as_array().map_or(0, Vec::len)
    }

    pub(crate) fn wait_subscribers(&self, name: &str, n: usize) {
        let until = Instant::now() + LIMIT;
        while self.subscribers(name) < n {
            assert!(
                Instant::now() < until,
                "{name}: {n} subscribers never joined"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    /// Ends every process still in this host (a test that failed halfway
    /// leaves its bridges and children running), then the host itself.
    fn drop(&mut self) {
        let me = self.keeper.id();
        if let Ok(ns) = fs::read_link(format!("/proc/{me}/ns/mnt")) {
            for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
                    continue;
                };
                if pid as u32 == me
                    || fs::read_link(e.path().join("ns/mnt")).ok() != Some(ns.clone())
                {
                    continue;
                }
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
        let _ = self.keeper.kill();
        let _ = self.keeper.wait();
    }
}

/// The `mapshare` CLI built from this workspace (beside our test binary).
pub(crate) fn cli() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("mapshare");
    assert!(
        p.exists(),
        "{} is missing: build mapshare-cli first (cargo build -p mapshare-cli)",
        p.display()
    );
    p
}

/// A `mapshare-bridge` running in a host, its stderr in a file.
pub(crate) struct Bridge {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl Bridge {
    pub(crate) fn start(
        host: &Host,
        names: &[&str],
        flag: &str,
        port: u16,
        log: PathBuf,
    ) -> Bridge {
        Bridge::start_with(host, names, &[], flag, port, log)
    }

    pub(crate) fn start_with(
        host: &Host,
        names: &[&str],
        extra: &[&str],
        flag: &str,
        port: u16,
        log: PathBuf,
    ) -> Bridge {
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let child = host
            .cmd(env!("CARGO_BIN_EXE_mapshare-bridge"))
            .args(names)
            .args(extra)
            .arg(flag)
            .arg(format!("tcp/127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let b = Bridge { child, log };
        let until = Instant::now() + LIMIT;
        loop {
            let text = fs::read(&b.log).unwrap_or_default();
            if String::from_utf8_lossy(&text[start as usize..]).contains("ready") {
                return b;
            }
            assert!(Instant::now() < until, "bridge never ready: {}", b.text());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the bridge must exit 0; its log.
    pub(crate) fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let st = self.child.wait().unwrap();
        let text = self.text();
        assert!(st.success(), "bridge exited {st}: {text}");
        text
    }

    /// SIGKILL.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A TCP relay between the two bridges, to cut the link and restore it:
/// A connects to `port`, the relay to B's.
pub(crate) struct Relay {
    pub(crate) port: u16,
    pub(crate) cut: Arc<AtomicBool>,
    pub(crate) conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    pub(crate) fn new(to: u16) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (c, k) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            for a in l.incoming() {
                let Ok(a) = a else { return };
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: refused while the link is cut
                }
                let Ok(b) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let mut g = k.lock().unwrap();
                g.push(a.try_clone().unwrap());
                g.push(b.try_clone().unwrap());
                drop(g);
                for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, cut, conns }
    }

    /// Closes every connection and refuses new ones.
    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub(crate) fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Two hosts, a bridge in each for `names`, B listening and A connecting.
pub(crate) struct Pair {
    pub(crate) a: Host,
    pub(crate) b: Host,
    pub(crate) port: u16,
    /// Between A and B, if the link is to be cut.
    pub(crate) relay: Option<Relay>,
    pub(crate) dir: PathBuf,
}

impl Pair {
    pub(crate) fn new(test: &str) -> Pair {
        Pair {
            a: Host::new(),
            b: Host::new(),
            port: free_port(),
            relay: None,
            dir: scratch_dir(test),
        }
    }
    pub(crate) fn with_relay(test: &str) -> Pair {
        let mut p = Pair::new(test);
        p.relay = Some(Relay::new(p.port));
        p
    }
    pub(crate) fn bridge_a(&self, names: &[&str]) -> Bridge {
        let port = self.relay.as_ref().map_or(self.port, |r| r.port);
        Bridge::start(&self.a, names, "--connect", port, self.dir.join("a.log"))
    }
    pub(crate) fn bridge_b(&self, names: &[&str]) -> Bridge {
        Bridge::start(
            &self.b,
            names,
            "--listen",
            self.port,
            self.dir.join("b.log"),
        )
    }
    /// After everything in them stopped: nothing left in either /dev/shm.
    pub(crate) fn assert_clean(&self) {
        assert_eq!(self.a.shm(), Vec::<String>::new(), "host A /dev/shm");
        assert_eq!(self.b.shm(), Vec::<String>::new(), "host B /dev/shm");
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// This test binary re-run in `host` as `role`.
pub(crate) fn child(
    host: &Host,
    role: &str,
    name: &str,
    count: u64,
    pace_us: u64,
    ready: &Path,
) -> Command {
    let mut c = host.cmd(std::env::current_exe().unwrap());
    c.args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ENV_ROLE, role)
        .env(ENV_NAME, name)
        .env(ENV_COUNT, count.to_string())
        .env(ENV_PACE_US, pace_us.to_string())
        .env(ENV_READY, ready)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub(crate) fn wait_file(p: &Path) {
    let until = Instant::now() + LIMIT;
    while !p.exists() {
        assert!(Instant::now() < until, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn checked(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(CHILD_OK),
        "{what} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// What a stopped bridge said it did for `ring`: (sent, received).
pub(crate) fn counts(log: &str, ring: &str) -> (u64, u64) {
    let prefix = format!("mapshare-bridge: {ring}: sent ");
    let rest = log
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no counts for {ring} in {log}"));
    let (sent, received) = rest.split_once(", received ").unwrap();
    (sent.parse().unwrap(), received.parse().unwrap())
}

// ---- messages: sequence number, a body, a checksum ----

pub(crate) fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn message(i: u64) -> Vec<u8> {
    let len = (i.wrapping_mul(7919) % 200) as usize;
    let mut m = i.to_le_bytes().to_vec();
    m.extend((0..len).map(|k| (i as u8) ^ (k as u8).wrapping_mul(31)));
    let sum = fnv(&m);
    m.extend(sum.to_le_bytes());
    m
}

/// The sequence number of a message whose checksum holds.
pub(crate) fn check(m: &[u8]) -> Option<u64> {
    if m.len() < 16 {
        return None;
    }
    let (body, sum) = m.split_at(m.len() - 8);
    let i = u64::from_le_bytes(body[..8].try_into().ok()?);
    (fnv(body) == u64::from_le_bytes(sum.try_into().ok()?) && message(i) == m).then_some(i)
}

/// What a subscriber child saw: `received`, the sequence numbers missing
/// (`lost`), and whether every message came in increasing order.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) received: u64,
    pub(crate) lost: u64,
    /// Where the first gap starts, and its length.
    #[allow(dead_code)] // Reason: read through `Debug`, in the report line.
    pub(crate) first_gap: Option<(u64, u64)>,
}

pub(crate) fn parse_seen(stdout: &str) -> Seen {
    // The harness may have printed `test child_role ... ` before it.
    let line = stdout
        .lines()
        .find_map(|l| l.find("SEEN ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no SEEN line in {stdout}"));
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.split('=').nth(1).unwrap().parse().unwrap())
        .collect();
    Seen {
        received: f[0],
        lost: f[1],
        first_gap: (f[2] > 0).then_some((f[2], f[3])),
    }
}
