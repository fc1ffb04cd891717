"""Hand-computed metric cases (ties, duplicate captions, k beyond the gallery, a gallery of one),
checked against eval.metrics and against eval.protocols, and the two checked against each other."""
from __future__ import annotations

import numpy as np
import pytest

from eval.protocols import full_protocol, ranks_with_positives, summarize_ranks

metrics = pytest.importorskip("eval.metrics", reason="eval.metrics is not importable yet")


def _both(sim, pos):
    """Ranks from eval.metrics and from eval.protocols' full protocol (they must agree)."""
    a = np.asarray(metrics.positive_ranks(np.asarray(sim, float), np.asarray(pos)), dtype=float)
    b = full_protocol(np.asarray(sim, float), np.asarray(pos)).ranks
    np.testing.assert_array_equal(a, b)
    return a


def test_ties_count_against_the_model():
    # query 0: own clip 1 ties with clip 0 and 2 -> pessimistic rank 3 (not 1)
    # query 1: own clip 2 ties with clip 0 only, clip 1 is lower -> rank 2
    sim = [[0.4, 0.4, 0.4], [0.7, 0.1, 0.7]]
    ranks = _both(sim, [1, 2])
    assert ranks.tolist() == [3, 2]
    m = metrics.metrics_from_ranks(ranks, 3)
    assert m["R@1"] == 0.0 and m["R@5"] == 100.0 and m["MedR"] == 2.5 and m["MnR"] == 2.5


def test_duplicate_captions_rank_each_query_against_its_own_clip():
    # clips 0 and 1 both carry "a slow waltz": identical text embeddings, identical rows
    sim = [[0.9, 0.6, 0.2], [0.9, 0.6, 0.2], [0.1, 0.3, 0.8]]
    ranks = _both(sim, [0, 1, 2])
    assert ranks.tolist() == [1, 2, 1]
    m = metrics.metrics_from_ranks(ranks, 3)
    assert m["R@1"] == pytest.approx(200 / 3)
    assert m["MedR"] == 1.0 and m["MnR"] == pytest.approx(4 / 3)


def test_k_larger_than_the_gallery_gives_full_recall():
    sim = [[0.1, 0.9], [0.9, 0.1]]
    ranks = _both(sim, [0, 0])          # ranks 2 and 1
    m = metrics.metrics_from_ranks(ranks, 2, ks=(1, 5, 10))
    assert m["R@1"] == 50.0 and m["R@5"] == 100.0 and m["R@10"] == 100.0
    assert summarize_ranks(ranks)["R@10"] == 100.0


def test_gallery_of_one():
    ranks = _both([[0.3], [-1.0], [0.0]], [0, 0, 0])
    assert ranks.tolist() == [1, 1, 1]
    m = metrics.metrics_from_ranks(ranks, 1)
    assert m["R@1"] == 100.0 and m["MedR"] == 1.0 and m["MnR"] == 1.0
    assert m["gallery_size"] == 1


def test_chance_level_matches_random_scores():
    rng = np.random.default_rng(0)
    n = 50
    ranks = _both(rng.normal(size=(4000, n)), rng.integers(0, n, size=4000))
    chance = metrics.chance_metrics(n)
    got = summarize_ranks(ranks)
    assert got["R@10"] == pytest.approx(chance["R@10"], abs=2.0)
    assert got["MnR"] == pytest.approx(chance["MnR"], abs=1.0)


def test_random_matrices_with_ties_agree():
    rng = np.random.default_rng(1)
    sim = rng.integers(0, 4, size=(60, 12)).astype(float)  # many ties
    pos = rng.integers(0, 12, size=60)
    ranks = _both(sim, pos)
    # multi-positive protocol with singleton sets is the same computation
    np.testing.assert_array_equal(ranks_with_positives(sim, [[p] for p in pos]), ranks)
    assert metrics.metrics_from_ranks(ranks, 12)["MnR"] == pytest.approx(summarize_ranks(ranks)["MnR"])
