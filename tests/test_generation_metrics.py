"""Generation metrics (issue 13): FID / Div / kinetic and geometric features / BAS / protocols / errors / CLI.

Hand-computed values only; the comparison with the reference implementations themselves is
bench/compare_metrics_reference.py (docs/results/generation_metrics_reference.md).
"""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.kinematics import forward_kinematics
from encoders.motion.record import MotionRecord
from encoders.motion.rotations import axis_angle_to_matrix
from encoders.motion.skeleton import SMPL_BODY_22, smpl24, smplx52
from generation.metrics import (DanceSample, alignment_score, beat_alignment_score, diversity, evaluate_generation,
                                frechet_distance, geometric_features, kinetic_features, sample_beat_alignment)
from generation.metrics.beats import BAILANDO_BEATS, POPDG_BEATS, BeatConfig, motion_beat_frames
from generation.metrics.fid import normalise_by_reference, score_feature_sets
from generation.metrics.geometric import GEOMETRIC_FEATURE_NAMES, HUMERUS_LENGTH
from generation.metrics.protocols import BAILANDO_AIST, DANCESEARCH, LODGE_FINEDANCE, get_protocol
from generation.metrics.suite import markdown_table


# ---------------------------------------------------------------------------------------------- helpers
def _dance(name: str, seed: int, frames: int = 120, amp: float = 0.3, skeleton=None, fps: float = 30.0,
           beats: bool = True) -> DanceSample:
    sk = skeleton or smplx52()
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    freq = 1.0 + 0.2 * rng.standard_normal((1, sk.num_joints, 3))
    aa = amp * np.sin(2 * np.pi * freq * t[:, None, None] + rng.uniform(0, 6, (1, sk.num_joints, 3)))
    trans = np.cumsum(rng.normal(0, 0.005, (frames, 3)), axis=0) + [0.0, 0.9, 0.0]
    pos = np.asarray(forward_kinematics(axis_angle_to_matrix(aa), trans, sk), dtype=np.float64)
    return DanceSample(name, pos, fps, sk.names, np.arange(0.25, frames / fps, 0.5) if beats else None)


def _set(prefix: str, n: int, seed: int, **kw) -> list[DanceSample]:
    return [_dance(f"{prefix}{i}", seed * 100 + i, **kw) for i in range(n)]


GEO = {n: i for i, n in enumerate(GEOMETRIC_FEATURE_NAMES)}


# ---------------------------------------------------------------------------------------------- FID / Div
def test_fid_of_a_set_against_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(60, 5))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    sc = score_feature_sets(x.astype(np.float32), x.astype(np.float32))
    assert sc.fid == pytest.approx(0.0, abs=1e-5)
    assert sc.div == pytest.approx(sc.div_gt)


def test_fid_of_a_shifted_set_is_the_squared_shift():
    x = np.random.default_rng(1).normal(size=(40, 4))
    shift = np.array([1.0, 2.0, 0.0, -2.0])                 # |shift|^2 = 9, equal covariances
    assert frechet_distance(x + shift, x) == pytest.approx(9.0, abs=1e-8)
    # 1-D sets with sample variances 2 and 8 (ddof 1): FD = 2 + 8 - 2 * sqrt(2 * 8) = 2.
    a = np.array([[-1.0], [1.0]])                           # var 2 (ddof 1)
    b = np.array([[-2.0], [2.0]])                           # var 8
    assert frechet_distance(a, b) == pytest.approx(2 + 8 - 2 * 4.0)


def test_normalisation_uses_the_ground_truth_statistics_only():
    gt = np.array([[0.0, 1.0], [2.0, 1.0]], dtype=np.float32)     # mean (1, 1), std (1, 0)
    pred = np.array([[3.0, 1.0], [5.0, 2.0]], dtype=np.float32)
    g, p = normalise_by_reference(gt, pred)
    np.testing.assert_allclose(g, [[-1, 0], [1, 0]], atol=1e-6)
    np.testing.assert_allclose(p[:, 0], [2, 4], atol=1e-6)
    assert p[1, 1] == pytest.approx(1e10, rel=1e-6)                 # constant GT dimension: (x - m) / 1e-10


def test_diversity_is_the_mean_pairwise_distance():
    pts = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]])          # distances 3, 4, 5
    assert diversity(pts) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        diversity(pts[:1])


