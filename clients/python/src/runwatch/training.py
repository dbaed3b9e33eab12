"""Training runs: progress, logs, samples, system stats, validation, status, and commands.

Every publishing method returns at once: events are queued and sent in batches by the client's
background reporter (see :class:`runwatch.Job`), with the time of the call as their timestamp.
"""
from __future__ import annotations

import logging
import math
import threading
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Mapping, Optional, Union

from . import documents as D
from .commands import CommandListener, iter_commands
from .errors import BadUserInput
from .transport import StreamHandle
from .types import JobStatus, TrainingCommand, TrainingStatus, format_datetime

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, Job

log = logging.getLogger("runwatch")

__all__ = ["TrainingRun", "CommandListener", "SystemStatsSampler"]


def _now() -> str:
    return format_datetime(datetime.now(timezone.utc)) or ""


def _finite(value: Any) -> Optional[float]:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _whole(value: Any) -> Optional[int]:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


_LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "warn": "WARNING", "error": "ERROR",
           "critical": "CRITICAL", "fatal": "CRITICAL"}


class TrainingRun:
    """A training run (a job of kind TRAINING) seen from its trainer.

    Attributes:
        id: the run's id (its job id; the ``runId`` of its streams).
        job: the underlying :class:`runwatch.Job`.
        max_steps: steps in the whole run (the job's total), if known.
    """

    def __init__(self, client: "Client", job: "Job", max_steps: Optional[int] = None,
                 max_epochs: Optional[int] = None) -> None:
        self._client = client
        self.job = job
        self.id = job.id
        self.max_steps = max_steps
        self.max_epochs = max_epochs
        self._global_step = job.completed or 0
        self._samplers: list = []
        self._listeners: list = []

    def __repr__(self) -> str:
        return f"runwatch.TrainingRun(id={self.id!r}, name={self.job.name!r})"

    def _publish(self, event: Dict[str, Any]) -> None:
        self._client._reporter.add_event(self.job._slot(), event)

    # ---- what the trainer publishes ----

    def progress(self, step: Optional[int] = None, epoch: Optional[int] = None, global_step: Optional[int] = None,
                 max_step: Optional[int] = None, loss: Optional[float] = None, learning_rate: Optional[float] = None,
                 eta_seconds: Optional[float] = None, epoch_step: Optional[int] = None,
                 max_epoch: Optional[int] = None) -> None:
        """Publishes a TrainingProgress; it also moves the job (completed = ``global_step``, total = ``max_step``).

        ``global_step`` defaults to ``step``, else to one more than the last one. A step lower than the last
        is raised to it (the server refuses steps going down), and ``max_step`` (default ``max_steps``) is
        raised to ``global_step``. A non-finite ``loss`` or ``learning_rate`` is left out. ``eta_seconds``
        is the trainer's estimate of seconds left. Returns at once.
        """
        gs = _whole(global_step)
        if gs is None:
            gs = _whole(step)
        if gs is None:
            gs = self._global_step + 1
        gs = max(gs, self._global_step)
        self._global_step = gs
        ms = _whole(max_step if max_step is not None else self.max_steps)
        if ms is not None and ms < gs:
            ms = gs
        if ms is not None:
            self.max_steps = ms
        progress: Dict[str, Any] = {"globalStep": gs, "timestamp": _now()}
        for key, value in (("step", _whole(step)), ("epoch", _whole(epoch)), ("epochStep", _whole(epoch_step)),
                           ("maxStep", ms), ("maxEpoch", _whole(max_epoch if max_epoch is not None else self.max_epochs)),
                           ("loss", _finite(loss)), ("learningRate", _finite(learning_rate)),
                           ("etaSeconds", _finite(eta_seconds))):
            if value is not None:
                progress[key] = value
        if progress.get("learningRate", 0) < 0:
            del progress["learningRate"]
        if progress.get("etaSeconds", 0) < 0:
            del progress["etaSeconds"]
        self.job.completed = gs
        if ms is not None:
            self.job.total = ms
        self._publish({"progress": progress})

    def log(self, message: str, level: str = "info", source: Optional[str] = None) -> None:
        """Publishes a TrainingLog line (``level``: debug, info, warning, error, critical). The server
        rate-limits log lines per run (a burst of 200, then 50 a second) and counts what it drops."""
        lvl = _LEVELS.get(str(getattr(level, "value", level)).lower())
        if lvl is None:
            raise BadUserInput(f"level must be one of {sorted(set(_LEVELS))}, got {level!r}", "BAD_USER_INPUT")
        text = str(message)[:8000] or " "
        event: Dict[str, Any] = {"level": lvl, "message": text, "timestamp": _now()}
        if source:
            event["source"] = str(source)[:200]
        self._publish({"log": event})

    def sample(self, path: Optional[str] = None, prompt: Optional[str] = None, url: Optional[str] = None,
               sample_id: Optional[str] = None, sample_type: str = "IMAGE", step: Optional[int] = None,
               epoch: Optional[int] = None, thumbnail: Optional[str] = None) -> str:
        """Publishes a SampleGenerated (give ``path`` on the trainer's machine, or an http(s) ``url``, or
        both). Returns its sample id (default: a random one)."""
        if not path and not url:
            raise BadUserInput("sample needs a path or a url", "BAD_USER_INPUT")
        sid = sample_id or uuid.uuid4().hex[:16]
        event: Dict[str, Any] = {"sampleId": sid, "sampleType": str(getattr(sample_type, "value", sample_type)).upper(),
                                 "timestamp": _now()}
        for key, value in (("path", path), ("url", url), ("prompt", prompt[:2000] if prompt else None),
                           ("step", _whole(step if step is not None else self._global_step)), ("epoch", _whole(epoch)),
                           ("thumbnail", thumbnail)):
            if value is not None:
                event[key] = value
        self._publish({"sample": event})
        return sid

    def system_stats(self, cpu_percent: Optional[float] = None, ram_used_gb: Optional[float] = None,
                     ram_total_gb: Optional[float] = None, gpu_utilization_percent: Optional[float] = None,
                     gpu_memory_used_gb: Optional[float] = None, gpu_memory_total_gb: Optional[float] = None) -> None:
        """Publishes a SystemStats: percentages 0..100, sizes in GB (used ≤ total)."""
        event: Dict[str, Any] = {"timestamp": _now()}
        for key, value in (("cpuPercent", cpu_percent), ("ramUsedGb", ram_used_gb), ("ramTotalGb", ram_total_gb),
                           ("gpuUtilizationPercent", gpu_utilization_percent), ("gpuMemoryUsedGb", gpu_memory_used_gb),
                           ("gpuMemoryTotalGb", gpu_memory_total_gb)):
            number = _finite(value)
            if number is not None and number >= 0:
                event[key] = min(number, 100.0) if key.endswith("Percent") else number
        self._publish({"systemStats": event})

    def auto_system_stats(self, interval: float = 10.0) -> "SystemStatsSampler":
        """Publishes SystemStats every ``interval`` seconds from a daemon thread: CPU and RAM from ``/proc``,
        GPU from ``nvidia-smi`` when present. A missing source is skipped, never fatal. Stops when the run
        finishes or when you call ``stop()`` on the returned sampler."""
        sampler = SystemStatsSampler(self, interval)
        self._samplers.append(sampler)
        sampler.start()
        return sampler

    def validation(self, loss: float, step: Optional[int] = None, epoch: Optional[int] = None,
                   metrics: Optional[Mapping[str, float]] = None) -> None:
        """Publishes a ValidationResult: validation ``loss`` and further ``metrics`` by name (at most 50).

        Raises:
            BadUserInput: ``loss`` is not a finite number.
        """
        value = _finite(loss)
        if value is None:
            raise BadUserInput(f"validation loss must be a finite number, got {loss!r}", "BAD_USER_INPUT")
        event: Dict[str, Any] = {"validationLoss": value, "timestamp": _now(),
                                 "step": _whole(step if step is not None else self._global_step)}
        if _whole(epoch) is not None:
            event["epoch"] = _whole(epoch)
        if metrics:
            event["metrics"] = [{"name": str(k)[:100], "value": v} for k, v in
                                ((k, _finite(v)) for k, v in list(metrics.items())[:50]) if v is not None]
        self._publish({"validation": event})

    def status(self, status: Union[TrainingStatus, str], message: Optional[str] = None,
               error: Optional[str] = None) -> None:
        """Publishes a TrainingStatusChange. RUNNING starts or resumes the job, PAUSED pauses it, and the
        final ones end it: COMPLETED completes, ERROR fails (with ``error``), STOPPED cancels."""
        value = str(getattr(status, "value", status)).upper()
        if value not in TrainingStatus.__members__:
            raise BadUserInput(f"status must be one of {list(TrainingStatus.__members__)}, got {status!r}",
                               "BAD_USER_INPUT")
        event: Dict[str, Any] = {"status": value, "timestamp": _now()}
        if message:
            event["message"] = str(message)[:2000]
        if error:
            event["error"] = str(error)[:2000]
        self._publish({"status": event})

    # ---- finishing ----

    def _final(self, status: str, job_status: JobStatus, message: Optional[str], error: Optional[str],
               timeout: Optional[float]) -> bool:
        self._stop_helpers()
        self.status(status, message=message, error=error)
        ok = self._client._reporter.flush(self._client.flush_timeout if timeout is None else timeout)
        if ok:
            self.job.status = job_status
        else:
            log.warning("runwatch: run %s: could not send its final status in time", self.id)
        return ok

    def complete(self, message: Optional[str] = None, timeout: Optional[float] = None) -> bool:
        """Publishes status COMPLETED (the job becomes COMPLETED) after everything pending. Waits up to
        ``timeout`` seconds (default: the client's ``flush_timeout``); True when delivered."""
        return self._final("COMPLETED", JobStatus.COMPLETED, message, None, timeout)

    def fail(self, error: Union[str, BaseException], timeout: Optional[float] = None) -> bool:
        """Publishes status ERROR with ``error`` (the job becomes FAILED). Waits like :meth:`complete`."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return self._final("ERROR", JobStatus.FAILED, None, (text or "failed")[:2000], timeout)

    def stop(self, message: Optional[str] = None, timeout: Optional[float] = None) -> bool:
        """Publishes status STOPPED (the job becomes CANCELLED), e.g. after a STOP command."""
        return self._final("STOPPED", JobStatus.CANCELLED, message, None, timeout)

    def close(self, timeout: Optional[float] = None) -> bool:
        """Stops the samplers and command listeners and sends what is pending, without finishing the run."""
        self._stop_helpers()
        return self.job.close(timeout)

    def _stop_helpers(self) -> None:
        for helper in self._samplers + self._listeners:
            helper.stop()

    def __enter__(self) -> "TrainingRun":
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        if exc is None:
            self.complete()
        else:
            self.fail(exc)

    # ---- commands ----

    def commands(self, _handle: Optional[StreamHandle] = None) -> Iterator[TrainingCommand]:
        """Commands for this run as they arrive (PENDING ones first), each once. Answer each with
        :meth:`acknowledge`; an unanswered one comes again on the next subscription. Resubscribes after a
        dropped connection. Close the iterator to stop.

        Raises:
            NotFound, Unauthenticated, Forbidden (needs ``jobs:write``).
        """
        return iter_commands(self._client, D.TRAINING_COMMANDS, {"runId": self.id}, "trainingCommands",
                             TrainingCommand.from_graphql, _handle)

    def acknowledge(self, command: Union[TrainingCommand, str], accepted: bool = True,
                    message: Optional[str] = None) -> TrainingCommand:
        """Answers a command: accepted → ACKNOWLEDGED, else REJECTED with ``message``.

        Raises:
            Conflict: already answered or expired. NotFound.
        """
        command_id = command.id if isinstance(command, TrainingCommand) else str(command)
        return self._client.acknowledge_training_command(command_id, accepted, message)

    def on_command(self, callback: Callable[[TrainingCommand], Any]) -> "CommandListener[TrainingCommand]":
        """Runs ``callback(command)`` on a daemon thread for each command. Its return value answers it:
        True (or None) → ACKNOWLEDGED, False → REJECTED; raising → REJECTED with the exception as message.
        Returns the listener (``stop()`` ends it; it also ends when the run finishes)."""
        listener: CommandListener[TrainingCommand] = CommandListener(f"run {self.id}", self.commands, self.acknowledge, callback)
        self._listeners.append(listener)
        listener.start()
        return listener


class SystemStatsSampler:
    """The thread behind :meth:`TrainingRun.auto_system_stats`."""

    def __init__(self, run: TrainingRun, interval: float) -> None:
        self._run = run
        self.interval = max(0.1, float(interval))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"runwatch-stats-{run.id}", daemon=True)

    def start(self) -> None:
        """Starts sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stops sampling (at once)."""
        self._stopped.set()

    def _loop(self) -> None:
        from .system import read_system_stats
        previous = None
        while not self._stopped.is_set():
            try:
                stats, previous = read_system_stats(previous)
                if stats:
                    self._run.system_stats(**stats)
            except Exception:  # a broken source is skipped, never fatal
                log.debug("runwatch: system stats failed", exc_info=True)
            self._stopped.wait(self.interval)
