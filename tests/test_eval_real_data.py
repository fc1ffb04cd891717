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


# --- the shorter minimum sequence length (ingest ``min_seconds``) ---------------------------------------
def test_clip_spans_min_seconds_keeps_short_sequences():
    from indexer.clipping import check_min_seconds, clip_spans, expected_clip_count

    assert clip_spans(150) == []                                          # 5 s < half a 12-s clip
    assert [(s.start_frame, s.end_frame) for s in clip_spans(150, min_seconds=4)] == [(0, 150)]
    assert clip_spans(119, min_seconds=4) == [] and len(clip_spans(120, min_seconds=4)) == 1
    assert clip_spans(179, min_seconds=6.0) == clip_spans(179) == []       # the default is half a clip
    for n in (1, 100, 150, 359, 360, 539, 540, 900):                       # longer sequences (tails) unchanged
        if n >= 180:
            assert clip_spans(n, min_seconds=4) == clip_spans(n)
        for stride in (None, 6.0):
            assert len(clip_spans(n, stride_seconds=stride, min_seconds=4)) == \
                expected_clip_count(n, stride_seconds=stride, min_seconds=4)
    for bad in (0, -1.0, float("nan"), float("inf"), 12.5, "x"):
        with pytest.raises(ValueError, match="minimum sequence length"):
            check_min_seconds(bad)
    check_min_seconds(None)
    check_min_seconds(12.0)


def _positions_npz(path: Path, seconds: float) -> Path:
    from encoders.motion.skeleton import smpl24

    skel = smpl24()
    rest = skel.rest_positions()
    rest[:, 1] -= rest[:, 1].min()
    t = int(round(seconds * 30))
    pos = np.repeat(rest[None], t, axis=0)
    pos[:, :, 0] += np.sin(np.linspace(0, 6, t))[:, None] * 0.3
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, positions=pos.astype(np.float32), joint_names=np.array(list(skel.names)), fps=np.array(30.0),
             metadata=np.array(json.dumps({"genre": "krump", "split": "test"})))
    return path


def test_ingest_min_seconds_option(tmp_path: Path):
    from encoders.errors import DanceSearchError
    from indexer.ingest import ingest
    from indexer.workspace import Workspace

    _positions_npz(tmp_path / "src" / "short.npz", 5.0)
    ws = Workspace(tmp_path / "home")
    report = ingest(ws, "npz", tmp_path / "src", progress=False)           # default: half a clip (6 s)
    assert report.clips == 0 and len(report.failed) == 1
    assert "too short: 5.00 s is less than half a clip (6.00 s)" in report.failed[0]["reason"]
    report = ingest(ws, "npz", tmp_path / "src", progress=False, min_seconds=4.0)
    assert report.ok and report.clips == 1
    cat = ws.catalog(create=False)
    try:
        (clip,) = cat.clips()
        assert clip.duration_s == pytest.approx(5.0) and clip.sequence.meta["min_seconds"] == 4.0
    finally:
        cat.close()
    report = ingest(Workspace(tmp_path / "home2"), "npz", tmp_path / "src", progress=False, min_seconds=5.5)
    assert "less than the minimum length (5.50 s)" in report.failed[0]["reason"]
    with pytest.raises(DanceSearchError, match="minimum sequence length"):
        ingest(ws, "npz", tmp_path / "src", progress=False, min_seconds=0)


def test_cli_refuses_a_bad_min_seconds(capsys: pytest.CaptureFixture):
    from ui.cli import main

    assert main(["eval", "real-data", "--min-seconds", "-1"]) == 2
    assert "--min-seconds" in capsys.readouterr().err


# --- AIST++ joint slices ------------------------------------------------------------------------------
def test_aistpp_labels_from_slice_names():
    assert real_data.aistpp_label_for("true_gBR_sBM_cAll_d04_mBR0_ch02_slice0") == {
        "genre": "breaking", "dancer": "aistpp-d04", "sequence": "gBR_sBM_cAll_d04_mBR0_ch02"}
    assert real_data.aistpp_label_for("true_gJS_sBM_cAll_d01_mJS3_ch02_slice7")["genre"] == "jazz"
    assert real_data.aistpp_label_for("true_gKR_sBM_cAll_d30_mKR2_ch02_slice6")["genre"] == "krump"
    assert real_data.aistpp_label_for("true_gLH_sBM_cAll_d18_mLH4_ch02_slice1")["genre"] == "hiphop"
    assert real_data.aistpp_label_for("true_gPO_sBM_cAll_d10_mPO1_ch02_slice0") is None    # no label for pop here
    assert real_data.aistpp_label_for("originalAist_groundTruthMatch_unknownseq") is None
    # every labelled genre has its two queries (a plain name and a description)
    for genre in {*real_data.AISTPP_LABELS.values(), *(v["genre"] for v in real_data.BVH_LABELS.values())}:
        assert len(real_data.GENRE_QUERIES[genre]) == 2, genre