# ---------------------------------------------------------------------------------------------- kinetic
def test_kinetic_features_of_a_constant_velocity_joint():
    d = np.array([0.01, 0.02, 0.0])                                 # metres per frame
    pos = (np.arange(5)[:, None] * d)[:, None, :]                   # (5, 1, 3), starts at the origin
    ft = 1 / 60
    h, v, e = kinetic_features(pos)
    assert h == pytest.approx((0.01 * 60) ** 2, rel=1e-6)          # |v_xz|^2
    assert v == pytest.approx((0.02 * 60) ** 2, rel=1e-6)          # v_y^2
    # Reference quirk: v1 = p[k] - p[k-1] / dt, so the term is k |d| (1 - dt) / dt^2; window means of k over
    # frames i = 1..4 are 2, 2, 2, 2.5.
    assert e == pytest.approx(np.mean([2, 2, 2, 2.5]) * np.linalg.norm(d) * (1 - ft) / ft ** 2, rel=1e-6)
    h2, v2, e2 = kinetic_features(pos, true_acceleration=True)
    assert (h2, v2) == (h, v) and e2 == pytest.approx(0.0, abs=1e-6)
    h3, _, _ = kinetic_features(pos, frame_time=1 / 30)
    assert h3 == pytest.approx(h / 4, rel=1e-6)
    with pytest.raises(ValueError):
        kinetic_features(pos[:2])


def test_kinetic_feature_layout_and_up_axis():
    pos = np.zeros((6, 2, 3))
    pos[:, 1, 1] = np.arange(6) * 0.1                               # joint 1 moves up (y)
    f = kinetic_features(pos)
    assert f.shape == (6,) and f.dtype == np.float32
    assert f[0] == f[1] == 0 and f[3] == 0 and f[4] == pytest.approx(36.0, rel=1e-6)
    fz = kinetic_features(pos, up_axis=2)                           # y is now horizontal
    assert fz[3] == pytest.approx(36.0, rel=1e-6) and fz[4] == 0


# ---------------------------------------------------------------------------------------------- geometric
def _rest24(frames: int = 3) -> np.ndarray:
    return np.repeat(smpl24().rest_positions()[None], frames, axis=0)


def test_geometric_features_on_a_static_t_pose():
    f = geometric_features(_rest24())
    assert f.shape == (32,) and f.dtype == np.float32
    for name in ("rarm_raised", "larm_raised", "hands_apart_along_shoulders"):
        assert f[GEO[name]] == 1.0, name
    for name in ("relbow_bent", "rknee_bent", "torso_horizontal", "rleg_raised", "rankle_raised",
                 "rwrist_low", "rwrist_fast", "root_fast", "belly_chest_stretch_a"):
        assert f[GEO[name]] == 0.0, name
    # The 22 body joints (LODGE) give the same answers here (y_min is a toe either way).
    np.testing.assert_array_equal(geometric_features(_rest24()[:, :22]), f)


def test_geometric_velocity_tests_and_the_rigid_bone_quirk():
    names = list(smpl24().names)
    pos = _rest24(3)
    pos[1:, names.index("right_wrist"), 0] -= 0.1       # the wrist jumps 0.1 m at frame 1, then holds
    f = geometric_features(pos)
    assert f[GEO["rwrist_fast"]] == 0.5 and f[GEO["lwrist_fast"]] == 0.0
    # 0.1 m per frame at the reference's 1/120 s is 12 m/s > 2.5 * hl = 0.64 m/s (hl hard-coded from SMPL).
    assert HUMERUS_LENGTH == pytest.approx(0.2568, abs=1e-4)
    stretched = _rest24(3)
    stretched[1:, names.index("spine3"), 1] += 0.01    # the belly->chest bone grows 1 cm: 1.2 m/s > 1.8 hl
    g = geometric_features(stretched)
    assert g[GEO["belly_chest_stretch_a"]] == 0.5 and g[GEO["belly_chest_stretch_b"]] == 0.5
    # With the true 1/30 s step the same 1 cm is 0.3 m/s, below the threshold.
    assert geometric_features(stretched, time_per_frame=1 / 30)[GEO["belly_chest_stretch_a"]] == 0.0


def test_geometric_torso_horizontal_when_lying():
    rot = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])      # 90 degrees about x
    f = geometric_features(_rest24() @ rot.T)
    assert f[GEO["torso_horizontal"]] == 1.0


def test_geometric_features_need_the_body_joints():
    with pytest.raises(ValueError, match="left_knee"):
        geometric_features(_rest24()[:, :22], joint_names=[n if n != "left_knee" else "x" for n in SMPL_BODY_22])


