//! The mailbox's protocol: at most one byte message, stored and taken
//! under the mailbox's mutex. The public `Mailbox` (`kinds::mailbox`)
//! maps it onto a segment and does the waiting; nothing here knows it.
//!
//! # What lives in shared memory, and who writes it
//!
//! | struct / word | writer | readers |
//! |---|---|---|
//! | [`MailboxState`] `full` | a sender setting it ([`store`]), a receiver clearing it ([`take`]), under the mutex | both, under the mutex; [`MailboxState::is_full`] without it |
//! | [`MailboxState`] `len`, `sent` | a sender, under the mutex | receivers, under the mutex (`len`) |
//! | [`MailboxState`] `received` | a receiver, under the mutex | nobody (informational) |
//! | the data region, `capacity` bytes | a sender, under the mutex | receivers, under the mutex |
//!
//! # Commit order
//! A message is committed by setting `full` *after* its bytes and length,
//! and taken by clearing `full` *after* copying it out, both under the
//! mutex. So a sender killed mid-write leaves the mailbox empty (nothing was
//! sent), and a receiver killed mid-read leaves the message in place for the
//! next receiver: each message is delivered exactly once to a receiver that
//! returns it. The mutex is robust: the next locker takes a dead holder's
//! lock over, and finds the state consistent whatever it was doing.
//!
//! # What a hostile peer can do
//! Store any bytes, any length and any `full` word: a length above the
//! capacity is reported as [`Fault::BadLength`] (and the mailbox emptied),
//! never allocated or read past the data region, whose size the caller
//! takes from its own validated header.

use crate::error::Fault;
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::region::Region;

/// The mailbox's shared words.
///
/// | word | meaning |
/// |---|---|
/// | `full` | 0 empty, 1 holds a message (anything else: treated as full, length checked) |
/// | `len` | message length in bytes; checked against the capacity on every read |
/// | `sent`, `received` | message counters (informational) |
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct MailboxState {
    full: AtomicU32,
    _r: AtomicU32,
    len: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    _pad: [u64; 12],
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<MailboxState>() == 128);
crate::pod::shm_state!(
    MailboxState,
    "AtomicU32s, AtomicU64s and u64 padding; repr(C)"
);

impl MailboxState {
    /// Whether a message is waiting (a snapshot; no mutex needed).
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire) != 0
    }
}

/// Stores `msg` in `data` and commits it, if the mailbox is empty;
/// `false` (storing nothing) if it holds a message. The caller holds the
/// mailbox's mutex, and has checked `msg` against the capacity.
pub(crate) fn store(data: Region<'_>, st: &MailboxState, msg: &[u8]) -> bool {
    if st.full.load(Ordering::Relaxed) != 0 {
        return false;
    }
    data.write(0, msg);
    st.len.store(msg.len() as u64, Ordering::Relaxed);
    st.sent.fetch_add(1, Ordering::Relaxed);
    // SYNC(mailbox): Release commits the bytes; pairs with the
    // Acquire load of `full` in `take` (and the mutex).
    st.full.store(1, Ordering::Release);
    true
}

/// Takes the message out of `data`, if there is one (`None`: empty).
/// The mailbox is then empty, and the result is the message or, for a
/// stored length above `capacity`, [`Fault::BadLength`]. The caller holds
/// the mailbox's mutex.
pub(crate) fn take(
    data: Region<'_>,
    st: &MailboxState,
    capacity: usize,
) -> Option<Result<Vec<u8>, Fault>> {
    // SYNC(mailbox): pairs with the Release store in `store`.
    if st.full.load(Ordering::Acquire) == 0 {
        return None;
    }
    // Copy the length out once, then check it.
    let len = st.len.load(Ordering::Relaxed);
    let result = if len > capacity as u64 {
        Err(Fault::BadLength {
            len,
            max: capacity as u64,
        })
    } else {
        let mut buf = vec![0u8; len as usize];
        if data.read(0, &mut buf) {
            Ok(buf)
        } else {
            Err(Fault::BadLength {
                len,
                max: capacity as u64,
            })
        }
    };
    st.received.fetch_add(1, Ordering::Relaxed);
    st.full.store(0, Ordering::Release);
    Some(result)
}

#[cfg(all(test, not(mapshare_loom)))]
mod tests {
    use super::*;
    use crate::region::HeapRegion;

    const CAPACITY: usize = 64;

    fn parts(h: &HeapRegion) -> (Region<'_>, &MailboxState) {
        let r = h.region();
        (
            r.sub(128, CAPACITY).unwrap(),
            r.get::<MailboxState>(0).unwrap(),
        )
    }

    #[test]
    fn a_message_exists_once_committed_and_is_taken_once() {
        let h = HeapRegion::new(128 + CAPACITY);
        let (data, st) = parts(&h);
        // A sender killed before its commit: bytes and length, no `full`.
        data.write(0, b"half");
        st.len.store(4, Ordering::Relaxed);
        assert!(!st.is_full());
        assert_eq!(take(data, st, CAPACITY), None);
        assert!(store(data, st, b"hello"));
        assert!(!store(data, st, b"again"), "full: refused, not overwritten");
        assert_eq!(take(data, st, CAPACITY), Some(Ok(b"hello".to_vec())));
        assert_eq!(take(data, st, CAPACITY), None);
    }

    #[test]
    fn a_length_past_the_capacity_is_a_fault_and_empties_the_mailbox() {
        let h = HeapRegion::new(128 + CAPACITY);
        let (data, st) = parts(&h);
        assert!(store(data, st, b"x"));
        st.len.store(u64::MAX, Ordering::Relaxed);
        let max = CAPACITY as u64;
        let bad = Fault::BadLength { len: u64::MAX, max };
        assert_eq!(take(data, st, CAPACITY), Some(Err(bad)));
        assert!(!st.is_full());
    }
}
