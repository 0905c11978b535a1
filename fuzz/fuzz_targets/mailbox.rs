//! The mailbox's capacity check and its receive-side length check on
//! arbitrary bytes: the input is the payload offset (one byte, see
//! `split_offset`), a capacity (8 bytes, the header's layout size) and the
//! mailbox's payload (mutex, events, state, data), behind a valid header.
//!
//! Properties: never a panic or a hang; an accepted capacity fits the
//! payload; a message received is at most the capacity; a length above it
//! is reported as corrupt; after a successful send the next receive returns
//! exactly that message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapshare::{Fault, Fingerprint, Kind, Mailbox, TryRecvError};
use mapshare_fuzz::{segment_image_at, split_offset, u64_at, Scratch};

const DATA_OFFSET: u64 = 512; // mailbox.rs

fuzz_target!(|data: &[u8]| {
    let Some((offset, data)) = split_offset(data) else {
        return;
    };
    if data.len() < 8 {
        return;
    }
    let capacity = u64_at(data, 0);
    let payload = &data[8..];
    let s = Scratch::get();
    let img = segment_image_at(
        Kind::Mailbox,
        Fingerprint::new("mailbox", capacity, 1),
        offset,
        payload,
    );
    s.write(&img);
    if let Ok(m) = s.options::<Mailbox>().open() {
        let cap = m.max_message();
        assert_eq!(cap as u64, capacity);
        assert!(DATA_OFFSET + cap as u64 <= payload.len() as u64);
        let _ = m.is_full();
        match m.try_recv() {
            Ok(msg) => assert!(msg.len() <= cap),
            Err(TryRecvError::Fault(Fault::BadLength { len, max })) => {
                assert_eq!(max, cap as u64);
                assert!(len > max);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        let msg = b"fuzz";
        if m.try_send(msg).is_ok() {
            assert_eq!(m.try_recv().as_deref(), Ok(&msg[..]));
        }
        let _ = m.set_persistent(true);
    }
    s.remove();
});
