//! Request/response across real processes: concurrent clients each get
//! only their own answers; a client killed with requests in flight never
//! blocks the server; a server killed mid-request gives its clients
//! `Disconnected` and a restarted one takes the name over; either start
//! order; timeouts; zero-copy loans.

mod common;

use std::time::Duration;

use common::{assert_clean, spawn_child, unique_name, Cleanup, TempDir};
use mapshare::{
    CallError, Client, Options, Receiver, RecvError, RecvTimeoutError, SegmentError, SendError,
    Server, TryRecvError,
};

const LONG: Duration = Duration::from_secs(30);

fn answer(req: &[u8]) -> Vec<u8> {
    let mut v = b"re:".to_vec();
    v.extend(req.iter().rev());
    v
}

/// A server that answers every request with `answer` until told to stop
/// (the flag `stop`), or, with arg `silent`, takes requests and answers
/// none.
fn server_role(c: &common::ChildCtx) {
    let mut server: Server = Options::new(&c.name).senders(8).open_or_create().unwrap();
    c.signal("serving");
    let silent = c.arg == "silent";
    loop {
        match server.recv_request_timeout(Duration::from_millis(20)) {
            Ok(req) => {
                if silent {
                    c.signal("got");
                    continue;
                }
                let _ = server.respond(req.reply_to(), &answer(req.data()));
            }
            Err(RecvTimeoutError::Timeout) => {
                if c.dir.join("stop").exists() {
                    return;
                }
            }
            Err(e) => panic!("server: {e:?}"),
        }
    }
}

/// A client sending `n` requests with up to 4 in flight, checking each
/// response against the request of its id.
fn client_role(c: &common::ChildCtx) {
    let (who, n) = c.arg.split_once(':').unwrap();
    let n: u64 = n.parse().unwrap();
    let mut client = Client::open(&c.name).unwrap();
    let mut sent = std::collections::HashMap::new();
    let mut done = 0;
    let mut next = 0;
    while done < n {
        while next < n && client.in_flight() < 4 {
            let body = format!(
                "client {who} request {next} {}",
                "x".repeat((next % 50) as usize)
            );
            let id = client.request_timeout(body.as_bytes(), LONG).unwrap();
            sent.insert(id, body);
            next += 1;
        }
        let resp = client.recv_response_timeout(LONG).unwrap();
        let body = sent
            .remove(&resp.id())
            .expect("a response to one of our requests");
        assert_eq!(
            resp.data(),
            answer(body.as_bytes()),
            "client {who}: wrong answer"
        );
        done += 1;
    }
    assert!(sent.is_empty());
    c.signal(&format!("done-{who}"));
}

