"""The :class:`Job` handle: a job's state as last seen, and the reporting methods of a worker."""
from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Union

from . import documents as D
from .commands import CommandListener
from .errors import BadUserInput
from .outputs import Step, items_inputs, log_line, metric_value
from .transport import StreamHandle
from .types import JobCommand, JobState, JobStatus, Resources

log = logging.getLogger("runwatch")

__all__ = ["Job"]

ResourcesLike = Union[Resources, Mapping[str, Any]]


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadUserInput(f"{name} must be a whole number ≥ 0, got {value!r}", "BAD_USER_INPUT")
    return value


@dataclass
class Job(JobState):
    """A job: its state as last seen (see :class:`runwatch.types.JobState` for the fields) and the
    reporting methods of a worker.

    The reporting methods (:meth:`advance`, :meth:`update`) return at once and never raise because of
    the network: a background thread coalesces them (a few requests per second at most), retries, and
    logs one warning on the ``runwatch`` logger when the server cannot be reached. ``completed`` here
    follows what you reported. Use it as a context manager to complete it on normal exit and fail it
    (with the exception's type and message) when the block raises.
    """

    # not a dataclass field, so dataclasses.asdict(job) and copies stay plain data
    _client = None  # type: Any

    def _slot(self) -> Any:
        if self._client is None:
            raise RuntimeError("runwatch: this Job is not bound to a Client")
        slot = self._client._reporter.slot(self.id, self.completed)
        self.__dict__["_slot_cache"] = slot
        return slot

    def advance(self, n: int = 1, failed: int = 0) -> None:
        """Marks ``n`` more items done and ``failed`` more failed. Returns at once; never waits for the network.

        Raises:
            BadUserInput: ``n`` or ``failed`` is not a whole number ≥ 0.
        """
        if n.__class__ is not int or n < 0 or failed.__class__ is not int or failed < 0:  # the hot path: one check
            _check_count("n", n)
            _check_count("failed", failed)
        slot = self.__dict__.get("_slot_cache") or self._slot()
        self._client._reporter.advance(slot, n, failed)
        self.completed = slot.completed
        if failed:
            self.failed += failed

    def update(self, completed: Optional[int] = None, total: Optional[int] = None, stage: Optional[str] = None,
               message: Optional[str] = None, resources: Optional[ResourcesLike] = None) -> None:
        """Sets absolute values: ``completed`` items (ignored when lower than before), ``total`` items,
        the current ``stage``, a status ``message`` and the ``resources`` the job holds now
        (:class:`Resources` or a dict with ``containers``, ``cpu_cores``, ``memory_gb``, ``gpus``).
        Returns at once.

        Raises:
            BadUserInput: a count is not a whole number ≥ 0.
            TypeError: ``resources`` is neither a Resources nor a dict with those keys.
        """
        change: Dict[str, Any] = {}
        if completed is not None:
            _check_count("completed", completed)
        if total is not None:
            change["total"] = _check_count("total", total)
            self.total = total
        if stage is not None:
            change["stage"] = str(stage)[:200]
            self.stage = change["stage"]
        if message is not None:
            change["message"] = str(message)[:2000]
            self.message = change["message"]
        if resources is not None:
            res = Resources.coerce(resources)
            change["resources"] = res.to_graphql()
            self.resources = res
        slot = self._slot()
        self._client._reporter.update(slot, completed, change)
        self.completed = slot.completed

    def report_items(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Reports item results: each a dict with ``item_id``, ``ok`` (default True), ``latency_seconds``,
        ``metrics`` (a dict name → value), ``error`` and ``data`` (JSON, at most 4 KiB). The ok ones count
        as completed, the others as failed; their metrics are summarized per name on the server
        (``metrics``, ``success_rate``) and stream as ITEM_RESULTS events. Returns at once; results are
        coalesced into requests of up to 500 (like :meth:`advance`). Do not also :meth:`advance` for them.

        Raises:
            BadUserInput: an item without id, a non-finite number, a negative latency, data over 4 KiB
                (nothing of the batch is queued).
        """
        batch = items_inputs(items)
        if not batch:
            return
        slot = self._slot()
        self._client._reporter.add_items(slot, batch)
        self.completed = slot.completed
        self.failed += sum(1 for i in batch if not i["ok"])

    def report_item(self, item_id: str, ok: bool = True, latency_seconds: Optional[float] = None,
                    metrics: Optional[Mapping[str, float]] = None, error: Optional[str] = None, data: Any = None) -> None:
        """Reports one item result (see :meth:`report_items`). Returns at once."""
        self.report_items([{"item_id": item_id, "ok": ok, "latency_seconds": latency_seconds, "metrics": metrics,
                            "error": error, "data": data}])

    def metric(self, name: str, value: float) -> None:
        """Sets a gauge (tokens per second, cost so far): summarized on the server under ``name``
        (last, count, mean, min, max) and kept in its history (``metric_series``). Coalesced with the
        next progress report (the newest value per name wins). Returns at once.

        Raises:
            BadUserInput: an empty or over-long (100) name, or a value that is not a finite number.
        """
        metric = metric_value(name, value)
        self._client._reporter.set_metric(self._slot(), metric)

    def step(self, name: str, total: Optional[int] = None) -> Step:
        """A step of this job for a ``with`` (or ``async with``) block: RUNNING at the start, COMPLETED at
        the end, FAILED with the exception's ``Type: message`` when the block raises (the exception goes
        on). Steps may run in parallel (threads, tasks). Reports are sent at once, in order.

            with job.step("ocr", total=len(pages)) as step:
                for i, page in enumerate(pages):
                    ocr(page)
                    step.update(completed=i + 1)
        """
        return Step(self, name, total)

    def log(self, message: Any, level: Union[int, str] = "INFO", source: Optional[str] = None) -> None:
        """Sends a log line to the job's stream (``runProgress(logs: true)``): ``level`` is a ``logging``
        level number or a name (debug, info, warning, error, critical). Returns at once and never raises
        for the network; lines are batched, and the server rate-limits them per job (a burst of 200, then
        50 a second), counting what it drops in the next line's ``dropped_before``. See :class:`runwatch.LogHandler`.

        Raises:
            BadUserInput: an unknown level name.
        """
        line = log_line(message, level, source)
        self._client._reporter.add_line(self._slot(), line)

    def _finish(self, document: str, variables: Dict[str, Any], status: JobStatus, timeout: Optional[float]) -> bool:
        for listener in self.__dict__.pop("_command_listeners", []):
            listener.stop()
        slot = self._slot()
        delivered = self._client._reporter.finish(slot, document, variables,
                                                  self._client.flush_timeout if timeout is None else timeout)
        if delivered:
            self.status = status
        else:
            log.warning("runwatch: job %s: could not send %s within %g s; still trying in the background",
                        self.id, status.value, self._client.flush_timeout if timeout is None else timeout)
        return delivered

    def complete(self, message: Optional[str] = None, timeout: Optional[float] = None) -> bool:
        """Sends everything pending, then marks the job COMPLETED (the count is exact).

        Waits up to ``timeout`` seconds (default: the client's ``flush_timeout``). Returns True when the
        server has it; False (and a warning) when it is still being retried. Never raises for the network.
        """
        return self._finish(D.COMPLETE_JOB, {"id": self.id, "message": message}, JobStatus.COMPLETED, timeout)

    def fail(self, error: Union[str, BaseException], timeout: Optional[float] = None) -> bool:
        """Sends everything pending, then marks the job FAILED with ``error`` (a string or an exception,
        shown as ``Type: message``). Waits like :meth:`complete`."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        text = (text or "failed")[:2000]
        self.error_message = text
        return self._finish(D.FAIL_JOB, {"id": self.id, "error": text}, JobStatus.FAILED, timeout)

    def cancel(self, reason: Optional[str] = None, timeout: Optional[float] = None) -> bool:
        """Cancels the job (needs the ``jobs:control`` scope). Waits like :meth:`complete`."""
        return self._finish(D.CANCEL_JOB, {"id": self.id, "reason": reason}, JobStatus.CANCELLED, timeout)

    # ---- commands (CANCEL, PAUSE, RESUME, CUSTOM) ----

    def commands(self, _handle: Optional[StreamHandle] = None) -> Iterator[JobCommand]:
        """Commands sent to this job (:meth:`Client.send_job_command`) as they arrive, PENDING ones first,
        each once. Answer each with :meth:`acknowledge_command`; an unanswered one comes again on the next
        subscription. Resubscribes after a dropped connection; close the iterator to stop.

        Raises:
            NotFound, Unauthenticated, Forbidden (needs ``jobs:write``).
        """
        return self._client._job_commands(self.id, _handle)

    def acknowledge_command(self, command: Union[JobCommand, str], accepted: bool = True,
                            message: Optional[str] = None) -> JobCommand:
        """Answers a command: accepted → ACKNOWLEDGED, else REJECTED with ``message``. An accepted CANCEL
        cancels the job on the server (answer once you have stopped); PAUSE / RESUME pause or resume it.

        Raises:
            Conflict: already answered or expired. NotFound.
        """
        command_id = command.id if isinstance(command, JobCommand) else str(command)
        return self._client.acknowledge_job_command(command_id, accepted, message)

    def on_command(self, callback: Callable[[JobCommand], Any]) -> "CommandListener[JobCommand]":
        """Runs ``callback(command)`` on a daemon thread for each command sent to this job. Its return
        value answers it: True (or None) → ACKNOWLEDGED, False → REJECTED; raising → REJECTED with the
        exception as message. For a CANCEL, return once the work has stopped: the acknowledgement cancels
        the job. Returns the listener (``stop()`` ends it; it also ends when this handle finishes the job)."""
        listener: CommandListener[JobCommand] = CommandListener(f"job {self.id}", self.commands, self.acknowledge_command, callback)
        listeners: List[CommandListener[JobCommand]] = self.__dict__.setdefault("_command_listeners", [])
        listeners.append(listener)
        listener.start()
        return listener

    def close(self, timeout: Optional[float] = None) -> bool:
        """Sends what is pending (without finishing the job). True when everything was sent within ``timeout`` s."""
        if self._client is None:
            return True
        return self._client._reporter.flush(self._client.flush_timeout if timeout is None else timeout)

    @property
    def dashboard_url(self) -> Optional[str]:
        """The job's page on the server's web dashboard, ``<server>/jobs/<id>`` (e.g.
        ``http://127.0.0.1:4000/jobs/j_…``); None when the job is not bound to a client."""
        if self._client is None:
            return None
        endpoint = self._client.url
        base = endpoint[:-len("/graphql")] if endpoint.endswith("/graphql") else endpoint.rstrip("/")
        return f"{base}/jobs/{urllib.parse.quote(self.id, safe='')}"

    def refresh(self) -> "Job":
        """Reloads the state from the server (after sending what is pending). Raises like :meth:`Client.get_job`."""
        self.close()
        fresh = self._client.get_job(self.id)
        for name in JobState.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))
        return self

    def __enter__(self) -> "Job":
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        if exc is None:
            self.complete()
        else:
            self.fail(exc)


def _bind(client: "Client", data: Mapping[str, Any]) -> Job:
    state = JobState.from_graphql(data)
    job = Job(**{name: getattr(state, name) for name in JobState.__dataclass_fields__})
    job._client = client
    return job
