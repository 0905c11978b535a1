//! Who may touch a segment, and what happens when the shared-memory file
//! system or another process works against us:
//!
//! - an object pre-created under our name by another user is refused, not
//!   silently used (root only: it creates a second user);
//! - objects are created 0600 whatever the umask;
//! - a name that is a symlink is never followed;
//! - a full `/dev/shm` (a 4 KiB / 64 KiB tmpfs in a private mount
//!   namespace) is a clear error at creation, never a `SIGBUS` later (root
//!   and `unshare` only);
//! - a segment shrunk by another process after we opened it: the next
//!   mailbox operation says so (`Truncated`), without a `SIGBUS`.
//!
//! Tests that need root or `unshare` print a `SKIP` line and pass when
//! they cannot run (CI runs them as root).

// Unix by nature: uids, mode bits, umask, symlinks made with
// `std::os::unix`, and tmpfs mounts in private namespaces. On Windows
// owner-only access is the per-user directory's ACL (sys/windows.rs).
#![cfg(unix)]

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use common::{assert_clean, shm_path, spawn_child, unique_name, ChildCtx, Cleanup, TempDir};
use mapshare::segment;
use mapshare::{
    Event, Fault, HeaderError, Location, Mailbox, Mutex, Options, Receiver, RecvError,
    RecvTimeoutError, SegmentError, SendError, SendTimeoutError, Shared, TryRecvError,
    TrySendError,
};

/// The second user, created on demand (root only).
const SQUATTER: &str = "mapshare-squatter";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, SQUATTER]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// The squatter's uid and gid, creating the user (a system user without a
/// home) if needed. `None`, with the reason, when that is not possible.
fn squatter() -> Result<(u32, u32), String> {
    static CREATE: StdMutex<()> = StdMutex::new(());
    if !is_root() {
        return Err("not running as root".into());
    }
    let _one_at_a_time = CREATE.lock().unwrap_or_else(|e| e.into_inner());
    if id_of("-u").is_none() {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/bin/false",
                SQUATTER,
            ])
            .status()
            .map_err(|e| format!("useradd: {e}"))?;
        // 9: the name is taken (another process created it meanwhile).
        if !status.success() && status.code() != Some(9) {
            return Err(format!("useradd {SQUATTER}: {status}"));
        }
    }
    match (id_of("-u"), id_of("-g")) {
        (Some(uid), Some(gid)) if uid != 0 => Ok((uid, gid)),
        _ => Err(format!("no usable uid for {SQUATTER}")),
    }
}

/// As the squatter (a real process of that user), creates the object
/// `/dev/shm/mapshare.<name>` with mode 0666 holding `bytes`.
fn squat(name: &str, bytes: &[u8], uid: u32, gid: u32) {
    let path = shm_path(name);
    let mut sh = Command::new("sh")
        .args(["-c", "umask 0 && cat > \"$0\" && chmod 0666 \"$0\""])
        .arg(&path)
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh as the squatter");
    sh.stdin.take().unwrap().write_all(bytes).unwrap();
    assert!(
        sh.wait().unwrap().success(),
        "the squatter could not write {path:?}"
    );
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.uid(), uid, "the object is not the squatter's");
}

fn snapshot(name: &str) -> (Vec<u8>, u32, u32) {
    let path = shm_path(name);
    let meta = fs::symlink_metadata(&path).unwrap();
    (fs::read(&path).unwrap(), meta.mode() & 0o7777, meta.uid())
}

fn assert_foreign(r: Result<impl std::fmt::Debug, SegmentError>, uid: u32, what: &str) {
    match r {
        Err(SegmentError::ForeignOwner {
            owner_uid, our_uid, ..
        }) => {
            assert_eq!(owner_uid, uid, "{what}");
            assert_eq!(our_uid, 0, "{what}");
        }
        other => panic!("{what}: expected ForeignOwner, got {other:?}"),
    }
}

