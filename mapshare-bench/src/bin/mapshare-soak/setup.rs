//! The plan of a run: slots and their roles, segment names and options,
//! the clock processes share, and the hash everything is checked with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mapshare::options::{HasCapacity, HasMaxMessage, HasPolicy, HasSenders};
use mapshare::{Options, Policy};

/// Child processes, one per slot.
pub(crate) const SLOTS: usize = 8;
/// Channel lanes (= channel senders).
pub(crate) const LANES: usize = 2;
pub(crate) const CHAN_CAPACITY: usize = 64;
pub(crate) const RING_CAPACITY: usize = 64;
pub(crate) const MAX_MESSAGE: usize = 512;
/// Message header bytes.
pub(crate) const HDR: usize = 48;
pub(crate) const MAGIC: u32 = 0x4b41_4f53; // "SOAK"
/// Timeout of every blocking call in a child (between looks at the phase).
pub(crate) const STEP: Duration = Duration::from_millis(50);
/// A child whose peer has gone (`Disconnected`: killed, being restarted)
/// tries again after this pause.
pub(crate) const PEER_PAUSE: Duration = Duration::from_millis(2);
/// Supervisor poll period.
pub(crate) const POLL: Duration = Duration::from_millis(10);
/// No progress for this long is a hang.
pub(crate) const HANG_AFTER: Duration = Duration::from_secs(5);
/// The chaos loop spares a child that has made no progress for this long,
/// so that a stuck child reaches HANG_AFTER instead of being killed (and
/// its hang hidden) by a random kill.
pub(crate) const SPARE_AFTER: Duration = Duration::from_millis(250);
/// A restart whose first message has not been seen after this long is
/// unrecovered (or censored, if it was killed meanwhile).
pub(crate) const RECOVERY_GIVE_UP: Duration = Duration::from_secs(10);
/// How long a child may take to finish once told to stop.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// "No value" in journal words.
pub(crate) const NONE: u64 = u64::MAX;

/// What a child does: the values of `--role`, one per slot in [`ROLES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Role {
    ChannelSender,
    ChannelReceiver,
    Publisher,
    Subscriber,
    OwPublisher,
    OwSubscriber,
}

pub(crate) const ROLES: [Role; SLOTS] = [
    Role::ChannelSender,
    Role::ChannelSender,
    Role::ChannelReceiver,
    Role::Publisher,
    Role::Subscriber,
    Role::Subscriber,
    Role::OwPublisher,
    Role::OwSubscriber,
];

/// Slot of the channel receiver (its journal is the channel progress).
pub(crate) const RX_SLOT: usize = 2;
pub(crate) const PUB_SLOT: usize = 3;
pub(crate) const OW_PUB_SLOT: usize = 6;
pub(crate) const OW_SUB_SLOT: usize = 7;
pub(crate) const SUB_SLOTS: [usize; 3] = [4, 5, 7];

/// Kill counts are reported by these groups.
pub(crate) const GROUPS: [&str; 4] = [
    "channel-sender",
    "channel-receiver",
    "publisher",
    "subscriber",
];

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::ChannelSender => "channel-sender",
            Role::ChannelReceiver => "channel-receiver",
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::OwPublisher => "ow-publisher",
            Role::OwSubscriber => "ow-subscriber",
        }
    }

    pub(crate) fn group(self) -> usize {
        match self {
            Role::ChannelSender => 0,
            Role::ChannelReceiver => 1,
            Role::Publisher | Role::OwPublisher => 2,
            Role::Subscriber | Role::OwSubscriber => 3,
        }
    }
}

/// Segment names of one run: `<prefix>.<what>`.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) prefix: String,
}

impl Names {
    pub(crate) fn chan(&self) -> String {
        format!("{}.chan", self.prefix)
    }
    pub(crate) fn ring(&self, policy: Policy) -> String {
        match policy {
            Policy::Lossless => format!("{}.ps", self.prefix),
            Policy::OverwriteOldest => format!("{}.ow", self.prefix),
        }
    }
    pub(crate) fn ctl(&self) -> String {
        format!("{}.ctl", self.prefix)
    }
    /// The journal of `slot` (the channel receiver's is its progress).
    pub(crate) fn journal(&self, slot: usize) -> String {
        format!("{}.j{slot}", self.prefix)
    }
    pub(crate) fn all(&self) -> Vec<String> {
        let mut v = vec![
            self.chan(),
            self.ring(Policy::Lossless),
            self.ring(Policy::OverwriteOldest),
            self.ctl(),
        ];
        v.extend((0..SLOTS).map(|s| self.journal(s)));
        v
    }
}

/// Options of a channel end (`K`: `Sender` or `Receiver`).
pub(crate) fn chan_opts<K: HasCapacity + HasMaxMessage + HasSenders>(name: &str) -> Options<K> {
    Options::new(name)
        .capacity(CHAN_CAPACITY)
        .max_message(MAX_MESSAGE)
        .senders(LANES)
}

/// Options of a pub/sub end (`K`: `Publisher` or `Subscriber`).
pub(crate) fn ring_opts<K: HasCapacity + HasMaxMessage + HasPolicy>(
    name: &str,
    policy: Policy,
) -> Options<K> {
    Options::new(name)
        .capacity(RING_CAPACITY)
        .max_message(MAX_MESSAGE)
        .policy(policy)
}

/// Wall-clock nanoseconds (CLOCK_REALTIME): the clock processes can share
/// through std (see the module doc).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(NONE))
}

pub(crate) fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub(crate) fn hash_words(seed: u64, words: &[u64]) -> u64 {
    let mut h = mix(seed ^ 0x243f_6a88_85a3_08d3);
    for &w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 32;
    }
    mix(h ^ words.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn role_names_are_the_role_flag_values() {
        // The supervisor passes `--role <name()>`; clap parses it back.
        for role in Role::value_variants() {
            let flag = role.to_possible_value().expect("not skipped");
            assert_eq!(flag.get_name(), role.name());
        }
    }
}
