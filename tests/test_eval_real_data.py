"""Real-data sanity check pieces: labels, staging, meter estimate, AUC; ingest/analysis on ../shared (slow)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

real_data = pytest.importorskip("eval.real_data", reason="eval.real_data needs the indexer and encoders layers")


def test_auc_hand_computed():
    assert real_data.auc(np.array([3.0, 2.0]), np.array([1.0, 0.0])) == 1.0
    assert real_data.auc(np.array([0.0]), np.array([1.0, 2.0])) == 0.0
    assert real_data.auc(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert np.isnan(real_data.auc(np.array([]), np.array([1.0])))


def test_genre_query_checks():
    scores = np.array([0.9, 0.1, 0.8, 0.3])
    out = real_data.genre_query_checks(scores, ["salsa", "modern", "modern", "salsa"], "salsa")
    # salsa clips score 0.9 and 0.3; others 0.1 and 0.8 -> 3 of 4 pairs won
    assert out["auc"] == 0.75 and out["clips_of_genre"] == 2
    assert out["precision_at_n"] == 0.5 and out["base_rate"] == 0.5


def _beats_with_accents(pattern: list[float], n_beats: int = 48, period_frames: int = 15):
    env = np.zeros(n_beats * period_frames + 10)
    times = []
    for b in range(n_beats):
        f = 5 + b * period_frames
        env[f] = pattern[b % len(pattern)]
        times.append(f / 30.0)
    return env, np.array(times)


@pytest.mark.parametrize("pattern, meter", [([3.0, 1.0, 1.0], 3), ([3.0, 1.0], 2), ([3.0, 1.0, 2.0, 1.0], 2)])
def test_meter_estimate_on_synthetic_accents(pattern, meter):
    env, times = _beats_with_accents(pattern)
    scores = real_data.meter_scores(env, times)
    assert real_data.estimated_meter(scores) == meter


def test_meter_needs_enough_beats():
    env, times = _beats_with_accents([2.0, 1.0, 1.0], n_beats=8)
    assert real_data.meter_scores(env, times) == {}
    assert real_data.estimated_meter({}) is None


def test_stage_bvh_labels_and_sidecars(shared_data: Path, tmp_path: Path):
    staged = real_data.stage_bvh(shared_data, tmp_path)
    genres = {s["genre"] for s in staged}
    assert {"salsa", "modern", "indian"} <= genres
    salsa = [s for s in staged if s["genre"] == "salsa"]
    assert len(salsa) == len(list((shared_data / "bvh" / "cmu_salsa").glob("*.bvh.gz")))
    side = json.loads((tmp_path / "60_01_scaled.json").read_text())
    assert side == {"genre": "salsa", "dancer": "cmu60", "split": "test", "group": "salsa-01"}
    # partners of one take share a split group
    assert json.loads((tmp_path / "61_01_scaled.json").read_text())["group"] == "salsa-01"
    assert (tmp_path / "60_01_scaled.bvh.gz").is_symlink()


@pytest.mark.slow
def test_waltz_recording_is_triple(shared_data: Path, tmp_path: Path):
    rows = {r["name"]: r for r in real_data.analyse_music(shared_data, tmp_path)}
    assert rows["sweetwaltz"]["meter_estimate"] == 3
    assert rows["choice"]["bpm"] > 0


@pytest.mark.slow
def test_ingest_salsa_fixtures(shared_data: Path, tmp_path: Path):
    report = real_data.ingest_bvh(shared_data, tmp_path, progress=False)
    assert report["sequences"] >= 28 and report["clips"] >= report["sequences"]
    from indexer.workspace import Workspace

    cat = Workspace(tmp_path / "home").catalog(create=False)
    try:
        assert cat.genre_counts()["salsa"] >= 28
    finally:
        cat.close()
