"""Commands for any job from Python: ``job.on_command`` answers a CANCEL sent to a BATCH job (which
cancels it), a CUSTOM command can be refused, ``job.commands()`` / ``AsyncClient.job_commands`` yield
each command once, and bad input raises the contract's errors."""
from __future__ import annotations

import asyncio
import threading
import unittest

import runwatch
from support import fresh_tenant, mint_token, shared_server, wait_until

server = None


def setUpModule() -> None:
    global server
    server = shared_server()


def tenant_clients():
    """A worker (jobs:write) and an operator (jobs:control) of one fresh tenant."""
    inst = fresh_tenant()
    worker = runwatch.Client(server.url, mint_token(inst=inst, scope="jobs:read jobs:write"))
    operator = runwatch.Client(server.url, mint_token(inst=inst, scope="jobs:read jobs:control"))
    return worker, operator


class JobCommands(unittest.TestCase):
    def test_on_command_stops_a_batch_job_on_cancel_and_refuses_an_unknown_custom_command(self) -> None:
        worker, operator = tenant_clients()
        job = worker.create_job("embed corpus", total=100)
        job.advance(5)
        job.close()
        stop = threading.Event()
        received = []

        def on_command(command: runwatch.JobCommand) -> bool:
            received.append(command)
            if command.command == runwatch.JobCommandKind.CANCEL:
                stop.set()  # the work loop stops here; answering afterwards cancels the job
                return True
            return False  # no such CUSTOM command here

        listener = job.on_command(on_command)
        self.addCleanup(listener.stop)
        self.assertTrue(listener.ready.wait(20), "the command stream opened")
        custom = operator.send_job_command(job.id, "CUSTOM", name="reindex", args={"shard": 3})
        cancel = operator.send_job_command(job.id, runwatch.JobCommandKind.CANCEL, args={"reason": "wrong model"})
        self.assertEqual((cancel.state, cancel.job_id), (runwatch.JobCommandState.PENDING, job.id))
        self.assertTrue(stop.wait(20), "the CANCEL reached on_command")
        self.assertEqual([(c.id, c.command, c.name) for c in received],
                         [(custom.id, runwatch.JobCommandKind.CUSTOM, "reindex"), (cancel.id, runwatch.JobCommandKind.CANCEL, None)])
        self.assertEqual(received[1].args, {"reason": "wrong model"})
        wait_until(lambda: listener.handled == 2, 20, "both commands answered")
        states = {c.id: c.state for c in operator.recent_job_commands(job.id)}
        self.assertEqual(states, {custom.id: runwatch.JobCommandState.REJECTED, cancel.id: runwatch.JobCommandState.ACKNOWLEDGED})
        self.assertEqual(operator.get_job(job.id).status, runwatch.JobStatus.CANCELLED)

    def test_commands_iterator_and_async_twin_yield_each_command_once(self) -> None:
        worker, operator = tenant_clients()
        job = worker.create_job("evaluate", kind="EVALUATION")
        pause = operator.send_job_command(job.id, "PAUSE", ttl_seconds=30)
        stream = job.commands()
        first = next(stream)
        stream.close()
        self.assertEqual((first.id, first.command), (pause.id, runwatch.JobCommandKind.PAUSE))

        async def main():
            client = runwatch.AsyncClient(server.url, worker._transport._token)
            try:
                commands = client.job_commands(job.id)
                got = await asyncio.wait_for(commands.__anext__(), 20)
                await commands.aclose()
                answered = await client.acknowledge_job_command(got.id, accepted=False, message="not now")
                return got, answered
            finally:
                await client.aclose()

        got, answered = asyncio.run(main())
        self.assertEqual(got.id, pause.id, "the unanswered PAUSE comes again on a new subscription")
        self.assertEqual((answered.state, answered.message), (runwatch.JobCommandState.REJECTED, "not now"))

    def test_bad_input_raises_the_contract_errors(self) -> None:
        worker, operator = tenant_clients()
        job = worker.create_job("refusals")
        with self.assertRaises(runwatch.BadUserInput):
            operator.send_job_command(job.id, "CUSTOM")
        with self.assertRaises(runwatch.Forbidden):
            worker.send_job_command(job.id, "CANCEL")
        stranger = runwatch.Client(server.url, mint_token(inst=fresh_tenant()))
        with self.assertRaises(runwatch.NotFound):
            stranger.send_job_command(job.id, "CANCEL")
        self.assertEqual(operator.recent_job_commands(job.id), [])


if __name__ == "__main__":
    unittest.main()
