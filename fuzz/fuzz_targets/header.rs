//! The header validator on arbitrary bytes: `decode` never panics, and what
//! it accepts re-encodes to exactly the bytes it read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapshare::layout::header::{decode, encode, FIXED_LEN};

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(h) => {
            assert!(data.len() >= FIXED_LEN);
            assert_eq!(encode(&h)[..], data[..FIXED_LEN], "re-encoding differs");
            assert!(h.payload_offset + h.payload_len <= h.total_len);
            assert!(h.layout.size() <= h.payload_len);
            let _ = format!("{h:?} {} {}", h.kind, h.layout);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
