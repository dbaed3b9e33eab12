"""``runwatch.track``: report any iterable as a job, item by item."""
from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, TypeVar

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


def job_line(job: "Job") -> str:
    """The line that tells a user which job their work reports to, as the Node ``runwatch run`` says
    it: ``runwatch: job <id> <dashboard URL>``."""
    return f"runwatch: job {job.id} {job.dashboard_url}"


def announce(job: "Job", write: Optional[Callable[[str], Any]] = None) -> None:
    """Writes :func:`job_line` to stderr (or through ``write``, e.g. ``tqdm.write``, so a bar being
    drawn is not broken)."""
    line = job_line(job)
    if write is not None:
        write(line)
        return
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # no stderr (pythonw, a closed pipe): nothing to tell
        pass


def start_job(client: Optional["Client"], name: str, total: Optional[int], kind: str = "BATCH",
              metadata: Any = None, write: Optional[Callable[[str], Any]] = None) -> Optional["Job"]:
    """Creates a job for :func:`track` and the tqdm drop-in and says which on stderr
    (``runwatch: job <id> <dashboard URL>``, through ``write`` when given); on any failure logs one
    warning and returns None (the work then runs unreported)."""
    try:
        job = (client or default_client()).create_job(name[:200] or "job", kind=kind, total=total, metadata=metadata)
    except Exception as exc:  # reporting must never stop the work
        log.warning("runwatch: cannot create job %r (%s); running without reporting", name, exc)
        return None
    announce(job, write)
    return job


def track(iterable: Iterable[T], name: Optional[str] = None, total: Optional[int] = None,
          client: Optional["Client"] = None, kind: str = "BATCH") -> Iterator[T]:
    """Yields the items of ``iterable`` and reports each one as a done item of a new job.

    Args:
        name: the job's name (default ``"track"``).
        total: items (default ``len(iterable)`` when it has one).
        client: default: a shared client from ``RUNWATCH_URL`` / ``RUNWATCH_TOKEN``.

    Says which job on stderr when it starts: ``runwatch: job <id> <dashboard URL>``.
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
