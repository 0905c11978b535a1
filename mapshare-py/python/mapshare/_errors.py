"""The exceptions of mapshare: one base, :class:`Error`, and one class per
outcome a caller can act on. Where a built-in exception means the same
thing, the class derives from it too (``NotFound`` is a
``FileNotFoundError``, ``Timeout`` a ``TimeoutError``...), so generic
handlers keep working. Messages are the Rust library's own text.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ForeignOwner",
    "InvalidName",
    "InvalidSize",
    "NoSpace",
    "BadHeader",
    "KindMismatch",
    "LayoutMismatch",
    "TooManyAttached",
    "Busy",
    "Timeout",
    "Disconnected",
    "Lagged",
    "TooLarge",
    "BufferTooSmall",
    "LengthMismatch",
    "OwnerDied",
    "Fault",
]


class Error(Exception):
    """Base class of every mapshare error."""


class NotFound(Error, FileNotFoundError):
    """No segment of that name exists (``open``)."""


class AlreadyExists(Error, FileExistsError):
    """A segment of that name already exists (``create``)."""


class PermissionDenied(Error, PermissionError):
    """The OS refused access to the segment (its mode bits)."""


class ForeignOwner(PermissionDenied):
    """The segment belongs to another user (pass ``allow_foreign_owner=True``
    to accept it: anyone can pre-create a name)."""


class InvalidName(Error, ValueError):
    """The name breaks the rule: 1 to 200 of ``A-Z a-z 0-9 . _ -``, not
    starting with ``.``."""


class InvalidSize(Error, ValueError):
    """A size, capacity or layout is invalid (zero, too large, an alignment
    that is not a power of two...)."""


class NoSpace(Error, OSError):
    """Not enough shared memory to reserve the segment (a full /dev/shm)."""


class BadHeader(Error):
    """The segment's header is not a valid mapshare header (a damaged or
    foreign object, or another format version)."""


class KindMismatch(Error):
    """The segment holds another kind of object (a mailbox opened as a
    mutex, say)."""


class LayoutMismatch(Error):
    """The segment holds a value of another layout.

    ``expected`` and ``found`` are ``(type_name, size, align)`` tuples: what
    this side asked for and what the creator recorded."""

    expected: tuple[str, int, int] | None = None
    found: tuple[str, int, int] | None = None


class TooManyAttached(Error):
    """A role is taken (a live blackboard writer, every sender slot) or the
    registry of attached processes is full."""


class Busy(Error):
    """Another process held the segment's attach lock for too long."""


class Timeout(Error, TimeoutError):
    """A blocking call ran out of time (its ``timeout=``). From
    ``Client.call`` / ``Client.call_response`` once the request was sent,
    ``id`` is its id (still in flight: ``client.abandon(e.id)`` gives up on
    it); None otherwise."""

    id: int | None = None


class Disconnected(Error):
    """The other side has gone (dropped, exited or killed) and nothing is
    left to receive; or, when sending, no receiver is attached. For a
    service client: no response can come (the server has gone, or nothing
    is in flight); for a server's ``respond``: the client has gone."""


class Lagged(Error):
    """A subscriber of an ``overwrite_oldest`` ring fell a full ring behind:
    ``missed`` messages were overwritten. The next receive goes on with the
    oldest one still there."""

    missed: int = 0


class TooLarge(Error, ValueError):
    """The message is longer than the segment's ``max_message``; nothing
    was sent."""


class BufferTooSmall(Error, ValueError):
    """``recv_into``: the message is longer than the buffer. The message is
    not lost: it is in ``message`` (bytes)."""

    message: bytes = b""


class LengthMismatch(Error, ValueError):
    """A value of the wrong size for the layout (``Shared.set``,
    ``BlackboardWriter.write``); nothing was stored. From ``recv_array``:
    the message received does not fit the dtype or the shape; it is not
    lost: it is in ``message`` (bytes)."""

    message: bytes = b""


class OwnerDied(Error):
    """The previous holder died holding the lock. The lock *is* held now,
    by ``guard`` (a context manager with ``unlock()``): the data it
    protects may be half-updated; repair it, then unlock::

        try:
            guard = mutex.lock()
        except mapshare.OwnerDied as e:
            guard = e.guard  # we hold the lock
            repair()
        with guard:
            ...
    """

    guard: object = None


class Fault(Error):
    """Something a peer did (or a damaged segment) that the call detected and
    survived: a truncated segment, a corrupt message length or slot, no
    consistent copy after many attempts. From ``WaitSet.wait``,
    ``truncated`` lists the indices of the sources whose segment another
    process shrank (drop them); None otherwise."""

    truncated: list[int] | None = None
