//! A request/response service and its clients, as two programs in one:
//!
//! ```text
//! cargo run --example service -- serve calc &   # one thread serves calc and stops on calc-stop
//! cargo run --example service -- call calc 6 7  # prints 6 x 7 = 42
//! cargo run --example service -- stop calc
//! ```
//!
//! The server waits in a `WaitSet` on two sources at once: its requests
//! and a stop event, without a thread for each and without polling.

use std::time::Duration;

use mapshare::{Client, Event, Server, WaitSet, Waitable};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn serve(name: &str) -> Result<()> {
    let mut server = Server::open_or_create(name)?;
    let stop = Event::open_or_create(&format!("{name}-stop"))?;
    let mut set = WaitSet::new();
    let mut served = 0;
    eprintln!("serving {name}");
    loop {
        let ready = set.wait(&[&server as &dyn Waitable, &stop]);
        if ready.contains(1) {
            eprintln!("stopped after {served} requests");
            return Ok(());
        }
        while let Ok(req) = server.try_recv_request() {
            let text = String::from_utf8_lossy(req.data()).into_owned();
            let answer = match text
                .split_once(' ')
                .map(|(a, b)| (a.parse::<i64>(), b.parse::<i64>()))
            {
                Some((Ok(a), Ok(b))) => format!("{a} x {b} = {}", a.saturating_mul(b)),
                _ => format!("cannot multiply {text:?}"),
            };
            // A client that has gone is no error: its answer is dropped.
            let _ = server.respond(req.reply_to(), answer.as_bytes());
            served += 1;
        }
    }
}

fn call(name: &str, a: &str, b: &str) -> Result<()> {
    let mut client = Client::open_or_create(name)?;
    let answer = client.call_timeout(format!("{a} {b}").as_bytes(), Duration::from_secs(10))?;
    println!("{}", String::from_utf8_lossy(&answer));
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", name] => serve(name),
        ["call", name, a, b] => call(name, a, b),
        ["stop", name] => {
            Event::open(&format!("{name}-stop"))?.notify();
            Ok(())
        }
        _ => Err("usage: service serve NAME | call NAME A B | stop NAME".into()),
    }
}