# ---------------------------------------------------------------------------------------------- BAS
def test_alignment_score_both_directions():
    motion, music = [10, 20], [10, 21, 40]
    exp = np.exp(-1 / 18)
    assert alignment_score(motion, music, 3.0, "music") == pytest.approx((1 + exp + np.exp(-400 / 18)) / 3)
    assert alignment_score(motion, music, 3.0, "motion") == pytest.approx((1 + exp) / 2)
    assert alignment_score([], music, 3.0, "music") == 0.0
    assert alignment_score(motion, [], 3.0, "motion") == 0.0
    # The older seconds helper is the music direction.
    assert beat_alignment_score([1.0], [1.1], sigma=0.1) == pytest.approx(np.exp(-0.5))


def _pulsing(frames: int, period: int, fps: float = 30.0) -> np.ndarray:
    """One joint that stops at t = k * period + 0.5 frames, i.e. the slowest step is frame k * period -> +1."""
    t = np.arange(frames) - 0.5
    x = t / period - np.sin(2 * np.pi * t / period) / (2 * np.pi)   # speed 1 - cos: zero at the stops
    pos = np.zeros((frames, 1, 3))
    pos[:, 0, 0] = x * 0.3
    return pos


def test_motion_beats_and_sample_bas_follow_the_config():
    pos = _pulsing(181, 30)
    frames, length = motion_beat_frames(pos, 30.0, BAILANDO_BEATS)
    assert length == 180
    # Forward speed index t is the step t -> t+1 (the reference's indexing, no half-frame correction).
    assert list(frames) == [30, 60, 90, 120, 150]
    on = np.arange(30, 180, 30) / 30.0
    off = on + 0.25                                                   # a quarter beat late
    s_on = sample_beat_alignment(pos, 30.0, on, BAILANDO_BEATS)
    s_off = sample_beat_alignment(pos, 30.0, off, BAILANDO_BEATS)
    assert s_on == pytest.approx(1.0) and s_off < 0.1
    assert sample_beat_alignment(pos, 30.0, None) is None
    assert sample_beat_alignment(pos, 30.0, [100.0]) is None           # music beat after the motion is dropped
    kept = BAILANDO_BEATS.with_(drop_music_beats_after_motion=False)
    assert sample_beat_alignment(pos, 30.0, [100.0], kept) == pytest.approx(0.0, abs=1e-12)
    secs = BeatConfig(unit="seconds", sigma=0.1, smoothing=5 / 30)
    assert sample_beat_alignment(pos, 30.0, on, secs) == pytest.approx(s_on, rel=1e-9)
    # POPDG: averaged over motion beats, order 10, no smoothing.
    assert sample_beat_alignment(pos, 30.0, on, POPDG_BEATS) > 0.8
    with pytest.raises(ValueError):
        BeatConfig(direction="sideways")


# ---------------------------------------------------------------------------------------------- protocols
def test_protocol_resampling_truncation_and_root_handling():
    s = _dance("a", 1, frames=31)
    pos = BAILANDO_AIST.feature_positions(s)
    assert pos.shape == (61, 24, 3)                                   # 30 -> 60 fps, 24 SMPL joints
    np.testing.assert_allclose(pos[0, 0], 0.0, atol=1e-12)            # frame-0 root subtracted
    # frames are resampled linearly: a 60-fps frame between two 30-fps frames is their mean
    np.testing.assert_allclose(pos[1, :22], 0.5 * ((s.positions[0, :22] + s.positions[1, :22]) - 2 * s.positions[0, 0]),
                               atol=1e-12)
    # The palm stand-in is SMPL-X's middle-finger base.
    mid = s.joints(["left_middle1"])[0, 0] - s.positions[0, 0]
    np.testing.assert_allclose(pos[0, 22], mid, atol=1e-12)
    # A sample already at 60 fps is not resampled again.
    s60 = s.with_positions(pos + s.positions[0, 0], fps=60.0, joint_names=smpl24().names)
    np.testing.assert_allclose(BAILANDO_AIST.feature_positions(s60), pos, atol=1e-12)
    long = _dance("long", 2, frames=700)
    assert BAILANDO_AIST.feature_positions(long).shape[0] == 1200    # 1399 frames at 60 fps, truncated
    assert LODGE_FINEDANCE.feature_positions(_dance("l", 3, frames=1100)).shape[0] == 1024
    rel = LODGE_FINEDANCE.feature_positions(s)
    assert rel.shape == (31, 22, 3)
    np.testing.assert_allclose(rel[:, 1], s.positions[:, 1] - s.positions[:, 0], atol=1e-12)
    assert DANCESEARCH.feature_positions(long).shape[0] == 700


