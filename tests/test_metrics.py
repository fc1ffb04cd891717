"""Retrieval metrics on hand-computed cases (ties, k beyond the gallery, a gallery of one)."""
from __future__ import annotations

import numpy as np
import pytest

from eval.metrics import chance_metrics, markdown_row, metrics_from_ranks, positive_ranks, retrieval_metrics


def test_ranks_without_ties() -> None:
    sim = np.array([[0.9, 0.1, 0.5],    # positive 0 -> rank 1
                    [0.9, 0.1, 0.5],    # positive 1 -> rank 3
                    [0.2, 0.8, 0.5]])   # positive 2 -> rank 2
    assert positive_ranks(sim, np.array([0, 1, 2])).tolist() == [1, 3, 2]
    m = retrieval_metrics(sim, np.array([0, 1, 2]), ks=(1, 2))
    assert m["R@1"] == pytest.approx(100 / 3)
    assert m["R@2"] == pytest.approx(200 / 3)
    assert m["MedR"] == 2.0 and m["MnR"] == 2.0
    assert m["gallery_size"] == 3 and m["num_queries"] == 3


def test_ties_count_against_the_model() -> None:
    sim = np.array([[0.5, 0.5, 0.5, 0.1]])  # positive tied with two others: pessimistic rank 3
    assert positive_ranks(sim, np.array([1])).tolist() == [3]
    constant = np.zeros((4, 4))
    assert positive_ranks(constant, np.arange(4)).tolist() == [4, 4, 4, 4]
    m = retrieval_metrics(constant, np.arange(4))
    assert m["R@1"] == 0.0 and m["MnR"] == 4.0


def test_k_larger_than_gallery_and_gallery_of_one() -> None:
    sim = np.array([[0.1, 0.9], [0.3, 0.2]])
    m = retrieval_metrics(sim, np.array([0, 0]))  # ranks 2 and 1
    assert m["R@1"] == 50.0 and m["R@5"] == 100.0 and m["R@10"] == 100.0
    assert m["MedR"] == 1.5
    one = retrieval_metrics(np.array([[0.3], [-0.7]]), np.array([0, 0]))
    assert one["R@1"] == 100.0 and one["MedR"] == 1.0 and one["gallery_size"] == 1


def test_chance_level() -> None:
    c = chance_metrics(20)
    assert c["R@1"] == 5.0 and c["R@5"] == 25.0 and c["R@10"] == 50.0 and c["MedR"] == 10.5
    assert chance_metrics(3)["R@5"] == 100.0
    rng = np.random.default_rng(0)  # random scores agree with the closed form on average
    sims = rng.normal(size=(4000, 20))
    m = retrieval_metrics(sims, rng.integers(0, 20, size=4000))
    assert abs(m["R@1"] - 5.0) < 1.5 and abs(m["MnR"] - 10.5) < 0.4


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        positive_ranks(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError):
        positive_ranks(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError):
        metrics_from_ranks(np.array([]), 3)
    with pytest.raises(ValueError):
        chance_metrics(0)


def test_markdown_row() -> None:
    row = markdown_row("x", {"R@1": 1.234, "R@5": 5.0, "R@10": 10.0, "MedR": 3.0, "MnR": 4.25})
    assert row == "| x | 1.23 | 5.00 | 10.00 | 3.0 | 4.25 |"
