"""Pose guidance maps (generation/video): capsule body on headless EGL, OpenPose skeleton maps, Champ layout.

Rendering tests skip with the reason when moderngl or an EGL context is unavailable; input validation and
the missing-package message are tested everywhere.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import SMPL_BODY_22, smplx52
from generation.video import (BODY_COLOURS, BODY_KEYPOINTS, CHAMP_FOLDERS, BodyPart, GuidanceRenderer,
                              RendererUnavailable, image_size, render_guidance, renderer_available,
                              write_champ_layout)
from generation.video.joints import BODY_INDEX, guidance_joints
from generation.video.openpose import HAND_POINT_COLOUR, NUM_BODY

J = BODY_INDEX


def rest52() -> np.ndarray:
    """SMPL-X rest pose (T-pose, facing +z, left = +x), feet on the floor."""
    rest = smplx52().rest_positions()
    return rest - [0.0, rest[:, 1].min(), 0.0]


def pose_record(positions: np.ndarray, names: list[str], frames: int = 2) -> MotionRecord:
    pos = np.repeat(np.asarray(positions, dtype=np.float64)[None], frames, axis=0)
    return MotionRecord(30.0, pos[:, 0], pos, list(names))


def body_record(positions22: np.ndarray, frames: int = 2) -> MotionRecord:
    return pose_record(positions22, list(SMPL_BODY_22), frames)


def pixel(xy: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel containing a keypoint."""
    return int(np.floor(xy[1])), int(np.floor(xy[0]))


def test_shapes_and_dtypes(gl, dance):
    g = render_guidance(dance.slice(0, 6), 64)
    t = 6
    assert (g.depth.shape, g.depth.dtype) == ((t, 64, 64, 1), np.float32)
    assert (g.normal.shape, g.normal.dtype) == ((t, 64, 64, 3), np.float32)
    assert (g.labels.shape, g.labels.dtype) == ((t, 64, 64, 1), np.uint8)
    assert (g.mask.shape, g.mask.dtype) == ((t, 64, 64, 1), np.uint8)
    assert (g.pose.shape, g.pose.dtype) == ((t, 64, 64, 3), np.uint8)
    assert g.keypoints.shape == (t, 60, 2) and g.keypoint_valid.shape == (t, 60)   # 18 body + 2 x 21 hand
    for img in (g.depth_image(), g.normal_image(), g.semantic_image()):
        assert (img.shape, img.dtype) == ((t, 64, 64, 3), np.uint8)
    assert set(np.unique(g.mask)) == {0, 255}
    on = g.mask[..., 0] > 0
    assert (g.depth[..., 0][on] > 0).all() and (g.depth[..., 0][~on] == 0).all()
    assert np.allclose(np.linalg.norm(g.normal[on], axis=-1), 1.0, atol=1e-3)
    assert (g.labels[..., 0][on] > 0).all() and (g.labels[..., 0][~on] == 0).all()
    hm = g.heatmaps(0, 2)
    assert (hm.shape, hm.dtype) == ((2, 64, 64, 60), np.float32)
    tensors = g.as_tensors()
    assert set(tensors) == {"depth", "normal", "semantic_map", "mask", "dwpose"}
    assert tuple(tensors["normal"].shape) == (t, 3, 64, 64) and tuple(tensors["depth"].shape) == (t, 1, 64, 64)
    assert float(tensors["dwpose"].max()) <= 1.0

    body_only = MotionRecord(30.0, dance.trans[:3], dance.body22()[:3], list(SMPL_BODY_22))
    g2 = render_guidance(body_only, (48, 80), projection="orthographic")
    assert g2.depth.shape == (3, 48, 80, 1) and g2.keypoints.shape == (3, NUM_BODY, 2)


def test_mask_covers_projected_joints(gl, dance):
    g = render_guidance(dance, 96)
    joints = guidance_joints(dance)
    px, _ = g.camera.project(joints.body)
    for t in range(len(g)):
        for k in range(len(SMPL_BODY_22)):
            r, c = pixel(px[t, k])
            assert g.mask[t, r, c, 0] == 255, (t, SMPL_BODY_22[k])
    # fingers are ~1 px wide at 96 px: each finger point lies on the mask or next to it
    fpx, _ = g.camera.project(joints.fingers.reshape(len(g), -1, 3))
    padded = np.pad(g.mask[..., 0], ((0, 0), (1, 1), (1, 1)))
    near = np.zeros_like(padded)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            near = np.maximum(near, np.roll(padded, (dr, dc), axis=(1, 2)))
    for t in range(0, len(g), 5):
        for k in range(fpx.shape[1]):
            r, c = pixel(fpx[t, k])
            assert near[t, r + 1, c + 1] == 255, (t, k)


