//! Regression tests for issue 7 (the 0.2 contract), with real processes:
//! receivers and senders learn that their peer died (SIGKILL) or left; a
//! sleeper killed asleep costs later messages no system call; every
//! timeout accepts any `Duration`; a peer rewriting a received message's
//! bytes cannot reach safe code as a changing slice.

mod common;

use common::FileExt;
use std::fs::OpenOptions;
use std::time::{Duration, Instant};

use common::{assert_clean, shm_path, spawn_child, unique_name, watchdog, Cleanup, TempDir};
use mapshare::{
    channel_stats, BlackboardReader, BlackboardWriter, Event, Location, LockTimeoutError, Mailbox,
    Mutex, Publisher, Receiver, RecvError, RecvTimeoutError, SendError, Sender, Shared, Subscriber,
    TryRecvError, WaitStrategy,
};

#[cfg(unix)] // the truncation tests only
use mapshare::{Fault, LockError, Policy};

const TEST: &str = "issue_7";

fn child_roles() {
    if let Some(child) = common::child() {
        child.run(|c| match c.role.as_str() {
            // Attaches as a sender, sends `arg` messages, signals, then
            // waits to be killed (or returns, dropping the sender).
            "sender" => {
                let mut tx = Sender::open(&c.name).unwrap();
                let n: u32 = c.arg.parse().unwrap();
                for i in 0..n {
                    tx.send(&i.to_le_bytes()).unwrap();
                }
                c.signal("sent");
                c.wait_for("go");
            }
            // Attaches as the receiver, signals, then waits to be killed.
            "receiver" => {
                let _rx = Receiver::open(&c.name).unwrap();
                c.signal("attached");
                c.wait_for("go");
            }
            // Blocks in recv (asleep on the doorbell) until killed.
            "sleeper" => {
                let mut rx = Receiver::options(&c.name)
                    .wait_strategy(WaitStrategy::Block)
                    .open()
                    .unwrap();
                c.signal("attached");
                let _ = rx.recv();
            }
            // Rewrites the message bytes of every slot of a one-lane channel
            // of 16 x 256-byte slots for `arg` ms (not the sequence words:
            // the slot the receiver holds changes under it, the stream goes on).
            "scribbler" => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(shm_path(&c.name))
                    .unwrap();
                let mut rng = common::XorShift::from_time("scribbler");
                let mut buf = [0u8; 32];
                let until = Instant::now() + Duration::from_millis(c.arg.parse().unwrap());
                c.signal("scribbling");
                while Instant::now() < until {
                    rng.fill(&mut buf);
                    // Header 4096, control lines and one lane 640, slots of
                    // 64 (seq, len) + 256 (data) bytes.
                    let slot = rng.below(16);
                    let off = 4096 + 640 + slot * 320 + 64 + rng.below(256 - 32);
                    let _ = f.write_at(&buf, off);
                }
            }
            // Shrinks the segment to `arg` bytes once the parent waits.
            "truncator" => {
                c.wait_for("waiting");
                // Only once the waiting thread is asleep in its futex: a
                // truncation while it still touches the segment on a fast
                // path is the documented SIGBUS window, not what this tests.
                let task = std::fs::read_to_string(c.dir.join("waiting")).unwrap();
                common::wait_until_freshly_asleep(&task);
                OpenOptions::new()
                    .write(true)
                    .open(shm_path(&c.name))
                    .unwrap()
                    .set_len(c.arg.parse().unwrap())
                    .unwrap();
            }
            // Takes the mutex `name`, signals, then waits to be killed.
            "locker" => {
                let m = Mutex::open(&c.name).unwrap();
                let held = m.lock().unwrap();
                c.signal("locked");
                c.wait_for("go");
                drop(held);
            }
            other => panic!("unknown role {other}"),
        });
    }
}

