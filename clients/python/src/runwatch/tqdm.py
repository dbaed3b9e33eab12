"""``from runwatch.tqdm import tqdm``: a drop-in ``tqdm`` that also reports to runwatch.

Same arguments as tqdm (plus ``client=``, ``kind=`` and ``job=``). It draws the usual bar (a notebook
widget in Jupyter, through ``tqdm.auto``) and reports a job: ``desc`` is its name, ``total`` its total,
``update(n)`` advances it, ``set_description`` sets the stage, and ``set_postfix(loss=…)`` on a TRAINING
job (``kind="TRAINING"``) publishes a TrainingProgress with that loss (and ``lr``/``learning_rate``).
``close()`` completes the job; an exception escaping the ``with`` block fails it. A new job is announced
on stderr as ``runwatch: job <id> <dashboard URL>``; ``bar.job`` is its :class:`runwatch.Job`.

Needs tqdm (``pip install tqdm``, or ``apt-get install python3-tqdm``); without it, importing this
module raises ImportError saying so.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Optional

try:
    from tqdm.auto import tqdm as _tqdm_auto
except ImportError as exc:  # pragma: no cover - exercised by the tests in a subprocess
    raise ImportError("runwatch.tqdm needs tqdm: pip install tqdm (or apt-get install python3-tqdm)") from exc

from .track import start_job

__all__ = ["tqdm", "trange"]

_LOSS_KEYS = ("loss", "train_loss")
_LR_KEYS = ("lr", "learning_rate")


def _number(value: Any) -> Optional[float]:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class tqdm(_tqdm_auto):  # type: ignore[misc,valid-type]
    """A tqdm bar that reports a runwatch job. Extra keyword arguments:

    Args:
        client: the :class:`runwatch.Client` (default: a shared one from ``RUNWATCH_URL``/``RUNWATCH_TOKEN``).
        kind: the job's kind (default BATCH; TRAINING makes ``set_postfix(loss=…)`` publish TrainingProgress).
        job: report to this existing :class:`runwatch.Job` instead of creating one.

    Reporting never slows or stops the loop: when the server is unreachable the bar runs as usual and one
    warning is logged on the ``runwatch`` logger.
    """

    def __init__(self, *args: Any, client: Any = None, kind: str = "BATCH", job: Any = None, **kwargs: Any) -> None:
        self._rw_job = None
        self._rw_run = None
        self._rw_reported = 0
        self._rw_finished = False
        super().__init__(*args, **kwargs)
        if self.disable and job is None:
            return  # a disabled bar (e.g. on a worker rank) reports nothing either
        name = (getattr(self, "desc", "") or "").rstrip(": ").strip() or "tqdm"
        total = int(self.total) if self.total is not None and math.isfinite(self.total) else None
        kind = str(getattr(kind, "value", kind)).upper()
        if job is None:  # a new job: say which on stderr, above the bar (tqdm.write keeps the bar whole)
            job = start_job(client, name, total, kind, write=lambda line: self.write(line, file=sys.stderr))
        if job is None:
            return
        self._rw_job = job
        self._rw_reported = int(self.n)
        if str(getattr(job.kind, "value", job.kind)) == "TRAINING":
            from .training import TrainingRun
            self._rw_run = TrainingRun(job._client, job, max_steps=total)

    @property
    def job(self) -> Any:
        """The :class:`runwatch.Job` being reported (None when it could not be created): ``bar.job.id``,
        ``bar.job.dashboard_url``, and the reporting methods (``bar.job.update(message=…)``)."""
        return self._rw_job

    def _rw_sync(self) -> None:
        job = self._rw_job
        if job is None:
            return
        n = int(self.n)
        if n > self._rw_reported:
            if self._rw_run is None:
                job.advance(n - self._rw_reported)
            else:  # a training bar's count is the step
                total = int(self.total) if self.total is not None and math.isfinite(self.total) else None
                self._rw_run.progress(global_step=n, max_step=total)
            self._rw_reported = n

    def update(self, n: float = 1) -> Optional[bool]:  # type: ignore[override]
        """Advances the bar by ``n`` and the job to the bar's count. (Iterating calls this at each redraw,
        every ``mininterval`` seconds, and ``close()`` sends the final count, so the loop runs at tqdm's own
        speed.)"""
        result = super().update(n)
        self._rw_sync()
        return result

    def reset(self, total: Optional[float] = None) -> None:
        """Resets the bar (a new loop); the job continues from its count, with the new total added."""
        super().reset(total)
        self._rw_reported = 0
        if self._rw_job is not None and total is not None:
            self._rw_job.update(total=int(self._rw_job.completed + total))

    def set_description(self, desc: Optional[str] = None, refresh: Optional[bool] = True) -> None:
        """Sets the bar's description and the job's stage."""
        super().set_description(desc, refresh)
        if self._rw_job is not None and desc:
            self._rw_job.update(stage=str(desc))

    def set_description_str(self, desc: Optional[str] = None, refresh: Optional[bool] = True) -> None:
        """Like :meth:`set_description`, without the trailing colon."""
        super().set_description_str(desc, refresh)
        if self._rw_job is not None and desc:
            self._rw_job.update(stage=str(desc))

    def set_postfix(self, ordered_dict: Any = None, refresh: Optional[bool] = True, **kwargs: Any) -> None:
        """Sets the bar's postfix; ``loss`` (and ``lr``/``learning_rate``) on a TRAINING job publish a
        TrainingProgress at the bar's step."""
        super().set_postfix(ordered_dict, refresh, **kwargs)
        if self._rw_run is None:
            return
        values = dict(ordered_dict or {})
        values.update(kwargs)
        loss = next((_number(values[k]) for k in _LOSS_KEYS if k in values), None)
        lr = next((_number(values[k]) for k in _LR_KEYS if k in values), None)
        if loss is None and lr is None:
            return
        self._rw_sync()
        total = int(self.total) if self.total is not None and math.isfinite(self.total) else None
        self._rw_run.progress(global_step=int(self.n), max_step=total, loss=loss, learning_rate=lr)

    def close(self) -> None:
        """Closes the bar and completes the job with the bar's final count (fails it when an exception is
        being raised, i.e. inside a ``with`` block's error exit)."""
        if getattr(self, "_rw_job", None) is None or self._rw_finished:
            super().close()
            return
        job = self._rw_job
        self._rw_finished = True
        error = sys.exc_info()[1]
        super().close()
        run = self._rw_run
        if run is not None:
            total = int(self.total) if self.total is not None and math.isfinite(self.total) else None
            if int(self.n) > run._global_step:
                run.progress(global_step=int(self.n), max_step=total)
            if error is not None and not isinstance(error, StopIteration):
                run.fail(error)
            else:
                run.complete()
            return
        self._rw_reported = min(self._rw_reported, int(self.n))
        n = int(self.n)
        if n > job.completed:
            job.update(completed=n)
        if error is not None and not isinstance(error, StopIteration):
            job.fail(error)
        else:
            job.complete()

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> Any:
        if exc_value is not None and self._rw_job is not None and not self._rw_finished:
            job = self._rw_job
            self._rw_finished = True
            run = self._rw_run
            try:
                return super().__exit__(exc_type, exc_value, traceback)
            finally:
                (run.fail if run is not None else job.fail)(exc_value)
        return super().__exit__(exc_type, exc_value, traceback)


def trange(*args: Any, **kwargs: Any) -> tqdm:
    """``tqdm(range(*args), **kwargs)``."""
    return tqdm(range(*args), **kwargs)
