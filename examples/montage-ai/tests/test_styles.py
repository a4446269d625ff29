import unittest

import support  # noqa: F401  (puts src/ on sys.path)

from montage_ai.styles import STYLES, CutStyle, UnknownStyleError, get_style


class GetStyleTest(unittest.TestCase):
    def test_known_styles(self):
        self.assertEqual(sorted(STYLES), ["calm", "dynamic", "hitchcock"])
        for name in STYLES:
            self.assertEqual(get_style(name).name, name)

    def test_lookup_ignores_case_and_spaces(self):
        self.assertIs(get_style(" Hitchcock "), STYLES["hitchcock"])

    def test_unknown_style_lists_choices_and_suggests(self):
        with self.assertRaises(UnknownStyleError) as caught:
            get_style("dynamik")
        err = caught.exception
        self.assertEqual(err.suggestion, "dynamic")
        self.assertIn("unknown style 'dynamik'", str(err))
        self.assertIn("calm, dynamic, hitchcock", str(err))
        self.assertIn("did you mean 'dynamic'?", str(err))

    def test_unknown_style_without_a_close_match(self):
        with self.assertRaises(UnknownStyleError) as caught:
            get_style("zzz")
        self.assertIsNone(caught.exception.suggestion)
        self.assertNotIn("did you mean", str(caught.exception))


class CutStyleTest(unittest.TestCase):
    def make(self, **overrides):
        fields = dict(
            name="test",
            description="",
            shot_length=2.0,
            min_shot=1.0,
            max_shot=4.0,
            rhythm=(1.0,),
            tempo=((0.0, 1.0), (1.0, 1.0)),
        )
        fields.update(overrides)
        return CutStyle(**fields)

    def test_tempo_interpolates_linearly(self):
        style = self.make(tempo=((0.0, 2.0), (0.5, 1.0), (1.0, 1.0)))
        self.assertAlmostEqual(style.tempo_at(0.0), 2.0)
        self.assertAlmostEqual(style.tempo_at(0.25), 1.5)
        self.assertAlmostEqual(style.tempo_at(0.75), 1.0)
        self.assertAlmostEqual(style.tempo_at(-1.0), 2.0)  # clamped
        self.assertAlmostEqual(style.tempo_at(7.0), 1.0)

    def test_shot_target_follows_rhythm_and_bounds(self):
        style = self.make(rhythm=(1.0, 0.25, 3.0))
        self.assertEqual(style.shot_target(0, 0.0), 2.0)
        self.assertEqual(style.shot_target(1, 0.0), 1.0)  # 0.5 raised to min_shot
        self.assertEqual(style.shot_target(2, 0.0), 4.0)  # 6.0 capped at max_shot
        self.assertEqual(style.shot_target(3, 0.0), 2.0)  # the rhythm repeats

    def test_invalid_parameters_are_rejected(self):
        bad = [
            dict(min_shot=3.0),
            dict(rhythm=()),
            dict(rhythm=(1.0, 0.0)),
            dict(tempo=((0.2, 1.0), (1.0, 1.0))),
            dict(tempo=((0.0, 1.0), (0.8, 1.0), (0.5, 1.0), (1.0, 1.0))),
            dict(tempo=((0.0, 1.0), (1.0, 0.0))),
            dict(trim_head=-1.0),
            dict(transition="wipe"),
            dict(transition="cut", transition_length=0.5),
            dict(transition="dissolve", transition_length=1.0),  # not < min_shot
        ]
        for overrides in bad:
            with self.subTest(**{k: repr(v) for k, v in overrides.items()}):
                with self.assertRaises(ValueError):
                    self.make(**overrides)

    def test_builtin_styles_have_their_character(self):
        dynamic, calm, hitchcock = STYLES["dynamic"], STYLES["calm"], STYLES["hitchcock"]
        self.assertLess(dynamic.shot_length, calm.shot_length)
        self.assertEqual(calm.transition, "dissolve")
        self.assertEqual(dynamic.transition, "cut")
        # Hitchcock tightens towards the climax, then releases.
        self.assertGreater(hitchcock.tempo_at(0.0), hitchcock.tempo_at(0.7))
        self.assertGreater(hitchcock.tempo_at(1.0), hitchcock.tempo_at(0.7))


if __name__ == "__main__":
    unittest.main()
