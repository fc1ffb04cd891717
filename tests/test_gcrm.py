"""GCRM (FineNet eq. 5-6): the selection rule on constructed cases, continuous junctions, the pipeline's
provenance / progress / cancel hooks on a tiny generator, and catalog retrieval from the train split only."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from generation.representation import FEATURE_DIM, LAYOUT, Normalizer
from generation.representation.canonical import heading_yaw
from generation.representation.codec import decode
from generation.stitching import gcrm
from generation.stitching.junction import join, place_after, pose_descriptor
from tiny_denoiser import tiny_denoiser_config


def test_gcrm_picks_the_known_best_candidate() -> None:
    # 3 segments, 3 candidates; 1-D "poses" so CS is -|end - start|
    gs = np.array([[0.9, 0.2, 0.1],
                   [0.8, 0.7, 0.1],     # candidate 0 has the best GS but starts far from where 0 ended
                   [0.1, 0.2, 0.3]])
    starts = np.array([[[0.0], [0.0], [0.0]], [[5.0], [1.0], [1.2]], [[1.0], [9.0], [9.0]]])
    ends = np.array([[[1.0], [3.0], [0.0]], [[0.0], [1.0], [0.0]], [[0.0], [0.0], [0.0]]])
    sel = gcrm.select(gs, starts, ends, alpha=1.0, beta=0.5)
    # t=1: GS only -> 0. t=2: 0.8 - 0.5*4 = -1.2, 0.7 - 0 = 0.7, 0.1 - 0.5*0.2 = 0.0 -> 1.
    # t=3: prev end 1.0: 0.1 - 0 = 0.1, 0.2 - 4 = -3.8, 0.3 - 4 = -3.7 -> 0
    assert sel.indices == [0, 1, 0]
    np.testing.assert_allclose(sel.cs, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(sel.score, [0.9, 0.7, 0.1])
    # GS alone (beta 0) takes the best-GS candidate everywhere
    assert gcrm.select(gs, starts, ends, beta=0.0).indices == [0, 0, 2]
    # coherence alone after the first choice follows the nearest start
    assert gcrm.select(gs, starts, ends, alpha=0.0, beta=1.0, first=1).indices == [1, 2, 0]


def test_several_dances_start_from_different_first_choices_and_invalid_candidates_are_skipped() -> None:
    rng = np.random.default_rng(0)
    gs = rng.uniform(size=(4, 5))
    starts, ends = rng.normal(size=(4, 5, 6)), rng.normal(size=(4, 5, 6))
    valid = np.ones((4, 5), bool)
    valid[2, 0] = False
    gs[2, 0] = 100.0                       # would win if it were considered
    sels = gcrm.select_many(gs, starts, ends, dances=3, valid=valid)
    firsts = [s.indices[0] for s in sels]
    assert firsts == list(np.argsort(-gs[0])[:3]) and len(set(firsts)) == 3
    assert all(s.indices[2] != 0 for s in sels)
    for s in sels:       # each later choice is the argmax of eq. 6 given the previous one
        for t in range(1, 4):
            total = gs[t] + 0.5 * gcrm.coherence_matrix(ends[t - 1][s.indices[t - 1]], starts[t])
            total[~valid[t]] = -np.inf
            assert s.indices[t] == int(np.argmax(total))


def _walk(frames: int, yaw: float, start, speed: float, seed: int) -> np.ndarray:
    """(frames, 319) canonical-ish features: a body walking along its heading with small joint motion."""
    from encoders.motion.rotations import matrix_to_rot6d
    from generation.representation.canonical import yaw_matrix

    rng = np.random.default_rng(seed)
    f = np.zeros((frames, FEATURE_DIM), np.float32)
    eye6 = matrix_to_rot6d(np.eye(3))
    rot = np.tile(eye6, (frames, 52, 1))
    t = np.arange(frames)[:, None]
    wiggle = 0.2 * np.sin(t / 5.0 + rng.uniform(0, 6, size=(1, 52)))
    rot[:, :, 1] += 0.0
    rot[:, :, 2] += wiggle                              # small bends (projected to rotations when decoded)
    root = np.stack([yaw_matrix(yaw + 0.01 * k) for k in range(frames)])
    rot[:, 0] = matrix_to_rot6d(root)
    f[:, LAYOUT.rotations] = rot.reshape(frames, -1)
    fwd = yaw_matrix(yaw) @ np.array([0.0, 0.0, 1.0])
    f[:, LAYOUT.root] = np.asarray(start) + speed * t * fwd + np.array([0, 0.9, 0])
    return f


def test_junction_is_continuous_and_keeps_length_pose_and_heading() -> None:
    cut = 5
    prev = _walk(40, 0.7, [1.0, 0.0, 2.0], 0.02, 0)          # a dance so far, in the world
    cand = _walk(30, 0.0, [0.0, 0.0, 0.0], 0.02, 1)          # a canonical candidate
    placed = place_after(prev, cand, cut)
    out = join(prev, placed, cut)
    assert out.shape == (70, FEATURE_DIM)
    np.testing.assert_array_equal(out[:40 - cut], prev[:40 - cut])
    np.testing.assert_array_equal(out[40 + cut:], placed[cut:])
    # the 2*cut frames of the junction lie evenly on the line between the two kept frames: constant steps
    seg = out[40 - cut - 1:40 + cut + 1].astype(np.float64)
    steps = np.diff(seg, axis=0)
    np.testing.assert_allclose(steps, np.repeat(steps[:1], len(steps), axis=0), atol=1e-5)
    # placement: heading of the candidate's first kept frame equals the previous last kept frame's heading,
    # and the root moves on by one gap at the two sides' mean speed, so the root path has no jump
    from encoders.motion.rotations import rot6d_to_matrix

    yaw = lambda f, i: heading_yaw(rot6d_to_matrix(f[i, LAYOUT.joint_rotation(0)].astype(np.float64)))
    assert abs(yaw(placed, cut) - yaw(prev, 40 - cut - 1)) < 1e-5
    pos = decode(out).positions
    root_step = np.linalg.norm(np.diff(pos[:, 0], axis=0), axis=1)
    assert root_step.max() < 0.03                                # walking speed 0.02 m/frame, no jump
    joint_step = np.linalg.norm(np.diff(pos, axis=0), axis=2).max(axis=1)
    inside = np.r_[joint_step[:40 - cut - 1], joint_step[40 + cut:]].max()
    assert joint_step[40 - cut - 1:40 + cut].max() <= inside * 1.5 + 1e-3
    # the pose descriptor ignores placement: the placed candidate has the canonical one's poses
    pc, pp = decode(cand).positions, decode(placed).positions
    np.testing.assert_allclose(pose_descriptor(pc, cand, cut), pose_descriptor(pp, placed, cut), atol=1e-4)


# ---- the pipeline on a tiny generator --------------------------------------------------------------------

def _tiny_generator(tmp_path):
    from generation.diffusion.denoiser import GCDanceDenoiser
    from generation.diffusion.pipeline import DancePipeline
    from generation.diffusion.run_dir import save_run

    torch.manual_seed(0)
    model = GCDanceDenoiser(tiny_denoiser_config())
    norm = Normalizer(np.zeros(FEATURE_DIM), np.full(FEATURE_DIM, 0.2), 1)
    emb = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    run = save_run(tmp_path / "gen", model, model.state_dict(), norm, ["popping", "waltz"], emb, {"steps": 0},
                   "test", [], {})
    return DancePipeline.from_pretrained(run)


def _tiny_scorer():
    from generation.genre_match import GenreMatcher, GSModelConfig, GSScorer, MelConfig

    torch.manual_seed(0)
    cfg = GSModelConfig(embed_dim=16, n_mels=8, music_channels=(4,), dance_channels=(8,), dance_strides=(1,))
    return GSScorer(GenreMatcher(cfg).eval(), MelConfig(n_mels=8))


def test_pipeline_provenance_progress_cancel_and_several_dances(tmp_path) -> None:
    from encoders.errors import InputError
    from generation.stitching import GCRMPipeline, GenerationCancelled

    pipe = GCRMPipeline(_tiny_generator(tmp_path), _tiny_scorer(), steps=3)
    rng = np.random.default_rng(1)
    music = rng.normal(size=(40, 35)).astype(np.float32)    # 16-frame segments: 3 (the last one padded)
    mel = rng.normal(size=(40, 8)).astype(np.float32)
    calls = []
    res = pipe(music, "Popping", mel=mel, seed=7, candidates=3, dances=2, progress=lambda f, m: calls.append(f))
    assert res.segments == 3 and len(res.dances) == 2 and res.genre == "popping"
    for d in res.dances:
        assert d.record.num_frames == 40 and np.isfinite(d.record.positions).all()
        assert [p["segment"] for p in d.provenance] == [0, 1, 2]
        assert all(p["source"] == "diffusion" and p["seed"] in (7, 8, 9) for p in d.provenance)
        assert [p["start_s"] for p in d.provenance] == [0.0, round(16 / 30, 3), round(32 / 30, 3)]
        assert d.provenance[-1]["end_s"] == round(40 / 30, 3)
    assert res.dances[0].provenance[0]["seed"] != res.dances[1].provenance[0]["seed"]
    assert calls == sorted(calls) and calls[-1] == 1.0
    again = pipe(music, "popping", mel=mel, seed=7, candidates=3, dances=2)
    np.testing.assert_allclose(again.record.positions, res.record.positions)
    assert again.provenance == res.provenance
    seen: list[float] = []
    with pytest.raises(GenerationCancelled):      # stops after the first unit of work that reported progress
        pipe(music, "popping", mel=mel, candidates=3, progress=lambda f, m: seen.append(f),
             cancelled=lambda: len(seen) >= 2)
    assert len(seen) == 2
    no_audio = pipe(music, "waltz", candidates=2)
    assert no_audio.notes and no_audio.provenance[0]["gs"] is None
    with pytest.raises(InputError, match="shorter than one segment"):
        pipe(music[:10], "waltz", mel=mel)
    with pytest.raises(InputError, match="no catalog"):
        pipe(music, "waltz", mel=mel, catalog_candidates=2)


def test_catalog_candidates_come_from_the_train_split_and_mix_with_diffusion(tmp_path, demo_workspace) -> None:
    from generation.metrics.catalog_source import window_store
    from generation.stitching import CatalogCandidates, GCRMPipeline

    scorer = _tiny_scorer()
    store = window_store(demo_workspace.home).with_windows(16, 16)
    cat = CatalogCandidates(store, scorer, "train", cache_dir=tmp_path / "cache")
    train_ids = {c["id"] for c in store.clips("train")}
    rng = np.random.default_rng(2)
    got = cat.retrieve(rng.normal(size=(2, 16, 8)).astype(np.float32), None, k=3)
    assert [len(g) for g in got] == [3, 3]
    for seg in got:
        assert len({c.info["clip_id"] for c in seg}) == 3
        assert all(c.info["clip_id"] in train_ids and c.info["split"] == "train" for c in seg)
        assert all(c.features.shape == (16, FEATURE_DIM) for c in seg)
    assert list((tmp_path / "cache").glob("catalog-gs-*.npy"))          # window embeddings cached
    pipe = GCRMPipeline(_tiny_generator(tmp_path), scorer, cat, steps=2)
    res = pipe(rng.normal(size=(48, 35)).astype(np.float32), "waltz", mel=rng.normal(size=(48, 8)).astype(np.float32),
               text="a waltz", candidates=2, catalog_candidates=2)
    assert {p["source"] for p in res.provenance} <= {"diffusion", "catalog"}
    assert res.record.num_frames == 48 and "retrieval_s" in res.timing
    for p in res.provenance:
        assert ("seed" in p) == (p["source"] == "diffusion")
        assert ("clip_id" in p and "window_start_s" in p) == (p["source"] == "catalog")
