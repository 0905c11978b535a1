//! The registry of attached processes: one header slot per open handle,
//! held by a byte lock that the kernel drops when its process dies
//! ("Registry and lifetime" in the [module docs](super)), and the liveness
//! tokens built on it.

use std::io;

use super::{now_ms, Segment};
use crate::error::SegmentError;
use crate::layout::header::{REGISTRY_OFFSET, REGISTRY_SLOTS, SLOT_LEN};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::region::Region;
use crate::sync::mutex::TOKEN_MASK;
use crate::sync::Liveness;
use crate::sys::{self, OwnedFd};

/// Byte-lock offset of registry slot 0; slot `i` is `SLOT_LOCK_BASE + i`.
/// Far past the end of any segment: byte locks need no data there.
pub(super) const SLOT_LOCK_BASE: u64 = 1 << 40;
/// Generations are 20 bits (slot 8 bits + generation 20 bits = a 28-bit token).
const GEN_MASK: u32 = (1 << 20) - 1;

/// One registry slot in the header.
///
/// | word | writer | meaning |
/// |---|---|---|
/// | `gen` | the claimer, under `flock` | bumped on every claim (1..=2^20-1), past any generation a stored token still names |
/// | `pid` | the claimer; 0 on clean detach | informational |
/// | `since_ms` | the claimer | attach time, ms since the epoch |
///
/// Liveness is never read from these words: only from the slot's byte lock.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Slot {
    gen: AtomicU32,
    pid: AtomicU32,
    since_ms: AtomicU64,
}

#[cfg(not(mapshare_loom))] // loom atomics are larger
const _: () = assert!(std::mem::size_of::<Slot>() == SLOT_LEN);
// `inspect` decodes slots from bytes at these offsets.
#[cfg(not(mapshare_loom))]
const _: () = assert!(std::mem::offset_of!(Slot, pid) == 4);
#[cfg(not(mapshare_loom))]
const _: () = assert!(std::mem::offset_of!(Slot, since_ms) == 8);
crate::pod::shm_state!(Slot, "AtomicU32s and an AtomicU64; repr(C)");