def test_stage_and_ingest_aistpp_slices(shared_data: Path, tmp_path: Path):
    from indexer.sources.npz import NpzAdapter
    from indexer.workspace import Workspace

    csvs = sorted((shared_data / "aistpp_joint_slices").glob("*.csv"))
    staged, failed = real_data.stage_aistpp(shared_data, tmp_path / "st")
    assert not failed and len(staged) == len(csvs)
    genres = sorted(s["genre"] for s in staged)
    assert genres.count(real_data.UNLABELLED) == 1 and {"breaking", "jazz", "krump", "hiphop"} <= set(genres)
    item = NpzAdapter(tmp_path / "st").load(tmp_path / "st" / "true_gBR_sBM_cAll_d04_mBR0_ch02_slice0.npz")
    assert item.genre == "breaking" and item.split == "test" and item.motion.num_frames == 150
    assert item.motion.positions[:, 15, 1].mean() > item.motion.positions[:, 10, 1].mean() + 1.0   # head above feet: y up
    mtime = (tmp_path / "st" / f"{csvs[0].stem}.npz").stat().st_mtime_ns
    real_data.stage_aistpp(shared_data, tmp_path / "st")                   # unchanged: not rewritten
    assert (tmp_path / "st" / f"{csvs[0].stem}.npz").stat().st_mtime_ns == mtime

    report = real_data.ingest_aistpp(shared_data, tmp_path / "w", progress=False)     # 5-s slices, 4-s minimum
    assert report["failed"] == [] and report["sequences"] == report["clips"] == len(csvs)
    cat = Workspace(tmp_path / "w" / "home").catalog(create=False)
    try:
        assert {c.source for c in cat.clips()} == {real_data.AISTPP_SOURCE}
        assert cat.genre_counts()["breaking"] == 2
    finally:
        cat.close()
    # the ingest default (half a 12-s clip) would have dropped every slice
    assert real_data.ingest_aistpp(shared_data, tmp_path / "w2", progress=False, min_seconds=None)["clips"] == 0


# --- genre figures over one gallery, and the paired comparison ----------------------------------------------
class _FakeEmbedder:
    """Text vectors by keyword: enough to drive motion_checks without a model."""

    model_id = "fake"

    def __init__(self, dim: int = 4) -> None:
        self.dim = dim

    def encode_text(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, sum(map(ord, t)) % self.dim] = 1.0
            out[i, 0] += 0.5 if "salsa" in t else 0.0
        return out


def _gallery():
    rows = [("cmu/60_01#0", "cmu", "salsa"), ("cmu/60_02#0", "cmu", "salsa"), ("cmu/05_20-daz#0", "cmu", "modern"),
            ("cmu/05_20-mb#0", "cmu", "modern"), ("aistpp-slices/a#0", "aistpp-slices", "breaking"),
            ("aistpp-slices/b#0", "aistpp-slices", "krump"), ("aistpp-slices/u#0", "aistpp-slices", "unknown")]
    return [{"key": k, "source": s, "genre": g, "duration_s": 5.0} for k, s, g in rows]


