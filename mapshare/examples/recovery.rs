//! Measures how fast the survivors recover when a peer is killed with
//! SIGKILL: a robust mutex's next locker (on each lock path), and a lossless
//! publisher blocked on a subscriber. The figures quoted in the README.
//!
//! ```text
//! cargo run --release --example recovery
//! ```
//!
//! The time is taken from the moment the killed process has been reaped
//! (the kernel has released everything it held) to the moment the survivor's
//! call returns.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mapshare::{LockError, LockTimeoutError, Mutex, Policy, Publisher, Subscriber, TryLockError};

const ROUNDS: u64 = 20;

fn spawn(role: &str, name: &str) -> (Child, String) {
    let flag = std::env::temp_dir().join(format!("mapshare-recovery-{name}"));
    let child = Command::new(std::env::current_exe().unwrap())
        .args([role, name])
        .spawn()
        .unwrap();
    while !Path::new(&flag).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&flag);
    (child, name.to_owned())
}

fn ready(name: &str) {
    std::fs::write(
        std::env::temp_dir().join(format!("mapshare-recovery-{name}")),
        b"",
    )
    .unwrap();
}

/// Kills `child` after a varying delay, from another thread; returns when it was reaped.
fn kill_later(mut child: Child, round: u64) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20 + (round * 7) % 40));
        child.kill().unwrap();
        child.wait().unwrap();
        Instant::now()
    })
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{what:<44} min {:>9.3?}  median {:>9.3?}  max {:>9.3?}  ({} kills)",
        lat[0],
        lat[lat.len() / 2],
        lat[lat.len() - 1],
        lat.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("holder") => {
            let m = Mutex::open(&args[2]).unwrap();
            let _held = m.lock().unwrap();
            ready(&args[2]);
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        Some("subscriber") => {
            let _s = Subscriber::open(&args[2]).unwrap();
            ready(&args[2]);
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        _ => {}
    }
    let pid = std::process::id();
    for path in ["lock", "lock_timeout", "try_lock"] {
        let mut lat = Vec::new();
        for round in 0..ROUNDS {
            let name = format!("recovery-{pid}-{path}-{round}");
            let m = Mutex::create(&name).unwrap();
            let (child, _) = spawn("holder", &name);
            let killer = kill_later(child, round);
            // Whether the call returned `OwnerDied` (each path has its own error type).
            let died = match path {
                "lock" => matches!(m.lock(), Err(LockError::OwnerDied(_))),
                "lock_timeout" => matches!(
                    m.lock_timeout(Duration::from_secs(10)),
                    Err(LockTimeoutError::OwnerDied(_))
                ),
                _ => loop {
                    match m.try_lock() {
                        Err(TryLockError::WouldBlock) => {
                            std::thread::sleep(Duration::from_micros(100))
                        }
                        r => break matches!(r, Err(TryLockError::OwnerDied(_))),
                    }
                },
            };
            let done = Instant::now();
            assert!(died, "{path}: expected OwnerDied");
            lat.push(done.saturating_duration_since(killer.join().unwrap()));
        }
        report(&format!("mutex {path}: OwnerDied after the kill"), lat);
    }
    let mut lat = Vec::new();
    for round in 0..ROUNDS {
        let name = format!("recovery-{pid}-pub-{round}");
        let mut publisher = Publisher::options(&name)
            .capacity(4)
            .policy(Policy::Lossless)
            .create()
            .unwrap();
        let (child, _) = spawn("subscriber", &name);
        for _ in 0..4 {
            publisher.publish(b"m").unwrap(); // fills the ring: the subscriber never reads
        }
        let killer = kill_later(child, round);
        publisher.publish(b"m").unwrap(); // blocked until the dead subscriber is dropped
        let done = Instant::now();
        lat.push(done.saturating_duration_since(killer.join().unwrap()));
    }
    report("lossless publish unblocked after the kill", lat);
}
