//! Channels and request/response services across two "hosts" (mount
//! namespaces with their own /dev/shm, see `common`): bridged one way,
//! senders or the server on A, the receiver or clients on B. Real
//! processes throughout, killed with SIGKILL where the test says so.
//!
//! Needs root (mount namespaces); fails, saying why, where it cannot run.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mapshare::{Client, Receiver, RecvError, RecvTimeoutError, SendError, Sender, Server};

/// Sender children number their messages from this base (one range per
/// sender, so the receiver checks each sender's order).
const ENV_BASE: &str = "MAPSHARE_ZENOH_BASE";
/// The senders' ranges: sender k sends `k * RANGE + i`.
const RANGE: u64 = 1 << 32;
/// What a killed bridge may have had in flight: taken from A's lane, in
/// TCP and Zenoh buffers, in B's FIFO (a generous bound).
const IN_FLIGHT_MAX: u64 = 1024;

/// A child in `host` playing `role` (see `child_role`).
fn role(host: &Host, role: &str, name: &str, count: u64, base: u64, ready: &Path) -> Child {
    paced(host, role, name, count, base, 0, ready)
}

/// As [`role`], a sender sleeping `pace_us` after each message.
fn paced(
    host: &Host,
    role: &str,
    name: &str,
    count: u64,
    base: u64,
    pace_us: u64,
    ready: &Path,
) -> Child {
    let mut c: Command = child(host, role, name, count, pace_us, ready);
    c.env(ENV_BASE, base.to_string()).spawn().unwrap()
}

/// The server's answer to `req`: its bytes reversed, then its length.
fn answer(req: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = req.iter().rev().copied().collect();
    v.extend((req.len() as u64).to_le_bytes());
    v
}