def test_depth_is_nearer_for_the_joint_closer_to_the_camera(gl):
    pos = rest52()[:22].copy()
    # T-pose facing +z (the camera's side); the left arm swings 45 degrees forward, the right 45 back
    for side, sign in (("left", 1.0), ("right", -1.0)):
        sh = pos[J[f"{side}_shoulder"]]
        for name, dist in (("elbow", 0.26), ("wrist", 0.51)):
            pos[J[f"{side}_{name}"]] = sh + dist * np.array([sign * np.sqrt(0.5), 0.0, sign * np.sqrt(0.5)])
    g = render_guidance(body_record(pos), 128)
    lw, rw = g.keypoints[0, BODY_KEYPOINTS.index("left_wrist")], g.keypoints[0, BODY_KEYPOINTS.index("right_wrist")]
    d_left, d_right = g.depth[0][pixel(lw)][0], g.depth[0][pixel(rw)][0]
    assert 0 < d_left < d_right - 0.4                     # ~0.72 m apart along the view axis
    kd = g.keypoint_depth[0]
    assert abs(d_left - kd[BODY_KEYPOINTS.index("left_wrist")]) < 0.06      # the front surface of the forearm
    assert g.depth_image()[0][pixel(lw)][0] > g.depth_image()[0][pixel(rw)][0]   # near is bright


@pytest.mark.parametrize("turn", [0.0, 180.0])
def test_forearm_labels_land_on_the_correct_side(gl, turn):
    a = np.radians(turn)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    g = render_guidance(body_record(rest52()[:22] @ rot.T), 96)
    cols = np.arange(96)[None, :].repeat(96, 0)
    lab = g.labels[0, ..., 0]
    left, right = cols[lab == BodyPart.LEFT_FOREARM], cols[lab == BodyPart.RIGHT_FOREARM]
    assert len(left) > 10 and len(right) > 10
    # the camera faces the dancer, so the dancer's left is on the image's right, whichever way they face
    assert left.min() > 48 > right.max()
    assert (cols[lab == BodyPart.LEFT_HAND] > 48).all() and (cols[lab == BodyPart.RIGHT_THIGH] < 48).all()


def test_skeleton_map_has_openpose_colours_at_the_keypoints(gl):
    g = render_guidance(body_record(rest52()[:22]), 128)
    kp, ok = g.keypoints[0], g.keypoint_valid[0]
    assert ok.all()                                        # facing the camera: nose, eyes and ears visible
    checked = 0
    for k in range(NUM_BODY):
        later = np.linalg.norm(kp[k + 1:] - kp[k], axis=-1)
        if (later < 3.0).any():                            # a later dot paints over this one
            continue
        assert tuple(g.pose[0][pixel(kp[k])]) == tuple(BODY_COLOURS[k]), BODY_KEYPOINTS[k]
        checked += 1
    assert checked >= 12
    # the neck-to-right-shoulder limb is OpenPose's red, dimmed to 60 %
    mid = 0.5 * (kp[1] + kp[2])
    assert tuple(g.pose[0][pixel(mid)]) == (153, 0, 0)

    with_hands = render_guidance(pose_record(rest52(), list(smplx52().names)), 128)
    hand_kp = with_hands.keypoints[0, NUM_BODY:]
    tip = hand_kp[20]                                     # left pinky tip: hand dots are blue
    assert tuple(with_hands.pose[0][pixel(tip)]) == tuple(HAND_POINT_COLOUR)
    # the left hand is on the image's right, its tips beyond the wrist
    assert hand_kp[:21, 0].mean() > 64 and hand_kp[8, 0] > hand_kp[0, 0]


def test_camera_is_fixed_for_the_dance_and_keeps_every_joint_inside(gl, dance):
    with GuidanceRenderer(dance, 80) as renderer:
        whole = renderer.render()
        part = renderer.render(40, 50)
        joints = renderer.joints
    # one camera: a frame renders the same whatever else is rendered with it
    assert np.array_equal(whole.labels[40:50], part.labels) and np.array_equal(whole.pose[40:50], part.pose)
    px, _ = whole.camera.project(joints.all_points())
    assert (px >= 0).all() and (px[..., 0] < 80).all() and (px[..., 1] < 80).all()
    assert (whole.keypoints >= 0).all() and (whole.keypoints < 80).all()
    edge = np.concatenate([whole.mask[:, 0], whole.mask[:, -1], whole.mask[:, :, 0], whole.mask[:, :, -1]])
    assert not edge.any()                                  # the margin keeps the body off the border
    # a dancer standing still: every frame identical
    still = render_guidance(body_record(rest52()[:22], frames=4), 64)
    assert all(np.array_equal(still.depth[0], still.depth[t]) for t in range(4))


