//! Publish/subscribe and the blackboard between real processes: every
//! message to every subscriber (64 threads + 2 processes), a subscriber
//! killed while a lossless publisher waits for it, a stalled subscriber on
//! an overwrite-oldest ring, a killed publisher, torn-free blackboard reads
//! across processes, and a blackboard writer killed mid-run.

mod common;

use std::time::Duration;

use common::{
    assert_clean, check_message, make_message, spawn_child, unique_name, Cleanup, TempDir,
};
use mapshare::options::{HasCapacity, HasMaxMessage};
use mapshare::{
    BlackboardReader, BlackboardWriter, Fault, Options, Pod, Policy, Publisher, RecvError,
    RecvTimeoutError, SendTimeoutError, Subscriber, TryRecvError, TrySendError, WaitStrategy,
    Zeroable,
};

/// The test ring's options, for either end (`opts::<Publisher>`,
/// `opts::<Subscriber>`).
fn opts<K: HasCapacity + HasMaxMessage>(name: &str) -> Options<K> {
    Options::new(name).capacity(64).max_message(512)
}

/// Receives `n` messages and checks they are 0..n, whole and in order.
fn expect_stream(sub: &mut Subscriber, n: u64, who: &str) {
    let mut buf = Vec::new();
    for want in 0..n {
        match sub.recv_into(&mut buf) {
            Ok(len) => assert_eq!(len, buf.len()),
            Err(e) => panic!("{who}: message {want}: {e}"),
        }
        assert_eq!(check_message(&buf), want, "{who}: out of order");
    }
}

