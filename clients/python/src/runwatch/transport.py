"""HTTP transport: GraphQL over HTTP POST and GraphQL over SSE, with ``http.client`` only.

Private to the package; :class:`runwatch.Client` is the public face.
"""
from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import urllib.parse
from typing import Any, Dict, Iterator, Optional

from .errors import RunwatchConnectionError, RunwatchError, error_from_graphql

DEFAULT_URL = "http://127.0.0.1:4000/graphql"
#: Seconds without a byte on an SSE stream before it counts as dropped (the server pings every 12 s).
SSE_IDLE_SECONDS = 45.0


def graphql_endpoint(url: str) -> str:
    """``http://host:4000`` and ``http://host:4000/graphql`` both give the ``/graphql`` endpoint."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"runwatch: not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/graphql"):
        path = path + "/graphql"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def backoff_seconds(attempt: int, initial: float = 0.2, maximum: float = 5.0) -> float:
    """Exponential backoff with jitter: attempt 1 → about ``initial`` seconds, capped at ``maximum``."""
    base = min(maximum, initial * (2 ** max(0, attempt - 1)))
    return base * (0.75 + random.random() * 0.5)


class StreamIdle(RunwatchConnectionError):
    """An SSE stream stayed silent longer than its idle limit (treated as a dropped connection)."""


class StreamHandle:
    """Lets another thread end a resuming stream: :meth:`close` closes the current connection and stops
    resubscribing."""

    def __init__(self) -> None:
        self.closed = False
        self.stream: Optional["SseStream"] = None
        #: Set once a subscription's first bytes arrived (the server has it open).
        self.opened = threading.Event()

    def close(self) -> None:
        """Ends the stream now; safe from any thread, idempotent."""
        self.closed = True
        stream = self.stream
        if stream is not None:
            stream.close()


class Transport:
    """One server endpoint and token; thread-safe (every call opens its own connection).

    Args:
        url: the server's URL (with or without ``/graphql``).
        token: bearer token or None; never appears in an exception or log line.
        timeout: seconds for connecting and for each HTTP request.
    """

    def __init__(self, url: str, token: Optional[str], timeout: float) -> None:
        self.url = graphql_endpoint(url)
        self._token = token
        self.timeout = float(timeout)
        parts = urllib.parse.urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path + (("?" + parts.query) if parts.query else "")
        self._lock = threading.Lock()
        #: HTTP requests sent (queries and mutations, including retries), for the curious.
        self.requests = 0

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _headers(self, accept: str) -> Dict[str, str]:
        headers = {"content-type": "application/json", "accept": accept, "user-agent": "runwatch-python/0.1"}
        if self._token:
            headers["authorization"] = "Bearer " + self._token
        return headers

    def execute(self, query: str, variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Runs one query or mutation and returns its ``data``.

        Raises:
            RunwatchError subclass: the first GraphQL error, by ``extensions.code``.
            RunwatchConnectionError: cannot connect, timeout, or a reply without a GraphQL body.
        """
        with self._lock:
            self.requests += 1
        body = json.dumps({"query": query, "variables": variables or {}}).encode("utf-8")
        conn = self._connection(self.timeout)
        try:
            try:
                conn.request("POST", self._path, body=body,
                             headers=self._headers("application/graphql-response+json, application/json"))
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                raise _unreachable(self.url, exc) from None
            return _data_of(raw, resp.status, resp.getheader("retry-after"), self.url)
        finally:
            conn.close()

    def subscribe(self, query: str, variables: Optional[Dict[str, Any]] = None,
                  idle_seconds: float = SSE_IDLE_SECONDS) -> "SseStream":
        """Opens a GraphQL-over-SSE subscription; iterate the result for each ``data`` payload."""
        return SseStream(self, query, variables or {}, idle_seconds)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text


def _unreachable(url: str, exc: BaseException) -> RunwatchConnectionError:
    """``cannot reach <url>: <why>``, with the why alone in ``reason`` (e.g. ``[Errno 111] Connection refused``)."""
    error = RunwatchConnectionError(f"cannot reach {url}: {_describe(exc)}")
    error.reason = _describe(exc)
    return error


