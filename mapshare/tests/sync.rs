//! Cross-process synchronisation: a mutex-protected counter hammered by
//! several processes, robust locking when the holder is killed (on every
//! lock path, and with waiters already blocked), and events.

mod common;

use std::fs;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{assert_clean, spawn_child, unique_name, ChildProc, Cleanup, TempDir};
use mapshare::{
    Event, EventMode, Fault, LockError, LockTimeoutError, Mutex, Pod, RecvTimeoutError, Shared,
    TryLockError, TryRecvError, Zeroable,
};

/// The shared counter, with the holder's pid to catch two holders at once.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Counter {
    value: u64,
    holder: u64,
}

/// How a lock attempt ended (guards are dropped at once), whatever the
/// lock path's own error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Clean,
    OwnerDied,
    WouldBlock,
    Timeout,
    Fault(Fault),
}

/// The error of any lock path, as an [`Outcome`].
trait ToOutcome {
    fn outcome(&self) -> Outcome;
}

impl<G> ToOutcome for LockError<G> {
    fn outcome(&self) -> Outcome {
        match self {
            LockError::OwnerDied(_) => Outcome::OwnerDied,
            LockError::Fault(f) => Outcome::Fault(*f),
            _ => unreachable!("a LockError variant this test does not know"),
        }
    }
}

impl<G> ToOutcome for TryLockError<G> {
    fn outcome(&self) -> Outcome {
        match self {
            TryLockError::OwnerDied(_) => Outcome::OwnerDied,
            TryLockError::WouldBlock => Outcome::WouldBlock,
            TryLockError::Fault(f) => Outcome::Fault(*f),
            _ => unreachable!("a TryLockError variant this test does not know"),
        }
    }
}

impl<G> ToOutcome for LockTimeoutError<G> {
    fn outcome(&self) -> Outcome {
        match self {
            LockTimeoutError::OwnerDied(_) => Outcome::OwnerDied,
            LockTimeoutError::Timeout => Outcome::Timeout,
            LockTimeoutError::Fault(f) => Outcome::Fault(*f),
            _ => unreachable!("a LockTimeoutError variant this test does not know"),
        }
    }
}

fn outcome<G, E: ToOutcome>(r: Result<G, E>) -> Outcome {
    match r {
        Ok(_) => Outcome::Clean,
        Err(e) => e.outcome(),
    }
}

/// The three lock paths.
#[derive(Debug, Clone, Copy)]
enum Path {
    Lock,
    TryLock,
    LockTimeout,
}

/// Something with a robust lock: a named `Mutex` or a `Shared<u64>`.
trait Lockable: Sized {
    fn create(name: &str) -> Self;
    fn open(name: &str) -> Self;
    fn attempt(&self, path: Path) -> Outcome;
    /// Locks and keeps the lock for ever (the caller gets killed).
    fn hold_forever(&self, c: &common::ChildCtx) -> !;
}

fn wait_to_be_killed(c: &common::ChildCtx) -> ! {
    c.signal("held");
    loop {
        sleep(Duration::from_secs(1)); // the parent kills us; the watchdog bounds it
    }
}

impl Lockable for Mutex {
    fn create(name: &str) -> Self {
        Mutex::create(name).unwrap()
    }
    fn open(name: &str) -> Self {
        Mutex::open(name).unwrap()
    }
    fn attempt(&self, path: Path) -> Outcome {
        match path {
            Path::Lock => outcome(self.lock()),
            Path::TryLock => outcome(self.try_lock()),
            Path::LockTimeout => outcome(self.lock_timeout(Duration::from_secs(10))),
        }
    }
    fn hold_forever(&self, c: &common::ChildCtx) -> ! {
        let _g = self.lock().expect("clean lock");
        wait_to_be_killed(c)
    }
}

impl Lockable for Shared<u64> {
    fn create(name: &str) -> Self {
        Shared::create(name).unwrap()
    }
    fn open(name: &str) -> Self {
        Shared::open(name).unwrap()
    }
    fn attempt(&self, path: Path) -> Outcome {
        // What the dead holder wrote before dying is visible to the next owner.
        let check = |g: &mapshare::SharedGuard<'_, u64>| {
            assert_eq!(g.get(), 0xdead, "half-done update not visible");
        };
        match path {
            Path::Lock => {
                let r = self.lock();
                if let Err(LockError::OwnerDied(g)) = &r {
                    check(g);
                }
                outcome(r)
            }
            Path::TryLock => {
                let r = self.try_lock();
                if let Err(TryLockError::OwnerDied(g)) = &r {
                    check(g);
                }
                outcome(r)
            }
            Path::LockTimeout => {
                let r = self.lock_timeout(Duration::from_secs(10));
                if let Err(LockTimeoutError::OwnerDied(g)) = &r {
                    check(g);
                }
                outcome(r)
            }
        }
    }
    fn hold_forever(&self, c: &common::ChildCtx) -> ! {
        let mut g = self.lock().expect("clean lock");
        g.set(&0xdead); // a half-done update
        wait_to_be_killed(c)
    }
}

