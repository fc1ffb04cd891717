"""Protocols on hand-built similarity matrices: full, batch32, threshold, dance-to-text, bootstrap."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval.bootstrap import bootstrap_ci
from eval.protocols import (ProtocolError, batch_protocol, dance_to_text, full_protocol, ranks_with_positives,
                            run_protocol, summarize_grouped, summarize_ranks, threshold_positives,
                            threshold_protocol)


def test_full_protocol_hand_computed():
    # 3 queries, 4 clips; query 0 -> clip 0 (rank 1), query 1 -> clip 1 (beaten by clips 0 and 3: rank 3),
    # query 2 -> clip 3 (beaten by clip 2 only: rank 2)
    sim = np.array([[0.9, 0.1, 0.2, 0.3],
                    [0.8, 0.5, 0.1, 0.6],
                    [0.1, 0.2, 0.9, 0.4]])
    res = full_protocol(sim, np.array([0, 1, 3]))
    assert res.ranks.tolist() == [1, 3, 2]
    assert res.gallery_size == 4
    assert res.metrics["R@1"] == pytest.approx(100 / 3)
    assert res.metrics["R@5"] == 100.0 and res.metrics["R@10"] == 100.0  # k beyond the gallery
    assert res.metrics["MedR"] == 2.0 and res.metrics["MnR"] == 2.0


def test_tie_modes():
    # the own clip (0) ties with two wrong clips, one wrong clip is above
    sim = np.array([[0.5, 0.5, 0.5, 0.7]])
    assert ranks_with_positives(sim, [[0]], "pessimistic").tolist() == [4]
    assert ranks_with_positives(sim, [[0]], "optimistic").tolist() == [2]
    assert ranks_with_positives(sim, [[0]], "expected").tolist() == [3]  # 1 + 1 + 2/2
    # two correct items tied with two wrong ones: expected wrong-before-first-correct = 2/3
    sim2 = np.array([[0.5, 0.5, 0.5, 0.5]])
    assert ranks_with_positives(sim2, [[0, 1]], "expected")[0] == pytest.approx(1 + 2 / 3)
    assert ranks_with_positives(sim2, [[0, 1]], "pessimistic")[0] == 3  # correct items do not push each other


def test_constant_scorer_is_not_rewarded():
    sim = np.zeros((5, 5))
    res = full_protocol(sim, np.arange(5))
    assert res.metrics["R@1"] == 0.0 and res.metrics["MedR"] == 5.0


def test_gallery_of_one():
    res = full_protocol(np.array([[0.2], [-0.3]]), np.array([0, 0]))
    assert res.ranks.tolist() == [1, 1] and res.gallery_size == 1
    assert res.metrics["R@1"] == 100.0 and res.metrics["MnR"] == 1.0


def test_duplicate_captions_cap_full_but_not_threshold():
    # two clips with the same caption give two identical query rows; only one can be rank 1 in `full`
    sim = np.array([[0.9, 0.8, 0.1],
                    [0.9, 0.8, 0.1],
                    [0.0, 0.1, 0.7]])
    qc = np.array([0, 1, 2])
    full = full_protocol(sim, qc)
    assert full.ranks.tolist() == [1, 2, 1]
    text_sim = np.array([[1.0, 1.0, 0.2], [1.0, 1.0, 0.2], [0.2, 0.2, 1.0]])
    thr = threshold_protocol(sim, qc, text_sim, threshold=0.95)
    assert thr.ranks.tolist() == [1, 1, 1]
    assert thr.details["queries_with_extra_correct"] == 2


def test_threshold_positives_use_best_caption_of_a_clip():
    # clip 0 has captions 0 and 1; clip 1 has caption 2. Caption 2 is near caption 1 only.
    text_sim = np.array([[1.0, 0.3, 0.1],
                         [0.3, 1.0, 0.96],
                         [0.1, 0.96, 1.0]])
    pos = threshold_positives(text_sim, np.array([0, 0, 1]), n_gallery=3, threshold=0.95)
    assert [p.tolist() for p in pos] == [[0], [0, 1], [0, 1]]
    with pytest.raises(ProtocolError):
        threshold_positives(np.eye(2), np.array([0, 0, 1]), 3)


def test_dance_to_text_any_own_caption_counts():
    # queries (captions) 0,1 belong to clip 0, caption 2 to clip 1; gallery clip 2 has no caption
    sim = np.array([[0.1, 0.9, 0.0],
                    [0.8, 0.2, 0.0],
                    [0.5, 0.3, 0.0]])
    res = dance_to_text(sim, np.array([0, 0, 1]))
    # clip 0 scores captions (0.1, 0.8, 0.5): best own caption is 1 (0.8) -> rank 1
    # clip 1 scores captions (0.9, 0.2, 0.3): own caption 2 (0.3) beaten by caption 0 -> rank 2
    assert res.ranks.tolist() == [1, 2]
    assert res.gallery_size == 3 and res.query_index.tolist() == [0, 1]


def test_batch_protocol_batches_of_32_and_averages():
    rng = np.random.default_rng(0)
    n = 70
    sim = rng.normal(size=(n, n))
    qc = np.arange(n)
    res = batch_protocol(sim, qc, seed=3)
    assert res.gallery_size == 32
    assert res.details["batches"] == 2 and res.details["pairs_dropped"] == 6
    assert res.n_queries == 64 and set(res.groups.tolist()) == {0, 1}
    # per-batch ranks equal a direct recomputation on the sub-matrix
    for g in (0, 1):
        q = res.query_index[res.groups == g]
        direct = full_protocol(sim[np.ix_(q, qc[q])], np.arange(32)).ranks
        np.testing.assert_array_equal(direct, res.ranks[res.groups == g])
    # averaged over batches
    per = [summarize_ranks(res.ranks[res.groups == g]) for g in (0, 1)]
    assert res.metrics["MedR"] == pytest.approx((per[0]["MedR"] + per[1]["MedR"]) / 2)
    # seeded: same seed same batches, other seed other batches
    again = batch_protocol(sim, qc, seed=3)
    np.testing.assert_array_equal(again.query_index, res.query_index)
    other = batch_protocol(sim, qc, seed=4)
    assert not np.array_equal(other.query_index, res.query_index)


def test_batch_protocol_perfect_model_and_small_gallery():
    sim = np.eye(10) + 0.01
    res = batch_protocol(sim, np.arange(10))
    assert res.gallery_size == 10 and res.details["pairs_dropped"] == 0  # fewer pairs than a batch
    assert res.metrics["R@1"] == 100.0


def test_batch_protocol_one_caption_per_clip():
    # clip 0 has 3 captions, clip 1 one: each round uses one caption per clip
    sim = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    res = batch_protocol(sim, np.array([0, 0, 0, 1]), rounds=5, seed=1)
    assert res.n_queries == 10 and res.details["batches"] == 5
    assert res.metrics["R@1"] == 100.0


def test_run_protocol_dispatch_and_errors():
    sim = np.eye(3)
    assert run_protocol("full", sim, np.arange(3)).metrics["R@1"] == 100.0
    assert run_protocol("threshold", sim, np.arange(3), text_sim=np.eye(3)).metrics["R@1"] == 100.0
    with pytest.raises(ProtocolError):
        run_protocol("nope", sim, np.arange(3))
    with pytest.raises(ProtocolError):
        full_protocol(np.array([[np.nan]]), np.array([0]))
    with pytest.raises(ProtocolError):
        full_protocol(np.zeros((2, 0)), np.array([0, 0]))
    with pytest.raises(ProtocolError):
        full_protocol(np.zeros((2, 2)), np.array([0, 5]))


def test_bootstrap_ci_brackets_estimate_and_is_seeded():
    ranks = np.array([1, 1, 2, 3, 5, 8, 13, 1, 2, 40], dtype=float)
    ci = bootstrap_ci(ranks, summarize_ranks, n_boot=300, seed=7)
    point = summarize_ranks(ranks)
    for key, (lo, hi) in ci.items():
        assert lo <= point[key] <= hi, key
    assert ci["R@1"][0] < ci["R@1"][1]
    assert bootstrap_ci(ranks, summarize_ranks, n_boot=300, seed=7) == ci
    assert bootstrap_ci(ranks, summarize_ranks, n_boot=0) == {}
    # constant ranks: a zero-width interval
    assert bootstrap_ci(np.ones(5), summarize_ranks, n_boot=50)["MedR"] == [1.0, 1.0]


def test_bootstrap_grouped_resamples_batches():
    ranks = np.array([1, 1, 1, 1, 9, 9, 9, 9], dtype=float)
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    point = summarize_grouped(ranks, groups)
    assert point["R@1"] == 50.0
    ci = bootstrap_ci(ranks, summarize_ranks, n_boot=400, seed=0, groups=groups)
    # with 2 batches a replicate's R@1 is 0, 50 or 100
    assert ci["R@1"][0] == 0.0 and ci["R@1"][1] == 100.0


# --- the suite on a hand-built SuiteData (no model, no catalog) ---------------------------------------
def _suite_data():
    from eval.suite import SuiteData

    # 4 clips, 5 captions; caption 1 and 2 are the same text on clips 0 and 1
    sim = np.array([[0.9, 0.5, 0.1, 0.0],
                    [0.8, 0.7, 0.2, 0.1],
                    [0.8, 0.7, 0.2, 0.1],
                    [0.1, 0.2, 0.3, 0.9],
                    [0.3, 0.1, 0.6, 0.2]])
    texts = ["a slow waltz", "fast salsa turns", "fast salsa turns", "gentle ballet arms", "krump stomps"]
    clips = [{"id": i, "key": f"demo/s{i}#0", "genre": g, "captions": [], "tags": {"energy": "low"}}
             for i, g in enumerate(["waltz", "salsa", "krump", "ballet"])]
    text_sim = np.array([[1.0 if texts[i] == texts[j] else 0.2 for j in range(5)] for i in range(5)])
    return SuiteData("test", "cd-test", sim, np.array([0, 0, 1, 3, 2]), texts, clips, np.eye(4), text_sim)


def test_evaluate_protocol_payload():
    from eval.suite import evaluate_protocol, protocols_markdown

    data = _suite_data()
    full, res = evaluate_protocol(data, "full", n_boot=200, seed=1)
    # ranks: q0 -> 1, q1 -> 1, q2 (clip 1, 0.7 < 0.8) -> 2, q3 -> 1, q4 (clip 2, 0.6 best) -> 1
    assert res.ranks.tolist() == [1, 1, 2, 1, 1]
    assert full["R@1"] == 80.0 and full["gallery_size"] == 4 and full["queries"] == 5
    assert set(full["ci95"]) == {"R@1", "R@5", "R@10", "MedR", "MnR"}
    assert full["dance_to_text"]["gallery_size"] == 5 and full["dance_to_text"]["queries"] == 4
    thr, res_t = evaluate_protocol(data, "threshold", n_boot=0)
    assert res_t.ranks.tolist() == [1, 1, 1, 1, 1] and thr["ci95"] == {}
    b32, _ = evaluate_protocol(data, "batch32", n_boot=0)
    assert b32["gallery_size"] == 4 and b32["queries"] == 4  # one caption per clip, one batch of all 4
    md = protocols_markdown([full, thr, b32], "t", "dancesearch eval retrieval")
    assert "| full | text->dance | 4 | 5 | 80.00 [" in md and "| threshold | text->dance | 4 | 5 | 100.00 |" in md


def test_breakdown_from_suite_rows():
    from eval.breakdown import breakdown
    from eval.suite import evaluate_protocol

    data = _suite_data()
    _, res = evaluate_protocol(data, "full", n_boot=0)
    tables = breakdown(res.ranks, [data.query_texts[i] for i in res.query_index],
                       [data.query_genres[i] for i in res.query_index])
    genre = {r.value: r for r in tables["genre"]}
    assert genre["waltz"].n_queries == 2 and genre["waltz"].metrics["R@1"] == 100.0
    assert genre["salsa"].metrics["R@1"] == 0.0
    tempo = {r.value: r for r in tables["tempo"]}
    assert tempo["fast"].n_queries == 2 and tempo["fast"].metrics["MnR"] == 1.5


def test_qualitative_top_k_marks_own_clip():
    from eval.qualitative import SampleQuery, qualitative_markdown, top_k

    g = np.eye(3)
    q = np.array([[0.0, 1.0, 0.0], [0.6, 0.0, 0.8]])
    clips = [{"key": f"k{i}", "genre": "g", "captions": [f"c{i}"], "tags": {"tempo": "slow"}} for i in range(3)]
    res = top_k(q, g, clips, [SampleQuery("free"), SampleQuery("cap", 0, "test caption (g)")], k=2)
    assert [h["key"] for h in res[0].hits] == ["k1", "k0"] and res[0].own_rank is None
    assert [h["key"] for h in res[1].hits] == ["k2", "k0"] and res[1].own_rank == 2 and res[1].hits[1]["own"]
    md = qualitative_markdown(res, 3, "cd-x", "test")
    assert "**k0**" in md and "own rank 2 / 3" in md and "tempo=slow" in md


@pytest.mark.slow
def test_caption_similarity_minilm():
    from eval.protocols import caption_similarity

    s = caption_similarity(["a slow waltz turning in circles", "A slow waltz, turning in circles",
                            "a fast hip hop routine", "a slow waltz turning in circles"])
    assert s[0, 3] == 1.0 and s[0, 1] > 0.95 and s[0, 2] < 0.6


def test_ablation_tables_and_commands(tmp_path):
    from eval.ablations import VARIANTS, ablations_markdown, ablations_png, train_command

    v = next(v for v in VARIANTS if v.name == "lstm-blend")
    cmd = train_command(v, tmp_path / "home", tmp_path / "run", epochs=2, seed=1, device=None, db=None)
    assert cmd[:1] == ["train"] and cmd[cmd.index("--temporal") + 1] == "lstm" and cmd[cmd.index("--epochs") + 1] == "2"
    assert "--config" not in cmd
    # a shared run config comes first, so the variant's own --temporal / --fusion override it
    cfg = tmp_path / "config.json"
    cmd = train_command(v, tmp_path / "home", tmp_path / "run", epochs=2, seed=1, device=None, db=None, config=cfg)
    assert cmd[cmd.index("--config") + 1] == str(cfg) and cmd.index("--config") < cmd.index("--temporal")
    # the variant set: 3 temporal backbones (Table 2), 5 fusions (Table 3), baseline shared
    assert sorted(x.temporal for x in VARIANTS if "temporal" in x.tables) == ["lstm", "rnn", "transformer"]
    assert sorted(x.fusion for x in VARIANTS if "fusion" in x.tables) == ["add", "blend", "motion", "mul", "music"]
    test = {"R@1": 10.0, "R@5": 30.0, "R@10": 50.0, "MedR": 9.0, "MnR": 12.5, "gallery_size": 40,
            "ci95": {"R@1": [5.0, 15.0]}}
    rows = [{"name": "transformer-blend", "label": "T", "tables": ["temporal", "fusion"], "train_command": "dancesearch train x",
             "test": test, "train": {"best_epoch": 2, "epochs_run": 2, "seconds_per_epoch": 1.5}},
            {"name": "rnn-blend", "label": "R", "tables": ["temporal"], "train_command": "dancesearch train y",
             "error": "boom"}]
    md = ablations_markdown({"command": "dancesearch eval ablations", "epochs": 2, "seed": 0, "catalog": "sqlite://",
                             "variants": rows, "failed": [{"variant": "rnn-blend", "reason": "boom"}]})
    assert "| T | 40 | 10.00 [5.0, 15.0] | 30.00 | 50.00 | 9.0 | 12.5 |" in md
    assert "| R | - | failed |" in md and "`dancesearch train y`" in md and "rnn-blend`: boom" in md
    assert "What the data allows" not in md
    oracles = {o: {"R@1": 10.0, "R@5": 40.0, "R@10": 60.0, "MnR": 5.0, "median_compatible": 4.0}
               for o in ("full", "motion", "music")}
    md = ablations_markdown({"command": "x", "epochs": 2, "seed": 0, "catalog": "sqlite://", "variants": rows,
                             "failed": [], "ceilings": {"n_queries": 20, "gallery_size": 40, "oracles": oracles}})
    assert "What the data allows" in md and "| oracle, motion attributes only | 10.0 | 40.0 | 60.0 | 5.0 | 4 |" in md
    assert "paired bootstrap" not in md
    rows[1] = {**rows[1], "baseline_minus_variant": {"R@1": {"diff": 2.5, "lo": 0.4, "hi": 4.6}}}
    md = ablations_markdown({"command": "x", "epochs": 2, "seed": 0, "catalog": "sqlite://", "variants": rows,
                             "failed": []})
    assert "T minus each variant (paired bootstrap)" in md and "| R | +2.50 [+0.4, +4.6] | - | - |" in md
    png = ablations_png(rows)
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_suite_end_to_end_on_a_tiny_trained_run(tmp_path):
    """npz corpus -> ingest -> 1-epoch training -> retrieval (all protocols), breakdown, qualitative."""
    import argparse
    import json

    from encoders.cliutil import add_common_options
    from encoders.motion.skeleton import SMPL_BODY_22, smpl24
    from eval.suite_cli import add_protocol_options, register_extra, run_retrieval_suite
    from ui.cli import main

    rest = smpl24().rest_positions()[:22] + np.array([0.0, 0.95, 0.0])
    rng = np.random.default_rng(0)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for g, (freq, words) in {"waltz": (0.8, "a slow waltz turning"), "krump": (2.5, "fast krump jumping")}.items():
        for k in range(10):
            t = np.arange(360) / 30
            pos = np.repeat(rest[None], 360, 0) + 0.01 * rng.normal(size=(360, 22, 3))
            pos[:, :, 1] += 0.1 * np.sin(2 * np.pi * freq * t)[:, None]
            split = "test" if k < 5 else ("val" if k < 6 else "train")
            meta = {"genre": g, "split": split, "captions": [f"{words} {k}"], "tags": {"k": k}}
            np.savez(corpus / f"{g}_{k}.npz", fps=np.float64(30), positions=pos.astype(np.float32),
                     joint_names=np.array(SMPL_BODY_22), metadata=np.array(json.dumps(meta)))
    home, run = tmp_path / "home", tmp_path / "run"
    assert main(["ingest", "npz", str(corpus), "--home", str(home), "--json"]) == 0
    assert main(["train", "--home", str(home), "--epochs", "1", "--out", str(run), "--json"]) == 0

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="a")
    r = sub.add_parser("retrieval")
    add_common_options(r)
    for opt in ("--db", "--device"):
        r.add_argument(opt)
    r.add_argument("--run", type=Path)
    r.add_argument("--split", default="test")
    add_protocol_options(r)
    register_extra(sub)
    args = parser.parse_args(["retrieval", "--run", str(run), "--home", str(home), "--protocol", "all",
                              "--bootstrap", "50", "--out", str(tmp_path / "p.json")])
    out = run_retrieval_suite(args)
    assert set(out["protocols"]) == {"full", "batch32", "threshold"}
    assert out["protocols"]["full"]["gallery_size"] == 10 and out["protocols"]["full"]["queries"] == 10
    assert json.loads((tmp_path / "p.json").read_text())["model"] == out["model"]
    args = parser.parse_args(["breakdown", "--run", str(run), "--home", str(home), "--json",
                              "--out", str(tmp_path / "b.md")])
    assert args.handler(args) == 0 and "### genre" in (tmp_path / "b.md").read_text()
    args = parser.parse_args(["qualitative", "--run", str(run), "--home", str(home), "--json",
                              "--out", str(tmp_path / "q.md")])
    assert args.handler(args) == 0 and "own rank" in (tmp_path / "q.md").read_text()


def test_paired_difference_ci_sees_a_consistent_gain_that_separate_intervals_hide():
    """Model A is one rank better than B on every query: the paired interval excludes 0."""
    from eval.bootstrap import bootstrap_ci, paired_difference_ci
    from eval.protocols import summarize_ranks

    rng = np.random.default_rng(0)
    b = rng.integers(2, 40, size=300).astype(float)
    a = b - 1
    diff = paired_difference_ci(a, b, summarize_ranks, n_boot=300, seed=0)
    assert diff["MnR"]["diff"] == pytest.approx(-1.0)
    assert diff["MnR"]["lo"] == pytest.approx(-1.0) and diff["MnR"]["hi"] == pytest.approx(-1.0)
    assert diff["R@10"]["diff"] > 0 and diff["R@10"]["lo"] > 0
    # the per-model intervals of R@10 overlap, although A is never worse
    ca, cb = bootstrap_ci(a, summarize_ranks, n_boot=300), bootstrap_ci(b, summarize_ranks, n_boot=300)
    assert ca["R@10"][0] < cb["R@10"][1]
    # identical models: the difference is exactly 0
    same = paired_difference_ci(b, b, summarize_ranks, n_boot=50)
    assert same["R@1"] == {"diff": 0.0, "lo": 0.0, "hi": 0.0}
    with pytest.raises(ValueError, match="same queries"):
        paired_difference_ci(a, b[:10], summarize_ranks)
