"""The ``python -m runwatch run`` line parser against the fixture the Node suite reads too
(test/fixtures/progress-samples.json), so both runners turn the same output into the same progress."""
from __future__ import annotations

import json
import os
import unittest

from runwatch.progress import LineSplitter, ProgressTracker, parse_progress_line

from support import REPO

with open(os.path.join(REPO, "test", "fixtures", "progress-samples.json"), encoding="utf-8") as f:
    SAMPLES = json.load(f)


class ParseProgressLine(unittest.TestCase):
    def test_fixture_lines_parse_like_the_node_runner(self) -> None:
        self.assertGreater(len(SAMPLES["parse"]), 20)
        for case in SAMPLES["parse"]:
            with self.subTest(line=case["line"]):
                self.assertEqual(parse_progress_line(case["line"]), case["expected"])

    def test_lines_that_say_nothing_are_ignored(self) -> None:
        for line in SAMPLES["ignored"]:
            with self.subTest(line=line):
                self.assertIsNone(parse_progress_line(line))


class Tracker(unittest.TestCase):
    def test_fixture_sequences(self) -> None:
        for case in SAMPLES["trackers"]:
            with self.subTest(case["name"]):
                tracker = ProgressTracker(case["fixedTotal"])
                for step in case["steps"]:
                    self.assertEqual(tracker.update(step["input"]), step["expected"])


class Splitter(unittest.TestCase):
    def test_splits_on_newlines_and_the_carriage_returns_bars_redraw_with(self) -> None:
        s = LineSplitter()
        self.assertEqual(s.push("a\rb"), ["a"])
        self.assertEqual(s.push("c\r\nd\n"), ["bc", "d"])
        self.assertEqual(s.push("tail"), [])
        self.assertEqual(s.partial, "tail")
        self.assertEqual(s.end(), ["tail"])


if __name__ == "__main__":
    unittest.main()
