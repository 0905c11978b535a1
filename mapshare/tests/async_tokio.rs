//! The async forms (feature `tokio`), with real processes, on every
//! backend (each forced in a child process with `MAPSHARE_ASYNC_BACKEND`):
//! many tasks on a current-thread runtime, each waiting on its own channel,
//! all woken by another process without a thread per task; a sender killed
//! while a task awaits gives `Disconnected`; storms of cancelled waits lose
//! no wake-up and leave nothing registered.
#![cfg(all(feature = "tokio", target_os = "linux"))]

mod common;

use std::time::Duration;

use common::{spawn_child_via, unique_name, watchdog, Cleanup, TempDir};
use mapshare::{
    async_backend, pending_waits, Event, LockError, Mutex, Publisher, Receiver, RecvError,
    SendError, Sender, Subscriber,
};

const TEST: &str = "async_tokio";
const BACKENDS: [&str; 3] = ["io_uring", "futex_waitv", "blocking"];

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn child_roles() {
    if let Some(child) = common::child() {
        child.run(|c| match c.role.as_str() {
            // `arg` channels `name-0..`, a task awaiting each; reports the
            // backend and the threads added while they all wait.
            "receivers" => {
                let n: usize = c.arg.parse().unwrap();
                let rt = current_thread();
                let before = threads();
                let mut rxs: Vec<Receiver> = (0..n)
                    .map(|i| {
                        Receiver::options(&format!("{}-{i}", c.name))
                            .capacity(2)
                            .max_message(8)
                            .create()
                            .unwrap()
                    })
                    .collect();
                rt.block_on(async {
                    let local = tokio::task::LocalSet::new();
                    local
                        .run_until(async {
                            let tasks: Vec<_> = rxs
                                .drain(..)
                                .map(|mut rx| {
                                    tokio::task::spawn_local(async move {
                                        let m = rx.recv_async().await;
                                        (rx, m)
                                    })
                                })
                                .collect();
                            // Let every task reach its wait (the blocking
                            // backend registers nothing: give it a moment).
                            if async_backend() == mapshare::AsyncBackend::Blocking {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            } else {
                                while pending_waits() < n {
                                    tokio::time::sleep(Duration::from_millis(10)).await;
                                }
                            }
                            let added = threads() - before;
                            common::write_atomic(
                                &c.dir,
                                "report",
                                format!("{} {added}", async_backend()).as_bytes(),
                            );
                            c.signal("waiting");
                            for t in tasks {
                                let (rx, m) = t.await.unwrap();
                                assert_eq!(m.unwrap(), b"wake");
                                drop(rx);
                            }
                        })
                        .await;
                });
            }
            // A multi-thread runtime: tasks migrate between workers, each
            // worker polls with a ring of its own.
            "receivers-mt" => {
                let n: usize = c.arg.parse().unwrap();
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                let rxs: Vec<Receiver> = (0..n)
                    .map(|i| Receiver::create(&format!("{}-{i}", c.name)).unwrap())
                    .collect();
                rt.block_on(async {
                    let tasks: Vec<_> = rxs
                        .into_iter()
                        .map(|mut rx| {
                            tokio::spawn(async move {
                                let mut got = Vec::new();
                                while let Ok(m) = rx.recv_async().await {
                                    got.push(m);
                                }
                                got
                            })
                        })
                        .collect();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    c.signal("waiting");
                    for t in tasks {
                        assert_eq!(t.await.unwrap(), vec![b"one".to_vec(), b"two".to_vec()]);
                    }
                });
            }
            // Awaits a message, then awaits again while the parent kills
            // the sender: Disconnected.
            "disconnect" => {
                let rt = current_thread();
                let mut rx = Receiver::open(&c.name).unwrap();
                rt.block_on(async {
                    assert_eq!(rx.recv_async().await.unwrap(), b"first");
                    c.signal("first");
                    assert_eq!(rx.recv_async().await, Err(RecvError::Disconnected));
                });
                c.signal("disconnected");
            }
            // Cancels thousands of pending waits, checking after each batch
            // that a real message still wakes the next wait, and that
            // nothing stays registered.
            "cancel" => {
                let rt = current_thread();
                let name = &c.name;
                let mut rx = Receiver::options(name).capacity(4).create().unwrap();
                let mut tx = Sender::open(name).unwrap();
                rt.block_on(async {
                    for round in 0..20 {
                        for _ in 0..100 {
                            let r =
                                tokio::time::timeout(Duration::from_micros(50), rx.recv_async())
                                    .await;
                            assert!(r.is_err(), "nothing was sent, round {round}");
                        }
                        // A wake-up after the storm is not lost.
                        let waiter = async { rx.recv_async().await.unwrap() };
                        let sender = async {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            tx.send(b"x").unwrap();
                        };
                        let (m, ()) = tokio::join!(waiter, sender);
                        assert_eq!(m, b"x");
                    }
                    // A loan awaited, written in place, committed.
                    let mut loan = tx.loan_async().await.unwrap();
                    assert!(loan.write_at(0, b"lent"));
                    loan.commit(4);
                    assert_eq!(rx.recv_async().await.unwrap(), b"lent");
                    // Cancellations settle: the kernel reports each one.
                    let mut settled = false;
                    for _ in 0..500 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        if pending_waits() == 0 {
                            settled = true;
                            break;
                        }
                    }
                    assert!(settled, "{} waits still registered", pending_waits());
                });
                common::write_atomic(&c.dir, "report", async_backend().to_string().as_bytes());
            }
            // Every other async form, woken by the parent process.
            "forms" => {
                let rt = current_thread();
                let n = &c.name;
                let ev = Event::open(&format!("{n}-ev")).unwrap();
                let mut sub = Subscriber::open(&format!("{n}-ring")).unwrap();
                let mut tx = Sender::open(&format!("{n}-ch")).unwrap();
                let m = Mutex::open(&format!("{n}-mx")).unwrap();
                rt.block_on(async {
                    c.signal("ready");
                    ev.wait_async().await.unwrap();
                    assert_eq!(sub.recv_async().await.unwrap(), b"published");
                    // The parent's receiver reads only after we block on a
                    // full lane (capacity 2).
                    for i in 0u8..5 {
                        tx.send_async(&[i]).await.unwrap();
                    }
                    // The parent holds the lock until it sees us wait.
                    c.signal("locking");
                    let g = m.lock_async().await.unwrap();
                    drop(g);
                    // Then the parent drops its receiver: a send blocked on
                    // the full lane learns it.
                    c.signal("sent");
                    let r = loop {
                        match tx.send_async(b"after").await {
                            Ok(()) => continue,
                            Err(e) => break e,
                        }
                    };
                    assert!(matches!(r, SendError::Disconnected(_)), "{r:?}");
                });
                c.signal("done");
            }
            // Mailbox, blackboard, lossless publish and a receiver stream,
            // each awaited while the parent process does the other side.
            "forms2" => {
                use futures_core::Stream;
                let rt = current_thread();
                let n = &c.name;
                let rx = Receiver::create(&format!("{n}-st")).unwrap();
                let mb = mapshare::Mailbox::open(&format!("{n}-mb")).unwrap();
                let back = mapshare::Mailbox::open(&format!("{n}-back")).unwrap();
                let board = mapshare::BlackboardReader::<u64>::open(&format!("{n}-bb")).unwrap();
                let mut publ = Publisher::open(&format!("{n}-ps")).unwrap();
                let mut zsub = Subscriber::open(&format!("{n}-zc")).unwrap();
                c.signal("ready");
                rt.block_on(async {
                    assert_eq!(mb.recv_async().await.unwrap(), b"to child");
                    back.send_async(b"to parent").await.unwrap();
                    assert_eq!(board.read_newer_async(0).await.unwrap(), (42, 1));
                    for i in 0u8..10 {
                        publ.publish_async(&[i]).await.unwrap(); // paced by the parent
                    }
                    for i in 10u8..20 {
                        let mut loan = publ.loan_async().await.unwrap(); // paced too
                        assert!(loan.write_at(0, &[i]));
                        loan.commit(1);
                    }
                    for i in 0u8..5 {
                        let s = zsub.recv_ref_async().await.unwrap();
                        assert!(s.is_in_place());
                        assert_eq!(s.to_vec(), [i]);
                    }
                    let mut stream = rx.into_stream();
                    let mut got = Vec::new();
                    while let Some(m) =
                        std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx))
                            .await
                    {
                        got.push(m.unwrap());
                    }
                    assert_eq!(got, [b"a", b"b", b"c"]);
                    assert!(stream.into_inner().is_some());
                });
                c.signal("done");
            }
            // An async server on `name-a` answering 50 requests, and an
            // async client of `name-b` with 3 requests in flight at a time,
            // then awaiting a response its (killed) server never sends.
            "service" => {
                let rt = current_thread();
                let n = &c.name;
                let mut server = mapshare::Server::open(&format!("{n}-a")).unwrap();
                let mut client = mapshare::Client::open(&format!("{n}-b")).unwrap();
                c.signal("ready");
                rt.block_on(async {
                    let serve = async {
                        for _ in 0..50 {
                            let r = server.recv_request_async().await.unwrap();
                            let mut back = r.data().to_vec();
                            back.reverse();
                            server.respond(r.reply_to(), &back).unwrap();
                        }
                    };
                    let call = async {
                        let mut want = std::collections::HashMap::new();
                        for i in 0u32..40 {
                            let id = client.request_async(&i.to_le_bytes()).await.unwrap();
                            want.insert(id, i);
                            if client.in_flight() == 3 {
                                let r = client.recv_response_async().await.unwrap();
                                assert_eq!(r.data(), want.remove(&r.id()).unwrap().to_be_bytes());
                            }
                        }
                        while client.in_flight() > 0 {
                            let r = client.recv_response_async().await.unwrap();
                            assert_eq!(r.data(), want.remove(&r.id()).unwrap().to_be_bytes());
                        }
                        c.signal("called");
                        // The parent's server takes this one and is killed.
                        client.request_async(b"last").await.unwrap();
                        assert_eq!(
                            client.recv_response_async().await,
                            Err(mapshare::RecvError::Disconnected)
                        );
                    };
                    tokio::join!(serve, call);
                });
                c.signal("done");
            }
            "server-b" => blocking_server(&c.name, &c.dir),
            // Awaits on a channel that a peer shrinks under it.
            "truncated" => {
                let rt = current_thread();
                let mut rx = Receiver::create(&c.name).unwrap();
                let path = common::shm_path(&c.name);
                let shrink = std::thread::spawn(move || {
                    // Long enough for the wait to be armed even on a loaded
                    // machine: shrinking before that is the documented
                    // fast-path SIGBUS window, not what this tests.
                    std::thread::sleep(Duration::from_millis(1500));
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                });
                let r = rt.block_on(rx.recv_async());
                assert_eq!(r, Err(RecvError::Fault(mapshare::Fault::Truncated)));
                shrink.join().unwrap();
                c.signal("survived");
            }
            // Holds a mutex until killed.
            "holder" => {
                let m = Mutex::open(&c.name).unwrap();
                let _g = m.lock().unwrap();
                c.signal("locked");
                c.wait_for("never");
            }
            "sender" => {
                let mut tx = Sender::open(&c.name).unwrap();
                tx.send(b"first").unwrap();
                c.signal("sent");
                c.wait_for("never");
            }
            other => panic!("unknown role {other}"),
        });
    }
}

