//! Library behaviour behind issue 8 (the CLI's first use), with real
//! processes: subscribers that join before their publisher wait for it and
//! then receive everything it publishes; a mutex (or `Shared`) whose last
//! process died holding the lock is reported to the next opener, persistent
//! or not.

mod common;

use common::{assert_clean, spawn_child, unique_name, watchdog, Cleanup, TempDir};
use mapshare::{LockError, Mutex, Publisher, RecvError, Shared, Subscriber, TryRecvError};

const TEST: &str = "issue_8";

fn child_roles() {
    if let Some(child) = common::child() {
        child.run(|c| match c.role.as_str() {
            // Publishes `arg` numbered messages on an existing ring, exits.
            "publisher" => {
                let mut p = Publisher::open(&c.name).unwrap();
                let n: u32 = c.arg.parse().unwrap();
                for i in 0..n {
                    p.publish(&i.to_le_bytes()).unwrap();
                }
            }
            // Creates (non-persistent) and locks a mutex or a Shared, then
            // waits to be killed.
            "mutex-holder" => {
                let m = Mutex::create(&c.name).unwrap();
                let _held = m.lock().unwrap();
                c.signal("locked");
                c.wait_for("never");
            }
            "shared-holder" => {
                let s = Shared::<u64>::create(&c.name).unwrap();
                let mut held = s.lock().unwrap();
                held.set(&7);
                c.signal("locked");
                c.wait_for("never");
            }
            other => panic!("unknown role {other}"),
        });
    }
}

fn subscribers_first(test: &str, n: u32, capacity: usize) {
    let name = unique_name("sub-first");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("sub-first");
    let mut subs: Vec<Subscriber> = (0..2)
        .map(|_| {
            Subscriber::options(&name)
                .capacity(capacity)
                .open_or_create()
                .unwrap()
        })
        .collect();
    // No publisher yet: nothing to read, and not "disconnected".
    for s in &mut subs {
        assert_eq!(s.try_recv(), Err(TryRecvError::Empty));
    }
    let mut child = spawn_child(test, "publisher", &name, dir.path(), &n.to_string());
    // Read both in turn (a lossless ring paces the publisher by the slower).
    let mut got = [Vec::new(), Vec::new()];
    let mut done = [false, false];
    while !done.iter().all(|d| *d) {
        for (i, s) in subs.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            match s.recv_timeout(std::time::Duration::from_millis(10)) {
                Ok(m) => got[i].push(u32::from_le_bytes(m.try_into().unwrap())),
                Err(mapshare::RecvTimeoutError::Timeout) => {}
                Err(mapshare::RecvTimeoutError::Disconnected) => done[i] = true,
                Err(e) => panic!("{e}"),
            }
        }
    }
    child.wait_ok();
    let want: Vec<u32> = (0..n).collect();
    assert_eq!(got[0], want);
    assert_eq!(got[1], want);
    assert_eq!(subs[0].recv(), Err(RecvError::Disconnected));
    drop(subs);
    assert_clean(&[&name], &[child.id()]);
}

#[test]
fn subscribers_joined_before_the_publisher_receive_everything_it_publishes() {
    child_roles();
    let _wd = watchdog(TEST);
    // Paced by us: 2,000 messages through a ring of 64.
    subscribers_first(
        "subscribers_joined_before_the_publisher_receive_everything_it_publishes",
        2000,
        64,
    );
}

#[test]
fn a_publisher_that_came_and_went_between_two_looks_still_counts() {
    child_roles();
    let _wd = watchdog(TEST);
    // The publisher may be gone before we look even once: its messages
    // are there, and then we are disconnected, not left waiting.
    subscribers_first(
        "a_publisher_that_came_and_went_between_two_looks_still_counts",
        3,
        256,
    );
}

#[test]
fn a_mutex_whose_last_process_died_holding_it_is_reported_to_the_next_opener() {
    child_roles();
    let _wd = watchdog(TEST);
    for role in ["mutex-holder", "shared-holder"] {
        let name = unique_name("abandoned");
        let _clean = Cleanup::new(&name);
        let dir = TempDir::new("abandoned");
        let mut child = spawn_child(
            "a_mutex_whose_last_process_died_holding_it_is_reported_to_the_next_opener",
            role,
            &name,
            dir.path(),
            "",
        );
        common::wait_for_flag(dir.path(), "locked");
        child.kill();
        // Non-persistent, and no process left: yet the next opener takes
        // it over instead of replacing it, and is told.
        if role == "mutex-holder" {
            let m = Mutex::open_or_create(&name).unwrap();
            match m.lock() {
                Err(LockError::OwnerDied(g)) => drop(g),
                other => panic!("{role}: expected OwnerDied, got {other:?}"),
            }
            assert!(m.lock().is_ok(), "recovered once, then a plain lock");
        } else {
            let s = Shared::<u64>::open_or_create(&name).unwrap();
            let seen = match s.lock() {
                Err(LockError::OwnerDied(g)) => Ok(g.get()),
                Ok(g) => Err(format!("a plain lock, value {}", g.get())),
                Err(e) => Err(format!("{e}")),
            };
            assert_eq!(seen, Ok(7), "{role}: OwnerDied with the dead owner's data");
        }
        assert_clean(&[&name], &[child.id()]);
    }
}