def _data_of(raw: bytes, status: int, retry_after: Optional[str], url: str) -> Dict[str, Any]:
    try:
        payload = json.loads(raw.decode("utf-8"))
    except ValueError:
        if status >= 500:
            raise RunwatchConnectionError(f"HTTP {status} from {url} without a GraphQL body") from None
        raise RunwatchError(f"HTTP {status} from {url} without a GraphQL body", "BAD_RESPONSE", status) from None
    return _result_data(payload, status, retry_after, url)


def _result_data(payload: Any, status: Optional[int], retry_after: Optional[str], url: str) -> Dict[str, Any]:
    if not isinstance(payload, dict):
        raise RunwatchError(f"unexpected reply from {url}", "BAD_RESPONSE", status)
    errors = payload.get("errors")
    if errors:
        after: Optional[float] = None
        if retry_after:
            try:
                after = float(retry_after)
            except ValueError:
                after = None
        raise error_from_graphql(errors[0], status, after)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise RunwatchError(f"HTTP {status} from {url} without data", "BAD_RESPONSE", status)
    return data


class SseStream:
    """One GraphQL-over-SSE subscription (``POST`` with ``Accept: text/event-stream``).

    Iterating yields each event's ``data`` object; it stops at ``event: complete``.
    :meth:`close` may be called from any thread and ends a blocked read at once.

    Raises (while iterating):
        RunwatchError subclass: the server sent GraphQL errors (e.g. NotFound).
        RunwatchConnectionError: the connection failed or dropped before ``complete``
            (:class:`StreamIdle` when it stayed silent longer than ``idle_seconds``).
    """

    def __init__(self, transport: Transport, query: str, variables: Dict[str, Any], idle_seconds: float) -> None:
        self._transport = transport
        self._query = query
        self._variables = variables
        self._idle = idle_seconds
        self._conn: Optional[http.client.HTTPConnection] = None
        self._closed = False
        self._lock = threading.Lock()
        #: Called once the server answered with an event stream.
        self.on_open: Optional[Any] = None
        #: Called once the TCP (and TLS) connection is up, before the request is sent.
        self.on_connected: Optional[Any] = None

    def close(self) -> None:
        """Ends the stream (the server then releases the subscription). Safe from any thread, idempotent."""
        with self._lock:
            self._closed = True
            conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if conn is not None:
            conn.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def __enter__(self) -> "SseStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        url = self._transport.url
        body = json.dumps({"query": self._query, "variables": self._variables}).encode("utf-8")
        conn = self._transport._connection(self._transport.timeout)
        with self._lock:
            if self._closed:
                return
            self._conn = conn
        try:
            try:
                conn.connect()
                if self.on_connected is not None:
                    self.on_connected()
                conn.request("POST", self._transport._path, body=body,
                             headers=self._transport._headers("text/event-stream"))
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                if self._closed:
                    return
                raise _unreachable(url, exc) from None
            ctype = resp.getheader("content-type") or ""
            if "text/event-stream" not in ctype:
                raw = resp.read()
                if resp.status >= 500 and not raw:
                    raise RunwatchConnectionError(f"HTTP {resp.status} from {url}")
                _data_of(raw, resp.status, resp.getheader("retry-after"), url)
                raise RunwatchError(f"HTTP {resp.status} from {url} is not an event stream", "BAD_RESPONSE", resp.status)
            if conn.sock is not None:
                conn.sock.settimeout(self._idle)
            if self.on_open is not None:
                self.on_open()
            event = ""
            data_lines = []
            while True:
                try:
                    line = resp.readline()
                except socket.timeout:
                    if self._closed:
                        return
                    raise StreamIdle(f"no data from {url} for {self._idle:g} s") from None
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if self._closed:
                        return
                    raise RunwatchConnectionError(f"stream from {url} dropped: {_describe(exc)}") from None
                if not line:
                    if self._closed:
                        return
                    raise RunwatchConnectionError(f"stream from {url} ended before it completed")
                text = line.decode("utf-8").rstrip("\r\n")
                if text == "":
                    if event == "complete":
                        return
                    if data_lines:
                        payload = json.loads("\n".join(data_lines))
                        yield _result_data(payload, None, None, url)
                    event = ""
                    data_lines = []
                elif text.startswith(":"):
                    continue
                elif text.startswith("event:"):
                    event = text[6:].strip()
                elif text.startswith("data:"):
                    value = text[5:]
                    data_lines.append(value[1:] if value.startswith(" ") else value)
        finally:
            self.close()
