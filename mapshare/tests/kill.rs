//! Real processes killed with SIGKILL at random moments, many times over:
//!
//! - a mutex holder killed while it holds the lock or while it unlocks,
//!   with a second process blocked in `lock()`: every lock path (`lock`,
//!   `try_lock`, `lock_timeout`) recovers, nobody hangs, and the data the
//!   lock protects stays consistent with the critical sections completed;
//! - the process that repairs after a dead owner is itself killed during
//!   the repair, and a third one still recovers;
//! - a creator killed at a random step of initialisation never exposes a
//!   half-built segment;
//! - eight processes racing `create` on one name: exactly one wins, the
//!   others get `AlreadyExists`; racing `open_or_create`: all succeed on one
//!   segment made by one creator.
//!
//! Every test has a watchdog, and so has every child: a hang is a failure.
//! The iteration counts are printed (`--nocapture`).

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{assert_clean, spawn_child, unique_name, ChildCtx, ChildProc, Cleanup, TempDir};
use mapshare::segment;
use mapshare::{
    Location, LockError, LockTimeoutError, Mailbox, Pod, SegmentError, Shared, SharedGuard,
    TryLockError, Zeroable,
};

/// The data the mutex protects. A critical section bumps `begun`, then the
/// counter of whoever runs it, then `ended`, each as a separate store with a
/// pause in between, so a holder killed mid-section leaves a *torn* ledger
/// that the next owner can see:
///
/// - after a clean lock: `begun == ended == by_killed + by_survivor + by_parent`;
/// - after `OwnerDied`: at most one section is torn: `ended <= sum <= begun`
///   and `begun - ended <= 1`. The repair rolls the torn section back to
///   what the per-process counters say was done: `begun = ended = sum`.
///
/// The per-process counters are never touched by a repair, so a process
/// that is not killed can check at the end that every one of its sections
/// was counted exactly once.
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
#[repr(C)]
struct Ledger {
    begun: u64,
    ended: u64,
    /// Sections completed by processes that get killed (hammers, repairers).
    by_killed: u64,
    /// Sections completed by the waiter, which is never killed.
    by_survivor: u64,
    /// Sections completed by the parent.
    by_parent: u64,
}

impl Ledger {
    fn sum(&self) -> u64 {
        self.by_killed + self.by_survivor + self.by_parent
    }

    /// Checks the invariant for a lock taken cleanly (`died == false`) or
    /// taken over from a dead owner.
    fn check(&self, died: bool) -> Result<(), String> {
        let sum = self.sum();
        let ok = if died {
            self.ended <= sum && sum <= self.begun && self.begun - self.ended <= 1
        } else {
            self.begun == self.ended && self.ended == sum
        };
        if ok {
            Ok(())
        } else if died {
            Err(format!(
                "more than one torn section after OwnerDied: {self:?}"
            ))
        } else {
            Err(format!("torn ledger after a clean lock: {self:?}"))
        }
    }

    fn repair(&mut self) {
        let sum = self.sum();
        self.begun = sum;
        self.ended = sum;
    }
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Killed,
    Survivor,
    Parent,
}

fn counter(v: &mut Ledger, who: Who) -> &mut u64 {
    match who {
        Who::Killed => &mut v.by_killed,
        Who::Survivor => &mut v.by_survivor,
        Who::Parent => &mut v.by_parent,
    }
}

/// A short busy pause inside the critical section, so kills land inside it.
fn pause() {
    for _ in 0..64 {
        std::hint::spin_loop();
    }
}

/// One critical section, in three separate stores.
fn section(g: &mut SharedGuard<'_, Ledger>, who: Who) {
    let mut v = g.get();
    v.begun += 1;
    g.set(&v);
    pause();
    *counter(&mut v, who) += 1;
    g.set(&v);
    pause();
    v.ended += 1;
    g.set(&v);
}

