"""Job groups, tags, the live job list and stalls from Python, against a real server: a child created with
``parent=``, ``tags=`` and ``heartbeat_seconds=1`` appears in ``job_updates`` filtered by its tag, goes
stalled when it stops reporting (``watch`` shows it, in lines and in bars) and recovers on its next report;
``job_updates`` resumes after a dropped connection with no gap and no duplicate, sync and async."""
from __future__ import annotations

import asyncio
import io
import signal
import subprocess
import threading
import unittest

import runwatch
from runwatch.display import watch_lines
from runwatch.live import bar_line, watch_bars
from runwatch.transport import StreamHandle

from support import PYTHON, Events, Proxy, fresh_tenant, mint_token, python_env, shared_server, wait_until, tenant_client
from terminal import Screen

server = None


def setUpModule() -> None:
    global server
    server = shared_server()


new_client = tenant_client


def of(updates, job_id):
    return [u for u in updates if u.job.id == job_id]


class GroupsTagsStalls(unittest.TestCase):
    def test_a_tagged_child_with_a_heartbeat_appears_in_job_updates_stalls_in_watch_and_recovers(self) -> None:
        client = new_client()
        self.addCleanup(client.close)
        parent = client.create_job("eval suite", kind="EVALUATION", tags=["nightly"])
        handle = StreamHandle()
        updates = Events(client.job_updates(tags=["nightly"], _handle=handle), handle)
        self.addCleanup(updates.close)
        updates.wait_for(lambda us: of(us, parent.id), "the parent's SNAPSHOT")
        other = client.create_job("untagged", total=1)
        child = client.create_job("shard 1", total=10, parent=parent, tags=["nightly", "gpu"], heartbeat_seconds=1)
        self.assertEqual((child.parent_id, child.tags, child.heartbeat_seconds, child.stalled),
                         (parent.id, ["nightly", "gpu"], 1, False))
        created = of(updates.wait_for(lambda us: of(us, child.id), "the child's CREATED"), child.id)[0]
        self.assertEqual((created.type, created.job.parent_id, created.job.tags),
                         (runwatch.JobUpdateType.CREATED, parent.id, ["nightly", "gpu"]))

        lines, bars = io.StringIO(), io.StringIO()
        done: list = []
        threading.Thread(target=lambda: done.append(watch_lines(client, [child.id], file=lines)), daemon=True).start()
        threading.Thread(target=lambda: done.append(watch_bars(client, [child.id], file=bars, width=100)),
                         daemon=True).start()
        wait_until(lambda: "SNAPSHOT" in lines.getvalue() and "QUEUED" in bars.getvalue(), 20, "both watchers open")

        child.advance(3)                      # RUNNING; then silence for longer than its 1 s heartbeat
        child.close()
        wait_until(lambda: "  STALLED  " in lines.getvalue(), 20, "a STALLED line in watch's output")
        stalled = client.get_job(child.id)
        self.assertTrue(stalled.stalled)
        self.assertRegex(bar_line(stalled, 100), r"3/10 .* STALLED$", "the job's bar reads STALLED")
        wait_until(lambda: "shard 1 (%s) STALLED: no report for 1 s" % child.id in bars.getvalue(), 20,
                   "the STALLED notice above the bars")
        parent_now = client.get_job(parent.id)
        self.assertEqual((parent_now.child_counts.running, parent_now.child_counts.total, parent_now.completed),
                         (1, 1, 3), "the parent aggregates its child")

        child.advance(2)                      # the next report recovers it
        child.close()
        wait_until(lambda: "  RECOVERED  " in lines.getvalue(), 20, "a RECOVERED line")
        self.assertFalse(client.get_job(child.id).stalled)
        child.advance(1)                      # (the server's job list carries no STALLED/RECOVERED update of its own)
        child.close()
        updates.wait_for(lambda us: any(u.job.completed == 6 and not u.job.stalled for u in of(us, child.id)),
                         "the recovered child's progress in job_updates")
        child.complete()
        wait_until(lambda: len(done) == 2, 20, "both watchers end with the job")
        self.assertEqual(done, [0, 0])

        stall_line = next(line for line in lines.getvalue().splitlines() if "  STALLED  " in line)
        self.assertRegex(stall_line, rf"^\d\d:\d\d:\d\d  shard 1 \({child.id}\)  STALLED +3/10  30%  .*  STALLED  "
                                     r"- no report for 1 s$")
        self.assertRegex(lines.getvalue(), rf"shard 1 \({child.id}\)  RECOVERED +5/10  50%  .*  RUNNING\n")
        screen = Screen(101)
        screen.feed(bars.getvalue())
        shown = screen.lines()
        self.assertIn(f"shard 1 ({child.id}) STALLED: no report for 1 s", shown)
        self.assertIn(f"shard 1 ({child.id}) RECOVERED: reporting again", shown)

        final = updates.wait_for(lambda us: any(u.type == runwatch.JobUpdateType.STATUS
                                                and u.job.status == runwatch.JobStatus.COMPLETED
                                                for u in of(us, child.id)), "the child's COMPLETED")
        self.assertEqual(of(final, other.id), [], "an untagged job never shows in the tagged list")
        cursors = [u.cursor for u in final if u.type != runwatch.JobUpdateType.SNAPSHOT]
        self.assertEqual(len(cursors), len(set(cursors)), "no update twice")
        self.assertEqual([j.id for j in client.jobs(tags=["gpu"])], [child.id])
        self.assertEqual([j.id for j in client.jobs(parent=parent)], [child.id])

    def test_job_updates_resume_after_a_dropped_connection_with_no_gap_and_no_duplicate(self) -> None:
        inst = fresh_tenant()
        proxy = Proxy(server.port)
        self.addCleanup(proxy.close)
        watcher, worker = new_client(proxy.url, inst), new_client(server.url, inst)
        self.addCleanup(worker.close)
        first = worker.create_job("before", tags=["resume"])
        handle = StreamHandle()
        updates = Events(watcher.job_updates(tags="resume", _handle=handle), handle)
        self.addCleanup(updates.close)
        updates.wait_for(lambda us: of(us, first.id), "the first job's SNAPSHOT")
        live = worker.create_job("live", tags=["resume"])
        updates.wait_for(lambda us: of(us, live.id), "a live update (a cursor to resume from)")
        proxy.refusing = True
        self.assertGreaterEqual(proxy.drop_all(), 1)
        missed = [worker.create_job(f"while away {i}", tags=["resume"]) for i in range(3)]
        proxy.refusing = False
        after = worker.create_job("after", tags=["resume"])
        got = updates.wait_for(lambda us: of(us, after.id), "the job created after the reconnect")
        for job in [live] + missed + [after]:
            self.assertEqual([u.type for u in of(got, job.id)], [runwatch.JobUpdateType.CREATED],
                             "replayed once from the cursor, not a fresh snapshot")
        self.assertEqual([u.type for u in of(got, first.id)], [runwatch.JobUpdateType.SNAPSHOT])

    def test_a_drop_before_the_first_live_update_takes_the_snapshot_again_so_nothing_is_lost(self) -> None:
        inst = fresh_tenant()
        proxy = Proxy(server.port)
        self.addCleanup(proxy.close)
        watcher, worker = new_client(proxy.url, inst), new_client(server.url, inst)
        self.addCleanup(worker.close)
        listed = [worker.create_job(f"listed {i}", tags=["again"]) for i in range(3)]
        handle = StreamHandle()
        updates = Events(watcher.job_updates(tags=["again"], _handle=handle), handle)
        self.addCleanup(updates.close)
        updates.wait_for(lambda us: len(us) >= 1, "the first SNAPSHOT")
        proxy.refusing = True
        self.assertGreaterEqual(proxy.drop_all(), 1)
        missed = worker.create_job("while away", tags=["again"])
        proxy.refusing = False
        got = updates.wait_for(lambda us: all(of(us, j.id) for j in listed + [missed]),
                               "every job listed, the one created while away too")
        self.assertEqual({u.type for u in of(got, missed.id)}, {runwatch.JobUpdateType.SNAPSHOT})

    def test_async_job_updates_and_create_job_with_a_parent(self) -> None:
        token = mint_token(inst=fresh_tenant())

        async def main():
            async with runwatch.AsyncClient(server.url, token) as client:
                parent = await client.create_job("sweep", tags=["sweep-7"])
                stream = client.job_updates(tags=["sweep-7"], parent=parent)
                try:
                    child = await client.create_job("lr=3e-4", parent=parent, tags=["sweep-7"], heartbeat_seconds=0)
                    update = await asyncio.wait_for(stream.__anext__(), 20)
                    listed = [j.id async for j in client.jobs(parent=parent.id)]
                    return parent, child, update, listed
                finally:
                    await stream.aclose()

        parent, child, update, listed = asyncio.run(main())
        self.assertEqual((update.job.id, update.job.parent_id, update.job.heartbeat_seconds),
                         (child.id, parent.id, 0))
        self.assertIn(update.type, (runwatch.JobUpdateType.CREATED, runwatch.JobUpdateType.SNAPSHOT))
        self.assertEqual(listed, [child.id])

    def test_the_cli_lists_jobs_by_tag_and_follows_the_live_list(self) -> None:
        token = mint_token(inst=fresh_tenant())
        client = runwatch.Client(server.url, token)
        self.addCleanup(client.close)
        parent = client.create_job("nightly suite", tags=["nightly"])
        child = client.create_job("shard 1", total=4, parent=parent, tags=["nightly", "gpu"])
        client.create_job("ad hoc")
        cli = [PYTHON, "-m", "runwatch", "--url", server.url, "--token", token, "jobs"]
        listed = subprocess.run(cli + ["--tag", "nightly"], capture_output=True, text=True, env=python_env(),
                                timeout=30, encoding="utf-8")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        rows = listed.stdout.splitlines()
        self.assertRegex(rows[0], r"^JOB +NAME +STATUS +DONE +%  TAGS$")
        self.assertRegex(rows[1], rf"^{child.id} +shard 1 +QUEUED +0/4 +0%  nightly,gpu$")
        self.assertRegex(rows[2], rf"^{parent.id} +nightly suite +QUEUED +0/4 +0%  nightly$")
        self.assertEqual(len(rows), 3, "the untagged job is not listed")

        follow = subprocess.Popen(cli + ["--tag", "gpu", "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=python_env(), encoding="utf-8")
        self.addCleanup(lambda: follow.poll() is None and follow.kill())
        assert follow.stdout is not None
        printed = Events(iter(follow.stdout.readline, ""))
        first = printed.wait_for(lambda ls: ls, "the SNAPSHOT line")[0]
        self.assertRegex(first, rf"^\d\d:\d\d:\d\d  SNAPSHOT  shard 1 \({child.id}\)  QUEUED  0/4  0%  rate -  parent "
                                rf"{parent.id}  tags nightly,gpu$")
        child.advance(4)
        child.complete()
        done = printed.wait_for(lambda ls: any("→COMPLETED" in line for line in ls), "the COMPLETED line")
        self.assertRegex(next(line for line in done if "→COMPLETED" in line), rf"  STATUS    shard 1 \({child.id}\)  RUNNING→COMPLETED  4/4  100%  ")
        follow.send_signal(signal.SIGINT)
        _, err = follow.communicate(timeout=20)
        self.assertEqual(follow.returncode, 130, err)

    def test_bad_group_input_is_refused_with_the_contract_errors(self) -> None:
        client = new_client()
        self.addCleanup(client.close)
        with self.assertRaises(runwatch.NotFound):
            client.create_job("orphan", parent="j_nope")
        stranger = new_client().create_job("theirs")
        with self.assertRaises(runwatch.NotFound):
            client.create_job("adopted", parent=stranger.id)
        with self.assertRaises(runwatch.BadUserInput):
            client.create_job("too many tags", tags=[f"t{i}" for i in range(21)])
        with self.assertRaises(runwatch.BadUserInput):
            client.create_job("negative", heartbeat_seconds=-1)
        self.assertEqual(list(client.jobs()), [], "nothing was created")


if __name__ == "__main__":
    unittest.main()
