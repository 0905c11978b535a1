//! The algorithms on regions of atomics, one file each: the
//! single-producer lane ([`spsc`]) under channels, the broadcast ring
//! ([`broadcast`]) under pub/sub, the blackboard's double-buffered seqlock
//! ([`seqlock`]) and the mailbox's commit order ([`mailbox`]). They see
//! only atomics and a byte region or slot accessor, never a file
//! descriptor, so unit tests and loom run them on the heap.

pub(crate) mod broadcast;
pub(crate) mod mailbox;
pub(crate) mod seqlock;
pub(crate) mod spsc;