/// Checks (and after a dead owner, repairs) the ledger under a fresh lock.
fn check_and_repair(g: &mut SharedGuard<'_, Ledger>, died: bool, who: &str) {
    let mut v = g.get();
    if let Err(e) = v.check(died) {
        panic!("{who}: {e}");
    }
    if died {
        v.repair();
        g.set(&v);
    }
}

/// The three lock paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Lock,
    TryLock,
    LockTimeout,
}

const PATHS: [Path; 3] = [Path::Lock, Path::TryLock, Path::LockTimeout];

/// Takes the lock by `path`, retrying `WouldBlock` and `Timeout` (a live
/// process may hold it for a moment; only the watchdog bounds the retries).
/// Returns the guard and whether the previous owner died.
fn acquire(s: &Shared<Ledger>, path: Path) -> (SharedGuard<'_, Ledger>, bool) {
    loop {
        match path {
            Path::Lock => match s.lock() {
                Ok(g) => return (g, false),
                Err(LockError::OwnerDied(g)) => return (g, true),
                Err(e) => panic!("lock: {e}"),
            },
            Path::TryLock => match s.try_lock() {
                Ok(g) => return (g, false),
                Err(TryLockError::OwnerDied(g)) => return (g, true),
                Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_micros(200)),
                Err(e) => panic!("try_lock: {e}"),
            },
            Path::LockTimeout => match s.lock_timeout(Duration::from_millis(50)) {
                Ok(g) => return (g, false),
                Err(LockTimeoutError::OwnerDied(g)) => return (g, true),
                Err(LockTimeoutError::Timeout) => {}
                Err(e) => panic!("lock_timeout: {e}"),
            },
        }
    }
}

fn read_ledger(s: &Shared<Ledger>) -> Ledger {
    let (mut g, died) = acquire(s, Path::Lock);
    check_and_repair(&mut g, died, "parent (read)");
    g.get()
}

/// Parks a child until the parent kills it (the child's watchdog bounds it).
fn wait_to_be_killed() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Children of the random-kill test.
///
/// - `hammer`: lock, section, unlock, as fast as it can, for ever; raises
///   `started-<arg>` after its first section. Killed by the parent.
/// - `waiter`: the same in a loop with the blocking `lock()`, until the
///   `stop` flag; then writes how many sections it completed and how many
///   dead owners it took over from.
fn random_kill_child(c: &ChildCtx) {
    let s = Shared::<Ledger>::open(&c.name).expect("open");
    match c.role.as_str() {
        "hammer" => {
            let mut started = false;
            loop {
                let (mut g, died) = acquire(&s, Path::Lock);
                check_and_repair(&mut g, died, "hammer");
                section(&mut g, Who::Killed);
                drop(g);
                if !started {
                    c.signal(&format!("started-{}", c.arg));
                    started = true;
                }
            }
        }
        "waiter" => {
            let stop = c.dir.join("stop");
            let (mut done, mut took_over) = (0u64, 0u64);
            c.signal("waiter-up");
            while !stop.exists() {
                let (mut g, died) = match s.lock() {
                    Ok(g) => (g, false),
                    Err(LockError::OwnerDied(g)) => (g, true),
                    Err(e) => panic!("waiter: lock() failed: {e}"),
                };
                took_over += u64::from(died);
                check_and_repair(&mut g, died, "waiter");
                section(&mut g, Who::Survivor);
                done += 1;
            }
            common::write_atomic(
                &c.dir,
                "waiter-result",
                format!("{done} {took_over}").as_bytes(),
            );
        }
        other => panic!("unknown role {other}"),
    }
}

