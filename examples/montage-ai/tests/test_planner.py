import unittest

import support  # noqa: F401  (puts src/ on sys.path)

from montage_ai.planner import DEFAULT_CLIPS, Clip, parse_clips, plan_cuts
from montage_ai.styles import STYLES, get_style
from montage_ai.timecode import to_frames

FPS = 25


class ClipTest(unittest.TestCase):
    def test_parse_plain_and_named(self):
        self.assertEqual(parse_clips(["12.5", "beach.mov=30"]), (Clip("clip01", 12.5), Clip("beach.mov", 30.0)))

    def test_name_may_contain_equals(self):
        self.assertEqual(Clip.parse("a=b.mov=4", 0), Clip("a=b.mov", 4.0))

    def test_invalid_clips(self):
        for text in ["", "abc", "x=", "0", "-3", "nan", "inf", "=5"]:
            with self.subTest(text=text), self.assertRaises(ValueError):
                Clip.parse(text, 0)


class PlanTest(unittest.TestCase):
    def plan(self, style="dynamic", clips=DEFAULT_CLIPS, **kwargs):
        return plan_cuts(list(clips), get_style(style), fps=FPS, **kwargs)

    def test_deterministic(self):
        for name in STYLES:
            with self.subTest(style=name):
                self.assertEqual(self.plan(name), self.plan(name))

    def test_cuts_stay_inside_the_trimmed_clip(self):
        for name, style in STYLES.items():
            edl = self.plan(name)
            for cut in edl.cuts:
                with self.subTest(style=name, cut=cut.number):
                    clip = edl.clips[cut.clip]
                    self.assertGreaterEqual(cut.source_in / FPS, style.trim_head)
                    self.assertLessEqual(cut.source_out / FPS, clip.duration - style.trim_tail)
                    self.assertGreaterEqual(cut.length, to_frames(style.min_shot, FPS))
                    self.assertLessEqual(cut.length, to_frames(style.max_shot, FPS))

    def test_no_footage_is_used_twice(self):
        for name in STYLES:
            edl = self.plan(name)
            by_clip = {}
            for cut in edl.cuts:
                by_clip.setdefault(cut.clip, []).append((cut.source_in, cut.source_out))
            for ranges in by_clip.values():
                for (_, prev_out), (next_in, _) in zip(ranges, ranges[1:]):
                    self.assertLessEqual(prev_out, next_in)

    def test_hard_cuts_butt_together(self):
        edl = self.plan("dynamic")
        self.assertEqual(edl.cuts[0].record_in, 0)
        for prev, cut in zip(edl.cuts, edl.cuts[1:]):
            self.assertEqual(cut.record_in, prev.record_out)
            self.assertEqual((cut.transition, cut.transition_frames), ("cut", 0))

    def test_dissolves_overlap_by_their_length(self):
        edl = self.plan("calm")
        self.assertEqual(edl.cuts[0].transition, "cut")
        for prev, cut in zip(edl.cuts, edl.cuts[1:]):
            self.assertEqual(cut.transition, "dissolve")
            self.assertEqual(cut.transition_frames, FPS)  # 1 second
            self.assertEqual(cut.record_in, prev.record_out - FPS)

    def test_no_jump_cuts(self):
        for name in STYLES:
            edl = self.plan(name)
            for prev, cut in zip(edl.cuts, edl.cuts[1:]):
                self.assertNotEqual(prev.clip, cut.clip, f"{name}: shots {prev.number} and {cut.number}")

    def test_a_single_clip_is_cut_into_shots(self):
        edl = self.plan("dynamic", clips=[10.0])
        self.assertGreater(len(edl.cuts), 3)
        self.assertEqual({c.clip for c in edl.cuts}, {0})

    def test_dynamic_cuts_faster_than_calm(self):
        dynamic, calm = self.plan("dynamic"), self.plan("calm")
        self.assertGreater(len(dynamic.cuts), 3 * len(calm.cuts))

    def test_hitchcock_tightens_then_releases(self):
        edl = self.plan("hitchcock", clips=[30.0, 30.0, 30.0, 30.0])
        lengths = [c.length for c in edl.cuts]
        shortest = lengths.index(min(lengths))
        self.assertGreater(lengths[0], 3 * lengths[shortest])
        self.assertGreater(max(lengths[shortest:]), 3 * lengths[shortest])
        self.assertGreater(shortest, len(lengths) // 2)

    def test_short_clips_are_skipped_with_a_reason(self):
        edl = self.plan("dynamic")
        self.assertEqual([s.clip_name for s in edl.skipped], ["clip04"])
        self.assertIn("shorter than 0.5s", edl.skipped[0].reason)
        self.assertNotIn(3, {c.clip for c in edl.cuts})

    def test_all_clips_too_short_gives_an_empty_plan(self):
        edl = self.plan("calm", clips=[1.0, 2.0])
        self.assertEqual(edl.cuts, ())
        self.assertEqual(edl.duration_frames, 0)
        self.assertEqual(len(edl.skipped), 2)

    def test_max_duration_caps_the_edit(self):
        for name in STYLES:
            with self.subTest(style=name):
                full = self.plan(name)
                capped = self.plan(name, max_duration=20)
                self.assertLessEqual(capped.duration_frames, 20 * FPS)
                self.assertLess(capped.duration_frames, full.duration_frames)
                self.assertGreater(capped.duration_frames, 15 * FPS)

    def test_invalid_arguments(self):
        style = get_style("dynamic")
        with self.assertRaises(ValueError):
            plan_cuts([], style)
        with self.assertRaises(ValueError):
            plan_cuts([5.0], style, fps=23)
        with self.assertRaises(ValueError):
            plan_cuts([5.0], style, max_duration=0)
        with self.assertRaises(ValueError):
            plan_cuts([5.0, -1.0], style)

    def test_to_dict(self):
        data = self.plan("calm").to_dict()
        self.assertEqual(data["style"], "calm")
        self.assertEqual(data["fps"], FPS)
        self.assertEqual(data["duration_frames"], data["cuts"][-1]["record_out"])
        self.assertEqual(set(data["cuts"][0]), {
            "number", "clip", "clip_name", "source_in", "source_out",
            "record_in", "record_out", "transition", "transition_frames",
        })


if __name__ == "__main__":
    unittest.main()
