"""Showing jobs to people: live lines for jobs on a terminal (tqdm widgets in Jupyter), one line per event
in a pipe, a summary per job, and the activity table. Lines follow the Node ``runwatch watch`` (see
``runwatch.format``).

Used by ``python -m runwatch watch`` and ``python -m runwatch activity``; call them from a notebook too.
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import sys
import threading
import time
from dataclasses import fields, is_dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Dict, Iterable, List, Optional, TextIO, Tuple

from .client import Client, Job
from .format import Cell, clip, format_count, format_duration, format_percent, format_rate, layout_line, text_bar, wrap_parts
from .types import (ActivityHint, ActivityUpdate, BillingUpdate, ContextMismatch, JobState, JobStatus, ProgressEvent,
                    ProgressEventType)

__all__ = ["watch_bars", "watch_lines", "activity_table", "format_event", "summary_line", "bar_line", "terminal_width",
           "to_json"]


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


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _one_line(text: str) -> str:
    """``text`` on one line: newlines, tabs and other control characters become one space."""
    return _CONTROL.sub(" ", text)


def _value(value: Any) -> str:
    return str(getattr(value, "value", value))


def format_event(event: ProgressEvent) -> str:
    """One line for a job event, as the Node ``runwatch watch`` prints it in a pipe:
    ``HH:MM:SS  name (id)  TYPE  completed/total  percent  rate R/s  ETA d  [stage S]  STATUS  [- message]``
    (UTC time; two spaces between fields; percent, rate and ETA are ``-`` while unknown)."""
    job = event.job
    when = event.timestamp.astimezone(timezone.utc) if event.timestamp is not None else datetime.now(timezone.utc)
    etype = _value(event.type)
    parts = [
        when.strftime("%H:%M:%S"),
        f"{_one_line(job.name)} ({job.id})",
        etype.ljust(11),
        format_count(job.completed, job.total),
        format_percent(job.percent),
        f"rate {format_rate(job.rate)}",
        f"ETA {format_duration(job.eta_seconds)}",
        f"stage {_one_line(job.stage)}" if job.stage else "",
        _value(job.status),
        f"- {_one_line(event.message)}" if event.message and etype != "STAGE" else "",
    ]
    return "  ".join(p for p in parts if p)


def _marks(out: Any) -> Tuple[str, str]:
    """✔ and ✖, or ``ok`` and ``x`` when ``out`` cannot encode them."""
    try:
        "✔✖█░…".encode(getattr(out, "encoding", None) or "utf-8")
        return "✔", "✖"
    except (UnicodeEncodeError, LookupError):
        return "ok", "x"


def summary_parts(job: Optional[JobState], job_id: str, error: Optional[str] = None,
                  marks: Tuple[str, str] = ("✔", "✖")) -> List[str]:
    """The fields of a job's summary line, as the Node ``runwatch watch`` prints them: mark, name,
    status, done/total, failed items, duration, rate, the error (FAILED) or reason (CANCELLED), and the
    error that stopped the watch. A job never seen: mark, id and the error."""
    ok, bad = marks
    if job is None:
        return [f"{bad} {job_id}", error or "not watched"]
    status = _value(job.status)
    seconds = (job.finished_at - job.started_at).total_seconds() if job.started_at and job.finished_at else None
    detail = ""
    if status == "FAILED":
        detail = f"error: {_one_line(job.error_message or '?')}"
    elif status == "CANCELLED" and job.message:
        detail = f"reason: {_one_line(job.message)}"
    parts = [
        ok if status == "COMPLETED" else bad,
        _one_line(job.name),
        status,
        format_count(job.completed, job.total),
        f"{job.failed} failed" if job.failed else "",
        f"in {format_duration(seconds)}" if seconds is not None else "",
        f"({format_rate(job.rate)})" if job.rate is not None else "",
        detail,
        f"({error})" if error else "",
    ]
    return [p for p in parts if p]


def summary_line(job: Optional[JobState], job_id: str, error: Optional[str] = None) -> str:
    """A job's summary on one line (see :func:`summary_parts`), fields two spaces apart."""
    return "  ".join(summary_parts(job, job_id, error))


def _summary(out: TextIO, ids: List[str], finals: Dict[str, Optional[Job]], errors: Dict[str, str],
             width: Optional[int] = None) -> None:
    """Writes the summary block: a heading, then each job's summary indented by two; with ``width``,
    a long summary continues on further lines, broken between fields (never inside one)."""
    marks = _marks(out)
    lines = ["", f"Summary of {len(ids)} jobs:" if len(ids) > 1 else "Summary:"]
    for job_id in ids:
        parts = summary_parts(finals.get(job_id), job_id, errors.get(job_id), marks)
        if width is None:
            lines.append("  " + "  ".join(parts))
        else:
            lines.extend("  " + line for line in wrap_parts(parts, width - 2, indent="    "))
    out.write("\n".join(lines) + "\n")
    out.flush()