/// A hammer killed 30 times at a random moment (0..5 ms into its run),
/// while a waiter is blocked in `lock()`. After each kill, every lock path
/// succeeds (clean or with `OwnerDied`) and the ledger is consistent; at the
/// end, every section of the survivors was counted exactly once.
#[test]
fn mutex_holder_killed_at_random_moments_every_lock_path_recovers() {
    const ITERATIONS: usize = 30;
    let test = "mutex_holder_killed_at_random_moments_every_lock_path_recovers";
    if let Some(child) = common::child() {
        child.run(random_kill_child);
    }
    let _wd = common::watchdog_for(test, Duration::from_secs(180));
    let mut rng = common::XorShift::from_time(test);
    let dir = TempDir::new("randkill");
    let name = unique_name("randkill");
    let _c = Cleanup::new(&name);
    let s = Shared::<Ledger>::create(&name).unwrap();

    let mut waiter = spawn_child(test, "waiter", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "waiter-up",
        &mut waiter
    ));
    let mut pids = vec![waiter.id()];
    let mut parent_done = 0u64;
    let mut died_by_path = [0u32; 3];
    let mut last_killed = 0u64;
    for i in 0..ITERATIONS {
        let mut hammer = spawn_child(test, "hammer", &name, dir.path(), &i.to_string());
        pids.push(hammer.id());
        if !common::wait_for_flag_or_exit(dir.path(), &format!("started-{i}"), &mut hammer) {
            hammer.wait_ok();
            panic!("hammer {i} exited without starting");
        }
        std::thread::sleep(Duration::from_micros(rng.below(5_000)));
        hammer.kill();
        assert!(
            !waiter.has_exited(),
            "the waiter stopped (iteration {i}); see its log"
        );

        // Every path, starting with a different one each time, so that
        // each gets to be the first to look at the dead owner.
        for k in 0..3 {
            let path = PATHS[(i + k) % 3];
            let (mut g, died) = acquire(&s, path);
            if died {
                died_by_path[(i + k) % 3] += 1;
            }
            check_and_repair(&mut g, died, &format!("parent {path:?}"));
            section(&mut g, Who::Parent);
            parent_done += 1;
        }

        // The hammer made progress before dying, and the waiter, blocked
        // in lock() when it died, keeps going (it does not hang).
        let at_kill = read_ledger(&s);
        assert!(at_kill.by_killed > last_killed, "hammer {i} did nothing");
        last_killed = at_kill.by_killed;
        loop {
            if read_ledger(&s).by_survivor > at_kill.by_survivor {
                break;
            }
            assert!(!waiter.has_exited(), "the waiter stopped (iteration {i})");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    common::signal(dir.path(), "stop");
    waiter.wait_ok();
    let result = fs::read_to_string(dir.join("waiter-result")).unwrap();
    let (done, waiter_took_over) = result.split_once(' ').unwrap();
    let (done, waiter_took_over): (u64, u64) =
        (done.parse().unwrap(), waiter_took_over.parse().unwrap());
    let v = read_ledger(&s);
    v.check(false).unwrap();
    assert_eq!(v.by_survivor, done, "a waiter section was lost or doubled");
    assert_eq!(
        v.by_parent, parent_done,
        "a parent section was lost or doubled"
    );
    let parent_took_over: u32 = died_by_path.iter().sum();
    let owner_died = u64::from(parent_took_over) + waiter_took_over;
    eprintln!(
        "random kills: {ITERATIONS} hammers killed 0..5 ms into their run; \
         OwnerDied seen {owner_died} times (parent: lock {}, try_lock {}, lock_timeout {}; \
         blocked waiter: {waiter_took_over}); sections: {} by killed hammers, \
         {done} by the waiter, {parent_done} by the parent; ledger consistent after every kill",
        died_by_path[0], died_by_path[1], died_by_path[2], v.by_killed
    );
    // A kill lands inside the lock most of the time; never once in 30
    // would mean the test is not testing what it says.
    assert!(
        owner_died > 0,
        "no kill ever landed while the lock was held"
    );
    drop(s);
    assert_clean(&[&name], &pids);
}

/// Children of the killed-repairer test.
///
/// - `torn`: locks, starts a section (bumps `begun` only), raises
///   `held-<arg>` and waits to be killed.
/// - `repairer`: locks (must be `OwnerDied`), raises `repairing-<arg>`, then
///   repairs slowly, step by step, 1 ms apart, does a section of its own in
///   slow steps too, and keeps the lock until killed.
fn repairer_child(c: &ChildCtx) {
    let s = Shared::<Ledger>::open(&c.name).expect("open");
    match c.role.as_str() {
        "torn" => {
            let mut g = s.lock().expect("the lock is free when a round starts");
            let mut v = g.get();
            v.begun += 1;
            g.set(&v);
            c.signal(&format!("held-{}", c.arg));
            wait_to_be_killed();
        }
        "repairer" => {
            let mut g = match s.lock() {
                Err(LockError::OwnerDied(g)) => g,
                Ok(_) => panic!("repairer: clean lock after the holder was killed"),
                Err(e) => panic!("repairer: {e}"),
            };
            c.signal(&format!("repairing-{}", c.arg));
            let mut v = g.get();
            v.check(true).expect("repairer");
            let step = Duration::from_millis(1);
            // Step 1: roll the torn section back.
            v.begun = v.sum();
            g.set(&v);
            std::thread::sleep(step);
            // Steps 2-4: a section of our own, slowly.
            v.begun += 1;
            g.set(&v);
            std::thread::sleep(step);
            v.by_killed += 1;
            g.set(&v);
            std::thread::sleep(step);
            v.ended += 1;
            g.set(&v);
            c.signal(&format!("repaired-{}", c.arg));
            wait_to_be_killed();
        }
        other => panic!("unknown role {other}"),
    }
}

/// 20 rounds: a holder is killed mid-section; a second process takes the
/// lock over (`OwnerDied`) and is killed at a random moment of its repair;
/// the parent, on a different lock path each round, is then told the owner
/// died again, finds a ledger with at most one torn section, repairs it,
/// and the lock after that is clean.
#[test]
fn repairer_killed_during_repair_a_third_process_recovers() {
    const ROUNDS: usize = 20;
    let test = "repairer_killed_during_repair_a_third_process_recovers";
    if let Some(child) = common::child() {
        child.run(repairer_child);
    }
    let _wd = common::watchdog_for(test, Duration::from_secs(180));
    let mut rng = common::XorShift::from_time(test);
    let dir = TempDir::new("repairkill");
    let name = unique_name("repairkill");
    let _c = Cleanup::new(&name);
    let s = Shared::<Ledger>::create(&name).unwrap();
    let mut pids = Vec::new();
    let (mut finished_repairs, mut parent_done) = (0, 0u64);
    for i in 0..ROUNDS {
        let arg = i.to_string();
        let mut torn = spawn_child(test, "torn", &name, dir.path(), &arg);
        pids.push(torn.id());
        if !common::wait_for_flag_or_exit(dir.path(), &format!("held-{i}"), &mut torn) {
            torn.wait_ok();
            panic!("round {i}: holder exited early");
        }
        torn.kill();

        let mut repairer = spawn_child(test, "repairer", &name, dir.path(), &arg);
        pids.push(repairer.id());
        if !common::wait_for_flag_or_exit(dir.path(), &format!("repairing-{i}"), &mut repairer) {
            repairer.wait_ok();
            panic!("round {i}: repairer exited before repairing");
        }
        std::thread::sleep(Duration::from_micros(rng.below(5_000)));
        repairer.kill();
        if dir.join(&format!("repaired-{i}")).exists() {
            finished_repairs += 1;
        }

        let path = PATHS[i % 3];
        let (mut g, died) = acquire(&s, path);
        assert!(died, "round {i}: {path:?} did not report the dead repairer");
        check_and_repair(&mut g, died, &format!("parent {path:?}"));
        section(&mut g, Who::Parent);
        parent_done += 1;
        drop(g);
        match s.try_lock() {
            Ok(g) => assert!(g.get().check(false).is_ok(), "round {i}"),
            Err(e) => panic!("round {i}: lock after the repair is not clean: {e}"),
        }
    }
    let v = read_ledger(&s);
    v.check(false).unwrap();
    assert_eq!(v.by_parent, parent_done);
    eprintln!(
        "killed repairers: {ROUNDS} rounds (holder killed mid-section, repairer killed \
         0..5 ms into its repair; {finished_repairs} had finished repairing); the third \
         process recovered every time, rotating lock / try_lock / lock_timeout"
    );
    drop(s);
    assert_clean(&[&name], &pids);
}

/// Children of the creator-kill test: `creator` creates a big persistent
/// mailbox (its `fallocate` takes a while), raising `starting-<arg>` just
/// before and `created-<arg>` after.
fn creator_child(c: &ChildCtx) {
    let capacity: usize = c.arg.split_once(':').unwrap().1.parse().unwrap();
    let round = c.arg.split_once(':').unwrap().0;
    c.signal(&format!("starting-{round}"));
    let mb = Mailbox::options(&c.name)
        .persistent(true)
        .max_message(capacity)
        .create()
        .expect("create");
    c.signal(&format!("created-{round}"));
    drop(mb);
    wait_to_be_killed();
}

/// Removes what a killed creator left in `/dev/shm` under its hidden
/// temporary name (`gc`'s job, tested in tests/mailbox.rs; `gc` is global,
/// so this test does it for its own children only). Returns how many.
fn remove_init_leftovers(pid: u32) -> usize {
    let left = common::init_leftovers(&[pid]);
    for f in &left {
        let _ = fs::remove_file(common::shm_dir().join(f));
    }
    left.len()
}

/// 20 creators killed at a random moment of `create` while the parent
/// keeps opening the name: every open finds nothing or a complete mailbox
/// (never a half-built one: no `NotInitialized`, no bad header), and after
/// each kill `open_or_create` succeeds.
#[test]
fn creator_killed_at_each_step_never_exposes_a_partial_segment() {
    const ROUNDS: usize = 20;
    const BIG: usize = 64 << 20;
    let test = "creator_killed_at_each_step_never_exposes_a_partial_segment";
    if let Some(child) = common::child() {
        child.run(creator_child);
    }
    let _wd = common::watchdog_for(test, Duration::from_secs(180));
    let mut rng = common::XorShift::from_time(test);
    let dir = TempDir::new("killcreate");

    // How long a creation takes here: kills are spread over twice that.
    let probe = unique_name("killcreate-probe");
    let _p = Cleanup::new(&probe);
    let start = Instant::now();
    drop(Mailbox::options(&probe).max_message(BIG).create().unwrap());
    let window = (start.elapsed() * 2).max(Duration::from_millis(2));
    let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);

    let mut pids = Vec::new();
    let (mut absent, mut complete, mut opens, mut leftovers, mut published) = (0, 0, 0u64, 0, 0);
    let (mut reopened_theirs, mut created_ours) = (0, 0);
    for i in 0..ROUNDS {
        let name = unique_name("killcreate");
        let _c = Cleanup::new(&name);
        let arg = format!("{i}:{BIG}");
        let mut creator = spawn_child(test, "creator", &name, dir.path(), &arg);
        pids.push(creator.id());
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("starting-{i}"),
            &mut creator
        ));
        let kill_at = Instant::now() + Duration::from_micros(rng.below(window_us));
        // Open the name over and over until the kill, then once more.
        let mut killed = false;
        while !killed {
            if Instant::now() >= kill_at {
                creator.kill();
                killed = true;
            }
            opens += 1;
            match Mailbox::open(&name) {
                Ok(mb) => {
                    assert_eq!(
                        mb.max_message(),
                        BIG,
                        "round {i}: not the creator's mailbox"
                    );
                    assert!(!mb.is_full());
                    complete += 1;
                }
                Err(SegmentError::NotFound(_)) => absent += 1,
                Err(e) => panic!("round {i}: open during creation: {e:?}"),
            }
        }
        if dir.join(&format!("created-{i}")).exists() {
            published += 1;
        }
        leftovers += usize::from(remove_init_leftovers(creator.id()) > 0);
        // Afterwards: a persistent mailbox that was published is opened;
        // otherwise ours is created.
        let mb = Mailbox::options(&name)
            .max_message(64)
            .open_or_create()
            .unwrap_or_else(|e| panic!("round {i}: open_or_create after the kill: {e:?}"));
        if mb.max_message() == BIG {
            reopened_theirs += 1;
        } else {
            assert_eq!(mb.max_message(), 64);
            created_ours += 1;
        }
        drop(mb);
        match segment::unlink(&Location::shm(&name).unwrap()) {
            Ok(()) | Err(SegmentError::NotFound(_)) => {}
            Err(e) => panic!("unlink: {e}"),
        }
        assert_clean(&[&name], &[creator.id()]);
    }
    eprintln!(
        "killed creators: {ROUNDS} killed 0..{window:?} into creating a {} MiB mailbox \
         ({published} had published, {leftovers} left a hidden temp file); {opens} opens \
         meanwhile: {absent} NotFound, {complete} complete, 0 partial; open_or_create \
         afterwards: {reopened_theirs} opened the creator's, {created_ours} created anew",
        BIG >> 20
    );
    assert_clean(&[&probe], &pids);
}