#[test]
fn blocked_recv_returns_disconnected_after_its_sender_is_killed() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("disc-kill");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("disc-kill");
    let mut rx = Receiver::create(&name).unwrap();
    let mut child = spawn_child(
        "blocked_recv_returns_disconnected_after_its_sender_is_killed",
        "sender",
        &name,
        dir.path(),
        "3",
    );
    common::wait_for_flag(dir.path(), "sent");
    for i in 0u32..3 {
        assert_eq!(rx.recv().unwrap(), i.to_le_bytes());
    }
    let pid = child.id();
    child.kill();
    // Blocking: as long as it takes, yet it must end.
    let start = Instant::now();
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    eprintln!("disconnected {:?} after the reap", start.elapsed());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    drop(rx);
    assert_clean(&[&name], &[pid]);
}

#[test]
fn recv_drains_then_reports_disconnected_after_its_sender_exits() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("disc-exit");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("disc-exit");
    let mut rx = Receiver::create(&name).unwrap();
    let mut child = spawn_child(
        "recv_drains_then_reports_disconnected_after_its_sender_exits",
        "sender",
        &name,
        dir.path(),
        "5",
    );
    common::wait_for_flag(dir.path(), "sent");
    common::signal(dir.path(), "go");
    child.wait_ok();
    // Everything it sent before it left comes first, then Disconnected.
    for i in 0u32..5 {
        assert_eq!(rx.recv().unwrap(), i.to_le_bytes());
    }
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    // A new sender may rejoin the name: receiving works again.
    let mut tx = Sender::open(&name).unwrap();
    tx.send(b"again").unwrap();
    assert_eq!(rx.recv().unwrap(), b"again");
}

#[test]
fn a_receiver_started_before_any_sender_waits_instead_of_disconnecting() {
    let name = unique_name("early-rx");
    let _clean = Cleanup::new(&name);
    let mut rx = Receiver::create(&name).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // And a sender started before any receiver fills its lane, not Disconnected.
    let name2 = unique_name("early-tx");
    let _clean2 = Cleanup::new(&name2);
    let mut tx = Sender::options(&name2).capacity(2).create().unwrap();
    tx.send(b"1").unwrap();
    tx.send(b"2").unwrap();
    assert!(matches!(
        tx.send_timeout(b"3", Duration::from_millis(20)),
        Err(mapshare::SendTimeoutError::Timeout(b"3"))
    ));
}

#[test]
fn blocked_send_returns_disconnected_with_the_message_after_the_receiver_is_killed() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("tx-disc");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("tx-disc");
    let mut tx = Sender::options(&name).capacity(2).create().unwrap();
    let mut child = spawn_child(
        "blocked_send_returns_disconnected_with_the_message_after_the_receiver_is_killed",
        "receiver",
        &name,
        dir.path(),
        "",
    );
    common::wait_for_flag(dir.path(), "attached");
    tx.send(b"a").unwrap();
    tx.send(b"b").unwrap(); // the lane is full now
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        child.kill();
    });
    // Blocks (full lane) until the receiver's death is noticed.
    assert_eq!(tx.send(b"c"), Err(SendError::Disconnected(&b"c"[..])));
    killer.join().unwrap();
    // A dropped receiver is noticed at once, even with room.
    let mut rx = Receiver::open(&name).unwrap();
    assert_eq!(rx.recv().unwrap(), b"a");
    drop(rx);
    let e = tx.try_send(b"d").unwrap_err();
    assert!(e.is_disconnected(), "{e:?}");
    assert_eq!(e.into_inner(), b"d");
    drop(tx);
    assert_clean(&[&name], &[pid]);
}