def test_lodge_bas_reads_jaw_and_eye_or_the_head():
    s = _dance("a", 5, frames=150)
    head = s.joints(["head"])
    with_face = s.with_positions(np.concatenate([s.positions, head, head], axis=1),
                                 joint_names=tuple(s.joint_names) + ("jaw", "left_eye"))
    assert LODGE_FINEDANCE.beat_alignment(with_face) == pytest.approx(LODGE_FINEDANCE.beat_alignment(s), abs=1e-15)
    moved = with_face.positions.copy()
    moved[:, -2:] += np.random.default_rng(0).normal(0, 0.05, moved[:, -2:].shape)
    assert LODGE_FINEDANCE.beat_alignment(with_face.with_positions(moved)) != LODGE_FINEDANCE.beat_alignment(s)


def test_protocol_time_steps_change_the_features():
    s = _dance("a", 4, frames=90)
    ref = LODGE_FINEDANCE.features(s)["kinetic"]
    fixed = replace(LODGE_FINEDANCE, kinetic_frame_time=None, kinetic_true_acceleration=True).features(s)["kinetic"]
    # Horizontal / vertical kinetic energy scale with (60 / 30)^2 = 4 (1/60 s vs the true 1/30 s).
    np.testing.assert_allclose(ref[0::3], 4 * fixed[0::3], rtol=1e-5)
    assert not np.allclose(ref[2::3], fixed[2::3])


def test_suite_gt_normalisation_and_beat_direction_options():
    pred, gt = _set("p", 4, 1, amp=0.35), _set("g", 5, 2, amp=0.25)
    res = evaluate_generation(pred, gt, "dancesearch")
    raw_proto = replace(DANCESEARCH, name="raw", normalise=False)
    raw = evaluate_generation(pred, gt, raw_proto)
    kp = np.stack([DANCESEARCH.features(s)["kinetic"] for s in pred])
    kg = np.stack([DANCESEARCH.features(s)["kinetic"] for s in gt])
    assert raw["metrics"]["fid_k"] == pytest.approx(frechet_distance(kp, kg), rel=1e-9)
    g_n, p_n = normalise_by_reference(kg, kp)
    assert res["metrics"]["fid_k"] == pytest.approx(frechet_distance(p_n, g_n), rel=1e-9)
    assert res["metrics"]["div_k"] == pytest.approx(diversity(p_n), rel=1e-9)
    assert res["gt_reference"]["div_k"] == pytest.approx(diversity(g_n), rel=1e-9)
    motion_dir = replace(DANCESEARCH, name="m", beats=DANCESEARCH.beats.with_(direction="motion"))
    assert evaluate_generation(pred, gt, motion_dir)["metrics"]["bas"] != pytest.approx(res["metrics"]["bas"])
    m = res["metrics"]
    assert set(m) >= {"fid_k", "fid_g", "div_k", "div_g", "bas", "fid_hand", "div_hand"}
    assert m["fid_hand"] is not None and res["details"]["hand_dims"] == 90 and res["details"]["kinetic_dims"] == 66
    assert res["counts"]["pred"] == 4 and res["counts"]["gt_with_beats"] == 5
    assert "| FID_k |" in markdown_table(res)
    assert "features" not in res                                   # only on request
    with_feats = evaluate_generation(pred, gt, "dancesearch", return_features=True)
    assert with_feats["metrics"] == res["metrics"]
    np.testing.assert_array_equal(np.stack([f["kinetic"] for f in with_feats["features"]["pred"]]), kp)
    assert len(with_feats["features"]["gt"]) == 5 and "hand" in with_feats["features"]["pred"][0]
    assert set(res["physical"]) == {"pfc", "pbc", "foot_skating", "floor_penetration", "jerk"}
    assert all(set(v) == {"pred", "gt"} for v in res["physical"].values())


def test_suite_protocols_and_dimensions():
    pred, gt = _set("p", 3, 3), _set("g", 3, 4)
    aist = evaluate_generation(pred, gt, "bailando-aist")
    assert aist["details"]["kinetic_dims"] == 72 and aist["metrics"]["fid_hand"] is None
    lodge = evaluate_generation(pred, gt, "lodge-finedance")
    assert lodge["details"]["kinetic_dims"] == 66 and lodge["settings"]["max_frames"] == 1024
    body_only = [s.with_positions(s.joints(SMPL_BODY_22), joint_names=SMPL_BODY_22) for s in pred]
    res = evaluate_generation(body_only, gt, "lodge-finedance")
    assert res["metrics"]["fid_hand"] is None and any("finger" in n for n in res["notes"])
    no_beats = [s.with_positions(s.positions) for s in gt]
    for s in no_beats:
        s.music_beats = None
    res = evaluate_generation(pred, no_beats, "dancesearch")
    assert res["gt_reference"]["bas"] is None and res["metrics"]["bas"] is not None


