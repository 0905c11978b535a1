//! Runtime layouts: [`SharedBytes`] and the byte blackboard ends open the
//! segments of their typed forms (and the other way round) when the
//! fingerprint `(type name, size, align)` matches, and refuse any other
//! with `LayoutMismatch` naming both.

mod common;

use common::{unique_name, Cleanup};
use mapshare::{
    BlackboardReader, BlackboardReaderBytes, BlackboardWriter, BlackboardWriterBytes, Fingerprint,
    LengthMismatch, Pod, RecvTimeoutError, SegmentError, Shared, SharedBytes, Zeroable,
};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Record {
    id: u64,
    value: f64,
    tag: [u8; 48],
}

fn record_layout() -> Fingerprint {
    Fingerprint::new("Record", 64, 8)
}

fn record(id: u64) -> Record {
    let mut tag = [0; 48];
    tag[..5].copy_from_slice(b"hello");
    Record {
        id,
        value: id as f64 * 0.5,
        tag,
    }
}

fn assert_layout_mismatch(r: Result<impl std::fmt::Debug, SegmentError>, expected: &Fingerprint) {
    match r {
        Err(SegmentError::LayoutMismatch {
            expected: e, found, ..
        }) => {
            assert_eq!(&e, expected);
            assert_eq!(found, record_layout());
        }
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
}

#[test]
fn fingerprint_of_matches_the_runtime_form() {
    assert_eq!(Fingerprint::of::<Record>(), record_layout());
}

#[test]
fn shared_typed_segment_opens_as_bytes() {
    let name = unique_name("rt-shared-t2b");
    let _c = Cleanup::new(&name);
    let typed = Shared::<Record>::create(&name).unwrap();
    typed.lock().unwrap().set(&record(7));
    typed.notify();

    let bytes = SharedBytes::open(&name, record_layout()).unwrap();
    assert_eq!(bytes.size(), 64);
    bytes.wait_timeout(Duration::from_secs(5)).unwrap();
    let got = bytes.lock().unwrap().get();
    assert_eq!(got, bytemuck::bytes_of(&record(7)));

    bytes
        .lock()
        .unwrap()
        .set(bytemuck::bytes_of(&record(8)))
        .unwrap();
    bytes.notify();
    typed.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(typed.lock().unwrap().get(), record(8));
}

#[test]
fn shared_bytes_segment_opens_as_typed() {
    let name = unique_name("rt-shared-b2t");
    let _c = Cleanup::new(&name);
    let bytes = SharedBytes::create(&name, record_layout()).unwrap();
    {
        let mut g = bytes.lock().unwrap();
        g.set(bytemuck::bytes_of(&record(3))).unwrap();
        let mut out = [0u8; 64];
        g.get_into(&mut out).unwrap();
        assert_eq!(&out[..], bytemuck::bytes_of(&record(3)));
    }
    let typed = Shared::<Record>::open(&name).unwrap();
    assert_eq!(typed.lock().unwrap().get(), record(3));
}

#[test]
fn shared_bytes_refuses_another_layout() {
    let name = unique_name("rt-shared-bad");
    let _c = Cleanup::new(&name);
    let _typed = Shared::<Record>::create(&name).unwrap();
    for wrong in [
        Fingerprint::new("Record", 64, 4),
        Fingerprint::new("Record", 72, 8),
        Fingerprint::new("Other", 64, 8),
    ] {
        assert_layout_mismatch(SharedBytes::open(&name, wrong.clone()), &wrong);
        assert_layout_mismatch(SharedBytes::open_or_create(&name, wrong.clone()), &wrong);
    }
}

#[test]
fn typed_refuses_a_bytes_segment_of_another_layout() {
    let name = unique_name("rt-shared-bad2");
    let _c = Cleanup::new(&name);
    let _bytes = SharedBytes::create(&name, record_layout()).unwrap();
    let err = Shared::<[u64; 8]>::open(&name).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SegmentError::LayoutMismatch { .. }), "{err}");
    assert!(text.contains("Record (size 64, align 8)"), "{text}");
    assert!(text.contains("[u64; 8] (size 64, align 8)"), "{text}");
}