#[test]
fn a_receiver_killed_asleep_costs_later_messages_no_system_call() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("sleeper");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("sleeper");
    let at = Location::shm(&name).unwrap();
    let mut tx = Sender::create(&name).unwrap();
    let mut child = spawn_child(
        "a_receiver_killed_asleep_costs_later_messages_no_system_call",
        "sleeper",
        &name,
        dir.path(),
        "",
    );
    common::wait_for_flag(dir.path(), "attached");
    // Wait until it sleeps on the doorbell.
    while !channel_stats(&at).unwrap().receiver_may_sleep {
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = child.id();
    child.kill();
    assert!(
        channel_stats(&at).unwrap().receiver_may_sleep,
        "the killed sleeper left its mark"
    );
    // A new receiver takes the role over: its announcement rings the bell
    // once (one wake system call, waking nobody), which clears the mark;
    // from then on a message makes no system call (a ring is one load of
    // the doorbell word, and the mark stays clear: nobody sleeps).
    let mut rx = Receiver::options(&name)
        .wait_strategy(WaitStrategy::Spin)
        .open()
        .unwrap();
    tx.send(b"first").unwrap();
    assert!(!channel_stats(&at).unwrap().receiver_may_sleep, "healed");
    for i in 0u32..1000 {
        tx.send(&i.to_le_bytes()).unwrap();
        assert!(!channel_stats(&at).unwrap().receiver_may_sleep);
        let _ = rx.recv().unwrap();
    }
    assert_eq!(rx.recv().unwrap().len(), 4);
    drop((rx, tx));
    assert_clean(&[&name], &[pid]);
}

#[test]
fn every_timeout_accepts_any_duration() {
    let _wd = watchdog(TEST);
    let huge = [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::new(u64::MAX, 999_999_999),
    ];
    let name = unique_name("huge");
    let mut clean = Cleanup::new(&name);
    let (c, s, m, e, mb, p, b) = (
        format!("{name}-c"),
        format!("{name}-s"),
        format!("{name}-m"),
        format!("{name}-e"),
        format!("{name}-mb"),
        format!("{name}-p"),
        format!("{name}-b"),
    );
    for n in [&c, &s, &m, &e, &mb, &p, &b] {
        clean.add(n);
    }
    let mut rx = Receiver::create(&c).unwrap();
    let mut tx = Sender::open(&c).unwrap();
    let shared = Shared::<u64>::create(&s).unwrap();
    let mutex = Mutex::create(&m).unwrap();
    let event = Event::create(&e).unwrap();
    let mailbox = Mailbox::create(&mb).unwrap();
    let mut publisher = Publisher::create(&p).unwrap();
    let mut sub = Subscriber::open(&p).unwrap();
    let mut writer = BlackboardWriter::<u64>::create(&b).unwrap();
    let reader = BlackboardReader::<u64>::open(&b).unwrap();
    for d in huge {
        tx.send_timeout(b"x", d).unwrap();
        assert_eq!(rx.recv_timeout(d).unwrap(), b"x");
        tx.send_timeout(b"y", d).unwrap();
        assert_eq!(rx.recv_ref_timeout(d).unwrap().to_vec(), b"y");
        tx.loan_timeout(d).unwrap().commit(0);
        assert_eq!(rx.recv_timeout(d).unwrap(), b"");
        drop(shared.lock_timeout(d).unwrap());
        shared.notify();
        shared.wait_timeout(d).unwrap();
        drop(mutex.lock_timeout(d).unwrap());
        event.notify();
        event.wait_timeout(d).unwrap();
        mailbox.send_timeout(b"m", d).unwrap();
        assert_eq!(mailbox.recv_timeout(d).unwrap(), b"m");
        publisher.publish_timeout(b"p", d).unwrap();
        assert_eq!(sub.recv_timeout(d).unwrap(), b"p");
        writer.write(&7);
        assert_eq!(
            reader
                .read_newer_timeout(writer.version() - 1, d)
                .unwrap()
                .0,
            7
        );
        let far = Instant::now() + Duration::from_secs(3600 * 24 * 365);
        tx.send_deadline(b"z", far).unwrap();
        assert_eq!(rx.recv_deadline(far).unwrap(), b"z");
    }
    // A huge timeout that has to wait: a peer ends it.
    let e2 = Event::open(&e).unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        e2.notify();
    });
    event.wait_timeout(Duration::MAX).unwrap();
    t.join().unwrap();
}

