"""Named shared memory between processes on one machine.

The Python binding of the Rust library mapshare. Every kind lives in a named
segment (``/dev/shm/mapshare.NAME``) and is made with ``Kind.create(name,
...)``, ``Kind.open(name, ...)`` or ``Kind.open_or_create(name, ...)``:

- :class:`Mailbox`: one byte message at a time, delivered exactly once
  (what ``mapshare send`` / ``mapshare recv`` use);
- :class:`Sender` / :class:`Receiver`: lock-free channels from one or many
  senders to one receiver;
- :class:`Publisher` / :class:`Subscriber`: one publisher, many
  subscribers, each at its own pace (``mapshare pub`` / ``mapshare sub``);
- :class:`Server` / :class:`Client`: request/response, one server, many
  clients, answers matched by request id (``mapshare serve`` /
  ``mapshare request``);
- :class:`WaitSet`: one thread waiting on many receivers, subscribers,
  events, mailboxes, servers and clients at once;
- :class:`Mutex` (robust: a killed holder's lock is handed to the next
  locker with :class:`OwnerDied`) and :class:`Event`;
- :class:`Shared` (one value with a lock and a data-ready event) and
  :class:`BlackboardWriter` / :class:`BlackboardReader` (the latest value,
  never torn), whose layout (a numpy dtype or ``(type_name, size,
  align)``) is checked against the Rust ``#[repr(C)]`` struct's.

Messages are ``bytes`` out and any C-contiguous buffer in (bytes,
bytearray, memoryview, numpy arrays). Blocking calls take ``timeout=``
seconds (None: as long as it takes), release the GIL, raise
:class:`Timeout` (a ``TimeoutError``), and are interrupted by Ctrl-C.
Every error derives from :class:`Error`.

>>> import mapshare, os
>>> name = f"doc-{os.getpid()}"
>>> with mapshare.Mailbox.create(name) as mb:
...     mb.send("grüß dich 👋".encode())
...     mapshare.Mailbox.open(name).recv().decode()
'grüß dich 👋'
"""

from ._errors import (
    AlreadyExists,
    BadHeader,
    BufferTooSmall,
    Busy,
    Disconnected,
    Error,
    Fault,
    ForeignOwner,
    InvalidName,
    InvalidSize,
    KindMismatch,
    Lagged,
    LayoutMismatch,
    LengthMismatch,
    NoSpace,
    NotFound,
    OwnerDied,
    PermissionDenied,
    Timeout,
    TooLarge,
    TooManyAttached,
)
from ._mapshare import (
    DEFAULT_MAILBOX_MAX_MESSAGE,
    MAX_CLIENTS,
    MAX_SENDERS,
    MAX_SUBSCRIBERS,
    SLICE_SECONDS,
    BlackboardReader,
    BlackboardWriter,
    Client,
    Event,
    Mailbox,
    Mutex,
    MutexGuard,
    Publisher,
    Receiver,
    ReplyTo,
    Request,
    Response,
    Sender,
    Server,
    Shared,
    SharedGuard,
    Subscriber,
    WaitSet,
    unlink,
)

__version__ = "0.2.0"

__all__ = [
    "Mailbox",
    "Sender",
    "Receiver",
    "Publisher",
    "Subscriber",
    "Server",
    "Client",
    "Request",
    "ReplyTo",
    "Response",
    "WaitSet",
    "Mutex",
    "MutexGuard",
    "Event",
    "Shared",
    "SharedGuard",
    "BlackboardWriter",
    "BlackboardReader",
    "unlink",
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
    "DEFAULT_MAILBOX_MAX_MESSAGE",
    "MAX_CLIENTS",
    "MAX_SENDERS",
    "MAX_SUBSCRIBERS",
    "SLICE_SECONDS",
]