/// Another user pre-creates our name, mode 0666, with garbage or with a
/// perfectly valid mailbox in it: `open`, `open_or_create` (every kind)
/// refuse it with `ForeignOwner`, `create` says `AlreadyExists`, and the
/// object is left exactly as it was. With `allow_foreign_owner(true)` the
/// open goes on to the header checks (garbage: a header error; a valid
/// mailbox: opened, and its message readable).
#[test]
fn object_pre_created_by_another_user_is_refused() {
    let test = "object_pre_created_by_another_user_is_refused";
    let _wd = common::watchdog(test);
    let (uid, gid) = match squatter() {
        Ok(ids) => ids,
        Err(why) => {
            eprintln!("SKIP {test}: {why} (needs root and useradd)");
            return;
        }
    };
    // A valid persistent mailbox holding a message, as bytes.
    let model = unique_name("squat-model");
    let _m = Cleanup::new(&model);
    let mb = Mailbox::options(&model)
        .persistent(true)
        .max_message(256)
        .create()
        .unwrap();
    mb.send(b"left by the squatter").unwrap();
    drop(mb);
    let valid = fs::read(shm_path(&model)).unwrap();
    segment::unlink(&Location::shm(&model).unwrap()).unwrap();
    let mut garbage = vec![0u8; 8192];
    common::XorShift::new(7).fill(&mut garbage);

    for (what, bytes) in [("garbage", &garbage), ("a valid mailbox", &valid)] {
        let name = unique_name("squat");
        let _c = Cleanup::new(&name);
        squat(&name, bytes, uid, gid);
        let before = snapshot(&name);

        assert_foreign(Mailbox::open(&name), uid, "Mailbox::open");
        assert_foreign(
            Mailbox::options(&name).max_message(256).open_or_create(),
            uid,
            "Mailbox::open_or_create",
        );
        assert!(
            matches!(
                Mailbox::options(&name).max_message(256).create(),
                Err(SegmentError::AlreadyExists(_))
            ),
            "Mailbox::create over {what}"
        );
        assert_foreign(Shared::<u64>::open(&name), uid, "Shared::open");
        assert_foreign(
            Shared::<u64>::open_or_create(&name),
            uid,
            "Shared::open_or_create",
        );
        assert_foreign(Mutex::open_or_create(&name), uid, "Mutex::open_or_create");
        assert_foreign(Event::open_or_create(&name), uid, "Event::open_or_create");
        assert_foreign(
            Receiver::open_or_create(&name),
            uid,
            "Receiver::open_or_create",
        );
        let e = Mailbox::open(&name).unwrap_err();
        eprintln!("{what} squatted by uid {uid}: {e}");
        assert!(e.to_string().contains("allow_foreign_owner"), "{e}");
        // Inspection (read-only) shows whose it is.
        let info = segment::inspect(&Location::shm(&name).unwrap()).unwrap();
        assert_eq!(info.owner_uid, uid);
        // Not silently used: not one byte, mode bit or owner changed.
        assert!(
            snapshot(&name) == before,
            "the squatted object was modified"
        );

        // Opting in: the header checks decide.
        match Mailbox::options(&name).allow_foreign_owner(true).open() {
            Ok(mb) => {
                assert!(bytes == &valid, "garbage opened as a mailbox");
                assert_eq!(mb.try_recv().unwrap(), b"left by the squatter");
            }
            Err(SegmentError::Header { error, .. }) => {
                assert!(bytes == &garbage, "a valid mailbox was refused: {error:?}");
                assert_eq!(error, HeaderError::BadMagic);
            }
            Err(e) => panic!("allow_foreign_owner over {what}: {e:?}"),
        }
        drop(_c);
        assert!(fs::symlink_metadata(shm_path(&name)).is_err());
    }
    eprintln!(
        "squatted objects of uid {uid} refused with ForeignOwner (garbage and a valid mailbox)"
    );
}

