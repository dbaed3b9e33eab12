"""Test harness: a real runwatch server (and redis-server) on free ports, tokens minted with the stdlib,
a TCP proxy whose connections a test can cut, and waits that always have a timeout.

Everything started here is tracked by PID and stopped by PID; nothing else is touched.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import queue
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PY_SRC = os.path.join(REPO, "clients", "python", "src")
TSX = os.path.join(REPO, "node_modules", ".bin", "tsx")
SECRET = "python-client-tests-secret-0123456789abcdef"
ALL_SCOPES = "jobs:read jobs:write jobs:control activity:read admin"


def require(condition: bool, message: str) -> None:
    """Fails (never skips) when something the suite needs is missing."""
    if not condition:
        raise RuntimeError(message)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(sub: str = "py-alice", inst: str = "py-inst", env: str = "default", scope: str = ALL_SCOPES,
               ttl: float = 3600, secret: str = SECRET) -> str:
    """An HS256 JWT with ``sub``, ``inst``, ``env``, ``scope`` and ``exp`` (``ttl`` seconds from now)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": sub, "inst": inst, "env": env, "scope": scope, "exp": int(time.time() + ttl)}
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Polls ``predicate`` (a cheap local check) until truthy; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A port to give redis-server (it cannot print the one it picked). Only for redis."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of our own on a free port, optionally with AOF persistence in a temp dir."""

    def __init__(self, persistent: bool = False) -> None:
        require(shutil.which("redis-server") is not None,
                "redis-server is missing: install it (apt-get install -y redis-server, or bash scripts/install-system-deps.sh)")
        self.dir = tempfile.mkdtemp(prefix="runwatch-py-redis-")
        self.persistent = persistent
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "Redis":
        for _ in range(5):
            if not self.port or self.proc is not None:
                self.port = self.port or free_port()
            args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--dir", self.dir, "--appendonly", "yes" if self.persistent else "no"]
            if self.persistent:
                args += ["--appendfsync", "always"]
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            lines: List[str] = []
            assert self.proc.stdout is not None
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                line = self.proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if "Ready to accept connections" in line:
                    self._drainer = threading.Thread(target=self._drain, args=(self.proc,), daemon=True)
                    self._drainer.start()
                    return self
            self.proc.kill()
            self.proc.wait(5)
            if "Address already in use" in "".join(lines):
                self.port = free_port()
                continue
            raise RuntimeError("redis-server did not start:\n" + "".join(lines[-20:]))
        raise RuntimeError("redis-server could not find a free port")

    @staticmethod
    def _drain(proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            pass

    def stop(self) -> None:
        """SIGTERM (redis writes its AOF and exits), then wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            drainer = getattr(self, "_drainer", None)
            if drainer is not None:
                drainer.join(5)
            self.proc.stdout.close()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """A runwatch server (``tsx src/main.ts``) on a free port (PORT=0), its URL parsed from its output."""

    def __init__(self, redis_url: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> None:
        require(os.path.exists(TSX), f"{TSX} is missing: run `npm ci` in {REPO} first")
        require(shutil.which("node") is not None, "node is missing: install Node.js 20")
        self.redis_url = redis_url
        self.extra_env = env or {}
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.port = 0
        self.output: List[str] = []

    def start(self, port: int = 0) -> "Server":
        env = dict(os.environ)
        env.update({"PORT": str(port), "HOST": "127.0.0.1", "RUNWATCH_JWT_SECRET": SECRET, "LOG_LEVEL": "warn",
                    "RUNWATCH_PROGRESS_HZ": "1000", "RUNWATCH_RATE_LIMIT_PER_SECOND": "0"})
        env.pop("REDIS_URL", None)
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        self.proc = subprocess.Popen([TSX, os.path.join(REPO, "src", "main.ts")], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        found: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(self.proc, found), daemon=True)
        self._reader.start()
        try:
            url = found.get(timeout=60)
        except queue.Empty:
            url = None
        if not url:
            self.stop()
            raise RuntimeError("runwatch server did not start:\n" + "".join(self.output[-30:]))
        self.url = url
        self.port = int(re.search(r":(\d+)/", url).group(1))  # type: ignore[union-attr]
        return self

    def _read(self, proc: subprocess.Popen, found: "queue.Queue[Optional[str]]") -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)
            match = re.search(r"runwatch is running at (http://\S+)", line)
            if match:
                found.put(match.group(1))
        found.put(None)

    def stop(self) -> None:
        """SIGTERM the server's process group (tsx and node), then wait; SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)
        self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of a server; :meth:`drop_all` cuts every open connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        #: While True, every connection is closed as soon as it is accepted (as if the server were down).
        self.refusing = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:  # the "server" is down: hang up at once
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.accepted += 1
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed")
                    pair[s].sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def drop_all(self) -> int:
        """Cuts every connection open now (both sides, at once). Returns how many pairs were cut."""
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(conns) // 2

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.drop_all()


class LogCapture(logging.Handler):
    """Collects records of the ``runwatch`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self.logger = logging.getLogger("runwatch")

    def __enter__(self) -> "LogCapture":
        self.logger.addHandler(self)
        self._level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> List[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]


def python_env(**extra: str) -> Dict[str, str]:
    """The environment for a child Python that imports runwatch from the repository."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PY_SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


PYTHON = sys.executable


_shared: Optional[Server] = None
_shared_lock = threading.Lock()


def shared_server() -> Server:
    """One in-memory server for the whole test run (started on first use, stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Server().start()
            import atexit
            atexit.register(_shared.stop)
        return _shared


def tenant_client(url: str = "", inst: str = "", **options) -> "runwatch.Client":
    """A client of the shared server (or of ``url``) as a fresh tenant (or as institute ``inst``), so no test sees
    another's jobs. ``options`` go to :class:`runwatch.Client`."""
    import runwatch
    return runwatch.Client(url or shared_server().url, mint_token(inst=inst or fresh_tenant()), **options)


_tenants = 0


def fresh_tenant() -> str:
    """A fresh institute id, so tests never see each other's jobs."""
    global _tenants
    _tenants += 1
    return f"py-{os.getpid()}-{_tenants}-{int(time.time() * 1000) % 100000}"


class Events:
    """Collects a stream's items on a daemon thread; ``wait_for`` waits (with a timeout) for a condition."""

    def __init__(self, iterator: Any, handle: Any = None) -> None:
        self.items: List[Any] = []
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self._cond = threading.Condition()
        self._handle = handle
        self._thread = threading.Thread(target=self._run, args=(iterator,), daemon=True)
        self._thread.start()

    def _run(self, iterator: Any) -> None:
        try:
            for item in iterator:
                with self._cond:
                    self.items.append(item)
                    self._cond.notify_all()
        except BaseException as exc:  # reported by wait_for
            self.error = exc
        finally:
            self.done.set()
            with self._cond:
                self._cond.notify_all()

    def wait_for(self, check: Callable[[List[Any]], Any], what: str, timeout: float = 20.0) -> List[Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not check(self.items):
                if self.error is not None:
                    raise AssertionError(f"stream failed while waiting for {what}: {self.error!r}")
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.done.is_set() and not check(self.items)):
                    if self.done.is_set() and remaining > 0:
                        raise AssertionError(f"stream ended before {what}; got {self.items!r}"[:2000])
                    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; got {self.items!r}"[:2000])
                self._cond.wait(min(remaining, 0.5))
            return list(self.items)

    def wait_done(self, what: str, timeout: float = 20.0) -> List[Any]:
        if not self.done.wait(timeout):
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} to end; got {self.items!r}"[:2000])
        if self.error is not None:
            raise AssertionError(f"stream failed: {self.error!r}")
        return list(self.items)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
