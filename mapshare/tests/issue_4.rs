//! Issue 4, item 6: a segment of another format version, or another
//! layout, is refused with a typed error that names both sides.

mod common;

use common::FileExt;

use common::{shm_path, unique_name, Cleanup};
use mapshare::layout::header::LAYOUT_VERSION;
use mapshare::{HeaderError, Mailbox, SegmentError, Shared};

#[test]
fn open_refuses_another_format_version_with_a_typed_error() {
    let name = unique_name("version");
    let _c = Cleanup::new(&name);
    let _keep = Shared::<u64>::create(&name).unwrap();
    // A peer of another version wrote this segment: rewrite the version word.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap();
    f.write_at(&(LAYOUT_VERSION + 1).to_ne_bytes(), 8).unwrap();
    let err = Shared::<u64>::open(&name).unwrap_err();
    match &err {
        SegmentError::Header {
            error: HeaderError::VersionMismatch { found, expected },
            ..
        } => assert_eq!((*found, *expected), (LAYOUT_VERSION + 1, LAYOUT_VERSION)),
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {}", LAYOUT_VERSION + 1))
            && text.contains(&LAYOUT_VERSION.to_string()),
        "{text}"
    );
    // The other kinds refuse it the same way.
    assert!(matches!(
        Mailbox::open(&name),
        Err(SegmentError::Header {
            error: HeaderError::VersionMismatch { .. },
            ..
        })
    ));
}

#[derive(Clone, Copy, mapshare::Pod, mapshare::Zeroable)]
#[repr(C)]
struct Celsius(u64);

#[test]
fn open_refuses_another_layout_naming_both() {
    let name = unique_name("layout");
    let _c = Cleanup::new(&name);
    let _keep = Shared::<u64>::create(&name).unwrap();
    let err = Shared::<Celsius>::open(&name).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SegmentError::LayoutMismatch { .. }), "{err}");
    assert!(
        text.contains("Celsius (size 8, align 8)") && text.contains("u64 (size 8, align 8)"),
        "{text}"
    );
}