/// Racers: wait at the barrier (`go-<round>`), then `create` (or
/// `open_or_create` with capacity `1000 + index`) and write the outcome;
/// keep the handle until `release-<round>`.
fn racer_child(c: &ChildCtx) {
    let (idx, rounds) = c.arg.split_once(':').unwrap();
    let (idx, rounds): (usize, usize) = (idx.parse().unwrap(), rounds.parse().unwrap());
    for r in 0..rounds {
        let name = format!("{}-{r}", c.name);
        c.signal(&format!("ready-{idx}-{r}"));
        c.wait_for(&format!("go-{r}"));
        let (outcome, handle) = match c.role.as_str() {
            "create" => match Mailbox::options(&name).max_message(4096).create() {
                Ok(mb) => ("created".to_owned(), Some(mb)),
                Err(SegmentError::AlreadyExists(_)) => ("exists".to_owned(), None),
                Err(e) => (format!("error {e:?}"), None),
            },
            _ => {
                match Mailbox::options(&name)
                    .max_message(1000 + idx)
                    .open_or_create()
                {
                    Ok(mb) => {
                        let creator = segment::inspect(&Location::shm(&name).unwrap())
                            .ok()
                            .and_then(|i| i.header.ok())
                            .map_or(0, |h| h.creator_pid);
                        // One mailbox holds one message: of the racers
                        // sharing it, exactly one send goes in.
                        let sent = mb.try_send(&[idx as u8]).is_ok();
                        let cap = mb.max_message();
                        (format!("ok {cap} {creator} {sent}"), Some(mb))
                    }
                    Err(e) => (format!("error {e:?}"), None),
                }
            }
        };
        common::write_atomic(&c.dir, &format!("result-{idx}-{r}"), outcome.as_bytes());
        c.wait_for(&format!("release-{r}"));
        drop(handle);
    }
}

