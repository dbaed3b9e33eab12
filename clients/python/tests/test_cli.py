"""``python -m runwatch run|watch`` as people run them: real child processes, a real server."""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import unittest
from typing import List

import runwatch
from runwatch.transport import StreamHandle

from support import PYTHON, Events, fresh_tenant, mint_token, python_env, shared_server, wait_until

FAKE_TRAIN = os.path.join(os.path.dirname(__file__), "fixtures", "fake_train.py")
server = None


def setUpModule() -> None:
    global server
    server = shared_server()


class Cli:
    """A ``python -m runwatch …`` child; stdout and stderr are collected as bytes by two threads."""

    def __init__(self, args: List[str], token: str) -> None:
        env = python_env(RUNWATCH_URL=server.url, RUNWATCH_TOKEN=token)
        self.proc = subprocess.Popen([PYTHON, "-m", "runwatch", *args], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream, into: bytearray) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            into.extend(chunk)

    def send(self, line: str) -> None:
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def job_id(self) -> str:
        match = wait_until(lambda: re.search(rb"runwatch: job (\S+)", bytes(self.err)), 30,
                           f"the job id on stderr (stderr so far: {bytes(self.err)[-300:]!r})")
        return match.group(1).decode()

    def exit(self, timeout: float = 30) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the CLI did not exit; stderr: {bytes(self.err)[-600:]!r}")
        for t in self._threads:
            t.join(5)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


class Run(unittest.TestCase):
    def test_a_training_script_becomes_a_completed_training_job_with_its_losses(self) -> None:
        token = mint_token(inst=fresh_tenant())
        client = runwatch.Client(server.url, token)
        cli = Cli(["run", "--kind", "TRAINING", "--name", "fine-tune", "--", PYTHON, FAKE_TRAIN], token)
        self.addCleanup(lambda: cli.proc.poll() is None and cli.proc.kill())
        run_id = cli.job_id()
        wait_until(lambda: b"loading model" in cli.out, 30, "the trainer's first line")
        handle = StreamHandle()
        events = Events(client.training_events(run_id, _handle=handle), handle)
        self.addCleanup(handle.close)
        events.wait_for(lambda items: any(isinstance(e, runwatch.TrainingStatusChange) for e in items), "the fresh start")
        for cmd, loss in [("step", 2.5), ("step", 1.75), ("hf", 1.7), ("step", 1.25), ("step", 0.5)]:
            cli.send(cmd)
            events.wait_for(lambda items, l=loss: any(isinstance(e, runwatch.TrainingProgress) and e.loss == l for e in items),
                            f"a TrainingProgress with loss {loss}")
        cli.send("eval")
        events.wait_for(lambda items: any(isinstance(e, runwatch.ValidationResult) for e in items), "the validation result")
        cli.send("end")
        self.assertEqual(cli.exit(), 0)
        items = events.wait_done("the training stream")
        progress = [e for e in items if isinstance(e, runwatch.TrainingProgress) and not e.snapshot]
        self.assertEqual([e.loss for e in progress if e.loss is not None], [2.5, 1.75, 1.7, 1.25, 0.5])
        hf = next(e for e in progress if e.loss == 1.7)
        self.assertEqual((hf.global_step, hf.max_step, hf.learning_rate, hf.epoch), (2, 4, 5e-05, 0))
        validation = next(e for e in items if isinstance(e, runwatch.ValidationResult))
        self.assertEqual((validation.validation_loss, validation.metrics), (0.9, {"accuracy": 0.75}))
        self.assertEqual(items[-1].status, runwatch.TrainingStatus.COMPLETED)
        job = client.get_job(run_id)
        self.assertEqual((job.name, job.kind, job.status, job.completed, job.total),
                         ("fine-tune", runwatch.JobKind.TRAINING, runwatch.JobStatus.COMPLETED, 4, 4))
        # the child's output passed through untouched
        self.assertEqual(bytes(cli.out).decode().splitlines()[0], "loading model")
        self.assertIn("{'loss': 1.7, 'learning_rate': 5e-05, 'epoch': 0.5}", bytes(cli.out).decode())
        self.assertTrue(bytes(cli.out).decode().endswith("saved model\n"))
        self.assertIn("\rtrain: 100%|########| 4/4 [00:04<00:01,  2.00it/s, loss=0.5]", bytes(cli.err).decode())

    def test_a_failing_child_fails_the_job_and_passes_its_exit_code_on(self) -> None:
        token = mint_token(inst=fresh_tenant())
        cli = Cli(["run", "--kind", "TRAINING", "--", PYTHON, FAKE_TRAIN, "--fail"], token)
        self.addCleanup(lambda: cli.proc.poll() is None and cli.proc.kill())
        run_id = cli.job_id()
        cli.send("step")
        cli.send("end")
        self.assertEqual(cli.exit(), 3)
        job = runwatch.Client(server.url, token).get_job(run_id)
        self.assertEqual(job.status, runwatch.JobStatus.FAILED)
        self.assertRegex(job.error_message, r"^command exited with code 3: ")
        self.assertIn("RuntimeError: CUDA out of memory", job.error_message)

    def test_a_batch_command_reports_counts_and_completes(self) -> None:
        token = mint_token(inst=fresh_tenant())
        script = "import sys\nfor i in range(1, 11): print(f'[{i}/10] resized', flush=True)\n"
        cli = Cli(["run", "--name", "resize", "--", PYTHON, "-c", script], token)
        self.assertEqual(cli.exit(), 0)
        [job] = list(runwatch.Client(server.url, token).jobs())
        self.assertEqual((job.name, job.kind, job.status, job.completed, job.total),
                         ("resize", runwatch.JobKind.BATCH, runwatch.JobStatus.COMPLETED, 10, 10))
        self.assertEqual(bytes(cli.out).decode(), "".join(f"[{i}/10] resized\n" for i in range(1, 11)))


    def test_sigterm_reaches_the_child_and_the_job_fails_with_the_signal(self) -> None:
        token = mint_token(inst=fresh_tenant())
        script = "import time\nprint('working', flush=True)\ntime.sleep(30)\n"
        cli = Cli(["run", "--", PYTHON, "-c", script], token)
        self.addCleanup(lambda: cli.proc.poll() is None and cli.proc.kill())
        run_id = cli.job_id()
        wait_until(lambda: b"working" in cli.out, 30, "the child's first line")  # so the child is running
        cli.proc.terminate()  # the wrapper this test started
        self.assertEqual(cli.exit(), 128 + 15)
        job = runwatch.Client(server.url, token).get_job(run_id)
        self.assertEqual(job.status, runwatch.JobStatus.FAILED)
        self.assertRegex(job.error_message, r"^command was killed by SIGTERM: ")


