//! [`FixedStr<N>`]: UTF-8 text with its exact byte length, in a fixed buffer.
//!
//! The classic bug this prevents: copying `Length(str) * SizeOf(Char)`
//! bytes, a length in characters, so half of a UTF-16 (or most of a UTF-8)
//! string is lost. Here every length is in bytes, a string that does not fit
//! is an error, and the one call that cuts ([`FixedStr::set_truncating`])
//! cuts on a character boundary and says how much it dropped.

use std::fmt;

use crate::error::StrError;

/// Up to `N` bytes of UTF-8 text with its byte length.
///
/// Plain data (alignment 1, no padding, valid for every bit pattern), so it
/// can sit inside a [`Shared<T>`](crate::Shared) record. Bytes from shared
/// memory are checked when read ([`FixedStr::as_str`]): a bad length or
/// invalid UTF-8 is an error, never a panic.
///
/// # Examples
/// ```
/// use mapshare::FixedStr;
/// let s = FixedStr::<32>::new("héllo, 世界 🦀")?;
/// assert_eq!(s.as_str()?, "héllo, 世界 🦀");
/// assert_eq!(s.len(), "héllo, 世界 🦀".len()); // bytes, not characters
/// assert!(FixedStr::<4>::new("hello").is_err()); // never cut silently
/// # Ok::<(), mapshare::StrError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FixedStr<const N: usize> {
    len: [u8; 4],
    bytes: [u8; N],
}

/// Splits `s` at the largest char boundary `<= max` bytes.
pub(crate) fn split_at_boundary(s: &str, max: usize) -> (&str, &str) {
    if s.len() <= max {
        return (s, "");
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.split_at(cut)
}

/// What [`FixedStr::set_truncating`] kept and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Bytes stored.
    pub kept: usize,
    /// Bytes dropped from the end (0: nothing was cut).
    pub dropped: usize,
}

impl<const N: usize> FixedStr<N> {
    /// Capacity in bytes.
    pub const CAPACITY: usize = N;

    /// The empty string.
    pub const fn empty() -> Self {
        FixedStr {
            len: [0; 4],
            bytes: [0; N],
        }
    }

    /// `s`, if it fits.
    ///
    /// # Errors
    /// [`StrError::TooLong`] when `s.len() > N` (bytes).
    pub fn new(s: &str) -> Result<Self, StrError> {
        let mut out = Self::empty();
        out.set(s)?;
        Ok(out)
    }

    /// Replaces the text with `s`, if it fits; otherwise leaves it unchanged.
    ///
    /// # Errors
    /// [`StrError::TooLong`] when `s.len() > N` (bytes).
    pub fn set(&mut self, s: &str) -> Result<(), StrError> {
        if s.len() > N || s.len() > u32::MAX as usize {
            return Err(StrError::TooLong {
                len: s.len(),
                capacity: N,
            });
        }
        self.store(s);
        Ok(())
    }

    /// Stores as much of `s` as fits, cut on a char boundary, and reports
    /// what was dropped.
    pub fn set_truncating(&mut self, s: &str) -> Truncation {
        let (kept, dropped) = split_at_boundary(s, N);
        self.store(kept);
        Truncation {
            kept: kept.len(),
            dropped: dropped.len(),
        }
    }

    fn store(&mut self, s: &str) {
        self.bytes = [0; N];
        self.bytes[..s.len()].copy_from_slice(s.as_bytes());
        self.len = (s.len() as u32).to_ne_bytes();
    }

    /// The stored length in bytes, as recorded (clamped to `N`).
    pub fn len(&self) -> usize {
        (u32::from_ne_bytes(self.len) as usize).min(N)
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text, after checking the length and the UTF-8.
    ///
    /// # Errors
    /// [`StrError::BadLength`] or [`StrError::NotUtf8`] when the bytes were
    /// not written by [`FixedStr::set`] (a corrupt or hostile peer).
    pub fn as_str(&self) -> Result<&str, StrError> {
        let len = u32::from_ne_bytes(self.len);
        if len as usize > N {
            return Err(StrError::BadLength { len, capacity: N });
        }
        std::str::from_utf8(&self.bytes[..len as usize]).map_err(|e| StrError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })
    }

    /// The raw bytes, as stored (up to the recorded length, clamped to `N`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Ok(s) => fmt::Debug::fmt(s, f),
            Err(e) => write!(f, "<invalid FixedStr: {e}>"),
        }
    }
}

impl<const N: usize> fmt::Display for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Ok(s) => f.write_str(s),
            Err(e) => write!(f, "<invalid FixedStr: {e}>"),
        }
    }
}

impl<const N: usize> TryFrom<&str> for FixedStr<N> {
    type Error = StrError;
    fn try_from(s: &str) -> Result<Self, StrError> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = "Grüße, Мир, 世界, مرحبا, नमस्ते, 🦀👩‍👩‍👧";

    #[test]
    fn mixed_scripts_round_trip_byte_for_byte() {
        let s = FixedStr::<128>::new(MIXED).unwrap();
        assert_eq!(s.as_str().unwrap(), MIXED);
        assert_eq!(s.as_bytes(), MIXED.as_bytes());
        assert_eq!(s.len(), MIXED.len());
        assert!(
            MIXED.len() > MIXED.chars().count(),
            "the test needs multibyte text"
        );
    }

    #[test]
    fn set_fails_when_too_long_and_keeps_old_value() {
        let mut s = FixedStr::<8>::new("ok").unwrap();
        assert_eq!(
            s.set("世界世界"),
            Err(StrError::TooLong {
                len: 12,
                capacity: 8
            })
        );
        assert_eq!(s.as_str().unwrap(), "ok");
    }

    #[test]
    fn set_truncating_cuts_on_char_boundary() {
        let mut s = FixedStr::<8>::empty();
        // "世" is 3 bytes: 8 bytes hold two of them and 2 bytes of a third.
        let t = s.set_truncating("世界世界");
        assert_eq!(
            t,
            Truncation {
                kept: 6,
                dropped: 6
            }
        );
        assert_eq!(s.as_str().unwrap(), "世界");
        let t = s.set_truncating("abc");
        assert_eq!(
            t,
            Truncation {
                kept: 3,
                dropped: 0
            }
        );
    }

    #[test]
    fn corrupt_bytes_are_errors_not_panics() {
        let mut s = FixedStr::<4>::empty();
        s.len = 99u32.to_ne_bytes();
        assert_eq!(
            s.as_str(),
            Err(StrError::BadLength {
                len: 99,
                capacity: 4
            })
        );
        assert_eq!(s.len(), 4);
        s.len = 2u32.to_ne_bytes();
        s.bytes = [0xff, 0xfe, 0, 0];
        assert!(matches!(
            s.as_str(),
            Err(StrError::NotUtf8 { valid_up_to: 0 })
        ));
        assert!(format!("{s:?}").contains("invalid"));
    }
}
