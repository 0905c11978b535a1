//! The supervisor: creates the segments, starts one child per slot, kills
//! and restarts them at random, watches for hangs and recovery, then stops
//! everything, cleans up and hands the figures to the report.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use mapshare::{
    segment, Location, LockError, Policy, Publisher, SegmentError, Sender, Shared, Zeroable,
};

use crate::checks::{end_checks, leftovers, Totals};
use crate::journal::{
    seen_at, state_name, ChanJournal, ChanRec, Head, ReadError, RoleJournal, RoleRec,
};
use crate::report::{self, ms, Summary};
use crate::rng::XorShift;
use crate::roles::{Ctl, PHASE_DRAIN};
use crate::setup::{
    chan_opts, now_ns, ring_opts, Names, Role, HANG_AFTER, OW_PUB_SLOT, OW_SUB_SLOT, POLL,
    PUB_SLOT, RECOVERY_GIVE_UP, ROLES, RX_SLOT, SLOTS, SPARE_AFTER, STOP_TIMEOUT, SUB_SLOTS,
};
use crate::Args;

/// One slot's running process.
struct Proc {
    child: Child,
    pid: u32,
    inc: u64,
    log: PathBuf,
    /// Progress counter last seen, and when it last changed (or the spawn).
    progress: u64,
    changed: Instant,
}

/// A kill waiting for its recovery sample.
struct Pending {
    slot: usize,
    /// The restarted incarnation.
    inc: u64,
    kill_ns: u64,
    at: Instant,
    /// That incarnation was killed too before a sample was seen.
    killed_early: bool,
}

/// The supervisor: the children, what their journals said last, and what
/// it counted itself.
pub(crate) struct Sup {
    args: Args,
    pub(crate) names: Names,
    exe: PathBuf,
    logdir: PathBuf,
    ctl: Shared<Ctl>,
    chan_j: ChanJournal,
    role_j: Vec<Option<RoleJournal>>,
    chan: ChanRec,
    pub(crate) recs: [RoleRec; SLOTS],
    procs: Vec<Option<Proc>>,
    incs: [u64; SLOTS],
    rng: XorShift,
    pids: HashSet<u32>,
    kills: [u64; 4],
    /// Incarnations ended by SIGKILL, per slot (chaos and hang kills).
    pub(crate) sigkilled: [u64; SLOTS],
    pending: Vec<Pending>,
    samples: Vec<(usize, u64)>,
    censored: u64,
    unrecovered: u64,
    hangs: u64,
    failures: u64,
    journal_errors: u64,
    sup_owner_died: u64,
    /// Longest time without progress, per kill group (during the run).
    longest_stall: [Duration; 4],
}

fn proc_info(pid: u32) -> String {
    let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?");
    format!("kernel state {state}, wchan {wchan:?}")
}