#[test]
fn a_peer_rewriting_received_bytes_cannot_reach_safe_code_as_a_changing_slice() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("scribble");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("scribble");
    let mut rx = Receiver::options(&name)
        .capacity(16)
        .max_message(256)
        .create()
        .unwrap();
    let mut tx = Sender::open(&name).unwrap();
    let mut child = spawn_child(
        "a_peer_rewriting_received_bytes_cannot_reach_safe_code_as_a_changing_slice",
        "scribbler",
        &name,
        dir.path(),
        "1000",
    );
    common::wait_for_flag(dir.path(), "scribbling");
    let text = "héllo wörld, 世界 🦀 ".repeat(8);
    let (mut ok, mut faults, mut chars) = (0u64, 0u64, 0usize);
    let until = Instant::now() + Duration::from_millis(1000);
    while Instant::now() < until {
        let _ = tx.try_send(&text.as_bytes()[..200]);
        match rx.try_recv_ref() {
            Ok(sample) => {
                // What 0.1's `recv_with(|b| ..)` let a closure do on the slot
                // itself: validate, then iterate. Here it runs on a copy, so a
                // byte rewritten in between cannot invalidate the check.
                let copy = sample.to_vec();
                if let Ok(s) = std::str::from_utf8(&copy) {
                    chars += s.chars().count();
                    ok += 1;
                }
                // Reads through the view are bounds-checked copies too.
                let _ = sample.u64_le_at(sample.len().saturating_sub(8));
                assert!(sample.u64_le_at(sample.len()).is_none());
            }
            Err(TryRecvError::Fault(_)) => faults += 1,
            Err(_) => {}
        }
    }
    child.wait_ok();
    eprintln!("{ok} valid UTF-8 copies ({chars} chars), {faults} faults, no panic");
    assert!(ok > 0);
}

/// Runs `wait` (a blocking call of some kind on segment `name`) while a
/// child process shrinks the segment to `size` bytes; `wait` must return
/// the kind's `Fault(Truncated)` (and nothing may raise SIGBUS, here or
/// when the handles are dropped).
#[cfg(unix)] // see its tests
fn survives_truncation(kind: &str, size: u64, wait: impl FnOnce(&str, &dyn Fn()) -> bool) {
    let name = unique_name(&format!("trunc-{kind}-{size}"));
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new(&format!("trunc-{kind}"));
    let mut child = spawn_child(
        "a_segment_truncated_under_a_waiter_is_a_fault_not_sigbus",
        "truncator",
        &name,
        dir.path(),
        &size.to_string(),
    );
    // Says which thread waits ("PID/task/TID"), for the truncator to
    // watch it fall asleep.
    let go = || {
        let task = std::fs::read_link("/proc/thread-self").unwrap();
        common::write_atomic(dir.path(), "waiting", task.to_string_lossy().as_bytes());
    };
    assert!(
        wait(&name, &go),
        "{kind}, truncated to {size}: not reported as Truncated"
    );
    child.wait_ok();
}

/// Windows' counterpart of the truncation tests: a peer cannot shrink a
/// segment any process maps (`SetEndOfFile` fails with
/// `ERROR_USER_MAPPED_FILE`), so the `SIGBUS` case of Linux cannot arise;
/// the handles keep working and nothing is lost.
#[test]
#[cfg(windows)]
fn a_mapped_segment_cannot_be_shrunk_windows() {
    let _wd = watchdog("a_mapped_segment_cannot_be_shrunk_windows");
    let name = unique_name("noshrink");
    let _c = Cleanup::new(&name);
    let mb = Mailbox::options(&name).max_message(64).create().unwrap();
    let file = OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    let size = file.metadata().unwrap().len();
    let e = file.set_len(64).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(1224), "{e}"); // ERROR_USER_MAPPED_FILE
    assert_eq!(file.metadata().unwrap().len(), size);
    mb.send(b"still here").unwrap();
    assert_eq!(mb.recv().unwrap(), b"still here");
}

