//! Channels between real processes: order, integrity, several senders,
//! senders and receivers killed with SIGKILL, disconnection, typed layout
//! checks, positions running around a small ring.

mod common;

use std::time::Duration;

use common::{assert_clean, spawn_child, unique_name, Cleanup, TempDir};
use mapshare::options::{HasCapacity, HasMaxMessage};
use mapshare::{
    Options, PodReceiver, PodSender, Receiver, RecvTimeoutError, SegmentError, Sender,
    TryRecvError, TrySendError, WaitStrategy,
};

/// A test message: `[sender u32][seq u64][len-dependent filler][checksum u64]`.
fn make_message(sender: u32, seq: u64, buf: &mut Vec<u8>) {
    let len = 20 + (seq.wrapping_mul(2654435761) % 200) as usize;
    buf.clear();
    buf.extend_from_slice(&sender.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    for i in 0..len - 20 {
        buf.push((seq as u8).wrapping_add(i as u8));
    }
    let sum = checksum(buf);
    buf.extend_from_slice(&sum.to_le_bytes()[..8]);
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Checks a message; returns (sender, seq).
fn check_message(m: &[u8]) -> (u32, u64) {
    assert!(m.len() >= 20, "short message: {} bytes", m.len());
    let (body, sum) = m.split_at(m.len() - 8);
    assert_eq!(
        checksum(body),
        u64::from_le_bytes(sum.try_into().unwrap()),
        "corrupt message"
    );
    let sender = u32::from_le_bytes(m[0..4].try_into().unwrap());
    let seq = u64::from_le_bytes(m[4..12].try_into().unwrap());
    (sender, seq)
}

/// The test channel's options, for either end (`opts::<Receiver>`,
/// `opts::<Sender>`): both describe the same channel.
fn opts<K: HasCapacity + HasMaxMessage>(name: &str) -> Options<K> {
    Options::new(name).capacity(64).max_message(512)
}

/// Sender role: `arg` = "<id>:<count>" (count 0 = for ever). Signals "sending".
fn sender_role(c: &common::ChildCtx, lanes: usize) {
    let (id, count) = c.arg.split_once(':').unwrap();
    let (id, count): (u32, u64) = (id.parse().unwrap(), count.parse().unwrap());
    let mut tx: Sender = opts(&c.name).senders(lanes).open().unwrap();
    c.signal(&format!("sending-{id}"));
    let mut buf = Vec::new();
    let mut seq = 0;
    while count == 0 || seq < count {
        make_message(id, seq, &mut buf);
        if seq % 2 == 0 {
            tx.send(&buf).unwrap();
        } else {
            // Every other message goes through a zero-copy loan.
            let mut slot = tx.loan().unwrap();
            assert!(slot.write_at(0, &buf));
            slot.commit(buf.len());
        }
        seq += 1;
    }
}

#[test]
fn channel_keeps_order_and_integrity_across_processes() {
    let test = "channel_keeps_order_and_integrity_across_processes";
    if let Some(child) = common::child() {
        child.run(|c| sender_role(c, 1));
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("chan-order");
    let name = unique_name("chan-order");
    let _c = Cleanup::new(&name);
    let mut rx: Receiver = opts(&name)
        .wait_strategy(WaitStrategy::Block)
        .create()
        .unwrap();
    let n = 50_000;
    let mut tx = spawn_child(test, "sender", &name, dir.path(), &format!("7:{n}"));
    for want in 0..n {
        let m = rx.recv_timeout(Duration::from_secs(30)).expect("message");
        assert_eq!(check_message(&m), (7, want));
    }
    tx.wait_ok();
    // Nothing more, and the only sender has gone: disconnected, not empty.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    drop(rx);
    assert_clean(&[&name], &[tx.id()]);
}

#[test]
fn several_senders_keep_per_sender_order() {
    let test = "several_senders_keep_per_sender_order";
    if let Some(child) = common::child() {
        child.run(|c| sender_role(c, 3));
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("chan-multi");
    let name = unique_name("chan-multi");
    let _c = Cleanup::new(&name);
    let mut rx: Receiver = opts(&name).senders(3).create().unwrap();
    let n = 10_000u64;
    let mut kids: Vec<_> = (0..3)
        .map(|i| spawn_child(test, "sender", &name, dir.path(), &format!("{i}:{n}")))
        .collect();
    // All three attach before we read: a sender that finished and left
    // before the others came would leave the receiver disconnected.
    for (i, k) in kids.iter_mut().enumerate() {
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("sending-{i}"),
            k
        ));
    }
    let mut next = [0u64; 3];
    for _ in 0..3 * n {
        let m = rx.recv_timeout(Duration::from_secs(30)).expect("message");
        let (s, seq) = check_message(&m);
        assert_eq!(seq, next[s as usize], "sender {s} out of order");
        next[s as usize] += 1;
    }
    assert_eq!(next, [n; 3]);
    for k in &mut kids {
        k.wait_ok();
    }
    // Every lane is free again: a fourth sender can attach.
    drop(opts::<Sender>(&name).open().unwrap());
    drop(rx);
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    assert_clean(&[&name], &pids);
}

#[test]
fn sender_killed_mid_stream_leaves_no_partial_message() {
    let test = "sender_killed_mid_stream_leaves_no_partial_message";
    if let Some(child) = common::child() {
        child.run(|c| sender_role(c, 1));
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("chan-kill-tx");
    let name = unique_name("chan-kill-tx");
    let _c = Cleanup::new(&name);
    let mut rx: Receiver = opts(&name).create().unwrap();
    let mut pids = Vec::new();
    for round in 0..5u32 {
        let mut tx = spawn_child(test, "sender", &name, dir.path(), &format!("{round}:0"));
        pids.push(tx.id());
        common::wait_for_flag_or_exit(dir.path(), &format!("sending-{round}"), &mut tx);
        // Receive a while, then kill the sender at an arbitrary moment.
        let mut want = 0;
        for _ in 0..(1000 + 700 * round) {
            let m = rx.recv_timeout(Duration::from_secs(30)).expect("message");
            assert_eq!(check_message(&m), (round, want));
            want += 1;
        }
        tx.kill();
        // Whatever it committed before dying is whole and in order; nothing
        // else: once that is drained, the receiver learns that its only
        // sender has gone (the registry says so within 50 ms).
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(m) => {
                    assert_eq!(check_message(&m), (round, want));
                    want += 1;
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("round {round}: after the kill: {e:?}"),
            }
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
    drop(rx);
    assert_clean(&[&name], &pids);
}

#[test]
fn receiver_killed_holding_a_message_gives_it_back() {
    let test = "receiver_killed_holding_a_message_gives_it_back";
    if let Some(child) = common::child() {
        child.run(|c| {
            let mut rx: Receiver = opts(&c.name).open().unwrap();
            // Zero-copy: the sample holds slot 0 in place until dropped.
            let m = rx.recv_ref().unwrap();
            assert_eq!(check_message(&m.to_vec()), (1, 0));
            c.signal("holding");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("chan-kill-rx");
    let name = unique_name("chan-kill-rx");
    let _c = Cleanup::new(&name);
    let mut tx: Sender = opts(&name).capacity(4).create().unwrap();
    let mut buf = Vec::new();
    for seq in 0..4 {
        make_message(1, seq, &mut buf);
        tx.try_send(&buf).unwrap();
    }
    let mut rx1 = spawn_child(test, "receiver", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "holding",
        &mut rx1
    ));
    // The lane is full and the receiver holds slot 0 in place.
    make_message(1, 4, &mut buf);
    assert!(matches!(tx.try_send(&buf), Err(TrySendError::Full(_))));
    rx1.kill();
    // A new receiver takes over and gets the held message again, then the rest.
    let mut rx: Receiver = opts(&name)
        .capacity(4)
        .open()
        .expect("dead receiver's role is taken over");
    for want in 0..4 {
        assert_eq!(check_message(&rx.try_recv().unwrap()), (1, want));
    }
    // And the sender is not blocked: the slots came back.
    tx.send_timeout(&buf, Duration::from_secs(10)).unwrap();
    assert_eq!(check_message(&rx.try_recv().unwrap()), (1, 4));
    drop((tx, rx));
    assert_clean(&[&name], &[rx1.id()]);
}

#[test]
fn second_live_receiver_is_refused() {
    let name = unique_name("chan-rx2");
    let _c = Cleanup::new(&name);
    let _rx: Receiver = opts(&name).create().unwrap();
    assert!(matches!(
        opts::<Receiver>(&name).open(),
        Err(SegmentError::TooManyAttached(_))
    ));
    let _tx: Sender = opts(&name).open().unwrap();
    assert!(
        matches!(
            opts::<Sender>(&name).open(),
            Err(SegmentError::TooManyAttached(_))
        ),
        "one lane only"
    );
}

#[test]
fn oversized_message_is_refused_and_handed_back() {
    let name = unique_name("chan-big");
    let _c = Cleanup::new(&name);
    let mut rx: Receiver = opts(&name).create().unwrap();
    let mut tx: Sender = opts(&name).open().unwrap();
    let big = vec![1u8; 513];
    assert_eq!(tx.try_send(&big), Err(TrySendError::TooLarge(&big[..])));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[derive(Clone, Copy, Debug, PartialEq, mapshare::Pod, mapshare::Zeroable)]
#[repr(C)]
struct Sample {
    seq: u64,
    value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, mapshare::Pod, mapshare::Zeroable)]
#[repr(C)]
struct Other {
    a: u64,
    b: u64,
}

#[test]
fn typed_channel_round_trips_and_checks_layout() {
    let name = unique_name("chan-typed");
    let _c = Cleanup::new(&name);
    let mut rx = PodReceiver::<Sample>::options(&name)
        .capacity(8)
        .create()
        .unwrap();
    let mut tx = PodSender::<Sample>::options(&name)
        .capacity(8)
        .open()
        .unwrap();
    for i in 0..8 {
        tx.try_send(Sample {
            seq: i,
            value: i as f64 / 2.0,
        })
        .unwrap();
    }
    let back = Sample {
        seq: 99,
        value: 0.0,
    };
    assert_eq!(
        tx.try_send(back),
        Err(TrySendError::Full(back)),
        "the value is handed back"
    );
    for i in 0..8 {
        assert_eq!(
            rx.try_recv().unwrap(),
            Sample {
                seq: i,
                value: i as f64 / 2.0
            }
        );
    }
    let err = PodSender::<Other>::options(&name)
        .capacity(8)
        .open()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SegmentError::LayoutMismatch { .. }), "{err}");
    assert!(text.contains("Sample") && text.contains("Other"), "{text}");
}

/// 100 messages through a lane of 4 slots: positions run around the ring
/// 25 times. (Starting them near `u64::MAX` to run across the wrap takes a
/// crate-internal hook: the crate's unit tests do that.)
#[test]
fn positions_run_around_a_small_ring() {
    let name = unique_name("chan-wrap");
    let _c = Cleanup::new(&name);
    let mut rx: Receiver = opts(&name).capacity(4).create().unwrap();
    let mut tx: Sender = opts(&name).capacity(4).open().unwrap();
    let mut buf = Vec::new();
    for seq in 0..100 {
        make_message(3, seq, &mut buf);
        tx.try_send(&buf).unwrap();
        assert_eq!(check_message(&rx.try_recv().unwrap()), (3, seq));
    }
}
