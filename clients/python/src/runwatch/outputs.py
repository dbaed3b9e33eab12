"""What a job produces, on the worker's side: item results, gauges, steps and log lines (private helpers
of :class:`runwatch.Job`), and :class:`LogHandler`, a ``logging.Handler`` that sends a logger's records
to a job.

Everything here only queues locally (the client's background reporter sends it, coalesced, retried and
bounded), so none of it blocks on or raises for the network.
"""
from __future__ import annotations

import json
import logging
import math
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Union

from .errors import BadUserInput
from .types import format_datetime

if TYPE_CHECKING:
    from .job import Job

__all__ = ["LogHandler", "Step"]

#: Bounds the server enforces (schema.graphql: ItemResultInput, MetricInput, LogLineInput, reportStep).
ITEMS_PER_REQUEST = 500
LOG_LINES_PER_REQUEST = 1000
DATA_JSON_MAX = 4096
NAME_MAX = 100

_LEVEL_NAMES = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "warn": "WARNING", "error": "ERROR",
                "critical": "CRITICAL", "fatal": "CRITICAL"}


def _bad(message: str) -> BadUserInput:
    return BadUserInput(message, "BAD_USER_INPUT")


def _now() -> str:
    return format_datetime(datetime.now(timezone.utc)) or ""


def level_name(level: Union[int, str, Any]) -> str:
    """A ``logging`` level number (10, 20, 30, 40, 50 and between) or a name (``"info"``, ``"WARNING"``) →
    the server's LogLevel. Raises BadUserInput for an unknown name."""
    if isinstance(level, int) and not isinstance(level, bool):
        if level >= logging.CRITICAL:
            return "CRITICAL"
        if level >= logging.ERROR:
            return "ERROR"
        if level >= logging.WARNING:
            return "WARNING"
        return "INFO" if level >= logging.INFO else "DEBUG"
    name = _LEVEL_NAMES.get(str(getattr(level, "value", level)).lower())
    if name is None:
        raise _bad(f"level must be a logging level or one of {sorted(set(_LEVEL_NAMES))}, got {level!r}")
    return name


_LEVEL_IN_LINE = re.compile(r"\b(DEBUG|INFO|WARN(?:ING)?|ERROR|CRITICAL|FATAL)\b", re.IGNORECASE)


def guess_level(line: str) -> str:
    """The level of a program's output line: the first level word in its first 40 characters (``WARNING:root:…``,
    ``2026-12-07 10:00:00 ERROR …``), ERROR for a traceback's first line, else INFO."""
    match = _LEVEL_IN_LINE.search(line[:40])
    if match:
        return level_name(match.group(1))
    return "ERROR" if line.startswith("Traceback (most recent call last)") else "INFO"


