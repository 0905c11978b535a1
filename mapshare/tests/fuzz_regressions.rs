//! Inputs the fuzz targets (`fuzz/`, `ci/fuzz.sh`) crashed on, reduced to
//! tests: each must now give an error, never a panic. The raw inputs are
//! kept as seeds in `fuzz/seeds/<target>/regress-*`.

use std::path::{Path, PathBuf};

use mapshare::layout::header::{decode, encode};
use mapshare::{Event, HeaderError, Mailbox, Mutex, Options, SegmentError, Shared};

/// A directory of this test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mapshare-fuzz-regress.{}.{test}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Moves the payload of the segment file at `path` 64 bytes further in:
/// still inside the file (its last page has room), still 64-aligned, but
/// no longer 128-aligned.
fn shift_payload_offset(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mut h = decode(&bytes).unwrap();
    h.payload_offset += 64;
    assert!(h.payload_offset + h.payload_len <= h.total_len);
    bytes[..256].copy_from_slice(&encode(&h));
    std::fs::write(path, &bytes).unwrap();
}

fn assert_bad_payload_offset<T>(r: Result<T, SegmentError>) {
    match r.map(|_| "a handle") {
        Err(SegmentError::Header {
            error: HeaderError::BadSize { what },
            ..
        }) => assert_eq!(what, "payload offset"),
        other => panic!("expected a payload offset error, got {other:?}"),
    }
}

/// Found by `segment_file`: a payload offset that is a multiple of 64 but
/// not of 128 passed `decode` and `open`; the first lock, send or wait then
/// panicked ("validated at open"), because the mutex and event words
/// (128-aligned) could not be reached at a misaligned address. `mapshare
/// recv` on such a mailbox would have crashed.
#[test]
fn open_fails_on_payload_offset_not_page_aligned() {
    let dir = TempDir::new("offset");
    fn opts<K>(dir: &TempDir, name: &str) -> Options<K> {
        Options::file(dir.0.join(name)).persistent(true)
    }

    drop(opts::<Shared<u64>>(&dir, "shared").create().unwrap());
    shift_payload_offset(&dir.0.join("shared"));
    assert_bad_payload_offset(opts::<Shared<u64>>(&dir, "shared").open());

    drop(
        opts::<Mailbox>(&dir, "mailbox")
            .max_message(64)
            .create()
            .unwrap(),
    );
    shift_payload_offset(&dir.0.join("mailbox"));
    assert_bad_payload_offset(opts::<Mailbox>(&dir, "mailbox").open());

    drop(opts::<Mutex>(&dir, "mutex").create().unwrap());
    shift_payload_offset(&dir.0.join("mutex"));
    assert_bad_payload_offset(opts::<Mutex>(&dir, "mutex").open());

    drop(opts::<Event>(&dir, "event").create().unwrap());
    shift_payload_offset(&dir.0.join("event"));
    assert_bad_payload_offset(opts::<Event>(&dir, "event").open());
}

/// The pure check under it: `decode` accepts only page-aligned payloads.
#[test]
fn decode_fails_on_payload_offset_not_page_aligned() {
    let dir = TempDir::new("decode");
    let path = dir.0.join("shared");
    drop(
        Options::<Shared<u64>>::file(&path)
            .persistent(true)
            .create()
            .unwrap(),
    );
    let good = std::fs::read(&path).unwrap();
    let h = decode(&good).unwrap();
    assert_eq!(h.payload_offset, 4096);
    for off in [4096 + 64, 4096 + 128, 4096 + 2048] {
        let mut h = h.clone();
        h.payload_offset = off;
        assert_eq!(
            decode(&encode(&h)),
            Err(HeaderError::BadSize {
                what: "payload offset"
            }),
            "offset {off}"
        );
    }
}
