"""Joint-name conventions -> the 22 SMPL body joints."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.bvh import read_bvh
from encoders.motion.convert import from_positions
from encoders.motion.joint_map import (CONVENTIONS, detect_convention, map_to_smpl22, normalise_name,
                                       positions_smpl22)
from encoders.motion.skeleton import SMPL_BODY_22, smpl24

EDGE_NAMES = ["root", "lhip", "rhip", "belly", "lknee", "rknee", "spine", "lankle", "rankle", "chest", "ltoes",
              "rtoes", "neck", "linshoulder", "rinshoulder", "head", "lshoulder", "rshoulder", "lelbow", "relbow",
              "lwrist", "rwrist", "lhand", "rhand"]

MIXAMO_NAMES = ["mixamorig:" + n for n in (
    "Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End", "LeftShoulder", "LeftArm", "LeftForeArm",
    "LeftHand", "RightShoulder", "RightArm", "RightForeArm", "RightHand", "LeftUpLeg", "LeftLeg", "LeftFoot",
    "LeftToeBase", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase")]

SMPL_CAPS = ["Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle", "Spine3",
             "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow",
             "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand"]


def test_every_table_covers_the_22_joints() -> None:
    for table in CONVENTIONS.values():
        assert set(table) == set(SMPL_BODY_22)


@pytest.mark.parametrize("names,conv", [(list(SMPL_BODY_22), "smpl"), (EDGE_NAMES, "edge"),
                                        (MIXAMO_NAMES, "mixamo"), (SMPL_CAPS, "smpl_caps"),
                                        (list(smpl24().names), "smpl")])
def test_detects_synthetic_conventions(names: list[str], conv: str) -> None:
    assert detect_convention(names) == conv
    mapping = map_to_smpl22(names)
    assert list(mapping) == list(SMPL_BODY_22)


def test_smpl_names_map_to_themselves_in_any_order() -> None:
    names = list(reversed(SMPL_BODY_22)) + ["left_index1"]
    mapping = map_to_smpl22(names)
    assert all(names[mapping[n]] == n for n in SMPL_BODY_22)


def test_mixamo_prefix_is_ignored_and_names_are_exact() -> None:
    assert normalise_name("mixamorig1:LeftUpLeg") == "leftupleg"
    mapping = map_to_smpl22(MIXAMO_NAMES)
    assert MIXAMO_NAMES[mapping["left_hip"]] == "mixamorig:LeftUpLeg"
    assert MIXAMO_NAMES[mapping["left_collar"]] == "mixamorig:LeftShoulder"
    assert MIXAMO_NAMES[mapping["left_shoulder"]] == "mixamorig:LeftArm"
    assert MIXAMO_NAMES[mapping["spine3"]] == "mixamorig:Spine2"


def test_positions_smpl22_interpolates_between_neighbours() -> None:
    names = ["hip", "abdomen", "chest", "neck", "head"] + [
        f"{s}{j}" for s in "lr" for j in ("Thigh", "Shin", "Foot", "Foot_EndSite", "Collar", "Shldr", "ForeArm", "Hand")]
    pos = np.zeros((2, len(names), 3))
    pos[:, names.index("hip")] = [0, 1.0, 0]
    pos[:, names.index("abdomen")] = [0, 1.2, 0]
    pos[:, names.index("chest")] = [0, 1.4, 0]
    pos[:, names.index("lThigh")] = [0.1, 0.9, 0]
    out = positions_smpl22(pos, names)
    assert out.shape == (2, 22, 3)
    np.testing.assert_allclose(out[:, SMPL_BODY_22.index("spine1")], [[0, 1.12, 0]] * 2)   # 60 % hip -> abdomen
    np.testing.assert_allclose(out[:, SMPL_BODY_22.index("spine2")], [[0, 1.34, 0]] * 2)   # 70 % abdomen -> chest
    np.testing.assert_allclose(out[:, SMPL_BODY_22.index("left_hip")], [[0.1, 0.9, 0]] * 2)
    assert detect_convention(names) == "cmu_daz"


def test_same_name_means_different_joints_in_different_conventions() -> None:
    # "LeftShoulder" is the collar in CMU mb but the shoulder joint in the ASF-named conversion.
    mb = ["Hips", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head"] + [
        f"{s}{j}" for s in ("Left", "Right") for j in ("UpLeg", "Leg", "Foot", "ToeBase", "Shoulder", "Arm",
                                                       "ForeArm", "Hand")]
    asf = ["Hips", "lowerback", "Chest", "Chest2", "lowerneck", "Neck", "Head"] + [
        f"{s}{j}" for s in ("Left", "Right") for j in ("Hip", "Knee", "Ankle", "Toe", "Collar", "Shoulder",
                                                       "Elbow", "Wrist")]
    assert detect_convention(mb) == "cmu_mb" and detect_convention(asf) == "cmu_asf"
    assert mb[map_to_smpl22(mb)["left_collar"]] == "LeftShoulder"
    assert asf[map_to_smpl22(asf)["left_shoulder"]] == "LeftShoulder"


def test_unknown_convention_is_a_clear_input_error() -> None:
    with pytest.raises(InputError) as err:
        map_to_smpl22(["Bone001", "Bone002", "Bone003"])
    msg = str(err.value)
    assert "joint_names" in msg and "no known skeleton convention" in msg and "Bone001" in msg


def test_incomplete_convention_names_missing_joints() -> None:
    names = [n for n in EDGE_NAMES if n != "lknee"]
    with pytest.raises(InputError) as err:
        map_to_smpl22(names)
    assert "edge" in str(err.value) and "lknee" in str(err.value)


def test_forced_convention_and_unknown_forced_convention() -> None:
    assert map_to_smpl22(EDGE_NAMES, convention="edge")["left_knee"] == EDGE_NAMES.index("lknee")
    with pytest.raises(InputError):
        map_to_smpl22(EDGE_NAMES, convention="cmu_daz")
    with pytest.raises(InputError):
        map_to_smpl22(EDGE_NAMES, convention="nope")


def test_positions_shape_errors() -> None:
    with pytest.raises(InputError):
        positions_smpl22(np.zeros((3, 24, 2)), EDGE_NAMES)
    with pytest.raises(InputError):
        positions_smpl22(np.zeros((3, 23, 3)), EDGE_NAMES)


# ---------------------------------------------------------------- real files

EXPECTED = {"05_11_pirouette.bvh": "cmu_daz", "05_20-daz.bvh": "cmu_daz", "05_20-mb.bvh": "cmu_mb",
            "94_01.bvh": "cmu_asf"}


def test_all_shared_bvh_conventions_are_recognised(shared_data: Path) -> None:
    files = sorted((shared_data / "bvh").rglob("*.bvh*"))
    assert len(files) >= 4
    seen = set()
    # Reading the hierarchy is cheap, but parse only one of the identical salsa skeletons.
    for f in [f for f in files if "cmu_salsa" not in str(f)] + [f for f in files if "cmu_salsa" in str(f)][:2]:
        bvh = read_bvh(f)
        conv = detect_convention(bvh.names)
        assert conv is not None, f"{f.name}: {bvh.names[:10]}"
        assert conv == EXPECTED.get(f.name, "cmu_daz"), f.name
        seen.add(conv)
    assert seen == {"cmu_daz", "cmu_mb", "cmu_asf"}


def _slices(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "aistpp_joint_slices").glob("*.csv"))
    assert files, "no AIST++ slices"
    return files


def test_aistpp_slices_load_upright_and_not_mirrored(shared_data: Path) -> None:
    names = json.loads((shared_data / "skeleton" / "edge_smpl24_skeleton.json").read_text())["names"]
    assert names == EDGE_NAMES
    for f in _slices(shared_data):
        arr = np.loadtxt(f, delimiter=",")
        assert arr.shape == (150, 72), f.name
        rec = from_positions(arr.reshape(150, 24, 3), names, fps=30, up_axis="z")
        body = rec.body22()
        assert rec.fps == 30 and rec.num_frames == 150
        head = body[:, SMPL_BODY_22.index("head"), 1]
        feet = body[:, [SMPL_BODY_22.index(n) for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")], 1]
        assert (head > feet.max(axis=1)).mean() > 0.9, f.name          # break dance may go upside down briefly
        assert np.median(head - feet.min(axis=1)) > 1.0, f.name
        # Not mirrored: with +y up and left = left_hip - right_hip, forward = left x up, and
        # the toes (SMPL foot joints) are ahead of the ankles in most frames.
        left = body[:, 1] - body[:, 2]
        fwd = np.cross(left, [0.0, 1.0, 0.0])
        toe = body[:, SMPL_BODY_22.index("left_foot")] - body[:, SMPL_BODY_22.index("left_ankle")]
        assert ((toe * fwd).sum(axis=1) > 0).mean() > 0.7, f.name


def test_aistpp_slices_with_smpl_names_give_same_record(shared_data: Path) -> None:
    f = _slices(shared_data)[0]
    arr = np.loadtxt(f, delimiter=",").reshape(150, 24, 3)
    a = from_positions(arr, EDGE_NAMES, fps=30, up_axis="z")
    b = from_positions(arr, list(smpl24().names), fps=30, up_axis="z")
    np.testing.assert_allclose(a.positions, b.positions)
    # z-up conversion is a proper rotation: distances are unchanged
    np.testing.assert_allclose(np.linalg.norm(a.positions[:, 1] - a.positions[:, 4], axis=-1),
                               np.linalg.norm(arr[:, 1] - arr[:, 4], axis=-1), rtol=1e-5)
