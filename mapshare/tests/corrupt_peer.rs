//! A hostile peer: another process rewrites the header, registry, indices,
//! lengths and sequence words of live segments with random values, while
//! this process keeps using them. Our side must get errors or skip, and
//! never crash, panic, read out of bounds or spin without end (the
//! watchdog turns a hang into a failure; a crash or a panic fails the test).
//!
//! The attacker writes through the page cache with `pwrite` on
//! `/dev/shm/mapshare.<name>` (what it writes reaches every mapping), and
//! never changes a file's size: truncation is a different threat, tested
//! in tests/permissions.rs.

mod common;

use common::FileExt;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use common::{assert_clean, shm_path, spawn_child, unique_name, ChildCtx, Cleanup, TempDir};
use mapshare::options::{HasCapacity, HasMaxMessage, HasSenders};
use mapshare::segment;
use mapshare::{
    BlackboardReader, BlackboardWriter, Location, LockTimeoutError, Mailbox, Options, Publisher,
    Receiver, Sender, Shared, Subscriber,
};

/// How long the attacker attacks.
const ATTACK: Duration = Duration::from_secs(3);
/// Every blocking call we make under attack waits at most this long.
const SHORT: Duration = Duration::from_millis(5);

/// The attacked channel's options, for either end.
fn channel_opts<K: HasCapacity + HasMaxMessage + HasSenders>(name: &str) -> Options<K> {
    Options::new(name).capacity(16).max_message(256).senders(4)
}

/// Where the channel's slot headers are, for the attacker to aim at: the
/// payload starts at 4096; the slots follow the control block, the two
/// doorbells and 4 lanes of 256 bytes (384 + 4 * 256 = 1408, a multiple
/// of 128); a slot is 16 header bytes + 256 data bytes, rounded up to 320.
/// If the layout changes these shots land elsewhere, which is still an attack.
const CHANNEL_SLOTS_AT: u64 = 4096 + 1408;
const CHANNEL_STRIDE: u64 = 320;
const CHANNEL_SLOTS: u64 = 4 * 16;
/// The pub/sub ring's slots: payload 4096, after the control lines, two
/// doorbells and 128 subscriber slots (16896); 16 slots of 2 header words
/// + 256 data bytes, rounded up to 40 words (320 bytes).
const RING_SLOTS_AT: u64 = 4096 + 16896;
const RING_STRIDE: u64 = 320;
const RING_SLOTS: u64 = 16;
/// The blackboard's two seqlocked buffers, at payload 256.
const BOARD_AT: u64 = 4096 + 256;

/// Special values worth trying on control words.
const SPECIAL: [u64; 10] = [
    0,
    1,
    2,
    u64::MAX,
    u64::MAX - 1,
    0x8000_0000,             // the mutex's LOCKED bit
    0xC000_0000,             // LOCKED | WAITERS
    0x5245_4459,             // the header's READY state word
    (u32::MAX as u64) << 32, // a huge length
    1 << 40,                 // large, but not absurd
];

