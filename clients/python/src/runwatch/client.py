"""The synchronous client: :class:`Client` and its streams that resume (the :class:`Job` handle is in ``job.py``).

Units everywhere: counts are items, ``rate`` is items per second, durations and timeouts are seconds.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

from . import documents as D
from .errors import NotFound, RunwatchConnectionError, RunwatchError, WaitTimeout, job_not_found
from .job import Job, _bind, _check_count
from .reporter import Reporter
from .transport import DEFAULT_URL, StreamHandle, StreamIdle, Transport, backoff_seconds, SSE_IDLE_SECONDS
from .commands import iter_commands
from .types import MetricPoint
from .types import (ActivityEvent, ActivityScope, ActivitySnapshot, JobCommand, JobCommandKind, JobKind, JobState,
                    JobUpdate, JobUpdateType, ProgressEvent, ProgressEventType, TrainingCommand, TrainingCommandKind, TrainingEvent, activity_event_from_graphql,
                    training_event_from_graphql)

log = logging.getLogger("runwatch")

__all__ = ["Client", "Job", "default_connect_timeout"]

#: Seconds a stream keeps trying a server it has not reached yet (``RUNWATCH_CONNECT_TIMEOUT`` overrides it).
CONNECT_TIMEOUT_SECONDS = 30.0


def _seconds(value: float) -> str:
    """Seconds to one decimal, without a trailing ``.0`` (``0.1``, ``2``, ``30``), as the Node CLI prints them."""
    return f"{round(value, 1):g}"


def default_connect_timeout() -> float:
    """``RUNWATCH_CONNECT_TIMEOUT`` (seconds, ≥ 0) when set, else 30.

    Raises:
        ValueError: the variable is set but is not a number ≥ 0.
    """
    raw = os.environ.get("RUNWATCH_CONNECT_TIMEOUT", "").strip()
    if not raw:
        return CONNECT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"runwatch: RUNWATCH_CONNECT_TIMEOUT must be a number of seconds ≥ 0, got {raw!r}")
    return value


def _enum_value(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def _tag_list(tags: Iterable[str]) -> List[str]:
    """Tags as a list of strings (a single string is one tag, not its characters)."""
    return [tags] if isinstance(tags, str) else [str(t) for t in tags]


def _job_id(job: Union[JobState, str, None]) -> Optional[str]:
    """A job's id, from a job (its ``id``) or an id; None stays None."""
    if job is None:
        return None
    return job.id if isinstance(job, JobState) else str(job)


def _as_list(value: Any) -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [_enum_value(value)]
    return [_enum_value(v) for v in value]