# ---------------------------------------------------------------------------------------------- errors
def test_errors_name_the_sequence():
    good = _set("g", 3, 5, frames=40)
    with pytest.raises(InputError, match="no pred sequences"):
        evaluate_generation([], good)
    with pytest.raises(InputError, match="p0.*at least 2 pred"):
        evaluate_generation(_set("p", 1, 6, frames=40), good)
    bad = _dance("nan_dance", 7, frames=40)
    pos = bad.positions.copy()
    pos[3, 2, 1] = np.nan
    with pytest.raises(InputError, match="nan_dance.*NaN"):
        DanceSample("nan_dance", pos, 30.0, bad.joint_names)
    short = _dance("two_frames", 8, frames=2)
    with pytest.raises(InputError, match="two_frames.*too few frames"):
        evaluate_generation([short] + good[:1], good)
    body = _dance("body_only", 9, frames=40)
    body = body.with_positions(body.joints(SMPL_BODY_22), joint_names=SMPL_BODY_22)
    with pytest.raises(InputError, match="body_only.*pred sample lacks joints.*bailando-aist.*22 joints"):
        evaluate_generation([body, good[0]], good, "bailando-aist")
    with pytest.raises(InputError, match="unknown generation-metrics protocol"):
        get_protocol("fancy")


# ---------------------------------------------------------------------------------------------- CLI
def _write_folder(folder, samples, as_record: bool = False):
    folder.mkdir()
    for s in samples:
        if as_record:
            MotionRecord(s.fps, s.positions[:, 0], s.positions, list(s.joint_names)).save(folder / f"{s.name}.npz")
        else:
            np.savez(folder / f"{s.name}.npz", positions=s.positions.astype(np.float32), fps=np.float32(s.fps),
                     joint_names=np.asarray(s.joint_names), music_beats=s.music_beats)


def test_cli_end_to_end(tmp_path, capsys):
    from ui.cli import main

    _write_folder(tmp_path / "pred", _set("p", 3, 10, frames=60))
    _write_folder(tmp_path / "gt", _set("g", 3, 11, frames=60), as_record=True)
    out = tmp_path / "res" / "gen.json"
    rc = main(["eval", "generation", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
               "--protocol", "lodge-finedance", "--json", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    payload = json.loads(captured.out)
    assert payload["protocol"] == "lodge-finedance" and payload["counts"] == json.loads(out.read_text())["counts"]
    assert payload["counts"]["pred_with_beats"] == 3 and payload["counts"]["gt_with_beats"] == 0
    assert payload["metrics"]["fid_k"] is not None and payload["gt_reference"]["bas"] is None
    assert out.with_suffix(".md").read_text().startswith("# Generation metrics")
    rc = main(["eval", "generation", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")])
    assert rc == 0 and "| BAS |" in capsys.readouterr().err


def test_cli_errors_and_exit_codes(tmp_path, capsys):
    from ui.cli import main

    _write_folder(tmp_path / "pred", _set("p", 2, 12, frames=30))
    assert main(["eval", "generation", "--pred", str(tmp_path / "pred")]) == 2            # no --gt
    with pytest.raises(SystemExit) as exc:
        main(["eval", "generation", "--pred", str(tmp_path / "pred"), "--gt", "x", "--protocol", "nope"])
    assert exc.value.code == 2
    assert main(["eval", "generation", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "pred"),
                 "--out", str(tmp_path / "r.txt")]) == 2
    bad = tmp_path / "bad"
    bad.mkdir()
    np.savez(bad / "odd.npz", positions=np.zeros((10, 7, 3)))
    np.savez(bad / "fine.npz", positions=np.zeros((10, 22, 3)))
    capsys.readouterr()
    assert main(["eval", "generation", "--pred", str(tmp_path / "pred"), "--gt", str(bad)]) == 1
    assert "odd.npz" in capsys.readouterr().err
    assert main(["eval", "generation", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "missing")]) == 1


def test_gt_constant_dimensions_explode_fid_in_the_reference_rule_and_are_dropped_in_ours() -> None:
    from generation.metrics.fid import score_feature_sets

    rng = np.random.default_rng(0)
    gt = rng.normal(size=(40, 5))
    pred = rng.normal(size=(40, 5))
    gt[:, 4] = 0.0                          # a test the GT set never trips
    pred[:, 4] = 0.0
    pred[7, 4] = 1.0 / 119                  # ... tripped in one frame of one predicted window
    ref = score_feature_sets(pred, gt)
    ours = score_feature_sets(pred, gt, drop_constant_below=1e-6)
    assert ref.fid > 1e12 and ours.dropped_dims == 1
    assert ours.fid == pytest.approx(score_feature_sets(pred[:, :4], gt[:, :4]).fid)
