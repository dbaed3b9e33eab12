"""``watch(..., items=True, logs=True)`` against a real server: the stream carries ITEM_RESULTS and LOG
events only when asked, ``watch_lines`` and ``python -m runwatch watch --items --logs`` print each item
result (failed ones marked) and log line readably, and the bars show them above the job's line."""
from __future__ import annotations

import io
import subprocess
import threading
import unittest

import runwatch
from runwatch.display import watch_lines
from runwatch.live import watch_bars
from runwatch.transport import StreamHandle

from support import PYTHON, Events, fresh_tenant, mint_token, python_env, shared_server, wait_until
from terminal import Screen

server = None


def setUpModule() -> None:
    global server
    server = shared_server()


def report_results(job: runwatch.Job) -> None:
    job.report_items([
        {"item_id": "q1", "ok": True, "latency_seconds": 0.42, "metrics": {"accuracy": 1}},
        {"item_id": "q2", "ok": False, "latency_seconds": 1.3, "metrics": {"accuracy": 0}, "error": "wrong answer",
         "data": {"answer": "Lyon"}},
    ])
    job.log("q2 took 1.3 s", level="warning", source="grader")
    job.close()


class WatchItemsAndLogs(unittest.TestCase):
    def test_the_stream_carries_items_and_logs_only_when_asked(self) -> None:
        client = runwatch.Client(server.url, mint_token(inst=fresh_tenant()))
        self.addCleanup(client.close)
        job = client.create_job("qa eval", kind="EVALUATION", total=2)
        asked, plain = StreamHandle(), StreamHandle()
        with_outputs = Events(client.watch(job.id, items=True, logs=True, _handle=asked), asked)
        without = Events(client.watch(job.id, _handle=plain), plain)
        self.addCleanup(with_outputs.close)
        self.addCleanup(without.close)
        with_outputs.wait_for(lambda es: es, "the first SNAPSHOT")
        without.wait_for(lambda es: es, "the first SNAPSHOT")
        report_results(job)
        job.complete()
        events = with_outputs.wait_done("the watch with items and logs")
        [batch] = [e for e in events if e.type == runwatch.ProgressEventType.ITEM_RESULTS]
        self.assertEqual([(i.item_id, i.ok, i.latency_seconds, i.metrics, i.error, i.data) for i in batch.items],
                         [("q1", True, 0.42, {"accuracy": 1}, None, None),
                          ("q2", False, 1.3, {"accuracy": 0}, "wrong answer", {"answer": "Lyon"})])
        self.assertEqual([i.seq for i in batch.items], [1, 2])
        [logged] = [e for e in events if e.type == runwatch.ProgressEventType.LOG]
        self.assertEqual([(line.level, line.message, line.source, line.dropped_before) for line in logged.logs],
                         [(runwatch.LogLevel.WARNING, "q2 took 1.3 s", "grader", 0)])
        self.assertEqual(events[-1].job.success_rate, 0.5)
        plain_types = {e.type for e in without.wait_done("the plain watch")}
        self.assertFalse(plain_types & {runwatch.ProgressEventType.ITEM_RESULTS, runwatch.ProgressEventType.LOG},
                         "a plain watcher gets no item results or logs")

    def test_watch_lines_and_bars_print_item_results_and_log_lines(self) -> None:
        client = runwatch.Client(server.url, mint_token(inst=fresh_tenant()))
        self.addCleanup(client.close)
        job = client.create_job("qa eval", kind="EVALUATION", total=2)
        lines, bars = io.StringIO(), io.StringIO()
        codes: list = []
        threading.Thread(target=lambda: codes.append(watch_lines(client, [job.id], file=lines, items=True, logs=True)),
                         daemon=True).start()
        threading.Thread(target=lambda: codes.append(watch_bars(client, [job.id], file=bars, width=90, items=True,
                                                                logs=True)), daemon=True).start()
        wait_until(lambda: "SNAPSHOT" in lines.getvalue() and "QUEUED" in bars.getvalue(), 20, "both watchers open")
        report_results(job)
        job.complete()
        wait_until(lambda: len(codes) == 2, 20, "both watchers end")
        self.assertEqual(codes, [0, 0])
        text = lines.getvalue()
        prefix = rf"\d\d:\d\d:\d\d  qa eval \({job.id}\)  "
        self.assertRegex(text, prefix + r"ITEM  ✔ q1  0\.42s  accuracy=1\n")
        self.assertRegex(text, prefix + r"ITEM  ✖ q2 failed: wrong answer  1\.3s  accuracy=0\n")
        self.assertRegex(text, prefix + r"LOG   WARNING  grader: q2 took 1\.3 s\n")
        screen = Screen(91)
        screen.feed(bars.getvalue())
        shown = screen.lines()
        self.assertEqual(screen.wrapped, 0)
        for expected in ["qa eval  ✔ q1  0.42s  accuracy=1", "qa eval  ✖ q2 failed: wrong answer  1.3s  accuracy=0",
                         "qa eval  WARNING  grader: q2 took 1.3 s"]:
            self.assertIn(expected, shown)
        self.assertRegex(shown[shown.index("qa eval  WARNING  grader: q2 took 1.3 s") + 1], r"^qa eval .*COMPLETED$",
                         "the job's bar stays under the printed lines")

    def test_watch_says_what_each_step_did(self) -> None:
        client = runwatch.Client(server.url, mint_token(inst=fresh_tenant()))
        self.addCleanup(client.close)
        job = client.create_job("receipts", kind="PIPELINE")
        lines, bars = io.StringIO(), io.StringIO()
        codes: list = []
        threading.Thread(target=lambda: codes.append(watch_lines(client, [job.id], file=lines)), daemon=True).start()
        threading.Thread(target=lambda: codes.append(watch_bars(client, [job.id], file=bars, width=100)),
                         daemon=True).start()
        wait_until(lambda: "SNAPSHOT" in lines.getvalue() and "QUEUED" in bars.getvalue(), 20, "both watchers open")
        with job.step("load"):
            pass
        with self.assertRaises(ValueError):
            with job.step("ocr", total=10) as step:
                step.update(completed=4)
                raise ValueError("bad page 5")
        job.fail("ocr failed")
        wait_until(lambda: len(codes) == 2, 20, "both watchers end")
        text = lines.getvalue()
        self.assertRegex(text, r"  STAGE +0/\?  .*  step load RUNNING  RUNNING\n")
        self.assertRegex(text, r"  STAGE +0/\?  .*  step load COMPLETED in \d+s  RUNNING\n")
        self.assertRegex(text, r"  STAGE +0/\?  .*  step ocr FAILED 4/10 in \d+s  RUNNING  - ValueError: bad page 5\n")
        screen = Screen(101)
        screen.feed(bars.getvalue())
        self.assertIn(f"receipts ({job.id}) step ocr FAILED: ValueError: bad page 5", screen.lines())

    def test_the_cli_watch_items_logs_flags(self) -> None:
        token = mint_token(inst=fresh_tenant())
        client = runwatch.Client(server.url, token)
        self.addCleanup(client.close)
        job = client.create_job("qa eval", kind="EVALUATION", total=2)
        proc = subprocess.Popen([PYTHON, "-m", "runwatch", "--url", server.url, "--token", token, "watch", "--items",
                                 "--logs", job.id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=python_env(PYTHONIOENCODING="utf-8"), encoding="utf-8")
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        assert proc.stdout is not None
        first = proc.stdout.readline()         # a pipe: one line per event, the SNAPSHOT first
        self.assertIn("SNAPSHOT", first)
        report_results(job)
        job.complete()
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(f"qa eval ({job.id})  ITEM  ✖ q2 failed: wrong answer  1.3s  accuracy=0", out)
        self.assertIn(f"qa eval ({job.id})  ITEM  ✔ q1  0.42s  accuracy=1", out)
        self.assertIn(f"qa eval ({job.id})  LOG   WARNING  grader: q2 took 1.3 s", out)
        self.assertRegex(out, r"✔  qa eval  COMPLETED  1/2  1 failed")


if __name__ == "__main__":
    unittest.main()
