"""The background reporter: one daemon thread per client that sends what jobs report.

Calls from the user's loop (``advance``, ``update``, training events) only change local state under a
lock and never wait for the network. The thread coalesces them into at most one progress request per
job every ``min_interval`` seconds (counts are sent as absolute ``completed``, so a retried report is
harmless and the final count is exact), publishes training events in batches of up to 1000, retries
with backoff on ServiceUnavailable and network errors (honouring ``RateLimited.retry_after``), keeps a
bounded buffer of training events, and logs one warning per outage on the ``runwatch`` logger instead
of raising. Private to the package.
"""
from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
import weakref
from typing import Any, Deque, Dict, List, Optional, Tuple

from . import documents as D
from .errors import Conflict, RateLimited, RunwatchError
from .transport import Transport, backoff_seconds

log = logging.getLogger("runwatch")

#: Most training events published in one request (the server's limit).
EVENTS_PER_REQUEST = 1000


class JobSlot:
    """What the reporter holds for one job: local counts, the pending report, queued events, the finish."""

    def __init__(self, job_id: str, completed: int, max_events: int) -> None:
        self.job_id = job_id
        self.completed = completed
        self.sent_completed = completed
        self.pending: Optional[Dict[str, Any]] = None
        self.events: Deque[Dict[str, Any]] = collections.deque()
        self.max_events = max_events
        self.dropped_events = 0
        #: Item results (ItemResultInput), log lines (LogLineInput) and step reports (reportStep variables)
        #: waiting to be sent, in order; items and lines are bounded like training events.
        self.items: Deque[Dict[str, Any]] = collections.deque()
        self.lines: Deque[Dict[str, Any]] = collections.deque()
        self.steps: Deque[Dict[str, Any]] = collections.deque()
        #: Ok items counted in ``completed`` whose results the server has not counted yet (queued or in
        #: flight): a progress report's absolute ``completed`` leaves them out, or they would count twice.
        self.unsent_ok = 0
        self.finish: Optional[Tuple[str, Dict[str, Any]]] = None
        self.finish_done = threading.Event()
        self.finished = False
        self.next_at = 0.0
        self.attempt = 0
        #: True while the reporter thread has taken this slot's work and its requests are in flight.
        self.sending = False

    def has_work(self) -> bool:
        """Anything not yet delivered: pending, queued, finishing, or taken and still in flight."""
        return not self.finished and (self.sending or self.pending is not None or bool(self.events) or self.finish is not None
                                      or bool(self.items) or bool(self.lines) or bool(self.steps))

    def queued(self) -> bool:
        """Anything still queued before the finish may go: a progress report, events, items, lines or steps."""
        return self.pending is not None or bool(self.events) or bool(self.items) or bool(self.lines) or bool(self.steps)


