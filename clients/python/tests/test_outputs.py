"""What a job produces, from Python: item results, gauges, steps, log lines and metric history against a
real server; and the logging handler against a server that is down (it never blocks or raises)."""
from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import time
import unittest

import runwatch
from runwatch.job import _bind
from runwatch.outputs import LogHandler
from runwatch.transport import StreamHandle

from support import PYTHON, Events, LogCapture, free_port, fresh_tenant, mint_token, python_env, shared_server, wait_until, tenant_client

server = None


def setUpModule() -> None:
    global server
    server = shared_server()


new_client = tenant_client


JOB = """query($id: ID!) { batchJob(id: $id) {
  completed failed successRate metrics { name count mean min max last }
  steps { name status durationSeconds error } } }"""
ITEMS = "query($id: ID!) { itemResults(jobId: $id, first: 100) { nodes { seq itemId ok error data } } }"


class Outputs(unittest.TestCase):
    def test_report_items_metric_and_series_reach_the_server_exactly(self) -> None:
        token = mint_token(inst=fresh_tenant())
        client = runwatch.Client(server.url, token)
        job = client.create_job("qa eval", kind="EVALUATION", total=300)
        items = [{"item_id": f"q{i}", "ok": i % 3 != 0, "latency_seconds": i / 100,
                  "metrics": {"accuracy": (i % 7) / 6}, "error": None if i % 3 else f"wrong {i}",
                  "data": {"answer": i} if i % 50 == 0 else None} for i in range(1, 301)]
        for start in range(0, 300, 7):  # many small calls: coalesced into few requests
            job.report_items(items[start:start + 7])
        with LogCapture() as logs:
            job.metric("tokens_per_second", 120.5)
            job.metric("tokens_per_second", 130.5)  # the newest value of one report wins
            self.assertTrue(job.close(10))
        self.assertEqual(logs.warnings(), [])
        job.metric("tokens_per_second", 90.0)
        job.complete()
        state = client.execute(JOB, {"id": job.id})["batchJob"]
        ok = sum(1 for i in items if i["ok"])
        self.assertEqual((state["completed"], state["failed"]), (ok, 300 - ok))
        self.assertEqual(state["successRate"], ok / 300)
        metrics = {m["name"]: m for m in state["metrics"]}
        acc = [i["metrics"]["accuracy"] for i in items]
        self.assertEqual(metrics["accuracy"]["count"], 300)
        self.assertAlmostEqual(metrics["accuracy"]["mean"], sum(acc) / 300, places=12)
        self.assertEqual((metrics["accuracy"]["min"], metrics["accuracy"]["max"]), (min(acc), max(acc)))
        self.assertEqual(metrics["tokens_per_second"]["last"], 90.0)
        self.assertEqual(metrics["tokens_per_second"]["max"], 130.5)
        kept = client.execute(ITEMS, {"id": job.id})["itemResults"]["nodes"]
        self.assertEqual([n["itemId"] for n in kept[:2]], ["q300", "q299"])
        self.assertEqual(next(n for n in kept if n["itemId"] == "q250")["data"], {"answer": 250})
        series = client.metric_series(job.id, "accuracy", max_points=20)
        self.assertLessEqual(len(series), 20)
        self.assertEqual((series[0].step, series[-1].step), (1, 300))
        self.assertEqual(min(p.value for p in series), min(acc))
        gauge = asyncio.run(runwatch.AsyncClient(server.url, token).metric_series(job.id, "tokens_per_second"))
        self.assertEqual([p.value for p in gauge][-1], 90.0)
        with self.assertRaises(runwatch.BadUserInput):
            job.metric("loss", float("nan"))
        with self.assertRaises(runwatch.BadUserInput):
            job.report_items([{"item_id": "x", "data": {"blob": "x" * 5000}}])

    def test_a_step_around_a_raising_block_is_failed_with_its_message_and_parallel_steps_show(self) -> None:
        client = new_client()
        job = client.create_job("receipts", kind="PIPELINE")
        with job.step("download"):
            time.sleep(0.05)
        with self.assertRaises(ValueError):
            with job.step("ocr") as step:
                raise ValueError("page 3 is unreadable")
        self.assertEqual(step.error, "ValueError: page 3 is unreadable")
        a, b = job.step("tables").start(), job.step("figures").start()
        b.finish()
        self.assertTrue(job.close(10))
        steps = {s["name"]: s for s in client.execute(JOB, {"id": job.id})["batchJob"]["steps"]}
        self.assertEqual(steps["download"]["status"], "COMPLETED")
        self.assertGreaterEqual(steps["download"]["durationSeconds"], 0.0)
        self.assertEqual(steps["ocr"]["status"], "FAILED")
        self.assertEqual(steps["ocr"]["error"], "ValueError: page 3 is unreadable")
        self.assertEqual((steps["tables"]["status"], steps["figures"]["status"]), ("RUNNING", "COMPLETED"))
        a.finish()
        job.complete()

    def test_log_and_the_logging_handler_send_lines_to_the_job(self) -> None:
        client = new_client()
        job = client.create_job("embed")
        watch = "subscription($id: ID!) { runProgress(runId: $id, logs: true) { type cursor logs { level message source } } }"
        handle = StreamHandle()
        events = Events(client._resumable(watch, lambda _cursor: {"id": job.id}, "runProgress", None, handle=handle), handle)
        events.wait_for(lambda items: items, "the SNAPSHOT")
        logger = logging.getLogger("test_outputs.worker")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        handler = LogHandler(job)
        logger.addHandler(handler)
        try:
            logger.info("loaded %d documents", 42)
            logger.warning("slow batch")
            job.log("done with shard 1", level="debug", source="me")
        finally:
            logger.removeHandler(handler)
        job.complete()
        events = events.wait_done("the job's stream")
        lines = [l for e in events if e["type"] == "LOG" for l in e["logs"]]
        self.assertEqual(lines, [
            {"level": "INFO", "message": "loaded 42 documents", "source": "test_outputs.worker"},
            {"level": "WARNING", "message": "slow batch", "source": "test_outputs.worker"},
            {"level": "DEBUG", "message": "done with shard 1", "source": "me"},
        ])