/// The roles a child plays (nothing when run as a plain test).
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ENV_ROLE) else {
        return;
    };
    let name = std::env::var(ENV_NAME).unwrap();
    let count: u64 = std::env::var(ENV_COUNT).unwrap().parse().unwrap();
    let base: u64 = std::env::var(ENV_BASE).map_or(0, |b| b.parse().unwrap());
    let pace = Duration::from_micros(std::env::var(ENV_PACE_US).unwrap().parse().unwrap());
    let ready = PathBuf::from(std::env::var(ENV_READY).unwrap());
    let until = Instant::now() + LIMIT;
    match role.as_str() {
        // `count` messages from `base` on; a receiver that has gone (the
        // bridge, killed) is waited for: each message is sent once it can.
        "chan-send" => {
            let mut tx = Sender::options(&name).open_or_create().unwrap();
            fs::write(&ready, b"").unwrap();
            for i in base..base + count {
                let m = message(i);
                loop {
                    assert!(Instant::now() < until, "timed out sending {i}");
                    match tx.send(&m) {
                        Ok(()) => break,
                        Err(SendError::Disconnected(_)) => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                if !pace.is_zero() {
                    std::thread::sleep(pace);
                }
            }
        }
        // Receives until its senders are gone (or `count` messages), each
        // sender's messages in order and never twice.
        "chan-recv" => {
            let mut rx = Receiver::options(&name).open_or_create().unwrap();
            fs::write(&ready, b"").unwrap();
            let mut next: std::collections::HashMap<u64, u64> = Default::default();
            let (mut received, mut lost) = (0u64, 0u64);
            let mut buf = Vec::new();
            let end = loop {
                assert!(Instant::now() < until, "timed out after {received}");
                if received == count {
                    break "count";
                }
                match rx.recv_into_timeout(&mut buf, Duration::from_millis(100)) {
                    Ok(_) => {
                        let i = check(&buf).expect("a message whose checksum holds");
                        let n = next.entry(i / RANGE).or_insert(i);
                        assert!(i >= *n, "message {i} after {n}: duplicate or reordered");
                        lost += i - *n;
                        *n = i + 1;
                        received += 1;
                    }
                    Err(RecvTimeoutError::Disconnected) => break "disconnected",
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(e) => panic!("{e}"),
                }
            };
            let last: Vec<String> = next.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            println!(
                "SEEN received={received} lost={lost} gap_at=0 gap_len=0\nEND {end} NEXT {}",
                last.join(",")
            );
        }
        // Answers `count` requests (0: until killed); "server-mute" takes
        // requests and never answers.
        "server" | "server-mute" => {
            let mut s = Server::options(&name).open_or_create().unwrap();
            fs::write(&ready, b"").unwrap();
            let mut n = 0;
            while count == 0 || n < count {
                let req = s.recv_request().unwrap();
                if role == "server" {
                    s.respond(req.reply_to(), &answer(req.data())).unwrap();
                }
                n += 1;
            }
        }
        // `count` calls, up to 3 in flight, each answer checked against
        // its request; a server seen gone ends it (`GONE`).
        "client" => {
            let mut c = Client::options(&name).open_or_create().unwrap();
            fs::write(&ready, b"").unwrap();
            let mut flight = std::collections::HashMap::new();
            let (mut sent, mut ok) = (0u64, 0u64);
            let end = loop {
                assert!(Instant::now() < until, "timed out after {ok} answers");
                if ok == count {
                    break "done";
                }
                if sent < count && c.in_flight() < 3 {
                    let m = message(base + sent);
                    match c.request(&m) {
                        Ok(id) => {
                            flight.insert(id, m);
                            sent += 1;
                            continue;
                        }
                        Err(SendError::Disconnected(_)) => break "gone",
                        Err(e) => panic!("{e}"),
                    }
                }
                match c.recv_response() {
                    Ok(r) => {
                        let m = flight
                            .remove(&r.id())
                            .expect("an answer to a request in flight");
                        assert_eq!(r.data(), answer(&m), "the answer to request {}", r.id());
                        ok += 1;
                    }
                    Err(RecvError::Disconnected) => break "gone",
                    Err(e) => panic!("{e}"),
                }
            };
            println!("CALLS ok={ok} END {end}");
            // Then, if told, one more request once the file appears (the
            // same client, so the service stays alive meanwhile).
            if let Ok(go) = std::env::var(ENV_GO) {
                wait_file(Path::new(&go));
                let after = match c.request(b"after") {
                    Err(SendError::Disconnected(_)) => "gone",
                    Ok(_) => "sent",
                    Err(e) => panic!("{e}"),
                };
                println!("AFTER {after}");
            }
        }
        other => panic!("unknown role {other}"),
    }
    std::io::stdout().flush().unwrap();
    std::process::exit(CHILD_OK);
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.split_whitespace()
        .skip_while(|w| *w != key)
        .nth(1)
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

/// B listening with `b_flags`, A connecting with `a_flags`.
fn bridges(pair: &Pair, a_flags: &[&str], b_flags: &[&str]) -> (Bridge, Bridge) {
    let bb = Bridge::start_with(
        &pair.b,
        &[],
        b_flags,
        "--listen",
        pair.port,
        pair.dir.join("b.log"),
    );
    let ba = start_a(pair, a_flags);
    (ba, bb)
}

fn start_a(pair: &Pair, a_flags: &[&str]) -> Bridge {
    let port = pair.relay.as_ref().map_or(pair.port, |r| r.port);
    Bridge::start_with(
        &pair.a,
        &[],
        a_flags,
        "--connect",
        port,
        pair.dir.join("a.log"),
    )
}

#[test]
fn channel_senders_on_a_reach_the_receiver_on_b_in_order() {
    const N: u64 = 10_000;
    let pair = Pair::new("chan");
    let name = unique("chan");
    let (ba, bb) = bridges(
        &pair,
        &["--channel-out", &name, "--senders", "2"],
        &["--channel-in", &name],
    );
    let rx_ready = pair.dir.join("rx.ready");
    let rx = role(&pair.b, "chan-recv", &name, u64::MAX, 0, &rx_ready);
    wait_file(&rx_ready);
    let started = Instant::now();
    let senders: Vec<Child> = (0..2)
        .map(|k| {
            role(
                &pair.a,
                "chan-send",
                &name,
                N,
                k * RANGE,
                &pair.dir.join(format!("tx{k}.ready")),
            )
        })
        .collect();
    for s in senders {
        checked(s.wait_with_output().unwrap(), "sender");
    }
    // The receiver ends by itself: the senders' end crosses the link.
    let out = checked(rx.wait_with_output().unwrap(), "receiver");
    let seen = parse_seen(&out);
    eprintln!(
        "{} messages from 2 senders in {:?}: {seen:?}",
        2 * N,
        started.elapsed()
    );
    let text = format!("bridge A: {}\nbridge B: {}", ba.text(), bb.text());
    assert_eq!((seen.received, seen.lost), (2 * N, 0), "{out}\n{text}");
    assert_eq!(field(&out, "END"), "disconnected", "{out}");
    let (a, b) = (ba.stop(), bb.stop());
    assert_eq!(counts(&a, &name), (2 * N, 0), "{a}");
    assert_eq!(counts(&b, &name), (0, 2 * N), "{b}");
    pair.assert_clean();
}

#[test]
fn a_receiver_away_longer_than_zenohs_lease_loses_nothing() {
    // Zenoh has no back-pressure from a subscriber: without the bridge's
    // window, B's bridge would block Zenoh's receive task while B has no
    // receiver, and Zenoh would close the link after its lease (10 s),
    // losing what it buffered. With it, A's senders are held back instead.
    const N: u64 = 20_000;
    let pair = Pair::new("chanaway");
    let name = unique("chanaway");
    let (ba, bb) = bridges(&pair, &["--channel-out", &name], &["--channel-in", &name]);
    let tx = role(
        &pair.a,
        "chan-send",
        &name,
        N,
        0,
        &pair.dir.join("tx.ready"),
    );
    std::thread::sleep(Duration::from_secs(12));
    let rx_ready = pair.dir.join("rx.ready");
    let rx = role(&pair.b, "chan-recv", &name, u64::MAX, 0, &rx_ready);
    checked(tx.wait_with_output().unwrap(), "sender");
    let out = checked(rx.wait_with_output().unwrap(), "receiver");
    let seen = parse_seen(&out);
    let text = format!("bridge A: {}\nbridge B: {}", ba.text(), bb.text());
    assert_eq!((seen.received, seen.lost), (N, 0), "{out}\n{text}");
    assert_eq!(field(&out, "END"), "disconnected", "{out}");
    let (a, b) = (ba.stop(), bb.stop());
    assert_eq!(counts(&a, &name), (N, 0), "{a}");
    assert_eq!(counts(&b, &name), (0, N), "{b}");
    pair.assert_clean();
}

#[test]
fn killed_sending_bridge_is_seen_by_the_receiver_and_a_restart_resumes() {
    const N: u64 = 6000;
    let pair = Pair::new("chankill");
    let name = unique("chankill");
    let out_flags = ["--channel-out", name.as_str()];
    let (ba, bb) = bridges(&pair, &out_flags, &["--channel-in", &name]);
    let rx_ready = pair.dir.join("rx1.ready");
    let rx1 = role(&pair.b, "chan-recv", &name, u64::MAX, 0, &rx_ready);
    wait_file(&rx_ready);
    let tx_ready = pair.dir.join("tx.ready");
    let tx = paced(&pair.a, "chan-send", &name, N, 0, 500, &tx_ready);
    wait_file(&tx_ready);
    // A third of the way, bridge A (the receiver of A's channel, the
    // sender of B's) dies: B's receiver must see its sender gone, not wait
    // forever.
    std::thread::sleep(Duration::from_secs(1));
    ba.kill();
    let out1 = checked(rx1.wait_with_output().unwrap(), "first receiver");
    assert_eq!(
        field(&out1, "END"),
        "disconnected",
        "{out1}\nbridge B: {}",
        bb.text()
    );
    let first = parse_seen(&out1);
    assert!(first.received > 0 && first.received < N, "{out1}");
    // A new bridge on A takes the channel over; what A's sender sent
    // meanwhile waited in its lane, and a new receiver on B gets the rest.
    let ba = start_a(&pair, &out_flags);
    let rx_ready = pair.dir.join("rx2.ready");
    let rx2 = role(&pair.b, "chan-recv", &name, u64::MAX, 0, &rx_ready);
    checked(tx.wait_with_output().unwrap(), "sender");
    let out2 = checked(rx2.wait_with_output().unwrap(), "second receiver");
    let second = parse_seen(&out2);
    let text = format!("bridge A: {}\nbridge B: {}", ba.text(), bb.text());
    eprintln!("first: {out1}second: {out2}{text}");
    eprintln!(
        "sending bridge killed: lost {} of {N}",
        N - first.received - second.received
    );
    assert_eq!(field(&out2, "END"), "disconnected", "{out2}");
    // Each receiver saw its messages in order (the child asserts it); the
    // stream resumed to its last message; what the killed bridge had in
    // flight (taken from A's lane, not yet sent on B) is lost, in one gap.
    assert_eq!(field(&out2, "NEXT"), format!("0:{N}"), "{out2}");
    let lost = N - first.received - second.received;
    assert!(lost <= IN_FLIGHT_MAX, "lost {lost}: {text}");
    let (a, b) = (ba.stop(), bb.stop());
    assert_eq!(counts(&a, &name).1, 0, "{a}");
    assert_eq!(counts(&b, &name).0, 0, "{b}");
    pair.assert_clean();
}

fn two_sending_hosts(test: &str, lanes: &str) {
    let pair = Pair::new(test);
    let name = unique(test);
    let c = Host::new();
    let (ba, bb) = bridges(
        &pair,
        &["--channel-out", &name],
        &["--channel-in", &name, "--senders", lanes],
    );
    let bc = Bridge::start_with(
        &c,
        &[],
        &["--channel-out", &name],
        "--connect",
        pair.port,
        pair.dir.join("c.log"),
    );
    let rx_ready = pair.dir.join("rx.ready");
    let rx = role(&pair.b, "chan-recv", &name, u64::MAX, 0, &rx_ready);
    wait_file(&rx_ready);
    // Both paced, so that their streams overlap.
    let ta = paced(
        &pair.a,
        "chan-send",
        &name,
        1000,
        0,
        500,
        &pair.dir.join("ta.ready"),
    );
    let tc = paced(
        &c,
        "chan-send",
        &name,
        3000,
        RANGE,
        500,
        &pair.dir.join("tc.ready"),
    );
    checked(ta.wait_with_output().unwrap(), "sender on A");
    checked(tc.wait_with_output().unwrap(), "sender on C");
    let out = checked(rx.wait_with_output().unwrap(), "receiver");
    let seen = parse_seen(&out);
    let text = format!(
        "bridge A: {}\nbridge B: {}\nbridge C: {}",
        ba.text(),
        bb.text(),
        bc.text()
    );
    assert_eq!((seen.received, seen.lost), (4000, 0), "{out}\n{text}");
    assert_eq!(field(&out, "END"), "disconnected", "{out}");
    if lanes == "1" {
        assert!(
            bb.text().contains("cannot take a sender lane"),
            "one waited: {text}"
        );
    }
    let (a, b, cc) = (ba.stop(), bb.stop(), bc.stop());
    assert_eq!(counts(&a, &name), (1000, 0), "{a}");
    assert_eq!(counts(&cc, &name), (3000, 0), "{cc}");
    assert_eq!(counts(&b, &name), (0, 4000), "{b}");
    assert_eq!(c.shm(), Vec::<String>::new(), "host C /dev/shm");
    pair.assert_clean();
}

#[test]
fn senders_on_two_hosts_feed_one_receiver_each_ended_on_its_own() {
    // Hosts A and C both send into B's channel: B's bridge takes a lane per
    // sending bridge, so A's senders ending does not end C's stream, and
    // B's receiver sees its senders gone only when both have ended.
    two_sending_hosts("twoout", "2");
}

#[test]
fn a_sending_host_without_a_lane_waits_and_the_others_go_on() {
    // One lane on B for two sending hosts: C's messages wait (its window
    // holds C back) until A's stream ends and hands its lane over; nothing
    // is lost, and the receiver never sees its senders gone in between.
    two_sending_hosts("onelane", "1");
}

#[test]
fn channel_stream_survives_a_short_link_cut_unseen() {
    const N: u64 = 6000;
    let pair = Pair::with_relay("chancut");
    let name = unique("chancut");
    let (ba, bb) = bridges(&pair, &["--channel-out", &name], &["--channel-in", &name]);
    let rx_ready = pair.dir.join("rx.ready");
    let rx = role(&pair.b, "chan-recv", &name, u64::MAX, 0, &rx_ready);
    wait_file(&rx_ready);
    let tx_ready = pair.dir.join("tx.ready");
    let tx = paced(&pair.a, "chan-send", &name, N, 0, 500, &tx_ready);
    wait_file(&tx_ready);
    std::thread::sleep(Duration::from_secs(1));
    let relay = pair.relay.as_ref().unwrap();
    relay.cut();
    std::thread::sleep(Duration::from_millis(500));
    relay.restore();
    checked(tx.wait_with_output().unwrap(), "sender");
    // One receiver to the end: the cut, shorter than the grace, was not
    // seen as the senders gone; what was in flight is lost, in one gap.
    let out = checked(rx.wait_with_output().unwrap(), "receiver");
    let seen = parse_seen(&out);
    let text = format!("bridge A: {}\nbridge B: {}", ba.text(), bb.text());
    eprintln!("{out}{text}");
    eprintln!("link cut 500 ms: lost {} of {N}", seen.lost);
    assert_eq!(field(&out, "END"), "disconnected", "{out}");
    assert_eq!(field(&out, "NEXT"), format!("0:{N}"), "{out}\n{text}");
    assert_eq!(seen.received + seen.lost, N, "{out}");
    assert!(seen.lost <= IN_FLIGHT_MAX, "lost {}: {text}", seen.lost);
    assert!(!bb.text().contains("is gone"), "{text}");
    let (a, b) = (ba.stop(), bb.stop());
    assert_eq!(counts(&a, &name).1, 0, "{a}");
    assert_eq!(counts(&b, &name).0, 0, "{b}");
    pair.assert_clean();
}

#[test]
fn cli_request_on_b_is_answered_by_cli_serve_on_a() {
    let pair = Pair::new("svc-cli");
    let name = unique("svc-cli");
    let (ba, bb) = bridges(&pair, &["--serve", &name], &["--call", &name]);
    let mut serve = pair
        .a
        .cmd(cli())
        .args(["serve", &name, "--", "tr", "a-z", "A-Z"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for text in ["hello across hosts", "grüße, 🦀", "-n"] {
        let out = pair
            .b
            .cmd(cli())
            .args(["request", &name, text, "--timeout", "60"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "request {text:?}: {}\nbridge A: {}\nbridge B: {}",
            String::from_utf8_lossy(&out.stderr),
            ba.text(),
            bb.text()
        );
        // `tr` upper-cases ASCII bytes and keeps the rest; `request` adds a
        // newline.
        let want = format!("{}\n", text.to_ascii_uppercase());
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    }
    let (a, b) = (ba.stop(), bb.stop());
    assert_eq!(counts(&a, &name), (3, 3), "{a}");
    assert_eq!(counts(&b, &name), (3, 3), "{b}");
    // Ctrl-C, as an operator would: `serve` leaves and removes the service.
    let pid = rustix::process::Pid::from_child(&serve);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let st = serve.wait().unwrap();
    assert_eq!(st.code(), Some(130), "serve ended by Ctrl-C: {st}");
    pair.assert_clean();
}

#[test]
fn clients_on_b_call_the_server_on_a_with_checked_answers() {
    const N: u64 = 1000;
    let pair = Pair::new("svc");
    let name = unique("svc");
    let (ba, bb) = bridges(&pair, &["--serve", &name], &["--call", &name]);
    let srv_ready = pair.dir.join("srv.ready");
    let srv = role(&pair.a, "server", &name, 2 * N, 0, &srv_ready);
    wait_file(&srv_ready);
    let started = Instant::now();
    let clients: Vec<Child> = (0..2)
        .map(|k| {
            role(
                &pair.b,
                "client",
                &name,
                N,
                k * RANGE,
                &pair.dir.join(format!("c{k}.ready")),
            )
        })
        .collect();
    for c in clients {
        let out = checked(c.wait_with_output().unwrap(), "client");
        assert_eq!(field(&out, "END"), "done", "{out}");
        assert_eq!(field(&out, "CALLS"), format!("ok={N}"), "{out}");
    }
    checked(srv.wait_with_output().unwrap(), "server");
    eprintln!("{} calls from 2 clients in {:?}", 2 * N, started.elapsed());
    let (a, b) = (ba.stop(), bb.stop());
    assert_eq!(counts(&a, &name), (2 * N, 2 * N), "{a}");
    assert_eq!(counts(&b, &name), (2 * N, 2 * N), "{b}");
    pair.assert_clean();
}

/// A client on B with a request in flight to a server on A that never
/// answers; then `strike` (a kill on A): the client must see the server
/// gone. Then a live server (and bridge) on A again: calls from B work.
fn call_into_a_fault(test: &str, strike: impl FnOnce(&Pair, &mut Child, &mut Option<Bridge>)) {
    let pair = Pair::new(test);
    let name = unique(test);
    let serve_flags = ["--serve", name.as_str()];
    let (ba, bb) = bridges(&pair, &serve_flags, &["--call", &name]);
    let mut ba = Some(ba);
    let srv_ready = pair.dir.join("mute.ready");
    let mut mute = role(&pair.a, "server-mute", &name, 0, 0, &srv_ready);
    wait_file(&srv_ready);
    let c_ready = pair.dir.join("c1.ready");
    let c1 = role(&pair.b, "client", &name, 1, 0, &c_ready);
    wait_file(&c_ready);
    std::thread::sleep(Duration::from_millis(300)); // the request reaches the mute server
    strike(&pair, &mut mute, &mut ba);
    let out = checked(c1.wait_with_output().unwrap(), "client");
    assert_eq!(field(&out, "END"), "gone", "{out}\nbridge B: {}", bb.text());
    // A live server on A again (and its bridge): calls from B work again.
    let _ = mute.kill();
    let _ = mute.wait();
    let ba = ba.unwrap_or_else(|| start_a(&pair, &serve_flags));
    let srv_ready = pair.dir.join("srv.ready");
    let srv = role(&pair.a, "server", &name, 0, 0, &srv_ready);
    wait_file(&srv_ready);
    let c_ready = pair.dir.join("c2.ready");
    let out = checked(
        role(&pair.b, "client", &name, 20, 0, &c_ready)
            .wait_with_output()
            .unwrap(),
        "client",
    );
    assert_eq!(
        field(&out, "END"),
        "done",
        "{out}\nbridge A: {}\nbridge B: {}",
        ba.text(),
        bb.text()
    );
    let mut srv = srv;
    let _ = srv.kill();
    let _ = srv.wait();
    ba.stop();
    bb.stop();
    pair.assert_clean();
}

#[test]
fn killed_server_on_a_is_seen_gone_by_clients_on_b() {
    call_into_a_fault("svckill", |_, mute, _| {
        mute.kill().unwrap();
    });
}

#[test]
fn killed_serving_bridge_is_seen_gone_by_clients_on_b() {
    call_into_a_fault("svcbridge", |_, _, ba| {
        ba.take().unwrap().kill();
    });
}

#[test]
fn an_idle_call_side_gives_the_server_role_up_after_the_grace() {
    // Nothing in flight when A's bridge dies (so no query ends to say so):
    // the token's removal, after the grace, makes B give the role up; the
    // client's next request then finds the server gone (`Disconnected`).
    let pair = Pair::new("svcidle");
    let name = unique("svcidle");
    let (ba, bb) = bridges(
        &pair,
        &["--serve", &name],
        &["--call", &name, "--grace", "1"],
    );
    let srv = role(&pair.a, "server", &name, 0, 0, &pair.dir.join("srv.ready"));
    let go = pair.dir.join("go");
    let c = child(&pair.b, "client", &name, 5, 0, &pair.dir.join("c.ready"))
        .env(ENV_GO, &go)
        .spawn()
        .unwrap();
    let until = Instant::now() + LIMIT;
    while counts_of(&pair, &name) < 5 {
        assert!(
            Instant::now() < until,
            "the calls never came through: {}",
            bb.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ba.kill();
    while !bb.text().contains("local clients see the server gone\n") {
        assert!(
            Instant::now() < until,
            "the role was never given up: {}",
            bb.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::write(&go, b"").unwrap();
    let out = checked(c.wait_with_output().unwrap(), "client");
    assert_eq!(field(&out, "END"), "done", "{out}");
    assert_eq!(
        field(&out, "AFTER"),
        "gone",
        "{out}\nbridge B: {}",
        bb.text()
    );
    let mut srv = srv;
    let _ = srv.kill();
    let _ = srv.wait();
    bb.stop();
    // A's bridge and server were both killed: what they left on A is for
    // `gc`, as after any crash.
    let gc = pair.a.cmd(cli()).arg("gc").output().unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    pair.assert_clean();
}

/// Requests sent through B's service `name` so far (`mapshare info`).
fn counts_of(pair: &Pair, name: &str) -> u64 {
    let out = pair
        .b
        .cmd(cli())
        .args(["--format", "json", "info", name])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["queue"]["clients"].as_array().map_or(0, |c| {
        c.iter().filter_map(|x| x["requests_sent"].as_u64()).sum()
    })
}

#[test]
fn a_channel_refuses_a_receiver_side_of_another_size_naming_both() {
    let pair = Pair::new("chanmeta");
    let name = unique("chanmeta");
    let (ba, bb) = bridges(
        &pair,
        &["--channel-out", &name, "--max-message", "1024"],
        &["--channel-in", &name, "--max-message", "2048"],
    );
    // Messages sent on A wait in its lane: nothing crosses.
    let tx = role(
        &pair.a,
        "chan-send",
        &name,
        5,
        0,
        &pair.dir.join("tx.ready"),
    );
    checked(tx.wait_with_output().unwrap(), "sender");
    let until = Instant::now() + LIMIT;
    while !ba.text().contains("refusing to send") {
        assert!(Instant::now() < until, "no refusal: {}", ba.text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let said = ba.text();
    assert!(
        said.contains("max message 1024") && said.contains("max message 2048"),
        "both layouts named: {said}"
    );
    std::thread::sleep(Duration::from_millis(500)); // time to send, were it wrong
    let (a, b) = (ba.stop(), bb.stop());
    assert_eq!(counts(&a, &name), (0, 0), "{a}");
    assert_eq!(counts(&b, &name), (0, 0), "{b}");
    pair.assert_clean();
}
