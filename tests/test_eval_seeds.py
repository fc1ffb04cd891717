"""Seed-paired comparison of ablation variants (``eval/seeds.py``)."""
from __future__ import annotations

import numpy as np
import pytest

from encoders.errors import DanceSearchError
from eval.seeds import clearly_better, find_seed_runs, seed_paired_difference, seeds_markdown, summarize_seed_runs


def _ranks(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    """Ranks in 1..100 with a per-query difficulty shared by every model (so pairing matters)."""
    return np.clip(np.round(rng.gamma(2.0, 6.0, size=n) * shift), 1, 100)


def test_a_better_model_on_every_seed_is_clearly_better():
    rng = np.random.default_rng(0)
    base = np.stack([_ranks(rng, 600, 1.0) for _ in range(3)])
    better = np.maximum(1, base - 3)  # same queries, each ranked 3 places higher
    d = seed_paired_difference(better, base, n_boot=300)
    for k in ("R@1", "R@5", "R@10"):
        assert d[k]["diff"] > 0 and d[k]["lo"] > 0 and d[k]["seed_min"] > 0
        assert clearly_better(d[k])
    same = seed_paired_difference(base, base, n_boot=300)
    assert all(same[k]["diff"] == 0 and same[k]["lo"] <= 0 <= same[k]["hi"] for k in same)
    assert not clearly_better(same["R@10"])


def test_one_seed_going_the_other_way_is_not_clearly_better():
    rng = np.random.default_rng(1)
    base = np.stack([_ranks(rng, 600, 1.0) for _ in range(3)])
    mixed = np.stack([np.maximum(1, base[0] - 4), np.maximum(1, base[1] - 4), base[2] + 6])
    d = seed_paired_difference(mixed, base, n_boot=300)
    assert d["R@10"]["seed_max"] > 0 > d["R@10"]["seed_min"]
    assert not clearly_better(d["R@10"])


def test_shapes_must_match():
    with pytest.raises(ValueError, match="of one shape"):
        seed_paired_difference(np.ones((2, 5)), np.ones((3, 5)))
    with pytest.raises(ValueError):
        seed_paired_difference(np.ones(5), np.ones(5))


def test_summary_pairs_only_the_seeds_both_variants_have():
    rng = np.random.default_rng(2)
    ranks = {"transformer-blend": {s: _ranks(rng, 200, 0.8) for s in (0, 1, 2)},
             "transformer-motion": {s: _ranks(rng, 200, 1.0) for s in (0, 2)}}
    out = summarize_seed_runs(ranks, n_boot=50)
    rows = {r["name"]: r for r in out["variants"]}
    assert rows["transformer-blend"]["seeds"] == [0, 1, 2] and "baseline_minus_variant" not in rows["transformer-blend"]
    assert rows["transformer-motion"]["paired_seeds"] == [0, 2]
    assert rows["transformer-blend"]["sd"]["R@10"] >= 0
    md = seeds_markdown({**out, "n_queries": 200, "gallery_size": 50, "root": "/runs"})
    assert "| motion only | 0,2 |" in md and "Transformer + blend (ours)" in md and "chance" not in md
    from eval.metrics import chance_metrics

    md = seeds_markdown({**out, "n_queries": 200, "gallery_size": 50, "chance": chance_metrics(50)})
    assert "| chance (random ranking) | - | 2.00 | 10.00 | 20.00 |" in md   # K / 50 in percent


def test_find_seed_runs(tmp_path):
    for seed, name in ((0, "transformer-blend"), (1, "transformer-blend"), (1, "transformer-music"), (0, "unknown")):
        d = tmp_path / f"seed{seed}" / name
        d.mkdir(parents=True)
        (d / "best.pt").write_bytes(b"x")
    (tmp_path / "seed2" / "transformer-motion").mkdir(parents=True)  # no checkpoint: not a run
    (tmp_path / "notes").mkdir()
    runs = find_seed_runs(tmp_path)
    assert {n: sorted(s) for n, s in runs.items()} == {"transformer-blend": [0, 1], "transformer-music": [1]}
    assert set(find_seed_runs(tmp_path, ["transformer-music"])) == {"transformer-music"}
    with pytest.raises(DanceSearchError, match="no trained runs"):
        find_seed_runs(tmp_path / "seed2")


def test_subset_differences_show_where_a_modality_matters():
    """The full model gains over motion-only only on the queries that name something only music carries."""
    from eval.seeds import subset_differences

    rng = np.random.default_rng(3)
    music_query = rng.random(400) < 0.5
    motion = {s: _ranks(rng, 400, 1.0) for s in (0, 1, 2)}
    full = {s: np.where(music_query, np.maximum(1, r - 4), r) for s, r in motion.items()}
    out = subset_differences({"transformer-blend": full, "transformer-motion": motion},
                             {"music": music_query, "other": ~music_query, "empty": np.zeros(400, bool)}, n_boot=200)
    assert out["music"]["queries"] == int(music_query.sum()) and out["empty"] == {"queries": 0, "variants": {}}
    assert clearly_better(out["music"]["variants"]["transformer-motion"]["R@10"])
    other = out["other"]["variants"]["transformer-motion"]
    assert all(other[k]["diff"] == 0 for k in ("R@1", "R@5", "R@10"))


def test_seeds_report_name_must_be_a_plain_file_stem(capsys):
    from ui.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["eval", "seeds", "--runs", "x", "--name", "../elsewhere"])
    assert exc.value.code == 2
    assert "--name must be a plain file stem" in capsys.readouterr().err