fn holder_role<L: Lockable>(c: &common::ChildCtx) {
    let l = L::open(&c.name);
    l.hold_forever(c);
}

/// Parent side: a child locks and is SIGKILLed; `path` must then report
/// `OwnerDied`, and the lock after that is clean.
fn killed_holder_is_reported<L: Lockable>(test: &str, role: &str, path: Path) {
    let dir = TempDir::new(test);
    let name = unique_name(test);
    let _c = Cleanup::new(&name);
    let l = L::create(&name);
    let mut holder = spawn_child(test, role, &name, dir.path(), "");
    if !common::wait_for_flag_or_exit(dir.path(), "held", &mut holder) {
        holder.wait_ok();
        panic!("holder exited without taking the lock");
    }
    // While it lives, the lock is really held.
    assert_eq!(l.attempt(Path::TryLock), Outcome::WouldBlock);
    holder.kill();
    let got = match path {
        // The kernel drops the dead process's registry lock as it exits;
        // until then try_lock may still say WouldBlock. Retry; the watchdog
        // is the only bound.
        Path::TryLock => loop {
            match l.attempt(Path::TryLock) {
                Outcome::WouldBlock => sleep(Duration::from_millis(1)),
                other => break other,
            }
        },
        p => l.attempt(p),
    };
    assert_eq!(
        got,
        Outcome::OwnerDied,
        "{path:?} after the holder was killed"
    );
    assert_eq!(l.attempt(path), Outcome::Clean, "{path:?} after recovery");
    assert_eq!(l.attempt(Path::Lock), Outcome::Clean);
    drop(l);
    assert_clean(&[&name], &[holder.id()]);
}

#[test]
fn mutex_counter_is_exact_under_four_processes() {
    const PROCS: usize = 4;
    const ROUNDS: u64 = 1000;
    if let Some(child) = common::child() {
        child.run(|c| {
            let s = Shared::<Counter>::open(&c.name).unwrap();
            let me = u64::from(std::process::id());
            c.signal(&format!("ready-{}", c.arg));
            c.wait_for("go");
            for i in 0..ROUNDS {
                let mut g = s.lock().expect("clean lock");
                let mut v = g.get();
                assert_eq!(v.holder, 0, "two holders at once (round {i})");
                v.holder = me;
                g.set(&v);
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
                let mut v = g.get();
                assert_eq!(v.holder, me, "another process wrote under our lock");
                v.value += 1;
                v.holder = 0;
                g.set(&v);
            }
        });
    }
    let test = "mutex_counter_is_exact_under_four_processes";
    let _wd = common::watchdog(test);
    let dir = TempDir::new("counter");
    let name = unique_name("counter");
    let _c = Cleanup::new(&name);
    let s = Shared::<Counter>::create(&name).unwrap();
    let mut kids: Vec<ChildProc> = (0..PROCS)
        .map(|i| spawn_child(test, "hammer", &name, dir.path(), &i.to_string()))
        .collect();
    for (i, k) in kids.iter_mut().enumerate() {
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("ready-{i}"),
            k
        ));
    }
    common::signal(dir.path(), "go");
    for k in &mut kids {
        k.wait_ok();
    }
    let v = s.lock().unwrap().get();
    assert_eq!(v.value, PROCS as u64 * ROUNDS);
    assert_eq!(v.holder, 0);
    drop(s);
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    assert_clean(&[&name], &pids);
}

#[test]
fn lock_reports_owner_died_after_holder_killed() {
    let test = "lock_reports_owner_died_after_holder_killed";
    if let Some(child) = common::child() {
        child.run(|c| match c.role.as_str() {
            "mutex" => holder_role::<Mutex>(c),
            _ => holder_role::<Shared<u64>>(c),
        });
    }
    let _wd = common::watchdog(test);
    killed_holder_is_reported::<Mutex>(test, "mutex", Path::Lock);
    killed_holder_is_reported::<Shared<u64>>(test, "shared", Path::Lock);
}

