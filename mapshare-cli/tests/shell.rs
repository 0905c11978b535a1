//! The shell-level suite: the scripts in `tests/shell/` and the README's
//! CLI tour, run with bash exactly as a user types them, with the freshly
//! built `mapshare` first on PATH (issue 8). Each script runs in a scratch
//! directory with a unique name prefix in `$P`; afterwards nothing named
//! after that prefix may be left in /dev/shm.

// Unix by nature: bash scripts and a POSIX shell. Under Wine the CLI is
// run end to end by ci/windows/e2e.sh instead.
#![cfg(unix)]

mod support;
use support::gc_lock;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_mapshare"))
        .parent()
        .expect("the binary has a directory")
        .to_owned()
}

fn path_with_bin() -> std::ffi::OsString {
    let mut paths = vec![bin_dir()];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).expect("PATH")
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "mapshare-shell-{what}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a script left in /dev/shm under `prefix`.
fn leftovers(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `bash -c script` (or a script file) in a scratch directory with
/// `$P` set; panics with its output unless it exits 0 and leaves nothing.
fn run_bash(what: &str, args: &[&str]) -> String {
    let scratch = Scratch::new(what);
    let prefix = format!("sh{}-{what}", std::process::id());
    let out = Command::new("bash")
        .args(args)
        .current_dir(&scratch.0)
        .env("PATH", path_with_bin())
        .env("P", &prefix)
        .output()
        .expect("running bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Remove what a failed script left, but report it.
    let left = leftovers(&prefix);
    for name in &left {
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(name));
    }
    assert!(
        out.status.success(),
        "{what}: {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        out.status
    );
    assert!(left.is_empty(), "{what} left {left:?} in /dev/shm");
    stdout
}

fn script(name: &str) -> String {
    // Some scripts run `gc`, which is global: one at a time with the other
    // tests that leave dead segments on purpose.
    let _gc = gc_lock();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/shell")
        .join(format!("{name}.sh"));
    run_bash(name, &[path.to_str().expect("UTF-8 path")])
}

#[test]
fn lock_is_flock_under_kill_9() {
    script("lock_kill9");
}

#[test]
fn subscribers_before_the_publisher_get_everything() {
    script("sub_before_pub");
}

#[test]
fn late_subscribers_take_history() {
    script("history");
}

#[test]
fn signals_end_waits_and_clean_up() {
    script("signals");
}

#[test]
fn leftovers_name_their_fix_and_gc_keeps_send_mailboxes() {
    script("leftovers");
}

#[test]
fn pub_input_is_bounded_and_null_framing_is_exact() {
    script("input");
}

#[test]
fn a_script_serves_and_calls_a_local_service() {
    script("service");
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    script("usage");
}

/// The ```sh block under "## CLI tour" in the README.
fn readme_tour() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = readme.find("## CLI tour").expect("a CLI tour section");
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block ends") + open;
    rest[open..close].to_owned()
}

#[test]
fn the_readme_cli_tour_does_what_it_says() {
    let _gc = gc_lock();
    let tour = readme_tour();
    // Line by line, as pasted into a shell; `set -e` so any failing line
    // fails the test, and `wait` so background lines must end well too.
    let script = format!("set -euo pipefail\n{tour}\nfor j in $(jobs -p); do wait \"$j\"; done\n");
    let out = run_bash("tour", &["-c", &script]);
    for want in ["grüß dich 👋", "1\n2\n3\n", "one at a time", "GRüß DICH"] {
        assert!(
            out.contains(want),
            "the tour did not print {want:?}:\n{out}"
        );
    }
    for name in ["hello", "backup", "nums", "upper"] {
        assert!(
            !Path::new("/dev/shm")
                .join(format!("mapshare.{name}"))
                .exists(),
            "the tour left {name} behind"
        );
    }
}