class Client:
    """A runwatch server and a token: report jobs, watch them, steer training runs.

    Args:
        url: the server (``http://host:4000`` or ``.../graphql``). Default: ``RUNWATCH_URL``, then
            ``http://127.0.0.1:4000/graphql``.
        token: bearer token. Default: ``RUNWATCH_TOKEN``. It never appears in an exception or log line.
        timeout: seconds for each HTTP request (and for connecting a stream).
        min_interval: least seconds between two progress requests of one job (default 0.25).
        max_backoff: most seconds between two retries of a failed report or a dropped stream.
        flush_timeout: seconds :meth:`Job.complete` and friends wait for delivery (default 10).
        connect_timeout: seconds a stream (:meth:`watch`, :meth:`wait`, :meth:`training_events`,
            :meth:`activity`) keeps retrying a server it has not reached yet before it gives up with
            :class:`RunwatchConnectionError` (default ``RUNWATCH_CONNECT_TIMEOUT``, else 30). Each failed
            attempt logs ``runwatch: connecting to <url>… retry <n> in <s> s (<reason>)`` at once.
            Once a stream has connected, it resumes after dropped connections without limit. Pass
            ``retry_forever=True`` to a stream to keep trying from the start too.

    Raises:
        ValueError: ``url`` is not an http(s) URL, or ``RUNWATCH_CONNECT_TIMEOUT`` is not a number ≥ 0.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 10.0, *,
                 min_interval: float = 0.25, max_backoff: float = 5.0, flush_timeout: float = 10.0,
                 connect_timeout: Optional[float] = None) -> None:
        url = url or os.environ.get("RUNWATCH_URL") or DEFAULT_URL
        token = token if token is not None else os.environ.get("RUNWATCH_TOKEN") or None
        self._transport = Transport(url, token, timeout)
        self.timeout = float(timeout)
        self.max_backoff = float(max_backoff)
        self.flush_timeout = float(flush_timeout)
        self.connect_timeout = default_connect_timeout() if connect_timeout is None else float(connect_timeout)
        self._reporter = Reporter(self._transport, min_interval=min_interval, max_backoff=max_backoff)

    @property
    def url(self) -> str:
        """The ``/graphql`` endpoint this client talks to."""
        return self._transport.url

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (queries and mutations, retries included; streams not counted)."""
        return self._transport.requests

    def __repr__(self) -> str:
        return f"runwatch.Client(url={self.url!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self, timeout: Optional[float] = None) -> bool:
        """Sends what is pending (up to ``timeout`` seconds, default ``flush_timeout``) and stops the reporter."""
        return self._reporter.close(self.flush_timeout if timeout is None else timeout)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until every report is sent (up to ``timeout`` s). True when nothing is pending."""
        return self._reporter.flush(self.flush_timeout if timeout is None else timeout)

    # ---- plain GraphQL ----

    def execute(self, query: str, variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Runs any query or mutation and returns its ``data``.

        Raises:
            RunwatchError subclass for the server's ``extensions.code``; RunwatchConnectionError when unreachable.
        """
        return self._transport.execute(query, variables)

    def _execute_retrying(self, query: str, variables: Dict[str, Any], attempts: int = 4) -> Dict[str, Any]:
        for attempt in range(1, attempts + 1):
            try:
                return self._transport.execute(query, variables)
            except RunwatchError as exc:
                if not exc.transient or attempt == attempts:
                    raise
                delay = backoff_seconds(attempt, 0.2, self.max_backoff)
                retry_after = getattr(exc, "retry_after", None)
                time.sleep(max(delay, retry_after or 0.0))
        raise AssertionError("unreachable")

    # ---- jobs ----

    def create_job(self, name: str, kind: Union[JobKind, str] = "BATCH", total: Optional[int] = None,
                   metadata: Any = None, idempotency_key: Optional[str] = None, *,
                   parent: Union[JobState, str, None] = None, tags: Optional[Iterable[str]] = None,
                   heartbeat_seconds: Optional[int] = None) -> Job:
        """Creates a QUEUED job and returns its handle.

        Args:
            name: 1..200 characters. kind: BATCH, EVALUATION, TRAINING or PIPELINE. total: items, if known.
            metadata: JSON-serialisable, at most 16 KiB. idempotency_key: a retried create with the same key
                returns the same job (default: a random one, reused for this call's own retries).
            parent: a job (or its id) of your tenant to make this one a child of (a job group, at most 3
                levels): the parent then shows its children's aggregate (``child_counts``, summed counts).
            tags: at most 20 tags, each 1..64 characters, to find the job by (:meth:`jobs`, :meth:`job_updates`).
            heartbeat_seconds: seconds without a report after which the RUNNING job counts as stalled
                (``stalled``, a STALLED event; its next report recovers it); 0 turns stall detection off;
                default: the server's ``RUNWATCH_STALL_SECONDS`` (300).

        Transient failures (network, SERVICE_UNAVAILABLE, RATE_LIMITED) are retried a few times.

        Raises:
            BadUserInput (bad name, total, metadata, tags, a negative heartbeat, a group deeper than 3
            levels), NotFound (no such parent in your tenant), Conflict (key reused with other input; the
            parent is finished), Unauthenticated, Forbidden (no ``jobs:write``), RunwatchConnectionError /
            ServiceUnavailable when the server stays unreachable.
        """
        if total is not None:
            _check_count("total", total)
        if heartbeat_seconds is not None:
            _check_count("heartbeat_seconds", heartbeat_seconds)
        inp: Dict[str, Any] = {"name": name, "kind": _enum_value(kind), "total": total, "metadata": metadata,
                               "idempotencyKey": idempotency_key or str(uuid.uuid4())}
        if parent is not None:
            inp["parentId"] = _job_id(parent)
        if tags is not None:
            inp["tags"] = _tag_list(tags)
        if heartbeat_seconds is not None:
            inp["heartbeatSeconds"] = heartbeat_seconds
        data = self._execute_retrying(D.CREATE_JOB, {"input": inp})
        return _bind(self, data["createBatchJob"])

    def job(self, name: str, kind: Union[JobKind, str] = "BATCH", total: Optional[int] = None, metadata: Any = None,
            idempotency_key: Optional[str] = None, *, parent: Union[JobState, str, None] = None,
            tags: Optional[Iterable[str]] = None, heartbeat_seconds: Optional[int] = None) -> Job:
        """Like :meth:`create_job`, for ``with client.job("embed corpus", total=n) as job:``: the job is
        completed when the block ends normally and failed with the exception's type and message when it
        raises (the exception is then re-raised)."""
        return self.create_job(name, kind=kind, total=total, metadata=metadata, idempotency_key=idempotency_key,
                               parent=parent, tags=tags, heartbeat_seconds=heartbeat_seconds)

    def get_job(self, job_id: str) -> Job:
        """The job's current state.

        Raises:
            NotFound: no such job in the token's tenant (another tenant's job looks the same), with the
                server's wording: ``no job with id "<id>"``.
        """
        data = self._transport.execute(D.GET_JOB, {"id": job_id})
        if data.get("batchJob") is None:
            raise job_not_found(job_id)
        return _bind(self, data["batchJob"])

    def jobs(self, status: Any = None, kind: Any = None, first: int = 20, limit: Optional[int] = None, *,
             tags: Optional[Iterable[str]] = None, parent: Union[JobState, str, None] = None) -> Iterator[Job]:
        """The tenant's jobs, newest first, fetching every page (``first`` jobs per request, 1..100) lazily.

        ``status`` and ``kind`` take one value or a list. ``tags``: only jobs carrying every one of these
        tags. ``parent``: only the children of that job (or job id). ``limit`` stops after that many jobs.

        Raises:
            BadUserInput: a bad ``first``, status, kind or tag.
        """
        after: Optional[str] = None
        seen = 0
        while True:
            data = self._transport.execute(D.LIST_JOBS, {"first": first, "after": after, "status": _as_list(status),
                                                         "kind": _as_list(kind),
                                                         "tags": None if tags is None else _tag_list(tags),
                                                         "parentId": _job_id(parent)})["batchJobs"]
            for node in data["nodes"]:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield _bind(self, node)
            if not data["pageInfo"]["hasNextPage"] or not data["nodes"]:
                return
            after = data["pageInfo"]["endCursor"]

    def cancel_job(self, job_id: str, reason: Optional[str] = None) -> Job:
        """Cancels a job now. Needs ``jobs:control``. Raises NotFound, Conflict (already finished), Forbidden."""
        return _bind(self, self._transport.execute(D.CANCEL_JOB, {"id": job_id, "reason": reason})["cancelBatchJob"])

    # ---- streams ----

    def _resumable(self, query: str, variables: Callable[[Optional[str]], Dict[str, Any]], field_name: str,
                   after: Optional[str], deadline: Optional[float] = None,
                   on_timeout: Optional[Callable[[], BaseException]] = None,
                   handle: Optional[StreamHandle] = None, retry_forever: bool = False,
                   positioned: Optional[Callable[[Dict[str, Any]], bool]] = None) -> Iterator[Dict[str, Any]]:
        """Yields ``data[field_name]`` of a subscription, resubscribing with the newest ``cursor`` after a
        dropped connection (with backoff) until the server completes the stream or ``handle`` is closed.
        ``positioned(item)`` False: the item's cursor is not a place to resume from (the stream then
        resumes from the one before).

        Until a stream has opened once, each failed attempt logs ``connecting to <url>… retry n in s s
        (why); giving up after T s`` (a connection still not up after 1 s: ``connecting to <url>… giving up
        after T s``) and, after ``connect_timeout`` seconds (unless ``retry_forever``), raises
        RunwatchConnectionError. The wording is the Node CLI's."""
        cursor = after
        attempt = 0
        warned = False
        connected = [False]
        started = time.monotonic()
        give_up_at = None if retry_forever else started + self.connect_timeout
        bound = "retrying until stopped" if give_up_at is None else f"giving up after {_seconds(self.connect_timeout)} s"

        def opened() -> None:
            connected[0] = True
            if handle is not None:
                handle.opened.set()

        while handle is None or not handle.closed:
            idle = SSE_IDLE_SECONDS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise on_timeout() if on_timeout else TimeoutError()
                idle = max(0.05, min(idle, remaining))
            stream = self._transport.subscribe(query, variables(cursor), idle_seconds=idle)
            stream.on_open = opened
            slow: Optional[threading.Timer] = None
            if not connected[0]:  # a host that drops packets: say so after 1 s, not after the whole timeout
                slow = threading.Timer(1.0, log.warning, ("runwatch: connecting to %s… %s", self.url, bound))
                slow.daemon = True
                stream.on_connected = slow.cancel
                slow.start()
            if handle is not None:
                handle.stream = stream
                if handle.closed:
                    stream.close()
            try:
                for data in stream:
                    attempt = 0
                    item = data.get(field_name)
                    if item is None:
                        continue
                    if isinstance(item, dict) and item.get("cursor") and (positioned is None or positioned(item)):
                        cursor = item["cursor"]
                    yield item
                return
            except RunwatchError as exc:
                if handle is not None and handle.closed:
                    return
                if not exc.transient:
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise (on_timeout() if on_timeout else exc) from None
                attempt += 1
                delay = backoff_seconds(attempt, 0.1, self.max_backoff)
                if deadline is not None:
                    delay = min(delay, max(0.0, deadline - time.monotonic()))
                if not connected[0]:
                    now = time.monotonic()
                    reason = getattr(exc, "reason", "") or exc.message
                    if give_up_at is not None:
                        if now >= give_up_at:
                            error = RunwatchConnectionError(
                                f"cannot reach {self.url} within {_seconds(self.connect_timeout)} s "
                                f"({attempt} attempts; last: {reason})")
                            error.reason = reason
                            raise error from None
                        delay = min(delay, give_up_at - now)  # one last attempt at the limit
                    log.warning("runwatch: connecting to %s… retry %d in %s s (%s); %s", self.url, attempt,
                                _seconds(delay), reason, bound)
                elif not warned and not isinstance(exc, StreamIdle):
                    warned = True
                    log.warning("runwatch: stream dropped (%s); resubscribing from the last event", exc)
                time.sleep(delay)
            finally:
                if slow is not None:
                    slow.cancel()
                stream.close()

    def watch(self, job_id: str, after: Optional[str] = None, *, items: bool = False, logs: bool = False,
              retry_forever: bool = False, _handle: Optional[StreamHandle] = None) -> Iterator[ProgressEvent]:
        """A job's events over SSE: a SNAPSHOT first, then each event in order, ending after the terminal
        one (COMPLETED, FAILED, CANCELLED; or a SNAPSHOT of a finished job).

        ``items=True`` adds ITEM_RESULTS events (``event.items``: each batch of :meth:`Job.report_items`) and
        ``logs=True`` LOG events (``event.logs``: the lines of :meth:`Job.log`), live and
        replayed alike. STALLED and RECOVERED events come to every watcher (``event.job.stalled``).

        A dropped connection is resumed with the last cursor (no gap, no duplicate), with backoff. ``after``
        starts after that cursor. Close the iterator (or break out of the loop) to stop early.

        Until the first connection succeeds, each failed attempt logs ``runwatch: connecting to <url>…
        retry <n> in <s> s (<reason>); giving up after 30 s`` (a host that answers nothing is reported
        after 1 s: ``connecting to <url>… giving up after 30 s``) and the stream gives up after the client's ``connect_timeout``
        seconds (default 30) unless ``retry_forever``.

        Raises:
            NotFound: no such job in the token's tenant (the server's ``no job with id "<id>"``).
            Unauthenticated, Forbidden. RunwatchConnectionError: the server could not be reached within
            ``connect_timeout`` seconds.
        """
        return self._watch(job_id, after, None, None, _handle, retry_forever, items, logs)

    def _watch(self, job_id: str, after: Optional[str], deadline: Optional[float],
               on_timeout: Optional[Callable[[], BaseException]],
               handle: Optional[StreamHandle] = None, retry_forever: bool = False, items: bool = False,
               logs: bool = False) -> Iterator[ProgressEvent]:
        seen: List[str] = []
        for item in self._resumable(D.WATCH_JOB, lambda c: {"runId": job_id, "after": c, "items": bool(items),
                                                            "logs": bool(logs)}, "runProgress", after,
                                    deadline, on_timeout, handle, retry_forever):
            event = ProgressEvent.from_graphql(item)
            if event.type != ProgressEventType.SNAPSHOT:
                if event.cursor in seen:
                    continue
                seen.append(event.cursor)
                del seen[:-64]
            event.job = _bind(self, item.get("job") or {})
            yield event
            if event.terminal:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise on_timeout() if on_timeout else TimeoutError()

    def job_updates(self, status: Any = None, kind: Any = None, tags: Optional[Iterable[str]] = None,
                    parent: Union[JobState, str, None] = None, after: Optional[str] = None, *,
                    retry_forever: bool = False, _handle: Optional[StreamHandle] = None) -> Iterator[JobUpdate]:
        """The tenant's live job list over SSE, instead of polling :meth:`jobs`: first a SNAPSHOT
        :class:`JobUpdate` per matching job (the newest 100), then one per matching job created (CREATED),
        per status change (STATUS, with ``previous_status``: a list of RUNNING jobs sees the one that
        finished leave) and per progress (PROGRESS, conflated per job by the server). Open until you close
        it (break out of the loop).

        Filters (all optional, combined): ``status`` and ``kind`` (one value or a list), ``tags`` (jobs
        carrying every one), ``parent`` (the children of that job or job id). ``after``: a ``cursor`` of an
        earlier update; the updates after it are replayed instead of the snapshot. A dropped connection is
        resumed from the last cursor the same way (no gap, no duplicate), with backoff, as :meth:`watch`
        does (a drop before the first update after the snapshot gets the snapshot again: SNAPSHOT updates
        are the jobs as they are, so take them as state, not as news); gives up on a server not reached
        within ``connect_timeout`` seconds unless ``retry_forever``.

        Raises:
            BadUserInput (not a cursor, a bad status, kind or tag), Unauthenticated, Forbidden (needs
            ``jobs:read``). RunwatchConnectionError: the server could not be reached in time.
        """
        return self._job_updates(status, kind, tags, parent, after, retry_forever, _handle)

    def _job_updates(self, status: Any, kind: Any, tags: Optional[Iterable[str]], parent: Union[JobState, str, None],
                     after: Optional[str], retry_forever: bool, handle: Optional[StreamHandle]) -> Iterator[JobUpdate]:
        filt = {"status": _as_list(status), "kind": _as_list(kind),
                "tags": None if tags is None else _tag_list(tags), "parentId": _job_id(parent)}
        seen: List[str] = []
        # SNAPSHOT updates all carry the list's head cursor: resuming from it after a drop in the middle of the
        # snapshot would lose the rest of it, so a drop before the first live update takes a fresh snapshot
        for item in self._resumable(D.JOB_UPDATES, lambda c: {"filter": filt, "after": c}, "jobUpdates", after,
                                    handle=handle, retry_forever=retry_forever,
                                    positioned=lambda i: i.get("type") != "SNAPSHOT"):
            update = JobUpdate.from_graphql(item)
            if update.type != JobUpdateType.SNAPSHOT:
                if update.cursor in seen:
                    continue
                seen.append(update.cursor)
                del seen[:-64]
            yield update

    def wait(self, job_id: str, timeout: Optional[float] = None,
             on_progress: Optional[Callable[[ProgressEvent], Any]] = None, *, retry_forever: bool = False) -> Job:
        """Waits for the job to finish (over the live stream, no polling) and returns its final state,
        whatever the final status (check ``job.status``).

        Args:
            timeout: seconds; None waits as long as it takes.
            on_progress: called with each :class:`ProgressEvent` (the first is a SNAPSHOT); a coroutine
                function is run to completion on a private event loop (from async code, use AsyncClient.wait).

            retry_forever: keep trying a server not reached yet (default: give up after the client's
                ``connect_timeout`` seconds, as :meth:`watch` does).

        Raises:
            WaitTimeout: not finished within ``timeout`` seconds (``.job`` is the last state seen).
            NotFound, Unauthenticated, Forbidden. RunwatchConnectionError: the server could not be
            reached within ``connect_timeout`` seconds.
        """
        last: List[Optional[Job]] = [None]
        deadline = None if timeout is None else time.monotonic() + timeout
        timeout_error = lambda: WaitTimeout(job_id, float(timeout or 0), last[0])  # noqa: E731
        for event in self._watch(job_id, None, deadline, timeout_error, retry_forever=retry_forever):
            last[0] = event.job  # type: ignore[assignment]
            if on_progress is not None:
                result = on_progress(event)
                if inspect.isawaitable(result):  # a coroutine function: run it to completion here
                    loop = asyncio.new_event_loop()
                    try:
                        loop.run_until_complete(result)
                    finally:
                        loop.close()
            if event.terminal:
                return event.job  # type: ignore[return-value]
        if last[0] is not None and last[0].finished:
            return last[0]
        return self.get_job(job_id)

    # ---- training ----

    def create_training_run(self, name: str, max_steps: Optional[int] = None, metadata: Any = None,
                            idempotency_key: Optional[str] = None, max_epochs: Optional[int] = None, *,
                            parent: Union[JobState, str, None] = None, tags: Optional[Iterable[str]] = None,
                            heartbeat_seconds: Optional[int] = None) -> "TrainingRun":
        """Creates a job of kind TRAINING and returns its :class:`~runwatch.training.TrainingRun`.

        ``max_steps`` is the run's total (steps); ``max_epochs`` is sent with each progress. ``parent``,
        ``tags`` and ``heartbeat_seconds`` are :meth:`create_job`'s (e.g. the runs of a sweep as children
        of one parent, tagged with the sweep's name). Raises like :meth:`create_job`.
        """
        from .training import TrainingRun
        job = self.create_job(name, kind="TRAINING", total=max_steps, metadata=metadata, idempotency_key=idempotency_key,
                              parent=parent, tags=tags, heartbeat_seconds=heartbeat_seconds)
        return TrainingRun(self, job, max_steps=max_steps, max_epochs=max_epochs)

    def training_run(self, run_id: str) -> "TrainingRun":
        """A handle on an existing training run (e.g. one ``python -m runwatch run`` created). Raises NotFound."""
        from .training import TrainingRun
        job = self.get_job(run_id)
        return TrainingRun(self, job, max_steps=job.total)

    def training_events(self, run_id: str, types: Any = None, after: Optional[str] = None,
                        min_log_level: Optional[str] = None, *, retry_forever: bool = False,
                        _handle: Optional[StreamHandle] = None) -> Iterator[TrainingEvent]:
        """A training run's events over SSE, as dataclasses named like their GraphQL types.

        Without ``after``: a fresh start first (``snapshot=True``: newest progress and stats, then the
        current status), then every event in order. ``types`` (one TrainingEventType or a list, e.g.
        ``"TRAINING_PROGRESS"``) and ``min_log_level`` filter. Resumes after a dropped connection; ends
        after a final TrainingStatusChange (STOPPED, ERROR, COMPLETED). Gives up on a server not reached
        within ``connect_timeout`` seconds unless ``retry_forever`` (see :meth:`watch`).

        Raises:
            NotFound, Unauthenticated, Forbidden, BadUserInput (bad type or cursor).
        """
        return self._training_events(run_id, types, after, min_log_level, retry_forever, _handle)

    def _training_events(self, run_id: str, types: Any, after: Optional[str], min_log_level: Optional[str],
                         retry_forever: bool, handle: Optional[StreamHandle]) -> Iterator[TrainingEvent]:
        type_list = _as_list(types)
        level = _enum_value(min_log_level).upper() if min_log_level else None
        for item in self._resumable(D.TRAINING_EVENTS, lambda c: {"runId": run_id, "types": type_list, "after": c,
                                                                  "minLogLevel": level},
                                    "trainingEvents", after, handle=handle, retry_forever=retry_forever):
            event = training_event_from_graphql(item)
            if event is not None:
                yield event

    def send_training_command(self, run_id: str, command: Union[TrainingCommandKind, str], args: Any = None,
                              ttl_seconds: Optional[int] = None) -> TrainingCommand:
        """Sends PAUSE, RESUME, STOP, SAMPLE or SAVE_CHECKPOINT to a run's trainer; PENDING until answered
        or ``ttl_seconds`` pass (default 60). Needs ``jobs:control``.

        Raises:
            NotFound, Conflict (run finished), BadUserInput (ttl, args over 16 KiB, unknown command), Forbidden.
        """
        data = self._transport.execute(D.SEND_TRAINING_COMMAND, {"runId": run_id, "command": _enum_value(command).upper(),
                                                                 "args": args, "ttlSeconds": ttl_seconds})
        return TrainingCommand.from_graphql(data["sendTrainingCommand"])

    def get_training_command(self, command_id: str) -> TrainingCommand:
        """A command with its current state (PENDING, ACKNOWLEDGED, REJECTED, EXPIRED). Raises NotFound."""
        data = self._transport.execute(D.GET_TRAINING_COMMAND, {"id": command_id})
        if data.get("trainingCommand") is None:
            raise NotFound(f"no training command with id {json.dumps(command_id, ensure_ascii=False)}", "NOT_FOUND")
        return TrainingCommand.from_graphql(data["trainingCommand"])

    def acknowledge_training_command(self, command_id: str, accepted: bool = True,
                                     message: Optional[str] = None) -> TrainingCommand:
        """Answers a command (the trainer's side). Raises NotFound, Conflict (answered or expired)."""
        data = self._transport.execute(D.ACK_TRAINING_COMMAND, {"id": command_id, "accepted": bool(accepted),
                                                                "message": message})
        return TrainingCommand.from_graphql(data["acknowledgeTrainingCommand"])

    # ---- job commands ----

    def send_job_command(self, job_id: str, command: Union[JobCommandKind, str], name: Optional[str] = None,
                         args: Any = None, ttl_seconds: Optional[int] = None) -> JobCommand:
        """Sends CANCEL, PAUSE, RESUME or a CUSTOM command (``name`` required) to any job's worker; it is
        PENDING until the worker answers or ``ttl_seconds`` pass (default 60, 1..3600), then EXPIRED.
        Needs ``jobs:control``.

        Raises:
            NotFound (no such job in your tenant), Conflict (job finished), BadUserInput (CUSTOM without a
            name, a name on another kind, ttl out of range, args over 16 KiB), Forbidden.
        """
        data = self._transport.execute(D.SEND_JOB_COMMAND, {"jobId": job_id, "command": _enum_value(command).upper(),
                                                            "name": name, "args": args, "ttlSeconds": ttl_seconds})
        return JobCommand.from_graphql(data["sendJobCommand"])

    def acknowledge_job_command(self, command_id: str, accepted: bool = True,
                                message: Optional[str] = None) -> JobCommand:
        """Answers a command (the worker's side): accepted → ACKNOWLEDGED, else REJECTED with ``message``.
        An accepted CANCEL cancels the job (answer once you have stopped); an accepted PAUSE / RESUME pauses
        or resumes it. Needs ``jobs:write``.

        Raises:
            NotFound, Conflict (already answered or expired), BadUserInput (message over 2000 characters).
        """
        data = self._transport.execute(D.ACK_JOB_COMMAND, {"id": command_id, "accepted": bool(accepted),
                                                           "message": message})
        return JobCommand.from_graphql(data["acknowledgeJobCommand"])

    def recent_job_commands(self, job_id: str) -> List[JobCommand]:
        """A job's newest commands (up to 200), newest first, with their current states. Raises NotFound."""
        data = self._transport.execute(D.RECENT_JOB_COMMANDS, {"jobId": job_id})
        return [JobCommand.from_graphql(c) for c in data["jobCommands"]]

    def job_commands(self, job_id: str, *, _handle: Optional[StreamHandle] = None) -> Iterator[JobCommand]:
        """The worker's command stream of a job: PENDING commands first, then new ones as they arrive, each
        once; resubscribes after a dropped connection. Answer each with :meth:`acknowledge_job_command`.
        Needs ``jobs:write``. Close the iterator to stop.

        Raises:
            NotFound, Unauthenticated, Forbidden.
        """
        return self._job_commands(job_id, _handle)

    def _job_commands(self, job_id: str, handle: Optional[StreamHandle]) -> Iterator[JobCommand]:
        return iter_commands(self, D.JOB_COMMANDS, {"jobId": job_id}, "jobCommands", JobCommand.from_graphql, handle)

    # ---- activity ----

    def activity(self, scope: Union[ActivityScope, str] = "ENVIRONMENT",
                 environment_id: Optional[str] = None, *, retry_forever: bool = False,
                 _handle: Optional[StreamHandle] = None) -> Iterator[ActivityEvent]:
        """Live account activity of a scope (USER, ENVIRONMENT, INSTITUTE): an ActivityUpdate snapshot
        first, then ActivityUpdate, BillingUpdate and ActivityHint events. With an ``environment_id`` that
        is not the token's: one ContextMismatch, then the stream ends. Open until you close it; reconnects
        (with a fresh snapshot) after a dropped connection; gives up on a server not reached within
        ``connect_timeout`` seconds unless ``retry_forever``. Needs ``activity:read``.

        Raises:
            Forbidden, Unauthenticated, BadUserInput (unknown scope).
        """
        return self._activity(scope, environment_id, retry_forever, _handle)

    def _activity(self, scope: Union[ActivityScope, str], environment_id: Optional[str], retry_forever: bool,
                  handle: Optional[StreamHandle]) -> Iterator[ActivityEvent]:
        for item in self._resumable(D.WATCH_ACTIVITY, lambda _c: {"scope": _enum_value(scope).upper(),
                                                                  "environmentId": environment_id},
                                    "activity", None, handle=handle, retry_forever=retry_forever):
            event = activity_event_from_graphql(item)
            if event is not None:
                yield event

    def get_activity(self, scope: Union[ActivityScope, str] = "ENVIRONMENT") -> ActivitySnapshot:
        """The activity of a scope now: active jobs, their resources and totals, and the budget."""
        data = self._transport.execute(D.ACTIVITY_NOW, {"scope": _enum_value(scope).upper()})
        return ActivitySnapshot.from_graphql(data["activity"])

    def metric_series(self, job_id: str, name: str, max_points: int = 500) -> List[MetricPoint]:
        """The history of one of a job's metric series, downsampled by the server to at most ``max_points``
        (4..2000) points that span its first to its last value and keep its minimum and maximum. Series:
        ``loss``, ``learningRate``, ``validationLoss`` and ``validation.<metric>`` of training runs; each gauge
        (:meth:`Job.metric`) and item metric (:meth:`Job.report_items`) by name, and ``latencySeconds``.
        An unknown name gives [].

        Raises:
            NotFound: no such job in your tenant. BadUserInput: ``max_points`` outside 4..2000.
        """
        data = self._transport.execute(D.METRIC_SERIES, {"jobId": job_id, "name": name, "maxPoints": max_points})
        return [MetricPoint.from_graphql(p) for p in data["metricSeries"]]


# imported late for the type annotations above
from .training import TrainingRun  # noqa: E402,F401
