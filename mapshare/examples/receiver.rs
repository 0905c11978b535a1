//! Waits for the record `sender` writes, prints it and acknowledges it.
//!
//! Run the two in either order, in two shells:
//!
//! ```text
//! cargo run --example receiver -- my-record
//! cargo run --example sender -- my-record
//! ```

use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mapshare::{Event, FixedStr, LockTimeoutError, Pod, Shared, Zeroable};

/// Must match the sender's record: same name, size and alignment, or
/// `open` fails with a `LayoutMismatch` naming both.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
#[bytemuck(crate = "mapshare::bytemuck")] // outside this workspace, the derive needs this path
struct Record {
    id: u64,
    sent_unix_ns: u64,
    text: FixedStr<236>,
}

fn main() -> Result<(), Box<dyn Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example-record".into());
    let shared = Shared::<Record>::open_or_create(&name)?;
    let ack = Event::open_or_create(&format!("{name}.ack"))?; // auto-reset

    shared
        .wait_timeout(Duration::from_secs(10))
        .map_err(|_| "no record within 10 s")?;
    let record = match shared.lock_timeout(Duration::from_secs(5)) {
        Ok(guard) => guard.get(),
        Err(LockTimeoutError::OwnerDied(guard)) => {
            eprintln!("receiver: the writer died holding the lock; the record may be torn");
            guard.get()
        }
        Err(e) => return Err(e.to_string().into()),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    // Bytes from another process are checked before use: length and UTF-8.
    let text = record.text.as_str()?;
    println!(
        "receiver: record {} says \"{}\" ({} bytes, {} chars), {} us after it was sent",
        record.id,
        text,
        text.len(),
        text.chars().count(),
        now.saturating_sub(record.sent_unix_ns) / 1000
    );
    ack.notify();
    Ok(())
}
