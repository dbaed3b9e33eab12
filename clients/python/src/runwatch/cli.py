"""``python -m runwatch run|watch|activity``: the Python twin of the Node ``runwatch`` command.

    python -m runwatch run [--name N] [--kind K] [--total N] -- cmd args…
    python -m runwatch watch [--json | --lines] [--items] [--logs] [--connect-timeout S | --retry-forever] ID…
    python -m runwatch jobs [--tag T]… [--status S]… [--kind K]… [--parent ID] [--limit N] [--follow] [--json]
    python -m runwatch activity [--scope S] [--json] [--connect-timeout S | --retry-forever]

Every command takes ``--url`` and ``--token`` (default ``RUNWATCH_URL`` and ``RUNWATCH_TOKEN``).
``watch`` and ``activity`` never wait in silence: while the server cannot be reached at the start, each
attempt says ``runwatch: connecting to <url>… retry n in s s (reason); giving up after 30 s`` on stderr
(the Node CLI's wording), and after
``--connect-timeout`` seconds (``RUNWATCH_CONNECT_TIMEOUT``, default 30) they exit 1, unless
``--retry-forever``. Once connected, a dropped connection is resumed from the last event without limit.
Exit codes: ``run`` exits with the child's code (128 + signal when killed, 127 when it cannot start);
``watch`` 0 when every job COMPLETED, 1 otherwise (also when a job could not be watched or the server
could not be reached); ``jobs`` 0 (130 when ``--follow`` is interrupted); 2 for usage errors.
"""
from __future__ import annotations

import argparse
import codecs
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence

from .client import Client, Job
from .errors import RunwatchError
from .outputs import guess_level
from .progress import LineSplitter, ProgressTracker, parse_progress_line
from .track import job_line
from .training import TrainingRun

log = logging.getLogger("runwatch")

