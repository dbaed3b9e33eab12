"""``from runwatch.tqdm import tqdm``: the drop-in draws its bar and reports a job (needs python3-tqdm)."""
from __future__ import annotations

import io
import subprocess
import unittest

import runwatch
from runwatch.transport import StreamHandle

from support import PYTHON, Events, fresh_tenant, mint_token, python_env, require, shared_server

server = None


def setUpModule() -> None:
    global server
    try:
        import tqdm  # noqa: F401
    except ImportError:
        require(False, "tqdm is missing for these tests: apt-get install -y python3-tqdm "
                       "(scripts/test-python.sh picks an interpreter that has it)")
    server = shared_server()


class DropIn(unittest.TestCase):
    def setUp(self) -> None:
        from runwatch.tqdm import tqdm
        self.tqdm = tqdm
        self.client = runwatch.Client(server.url, mint_token(inst=fresh_tenant()))
        self.bar_output = io.StringIO()

    def test_iterating_reports_total_stage_and_final_count_and_still_draws_the_bar(self) -> None:
        items = []
        bar = self.tqdm(range(50), desc="embed docs", client=self.client, file=self.bar_output, mininterval=0)
        for i in bar:
            items.append(i)
            if i == 20:
                bar.set_description("second half")
        self.assertEqual(items, list(range(50)))
        job = self.client.get_job(bar.job.id)
        self.assertEqual((job.name, job.total, job.completed, job.status, job.stage),
                         ("embed docs", 50, 50, runwatch.JobStatus.COMPLETED, "second half"))
        self.assertIn("50/50", self.bar_output.getvalue(), "the local bar was drawn as usual")

    def test_manual_updates_and_an_exception_in_the_with_block(self) -> None:
        with self.tqdm(total=10, desc="manual", client=self.client, file=self.bar_output) as bar:
            bar.update(3)
            bar.update(7)
        self.assertEqual((self.client.get_job(bar.job.id).completed, self.client.get_job(bar.job.id).status),
                         (10, runwatch.JobStatus.COMPLETED))
        with self.assertRaises(KeyError):
            with self.tqdm(total=5, desc="breaks", client=self.client, file=self.bar_output) as broken:
                broken.update(2)
                raise KeyError("missing column")
        job = self.client.get_job(broken.job.id)
        self.assertEqual((job.status, job.completed), (runwatch.JobStatus.FAILED, 2))
        self.assertEqual(job.error_message, "KeyError: 'missing column'")

    def test_set_postfix_loss_on_a_training_run_moves_the_loss_chart(self) -> None:
        bar = self.tqdm(total=4, desc="fine-tune", kind="TRAINING", client=self.client, file=self.bar_output)
        handle = StreamHandle()
        events = Events(self.client.training_events(bar.job.id, _handle=handle), handle)
        self.addCleanup(handle.close)
        events.wait_for(lambda e: any(isinstance(x, runwatch.TrainingStatusChange) for x in e), "the fresh start")
        for loss in [2.0, 1.5, 1.0, 0.75]:
            bar.update(1)
            bar.set_postfix(loss=loss, lr=1e-4)
            events.wait_for(lambda e, l=loss: any(isinstance(x, runwatch.TrainingProgress) and x.loss == l for x in e),
                            f"loss {loss} on trainingEvents")
        bar.close()
        items = events.wait_done("the run's stream")
        progress = [x for x in items if isinstance(x, runwatch.TrainingProgress) and x.loss is not None and not x.snapshot]
        self.assertEqual([(p.global_step, p.loss) for p in progress], [(1, 2.0), (2, 1.5), (3, 1.0), (4, 0.75)])
        self.assertEqual(progress[0].learning_rate, 1e-4)
        job = self.client.get_job(bar.job.id)
        self.assertEqual((job.kind, job.status, job.completed, job.total),
                         (runwatch.JobKind.TRAINING, runwatch.JobStatus.COMPLETED, 4, 4))

    def test_without_tqdm_the_import_error_says_what_to_install(self) -> None:
        code = "import sys; sys.modules['tqdm'] = None; sys.modules['tqdm.auto'] = None\nimport runwatch.tqdm"
        result = subprocess.run([PYTHON, "-c", code], env=python_env(), capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImportError: runwatch.tqdm needs tqdm: pip install tqdm (or apt-get install python3-tqdm)", result.stderr)
        plain = subprocess.run([PYTHON, "-c", "import sys; sys.modules['tqdm'] = None\nimport runwatch; print(runwatch.Client)"],
                               env=python_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(plain.returncode, 0, plain.stderr)


if __name__ == "__main__":
    unittest.main()