def test_motion_checks_leave_unlabelled_clips_out_and_compare_to_zero():
    gallery = _gallery()
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(gallery), 4)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    res = real_data.motion_checks(_FakeEmbedder(), emb, gallery)
    assert res["labelled_clips"] == 6 and res["unlabelled"] == ["aistpp-slices/u#0"]
    assert {q["genre"] for q in res["queries"]} == {"salsa", "modern", "breaking", "krump"}
    by_genre = {g["genre"]: g for g in res["genres"]}
    assert by_genre["breaking"]["clips"] == 1 and by_genre["breaking"]["other_clips"] == 5      # unlabelled left out
    assert by_genre["breaking"]["within_source_others"] == 1 and by_genre["salsa"]["within_source_others"] == 2
    assert by_genre["salsa"]["mean_auc"] == pytest.approx(np.mean([q["auc"] for q in res["queries"]
                                                                   if q["genre"] == "salsa"]))
    assert res["skeleton_conversions"]["pairs"] == 1
    # the same result as its own baseline: every difference exactly 0
    cmp_ = real_data.compare_runs(res, res)
    assert all(q[f"{k}_diff"] == 0.0 for q in cmp_["queries"] for k in ("auc", "precision_at_n", "auc_within_source"))
    assert all(g["mean_auc_diff"] == 0.0 for g in cmp_["genres"]) and cmp_["mean_auc_over_genres"]["diff"] == 0.0
    assert all(cmp_["skeleton_conversions"][k]["diff"] == 0.0 for k in real_data.SKELETON_FIGURES)
    # a better model shows as a positive difference
    better = real_data.motion_checks(_FakeEmbedder(), emb, gallery)
    better["queries"][0]["auc"] += 0.1
    assert real_data.compare_runs(better, res)["queries"][0]["auc_diff"] == pytest.approx(0.1)
    # both report forms render as markdown tables, with the command line
    ingest = {"min_seconds": 4.0, "sequences": 7, "clips": 7, "failed": [],
              "bvh": {"sequences": 4, "clips": 4}, "aistpp": {"sequences": 3, "clips": 3}}
    profile = {"key": "aistpp-slices/a#0", "genre": "breaking", "source": "aistpp-slices", "seconds": 5.0,
               "joint_speed": 1.25, "root_speed": 0.6, "closest_genres": [["breaking", 0.67], ["hiphop", 0.45]]}
    md = real_data.real_data_markdown({"ingest": ingest, "motion": {**res, "run": "models/demo"}, "music": [],
                                       "profiles": [profile]}, "dancesearch eval real-data")
    assert "## What each real clip is like" in md
    assert "| aistpp-slices/a#0 | breaking | 5.0 | 1.25 | 0.60 | breaking 0.67, hiphop 0.45 |" in md
    assert "Produced by:" in md and "| breaking | aistpp-slices | 1 / 5 |" in md and "unlabelled 1" in md
    md2 = real_data.real_data_markdown({"ingest": ingest, "motion": {**res, "run": "a"}, "music": [],
                                        "baseline": {**res, "run": "b"}, "comparison": cmp_}, "x")
    assert "| genre | source | clips | AUC new | AUC baseline | ΔAUC |" in md2 and "+0.000" in md2
    assert "| difference | +0.000 | +0.000 | +0 |" in md2


@pytest.mark.slow
def test_paired_comparison_with_the_same_run_on_real_slices(shared_data: Path, tmp_path: Path):
    real_data.ingest_aistpp(shared_data, tmp_path, progress=False)
    demo = Path(__file__).resolve().parents[1] / "models" / "demo"
    out = real_data.evaluate_motion(tmp_path / "home", demo, "cpu", baseline_run=demo)
    assert out["motion"]["clips"] == 7 and out["motion"]["labelled_clips"] == 6
    assert {g["genre"] for g in out["comparison"]["genres"]} == {"breaking", "jazz", "krump", "hiphop"}
    assert all(q["auc_diff"] == 0.0 and q["precision_at_n_diff"] == 0.0 for q in out["comparison"]["queries"])
    assert all(g["mean_auc_diff"] == 0.0 for g in out["comparison"]["genres"])
    assert len(out["profiles"]) == 7 and all(p["joint_speed"] > 0 for p in out["profiles"])


class _OneHotEmbedder:
    """Each distinct text gets its own axis: a clip embedded on a prompt's axis is closest to that prompt."""

    model_id = "one-hot"

    def __init__(self, dim: int = 64) -> None:
        self.dim, self.axes = dim, {}

    def encode_text(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, self.axes.setdefault(t, len(self.axes))] = 1.0
        return out


def test_clip_profiles_name_the_closest_genres_and_group_large_genres():
    from encoders.motion.record import MotionRecord
    from encoders.motion.skeleton import SMPL_BODY_22
    from encoders.text_vocabulary import GenreVocabulary

    gallery = _gallery()
    embedder = _OneHotEmbedder()
    names = list(GenreVocabulary.load().genres)
    prompts = embedder.encode_text([GenreVocabulary.load().caption_name([g]) for g in names])
    emb = np.zeros((len(gallery), embedder.dim), dtype=np.float32)
    emb[:, :len(names)] = 0.01 * np.arange(len(names))                      # a weak, shared preference order
    emb[5] = 0.9 * prompts[names.index("krump")] + 0.5 * prompts[names.index("locking")]
    body = np.random.default_rng(0).normal(size=(30, 22, 3)).astype(np.float32)
    records = [MotionRecord(30.0, body[:, 0], body, list(SMPL_BODY_22)) for _ in gallery]
    profiles = real_data.clip_profiles(embedder, emb, gallery, records)
    assert [p["key"] for p in profiles] == [g["key"] for g in gallery]
    assert [g for g, _ in profiles[5]["closest_genres"][:2]] == ["krump", "locking"]
    assert profiles[5]["closest_genres"][0][1] == pytest.approx(0.9)
    lines = real_data.profile_lines(profiles, "one-hot", group_from=2)
    assert any(line.startswith("| 2 clips | salsa |") and "closest first:" in line for line in lines)
    assert any(line.startswith("| aistpp-slices/b#0 | krump |") and "krump 0.90, locking 0.50" in line
               for line in lines)