#[test]
fn pubsub_every_subscriber_gets_every_message_64_threads_and_2_processes() {
    let test = "pubsub_every_subscriber_gets_every_message_64_threads_and_2_processes";
    let n: u64 = 2000;
    if let Some(child) = common::child() {
        child.run(|c| {
            let o = opts::<Subscriber>(&c.name).wait_strategy(WaitStrategy::Block);
            if c.role == "threads" {
                // 64 subscribers, each a thread with its own handle.
                let subs: Vec<Subscriber> = (0..64).map(|_| o.open().unwrap()).collect();
                c.signal("joined-threads");
                std::thread::scope(|s| {
                    for (k, mut sub) in subs.into_iter().enumerate() {
                        s.spawn(move || expect_stream(&mut sub, n, &format!("thread {k}")));
                    }
                });
            } else {
                let mut sub = o.open().unwrap();
                c.signal(&format!("joined-{}", c.arg));
                expect_stream(&mut sub, n, &c.role);
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ps-fanout");
    let name = unique_name("ps-fanout");
    let _c = Cleanup::new(&name);
    let mut publisher: Publisher = opts(&name).policy(Policy::Lossless).create().unwrap();
    let mut kids = vec![spawn_child(test, "threads", &name, dir.path(), "")];
    for k in 0..2 {
        kids.push(spawn_child(
            test,
            "single",
            &name,
            dir.path(),
            &k.to_string(),
        ));
    }
    for (flag, kid) in ["joined-threads", "joined-0", "joined-1"]
        .iter()
        .zip(kids.iter_mut())
    {
        assert!(
            common::wait_for_flag_or_exit(dir.path(), flag, kid),
            "{flag}"
        );
    }
    assert_eq!(publisher.subscriber_count(), 66);
    let mut buf = Vec::new();
    for seq in 0..n {
        make_message(seq, 200, &mut buf);
        publisher.publish(&buf).unwrap();
    }
    for k in &mut kids {
        k.wait_ok();
    }
    let stats = publisher.stats();
    assert_eq!(stats.published, n);
    assert!(stats.subscribers.is_empty(), "every subscriber left");
    drop(publisher);
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    assert_clean(&[&name], &pids);
}

#[test]
fn pubsub_killed_subscriber_unblocks_a_waiting_lossless_publisher() {
    let test = "pubsub_killed_subscriber_unblocks_a_waiting_lossless_publisher";
    if let Some(child) = common::child() {
        child.run(|c| {
            let _sub = Subscriber::open(&c.name).unwrap();
            c.signal("joined");
            loop {
                // Never reads: a full ring blocks the publisher on us.
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ps-kill-sub");
    let name = unique_name("ps-kill-sub");
    let _c = Cleanup::new(&name);
    let mut publisher: Publisher = opts(&name).capacity(8).create().unwrap();
    // A live subscriber in this process keeps up throughout.
    let mut live = Subscriber::open(&name).unwrap();
    let mut stall = spawn_child(test, "stall", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "joined",
        &mut stall
    ));
    let mut buf = Vec::new();
    for seq in 0..8 {
        make_message(seq, 200, &mut buf);
        publisher.try_publish(&buf).unwrap();
        assert_eq!(check_message(&live.try_recv().unwrap()), seq);
    }
    // The ring is full for the stalled subscriber only.
    make_message(8, 200, &mut buf);
    assert_eq!(
        publisher.try_publish(&buf),
        Err(TrySendError::Full(&buf[..]))
    );
    assert_eq!(
        publisher.publish_timeout(&buf, Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout(&buf[..]))
    );
    // Block in `publish` (no timeout), and kill the stalled subscriber meanwhile.
    let msg = buf.clone();
    let blocked = std::thread::spawn(move || {
        // The error borrows `msg`: hand back its text.
        let r = publisher.publish(&msg).map_err(|e| format!("{e:?}: {e}"));
        (publisher, r)
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !blocked.is_finished(),
        "publish should wait for the subscriber"
    );
    stall.kill();
    let (mut publisher, r) = blocked.join().unwrap();
    assert_eq!(r, Ok(()));
    assert_eq!(publisher.subscriber_count(), 1);
    // The live subscriber lost nothing; the stream goes on.
    assert_eq!(check_message(&live.recv().unwrap()), 8);
    for seq in 9..100 {
        make_message(seq, 200, &mut buf);
        publisher.publish(&buf).unwrap();
        assert_eq!(check_message(&live.recv().unwrap()), seq);
    }
    drop((publisher, live));
    assert_clean(&[&name], &[stall.id()]);
}

#[test]
fn pubsub_overwrite_ring_tells_a_stalled_subscriber_what_it_missed() {
    let test = "pubsub_overwrite_ring_tells_a_stalled_subscriber_what_it_missed";
    let n: u64 = 1000;
    if let Some(child) = common::child() {
        child.run(|c| {
            let mut sub = Subscriber::open(&c.name).unwrap();
            assert_eq!(sub.policy(), Policy::OverwriteOldest);
            c.signal("joined");
            c.wait_for("published");
            assert_eq!(sub.behind(), n);
            assert_eq!(sub.try_recv(), Err(TryRecvError::Lagged(n - 16)));
            let mut buf = Vec::new();
            for want in n - 16..n {
                sub.try_recv_into(&mut buf).unwrap();
                assert_eq!(check_message(&buf), want);
            }
            assert_eq!(sub.try_recv(), Err(TryRecvError::Empty));
            assert_eq!(sub.stats().subscribers[0].missed, n - 16);
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ps-overwrite");
    let name = unique_name("ps-overwrite");
    let _c = Cleanup::new(&name);
    let mut publisher: Publisher = opts(&name)
        .capacity(16)
        .policy(Policy::OverwriteOldest)
        .create()
        .unwrap();
    let mut kid = spawn_child(test, "stalled", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "joined",
        &mut kid
    ));
    let mut buf = Vec::new();
    for seq in 0..n {
        make_message(seq, 200, &mut buf);
        // Never waits, whatever the subscriber does.
        publisher.try_publish(&buf).unwrap();
    }
    assert_eq!(publisher.stats().depth(), 16);
    common::signal(dir.path(), "published");
    kid.wait_ok();
    drop(publisher);
    assert_clean(&[&name], &[kid.id()]);
}

#[test]
fn pubsub_killed_publisher_is_reported_and_can_be_replaced() {
    let test = "pubsub_killed_publisher_is_reported_and_can_be_replaced";
    if let Some(child) = common::child() {
        child.run(|c| {
            let mut publisher: Publisher = opts(&c.name).create().unwrap();
            c.signal("created");
            c.wait_for("subscribed");
            let mut buf = Vec::new();
            for seq in 0..10 {
                make_message(seq, 200, &mut buf);
                publisher.publish(&buf).unwrap();
            }
            c.signal("published");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ps-kill-pub");
    let name = unique_name("ps-kill-pub");
    let _c = Cleanup::new(&name);
    let mut kid = spawn_child(test, "publisher", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "created",
        &mut kid
    ));
    let mut sub = Subscriber::open(&name).unwrap();
    // A second publisher is refused while the first lives.
    assert!(Publisher::open(&name).is_err());
    common::signal(dir.path(), "subscribed");
    expect_stream(&mut sub, 10, "subscriber");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "published",
        &mut kid
    ));
    assert!(sub.publisher_alive());
    kid.kill();
    // Blocking receive returns: nothing left, nobody to send it.
    assert_eq!(sub.recv(), Err(RecvError::Disconnected));
    // A new publisher takes over and continues the stream.
    let mut publisher = Publisher::open(&name).unwrap();
    assert_eq!(publisher.published(), 10);
    let mut buf = Vec::new();
    for seq in 10..20 {
        make_message(seq, 200, &mut buf);
        publisher.publish(&buf).unwrap();
        assert_eq!(check_message(&sub.recv().unwrap()), seq);
    }
    drop(publisher);
    assert_eq!(sub.recv(), Err(RecvError::Disconnected));
    drop(sub);
    assert_clean(&[&name], &[kid.id()]);
}

/// The blackboard's test value: consistent only when written whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Reading {
    a: u64,
    b: u64,
    c: u64,
}

const K: u64 = 0x0123_4567_89ab_cdef;

impl Reading {
    fn new(a: u64) -> Reading {
        Reading {
            a,
            b: a.wrapping_mul(2),
            c: a ^ K,
        }
    }

    fn is_consistent(&self) -> bool {
        *self == Reading::new(self.a)
    }
}

#[test]
fn blackboard_readers_in_other_processes_never_see_torn_values() {
    let test = "blackboard_readers_in_other_processes_never_see_torn_values";
    let n: u64 = 100_000;
    if let Some(child) = common::child() {
        child.run(|c| {
            let r = BlackboardReader::<Reading>::open(&c.name).unwrap();
            c.signal(&format!("ready-{}", c.arg));
            let (mut last, mut reads, mut contended) = (0u64, 0u64, 0u64);
            while last < n {
                // Alternate plain reads and waits for a newer version.
                let got = if reads % 2 == 0 {
                    r.read_with_version().map_err(RecvError::Fault)
                } else {
                    r.read_newer(last)
                };
                match got {
                    Ok((v, version)) => {
                        assert!(version >= last, "version went back: {version} < {last}");
                        if version == 0 {
                            assert_eq!(v, Reading::zeroed(), "version 0 is the zeroes");
                            continue;
                        }
                        assert!(v.is_consistent(), "torn value {v:?}");
                        assert_eq!(v.a, version, "value and version disagree");
                        last = version;
                        reads += 1;
                    }
                    Err(RecvError::Fault(Fault::Contended)) => contended += 1,
                    Err(e) => panic!("read: {e}"),
                }
            }
            eprintln!("reader {}: {reads} reads, {contended} contended", c.arg);
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("bb-torn");
    let name = unique_name("bb-torn");
    let _c = Cleanup::new(&name);
    let mut w = BlackboardWriter::<Reading>::create(&name).unwrap();
    let mut kids: Vec<_> = (0..2)
        .map(|k| spawn_child(test, "reader", &name, dir.path(), &k.to_string()))
        .collect();
    for (k, kid) in kids.iter_mut().enumerate() {
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("ready-{k}"),
            kid
        ));
    }
    for a in 1..=n {
        w.write(&Reading::new(a));
    }
    assert_eq!(w.version(), n);
    for k in &mut kids {
        k.wait_ok();
    }
    drop(w);
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    assert_clean(&[&name], &pids);
}

#[test]
fn blackboard_writer_killed_mid_run_leaves_readers_working() {
    let test = "blackboard_writer_killed_mid_run_leaves_readers_working";
    if let Some(child) = common::child() {
        child.run(|c| {
            let mut w = BlackboardWriter::<Reading>::create(&c.name).unwrap();
            let mut a = 0u64;
            loop {
                a += 1;
                w.write(&Reading::new(a));
                if a == 1000 {
                    c.signal("writing");
                }
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("bb-kill");
    let name = unique_name("bb-kill");
    let _c = Cleanup::new(&name);
    let mut kid = spawn_child(test, "writer", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "writing",
        &mut kid
    ));
    let r = BlackboardReader::<Reading>::options(&name)
        .wait_strategy(WaitStrategy::Block)
        .open()
        .unwrap();
    assert!(r.writer_alive());
    kid.kill(); // at an arbitrary point, possibly mid-write
    assert!(!r.writer_alive());
    // Reads still return the last complete value, again and again.
    let (v, version) = r.read_with_version().unwrap();
    assert!(v.is_consistent(), "torn value {v:?}");
    assert!(version >= 1000);
    assert_eq!(r.read_with_version().unwrap(), (v, version));
    // Waiting for a newer value returns instead of hanging.
    assert_eq!(r.read_newer(version), Err(RecvError::Disconnected));
    assert_eq!(
        r.read_newer_timeout(version, Duration::from_secs(10)),
        Err(RecvTimeoutError::Disconnected)
    );
    assert_eq!(r.try_read_newer(version), Err(TryRecvError::Disconnected));
    // A new writer takes over; versions continue.
    let mut w = BlackboardWriter::<Reading>::open(&name).unwrap();
    assert_eq!(w.version(), version);
    w.write(&Reading::new(7));
    assert_eq!(
        r.read_newer(version).unwrap(),
        (Reading::new(7), version + 1)
    );
    // Another type is refused.
    assert!(BlackboardReader::<u64>::open(&name).is_err());
    assert!(BlackboardWriter::<Reading>::options(&name).open().is_err());
    drop((w, r));
    assert_clean(&[&name], &[kid.id()]);
}
