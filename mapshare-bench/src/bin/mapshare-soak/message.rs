//! The messages: what producers send and how every delivery is checked
//! (module docs of `main`, "Messages").

use crate::setup::{mix, HDR, MAGIC, MAX_MESSAGE};

/// A checked message's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Msg {
    pub(crate) producer: u32,
    pub(crate) inc: u64,
    pub(crate) seq: u64,
    pub(crate) pos: u64,
}

pub(crate) fn msg_seed(producer: u32, inc: u64, seq: u64) -> u64 {
    mix((u64::from(producer) << 56) ^ (inc << 32) ^ seq ^ 0x5bd1_e995)
}

pub(crate) fn checksum(m: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ m.len() as u64;
    let mut eat = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(a)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 29;
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    eat(&m[..40]);
    eat(&m[HDR..]);
    mix(h)
}

pub(crate) fn make_message(buf: &mut Vec<u8>, producer: u32, inc: u64, seq: u64, pos: u64) {
    let seed = msg_seed(producer, inc, seq);
    let plen = (seed % (MAX_MESSAGE - HDR + 1) as u64) as usize;
    buf.clear();
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&producer.to_le_bytes());
    buf.extend_from_slice(&inc.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&pos.to_le_bytes());
    buf.extend_from_slice(&(plen as u32).to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&[0u8; 8]);
    let mut x = seed;
    while buf.len() < HDR + plen {
        x = mix(x.wrapping_add(0x9e37_79b9_7f4a_7c15));
        let n = (HDR + plen - buf.len()).min(8);
        buf.extend_from_slice(&x.to_le_bytes()[..n]);
    }
    let sum = checksum(buf);
    buf[40..48].copy_from_slice(&sum.to_le_bytes());
}

/// Checks a message copied out of shared memory; `None` if corrupt.
pub(crate) fn check_message(m: &[u8]) -> Option<Msg> {
    if m.len() < HDR {
        return None;
    }
    let u32_at = |o: usize| u32::from_le_bytes(m[o..o + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |o: usize| u64::from_le_bytes(m[o..o + 8].try_into().unwrap_or([0; 8]));
    let plen = u32_at(32) as usize;
    if u32_at(0) != MAGIC || plen != m.len() - HDR || u64_at(40) != checksum(m) {
        return None;
    }
    Some(Msg {
        producer: u32_at(4),
        inc: u64_at(8),
        seq: u64_at(16),
        pos: u64_at(24),
    })
}
