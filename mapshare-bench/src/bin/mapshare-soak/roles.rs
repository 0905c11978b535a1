//! The children: one function per role, each run in its own process
//! (`mapshare-soak --role ...`), reporting through its journal.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use mapshare::{
    Fault, LockError, Policy, Publisher, Receiver, RecvTimeoutError, SegmentError,
    SendTimeoutError, Sender, Shared, Subscriber,
};

use crate::journal::{
    note_seen, ChanJournal, RoleJournal, RoleRec, ST_DISCONNECTED, ST_DONE, ST_PAUSED, ST_WAIT_MSG,
    ST_WAIT_ROOM,
};
use crate::message::{check_message, make_message, Msg};
use crate::rng::XorShift;
use crate::setup::{
    chan_opts, mix, now_ns, ring_opts, Names, Role, MAX_MESSAGE, NONE, OW_PUB_SLOT, PEER_PAUSE,
    PUB_SLOT, RX_SLOT, STEP,
};
use crate::Args;

/// The control segment's words: `[phase, ...]`.
pub(crate) type Ctl = [u64; 8];
/// Phases: 0 run, 1 producers stop, 2 consumers drain and stop.
pub(crate) const PHASE_RUN: u64 = 0;
pub(crate) const PHASE_DRAIN: u64 = 2;

pub(crate) struct Ctx {
    role: Role,
    slot: usize,
    inc: u64,
    names: Names,
    rate: f64,
    rng: XorShift,
    ctl: Shared<Ctl>,
    ppid: u32,
    checked: Instant,
    phase: u64,
}

impl Ctx {
    /// The phase, re-read every 20 ms; exits if the supervisor is gone.
    fn phase(&mut self) -> u64 {
        if self.checked.elapsed() >= Duration::from_millis(20) {
            self.checked = Instant::now();
            if std::os::unix::process::parent_id() != self.ppid {
                eprintln!("{}: supervisor gone; exiting", self.role.name());
                std::process::exit(3);
            }
            let g = match self.ctl.lock() {
                Ok(g) | Err(LockError::OwnerDied(g)) => g,
                Err(e) => panic!("control lock: {e}"),
            };
            self.phase = g.get()[0];
        }
        self.phase
    }

    /// Sleeps `lo..hi` ms once in `one_in` calls.
    fn maybe_pause(&mut self, one_in: u64, lo: u64, hi: u64) -> bool {
        if self.rng.below(one_in) != 0 {
            return false;
        }
        std::thread::sleep(Duration::from_millis(lo + self.rng.below(hi - lo)));
        true
    }

    /// A pause of `lo..hi` ms once in `one_in` calls (zero otherwise), to
    /// take inside a critical window, so that kills land there too.
    fn hold(&mut self, one_in: u64, lo: u64, hi: u64) -> Duration {
        if self.phase != PHASE_RUN || self.rng.below(one_in) != 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(lo + self.rng.below(hi - lo))
    }