def test_smoothing_steadies_jittery_joints(gl, dance):
    rng = np.random.default_rng(0)
    noisy = MotionRecord(30.0, dance.trans, dance.positions + rng.normal(0, 0.01, dance.positions.shape),
                         dance.joint_names)
    raw = render_guidance(noisy.slice(0, 30), 64, hands=False)
    smooth = render_guidance(noisy.slice(0, 30), 64, hands=False, smooth_sigma=1.5, camera=raw.camera)
    jitter = lambda g: np.abs(np.diff(g.keypoints, 2, axis=0)).mean()    # noqa: E731
    assert jitter(smooth) < 0.5 * jitter(raw)


def test_champ_layout_is_written_atomically(gl, dance, tmp_path):
    out = tmp_path / "motion"
    with GuidanceRenderer(dance.slice(0, 20), 48) as renderer:
        write_champ_layout(renderer, out, chunk=7)
    for name in CHAMP_FOLDERS:
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == [f"{i:04d}.png" for i in range(20)], name
    from PIL import Image

    assert Image.open(out / "depth" / "0000.png").size == (48, 48)
    assert Image.open(out / "mask" / "0007.png").mode == "L"
    assert Image.open(out / "dwpose" / "0019.png").mode == "RGB"
    meta = json.loads((out / "guidance.json").read_text())
    assert meta["frames"] == 20 and meta["camera"]["width"] == 48 and len(meta["keypoints"]) == 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["motion"]        # no temporary folder left
    frames = render_guidance(dance.slice(0, 3), 48)
    with pytest.raises(InputError, match="exists"):
        write_champ_layout(frames, out)
    write_champ_layout(frames, out, overwrite=True)
    assert len(list((out / "semantic_map").iterdir())) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["motion"]


def test_bad_input_is_reported(gl):
    ok = body_record(rest52()[:22])
    with pytest.raises(InputError, match="no frames"):
        render_guidance(MotionRecord(30.0, np.zeros((0, 3)), np.zeros((0, 22, 3)), list(SMPL_BODY_22)), 64)
    with pytest.raises(InputError, match="lacks SMPL body joints"):
        render_guidance(MotionRecord(30.0, np.zeros((2, 3)), np.zeros((2, 10, 3)), list(SMPL_BODY_22[:10])), 64)
    with pytest.raises(InputError, match="hands requested"):
        render_guidance(ok, 64, hands=True)
    for size in (8, 5000, (64,), 64.0, (64, 10)):
        with pytest.raises(InputError, match="size"):
            render_guidance(ok, size)
    with pytest.raises(InputError, match="smoothing"):
        render_guidance(ok, 64, smooth_sigma=-1)
    with pytest.raises(InputError, match="projection"):
        render_guidance(ok, 64, projection="fisheye")
    with pytest.raises(InputError, match="margin"):
        render_guidance(ok, 64, margin=1.5)
    with pytest.raises(InputError, match="not a motion record"):
        render_guidance(np.zeros((2, 22, 3)), 64)


def test_input_checks_need_no_renderer():
    assert image_size(64) == (64, 64) and image_size((48, 80)) == (48, 80)
    with pytest.raises(InputError, match="out of range"):
        image_size(4097)
    with pytest.raises(InputError, match="lacks SMPL body joints"):
        guidance_joints(MotionRecord(30.0, np.zeros((1, 3)), np.zeros((1, 3, 3)), ["a", "b", "c"]))


def test_missing_moderngl_names_the_extra(monkeypatch):
    from generation.video import gl as gl_module

    monkeypatch.setitem(sys.modules, "moderngl", None)       # import moderngl -> ImportError
    with pytest.raises(RendererUnavailable, match=r'pip install -e "\.\[video\]"'):
        gl_module._import_moderngl()
    assert renderer_available()[0] is False


def test_renders_in_a_worker_thread(gl):
    """EGL contexts are per thread: a server's worker thread gets its own and renders the same maps."""
    import threading

    record = body_record(rest52()[:22])
    here = render_guidance(record, 48)
    out: dict = {}
    worker = threading.Thread(target=lambda: out.setdefault("g", render_guidance(record, 48)))
    worker.start()
    worker.join()
    assert np.array_equal(out["g"].labels, here.labels) and np.array_equal(out["g"].pose, here.pose)