#[test]
fn try_lock_reports_owner_died_after_holder_killed() {
    let test = "try_lock_reports_owner_died_after_holder_killed";
    if let Some(child) = common::child() {
        child.run(|c| match c.role.as_str() {
            "mutex" => holder_role::<Mutex>(c),
            _ => holder_role::<Shared<u64>>(c),
        });
    }
    let _wd = common::watchdog(test);
    killed_holder_is_reported::<Mutex>(test, "mutex", Path::TryLock);
    killed_holder_is_reported::<Shared<u64>>(test, "shared", Path::TryLock);
}

#[test]
fn lock_timeout_reports_owner_died_after_holder_killed() {
    let test = "lock_timeout_reports_owner_died_after_holder_killed";
    if let Some(child) = common::child() {
        child.run(|c| match c.role.as_str() {
            "mutex" => holder_role::<Mutex>(c),
            _ => holder_role::<Shared<u64>>(c),
        });
    }
    let _wd = common::watchdog(test);
    killed_holder_is_reported::<Mutex>(test, "mutex", Path::LockTimeout);
    killed_holder_is_reported::<Shared<u64>>(test, "shared", Path::LockTimeout);
}

/// Waiters already blocked in `lock()` in other processes when the holder
/// is killed: none hangs; exactly one is told the owner died.
#[test]
fn blocked_waiters_get_lock_after_holder_killed() {
    let test = "blocked_waiters_get_lock_after_holder_killed";
    if let Some(child) = common::child() {
        child.run(|c| match c.role.as_str() {
            "holder" => holder_role::<Mutex>(c),
            _ => {
                let m = Mutex::open(&c.name).unwrap();
                c.signal(&format!("waiting-{}", c.arg));
                let result = match m.lock() {
                    Ok(_) => "clean",
                    Err(LockError::OwnerDied(_)) => "died",
                    Err(e) => panic!("lock() failed: {e}"),
                };
                common::write_atomic(&c.dir, &format!("result-{}", c.arg), result.as_bytes());
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("waiters");
    let name = unique_name("waiters");
    let _c = Cleanup::new(&name);
    let m = Mutex::create(&name).unwrap();
    let mut holder = spawn_child(test, "holder", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "held",
        &mut holder
    ));
    let mut waiters: Vec<ChildProc> = (0..2)
        .map(|i| spawn_child(test, "waiter", &name, dir.path(), &i.to_string()))
        .collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("waiting-{i}"),
            w
        ));
    }
    // The flags say both are about to call lock(); give them time to get
    // to sleep in it (the handshake is the flag; this only makes the
    // "already blocked" case the likely one).
    sleep(Duration::from_millis(200));
    for w in &mut waiters {
        assert!(!w.has_exited(), "a waiter got a lock a live process holds");
    }
    holder.kill();
    for w in &mut waiters {
        w.wait_ok();
    }
    let mut results: Vec<String> = (0..2)
        .map(|i| fs::read_to_string(dir.join(&format!("result-{i}"))).unwrap())
        .collect();
    results.sort();
    assert_eq!(
        results,
        ["clean", "died"],
        "exactly one waiter learns the owner died"
    );
    assert!(m.lock().is_ok(), "lock after recovery is clean");
    drop(m);
    let mut pids = vec![holder.id()];
    pids.extend(waiters.iter().map(|w| w.id()));
    assert_clean(&[&name], &pids);
}

