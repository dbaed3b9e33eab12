"""``AsyncClient``: the :class:`runwatch.Client` methods as coroutines and async iterators (asyncio only).

Blocking HTTP runs on the event loop's default executor; each stream is read by one daemon thread that
hands events to the loop through a bounded buffer (at most 256 events ahead of the consumer), so a slow
``async for`` body applies backpressure to the stream instead of growing memory. Closing the async
iterator (``break``, ``aclose()``, task cancellation) closes the HTTP stream at once.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from typing import Any, AsyncIterator, Callable, Dict, Iterable, Iterator, List, Optional, TypeVar, Union

from .client import Client, Job
from .errors import WaitTimeout
from .training import TrainingRun
from .transport import StreamHandle
from .types import (ActivityEvent, ActivityScope, ActivitySnapshot, JobCommand, JobCommandKind, JobKind, JobState,
                    JobUpdate, MetricPoint, ProgressEvent, TrainingCommand, TrainingCommandKind, TrainingEvent)

__all__ = ["AsyncClient"]

T = TypeVar("T")
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ThreadedStream(AsyncIterator[T]):
    """An async iterator over a blocking iterator that a daemon thread reads. Private."""

    def __init__(self, make: Callable[[StreamHandle], Iterator[T]], buffer: int = 256) -> None:
        self._make = make
        self._handle = StreamHandle()
        self._slots = threading.Semaphore(buffer)
        self._queue: Optional["asyncio.Queue[Any]"] = None
        self._thread: Optional[threading.Thread] = None
        self._stopped = threading.Event()
        self._done = False

    def __aiter__(self) -> "ThreadedStream[T]":
        return self

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        queue = self._queue

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody listens any more
                self._stopped.set()

        def run() -> None:
            try:
                for item in self._make(self._handle):
                    while not self._slots.acquire(timeout=0.5):
                        if self._stopped.is_set():
                            return
                    if self._stopped.is_set():
                        return
                    put(item)
                put(_END)
            except BaseException as exc:  # handed to the consumer
                put(_Failure(exc))

        self._thread = threading.Thread(target=run, name="runwatch-async-stream", daemon=True)
        self._thread.start()

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        if self._queue is None:
            self._start()
        assert self._queue is not None
        try:
            item = await self._queue.get()
        except BaseException:
            await self.aclose()
            raise
        self._slots.release()
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.exc
        return item

    async def aclose(self) -> None:
        """Stops reading and closes the stream's connection."""
        self._done = True
        self._stopped.set()
        self._handle.close()
        self._slots.release()

    @property
    def opened(self) -> threading.Event:
        """Set once the server has the subscription open."""
        return self._handle.opened


class _AsyncJobContext:
    """``async with client.job(...) as job``: completes on normal exit, fails with the exception otherwise.
    Also awaitable: ``job = await client.job(...)``."""

    def __init__(self, client: "AsyncClient", kwargs: Dict[str, Any]) -> None:
        self._client = client
        self._kwargs = kwargs
        self._job: Optional[Job] = None

    def __await__(self) -> Any:
        return self._client.create_job(**self._kwargs).__await__()

    async def __aenter__(self) -> Job:
        self._job = await self._client.create_job(**self._kwargs)
        return self._job

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        assert self._job is not None
        if exc is None:
            await self._client._run(self._job.complete)
        else:
            await self._client._run(self._job.fail, exc)


