"""Commands to a job's worker, shared by every job and by training runs: one stream that yields each
command once, and the listener thread behind ``on_command`` that answers them.

A command is PENDING until the worker answers (ACKNOWLEDGED or REJECTED) or its time to live passes
(EXPIRED); an unanswered one comes again on the next subscription, so :func:`iter_commands` drops
the ones it has already yielded.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, Iterator, Optional, Set, TypeVar

from .errors import RunwatchError
from .transport import StreamHandle

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

log = logging.getLogger("runwatch")

__all__ = ["CommandListener", "iter_commands"]

C = TypeVar("C")


def iter_commands(client: "Client", document: str, variables: Dict[str, Any], field_name: str,
                  parse: Callable[[Dict[str, Any]], C], handle: Optional[StreamHandle] = None) -> Iterator[C]:
    """Yields the commands of a command subscription (``jobCommands`` or ``trainingCommands``) as they
    arrive, PENDING ones first, each once; resubscribes after a dropped connection. Private helper of
    :meth:`runwatch.Job.commands` and :meth:`runwatch.TrainingRun.commands`."""
    seen: Set[str] = set()
    for item in client._resumable(document, lambda _c: variables, field_name, None, handle=handle):
        command = parse(item)
        command_id = getattr(command, "id")
        if command_id in seen:
            continue
        seen.add(command_id)
        yield command


class CommandListener(Generic[C]):
    """The daemon thread behind ``on_command`` (of :class:`runwatch.Job` and :class:`runwatch.TrainingRun`):
    it reads the command stream and answers each command with the callback's verdict.

    The callback's return value answers the command: True (or None) → ACKNOWLEDGED, False → REJECTED;
    raising → REJECTED with ``Type: message`` as the message. ``ready`` is set once the first
    subscription is open (commands sent after it arrive live); ``handled`` counts the answers sent.
    """

    def __init__(self, label: str, stream: Callable[[StreamHandle], Iterator[C]],
                 answer: Callable[[C, bool, Optional[str]], Any], callback: Callable[[C], Any]) -> None:
        self._label = label
        self._stream = stream
        self._answer_with = answer
        self._callback = callback
        self._stopped = threading.Event()
        self._handle = StreamHandle()
        #: Set once the command stream is open on the server (commands sent after it arrive live).
        self.ready = self._handle.opened
        self._thread = threading.Thread(target=self._loop, name=f"runwatch-commands-{label}", daemon=True)
        #: Commands answered so far.
        self.handled = 0

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stops listening (closes the stream) and waits up to ``timeout`` seconds for the thread."""
        self._stopped.set()
        self._handle.close()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                for command in self._stream(self._handle):
                    if self._stopped.is_set():
                        return
                    self._answer(command)
                return
            except RunwatchError as exc:
                if self._stopped.is_set():
                    return
                log.warning("runwatch: %s: command stream ended: %s", self._label, exc)
                return
            except Exception:  # never let the thread die silently
                if self._stopped.is_set():
                    return
                log.exception("runwatch: %s: command listener failed", self._label)
                time.sleep(1.0)

    def _answer(self, command: C) -> None:
        try:
            result = self._callback(command)
            accepted, message = (result is not False), None
        except Exception as exc:  # the callback's failure is the worker's answer
            accepted, message = False, f"{type(exc).__name__}: {exc}"[:2000]
        try:
            self._answer_with(command, accepted, message)
            self.handled += 1
        except RunwatchError as exc:
            log.warning("runwatch: %s: cannot answer command %s: %s", self._label, getattr(command, "id", "?"), exc)