class RunSendsStderr(unittest.TestCase):
    def test_python_m_runwatch_run_sends_the_childs_stderr_lines_as_logs(self) -> None:
        token = mint_token(inst=fresh_tenant())
        client = runwatch.Client(server.url, token)
        # The child copies its stdin to stderr, so the test writes its lines once it watches the job.
        child = "import sys\nfor line in sys.stdin:\n    sys.stderr.write(line); sys.stderr.flush()\n"
        proc = subprocess.Popen([PYTHON, "-m", "runwatch", "run", "--name", "etl", "--", PYTHON, "-c", child],
                                env=python_env(RUNWATCH_URL=server.url, RUNWATCH_TOKEN=token),
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        first = proc.stderr.readline().decode()
        job_id = re.search(r"runwatch: job (\S+)", first).group(1)
        watch = "subscription($id: ID!) { runProgress(runId: $id, logs: true) { type cursor logs { level message source } } }"
        handle = StreamHandle()
        events = Events(client._resumable(watch, lambda _cursor: {"id": job_id}, "runProgress", None, handle=handle), handle)
        self.addCleanup(handle.close)
        events.wait_for(lambda items: items, "the SNAPSHOT")
        proc.stdin.write(b"WARNING: disk is slow\nloaded 3 files\nTraceback (most recent call last):\n")
        proc.stdin.close()
        self.assertEqual(proc.wait(30), 0)
        proc.stderr.close()
        lines = [l for e in events.wait_done("the job's stream") if e["type"] == "LOG" for l in e["logs"]]
        self.assertEqual(lines, [
            {"level": "WARNING", "message": "WARNING: disk is slow", "source": "stderr"},
            {"level": "INFO", "message": "loaded 3 files", "source": "stderr"},
            {"level": "ERROR", "message": "Traceback (most recent call last):", "source": "stderr"},
        ])


class ServerDown(unittest.TestCase):
    def test_the_logging_handler_never_blocks_or_raises_when_the_server_is_down(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/graphql"  # nothing listens here
        client = runwatch.Client(url, mint_token(), flush_timeout=0.2)
        job = _bind(client, {"id": "j_offline", "name": "offline", "status": "RUNNING"})
        logger = logging.getLogger("test_outputs.offline")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = LogHandler(job)
        logger.addHandler(handler)
        try:
            with LogCapture():
                started = time.perf_counter()
                for i in range(20_000):
                    logger.info("line %d", i)
                elapsed = time.perf_counter() - started
                with job.step("still works"):
                    pass
                self.assertLess(elapsed, 5.0, f"20,000 records took {elapsed:.2f} s")
                self.assertFalse(client.flush(0.3))  # still retrying in the background, nothing raised
        finally:
            logger.removeHandler(handler)
            client.close(0.1)


if __name__ == "__main__":
    unittest.main()