#[test]
// Unix by nature: Windows refuses to shrink a file with a mapped view
// (ERROR_USER_MAPPED_FILE), so no peer can make our view fault (no SIGBUS
// case): see issue_7.rs, `a_mapped_segment_cannot_be_shrunk_windows`.
#[cfg(unix)]
fn a_segment_truncated_under_a_waiter_is_a_fault_not_sigbus() {
    child_roles();
    let _wd = watchdog(TEST);
    let truncated = Fault::Truncated;
    for size in [4096u64, 0] {
        survives_truncation("recv", size, |n, go| {
            let mut rx = Receiver::options(n)
                .wait_strategy(WaitStrategy::Block)
                .create()
                .unwrap();
            go();
            rx.recv() == Err(RecvError::Fault(truncated))
        });
        survives_truncation("send", size, |n, go| {
            let mut tx = Sender::options(n)
                .capacity(1)
                .wait_strategy(WaitStrategy::Block)
                .create()
                .unwrap();
            tx.send(b"fills the lane").unwrap();
            go();
            tx.send(b"x") == Err(SendError::Fault(&b"x"[..], truncated))
        });
        survives_truncation("sub", size, |n, go| {
            let _p = Publisher::create(n).unwrap();
            let mut sub = Subscriber::options(n)
                .wait_strategy(WaitStrategy::Block)
                .open()
                .unwrap();
            go();
            sub.recv() == Err(RecvError::Fault(truncated))
        });
        survives_truncation("publish", size, |n, go| {
            let mut p = Publisher::options(n)
                .capacity(1)
                .policy(Policy::Lossless)
                .wait_strategy(WaitStrategy::Block)
                .create()
                .unwrap();
            let _slow = Subscriber::open(n).unwrap();
            p.publish(b"fills the ring").unwrap();
            go();
            p.publish(b"x") == Err(SendError::Fault(&b"x"[..], truncated))
        });
        survives_truncation("board", size, |n, go| {
            let _w = BlackboardWriter::<[u64; 4]>::create(n).unwrap();
            let r = BlackboardReader::<[u64; 4]>::options(n)
                .wait_strategy(WaitStrategy::Block)
                .open()
                .unwrap();
            go();
            r.read_newer(0) == Err(RecvError::Fault(truncated))
        });
        survives_truncation("event", size, |n, go| {
            let e = Event::create(n).unwrap();
            go();
            e.wait() == Err(RecvError::Fault(truncated))
        });
        survives_truncation("shared", size, |n, go| {
            let v = Shared::<u64>::create(n).unwrap();
            go();
            v.wait() == Err(RecvError::Fault(truncated))
        });
        survives_truncation("mutex", size, |n, go| {
            let holder = Mutex::create(n).unwrap();
            let waiter = Mutex::open(n).unwrap();
            // Held by a live handle; never unlocked (its page will be gone).
            std::mem::forget(holder.lock().unwrap());
            go();
            let got = matches!(waiter.lock(), Err(LockError::Fault(Fault::Truncated)));
            got
        });
        survives_truncation("mailbox", size, |n, go| {
            let mb = Mailbox::create(n).unwrap();
            go();
            mb.recv() == Err(RecvError::Fault(truncated))
        });
    }
}

/// Removes a FIFO or directory under /dev/shm on drop.
#[cfg(unix)] // see its test
struct Odd(std::path::PathBuf);

#[cfg(unix)]
impl Drop for Odd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
#[cfg(unix)] // Unix by nature: FIFOs (mkfifo) and directories under /dev/shm names.
fn admin_calls_and_opens_refuse_files_that_are_not_regular() {
    let _wd = watchdog(TEST);
    let _gc = common::gc_lock();
    let fifo = unique_name("fifo");
    let dir = unique_name("dir");
    let _guards = (Odd(shm_path(&fifo)), Odd(shm_path(&dir)));
    let made = std::process::Command::new("mkfifo")
        .arg(shm_path(&fifo))
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir(shm_path(&dir)).unwrap();
    for name in [&fifo, &dir] {
        let info = mapshare::segment::inspect(&Location::shm(name).unwrap());
        // Inspecting a FIFO neither blocks nor reads it; a directory is
        // refused either way.
        if let Ok(info) = info {
            assert!(info.header.is_err(), "{name}: {:?}", info.header);
        }
        assert!(Mailbox::open(name).is_err(), "{name} opened as a mailbox");
        assert!(Mailbox::open_or_create(name).is_err(), "{name} replaced");
    }
    let listed: Vec<String> = mapshare::segment::list()
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(listed.contains(&fifo));
    // Not `gc --all`: tests running beside this one keep persistent segments.
    let report = mapshare::segment::gc(false).unwrap();
    assert!(!report.removed.contains(&fifo) && !report.removed.contains(&dir));
    assert!(
        shm_path(&fifo).exists() && shm_path(&dir).exists(),
        "gc removed them"
    );
}

