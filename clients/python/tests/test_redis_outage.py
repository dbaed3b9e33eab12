"""On a Redis-backed server: reporting and watching, and a loop that keeps reporting while Redis is down
(the server answers SERVICE_UNAVAILABLE) finishes at full speed, logs one warning, and catches up."""
from __future__ import annotations

import time
import unittest

import runwatch
from runwatch.transport import StreamHandle

from support import Events, LogCapture, Redis, Server, fresh_tenant, mint_token

redis = None
server = None


def setUpModule() -> None:
    global redis, server
    redis = Redis(persistent=True).start()  # AOF, so a restarted Redis still has the job
    try:
        server = Server(redis_url=redis.url).start()
    except BaseException:
        redis.cleanup()
        raise


def tearDownModule() -> None:
    if server is not None:
        server.stop()
    if redis is not None:
        redis.cleanup()


class OnRedis(unittest.TestCase):
    def test_report_and_watch(self) -> None:
        client = runwatch.Client(server.url, mint_token(inst=fresh_tenant()))
        job = client.create_job("on redis", total=1000)
        handle = StreamHandle()
        events = Events(client.watch(job.id, _handle=handle), handle)
        events.wait_for(lambda items: items, "the SNAPSHOT")
        for _ in range(1000):
            job.advance()
        job.complete()
        items = events.wait_done("the stream")
        self.assertEqual((items[0].type.value, items[-1].type.value), ("SNAPSHOT", "COMPLETED"))
        self.assertEqual(items[-1].job.completed, 1000)

    def test_a_loop_reporting_through_an_outage_runs_at_full_speed_warns_once_and_catches_up(self) -> None:
        client = runwatch.Client(server.url, mint_token(inst=fresh_tenant()), max_backoff=0.5, flush_timeout=30)
        job = client.create_job("through the outage", total=5000)
        job.advance(10)
        self.assertTrue(job.close(), "the first report went through")
        with LogCapture() as logs:
            redis.stop()
            job.advance()  # the first report of the outage fails: wait for its warning
            deadline = time.monotonic() + 20
            while not logs.warnings():
                self.assertLess(time.monotonic(), deadline, "a warning about the failed report")
                time.sleep(0.01)
            started = time.perf_counter()
            for _ in range(4989):
                job.advance()
            loop_seconds = time.perf_counter() - started
            self.assertEqual(len(logs.warnings()), 1, logs.warnings())
            self.assertIn("SERVICE_UNAVAILABLE", logs.warnings()[0])
            redis.start()
            self.assertTrue(job.complete(), "completed once Redis was back")
        self.assertEqual(len(logs.warnings()), 1, f"a single warning for the outage: {logs.warnings()}")
        self.assertLess(loop_seconds, 2.0, f"4,989 advance() calls took {loop_seconds:.2f} s during the outage")
        seen = client.get_job(job.id)
        self.assertEqual((seen.status, seen.completed), (runwatch.JobStatus.COMPLETED, 5000))


if __name__ == "__main__":
    unittest.main()
