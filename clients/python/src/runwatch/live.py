"""``watch`` on a terminal: one line per job, redrawn in place from the jobs' streams, then the final frame
and a summary per job (tqdm widgets in Jupyter). The line layout follows the Node ``runwatch watch``
(``barLine``): the name takes the free width first.

Public through :mod:`runwatch.display` (``watch_bars``, ``bar_line``, ``terminal_width``).
"""
from __future__ import annotations

import io
import logging
import math
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, TextIO, Tuple

from .client import Client, Job
from .display import _error_text, _final_code, _marks, _run_all, _status, _summary, detail_lines
from .format import (Cell, clip, format_count, format_duration, format_percent, format_rate, layout_line, one_line,
                     text_bar, wrap_words)
from .types import JobState, ProgressEvent, ProgressEventType

__all__ = ["watch_bars", "bar_line", "bar_fit", "terminal_width", "event_notice"]


def terminal_width(out: Any, default: int = 80) -> int:
    """Columns to lay lines out in: the terminal's width minus one (so the cursor never wraps), at
    least 20; ``default`` when ``out`` is not a terminal."""
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        columns = default
    return max(20, (columns or default) - 1)


def bar_fit(jobs: Iterable[JobState]) -> Tuple[int, int]:
    """The widths the name and stage cells of every line grow to: the longest name (at least 8) and
    stage (at least 6) among the watched jobs, so all lines line up (the Node CLI's ``barFit``)."""
    name, stage = 8, 6
    for job in jobs:
        name = max(name, len(one_line(job.name)))
        stage = max(stage, len(one_line(job.stage or "")))
    return name, stage


def bar_line(job: JobState, width: int, fit: Optional[Tuple[int, int]] = None) -> str:
    """A job's line on a terminal, at most ``width`` characters: name, bar, percent, done/total, rate,
    ``ETA``, stage, status (``STALLED`` while the job is stalled). Status, percent and ETA always show; when the line does not fit, stage goes
    first, then rate, then done/total, then the bar and name shrink. Free columns go to the name first
    (up to the longest watched name, ``fit``: see :func:`bar_fit`), then the stage, then the bar (up to
    40). The Node CLI's ``barLine``."""
    fit_name, fit_stage = fit if fit is not None else bar_fit([job])
    status = _status(job)
    name = one_line(job.name)
    stage = one_line(job.stage or "")
    if job.total:
        fraction: Optional[float] = min(1.0, (job.completed + job.failed) / job.total)
    else:
        fraction = 1.0 if status == "COMPLETED" else None
    cells = [
        Cell(5, 8, fit_name, lambda w: clip(name, w).ljust(w), want=fit_name),
        Cell(4, 8, 40, lambda w: text_bar(fraction, w), want=10),
        Cell(math.inf, 4, 4, lambda w: format_percent(job.percent).rjust(4)),
        Cell(3, 11, 11, lambda w: _fit_count(job.completed, job.total, w).rjust(w)),
        Cell(2, 8, 8, lambda w: format_rate(job.rate).rjust(w)),
        Cell(math.inf, 11, 11, lambda w: f"ETA {format_duration(job.eta_seconds)}".ljust(w)),
        Cell(1, 6, min(fit_stage, 24), lambda w: clip(stage, w).ljust(w), want=min(fit_stage, 24)),
        Cell(math.inf, 9, 9, lambda w: status),
    ]
    return clip(layout_line(cells, width), width)


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
        fit = bar_fit(j for j in self.jobs.values() if j is not None)
        lines = []
        for job_id in self.ids:
            job = self.jobs[job_id]
            if job is not None:
                lines.append(bar_line(job, width, fit))
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
        """Writes ``text`` above the block (wrapped between words at the width), then redraws the block
        under it."""
        with self.lock:
            width = self.width()
            lines = [wrapped for line in text.rstrip("\n").split("\n") for wrapped in wrap_words(line, width, "  ")]
            self.out.write(self._erase() + "".join(line + "\n" for line in lines))
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


