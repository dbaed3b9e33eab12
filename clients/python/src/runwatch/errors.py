"""Errors the client raises.

Every server error is a :class:`RunwatchError` subclass carrying the server's
``extensions.code`` in ``code``. Network failures are :class:`RunwatchConnectionError`,
which is also a built-in :class:`ConnectionError`, with the server URL in the message.
No message ever contains a token.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

__all__ = [
    "RunwatchError",
    "Unauthenticated",
    "Forbidden",
    "NotFound",
    "BadUserInput",
    "Conflict",
    "RateLimited",
    "ServiceUnavailable",
    "RunwatchConnectionError",
    "WaitTimeout",
    "error_from_graphql",
    "job_not_found",
]


class RunwatchError(Exception):
    """A failed runwatch call.

    Attributes:
        code: the server's ``extensions.code`` (``UNAUTHENTICATED``, ``NOT_FOUND``, ...) or one of
            the client's own (``NETWORK``, ``BAD_RESPONSE``, ``TIMEOUT``).
        message: the server's message.
        status: the HTTP status, when the error came from an HTTP response.
        extensions: the error's whole ``extensions`` object (e.g. ``field`` for BAD_USER_INPUT).
    """

    #: True when a retry may succeed (network trouble, SERVICE_UNAVAILABLE, RATE_LIMITED).
    transient = False

    def __init__(self, message: str, code: Optional[str] = None, status: Optional[int] = None,
                 extensions: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or getattr(type(self), "default_code", "INTERNAL_SERVER_ERROR")
        self.status = status
        self.extensions = dict(extensions or {})

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class Unauthenticated(RunwatchError):
    """No token, a bad token or an expired one (HTTP 401). Not retried."""

    default_code = "UNAUTHENTICATED"


class Forbidden(RunwatchError):
    """The token lacks the scope the operation needs (e.g. ``jobs:control`` to cancel)."""

    default_code = "FORBIDDEN"


class NotFound(RunwatchError):
    """No such job (or run, or command) in the token's tenant; another tenant's job looks the same."""

    default_code = "NOT_FOUND"


class BadUserInput(RunwatchError, ValueError):
    """Invalid arguments; nothing was changed. ``message`` is the server's explanation (or the client's own
    check, before anything is sent). Also a :class:`ValueError`."""

    default_code = "BAD_USER_INPUT"


class Conflict(RunwatchError):
    """The job is already finished, or an idempotency key was reused with other input."""

    default_code = "CONFLICT"


class RateLimited(RunwatchError):
    """The caller is over its rate limit. ``retry_after`` is seconds to wait (None when unknown)."""

    default_code = "RATE_LIMITED"
    transient = True

    def __init__(self, message: str, code: Optional[str] = None, status: Optional[int] = None,
                 extensions: Optional[Dict[str, Any]] = None, retry_after: Optional[float] = None) -> None:
        super().__init__(message, code, status, extensions)
        value = retry_after if retry_after is not None else self.extensions.get("retryAfterSeconds")
        self.retry_after: Optional[float] = float(value) if isinstance(value, (int, float)) else None


class ServiceUnavailable(RunwatchError):
    """The server's backend (Redis) is unreachable, or the server is shutting down. Retry later."""

    default_code = "SERVICE_UNAVAILABLE"
    transient = True


class RunwatchConnectionError(RunwatchError, ConnectionError):
    """The server cannot be reached, timed out, or answered without a GraphQL body (5xx).

    Also a built-in :class:`ConnectionError`. The message names the URL (never the token).
    """

    default_code = "NETWORK"
    transient = True
    #: Why, without the URL (e.g. ``[Errno 111] Connection refused``); the message when not known.
    reason: str = ""


class WaitTimeout(RunwatchError, TimeoutError):
    """:meth:`Client.wait` ran out of time. ``job`` is the last state seen (None when none arrived)."""

    default_code = "TIMEOUT"

    def __init__(self, job_id: str, timeout: float, job: Any = None) -> None:
        seen = ""
        if job is not None:
            total = "?" if job.total is None else job.total
            seen = f" (last seen {job.status} {job.completed}/{total})"
        super().__init__(f"job {job_id} did not finish within {timeout:g} s{seen}")
        self.job_id = job_id
        self.timeout = timeout
        self.job = job


def job_not_found(job_id: str) -> NotFound:
    """The NOT_FOUND error for a missing job, worded as the server words it (``no job with id "<id>"``,
    ``notFound`` in the server's src/domain/errors.ts), so :meth:`Client.get_job` (whose query answers
    null) and :meth:`Client.watch` (whose subscription answers the server's error) say the same."""
    return NotFound(f"no job with id {json.dumps(job_id, ensure_ascii=False)}", "NOT_FOUND")


_BY_CODE = {
    "UNAUTHENTICATED": Unauthenticated,
    "FORBIDDEN": Forbidden,
    "NOT_FOUND": NotFound,
    "BAD_USER_INPUT": BadUserInput,
    "GRAPHQL_VALIDATION_FAILED": BadUserInput,
    "CONFLICT": Conflict,
    "RATE_LIMITED": RateLimited,
    "SERVICE_UNAVAILABLE": ServiceUnavailable,
    "SLOW_CONSUMER": ServiceUnavailable,
}


def error_from_graphql(error: Dict[str, Any], status: Optional[int] = None,
                       retry_after: Optional[float] = None) -> RunwatchError:
    """Builds the exception for one GraphQL error object (``{"message", "extensions": {"code"}}``)."""
    extensions = error.get("extensions") or {}
    code = extensions.get("code") if isinstance(extensions, dict) else None
    if not isinstance(code, str):
        code = "UNAUTHENTICATED" if status == 401 else "INTERNAL_SERVER_ERROR"
    message = str(error.get("message") or "unknown GraphQL error")
    cls = _BY_CODE.get(code, RunwatchError)
    if cls is RateLimited:
        return RateLimited(message, code, status, extensions, retry_after=retry_after)
    err = cls(message, code, status, extensions)
    if cls is RunwatchError and code == "INTERNAL_SERVER_ERROR":
        err.transient = True
    return err
