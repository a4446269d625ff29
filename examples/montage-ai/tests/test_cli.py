import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import support

from montage_ai import __version__
from montage_ai.cli import main


def run_main(*argv, env=None):
    """Run ``main(argv)``; returns (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(argv))
            except SystemExit as exit_:
                status = exit_.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return status, out.getvalue(), err.getvalue()


class RunCommandTest(unittest.TestCase):
    def test_prints_a_plan(self):
        status, out, _ = run_main("run", "--style", "dynamic")
        self.assertEqual(status, 0)
        self.assertIn("montage-ai plan: style dynamic", out)
        self.assertIn("skipped clip04", out)

    def test_clips_and_formats(self):
        status, out, _ = run_main("run", "--style", "calm", "--clips", "a.mov=20", "14", "--format", "json")
        self.assertEqual(status, 0)
        data = json.loads(out)
        self.assertEqual([c["name"] for c in data["clips"]], ["a.mov", "clip02"])
        status, out, _ = run_main("run", "--style", "hitchcock", "--format", "edl", "--fps", "24")
        self.assertEqual(status, 0)
        self.assertTrue(out.startswith("TITLE: montage-ai hitchcock\n"))

    def test_style_defaults_to_cut_style_env(self):
        status, out, _ = run_main("run", env={"CUT_STYLE": "calm"})
        self.assertEqual(status, 0)
        self.assertIn("style calm", out)

    def test_unknown_style_is_a_usage_error(self):
        status, out, err = run_main("run", "--style", "wes-anderson")
        self.assertEqual(status, 2)
        self.assertEqual(out, "")
        self.assertIn("unknown style 'wes-anderson'", err)
        self.assertIn("calm, dynamic, hitchcock", err)

    def test_unknown_style_suggests(self):
        status, _, err = run_main("run", "--style", "hitchcok")
        self.assertEqual(status, 2)
        self.assertIn("did you mean 'hitchcock'?", err)

    def test_bad_clip_is_a_usage_error(self):
        status, _, err = run_main("run", "--clips", "12", "soon")
        self.assertEqual(status, 2)
        self.assertIn("invalid clip 'soon'", err)

    def test_bad_max_duration(self):
        status, _, err = run_main("run", "--max-duration", "-5")
        self.assertEqual(status, 2)
        self.assertIn("--max-duration", err)

    def test_output_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "plans" / "cut.edl"
            status, out, err = run_main("run", "--format", "edl", "-o", str(target))
            self.assertEqual(status, 0)
            self.assertEqual(out, "")
            self.assertIn("wrote", err)
            self.assertTrue(target.read_text().startswith("TITLE:"))


class OtherCommandsTest(unittest.TestCase):
    def test_styles_lists_every_style(self):
        status, out, _ = run_main("styles")
        self.assertEqual(status, 0)
        for name in ("calm", "dynamic", "hitchcock"):
            self.assertIn(name, out)

    def test_version(self):
        status, out, _ = run_main("--version")
        self.assertEqual(status, 0)
        self.assertEqual(out.strip(), f"montage-ai {__version__}")

    def test_no_command_is_a_usage_error(self):
        status, _, err = run_main()
        self.assertEqual(status, 2)
        self.assertIn("usage:", err)


class ModuleEntryPointTest(unittest.TestCase):
    """``python -m montage_ai`` is the same command, exit codes included."""

    def run_module(self, *argv):
        env = dict(os.environ, PYTHONPATH=str(support.SRC))
        env.pop("CUT_STYLE", None)
        return subprocess.run(
            [sys.executable, "-m", "montage_ai", *argv],
            capture_output=True, text=True, env=env, timeout=60,
        )

    def test_run(self):
        done = self.run_module("run", "--style", "dynamic", "--clips", "6", "8")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("style dynamic, 2 clips", done.stdout)

    def test_unknown_style_exits_2(self):
        done = self.run_module("run", "--style", "nope")
        self.assertEqual(done.returncode, 2)
        self.assertIn("unknown style 'nope'", done.stderr)


if __name__ == "__main__":
    unittest.main()
