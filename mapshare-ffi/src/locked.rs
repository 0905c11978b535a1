//! A lockable object (`Mutex`, `SharedBytes`) behind a C handle, locked
//! and unlocked by two calls: the Rust guard lives in the handle between
//! them.

use std::sync::Mutex as StdMutex;
use std::thread::ThreadId;
use std::time::Duration;

use mapshare::{
    LockError, LockTimeoutError, Mutex, MutexGuard, SharedBytes, SharedBytesGuard, TryLockError,
};

use crate::status::{lock_status, mapshare_status, set_last_error, try_lock_status, Error, Result};
use crate::util::{self, form, Form};

/// The three lock forms of a kind, on a reference that lives as long as
/// its handle (see [`Locked::obj`]).
pub(crate) trait Lock: 'static {
    type Guard: 'static;
    fn try_lock_(&'static self) -> std::result::Result<Self::Guard, TryLockError<Self::Guard>>;
    fn lock_(&'static self) -> std::result::Result<Self::Guard, LockError<Self::Guard>>;
    fn lock_timeout_(
        &'static self,
        d: Duration,
    ) -> std::result::Result<Self::Guard, LockTimeoutError<Self::Guard>>;
}

impl Lock for Mutex {
    type Guard = MutexGuard<'static>;
    fn try_lock_(&'static self) -> std::result::Result<Self::Guard, TryLockError<Self::Guard>> {
        self.try_lock()
    }
    fn lock_(&'static self) -> std::result::Result<Self::Guard, LockError<Self::Guard>> {
        self.lock()
    }
    fn lock_timeout_(
        &'static self,
        d: Duration,
    ) -> std::result::Result<Self::Guard, LockTimeoutError<Self::Guard>> {
        self.lock_timeout(d)
    }
}

impl Lock for SharedBytes {
    type Guard = SharedBytesGuard<'static>;
    fn try_lock_(&'static self) -> std::result::Result<Self::Guard, TryLockError<Self::Guard>> {
        self.try_lock()
    }
    fn lock_(&'static self) -> std::result::Result<Self::Guard, LockError<Self::Guard>> {
        self.lock()
    }
    fn lock_timeout_(
        &'static self,
        d: Duration,
    ) -> std::result::Result<Self::Guard, LockTimeoutError<Self::Guard>> {
        self.lock_timeout(d)
    }
}

/// The object and the lock held through the handle, if any.
#[derive(Debug)]
pub(crate) struct Locked<T: Lock> {
    /// The guard held through this handle, and the thread that took it.
    /// Declared first: dropped before the object it borrows.
    held: StdMutex<Option<(T::Guard, ThreadId)>>,
    /// A `Box<T>` turned into a pointer when the handle was made, freed by
    /// `Drop` once `held` is empty.
    obj: *const T,
}

impl<T: Lock> Locked<T> {
    pub(crate) fn new(obj: T) -> Locked<T> {
        Locked {
            held: StdMutex::new(None),
            obj: Box::into_raw(Box::new(obj)),
        }
    }

    /// The object, for as long as the handle lives.
    pub(crate) fn obj(&self) -> &'static T {
        // SAFETY: `obj` comes from `Box::into_raw` in `new` and is freed
        // only in `Drop`, after every guard borrowing it is gone; a guard
        // lives in `held`, and every other use of the reference lasts one
        // call through the handle, which is not closed while in use (the
        // close contract). So the reference, though typed 'static, is
        // valid for as long as it is used.
        unsafe { &*self.obj }
    }

    /// Locks as `timeout_ns` says and keeps the guard: `MAPSHARE_OK`, or
    /// `MAPSHARE_OWNER_DIED` with the lock held.
    pub(crate) fn lock(&self, timeout_ns: u64) -> mapshare_status {
        let mut died = false;
        let status = crate::status::guard(|| {
            let me = std::thread::current().id();
            if matches!(&*util::lock(&self.held), Some((_, t)) if *t == me) {
                return Err(Error::invalid(
                    "this thread already holds the lock through this handle (not recursive)",
                ));
            }
            // Not holding `held` while waiting: the holder unlocks through it.
            let obj = self.obj();
            let guard = match form(timeout_ns) {
                Form::Try => match obj.try_lock_() {
                    Ok(g) => g,
                    Err(TryLockError::OwnerDied(g)) => {
                        died = true;
                        g
                    }
                    Err(e) => return Err(try_lock_status(&e)),
                },
                Form::Forever => match obj.lock_() {
                    Ok(g) => g,
                    Err(LockError::OwnerDied(g)) => {
                        died = true;
                        g
                    }
                    Err(e) => {
                        return Err(Error::new(mapshare_status::MAPSHARE_FAULT, e.to_string()))
                    }
                },
                Form::Timeout(d) => match obj.lock_timeout_(d) {
                    Ok(g) => g,
                    Err(LockTimeoutError::OwnerDied(g)) => {
                        died = true;
                        g
                    }
                    Err(e) => return Err(lock_status(&e)),
                },
            };
            *util::lock(&self.held) = Some((guard, me));
            Ok(())
        });
        if status == mapshare_status::MAPSHARE_OK && died {
            set_last_error(
                "previous lock owner died while holding the lock; the lock is held now: repair, then unlock",
            );
            return mapshare_status::MAPSHARE_OWNER_DIED;
        }
        status
    }

    /// Releases the lock held through the handle.
    pub(crate) fn unlock(&self) -> Result<()> {
        match util::lock(&self.held).take() {
            Some((g, _)) => {
                drop(g);
                Ok(())
            }
            None => Err(Error::invalid("the lock is not held through this handle")),
        }
    }

    /// Runs `f` on the guard held through the handle.
    pub(crate) fn with_guard<R>(&self, f: impl FnOnce(&mut T::Guard) -> Result<R>) -> Result<R> {
        match &mut *util::lock(&self.held) {
            Some((g, _)) => f(g),
            None => Err(Error::invalid(
                "the lock is not held through this handle: lock it first",
            )),
        }
    }
}

impl<T: Lock> Drop for Locked<T> {
    fn drop(&mut self) {
        // Releases a lock held through this handle (the guard's drop).
        drop(util::lock(&self.held).take());
        // SAFETY: from `Box::into_raw` in `new`, freed only here, once; the
        // guard that borrowed it was dropped just above.
        drop(unsafe { Box::from_raw(self.obj.cast_mut()) });
    }
}