/// Every kind of object, created under umask 0, 077 and 777, is 0600 (or
/// exactly the mode asked for). umask is process-wide: a child does it.
#[test]
fn objects_are_created_0600_whatever_the_umask() {
    let test = "objects_are_created_0600_whatever_the_umask";
    if let Some(child) = common::child() {
        child.run(|c| {
            let mode_of =
                |name: &str| fs::metadata(shm_path(name)).unwrap().permissions().mode() & 0o7777;
            for (i, umask) in [0o000, 0o077, 0o777].into_iter().enumerate() {
                rustix::process::umask(rustix::fs::Mode::from_raw_mode(umask));
                let n = |k: &str| format!("{}.{i}.{k}", c.name);
                let mb = Mailbox::options(&n("mb")).max_message(64).create().unwrap();
                let sh = Shared::<u64>::create(&n("sh")).unwrap();
                let mx = Mutex::create(&n("mx")).unwrap();
                let ev = Event::options(&n("ev"))
                    .manual_reset(true)
                    .create()
                    .unwrap();
                let rx = Receiver::create(&n("ch")).unwrap();
                let m640 = Shared::<u64>::options(&n("640"))
                    .mode(0o640)
                    .create()
                    .unwrap();
                let file = c.dir.join(format!("file-{i}.seg"));
                let fb = Options::<Shared<u64>>::file(&file).create().unwrap();
                for k in ["mb", "sh", "mx", "ev", "ch"] {
                    assert_eq!(mode_of(&n(k)), 0o600, "{k} under umask {umask:03o}");
                }
                assert_eq!(
                    mode_of(&n("640")),
                    0o640,
                    "mode(0o640) under umask {umask:03o}"
                );
                let file_mode = fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
                assert_eq!(file_mode, 0o600, "file-backed under umask {umask:03o}");
                drop((mb, sh, mx, ev, rx, m640, fb));
            }
        });
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("umask");
    let name = unique_name("umask");
    let names: Vec<String> = (0..3)
        .flat_map(|i| {
            let name = name.clone();
            ["mb", "sh", "mx", "ev", "ch", "640"]
                .into_iter()
                .map(move |k| format!("{name}.{i}.{k}"))
        })
        .collect();
    let mut cleanup = Cleanup::new(&names[0]);
    for n in &names[1..] {
        cleanup.add(n);
    }
    let mut child = spawn_child(test, "umask", &name, dir.path(), "");
    child.wait_ok();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_clean(&names, &[child.id()]);
}

/// `/dev/shm/mapshare.<name>` is a symlink: to nowhere, to a file of
/// ours, to a valid segment. Nothing is followed: `create` says
/// `AlreadyExists`, `open` and `open_or_create` fail, nothing is created
/// or changed at the target, and `unlink` removes the link only.
#[test]
fn symlink_name_is_never_followed() {
    let _wd = common::watchdog("symlink_name_is_never_followed");
    let dir = TempDir::new("symlink");
    let victim = dir.join("victim.txt");
    fs::write(&victim, vec![b'v'; 8192]).unwrap();
    let victim_mode = fs::metadata(&victim).unwrap().permissions().mode();
    let target_seg = unique_name("symlink-target");
    let _t = Cleanup::new(&target_seg);
    let seg = Shared::<u64>::create(&target_seg).unwrap();
    seg.lock().unwrap().set(&99);

    let targets = [
        dir.join("does-not-exist"),
        victim.clone(),
        shm_path(&target_seg),
    ];
    for target in &targets {
        let name = unique_name("symlink");
        let _c = Cleanup::new(&name);
        std::os::unix::fs::symlink(target, shm_path(&name)).unwrap();
        let target_before = fs::read(target).ok();

        let e = Mailbox::open(&name).unwrap_err();
        assert!(
            matches!(e, SegmentError::PermissionDenied(_)),
            "open through a link to {target:?}: {e:?}"
        );
        assert!(Mailbox::options(&name)
            .max_message(64)
            .open_or_create()
            .is_err());
        assert!(Shared::<u64>::open_or_create(&name).is_err());
        assert!(matches!(
            Mailbox::options(&name).max_message(64).create(),
            Err(SegmentError::AlreadyExists(_))
        ));
        assert!(segment::inspect(&Location::shm(&name).unwrap()).is_err());
        assert_eq!(
            fs::read(target).ok(),
            target_before,
            "the link's target {target:?} was created or changed"
        );
        segment::unlink(&Location::shm(&name).unwrap()).unwrap();
        assert!(
            fs::symlink_metadata(shm_path(&name)).is_err(),
            "link still there"
        );
        assert_eq!(
            fs::read(target).ok(),
            target_before,
            "unlink touched the target"
        );
        drop(_c);
        assert_clean(&[&name], &[]);
    }
    assert_eq!(
        fs::metadata(&victim).unwrap().permissions().mode(),
        victim_mode
    );
    assert_eq!(seg.lock().unwrap().get(), 99);
    drop(seg);
    assert_clean(&[&target_seg], &[]);
}

/// Whether `unshare -m` works here (root, and a kernel and sandbox that allow it).
fn unshare_works() -> Result<(), String> {
    if !is_root() {
        return Err("not running as root".into());
    }
    match Command::new("unshare")
        .args([
            "-m",
            "--",
            "sh",
            "-c",
            "mount -t tmpfs -o size=4k tmpfs /mnt",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("unshare -m with a tmpfs mount: {s}")),
        Err(e) => Err(format!("unshare: {e}")),
    }
}

/// In a private mount namespace, `/dev/shm` is a fresh tmpfs of `arg`
/// (`4k` or `64k`). Creating a segment that does not fit is `NoSpace` and
/// leaves nothing behind; what fits works; filling the tmpfs up with
/// segments gives `NoSpace` at creation, and every segment created before
/// stays fully usable (its memory was reserved: no `SIGBUS` on first touch).
fn tiny_shm_child(c: &ChildCtx) {
    assert!(
        common::shm_listing().is_empty(),
        "not in a fresh private /dev/shm: {:?}",
        common::shm_listing()
    );
    let no_space = |r: Result<(), SegmentError>, what: &str| match r {
        Err(SegmentError::NoSpace { requested, .. }) => {
            assert!(requested > 0, "{what}");
        }
        other => panic!("{what}: expected NoSpace, got {other:?}"),
    };
    let name = |k: &str| format!("{}.{k}", c.name);
    let big = || Mailbox::options(&name("big")).max_message(1 << 20).create();
    no_space(big().map(drop), "a 1 MiB mailbox");
    let e = big().unwrap_err();
    let mut report = format!("tmpfs size={}: a 1 MiB mailbox: {e}", c.arg);
    assert!(
        common::shm_listing().is_empty(),
        "a failed create left files"
    );
    if c.arg == "4k" {
        // Header page + payload: even the smallest segment needs 8 KiB.
        no_space(Mutex::create(&name("mx")).map(drop), "a mutex in 4 KiB");
        no_space(
            Shared::<u64>::create(&name("sh")).map(drop),
            "a Shared<u64> in 4 KiB",
        );
        assert!(common::shm_listing().is_empty());
        report.push_str("; a mutex and a Shared<u64> (8 KiB each): NoSpace too");
        common::write_atomic(&c.dir, &format!("report-{}", c.arg), report.as_bytes());
        return;
    }
    // 64 KiB: a small mailbox fits and works.
    let mb = Mailbox::options(&name("small"))
        .max_message(1024)
        .create()
        .unwrap();
    let other = Mailbox::open(&name("small")).unwrap();
    mb.send_timeout(b"fits", Duration::from_secs(5)).unwrap();
    assert_eq!(other.recv_timeout(Duration::from_secs(5)).unwrap(), b"fits");
    // Fill the rest with 8 KiB segments until creation says NoSpace.
    let mut values = Vec::new();
    for i in 0.. {
        match Shared::<u64>::create(&name(&format!("fill{i}"))) {
            Ok(s) => values.push(s),
            Err(SegmentError::NoSpace { .. }) => break,
            Err(e) => panic!("filling /dev/shm: {e:?}"),
        }
        assert!(i < 64, "a 64 KiB tmpfs took {i} segments of 8 KiB");
    }
    assert!(!values.is_empty());
    // Every page of every segment is there: touch them all.
    for (i, s) in values.iter().enumerate() {
        s.lock().unwrap().set(&(i as u64));
        s.notify();
    }
    for (i, s) in values.iter().enumerate() {
        assert_eq!(s.lock().unwrap().get(), i as u64);
    }
    mb.send_timeout(&[7u8; 1024], Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        other.recv_timeout(Duration::from_secs(5)).unwrap(),
        [7u8; 1024]
    );
    report.push_str(&format!(
        "; a 1 KiB mailbox and {} Shared<u64> created, then NoSpace; every one usable",
        values.len()
    ));
    drop((mb, other, values));
    assert!(common::shm_listing().is_empty(), "segments left behind");
    common::write_atomic(&c.dir, &format!("report-{}", c.arg), report.as_bytes());
}

#[test]
fn full_shm_is_no_space_at_creation_never_sigbus() {
    let test = "full_shm_is_no_space_at_creation_never_sigbus";
    if let Some(child) = common::child() {
        child.run(tiny_shm_child);
    }
    let _wd = common::watchdog(test);
    if let Err(why) = unshare_works() {
        eprintln!("SKIP {test}: {why} (needs root and unshare -m)");
        return;
    }
    let dir = TempDir::new("tinyshm");
    let name = unique_name("tinyshm");
    let mut pids = Vec::new();
    for size in ["4k", "64k"] {
        let script =
            format!("mount -t tmpfs -o size={size},mode=1777 tmpfs /dev/shm && exec \"$0\" \"$@\"");
        let mut child = common::spawn_child_via(
            &["unshare", "-m", "--", "sh", "-c", &script],
            test,
            "tiny",
            &name,
            dir.path(),
            size,
        );
        // A SIGBUS shows here as "signal: 7".
        child.wait_ok();
        pids.push(child.id());
        eprintln!(
            "{}",
            fs::read_to_string(dir.join(&format!("report-{size}"))).unwrap()
        );
    }
    // The private tmpfs went away with the namespace; ours is untouched.
    assert_clean(&[&format!("{name}.big"), &format!("{name}.small")], &pids);
}

/// Shrinks `/dev/shm/mapshare.<name>` to `arg` bytes with `set_len`, as
/// any process of ours could; `arg` may be `<len>,<len2>` to grow it back after.
fn truncate_child(c: &ChildCtx) {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&c.name))
        .unwrap();
    for len in c.arg.split(',') {
        f.set_len(len.parse().unwrap()).unwrap();
    }
}