def event_notice(event: ProgressEvent, marks: Tuple[str, str] = ("✔", "✖")) -> Optional[str]:
    """What ``watch`` on a terminal writes above the bars for an event, or None: a job's STALLED
    (``embed (j_…) STALLED: no report for 60 s``), RECOVERED (``embed (j_…) RECOVERED: reporting again``),
    a failed step (``embed (j_…) step ocr FAILED: ValueError: bad page``),
    and, when asked for, its item results and log lines (:func:`runwatch.display.detail_lines`), each
    line after the job's name."""
    job = event.job
    who = f"{one_line(job.name)} ({job.id})"
    if event.type == ProgressEventType.STALLED:
        return f"{who} STALLED: {one_line(event.message or 'no report')}"
    if event.type == ProgressEventType.RECOVERED:
        return f"{who} RECOVERED: reporting again"
    if event.step is not None and event.step.status == "FAILED":
        return f"{who} step {one_line(event.step.name)} FAILED: {one_line(event.step.error or '?')}"
    lines = detail_lines(event, marks)
    if not lines:
        return None
    return "\n".join(f"{one_line(job.name)}  {line}" for line in lines)


def watch_bars(client: Client, job_ids: Iterable[str], file: Optional[TextIO] = None, width: Optional[int] = None,
               retry_forever: bool = False, fps: float = 10.0, items: bool = False, logs: bool = False) -> int:
    """Live lines for jobs on a terminal, one per job (:func:`bar_line`), redrawn in place from each
    job's stream (no polling, at most ``fps`` frames a second) until all have finished; then the final
    frame and a summary line per job (wrapped between fields, never inside one, at the width).
    ``width``: columns to use (default: the terminal's, re-read every frame, so a resized terminal gets
    lines that fit). Log lines of the ``runwatch`` logger (e.g. "connecting to … retry") appear above
    the lines while they are live, and so do a job's STALLED and RECOVERED events (its bar then reads
    ``STALLED``) and, with ``items=True`` / ``logs=True``, its item results (failed ones as
    ``✖ <id> failed: <error>``) and log lines (:func:`event_notice`). In Jupyter, one tqdm notebook widget per job instead.
    Returns 0 when every job COMPLETED, else 1."""
    ids = list(job_ids)
    if _in_notebook():
        return _watch_widgets(client, ids, retry_forever, items, logs)
    out = file or sys.stdout
    board = _Board(out, ids, (lambda: width) if width is not None else (lambda: terminal_width(out)))
    finals: Dict[str, Optional[Job]] = {}
    errors: Dict[str, str] = {}
    marks = _marks(out)

    def follow(job_id: str) -> None:
        finals[job_id] = None
        try:
            for event in client.watch(job_id, items=items, logs=logs, retry_forever=retry_forever):
                notice = event_notice(event, marks)
                with board.lock:
                    board.jobs[job_id] = event.job
                    if notice is not None:
                        board.message(notice)
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


def _watch_widgets(client: Client, ids: List[str], retry_forever: bool, items: bool = False, logs: bool = False) -> int:
    """One tqdm notebook widget per job (Jupyter), updated from each job's stream; the notices of
    :func:`event_notice` are written under them (``tqdm.write``)."""
    from tqdm.auto import tqdm as bar_class
    finals: Dict[str, Optional[Job]] = {}
    errors: Dict[str, str] = {}

    def follow(job_id: str) -> None:
        finals[job_id] = None
        bar = None
        try:
            for event in client.watch(job_id, items=items, logs=logs, retry_forever=retry_forever):
                job = event.job
                notice = event_notice(event)
                if notice is not None:
                    bar_class.write(notice)
                if bar is None:
                    bar = bar_class(total=job.total, desc=one_line(job.name)[:40], leave=True, unit="it")
                if job.total is not None and bar.total != job.total:
                    bar.total = job.total
                bar.n = job.completed
                bar.set_postfix_str(f"{_status(job)}{' · ' + job.stage if job.stage else ''}", refresh=False)
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