fn env_for(backend: &str) -> String {
    format!("MAPSHARE_ASYNC_BACKEND={backend}")
}

/// A child playing `role` (`receivers` or `receivers-mt`) with `n` channels
/// `name-0..`, under `backend`, once it says its tasks all wait.
struct Waiting {
    name: String,
    _clean: Cleanup,
    dir: TempDir,
    child: common::ChildProc,
}

fn waiting_receivers(test: &str, role: &str, prefix: &str, backend: &str, n: usize) -> Waiting {
    let name = unique_name(prefix);
    let mut clean = Cleanup::new(&name);
    for i in 0..n {
        clean.add(&format!("{name}-{i}"));
    }
    let dir = TempDir::new(prefix);
    let env = env_for(backend);
    let mut child = spawn_child_via(
        &["env", &env],
        test,
        role,
        &name,
        dir.path(),
        &n.to_string(),
    );
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "waiting",
        &mut child
    ));
    Waiting {
        name,
        _clean: clean,
        dir,
        child,
    }
}

#[test]
fn many_tasks_on_one_thread_are_woken_by_another_process_without_a_thread_each() {
    child_roles();
    let _wd = watchdog(TEST);
    for backend in BACKENDS {
        // The blocking backend takes a thread per wait: keep it small.
        let n: usize = if backend == "blocking" { 16 } else { 10_000 };
        let Waiting {
            name,
            _clean,
            dir,
            mut child,
        } = waiting_receivers(
            "many_tasks_on_one_thread_are_woken_by_another_process_without_a_thread_each",
            "receivers",
            "async-many",
            backend,
            n,
        );
        let report = std::fs::read_to_string(dir.join("report")).unwrap();
        let (used, added) = report.split_once(' ').unwrap();
        let added: usize = added.parse().unwrap();
        eprintln!("{backend}: {n} waiting tasks added {added} thread(s)");
        assert_eq!(used, backend);
        match backend {
            "io_uring" => assert_eq!(added, 0, "io_uring needs no thread"),
            "futex_waitv" => assert_eq!(added, n.div_ceil(127), "one helper per 127 waits"),
            // The last resort costs blocking-pool threads (the pool keeps
            // idle ones around, so no exact count).
            _ => assert!(added >= 1, "blocking waits run on pool threads"),
        }
        for i in 0..n {
            let mut tx = Sender::open(&format!("{name}-{i}")).unwrap();
            tx.send(b"wake").unwrap();
        }
        child.wait_ok();
    }
}