def _final_code(ids: List[str], finals: Dict[str, Optional[Job]], errors: Dict[str, str]) -> int:
    ok = all((finals.get(i) is not None and finals[i].status == JobStatus.COMPLETED  # type: ignore[union-attr]
              and i not in errors) for i in ids)
    return 0 if ok else 1


def _error_text(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def watch_lines(client: Client, job_ids: Iterable[str], file: Optional[TextIO] = None, as_json: bool = False,
                interval: float = 1.0, retry_forever: bool = False, err: Optional[TextIO] = None) -> int:
    """Prints one line per event of each job (:func:`format_event`; one JSON object with ``as_json``)
    until all have finished, then (without ``as_json``) a summary line per job. PROGRESS lines of one
    job come at most every ``interval`` seconds; other events always print. A job that cannot be
    watched (NOT_FOUND, a server that stays unreachable) is reported on ``err`` (default stderr) as
    ``runwatch: cannot watch <id>: <message>``. Returns 0 when every job COMPLETED, else 1.

    ``retry_forever``: keep trying a server that cannot be reached at first (see :meth:`Client.watch`)."""
    out = file or sys.stdout
    err_out = err or sys.stderr
    ids = list(job_ids)
    lock = threading.Lock()
    finals: Dict[str, Optional[Job]] = {}
    errors: Dict[str, str] = {}

    def follow(job_id: str) -> None:
        finals[job_id] = None
        last_progress = 0.0
        try:
            for event in client.watch(job_id, retry_forever=retry_forever):
                finals[job_id] = event.job  # type: ignore[assignment]
                if not as_json and event.type == ProgressEventType.PROGRESS:
                    now = time.monotonic()
                    if now - last_progress < interval:
                        continue
                    last_progress = now
                with lock:
                    out.write((to_json(event) if as_json else format_event(event)) + "\n")
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


def terminal_width(out: Any, default: int = 80) -> int:
    """Columns to lay lines out in: the terminal's width minus one (so the cursor never wraps), at
    least 20; ``default`` when ``out`` is not a terminal."""
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        columns = default
    return max(20, (columns or default) - 1)


def bar_line(job: JobState, width: int, name_width: Optional[int] = None) -> str:
    """A job's line on a terminal, at most ``width`` characters: name, bar, percent, done/total, rate,
    ``ETA``, stage, status. Status, percent and ETA always show; when the line does not fit, stage goes
    first, then rate, then done/total, then the bar. Free width goes to the name first (up to
    ``name_width``, default its own length: pass the longest name so bars line up), then the bar (up to
    30), then the stage. (The Node CLI's ``barLine`` with the name first.)"""
    status = _value(job.status)
    name = _one_line(job.name)
    if job.total:
        fraction: Optional[float] = min(1.0, (job.completed + job.failed) / job.total)
    else:
        fraction = 1.0 if status == "COMPLETED" else None
    stage = _one_line(job.stage or "")
    cells = [
        Cell(5, 8, max(8, name_width if name_width is not None else len(name)), lambda w: clip(name, w).ljust(w)),
        Cell(4, 8, 30, lambda w: text_bar(fraction, w)),
        Cell(math.inf, 4, 4, lambda w: format_percent(job.percent).rjust(4)),
        Cell(3, 11, 11, lambda w: _fit_count(job.completed, job.total, w).rjust(w)),
        Cell(2, 8, 8, lambda w: format_rate(job.rate).rjust(w)),
        Cell(math.inf, 11, 11, lambda w: f"ETA {format_duration(job.eta_seconds)}".ljust(w)),
        Cell(1, 6, 16, lambda w: clip(stage, w).ljust(w)),
        Cell(math.inf, 9, 9, lambda w: status),
    ]
    return clip(layout_line(cells, width, fill_in_order=True), width)


def _fit_count(completed: int, total: Optional[int], width: int) -> str:
    """``completed/total``, in ``k``/``M`` (3 significant digits) when wider than ``width``."""
    full = format_count(completed, total)
    if len(full) <= width:
        return full

    def short(n: int) -> str:
        if n >= 1_000_000:
            return f"{float(f'{n / 1e6:.3g}'):g}M"
        return f"{float(f'{n / 1e3:.3g}'):g}k" if n >= 10_000 else str(n)
    return clip(f"{short(completed)}/{'?' if total is None else short(total)}", width)


class _Board:
    """The live lines of ``watch`` on a terminal: one line per job, redrawn in place (each line cleared
    first, the cursor moved back up over the block), messages written above the block, so the screen
    never keeps a stale or duplicated line. Not thread-safe by itself: the caller holds ``lock``."""

    def __init__(self, out: TextIO, ids: List[str], width: Callable[[], int]) -> None:
        self.out = out
        self.ids = ids
        self.width = width
        self.jobs: Dict[str, Optional[JobState]] = {i: None for i in ids}
        self.errors: Dict[str, str] = {}
        self.lock = threading.RLock()
        self.dirty = threading.Event()
        self._drawn = 0

    def lines(self) -> List[str]:
        """The block's lines at the current width."""
        width = self.width()
        names = [len(_one_line(j.name)) for j in self.jobs.values() if j is not None]
        name_width = max(names) if names else None
        lines = []
        for job_id in self.ids:
            job = self.jobs[job_id]
            if job is not None:
                lines.append(bar_line(job, width, name_width))
            else:
                lines.append(clip(f"{job_id}  {self.errors.get(job_id, 'connecting…')}", width))
        return lines

    def _erase(self) -> str:
        return f"\r\x1b[{self._drawn}A\x1b[J" if self._drawn else "\r\x1b[J"

    def draw(self) -> None:
        """Redraws the block in place."""
        with self.lock:
            self.dirty.clear()
            lines = self.lines()
            self.out.write(self._erase() + "".join(line + "\n" for line in lines))
            self.out.flush()
            self._drawn = len(lines)

    def message(self, text: str) -> None:
        """Writes ``text`` (one or more lines) above the block, then redraws the block under it."""
        with self.lock:
            self.out.write(self._erase() + text.rstrip("\n") + "\n")
            self._drawn = 0
            self.draw()


class _BoardLogHandler(logging.Handler):
    """Shows the ``runwatch`` logger's lines above the board while it is live."""

    def __init__(self, board: _Board) -> None:
        super().__init__(logging.INFO)
        self.board = board

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.board.message(record.getMessage())
        except Exception:  # never break the watch over a log line
            self.handleError(record)


def watch_bars(client: Client, job_ids: Iterable[str], file: Optional[TextIO] = None, width: Optional[int] = None,
               retry_forever: bool = False, fps: float = 10.0) -> int:
    """Live lines for jobs on a terminal, one per job (:func:`bar_line`), redrawn in place from each
    job's stream (no polling, at most ``fps`` frames a second) until all have finished; then the final
    frame and a summary line per job (wrapped between fields, never inside one, at the width).
    ``width``: columns to use (default: the terminal's, re-read every frame, so a resized terminal gets
    lines that fit). Log lines of the ``runwatch`` logger (e.g. "connecting to … retry") appear above
    the lines while they are live. In Jupyter, one tqdm notebook widget per job instead.
    Returns 0 when every job COMPLETED, else 1."""
    ids = list(job_ids)
    if _in_notebook():
        return _watch_widgets(client, ids, retry_forever)
    out = file or sys.stdout
    board = _Board(out, ids, (lambda: width) if width is not None else (lambda: terminal_width(out)))
    finals: Dict[str, Optional[Job]] = {}
    errors: Dict[str, str] = {}

    def follow(job_id: str) -> None:
        finals[job_id] = None
        try:
            for event in client.watch(job_id, retry_forever=retry_forever):
                with board.lock:
                    board.jobs[job_id] = event.job
                finals[job_id] = event.job  # type: ignore[assignment]
                board.dirty.set()
        except Exception as exc:  # shown in the job's line and its summary
            errors[job_id] = _error_text(exc)
            with board.lock:
                board.errors[job_id] = f"error: {errors[job_id]}"
            board.dirty.set()

    logger = logging.getLogger("runwatch")
    handler = _BoardLogHandler(board)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    hide, show = ("\x1b[?25l", "\x1b[?25h") if width is None and _isatty(out) else ("", "")
    try:
        out.write(hide)
        board.draw()
        threads = [threading.Thread(target=follow, args=(job_id,), daemon=True) for job_id in ids]
        for t in threads:
            t.start()
        pause = 1.0 / max(1.0, fps)
        while any(t.is_alive() for t in threads):
            if board.dirty.wait(0.5):  # wakes for Ctrl-C too
                board.draw()
                time.sleep(pause)
        board.draw()  # the final frame
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        out.write(show)
        out.flush()
    _summary(out, ids, finals, errors, board.width())
    return _final_code(ids, finals, errors)


def _isatty(out: Any) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm.auto draws widgets)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _watch_widgets(client: Client, ids: List[str], retry_forever: bool) -> int:
    """One tqdm notebook widget per job (Jupyter), updated from each job's stream."""
    from tqdm.auto import tqdm as bar_class
    finals: Dict[str, Optional[Job]] = {}
    errors: Dict[str, str] = {}

    def follow(job_id: str) -> None:
        finals[job_id] = None
        bar = None
        try:
            for event in client.watch(job_id, retry_forever=retry_forever):
                job = event.job
                if bar is None:
                    bar = bar_class(total=job.total, desc=_one_line(job.name)[:40], leave=True, unit="it")
                if job.total is not None and bar.total != job.total:
                    bar.total = job.total
                bar.n = job.completed
                bar.set_postfix_str(f"{_value(job.status)}{' · ' + job.stage if job.stage else ''}", refresh=False)
                bar.refresh()
                finals[job_id] = job  # type: ignore[assignment]
        except Exception as exc:
            errors[job_id] = _error_text(exc)
            if bar is None:
                bar = bar_class(total=None, desc=job_id)
            bar.set_postfix_str(f"error: {errors[job_id]}")
        finally:
            if bar is not None:
                bar.close()

    _run_all(follow, ids)
    _summary(sys.stdout, ids, finals, errors)
    return _final_code(ids, finals, errors)


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
