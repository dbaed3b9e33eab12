"""Showing jobs to people: tqdm bars for live jobs (notebook widgets in Jupyter), and the activity table.

Used by ``python -m runwatch watch`` and ``python -m runwatch activity``; call them from a notebook too.
"""
from __future__ import annotations

import json
import sys
import threading
from dataclasses import fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Dict, Iterable, List, Optional, TextIO

from .client import Client, Job
from .errors import RunwatchError
from .types import ActivityHint, ActivityUpdate, BillingUpdate, ContextMismatch, JobStatus, ProgressEvent

__all__ = ["watch_bars", "watch_lines", "activity_table", "format_event", "to_json"]


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


def _eta(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def format_event(event: ProgressEvent) -> str:
    """One line for a job event: type, status, done/total, percent, rate (items/s), ETA, stage."""
    job = event.job
    total = "?" if job.total is None else str(job.total)
    pct = "" if job.percent is None else f" {job.percent:.0f}%"
    rate = "" if job.rate is None else f" {job.rate:.3g}/s"
    stage = f" [{job.stage}]" if job.stage else ""
    err = f" error: {job.error_message}" if job.error_message else ""
    return (f"{job.name} ({job.id}) {getattr(event.type, 'value', event.type)} {getattr(job.status, 'value', job.status)} "
            f"{job.completed}/{total}{pct}{rate} eta {_eta(job.eta_seconds)}{stage}{err}")


def _final_code(jobs: Dict[str, Optional[Job]]) -> int:
    return 0 if all(j is not None and j.status == JobStatus.COMPLETED for j in jobs.values()) else 1


def watch_lines(client: Client, job_ids: Iterable[str], file: Optional[TextIO] = None, as_json: bool = False) -> int:
    """Prints one line (or one JSON object with ``as_json``) per event of each job until all have finished.
    Returns 0 when every job COMPLETED, else 1."""
    out = file or sys.stdout
    lock = threading.Lock()
    finals: Dict[str, Optional[Job]] = {}

    def follow(job_id: str) -> None:
        finals[job_id] = None
        try:
            for event in client.watch(job_id):
                with lock:
                    out.write((to_json(event) if as_json else format_event(event)) + "\n")
                    out.flush()
                finals[job_id] = event.job  # type: ignore[assignment]
        except Exception as exc:  # shown, and the job counts as not completed
            code = getattr(exc, "code", type(exc).__name__)
            with lock:
                out.write((json.dumps({"jobId": job_id, "error": code, "message": str(exc)}) if as_json
                           else f"{job_id}: {exc}") + "\n")
                out.flush()

    _run_all(follow, list(job_ids))
    return _final_code(finals)


def watch_bars(client: Client, job_ids: Iterable[str], file: Optional[TextIO] = None) -> int:
    """One tqdm bar per job (a notebook widget in Jupyter, via ``tqdm.auto``), updated live from each job's
    stream (no polling) until all have finished: count, total, rate (items/s), stage and status.
    Returns 0 when every job COMPLETED, else 1. Without tqdm, falls back to :func:`watch_lines`."""
    try:
        from tqdm.auto import tqdm as bar_class
    except ImportError:
        return watch_lines(client, job_ids, file)
    ids = list(job_ids)
    finals: Dict[str, Optional[Job]] = {}

    def follow(position: int, job_id: str) -> None:
        finals[job_id] = None
        bar = None
        try:
            for event in client.watch(job_id):
                job = event.job
                if bar is None:
                    bar = bar_class(total=job.total, desc=job.name[:40], position=position, leave=True, file=file,
                                    unit="it", dynamic_ncols=True)
                if job.total is not None and bar.total != job.total:
                    bar.total = job.total
                bar.n = job.completed
                status = getattr(job.status, "value", job.status)
                bar.set_postfix_str(f"{status}{' · ' + job.stage if job.stage else ''}", refresh=False)
                bar.refresh()
                finals[job_id] = job  # type: ignore[assignment]
        except RunwatchError as exc:
            if bar is None:
                bar = bar_class(total=None, desc=job_id, position=position, file=file)
            bar.set_postfix_str(f"error: {exc.code}")
        finally:
            if bar is not None:
                bar.close()

    _run_all(lambda jid: follow(ids.index(jid), jid), ids)
    return _final_code(finals)


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
                   file: Optional[TextIO] = None, as_json: bool = False) -> int:
    """Prints the activity table on every update (or one JSON object per event) until interrupted.
    Returns 1 after a ContextMismatch, else 0 when the stream ends."""
    out = file or sys.stdout
    billing: Optional[BillingUpdate] = None
    last: Optional[ActivityUpdate] = None
    for event in client.activity(scope, environment_id):
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
