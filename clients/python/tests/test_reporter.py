"""The background reporter's promises, against a scripted transport (no server): it honours
RateLimited.retry_after, keeps a bounded buffer while the server is away, and never raises into the loop."""
from __future__ import annotations

import threading
import time
import unittest
from typing import Any, Dict, List, Optional

from runwatch.errors import RateLimited, ServiceUnavailable
from runwatch.reporter import Reporter

from support import LogCapture


class ScriptedTransport:
    """Answers like the server; ``fail_with`` makes calls raise until it is set back to None."""

    url = "http://scripted/graphql"

    def __init__(self) -> None:
        self.calls: List[tuple] = []
        #: variables of the calls that succeeded
        self.delivered: List[Dict[str, Any]] = []
        self.fail_with: Optional[BaseException] = None
        self.fail_times = 0
        self.lock = threading.Lock()

    def execute(self, query: str, variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        with self.lock:
            self.calls.append((time.monotonic(), query, variables))
            if self.fail_with is not None and self.fail_times != 0:
                self.fail_times -= 1
                raise self.fail_with
            self.delivered.append(variables)
        if "reportProgress" in query:
            return {"reportProgress": {"completed": variables["input"].get("completed", 0)}}
        return {"publishTrainingEvents": len(variables.get("events", []))}


class ReporterPromises(unittest.TestCase):
    def test_rate_limited_waits_retry_after_then_sends_the_newest_count(self) -> None:
        transport = ScriptedTransport()
        transport.fail_with = RateLimited("too many mutations", retry_after=0.4)
        transport.fail_times = 1
        reporter = Reporter(transport, min_interval=0.01, max_backoff=0.05)  # type: ignore[arg-type]
        slot = reporter.slot("j_1")
        with LogCapture() as logs:
            reporter.advance(slot, 5, 0)
            self.assertTrue(reporter.flush(10))
        first, second = transport.calls[0][0], transport.calls[1][0]
        self.assertGreaterEqual(second - first, 0.4, "waited retry_after seconds")
        self.assertEqual(transport.calls[-1][2]["input"]["completed"], 5)
        self.assertEqual(len(logs.warnings()), 1)
        reporter.close(1)

    def test_flush_waits_for_a_report_in_flight(self) -> None:
        # close(), context exit and the interpreter-exit flush return only once the server has the count.
        transport = ScriptedTransport()
        in_flight = threading.Event()
        release = threading.Event()
        plain_execute = transport.execute

        def slow_execute(query: str, variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
            in_flight.set()
            self.assertTrue(release.wait(10), "the test releases the request")
            return plain_execute(query, variables)

        transport.execute = slow_execute  # type: ignore[method-assign]
        reporter = Reporter(transport, min_interval=0.01)  # type: ignore[arg-type]
        slot = reporter.slot("j_1")
        reporter.advance(slot, 7, 0)
        self.assertTrue(in_flight.wait(10), "the report was taken and sent")
        self.assertFalse(reporter.flush(0.2), "nothing queued, but the report is still in flight")
        release.set()
        self.assertTrue(reporter.flush(10))
        self.assertEqual(transport.delivered[-1]["input"]["completed"], 7)
        reporter.close(1)

    def test_training_events_are_bounded_while_the_server_is_away_and_sent_in_order_after(self) -> None:
        transport = ScriptedTransport()
        transport.fail_with = ServiceUnavailable("redis down")
        transport.fail_times = -1  # until told otherwise
        reporter = Reporter(transport, min_interval=0.01, max_backoff=0.05, max_events=100)  # type: ignore[arg-type]
        slot = reporter.slot("run_1")
        with LogCapture() as logs:
            reporter.add_event(slot, {"progress": {"globalStep": 0}})
            deadline = time.monotonic() + 10
            while not logs.warnings():  # the first send failed
                self.assertLess(time.monotonic(), deadline, "a warning about the outage")
                time.sleep(0.01)
            started = time.perf_counter()
            for step in range(1, 1001):
                reporter.add_event(slot, {"progress": {"globalStep": step}})
                with reporter._cond:  # the thread may hold a failed batch for a moment: never more than the bound
                    self.assertLessEqual(len(slot.events), 100)
            self.assertLess(time.perf_counter() - started, 1.0, "queuing never waits for the network")
            with transport.lock:
                transport.fail_with = None
            self.assertTrue(reporter.flush(10))
        sent = [e["progress"]["globalStep"] for v in transport.delivered for e in v["events"]]
        self.assertEqual(sent[-100:], list(range(901, 1001)), "the newest 100, in order")
        self.assertEqual(sent, sorted(sent), "in order")
        self.assertLessEqual(len(sent), 200, "at most the bound plus one batch that was on its way")
        self.assertEqual(slot.dropped_events, 1001 - len(sent), "every event is either sent or counted as dropped")
        warnings = logs.warnings()
        self.assertEqual(len([w for w in warnings if "cannot send reports" in w]), 1, warnings)
        self.assertEqual(len([w for w in warnings if "dropping the oldest" in w]), 1, warnings)
        reporter.close(1)


if __name__ == "__main__":
    unittest.main()
