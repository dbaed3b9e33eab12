"""What a newcomer meets in the first hour: a watcher that never waits in silence, jobs that say where
they are, one NOT_FOUND wording, events that print readably, and terminal lines that fit."""
from __future__ import annotations

import io
import re
import socket
import subprocess
import threading
import time
import unittest
import urllib.request
from datetime import datetime, timezone

import runwatch
from runwatch.display import format_event, summary_line, watch_bars
from runwatch.live import bar_fit, bar_line
from runwatch.format import format_duration, format_percent, format_rate, one_line, wrap_words
from runwatch.transport import StreamHandle
from runwatch.types import ProgressEvent

from support import PYTHON, LogCapture, fresh_tenant, mint_token, python_env, shared_server, wait_until, tenant_client
from terminal import Screen

server = None


def setUpModule() -> None:
    global server
    server = shared_server()


new_client = tenant_client


class ClosedPort:
    """A TCP port on 127.0.0.1 that refuses connections: bound, never listening (no race with other tests)."""

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self.sock.close()


class NeverSilent(unittest.TestCase):
    def test_watch_says_it_is_connecting_within_a_second_and_gives_up_after_connect_timeout(self) -> None:
        with ClosedPort() as url, LogCapture() as logs:
            client = runwatch.Client(url, "token", connect_timeout=1.5)
            started = time.monotonic()
            errors: list = []
            thread = threading.Thread(target=lambda: errors.append(self._drain(client.watch("j_x"))), daemon=True)
            thread.start()
            wait_until(lambda: logs.warnings(), 1.0, "the first 'connecting to' warning (within 1 s)")
            self.assertRegex(logs.warnings()[0],
                             rf"^runwatch: connecting to {re.escape(url)}/graphql… retry 1 in [\d.]+ s \(.*refused.*\); "
                             r"giving up after 1\.5 s$")
            thread.join(10)
            elapsed = time.monotonic() - started
            self.assertFalse(thread.is_alive(), "watch gave up")
            [error] = errors
            self.assertIsInstance(error, runwatch.RunwatchConnectionError)
            self.assertRegex(str(error), rf"cannot reach {re.escape(url)}/graphql within 1.5 s \(\d+ attempts; last: .*refused")
            self.assertGreaterEqual(elapsed, 1.5)
            self.assertLess(elapsed, 1.5 + 3, "gave up soon after connect_timeout")

    def test_a_host_that_never_answers_is_reported_after_a_second_too(self) -> None:
        # a listening socket whose accept queue is full (listen(0), one connection queued, never accepted):
        # further connects hang, as they do to a firewalled host
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        filler = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(filler.close)
        with LogCapture() as logs:
            client = runwatch.Client(f"http://127.0.0.1:{port}", "token", timeout=3, connect_timeout=2)
            started = time.monotonic()
            errors: list = []
            thread = threading.Thread(target=lambda: errors.append(self._drain(client.watch("j_x"))), daemon=True)
            thread.start()
            wait_until(lambda: logs.warnings(), 2.5, "a 'connecting to' warning about 1 s after the start")
            self.assertRegex(logs.warnings()[0], r"^runwatch: connecting to http://127\.0\.0\.1:\d+/graphql… giving up after 2 s$")
            self.assertGreaterEqual(time.monotonic() - started, 0.9)
            thread.join(15)
            self.assertFalse(thread.is_alive(), "watch gave up")
            self.assertIsInstance(errors[0], runwatch.RunwatchConnectionError)

    def test_wait_gives_up_too_and_retry_forever_keeps_trying(self) -> None:
        with ClosedPort() as url, LogCapture() as logs:
            client = runwatch.Client(url, "token", connect_timeout=0.5)
            with self.assertRaises(runwatch.RunwatchConnectionError):
                client.wait("j_x", timeout=30)
            forever: list = []
            handle = StreamHandle()
            self.addCleanup(handle.close)  # ends the retrying stream (it would log for the rest of the run)
            thread = threading.Thread(
                target=lambda: forever.append(self._drain(client.watch("j_x", retry_forever=True, _handle=handle))),
                daemon=True)
            thread.start()
            before = len(logs.warnings())
            wait_until(lambda: len(logs.warnings()) >= before + 6, 20, "six retries with retry_forever")
            self.assertTrue(thread.is_alive(), "retry_forever keeps trying past connect_timeout")
            self.assertEqual(forever, [])
            handle.close()
            thread.join(10)
            self.assertFalse(thread.is_alive(), "closing the handle stops the retries")

    @staticmethod
    def _drain(stream) -> BaseException:
        try:
            for _ in stream:
                pass
        except BaseException as exc:  # returned to the test
            return exc
        return None  # type: ignore[return-value]

    def test_cli_watch_against_a_closed_port_says_so_on_stderr_and_exits_1_within_the_documented_time(self) -> None:
        with ClosedPort() as url:
            proc = subprocess.Popen([PYTHON, "-m", "runwatch", "watch", "j_x"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=python_env(RUNWATCH_URL=url, RUNWATCH_TOKEN="t",
                                                                           RUNWATCH_CONNECT_TIMEOUT="2"))
            first_line = proc.stderr.readline().decode()  # blocks until the first line: the process's start is load-dependent
            first_at = time.monotonic()
            self.assertRegex(first_line, rf"^runwatch: connecting to {re.escape(url)}/graphql… retry 1 in [\d.]+ s \(.*\); "
                                         r"giving up after 2 s$")
            try:
                code = proc.wait(2 + 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("watch did not give up within RUNWATCH_CONNECT_TIMEOUT")
            self.assertLess(time.monotonic() - first_at, 2 + 5, "exited soon after RUNWATCH_CONNECT_TIMEOUT")
            err = proc.stderr.read().decode()
            out = proc.stdout.read().decode()
            proc.stdout.close()
            proc.stderr.close()
            self.assertEqual(code, 1)
            self.assertIn(f"runwatch: cannot watch j_x: cannot reach {url}/graphql within 2 s", err)
            self.assertIn("✖ j_x  cannot reach", out)

    def test_cli_help_documents_the_bound_and_retry_forever(self) -> None:
        result = subprocess.run([PYTHON, "-m", "runwatch", "watch", "--help"], capture_output=True, text=True,
                                env=python_env(COLUMNS="200"), timeout=60)
        self.assertIn("--connect-timeout S", result.stdout)
        self.assertIn("RUNWATCH_CONNECT_TIMEOUT, else 30", result.stdout)
        self.assertIn("--retry-forever", result.stdout)


class SaysWhichJob(unittest.TestCase):
    SCRIPT = ("import sys, runwatch\n"
              "from runwatch.tqdm import tqdm\n"
              "client = runwatch.Client(sys.argv[1], sys.argv[2])\n"
              "if sys.argv[3] == 'tqdm':\n"
              "    bar = tqdm(range(5), desc='embed', client=client)\n"
              "    for _ in bar: pass\n"
              "    print(bar.job.id, bar.job.dashboard_url)\n"
              "else:\n"
              "    for _ in runwatch.track(range(5), name='resize', client=client): pass\n"
              "    print([j for j in client.jobs()][0].id)\n")

    def _run(self, how: str):
        token = mint_token(inst=fresh_tenant())
        result = subprocess.run([PYTHON, "-c", self.SCRIPT, server.url, token, how], env=python_env(),
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = [l for l in re.split(r"[\r\n]", result.stderr) if l.startswith("runwatch:")]
        return result.stdout.split(), lines, token

    def test_the_tqdm_drop_in_says_which_job_on_stderr_with_its_dashboard_url(self) -> None:
        (job_id, url), lines, _ = self._run("tqdm")
        origin = server.url[: -len("/graphql")]
        self.assertEqual(lines, [f"runwatch: job {job_id} {origin}/jobs/{job_id}"])
        self.assertEqual(url, f"{origin}/jobs/{job_id}")
        with urllib.request.urlopen(url, timeout=10) as page:  # the dashboard serves the job's page
            self.assertEqual(page.status, 200)
            self.assertIn("text/html", page.headers["content-type"])

    def test_track_says_which_job_on_stderr(self) -> None:
        (job_id,), lines, _ = self._run("track")
        self.assertEqual(lines, [f"runwatch: job {job_id} {server.url[: -len('/graphql')]}/jobs/{job_id}"])


class OneNotFoundWording(unittest.TestCase):
    def test_get_job_and_watch_say_the_servers_no_job_with_id(self) -> None:
        client = new_client()
        with self.assertRaises(runwatch.NotFound) as got:
            client.get_job("j_missing")
        with self.assertRaises(runwatch.NotFound) as watched:
            list(client.watch("j_missing"))
        self.assertEqual(got.exception.message, 'no job with id "j_missing"')
        self.assertEqual(watched.exception.message, got.exception.message, "the server's own wording, in both")
        self.assertEqual((got.exception.code, watched.exception.code), ("NOT_FOUND", "NOT_FOUND"))


def _event(type: str = "PROGRESS", **job) -> ProgressEvent:
    base = {"id": "j_1", "name": "embed corpus", "status": "RUNNING", "total": 40, "completed": 20, "failed": 0,
            "percent": 50.0, "rate": 9.912345, "etaSeconds": 2.02, "stage": "load"}
    base.update(job)
    return ProgressEvent.from_graphql({"type": type, "cursor": "e.1", "runId": "j_1",
                                       "timestamp": "2026-12-07T12:03:04.5Z", "job": base})


class ReadableEvents(unittest.TestCase):
    def test_str_of_a_real_completed_event(self) -> None:
        client = new_client()
        job = client.create_job("forty", total=40)
        job.advance(40)
        job.complete()
        [event] = list(client.watch(job.id))  # a finished job: its terminal SNAPSHOT
        self.assertRegex(str(event), r"^SNAPSHOT 40/40 100%( \d+(\.\d+)?k? items/s)?$")  # fast: maybe 13.3k items/s
        self.assertRegex(str(event.job), rf"^forty \({job.id}\) COMPLETED 40/40 100% ")

    def test_str_rounds_like_the_node_cli(self) -> None:
        self.assertEqual(str(_event()), "PROGRESS 20/40 50% 9.91 items/s ETA 2s stage load")
        self.assertEqual(str(_event(total=None, percent=None, rate=None, etaSeconds=None, stage=None, completed=3)),
                         "PROGRESS 3/?")

    def test_the_watch_line_is_the_node_plain_line(self) -> None:
        # src/cli/watch.ts plainLine: time, "name (id)", TYPE padded to 11, count, percent, "rate …", "ETA …",
        # "stage …", status, "- message", two spaces apart
        self.assertEqual(format_event(_event()),
                         "12:03:04  embed corpus (j_1)  PROGRESS     20/40  50%  rate 9.91/s  ETA 2s  stage load  RUNNING")
        done = _event("FAILED", status="FAILED", etaSeconds=None, stage=None, rate=None, percent=None, total=None)
        done.message = "disk full"
        self.assertEqual(format_event(done), "12:03:04  embed corpus (j_1)  FAILED       20/?  -  rate -  ETA -  FAILED  - disk full")

    def test_numbers_format_as_node_formats_them(self) -> None:
        # expected values printed by src/cli/format.ts for the same inputs
        rates = [0, 0.001234, 0.5, 1, 9.9, 9.95, 12.345, 100, 150.5, 9999.4, 12345, 0.1, 10, 1.005]
        self.assertEqual(" ".join(format_rate(r) for r in rates),
                         "0/s 0.00123/s 0.5/s 1/s 9.9/s 9.95/s 12.3/s 100/s 151/s 9999/s 12.3k/s 0.1/s 10/s 1/s")
        self.assertEqual([format_duration(s) for s in (None, -1, 0, 44.5, 59.6, 185, 7620)],
                         ["-", "-", "0s", "45s", "1m 00s", "3m 05s", "2h 07m"])
        self.assertEqual([format_percent(p) for p in (None, 0, 55.00000000000001, 99.99, 100)], ["-", "0%", "55%", "99%", "100%"])

    def test_summary_line_is_the_node_summary_line(self) -> None:
        job = runwatch.types.JobState.from_graphql({
            "id": "j_1", "name": "embed", "status": "FAILED", "total": 10, "completed": 7, "failed": 1, "rate": 2.5,
            "errorMessage": "disk full", "startedAt": "2026-12-07T12:00:00Z", "finishedAt": "2026-12-07T12:03:05Z"})
        self.assertEqual(summary_line(job, "j_1"), "✖  embed  FAILED  7/10  1 failed  in 3m 05s  (2.5/s)  error: disk full")
        self.assertEqual(summary_line(None, "j_2", "no job with id \"j_2\""), '✖ j_2  no job with id "j_2"')


WIDTHS = (40, 60, 120, 200)
STATUSES = ("QUEUED", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED")


class TerminalLines(unittest.TestCase):
    def test_bar_lines_fit_keep_status_and_give_names_the_free_width(self) -> None:
        long_name = "embed the whole multilingual corpus with e5-large"
        for width in WIDTHS:
            usable = width - 1
            for status in STATUSES:
                job = _event(name=long_name, status=status, completed=123456, total=1000000, stage="tokenise").job
                line = bar_line(job, usable, bar_fit([job]))
                self.assertLessEqual(len(line), usable, (width, line))
                self.assertTrue(line.endswith(status), (width, line))
                self.assertIn("ETA", line)
        wide = bar_line(_event(name=long_name).job, 199)
        self.assertTrue(wide.startswith(long_name + " "), f"the whole name at 200 columns: {wide!r}")
        self.assertRegex(bar_line(_event(name=long_name).job, 59), r"^embed the.*… ")

    def test_summaries_wrap_between_words_never_inside_one(self) -> None:
        line = "  ✖  embed the whole corpus  FAILED  7/10  1 failed  in 3m 05s  (2.5/s)  error: CUDA out of memory"
        for width in WIDTHS:
            lines = wrap_words(line, width - 1, "     ")
            self.assertTrue(all(len(l) <= width - 1 for l in lines), lines)
            self.assertEqual(" ".join(" ".join(lines).split()), " ".join(line.split()), (width, lines))  # words whole
            self.assertTrue(all(l.startswith("     ") for l in lines[1:]), lines)
        self.assertEqual(wrap_words("x " + "a" * 50, 20), ["x", "a" * 19 + "…"], "only a word wider than a line is cut")

    def test_user_text_stays_on_one_line(self) -> None:
        self.assertEqual(one_line("eval\nmmlu\t\x1b[31m"), "eval\\nmmlu\\t\\x1b[31m")
        line = bar_line(_event(name="eval\nmmlu").job, 119)
        self.assertTrue(line.startswith("eval\\nmmlu "), line)

    def test_watch_bars_frames_fit_show_status_and_end_clean_with_a_summary(self) -> None:
        for width in WIDTHS:
            with self.subTest(width=width):
                self._watch_at(width)

    def _watch_at(self, columns: int) -> None:
        client = new_client()
        a = client.create_job("embed the whole multilingual corpus with e5-large", total=40)
        b = client.create_job("eval", total=4)
        out = io.StringIO()
        result: list = []
        t = threading.Thread(target=lambda: result.append(watch_bars(client, [a.id, b.id], file=out, width=columns - 1)),
                             daemon=True)
        t.start()
        wait_until(lambda: out.getvalue().count("QUEUED") >= 2, 20, "both jobs drawn")
        a.update(stage="load weights")
        a.advance(25)
        client.flush()
        wait_until(lambda: "62%" in out.getvalue(), 20, "the progress drawn")
        a.advance(15)
        a.complete()
        b.advance(1)
        b.fail("CUDA out of memory while allocating 20 GiB on device 0")
        t.join(30)
        self.assertFalse(t.is_alive(), "watch_bars returned")
        self.assertEqual(result, [1])
        screen = Screen(columns)
        frames = screen.feed_frames(out.getvalue())
        self.assertGreaterEqual(len(frames), 3)
        for frame in frames:  # every frame: two job lines, each within the width, each ending in its status
            self.assertEqual(len(frame), 2, frame)
            for line in frame:
                self.assertLessEqual(len(line), columns - 1, line)
                if not line.endswith("connecting…"):
                    self.assertTrue(line.rstrip().endswith(STATUSES), (columns, line))
        final = screen.lines()
        self.assertEqual(screen.wrapped, 0, "no line wrapped")
        self.assertTrue(final[0].endswith("COMPLETED") and "100%" in final[0], final)
        self.assertTrue(final[1].endswith("FAILED"), final)
        self.assertEqual(final[2:4], ["", "Summary of 2 jobs:"], final)
        summary = final[4:]
        self.assertTrue(summary[0].startswith("  ✔  embed the whole"), summary)
        words = " ".join(" ".join(summary).split())  # each summary, words whole, maybe over several lines
        self.assertIn("✔ embed the whole multilingual corpus with e5-large COMPLETED 40/40", words)
        self.assertIn("✖ eval FAILED 1/4", words)
        self.assertIn("error: CUDA out of memory while allocating 20 GiB on device 0", words)
        for line in summary:
            self.assertLessEqual(len(line), columns - 1, line)
        self.assertEqual(len(final), len(set(final) - {""}) + final.count(""), f"no duplicated line: {final}")

    def test_the_cli_on_a_60_column_pseudo_terminal_leaves_a_clean_screen(self) -> None:
        import fcntl
        import os
        import pty
        import struct
        import termios
        token = mint_token(inst=fresh_tenant())
        client = runwatch.Client(server.url, token)
        job = client.create_job("embed the whole multilingual corpus with e5-large", total=10)
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 20, 60, 0, 0))
        proc = subprocess.Popen([PYTHON, "-m", "runwatch", "watch", job.id], stdin=slave, stdout=slave, stderr=slave,
                                env=python_env(RUNWATCH_URL=server.url, RUNWATCH_TOKEN=token, TERM="xterm"))
        os.close(slave)
        shown = bytearray()

        def read() -> None:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    return
                if not chunk:
                    return
                shown.extend(chunk)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        wait_until(lambda: b"QUEUED" in shown, 30, f"the job's line on the terminal (so far {bytes(shown)[-300:]!r})")
        job.advance(10)
        job.complete()
        self.assertEqual(proc.wait(30), 0)
        reader.join(10)
        os.close(master)
        screen = Screen(60)
        screen.feed(shown.decode())
        final = screen.lines()
        self.assertEqual(screen.wrapped, 0, final)
        self.assertRegex(final[0], r"^embed the.*█+ 100% +10/10 ETA \S+ +COMPLETED$")
        self.assertEqual(final[1:3], ["", "Summary:"])
        self.assertRegex(" ".join(" ".join(final[3:]).split()),
                         r"^✔ embed the whole multilingual corpus with e5-large COMPLETED 10/10 in \d+s")
        self.assertTrue(all(len(line) <= 59 for line in final), final)


if __name__ == "__main__":
    unittest.main()
