"""BVH export (``encoders.motion.bvh_write``): both layouts read back by our own reader, parents, atomic file."""
from __future__ import annotations

import numpy as np

from encoders.motion.bvh import parse_bvh, read_bvh
from encoders.motion.bvh_write import motion_bvh, parents_for, write_bvh
from encoders.motion.convert import from_smplx_axis_angle
from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import SMPL_BODY_22, smplx52


def rotation_record(frames: int = 20) -> MotionRecord:
    rng = np.random.default_rng(0)
    poses = rng.normal(0.0, 0.3, size=(frames, 52, 3))
    trans = np.cumsum(rng.normal(0.0, 0.01, size=(frames, 3)), axis=0) + [0.0, 0.9, 0.0]
    return from_smplx_axis_angle(trans, poses, 30.0)


def positions_record(frames: int = 12) -> MotionRecord:
    sk = smplx52()
    rest = sk.rest_positions()[[sk.index(n) for n in SMPL_BODY_22]]
    wave = np.sin(np.arange(frames) / 3.0)[:, None, None] * np.array([0.1, 0.05, 0.0])
    pos = rest[None] + wave + np.array([0.0, 0.95, 0.0])
    return MotionRecord(30.0, pos[:, 0], pos, list(SMPL_BODY_22))


def test_parents_for_skips_missing_joints_by_hand() -> None:
    names = ["pelvis", "left_hip", "left_ankle", "head", "prop"]
    # left_knee is absent: the ankle hangs off the hip; head's spine/neck are absent: off the pelvis;
    # an unknown joint hangs off the root
    assert parents_for(names) == [-1, 0, 1, 0, 0]
    # the root is the pelvis wherever it is listed
    assert parents_for(["left_hip", "pelvis"]) == [1, -1]


def test_rotation_layout_reads_back_to_the_record_positions() -> None:
    record = rotation_record()
    text = motion_bvh(record)
    assert text.startswith("HIERARCHY\nROOT pelvis") and "Frame Time: 0.03333333" in text
    parsed = parse_bvh(text)
    assert parsed.num_frames == record.num_frames and parsed.fps == 30.0
    assert sorted(parsed.joint_names) == sorted(smplx52().names)  # depth-first in the file
    idx = [parsed.names.index(n) for n in record.joint_names]
    np.testing.assert_allclose(parsed.positions(1.0)[:, idx], record.positions, atol=2e-3)


def test_position_layout_reads_back_exactly() -> None:
    record = positions_record()
    parsed = parse_bvh(motion_bvh(record))
    assert "CHANNELS 3 Xposition Yposition Zposition" in motion_bvh(record)
    idx = [parsed.names.index(n) for n in record.joint_names]
    np.testing.assert_allclose(parsed.positions(1.0)[:, idx], record.positions, atol=1e-5)


def test_write_bvh_writes_the_text_atomically(tmp_path) -> None:
    record = positions_record()
    path = tmp_path / "out" / "clip.bvh"
    write_bvh(record, path)
    assert path.read_text(encoding="utf-8") == motion_bvh(record)
    assert [p.name for p in path.parent.iterdir()] == ["clip.bvh"]  # no temporary file left behind
    assert read_bvh(path).num_frames == record.num_frames
