//! The one place that calls the operating system.
//!
//! Every backend exports the same free functions and types (the internal
//! contract); `sys/mod.rs` picks one per build. Nothing outside this module
//! makes a system call.
//!
//! | contract item | what it does |
//! |---|---|
//! | [`Dir`] | an open directory in which segment files live |
//! | `Dir::shm` / `Dir::open` | the shared-memory directory, or any directory |
//! | `create_exclusive` / `open_existing` | open a segment file (`O_EXCL`, `O_NOFOLLOW`) |
//! | `rename_noreplace` / `unlink` / `same_file` / `list` | name management |
//! | `shm_dir` | the path of `Dir::shm`'s directory (`SHM_DIR` names it in messages) |
//! | `fstat` / `reserve` / `is_no_space` | size, owner, mode; reserve space (no SIGBUS later); "disk full" |
//! | [`Mapping`] (`map`) | a shared read-write mapping, unmapped on drop |
//! | `futex_wait` / `futex_wake` | wait on / wake a shared 32-bit word |
//! | `lock_byte` / `unlock_byte` / `byte_range_locked` | per-open-file byte locks (liveness) |
//! | `try_flock` / `unflock` | whole-file lock (attach/detach serialisation) |
//! | `pid` / `euid` / `page_size` / `random_u64` | process facts |
//! | `fork_epoch` / `guard_fork` | handles inherited through `fork()` (a constant 0 and nothing where there is no `fork`) |
//!
//! Backends: `linux.rs` (Linux), `windows.rs` (Windows), and
//! `unsupported.rs` elsewhere and under loom.

#[cfg(all(target_os = "linux", not(mapshare_loom)))]
#[path = "linux.rs"]
mod backend;

#[cfg(all(windows, not(mapshare_loom)))]
#[path = "windows.rs"]
mod backend;

#[cfg(any(not(any(target_os = "linux", windows)), mapshare_loom))]
#[path = "unsupported.rs"]
mod backend;

pub(crate) use backend::*;

#[cfg(all(feature = "tokio", target_os = "linux", not(mapshare_loom)))]
pub(crate) mod async_linux;