/// A mailbox of 64 KiB, opened by us, then shrunk by another process to
/// 4096 bytes (the header page survives), to 0 bytes (nothing survives),
/// and to 4096 and grown back (the payload comes back as zeroes). The next
/// send and receive say `Truncated` when the size is short (no `SIGBUS`),
/// opening it again is a header error, and dropping the handle is safe.
#[test]
fn segment_truncated_by_another_process_is_reported_not_sigbus() {
    let test = "segment_truncated_by_another_process_is_reported_not_sigbus";
    if let Some(child) = common::child() {
        child.run(truncate_child);
    }
    let _wd = common::watchdog(test);
    let dir = TempDir::new("truncate");
    let mut pids = Vec::new();
    let capacity = 64 << 10;
    for shrink in ["4096", "0", "4096,back"] {
        let name = unique_name("truncate");
        let _c = Cleanup::new(&name);
        let mb = Mailbox::options(&name)
            .max_message(capacity)
            .create()
            .unwrap();
        let size = fs::metadata(shm_path(&name)).unwrap().len();
        let shrink = &shrink.replace("back", &size.to_string());
        mb.send(b"before").unwrap();
        let mut child = spawn_child(test, "truncate", &name, dir.path(), shrink);
        child.wait_ok();
        pids.push(child.id());

        let grown_back = shrink.contains(',');
        if grown_back {
            assert_eq!(fs::metadata(shm_path(&name)).unwrap().len(), size);
            // Same size, so no fault and no Truncated: the pages are back,
            // zero-filled. The message is gone; the mailbox works again.
            assert_eq!(mb.try_recv(), Err(TryRecvError::Empty));
            mb.try_send(b"after").unwrap();
            assert_eq!(mb.try_recv().unwrap(), b"after");
        } else {
            let x = &b"x"[..];
            assert_eq!(
                mb.try_send(x),
                Err(TrySendError::Fault(x, Fault::Truncated))
            );
            assert_eq!(
                mb.send_timeout(x, Duration::from_millis(10)),
                Err(SendTimeoutError::Fault(x, Fault::Truncated))
            );
            assert_eq!(mb.send(x), Err(SendError::Fault(x, Fault::Truncated)));
            assert_eq!(mb.try_recv(), Err(TryRecvError::Fault(Fault::Truncated)));
            assert_eq!(
                mb.recv_timeout(Duration::from_millis(10)),
                Err(RecvTimeoutError::Fault(Fault::Truncated))
            );
            assert_eq!(mb.recv(), Err(RecvError::Fault(Fault::Truncated)));
            eprintln!("shrunk to {shrink} bytes: {}", mb.try_recv().unwrap_err());
            match Mailbox::open(&name) {
                Err(SegmentError::Header { error, .. }) => assert!(
                    matches!(
                        error,
                        HeaderError::BadSize { .. } | HeaderError::TooShort { .. }
                    ),
                    "{error:?}"
                ),
                other => panic!("open after the shrink: {other:?}"),
            }
            let info = segment::inspect(&Location::shm(&name).unwrap()).unwrap();
            assert!(info.header.is_err());
        }
        // Detaching must not touch lost pages either.
        drop(mb);
        drop(_c);
        assert_clean(&[&name], &[child.id()]);
    }
}
