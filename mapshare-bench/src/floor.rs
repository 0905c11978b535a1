//! The hardware floors for benchmarks: two processes ping-ponging a number
//! on one shared cache line by spinning ([`SpinLine`]): nothing can pass a
//! message between cores faster, and `mapshare-bench` reports every latency
//! as a ratio to it; and a byte pipe through shared memory moved by plain
//! `memcpy` ([`ByteRing`]): what carrying bytes costs with no protocol.
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

/// Offset of the data in a [`ByteRing`] file: the two counters have a
/// page to themselves (each on its own 128-byte line).
const RING_DATA: usize = 4096;
/// Offset of the reader's counter (`head`); the writer's (`tail`) is at 0.
const RING_HEAD: usize = 128;
/// How long a [`ByteRing`] end spins for room or data before it gives up.
const RING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The copy floor for benchmarks: a byte pipe through shared memory with
/// no protocol but two counters, moved by plain `memcpy` in and out. What
/// a message costs when nothing is validated, nothing is volatile and
/// nobody sleeps: the hardware's price of carrying bytes between two
/// processes, next to which every copying contender is shown.
///
/// | bytes | written by | meaning |
/// |---|---|---|
/// | `tail` (AtomicU64 at 0) | the writer | bytes written so far |
/// | `head` (AtomicU64 at 128) | the reader | bytes read so far |
/// | data (at 4096, `cap` bytes) | the writer, in `[head, head + cap)` not yet read | byte `n` of the stream at `n % cap` |
///
/// The writer only writes bytes `[tail, head + cap)` and the reader only
/// reads `[head, tail)`, each range published by a Release store of the
/// counter and acquired by the peer's Acquire load; both ends are this
/// code, in the bench's own two processes.
#[derive(Debug)]
pub struct ByteRing {
    map: MmapRaw,
    cap: usize,
    owned: Option<PathBuf>,
}

impl ByteRing {
    /// Where the ring tagged `tag` lives: `/dev/shm/mapshare-bench.<tag>.raw`.
    pub fn path_for(tag: &str) -> PathBuf {
        PathBuf::from(format!("/dev/shm/mapshare-bench.{tag}.raw"))
    }

    /// Creates a ring of `cap` data bytes at `path` (mode 0600, exclusively;
    /// removed when the returned ring is dropped).
    ///
    /// # Errors
    /// As [`SpinLine::create`]; `InvalidInput` for a `cap` of 0.
    pub fn create(path: &Path, cap: usize) -> io::Result<ByteRing> {
        if cap == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty ring"));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        let len = RING_DATA + cap;
        match file
            .set_len(len as u64)
            .and_then(|()| MmapOptions::new().len(len).map_raw(&file))
        {
            Ok(map) => Ok(ByteRing {
                map,
                cap,
                owned: Some(path.to_owned()),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Opens the ring another process created at `path`.
    ///
    /// # Errors
    /// The I/O error of opening or mapping it; `InvalidData` if it has no
    /// data bytes.
    pub fn open(path: &Path) -> io::Result<ByteRing> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(0);
        if len <= RING_DATA {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {len} bytes, too short for a ring", path.display()),
            ));
        }
        Ok(ByteRing {
            map: MmapOptions::new().len(len).map_raw(&file)?,
            cap: len - RING_DATA,
            owned: None,
        })
    }

    fn counter(&self, off: usize) -> &AtomicU64 {
        let ptr = self.map.as_mut_ptr().wrapping_add(off).cast::<AtomicU64>();
        debug_assert!(off + 8 <= RING_DATA && ptr.is_aligned());
        // SAFETY: as for `SpinLine::word`: `off + 8` lies within the first
        // page of a live mapping of at least RING_DATA bytes (checked when
        // it was created or opened), page-aligned plus a multiple of 128;
        // these bytes are only accessed through this atomic, by this code.
        unsafe { &*ptr }
    }

    /// The writing end (one per ring, in one process).
    pub fn writer(&self) -> RingWriter<'_> {
        RingWriter {
            ring: self,
            tail: self.counter(0).load(Ordering::Relaxed),
        }
    }

