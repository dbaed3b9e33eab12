"""``runwatch.track``: report any iterable as a job, item by item."""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, Job

log = logging.getLogger("runwatch")
T = TypeVar("T")

_default: Optional["Client"] = None
_default_lock = threading.Lock()


def default_client() -> "Client":
    """The shared client made from ``RUNWATCH_URL`` and ``RUNWATCH_TOKEN`` (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            from .client import Client
            _default = Client()
        return _default


def start_job(client: Optional["Client"], name: str, total: Optional[int], kind: str = "BATCH",
              metadata: Any = None) -> Optional["Job"]:
    """Creates a job for :func:`track` and the tqdm drop-in; on any failure logs one warning and
    returns None (the work then runs unreported)."""
    try:
        return (client or default_client()).create_job(name[:200] or "job", kind=kind, total=total, metadata=metadata)
    except Exception as exc:  # reporting must never stop the work
        log.warning("runwatch: cannot create job %r (%s); running without reporting", name, exc)
        return None


def track(iterable: Iterable[T], name: Optional[str] = None, total: Optional[int] = None,
          client: Optional["Client"] = None, kind: str = "BATCH") -> Iterator[T]:
    """Yields the items of ``iterable`` and reports each one as a done item of a new job.

    Args:
        name: the job's name (default ``"track"``).
        total: items (default ``len(iterable)`` when it has one).
        client: default: a shared client from ``RUNWATCH_URL`` / ``RUNWATCH_TOKEN``.

    The job completes when the iterable is exhausted and fails (with the exception's type and message)
    when the loop raises; breaking out early completes it with the count so far. When the server cannot
    be reached, the items still come at full speed and one warning is logged.
    """
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    job = start_job(client, name or "track", total, kind)
    if job is None:
        yield from iterable
        return
    try:
        for item in iterable:
            yield item
            job.advance()
    except GeneratorExit:
        job.complete("stopped early")
        raise
    except BaseException as exc:
        job.fail(exc)
        raise
    else:
        job.complete()
