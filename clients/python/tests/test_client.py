"""The Python client against a real runwatch server (in memory), over HTTP and SSE as users run it."""
from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import unittest

import runwatch
from runwatch.transport import StreamHandle

from support import PYTHON, Events, LogCapture, Proxy, fresh_tenant, mint_token, python_env, shared_server, tenant_client

server = None


def setUpModule() -> None:
    global server
    server = shared_server()


new_client = tenant_client


class Reporting(unittest.TestCase):
    def test_watch_sees_snapshot_progress_completed_in_order_and_20000_advances_take_few_requests(self) -> None:
        client = new_client()
        job = client.create_job("embed corpus", total=20_000)
        handle = StreamHandle()
        events = Events(client.watch(job.id, _handle=handle), handle)
        events.wait_for(lambda items: items, "the SNAPSHOT")
        before = client.requests
        job.advance()
        events.wait_for(lambda items: any(e.type.value == "STARTED" for e in items), "STARTED")
        started = time.perf_counter()
        for _ in range(19_999):
            job.advance()
        loop_seconds = time.perf_counter() - started
        self.assertTrue(job.complete())
        sent = client.requests - before
        items = events.wait_done("the job's stream")
        types = [e.type.value for e in items]
        self.assertEqual(types[:2], ["SNAPSHOT", "STARTED"])
        self.assertEqual(types[-1], "COMPLETED")
        self.assertEqual(set(types[2:-1]), {"PROGRESS"}, types)
        self.assertEqual(types.count("COMPLETED"), 1)
        self.assertEqual(items[-1].job.completed, 20_000)
        self.assertEqual(items[-1].job.status, runwatch.JobStatus.COMPLETED)
        completed = [e.job.completed for e in items]
        self.assertEqual(completed, sorted(completed), "counts never go down")
        cursors = [e.cursor for e in items[1:]]
        self.assertEqual(len(cursors), len(set(cursors)), "no event twice")
        self.assertLess(sent, 50, f"20,000 advance() calls sent {sent} requests")
        self.assertLess(loop_seconds, 2.0, f"19,999 advance() calls took {loop_seconds:.2f} s")
        self.assertEqual(client.get_job(job.id).completed, 20_000)

    def test_update_sets_total_stage_message_resources_and_fail_counts(self) -> None:
        client = new_client()
        job = client.create_job("pipeline", kind="PIPELINE")
        job.update(total=10, stage="parse", message="reading", resources={"containers": 2, "cpu_cores": 4, "memory_gb": 16, "gpus": 1})
        job.advance(3, failed=1)
        job.close()
        seen = client.get_job(job.id)
        self.assertEqual((seen.total, seen.completed, seen.failed, seen.stage, seen.message),
                         (10, 3, 1, "parse", "reading"))
        self.assertEqual(seen.resources, runwatch.Resources(containers=2, cpu_cores=4, memory_gb=16, gpus=1))
        self.assertEqual(seen.kind, runwatch.JobKind.PIPELINE)

    def test_context_manager_completes_or_fails_with_the_exception_text(self) -> None:
        client = new_client()
        with client.job("fine", total=2) as ok:
            ok.advance(2)
        self.assertEqual(client.get_job(ok.id).status, runwatch.JobStatus.COMPLETED)
        with self.assertRaises(ValueError):
            with client.job("doomed", total=5) as bad:
                bad.advance(2)
                raise ValueError("row 3 is malformed")
        seen = client.get_job(bad.id)
        self.assertEqual(seen.status, runwatch.JobStatus.FAILED)
        self.assertEqual(seen.error_message, "ValueError: row 3 is malformed")
        self.assertEqual(seen.completed, 2)

    def test_track_reports_each_item_and_completes(self) -> None:
        client = new_client()
        out = [x * 2 for x in runwatch.track(range(7), name="doubling", client=client)]
        self.assertEqual(out, [0, 2, 4, 6, 8, 10, 12])
        [job] = list(client.jobs())
        self.assertEqual((job.name, job.status, job.completed, job.total), ("doubling", runwatch.JobStatus.COMPLETED, 7, 7))

    def test_jobs_walks_every_page_and_filters(self) -> None:
        client = new_client()
        ids = [client.create_job(f"job {i}", kind="EVALUATION" if i % 2 else "BATCH").id for i in range(5)]
        client.get_job(ids[0]).cancel("not needed")
        everything = list(client.jobs(first=2))
        self.assertEqual([j.id for j in everything], list(reversed(ids)), "newest first, across 3 pages")
        self.assertEqual({j.id for j in client.jobs(kind="EVALUATION")}, {ids[1], ids[3]})
        self.assertEqual([j.id for j in client.jobs(status=["CANCELLED", "COMPLETED"])], [ids[0]])
        self.assertEqual(len(list(client.jobs(first=1, limit=3))), 3)


    def test_a_loop_reporting_while_the_server_is_unreachable_runs_at_full_speed_and_catches_up(self) -> None:
        direct = new_client()
        proxy = Proxy(server.port)
        self.addCleanup(proxy.close)
        client = runwatch.Client(proxy.url, direct._transport._token, max_backoff=0.3, flush_timeout=20)
        job = client.create_job("server goes away", total=3000)
        with LogCapture() as logs:
            proxy.refusing = True
            proxy.drop_all()
            job.advance()
            deadline = time.monotonic() + 20
            while not logs.warnings():  # the first report after the server went away failed
                self.assertLess(time.monotonic(), deadline, "a warning about the failed report")
                time.sleep(0.01)
            started = time.perf_counter()
            for _ in range(2999):
                job.advance()
            loop_seconds = time.perf_counter() - started
            self.assertEqual(direct.get_job(job.id).completed, 0, "nothing arrived while it was down")
            proxy.refusing = False
            self.assertTrue(job.complete())
        self.assertLess(loop_seconds, 1.0, f"2,999 advance() calls took {loop_seconds:.2f} s while the server was down")
        self.assertEqual(len(logs.warnings()), 1, logs.warnings())
        self.assertIn(proxy.url, logs.warnings()[0], "the warning names the URL")
        seen = direct.get_job(job.id)
        self.assertEqual((seen.status, seen.completed), (runwatch.JobStatus.COMPLETED, 3000))

    def test_reports_pending_at_interpreter_exit_are_flushed(self) -> None:
        token = mint_token(inst=fresh_tenant())
        script = ("import runwatch, sys\n"
                  "job = runwatch.Client(sys.argv[1], sys.argv[2]).create_job('left open', total=5000)\n"
                  "print(job.id, flush=True)\n"
                  "for _ in range(1234): job.advance()\n")  # exits without complete() or close()
        result = subprocess.run([PYTHON, "-c", script, server.url, token], env=python_env(), capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        job = runwatch.Client(server.url, token).get_job(result.stdout.strip())
        self.assertEqual((job.completed, job.status), (1234, runwatch.JobStatus.RUNNING))

    def test_watch_bars_draws_one_bar_per_job_until_they_finish(self) -> None:
        import io
        from runwatch.display import watch_bars
        client = new_client()
        a = client.create_job("first", total=4)
        b = client.create_job("second", total=2)
        out = io.StringIO()
        result: list = []
        t = threading.Thread(target=lambda: result.append(watch_bars(client, [a.id, b.id], file=out)), daemon=True)
        t.start()
        a.advance(4)
        a.complete()
        b.advance(2)
        b.fail("out of disk")
        t.join(30)
        self.assertFalse(t.is_alive(), "watch_bars returned once both jobs finished")
        self.assertEqual(result, [1], "1: not every job COMPLETED")
        text = out.getvalue()
        self.assertIn("4/4", text)
        self.assertIn("COMPLETED", text)
        self.assertIn("FAILED", text)


class Waiting(unittest.TestCase):
    def test_wait_returns_the_finished_job_and_calls_on_progress(self) -> None:
        client = new_client()
        job = client.create_job("w", total=3)
        seen = []

        def work() -> None:
            for _ in range(3):
                job.advance()
            job.complete("done")

        def on_progress(event: runwatch.ProgressEvent) -> None:
            seen.append(event.type.value)
            if len(seen) == 1:
                threading.Thread(target=work).start()  # start once the stream is open

        final = client.wait(job.id, timeout=20, on_progress=on_progress)
        self.assertEqual((final.status, final.completed), (runwatch.JobStatus.COMPLETED, 3))
        self.assertEqual(seen[0], "SNAPSHOT")
        self.assertEqual(seen[-1], "COMPLETED")

    def test_wait_timeout_raises_with_the_last_state(self) -> None:
        client = new_client()
        job = client.create_job("slow", total=10)
        job.advance(4)
        job.close()
        started = time.monotonic()
        with self.assertRaises(runwatch.WaitTimeout) as caught:
            client.wait(job.id, timeout=2)
        self.assertLess(time.monotonic() - started, 8)
        self.assertIsNotNone(caught.exception.job, "the SNAPSHOT arrived within 2 s")
        self.assertEqual(caught.exception.job.completed, 4)
        self.assertIn("did not finish within 2 s (last seen RUNNING 4/10)", str(caught.exception))
        self.assertIsInstance(caught.exception, TimeoutError)

    def test_watch_survives_dropped_connections_and_yields_every_event_once(self) -> None:
        client_direct = new_client()
        proxy = Proxy(server.port)
        self.addCleanup(proxy.close)
        watcher = runwatch.Client(proxy.url, client_direct._transport._token, max_backoff=0.3)
        job = client_direct.create_job("flaky network", total=6)
        handle = StreamHandle()
        with LogCapture() as logs:
            events = Events(watcher.watch(job.id, _handle=handle), handle)
            events.wait_for(lambda items: items, "the SNAPSHOT")
            for stage in ["one", "two", "three", "four", "five", "six"]:
                job.update(stage=stage)
                job.advance()
                job.close()
                events.wait_for(lambda items, s=stage: any(e.job.stage == s for e in items), f"stage {stage}")
                self.assertGreaterEqual(proxy.drop_all(), 1, "a stream connection to cut")
            job.complete()
            items = events.wait_done("the watched stream")
        self.assertEqual(len(logs.warnings()), 1, f"one warning for the dropped stream: {logs.warnings()}")
        self.assertGreaterEqual(proxy.accepted, 7, "it reconnected after every cut")
        non_snapshot = [e for e in items if e.type.value != "SNAPSHOT"]
        cursors = [e.cursor for e in non_snapshot]
        self.assertEqual(len(cursors), len(set(cursors)), "no event twice")
        self.assertEqual([e.type.value for e in items if e.type.value == "SNAPSHOT"], ["SNAPSHOT"],
                         "resumed from the cursor, not a fresh snapshot")
        stages = [e.message for e in items if e.type.value == "STAGE"]
        self.assertEqual(stages, ["one", "two", "three", "four", "five", "six"], "every STAGE event, in order")
        self.assertEqual(items[-1].type.value, "COMPLETED")
        self.assertEqual(items[-1].job.completed, 6)


class Errors(unittest.TestCase):
    def test_bad_token_is_unauthenticated_and_never_shown(self) -> None:
        bad = "not-a-valid-token-" + "x" * 20
        client = runwatch.Client(server.url, bad)
        with self.assertRaises(runwatch.Unauthenticated) as caught:
            client.create_job("x")
        self.assertEqual(caught.exception.code, "UNAUTHENTICATED")
        self.assertNotIn(bad, str(caught.exception))
        self.assertNotIn(bad, repr(client))
        with self.assertRaises(runwatch.Unauthenticated):
            next(iter(client.watch("j_whatever")))

    def test_another_tenants_job_is_not_found(self) -> None:
        mine = new_client().create_job("private")
        other = new_client()
        with self.assertRaises(runwatch.NotFound):
            other.get_job(mine.id)
        with self.assertRaises(runwatch.NotFound) as caught:
            next(iter(other.watch(mine.id)))
        self.assertEqual(caught.exception.code, "NOT_FOUND")

    def test_bad_input_carries_the_servers_message(self) -> None:
        client = new_client()
        with self.assertRaises(runwatch.BadUserInput) as caught:
            client.create_job("")
        self.assertEqual(caught.exception.code, "BAD_USER_INPUT")
        self.assertTrue(caught.exception.message, "the server's message")
        self.assertIsInstance(caught.exception, ValueError)
        with self.assertRaises(runwatch.BadUserInput):
            client.send_training_command(client.create_job("t", kind="TRAINING").id, "PAUSE", ttl_seconds=0)
        with self.assertRaises(runwatch.BadUserInput):
            client.create_job("x").advance(-1)

    def test_finished_job_is_a_conflict_and_network_errors_name_the_url(self) -> None:
        client = new_client()
        job = client.create_job("done")
        job.complete()
        with self.assertRaises(runwatch.Conflict):
            client.cancel_job(job.id)
        offline = runwatch.Client("http://127.0.0.1:9/graphql", "secret-token-value", timeout=1)
        with self.assertRaises(ConnectionError) as caught:
            offline.get_job("j_x")
        self.assertIn("http://127.0.0.1:9/graphql", str(caught.exception))
        self.assertNotIn("secret-token-value", str(caught.exception))


class Async(unittest.TestCase):
    def test_async_watch_and_wait_under_asyncio_run(self) -> None:
        token = mint_token(inst=fresh_tenant())

        async def main() -> tuple:
            async with runwatch.AsyncClient(server.url, token) as client:
                job = await client.create_job("async", total=4)
                stream = client.watch(job.id)
                first = await stream.__anext__()
                types = [first.type.value]

                async def work() -> None:
                    for _ in range(4):
                        job.advance()
                    await client.complete(job)

                worker = asyncio.ensure_future(work())
                async for event in stream:
                    types.append(event.type.value)
                await worker
                progress = []
                job2 = await client.create_job("async wait", total=2)

                async def on_progress(event: runwatch.ProgressEvent) -> None:
                    progress.append(event.type.value)
                    if len(progress) == 1:
                        job2.advance(2)
                        await client.complete(job2)

                final = await client.wait(job2.id, timeout=20, on_progress=on_progress)
                with self.assertRaises(runwatch.WaitTimeout):
                    await client.wait((await client.create_job("never")).id, timeout=0.3)
                listed = [j.name async for j in client.jobs()]
                return types, final, progress, listed

        types, final, progress, listed = asyncio.run(main())
        self.assertEqual(types[0], "SNAPSHOT")
        self.assertEqual(types[-1], "COMPLETED")
        self.assertEqual((final.status, final.completed), (runwatch.JobStatus.COMPLETED, 2))
        self.assertEqual((progress[0], progress[-1]), ("SNAPSHOT", "COMPLETED"))
        self.assertEqual(listed, ["never", "async wait", "async"])

    def test_async_job_context_manager_fails_on_exception(self) -> None:
        token = mint_token(inst=fresh_tenant())

        async def main() -> runwatch.Job:
            client = runwatch.AsyncClient(server.url, token)
            try:
                async with client.job("async doomed") as job:
                    job.advance()
                    raise RuntimeError("GPU fell off")
            except RuntimeError:
                pass
            return await client.get_job(job.id)

        seen = asyncio.run(main())
        self.assertEqual((seen.status, seen.error_message), (runwatch.JobStatus.FAILED, "RuntimeError: GPU fell off"))


class Training(unittest.TestCase):
    def test_progress_log_validation_status_reach_training_events(self) -> None:
        client = new_client()
        run = client.create_training_run("fine-tune", max_steps=100)
        handle = StreamHandle()
        events = Events(client.training_events(run.id, _handle=handle), handle)
        events.wait_for(lambda items: any(isinstance(e, runwatch.TrainingStatusChange) for e in items),
                        "the fresh-start status")
        run.status("RUNNING")
        run.progress(step=10, epoch=0, loss=2.5, learning_rate=1e-4)
        run.log("warming up", level="warning")
        events.wait_for(lambda items: any(isinstance(e, runwatch.TrainingLog) for e in items), "the log line")
        run.progress(step=20, loss=1.25)
        run.validation(0.9, metrics={"accuracy": 0.8})
        run.sample(path="/tmp/sample-20.png", prompt="a cat")
        run.complete()
        items = events.wait_done("the training stream")
        live = [e for e in items if not e.snapshot]
        progress = [e for e in live if isinstance(e, runwatch.TrainingProgress)]
        self.assertEqual([(p.global_step, p.loss) for p in progress], [(10, 2.5), (20, 1.25)])
        self.assertEqual((progress[0].max_step, progress[0].learning_rate), (100, 1e-4))
        log_line = next(e for e in live if isinstance(e, runwatch.TrainingLog))
        self.assertEqual((log_line.level, log_line.message), (runwatch.LogLevel.WARNING, "warming up"))
        validation = next(e for e in live if isinstance(e, runwatch.ValidationResult))
        self.assertEqual((validation.validation_loss, validation.metrics, validation.step), (0.9, {"accuracy": 0.8}, 20))
        sample = next(e for e in live if isinstance(e, runwatch.SampleGenerated))
        self.assertEqual((sample.path, sample.prompt), ("/tmp/sample-20.png", "a cat"))
        statuses = [e.status.value for e in live if isinstance(e, runwatch.TrainingStatusChange)]
        self.assertEqual(statuses, ["RUNNING", "COMPLETED"])
        job = client.get_job(run.id)
        self.assertEqual((job.kind, job.status, job.completed, job.total),
                         (runwatch.JobKind.TRAINING, runwatch.JobStatus.COMPLETED, 20, 100))

    def test_auto_system_stats_publishes_machine_load(self) -> None:
        client = new_client()
        run = client.create_training_run("with stats")
        handle = StreamHandle()
        events = Events(client.training_events(run.id, types="SYSTEM_STATS", _handle=handle), handle)
        self.addCleanup(handle.close)
        sampler = run.auto_system_stats(interval=0.2)
        items = events.wait_for(lambda e: any(x.cpu_percent is not None for x in e), "SystemStats with a CPU percent")
        stats = next(x for x in items if x.cpu_percent is not None)
        self.assertIsInstance(stats, runwatch.SystemStats)
        self.assertGreater(stats.ram_total_gb, 0)
        self.assertTrue(0 <= stats.ram_used_gb <= stats.ram_total_gb)
        self.assertTrue(0 <= stats.cpu_percent <= 100)
        run.complete()
        self.assertTrue(sampler._stopped.is_set(), "the sampler stops with the run")

    def test_pause_command_reaches_on_command_and_is_acknowledged(self) -> None:
        trainer = new_client()
        run = trainer.create_training_run("steerable", max_steps=10)
        received = []
        got = threading.Event()

        def on_command(command: runwatch.TrainingCommand) -> bool:
            received.append(command)
            got.set()
            return command.command == runwatch.TrainingCommandKind.PAUSE

        listener = run.on_command(on_command)
        self.addCleanup(listener.stop)
        self.assertTrue(listener.ready.wait(20), "the command stream opened")
        operator = runwatch.Client(server.url, trainer._transport._token)
        sent = operator.send_training_command(run.id, "PAUSE", args={"reason": "inspect"}, ttl_seconds=60)
        self.assertEqual(sent.state, runwatch.TrainingCommandState.PENDING)
        self.assertTrue(got.wait(20), "on_command was called")
        self.assertEqual((received[0].id, received[0].command, received[0].args), (sent.id, runwatch.TrainingCommandKind.PAUSE, {"reason": "inspect"}))
        self.assertIsNotNone(received[0].expires_at)
        deadline = time.monotonic() + 20
        while operator.get_training_command(sent.id).state == runwatch.TrainingCommandState.PENDING:
            self.assertLess(time.monotonic(), deadline, "the PAUSE was answered")
            time.sleep(0.05)
        self.assertEqual(operator.get_training_command(sent.id).state, runwatch.TrainingCommandState.ACKNOWLEDGED)
        save = operator.send_training_command(run.id, "SAVE_CHECKPOINT")
        deadline = time.monotonic() + 20
        while operator.get_training_command(save.id).state == runwatch.TrainingCommandState.PENDING:
            self.assertLess(time.monotonic(), deadline, "the SAVE_CHECKPOINT was answered")
            time.sleep(0.05)
        self.assertEqual(operator.get_training_command(save.id).state, runwatch.TrainingCommandState.REJECTED)
        listener.stop()
        run.complete()


class Activity(unittest.TestCase):
    def test_activity_stream_and_context_mismatch(self) -> None:
        client = new_client()
        handle = StreamHandle()
        events = Events(client.activity("ENVIRONMENT", _handle=handle), handle)
        self.addCleanup(handle.close)
        events.wait_for(lambda items: any(isinstance(e, runwatch.ActivityUpdate) for e in items), "the first update")
        job = client.create_job("gpu job", total=10)
        job.update(completed=1, resources=runwatch.Resources(containers=1, cpu_cores=8, memory_gb=30, gpus=2))
        updates = events.wait_for(lambda items: any(isinstance(e, runwatch.ActivityUpdate) and e.totals.gpus == 2 for e in items),
                                  "an update with the job's GPUs")
        with_job = next(e for e in updates if isinstance(e, runwatch.ActivityUpdate) and e.totals.gpus == 2)
        self.assertEqual(with_job.active_jobs[0].job.id, job.id)
        self.assertEqual(with_job.active_jobs[0].resources.memory_gb, 30)
        now = client.get_activity()
        self.assertEqual(now.totals.jobs, 1)
        mismatch = list(client.activity(environment_id="not-mine"))
        self.assertEqual(len(mismatch), 1)
        self.assertIsInstance(mismatch[0], runwatch.ContextMismatch)


if __name__ == "__main__":
    unittest.main()
