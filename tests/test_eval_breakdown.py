"""Caption-attribute lexicon and per-group metrics."""
from __future__ import annotations

import numpy as np
import pytest

from eval.breakdown import NONE, breakdown, breakdown_markdown, caption_attributes, grouped_rows


@pytest.mark.parametrize("caption, family, expected", [
    ("A dancer spins slowly in place", "spatial", ["turning", "in_place"]),
    ("A dancer spins slowly in place", "tempo", ["slow"]),
    ("Hip hop grooves with sharp arm hits", "genre_word", ["hip-hop"]),
    ("Hip hop grooves with sharp arm hits", "spatial", []),          # "hop" of "hip hop" is no jump
    ("She hops twice then leaps", "spatial", ["vertical"]),
    ("energetic krump with stomping feet", "energy", ["high"]),
    ("energetic krump with stomping feet", "body_part", ["feet"]),
    ("a graceful, smooth waltz", "energy", ["low"]),
    ("moves side-to-side", "spatial", ["sideways"]),
    ("a housewarming party", "genre_word", []),                      # whole words only
    ("arms and HIPS", "body_part", ["arms", "hips"]),
    ("fast footwork, then a slow turn", "tempo", ["slow", "fast"]),  # several values of a family
])
def test_caption_attributes(caption, family, expected):
    assert caption_attributes(caption)[family] == expected


def test_grouped_rows_hand_computed():
    ranks = np.array([1.0, 3.0, 20.0, 2.0])
    rows = grouped_rows(ranks, [["a"], ["a", "b"], [], ["b"]], "x")
    by = {r.value: r for r in rows}
    assert by["a"].n_queries == 2 and by["a"].metrics["R@1"] == 50.0 and by["a"].metrics["MnR"] == 2.0
    assert by["b"].metrics["MedR"] == 2.5
    assert by[NONE].n_queries == 1 and by[NONE].metrics["R@10"] == 0.0
    assert by["a"].small  # fewer than MIN_QUERIES
    with pytest.raises(ValueError):
        grouped_rows(ranks, [["a"]], "x")


def test_breakdown_and_markdown():
    ranks = np.array([1.0, 50.0, 2.0])
    caps = ["a slow waltz turning", "fast hip hop with arm waves", "slow ballet"]
    tables = breakdown(ranks, caps, ["waltz", "hiphop", "ballet"])
    assert set(tables) == {"genre", "genre_word", "body_part", "tempo", "energy", "spatial", "mood", "instrument"}
    tempo = {r.value: r for r in tables["tempo"]}
    assert tempo["slow"].n_queries == 2 and tempo["slow"].metrics["R@1"] == 50.0
    assert tempo["fast"].metrics["MedR"] == 50.0
    md = breakdown_markdown(tables, gallery_size=120, protocol="full")
    assert "gallery of 120 clips" in md and "| slow * | 2 |" in md


def test_music_only_families_read_mood_and_instrument():
    """Queries naming the music (mood, lead instrument) are grouped, so fusion gains show up per family."""
    attrs = caption_attributes("a dark tango to melancholic piano music")
    assert attrs["mood"] == ["dark"] and attrs["instrument"] == ["piano"]
    assert caption_attributes("a bright waltz with strings")["instrument"] == ["strings"]
    assert caption_attributes("a fast hip hop routine")["instrument"] == []
