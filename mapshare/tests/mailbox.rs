//! Mailboxes across processes (both start orders, Unicode, exactly-once
//! delivery, limits), creators killed during initialisation, and `gc`.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

use common::{assert_clean, shm_path, spawn_child, unique_name, ChildProc, Cleanup, TempDir};
use mapshare::segment;
use mapshare::{
    Fault, Location, Mailbox, RecvTimeoutError, SegmentError, SendError, SendTimeoutError, Shared,
    TryRecvError, TrySendError,
};

use common::gc_lock;

/// Mixed scripts, combining marks, emoji with skin tones and ZWJ sequences,
/// flags, a right-to-left run, astral-plane letters, and a NUL.
const UNICODE: &str = "Grüße, мир! 世界 こんにちは 안녕하세요 مرحبا שָׁלוֹם नमस्ते ಕನ್ನಡ \
    e\u{301} n\u{303} 🦀 👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 🇺🇦 🧑‍🤝‍🧑 ﷽ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{200F}x\u{200E} \u{0} end";

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn mailbox_round_trip_when_receiver_starts_first() {
    let test = "mailbox_round_trip_when_receiver_starts_first";
    if let Some(child) = common::child() {
        child.run(|c| {
            // The receiver comes first and creates the mailbox.
            let mb = Mailbox::options(&c.name)
                .max_message(4096)
                .open_or_create()
                .unwrap();
            c.signal("ready");
            let got = mb.recv_timeout(TIMEOUT).expect("no message");
            assert_eq!(got, b"hello from the sender");
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("rx_first");
    let name = unique_name("rx_first");
    let _c = Cleanup::new(&name);
    let mut rx = spawn_child(test, "receiver", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(dir.path(), "ready", &mut rx));
    let mb = Mailbox::open(&name).unwrap();
    assert_eq!(mb.max_message(), 4096);
    mb.send_timeout(b"hello from the sender", TIMEOUT).unwrap();
    rx.wait_ok();
    assert!(!mb.is_full());
    drop(mb);
    assert_clean(&[&name], &[rx.id()]);
}

#[test]
fn mailbox_round_trip_when_sender_starts_first() {
    let test = "mailbox_round_trip_when_sender_starts_first";
    if let Some(child) = common::child() {
        child.run(|c| {
            // Persistent, as the CLI's `send` makes it: the message
            // outlives its sender.
            let mb = Mailbox::options(&c.name)
                .persistent(true)
                .max_message(1024)
                .create()
                .unwrap();
            mb.send_timeout(b"left for you", TIMEOUT).unwrap();
        });
    }
    let _wd = common::watchdog(test);
    let _gc = gc_lock(); // the mailbox is unattached between sender and receiver
    let dir = TempDir::new("tx_first");
    let name = unique_name("tx_first");
    let _c = Cleanup::new(&name);
    let mut tx = spawn_child(test, "sender", &name, dir.path(), "");
    tx.wait_ok();
    assert!(
        shm_path(&name).exists(),
        "persistent mailbox gone with its sender"
    );
    let mb = Mailbox::open(&name).unwrap();
    assert!(mb.is_full());
    assert_eq!(mb.recv_timeout(TIMEOUT).unwrap(), b"left for you");
    assert_eq!(mb.try_recv(), Err(TryRecvError::Empty), "delivered twice");
    drop(mb);
    segment::unlink(&Location::shm(&name).unwrap()).unwrap();
    assert_clean(&[&name], &[tx.id()]);
}

#[test]
fn mailbox_round_trips_unicode_byte_for_byte() {
    let test = "mailbox_round_trips_unicode_byte_for_byte";
    if let Some(child) = common::child() {
        child.run(|c| {
            let mb = Mailbox::open(&c.name).unwrap();
            let got = mb.recv_timeout(TIMEOUT).expect("no message");
            common::write_atomic(&c.dir, "got", &got);
            assert_eq!(got, UNICODE.as_bytes());
            assert_eq!(std::str::from_utf8(&got).unwrap(), UNICODE);
            // Echo it back.
            mb.send_timeout(&got, TIMEOUT).unwrap();
            c.signal("echoed");
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("unicode");
    let name = unique_name("unicode");
    let _c = Cleanup::new(&name);
    let mb = Mailbox::options(&name).max_message(4096).create().unwrap();
    let mut child = spawn_child(test, "echo", &name, dir.path(), "");
    mb.send_timeout(UNICODE.as_bytes(), TIMEOUT).unwrap();
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "echoed",
        &mut child
    ));
    let back = mb.recv_timeout(TIMEOUT).unwrap();
    child.wait_ok();
    assert_eq!(fs::read(dir.join("got")).unwrap(), UNICODE.as_bytes());
    assert_eq!(back, UNICODE.as_bytes());
    assert_eq!(String::from_utf8(back).unwrap(), UNICODE);
    drop(mb);
    assert_clean(&[&name], &[child.id()]);
}

#[test]
fn recv_timeout_fails_on_empty_mailbox() {
    let _wd = common::watchdog("recv_timeout_fails_on_empty_mailbox");
    let name = unique_name("empty");
    let _c = Cleanup::new(&name);
    let mb = Mailbox::options(&name).max_message(64).create().unwrap();
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    assert_eq!(mb.recv_timeout(timeout), Err(RecvTimeoutError::Timeout));
    assert!(
        start.elapsed() >= timeout,
        "returned early: {:?}",
        start.elapsed()
    );
    assert_eq!(mb.try_recv(), Err(TryRecvError::Empty));
    // And the other way round: a full mailbox makes send wait, then time out
    // (the refused message is handed back).
    mb.try_send(b"x").unwrap();
    assert_eq!(mb.try_send(b"y"), Err(TrySendError::Full(&b"y"[..])));
    let start = Instant::now();
    assert_eq!(
        mb.send_timeout(b"y", timeout),
        Err(SendTimeoutError::Timeout(&b"y"[..]))
    );
    assert!(start.elapsed() >= timeout);
    assert_eq!(mb.try_recv().unwrap(), b"x");
}

#[test]
fn send_fails_on_message_larger_than_capacity() {
    let _wd = common::watchdog("send_fails_on_message_larger_than_capacity");
    let name = unique_name("toolarge");
    let _c = Cleanup::new(&name);
    let mb = Mailbox::options(&name).max_message(16).create().unwrap();
    let rx = Mailbox::open(&name).unwrap();
    assert_eq!(rx.max_message(), 16);
    assert_eq!(mb.max_message(), 16);
    // Refused whole by every form, and handed back (all 17 bytes).
    let big = [b'z'; 17];
    assert_eq!(mb.try_send(&big), Err(TrySendError::TooLarge(&big[..])));
    assert_eq!(
        mb.send_timeout(&big, Duration::from_millis(10)),
        Err(SendTimeoutError::TooLarge(&big[..]))
    );
    assert_eq!(mb.send(&big), Err(SendError::TooLarge(&big[..])));
    assert!(!mb.is_full(), "a refused message was stored");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // Exactly the capacity fits, and an empty message is a message.
    mb.try_send(&[b'a'; 16]).unwrap();
    assert_eq!(rx.try_recv().unwrap(), [b'a'; 16]);
    mb.try_send(b"").unwrap();
    assert!(mb.is_full());
    assert_eq!(rx.try_recv().unwrap(), b"");
    // A zero capacity is refused at creation.
    assert!(matches!(
        Mailbox::options(&unique_name("zero"))
            .max_message(0)
            .create(),
        Err(SegmentError::InvalidSize(_))
    ));
}

/// One sender process, two receiver processes: every one of 500 messages
/// arrives exactly once.
#[test]
fn mailbox_delivers_each_message_exactly_once_to_two_receivers() {
    const MESSAGES: u32 = 500;
    const RECEIVERS: usize = 2;
    let test = "mailbox_delivers_each_message_exactly_once_to_two_receivers";
    if let Some(child) = common::child() {
        child.run(|c| {
            let mb = Mailbox::open(&c.name).unwrap();
            c.signal(&format!("ready-{}-{}", c.role, c.arg));
            c.wait_for("go");
            if c.role == "sender" {
                for i in 0..MESSAGES {
                    mb.send_timeout(format!("msg-{i}").as_bytes(), TIMEOUT)
                        .unwrap_or_else(|e| panic!("send {i}: {e}"));
                }
                // One stop per receiver: each stops at its first, so each gets one.
                for _ in 0..RECEIVERS {
                    mb.send_timeout(b"STOP", TIMEOUT).unwrap();
                }
            } else {
                let mut got = Vec::new();
                loop {
                    let m = mb.recv_timeout(TIMEOUT).expect("receiver starved");
                    if m == b"STOP" {
                        break;
                    }
                    got.push(String::from_utf8(m).unwrap());
                }
                common::write_atomic(&c.dir, &format!("got-{}", c.arg), got.join("\n").as_bytes());
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("once");
    let name = unique_name("once");
    let _c = Cleanup::new(&name);
    let mb = Mailbox::options(&name).max_message(64).create().unwrap();
    let mut kids: Vec<ChildProc> = (0..RECEIVERS)
        .map(|i| spawn_child(test, "receiver", &name, dir.path(), &i.to_string()))
        .collect();
    kids.push(spawn_child(test, "sender", &name, dir.path(), "0"));
    for (i, k) in kids.iter_mut().take(RECEIVERS).enumerate() {
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("ready-receiver-{i}"),
            k
        ));
    }
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "ready-sender-0",
        &mut kids[RECEIVERS]
    ));
    common::signal(dir.path(), "go");
    for k in &mut kids {
        k.wait_ok();
    }
    let mut seen = BTreeSet::new();
    let mut per_receiver = Vec::new();
    for i in 0..RECEIVERS {
        let text = fs::read_to_string(dir.join(&format!("got-{i}"))).unwrap();
        let msgs: Vec<&str> = text.lines().collect();
        per_receiver.push(msgs.len());
        for m in msgs {
            let n: u32 = m
                .strip_prefix("msg-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("garbled message {m:?}"));
            assert!(seen.insert(n), "message {n} delivered twice");
        }
    }
    assert_eq!(seen.len(), MESSAGES as usize, "lost messages");
    assert_eq!(seen, (0..MESSAGES).collect::<BTreeSet<_>>());
    eprintln!("messages per receiver: {per_receiver:?}");
    assert!(!mb.is_full());
    drop(mb);
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    assert_clean(&[&name], &pids);
}

/// A creator killed at a random point of creating a big segment: the name
/// is then absent or fully usable, and `gc` removes what is left.
#[test]
fn creator_killed_during_init_leaves_nothing_after_gc() {
    const BIG: usize = 256 << 20; // fallocate of 256 MiB takes a while
    let test = "creator_killed_during_init_leaves_nothing_after_gc";
    if let Some(child) = common::child() {
        child.run(|c| {
            c.signal("starting");
            let mb = Mailbox::options(&c.name)
                .max_message(BIG)
                .create()
                .expect("create");
            c.signal("created");
            loop {
                std::thread::sleep(Duration::from_secs(1)); // until killed
                let _ = mb.is_full();
            }
        });
    }
    let _wd = common::watchdog_for(test, Duration::from_secs(120));
    let _gc = gc_lock();
    let mut rng = common::XorShift::from_time(test);
    let dir = TempDir::new("killinit");
    let (mut absent, mut opened, mut leftovers, mut finished) = (0, 0, 0, 0);
    // 20 kills at a random 0..20 ms into the creation, then a few once it
    // has published (so both sides of the publication are covered).
    for i in 0..24 {
        let name = unique_name("killinit");
        let _c = Cleanup::new(&name);
        let mut child = spawn_child(test, "creator", &name, dir.path(), "");
        let flag = if i < 20 { "starting" } else { "created" };
        assert!(common::wait_for_flag_or_exit(dir.path(), flag, &mut child));
        if i < 20 {
            std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        }
        child.kill();
        let pid = child.id();
        if dir.join("created").exists() {
            finished += 1;
        }
        let _ = fs::remove_file(dir.join("starting"));
        let _ = fs::remove_file(dir.join("created"));
        match Mailbox::open(&name) {
            Ok(mb) => {
                assert_eq!(mb.max_message(), BIG);
                assert!(!mb.is_full());
                opened += 1;
            }
            Err(SegmentError::NotFound(_)) => absent += 1,
            Err(e) => panic!("after killing the creator: {e:?}"),
        }
        if !common::init_leftovers(&[pid]).is_empty() {
            leftovers += 1;
        }
        let report = segment::gc(false).unwrap();
        assert!(
            !report.kept.iter().any(|(n, _)| *n == name),
            "gc kept {name}: {report:?}"
        );
        assert!(!shm_path(&name).exists(), "{name} left after gc");
        assert_eq!(common::init_leftovers(&[pid]), Vec::<String>::new());
        assert_clean(&[&name], &[pid]);
    }
    eprintln!(
        "killed creators: {absent} names absent, {opened} opened, \
         {leftovers} killed mid-init (temp file left for gc), {finished} had finished"
    );
}

/// A non-persistent segment whose only process was SIGKILLed: `gc` removes it.
#[test]
fn gc_removes_segment_of_killed_process() {
    let test = "gc_removes_segment_of_killed_process";
    if let Some(child) = common::child() {
        child.run(|c| {
            let s = Shared::<u64>::create(&c.name).unwrap();
            s.lock().unwrap().set(&1);
            c.signal("created");
            loop {
                std::thread::sleep(Duration::from_secs(1)); // until killed
            }
        });
    }
    let _wd = common::watchdog(test);
    let _gc = gc_lock();
    let dir = TempDir::new("gckill");
    let name = unique_name("gckill");
    let _c = Cleanup::new(&name);
    let mut child = spawn_child(test, "creator", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "created",
        &mut child
    ));
    // Alive: gc keeps it.
    let report = segment::gc(false).unwrap();
    assert!(
        report.kept.iter().any(|(n, _)| *n == name),
        "live segment not kept: {report:?}"
    );
    assert!(shm_path(&name).exists());
    child.kill();
    assert!(shm_path(&name).exists(), "nothing but gc should remove it");
    let report = segment::gc(false).unwrap();
    assert!(
        report.removed.contains(&name),
        "gc did not report {name} removed: {report:?}"
    );
    assert!(!shm_path(&name).exists());
    assert_clean(&[&name], &[child.id()]);
}

#[test]
fn gc_removes_persistent_segment_only_with_all() {
    let test = "gc_removes_persistent_segment_only_with_all";
    if let Some(child) = common::child() {
        child.run(|c| {
            let s = Shared::<u64>::options(&c.name)
                .persistent(true)
                .create()
                .unwrap();
            s.lock().unwrap().set(&3);
        });
    }
    let _wd = common::watchdog(test);
    let _gc = gc_lock();
    let dir = TempDir::new("gcpersist");
    let name = unique_name("gcpersist");
    let _c = Cleanup::new(&name);
    let mut child = spawn_child(test, "creator", &name, dir.path(), "");
    child.wait_ok();
    assert!(shm_path(&name).exists());
    let report = segment::gc(false).unwrap();
    assert!(!report.removed.contains(&name), "{report:?}");
    assert!(
        report.kept.iter().any(|(n, _)| *n == name),
        "persistent segment not reported kept: {report:?}"
    );
    assert!(
        shm_path(&name).exists(),
        "gc(false) removed a persistent segment"
    );
    assert_eq!(Shared::<u64>::open(&name).unwrap().lock().unwrap().get(), 3);
    let report = segment::gc(true).unwrap();
    assert!(report.removed.contains(&name), "{report:?}");
    assert!(!shm_path(&name).exists());
    assert_clean(&[&name], &[child.id()]);
}

/// `gc` running while segments are being created never breaks a creation
/// (it must leave a creator's temp file alone, even in the instant before
/// the creator marks it as "initialising").
#[test]
fn gc_racing_create_never_breaks_creation() {
    let test = "gc_racing_create_never_breaks_creation";
    let _wd = common::watchdog(test);
    let _gc = gc_lock();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut runs = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                segment::gc(false).unwrap();
                runs += 1;
            }
            runs
        })
    };
    let mut failures = Vec::new();
    let deadline_rounds = 3000;
    for i in 0..deadline_rounds {
        let name = unique_name("gcrace");
        let _c = Cleanup::new(&name);
        match Shared::<u64>::create(&name) {
            Ok(s) => drop(s),
            Err(e) => failures.push(format!("round {i}: {e:?}")),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = collector.join().unwrap();
    eprintln!("gc ran {runs} times during {deadline_rounds} creations");
    assert!(failures.is_empty(), "creations broken by gc: {failures:#?}");
    assert_clean(&[], &[]);
}

/// Random bytes scribbled over a live mailbox's payload (lock word, events,
/// full flag, length, data): send and receive return values or errors,
/// never crash, hang or hand out more than the capacity.
#[test]
fn mailbox_survives_random_payload_corruption() {
    let test = "mailbox_survives_random_payload_corruption";
    let _wd = common::watchdog(test);
    let mut rng = common::XorShift::from_time(test);
    let name = unique_name("mbcorrupt");
    let _c = Cleanup::new(&name);
    let cap = 64usize;
    let mb = Mailbox::options(&name).max_message(cap).create().unwrap();
    let file = fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    let payload_end = fs::metadata(shm_path(&name)).unwrap().len();
    let (mut corrupt, mut got) = (0, 0);
    for _ in 0..400 {
        for _ in 0..1 + rng.below(4) {
            let off = 4096 + rng.below(payload_end - 4096 - 8);
            let v = match rng.below(3) {
                0 => rng.next_u64(),
                1 => u64::MAX,
                _ => rng.below(256),
            };
            common::FileExt::write_all_at(&file, &v.to_ne_bytes(), off).unwrap();
        }
        match mb.try_recv() {
            Ok(m) => {
                assert!(m.len() <= cap);
                got += 1;
            }
            Err(TryRecvError::Fault(Fault::BadLength { len, max })) => {
                assert_eq!(max, cap as u64);
                assert!(len > max, "a valid length reported corrupt: {len}");
                corrupt += 1;
            }
            Err(_) => {}
        }
        let _ = mb.try_send(b"ping");
        if rng.below(8) == 0 {
            if let Ok(other) = Mailbox::open(&name) {
                let _ = other.recv_timeout(Duration::from_millis(1));
            }
        }
    }
    eprintln!("corrupted mailbox: {got} messages, {corrupt} corrupt reports");
}

/// A segment file that another process keeps truncating and rewriting
/// (a buggy or hostile peer) while `gc` and `inspect` look at it: they
/// report it, they do not die of SIGBUS reading a header past the end.
#[test]
// Unix by nature: Windows refuses to shrink a file with a mapped view
// (ERROR_USER_MAPPED_FILE), so no peer can make our view fault (no SIGBUS
// case): see issue_7.rs, `a_mapped_segment_cannot_be_shrunk_windows`.
#[cfg(unix)]
fn gc_and_inspect_survive_a_segment_truncated_under_them() {
    let test = "gc_and_inspect_survive_a_segment_truncated_under_them";
    let _wd = common::watchdog(test);
    let _gc = gc_lock();
    let name = unique_name("truncated");
    let _c = Cleanup::new(&name);
    drop(
        Shared::<u64>::options(&name)
            .persistent(true)
            .create()
            .unwrap(),
    );
    let image = fs::read(shm_path(&name)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rewriter = {
        let (stop, path, image) = (stop.clone(), shm_path(&name), image.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut rounds = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // O_TRUNC: the object is 0 bytes until the write lands.
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&path)
                    .unwrap();
                f.write_all(&image).unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let mut valid = 0;
    for _ in 0..3000 {
        let report = segment::gc(false).unwrap();
        assert!(!report.removed.contains(&name), "{report:?}");
        if let Ok(info) = segment::inspect(&Location::shm(&name).unwrap()) {
            if info.header.is_ok() {
                valid += 1;
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = rewriter.join().unwrap();
    eprintln!("{rounds} rewrites; inspect saw a valid header {valid} times");
    segment::unlink(&Location::shm(&name).unwrap()).unwrap();
}
