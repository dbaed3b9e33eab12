"""Showing jobs to people: live lines for jobs on a terminal (tqdm widgets in Jupyter), one line per event
in a pipe, a summary per job, and the activity table. Lines follow the Node ``runwatch watch`` (see
``runwatch.format``).

Used by ``python -m runwatch watch`` and ``python -m runwatch activity``; call them from a notebook too.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import fields, is_dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Dict, Iterable, List, Optional, TextIO, Tuple

from .client import Client, Job
from .format import clip, format_count, format_duration, format_percent, format_rate, one_line, wrap_words
from .types import (ActivityHint, ActivityUpdate, BillingUpdate, ContextMismatch, ItemResult, JobState, JobStatus,
                    JobStep, JobUpdate, JobUpdateType, LogLine, ProgressEvent, ProgressEventType)

__all__ = ["watch_bars", "watch_lines", "activity_table", "format_event", "event_lines", "detail_lines", "item_line",
           "log_text", "format_update", "jobs_table", "print_jobs", "summary_line", "bar_line", "terminal_width", "to_json"]


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if not f.name.startswith("_")}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_json(obj: Any) -> str:
    """A dataclass (event, job) as one line of JSON, with its GraphQL ``__typename``."""
    data = _plain(obj)
    if isinstance(data, dict):
        data = {"__typename": type(obj).__name__, **data}
    return json.dumps(data, default=str)


def _value(value: Any) -> str:
    return str(getattr(value, "value", value))


def _status(job: JobState) -> str:
    """The job's status for people: ``STALLED`` instead of RUNNING while it is stalled (no report for its
    ``heartbeat_seconds``), so a silent job stands out in every line and bar."""
    status = _value(job.status)
    return "STALLED" if job.stalled and status == "RUNNING" else status


def format_event(event: ProgressEvent) -> str:
    """One line for a job event, as the Node ``runwatch watch`` prints it in a pipe:
    ``HH:MM:SS  name (id)  TYPE  completed/total  percent  rate R/s  ETA d  [stage S]  STATUS  [- message]``
    (UTC time; two spaces between fields; percent, rate and ETA are ``-`` while unknown). A stalled job's
    status reads ``STALLED``, and its STALLED event's message says for how long it has been silent
    (``- no report for 60 s``). A STAGE event says what its step did: ``step ocr RUNNING``, ``step ocr
    COMPLETED in 3s``, ``step ocr FAILED in 1s  …  - ValueError: bad page``. The item results and log lines of ITEM_RESULTS and LOG events are
    :func:`detail_lines`."""
    job = event.job
    etype = _value(event.type)
    parts = [
        _clock(event),
        f"{one_line(job.name)} ({job.id})",
        etype.ljust(11),
        format_count(job.completed, job.total),
        format_percent(job.percent),
        f"rate {format_rate(job.rate)}",
        f"ETA {format_duration(job.eta_seconds)}",
        f"stage {one_line(job.stage)}" if job.stage else "",
        _step_text(event.step) if event.step is not None else "",
        _status(job),
        f"- {one_line(event.message)}" if event.message and etype != "STAGE" else "",
        f"- {one_line(event.step.error)}" if event.step is not None and event.step.error else "",
    ]
    return "  ".join(p for p in parts if p)


def _step_text(step: JobStep) -> str:
    """``step ocr RUNNING``, ``step ocr COMPLETED in 3s`` (with its units, ``4/10``, when reported)."""
    units = f" {format_count(step.completed, step.total)}" if step.completed is not None else ""
    took = f" in {format_duration(step.duration_seconds)}" if step.finished_at is not None else ""
    return f"step {one_line(step.name)} {step.status}{units}{took}"


def _clock(event: ProgressEvent) -> str:
    when = event.timestamp.astimezone(timezone.utc) if event.timestamp is not None else datetime.now(timezone.utc)
    return when.strftime("%H:%M:%S")


def _number(value: float) -> str:
    return f"{value:.4g}"


def item_line(item: ItemResult, marks: Tuple[str, str] = ("✔", "✖")) -> str:
    """An item result for people: ``✔ q1  0.42s  accuracy=1`` or, failed, ``✖ q2 failed: wrong answer
    1.3s  accuracy=0`` (latency in seconds, metrics as ``name=value`` to 4 significant digits)."""
    ok, bad = marks
    head = f"{ok} {one_line(item.item_id)}" if item.ok else \
        f"{bad} {one_line(item.item_id)} failed" + (f": {one_line(item.error)}" if item.error else "")
    parts = [head, f"{_number(item.latency_seconds)}s" if item.latency_seconds is not None else ""]
    parts += [f"{one_line(name)}={_number(value)}" for name, value in item.metrics.items()]
    return "  ".join(p for p in parts if p)


def log_text(line: LogLine) -> str:
    """A log line for people: ``WARNING  grader: q2 took 1.3 s``, then ``(12 dropped before)`` when the
    server's rate limit dropped lines just before it."""
    source = f"{one_line(line.source)}: " if line.source else ""
    dropped = f"  ({line.dropped_before} dropped before)" if line.dropped_before else ""
    return f"{_value(line.level).ljust(7)}  {source}{one_line(line.message)}{dropped}"