fn tail_of(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Sup {
    fn new(args: Args) -> Result<Sup, String> {
        let pid = std::process::id();
        let names = Names {
            prefix: format!("soak-{pid}-{:06x}", now_ns() & 0xff_ffff),
        };
        // Create every segment persistent; drop the roles taken to create
        // the channel and rings (the lane and the publisher role are freed).
        let seg = |name: String| move |e: SegmentError| format!("create {name}: {e}");
        drop(
            chan_opts::<Sender>(&names.chan())
                .persistent(true)
                .create()
                .map_err(seg(names.chan()))?,
        );
        for policy in [Policy::Lossless, Policy::OverwriteOldest] {
            let name = names.ring(policy);
            drop(
                ring_opts::<Publisher>(&name, policy)
                    .persistent(true)
                    .create()
                    .map_err(seg(name.clone()))?,
            );
        }
        let ctl = Shared::<Ctl>::options(&names.ctl())
            .persistent(true)
            .create()
            .map_err(seg(names.ctl()))?;
        let chan_j =
            ChanJournal::create(&names.journal(RX_SLOT)).map_err(seg(names.journal(RX_SLOT)))?;
        let mut role_j = Vec::new();
        for slot in 0..SLOTS {
            role_j.push(if slot == RX_SLOT {
                None
            } else {
                let name = names.journal(slot);
                Some(RoleJournal::create(&name).map_err(seg(name.clone()))?)
            });
        }
        let logdir = std::env::temp_dir().join(format!("mapshare-{}", names.prefix));
        fs::create_dir_all(&logdir).map_err(|e| format!("{}: {e}", logdir.display()))?;
        let rng = XorShift::new(args.seed);
        let mut pids = HashSet::new();
        pids.insert(pid);
        Ok(Sup {
            args,
            names,
            exe: std::env::current_exe().expect("current_exe"),
            logdir,
            ctl,
            chan_j,
            role_j,
            chan: ChanRec::zeroed(),
            recs: [RoleRec::zeroed(); SLOTS],
            procs: (0..SLOTS).map(|_| None).collect(),
            incs: [0; SLOTS],
            rng,
            pids,
            kills: [0; 4],
            sigkilled: [0; SLOTS],
            pending: Vec::new(),
            samples: Vec::new(),
            censored: 0,
            unrecovered: 0,
            hangs: 0,
            failures: 0,
            journal_errors: 0,
            sup_owner_died: 0,
            longest_stall: [Duration::ZERO; 4],
        })
    }

    fn spawn(&mut self, slot: usize) {
        self.incs[slot] += 1;
        let inc = self.incs[slot];
        let role = ROLES[slot];
        let log = self
            .logdir
            .join(format!("{}-{slot}-{inc}.log", role.name()));
        let err = fs::File::create(&log).expect("create child log");
        let child = Command::new(&self.exe)
            .args(["--role", role.name(), "--prefix", &self.names.prefix])
            .args(["--slot", &slot.to_string(), "--inc", &inc.to_string()])
            .args(["--seed", &self.args.seed.to_string()])
            .args(["--rate", &self.args.rate.to_string()])
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn child");
        let pid = child.id();
        self.pids.insert(pid);
        self.procs[slot] = Some(Proc {
            child,
            pid,
            inc,
            log,
            progress: 0,
            changed: Instant::now(),
        });
    }

    /// SIGKILL, reap, forget the log.
    fn kill(&mut self, slot: usize) {
        if let Some(mut p) = self.procs[slot].take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
            let _ = fs::remove_file(&p.log);
            self.sigkilled[slot] += 1;
            for q in &mut self.pending {
                if q.slot == slot && q.inc == p.inc {
                    q.killed_early = true;
                }
            }
        }
    }

    fn set_phase(&mut self, phase: u64) {
        let mut g = match self.ctl.lock() {
            Ok(g) => g,
            Err(LockError::OwnerDied(g)) => {
                self.sup_owner_died += 1;
                g
            }
            Err(e) => panic!("control lock: {e}"),
        };
        g.update(|c| c[0] = phase);
    }

    fn read_journals(&mut self) {
        for slot in 0..SLOTS {
            self.read_journal(slot);
        }
    }

    /// Reads `slot`'s journal (under its lock: this waits for a child in
    /// its critical section to leave it).
    fn read_journal(&mut self, slot: usize) {
        let (got, died) = if slot == RX_SLOT {
            match self.chan_j.read() {
                Ok((r, died)) => {
                    self.chan = r;
                    (Ok(()), died)
                }
                Err(e) => (Err(e), false),
            }
        } else if let Some(j) = &self.role_j[slot] {
            match j.read() {
                Ok((r, died)) => {
                    self.recs[slot] = r;
                    (Ok(()), died)
                }
                Err(e) => (Err(e), false),
            }
        } else {
            (Ok(()), false)
        };
        self.sup_owner_died += u64::from(died);
        if let Err(ReadError::Unreadable) = got {
            self.journal_error(slot);
        }
    }

    fn journal_error(&mut self, slot: usize) {
        self.journal_errors += 1;
        eprintln!("soak: ERROR: journal of slot {slot} unreadable (both copies invalid)");
    }

    fn head(&self, slot: usize) -> Head {
        if slot == RX_SLOT {
            self.chan.head
        } else {
            self.recs[slot].head
        }
    }

    /// Reaps children that exited on their own (a failure during the run).
    fn reap(&mut self, respawn: bool) {
        for (slot, role) in ROLES.iter().enumerate() {
            let Some(p) = &mut self.procs[slot] else {
                continue;
            };
            let Ok(Some(status)) = p.child.try_wait() else {
                continue;
            };
            let p = self.procs[slot].take().expect("present");
            if respawn || !status.success() {
                self.failures += 1;
                eprintln!(
                    "soak: FAILURE: {} (slot {slot}, incarnation {}, pid {}) exited: {status}; log {}:\n{}",
                    role.name(),
                    p.inc,
                    p.pid,
                    p.log.display(),
                    tail_of(&p.log, 30)
                );
            } else {
                let _ = fs::remove_file(&p.log);
            }
            if respawn {
                self.spawn(slot);
            }
        }
    }

    fn poll(&mut self, hang_check: bool) {
        self.reap(hang_check);
        self.read_journals();
        for (slot, role) in ROLES.iter().enumerate() {
            let head = self.head(slot);
            let Some(p) = &mut self.procs[slot] else {
                continue;
            };
            let progress = if head.incarnation == p.inc {
                head.progress
            } else {
                0
            };
            if progress != p.progress {
                if hang_check {
                    let g = role.group();
                    self.longest_stall[g] = self.longest_stall[g].max(p.changed.elapsed());
                }
                p.progress = progress;
                p.changed = Instant::now();
            } else if hang_check && p.changed.elapsed() >= HANG_AFTER {
                let (pid, inc, idle) = (p.pid, p.inc, p.changed.elapsed());
                self.hang(slot, pid, inc, idle, &head);
                self.kill(slot);
                self.spawn(slot);
            }
        }
        self.resolve();
    }

    fn hang(&mut self, slot: usize, pid: u32, inc: u64, idle: Duration, head: &Head) {
        self.hangs += 1;
        let (state, since) = if head.incarnation == inc {
            (
                state_name(head.state),
                ms(now_ns().saturating_sub(head.state_ns)),
            )
        } else {
            (state_name(0), "-".into())
        };
        eprintln!(
            "soak: HANG: {} (slot {slot}, incarnation {inc}, pid {pid}) made no progress for {:.1} s \
             (progress {}); it was {state} for {since} ms; {}",
            ROLES[slot].name(),
            idle.as_secs_f64(),
            if head.incarnation == inc { head.progress } else { 0 },
            proc_info(pid),
        );
    }

    /// When the first message of `inc` of `slot`'s role was seen (ns).
    fn first_seen(&self, slot: usize, inc: u64) -> Option<u64> {
        match ROLES[slot] {
            Role::ChannelSender => seen_at(&self.chan.seen[slot * 8..slot * 8 + 8], inc),
            Role::Publisher => [4, 5]
                .iter()
                .filter_map(|&s| seen_at(&self.recs[s].seen, inc))
                .min(),
            Role::OwPublisher => seen_at(&self.recs[OW_SUB_SLOT].seen, inc),
            Role::ChannelReceiver | Role::Subscriber | Role::OwSubscriber => {
                let h = self.head(slot);
                (h.incarnation == inc && h.first_ns != 0).then_some(h.first_ns)
            }
        }
    }

    fn resolve(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            if let Some(ns) = self.first_seen(p.slot, p.inc) {
                self.samples
                    .push((ROLES[p.slot].group(), ns.saturating_sub(p.kill_ns)));
            } else if p.at.elapsed() >= RECOVERY_GIVE_UP {
                if p.killed_early {
                    self.censored += 1;
                } else {
                    self.unrecovered += 1;
                    eprintln!(
                        "soak: ERROR: {} (slot {}) incarnation {} showed no message {} s after the kill",
                        ROLES[p.slot].name(),
                        p.slot,
                        p.inc,
                        RECOVERY_GIVE_UP.as_secs()
                    );
                }
            } else {
                self.pending.push(p);
            }
        }
    }

    /// Kills a random child and restarts its role. No journal is read just
    /// before the kill: a read waits for a child inside its journal's
    /// critical section to leave it, and the kill would then never land
    /// there (the lock takeover path would go untested).
    fn chaos_kill(&mut self) {
        // A random child, among those that made progress lately.
        let live: Vec<usize> = (0..SLOTS)
            .filter(|&s| {
                self.procs[s]
                    .as_ref()
                    .is_some_and(|p| p.changed.elapsed() < SPARE_AFTER)
            })
            .collect();
        if live.is_empty() {
            return;
        }
        let slot = live[self.rng.below(live.len() as u64) as usize];
        let kill_ns = now_ns();
        self.kill(slot);
        self.kills[ROLES[slot].group()] += 1;
        // The victim's journal as it died: its own recovery sample.
        self.read_journal(slot);
        self.resolve();
        self.spawn(slot);
        self.pending.push(Pending {
            slot,
            inc: self.incs[slot],
            kill_ns,
            at: Instant::now(),
            killed_early: false,
        });
    }

    fn totals(&self) -> Totals {
        let c = &self.chan;
        let mut t = Totals {
            chan_delivered: c.delivered_total,
            chan_unique: c.unique_total,
            chan_dup: c.dup_total,
            chan_redelivered: c.redelivered_total,
            chan_lost: c.lost_total,
            chan_corrupt: c.corrupt_total,
            owner_died: c.head.owner_died,
            ..Totals::default()
        };
        for slot in 0..SLOTS {
            if slot == RX_SLOT {
                continue;
            }
            let r = &self.recs[slot];
            t.sent[slot] = r.sent_total;
            t.owner_died += r.head.owner_died;
            if SUB_SLOTS.contains(&slot) {
                t.ps_delivered += r.delivered_total;
                t.ps_dup += r.dup_total;
                t.ps_lost += r.lost_total;
                t.ps_corrupt += r.corrupt_total;
                t.ow_lagged += r.lagged_total;
                t.ow_lagged_events += r.lagged_events;
            }
        }
        t
    }

    /// Stops `slots` (already told to) within STOP_TIMEOUT; a child that
    /// does not stop is a hang.
    fn wait_stopped(&mut self, slots: &[usize]) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            self.poll(false);
            if slots.iter().all(|&s| self.procs[s].is_none()) {
                return;
            }
            if Instant::now() >= deadline {
                for &slot in slots {
                    if let Some(p) = &self.procs[slot] {
                        let (pid, inc) = (p.pid, p.inc);
                        let head = self.head(slot);
                        eprintln!("soak: child did not stop when told to");
                        self.hang(slot, pid, inc, STOP_TIMEOUT, &head);
                        self.kill(slot);
                    }
                }
                return;
            }
            std::thread::sleep(POLL);
        }
    }

    fn run(&mut self) {
        let start = Instant::now();
        for slot in 0..SLOTS {
            self.spawn(slot);
        }
        let until = start + self.args.duration;
        let mut next_kill = start + self.kill_interval();
        let mut next_report = start + Duration::from_secs(10);
        loop {
            let now = Instant::now();
            if now >= until {
                break;
            }
            std::thread::sleep(POLL.min(next_kill.saturating_duration_since(now)));
            // Kill before polling, not right after a poll (see chaos_kill).
            if Instant::now() >= next_kill {
                self.chaos_kill();
                next_kill = Instant::now() + self.kill_interval();
            }
            self.poll(true);
            if !self.args.quiet && Instant::now() >= next_report {
                next_report += Duration::from_secs(10);
                let t = self.totals();
                eprintln!(
                    "soak: [{:>5.0} s] kills {}, channel {} taken, pubsub {} taken, dup {}, lost {}, corrupt {}, hangs {}",
                    start.elapsed().as_secs_f64(),
                    self.kills.iter().sum::<u64>(),
                    t.chan_delivered,
                    t.ps_delivered,
                    t.chan_dup + t.ps_dup,
                    t.chan_lost + t.ps_lost,
                    t.chan_corrupt + t.ps_corrupt,
                    self.hangs,
                );
            }
        }
        // Stop: producers first, then let the consumers drain.
        self.set_phase(1);
        self.wait_stopped(&[0, 1, PUB_SLOT, OW_PUB_SLOT]);
        self.set_phase(PHASE_DRAIN);
        self.wait_stopped(&[RX_SLOT, 4, 5, OW_SUB_SLOT]);
        self.read_journals();
        // Restarts still pending at the end: no verdict either way.
        self.resolve();
    }

    fn kill_interval(&mut self) -> Duration {
        let (min, max) = self.args.kill_every;
        Duration::from_millis(min + self.rng.below(max - min + 1))
    }
}

