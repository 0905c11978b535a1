//! The C entry points called directly from Rust: the error paths (NULL
//! pointers, invalid names, options that do not apply, panics caught) and
//! the buffer rules (`MAPSHARE_TOO_SMALL` loses nothing). The C programs
//! in `tests/c/` cover the same API from C, across processes (`ci/c.sh`).

#![allow(unsafe_code)]
// calling the C API is all this file does
// Each test is one sequence of C calls under one set of promises (valid
// pointers, or NULLs the API reports): one block per test, not per call.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use mapshare_ffi::*;
use mapshare_status::*;

fn name(test: &str) -> CString {
    CString::new(format!("ffi-rs-{}-{test}", std::process::id())).unwrap()
}

/// Unlinks a segment on drop, even when the test fails.
struct Cleanup(CString);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // SAFETY: a valid NUL-terminated string.
        let _ = unsafe { mapshare_unlink(self.0.as_ptr()) };
    }
}

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string, never NULL.
    unsafe { CStr::from_ptr(mapshare_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn opts() -> mapshare_options_t {
    let mut o = std::mem::MaybeUninit::<mapshare_options_t>::uninit();
    // SAFETY: a writable options struct; init fills every field.
    unsafe {
        mapshare_options_init(o.as_mut_ptr());
        o.assume_init()
    }
}

#[test]
fn null_pointers_are_invalid_argument_never_a_crash() {
    let n = name("null");
    let _c = Cleanup(n.clone());
    let mut mb: *mut mapshare_mailbox_t = null_mut();
    // SAFETY: (every call in this test) NULLs where the API accepts them
    // and reports them; otherwise valid pointers.
    unsafe {
        assert_eq!(
            mapshare_mailbox_create(null(), null(), &mut mb),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert!(mb.is_null());
        assert!(last_error().contains("name is NULL"), "{}", last_error());
        assert_eq!(
            mapshare_mailbox_create(n.as_ptr(), null(), null_mut()),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(
            mapshare_mailbox_send(null_mut(), b"x".as_ptr().cast(), 1, 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        let mut len = 0usize;
        assert_eq!(
            mapshare_mailbox_recv(null_mut(), null_mut(), 0, &mut len, 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(
            mapshare_mutex_lock(null_mut(), 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(mapshare_mutex_unlock(null_mut()), MAPSHARE_INVALID_ARGUMENT);
        assert_eq!(mapshare_event_notify(null_mut()), MAPSHARE_INVALID_ARGUMENT);
        assert_eq!(
            mapshare_event_wait(null_mut(), 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(
            mapshare_sender_send(null_mut(), null(), 0, 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(
            mapshare_receiver_recv(null_mut(), null_mut(), 0, &mut len, 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(
            mapshare_publisher_publish(null_mut(), null(), 0, 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(
            mapshare_subscriber_recv(null_mut(), null_mut(), 0, &mut len, null_mut(), 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(mapshare_unlink(null()), MAPSHARE_INVALID_ARGUMENT);
        // Every value getter gives its documented fallback for NULL.
        assert_eq!(mapshare_mailbox_max_message(null()), 0);
        assert!(!mapshare_event_is_set(null()));
        assert!(!mapshare_event_is_manual_reset(null()));
        assert_eq!(mapshare_sender_max_message(null()), 0);
        assert_eq!(mapshare_sender_capacity(null()), 0);
        assert_eq!(mapshare_receiver_len(null()), 0);
        assert_eq!(mapshare_receiver_max_message(null()), 0);
        assert_eq!(mapshare_publisher_subscriber_count(null()), 0);
        assert_eq!(mapshare_publisher_max_message(null()), 0);
        assert_eq!(mapshare_subscriber_behind(null()), 0);
        assert_eq!(mapshare_shared_size(null()), 0);
        assert_eq!(mapshare_blackboard_writer_version(null()), 0);
        assert_eq!(mapshare_blackboard_reader_version(null()), 0);
        assert_eq!(mapshare_blackboard_reader_size(null()), 0);
        assert!(!mapshare_blackboard_reader_writer_alive(null()));
        // Closing NULL is allowed.
        mapshare_mailbox_close(null_mut());
        mapshare_sender_close(null_mut());
        mapshare_receiver_close(null_mut());
        mapshare_publisher_close(null_mut());
        mapshare_subscriber_close(null_mut());
        mapshare_mutex_close(null_mut());
        mapshare_event_close(null_mut());
        mapshare_shared_close(null_mut());
        mapshare_blackboard_writer_close(null_mut());
        mapshare_blackboard_reader_close(null_mut());
        mapshare_options_init(null_mut());

        // A live handle with NULL buffers: data NULL with a length, out_len NULL.
        assert_eq!(
            mapshare_mailbox_create(n.as_ptr(), null(), &mut mb),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_mailbox_send(mb, null(), 3, 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(
            mapshare_mailbox_recv(mb, null_mut(), 0, null_mut(), 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(
            mapshare_mailbox_recv(mb, null_mut(), 4, &mut len, 0),
            MAPSHARE_INVALID_ARGUMENT
        );
        // An empty message needs no pointer at all.
        assert_eq!(mapshare_mailbox_send(mb, null(), 0, 0), MAPSHARE_OK);
        assert_eq!(
            mapshare_mailbox_recv(mb, null_mut(), 0, &mut len, 0),
            MAPSHARE_OK
        );
        assert_eq!(len, 0);
        mapshare_mailbox_close(mb);
    }
}

#[test]
fn invalid_names_are_invalid_name() {
    let long = "a".repeat(201);
    let bad: [&[u8]; 5] = [b"", b".hidden", b"sl/ash", long.as_bytes(), b"sp ace"];
    for b in bad {
        let c = CString::new(b).unwrap();
        let mut m: *mut mapshare_mutex_t = null_mut();
        // SAFETY: valid strings and out pointer.
        let st = unsafe { mapshare_mutex_open_or_create(c.as_ptr(), null(), &mut m) };
        assert_eq!(st, MAPSHARE_INVALID_NAME, "{c:?}");
        assert!(m.is_null());
        assert!(
            last_error().contains("invalid segment name"),
            "{}",
            last_error()
        );
    }
    // Not UTF-8.
    let c = CString::new(vec![b'a', 0xff, b'b']).unwrap();
    let mut e: *mut mapshare_event_t = null_mut();
    // SAFETY: a valid string and out pointer.
    let st = unsafe { mapshare_event_create(c.as_ptr(), null(), &mut e) };
    assert_eq!(st, MAPSHARE_INVALID_NAME);
    assert!(last_error().contains("not UTF-8"), "{}", last_error());
}

#[test]
fn panics_are_caught_and_reported() {
    let st = mapshare_test_panic();
    assert_eq!(st, MAPSHARE_PANIC);
    assert!(
        last_error().contains("mapshare_test_panic was called"),
        "{}",
        last_error()
    );
    // The thread goes on working after it.
    let n = name("after-panic");
    let _c = Cleanup(n.clone());
    let mut m: *mut mapshare_mutex_t = null_mut();
    // SAFETY: valid pointers; the handle is closed once.
    unsafe {
        assert_eq!(
            mapshare_mutex_create(n.as_ptr(), null(), &mut m),
            MAPSHARE_OK
        );
        assert_eq!(mapshare_mutex_lock(m, 0), MAPSHARE_OK);
        mapshare_mutex_close(m);
    }
}

#[test]
fn options_that_do_not_apply_are_refused() {
    let n = name("opts");
    let _c = Cleanup(n.clone());
    let mut o = opts();
    o.capacity = 8;
    let mut m: *mut mapshare_mutex_t = null_mut();
    let mut mb: *mut mapshare_mailbox_t = null_mut();
    let mut p: *mut mapshare_publisher_t = null_mut();
    // SAFETY: valid pointers.
    unsafe {
        assert_eq!(
            mapshare_mutex_create(n.as_ptr(), &o, &mut m),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert!(
            last_error().contains("capacity does not apply to a mutex"),
            "{}",
            last_error()
        );
        assert_eq!(
            mapshare_mailbox_create(n.as_ptr(), &o, &mut mb),
            MAPSHARE_INVALID_ARGUMENT
        );
        let mut o = opts();
        o.policy = 7;
        assert_eq!(
            mapshare_publisher_create(n.as_ptr(), &o, &mut p),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert!(
            last_error().contains("unknown policy 7"),
            "{}",
            last_error()
        );
        let mut o = opts();
        o.manual_reset = true;
        assert_eq!(
            mapshare_mutex_create(n.as_ptr(), &o, &mut m),
            MAPSHARE_INVALID_ARGUMENT
        );
        // Nothing was created by any of them.
        assert_eq!(mapshare_unlink(n.as_ptr()), MAPSHARE_NOT_FOUND);
    }
}

#[test]
fn open_errors_map_to_their_codes() {
    let n = name("codes");
    let _c = Cleanup(n.clone());
    let mut mb: *mut mapshare_mailbox_t = null_mut();
    let mut mb2: *mut mapshare_mailbox_t = null_mut();
    let mut m: *mut mapshare_mutex_t = null_mut();
    // SAFETY: valid pointers; handles closed once.
    unsafe {
        assert_eq!(
            mapshare_mailbox_open(n.as_ptr(), null(), &mut mb),
            MAPSHARE_NOT_FOUND
        );
        assert!(last_error().contains("no such segment"), "{}", last_error());
        assert_eq!(
            mapshare_mailbox_create(n.as_ptr(), null(), &mut mb),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_mailbox_create(n.as_ptr(), null(), &mut mb2),
            MAPSHARE_ALREADY_EXISTS
        );
        assert!(mb2.is_null());
        assert_eq!(
            mapshare_mutex_open(n.as_ptr(), null(), &mut m),
            MAPSHARE_KIND_MISMATCH
        );
        assert!(last_error().contains("not a mutex"), "{}", last_error());
        let mut o = opts();
        o.max_message = 1 << 31;
        let n2 = name("codes-size");
        let _c2 = Cleanup(n2.clone());
        assert_eq!(
            mapshare_mailbox_create(n2.as_ptr(), &o, &mut mb2),
            MAPSHARE_INVALID_SIZE
        );
        mapshare_mailbox_close(mb);
    }
}

#[test]
fn too_small_loses_nothing_on_every_receiving_kind() {
    let n = name("small");
    let _c = Cleanup(n.clone());
    let mut buf = [0u8; 64];
    let mut len = 0usize;
    // SAFETY: valid pointers and lengths; handles closed once.
    unsafe {
        // Mailbox: kept in the handle.
        let mut mb: *mut mapshare_mailbox_t = null_mut();
        assert_eq!(
            mapshare_mailbox_create(n.as_ptr(), null(), &mut mb),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_mailbox_send(mb, b"0123456789".as_ptr().cast(), 10, 0),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_mailbox_recv(mb, buf.as_mut_ptr().cast(), 4, &mut len, 0),
            MAPSHARE_TOO_SMALL
        );
        assert_eq!(len, 10);
        assert_eq!(
            mapshare_mailbox_recv(mb, null_mut(), 0, &mut len, 0),
            MAPSHARE_TOO_SMALL
        );
        assert_eq!(len, 10);
        assert_eq!(
            mapshare_mailbox_recv(mb, buf.as_mut_ptr().cast(), 64, &mut len, 0),
            MAPSHARE_OK
        );
        assert_eq!(&buf[..len], b"0123456789");
        assert_eq!(
            mapshare_mailbox_recv(mb, buf.as_mut_ptr().cast(), 64, &mut len, 0),
            MAPSHARE_EMPTY
        );
        mapshare_mailbox_close(mb);

        // Channel: the message stays queued, ahead of the next one.
        let nc = name("small-chan");
        let _cc = Cleanup(nc.clone());
        let mut rx: *mut mapshare_receiver_t = null_mut();
        let mut tx: *mut mapshare_sender_t = null_mut();
        assert_eq!(
            mapshare_receiver_create(nc.as_ptr(), null(), &mut rx),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_sender_open(nc.as_ptr(), null(), &mut tx),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_sender_send(tx, b"first message".as_ptr().cast(), 13, 0),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_sender_send(tx, b"second".as_ptr().cast(), 6, 0),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_receiver_recv(rx, buf.as_mut_ptr().cast(), 5, &mut len, 0),
            MAPSHARE_TOO_SMALL
        );
        assert_eq!(len, 13);
        assert_eq!(mapshare_receiver_len(rx), 2);
        assert_eq!(
            mapshare_receiver_recv(rx, buf.as_mut_ptr().cast(), 64, &mut len, 0),
            MAPSHARE_OK
        );
        assert_eq!(&buf[..len], b"first message");
        assert_eq!(
            mapshare_receiver_recv(rx, buf.as_mut_ptr().cast(), 64, &mut len, 0),
            MAPSHARE_OK
        );
        assert_eq!(&buf[..len], b"second");
        mapshare_sender_close(tx);
        assert_eq!(
            mapshare_receiver_recv(rx, buf.as_mut_ptr().cast(), 64, &mut len, 0),
            MAPSHARE_DISCONNECTED
        );
        mapshare_receiver_close(rx);

        // Subscriber: kept in the handle.
        let np = name("small-ps");
        let _cp = Cleanup(np.clone());
        let mut s: *mut mapshare_subscriber_t = null_mut();
        let mut p: *mut mapshare_publisher_t = null_mut();
        assert_eq!(
            mapshare_subscriber_open_or_create(np.as_ptr(), null(), &mut s),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_publisher_open(np.as_ptr(), null(), &mut p),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_publisher_publish(p, b"tick-tock".as_ptr().cast(), 9, 0),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_publisher_publish(p, b"t2".as_ptr().cast(), 2, 0),
            MAPSHARE_OK
        );
        let mut missed = 0u64;
        assert_eq!(
            mapshare_subscriber_recv(s, buf.as_mut_ptr().cast(), 3, &mut len, &mut missed, 0),
            MAPSHARE_TOO_SMALL
        );
        assert_eq!(len, 9);
        assert_eq!(
            mapshare_subscriber_recv(s, buf.as_mut_ptr().cast(), 64, &mut len, null_mut(), 0),
            MAPSHARE_OK
        );
        assert_eq!(&buf[..len], b"tick-tock");
        assert_eq!(
            mapshare_subscriber_recv(s, buf.as_mut_ptr().cast(), 64, &mut len, null_mut(), 0),
            MAPSHARE_OK
        );
        assert_eq!(&buf[..len], b"t2");
        mapshare_publisher_close(p);
        assert_eq!(
            mapshare_subscriber_recv(s, buf.as_mut_ptr().cast(), 64, &mut len, null_mut(), 0),
            MAPSHARE_DISCONNECTED
        );
        mapshare_subscriber_close(s);
    }
}

#[test]
fn mutex_lock_rules() {
    let n = name("mutex");
    let _c = Cleanup(n.clone());
    let mut a: *mut mapshare_mutex_t = null_mut();
    let mut b: *mut mapshare_mutex_t = null_mut();
    // SAFETY: valid pointers; handles closed once.
    unsafe {
        assert_eq!(
            mapshare_mutex_create(n.as_ptr(), null(), &mut a),
            MAPSHARE_OK
        );
        assert_eq!(mapshare_mutex_open(n.as_ptr(), null(), &mut b), MAPSHARE_OK);
        assert_eq!(mapshare_mutex_unlock(a), MAPSHARE_INVALID_ARGUMENT);
        assert_eq!(mapshare_mutex_lock(a, MAPSHARE_FOREVER), MAPSHARE_OK);
        // Not recursive: refused, not a deadlock.
        assert_eq!(
            mapshare_mutex_lock(a, MAPSHARE_FOREVER),
            MAPSHARE_INVALID_ARGUMENT
        );
        assert_eq!(mapshare_mutex_lock(b, 0), MAPSHARE_WOULD_BLOCK);
        let t = std::time::Instant::now();
        assert_eq!(mapshare_mutex_lock(b, 20_000_000), MAPSHARE_TIMEOUT);
        assert!(t.elapsed() >= std::time::Duration::from_millis(20));
        // Closing a handle that holds the lock releases it.
        mapshare_mutex_close(a);
        assert_eq!(mapshare_mutex_lock(b, 0), MAPSHARE_OK);
        assert_eq!(mapshare_mutex_unlock(b), MAPSHARE_OK);
        mapshare_mutex_close(b);
    }
}

#[test]
fn last_error_copies_are_cut_and_terminated() {
    let mut m: *mut mapshare_mutex_t = null_mut();
    // SAFETY: valid pointers.
    unsafe {
        let n = name("absent");
        assert_eq!(
            mapshare_mutex_open(n.as_ptr(), null(), &mut m),
            MAPSHARE_NOT_FOUND
        );
        let full = last_error();
        let needed = mapshare_last_error(null_mut(), 0);
        assert_eq!(needed, full.len());
        let mut small = [0x55 as c_char; 8];
        assert_eq!(
            mapshare_last_error(small.as_mut_ptr(), small.len()),
            full.len()
        );
        let got = CStr::from_ptr(small.as_ptr()).to_str().unwrap();
        assert_eq!(got, &full[..7]);
        let name = CStr::from_ptr(mapshare_status_name(MAPSHARE_NOT_FOUND as i32));
        assert_eq!(name.to_str().unwrap(), "MAPSHARE_NOT_FOUND");
        let unknown = CStr::from_ptr(mapshare_status_name(-1));
        assert_eq!(unknown.to_str().unwrap(), "MAPSHARE_UNKNOWN");
        let v = CStr::from_ptr(mapshare_version());
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}

#[test]
fn timeouts_follow_the_rules() {
    let n = name("timeouts");
    let _c = Cleanup(n.clone());
    let mut e: *mut mapshare_event_t = null_mut();
    let mut mb: *mut mapshare_mailbox_t = null_mut();
    // SAFETY: valid pointers; handles closed once.
    unsafe {
        assert_eq!(
            mapshare_event_create(n.as_ptr(), null(), &mut e),
            MAPSHARE_OK
        );
        assert_eq!(mapshare_event_wait(e, 0), MAPSHARE_EMPTY);
        let t = std::time::Instant::now();
        assert_eq!(mapshare_event_wait(e, 30_000_000), MAPSHARE_TIMEOUT);
        assert!(t.elapsed() >= std::time::Duration::from_millis(30));
        assert_eq!(mapshare_event_notify(e), MAPSHARE_OK);
        assert!(mapshare_event_is_set(e));
        assert_eq!(mapshare_event_wait(e, MAPSHARE_FOREVER), MAPSHARE_OK);
        assert_eq!(mapshare_event_wait(e, 0), MAPSHARE_EMPTY); // auto-reset
        mapshare_event_close(e);

        let nm = name("timeouts-mb");
        let _cm = Cleanup(nm.clone());
        let mut o = opts();
        o.max_message = 8;
        assert_eq!(
            mapshare_mailbox_create(nm.as_ptr(), &o, &mut mb),
            MAPSHARE_OK
        );
        assert_eq!(mapshare_mailbox_max_message(mb), 8);
        assert_eq!(
            mapshare_mailbox_send(mb, b"123456789".as_ptr().cast(), 9, 0),
            MAPSHARE_TOO_LARGE
        );
        assert_eq!(
            mapshare_mailbox_send(mb, b"1".as_ptr().cast(), 1, 0),
            MAPSHARE_OK
        );
        assert_eq!(
            mapshare_mailbox_send(mb, b"2".as_ptr().cast(), 1, 0),
            MAPSHARE_FULL
        );
        let t = std::time::Instant::now();
        assert_eq!(
            mapshare_mailbox_send(mb, b"2".as_ptr().cast(), 1, 25_000_000),
            MAPSHARE_TIMEOUT
        );
        assert!(t.elapsed() >= std::time::Duration::from_millis(25));
        mapshare_mailbox_close(mb);
    }
}

/// A Rust `Shared<Record>` and `BlackboardWriter<Record>` meet the C API
/// with the layout spelled ("Record", size, align); another layout is
/// refused with both sides named.
#[test]
fn runtime_layouts_meet_rust_types() {
    use mapshare::{BlackboardWriter, Pod, Shared, Zeroable};

    #[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
    #[repr(C)]
    #[bytemuck(crate = "mapshare::bytemuck")]
    struct Record {
        id: u64,
        value: f64,
    }

    let n = name("record");
    let _c = Cleanup(n.clone());
    let typed = Shared::<Record>::create(n.to_str().unwrap()).unwrap();
    typed.lock().unwrap().set(&Record { id: 7, value: 2.5 });
    let tn = CString::new("Record").unwrap();
    let layout = mapshare_layout_t {
        type_name: tn.as_ptr(),
        size: std::mem::size_of::<Record>(),
        align: std::mem::align_of::<Record>(),
    };
    let mut s: *mut mapshare_shared_t = null_mut();
    let mut len = 0usize;
    let mut got = Record::zeroed();
    // SAFETY: valid pointers; the handle is closed once; `got` is plain data.
    unsafe {
        assert_eq!(
            mapshare_shared_open(n.as_ptr(), &layout, null(), &mut s),
            MAPSHARE_OK
        );
        assert_eq!(mapshare_shared_lock(s, MAPSHARE_FOREVER), MAPSHARE_OK);
        let p: *mut Record = &mut got;
        let size = std::mem::size_of::<Record>();
        assert_eq!(
            mapshare_shared_read(s, p.cast(), size, &mut len),
            MAPSHARE_OK
        );
        assert_eq!(got, Record { id: 7, value: 2.5 });
        let next = Record { id: 8, value: -1.0 };
        let q: *const Record = &next;
        assert_eq!(mapshare_shared_write(s, q.cast(), size), MAPSHARE_OK);
        assert_eq!(mapshare_shared_unlock(s), MAPSHARE_OK);
        mapshare_shared_close(s);
    }
    assert_eq!(typed.lock().unwrap().get(), Record { id: 8, value: -1.0 });

    let wrong = mapshare_layout_t { size: 8, ..layout };
    // SAFETY: valid pointers.
    unsafe {
        assert_eq!(
            mapshare_shared_open(n.as_ptr(), &wrong, null(), &mut s),
            MAPSHARE_LAYOUT_MISMATCH
        );
        assert!(s.is_null());
        assert!(
            last_error().contains("Record (size 8, align 8)")
                && last_error().contains("Record (size 16, align 8)"),
            "{}",
            last_error()
        );
        assert_eq!(
            mapshare_shared_open(n.as_ptr(), null(), null(), &mut s),
            MAPSHARE_INVALID_ARGUMENT
        );
        let no_name = mapshare_layout_t {
            type_name: null(),
            ..layout
        };
        assert_eq!(
            mapshare_shared_open(n.as_ptr(), &no_name, null(), &mut s),
            MAPSHARE_INVALID_ARGUMENT
        );
    }
    drop(typed);

    let nb = name("record-board");
    let _cb = Cleanup(nb.clone());
    let mut w = BlackboardWriter::<Record>::create(nb.to_str().unwrap()).unwrap();
    w.write(&Record { id: 1, value: 0.5 });
    let mut r: *mut mapshare_blackboard_reader_t = null_mut();
    let mut version = 0u64;
    // SAFETY: valid pointers; the handle is closed once.
    unsafe {
        assert_eq!(
            mapshare_blackboard_reader_open(nb.as_ptr(), &layout, null(), &mut r),
            MAPSHARE_OK
        );
        let p: *mut Record = &mut got;
        let size = std::mem::size_of::<Record>();
        assert_eq!(
            mapshare_blackboard_reader_read(r, p.cast(), size, &mut len, &mut version),
            MAPSHARE_OK
        );
        assert_eq!((got, version), (Record { id: 1, value: 0.5 }, 1));
        mapshare_blackboard_reader_close(r);
    }
}