#[test]
fn a_sender_killed_while_a_task_awaits_gives_disconnected() {
    child_roles();
    let _wd = watchdog(TEST);
    let test = "a_sender_killed_while_a_task_awaits_gives_disconnected";
    for backend in BACKENDS {
        let name = unique_name("async-disc");
        let _clean = Cleanup::new(&name);
        let dir = TempDir::new("async-disc");
        // Made here, so the sender has a channel to join; the async child
        // takes the receiver role once we let it go.
        let created = Receiver::create(&name).unwrap();
        let mut sender = spawn_child_via(&[], test, "sender", &name, dir.path(), "");
        common::wait_for_flag(dir.path(), "sent");
        drop(created);
        let env = env_for(backend);
        let mut receiver =
            spawn_child_via(&["env", &env], test, "disconnect", &name, dir.path(), "");
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            "first",
            &mut receiver
        ));
        // The child is (about to be) awaiting: kill the only sender.
        sender.kill();
        receiver.wait_ok();
        assert!(dir.join("disconnected").exists(), "{backend}");
    }
}

#[test]
fn cancelled_waits_lose_no_wake_up_and_leave_nothing_registered() {
    child_roles();
    let _wd = watchdog(TEST);
    for backend in BACKENDS {
        let name = unique_name("async-cancel");
        let _clean = Cleanup::new(&name);
        let dir = TempDir::new("async-cancel");
        let env = env_for(backend);
        let mut child = spawn_child_via(
            &["env", &env],
            "cancelled_waits_lose_no_wake_up_and_leave_nothing_registered",
            "cancel",
            &name,
            dir.path(),
            "",
        );
        child.wait_ok();
        let used = std::fs::read_to_string(dir.join("report")).unwrap();
        assert_eq!(used, backend);
    }
}

