//! Ring algorithms on regions of atomics: the single-producer lane
//! ([`spsc`]) under channels, and the broadcast ring under pub/sub. They see
//! only atomics and a slot accessor, never a file descriptor, so unit tests
//! and loom run them on the heap.

pub(crate) mod broadcast;
pub(crate) mod spsc;