pub(crate) fn supervise(args: Args) -> ExitCode {
    let limit = args.duration + Duration::from_secs(300);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("soak: watchdog: still running after {limit:?}; aborting");
        std::process::abort();
    });
    let started = Instant::now();
    let mut sup = match Sup::new(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soak: setup failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !sup.args.quiet {
        eprintln!(
            "soak: {} s, seed {:#x}, segments {}.*, child logs in {}",
            sup.args.duration.as_secs_f64(),
            sup.args.seed,
            sup.names.prefix,
            sup.logdir.display()
        );
    }
    sup.run();
    let elapsed = started.elapsed();
    let t = sup.totals();
    let e = end_checks(&sup, &t);

    // Clean up: detach, unlink, gc, then count what is left of this run.
    let names = sup.names.clone();
    let pids = sup.pids.clone();
    let logdir = sup.logdir.clone();
    let procs_left = sup.procs.iter().filter(|p| p.is_some()).count();
    let samples = std::mem::take(&mut sup.samples);
    let (seed, rate) = (sup.args.seed, sup.args.rate);
    let (kills, censored, unrecovered) = (sup.kills, sup.censored, sup.unrecovered);
    let (hangs, failures, journal_errors) = (sup.hangs, sup.failures, sup.journal_errors);
    let (sup_owner_died, still_pending) = (sup.sup_owner_died, sup.pending.len());
    let longest_stall = sup.longest_stall;
    drop(sup);
    for name in names.all() {
        match Location::shm(&name).and_then(|at| segment::unlink(&at)) {
            Ok(()) | Err(SegmentError::NotFound(_)) => {}
            Err(err) => eprintln!("soak: unlink {name}: {err}"),
        }
    }
    let gc = segment::gc(false);
    if let Err(err) = &gc {
        eprintln!("soak: gc: {err}");
    }
    let left = leftovers(&names.prefix, &pids);
    if failures == 0 {
        let _ = fs::remove_dir_all(&logdir);
    }

    let passed = report::print(Summary {
        elapsed,
        seed,
        rate,
        t,
        e,
        kills,
        censored,
        unrecovered,
        still_pending,
        hangs,
        failures,
        journal_errors,
        sup_owner_died,
        longest_stall,
        samples,
        procs_left,
        left,
        gc_ok: gc.is_ok(),
    });
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A supervisor unwinding from a panic takes its children with it.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