#[test]
fn every_async_form_is_woken_by_another_process() {
    child_roles();
    let _wd = watchdog(TEST);
    let test = "every_async_form_is_woken_by_another_process";
    for backend in BACKENDS {
        let n = unique_name("async-forms");
        let mut clean = Cleanup::new(&format!("{n}-ev"));
        for k in ["ring", "ch", "mx"] {
            clean.add(&format!("{n}-{k}"));
        }
        let dir = TempDir::new("async-forms");
        let ev = Event::create(&format!("{n}-ev")).unwrap();
        let mut publ = Publisher::create(&format!("{n}-ring")).unwrap();
        let mut rx = Receiver::options(&format!("{n}-ch"))
            .capacity(2)
            .create()
            .unwrap();
        let m = Mutex::create(&format!("{n}-mx")).unwrap();
        let env = env_for(backend);
        let mut child = spawn_child_via(&["env", &env], test, "forms", &n, dir.path(), "");
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            "ready",
            &mut child
        ));
        std::thread::sleep(Duration::from_millis(50)); // let it sleep first
        ev.notify();
        publ.publish(b"published").unwrap();
        let held = m.lock().unwrap();
        for i in 0u8..5 {
            assert_eq!(rx.recv().unwrap(), [i]);
        }
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            "locking",
            &mut child
        ));
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            "sent",
            &mut child
        ));
        drop(rx);
        child.wait_ok();
        assert!(dir.join("done").exists(), "{backend}");
    }
}