class Reporter:
    """Sends reports for every job of one client from one daemon thread.

    Args:
        transport: where to send.
        min_interval: least seconds between two progress requests of one job (default 0.25: 4 per second).
        max_backoff: most seconds between two retries after failures.
        max_events: training events buffered per job while the server is unreachable; the oldest are
            dropped past it (counted, with a warning).
    """

    def __init__(self, transport: Transport, min_interval: float = 0.25, max_backoff: float = 5.0,
                 max_events: int = 10_000) -> None:
        self.transport = transport
        self.min_interval = min_interval
        self.max_backoff = max_backoff
        self.max_events = max_events
        self._cond = threading.Condition()
        self._slots: Dict[str, JobSlot] = {}
        self._thread: Optional[threading.Thread] = None
        self._stopping = False
        self._outage = False
        self._warned_codes: set = set()

    # ---- called from user threads: cheap, never block on the network ----

    def slot(self, job_id: str, completed: int = 0) -> JobSlot:
        """The slot of ``job_id`` (made on first use, starting from ``completed`` items done)."""
        with self._cond:
            slot = self._slots.get(job_id)
            if slot is None:
                slot = self._slots[job_id] = JobSlot(job_id, completed, self.max_events)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="runwatch-reporter", daemon=True)
                self._thread.start()
                _register_exit_flush(self)
            return slot

    def _queue(self, slot: JobSlot, change: Dict[str, Any], failed: int = 0) -> None:
        # caller holds the lock
        if slot.finished or slot.finish is not None:
            return
        was_idle = not slot.has_work()
        p = slot.pending
        if p is None:
            p = slot.pending = {"failed_delta": 0}
        p["completed"] = slot.completed
        p["failed_delta"] += failed
        p.update(change)
        if was_idle:
            self._cond.notify()

    def advance(self, slot: JobSlot, n: int, failed: int) -> None:
        """``n`` more items done and ``failed`` more failed."""
        with self._cond:
            slot.completed += n
            p = slot.pending
            if p is not None and not failed and slot.finish is None:  # the hot path: a report is already pending
                p["completed"] = slot.completed
                return
            self._queue(slot, {}, failed)

    def update(self, slot: JobSlot, completed: Optional[int], change: Dict[str, Any]) -> None:
        """Absolute ``completed`` (ignored when lower than before) and other ReportProgressInput fields."""
        with self._cond:
            if completed is not None and completed > slot.completed:
                slot.completed = completed
            self._queue(slot, change)

    def add_event(self, slot: JobSlot, event: Dict[str, Any]) -> None:
        """Queues one TrainingEventInput; the oldest queued one is dropped when the buffer is full."""
        with self._cond:
            if slot.finished or slot.finish is not None:
                return
            was_idle = not slot.has_work()
            if len(slot.events) >= slot.max_events:
                slot.events.popleft()
                slot.dropped_events += 1
                if slot.dropped_events == 1:
                    log.warning("runwatch: job %s: more than %d training events waiting to be sent; dropping the oldest",
                                slot.job_id, slot.max_events)
            slot.events.append(event)
            if was_idle:
                self._cond.notify()

    def _drop_oldest(self, slot: JobSlot, queue: Deque[Dict[str, Any]]) -> None:
        # caller holds the lock
        dropped = queue.popleft()
        slot.dropped_events += 1
        if dropped.get("ok") is True and "itemId" in dropped:
            slot.unsent_ok -= 1  # never counted by the server; later absolute reports count it

    def _bounded_append(self, slot: JobSlot, queue: Deque[Dict[str, Any]], entry: Dict[str, Any], what: str) -> None:
        # caller holds the lock: appends, dropping the oldest past max_events (one warning per job and kind)
        if slot.finished or slot.finish is not None:
            return
        was_idle = not slot.has_work()
        if len(queue) >= slot.max_events:
            self._drop_oldest(slot, queue)
            if slot.dropped_events == 1:
                log.warning("runwatch: job %s: more than %d %s waiting to be sent; dropping the oldest",
                            slot.job_id, slot.max_events, what)
        queue.append(entry)
        if was_idle:
            self._cond.notify()

    def add_items(self, slot: JobSlot, items: List[Dict[str, Any]]) -> None:
        """Queues item results; their ok ones count in ``slot.completed`` at once (the server moves its
        counters when they arrive, so later absolute progress reports agree with it)."""
        with self._cond:
            if slot.finished or slot.finish is not None:
                return
            ok = sum(1 for i in items if i["ok"])
            slot.completed += ok
            slot.unsent_ok += ok
            if slot.pending is not None:
                slot.pending["completed"] = slot.completed
            for item in items:
                self._bounded_append(slot, slot.items, item, "item results")

    def add_line(self, slot: JobSlot, line: Dict[str, Any]) -> None:
        """Queues one log line (LogLineInput)."""
        with self._cond:
            self._bounded_append(slot, slot.lines, line, "log lines")

    def add_step(self, slot: JobSlot, variables: Dict[str, Any]) -> None:
        """Queues one step report and sends it without waiting for ``min_interval`` (steps are few and timed)."""
        with self._cond:
            if slot.finished or slot.finish is not None:
                return
            slot.steps.append(variables)
            if slot.attempt == 0:
                slot.next_at = 0.0
            self._cond.notify()

    def set_metric(self, slot: JobSlot, metric: Dict[str, Any]) -> None:
        """Sets a gauge in the next progress report (the newest value per name wins within one report)."""
        with self._cond:
            self._queue(slot, {})
            if slot.pending is not None:
                slot.pending.setdefault("metrics", {})[metric["name"]] = metric["value"]

    def finish(self, slot: JobSlot, document: str, variables: Dict[str, Any], timeout: Optional[float]) -> bool:
        """Sends what is pending, then ``document`` (complete/fail/cancel). Waits up to ``timeout`` seconds.

        Returns True when it was delivered (or the job was already finished), False when still trying.
        """
        with self._cond:
            if not slot.finished and slot.finish is None:
                slot.finish = (document, variables)
                if slot.attempt == 0:
                    slot.next_at = 0.0
                self._cond.notify()
        return slot.finish_done.wait(timeout) or slot.finished

    def flush(self, timeout: Optional[float]) -> bool:
        """Waits until nothing is pending (or ``timeout`` seconds pass). True when everything was sent."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            for slot in self._slots.values():
                if slot.attempt == 0:
                    slot.next_at = 0.0
            self._cond.notify()
            while any(s.has_work() for s in self._slots.values()):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
            return True

    def close(self, timeout: Optional[float]) -> bool:
        """Flushes (up to ``timeout`` seconds) and stops the thread."""
        ok = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        return ok

    # ---- the thread ----

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                ready = [s for s in self._slots.values() if s.has_work() and s.next_at <= now]
                if not ready:
                    waits = [s.next_at - now for s in self._slots.values() if s.has_work()]
                    self._cond.notify_all()  # wake flush() waiters
                    self._cond.wait(max(0.001, min(waits)) if waits else None)
                    continue
            for slot in ready:
                try:
                    self._send(slot)
                except Exception:  # a bug here must not end the thread
                    log.exception("runwatch: unexpected error while sending reports for job %s", slot.job_id)
                    with self._cond:
                        slot.attempt += 1
                        slot.next_at = time.monotonic() + backoff_seconds(slot.attempt, 0.2, self.max_backoff)
            with self._cond:
                self._cond.notify_all()

    def _send(self, slot: JobSlot) -> None:
        """One sending pass for ``slot``; while it runs the slot counts as having work, so ``flush`` (and so
        ``close`` and the exit flush) waits for requests in flight, not only for what is still queued."""
        with self._cond:
            slot.sending = True
        try:
            self._send_pass(slot)
        finally:
            with self._cond:
                slot.sending = False
                self._cond.notify_all()

    def _send_queue(self, slot: JobSlot, queue: Deque[Dict[str, Any]], size: int, send: Any, what: str) -> bool:
        """Sends up to ``size`` entries of ``queue`` with ``send(batch)``. True when the pass may go on."""
        with self._cond:
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
        if not batch:
            return True
        try:
            send(batch)
            return True
        except RunwatchError as exc:
            with self._cond:
                if exc.transient:
                    queue.extendleft(reversed(batch))
                    while len(queue) > slot.max_events:
                        self._drop_oldest(slot, queue)
                elif queue is slot.items:
                    slot.unsent_ok -= sum(1 for i in batch if i["ok"])  # refused: never counted
            return self._failed(slot, exc, what)

    def _send_items(self, batch: List[Dict[str, Any]], slot: JobSlot) -> None:
        data = self.transport.execute(D.REPORT_ITEMS, {"jobId": slot.job_id, "items": batch})
        with self._cond:
            slot.unsent_ok -= sum(1 for i in batch if i["ok"])
            slot.sent_completed = max(slot.sent_completed, data["reportItems"]["completed"])

    def _send_pass(self, slot: JobSlot) -> None:
        # Item results first: the server counts them, and a progress report's absolute `completed` includes them.
        if not self._send_queue(slot, slot.items, 500, lambda b: self._send_items(b, slot), "item results"):
            return
        with self._cond:
            pending = slot.pending
            slot.pending = None
            counted = None if pending is None else pending["completed"] - slot.unsent_ok
        if pending is not None:
            inp: Dict[str, Any] = {"jobId": slot.job_id}
            if counted > slot.sent_completed or len(pending) == 2 and pending["failed_delta"] == 0:
                inp["completed"] = counted
            if pending["failed_delta"] > 0:
                inp["failedDelta"] = pending["failed_delta"]
            for key, name in (("total", "total"), ("stage", "stage"), ("message", "message"), ("resources", "resources")):
                if key in pending:
                    inp[name] = pending[key]
            if pending.get("metrics"):
                inp["metrics"] = [{"name": k, "value": v} for k, v in pending["metrics"].items()]
            try:
                data = self.transport.execute(D.REPORT_PROGRESS, {"input": inp})
                with self._cond:
                    slot.sent_completed = max(slot.sent_completed, data["reportProgress"]["completed"])
            except RunwatchError as exc:
                with self._cond:
                    if exc.transient:
                        self._merge_back(slot, pending)
                if not self._failed(slot, exc, "progress report"):
                    return
        while True:
            with self._cond:
                step = slot.steps[0] if slot.steps else None
            if step is None:
                break
            try:
                self.transport.execute(D.REPORT_STEP, step)
                with self._cond:
                    slot.steps.popleft()
            except RunwatchError as exc:
                if not exc.transient:
                    with self._cond:
                        slot.steps.popleft()
                if not self._failed(slot, exc, "step report"):
                    return
        if not self._send_queue(slot, slot.lines, 1000,
                                lambda b: self.transport.execute(D.APPEND_LOGS, {"jobId": slot.job_id, "lines": b}), "log lines"):
            return
        with self._cond:
            batch: List[Dict[str, Any]] = [slot.events.popleft() for _ in range(min(EVENTS_PER_REQUEST, len(slot.events)))]
        if batch:
            try:
                self.transport.execute(D.PUBLISH_TRAINING_EVENTS, {"runId": slot.job_id, "events": batch})
            except RunwatchError as exc:
                with self._cond:
                    if exc.transient:
                        # back in front of what came meanwhile, still within the bound (the oldest go first)
                        slot.events.extendleft(reversed(batch))
                        while len(slot.events) > slot.max_events:
                            slot.events.popleft()
                            slot.dropped_events += 1
                if not self._failed(slot, exc, "training events"):
                    return
        with self._cond:
            finish = slot.finish if not slot.queued() else None
        if finish is not None:
            try:
                self.transport.execute(finish[0], finish[1])
                with self._cond:
                    slot.finished = True
                    slot.finish = None
                    self._slots.pop(slot.job_id, None)  # nothing more to send for it
                slot.finish_done.set()
            except RunwatchError as exc:
                if exc.transient:
                    self._failed(slot, exc, "finish")
                    return
                with self._cond:
                    slot.finished = True
                    slot.finish = None
                slot.finish_done.set()
                if not isinstance(exc, Conflict):
                    self._warn_once(exc, f"job {slot.job_id}: cannot finish: {exc}")
                return
        self._succeeded(slot)

    def _merge_back(self, slot: JobSlot, old: Dict[str, Any]) -> None:
        # caller holds the lock: newer values win, failed deltas add up
        new = slot.pending
        if new is None:
            slot.pending = old
            return
        merged = dict(old)
        merged.update(new)
        merged["failed_delta"] = old["failed_delta"] + new["failed_delta"]
        if "metrics" in old and "metrics" in new:
            merged["metrics"] = {**old["metrics"], **new["metrics"]}
        slot.pending = merged

    def _succeeded(self, slot: JobSlot) -> None:
        with self._cond:
            slot.attempt = 0
            slot.next_at = time.monotonic() + self.min_interval
            recovered = self._outage
            self._outage = False
        if recovered:
            log.info("runwatch: reports to %s go through again", self.transport.url)

    def _failed(self, slot: JobSlot, exc: RunwatchError, what: str) -> bool:
        """Handles one failed request. Returns True when the remaining steps of this pass may continue."""
        if exc.transient:
            with self._cond:
                slot.attempt += 1
                delay = backoff_seconds(slot.attempt, 0.2, self.max_backoff)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                slot.next_at = time.monotonic() + delay
                first = not self._outage
                self._outage = True
            if first:
                log.warning("runwatch: cannot send reports (%s); the work goes on and reports are retried in the background",
                            exc)
            return False
        if isinstance(exc, Conflict):
            # finished or cancelled elsewhere: stop reporting this job
            with self._cond:
                slot.finished = True
                slot.pending = None
                slot.events.clear()
                slot.items.clear()
                slot.lines.clear()
                slot.steps.clear()
                slot.finish = None
            slot.finish_done.set()
            self._warn_once(exc, f"job {slot.job_id} is already finished; its reports stop: {exc}")
            return False
        self._warn_once(exc, f"job {slot.job_id}: {what} refused: {exc}")
        with self._cond:
            slot.next_at = time.monotonic() + self.min_interval
        return True

    def _warn_once(self, exc: RunwatchError, text: str) -> None:
        key = (exc.code, type(exc))
        if key in self._warned_codes:
            log.debug("runwatch: %s", text)
            return
        self._warned_codes.add(key)
        log.warning("runwatch: %s", text)


_reporters: "weakref.WeakSet[Reporter]" = weakref.WeakSet()
_exit_registered = False
#: Seconds the interpreter waits at exit for pending reports.
EXIT_FLUSH_SECONDS = 5.0


def _register_exit_flush(reporter: Reporter) -> None:
    global _exit_registered
    _reporters.add(reporter)
    if not _exit_registered:
        _exit_registered = True
        atexit.register(_flush_all_at_exit)


def _flush_all_at_exit() -> None:
    deadline = time.monotonic() + EXIT_FLUSH_SECONDS
    for reporter in list(_reporters):
        reporter.flush(max(0.0, deadline - time.monotonic()))