def detail_lines(event: ProgressEvent, marks: Tuple[str, str] = ("✔", "✖")) -> List[str]:
    """What an ITEM_RESULTS or LOG event carries, one line each (:func:`item_line`, :func:`log_text`);
    [] for other events."""
    return [item_line(i, marks) for i in event.items] + [log_text(line) for line in event.logs]


def event_lines(event: ProgressEvent, marks: Tuple[str, str] = ("✔", "✖")) -> List[str]:
    """The lines ``watch`` prints for an event in a pipe: :func:`format_event`, or for ITEM_RESULTS and
    LOG events one line per item result or log line, each with the time and the job
    (``12:03:04  qa eval (j_…)  ITEM  ✖ q2 failed: wrong answer  1.3s  accuracy=0``,
    ``12:03:04  qa eval (j_…)  LOG   WARNING  grader: q2 took 1.3 s``)."""
    if event.type not in (ProgressEventType.ITEM_RESULTS, ProgressEventType.LOG):
        return [format_event(event)]
    prefix = f"{_clock(event)}  {one_line(event.job.name)} ({event.job.id})  "
    return [prefix + ("ITEM  " + item_line(i, marks)) for i in event.items] + \
        [prefix + "LOG   " + log_text(line) for line in event.logs]


def _marks(out: Any) -> Tuple[str, str]:
    """✔ and ✖, or ``ok`` and ``x`` when ``out`` cannot encode them."""
    try:
        "✔✖█░…".encode(getattr(out, "encoding", None) or "utf-8")
        return "✔", "✖"
    except (UnicodeEncodeError, LookupError):
        return "ok", "x"


def summary_line(job: Optional[JobState], job_id: str, error: Optional[str] = None,
                 marks: Tuple[str, str] = ("✔", "✖")) -> str:
    """A job's summary, as the Node ``runwatch watch`` prints it, fields two spaces apart: mark, name,
    status, done/total, failed items, duration, rate, the error (FAILED) or reason (CANCELLED), and the
    error that stopped the watch. A job never seen: ``✖ <id>  <error>``."""
    ok, bad = marks
    if job is None:
        return f"{bad} {job_id}  {error or 'not watched'}"
    status = _value(job.status)
    seconds = (job.finished_at - job.started_at).total_seconds() if job.started_at and job.finished_at else None
    detail = ""
    if status == "FAILED":
        detail = f"error: {one_line(job.error_message or '?')}"
    elif status == "CANCELLED" and job.message:
        detail = f"reason: {one_line(job.message)}"
    parts = [
        ok if status == "COMPLETED" else bad,
        one_line(job.name),
        status,
        format_count(job.completed, job.total),
        f"{job.failed} failed" if job.failed else "",
        f"in {format_duration(seconds)}" if seconds is not None else "",
        f"({format_rate(job.rate)})" if job.rate is not None else "",
        detail,
        f"({one_line(error)})" if error else "",
    ]
    return "  ".join(p for p in parts if p)


def _summary(out: TextIO, ids: List[str], finals: Dict[str, Optional[Job]], errors: Dict[str, str],
             width: Optional[int] = None) -> None:
    """Writes the summary block: a heading, then each job's :func:`summary_line` indented by two; with
    ``width``, a long one continues on further lines, broken between words (never inside one) and
    indented under the name, as the Node CLI's ``summaryLines``."""
    marks = _marks(out)
    lines = ["", f"Summary of {len(ids)} jobs:" if len(ids) > 1 else "Summary:"]
    for job_id in ids:
        line = "  " + summary_line(finals.get(job_id), job_id, errors.get(job_id), marks)
        lines.extend([line] if width is None else wrap_words(line, width, "     "))
    out.write("\n".join(lines) + "\n")
    out.flush()


