//! Zero-copy publish/subscribe, loans and late joiners between real
//! processes (issue 12): subscribers that read every message in place while
//! the publisher laps a small ring, a subscriber killed while it holds a
//! sample (its hold is released; until then the publisher never rewrites
//! the held slot), `history(N)` joiners in other processes, loans on both
//! policies, and overwrite-oldest samples as validated copies.

mod common;

use std::time::Duration;

use common::{
    assert_clean, check_message, make_message, spawn_child, unique_name, Cleanup, TempDir,
};
use mapshare::options::{HasCapacity, HasMaxMessage};
use mapshare::{
    Options, Policy, Publisher, RecvError, SendTimeoutError, Subscriber, TryRecvError,
    TrySendError, WaitStrategy,
};

fn opts<K: HasCapacity + HasMaxMessage>(name: &str, capacity: usize) -> Options<K> {
    Options::new(name).capacity(capacity).max_message(4096)
}

#[test]
fn zero_copy_subscribers_in_other_processes_read_every_message_intact() {
    let test = "zero_copy_subscribers_in_other_processes_read_every_message_intact";
    let n: u64 = 20_000;
    if let Some(child) = common::child() {
        child.run(|c| {
            let mut sub: Subscriber = opts(&c.name, 8)
                .wait_strategy(WaitStrategy::Block)
                .open()
                .unwrap();
            c.signal(&format!("joined-{}", c.arg));
            let mut first = Vec::new();
            let mut again = Vec::new();
            for want in 0..n {
                let sample = sub.recv_ref().unwrap();
                assert!(sample.is_in_place(), "a lossless ring lends in place");
                first.clear();
                sample.for_each_chunk(|c| first.extend_from_slice(c));
                assert_eq!(check_message(&first), want, "{}: out of order", c.arg);
                if want % 256 == 0 {
                    // Hold it while the publisher runs a ring ahead: the
                    // slot must not change under us.
                    std::thread::sleep(Duration::from_millis(2));
                    again.resize(sample.len(), 0);
                    sample.copy_to_slice(&mut again);
                    assert_eq!(again, first, "{}: a held sample changed", c.arg);
                }
            }
            assert_eq!(sub.recv(), Err(RecvError::Disconnected));
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ps-zc");
    let name = unique_name("ps-zc");
    let _c = Cleanup::new(&name);
    // Capacity 8: the publisher laps the ring 2,500 times.
    let mut publisher: Publisher = opts(&name, 8).create().unwrap();
    let mut kids: Vec<_> = (0..2)
        .map(|k| spawn_child(test, "reader", &name, dir.path(), &k.to_string()))
        .collect();
    for (k, kid) in kids.iter_mut().enumerate() {
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("joined-{k}"),
            kid
        ));
    }
    let mut buf = Vec::new();
    for seq in 0..n {
        make_message(seq, 3000, &mut buf);
        if seq % 2 == 0 {
            publisher.publish(&buf).unwrap();
        } else {
            // Every other one written in place through a loan.
            let mut loan = publisher.loan().unwrap();
            assert!(loan.write_at(0, &buf));
            loan.commit(buf.len());
        }
    }
    drop(publisher);
    for k in &mut kids {
        k.wait_ok();
    }
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    assert_clean(&[&name], &pids);
}

#[test]
fn subscriber_killed_while_holding_a_sample_releases_the_publisher() {
    let test = "subscriber_killed_while_holding_a_sample_releases_the_publisher";
    if let Some(child) = common::child() {
        child.run(|c| {
            let mut sub: Subscriber = Subscriber::open(&c.name).unwrap();
            c.signal("joined");
            let sample = sub.recv_ref().unwrap();
            let held = sample.to_vec();
            assert_eq!(check_message(&held), 0);
            c.signal("holding");
            // The parent fills the ring behind us, then asks us to look.
            c.wait_for("filled");
            let now = sample.to_vec();
            c.signal(if now == held { "intact" } else { "changed" });
            loop {
                std::thread::sleep(Duration::from_secs(1)); // holds until killed
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ps-zc-kill");
    let name = unique_name("ps-zc-kill");
    let _c = Cleanup::new(&name);
    let mut publisher: Publisher = opts(&name, 8).create().unwrap();
    // A subscriber here that keeps up throughout, zero-copy too.
    let mut live = Subscriber::open(&name).unwrap();
    let mut holder = spawn_child(test, "holder", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "joined",
        &mut holder
    ));
    let mut buf = Vec::new();
    make_message(0, 3000, &mut buf);
    publisher.publish(&buf).unwrap();
    assert_eq!(check_message(&live.recv_ref().unwrap().to_vec()), 0);
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "holding",
        &mut holder
    ));
    // The holder keeps position 0: 7 more fit, the 8th would rewrite it.
    for seq in 1..8 {
        make_message(seq, 3000, &mut buf);
        publisher.try_publish(&buf).unwrap();
        assert_eq!(check_message(&live.recv_ref().unwrap().to_vec()), seq);
    }
    make_message(8, 3000, &mut buf);
    assert_eq!(
        publisher.try_publish(&buf),
        Err(TrySendError::Full(&buf[..]))
    );
    assert!(matches!(
        publisher.loan_timeout(Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout(()))
    ));
    common::signal(dir.path(), "filled");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "intact",
        &mut holder
    ));
    // Block in `publish`, and kill the holder meanwhile.
    let msg = buf.clone();
    let blocked = std::thread::spawn(move || {
        let r = publisher.publish(&msg).map_err(|e| format!("{e:?}: {e}"));
        (publisher, r)
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(!blocked.is_finished(), "publish should wait for the holder");
    holder.kill();
    let (mut publisher, r) = blocked.join().unwrap();
    assert_eq!(r, Ok(()));
    assert_eq!(publisher.subscriber_count(), 1);
    assert_eq!(check_message(&live.recv_ref().unwrap().to_vec()), 8);
    for seq in 9..200 {
        make_message(seq, 3000, &mut buf);
        publisher.publish(&buf).unwrap();
        assert_eq!(check_message(&live.recv_ref().unwrap().to_vec()), seq);
    }
    drop((publisher, live));
    assert_clean(&[&name], &[holder.id()]);
}

#[test]
fn history_gives_a_late_joiner_in_another_process_the_last_messages() {
    let test = "history_gives_a_late_joiner_in_another_process_the_last_messages";
    if let Some(child) = common::child() {
        child.run(|c| {
            let (history, first): (usize, u64) = match c.role.as_str() {
                "ten" => (10, 90),
                _ => (1000, 100 - 63), // clamped to capacity - 1
            };
            let mut sub: Subscriber = Options::new(&c.name).history(history).open().unwrap();
            c.signal(&format!("joined-{}", c.role));
            for want in first..150 {
                let got = if want % 2 == 0 {
                    sub.recv().unwrap()
                } else {
                    sub.recv_ref().unwrap().to_vec()
                };
                assert_eq!(check_message(&got), want, "{}", c.role);
            }
            assert_eq!(sub.recv(), Err(RecvError::Disconnected));
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ps-history");
    let name = unique_name("ps-history");
    let _c = Cleanup::new(&name);
    for policy in [Policy::Lossless, Policy::OverwriteOldest] {
        let mut publisher: Publisher = opts(&name, 64).policy(policy).create().unwrap();
        let mut buf = Vec::new();
        for seq in 0..100 {
            make_message(seq, 500, &mut buf);
            publisher.publish(&buf).unwrap();
        }
        // Nobody subscribed: a plain joiner gets nothing of that.
        let mut plain = Subscriber::open(&name).unwrap();
        assert_eq!(plain.try_recv(), Err(TryRecvError::Empty));
        drop(plain);
        let mut kids = Vec::new();
        for role in ["ten", "all"] {
            let mut kid = spawn_child(test, role, &name, dir.path(), "");
            assert!(common::wait_for_flag_or_exit(
                dir.path(),
                &format!("joined-{role}"),
                &mut kid
            ));
            std::fs::remove_file(dir.join(&format!("joined-{role}"))).unwrap();
            kids.push(kid);
        }
        // An overwrite-oldest publisher never waits: let the joiners read
        // their history first, or the 50 below would lap the one 63 back.
        while publisher.stats().subscribers.iter().any(|s| s.behind > 0) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        for seq in 100..150 {
            make_message(seq, 500, &mut buf);
            publisher.publish(&buf).unwrap();
        }
        drop(publisher);
        for k in &mut kids {
            k.wait_ok();
        }
        let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
        assert_clean(&[&name], &pids);
    }
}

#[test]
fn overwrite_samples_are_validated_copies_and_lags_are_reported() {
    let name = unique_name("ps-zc-overwrite");
    let _c = Cleanup::new(&name);
    let mut publisher: Publisher = opts(&name, 4)
        .policy(Policy::OverwriteOldest)
        .create()
        .unwrap();
    let mut sub = Subscriber::open(&name).unwrap();
    let mut buf = Vec::new();
    for seq in 0..3 {
        make_message(seq, 500, &mut buf);
        // Loans on an overwrite ring are staged and copied on commit.
        let mut loan = publisher.try_loan().unwrap();
        assert_eq!(loan.len(), 4096);
        assert!(loan.write_at(0, &buf));
        loan.commit(buf.len());
    }
    {
        let s = sub.try_recv_ref().unwrap();
        assert!(!s.is_in_place(), "a seqlock cannot lend");
        assert_eq!(check_message(&s.to_vec()), 0);
    }
    // Lap the subscriber: it is told how much it missed, then reads on.
    for seq in 3..12 {
        make_message(seq, 500, &mut buf);
        publisher.publish(&buf).unwrap();
    }
    assert_eq!(sub.try_recv_ref().err(), Some(TryRecvError::Lagged(7)));
    for want in 8..12 {
        assert_eq!(check_message(&sub.try_recv_ref().unwrap().to_vec()), want);
    }
    assert_eq!(sub.try_recv_ref().err(), Some(TryRecvError::Empty));
    // A loan dropped uncommitted publishes nothing.
    drop(publisher.try_loan().unwrap());
    assert_eq!(sub.try_recv().err(), Some(TryRecvError::Empty));
    assert_eq!(publisher.published(), 12);
}

#[test]
fn lossless_loans_commit_in_place_and_an_uncommitted_loan_sends_nothing() {
    let name = unique_name("ps-zc-loan");
    let _c = Cleanup::new(&name);
    let mut publisher: Publisher = opts(&name, 2).create().unwrap();
    let mut sub = Subscriber::open(&name).unwrap();
    drop(publisher.try_loan().unwrap());
    assert_eq!(sub.try_recv().err(), Some(TryRecvError::Empty));
    let mut loan = publisher.try_loan().unwrap();
    assert!(loan.write_at(0, b"in place"));
    loan.commit(8);
    // A commit longer than the slot is clamped to it.
    let mut loan = publisher.try_loan().unwrap();
    assert!(loan.write_at(4090, b"tail!!"));
    loan.commit(usize::MAX);
    assert!(matches!(publisher.try_loan(), Err(TrySendError::Full(()))));
    assert_eq!(sub.try_recv().unwrap(), b"in place");
    let last = sub.try_recv_ref().unwrap();
    assert_eq!(last.len(), 4096);
    assert_eq!(last.read_pod::<[u8; 6]>(4090), Some(*b"tail!!"));
    drop(last);
    assert_eq!(publisher.published(), 2);
}
