import contextlib
import io
import json
import os
import tempfile
import threading
import time
import unittest
from pathlib import Path

import support  # noqa: F401  (puts src/ on sys.path)

from montage_ai import worker
from montage_ai.cli import main


class SpoolTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name)
        self.spool = worker.Spool(self.root / "spool").ensure()
        self.log = []

    def tearDown(self):
        self._tmp.cleanup()

    def drop(self, name, job):
        # Atomically, as a real producer must: a running worker may poll the
        # inbox at any moment and must never see half a job.
        path = self.spool.inbox / name
        tmp = self.spool.inbox / f".{name}.tmp"
        tmp.write_text(job if isinstance(job, str) else json.dumps(job))
        os.replace(tmp, path)
        return path

    def test_plans_jobs_in_every_format(self):
        self.drop("a.json", {"clips": [10, 12]})
        self.drop("b.json", {"style": "calm", "clips": [{"name": "x.mov", "duration": 20}, 15], "format": "edl"})
        self.drop("c.json", {"clips": [30], "format": "json", "fps": 30, "max_duration": 10})
        planned, failed = worker.process_once(self.spool, "dynamic", self.log.append)
        self.assertEqual((planned, failed), (3, 0))
        self.assertIn("style dynamic", (self.spool.outbox / "a.txt").read_text())
        self.assertIn("FROM CLIP NAME: x.mov", (self.spool.outbox / "b.edl").read_text())
        data = json.loads((self.spool.outbox / "c.json").read_text())
        self.assertEqual(data["fps"], 30)
        self.assertLessEqual(data["duration_frames"], 300)
        self.assertEqual(sorted(p.name for p in self.spool.done.iterdir()), ["a.json", "b.json", "c.json"])
        self.assertEqual(list(self.spool.inbox.iterdir()), [])
        self.assertEqual(list(self.spool.work.iterdir()), [])
        self.assertEqual(self.log, ["planned a.json -> a.txt", "planned b.json -> b.edl", "planned c.json -> c.json"])

    def test_bad_jobs_are_set_aside_with_the_reason(self):
        bad = {
            "syntax.json": "{not json",
            "style.json": {"style": "noir", "clips": [5]},
            "clips.json": {"clips": []},
            "key.json": {"clips": [5], "colour": "red"},
            "fps.json": {"clips": [5], "fps": 29.97},
            "duration.json": {"clips": ["long"]},
        }
        for name, job in bad.items():
            self.drop(name, job)
        self.drop("good.json", {"clips": [8, 9]})
        planned, failed = worker.process_once(self.spool, "dynamic", self.log.append)
        self.assertEqual((planned, failed), (1, len(bad)))
        for name in bad:
            stem = name[: -len(".json")]
            self.assertTrue((self.spool.failed / name).exists(), name)
            self.assertTrue((self.spool.failed / f"{stem}.error").read_text().strip(), name)
        self.assertIn("unknown style 'noir'", (self.spool.failed / "style.error").read_text())
        self.assertIn("colour", (self.spool.failed / "key.error").read_text())

    def test_ignores_other_files(self):
        (self.spool.inbox / "notes.txt").write_text("not a job")
        self.assertEqual(worker.process_once(self.spool, "dynamic", self.log.append), (0, 0))
        self.assertTrue((self.spool.inbox / "notes.txt").exists())

    def test_run_stops_when_asked(self):
        stop = threading.Event()
        heartbeat = self.root / "hb"
        thread = threading.Thread(
            target=worker.run,
            kwargs=dict(spool=self.spool, default_style="calm", heartbeat=heartbeat,
                        interval=0.05, stop=stop, log=self.log.append),
        )
        thread.start()
        try:
            self.drop("late.json", {"clips": [12, 12]})
            deadline = time.monotonic() + 60
            while not (self.spool.outbox / "late.txt").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            thread.join(60)
        self.assertFalse(thread.is_alive())
        self.assertIn("style calm", (self.spool.outbox / "late.txt").read_text())
        self.assertTrue(worker.is_healthy(heartbeat, max_age=60)[0])
        self.assertEqual(self.log[-1], "montage-ai worker: stopped")

    def test_cli_worker_once(self):
        self.drop("one.json", {"clips": [6, 7]})
        self.drop("bad.json", {"clips": "none"})
        hb = self.root / "hb"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(["worker", "--once", "--spool", str(self.spool.root), "--heartbeat", str(hb), "--style", "dynamic"])
        self.assertEqual(status, 1)  # one job failed
        self.assertTrue((self.spool.outbox / "one.txt").exists())
        self.assertTrue(hb.exists())
        self.assertIn("failed bad.json: 'clips' must be", out.getvalue())
        self.assertIn("planned one.json -> one.txt", out.getvalue())


class HealthTest(unittest.TestCase):
    def test_heartbeat_age(self):
        with tempfile.TemporaryDirectory() as tmp:
            hb = Path(tmp) / "hb"
            self.assertEqual(worker.is_healthy(hb, 30)[0], False)
            worker.beat(hb, now=1000.0)
            self.assertEqual(worker.is_healthy(hb, 30, now=1010.0), (True, "last heartbeat 10s ago"))
            ok, detail = worker.is_healthy(hb, 30, now=1100.0)
            self.assertFalse(ok)
            self.assertIn("100s ago", detail)
            hb.write_text("garbage")
            self.assertFalse(worker.is_healthy(hb, 30)[0])

    def test_healthcheck_command(self):
        with tempfile.TemporaryDirectory() as tmp:
            hb = Path(tmp) / "hb"
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                self.assertEqual(main(["healthcheck", "--heartbeat", str(hb)]), 1)
                worker.beat(hb)
                self.assertEqual(main(["healthcheck", "--heartbeat", str(hb), "--max-age", "30"]), 0)
            self.assertIn("unhealthy: no heartbeat", err.getvalue())
            self.assertIn("healthy: last heartbeat", out.getvalue())


if __name__ == "__main__":
    unittest.main()
