//! One thread waiting on many sources through a `WaitSet`, woken by
//! another process: 64 sources of mixed kinds, each fired once in a
//! shuffled order; a killed sender makes its receiver ready; fairness
//! behind a busy source; timeouts.

mod common;

use std::time::Duration;

use common::{assert_clean, spawn_child, unique_name, Cleanup, TempDir, XorShift};
use mapshare::{
    Client, Event, Mailbox, Options, Publisher, Receiver, RecvTimeoutError, Sender, Server,
    Subscriber, TryRecvError, WaitSet, Waitable,
};

const LONG: Duration = Duration::from_secs(30);

/// The 64 sources' names and kinds: 16 receivers, 16 subscribers, 16
/// events, 8 mailboxes, 8 servers.
fn kinds() -> Vec<&'static str> {
    let mut v = vec!["rx"; 16];
    v.extend(["sub"; 16]);
    v.extend(["event"; 16]);
    v.extend(["mailbox"; 8]);
    v.extend(["server"; 8]);
    v
}

fn src_name(base: &str, i: usize) -> String {
    format!("{base}-{i}")
}

/// Opens the peer end of every source, then fires them one by one in the
/// order `arg` (a seed) shuffles, pausing a little between some.
fn firer_role(c: &common::ChildCtx) {
    let kinds = kinds();
    let mut senders = Vec::new();
    let mut publishers = Vec::new();
    let mut events = Vec::new();
    let mut mailboxes = Vec::new();
    let mut clients = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let n = src_name(&c.name, i);
        match *k {
            "rx" => senders.push((i, Sender::open(&n).unwrap())),
            "sub" => publishers.push((i, Publisher::open(&n).unwrap())),
            "event" => events.push((i, Event::open(&n).unwrap())),
            "mailbox" => mailboxes.push((i, Mailbox::open(&n).unwrap())),
            "server" => clients.push((i, Client::open(&n).unwrap())),
            _ => unreachable!(),
        }
    }
    c.signal("open");
    c.wait_for("go");
    let mut order: Vec<usize> = (0..kinds.len()).collect();
    let mut rng = XorShift::new(c.arg.parse().unwrap());
    for k in (1..order.len()).rev() {
        order.swap(k, rng.below(k as u64 + 1) as usize);
    }
    for (step, i) in order.into_iter().enumerate() {
        let msg = format!("fire {i}");
        if let Some((_, s)) = senders.iter_mut().find(|(j, _)| *j == i) {
            s.send(msg.as_bytes()).unwrap();
        } else if let Some((_, p)) = publishers.iter_mut().find(|(j, _)| *j == i) {
            p.publish(msg.as_bytes()).unwrap();
        } else if let Some((_, e)) = events.iter().find(|(j, _)| *j == i) {
            e.notify();
        } else if let Some((_, m)) = mailboxes.iter().find(|(j, _)| *j == i) {
            m.send(msg.as_bytes()).unwrap();
        } else if let Some((_, cl)) = clients.iter_mut().find(|(j, _)| *j == i) {
            cl.request(msg.as_bytes()).unwrap();
        }
        if step % 3 == 0 {
            // Let the waiter fall asleep again now and then.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    c.wait_for("seen");
}

#[test]
fn one_thread_waits_on_64_sources_of_mixed_kinds_fired_by_another_process() {
    let test = "one_thread_waits_on_64_sources_of_mixed_kinds_fired_by_another_process";
    if let Some(child) = common::child() {
        child.run(firer_role);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ws-64");
    let base = unique_name("ws-64");
    let kinds = kinds();
    let mut cleanup = Cleanup::new(&src_name(&base, 0));
    let mut rxs = Vec::new();
    let mut subs = Vec::new();
    let mut events = Vec::new();
    let mut mailboxes = Vec::new();
    let mut servers = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        let n = src_name(&base, i);
        cleanup.add(&n);
        match *k {
            "rx" => rxs.push((
                i,
                Options::<Receiver>::new(&n).capacity(4).create().unwrap(),
            )),
            "sub" => subs.push((i, Subscriber::create(&n).unwrap())),
            "event" => events.push((i, Event::create(&n).unwrap())),
            "mailbox" => mailboxes.push((i, Mailbox::create(&n).unwrap())),
            "server" => servers.push((i, Server::create(&n).unwrap())),
            _ => unreachable!(),
        }
    }
    let seed = XorShift::from_time("waitset").next_u64() % 1_000_000;
    eprintln!("seed {seed}");
    let mut kid = spawn_child(test, "firer", &base, dir.path(), &seed.to_string());
    assert!(common::wait_for_flag_or_exit(dir.path(), "open", &mut kid));
    let mut set = WaitSet::new();
    // Nothing fired yet: a timeout, not a false wake-up.
    {
        let sources = all_sources(&rxs, &subs, &events, &mailboxes, &servers);
        assert_eq!(set.wait_timeout(&sources, Duration::from_millis(30)), None);
    }
    common::signal(dir.path(), "go");
    let mut seen = vec![false; kinds.len()];
    let mut wakeups = 0;
    while seen.iter().any(|s| !s) {
        let ready = {
            let sources = all_sources(&rxs, &subs, &events, &mailboxes, &servers);
            set.wait_timeout(&sources, LONG).expect("a source fires")
        };
        wakeups += 1;
        for i in ready {
            let want = format!("fire {i}");
            let got: Vec<u8> = if let Some((_, r)) = rxs.iter_mut().find(|(j, _)| *j == i) {
                r.try_recv().expect("ready receiver has a message")
            } else if let Some((_, s)) = subs.iter_mut().find(|(j, _)| *j == i) {
                s.try_recv().expect("ready subscriber has a message")
            } else if let Some((_, e)) = events.iter().find(|(j, _)| *j == i) {
                e.try_wait().expect("ready event is set");
                want.clone().into_bytes()
            } else if let Some((_, m)) = mailboxes.iter().find(|(j, _)| *j == i) {
                m.try_recv().expect("ready mailbox has a message")
            } else {
                let (_, s) = servers.iter_mut().find(|(j, _)| *j == i).unwrap();
                s.try_recv_request()
                    .expect("ready server has a request")
                    .into_data()
            };
            assert_eq!(got, want.as_bytes(), "source {i}");
            assert!(!seen[i], "source {i} fired once, seen twice");
            seen[i] = true;
        }
    }
    eprintln!("64 sources seen in {wakeups} wake-ups");
    common::signal(dir.path(), "seen");
    kid.wait_ok();
    drop((rxs, subs, events, mailboxes, servers));
    let names: Vec<String> = (0..kinds.len()).map(|i| src_name(&base, i)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_clean(&refs, &[kid.id()]);
}

fn all_sources<'a>(
    rxs: &'a [(usize, Receiver)],
    subs: &'a [(usize, Subscriber)],
    events: &'a [(usize, Event)],
    mailboxes: &'a [(usize, Mailbox)],
    servers: &'a [(usize, Server)],
) -> Vec<&'a dyn Waitable> {
    let mut v: Vec<(usize, &dyn Waitable)> = Vec::new();
    v.extend(rxs.iter().map(|(i, s)| (*i, s as &dyn Waitable)));
    v.extend(subs.iter().map(|(i, s)| (*i, s as &dyn Waitable)));
    v.extend(events.iter().map(|(i, s)| (*i, s as &dyn Waitable)));
    v.extend(mailboxes.iter().map(|(i, s)| (*i, s as &dyn Waitable)));
    v.extend(servers.iter().map(|(i, s)| (*i, s as &dyn Waitable)));
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, s)| s).collect()
}