class Watch(unittest.TestCase):
    def test_watch_json_prints_every_event_until_the_job_finishes(self) -> None:
        token = mint_token(inst=fresh_tenant())
        client = runwatch.Client(server.url, token)
        job = client.create_job("watched", total=3)
        cli = Cli(["watch", "--json", job.id], token)
        self.addCleanup(lambda: cli.proc.poll() is None and cli.proc.kill())
        wait_until(lambda: b'"SNAPSHOT"' in cli.out, 30, "the SNAPSHOT line")
        job.advance(3)
        job.complete()
        self.assertEqual(cli.exit(), 0)
        events = [json.loads(line) for line in bytes(cli.out).decode().splitlines()]
        self.assertEqual((events[0]["type"], events[-1]["type"]), ("SNAPSHOT", "COMPLETED"))
        self.assertEqual(events[-1]["job"]["completed"], 3)
        self.assertEqual(events[-1]["__typename"], "ProgressEvent")

    def test_watch_exits_1_when_a_job_failed(self) -> None:
        token = mint_token(inst=fresh_tenant())
        client = runwatch.Client(server.url, token)
        job = client.create_job("will fail")
        job.fail("disk full")
        cli = Cli(["watch", job.id], token)
        self.assertEqual(cli.exit(), 1)
        self.assertIn("FAILED", bytes(cli.out).decode())
        self.assertIn("error: disk full", bytes(cli.out).decode())


class ActivityCommand(unittest.TestCase):
    def test_activity_prints_the_resource_table_as_jobs_start(self) -> None:
        token = mint_token(inst=fresh_tenant())
        cli = Cli(["activity"], token)
        self.addCleanup(lambda: cli.proc.poll() is None and cli.proc.terminate())
        wait_until(lambda: b"0 active" in cli.out, 30, "the first (empty) table")
        job = runwatch.Client(server.url, token).create_job("gpu job", total=10)
        job.update(completed=1, resources={"containers": 2, "cpu_cores": 8, "memory_gb": 30, "gpus": 4})
        job.close()
        wait_until(lambda: b"1 active \xc2\xb7 2 containers \xc2\xb7 8 CPU cores \xc2\xb7 30 GB \xc2\xb7 4 GPUs" in cli.out, 30,
                   f"the job's resources in the table (have {bytes(cli.out)[-400:]!r})")
        self.assertIn(job.id.encode(), bytes(cli.out))
        cli.proc.terminate()  # the process this test started
        cli.exit()


if __name__ == "__main__":
    unittest.main()