/// The attacker: `arg` is `ms,file,file,...`. Rewrites random words of the
/// files for `ms` milliseconds, in bursts, then writes how many writes it made.
fn attacker(c: &ChildCtx) {
    let mut parts = c.arg.split(',');
    let ms: u64 = parts.next().unwrap().parse().unwrap();
    let files: Vec<(String, fs::File, u64, [u8; 256])> = parts
        .map(|name| {
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(shm_path(name))
                .expect("attacker: open the segment file");
            let len = f.metadata().unwrap().len();
            let mut header = [0u8; 256];
            f.read_exact_at(&mut header, 0).unwrap();
            (name.to_owned(), f, len, header)
        })
        .collect();
    let mut rng = common::XorShift::from_time("attacker");
    c.signal("attacking");
    let end = Instant::now() + Duration::from_millis(ms);
    let mut writes = 0u64;
    while Instant::now() < end {
        // Now and then put a header back as it was, so that openers get
        // past the magic and meet the subtler damage too.
        if rng.below(3) == 0 {
            let (_, file, _, header) = &files[rng.below(files.len() as u64) as usize];
            file.write_all_at(header, 0).expect("attacker: pwrite");
        }
        for _ in 0..=rng.below(32) {
            let (name, file, len, _) = &files[rng.below(files.len() as u64) as usize];
            let is_channel = name.ends_with("-ch");
            let is_ring = name.ends_with("-ps");
            let is_board = name.ends_with("-bb");
            let off = match rng.below(100) {
                0..=2 => rng.below(8),                  // the magic
                3..=34 => 8 + rng.below(248),           // the rest of the header's fixed part
                35..=49 => 256 + rng.below(4096 - 256), // the registry
                50..=79 => 4096 + rng.below(1024),      // payload control words
                80..=89 if is_channel => {
                    // a slot header: seq or len
                    CHANNEL_SLOTS_AT + rng.below(CHANNEL_SLOTS) * CHANNEL_STRIDE + 8 * rng.below(2)
                }
                80..=89 if is_ring => {
                    // a ring slot's seq or len word, or the subscriber table
                    if rng.below(2) == 0 {
                        RING_SLOTS_AT + rng.below(RING_SLOTS) * RING_STRIDE + 8 * rng.below(2)
                    } else {
                        4096 + 512 + rng.below(128 * 128)
                    }
                }
                80..=89 if is_board => BOARD_AT + rng.below(2 * 128), // seq words, values
                _ => rng.below(*len),
            };
            let off = match rng.below(4) {
                0 => off,      // unaligned, any byte
                1 => off & !3, // a u32
                _ => off & !7, // a u64
            };
            let value: Vec<u8> = match rng.below(10) {
                0..=2 => rng.next_u64().to_ne_bytes().to_vec(),
                3 => (rng.next_u64() as u32).to_ne_bytes().to_vec(),
                4 => vec![rng.next_u64() as u8],
                5 | 6 => {
                    // Plausible: the word that is there, nudged a little
                    // (a sequence word one ahead, a length one too long).
                    let mut cur = [0u8; 8];
                    let _ = file.read_at(&mut cur, off);
                    let v = u64::from_ne_bytes(cur)
                        .wrapping_add(rng.below(5))
                        .wrapping_sub(2);
                    v.to_ne_bytes().to_vec()
                }
                7 => SPECIAL[rng.below(SPECIAL.len() as u64) as usize]
                    .to_ne_bytes()
                    .to_vec(),
                8 => rng.below(64).to_ne_bytes().to_vec(),
                _ => {
                    // A word copied from elsewhere in the same file.
                    let mut w = [0u8; 8];
                    let _ = file.read_at(&mut w, rng.below(len.saturating_sub(8)) & !7);
                    w.to_vec()
                }
            };
            // Never past the end: the size must not change.
            let n = value.len().min(len.saturating_sub(off) as usize);
            file.write_all_at(&value[..n], off)
                .expect("attacker: pwrite");
            writes += 1;
        }
        std::thread::sleep(Duration::from_micros(rng.below(300)));
    }
    for (name, file, len, _) in &files {
        assert_eq!(
            file.metadata().unwrap().len(),
            *len,
            "the size of {name} changed under attack"
        );
    }
    common::write_atomic(&c.dir, "attacker-writes", writes.to_string().as_bytes());
}

/// Outcome counts: `op` -> (`ok`, error kind -> count).
#[derive(Default)]
struct Tally {
    ops: BTreeMap<&'static str, (u64, BTreeMap<String, u64>)>,
}

