//! Validated segment names.

use std::fmt;

use crate::error::SegmentError;

/// Longest valid name, in bytes.
pub const NAME_MAX_LEN: usize = 200;

/// Prefix of every object mapshare creates in the shared-memory directory.
pub(crate) const FILE_PREFIX: &str = "mapshare.";

/// Prefix of a segment still being initialised (hidden, renamed into place
/// when ready).
pub(crate) const INIT_PREFIX: &str = ".mapshare-init.";

/// A segment name that passed the rule: 1 to 200 characters of
/// `A-Z a-z 0-9 . _ -`, not starting with `.`. It can never hold a path
/// separator, so it can never point outside the shared-memory directory.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Checks `name` against the rule.
    ///
    /// # Errors
    /// [`SegmentError::InvalidName`] for an empty, too long or badly spelled name.
    ///
    /// # Examples
    /// ```
    /// use mapshare::Name;
    /// assert!(Name::new("sensor-1.data").is_ok());
    /// assert!(Name::new("../etc/passwd").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Name, SegmentError> {
        if is_valid(name) {
            Ok(Name(name.to_owned()))
        } else {
            Err(SegmentError::InvalidName(name.to_owned()))
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name in the shared-memory directory: `mapshare.NAME`.
    pub(crate) fn file_name(&self) -> String {
        format!("{FILE_PREFIX}{}", self.0)
    }

    /// Inverse of `file_name`, for listing: `None` for anything not ours.
    pub(crate) fn from_file_name(file: &str) -> Option<Name> {
        let rest = file.strip_prefix(FILE_PREFIX)?;
        Name::new(rest).ok()
    }
}

/// The naming rule, as a predicate.
pub(crate) fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_within_rule() {
        for ok in ["a", "A-z_0.9", &"x".repeat(200), "a..b", "0"] {
            assert!(is_valid(ok), "{ok:?}");
        }
    }

    #[test]
    fn rejects_names_outside_rule() {
        for bad in [
            "",
            ".hidden",
            "../x",
            "a/b",
            "a b",
            "é",
            &"x".repeat(201),
            "a\0b",
            "..",
            "a\\b",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
            assert!(matches!(Name::new(bad), Err(SegmentError::InvalidName(_))));
        }
    }

    #[test]
    fn file_name_round_trips() {
        let n = Name::new("demo").unwrap();
        assert_eq!(n.file_name(), "mapshare.demo");
        assert_eq!(Name::from_file_name("mapshare.demo"), Some(n));
        assert_eq!(Name::from_file_name("other.demo"), None);
        assert_eq!(Name::from_file_name(".mapshare-init.1.demo"), None);
    }
}