fn slots(region: Region<'_>) -> impl Iterator<Item = (u32, &Slot)> + '_ {
    (0..REGISTRY_SLOTS).filter_map(move |i| {
        region
            .get::<Slot>(REGISTRY_OFFSET + i * SLOT_LEN)
            .map(|s| (i as u32, s))
    })
}

pub(super) fn any_slot_live(fd: &OwnedFd) -> io::Result<bool> {
    sys::byte_range_locked(fd, SLOT_LOCK_BASE, REGISTRY_SLOTS as u64)
}

/// Claims slot 0 for a creator, before anyone can see the segment: its
/// byte lock, generation 1, `pid` and `since_ms`. Returns (slot, generation).
pub(super) fn claim_first(
    fd: &OwnedFd,
    region: Region<'_>,
    pid: u32,
    since_ms: u64,
    what: &str,
) -> Result<(u32, u32), SegmentError> {
    if !sys::lock_byte(fd, SLOT_LOCK_BASE)
        .map_err(|e| SegmentError::io(format!("{what}: lock"), e))?
    {
        return Err(SegmentError::Busy(what.to_owned()));
    }
    let slot0 = region
        .get::<Slot>(REGISTRY_OFFSET)
        .ok_or_else(|| SegmentError::InvalidSize(what.to_owned()))?;
    slot0.gen.store(1, Ordering::Relaxed);
    slot0.pid.store(pid, Ordering::Relaxed);
    slot0.since_ms.store(since_ms, Ordering::Relaxed);
    Ok((0, 1))
}

/// Lists every liveness token a kind keeps in its payload (mutex owner
/// words, the holders of its roles), so that [`claim`] never hands out a
/// generation one of them still names. Reads through bounds-checked
/// [`Region::get`]; a token word a peer scribbled on only makes `claim`
/// skip one more generation.
pub(crate) type TokenWords = fn(Region<'_>, &mut dyn FnMut(u32));

/// [`TokenWords`] of a kind that stores no tokens (events).
pub(crate) fn no_tokens(_: Region<'_>, _: &mut dyn FnMut(u32)) {}

/// The generation after `cur` (1..=2^20-1, wrapping) that no token in
/// `named` (tokens of this slot's previous claimers, all dead: the slot is
/// free) still names.
///
/// Without the skip, 2^20-1 claims of one slot while a killed owner's
/// token stays in a mutex word would bring the generation back to that
/// token's, and the new claimer, alive, would make the dead owner look
/// alive (the lock never recovered: ABA). `named` is short (a few hundred
/// words at most), so the loop ends within `named.len() + 1` steps.
fn next_gen(cur: u32, slot: u32, named: &[u32]) -> u32 {
    let mut gen = cur & GEN_MASK;
    loop {
        gen = gen % GEN_MASK + 1;
        let stale = |t: &u32| {
            let t = t & TOKEN_MASK;
            t & 0xff == slot && t >> 8 == gen
        };
        if !named.iter().any(stale) {
            return gen;
        }
    }
}

/// Claims the first free slot (under `flock`, attaching): takes its byte
/// lock, bumps its generation past every generation still named by a
/// token in `payload` (see [`next_gen`]), records our pid and the time.
/// Returns (slot, generation).
pub(super) fn claim(
    fd: &OwnedFd,
    region: Region<'_>,
    payload: Option<Region<'_>>,
    tokens: TokenWords,
    what: &str,
) -> Result<(u32, u32), SegmentError> {
    let mut named = Vec::new();
    if let Some(p) = payload {
        tokens(p, &mut |t| {
            if t & TOKEN_MASK != 0 {
                named.push(t & TOKEN_MASK);
            }
        });
    }
    for (i, slot) in slots(region) {
        if sys::lock_byte(fd, SLOT_LOCK_BASE + u64::from(i))
            .map_err(|e| SegmentError::io(what, e))?
        {
            let gen = next_gen(slot.gen.load(Ordering::Relaxed), i, &named);
            slot.gen.store(gen, Ordering::Relaxed);
            slot.pid.store(sys::pid(), Ordering::Relaxed);
            slot.since_ms.store(now_ms(), Ordering::Relaxed);
            return Ok((i, gen));
        }
    }
    Err(SegmentError::TooManyAttached(what.to_owned()))
}

/// Gives slot `slot` up (detaching): clears its pid when the header page
/// is still backed (`header_backed`: see `Drop for Segment`), and releases
/// its byte lock.
pub(super) fn release(fd: &OwnedFd, region: Region<'_>, slot: u32, header_backed: bool) {
    if header_backed {
        if let Some(s) = region.get::<Slot>(REGISTRY_OFFSET + slot as usize * SLOT_LEN) {
            s.pid.store(0, Ordering::Relaxed);
        }
    }
    let _ = sys::unlock_byte(fd, SLOT_LOCK_BASE + u64::from(slot));
}

impl Liveness for Segment {
    fn intact(&self) -> bool {
        self.is_intact()
    }

    fn token(&self) -> u32 {
        ((self.gen & GEN_MASK) << 8) | self.slot
    }

    fn is_alive(&self, token: u32) -> bool {
        let token = token & TOKEN_MASK;
        let (slot, gen) = (token & 0xff, token >> 8);
        if slot == self.slot {
            return gen == self.gen;
        }
        if slot as usize >= REGISTRY_SLOTS || gen == 0 {
            return false;
        }
        let Some(s) = Region::of(&self.map).get::<Slot>(REGISTRY_OFFSET + slot as usize * SLOT_LEN)
        else {
            return false;
        };
        if s.gen.load(Ordering::Relaxed) & GEN_MASK != gen {
            return false;
        }
        // On an error we cannot tell; say alive, and look again next poll.
        sys::byte_range_locked(&self.fd, SLOT_LOCK_BASE + u64::from(slot), 1).unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_gen_wraps_and_skips_generations_still_named() {
        assert_eq!(next_gen(1, 3, &[]), 2);
        assert_eq!(next_gen(GEN_MASK, 3, &[]), 1);
        assert_eq!(next_gen(0, 3, &[]), 1);
        // A dead owner's token (slot 3, generation 1) in a mutex word, with
        // its flag bits: the wrap skips it.
        let dead = (1u32 << 31) | (1 << 8) | 3;
        assert_eq!(next_gen(GEN_MASK, 3, &[dead]), 2);
        // Runs of named generations are all skipped; other slots' are not.
        let named = [(2 << 8) | 3, (3 << 8) | 3, (4 << 8) | 7];
        assert_eq!(next_gen(1, 3, &named), 4);
        assert_eq!(next_gen(1, 7, &named), 2);
        // Garbage in every word still ends.
        let all: Vec<u32> = (1..=300).map(|g| (g << 8) | 5).collect();
        assert_eq!(next_gen(0, 5, &all), 301);
    }
}
