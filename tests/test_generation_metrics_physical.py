"""Physical plausibility metrics (issue 13): PFC, PBC, foot skating, floor penetration, jerk.

Fast, constructed cases with hand-computed values; the reference code itself is only run by
bench/compare_physical_reference.py (docs/results/physical_metrics_reference.md).
"""
from __future__ import annotations

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.skeleton import smpl24, smplx52
from generation.metrics.jerk import jerk, jerk_at, mean_jerk, seam_jerk_summary
from generation.metrics.pbc import pbc, pbc_set
from generation.metrics.penetration import estimate_floor, floor_penetration, floor_penetration_set
from generation.metrics.pfc import pfc, pfc_frames, pfc_set, yup_to_zup
from generation.metrics.sample import DanceSample
from generation.metrics.skating import foot_skating, foot_skating_set

NAMES = smpl24().names
IDX = {n: i for i, n in enumerate(NAMES)}
FPS = 30.0


def standing(frames: int) -> np.ndarray:
    """(T, 24, 3) rest pose standing on the floor: the lowest foot joint at y = 0."""
    rest = smpl24().rest_positions()
    feet = [IDX[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    rest[:, 1] -= rest[feet, 1].min()
    return np.repeat(rest[None], frames, axis=0)


def sample(pos: np.ndarray, name: str = "dance", fps: float = FPS, names=NAMES) -> DanceSample:
    return DanceSample(name, pos, fps, names)


def set_joint(pos: np.ndarray, joint: str, axis: int, values) -> None:
    pos[:, IDX[joint], axis] = np.asarray(values, dtype=np.float64)


# ------------------------------------------------------------------------------------------------ PFC

def test_pfc_zero_when_feet_and_root_never_move():
    pos = standing(90)
    t = np.arange(90) / FPS
    for j in ("left_wrist", "right_wrist", "head", "left_elbow"):  # the upper body dances
        pos[:, IDX[j], 0] += 0.2 * np.sin(2 * np.pi * t)
    s = sample(pos, "still_feet")
    assert pfc(s) == 0.0  # the reference divides 0 by 0 here (NaN); documented deviation
    assert np.all(pfc_frames(s) == 0.0)


def _walk(frames: int, slide: float) -> np.ndarray:
    """Root accelerating forward (+z); the feet slide with ``slide`` x the root's motion (0 = planted)."""
    pos = standing(frames)
    t = np.arange(frames) / FPS
    root_z = 0.5 * t ** 2 + 0.05 * np.sin(2 * np.pi * 1.5 * t)  # accelerating, with a wobble
    pos[:, :, 2] += root_z[:, None]
    for j in ("left_ankle", "left_foot", "right_ankle", "right_foot"):
        pos[:, IDX[j], 2] = pos[0, IDX[j], 2] + slide * (root_z - root_z[0])
    return pos


def test_pfc_grows_when_feet_slide_while_root_accelerates():
    planted, half, full = (pfc(sample(_walk(120, k))) for k in (0.0, 0.5, 1.0))
    assert planted == 0.0
    assert 0.0 < half < full
    assert full == pytest.approx(4 * half, rel=1e-9)  # product of the two feet's speeds: quadratic in slide


def test_pfc_hand_computed_and_up_axis_clamp():
    pos = np.zeros((5, 24, 3))
    set_joint(pos, "pelvis", 0, [0, 0, 0.01, 0.03, 0.03])      # a = [9, 9, -18] m/s^2 -> [0.5, 0.5, 1]
    set_joint(pos, "left_ankle", 2, [0, 0, 0.02, 0.04, 0.06])  # 0.02 m/frame
    set_joint(pos, "left_foot", 2, [0, 0, 0.03, 0.06, 0.09])   # 0.03 -> left min 0.02
    set_joint(pos, "right_ankle", 0, [0, 0, 0.01, 0.02, 0.03])
    set_joint(pos, "right_foot", 0, [0, 0, 0.01, 0.02, 0.03])  # right min 0.01
    s = sample(pos, "hand")
    np.testing.assert_allclose(pfc_frames(s), [1e-4, 1e-4, 2e-4], rtol=1e-12)
    assert pfc(s) == pytest.approx(4e-4 / 3 * 1e4, rel=1e-12)
    # the same root motion straight down (+y is up): a falling root needs no support, the clamp removes it
    down = pos.copy()
    down[:, IDX["pelvis"], 1] = -np.array([0, 0, 0.01, 0.03, 0.07])  # ever faster down
    down[:, IDX["pelvis"], 0] = 0.0
    assert pfc(sample(down, "falling")) == 0.0
    up = down.copy()
    up[:, IDX["pelvis"], 1] *= -1  # ever faster up: needs the floor
    assert pfc(sample(up, "rising")) > 0.0


def test_pfc_set_is_mean_of_sequences_and_fps_and_windows():
    a, b = sample(_walk(150, 0.5), "a"), sample(_walk(150, 1.0), "b")
    assert pfc_set([a, b]) == pytest.approx((pfc(a) + pfc(b)) / 2, rel=1e-12)
    # a 60-fps sample is resampled to EDGE's 30 fps: the same motion scores the same
    t60 = np.arange(121) / 60.0
    base = standing(121)
    base[:, :, 2] += (0.5 * t60 ** 2)[:, None]
    for j in ("left_ankle", "left_foot", "right_ankle", "right_foot"):
        base[:, IDX[j], 2] = base[0, IDX[j], 2] + 0.3 * np.sin(3 * t60) + 0.1 * t60 ** 2
    s60 = sample(base, "sixty", fps=60.0)
    s30 = sample(base[::2], "thirty", fps=30.0)
    assert pfc(s60) == pytest.approx(pfc(s30), rel=1e-9)
    assert pfc(s60, fps=None) < pfc(s30)  # per-frame speeds at 60 fps are halved
    # windows: two 150-frame halves averaged
    long = sample(_walk(300, 0.7), "long")
    halves = [sample(long.positions[:150], "h1"), sample(long.positions[150:], "h2")]
    assert pfc(long, window_frames=150) == pytest.approx(np.mean([pfc(h) for h in halves]), rel=1e-12)


def test_yup_to_zup_inverts_the_project_conversion_exactly():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(7, 5, 3))
    y = np.stack([z[..., 0], z[..., 2], -z[..., 1]], axis=-1)  # encoders.motion.convert, up_axis='z'
    assert np.array_equal(yup_to_zup(y), z)


# ------------------------------------------------------------------------------------------------ PBC

def test_pbc_hand_computed():
    pos = np.zeros((5, 24, 3))
    set_joint(pos, "pelvis", 0, [0, 0, 0.01, 0.03, 0.03])
    set_joint(pos, "left_ankle", 2, [0, 0, 0.02, 0.04, 0.06])
    set_joint(pos, "left_foot", 2, [0, 0, 0.03, 0.06, 0.09])
    set_joint(pos, "right_ankle", 0, [0, 0, 0.01, 0.02, 0.03])
    set_joint(pos, "right_foot", 0, [0, 0, 0.01, 0.02, 0.03])   # PFC terms [1e-4, 1e-4, 2e-4]
    set_joint(pos, "left_collar", 0, [0, 0, 0, 0, 0.01])         # acceleration [0, 0, 1] after normalising
    set_joint(pos, "left_wrist", 1, [0, 0.1, 0.2, 0.3, 0.4])     # 0.1 m/frame
    set_joint(pos, "left_palm", 1, [0, 0.2, 0.4, 0.6, 0.8])      # 0.2 -> min 0.1
    set_joint(pos, "right_wrist", 1, [0, 0.1, 0.2, 0.3, 0.4])    # right collar still: term 0
    set_joint(pos, "right_palm", 1, [0, 0.1, 0.2, 0.3, 0.4])
    set_joint(pos, "neck", 2, [0, 0.01, 0, 0.01, 0])             # |a| constant -> [1, 1, 1]
    set_joint(pos, "head", 1, [0, 0, 0.05, 0.1, 0.15])           # 0.05 m/frame
    # frames: 0.01*0.1*[0,0,1] + 0.1*0.05*[1,1,1] - [1e-4,1e-4,2e-4] = [0.0049, 0.0049, 0.0058]
    s = sample(pos, "hand")
    assert pbc(s) == pytest.approx((0.0049 + 0.0049 + 0.0058) / 3 * 1e4, rel=1e-12)  # 52.0
    assert pbc_set([s, s]) == pytest.approx(52.0, rel=1e-12)


def test_pbc_smplx_uses_middle_finger_as_hand_and_names_missing_joints():
    names = smplx52().names
    rng = np.random.default_rng(3)
    pos = np.cumsum(rng.normal(0, 0.01, size=(40, len(names), 3)), axis=0)
    value = pbc(DanceSample("smplx", pos, FPS, names))
    explicit = pbc(DanceSample("smplx", pos, FPS, names), hand_joints=("left_middle1", "right_middle1"))
    assert value == explicit and np.isfinite(value)
    body22 = list(names[:22])
    with pytest.raises(InputError, match="body22.*left_palm"):
        pbc(DanceSample("body22", pos[:, :22], FPS, body22))


# ------------------------------------------------------------------------------------------------ skating

def _sliding_left(frames: int = 150, start: int = 50, steps: int = 30, speed: float = 1.0) -> np.ndarray:
    pos = standing(frames)
    t = np.arange(frames)
    shift = np.clip(t - start, 0, steps) * speed / FPS  # the left foot slides `steps` steps at `speed` m/s
    for j in ("left_ankle", "left_foot"):
        pos[:, IDX[j], 0] += shift
    return pos


def test_skating_zero_for_planted_feet():
    pos = standing(100)
    pos[:, :, 2] += 0.0005 * np.sin(np.arange(100))[:, None]  # half-millimetre jitter
    r = foot_skating(sample(pos, "planted"))
    assert r.ratio == 0.0 and r.contact_frames == 4 * 99 and r.floor == pytest.approx(0.0, abs=1e-12)
    assert foot_skating(sample(pos, "planted"), mode="lodge").ratio == 0.0


def test_skating_expected_share_for_a_sliding_segment():
    s = sample(_sliding_left(), "slide")
    r = foot_skating(s)
    assert (r.left_contact, r.left_sliding, r.right_contact, r.right_sliding) == (298, 60, 298, 0)
    assert r.ratio == pytest.approx(60 / 596) and r.left == pytest.approx(60 / 298) and r.right == 0.0
    # LODGE: per foot and frame; |mean(v_x, v_z)| = 1/60 m/frame > 0.01; ratio in float32
    lodge = foot_skating(s, mode="lodge")
    assert (lodge.left_contact, lodge.left_sliding) == (150, 30)
    assert lodge.left == float(np.float32(30) / np.float32(150)) and lodge.right == 0.0
    assert lodge.ratio == pytest.approx(0.1, rel=1e-6)
    # slower than the threshold: not sliding
    assert foot_skating(sample(_sliding_left(speed=0.4), "slow")).ratio == 0.0


def test_skating_ignores_lifted_feet_and_set_pools_frames():
    pos = _sliding_left()
    for j in ("left_ankle", "left_foot"):
        pos[50:81, IDX[j], 1] += 0.2  # the moving foot is in the air
    r = foot_skating(sample(pos, "lifted"))
    assert r.left_sliding == 0 and r.ratio == 0.0
    both = foot_skating_set([sample(_sliding_left(), "a"), sample(pos, "b")])
    assert both.sliding_frames == 60 and both.contact_frames == 596 + r.contact_frames
    lodge = foot_skating_set([sample(_sliding_left(), "a"), sample(pos, "b")], mode="lodge")
    assert lodge.left == pytest.approx((0.2 + 0.0) / 2, rel=1e-6)


def test_skating_lodge_mode_is_blind_to_diagonal_slides():
    pos = standing(60)
    step = np.clip(np.arange(60) - 10, 0, 30) * 0.03 / np.sqrt(2)
    for j in ("left_ankle", "left_foot"):
        pos[:, IDX[j], 0] += step
        pos[:, IDX[j], 2] -= step  # along x = -z: LODGE's signed mean of v_x and v_z is 0
    s = sample(pos, "diag")
    assert foot_skating(s, mode="lodge").left_sliding == 0
    assert foot_skating(s).left_sliding == 60


# ------------------------------------------------------------------------------------------------ penetration

def test_penetration_body_pushed_below_the_floor():
    pos = standing(100)
    pos[10:13] -= np.array([0.0, 0.05, 0.0])  # three frames 5 cm down
    r = floor_penetration(sample(pos, "sink"))
    assert r.frames_below == 3 and r.frame_fraction == pytest.approx(0.03)
    assert r.max_depth == pytest.approx(0.05) and r.mean_depth == pytest.approx(3 * 0.05 / 100)
    assert r.mean_depth_below == pytest.approx(0.05)
    assert r.joint_fraction == pytest.approx(3 * 2 / (100 * 24))  # the two toe joints stand at y = 0
    est = floor_penetration(sample(pos, "sink"), floor="estimate")
    assert est.floor == pytest.approx(0.0, abs=1e-12) and est.frames_below == 3
    # a whole dance 10 cm too low: the project's floor (y = 0) sees it, the estimated floor does not
    low = standing(100) - np.array([0.0, 0.1, 0.0])
    assert floor_penetration(sample(low, "low")).frame_fraction == 1.0
    assert estimate_floor(sample(low, "low")) == pytest.approx(-0.1)
    assert floor_penetration(sample(low, "low"), floor="estimate").frames_below == 0
    # within the tolerance: not counted
    shallow = standing(10) - np.array([0.0, 0.005, 0.0])
    assert floor_penetration(sample(shallow, "shallow")).frames_below == 0
    pooled = floor_penetration_set([sample(pos, "a"), sample(low, "b")])
    assert pooled.frames == 200 and pooled.frames_below == 103


# ------------------------------------------------------------------------------------------------ jerk

def test_jerk_of_a_cubic_is_the_analytic_constant():
    t = np.arange(60) / FPS
    pos = np.zeros((60, 2, 3))
    direction = np.array([1.0, 2.0, 2.0]) / 3.0
    pos[:, 0] = (2.0 * t ** 3)[:, None] * direction  # jerk 12 m/s^3 along a unit vector
    j = jerk(sample(pos, "cubic", names=("a", "b")))
    assert j.shape == (57, 2)
    np.testing.assert_allclose(j[:, 0], 12.0, rtol=1e-6)
    np.testing.assert_allclose(j[:, 1], 0.0, atol=0)
    assert mean_jerk(sample(pos, "cubic", names=("a", "b")), joints=["a"]) == pytest.approx(12.0, rel=1e-6)


def test_jerk_at_a_constructed_seam():
    t = np.arange(90) / FPS
    pos = np.zeros((90, 1, 3))
    pos[:, 0, 0] = 0.1 * np.sin(2 * np.pi * t)  # smooth motion inside the windows
    pos[45:, 0, 1] += 0.02  # stitched window starting at frame 45 lands 2 cm higher
    s = sample(pos, "stitched", names=("hand",))
    smooth = np.abs((2 * np.pi) ** 3 * 0.1 * np.cos(2 * np.pi * (t[43:47])))
    at = jerk_at(s, [44, 45, 46])[:, 0]
    # a jump d gives 2 d fps^3 on the seam's boundary, d fps^3 on its neighbours (plus the smooth part)
    assert at[1] == pytest.approx(np.hypot(2 * 0.02 * FPS ** 3, np.mean(smooth[1:3])), rel=0.02)
    assert at[0] == pytest.approx(np.hypot(0.02 * FPS ** 3, np.mean(smooth[0:2])), rel=0.02)
    summary = seam_jerk_summary(s, [45])
    assert summary.visible == [True] and summary.seam_percentile == [1.0]
    assert summary.ratio_to_median[0] > 10
    smooth_only = sample(pos - np.where(np.arange(90) >= 45, 0.02, 0.0)[:, None, None] * np.array([0, 1, 0]),
                         "smooth", names=("hand",))
    quiet = seam_jerk_summary(smooth_only, [30])  # seam where the sine's jerk is small: not visible
    assert quiet.visible == [False] and not quiet.any_visible


# ------------------------------------------------------------------------------------------------ errors

def test_errors_name_the_sample():
    with pytest.raises(InputError, match="tiny.*too few frames for PFC"):
        pfc(sample(standing(2), "tiny"))
    with pytest.raises(InputError, match="tiny.*too few frames for PBC"):
        pbc(sample(standing(2), "tiny"))
    with pytest.raises(InputError, match="short.*too few frames for jerk"):
        jerk(sample(standing(3), "short"))
    with pytest.raises(InputError, match="ends.*frames too close"):
        jerk_at(sample(standing(20), "ends"), [1])
    feetless = DanceSample("feetless", np.zeros((10, 3, 3)), FPS, ("pelvis", "neck", "head"))
    for fn in (pfc, lambda s: foot_skating(s), lambda s: foot_skating(s, mode="lodge"), estimate_floor):
        with pytest.raises(InputError, match="feetless.*lacks joints.*left_ankle"):
            fn(feetless)
    with pytest.raises(InputError, match="no samples"):
        pfc_set([])
    with pytest.raises(InputError, match="unknown foot skating mode"):
        foot_skating(sample(standing(10), "m"), mode="gmd")
    with pytest.raises(InputError, match="resampling"):
        pfc(sample(standing(5), "fast", fps=120.0))  # 5 frames at 120 fps -> 2 frames at 30 fps


# ------------------------------------------------------------------------------------------------ real data

def test_real_aistpp_slices_match_the_recorded_reference_numbers(shared_data):
    """The reference outputs recorded by bench/compare_physical_reference.py, recomputed without the reference."""
    import json
    from pathlib import Path

    recorded = Path(__file__).resolve().parents[1] / "docs" / "results" / "physical_metrics_reference.json"
    if not recorded.is_file():
        pytest.skip(f"{recorded} not generated")
    rows = {r["dance"]: r for r in json.loads(recorded.read_text())["per_dance"] if r["kind"] == "aistpp"}
    files = sorted((shared_data / "aistpp_joint_slices").glob("*.csv"))
    assert files and len(rows) == len(files)
    for f in files:
        z = np.loadtxt(f, delimiter=",").reshape(-1, 24, 3)
        s = sample(np.stack([z[..., 0], z[..., 2], -z[..., 1]], axis=-1), f.stem)
        row = rows[f"aistpp:{f.stem}"]
        assert pfc(s) == pytest.approx(row["PFC (EDGE)"]["reference"], rel=1e-12, abs=0)
        assert pbc(s) == pytest.approx(row["PBC (POPDG)"]["reference"], rel=1e-12, abs=0)
        lodge = foot_skating(s, mode="lodge")
        for side in ("left", "right"):
            ref = row[f"skating {side} (LODGE)"]["reference"]
            assert (np.isnan(getattr(lodge, side)) if ref is None else getattr(lodge, side) == ref)
        assert np.isfinite(mean_jerk(s))
