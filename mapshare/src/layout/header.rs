//! The segment header: the first [`HEADER_LEN`] bytes of every segment.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "MAPSHARE"
//!      8     4  format version (LAYOUT_VERSION)
//!     12     4  kind (layout::Kind)
//!     16     4  state: STATE_INIT, then STATE_READY, stored last with Release
//!     20     4  flags: FLAG_PERSISTENT, FLAG_UNLINKED
//!     24     8  total length of the segment (must equal the file size)
//!     32     8  payload offset (>= HEADER_LEN, a multiple of 4096: control words stay aligned)
//!     40     8  payload length
//!     48     8  payload layout: size
//!     56     8  payload layout: alignment (a power of two, <= 4096)
//!     64     4  creator pid (informational)
//!     68     4  registry slot count (REGISTRY_SLOTS)
//!     72     8  creation time, ms since the Unix epoch (informational)
//!     80     4  payload layout: type name length
//!     84     4  reserved, zero
//!     88   104  payload layout: type name, UTF-8, zero-padded
//!    192    64  reserved, zero
//!    256  3840  registry: REGISTRY_SLOTS slots of SLOT_LEN bytes
//!   4096        payload
//! ```
//!
//! All integers are native-endian: a segment never leaves its machine.
//! [`decode`] is pure and total: any bytes give a [`Header`] or a
//! [`HeaderError`], never a panic. It is the fuzzed entry point.

use crate::error::HeaderError;
use crate::layout::{Fingerprint, Kind, FINGERPRINT_NAME_MAX};

/// The magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"MAPSHARE";
/// The format version this library reads and writes.
pub const LAYOUT_VERSION: u32 = 2;
/// Bytes [`decode`] reads: the fixed part, before the registry.
pub const FIXED_LEN: usize = 256;
/// Header plus registry; the payload starts at or after this offset.
pub const HEADER_LEN: usize = 4096;
/// Offset of the registry.
pub const REGISTRY_OFFSET: usize = FIXED_LEN;
/// Bytes per registry slot.
pub const SLOT_LEN: usize = 16;
/// Number of registry slots: at most this many handles attached at once.
pub const REGISTRY_SLOTS: usize = (HEADER_LEN - REGISTRY_OFFSET) / SLOT_LEN;
/// Largest segment we accept (256 TiB), so size arithmetic never overflows.
pub const MAX_SEGMENT_LEN: u64 = 1 << 48;

/// Offset of the state word.
pub const OFF_STATE: usize = 16;
/// Offset of the flags word.
pub const OFF_FLAGS: usize = 20;

/// State: the creator is still writing.
pub const STATE_INIT: u32 = 0;
/// State: initialised; published last, with Release.
pub const STATE_READY: u32 = 0x5245_4459; // "REDY"
/// Flag: the segment outlives its last process (until `unlink`).
pub const FLAG_PERSISTENT: u32 = 1;
/// Flag: the name has been (or is being) unlinked; openers must retry.
pub const FLAG_UNLINKED: u32 = 2;
const KNOWN_FLAGS: u32 = FLAG_PERSISTENT | FLAG_UNLINKED;

const OFF_NAME_LEN: usize = 80;
const OFF_NAME: usize = 88;

const _: () = assert!(OFF_NAME + FINGERPRINT_NAME_MAX == 192);
const _: () = assert!(REGISTRY_SLOTS == 240);
const _: () = assert!(REGISTRY_OFFSET + REGISTRY_SLOTS * SLOT_LEN == HEADER_LEN);

/// A decoded, validated header (a copy: nothing here points into shared memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// What the segment holds.
    pub kind: Kind,
    /// `STATE_INIT` or `STATE_READY`.
    pub state: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Whole segment length in bytes.
    pub total_len: u64,
    /// Where the payload starts.
    pub payload_offset: u64,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// The payload's layout.
    pub layout: Fingerprint,
    /// PID of the creating process (informational).
    pub creator_pid: u32,
    /// Creation time in ms since the Unix epoch (informational).
    pub created_unix_ms: u64,
}