#[test]
fn event_wakes_waiter_in_another_process() {
    let test = "event_wakes_waiter_in_another_process";
    if let Some(child) = common::child() {
        child.run(|c| {
            let e = Event::open(&c.name).unwrap();
            assert_eq!(e.mode(), EventMode::AutoReset);
            c.signal("waiting");
            e.wait_timeout(Duration::from_secs(30))
                .expect("not woken by notify");
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("event");
    let name = unique_name("event");
    let _c = Cleanup::new(&name);
    let e = Event::create(&name).unwrap();
    assert_eq!(e.mode(), EventMode::AutoReset);
    let mut w = spawn_child(test, "waiter", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(dir.path(), "waiting", &mut w));
    e.notify();
    w.wait_ok();
    // Auto-reset: the waiter consumed the signal.
    assert!(!e.is_set());
    assert_eq!(e.try_wait(), Err(TryRecvError::Empty));
    drop(e);
    assert_clean(&[&name], &[w.id()]);
}

#[test]
fn shared_notify_wakes_reader_in_another_process() {
    let test = "shared_notify_wakes_reader_in_another_process";
    if let Some(child) = common::child() {
        child.run(|c| {
            let s = Shared::<u64>::open(&c.name).unwrap();
            c.signal("waiting");
            s.wait_timeout(Duration::from_secs(30))
                .expect("not woken by notify");
            assert_eq!(
                s.lock().unwrap().get(),
                77,
                "notified before the data was there"
            );
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("shared_notify");
    let name = unique_name("shared_notify");
    let _c = Cleanup::new(&name);
    let s = Shared::<u64>::create(&name).unwrap();
    let mut r = spawn_child(test, "reader", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(dir.path(), "waiting", &mut r));
    s.lock().unwrap().set(&77);
    s.notify();
    r.wait_ok();
    drop(s);
    assert_clean(&[&name], &[r.id()]);
}

#[test]
fn manual_reset_event_wakes_every_waiter() {
    let test = "manual_reset_event_wakes_every_waiter";
    if let Some(child) = common::child() {
        child.run(|c| {
            let e = Event::open(&c.name).unwrap();
            assert_eq!(e.mode(), EventMode::ManualReset);
            c.signal(&format!("waiting-{}", c.arg));
            e.wait_timeout(Duration::from_secs(30))
                .expect("not woken by notify");
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("manual");
    let name = unique_name("manual");
    let _c = Cleanup::new(&name);
    let e = Event::options(&name).manual_reset(true).create().unwrap();
    let mut ws: Vec<ChildProc> = (0..2)
        .map(|i| spawn_child(test, "waiter", &name, dir.path(), &i.to_string()))
        .collect();
    for (i, w) in ws.iter_mut().enumerate() {
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("waiting-{i}"),
            w
        ));
    }
    e.notify();
    for w in &mut ws {
        w.wait_ok();
    }
    // Manual-reset: still set after both waits, until reset.
    assert!(e.is_set());
    assert!(e.try_wait().is_ok());
    e.reset();
    assert_eq!(e.try_wait(), Err(TryRecvError::Empty));
    drop(e);
    let pids: Vec<u32> = ws.iter().map(|w| w.id()).collect();
    assert_clean(&[&name], &pids);
}

/// 1000 rounds of ping-pong between two processes on two auto-reset
/// events: a lost wake-up would show as a 30 s timeout.
#[test]
fn event_ping_pong_loses_no_wake_up() {
    const ROUNDS: usize = 1000;
    let test = "event_ping_pong_loses_no_wake_up";
    if let Some(child) = common::child() {
        child.run(|c| {
            let ping = Event::open(&format!("{}.ping", c.name)).unwrap();
            let pong = Event::open(&format!("{}.pong", c.name)).unwrap();
            c.signal("ready");
            for i in 0..ROUNDS {
                ping.wait_timeout(Duration::from_secs(30))
                    .unwrap_or_else(|_| panic!("child: lost wake-up in round {i}"));
                pong.notify();
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("pingpong");
    let name = unique_name("pingpong");
    let (ping_name, pong_name) = (format!("{name}.ping"), format!("{name}.pong"));
    let mut c = Cleanup::new(&ping_name);
    c.add(&pong_name);
    let ping = Event::create(&ping_name).unwrap();
    let pong = Event::create(&pong_name).unwrap();
    let mut child = spawn_child(test, "ponger", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "ready",
        &mut child
    ));
    for i in 0..ROUNDS {
        ping.notify();
        pong.wait_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("parent: lost wake-up in round {i}"));
    }
    child.wait_ok();
    drop((ping, pong));
    assert_clean(&[&ping_name, &pong_name], &[child.id()]);
}

#[test]
fn event_wait_timeout_fails_after_timeout_when_unsignalled() {
    let _wd = common::watchdog("event_wait_timeout_fails_after_timeout_when_unsignalled");
    let name = unique_name("evtimeout");
    let _c = Cleanup::new(&name);
    let timeout = Duration::from_millis(150);
    for mode in [EventMode::AutoReset, EventMode::ManualReset] {
        let e = Event::options(&name)
            .manual_reset(mode == EventMode::ManualReset)
            .open_or_create()
            .unwrap();
        assert_eq!(e.mode(), mode);
        let start = Instant::now();
        assert_eq!(e.wait_timeout(timeout), Err(RecvTimeoutError::Timeout));
        assert!(
            start.elapsed() >= timeout,
            "returned early: {:?}",
            start.elapsed()
        );
        drop(e); // last handle: unlinked, so the next mode is a new event
    }
    let s = Shared::<u64>::create(&name).unwrap();
    let start = Instant::now();
    assert_eq!(s.wait_timeout(timeout), Err(RecvTimeoutError::Timeout));
    assert!(start.elapsed() >= timeout);
    // A lock held by a live owner: lock_timeout waits at least the timeout too.
    let other = Shared::<u64>::open(&name).unwrap();
    let _held = s.lock().unwrap();
    let start = Instant::now();
    assert!(matches!(
        other.lock_timeout(timeout),
        Err(LockTimeoutError::Timeout)
    ));
    assert!(start.elapsed() >= timeout);
}
