import json
import unittest

import support  # noqa: F401  (puts src/ on sys.path)

from montage_ai.planner import Clip, plan_cuts
from montage_ai.render import render, render_edl, render_json, render_text
from montage_ai.styles import get_style
from montage_ai.timecode import check_fps, frames_within, parse_timecode, timecode


class TimecodeTest(unittest.TestCase):
    def test_format(self):
        self.assertEqual(timecode(0, 25), "00:00:00:00")
        self.assertEqual(timecode(24, 25), "00:00:00:24")
        self.assertEqual(timecode(25, 25), "00:00:01:00")
        self.assertEqual(timecode(3600 * 25 + 61 * 25 + 3, 25), "01:01:01:03")
        self.assertEqual(timecode(30 * 59 + 29, 30), "00:00:59:29")

    def test_round_trip(self):
        for fps in (24, 25, 30, 60):
            for frames in (0, 1, fps - 1, fps, 12345, 3600 * fps * 2 + 7):
                self.assertEqual(parse_timecode(timecode(frames, fps), fps), frames)

    def test_rejects_bad_values(self):
        with self.assertRaises(ValueError):
            timecode(-1, 25)
        for text in ("1:2:3", "00:00:00:25", "00:61:00:00", "aa:00:00:00"):
            with self.subTest(text=text), self.assertRaises(ValueError):
                parse_timecode(text, 25)
        for fps in (0, 23, 29.97, True, "25"):
            with self.subTest(fps=fps), self.assertRaises(ValueError):
                check_fps(fps)

    def test_frames_within_never_points_past_the_footage(self):
        self.assertEqual(frames_within(0.3, 7.5, 25), (8, 187))  # 7.5 s holds 187 whole frames
        self.assertEqual(frames_within(0.1, 1.0, 30), (3, 30))  # 0.1 * 30 is not quite 3


class RenderTest(unittest.TestCase):
    def setUp(self):
        clips = [Clip("beach.mov", 20.0), Clip("harbour.mov", 14.0), Clip("market.mov", 18.0)]
        self.calm = plan_cuts(clips, get_style("calm"))
        self.dynamic = plan_cuts(clips, get_style("dynamic"), max_duration=10)

    def test_text_lists_every_cut_and_the_total(self):
        text = render_text(self.dynamic)
        self.assertTrue(text.startswith("montage-ai plan: style dynamic, 3 clips, 25 fps\n"))
        body = [line for line in text.splitlines() if line.lstrip()[:1].isdigit()]
        self.assertEqual(len(body), len(self.dynamic.cuts))
        self.assertIn("beach.mov", body[0])
        self.assertIn(f"in {len(self.dynamic.cuts)} shots", text.splitlines()[-1])

    def test_text_shows_dissolves(self):
        self.assertIn("dissolve 1s", render_text(self.calm))

    def test_json_round_trips(self):
        data = json.loads(render_json(self.calm))
        self.assertEqual(data, json.loads(json.dumps(self.calm.to_dict())))
        self.assertEqual(len(data["cuts"]), len(self.calm.cuts))

    def test_edl_hard_cuts(self):
        lines = render_edl(self.dynamic).splitlines()
        self.assertEqual(lines[:3], ["TITLE: montage-ai dynamic", "FCM: NON-DROP FRAME", ""])
        events = [line for line in lines[3:] if not line.startswith("*")]
        self.assertEqual(len(events), len(self.dynamic.cuts))
        first = self.dynamic.cuts[0]
        self.assertEqual(
            events[0].split(),
            ["001", "R001", "V", "C", timecode(first.source_in, 25), timecode(first.source_out, 25),
             "01:00:00:00", timecode(3600 * 25 + first.record_out, 25)],
        )
        self.assertIn("* FROM CLIP NAME: beach.mov", lines)

    def test_edl_events_do_not_overlap_on_the_record_side(self):
        fps = self.calm.fps
        records = []
        for line in render_edl(self.calm).splitlines()[3:]:
            fields = line.split()
            if fields and fields[0].isdigit():
                records.append((parse_timecode(fields[-2], fps), parse_timecode(fields[-1], fps), fields[3]))
        # Each dissolve is a zero-length cut followed by the D event.
        self.assertEqual(sum(1 for r in records if r[2] == "D"), len(self.calm.cuts) - 1)
        spans = [(a, b) for a, b, kind in records if a != b]
        for (_, prev_out), (next_in, _) in zip(spans, spans[1:]):
            self.assertEqual(prev_out, next_in)

    def test_edl_dissolve_pair(self):
        lines = render_edl(self.calm).splitlines()
        second = [line.split() for line in lines if line.startswith("002 ")]
        self.assertEqual([f[3] for f in second], ["C", "D"])
        self.assertEqual(second[1][4], "025")  # one second at 25 fps
        self.assertEqual(second[0][4], second[0][5])  # zero-length outgoing event

    def test_unknown_format(self):
        with self.assertRaises(ValueError):
            render(self.calm, "xml")


if __name__ == "__main__":
    unittest.main()
