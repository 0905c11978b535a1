//! The hardware floor for benchmarks: two processes ping-ponging a number
//! on one shared cache line by spinning. Nothing can pass a message between
//! cores faster; `mapshare-bench` reports every figure as a ratio to it.
//!
//! # What is shared
//! A file of [`LINE_LEN`] bytes in `/dev/shm` of its own
//! (`mapshare-bench.<tag>.floor`, outside the `mapshare.` names the library
//! and its CLI own), mapped shared and read-write by both processes. It
//! holds one word, an `AtomicU64` at offset 0; the mapping starts on a page
//! boundary and the other 120 bytes are never touched, so nothing else
//! shares the word's 128 bytes (two 64-byte lines: the adjacent-line
//! prefetcher moves them in pairs, as crossbeam's `CachePadded` explains).
//! No mapshare internals are involved.
//!
//! | word | written by | meaning |
//! |---|---|---|
//! | `value` (offset 0) | both, in turns | the number being ping-ponged; any value is valid |
//!
//! The creator sizes the file before anyone maps it and removes it by name
//! when dropped (the peer's mapping stays valid after that). A process of
//! the same user that shrank the file meanwhile would make the next access
//! fault with SIGBUS: the bench does not defend against that.

use std::fs::{File, OpenOptions};
use std::hint::spin_loop;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

/// Bytes of the file and of the mapping: the word's own 128-byte line.
pub const LINE_LEN: usize = 128;

const _: () = assert!(std::mem::size_of::<AtomicU64>() <= LINE_LEN);

/// A shared cache line for measuring the floor (see the module docs).
#[derive(Debug)]
pub struct SpinLine {
    map: MmapRaw,
    /// The creator's file, removed on drop (`None` in an opener).
    owned: Option<PathBuf>,
}

impl SpinLine {
    /// Where the line tagged `tag` lives: `/dev/shm/mapshare-bench.<tag>.floor`.
    pub fn path_for(tag: &str) -> PathBuf {
        PathBuf::from(format!("/dev/shm/mapshare-bench.{tag}.floor"))
    }

    /// Creates the line at `path` (mode 0600, exclusively), holding 0. The
    /// file is removed when the returned line is dropped.
    ///
    /// # Errors
    /// The I/O error of creating, sizing or mapping the file (it is removed
    /// again on failure); `AlreadyExists` if `path` exists.
    pub fn create(path: &Path) -> io::Result<SpinLine> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        // From here on the file is ours: removed again if this fails. It is
        // sized before it is mapped, and before the peer is told its name.
        match file
            .set_len(LINE_LEN as u64)
            .and_then(|()| SpinLine::map(&file))
        {
            Ok(map) => Ok(SpinLine {
                map,
                owned: Some(path.to_owned()),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Opens the line another process created at `path`.
    ///
    /// # Errors
    /// The I/O error of opening or mapping the file; `InvalidData` if it is
    /// shorter than [`LINE_LEN`].
    pub fn open(path: &Path) -> io::Result<SpinLine> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        if len < LINE_LEN as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: {len} bytes, a floor line has {LINE_LEN}",
                    path.display()
                ),
            ));
        }
        Ok(SpinLine {
            map: SpinLine::map(&file)?,
            owned: None,
        })
    }

    /// Maps the first [`LINE_LEN`] bytes of `file`, shared and read-write.
    fn map(file: &File) -> io::Result<MmapRaw> {
        MmapOptions::new().len(LINE_LEN).map_raw(file)
    }

    fn word(&self) -> &AtomicU64 {
        let ptr = self.map.as_mut_ptr().cast::<AtomicU64>();
        debug_assert!(self.map.len() >= LINE_LEN && ptr.is_aligned());
        // SAFETY:
        // 1. `ptr` is valid for reads and writes of 8 bytes for as long as
        //    the returned reference, which borrows `self`: `self.map` is a
        //    live shared read-write mapping of LINE_LEN bytes, unmapped only
        //    when `self` is dropped, and the file behind it had at least
        //    LINE_LEN bytes before it was mapped (`create` sizes it before
        //    it maps it and before the peer learns its name; `open`
        //    checks), and nobody shrinks it (module docs).
        // 2. `ptr` is aligned for `AtomicU64`: a mapping starts on a page
        //    boundary.
        // 3. Every bit pattern is a valid `AtomicU64`, and these bytes are
        //    only ever accessed through this atomic, here and in the peer
        //    (which runs this same code): a shared reference to an atomic
        //    is sound across processes as it is across threads.
        unsafe { &*ptr }
    }

    /// Stores `v` (Release).
    #[inline]
    pub fn store(&self, v: u64) {
        // SYNC(floor): Release pairs with the Acquire loads in `load` and
        // `wait_for`, in the other process.
        self.word().store(v, Ordering::Release);
    }

    /// Loads the value (Acquire).
    #[inline]
    pub fn load(&self) -> u64 {
        // SYNC(floor): pairs with `store`.
        self.word().load(Ordering::Acquire)
    }

    /// Spins until the value is `v`; `false` if `give_up()` said so first
    /// (checked every 4096 polls).
    #[inline]
    pub fn wait_for(&self, v: u64, mut give_up: impl FnMut() -> bool) -> bool {
        let word = self.word();
        let mut n: u32 = 0;
        // SYNC(floor): pairs with `store`.
        while word.load(Ordering::Acquire) != v {
            n = n.wrapping_add(1);
            if n % 4096 == 0 && give_up() {
                return false;
            }
            spin_loop();
        }
        true
    }
}

impl Drop for SpinLine {
    fn drop(&mut self) {
        if let Some(path) = &self.owned {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(test: &str) -> String {
        format!("test-{}-{test}", std::process::id())
    }

    #[test]
    fn opener_sees_creator_and_file_goes_with_creator() {
        let path = SpinLine::path_for(&tag("roundtrip"));
        let a = SpinLine::create(&path).unwrap();
        assert_eq!(a.load(), 0);
        let b = SpinLine::open(&path).unwrap();
        a.store(7);
        assert_eq!(b.load(), 7);
        assert!(b.wait_for(7, || true));
        assert!(!b.wait_for(8, || true));
        assert_eq!(
            SpinLine::create(&path).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        drop(a);
        assert!(!path.exists());
        b.store(9); // the opener's mapping outlives the name
        assert_eq!(b.load(), 9);
    }

    #[test]
    fn open_refuses_a_short_file() {
        let path = std::env::temp_dir().join(format!("mapshare-bench-{}-short", tag("short")));
        std::fs::write(&path, [0u8; 8]).unwrap();
        let err = SpinLine::open(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            SpinLine::open(&path).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