/// The variant name of an error, from its `Debug` form.
fn kind(e: &impl Debug) -> String {
    let s = format!("{e:?}");
    let ident = |t: &str| -> String {
        t.split(|c: char| !c.is_alphanumeric() && c != '_')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    // `SegmentError::Header { error: BadMagic, .. }` -> "Header/BadMagic".
    match s.split_once("error: ") {
        Some((_, inner)) => format!("{}/{}", ident(&s), ident(inner)),
        None => ident(&s),
    }
}

impl Tally {
    fn count<T, E: Debug>(&mut self, op: &'static str, r: &Result<T, E>) {
        let entry = self.ops.entry(op).or_default();
        match r {
            Ok(_) => entry.0 += 1,
            Err(e) => *entry.1.entry(kind(e)).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        for (op, (ok, errs)) in other.ops {
            let entry = self.ops.entry(op).or_default();
            entry.0 += ok;
            for (k, n) in errs {
                *entry.1.entry(k).or_default() += n;
            }
        }
    }

    fn totals(&self) -> (u64, u64) {
        let mut ops = 0;
        let mut errors = 0;
        for (ok, errs) in self.ops.values() {
            let e: u64 = errs.values().sum();
            ops += ok + e;
            errors += e;
        }
        (ops, errors)
    }
}

fn run_until(stop: &AtomicBool, mut body: impl FnMut(&mut Tally, &mut common::XorShift)) -> Tally {
    let mut tally = Tally::default();
    let mut rng = common::XorShift::new(u64::from(std::process::id()) ^ 0x5eed);
    while !stop.load(Ordering::Relaxed) {
        body(&mut tally, &mut rng);
    }
    tally
}

#[test]
fn hostile_peer_rewrites_live_segments_while_we_keep_working() {
    let test = "hostile_peer_rewrites_live_segments_while_we_keep_working";
    if let Some(child) = common::child() {
        child.run(attacker);
    }
    let _wd = common::watchdog_for(test, Duration::from_secs(120));
    let dir = TempDir::new("hostile");
    let base = unique_name("hostile");
    let (mb_name, sh_name, ch_name) = (
        format!("{base}-mb"),
        format!("{base}-sh"),
        format!("{base}-ch"),
    );
    let (ps_name, bb_name) = (format!("{base}-ps"), format!("{base}-bb"));
    let mut cleanup = Cleanup::new(&mb_name);
    cleanup.add(&sh_name);
    cleanup.add(&ch_name);
    cleanup.add(&ps_name);
    cleanup.add(&bb_name);

    let mailbox = Mailbox::options(&mb_name)
        .max_message(4096)
        .create()
        .unwrap();
    let shared = Shared::<u64>::create(&sh_name).unwrap();
    let mut rx: Receiver = channel_opts(&ch_name).create().unwrap();
    let mut tx: Sender = channel_opts(&ch_name).open().unwrap();
    let mut publisher = Publisher::options(&ps_name)
        .capacity(16)
        .max_message(256)
        .create()
        .unwrap();
    let subscribers = [
        Subscriber::open(&ps_name).unwrap(),
        Subscriber::open(&ps_name).unwrap(),
    ];
    let mut writer = BlackboardWriter::<[u64; 8]>::create(&bb_name).unwrap();
    let reader = BlackboardReader::<[u64; 8]>::open(&bb_name).unwrap();
    // Some traffic in flight when the attack starts.
    mailbox.try_send(b"before the attack").unwrap();
    for i in 0..8u8 {
        tx.try_send(&[i; 100]).unwrap();
    }

    let arg = format!(
        "{},{mb_name},{sh_name},{ch_name},{ps_name},{bb_name}",
        ATTACK.as_millis()
    );
    let mut attacker = spawn_child(test, "attacker", &base, dir.path(), &arg);
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "attacking",
        &mut attacker
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tallies = Arc::new(StdMutex::new(Tally::default()));
    let mut threads = Vec::new();

    // Mailbox: both ends, non-blocking and with short timeouts.
    {
        let (stop, tallies) = (stop.clone(), tallies.clone());
        threads.push(std::thread::spawn(move || {
            let t = run_until(&stop, |t, rng| {
                let mut msg = vec![0u8; rng.below(5000) as usize];
                rng.fill(&mut msg);
                t.count("mailbox.try_send", &mailbox.try_send(&msg));
                t.count("mailbox.recv_timeout", &mailbox.recv_timeout(SHORT));
                t.count("mailbox.send_timeout", &mailbox.send_timeout(b"hi", SHORT));
                let r = mailbox.try_recv();
                if let Ok(m) = &r {
                    assert!(m.len() <= mailbox.max_message(), "a message above capacity");
                }
                t.count("mailbox.try_recv", &r);
                let _ = mailbox.is_full();
            });
            tallies.lock().unwrap().merge(t);
        }));
    }
    // Shared<u64>: every lock path with a short timeout, get/set, events.
    {
        let (stop, tallies) = (stop.clone(), tallies.clone());
        threads.push(std::thread::spawn(move || {
            let t = run_until(&stop, |t, rng| {
                let r = shared.lock_timeout(SHORT);
                let ok = r.is_ok();
                t.count("shared.lock_timeout", &r);
                // A guard after OwnerDied is still the lock: use it too.
                let guard = match r {
                    Ok(g) => Some(g),
                    Err(LockTimeoutError::OwnerDied(g)) => Some(g),
                    Err(_) => None,
                };
                if let Some(mut g) = guard {
                    let v = g.get();
                    g.set(&v.wrapping_add(1));
                    t.count::<_, ()>("shared.get_set", &Ok(ok));
                }
                let r = shared.try_lock();
                t.count("shared.try_lock", &r);
                drop(r);
                if rng.below(2) == 0 {
                    shared.notify();
                    t.count::<_, ()>("shared.notify", &Ok(()));
                }
                t.count(
                    "shared.wait_timeout",
                    &shared.wait_timeout(Duration::from_millis(1)),
                );
            });
            tallies.lock().unwrap().merge(t);
        }));
    }
    // Channel sender: copies, loans, short waits.
    {
        let (stop, tallies) = (stop.clone(), tallies.clone());
        threads.push(std::thread::spawn(move || {
            let t = run_until(&stop, |t, rng| {
                let mut msg = vec![0u8; 1 + rng.below(300) as usize];
                rng.fill(&mut msg);
                t.count("channel.try_send", &tx.try_send(&msg));
                t.count("channel.send_timeout", &tx.send_timeout(&msg[..1], SHORT));
                match tx.loan_timeout(SHORT) {
                    Ok(mut loan) => {
                        assert!(loan.write_at(0, b"loan"), "a loan of 256 bytes");
                        loan.commit(4);
                        t.count::<_, ()>("channel.loan", &Ok(()));
                    }
                    Err(e) => t.count::<(), _>("channel.loan", &Err(e)),
                }
                let _ = tx.stats();
            });
            tallies.lock().unwrap().merge(t);
        }));
    }
    // Channel receiver.
    {
        let (stop, tallies) = (stop.clone(), tallies.clone());
        threads.push(std::thread::spawn(move || {
            let t = run_until(&stop, |t, _| {
                let r = rx.recv_timeout(SHORT);
                if let Ok(m) = &r {
                    assert!(m.len() <= rx.max_message());
                }
                t.count("channel.recv_timeout", &r);
                t.count("channel.try_recv", &rx.try_recv());
                let r = rx.try_recv_ref().map(|m| m.len());
                if let Ok(n) = r {
                    assert!(n <= rx.max_message());
                }
                t.count("channel.try_recv_ref", &r);
                let _ = (rx.len(), rx.is_empty(), rx.stats());
            });
            tallies.lock().unwrap().merge(t);
        }));
    }
    // Pub/sub: the publisher (a lossless ring: it may be held up by a
    // subscriber the attacker fakes, never for ever) and two subscribers.
    {
        let (stop, tallies) = (stop.clone(), tallies.clone());
        threads.push(std::thread::spawn(move || {
            let t = run_until(&stop, |t, rng| {
                let mut msg = vec![0u8; rng.below(300) as usize];
                rng.fill(&mut msg);
                t.count("pubsub.try_publish", &publisher.try_publish(&msg));
                t.count(
                    "pubsub.publish_timeout",
                    &publisher.publish_timeout(&msg[..msg.len().min(8)], SHORT),
                );
                let _ = (publisher.subscriber_count(), publisher.stats());
            });
            tallies.lock().unwrap().merge(t);
        }));
    }
    for mut sub in subscribers {
        let (stop, tallies) = (stop.clone(), tallies.clone());
        threads.push(std::thread::spawn(move || {
            let mut buf = Vec::new();
            let t = run_until(&stop, |t, _| {
                let r = sub.recv_timeout(SHORT);
                if let Ok(m) = &r {
                    assert!(m.len() <= sub.max_message(), "a message above the maximum");
                }
                t.count("pubsub.recv_timeout", &r);
                let r = sub.try_recv_into(&mut buf);
                if let Ok(n) = r {
                    assert!(n <= sub.max_message() && n == buf.len());
                }
                t.count("pubsub.try_recv_into", &r);
                let _ = (sub.behind(), sub.publisher_alive());
            });
            tallies.lock().unwrap().merge(t);
        }));
    }
    // Blackboard: the writer never waits; readers copy, or give up.
    {
        let (stop, tallies) = (stop.clone(), tallies.clone());
        threads.push(std::thread::spawn(move || {
            let t = run_until(&stop, |t, rng| {
                writer.write(&[rng.next_u64(); 8]);
                t.count::<_, ()>("board.write", &Ok(()));
                t.count("board.read", &reader.read_with_version());
                let v = reader.version();
                t.count("board.try_read_newer", &reader.try_read_newer(v));
                t.count(
                    "board.read_newer_timeout",
                    &reader.read_newer_timeout(v.wrapping_sub(1), SHORT),
                );
            });
            tallies.lock().unwrap().merge(t);
        }));
    }
    // Re-opening every segment, and inspecting it, while it is attacked.
    {
        let (stop, tallies) = (stop.clone(), tallies.clone());
        let (mb_name, sh_name, ch_name) = (mb_name.clone(), sh_name.clone(), ch_name.clone());
        let (ps_name, bb_name) = (ps_name.clone(), bb_name.clone());
        threads.push(std::thread::spawn(move || {
            let t = run_until(&stop, |t, _| {
                let r = Mailbox::open(&mb_name);
                if let Ok(m) = &r {
                    let _ = m.try_recv();
                }
                t.count("reopen.mailbox", &r);
                let r = Shared::<u64>::open(&sh_name);
                if let Ok(s) = &r {
                    drop(s.try_lock());
                }
                t.count("reopen.shared", &r);
                let r = channel_opts::<Sender>(&ch_name).open();
                t.count("reopen.channel_sender", &r);
                let r = channel_opts::<Receiver>(&ch_name).open();
                t.count("reopen.channel_receiver", &r);
                let r = Subscriber::open(&ps_name);
                if let Ok(mut s) = r {
                    t.count("reopen.subscriber.try_recv", &s.try_recv());
                } else {
                    t.count("reopen.subscriber", &r);
                }
                t.count(
                    "reopen.board_reader",
                    &BlackboardReader::<[u64; 8]>::open(&bb_name),
                );
                t.count("reopen.publisher", &Publisher::open(&ps_name));
                t.count(
                    "pubsub_stats",
                    &mapshare::pubsub_stats(&Location::shm(&ps_name).unwrap()),
                );
                for name in [&mb_name, &sh_name, &ch_name, &ps_name, &bb_name] {
                    let r = segment::inspect(&Location::shm(name).unwrap());
                    if let Ok(info) = &r {
                        t.count("inspect.header", &info.header);
                    }
                    t.count("inspect", &r);
                }
            });
            tallies.lock().unwrap().merge(t);
        }));
    }

    attacker.wait_ok();
    let attacked_for = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().expect("a worker panicked under attack");
    }
    let writes = fs::read_to_string(dir.join("attacker-writes")).unwrap();
    let tally = tallies.lock().unwrap();
    let (ops, errors) = tally.totals();
    eprintln!("per operation: ok, then errors by kind");
    for (op, (ok, errs)) in &tally.ops {
        eprintln!("  {op:26} ok {ok:7}  {errs:?}");
    }
    eprintln!(
        "hostile peer: {ops} operations under attack, {errors} errors \
         ({writes} random writes by the attacker in {attacked_for:.1?}; no crash, panic or hang)"
    );
    assert!(ops > 0, "nothing ran under attack");
    drop(tally);
    drop(cleanup);
    assert_clean(
        &[&mb_name, &sh_name, &ch_name, &ps_name, &bb_name],
        &[attacker.id()],
    );
}

/// The flipper: for `arg` ms, follows the receiver's head mirror and makes
/// the slot at the head look committed, then not, as fast as it can: the
/// receiver sees a message appear and vanish between two looks.
fn flipper(c: &ChildCtx) {
    // One lane: the lane words at payload 384 (`head` 128 bytes in), the
    // slots at payload (384 + 256) rounded up to 128 = 640, 320 bytes each.
    const HEAD_AT: u64 = 4096 + 384 + 128;
    const SLOTS_AT: u64 = 4096 + 640;
    let ms: u64 = c.arg.parse().unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(&c.name))
        .expect("flipper: open the segment file");
    c.signal("flipping");
    let end = Instant::now() + Duration::from_millis(ms);
    let mut flips = 0u64;
    while Instant::now() < end {
        let mut h = [0u8; 8];
        f.read_exact_at(&mut h, HEAD_AT).unwrap();
        let head = u64::from_ne_bytes(h);
        let slot = SLOTS_AT + (head & 15) * CHANNEL_STRIDE;
        f.write_all_at(&10u64.to_ne_bytes(), slot + 8).unwrap();
        for _ in 0..8 {
            f.write_all_at(&head.wrapping_add(1).to_ne_bytes(), slot)
                .unwrap();
            f.write_all_at(&head.to_ne_bytes(), slot).unwrap();
            flips += 1;
        }
    }
    common::write_atomic(&c.dir, "flips", flips.to_string().as_bytes());
}