#[test]
fn eight_client_processes_each_get_only_their_own_responses() {
    let test = "eight_client_processes_each_get_only_their_own_responses";
    if let Some(child) = common::child() {
        child.run(client_role);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("svc-eight");
    let name = unique_name("svc-eight");
    let _c = Cleanup::new(&name);
    let mut server: Server = Options::new(&name)
        .senders(8)
        .capacity(4)
        .max_message(256)
        .create()
        .unwrap();
    let n = 2_000u64;
    let mut kids: Vec<_> = (0..8)
        .map(|i| spawn_child(test, "client", &name, dir.path(), &format!("{i}:{n}")))
        .collect();
    let mut served = 0;
    // Answer out of order: hold a few back, answer them later, newest first.
    let mut held = Vec::new();
    while served < 8 * n {
        match server.recv_request_timeout(Duration::from_millis(50)) {
            Ok(req) => {
                held.push(req);
                if held.len() >= 3 {
                    while let Some(r) = held.pop() {
                        server.respond(r.reply_to(), &answer(r.data())).unwrap();
                        served += 1;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                while let Some(r) = held.pop() {
                    server.respond(r.reply_to(), &answer(r.data())).unwrap();
                    served += 1;
                }
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    for k in &mut kids {
        k.wait_ok();
    }
    assert_eq!(served, 8 * n);
    drop(server);
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    assert_clean(&[&name], &pids);
}

/// Sends `arg` requests and waits to be killed.
fn flooder_role(c: &common::ChildCtx) {
    let n: usize = c.arg.parse().unwrap();
    let mut client = Client::open(&c.name).unwrap();
    for i in 0..n {
        client.request(format!("doomed {i}").as_bytes()).unwrap();
    }
    c.signal("sent");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_client_killed_with_requests_in_flight_never_blocks_the_server() {
    let test = "a_client_killed_with_requests_in_flight_never_blocks_the_server";
    if let Some(child) = common::child() {
        child.run(flooder_role);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("svc-kill-client");
    let name = unique_name("svc-kill-client");
    let _c = Cleanup::new(&name);
    // One client block, so the next client takes the dead one's over.
    let mut server: Server = Options::new(&name).senders(1).capacity(8).create().unwrap();
    let mut kid = spawn_child(test, "flooder", &name, dir.path(), "8");
    assert!(common::wait_for_flag_or_exit(dir.path(), "sent", &mut kid));
    // Take half of its requests before the kill, half after.
    for _ in 0..4 {
        let r = server.recv_request_timeout(LONG).unwrap();
        server.respond(r.reply_to(), b"late").unwrap();
    }
    kid.kill();
    // Its remaining requests are still served (nobody knows it died yet);
    // answering them never waits: its lane has room for what it is owed.
    for _ in 0..4 {
        let r = server.recv_request_timeout(LONG).unwrap();
        assert!(r.data().starts_with(b"doomed"));
        server.respond(r.reply_to(), b"late").unwrap();
    }
    // A new client takes the block over: it gets none of the dead one's
    // answers, and its own request is answered.
    let mut client = Client::open(&name).unwrap();
    assert_eq!(
        client.try_recv_response().unwrap_err(),
        TryRecvError::Disconnected,
        "nothing in flight: nothing to wait for"
    );
    let id = client.request(b"fresh").unwrap();
    let r = server.recv_request_timeout(LONG).unwrap();
    assert_eq!(
        r.data(),
        b"fresh",
        "the dead client's requests were all taken"
    );
    server.respond(r.reply_to(), b"yours").unwrap();
    let resp = client.recv_response_timeout(LONG).unwrap();
    assert_eq!((resp.id(), resp.data()), (id, &b"yours"[..]));
    drop((client, server));
    assert_clean(&[&name], &[kid.id()]);
}

#[test]
fn a_killed_clients_unread_requests_are_skipped_once_its_block_is_taken_over() {
    let test = "a_killed_clients_unread_requests_are_skipped_once_its_block_is_taken_over";
    if let Some(child) = common::child() {
        child.run(flooder_role);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("svc-stale");
    let name = unique_name("svc-stale");
    let _c = Cleanup::new(&name);
    let mut server: Server = Options::new(&name).senders(1).capacity(8).create().unwrap();
    // Half the lane: the new client's request fits behind the stale ones.
    let mut kid = spawn_child(test, "flooder", &name, dir.path(), "4");
    assert!(common::wait_for_flag_or_exit(dir.path(), "sent", &mut kid));
    kid.kill();
    let mut client = Client::open(&name).unwrap(); // the dead one's block
    let id = client.request_timeout(b"mine", LONG).unwrap();
    let r = server.recv_request_timeout(LONG).unwrap();
    assert_eq!(r.data(), b"mine", "stale requests skipped");
    server.respond(r.reply_to(), b"ok").unwrap();
    assert_eq!(client.call_response_timeout(id, LONG).unwrap(), b"ok");
    drop((client, server));
    assert_clean(&[&name], &[kid.id()]);
}

#[test]
fn a_server_killed_mid_request_disconnects_its_clients_and_a_restarted_one_takes_over() {
    let test = "a_server_killed_mid_request_disconnects_its_clients_and_a_restarted_one_takes_over";
    if let Some(child) = common::child() {
        child.run(server_role);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("svc-kill-server");
    let name = unique_name("svc-kill-server");
    let _c = Cleanup::new(&name);
    let mut client: Client = Options::new(&name).senders(8).open_or_create().unwrap();
    let mut silent = spawn_child(test, "server", &name, dir.path(), "silent");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "serving",
        &mut silent
    ));
    client.request(b"never answered").unwrap();
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "got",
        &mut silent
    ));
    assert_eq!(
        client.recv_response_timeout(Duration::from_millis(100)),
        Err(RecvTimeoutError::Timeout)
    );
    silent.kill();
    // The blocking form: noticed, never a hang.
    assert_eq!(client.recv_response(), Err(RecvError::Disconnected));
    assert_eq!(client.in_flight(), 0, "written off");
    assert!(matches!(
        client.request(b"anyone?"),
        Err(SendError::Disconnected(_))
    ));
    // A restarted server takes the name over.
    let mut server = spawn_child(test, "server", &name, dir.path(), "echo");
    assert!(common::wait_for_flag_or_exit(
        dir.path(),
        "serving",
        &mut server
    ));
    let back = loop {
        match client.call_timeout(b"hello again", LONG) {
            Ok(v) => break v,
            // The flag may come up before the name is ours to see.
            Err(CallError::Disconnected) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(back, answer(b"hello again"));
    common::signal(dir.path(), "stop");
    server.wait_ok();
    drop(client);
    assert_clean(&[&name], &[silent.id(), server.id()]);
}

#[test]
fn a_client_started_before_any_server_is_answered_by_the_first() {
    let test = "a_client_started_before_any_server_is_answered_by_the_first";
    if let Some(child) = common::child() {
        child.run(server_role);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("svc-order");
    let name = unique_name("svc-order");
    let _c = Cleanup::new(&name);
    let mut client: Client = Options::new(&name).senders(8).open_or_create().unwrap();
    let id = client.request(b"early").unwrap();
    assert_eq!(
        client.recv_response_timeout(Duration::from_millis(50)),
        Err(RecvTimeoutError::Timeout),
        "no server yet: waiting, not disconnected"
    );
    let mut server = spawn_child(test, "server", &name, dir.path(), "echo");
    let resp = client.recv_response_timeout(LONG).unwrap();
    assert_eq!((resp.id(), resp.into_data()), (id, answer(b"early")));
    common::signal(dir.path(), "stop");
    server.wait_ok();
    drop(client);
    assert_clean(&[&name], &[server.id()]);
}

#[test]
fn flow_control_keeps_responses_that_arrive_while_waiting_for_room() {
    let _wd = common::watchdog("flow_control_keeps_responses_that_arrive_while_waiting_for_room");
    let name = unique_name("svc-flow");
    let _c = Cleanup::new(&name);
    let mut server: Server = Options::new(&name).capacity(2).create().unwrap();
    let mut client = Client::open(&name).unwrap();
    let a = client.request(b"a").unwrap();
    let b = client.request(b"b").unwrap();
    assert!(client.try_request(b"c").is_err(), "two in flight: full");
    assert!(client
        .request_timeout(b"c", Duration::from_millis(20))
        .is_err());
    for _ in 0..2 {
        let r = server.try_recv_request().unwrap();
        server.respond(r.reply_to(), r.data()).unwrap();
    }
    // Room now: the two responses are moved aside, not lost.
    let c = client.request(b"c").unwrap();
    let r = server.try_recv_request().unwrap();
    server.respond(r.reply_to(), r.data()).unwrap();
    assert_eq!(client.call_response(c).unwrap(), b"c");
    assert_eq!(client.call_response(a).unwrap(), b"a");
    let last = client.recv_response().unwrap();
    assert_eq!((last.id(), last.data()), (b, &b"b"[..]));
    assert_eq!(client.try_recv_response(), Err(TryRecvError::Disconnected));
}

#[test]
fn loans_on_both_sides_and_limits() {
    let _wd = common::watchdog("loans_on_both_sides_and_limits");
    let name = unique_name("svc-loan");
    let _c = Cleanup::new(&name);
    let mut server: Server = Options::new(&name).max_message(64).create().unwrap();
    let mut client = Client::open(&name).unwrap();
    assert!(matches!(
        client.request(&[0u8; 65]),
        Err(SendError::TooLarge(_))
    ));
    let mut loan = client.loan_request_timeout(LONG).unwrap();
    assert_eq!(loan.len(), 64);
    assert!(loan.write_at(0, b"zero-copy"));
    let id = loan.commit(9);
    let req = server.recv_request_timeout(LONG).unwrap();
    assert_eq!((req.id(), req.data()), (id, &b"zero-copy"[..]));
    let mut out = server.loan_response_timeout(req.reply_to(), LONG).unwrap();
    assert!(out.write_at(0, b"back"));
    out.commit(4);
    assert_eq!(client.call_response_timeout(id, LONG).unwrap(), b"back");
    // A second server is refused while this one lives.
    assert!(matches!(
        Server::open(&name),
        Err(SegmentError::TooManyAttached(_))
    ));
    // A service is not a channel, and the other way round.
    assert!(matches!(
        Receiver::open(&name),
        Err(SegmentError::KindMismatch { .. })
    ));
}

#[test]
fn a_client_taking_over_a_block_frees_its_predecessors_unread_responses() {
    let _wd =
        common::watchdog("a_client_taking_over_a_block_frees_its_predecessors_unread_responses");
    let name = unique_name("svc-unread");
    let _c = Cleanup::new(&name);
    let mut server: Server = Options::new(&name).senders(1).capacity(2).create().unwrap();
    let mut first = Client::open(&name).unwrap();
    first.request(b"1").unwrap();
    first.request(b"2").unwrap();
    for _ in 0..2 {
        let r = server.try_recv_request().unwrap();
        server.respond(r.reply_to(), b"unread").unwrap();
    }
    drop(first); // leaves two responses in the block's lane
    let mut second = Client::open(&name).unwrap();
    let id = second.request(b"3").unwrap();
    let r = server.try_recv_request().unwrap();
    // Room at once: the server never waits on a client that plays fair.
    server.try_respond(r.reply_to(), b"yours").unwrap();
    assert_eq!(second.call_response_timeout(id, LONG).unwrap(), b"yours");
}

#[test]
fn abandoned_unanswered_and_doubly_answered_requests_keep_the_count_right() {
    let _wd =
        common::watchdog("abandoned_unanswered_and_doubly_answered_requests_keep_the_count_right");
    let name = unique_name("svc-abandon");
    let _c = Cleanup::new(&name);
    let mut server: Server = Options::new(&name).capacity(1).create().unwrap();
    let mut client = Client::open(&name).unwrap();
    let lost = client.request(b"never answered").unwrap();
    let dropped = server.try_recv_request().unwrap(); // the server keeps it, answers later
    assert!(client.try_request(b"next").is_err(), "capacity 1: full");
    assert!(client.abandon(lost));
    assert!(!client.abandon(lost), "only once");
    let id = client.request(b"next").unwrap();
    // The late answer to the abandoned request is dropped, not taken as ours.
    server.respond(dropped.reply_to(), b"late").unwrap();
    assert_eq!(client.try_recv_response(), Err(TryRecvError::Empty));
    let r = server.try_recv_request().unwrap();
    server.respond(r.reply_to(), b"on time").unwrap();
    let resp = client.recv_response_timeout(LONG).unwrap();
    assert_eq!((resp.id(), resp.data()), (id, &b"on time"[..]));
    // A second answer to the same request is dropped too.
    server.try_respond(r.reply_to(), b"again").unwrap();
    assert_eq!(client.in_flight(), 0);
    assert_eq!(client.try_recv_response(), Err(TryRecvError::Disconnected));
    // Another server handle cannot answer what this one took.
    let id = client.request(b"q").unwrap();
    let r = server.try_recv_request().unwrap();
    drop(server);
    let mut successor = Server::open(&name).unwrap();
    assert!(matches!(
        successor.respond(r.reply_to(), b"not mine"),
        Err(SendError::Disconnected(_))
    ));
    assert!(client.abandon(id));
}