#[test]
fn shared_bytes_checks_lengths() {
    let name = unique_name("rt-shared-len");
    let _c = Cleanup::new(&name);
    let bytes = SharedBytes::create(&name, record_layout()).unwrap();
    let mut g = bytes.lock().unwrap();
    assert_eq!(
        g.set(&[1; 63]),
        Err(LengthMismatch {
            expected: 64,
            found: 63
        })
    );
    let mut out = [0u8; 65];
    assert!(g.get_into(&mut out).is_err());
    assert_eq!(g.get(), vec![0; 64]); // nothing was stored
}

#[test]
fn runtime_layouts_need_a_layout_and_a_valid_one() {
    let name = unique_name("rt-nolayout");
    let _c = Cleanup::new(&name);
    let r = SharedBytes::options(&name).create();
    assert!(matches!(r, Err(SegmentError::InvalidSize(_))), "{r:?}");
    let r = BlackboardReaderBytes::options(&name).open_or_create();
    assert!(matches!(r, Err(SegmentError::InvalidSize(_))), "{r:?}");
    let r = SharedBytes::create(&name, Fingerprint::new("Odd", 8, 3));
    assert!(matches!(r, Err(SegmentError::InvalidSize(_))), "{r:?}");
    let r = SharedBytes::create(&name, Fingerprint::new("Huge", 8, 8192));
    assert!(matches!(r, Err(SegmentError::InvalidSize(_))), "{r:?}");
    assert!(!common::shm_path(&name).exists());
}

#[test]
fn blackboard_typed_writer_bytes_reader() {
    let name = unique_name("rt-board-t2b");
    let _c = Cleanup::new(&name);
    let mut w = BlackboardWriter::<Record>::create(&name).unwrap();
    let r = BlackboardReaderBytes::open(&name, record_layout()).unwrap();
    assert_eq!(r.read_with_version().unwrap(), (vec![0; 64], 0));
    w.write(&record(1));
    let (v, version) = r.read_newer_timeout(0, Duration::from_secs(5)).unwrap();
    assert_eq!((v.as_slice(), version), (bytemuck::bytes_of(&record(1)), 1));
    let mut buf = [0u8; 64];
    assert_eq!(r.read_into(&mut buf).unwrap(), 1);
    assert_eq!(
        r.read_newer_into_timeout(1, &mut buf, Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(r.writer_alive());
    drop(w);
    assert!(!r.writer_alive());
    assert_eq!(
        r.read_newer_timeout(1, Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn blackboard_bytes_writer_typed_reader() {
    let name = unique_name("rt-board-b2t");
    let _c = Cleanup::new(&name);
    let mut w = BlackboardWriterBytes::create(&name, record_layout()).unwrap();
    let r = BlackboardReader::<Record>::open(&name).unwrap();
    w.write(bytemuck::bytes_of(&record(5))).unwrap();
    assert_eq!(w.version(), 1);
    assert_eq!(r.read_with_version().unwrap(), (record(5), 1));
    assert!(w.write(&[0; 8]).is_err());
    assert_eq!(w.version(), 1);
    // One writer at a time, whatever its form.
    assert!(matches!(
        BlackboardWriter::<Record>::open(&name),
        Err(SegmentError::TooManyAttached(_))
    ));
    drop(w);
    let mut w2 = BlackboardWriter::<Record>::open(&name).unwrap();
    assert_eq!(w2.version(), 1); // the versions continue
    w2.write(&record(6));
    let rb = BlackboardReaderBytes::open(&name, record_layout()).unwrap();
    assert_eq!(rb.read().unwrap(), bytemuck::bytes_of(&record(6)));
}

#[test]
fn blackboard_bytes_refuses_another_layout() {
    let name = unique_name("rt-board-bad");
    let _c = Cleanup::new(&name);
    let _w = BlackboardWriter::<Record>::create(&name).unwrap();
    let wrong = Fingerprint::new("Record", 56, 8);
    assert_layout_mismatch(BlackboardReaderBytes::open(&name, wrong.clone()), &wrong);
    assert_layout_mismatch(BlackboardWriterBytes::open(&name, wrong.clone()), &wrong);
}