/// Starts `n` racers of `role` for `rounds` rounds, and for each round
/// opens the barrier and collects the outcomes (indexed by racer).
fn race(
    test: &str,
    role: &str,
    name: &str,
    n: usize,
    rounds: usize,
) -> (Vec<Vec<String>>, Vec<u32>) {
    let dir = TempDir::new(role);
    let mut kids: Vec<ChildProc> = (0..n)
        .map(|i| spawn_child(test, role, name, dir.path(), &format!("{i}:{rounds}")))
        .collect();
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    let mut all = Vec::new();
    for r in 0..rounds {
        for (i, k) in kids.iter_mut().enumerate() {
            if !common::wait_for_flag_or_exit(dir.path(), &format!("ready-{i}-{r}"), k) {
                k.wait_ok();
                panic!("racer {i} exited early");
            }
        }
        common::signal(dir.path(), &format!("go-{r}"));
        let mut outcomes = Vec::new();
        for (i, k) in kids.iter_mut().enumerate() {
            let file = format!("result-{i}-{r}");
            if !common::wait_for_flag_or_exit(dir.path(), &file, k) {
                k.wait_ok();
                panic!("racer {i} exited early");
            }
            outcomes.push(fs::read_to_string(dir.join(&file)).unwrap());
        }
        all.push(outcomes);
        // Everyone has answered: now the winner may let go.
        common::signal(dir.path(), &format!("release-{r}"));
    }
    for k in &mut kids {
        k.wait_ok();
    }
    (all, pids)
}