#[test]
fn lock_async_takes_over_from_a_killed_holder() {
    child_roles();
    let _wd = watchdog(TEST);
    let name = unique_name("async-owner");
    let _clean = Cleanup::new(&name);
    let dir = TempDir::new("async-owner");
    let m = Mutex::create(&name).unwrap();
    let mut holder = spawn_child_via(
        &[],
        "lock_async_takes_over_from_a_killed_holder",
        "holder",
        &name,
        dir.path(),
        "",
    );
    common::wait_for_flag(dir.path(), "locked");
    let rt = current_thread();
    rt.block_on(async {
        let killer = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            holder.kill();
        };
        let (got, ()) = tokio::join!(m.lock_async(), killer);
        assert!(matches!(got, Err(LockError::OwnerDied(_))), "{got:?}");
    });
}

#[test]
fn mailbox_blackboard_publish_and_streams_async_across_processes() {
    child_roles();
    let _wd = watchdog(TEST);
    let test = "mailbox_blackboard_publish_and_streams_async_across_processes";
    for backend in BACKENDS {
        let n = unique_name("async-forms2");
        let mut clean = Cleanup::new(&format!("{n}-st"));
        for k in ["mb", "back", "bb", "ps", "zc"] {
            clean.add(&format!("{n}-{k}"));
        }
        let dir = TempDir::new("async-forms2");
        let mb = mapshare::Mailbox::create(&format!("{n}-mb")).unwrap();
        let back = mapshare::Mailbox::create(&format!("{n}-back")).unwrap();
        let mut board = mapshare::BlackboardWriter::<u64>::create(&format!("{n}-bb")).unwrap();
        let mut sub = Subscriber::options(&format!("{n}-ps"))
            .capacity(2)
            .create()
            .unwrap();
        let mut zc = Publisher::create(&format!("{n}-zc")).unwrap();
        let env = env_for(backend);
        let mut child = spawn_child_via(&["env", &env], test, "forms2", &n, dir.path(), "");
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            "ready",
            &mut child
        ));
        std::thread::sleep(Duration::from_millis(20));
        mb.send(b"to child").unwrap();
        assert_eq!(back.recv().unwrap(), b"to parent");
        std::thread::sleep(Duration::from_millis(20));
        board.write(&42);
        for i in 0u8..20 {
            std::thread::sleep(Duration::from_millis(2)); // a slow subscriber
            assert_eq!(sub.recv().unwrap(), [i]);
        }
        for i in 0u8..5 {
            std::thread::sleep(Duration::from_millis(5)); // the child awaits each
            zc.publish(&[i]).unwrap();
        }
        let mut tx = Sender::open(&format!("{n}-st")).unwrap();
        for m in [b"a", b"b", b"c"] {
            tx.send(m).unwrap();
        }
        drop(tx);
        child.wait_ok();
        assert!(dir.join("done").exists(), "{backend}");
    }
}