    /// The reading end (one per ring, in one process).
    pub fn reader(&self) -> RingReader<'_> {
        RingReader {
            ring: self,
            head: self.counter(RING_HEAD).load(Ordering::Relaxed),
        }
    }

    /// Spins until `ready()` gives a count above 0; `TimedOut` after
    /// [`RING_TIMEOUT`] (a peer that died).
    fn spin(ready: impl Fn() -> usize) -> io::Result<usize> {
        let start = std::time::Instant::now();
        let mut polls: u32 = 0;
        loop {
            let n = ready();
            if n > 0 {
                return Ok(n);
            }
            polls = polls.wrapping_add(1);
            if polls % 4096 == 0 && start.elapsed() > RING_TIMEOUT {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the peer is gone"));
            }
            spin_loop();
        }
    }
}

impl Drop for ByteRing {
    fn drop(&mut self) {
        if let Some(path) = &self.owned {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The writing end of a [`ByteRing`].
#[derive(Debug)]
pub struct RingWriter<'a> {
    ring: &'a ByteRing,
    tail: u64,
}

impl io::Write for RingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.ring;
        let cap = r.cap as u64;
        let tail = self.tail;
        // SYNC(ring): Acquire pairs with the reader's Release store of
        // `head`: its copies out of the bytes we now reuse are done.
        let free = ByteRing::spin(|| {
            (cap - (tail - r.counter(RING_HEAD).load(Ordering::Acquire))) as usize
        })?;
        let at = (tail % cap) as usize;
        let n = free.min(buf.len()).min(r.cap - at);
        // SAFETY: `at + n <= cap`, so the destination lies in the mapping's
        // data bytes; those bytes (`[tail, tail + n)` of the stream, within
        // `[tail, head + cap)`) belong to the writer until the Release store
        // below; `buf` is local memory, not overlapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                buf.as_ptr(),
                r.map.as_mut_ptr().wrapping_add(RING_DATA + at),
                n,
            );
        }
        self.tail = tail + n as u64;
        // SYNC(ring): Release publishes the bytes; pairs with the reader's
        // Acquire load of `tail`.
        r.counter(0).store(self.tail, Ordering::Release);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading end of a [`ByteRing`].
#[derive(Debug)]
pub struct RingReader<'a> {
    ring: &'a ByteRing,
    head: u64,
}

impl io::Read for RingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.ring;
        let head = self.head;
        // SYNC(ring): Acquire pairs with the writer's Release store of `tail`.
        let ready = ByteRing::spin(|| (r.counter(0).load(Ordering::Acquire) - head) as usize)?;
        let at = (head % r.cap as u64) as usize;
        let n = ready.min(buf.len()).min(r.cap - at);
        // SAFETY: `at + n <= cap`: inside the data bytes; `[head, head + n)`
        // is published (within `[head, tail)`) and not rewritten before our
        // Release store of `head` below; `buf` is local memory.
        unsafe {
            std::ptr::copy_nonoverlapping(
                r.map.as_ptr().wrapping_add(RING_DATA + at),
                buf.as_mut_ptr(),
                n,
            );
        }
        self.head = head + n as u64;
        // SYNC(ring): Release: our copy is done before the writer reuses
        // the bytes (its Acquire load of `head`).
        r.counter(RING_HEAD).store(self.head, Ordering::Release);
        Ok(n)
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
    fn byte_ring_carries_a_stream_across_the_wrap() {
        use std::io::{Read, Write};
        let path = ByteRing::path_for(&tag("ring"));
        let a = ByteRing::create(&path, 1000).unwrap();
        let b = ByteRing::open(&path).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::thread::scope(|s| {
            s.spawn(|| a.writer().write_all(&data).unwrap());
            let mut got = vec![0u8; data.len()];
            b.reader().read_exact(&mut got).unwrap();
            assert!(got == data, "the stream changed on its way");
        });
        drop(a);
        assert!(!path.exists());
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
