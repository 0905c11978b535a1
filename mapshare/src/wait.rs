//! How long a call may wait, and the four public forms of every waiting
//! call (crossbeam's `try_x`, `x`, `x_timeout`, `x_deadline`), written once.
//!
//! Each kind implements one inner function taking a [`Wait`] and returning
//! the timeout-form error; the macros here derive the four public forms
//! from it, converting the error to the form's own type:
//!
//! | form | waits | error type |
//! |---|---|---|
//! | `try_x` | never | `TryRecvError` / `TrySendError<T>` / `TryLockError<G>` |
//! | `x` | as long as it takes | `RecvError` / `SendError<T>` / `LockError<G>` |
//! | `x_timeout(Duration)` | at most that long | `RecvTimeoutError` / `SendTimeoutError<T>` / `LockTimeoutError<G>` |
//! | `x_deadline(Instant)` | until then | as `x_timeout` |
//!
//! Naming rule: a variant of a call (`_into`, `_ref`, `_pod`) comes before
//! the form's suffix: `recv_into_timeout`, never `recv_timeout_into`.
//!
//! Any `Duration` is accepted: one that reaches past what `Instant` can
//! represent (`Duration::MAX`, say) means "as long as it takes".

use std::time::{Duration, Instant};

use crate::error::{
    LockError, LockTimeoutError, RecvError, RecvTimeoutError, SendError, SendTimeoutError,
    TryLockError, TryRecvError, TrySendError,
};

/// How long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all: one look.
    Try,
    /// Until the deadline; `None`: as long as it takes.
    Until(Option<Instant>),
}

impl Wait {
    /// As long as it takes.
    pub(crate) const FOREVER: Wait = Wait::Until(None);

    /// At most `timeout` from now; a timeout past `Instant`'s range is
    /// "as long as it takes" (never a panic).
    pub(crate) fn timeout(timeout: Duration) -> Wait {
        Wait::Until(Instant::now().checked_add(timeout))
    }

    /// Until `deadline`.
    pub(crate) fn deadline(deadline: Instant) -> Wait {
        Wait::Until(Some(deadline))
    }

    /// The deadline when waiting, `None` for a try.
    pub(crate) fn until(self) -> Option<Option<Instant>> {
        match self {
            Wait::Try => None,
            Wait::Until(d) => Some(d),
        }
    }
}

// ---- error conversions from the inner (timeout-form) result ----

pub(crate) fn recv_try(e: RecvTimeoutError) -> TryRecvError {
    match e {
        RecvTimeoutError::Timeout => TryRecvError::Empty,
        RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
        RecvTimeoutError::Lagged(n) => TryRecvError::Lagged(n),
        RecvTimeoutError::Fault(f) => TryRecvError::Fault(f),
    }
}

/// The blocking form's error. A wait as long as it takes never times out
/// (every inner function returns `Timeout` only past a deadline); were it
/// to, the caller hears `Disconnected` rather than a panic.
pub(crate) fn recv_blocking(e: RecvTimeoutError) -> RecvError {
    match e {
        RecvTimeoutError::Timeout => {
            debug_assert!(false, "a wait without a deadline timed out");
            RecvError::Disconnected
        }
        RecvTimeoutError::Disconnected => RecvError::Disconnected,
        RecvTimeoutError::Lagged(n) => RecvError::Lagged(n),
        RecvTimeoutError::Fault(f) => RecvError::Fault(f),
    }
}

pub(crate) fn send_try<T>(e: SendTimeoutError<T>) -> TrySendError<T> {
    match e {
        SendTimeoutError::Timeout(m) => TrySendError::Full(m),
        SendTimeoutError::Disconnected(m) => TrySendError::Disconnected(m),
        SendTimeoutError::TooLarge(m) => TrySendError::TooLarge(m),
        SendTimeoutError::Fault(m, f) => TrySendError::Fault(m, f),
    }
}

/// `Err(msg)` for a timeout, which a wait as long as it takes never
/// reports; the blocking forms loop on it to be sure.
pub(crate) fn send_blocking<T>(e: SendTimeoutError<T>) -> Result<SendError<T>, T> {
    match e {
        SendTimeoutError::Timeout(m) => Err(m),
        SendTimeoutError::Disconnected(m) => Ok(SendError::Disconnected(m)),
        SendTimeoutError::TooLarge(m) => Ok(SendError::TooLarge(m)),
        SendTimeoutError::Fault(m, f) => Ok(SendError::Fault(m, f)),
    }
}

pub(crate) fn lock_try<G>(e: LockTimeoutError<G>) -> TryLockError<G> {
    match e {
        LockTimeoutError::OwnerDied(g) => TryLockError::OwnerDied(g),
        LockTimeoutError::Timeout => TryLockError::WouldBlock,
        LockTimeoutError::Fault(f) => TryLockError::Fault(f),
    }
}