/// 8 processes race `Mailbox::create` on one name, 10 times: exactly one
/// is created, the 7 others get `AlreadyExists`.
#[test]
fn racing_creates_exactly_one_wins_the_others_get_already_exists() {
    const RACERS: usize = 8;
    const ROUNDS: usize = 10;
    let test = "racing_creates_exactly_one_wins_the_others_get_already_exists";
    if let Some(child) = common::child() {
        child.run(racer_child);
    }
    let _wd = common::watchdog_for(test, Duration::from_secs(120));
    let name = unique_name("racecreate");
    let names: Vec<String> = (0..ROUNDS).map(|r| format!("{name}-{r}")).collect();
    let mut cleanup = Cleanup::new(&names[0]);
    for n in &names[1..] {
        cleanup.add(n);
    }
    let (rounds, pids) = race(test, "create", &name, RACERS, ROUNDS);
    for (r, outcomes) in rounds.iter().enumerate() {
        let created = outcomes.iter().filter(|o| *o == "created").count();
        let exists = outcomes.iter().filter(|o| *o == "exists").count();
        assert_eq!(
            (created, exists),
            (1, RACERS - 1),
            "round {r}: {outcomes:?}"
        );
    }
    eprintln!(
        "racing create: {ROUNDS} rounds of {RACERS} processes: 1 created and {} \
         AlreadyExists every round",
        RACERS - 1
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_clean(&names, &pids);
}

/// 8 processes race `open_or_create` on one name, 10 times: all succeed,
/// on one mailbox (exactly one of their sends goes in), made by one of them
/// (every racer sees the creator's capacity and pid).
#[test]
fn racing_open_or_create_all_succeed_with_one_creator() {
    const RACERS: usize = 8;
    const ROUNDS: usize = 10;
    let test = "racing_open_or_create_all_succeed_with_one_creator";
    if let Some(child) = common::child() {
        child.run(racer_child);
    }
    let _wd = common::watchdog_for(test, Duration::from_secs(120));
    let name = unique_name("raceooc");
    let names: Vec<String> = (0..ROUNDS).map(|r| format!("{name}-{r}")).collect();
    let mut cleanup = Cleanup::new(&names[0]);
    for n in &names[1..] {
        cleanup.add(n);
    }
    let (rounds, pids) = race(test, "open_or_create", &name, RACERS, ROUNDS);
    for (r, outcomes) in rounds.iter().enumerate() {
        let parsed: Vec<(usize, u32, bool)> = outcomes
            .iter()
            .map(|o| {
                let f: Vec<&str> = o.split(' ').collect();
                assert_eq!(f[0], "ok", "round {r}: {outcomes:?}");
                (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3] == "true")
            })
            .collect();
        let (cap, creator, _) = parsed[0];
        assert!(
            parsed.iter().all(|p| p.0 == cap && p.1 == creator),
            "round {r}: racers saw different segments: {outcomes:?}"
        );
        let winner = cap - 1000;
        assert!(winner < RACERS, "round {r}: capacity {cap}");
        assert_eq!(
            creator, pids[winner],
            "round {r}: the capacity and the creator pid name different racers"
        );
        assert_eq!(
            parsed.iter().filter(|p| p.2).count(),
            1,
            "round {r}: not one shared mailbox: {outcomes:?}"
        );
    }
    eprintln!(
        "racing open_or_create: {ROUNDS} rounds of {RACERS} processes: all succeeded, \
         one creator, one shared mailbox every round"
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_clean(&names, &pids);
}
