//! Pure code for the bytes in a segment: the header, layout fingerprints and
//! [`FixedStr`](fixed_str::FixedStr). No system calls; everything here is fuzzed.

pub mod fixed_str;
pub mod header;

use std::fmt;

/// What kind of object a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum Kind {
    /// A [`Shared<T>`](crate::Shared) value with its mutex and event.
    Shared = 1,
    /// A one-message [`Mailbox`](crate::Mailbox).
    Mailbox = 2,
    /// A standalone named [`Mutex`](crate::Mutex).
    Mutex = 3,
    /// A standalone named [`Event`](crate::Event).
    Event = 4,
    /// A message channel: senders' lanes and one receiver.
    Channel = 5,
    /// A publish/subscribe ring: one publisher, many subscribers.
    PubSub = 6,
    /// A blackboard: the latest value, one writer, many readers.
    Blackboard = 7,
    /// A request/response service: one server, many clients.
    Service = 8,
}

impl Kind {
    /// Decodes a kind word; `None` for an unknown one.
    pub fn from_u32(v: u32) -> Option<Kind> {
        Some(match v {
            1 => Kind::Shared,
            2 => Kind::Mailbox,
            3 => Kind::Mutex,
            4 => Kind::Event,
            5 => Kind::Channel,
            6 => Kind::PubSub,
            7 => Kind::Blackboard,
            8 => Kind::Service,
            _ => return None,
        })
    }

    /// Lower-case name, as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Shared => "shared",
            Kind::Mailbox => "mailbox",
            Kind::Mutex => "mutex",
            Kind::Event => "event",
            Kind::Channel => "channel",
            Kind::PubSub => "pubsub",
            Kind::Blackboard => "blackboard",
            Kind::Service => "service",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest type name a fingerprint keeps, in bytes.
pub const FINGERPRINT_NAME_MAX: usize = 104;

/// The layout of a segment's payload: a type name, its size and alignment.
/// Two programs agree on a layout when all three match.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    name: String,
    size: u64,
    align: u64,
}

impl Fingerprint {
    /// A fingerprint from its parts; the name is cut (on a char boundary) to
    /// [`FINGERPRINT_NAME_MAX`] bytes.
    pub fn new(name: &str, size: u64, align: u64) -> Fingerprint {
        let (kept, _) = fixed_str::split_at_boundary(name, FINGERPRINT_NAME_MAX);
        Fingerprint {
            name: kept.to_owned(),
            size,
            align,
        }
    }

    /// The fingerprint of `T`: its type name without module paths (so
    /// `sender::Record` and `receiver::Record` agree), size and alignment.
    pub fn of<T>() -> Fingerprint {
        Fingerprint::new(
            &short_type_name(std::any::type_name::<T>()),
            std::mem::size_of::<T>() as u64,
            std::mem::align_of::<T>() as u64,
        )
    }

    /// Type name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Alignment in bytes.
    pub fn align(&self) -> u64 {
        self.align
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (size {}, align {})",
            self.name, self.size, self.align
        )
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Strips module paths from every path in a type name:
/// `a::b::Rec<c::D, 4>` becomes `Rec<D, 4>`.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            segment.clear();
        } else if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else {
            out.push_str(&segment);
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(&segment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_type_name_strips_paths() {
        assert_eq!(short_type_name("sender::Record"), "Record");
        assert_eq!(short_type_name("a::b::Rec<c::D, 4>"), "Rec<D, 4>");
        assert_eq!(short_type_name("[u8; 16]"), "[u8; 16]");
        assert_eq!(short_type_name("u64"), "u64");
        assert_eq!(short_type_name("(a::X, b::Y)"), "(X, Y)");
    }

    #[test]
    fn fingerprint_names_size_and_align() {
        let f = Fingerprint::of::<u64>();
        assert_eq!((f.name(), f.size(), f.align()), ("u64", 8, 8));
        assert_eq!(f.to_string(), "u64 (size 8, align 8)");
    }

    #[test]
    fn kind_round_trips() {
        for k in [
            Kind::Shared,
            Kind::Mailbox,
            Kind::Mutex,
            Kind::Event,
            Kind::Channel,
            Kind::PubSub,
            Kind::Blackboard,
            Kind::Service,
        ] {
            assert_eq!(Kind::from_u32(k as u32), Some(k));
        }
        assert_eq!(Kind::from_u32(0), None);
        assert_eq!(Kind::from_u32(99), None);
    }
}
