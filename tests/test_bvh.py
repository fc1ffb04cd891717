"""BVH reading, forward kinematics, units and conversion to MotionRecord."""
from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.bvh import parse_bvh, read_bvh
from encoders.motion.skeleton import FOOT_JOINTS, SMPL_BODY_22, smplx52

ARM = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Upper Arm
  {
    OFFSET 10 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 5 0 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 0 0 0 0 0 0
0 0 0 90 0 0 0 0 90
"""


def test_parse_small_chain_by_hand() -> None:
    bvh = parse_bvh(ARM)
    assert bvh.names == ["Hips", "Upper Arm", "Upper Arm_EndSite"]       # names with spaces are kept
    assert bvh.parents == [-1, 0, 1] and bvh.is_end_site == [False, False, True]
    assert bvh.joint_names == ["Hips", "Upper Arm"]
    assert bvh.channels[1] == ("zrotation", "xrotation", "yrotation") and bvh.channel_start == [0, 6, 9]
    assert bvh.num_frames == 2 and bvh.fps == 2.0 and bvh.duration_s == 1.0
    pos = bvh.positions()
    # frame 0: translated by (1, 2, 3), no rotation
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [11, 2, 3], [16, 2, 3]], atol=1e-9)
    # frame 1: root Rz(90) maps +x to +y: joint at (0, 10, 0); the joint's own Ry(90) maps +x to -z,
    # then the root's Rz(90) leaves -z: end site = (0, 10, 0) + (0, 0, -5)
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [0, 10, 0], [0, 10, -5]], atol=1e-9)
    np.testing.assert_allclose(bvh.positions(scale=0.01)[0, 2], [0.16, 0.02, 0.03], atol=1e-12)


def test_position_channels_on_a_child_and_partial_rotation_channels() -> None:
    text = """HIERARCHY
ROOT a
{ OFFSET 0 0 0
  CHANNELS 1 Yrotation
  JOINT b {
    OFFSET 1 0 0
    CHANNELS 4 Yposition Xposition Zrotation Xrotation
    End Site { OFFSET 0 1 0 }
  }
}
MOTION
Frames: 1
Frame Time: 0.0333333
90 5 2 0 90
"""
    bvh = parse_bvh(text)
    pos = bvh.positions()
    # root Ry(90): +x -> -z. b's translation: x from Xposition (2), y from Yposition (5), z from OFFSET (0)
    # -> root frame (2, 5, 0) -> world (0, 5, -2). b's Rx(90) takes the end's +y to +z, root Ry(90): +z -> +x.
    np.testing.assert_allclose(pos[0], [[0, 0, 0], [0, 5, -2], [1, 5, -2]], atol=1e-9)
    assert bvh.fps == 30.0                       # 1 / 0.0333333 snapped to the integer rate


def test_whitespace_crlf_and_gzip(tmp_path: Path) -> None:
    messy = ARM.replace("\n", "\r\n").replace("  ", "\t").replace("Frame Time: 0.5", "Frame Time:\t0.5")
    messy = messy.replace("OFFSET 5 0 0", "OFFSET   5\t0   0 ") + "\r\n\r\n"
    plain = parse_bvh(ARM).positions()
    np.testing.assert_allclose(parse_bvh(messy).positions(), plain)
    gz = tmp_path / "arm.bvh.gz"
    gz.write_bytes(gzip.compress(messy.encode()))
    np.testing.assert_allclose(read_bvh(gz).positions(), plain)
    (tmp_path / "arm.bvh").write_text(ARM)
    assert read_bvh(tmp_path / "arm.bvh").path.endswith("arm.bvh")


@pytest.mark.parametrize("mutate,line,needle", [
    (lambda t: t.replace("MOTION\n", ""), None, "MOTION"),
    (lambda t: t.replace("OFFSET 10 0 0", "OFFSET 10 0"), 8, "OFFSET z"),
    (lambda t: t.replace("OFFSET 10 0 0", "OFFSET 10 zero 0"), 8, "OFFSET y"),
    (lambda t: t.replace("Xrotation Yrotation\n  JOINT", "Xrotation Wrotation\n  JOINT"), 5, "channel name"),
    (lambda t: t.replace("CHANNELS 3", "CHANNELS 7"), 9, "channel count"),
    (lambda t: t.replace("0 0 0 90 0 0 0 0 90", "0 0 0 90 0 0 0 0"), 20, "9 channel values"),
    (lambda t: t.replace("0 0 0 90 0 0 0 0 90\n", ""), None, "2 frame lines"),
    (lambda t: t.replace("1 2 3 0 0 0 0 0 0", "1 2 3 0 0 x 0 0 0"), 19, "numbers"),
    (lambda t: t.replace("1 2 3 0 0 0 0 0 0", "1 2 3 0 0 nan 0 0 0"), 19, "finite"),
    (lambda t: t.replace("Frames: 2", "Frames: two"), 17, "integer frame count"),
    (lambda t: t.replace("Frame Time: 0.5", "Frame Time: 0"), 18, "positive frame time"),
    (lambda t: t.replace("Frame Time: 0.5", "FrameRate: 2"), 18, "Frame Time"),
    (lambda t: t.replace("  }\n}\nMOTION", "  }\nMOTION"), None, "'}'"),
    (lambda t: t.replace("HIERARCHY", "HIERARCHIE"), 1, "HIERARCHY"),
    (lambda t: t.replace("ROOT Hips", "ROOT"), None, "joint name"),
    (lambda t: t + "0 0 0 0 0 0 0 0 0\n", 21, "more frame lines"),
])
def test_malformed_files_say_where_and_what(mutate, line, needle: str) -> None:
    bad = mutate(ARM)
    assert bad != ARM
    with pytest.raises(InputError) as err:
        parse_bvh(bad, "bad.bvh")
    msg = str(err.value)
    assert "bad.bvh" in msg and needle in msg, msg
    if line is not None:
        assert f"line {line}" in msg, msg


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read_bvh(tmp_path / "nope.bvh")
    (tmp_path / "broken.bvh.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(InputError) as err:
        read_bvh(tmp_path / "broken.bvh.gz")
    assert "gzip" in str(err.value)


# ---------------------------------------------------------------- a synthetic SMPL-named body

def body_bvh(unit: float, frames: int = 8, frame_time: float = 1 / 120, names: dict[str, str] | None = None) -> str:
    """The SMPL-X rest body (22 joints) as BVH text in a unit of ``unit`` metres, walking +z."""
    skel = smplx52()
    children: dict[int, list[int]] = {i: [] for i in range(22)}
    for j in range(1, 22):
        children[skel.parents[j]].append(j)
    rename = names or {}
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        kw = "ROOT" if j == 0 else "JOINT"
        lines.append(f"{pad}{kw} {rename.get(skel.names[j], skel.names[j])}")
        lines.append(pad + "{")
        off = skel.offsets[j] / unit
        lines.append(f"{pad}  OFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        chans = "6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" if j == 0 else "3 Zrotation Xrotation Yrotation"
        lines.append(f"{pad}  CHANNELS {chans}")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET 0 {0.1 / unit:.6f} 0", pad + "  }"])
        lines.append(pad + "}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {frame_time:.7f}"]
    for f in range(frames):
        root = np.array([0.0, 1.0, f * 0.01]) / unit
        lines.append(" ".join(f"{v:.6f}" for v in list(root) + [0.0] * (3 + 21 * 3)))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("unit,name", [(1.0, "metres"), (0.01, "centimetres"), (0.0254, "inches"),
                                       (0.0254 / 0.45, "CMU ASF"), (0.001, "millimetres")])
def test_unit_detection_and_record(unit: float, name: str) -> None:
    bvh = parse_bvh(body_bvh(unit, frames=9))
    scale, label = bvh.detect_scale()
    assert scale == pytest.approx(unit) and name in label
    rec = bvh.to_record()
    assert rec.fps == 30 and rec.num_frames == 3                      # 9 frames at 120 fps -> 3 at 30 fps
    assert rec.joint_names == list(SMPL_BODY_22) and rec.meta["joint_convention"] == "smpl"
    rest = smplx52().rest_positions()[:22]
    feet = [SMPL_BODY_22.index(n) for n in FOOT_JOINTS]
    want = rest + [0, -rest[feet, 1].min(), 0]                         # grounded: standing foot at y = 0
    np.testing.assert_allclose(rec.positions[0], want, atol=1e-4)
    np.testing.assert_allclose(rec.trans[:, 2], [0, 0.04, 0.08], atol=1e-4)   # 0.01 m per 120 fps frame


def test_explicit_scale_keep_all_joints_and_no_grounding() -> None:
    bvh = parse_bvh(body_bvh(0.01, frames=4))
    rec = bvh.to_record(scale=0.02, keep_all_joints=True, ground=False)
    assert rec.joint_names[:22] == list(SMPL_BODY_22)
    assert "head_EndSite" in rec.joint_names and len(rec.joint_names) == 22 + 5     # 5 End Sites
    np.testing.assert_allclose(rec.trans[0], [0, 2.0, 0], atol=1e-5)               # 1 m written in cm, x2
    with pytest.raises(InputError):
        bvh.to_record(scale=-1)


def test_renamed_joints_map_to_smpl() -> None:
    mixamo = {"pelvis": "mixamorig:Hips", "spine1": "mixamorig:Spine", "spine2": "mixamorig:Spine1",
              "spine3": "mixamorig:Spine2", "neck": "mixamorig:Neck", "head": "mixamorig:Head"}
    for s, p in (("left", "Left"), ("right", "Right")):
        mixamo.update({f"{s}_hip": f"mixamorig:{p}UpLeg", f"{s}_knee": f"mixamorig:{p}Leg",
                       f"{s}_ankle": f"mixamorig:{p}Foot", f"{s}_foot": f"mixamorig:{p}ToeBase",
                       f"{s}_collar": f"mixamorig:{p}Shoulder", f"{s}_shoulder": f"mixamorig:{p}Arm",
                       f"{s}_elbow": f"mixamorig:{p}ForeArm", f"{s}_wrist": f"mixamorig:{p}Hand"})
    assert set(mixamo) == set(SMPL_BODY_22)
    smpl_rec = parse_bvh(body_bvh(0.01)).to_record()
    mix_rec = parse_bvh(body_bvh(0.01, names=mixamo)).to_record()
    assert mix_rec.meta["joint_convention"] == "mixamo" and mix_rec.joint_names == list(SMPL_BODY_22)
    np.testing.assert_allclose(mix_rec.positions, smpl_rec.positions, atol=1e-6)
    # A DAZ-named body needs the foot's End Site as SMPL's toe joint: with a toe JOINT instead,
    # lFoot has no End Site and the convention is incomplete -> a clear error, not a wrong body.
    daz = {k: v.replace("mixamorig:", "") for k, v in mixamo.items()}
    daz.update({"pelvis": "hip", "spine1": "abdomen", "spine3": "chest", "neck": "neck", "head": "head",
                "left_hip": "lThigh", "left_knee": "lShin", "left_ankle": "lFoot"})
    with pytest.raises(InputError) as err:
        parse_bvh(body_bvh(0.01, names=daz)).to_record()
    assert "joint_names" in str(err.value)


def test_unknown_skeleton_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    p = tmp_path / "arm.bvh"
    p.write_text(ARM)
    with pytest.raises(InputError) as err:
        read_bvh(p).to_record(scale=1.0)
    assert "arm.bvh" in str(err.value) and "convention" in str(err.value)


# ---------------------------------------------------------------- real files

def _real_files() -> list[Path]:
    """The shared BVH files, listed at collection time (same location rule as conftest's fixture)."""
    root = Path(os.environ.get("DANCESEARCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return sorted((root / "bvh").rglob("*.bvh*")) if (root / "bvh").is_dir() else []


def _idx(*names: str) -> list[int]:
    return [SMPL_BODY_22.index(n) for n in names]


@pytest.mark.parametrize("path", _real_files() or [None], ids=lambda p: p.name if p else "absent")
def test_real_bvh_files(shared_data: Path, path: Path | None) -> None:
    assert path is not None, "shared data present but no BVH files found"
    bvh = read_bvh(path)
    assert bvh.fps == 120.0
    rec = bvh.to_record()
    assert rec.fps == 30
    # duration agrees with Frames x Frame Time (resampling keeps the span, within a frame)
    assert abs(rec.num_frames / 30 - bvh.num_frames * bvh.frame_time) <= 1 / 30 + 1e-3
    assert rec.num_frames == math.floor((bvh.num_frames - 1) / bvh.fps * 30 + 1e-6) + 1
    body = rec.body22()
    head = body[:, _idx("head")[0], 1]
    feet = body[:, _idx(*FOOT_JOINTS), 1]
    assert (head > feet.max(axis=1)).mean() > 0.95
    # Plausible adult: thigh + shank is about 0.49 of body height (Drillis & Contini).
    leg = (np.linalg.norm(body[:, _idx("left_hip")[0]] - body[:, _idx("left_knee")[0]], axis=-1)
           + np.linalg.norm(body[:, _idx("left_knee")[0]] - body[:, _idx("left_ankle")[0]], axis=-1))
    height = float(np.median(leg)) / 0.49
    assert 1.3 < height < 2.1, f"{path.name}: estimated body height {height:.2f} m"
    # Grounded: the floor (5th percentile of the per-frame lowest foot joint) is at y = 0
    lowest = feet.min(axis=1)
    assert abs(np.percentile(lowest, 5)) < 0.02
    assert np.median(lowest) < 0.1                            # a foot near the floor most of the time
    assert 0.5 < np.median(body[:, 0, 1]) < 1.2               # pelvis at hip height


def test_two_conversions_of_the_same_take_agree_in_metres(shared_data: Path) -> None:
    daz = read_bvh(shared_data / "bvh" / "cmu_misc" / "05_20-daz.bvh").to_record()   # centimetres
    mb = read_bvh(shared_data / "bvh" / "cmu_misc" / "05_20-mb.bvh").to_record()     # CMU ASF units
    assert daz.num_frames == mb.num_frames
    travel_daz = daz.trans[:, [0, 2]] - daz.trans[0, [0, 2]]
    travel_mb = mb.trans[:, [0, 2]] - mb.trans[0, [0, 2]]
    assert np.abs(travel_daz).max() > 1.0                     # the dancer travels over 1 m
    assert np.abs(travel_daz - travel_mb).max() < 0.15


def test_rescaled_salsa_files_are_brought_back_to_real_size(shared_data: Path) -> None:
    files = sorted((shared_data / "bvh" / "cmu_salsa").glob("*.bvh.gz"))
    if not files:
        pytest.skip("no salsa files")
    bvh = read_bvh(files[0])
    scale, label = bvh.detect_scale()
    assert "DAZ" in label and scale == pytest.approx(1.28, rel=1e-4)      # offsets are centimetres / 128