KINDS = ["BATCH", "EVALUATION", "TRAINING", "PIPELINE"]
STATUSES = ["QUEUED", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"]


def failure_message(command: str, code: Optional[int], signal_name: Optional[str], tail: List[str]) -> str:
    """The error of a failed run: how it ended, and the last lines of stderr (at most ~2000 characters)."""
    how = f"was killed by {signal_name}" if signal_name else f"exited with code {code}"
    head = f"command {how}: {command}"[:300]
    if not tail:
        return head
    body = "\n".join(tail)
    room = 1900 - len(head)
    return f"{head}\nlast lines of stderr:\n{'…' + body[-room:] if len(body) > room else body}"


class _Runner:
    """Feeds a child's output to the tracker and reports it (a job, or a training run for TRAINING)."""

    def __init__(self, job: Optional[Job], kind: str, total: Optional[int], tail_lines: int) -> None:
        self.job = job
        self.run = TrainingRun(job._client, job, max_steps=total) if job is not None and kind == "TRAINING" else None
        self.tracker = ProgressTracker(total)
        self.lock = threading.Lock()
        self.tail: List[str] = []
        self.tail_lines = tail_lines

    def apply(self, parsed: Dict[str, Any]) -> None:
        with self.lock:
            update = self.tracker.update(parsed)
            if self.job is None:
                return
            if self.run is not None:
                training = parsed.get("training") or {}
                if update is not None or training:
                    self.run.progress(global_step=training.get("globalStep", self.tracker.completed),
                                      max_step=self.tracker.total, loss=training.get("loss"),
                                      learning_rate=training.get("learningRate"), epoch=training.get("epoch"))
                if parsed.get("validation"):
                    v = parsed["validation"]
                    self.run.validation(v["validationLoss"], epoch=v.get("epoch"), metrics=v.get("metrics"))
                if update is not None and ("stage" in update or "message" in update):
                    self.job.update(stage=update.get("stage"), message=update.get("message"))
                return
            if update is not None:
                self.job.update(completed=update["completed"], total=update["total"], stage=update.get("stage"),
                                message=update.get("message"))

    def line(self, line: str, from_stderr: bool) -> None:
        parsed = parse_progress_line(line)
        if parsed is not None:
            self.apply(parsed)
        elif from_stderr and line.strip():
            with self.lock:
                self.tail.append(line)
                del self.tail[:-self.tail_lines]
            self.log(line)

    def log(self, line: str) -> None:
        """Sends a stderr line as a log line of the job (a TrainingLog for a training run), source ``stderr``."""
        if self.job is None:
            return
        level = guess_level(line)
        if self.run is not None:
            self.run.log(line, level=level.lower(), source="stderr")
        else:
            self.job.log(line, level=level, source="stderr")

    def pump(self, source: Any, target: Any, from_stderr: bool) -> None:
        """Copies ``source`` (a pipe) to ``target`` untouched, parsing what passes."""
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        splitter = LineSplitter()
        applied_partial = ""
        fd = source.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            try:
                target.write(chunk)
                target.flush()
            except (OSError, ValueError):
                pass
            for i, line in enumerate(splitter.push(decoder.decode(chunk))):
                if not (i == 0 and applied_partial and line == applied_partial):
                    self.line(line, from_stderr)
            applied_partial = ""
            partial = parse_progress_line(splitter.partial)
            if partial is not None:
                self.apply(partial)
                applied_partial = splitter.partial
        for line in splitter.push(decoder.decode(b"", final=True)) + splitter.end():
            if line != applied_partial:
                self.line(line, from_stderr)


def run_command(client: Optional[Client], argv: Sequence[str], name: Optional[str] = None, kind: str = "BATCH",
                total: Optional[int] = None, tail_lines: int = 10) -> int:
    """Runs ``argv`` as a watched job and returns the exit code to use (the child's; 128 + signal number
    when it was killed; 127 when it cannot start). The child's output passes through untouched; when the
    server cannot be reached the command still runs, only the reporting is lost."""
    command_line = " ".join(argv)
    job: Optional[Job] = None
    if client is not None:
        try:
            job = client.create_job((name or command_line)[:200] or "command", kind=kind, total=total)
            sys.stderr.write(f"{job_line(job)} (watch it: python -m runwatch watch {job.id})\n")
        except RunwatchError as exc:
            sys.stderr.write(f"runwatch: cannot create a job ({exc}); running the command without reporting\n")
    runner = _Runner(job, kind, total, tail_lines)
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if job is not None:
        env["RUNWATCH_JOB_ID"] = job.id
    # SIGTERM and SIGHUP go to the child (also one that arrives while it is being started); SIGINT reaches
    # the child from the terminal, so the wrapper just waits for it to exit
    children: List[subprocess.Popen] = []
    early: List[int] = []
    previous: Dict[int, Any] = {}

    def forward(signum: int, _frame: Any) -> None:
        if children:
            children[0].send_signal(signum)
        else:
            early.append(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                previous[sig] = signal.signal(sig, forward)
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        try:
            child = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            sys.stderr.write(f"runwatch: cannot run {argv[0]}: {exc}\n")
            if runner.run is not None:
                runner.run.fail(f"cannot start command: {exc}")
            elif job is not None:
                job.fail(f"cannot start command: {exc}")
            return 127
        children.append(child)
        for signum in early:
            child.send_signal(signum)
        pumps = [threading.Thread(target=runner.pump, args=(child.stdout, sys.stdout.buffer, False), daemon=True),
                 threading.Thread(target=runner.pump, args=(child.stderr, sys.stderr.buffer, True), daemon=True)]
        for p in pumps:
            p.start()
        code = child.wait()
        for p in pumps:
            p.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    signal_name = None
    if code < 0:
        try:
            signal_name = signal.Signals(-code).name
        except ValueError:
            signal_name = f"signal {-code}"
    if job is not None:
        if runner.run is not None:
            if code == 0:
                runner.run.complete()
            else:
                runner.run.fail(failure_message(command_line, code, signal_name, runner.tail))
        elif code == 0:
            job.complete("command exited with code 0")
        else:
            job.fail(failure_message(command_line, code, signal_name, runner.tail))
    return 128 - code if code < 0 else code


def _client(args: argparse.Namespace) -> Client:
    return Client(args.url, args.token, connect_timeout=getattr(args, "connect_timeout", None))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds ≥ 0: {text!r}")
    return value


def _add_connect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connect-timeout", type=_seconds, metavar="S",
                   help="give up (exit 1) when the server cannot be reached within S seconds at the start; "
                        "each failed attempt says 'connecting to <url>… retry n in s s (why); giving up after S s' on stderr "
                        "(default: RUNWATCH_CONNECT_TIMEOUT, else 30). Once connected, a dropped "
                        "connection is resumed without limit")
    p.add_argument("--retry-forever", action="store_true",
                   help="keep trying a server that cannot be reached at the start, without limit")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m runwatch``; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m runwatch", description="Report and watch jobs on a runwatch server.")
    parser.add_argument("--url", help="server URL (default: RUNWATCH_URL, then http://127.0.0.1:4000/graphql)")
    parser.add_argument("--token", help="bearer token (default: RUNWATCH_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run a command as a watched job", usage="python -m runwatch run [options] -- cmd args…")
    p_run.add_argument("--name", help="job name (default: the command line)")
    p_run.add_argument("--kind", choices=KINDS, default="BATCH",
                       help="job kind; TRAINING turns loss= and HF-style log lines into TrainingProgress")
    p_run.add_argument("--total", type=int, help="items in the job, when the output does not say")
    p_run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments (after --)")
    p_watch = sub.add_parser("watch", help="live bars (or lines) for jobs until they finish")
    p_watch.add_argument("ids", nargs="+", metavar="ID")
    p_watch.add_argument("--json", action="store_true", help="one JSON object per event")
    p_watch.add_argument("--lines", action="store_true", help="one line per event instead of bars")
    p_watch.add_argument("--items", action="store_true",
                         help="also print each item result (failed ones as '✖ <id> failed: <error>')")
    p_watch.add_argument("--logs", action="store_true", help="also print the jobs' log lines")
    _add_connect_options(p_watch)
    p_jobs = sub.add_parser("jobs", help="your jobs as a table, or live with --follow")
    p_jobs.add_argument("--tag", action="append", metavar="T", help="only jobs carrying this tag (repeat: every one)")
    p_jobs.add_argument("--status", action="append", choices=STATUSES, help="only jobs in this status (repeatable)")
    p_jobs.add_argument("--kind", action="append", choices=KINDS, help="only jobs of this kind (repeatable)")
    p_jobs.add_argument("--parent", metavar="ID", help="only the children of this job")
    p_jobs.add_argument("--limit", type=int, default=20, help="at most N jobs in the table (default 20)")
    p_jobs.add_argument("--follow", action="store_true",
                        help="the live job list: a line per matching job, then one per job created, status "
                             "change and progress, until interrupted")
    p_jobs.add_argument("--json", action="store_true", help="one JSON object per job or update")
    _add_connect_options(p_jobs)
    p_act = sub.add_parser("activity", help="the resource and budget table of your environment, live")
    p_act.add_argument("--scope", choices=["USER", "ENVIRONMENT", "INSTITUTE"], default="ENVIRONMENT")
    p_act.add_argument("--environment", help="the environment you expect (a mismatch is reported)")
    p_act.add_argument("--json", action="store_true", help="one JSON object per event")
    _add_connect_options(p_act)
    for p in (p_run, p_watch, p_jobs, p_act):
        p.add_argument("--url", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        p.add_argument("--token", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            cmd = list(args.cmd)
            if cmd and cmd[0] == "--":
                cmd = cmd[1:]
            if not cmd:
                parser.error("run needs a command: python -m runwatch run [options] -- cmd args…")
            try:
                client: Optional[Client] = _client(args)
            except ValueError as exc:
                sys.stderr.write(f"runwatch: {exc}; running without reporting\n")
                client = None
            code = run_command(client, cmd, name=args.name, kind=args.kind, total=args.total)
            if client is not None:
                client.close(timeout=0)  # run_command already waited for the final report
            return code
        client = _client(args)
        if args.command == "watch":
            from .display import watch_bars, watch_lines
            if args.json or args.lines or not sys.stdout.isatty():
                return watch_lines(client, args.ids, as_json=args.json, retry_forever=args.retry_forever,
                                   items=args.items, logs=args.logs)
            return watch_bars(client, args.ids, retry_forever=args.retry_forever, items=args.items, logs=args.logs)
        if args.command == "jobs":
            from .display import print_jobs
            return print_jobs(client, args.status, args.kind, args.tag, args.parent, limit=args.limit,
                              follow=args.follow, as_json=args.json, retry_forever=args.retry_forever)
        from .display import print_activity
        return print_activity(client, args.scope, args.environment, as_json=args.json,
                              retry_forever=args.retry_forever)
    except KeyboardInterrupt:
        return 130
    except RunwatchError as exc:
        sys.stderr.write(f"runwatch: {exc}\n")
        return 1
    except ValueError as exc:
        sys.stderr.write(f"runwatch: {exc}\n")
        return 2