class AsyncClient:
    """The asyncio twin of :class:`runwatch.Client`: same arguments, same methods, as coroutines
    (``await client.get_job(id)``) and async iterators (``async for event in client.watch(id)``).

    The :class:`~runwatch.Job` and :class:`~runwatch.TrainingRun` handles it returns are the same as
    the sync ones: their reporting methods return at once and are safe to call from coroutines; their
    ``complete``/``fail`` wait for delivery, so from a coroutine use ``async with client.job(...)``
    or ``await client.complete(job)``.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 10.0, *,
                 min_interval: float = 0.25, max_backoff: float = 5.0, flush_timeout: float = 10.0,
                 connect_timeout: Optional[float] = None) -> None:
        self.sync = Client(url, token, timeout, min_interval=min_interval, max_backoff=max_backoff,
                           flush_timeout=flush_timeout, connect_timeout=connect_timeout)

    @property
    def url(self) -> str:
        """The ``/graphql`` endpoint."""
        return self.sync.url

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (see :attr:`Client.requests`)."""
        return self.sync.requests

    def __repr__(self) -> str:
        return f"runwatch.AsyncClient(url={self.url!r})"

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self, timeout: Optional[float] = None) -> bool:
        """Sends what is pending (up to ``timeout`` s) and stops the reporter (:meth:`Client.close`)."""
        return await self._run(self.sync.close, timeout)

    async def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until every report is sent (up to ``timeout`` s)."""
        return await self._run(self.sync.flush, timeout)

    async def execute(self, query: str, variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """See :meth:`Client.execute`."""
        return await self._run(self.sync.execute, query, variables)

    async def create_job(self, name: str, kind: Union[JobKind, str] = "BATCH", total: Optional[int] = None,
                         metadata: Any = None, idempotency_key: Optional[str] = None, *,
                         parent: Union[JobState, str, None] = None, tags: Optional[Iterable[str]] = None,
                         heartbeat_seconds: Optional[int] = None) -> Job:
        """See :meth:`Client.create_job`."""
        return await self._run(self.sync.create_job, name, kind, total, metadata, idempotency_key, parent=parent,
                               tags=tags, heartbeat_seconds=heartbeat_seconds)

    def job(self, name: str, kind: Union[JobKind, str] = "BATCH", total: Optional[int] = None, metadata: Any = None,
            idempotency_key: Optional[str] = None, *, parent: Union[JobState, str, None] = None,
            tags: Optional[Iterable[str]] = None, heartbeat_seconds: Optional[int] = None) -> _AsyncJobContext:
        """``async with client.job("embed", total=n) as job:`` — see :meth:`Client.job`."""
        return _AsyncJobContext(self, dict(name=name, kind=kind, total=total, metadata=metadata,
                                           idempotency_key=idempotency_key, parent=parent, tags=tags,
                                           heartbeat_seconds=heartbeat_seconds))

    async def complete(self, job: Union[Job, TrainingRun], message: Optional[str] = None) -> bool:
        """``job.complete(message)`` without blocking the event loop."""
        return await self._run(job.complete, message)

    async def fail(self, job: Union[Job, TrainingRun], error: Union[str, BaseException]) -> bool:
        """``job.fail(error)`` without blocking the event loop."""
        return await self._run(job.fail, error)

    async def get_job(self, job_id: str) -> Job:
        """See :meth:`Client.get_job`."""
        return await self._run(self.sync.get_job, job_id)

    def jobs(self, status: Any = None, kind: Any = None, first: int = 20, limit: Optional[int] = None, *,
             tags: Optional[Iterable[str]] = None, parent: Union[JobState, str, None] = None) -> ThreadedStream[Job]:
        """See :meth:`Client.jobs` (an async iterator)."""
        return ThreadedStream(lambda _h: self.sync.jobs(status, kind, first, limit, tags=tags, parent=parent))

    async def cancel_job(self, job_id: str, reason: Optional[str] = None) -> Job:
        """See :meth:`Client.cancel_job`."""
        return await self._run(self.sync.cancel_job, job_id, reason)

    def watch(self, job_id: str, after: Optional[str] = None, *, items: bool = False, logs: bool = False,
              retry_forever: bool = False) -> ThreadedStream[ProgressEvent]:
        """``async for event in client.watch(id)`` — see :meth:`Client.watch` (the same bounded first
        connection, unless ``retry_forever``; ``items`` and ``logs`` add ITEM_RESULTS and LOG events)."""
        return ThreadedStream(lambda h: self.sync.watch(job_id, after, items=items, logs=logs,
                                                        retry_forever=retry_forever, _handle=h))

    def job_updates(self, status: Any = None, kind: Any = None, tags: Optional[Iterable[str]] = None,
                    parent: Union[JobState, str, None] = None, after: Optional[str] = None, *,
                    retry_forever: bool = False) -> ThreadedStream[JobUpdate]:
        """``async for update in client.job_updates(tags=["nightly"])`` — see :meth:`Client.job_updates`:
        the live job list, resumed from the last cursor after a dropped connection."""
        return ThreadedStream(lambda h: self.sync.job_updates(status, kind, tags, parent, after,
                                                              retry_forever=retry_forever, _handle=h))

    async def wait(self, job_id: str, timeout: Optional[float] = None,
                   on_progress: Optional[Callable[[ProgressEvent], Any]] = None, *,
                   retry_forever: bool = False) -> Job:
        """See :meth:`Client.wait`; ``on_progress`` may be a plain function or a coroutine function
        (awaited here, on the caller's loop).

        Raises:
            WaitTimeout: not finished within ``timeout`` seconds (``.job`` is the last state seen).
        """
        last: Dict[str, Optional[Job]] = {"job": None}
        stream = self.watch(job_id, retry_forever=retry_forever)

        async def follow() -> Job:
            async for event in stream:
                last["job"] = event.job  # type: ignore[assignment]
                if on_progress is not None:
                    result = on_progress(event)
                    if inspect.isawaitable(result):
                        await result
                if event.terminal:
                    return event.job  # type: ignore[return-value]
            return await self.get_job(job_id)

        try:
            return await asyncio.wait_for(follow(), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeout(job_id, float(timeout or 0), last["job"]) from None
        finally:
            await stream.aclose()

    async def create_training_run(self, name: str, max_steps: Optional[int] = None, metadata: Any = None,
                                  idempotency_key: Optional[str] = None, max_epochs: Optional[int] = None, *,
                                  parent: Union[JobState, str, None] = None, tags: Optional[Iterable[str]] = None,
                                  heartbeat_seconds: Optional[int] = None) -> TrainingRun:
        """See :meth:`Client.create_training_run`."""
        return await self._run(self.sync.create_training_run, name, max_steps, metadata, idempotency_key, max_epochs,
                               parent=parent, tags=tags, heartbeat_seconds=heartbeat_seconds)

    async def training_run(self, run_id: str) -> TrainingRun:
        """See :meth:`Client.training_run`."""
        return await self._run(self.sync.training_run, run_id)

    def training_events(self, run_id: str, types: Any = None, after: Optional[str] = None,
                        min_log_level: Optional[str] = None, *,
                        retry_forever: bool = False) -> ThreadedStream[TrainingEvent]:
        """See :meth:`Client.training_events` (an async iterator)."""
        return ThreadedStream(lambda h: self.sync.training_events(run_id, types, after, min_log_level,
                                                                  retry_forever=retry_forever, _handle=h))

    async def send_training_command(self, run_id: str, command: Union[TrainingCommandKind, str], args: Any = None,
                                    ttl_seconds: Optional[int] = None) -> TrainingCommand:
        """See :meth:`Client.send_training_command`."""
        return await self._run(self.sync.send_training_command, run_id, command, args, ttl_seconds)

    async def get_training_command(self, command_id: str) -> TrainingCommand:
        """See :meth:`Client.get_training_command`."""
        return await self._run(self.sync.get_training_command, command_id)

    async def acknowledge_training_command(self, command_id: str, accepted: bool = True,
                                           message: Optional[str] = None) -> TrainingCommand:
        """See :meth:`Client.acknowledge_training_command`."""
        return await self._run(self.sync.acknowledge_training_command, command_id, accepted, message)

    async def send_job_command(self, job_id: str, command: Union[JobCommandKind, str], name: Optional[str] = None,
                               args: Any = None, ttl_seconds: Optional[int] = None) -> JobCommand:
        """See :meth:`Client.send_job_command`."""
        return await self._run(self.sync.send_job_command, job_id, command, name, args, ttl_seconds)

    async def acknowledge_job_command(self, command_id: str, accepted: bool = True,
                                      message: Optional[str] = None) -> JobCommand:
        """See :meth:`Client.acknowledge_job_command`."""
        return await self._run(self.sync.acknowledge_job_command, command_id, accepted, message)

    async def recent_job_commands(self, job_id: str) -> List[JobCommand]:
        """See :meth:`Client.recent_job_commands`."""
        return await self._run(self.sync.recent_job_commands, job_id)

    def job_commands(self, job_id: str) -> ThreadedStream[JobCommand]:
        """See :meth:`Client.job_commands`: an async iterator of the worker's commands, each once."""
        return ThreadedStream(lambda handle: self.sync.job_commands(job_id, _handle=handle))

    def activity(self, scope: Union[ActivityScope, str] = "ENVIRONMENT", environment_id: Optional[str] = None, *,
                 retry_forever: bool = False) -> ThreadedStream[ActivityEvent]:
        """See :meth:`Client.activity` (an async iterator)."""
        return ThreadedStream(lambda h: self.sync.activity(scope, environment_id, retry_forever=retry_forever,
                                                           _handle=h))

    async def get_activity(self, scope: Union[ActivityScope, str] = "ENVIRONMENT") -> ActivitySnapshot:
        """See :meth:`Client.get_activity`."""
        return await self._run(self.sync.get_activity, scope)

    async def metric_series(self, job_id: str, name: str, max_points: int = 500) -> List[MetricPoint]:
        """See :meth:`Client.metric_series`."""
        return await self._run(self.sync.metric_series, job_id, name, max_points)