    /// Retries `open` (a role may be held for a moment by nobody we can
    /// see: a claim racing ours); bounded by the supervisor's hang check.
    fn open<T>(&mut self, what: &str, mut open: impl FnMut() -> Result<T, SegmentError>) -> T {
        let mut tries = 0u64;
        loop {
            match open() {
                Ok(t) => return t,
                Err(e) => {
                    tries += 1;
                    if tries == 1 || tries % 1000 == 0 {
                        eprintln!("{}: {what} failed ({tries} tries): {e}", self.role.name());
                    }
                    if std::os::unix::process::parent_id() != self.ppid {
                        std::process::exit(3);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
}

/// Paces a producer to `rate` messages per second, in bursts of about a
/// millisecond's worth.
pub(crate) struct Pace {
    start: Instant,
    rate: f64,
    done: u64,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            start: Instant::now(),
            rate,
            done: 0,
        }
    }

    fn next(&mut self) {
        loop {
            let due = (self.start.elapsed().as_secs_f64() * self.rate) as u64;
            let burst = (self.rate / 20.0) as u64 + 1; // no catch-up beyond 50 ms
            if due > self.done + burst {
                self.done = due - burst;
            }
            if self.done < due {
                self.done += 1;
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

pub(crate) fn run_child(args: &Args) -> ExitCode {
    let role = args.role.expect("a role");
    let names = Names {
        prefix: args.prefix.clone(),
    };
    let ctl = Shared::<Ctl>::open(&names.ctl()).expect("open the control segment");
    let mut cx = Ctx {
        role,
        slot: args.slot,
        inc: args.inc,
        names,
        rate: args.rate,
        rng: XorShift::new(mix(args.seed ^ ((args.slot as u64) << 40) ^ args.inc)),
        ctl,
        ppid: std::os::unix::process::parent_id(),
        checked: Instant::now() - Duration::from_secs(1),
        phase: 0,
    };
    match role {
        Role::ChannelSender => run_sender(&mut cx),
        Role::ChannelReceiver => run_receiver(&mut cx),
        Role::Publisher => run_publisher(&mut cx, Policy::Lossless),
        Role::OwPublisher => run_publisher(&mut cx, Policy::OverwriteOldest),
        Role::Subscriber => run_subscriber(&mut cx, Policy::Lossless),
        Role::OwSubscriber => run_subscriber(&mut cx, Policy::OverwriteOldest),
    }
    ExitCode::SUCCESS
}

pub(crate) fn role_journal(cx: &Ctx) -> RoleJournal {
    let j = RoleJournal::open(&cx.names.journal(cx.slot)).expect("open journal");
    let inc = cx.inc;
    j.update(|r, died| {
        r.head.owner_died += u64::from(died);
        if r.head.start(inc, now_ns()) {
            r.sent_inc = 0;
            r.final_pos = NONE;
        }
    });
    j
}

pub(crate) fn set_state(j: &RoleJournal, st: u64) {
    j.update(|r, died| {
        r.head.owner_died += u64::from(died);
        r.head.set_state(st, now_ns());
    });
}

pub(crate) fn finish(j: &RoleJournal, final_pos: u64) {
    j.update(|r, _| {
        r.head.finished = 1;
        r.head.set_state(ST_DONE, now_ns());
        r.final_pos = final_pos;
    });
}

pub(crate) fn run_sender(cx: &mut Ctx) {
    let j = role_journal(cx);
    let opts = chan_opts::<Sender>(&cx.names.chan());
    let mut tx = cx.open("Sender::open", || opts.open());
    let (producer, inc) = (cx.slot as u32, cx.inc);
    let mut pace = Pace::new(cx.rate);
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    let mut seq = 0u64;
    'run: while cx.phase() == PHASE_RUN {
        pace.next();
        make_message(&mut buf, producer, inc, seq, 0);
        loop {
            match tx.send_timeout(&buf, STEP) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(_)) => {
                    set_state(&j, ST_WAIT_ROOM);
                    if cx.phase() != PHASE_RUN {
                        break 'run;
                    }
                }
                // The receiver has gone (killed: it is being restarted).
                // Nothing was sent: send the same message again.
                Err(SendTimeoutError::Disconnected(_)) => {
                    set_state(&j, ST_DISCONNECTED);
                    if cx.phase() != PHASE_RUN {
                        break 'run;
                    }
                    std::thread::sleep(PEER_PAUSE);
                }
                Err(SendTimeoutError::TooLarge(m)) => panic!("message of {} bytes", m.len()),
                Err(e) => panic!("send: {e}"),
            }
        }
        let in_lock = cx.hold(4000, 1, 4);
        j.update(|r, _| {
            r.sent_inc = seq + 1;
            r.sent_total += 1;
            r.head.tick(now_ns());
            std::thread::sleep(in_lock);
        });
        seq += 1;
    }
    finish(&j, NONE);
    drop(tx);
}

pub(crate) fn run_receiver(cx: &mut Ctx) {
    let j = ChanJournal::open(&cx.names.journal(RX_SLOT)).expect("open progress journal");
    let inc = cx.inc;
    j.update(|r, died| {
        r.head.owner_died += u64::from(died);
        r.start(inc, now_ns());
    });
    let opts = chan_opts::<Receiver>(&cx.names.chan());
    let mut rx = cx.open("Receiver::open", || opts.open());
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    let mut taken = 0u64; // receive attempts: no pause before the first
    loop {
        let phase = cx.phase();
        if phase == PHASE_RUN && taken > 0 && cx.maybe_pause(4000, 5, 30) {
            continue;
        }
        taken += 1;
        // Now and then hold the journal lock, or the message in place after
        // recording it (a slow in-place consumer), for a few ms: kills land
        // in those windows too (lock takeover, redelivery).
        let in_lock = cx.hold(4000, 1, 4);
        let in_place = cx.hold(1000, 1, 5);
        match rx.recv_ref_timeout(STEP) {
            Ok(msg) => {
                // Copy out, then validate (peers are untrusted).
                buf.clear();
                buf.resize(msg.len(), 0);
                msg.copy_to_slice(&mut buf);
                let m = check_message(&buf);
                j.update(|r, died| {
                    r.head.owner_died += u64::from(died);
                    r.apply(m, now_ns());
                    std::thread::sleep(in_lock);
                });
                std::thread::sleep(in_place);
                drop(msg); // the release: only now is the slot freed
            }
            Err(RecvTimeoutError::Timeout) => {
                if phase >= PHASE_DRAIN {
                    break; // the senders are gone and the lanes are empty
                }
                j.update(|r, _| r.head.set_state(ST_WAIT_MSG, now_ns()));
            }
            // Every sender has gone and the lanes are drained.
            Err(RecvTimeoutError::Disconnected) => {
                if phase >= PHASE_DRAIN {
                    break; // the senders stopped and we took everything
                }
                // Killed ones, being restarted: wait for them.
                j.update(|r, _| r.head.set_state(ST_DISCONNECTED, now_ns()));
                std::thread::sleep(PEER_PAUSE);
            }
            Err(RecvTimeoutError::Fault(Fault::BadLength { len, .. })) => {
                eprintln!("channel-receiver: corrupt slot (length {len})");
                j.update(|r, _| {
                    r.head.tick(now_ns());
                    r.delivered_total += 1;
                    r.corrupt_total += 1;
                });
            }
            Err(e) => panic!("channel recv: {e}"),
        }
    }
    j.update(|r, _| {
        r.head.finished = 1;
        r.head.set_state(ST_DONE, now_ns());
    });
    drop(rx);
}

pub(crate) fn run_publisher(cx: &mut Ctx, policy: Policy) {
    let j = role_journal(cx);
    let opts = ring_opts::<Publisher>(&cx.names.ring(policy), policy);
    let mut publisher = cx.open("Publisher::open", || opts.open());
    let (producer, inc) = (cx.slot as u32, cx.inc);
    let mut pace = Pace::new(cx.rate);
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    let mut seq = 0u64;
    'run: while cx.phase() == PHASE_RUN {
        pace.next();
        let pos = publisher.published();
        make_message(&mut buf, producer, inc, seq, pos);
        // Half the messages go through a loan (zero-copy publish).
        let loaned = cx.rng.below(2) == 0;
        loop {
            let sent = if loaned {
                publisher.loan_timeout(STEP).map(|mut loan| {
                    let fits = loan.write_at(0, &buf);
                    assert!(fits, "a loan of {} bytes for {}", loan.len(), buf.len());
                    loan.commit(buf.len());
                })
            } else {
                publisher.publish_timeout(&buf, STEP).map_err(unit)
            };
            match sent {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(_)) => {
                    set_state(&j, ST_WAIT_ROOM);
                    if cx.phase() != PHASE_RUN {
                        break 'run;
                    }
                }
                // Not reported by pub/sub rings today (publishing with no
                // subscriber is no error); as on the channel, a peer being
                // restarted: nothing was published, publish it again.
                Err(SendTimeoutError::Disconnected(_)) => {
                    set_state(&j, ST_DISCONNECTED);
                    if cx.phase() != PHASE_RUN {
                        break 'run;
                    }
                    std::thread::sleep(PEER_PAUSE);
                }
                Err(e) => panic!("publish: {e}"),
            }
        }
        let in_lock = cx.hold(4000, 1, 4);
        j.update(|r, _| {
            r.sent_inc = seq + 1;
            r.sent_total += 1;
            r.head.tick(now_ns());
            std::thread::sleep(in_lock);
        });
        seq += 1;
    }
    finish(&j, NONE);
    drop(publisher);
}

/// A send error without its message (a loan's and a copy's alike).
fn unit<T>(e: SendTimeoutError<T>) -> SendTimeoutError<()> {
    match e {
        SendTimeoutError::Timeout(_) => SendTimeoutError::Timeout(()),
        SendTimeoutError::Disconnected(_) => SendTimeoutError::Disconnected(()),
        SendTimeoutError::TooLarge(_) => SendTimeoutError::TooLarge(()),
        SendTimeoutError::Fault(_, f) => SendTimeoutError::Fault((), f),
        _ => panic!("an unknown send error"),
    }
}

/// A subscriber incarnation's view of the stream (module doc, "Checks").
pub(crate) struct SubCheck {
    lossless: bool,
    producer: u32,
    /// Next position expected (None: not anchored yet).
    expected: Option<u64>,
    /// Publisher incarnation and last seq seen.
    current: Option<(u64, u64)>,
    /// A `Lagged` since the last message (overwrite ring).
    lagged: bool,
}

impl SubCheck {
    fn message(&mut self, r: &mut RoleRec, m: Option<Msg>, now: u64) {
        r.head.tick(now);
        r.delivered_total += 1;
        let Some(m) = m.filter(|m| m.producer == self.producer && m.inc != 0) else {
            r.corrupt_total += 1;
            self.expected = None;
            self.current = None;
            return;
        };
        let mut clean = true;
        match self.expected {
            Some(e) if m.pos < e => {
                r.dup_total += 1;
                return;
            }
            Some(e) if m.pos > e => {
                r.lost_total += m.pos - e;
                clean = false;
            }
            _ => {}
        }
        self.expected = Some(m.pos + 1);
        // Counted only when the position was right, so an anomaly counts once.
        match self.current {
            _ if !clean => {}
            None => {}
            Some((inc, last)) if m.inc == inc => {
                if m.seq <= last {
                    r.dup_total += 1;
                } else if m.seq != last + 1 && !self.lagged {
                    r.lost_total += m.seq - last - 1;
                }
            }
            // A publisher that started while we were here: from its seq 0.
            Some((inc, _)) if m.inc > inc && m.seq != 0 && !self.lagged => {
                r.lost_total += m.seq;
            }
            Some((inc, _)) if m.inc > inc => {}
            Some(_) => r.dup_total += 1, // an older publisher after a newer one
        }
        self.current = Some((m.inc, m.seq));
        self.lagged = false;
        note_seen(&mut r.seen, &mut r.seen_next, m.inc, now);
    }

    fn lagged(&mut self, r: &mut RoleRec, n: u64) {
        if self.lossless {
            r.lost_total += n;
        } else {
            r.lagged_total += n;
            r.lagged_events += 1;
        }
        self.expected = self.expected.map(|e| e + n);
        self.lagged = true;
    }
}

pub(crate) fn run_subscriber(cx: &mut Ctx, policy: Policy) {
    let j = role_journal(cx);
    let opts = ring_opts::<Subscriber>(&cx.names.ring(policy), policy);
    let mut sub = cx.open("Subscriber::open", || opts.open());
    let lossless = policy == Policy::Lossless;
    let mut chk = SubCheck {
        lossless,
        producer: if lossless { PUB_SLOT } else { OW_PUB_SLOT } as u32,
        expected: None,
        current: None,
        lagged: false,
    };
    let mut buf = Vec::with_capacity(MAX_MESSAGE);
    // The overwrite subscriber pauses often enough to be lapped; none
    // pauses before its first message (that would count as recovery time).
    let (one_in, lo, hi) = if lossless {
        (2000, 5, 30)
    } else {
        (500, 10, 60)
    };
    let mut taken = 0u64;
    loop {
        let phase = cx.phase();
        if phase == PHASE_RUN && taken > 0 && cx.rng.below(one_in) == 0 {
            set_state(&j, ST_PAUSED);
            cx.maybe_pause(1, lo, hi);
        }
        // Lossless: half the messages are read in place (zero-copy), the
        // sample held while the journal is updated, so that a kill may
        // land while a sample is held.
        if lossless && cx.rng.below(2) == 0 {
            if let Ok(sample) = sub.recv_ref_timeout(STEP) {
                let now = now_ns();
                taken += 1;
                buf.resize(sample.len(), 0);
                sample.copy_to_slice(&mut buf);
                let m = check_message(&buf);
                let in_lock = cx.hold(4000, 1, 4);
                j.update(|r, _| {
                    chk.message(r, m, now);
                    std::thread::sleep(in_lock);
                });
                drop(sample);
                continue;
            }
            // Anything else: the copying receive below reports it.
        }
        let got = sub.recv_into_timeout(&mut buf, STEP);
        let now = now_ns();
        match got {
            Ok(_) => {
                taken += 1;
                let m = check_message(&buf);
                let in_lock = cx.hold(4000, 1, 4);
                j.update(|r, _| {
                    chk.message(r, m, now);
                    std::thread::sleep(in_lock);
                });
            }
            Err(RecvTimeoutError::Lagged(n)) => j.update(|r, _| chk.lagged(r, n)),
            Err(RecvTimeoutError::Disconnected) => {
                if phase >= PHASE_DRAIN {
                    break; // the publisher stopped and we read everything
                }
                set_state(&j, ST_DISCONNECTED);
                std::thread::sleep(PEER_PAUSE);
            }
            Err(RecvTimeoutError::Timeout) => set_state(&j, ST_WAIT_MSG),
            Err(RecvTimeoutError::Fault(
                fault @ (Fault::BadSlot { .. } | Fault::BadLength { .. }),
            )) => {
                eprintln!("{}: {fault}", cx.role.name());
                j.update(|r, _| {
                    r.head.tick(now);
                    r.delivered_total += 1;
                    r.corrupt_total += 1;
                });
                // The slot was skipped: go on after it. A bad length does not
                // say where the slot was; it was the one expected (a lap is
                // reported as `Lagged` first).
                chk.expected = match fault {
                    Fault::BadSlot { position } => Some(position + 1),
                    _ => chk.expected.map(|e| e + 1),
                };
            }
            Err(e) => panic!("{}: recv: {e}", cx.role.name()),
        }
    }
    finish(&j, chk.expected.unwrap_or(NONE));
    drop(sub);
}
