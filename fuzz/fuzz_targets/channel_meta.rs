//! The channel's control block, lane words and slot `seq`/`len` words from
//! arbitrary bytes: the input is the payload offset (one byte, see
//! `split_offset`) and a channel segment's whole payload, behind a valid
//! header, opened as the receiver and as a sender through the public
//! API (`Geometry::read`, the payload-fit check, the slot accessors, the
//! lane's `readable` and the head/tail recovery of a new owner).
//!
//! Properties: never a panic or a hang; a geometry that is accepted is the
//! one stored (capacity a power of two, a stride with room for the slot
//! words and the largest message), within the limits, and its rings fit
//! the stated payload; every message handed out is at most `max_message`
//! bytes; a slot reported corrupt really holds a length above it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mapshare::{
    ChannelStats, Fault, Fingerprint, Kind, Receiver, Sender, TryRecvError, MAX_CAPACITY,
    MAX_MESSAGE, MAX_SENDERS,
};
use mapshare_fuzz::{segment_image_at, split_offset, u64_at, Scratch};

// The channel payload layout (channel.rs): lane words after the control
// line and the two doorbells, then the rings on a 128-byte boundary.
const LANES_OFFSET: u64 = 384;
const LANE_LEN: u64 = 256;
/// A slot's sequence and length words, before its data.
const SLOT_WORDS: u64 = 16;

/// Checks an accepted geometry against the bytes it was read from. The
/// stride is checked for sense (room for the slot words and the largest
/// message, whole 64-byte lines), not re-derived: where the data starts in
/// a slot is the channel's business.
fn check_geometry(st: &ChannelStats, payload: &[u8]) {
    let (cap, mm, lanes) = (
        st.capacity as u64,
        st.max_message as u64,
        st.lanes.len() as u64,
    );
    assert!(st.capacity.is_power_of_two() && st.capacity <= MAX_CAPACITY);
    assert!(st.max_message >= 1 && st.max_message <= MAX_MESSAGE);
    assert!(!st.lanes.is_empty() && st.lanes.len() <= MAX_SENDERS);
    // Exactly the stored words.
    assert_eq!(u64_at(payload, 0), cap, "capacity word");
    assert_eq!(u64_at(payload, 8), mm, "max_message word");
    assert_eq!(u64_at(payload, 24), lanes, "lanes word");
    let stride = u64_at(payload, 16);
    assert!(
        stride % 64 == 0 && stride >= SLOT_WORDS + mm,
        "stride word {stride}"
    );
    // The rings fit the payload (no overflow: all factors are bounded).
    let slots_offset = (LANES_OFFSET + lanes * LANE_LEN).div_ceil(128) * 128;
    let end = u128::from(slots_offset) + u128::from(lanes) * u128::from(cap) * u128::from(stride);
    assert!(end <= payload.len() as u128, "rings run past the payload");
    for lane in &st.lanes {
        assert!(lane.waiting <= cap);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((offset, payload)) = split_offset(data) else {
        return;
    };
    let s = Scratch::get();
    let img = segment_image_at(
        Kind::Channel,
        Fingerprint::new("bytes", 0, 1),
        offset,
        payload,
    );

    s.write(&img);
    if let Ok(mut rx) = s.options::<Receiver>().open() {
        let st = rx.stats();
        check_geometry(&st, payload);
        let _ = rx.len();
        let _ = rx.is_empty();
        let bound = (st.lanes.len() * st.capacity * 2).min(1024);
        for _ in 0..bound {
            match rx.try_recv() {
                Ok(msg) => assert!(msg.len() <= st.max_message),
                Err(TryRecvError::Fault(Fault::BadLength { len, max })) => {
                    assert_eq!(max, st.max_message as u64);
                    assert!(len > max);
                }
                // Nothing ready (and, the input may say, no live sender).
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                Err(e) => panic!("try_recv: {e:?}"),
            }
        }
        assert!(rx
            .try_recv_ref()
            .map_or(true, |m| m.len() <= st.max_message));
    }

    s.write(&img);
    if let Ok(mut tx) = s.options::<Sender>().open() {
        let st = tx.stats();
        check_geometry(&st, payload);
        let msg = [0xa5u8; 8];
        let n = msg.len().min(tx.max_message());
        if let Ok(mut loan) = tx.try_loan() {
            assert_eq!(loan.len(), st.max_message);
            assert!(loan.write_at(0, &msg[..n]));
            let end = loan.len();
            assert!(!loan.write_at(end, b"x"));
            assert_eq!(loan.as_view().len(), st.max_message);
            loan.commit(n);
        }
        for _ in 0..=tx.capacity().min(1024) {
            if tx.try_send(&msg[..n]).is_err() {
                break;
            }
        }
        // The receiver, on what this sender left.
        if let Ok(mut rx) = s.options::<Receiver>().open() {
            while let Ok(r) = rx.try_recv_ref().map(|m| m.len()) {
                assert!(r <= st.max_message);
            }
        }
    }
    s.remove();
});
