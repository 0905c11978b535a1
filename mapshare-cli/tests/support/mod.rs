//! Helpers shared by the CLI's test binaries.

/// Held while a test runs `gc`, or leaves a dead segment for it: the same
/// `flock` the library's tests take (`mapshare/tests/common`), since `gc`
/// removes every unattached segment of ours, whichever test left it.
pub(crate) struct GcLock(#[allow(dead_code)] std::fs::File);

pub(crate) fn gc_lock() -> GcLock {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("mapshare-tests-gc.lock"))
        .expect("open the gc lock file");
    #[cfg(unix)]
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    // `LockFileEx` (std's, Rust 1.89+: tests only, not the library's MSRV).
    #[cfg(windows)]
    #[allow(clippy::incompatible_msrv)]
    // Reason: test code, built by the toolchain CI installs.
    f.lock().expect("LockFileEx");
    GcLock(f)
}