def _final_code(ids: List[str], finals: Dict[str, Optional[Job]], errors: Dict[str, str]) -> int:
    ok = all((finals.get(i) is not None and finals[i].status == JobStatus.COMPLETED  # type: ignore[union-attr]
              and i not in errors) for i in ids)
    return 0 if ok else 1


def _error_text(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def watch_lines(client: Client, job_ids: Iterable[str], file: Optional[TextIO] = None, as_json: bool = False,
                interval: float = 1.0, retry_forever: bool = False, err: Optional[TextIO] = None,
                items: bool = False, logs: bool = False) -> int:
    """Prints one line per event of each job (:func:`event_lines`; one JSON object with ``as_json``)
    until all have finished, then (without ``as_json``) a summary line per job. PROGRESS lines of one
    job come at most every ``interval`` seconds; other events always print (STALLED and RECOVERED among
    them). ``items=True``: also each item result (failed ones marked ``✖ <id> failed: <error>``);
    ``logs=True``: also each log line of the jobs. A job that cannot be watched (NOT_FOUND, a server
    that stays unreachable) is reported on ``err`` (default stderr) as ``runwatch: cannot watch <id>:
    <message>``. Returns 0 when every job COMPLETED, else 1.

    ``retry_forever``: keep trying a server that cannot be reached at first (see :meth:`Client.watch`)."""
    out = file or sys.stdout
    err_out = err or sys.stderr
    marks = _marks(out)
    ids = list(job_ids)
    lock = threading.Lock()
    finals: Dict[str, Optional[Job]] = {}
    errors: Dict[str, str] = {}

    def follow(job_id: str) -> None:
        finals[job_id] = None
        last_progress = 0.0
        try:
            for event in client.watch(job_id, items=items, logs=logs, retry_forever=retry_forever):
                finals[job_id] = event.job  # type: ignore[assignment]
                if not as_json and event.type == ProgressEventType.PROGRESS:
                    now = time.monotonic()
                    if now - last_progress < interval:
                        continue
                    last_progress = now
                text = to_json(event) if as_json else "\n".join(event_lines(event, marks))
                if not text:
                    continue
                with lock:
                    out.write(text + "\n")
                    out.flush()
        except Exception as exc:  # shown, and the job counts as not completed
            errors[job_id] = _error_text(exc)
            with lock:
                err_out.write(f"runwatch: cannot watch {job_id}: {exc}\n")
                err_out.flush()

    _run_all(follow, ids)
    if not as_json:
        _summary(out, ids, finals, errors)
    return _final_code(ids, finals, errors)


def format_update(update: JobUpdate) -> str:
    """One line for an update of the live job list (``python -m runwatch jobs --follow``):
    ``HH:MM:SS  STATUS    shard 1 (j_…)  RUNNING→COMPLETED  500/500  100%  rate 9.91/s  parent j_…  tags nightly``
    (the status move for STATUS updates; ``STALLED`` for a stalled job; parent, tags and a parent's
    children counts when it has them)."""
    job = update.job
    status = _status(job)
    if update.type == JobUpdateType.STATUS and update.previous_status is not None \
            and _value(update.previous_status) != _value(job.status):
        status = f"{_value(update.previous_status)}→{status}"
    when = update.timestamp.astimezone(timezone.utc) if update.timestamp is not None else datetime.now(timezone.utc)
    parts = [
        when.strftime("%H:%M:%S"),
        _value(update.type).ljust(8),
        f"{one_line(job.name)} ({job.id})",
        status,
        format_count(job.completed, job.total),
        format_percent(job.percent),
        f"rate {format_rate(job.rate)}",
        f"parent {job.parent_id}" if job.parent_id else "",
        f"tags {','.join(one_line(t) for t in job.tags)}" if job.tags else "",
        f"({job.child_counts})" if job.child_counts is not None else "",
    ]
    return "  ".join(p for p in parts if p)


def jobs_table(jobs: Iterable[JobState]) -> str:
    """Jobs as a table for people: id, name (cut to 28), status (``STALLED`` for a stalled job), done/total,
    percent, tags."""
    rows = [f"{'JOB':<24} {'NAME':<28} {'STATUS':<9} {'DONE':>12} {'%':>4}  TAGS"]
    for job in jobs:
        rows.append(f"{job.id:<24} {clip_name(job.name):<28} {_status(job):<9} "
                    f"{format_count(job.completed, job.total):>12} {format_percent(job.percent):>4}  "
                    f"{','.join(one_line(t) for t in job.tags)}".rstrip())
    return "\n".join(rows)


def clip_name(name: str, width: int = 28) -> str:
    """A name on one line, cut to ``width`` with ``…``."""
    return clip(one_line(name), width)


def print_jobs(client: Client, status: Any = None, kind: Any = None, tags: Optional[List[str]] = None,
               parent: Optional[str] = None, limit: int = 20, follow: bool = False, as_json: bool = False,
               file: Optional[TextIO] = None, retry_forever: bool = False) -> int:
    """``python -m runwatch jobs``: the newest ``limit`` matching jobs as a table (:func:`jobs_table`; one
    JSON object per job with ``as_json``), or with ``follow`` the live job list (:meth:`Client.job_updates`:
    a SNAPSHOT line per matching job, then a line per job created, status change and progress;
    :func:`format_update`) until interrupted. Returns 0."""
    out = file or sys.stdout
    if not follow:
        jobs = list(client.jobs(status, kind, first=min(max(limit, 1), 100), limit=limit, tags=tags, parent=parent))
        out.write("".join(to_json(j) + "\n" for j in jobs) if as_json else jobs_table(jobs) + "\n")
        out.flush()
        return 0
    for update in client.job_updates(status, kind, tags, parent, retry_forever=retry_forever):
        out.write((to_json(update) if as_json else format_update(update)) + "\n")
        out.flush()
    return 0


def _run_all(target: Any, ids: List[str]) -> None:
    threads = [threading.Thread(target=target, args=(job_id,), daemon=True) for job_id in ids]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # wakes for Ctrl-C


def _gb(value: float) -> str:
    return f"{value:.3g}"


def activity_table(update: ActivityUpdate, billing: Optional[BillingUpdate] = None) -> str:
    """The resource and budget table of an ActivityUpdate: one row per active job, then totals and budget."""
    rows = [f"{'JOB':<24} {'NAME':<28} {'STATUS':<9} {'DONE':>12} {'CONT':>5} {'CPU':>6} {'MEM GB':>7} {'GPUS':>5}"]
    for active in update.active_jobs:
        job, res = active.job, active.resources
        done = f"{job.completed}/{'?' if job.total is None else job.total}"
        rows.append(f"{job.id:<24} {job.name[:28]:<28} {getattr(job.status, 'value', job.status):<9} {done:>12} "
                    f"{res.containers:>5} {_gb(res.cpu_cores):>6} {_gb(res.memory_gb):>7} {res.gpus:>5}")
    t = update.totals
    rows.append(f"{t.jobs} active · {t.containers} containers · {_gb(t.cpu_cores)} CPU cores · {_gb(t.memory_gb)} GB · "
                f"{t.gpus} GPUs")
    if billing is not None:
        if billing.budget_total is None:
            rows.append(f"budget: none set · used {billing.budget_used:.2f}")
        else:
            rows.append(f"budget: {billing.budget_used:.2f} of {billing.budget_total:.2f} {billing.currency or ''} used · "
                        f"{(billing.budget_remaining or 0):.2f} left")
    return "\n".join(rows)


def print_activity(client: Client, scope: str = "ENVIRONMENT", environment_id: Optional[str] = None,
                   file: Optional[TextIO] = None, as_json: bool = False, retry_forever: bool = False) -> int:
    """Prints the activity table on every update (or one JSON object per event) until interrupted.
    Returns 1 after a ContextMismatch, else 0 when the stream ends.

    Raises:
        RunwatchConnectionError: the server could not be reached within the client's ``connect_timeout``
            (unless ``retry_forever``)."""
    out = file or sys.stdout
    billing: Optional[BillingUpdate] = None
    last: Optional[ActivityUpdate] = None
    for event in client.activity(scope, environment_id, retry_forever=retry_forever):
        if as_json:
            out.write(to_json(event) + "\n")
        elif isinstance(event, ActivityUpdate):
            last = event
            out.write(activity_table(event, billing) + "\n\n")
        elif isinstance(event, BillingUpdate):
            billing = event
            if last is not None:
                out.write(activity_table(last, billing) + "\n\n")
        elif isinstance(event, ActivityHint):
            out.write(f"» {event.message}\n")
        elif isinstance(event, ContextMismatch):
            out.write(f"context mismatch: {event.message}\n")
        out.flush()
        if isinstance(event, ContextMismatch):
            return 1
    return 0


def __getattr__(name: str) -> Any:
    """``watch_bars``, ``bar_line`` and ``terminal_width`` live in :mod:`runwatch.live` (which uses the
    helpers above); they are loaded from there on first use."""
    if name in ("watch_bars", "bar_line", "terminal_width"):
        from . import live
        return getattr(live, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
