"""Attribute-oracle ceilings on hand-made tags: what a perfect full / motion-only / music-only model reaches."""
from __future__ import annotations

import pytest

from eval.oracle import agrees, demo_tagged, oracle_ceilings, stated_attributes


def _clip(**tags):
    base = {"genre": "waltz", "tempo": "slow", "energy": "low", "fluidity": "fluid", "intensity": "gentle",
            "spatial": "turning", "emphasis": "arms", "rhythm": "triple", "valence": "positive",
            "instrument": "strings", "arm_moves": ["arm sweeps"], "leg_moves": [], "torso_moves": [], "hand_moves": []}
    base.update(tags)
    return {"tags": base}


GALLERY = [_clip(), _clip(instrument="piano"), _clip(emphasis="legs"), _clip(emphasis="legs", instrument="piano")]


def test_reading_a_caption_back_into_attributes():
    stated = stated_attributes("a slow waltz with lots of leg work to piano music", {"arm sweeps"})
    assert stated["tempo"] == {"slow"} and stated["genre"] == {"waltz"}
    assert stated["emphasis"] == {"legs"} and stated["instrument"] == {"piano"}
    assert agrees(GALLERY[3]["tags"], stated) and not agrees(GALLERY[0]["tags"], stated)
    assert stated_attributes("a waltz full of arm sweeps", {"arm sweeps"})["move"] == {"arm sweeps"}


def test_music_attributes_split_the_oracles():
    # names a motion attribute (legs) and a music one (piano): only the full oracle pins clip 3 down
    ceil = oracle_ceilings(GALLERY, [("a waltz with lots of leg work to piano music", 3)], ks=(1, 2))
    assert ceil["full"]["R@1"] == pytest.approx(100.0)
    assert ceil["motion"]["R@1"] == pytest.approx(50.0)      # legs: clips 2 and 3
    assert ceil["music"]["R@1"] == pytest.approx(50.0)       # piano: clips 1 and 3
    assert ceil["motion"]["R@2"] == pytest.approx(100.0)
    assert ceil["full"]["MnR"] == pytest.approx(1.0) and ceil["motion"]["MnR"] == pytest.approx(1.5)


def test_unspecific_caption_gives_chance_and_reader_misses_never_raise_the_ceiling():
    ceil = oracle_ceilings(GALLERY, [("a lovely dance", 0)], ks=(1,))
    assert ceil["full"]["R@1"] == pytest.approx(25.0) and ceil["full"]["median_compatible"] == 4
    # the caption says "fast" but clip 0 is slow (a lexicon miss / noisy caption): the clip still counts
    ceil = oracle_ceilings(GALLERY, [("a fast dance", 0)], ks=(1,))
    assert ceil["full"]["R@1"] == pytest.approx(100.0)


def test_ceilings_only_for_demo_tagged_galleries():
    assert demo_tagged(GALLERY)
    assert not demo_tagged([{"tags": {"genre": "salsa"}}]) and not demo_tagged([])
