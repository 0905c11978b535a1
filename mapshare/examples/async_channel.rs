//! A tokio task reads a channel that another process writes (feature
//! `tokio`):
//!
//! ```sh
//! cargo run --features tokio --example async_channel -- recv jobs &
//! cargo run --features tokio --example async_channel -- send jobs
//! ```
//!
//! The receiver prints each message and exits when the sender has gone.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (role, name) = match args.as_slice() {
        [role, name] => (role.as_str(), name.as_str()),
        _ => return Err("usage: async_channel recv|send NAME".into()),
    };
    match role {
        "recv" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut rx = mapshare::Receiver::open_or_create(name)?;
                println!("waiting ({} backend)", mapshare::async_backend());
                let mut n = 0;
                // Err(Disconnected) once every sender has gone.
                while let Ok(job) = rx.recv_async().await {
                    println!("{}", String::from_utf8_lossy(&job));
                    n += 1;
                }
                println!("{n} messages; the sender has gone");
                Ok::<(), Box<dyn Error>>(())
            })
        }
        "send" => {
            // The receiver may start first or second: wait for its channel.
            let mut tx = loop {
                match mapshare::Sender::open(name) {
                    Ok(tx) => break tx,
                    Err(mapshare::SegmentError::NotFound(_)) => {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            for i in 1..=3 {
                let msg = format!("job {i}");
                // A failed send hands the message back: report it as text.
                tx.send(msg.as_bytes()).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        _ => Err("usage: async_channel recv|send NAME".into()),
    }
}
