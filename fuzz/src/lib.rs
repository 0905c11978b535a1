//! Helpers shared by the fuzz targets: a scratch file per process to hold a
//! segment image, and a builder for images with a valid header around
//! fuzzer-chosen payload bytes (so that the payload decoders, behind the
//! header check, see most inputs).
//!
//! The scratch directory is `$MAPSHARE_FUZZ_DIR` if set (`ci/fuzz.sh`
//! points it at a fresh directory and removes it afterwards), else the
//! system temporary directory; each process uses its own sub-directory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use mapshare::layout::header::{self, Header, FLAG_PERSISTENT, HEADER_LEN, STATE_READY};
use mapshare::{Fingerprint, Kind, Location, Options};

/// One scratch file, rewritten for every input.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// This process's scratch file (its directory is created once).
    pub fn get() -> &'static Scratch {
        static S: OnceLock<Scratch> = OnceLock::new();
        S.get_or_init(|| {
            let root = std::env::var_os("MAPSHARE_FUZZ_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            let dir = root.join(format!("fuzz-seg.{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("scratch directory");
            Scratch {
                path: dir.join("segment"),
            }
        })
    }

    /// Where the segment file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's contents with `bytes` (a fresh file each time:
    /// an opener may have unlinked the old one).
    pub fn write(&self, bytes: &[u8]) {
        let _ = std::fs::remove_file(&self.path);
        std::fs::write(&self.path, bytes).expect("write scratch segment");
    }

    /// Removes the file, if an opener did not.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Options for a `K` in the scratch file, with a short attach timeout
    /// (nothing else holds the attach lock; a long wait would be a bug).
    pub fn options<K>(&self) -> Options<K> {
        Options::file(&self.path).attach_timeout(Duration::from_millis(500))
    }

    /// The scratch file as a location (`inspect`, the stats readers).
    pub fn location(&self) -> Location {
        Location::file(&self.path)
    }
}

/// A segment image: a valid, ready, persistent header of `kind` with
/// `layout`, followed by `payload` (the file is exactly that long).
///
/// Persistent, because an opener that finds no live process attached to a
/// non-persistent segment removes it (the lifetime rule) instead of reading
/// its payload. If `layout` does not fit the payload, the header is still
/// written as asked and the opener must reject it.
pub fn segment_image(kind: Kind, layout: Fingerprint, payload: &[u8]) -> Vec<u8> {
    segment_image_at(kind, layout, HEADER_LEN, payload)
}

/// As [`segment_image`], with the payload at `offset` (zeroes between the
/// header and it). Creators always put it at `HEADER_LEN`; a peer may say
/// anything, and the header check must hold every opener to what it allows.
pub fn segment_image_at(kind: Kind, layout: Fingerprint, offset: usize, payload: &[u8]) -> Vec<u8> {
    let offset = offset.max(HEADER_LEN);
    let h = Header {
        kind,
        state: STATE_READY,
        flags: FLAG_PERSISTENT,
        total_len: (offset + payload.len()) as u64,
        payload_offset: offset as u64,
        payload_len: payload.len() as u64,
        layout,
        creator_pid: 1,
        created_unix_ms: 0,
    };
    let mut img = vec![0u8; offset];
    img[..header::FIXED_LEN].copy_from_slice(&header::encode(&h));
    img.extend_from_slice(payload);
    img
}

/// Splits a structure-aware input into the payload offset it chooses (its
/// first byte: `HEADER_LEN + 64 * byte`, so 64-aligned offsets up to
/// 20 KiB, page-aligned ones among them) and the rest.
pub fn split_offset(data: &[u8]) -> Option<(usize, &[u8])> {
    let (&k, rest) = data.split_first()?;
    Some((HEADER_LEN + 64 * usize::from(k), rest))
}

/// The native-endian `u64` at `off`, or 0 past the end.
pub fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .map_or(0, |s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
}
