//! `fork()` without `exec` (issue 7): a handle inherited by the child is
//! refused there (it is the parent's attachment), dropping it in the child
//! releases nothing of the parent's, and a child that keeps inherited
//! handles does not keep its parent's registry locks alive.
//!
//! The forks happen in role processes (single test thread), never in the
//! test harness itself.

// Unix by nature: Windows has no `fork()` (its backend records nothing
// to guard, and every process attaches anew).
#![cfg(unix)]
// Reason: `fork`, `waitpid`, `kill` and `_exit` are the subject under test.
#![allow(unsafe_code)]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{assert_clean, spawn_child, unique_name, watchdog, Cleanup, TempDir};
use mapshare::{channel_stats, Location, LockError, Mutex, Receiver, Sender, TryLockError};

const TEST: &str = "fork";

/// `fork()`, returning the child's pid in the parent and 0 in the child.
fn fork() -> libc::pid_t {
    // SAFETY: the role processes that call this run one thread (the test,
    // `--test-threads=1`); the child calls only what the tests below need
    // and leaves by `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    pid
}

/// Leaves the child at once, without running the parent's atexit work.
fn exit_child(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Waits for our child `pid`; its exit status.
fn wait_exit(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "child did not exit: {status:#x}");
    libc::WEXITSTATUS(status)
}

fn child_roles() {
    if let Some(child) = common::child() {
        child.run(|c| match c.role.as_str() {
            // Holds a channel's receiver and a sender, with one message
            // queued, and a mutex's lock; forks; the child tries to use the
            // receiver and then drops everything; the parent checks that
            // nothing of its own was used up or released.
            "refuse" => {
                let lock_name = format!("{}-lock", c.name);
                let mut rx = Receiver::create(&c.name).unwrap();
                let mut tx = Sender::open(&c.name).unwrap();
                tx.send(b"queued").unwrap();
                let m = Mutex::create(&lock_name).unwrap();
                let held = m.lock().unwrap();
                let pid = fork();
                if pid == 0 {
                    let refused = catch_unwind(AssertUnwindSafe(|| rx.try_recv())).is_err();
                    let refused_send =
                        catch_unwind(AssertUnwindSafe(|| tx.try_send(b"child"))).is_err();
                    let refused_lock = catch_unwind(AssertUnwindSafe(|| {
                        let _ = m.try_lock();
                    }))
                    .is_err();
                    drop(held);
                    drop((rx, tx, m));
                    exit_child(if refused && refused_send && refused_lock {
                        0
                    } else {
                        1
                    });
                }
                assert_eq!(wait_exit(pid), 0, "the child's calls were not refused");
                // Our receiver role, our lane and our lock are still ours.
                let stats = channel_stats(&Location::shm(&c.name).unwrap()).unwrap();
                assert!(stats.receiver_alive, "the child released our receiver role");
                assert!(stats.lanes[0].sender_alive, "the child released our lane");
                let other = Mutex::open(&lock_name).unwrap();
                assert!(
                    matches!(other.try_lock(), Err(TryLockError::WouldBlock)),
                    "the child unlocked our mutex"
                );
                drop(other);
                assert_eq!(rx.try_recv().unwrap(), b"queued");
                tx.send(b"after").unwrap();
                assert_eq!(rx.try_recv().unwrap(), b"after");
                drop(held);
                drop((rx, tx, m));
                c.signal("checked");
            }
            // Takes the mutex, forks a child that keeps every inherited
            // handle and sleeps until killed, says where the child is, then
            // waits to be killed itself.
            "holder" => {
                let m = Mutex::open(&c.name).unwrap();
                let held = m.lock().unwrap();
                let pid = fork();
                if pid == 0 {
                    loop {
                        // SAFETY: `pause` has no preconditions.
                        unsafe { libc::pause() };
                    }
                }
                common::write_atomic(&c.dir, "grandchild", pid.to_string().as_bytes());
                c.signal("locked");
                c.wait_for("go");
                drop(held);
            }
            other => panic!("unknown role {other}"),
        });
    }
}

#[test]
fn a_handle_inherited_through_fork_is_refused_and_releases_nothing() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("fork-refuse");
    let mut clean = Cleanup::new(&name);
    clean.add(&format!("{name}-lock"));
    let dir = TempDir::new("fork-refuse");
    let mut child = spawn_child(
        "a_handle_inherited_through_fork_is_refused_and_releases_nothing",
        "refuse",
        &name,
        dir.path(),
        "",
    );
    child.wait_ok();
    assert!(dir.join("checked").exists());
    assert_clean(&[&name, &format!("{name}-lock")], &[child.id()]);
}

#[test]
fn a_forked_child_keeping_handles_does_not_keep_its_dead_parent_alive() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("fork-live");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("fork-live");
    let m = Mutex::create(&name).unwrap();
    let mut child = spawn_child(
        "a_forked_child_keeping_handles_does_not_keep_its_dead_parent_alive",
        "holder",
        &name,
        dir.path(),
        "",
    );
    common::wait_for_flag(dir.path(), "locked");
    let grandchild: libc::pid_t = std::fs::read_to_string(dir.join("grandchild"))
        .unwrap()
        .parse()
        .unwrap();
    let pid = child.id();
    child.kill();
    // The grandchild still runs with the holder's handles. Had it kept the
    // holder's open file description, the holder's registry slot would stay
    // locked and this would wait for as long as the grandchild lives.
    let recovered = match m.lock() {
        Err(LockError::OwnerDied(g)) => {
            drop(g);
            Ok(())
        }
        other => Err(format!("{other:?}")),
    };
    // SAFETY: a plain signal to a process we started (through the holder).
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    recovered.expect("expected OwnerDied");
    drop(m);
    assert_clean(&[&name], &[pid, grandchild as u32]);
}