/// A peer makes the slot at the receiver's head look committed and then
/// free again, over and over: between the receiver's "is a message there?"
/// and its taking it, the message may vanish. The receiver must skip or
/// report it, never panic.
#[test]
fn hostile_peer_flipping_the_next_slot_never_panics_the_receiver() {
    let test = "hostile_peer_flipping_the_next_slot_never_panics_the_receiver";
    if let Some(child) = common::child() {
        child.run(flipper);
    }
    let _wd = common::watchdog_for(test, Duration::from_secs(120));
    let dir = TempDir::new("flip");
    let name = unique_name("flip");
    let _c = Cleanup::new(&name);
    let mut rx = Receiver::options(&name)
        .capacity(16)
        .max_message(256)
        .senders(1)
        .create()
        .unwrap();
    let mut flipper = spawn_child(test, "flipper", &name, dir.path(), "2000");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "flipping",
        &mut flipper
    ));
    let mut t = Tally::default();
    while !flipper.has_exited() {
        for _ in 0..1000 {
            t.count("channel.try_recv", &rx.try_recv());
            let r = rx.try_recv_ref().map(|m| m.len());
            if let Ok(n) = r {
                assert!(n <= rx.max_message());
            }
            t.count("channel.try_recv_ref", &r);
        }
        t.count(
            "channel.recv_timeout",
            &rx.recv_timeout(Duration::from_micros(100)),
        );
    }
    flipper.wait_ok();
    let flips = fs::read_to_string(dir.join("flips")).unwrap();
    let (ops, errors) = t.totals();
    for (op, (ok, errs)) in &t.ops {
        eprintln!("  {op:26} ok {ok:7}  {errs:?}");
    }
    eprintln!(
        "slot flipper: {ops} receives under attack, {errors} errors ({flips} flips of the head slot)"
    );
    assert!(ops > 0);
    drop(rx);
    assert_clean(&[&name], &[flipper.id()]);
}