/// Sets a segment's "being removed" flag (header offset 20, bit 2), as a
/// remover killed between marking and unlinking leaves it.
fn mark_removed(name: &str) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(name))
        .unwrap();
    let mut w = [0u8; 4];
    common::FileExt::read_exact_at(&f, &mut w, 20).unwrap();
    let flags = u32::from_ne_bytes(w) | 2;
    f.write_all_at(&flags.to_ne_bytes(), 20).unwrap();
}

#[test]
fn a_removal_killed_half_way_never_blocks_the_name() {
    let _gc = common::gc_lock();
    let name = unique_name("half-removed");
    let _clean = Cleanup::new(&name);
    // The next opener finishes the removal, and the name is free again.
    drop(Mailbox::options(&name).persistent(true).create().unwrap());
    mark_removed(&name);
    assert!(matches!(
        Mailbox::open(&name),
        Err(mapshare::SegmentError::NotFound(_))
    ));
    assert!(!shm_path(&name).exists(), "the leftover is gone");
    let fresh = Mailbox::options(&name)
        .persistent(true)
        .open_or_create()
        .unwrap();
    fresh.send(b"works").unwrap();
    assert_eq!(fresh.recv().unwrap(), b"works");
    drop(fresh);
    // gc finishes it too, even a persistent one, without --all.
    mark_removed(&name);
    let report = mapshare::segment::gc(false).unwrap();
    assert!(report.removed.contains(&name), "{report:?}");
    assert!(!shm_path(&name).exists());
}

/// Registry slot 1's generation word in the segment file (header layout:
/// registry at 256, 16-byte slots, generation first).
const SLOT1_GEN: u64 = 256 + 16;

#[test]
fn a_wrapped_registry_generation_never_revives_a_dead_owner() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("gen-wrap");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("gen-wrap");
    let first = Mutex::create(&name).unwrap(); // slot 0
    let mut child = spawn_child(
        "a_wrapped_registry_generation_never_revives_a_dead_owner",
        "locker",
        &name,
        dir.path(),
        "",
    );
    common::wait_for_flag(dir.path(), "locked");
    let pid = child.id();
    child.kill(); // dies holding the lock: slot 1, generation 1
                  // As if slot 1 had been claimed 2^20 - 1 more times since: the next
                  // claim wraps to generation 1, the dead owner's.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    let mut gen = [0u8; 4];
    f.read_exact_at(&mut gen, SLOT1_GEN).unwrap();
    assert_eq!(
        u32::from_ne_bytes(gen),
        1,
        "the child held slot 1, generation 1"
    );
    f.write_all_at(&((1u32 << 20) - 1).to_ne_bytes(), SLOT1_GEN)
        .unwrap();
    // A live handle claims slot 1 again. Had it wrapped onto generation 1,
    // the dead owner's token would name a live slot: the lock would never
    // be recovered, by either handle.
    let second = Mutex::open(&name).unwrap();
    f.read_exact_at(&mut gen, SLOT1_GEN).unwrap();
    assert_eq!(u32::from_ne_bytes(gen), 2, "the wrap skipped generation 1");
    match first.lock_timeout(Duration::from_secs(30)) {
        Err(LockTimeoutError::OwnerDied(g)) => drop(g),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert!(second.try_lock().is_ok());
    drop((first, second));
    assert_clean(&[&name], &[pid]);
}