def metric_value(name: str, value: Any) -> Dict[str, Any]:
    """A MetricInput ``{name, value}``; raises BadUserInput for an empty or long name or a non-finite value."""
    text = str(name)
    if not text.strip() or len(text) > NAME_MAX:
        raise _bad(f"a metric name must have 1..{NAME_MAX} characters, got {name!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(f"metric {text!r} must be a number, got {value!r}") from None
    if not math.isfinite(number) or isinstance(value, bool):
        raise _bad(f"metric {text!r} must be a finite number, got {value!r}")
    return {"name": text, "value": number}


def _metrics(value: Any) -> List[Dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [metric_value(k, v) for k, v in value.items()]
    return [metric_value(m["name"], m["value"]) for m in value]


def item_input(item: Mapping[str, Any]) -> Dict[str, Any]:
    """An ItemResultInput from a dict with ``item_id`` (or ``itemId``), ``ok`` (default True),
    ``latency_seconds`` (or ``latencySeconds``), ``metrics`` (a dict name → value, or a list of
    ``{name, value}``), ``error`` and ``data`` (JSON-serializable, at most 4 KiB).

    Raises:
        BadUserInput: no item id, a non-finite number or negative latency, or data over 4 KiB.
    """
    item_id = item.get("item_id", item.get("itemId"))
    if item_id is None or not str(item_id).strip():
        raise _bad(f"an item result needs an item_id, got {dict(item)!r}"[:300])
    out: Dict[str, Any] = {"itemId": str(item_id)[:200], "ok": bool(item.get("ok", True))}
    latency = item.get("latency_seconds", item.get("latencySeconds"))
    if latency is not None:
        number = float(latency)
        if not math.isfinite(number) or number < 0:
            raise _bad(f"latency_seconds must be a finite number ≥ 0, got {latency!r}")
        out["latencySeconds"] = number
    metrics = _metrics(item.get("metrics"))
    if metrics:
        out["metrics"] = metrics
    if item.get("error") is not None:
        out["error"] = str(item["error"])[:2000]
    if item.get("data") is not None:
        data = item["data"]
        if len(json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)) > DATA_JSON_MAX:
            raise _bad(f"data of item {out['itemId']!r} is larger than {DATA_JSON_MAX} characters of JSON")
        out["data"] = data
    return out


def log_line(message: Any, level: Union[int, str] = "INFO", source: Optional[str] = None) -> Dict[str, Any]:
    """A LogLineInput (message cut to 8000 characters, source to 200), stamped now."""
    line: Dict[str, Any] = {"level": level_name(level), "message": str(message)[:8000] or " ", "timestamp": _now()}
    if source:
        line["source"] = str(source)[:200]
    return line


class Step:
    """A step of a job, timed by a ``with`` (or ``async with``) block: RUNNING when the block starts,
    COMPLETED when it ends, FAILED with ``"Type: message"`` of the exception when it raises (the
    exception propagates). ``duration_seconds`` is the block's own measure (time.monotonic); the server's
    ``durationSeconds`` comes from when it received the two reports, which are sent at once.

    ``update(completed=, total=)`` reports the step's own progress (e.g. pages) while it runs.
    """

    def __init__(self, job: "Job", name: str, total: Optional[int] = None) -> None:
        text = str(name)
        if not text.strip() or len(text) > 200:
            raise _bad(f"a step name must have 1..200 characters, got {name!r}")
        self.job = job
        self.name = text
        self.total = total
        self.completed: Optional[int] = None
        self.status = "PENDING"
        self.error: Optional[str] = None
        self.duration_seconds: Optional[float] = None
        self._started: Optional[float] = None

    def _report(self, status: str, error: Optional[str] = None) -> None:
        self.status = status
        variables: Dict[str, Any] = {"jobId": self.job.id, "name": self.name, "status": status}
        if self.completed is not None:
            variables["completed"] = self.completed
        if self.total is not None:
            variables["total"] = self.total
        if error is not None:
            variables["error"] = error
        self.job._client._reporter.add_step(self.job._slot(), variables)

    def start(self) -> "Step":
        """Reports the step RUNNING (what entering the ``with`` block does)."""
        self._started = time.monotonic()
        self._report("RUNNING")
        return self

    def update(self, completed: Optional[int] = None, total: Optional[int] = None) -> None:
        """Reports the step's units done and in all (non-negative whole numbers); it stays RUNNING."""
        if completed is not None:
            self.completed = int(completed)
        if total is not None:
            self.total = int(total)
        self._report("RUNNING")

    def finish(self, error: Optional[BaseException] = None) -> None:
        """Reports COMPLETED, or FAILED with the error's ``Type: message`` (what leaving the block does)."""
        if self._started is not None:
            self.duration_seconds = time.monotonic() - self._started
        if error is None:
            self._report("COMPLETED")
        else:
            self.error = (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)[:2000]
            self._report("FAILED", self.error)

    def __enter__(self) -> "Step":
        return self.start()

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        self.finish(exc)
        return False

    async def __aenter__(self) -> "Step":
        return self.start()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        self.finish(exc)
        return False


class LogHandler(logging.Handler):
    """A ``logging.Handler`` that sends a logger's records to a job as log lines (``appendLogs``; watch them
    with ``runProgress(logs: true)``), with the record's level and the logger's name as ``source``.

    It never blocks and never raises: a record is formatted and queued locally; the client's background
    reporter sends lines in batches, retries while the server is away and keeps at most 10,000 waiting
    (the oldest are dropped). Records of the ``runwatch`` logger itself are not sent (no feedback loop
    during an outage). The server rate-limits lines per job (a burst of 200, then 50 a second) and counts
    what it drops in the next line's ``droppedBefore``.

        handler = runwatch.LogHandler(job, level=logging.INFO)
        logging.getLogger().addHandler(handler)
    """

    def __init__(self, job: "Job", level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.job = job

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name == "runwatch" or record.name.startswith("runwatch."):
                return
            self.job.log(self.format(record), level=record.levelno, source=record.name)
        except Exception:  # a log call must never fail the program
            pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        pass


def items_inputs(items: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Validates a batch (see :func:`item_input`); all or nothing."""
    return [item_input(i) for i in items]
