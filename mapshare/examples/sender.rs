//! Sends one typed record to `receiver`: the classic "shared record + named
//! mutex + data-ready message" recipe, with mapshare.
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

/// The record both programs share. `#[repr(C)]`, no padding, plain data:
/// the derive checks it, and `Shared` checks on open that both sides agree.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
#[bytemuck(crate = "mapshare::bytemuck")] // outside this workspace, the derive needs this path
struct Record {
    id: u64,
    sent_unix_ns: u64,
    text: FixedStr<236>, // 4 + 236 bytes: 256 in all, no padding
}

fn main() -> Result<(), Box<dyn Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example-record".into());
    let shared = Shared::<Record>::open_or_create(&name)?;
    let ack = Event::open_or_create(&format!("{name}.ack"))?; // auto-reset

    let text = "Grüße, Мир, 世界, مرحبا, नमस्ते, 🦀";
    let record = Record {
        id: 1,
        sent_unix_ns: SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64,
        // Lengths are in bytes, and a text that does not fit is an error, not a cut.
        text: FixedStr::new(text)?,
    };
    {
        let mut guard = match shared.lock_timeout(Duration::from_secs(5)) {
            Ok(guard) => guard,
            Err(LockTimeoutError::OwnerDied(guard)) => {
                eprintln!("sender: the previous lock holder died; overwriting its record");
                guard
            }
            Err(e) => return Err(e.to_string().into()),
        };
        guard.set(&record);
    } // unlocked here
    shared.notify(); // "data is ready"

    ack.wait_timeout(Duration::from_secs(10))
        .map_err(|_| "receiver did not answer within 10 s")?;
    println!("sender: delivered \"{}\" ({} bytes)", text, text.len());
    Ok(())
}