#[test]
fn a_multi_thread_runtime_is_woken_too() {
    child_roles();
    let _wd = watchdog(TEST);
    for backend in ["io_uring", "futex_waitv"] {
        let n = 200;
        let Waiting {
            name,
            _clean,
            dir: _dir,
            mut child,
        } = waiting_receivers(
            "a_multi_thread_runtime_is_woken_too",
            "receivers-mt",
            "async-mt",
            backend,
            n,
        );
        let mut txs: Vec<Sender> = (0..n)
            .map(|i| Sender::open(&format!("{name}-{i}")).unwrap())
            .collect();
        for m in [&b"one"[..], b"two"] {
            for tx in &mut txs {
                tx.send(m).unwrap();
            }
        }
        drop(txs); // disconnects every task's stream of messages
        child.wait_ok();
    }
}

#[test]
fn an_async_wait_on_a_segment_a_peer_shrinks_is_a_fault_not_sigbus() {
    child_roles();
    let _wd = watchdog(TEST);
    for backend in BACKENDS {
        let name = unique_name("async-trunc");
        let _clean = Cleanup::new(&name);
        let dir = TempDir::new("async-trunc");
        let env = env_for(backend);
        let mut child = spawn_child_via(
            &["env", &env],
            "an_async_wait_on_a_segment_a_peer_shrinks_is_a_fault_not_sigbus",
            "truncated",
            &name,
            dir.path(),
            "",
        );
        child.wait_ok();
        assert!(dir.join("survived").exists(), "{backend}");
    }
}

/// Answers `name-b`'s requests by reversing them, until told `die`, then
/// takes one more request and waits to be killed with it in hand.
fn blocking_server(name: &str, dir: &std::path::Path) {
    let mut server = mapshare::Server::open(name).unwrap();
    common::signal(dir, "serving");
    loop {
        match server.recv_request_timeout(Duration::from_millis(20)) {
            Ok(r) if r.data() == b"last" => {
                common::signal(dir, "holding");
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            Ok(r) => {
                let mut back = r.data().to_vec();
                back.reverse();
                server.respond(r.reply_to(), &back).unwrap();
            }
            Err(mapshare::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[test]
fn request_response_async_both_sides_and_a_killed_server() {
    child_roles();
    let _wd = watchdog(TEST);
    let test = "request_response_async_both_sides_and_a_killed_server";
    for backend in BACKENDS {
        let n = unique_name("async-svc");
        let (a, b) = (format!("{n}-a"), format!("{n}-b"));
        let mut clean = Cleanup::new(&a);
        clean.add(&b);
        let dir = TempDir::new("async-svc");
        let mut client = mapshare::Client::create(&a).unwrap();
        let _service_b = mapshare::Client::options(&b).capacity(4).create().unwrap();
        let mut server_b = spawn_child_via(&[], test, "server-b", &b, dir.path(), "");
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            "serving",
            &mut server_b
        ));
        drop(_service_b);
        let env = env_for(backend);
        let mut child = spawn_child_via(&["env", &env], test, "service", &n, dir.path(), "");
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            "ready",
            &mut child
        ));
        for i in 0u32..50 {
            let back = client
                .call_timeout(&i.to_le_bytes(), Duration::from_secs(30))
                .unwrap();
            assert_eq!(back, i.to_be_bytes(), "{backend}");
        }
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            "holding",
            &mut server_b
        ));
        server_b.kill();
        child.wait_ok();
        assert!(dir.join("done").exists(), "{backend}");
    }
}
