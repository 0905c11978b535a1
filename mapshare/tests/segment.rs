//! Segments: create / open / open_or_create, names, permissions, lifetime,
//! layout and kind checks, garbage and corrupt headers, file-backed
//! segments, symlinks, and racing creators.

mod common;

use std::fs;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
#[cfg(unix)]
use std::path::Path;
use std::time::Duration;

use common::{assert_clean, shm_path, spawn_child, unique_name, Cleanup, TempDir, XorShift};
use mapshare::segment::{self, SegmentInfo};
use mapshare::{
    Event, EventMode, HeaderError, Location, LockTimeoutError, Mailbox, Mutex, Options, Pod,
    SegmentError, Shared, Zeroable,
};

/// Same size and alignment as `u64`, another name.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C)]
struct Meters {
    value: u64,
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// Writes `bytes` as the whole object `/dev/shm/mapshare.<name>`, mode 0600.
fn write_object(name: &str, bytes: &[u8]) {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(shm_path(name)).expect("write object");
    f.write_all(bytes).expect("write object bytes");
}

/// Opens `name` as every kind, and inspects it: each must give an error or
/// a working handle, never a panic. Returns the errors seen.
fn open_every_way(name: &str) -> Vec<SegmentError> {
    let mut errors = Vec::new();
    match Shared::<u64>::open(name) {
        Ok(s) => {
            // The value is reachable only under the lock; a garbage mutex
            // word counts as a dead owner, so try_lock never blocks.
            if let Ok(g) = s.try_lock() {
                let _ = g.get();
            }
        }
        Err(e) => errors.push(e),
    }
    match Mailbox::open(name) {
        Ok(m) => {
            let _ = m.try_recv();
        }
        Err(e) => errors.push(e),
    }
    match Mutex::open(name) {
        Ok(m) => {
            let _ = m.try_lock();
        }
        Err(e) => errors.push(e),
    }
    match Event::open(name) {
        Ok(e) => {
            let _ = e.try_wait();
        }
        Err(e) => errors.push(e),
    }
    for e in &errors {
        assert!(!e.to_string().is_empty());
    }
    let _: Result<SegmentInfo, SegmentError> =
        Location::shm(name).and_then(|at| segment::inspect(&at));
    errors
}

#[test]
fn create_then_open_shares_the_value() {
    let _wd = common::watchdog("create_then_open_shares_the_value");
    let name = unique_name("create_open");
    let _c = Cleanup::new(&name);
    let a = Shared::<u64>::create(&name).unwrap();
    assert_eq!(a.lock().unwrap().get(), 0, "a new value starts zeroed");
    a.lock().unwrap().set(&0x1234_5678_9abc_def0);
    let b = Shared::<u64>::open(&name).unwrap();
    assert_eq!(b.lock().unwrap().get(), 0x1234_5678_9abc_def0);
    b.lock().unwrap().update(|v| *v += 1);
    assert_eq!(a.lock().unwrap().get(), 0x1234_5678_9abc_def1);
    drop((a, b));
    assert!(!shm_path(&name).exists());
}

#[test]
fn open_or_create_creates_then_opens() {
    let _wd = common::watchdog("open_or_create_creates_then_opens");
    let name = unique_name("ooc");
    let _c = Cleanup::new(&name);
    let a = Shared::<u64>::open_or_create(&name).unwrap();
    assert!(shm_path(&name).exists());
    a.lock().unwrap().set(&7);
    let b = Shared::<u64>::open_or_create(&name).unwrap();
    assert_eq!(
        b.lock().unwrap().get(),
        7,
        "second call opened, not re-created"
    );
    let m = Mutex::open_or_create(&unique_name("ooc_mutex")).unwrap();
    drop(m);
    let e = Event::options(&unique_name("ooc_event"))
        .manual_reset(true)
        .open_or_create()
        .unwrap();
    assert_eq!(e.mode(), EventMode::ManualReset);
}

#[test]
fn create_fails_on_existing_name() {
    let _wd = common::watchdog("create_fails_on_existing_name");
    let name = unique_name("exists");
    let _c = Cleanup::new(&name);
    let _a = Shared::<u64>::create(&name).unwrap();
    assert!(matches!(
        Shared::<u64>::create(&name),
        Err(SegmentError::AlreadyExists(_))
    ));
    assert!(matches!(
        Mailbox::options(&name).max_message(64).create(),
        Err(SegmentError::AlreadyExists(_))
    ));
    assert!(matches!(
        Mutex::create(&name),
        Err(SegmentError::AlreadyExists(_))
    ));
    assert!(matches!(
        Event::create(&name),
        Err(SegmentError::AlreadyExists(_))
    ));
}

#[test]
fn open_fails_on_missing_name() {
    let _wd = common::watchdog("open_fails_on_missing_name");
    let name = unique_name("missing");
    assert!(matches!(
        Shared::<u64>::open(&name),
        Err(SegmentError::NotFound(_))
    ));
    assert!(matches!(
        Mailbox::open(&name),
        Err(SegmentError::NotFound(_))
    ));
    assert!(matches!(Mutex::open(&name), Err(SegmentError::NotFound(_))));
    assert!(matches!(Event::open(&name), Err(SegmentError::NotFound(_))));
    assert!(matches!(
        segment::unlink(&Location::shm(&name).unwrap()),
        Err(SegmentError::NotFound(_))
    ));
    assert!(segment::inspect(&Location::shm(&name).unwrap()).is_err());
    assert!(!shm_path(&name).exists());
}

#[test]
fn bad_names_fail_with_invalid_name_and_create_nothing() {
    let _wd = common::watchdog("bad_names_fail_with_invalid_name_and_create_nothing");
    let long = "x".repeat(201);
    let bad = [
        "../x",
        "",
        long.as_str(),
        "a b",
        ".hidden",
        "a/b",
        "a\0b",
        "é",
    ];
    let before = common::shm_listing();
    #[cfg(unix)] // `/dev`: Unix only (a name like "../x" must not reach it)
    let dev_before: Vec<_> = fs::read_dir("/dev")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    for name in bad {
        let invalid = |r: Result<(), SegmentError>, what: &str| match r {
            Err(SegmentError::InvalidName(n)) => assert_eq!(n, name, "{what}"),
            other => panic!("{what}({name:?}): expected InvalidName, got {other:?}"),
        };
        invalid(Shared::<u64>::create(name).map(drop), "Shared::create");
        invalid(Shared::<u64>::open(name).map(drop), "Shared::open");
        invalid(
            Shared::<u64>::open_or_create(name).map(drop),
            "Shared::open_or_create",
        );
        invalid(
            Mailbox::options(name).max_message(64).create().map(drop),
            "Mailbox::create",
        );
        invalid(
            Mailbox::options(name)
                .max_message(64)
                .open_or_create()
                .map(drop),
            "Mailbox::open_or_create",
        );
        invalid(Mutex::create(name).map(drop), "Mutex::create");
        invalid(Event::create(name).map(drop), "Event::create");
        // A `Location` is checked when made: unlink and inspect never see a bad name.
        invalid(Location::shm(name).map(drop), "Location::shm");
        invalid(
            Location::shm(name).and_then(|at| segment::unlink(&at)),
            "segment::unlink",
        );
        invalid(
            Location::shm(name).and_then(|at| segment::inspect(&at).map(drop)),
            "segment::inspect",
        );
        let e = Shared::<u64>::create(name).unwrap_err();
        assert!(e.to_string().contains("invalid segment name"), "{e}");
    }
    // Other tests of this binary run in parallel: their segments are
    // `mapshare.t-*`, valid names none of ours could turn into; their
    // creators' temp files come and go within milliseconds.
    let new: Vec<String> = common::shm_listing()
        .difference(&before)
        .filter(|f| !f.starts_with("mapshare.t-"))
        // Windows: other tests' segments unlinked while mapped, on their way out.
        .filter(|f| !f.starts_with(".mapshare-dead."))
        .cloned()
        .collect();
    for f in &new {
        assert!(
            f.starts_with(".mapshare-init."),
            "a bad name created /dev/shm/{f}"
        );
    }
    for _ in 0..2000 {
        if new.iter().all(|f| !common::shm_dir().join(f).exists()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for f in &new {
        assert!(!common::shm_dir().join(f).exists(), "left: /dev/shm/{f}");
    }
    #[cfg(unix)]
    {
        let dev_after: Vec<_> = fs::read_dir("/dev")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        for f in &dev_after {
            assert!(dev_before.contains(f), "a bad name created /dev/{f:?}");
        }
    }
}

#[test]
#[cfg(unix)] // Unix by nature: mode bits.
fn created_segment_has_mode_0600() {
    let _wd = common::watchdog("created_segment_has_mode_0600");
    let name = unique_name("mode");
    let _c = Cleanup::new(&name);
    let _s = Shared::<u64>::create(&name).unwrap();
    assert_eq!(mode_of(&shm_path(&name)), 0o600);
    let info = segment::inspect(&Location::shm(&name).unwrap()).unwrap();
    assert_eq!(info.mode & 0o777, 0o600);
}

#[test]
#[cfg(unix)] // Unix by nature: mode bits, umask.
fn created_segment_mode_ignores_umask() {
    // umask is process-wide: change it only in a child process.
    if let Some(child) = common::child() {
        child.run(|c| {
            let (default_name, explicit_name) = (format!("{}.a", c.name), format!("{}.b", c.name));
            rustix::process::umask(rustix::fs::Mode::empty());
            let a = Shared::<u64>::create(&default_name).unwrap();
            assert_eq!(
                mode_of(&shm_path(&default_name)),
                0o600,
                "umask 0 widened the mode"
            );
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
            let b = Shared::<u64>::options(&explicit_name)
                .mode(0o640)
                .create()
                .unwrap();
            assert_eq!(
                mode_of(&shm_path(&explicit_name)),
                0o640,
                "umask 077 narrowed the mode"
            );
            drop((a, b));
        });
    }
    let _wd = common::watchdog("created_segment_mode_ignores_umask");
    let dir = TempDir::new("umask");
    let name = unique_name("umask");
    let mut c = Cleanup::new(&format!("{name}.a"));
    c.add(&format!("{name}.b"));
    let mut child = spawn_child(
        "created_segment_mode_ignores_umask",
        "umask",
        &name,
        dir.path(),
        "",
    );
    child.wait_ok();
    assert_clean(&[&format!("{name}.a"), &format!("{name}.b")], &[child.id()]);
}

#[test]
fn non_persistent_segment_is_unlinked_with_last_handle() {
    let _wd = common::watchdog("non_persistent_segment_is_unlinked_with_last_handle");
    let name = unique_name("lifetime");
    let _c = Cleanup::new(&name);
    let a = Shared::<u64>::create(&name).unwrap();
    let b = Shared::<u64>::open(&name).unwrap();
    drop(a); // the creator goes first: the name stays while `b` holds it
    assert!(shm_path(&name).exists());
    let c = Shared::<u64>::open(&name).unwrap();
    drop(b);
    assert!(shm_path(&name).exists());
    drop(c);
    assert!(!shm_path(&name).exists(), "last handle did not unlink");
    assert!(matches!(
        Shared::<u64>::open(&name),
        Err(SegmentError::NotFound(_))
    ));
}

#[test]
fn persistent_segment_survives_until_unlink() {
    let _wd = common::watchdog("persistent_segment_survives_until_unlink");
    let name = unique_name("persist");
    let _c = Cleanup::new(&name);
    let a = Shared::<u64>::options(&name)
        .persistent(true)
        .create()
        .unwrap();
    a.lock().unwrap().set(&99);
    drop(a);
    assert!(shm_path(&name).exists());
    let info = segment::inspect(&Location::shm(&name).unwrap()).unwrap();
    assert!(info.header.as_ref().unwrap().is_persistent());
    assert!(info.attached.is_empty());
    let b = Shared::<u64>::open(&name).unwrap();
    assert_eq!(b.lock().unwrap().get(), 99);
    drop(b);
    assert!(shm_path(&name).exists());
    segment::unlink(&Location::shm(&name).unwrap()).unwrap();
    assert!(!shm_path(&name).exists());
    assert!(matches!(
        Shared::<u64>::open(&name),
        Err(SegmentError::NotFound(_))
    ));
}

#[test]
fn open_fails_on_layout_mismatch() {
    let _wd = common::watchdog("open_fails_on_layout_mismatch");
    let name = unique_name("layout");
    let _c = Cleanup::new(&name);
    let _s = Shared::<u64>::create(&name).unwrap();

    let e = Shared::<u32>::open(&name).unwrap_err();
    match &e {
        SegmentError::LayoutMismatch {
            expected, found, ..
        } => {
            assert_eq!((expected.name(), expected.size()), ("u32", 4));
            assert_eq!((found.name(), found.size()), ("u64", 8));
        }
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
    let text = e.to_string();
    assert!(text.contains("u32") && text.contains("u64"), "{text}");

    // Same size and alignment, another type: still a mismatch.
    let e = Shared::<Meters>::open(&name).unwrap_err();
    assert!(
        matches!(e, SegmentError::LayoutMismatch { .. }),
        "expected LayoutMismatch, got {e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("Meters") && text.contains("u64"), "{text}");

    // open_or_create does not replace a segment of another layout.
    assert!(matches!(
        Shared::<u32>::open_or_create(&name),
        Err(SegmentError::LayoutMismatch { .. })
    ));
    assert_eq!(Shared::<u64>::open(&name).unwrap().lock().unwrap().get(), 0);
}

#[test]
fn open_fails_on_kind_mismatch() {
    let _wd = common::watchdog("open_fails_on_kind_mismatch");
    let name = unique_name("kind");
    let _c = Cleanup::new(&name);
    let _m = Mailbox::options(&name).max_message(128).create().unwrap();
    let e = Mutex::open(&name).unwrap_err();
    match &e {
        SegmentError::KindMismatch {
            expected, found, ..
        } => {
            assert_eq!(*expected, "mutex");
            assert_eq!(found, "mailbox");
        }
        other => panic!("expected KindMismatch, got {other:?}"),
    }
    let text = e.to_string();
    assert!(text.contains("mailbox") && text.contains("mutex"), "{text}");
    assert!(matches!(
        Event::open(&name),
        Err(SegmentError::KindMismatch { .. })
    ));
    assert!(matches!(
        Shared::<u64>::open(&name),
        Err(SegmentError::KindMismatch { .. })
    ));
    assert!(matches!(
        Mutex::open_or_create(&name),
        Err(SegmentError::KindMismatch { .. })
    ));

    let name2 = unique_name("kind2");
    let _c2 = Cleanup::new(&name2);
    let _s = Shared::<u64>::create(&name2).unwrap();
    assert!(matches!(
        Mailbox::open(&name2),
        Err(SegmentError::KindMismatch { .. })
    ));
}

#[test]
fn open_fails_cleanly_on_garbage_objects() {
    let _wd = common::watchdog("open_fails_cleanly_on_garbage_objects");
    let mut rng = XorShift::from_time("open_fails_cleanly_on_garbage_objects");
    for size in [0usize, 10, 4096, 8192] {
        for variant in 0..4 {
            let name = unique_name("garbage");
            let _c = Cleanup::new(&name);
            let mut bytes = vec![0u8; size];
            match variant {
                0 => rng.fill(&mut bytes),
                1 => {} // all zeroes
                2 => {
                    // Our magic, then noise.
                    rng.fill(&mut bytes);
                    let n = size.min(8);
                    bytes[..n].copy_from_slice(&b"MAPSHARE"[..n]);
                }
                _ => bytes.fill(0xff),
            }
            write_object(&name, &bytes);
            let errors = open_every_way(&name);
            assert_eq!(errors.len(), 4, "size {size} variant {variant}: {errors:?}");
            for e in &errors {
                assert!(
                    matches!(e, SegmentError::Header { .. }),
                    "size {size} variant {variant}: expected a Header error, got {e:?}"
                );
            }
            if size < 4096 {
                assert!(matches!(
                    &errors[0],
                    SegmentError::Header {
                        error: HeaderError::TooShort { .. },
                        ..
                    }
                ));
            }
            match segment::inspect(&Location::shm(&name).unwrap()) {
                Ok(info) => {
                    assert_eq!(info.size, size as u64);
                    assert!(info.header.is_err(), "garbage decoded: {:?}", info.header);
                    assert!(info.attached.is_empty());
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
            // Garbage is never removed or rewritten by a failed open.
            assert_eq!(fs::read(shm_path(&name)).unwrap(), bytes);
        }
    }
}

/// Header bytes overwritten at random offsets with random values, many
/// times: every open and inspect gives a typed error or a working handle.
#[test]
fn open_survives_random_header_corruption() {
    // Each round writes the object and opens it five ways: a few ms on
    // Linux, tens of ms under Wine (files, byte locks, named objects),
    // where 1,500 rounds once outlasted the 60 s hang guard on a loaded
    // machine. Fewer rounds there, and a guard for a slow round, not a hang.
    let rounds = if cfg!(windows) { 400 } else { 1500 };
    let _wd = common::watchdog_for(
        "open_survives_random_header_corruption",
        Duration::from_secs(300),
    );
    let mut rng = XorShift::from_time("open_survives_random_header_corruption");
    let name = unique_name("corrupt");
    let _c = Cleanup::new(&name);
    let s = Shared::<u64>::options(&name)
        .persistent(true)
        .create()
        .unwrap();
    s.lock().unwrap().set(&5);
    drop(s);
    let image = fs::read(shm_path(&name)).unwrap();
    assert!(image.len() >= 4096);
    let (mut ok, mut failed) = (0u32, 0u32);
    for i in 0..rounds {
        let mut bytes = image.clone();
        let edits = 1 + rng.below(if i % 3 == 0 { 16 } else { 3 });
        for _ in 0..edits {
            // Mostly the fixed part (where the fields are), sometimes the registry.
            let off = if rng.below(4) == 0 {
                rng.below(4096)
            } else {
                rng.below(256)
            } as usize;
            let width = [1usize, 2, 4, 8][rng.below(4) as usize];
            let value = match rng.below(4) {
                0 => 0,
                1 => u64::MAX,
                2 => rng.below(65536),
                _ => rng.next_u64(),
            };
            for (k, b) in value.to_ne_bytes().iter().take(width).enumerate() {
                if let Some(slot) = bytes.get_mut(off + k) {
                    *slot = *b;
                }
            }
        }
        write_object(&name, &bytes);
        let errors = open_every_way(&name);
        // At most one kind matches; the other three must refuse.
        assert!(errors.len() >= 3, "iteration {i}: {errors:?}");
        if errors.len() == 4 {
            failed += 1;
        } else {
            ok += 1;
        }
        if let Ok(info) = segment::inspect(&Location::shm(&name).unwrap()) {
            if let Ok(h) = &info.header {
                assert_eq!(h.total_len, info.size, "iteration {i}");
            }
        }
    }
    eprintln!("random header corruption: {ok} still opened, {failed} refused");
    assert!(failed > 0);
}

/// The same, on a header a live handle is using: the live handle keeps
/// working, new openers get errors or working handles.
#[test]
fn open_survives_corruption_of_a_live_header() {
    // Slow under Wine, as the test above: a guard for a slow round, not a hang.
    let _wd = common::watchdog_for(
        "open_survives_corruption_of_a_live_header",
        Duration::from_secs(300),
    );
    let mut rng = XorShift::from_time("open_survives_corruption_of_a_live_header");
    let name = unique_name("livecorrupt");
    let _c = Cleanup::new(&name);
    let live = Shared::<u64>::create(&name).unwrap();
    live.lock().unwrap().set(&11);
    let path = shm_path(&name);
    let original: Vec<u8> = fs::read(&path).unwrap()[..256].to_vec();
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    for i in 0..500 {
        let mut fixed = original.clone();
        for _ in 0..1 + rng.below(4) {
            let off = rng.below(256) as usize;
            fixed[off] = rng.next_u64() as u8;
        }
        common::FileExt::write_all_at(&file, &fixed, 0).unwrap();
        let _ = open_every_way(&name);
        // Restore, since an opener may have acted on a corrupt flags word.
        common::FileExt::write_all_at(&file, &original, 0).unwrap();
        if !path.exists() {
            // A corrupt header that still decoded may have told an opener
            // the segment had no live process; ours is still mapped.
            eprintln!("iteration {i}: name unlinked by an opener");
            break;
        }
    }
    // Openers that decoded a corrupt header may have scribbled on our
    // payload (a peer may); the live handle must still lock and work.
    let mut g = match live.lock_timeout(Duration::from_secs(10)) {
        Ok(g) => g,
        Err(LockTimeoutError::OwnerDied(g)) => g,
        Err(e) => panic!("live handle cannot lock: {e}"),
    };
    g.set(&12);
    assert_eq!(g.get(), 12);
}

#[test]
fn file_backed_segment_round_trips_and_is_removed_on_last_drop() {
    let _wd = common::watchdog("file_backed_segment_round_trips_and_is_removed_on_last_drop");
    let dir = TempDir::new("filebacked");
    let path = dir.join("x.seg");
    let opts = Options::<Shared<u64>>::file(&path);
    let a = opts.create().unwrap();
    assert!(path.exists());
    #[cfg(unix)] // mode bits: Unix only
    assert_eq!(mode_of(&path), 0o600);
    a.lock().unwrap().set(&0xfeed);
    let b = opts.open().unwrap();
    assert_eq!(b.lock().unwrap().get(), 0xfeed);
    let c = opts.open_or_create().unwrap();
    c.lock().unwrap().update(|v| *v += 1);
    assert_eq!(a.lock().unwrap().get(), 0xfeee);
    assert!(matches!(opts.create(), Err(SegmentError::AlreadyExists(_))));
    assert!(matches!(
        Options::<Shared<u32>>::file(&path).open(),
        Err(SegmentError::LayoutMismatch { .. })
    ));
    let info = segment::inspect(&Location::file(&path)).unwrap();
    assert_eq!(info.attached.len(), 3);
    drop((a, b));
    assert!(path.exists());
    drop(c);
    assert!(!path.exists(), "last handle did not remove the file");
    assert!(matches!(opts.open(), Err(SegmentError::NotFound(_))));

    // Persistent: stays until unlink.
    let m = Options::<Mailbox>::file(&path)
        .persistent(true)
        .max_message(256)
        .create()
        .unwrap();
    m.try_send(b"kept on disk").unwrap();
    drop(m);
    assert!(path.exists());
    let m = Options::<Mailbox>::file(&path).open().unwrap();
    assert_eq!(m.try_recv().unwrap(), b"kept on disk");
    drop(m);
    segment::unlink(&Location::file(&path)).unwrap();
    assert!(!path.exists());
    // Nothing else (creator temp files) left in the directory.
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
#[cfg(unix)] // Unix by nature: mode bits and a symlink made with std::os::unix.
fn open_does_not_follow_symlink_name() {
    let _wd = common::watchdog("open_does_not_follow_symlink_name");
    let dir = TempDir::new("symlink");
    // The target is a valid segment: were the link followed, opens would succeed.
    let target = dir.join("target.seg");
    let t = Options::<Shared<u64>>::file(&target)
        .persistent(true)
        .create()
        .unwrap();
    t.lock().unwrap().set(&4242);
    drop(t);
    let before = fs::read(&target).unwrap();
    let mode_before = mode_of(&target);

    let name = unique_name("symlink");
    let _c = Cleanup::new(&name);
    std::os::unix::fs::symlink(&target, shm_path(&name)).unwrap();

    let e = Shared::<u64>::open(&name).unwrap_err();
    eprintln!("open through a symlink: {e}");
    assert!(
        matches!(
            e,
            SegmentError::PermissionDenied(_) | SegmentError::Io { .. }
        ),
        "{e:?}"
    );
    assert!(Shared::<u64>::open_or_create(&name).is_err());
    assert!(matches!(
        Shared::<u64>::create(&name),
        Err(SegmentError::AlreadyExists(_))
    ));
    assert!(Mailbox::open(&name).is_err());
    assert!(segment::inspect(&Location::shm(&name).unwrap()).is_err());
    // unlink removes the link itself, never the target.
    segment::unlink(&Location::shm(&name).unwrap()).unwrap();
    assert!(fs::symlink_metadata(shm_path(&name)).is_err());

    assert_eq!(fs::read(&target).unwrap(), before, "target was modified");
    assert_eq!(mode_of(&target), mode_before);
    let t = Options::<Shared<u64>>::file(&target).open().unwrap();
    assert_eq!(t.lock().unwrap().get(), 4242);
    drop(t);
    segment::unlink(&Location::file(&target)).unwrap();
}

#[test]
fn open_or_create_race_has_exactly_one_creator() {
    const RACERS: usize = 4;
    if let Some(child) = common::child() {
        child.run(|c| {
            c.signal(&format!("ready-{}", c.arg));
            c.wait_for("go");
            let s = Shared::<u64>::open_or_create(&c.name).expect("open_or_create");
            s.lock().expect("clean lock").update(|v| *v += 1);
            let info = segment::inspect(&Location::shm(&c.name).unwrap()).expect("inspect");
            let creator = info.header.expect("valid header").creator_pid;
            common::write_atomic(
                &c.dir,
                &format!("creator-{}", c.arg),
                creator.to_string().as_bytes(),
            );
            c.signal(&format!("done-{}", c.arg));
            // Keep the segment alive until the parent has looked at it.
            c.wait_for("release");
            drop(s);
        });
    }
    let _wd = common::watchdog("open_or_create_race_has_exactly_one_creator");
    let dir = TempDir::new("race");
    let name = unique_name("race");
    let _c = Cleanup::new(&name);
    let mut children: Vec<_> = (0..RACERS)
        .map(|i| {
            spawn_child(
                "open_or_create_race_has_exactly_one_creator",
                "racer",
                &name,
                dir.path(),
                &i.to_string(),
            )
        })
        .collect();
    // Barrier: everyone is up and polling for "go" before anyone starts.
    for (i, ch) in children.iter_mut().enumerate() {
        assert!(common::wait_for_flag_or_exit(
            dir.path(),
            &format!("ready-{i}"),
            ch
        ));
    }
    common::signal(dir.path(), "go");
    for (i, ch) in children.iter_mut().enumerate() {
        if !common::wait_for_flag_or_exit(dir.path(), &format!("done-{i}"), ch) {
            ch.wait_ok();
            panic!("racer {i} exited early");
        }
    }
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let s = Shared::<u64>::open(&name).unwrap();
    assert_eq!(
        s.lock().unwrap().get(),
        RACERS as u64,
        "an increment was lost"
    );
    let creators: Vec<u32> = (0..RACERS)
        .map(|i| {
            fs::read_to_string(dir.join(&format!("creator-{i}")))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        creators.iter().all(|&c| c == creators[0]),
        "racers saw different segments: {creators:?}"
    );
    assert!(
        pids.contains(&creators[0]),
        "creator {} not a racer",
        creators[0]
    );
    common::signal(dir.path(), "release");
    for ch in &mut children {
        ch.wait_ok();
    }
    drop(s);
    assert_clean(&[&name], &pids);
}
