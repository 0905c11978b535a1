//! End-to-end tests of the `mapshare-bench` binary: a short real run (two
//! processes, the floor line, channels, a pipe and a socket) that must end
//! cleanly and leave nothing behind, and the usage errors. The figures are
//! not judged: a test machine is too noisy for that.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mapshare-bench");

/// A run that takes longer than this is killed and the test fails.
const WATCHDOG: Duration = Duration::from_secs(120);

/// Runs the binary with `args`, killing it after [`WATCHDOG`]; the output
/// and the child's pid.
fn run(args: &[&str]) -> (Output, u32) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mapshare-bench");
    let pid = child.id();
    let deadline = Instant::now() + WATCHDOG;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mapshare-bench {args:?} still running after {WATCHDOG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().expect("output"), pid)
}

/// What a run with pid `pid` left in `dir`: its segments
/// (`mapshare.bench-<pid>-*`), floor lines (`mapshare-bench.<pid>-*`) and
/// sockets (`mapshare-bench-<pid>-*`).
fn left_by(dir: &Path, pid: u32) -> Vec<String> {
    let marks = [
        format!("mapshare.bench-{pid}-"),
        format!("mapshare-bench.{pid}-"),
        format!("mapshare-bench-{pid}-"),
    ];
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| marks.iter().any(|m| f.starts_with(m.as_str())))
        .collect()
}

#[test]
fn quick_latency_run_ends_cleanly_and_leaves_nothing() {
    let (out, pid) = run(&["--quick", "--json", "--only", "latency", "--sizes", "64"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let rows = |k: &str| json[k].as_array().map_or(0, Vec::len);
    // Channel and pub/sub polling, polling loaned and blocking, the raw
    // copy floor, pipe, socket; the paced run.
    assert_eq!(
        (rows("latency"), rows("paced"), rows("throughput")),
        (9, 1, 0)
    );
    assert!(json["floor"]["reference_ns"]
        .as_f64()
        .is_some_and(|f| f > 0.0));
    assert_eq!(left_by(Path::new("/dev/shm"), pid), Vec::<String>::new());
    assert_eq!(left_by(&std::env::temp_dir(), pid), Vec::<String>::new());
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [&["--sizes", "4"][..], &["--only", "both"], &["--reps", "0"]] {
        let (out, _) = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}