impl Header {
    /// Whether the creator finished.
    pub fn is_ready(&self) -> bool {
        self.state == STATE_READY
    }

    /// Whether the segment outlives its processes.
    pub fn is_persistent(&self) -> bool {
        self.flags & FLAG_PERSISTENT != 0
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_ne_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(a)
}

/// Encodes the fixed part of a header.
pub fn encode(h: &Header) -> [u8; FIXED_LEN] {
    let mut b = [0u8; FIXED_LEN];
    b[0..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&LAYOUT_VERSION.to_ne_bytes());
    b[12..16].copy_from_slice(&(h.kind as u32).to_ne_bytes());
    b[16..20].copy_from_slice(&h.state.to_ne_bytes());
    b[20..24].copy_from_slice(&h.flags.to_ne_bytes());
    b[24..32].copy_from_slice(&h.total_len.to_ne_bytes());
    b[32..40].copy_from_slice(&h.payload_offset.to_ne_bytes());
    b[40..48].copy_from_slice(&h.payload_len.to_ne_bytes());
    b[48..56].copy_from_slice(&h.layout.size().to_ne_bytes());
    b[56..64].copy_from_slice(&h.layout.align().to_ne_bytes());
    b[64..68].copy_from_slice(&h.creator_pid.to_ne_bytes());
    b[68..72].copy_from_slice(&(REGISTRY_SLOTS as u32).to_ne_bytes());
    b[72..80].copy_from_slice(&h.created_unix_ms.to_ne_bytes());
    let name = h.layout.name().as_bytes();
    let n = name.len().min(FINGERPRINT_NAME_MAX);
    b[OFF_NAME_LEN..OFF_NAME_LEN + 4].copy_from_slice(&(n as u32).to_ne_bytes());
    b[OFF_NAME..OFF_NAME + n].copy_from_slice(&name[..n]);
    b
}

/// Decodes and validates the fixed part of a header from bytes copied out
/// of a segment. `bytes` may be of any length; only the first
/// [`FIXED_LEN`] are read.
///
/// # Errors
/// A [`HeaderError`] naming the first thing wrong.
pub fn decode(bytes: &[u8]) -> Result<Header, HeaderError> {
    if bytes.len() < FIXED_LEN {
        return Err(HeaderError::TooShort {
            len: bytes.len() as u64,
        });
    }
    let b = &bytes[..FIXED_LEN];
    if b[0..8] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = u32_at(b, 8);
    if version != LAYOUT_VERSION {
        return Err(HeaderError::VersionMismatch {
            found: version,
            expected: LAYOUT_VERSION,
        });
    }
    let kind_raw = u32_at(b, 12);
    let kind = Kind::from_u32(kind_raw).ok_or(HeaderError::UnknownKind(kind_raw))?;
    let state = u32_at(b, OFF_STATE);
    if state != STATE_INIT && state != STATE_READY {
        return Err(HeaderError::BadField { what: "state" });
    }
    let flags = u32_at(b, OFF_FLAGS);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(HeaderError::BadField { what: "flags" });
    }
    let total_len = u64_at(b, 24);
    let payload_offset = u64_at(b, 32);
    let payload_len = u64_at(b, 40);
    if total_len < HEADER_LEN as u64 || total_len > MAX_SEGMENT_LEN {
        return Err(HeaderError::BadSize {
            what: "total length out of range",
        });
    }
    if payload_offset < HEADER_LEN as u64 || payload_offset % 4096 != 0 {
        return Err(HeaderError::BadSize {
            what: "payload offset",
        });
    }
    match payload_offset.checked_add(payload_len) {
        Some(end) if end <= total_len => {}
        _ => {
            return Err(HeaderError::BadSize {
                what: "payload runs past the end",
            })
        }
    }
    let size = u64_at(b, 48);
    let align = u64_at(b, 56);
    if !align.is_power_of_two() || align > 4096 {
        return Err(HeaderError::BadField {
            what: "layout alignment",
        });
    }
    if size > payload_len {
        return Err(HeaderError::BadSize {
            what: "layout larger than payload",
        });
    }
    let creator_pid = u32_at(b, 64);
    if u32_at(b, 68) as usize != REGISTRY_SLOTS {
        return Err(HeaderError::BadField {
            what: "registry size",
        });
    }
    let created_unix_ms = u64_at(b, 72);
    let name_len = u32_at(b, OFF_NAME_LEN) as usize;
    if name_len > FINGERPRINT_NAME_MAX {
        return Err(HeaderError::BadField {
            what: "layout name length",
        });
    }
    let name_bytes = &b[OFF_NAME..OFF_NAME + name_len];
    let name = std::str::from_utf8(name_bytes).map_err(|_| HeaderError::BadField {
        what: "layout name",
    })?;
    if b[OFF_NAME + name_len..FIXED_LEN].iter().any(|&x| x != 0)
        || b[84..88].iter().any(|&x| x != 0)
    {
        return Err(HeaderError::BadField {
            what: "reserved bytes",
        });
    }
    Ok(Header {
        kind,
        state,
        flags,
        total_len,
        payload_offset,
        payload_len,
        layout: Fingerprint::new(name, size, align),
        creator_pid,
        created_unix_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kind: Kind::Mailbox,
            state: STATE_READY,
            flags: FLAG_PERSISTENT,
            total_len: 8192,
            payload_offset: 4096,
            payload_len: 4096,
            layout: Fingerprint::new("Record<FixedStr<64>>", 72, 8),
            creator_pid: 42,
            created_unix_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn decode_round_trips_encode() {
        let h = sample();
        let bytes = encode(&h);
        assert_eq!(decode(&bytes), Ok(h.clone()));
        assert_eq!(encode(&decode(&bytes).unwrap()), bytes);
    }

    #[test]
    fn decode_fails_on_short_input() {
        assert_eq!(decode(&[0; 10]), Err(HeaderError::TooShort { len: 10 }));
    }

    #[test]
    fn decode_fails_on_bad_magic() {
        let mut b = encode(&sample());
        b[0] = b'X';
        assert_eq!(decode(&b), Err(HeaderError::BadMagic));
    }

    #[test]
    fn decode_fails_on_version_mismatch() {
        let mut b = encode(&sample());
        b[8..12].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(
            decode(&b),
            Err(HeaderError::VersionMismatch {
                found: 7,
                expected: LAYOUT_VERSION
            })
        );
    }

    #[test]
    fn decode_fails_on_payload_past_end() {
        let mut h = sample();
        h.payload_len = u64::MAX - 100;
        assert!(matches!(
            decode(&encode(&h)),
            Err(HeaderError::BadSize { .. })
        ));
        h.payload_len = 4097;
        assert!(matches!(
            decode(&encode(&h)),
            Err(HeaderError::BadSize { .. })
        ));
    }

    #[test]
    fn decode_fails_on_unknown_kind_flags_and_state() {
        let mut b = encode(&sample());
        b[12..16].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(decode(&b), Err(HeaderError::UnknownKind(99)));
        let mut b = encode(&sample());
        b[20..24].copy_from_slice(&0x80u32.to_ne_bytes());
        assert!(decode(&b).is_err());
        let mut b = encode(&sample());
        b[16..20].copy_from_slice(&5u32.to_ne_bytes());
        assert!(decode(&b).is_err());
    }

    #[test]
    fn decode_survives_every_single_byte_corruption() {
        let good = encode(&sample());
        for i in 0..FIXED_LEN {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = good;
                b[i] = v;
                if let Ok(h) = decode(&b) {
                    assert_eq!(encode(&h), b, "byte {i} = {v}");
                }
            }
        }
    }
}