/// Opens a sender and waits to be killed.
fn doomed_sender_role(c: &common::ChildCtx) {
    let _tx = Sender::open(&c.name).unwrap();
    c.signal("open");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_killed_sender_makes_its_receiver_ready_as_disconnected() {
    let test = "a_killed_sender_makes_its_receiver_ready_as_disconnected";
    if let Some(child) = common::child() {
        child.run(doomed_sender_role);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ws-kill");
    let name = unique_name("ws-kill");
    let other = unique_name("ws-kill-ev");
    let mut c = Cleanup::new(&name);
    c.add(&other);
    let mut rx = Receiver::create(&name).unwrap();
    let ev = Event::create(&other).unwrap();
    let mut kid = spawn_child(test, "sender", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(dir.path(), "open", &mut kid));
    let mut set = WaitSet::new();
    assert_eq!(
        set.wait_timeout(&[&rx, &ev], Duration::from_millis(80)),
        None,
        "a live idle sender: nothing ready"
    );
    kid.kill();
    let ready = set.wait_timeout(&[&rx, &ev], LONG).expect("noticed");
    assert_eq!(ready.iter().collect::<Vec<_>>(), vec![0]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    // Disconnected stays ready, as in crossbeam.
    assert!(set.try_wait(&[&ev, &rx]).contains(1));
    drop((rx, ev));
    assert_clean(&[&name, &other], &[kid.id()]);
}

/// Floods the channel until told to stop.
fn flooder_role(c: &common::ChildCtx) {
    let mut tx = Sender::open(&c.name).unwrap();
    c.signal("open");
    let stop = c.dir.join("stop");
    while !stop.exists() {
        match tx.send_timeout(b"busy", Duration::from_millis(20)) {
            Ok(()) | Err(mapshare::SendTimeoutError::Timeout(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[test]
fn a_busy_source_never_starves_a_quiet_one() {
    let test = "a_busy_source_never_starves_a_quiet_one";
    if let Some(child) = common::child() {
        child.run(flooder_role);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("ws-fair");
    let name = unique_name("ws-fair");
    let quiet = unique_name("ws-fair-q");
    let mut c = Cleanup::new(&name);
    c.add(&quiet);
    let mut busy = Receiver::create(&name).unwrap();
    let mut calm = Receiver::create(&quiet).unwrap();
    let mut calm_tx = Sender::open(&quiet).unwrap();
    let mut kid = spawn_child(test, "flooder", &name, dir.path(), "");
    assert!(common::wait_for_flag_or_exit(dir.path(), "open", &mut kid));
    let mut set = WaitSet::new();
    let mut served_calm = 0;
    for round in 0..200 {
        if round % 10 == 0 {
            calm_tx.send(b"calm").unwrap();
        }
        // Serve only the first ready source each time.
        let first = set
            .wait_timeout(&[&busy, &calm], LONG)
            .expect("the flood never stops")
            .first()
            .unwrap();
        match first {
            0 => assert_eq!(busy.try_recv().unwrap(), b"busy"),
            _ => {
                assert_eq!(calm.try_recv().unwrap(), b"calm");
                served_calm += 1;
            }
        }
    }
    // Each calm message was served on the round it was sent or the next.
    assert_eq!(served_calm, 20);
    common::signal(dir.path(), "stop");
    kid.wait_ok();
    drop((busy, calm, calm_tx));
    assert_clean(&[&name, &quiet], &[kid.id()]);
}

#[test]
fn clients_and_servers_are_sources_and_a_timeout_is_none() {
    let _wd = common::watchdog("clients_and_servers_are_sources_and_a_timeout_is_none");
    let name = unique_name("ws-svc");
    let _c = Cleanup::new(&name);
    let mut server = Server::create(&name).unwrap();
    let mut client = Client::open(&name).unwrap();
    let mut set = WaitSet::new();
    assert!(set.try_wait(&[&server]).is_empty(), "no request: not ready");
    assert!(
        set.try_wait(&[&client]).is_empty(),
        "nothing in flight: nothing can come, so not ready (an idle client must not spin a set)"
    );
    let id = client.request(b"q").unwrap();
    assert!(
        set.try_wait(&[&client]).is_empty(),
        "waiting for its answer"
    );
    assert_eq!(set.wait_timeout(&[&server], LONG).unwrap().first(), Some(0));
    let r = server.try_recv_request().unwrap();
    server.respond(r.reply_to(), b"a").unwrap();
    assert_eq!(set.wait_timeout(&[&client], LONG).unwrap().first(), Some(0));
    assert_eq!(client.recv_response_timeout(LONG).map(|r| r.id()), Ok(id));
    let empty: [&dyn Waitable; 0] = [];
    assert_eq!(set.wait_timeout(&empty, Duration::from_millis(5)), None);
    assert_eq!(
        client.recv_response_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
// Unix by nature: Windows refuses to shrink a file with a mapped view
// (ERROR_USER_MAPPED_FILE), so no peer can make our view fault (no SIGBUS
// case): see issue_7.rs, `a_mapped_segment_cannot_be_shrunk_windows`.
#[cfg(unix)]
fn a_source_shrunk_while_the_set_sleeps_is_reported_truncated_not_a_sigbus() {
    let _wd =
        common::watchdog("a_source_shrunk_while_the_set_sleeps_is_reported_truncated_not_a_sigbus");
    let name = unique_name("ws-trunc");
    let other = unique_name("ws-trunc-ev");
    let mut c = Cleanup::new(&name);
    c.add(&other);
    let rx = Receiver::create(&name).unwrap();
    let ev = Event::create(&other).unwrap();
    // This thread's task, for the shrinker to see it asleep in futex_waitv:
    // shrinking while it touches the segment is the documented SIGBUS
    // window of every fast path, not what this tests.
    let task = std::fs::read_link("/proc/thread-self").unwrap();
    let task = task.to_string_lossy().into_owned();
    let path = common::shm_path(&name);
    let shrinker = std::thread::spawn(move || {
        common::wait_until_freshly_asleep(&task);
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(4096)
            .unwrap();
    });
    let mut set = WaitSet::new();
    let ready = set
        .wait_timeout(&[&ev, &rx], LONG)
        .expect("the shrink is seen");
    shrinker.join().unwrap();
    assert_eq!(ready.truncated(), &[1]);
    assert_eq!(
        ready.first(),
        None,
        "nothing is ready: the receiver must not be touched"
    );
    // The event, in another segment, still works.
    ev.notify();
    assert_eq!(set.wait_timeout(&[&ev], LONG).unwrap().first(), Some(0));
    std::mem::forget(rx); // its drop would touch the shrunk segment
}