/// `None` for a timeout (see [`send_blocking`]).
pub(crate) fn lock_blocking<G>(e: LockTimeoutError<G>) -> Option<LockError<G>> {
    match e {
        LockTimeoutError::OwnerDied(g) => Some(LockError::OwnerDied(g)),
        LockTimeoutError::Timeout => None,
        LockTimeoutError::Fault(f) => Some(LockError::Fault(f)),
    }
}

/// The four forms of a receive-like call, from an inner
/// `fn(&self | &mut self, args.., Wait) -> Result<T, RecvTimeoutError>`.
macro_rules! recv_forms {
    (
        $(#[$doc:meta])*
        $try_:ident, $base:ident, $timeout:ident, $deadline:ident
        (&mut $s:tt) ($($arg:ident: $ty:ty),*) -> $ok:ty = $inner:ident
    ) => {
        $crate::wait::recv_forms!(@go $(#[$doc])* $try_, $base, $timeout, $deadline [&mut $s] $s ($($arg: $ty),*) -> $ok = $inner);
    };
    (
        $(#[$doc:meta])*
        $try_:ident, $base:ident, $timeout:ident, $deadline:ident
        (& $s:tt) ($($arg:ident: $ty:ty),*) -> $ok:ty = $inner:ident
    ) => {
        $crate::wait::recv_forms!(@go $(#[$doc])* $try_, $base, $timeout, $deadline [& $s] $s ($($arg: $ty),*) -> $ok = $inner);
    };
    (
        @go $(#[$doc:meta])*
        $try_:ident, $base:ident, $timeout:ident, $deadline:ident
        [$($self_:tt)+] $self:tt ($($arg:ident: $ty:ty),*) -> $ok:ty = $inner:ident
    ) => {
        $(#[$doc])*
        #[doc = ""]
        #[doc = concat!("Waits as long as it takes. Without waiting: [`Self::", stringify!($try_), "`]; with a limit: [`Self::", stringify!($timeout), "`], [`Self::", stringify!($deadline), "`].")]
        #[inline]
        pub fn $base($($self_)+, $($arg: $ty),*) -> Result<$ok, $crate::error::RecvError> {
            // One call: a wait as long as it takes never times out (and a
            // loop could not return a value that borrows `self`).
            $self.$inner($($arg,)* $crate::wait::Wait::FOREVER).map_err($crate::wait::recv_blocking)
        }

        #[doc = concat!("As [`Self::", stringify!($base), "`], without waiting: `Empty` when nothing is there now.")]
        #[inline]
        pub fn $try_($($self_)+, $($arg: $ty),*) -> Result<$ok, $crate::error::TryRecvError> {
            $self.$inner($($arg,)* $crate::wait::Wait::Try).map_err($crate::wait::recv_try)
        }

        #[doc = concat!("As [`Self::", stringify!($base), "`], waiting at most `timeout` (any `Duration`; one past `Instant`'s range waits as long as it takes).")]
        #[inline]
        pub fn $timeout($($self_)+, $($arg: $ty,)* timeout: std::time::Duration) -> Result<$ok, $crate::error::RecvTimeoutError> {
            $self.$inner($($arg,)* $crate::wait::Wait::timeout(timeout))
        }

        #[doc = concat!("As [`Self::", stringify!($base), "`], waiting until `deadline` at most.")]
        #[inline]
        pub fn $deadline($($self_)+, $($arg: $ty,)* deadline: std::time::Instant) -> Result<$ok, $crate::error::RecvTimeoutError> {
            $self.$inner($($arg,)* $crate::wait::Wait::deadline(deadline))
        }
    };
}

/// The four forms of a send-like call, from an inner
/// `fn(&mut self, msg: M, Wait) -> Result<(), SendTimeoutError<M>>`.
macro_rules! send_forms {
    (
        $(#[$doc:meta])*
        $try_:ident, $base:ident, $timeout:ident, $deadline:ident
        (&mut $s:tt) <$($lt:lifetime)?> ($msg:ident: $ty:ty) -> $ok:ty = $inner:ident
    ) => {
        $crate::wait::send_forms!(@go $(#[$doc])* $try_, $base, $timeout, $deadline [&mut $s] $s <$($lt)?> ($msg: $ty) -> $ok = $inner);
    };
    (
        $(#[$doc:meta])*
        $try_:ident, $base:ident, $timeout:ident, $deadline:ident
        (& $s:tt) <$($lt:lifetime)?> ($msg:ident: $ty:ty) -> $ok:ty = $inner:ident
    ) => {
        $crate::wait::send_forms!(@go $(#[$doc])* $try_, $base, $timeout, $deadline [& $s] $s <$($lt)?> ($msg: $ty) -> $ok = $inner);
    };
    (
        @go $(#[$doc:meta])*
        $try_:ident, $base:ident, $timeout:ident, $deadline:ident
        [$($self_:tt)+] $self:tt <$($lt:lifetime)?> ($msg:ident: $ty:ty) -> $ok:ty = $inner:ident
    ) => {
        $(#[$doc])*
        #[doc = ""]
        #[doc = concat!("Waits for room as long as it takes. Without waiting: [`Self::", stringify!($try_), "`]; with a limit: [`Self::", stringify!($timeout), "`], [`Self::", stringify!($deadline), "`].")]
        #[inline]
        pub fn $base<$($lt)?>($($self_)+, mut $msg: $ty) -> Result<$ok, $crate::error::SendError<$ty>> {
            loop {
                match $self.$inner($msg, $crate::wait::Wait::FOREVER) {
                    Ok(v) => return Ok(v),
                    Err(e) => match $crate::wait::send_blocking(e) {
                        Ok(e) => return Err(e),
                        Err(m) => $msg = m,
                    },
                }
            }
        }

        #[doc = concat!("As [`Self::", stringify!($base), "`], without waiting: `Full` when there is no room now.")]
        #[inline]
        pub fn $try_<$($lt)?>($($self_)+, $msg: $ty) -> Result<$ok, $crate::error::TrySendError<$ty>> {
            $self.$inner($msg, $crate::wait::Wait::Try).map_err($crate::wait::send_try)
        }

        #[doc = concat!("As [`Self::", stringify!($base), "`], waiting at most `timeout` (any `Duration`).")]
        #[inline]
        pub fn $timeout<$($lt)?>($($self_)+, $msg: $ty, timeout: std::time::Duration) -> Result<$ok, $crate::error::SendTimeoutError<$ty>> {
            $self.$inner($msg, $crate::wait::Wait::timeout(timeout))
        }

        #[doc = concat!("As [`Self::", stringify!($base), "`], waiting until `deadline` at most.")]
        #[inline]
        pub fn $deadline<$($lt)?>($($self_)+, $msg: $ty, deadline: std::time::Instant) -> Result<$ok, $crate::error::SendTimeoutError<$ty>> {
            $self.$inner($msg, $crate::wait::Wait::deadline(deadline))
        }
    };
}

/// The four forms of `lock`, from an inner
/// `fn(&self, Wait) -> Result<G, LockTimeoutError<G>>`.
macro_rules! lock_forms {
    ($(#[$doc:meta])* $guard:ty = $inner:ident) => {
        $(#[$doc])*
        ///
        /// Waits as long as it takes. A holder killed at any moment never
        /// blocks us: its lock is taken over within a few milliseconds.
        ///
        /// # Errors
        /// [`LockError::OwnerDied`](crate::LockError::OwnerDied), holding the
        /// guard, when the previous owner died holding the lock: the data
        /// it guards may be half-updated. [`LockError::Fault`](crate::LockError::Fault)
        /// when the segment was truncated.
        pub fn lock(&self) -> Result<$guard, $crate::error::LockError<$guard>> {
            loop {
                match self.$inner($crate::wait::Wait::FOREVER) {
                    Ok(g) => return Ok(g),
                    Err(e) => if let Some(e) = $crate::wait::lock_blocking(e) { return Err(e) },
                }
            }
        }

        /// As [`Self::lock`], without waiting; a dead owner's lock is taken over.
        ///
        /// # Errors
        /// `WouldBlock` when a live process holds it; `OwnerDied` and
        /// `Fault` as for [`Self::lock`].
        pub fn try_lock(&self) -> Result<$guard, $crate::error::TryLockError<$guard>> {
            self.$inner($crate::wait::Wait::Try).map_err($crate::wait::lock_try)
        }

        /// As [`Self::lock`], waiting at most `timeout` (monotonic clock; any `Duration`).
        ///
        /// # Errors
        /// `Timeout`; `OwnerDied` and `Fault` as for [`Self::lock`].
        pub fn lock_timeout(
            &self,
            timeout: std::time::Duration,
        ) -> Result<$guard, $crate::error::LockTimeoutError<$guard>> {
            self.$inner($crate::wait::Wait::timeout(timeout))
        }

        /// As [`Self::lock`], waiting until `deadline` at most.
        ///
        /// # Errors
        /// As [`Self::lock_timeout`].
        pub fn lock_deadline(
            &self,
            deadline: std::time::Instant,
        ) -> Result<$guard, $crate::error::LockTimeoutError<$guard>> {
            self.$inner($crate::wait::Wait::deadline(deadline))
        }
    };
}

pub(crate) use {lock_forms, recv_forms, send_forms};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_mean_forever_never_panic() {
        assert_eq!(Wait::timeout(Duration::MAX), Wait::FOREVER);
        assert_eq!(Wait::timeout(Duration::from_secs(u64::MAX)), Wait::FOREVER);
        assert!(matches!(
            Wait::timeout(Duration::ZERO),
            Wait::Until(Some(_))
        ));
    }
}
