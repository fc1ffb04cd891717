"""Rotation conversions, Euler orders, forward kinematics, foot contacts and resampling.

Expected values are written by hand (not produced by the code under test): explicit matrices,
a 3-joint arm bent 90 degrees at the elbow, the SMPL-X rest pose from the asset file.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from encoders.motion.kinematics import TARGET_FPS, foot_contacts, forward_kinematics, resample_linear, resample_rotations
from encoders.motion.rotations import (axis_angle_to_matrix, axis_angle_to_rot6d, euler_to_matrix, euler_to_quaternion,
                                       matrix_to_axis_angle, matrix_to_euler_zyx, matrix_to_rot6d,
                                       quaternion_to_axis_angle, quaternion_to_matrix, rot6d_to_axis_angle,
                                       rot6d_to_matrix)
from encoders.motion.skeleton import FOOT_JOINTS, SMPL_BODY_22, Skeleton, smpl24, smplx52


def rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def random_axis_angle(n: int, seed: int = 0, max_angle: float = math.pi * 0.999) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    return axis * rng.uniform(0, max_angle, size=(n, 1))


# ---------------------------------------------------------------- axis-angle / matrix / 6D

def test_axis_angle_to_matrix_matches_hand_written_rotations() -> None:
    aa = np.array([[math.pi / 2, 0, 0], [0, math.pi / 3, 0], [0, 0, -math.pi / 4], [0, 0, 0]])
    want = np.stack([rx(math.pi / 2), ry(math.pi / 3), rz(-math.pi / 4), np.eye(3)])
    np.testing.assert_allclose(axis_angle_to_matrix(aa), want, atol=1e-12)
    # a quarter turn about +z takes +x to +y (right-handed)
    np.testing.assert_allclose(axis_angle_to_matrix(np.array([0, 0, math.pi / 2])) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_axis_angle_matrix_round_trip(backend: str) -> None:
    aa = random_axis_angle(500)
    x = aa if backend == "numpy" else torch.as_tensor(aa)
    m = axis_angle_to_matrix(x)
    back = matrix_to_axis_angle(m)
    assert isinstance(back, np.ndarray if backend == "numpy" else torch.Tensor)
    back = np.asarray(back)
    np.testing.assert_allclose(back, aa, atol=1e-7)
    mm = np.asarray(m)
    np.testing.assert_allclose(mm @ np.swapaxes(mm, -1, -2), np.broadcast_to(np.eye(3), mm.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(mm), 1.0, atol=1e-12)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, math.pi - 1e-6, math.pi])
def test_round_trip_near_zero_and_pi(angle: float) -> None:
    axes = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]) / np.array([[1], [1], [1], [math.sqrt(3)]])
    aa = axes * angle
    m = axis_angle_to_matrix(aa)
    back = matrix_to_axis_angle(m)
    # near pi the axis sign is ambiguous: compare the rotations, and the angle
    np.testing.assert_allclose(axis_angle_to_matrix(back), m, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(back, axis=-1), angle, atol=1e-6)
    assert np.isfinite(back).all()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_rot6d_is_first_two_rows_and_round_trips(backend: str) -> None:
    m = rz(0.3) @ rx(-1.1) @ ry(2.0)
    d6 = matrix_to_rot6d(m if backend == "numpy" else torch.as_tensor(m))
    np.testing.assert_allclose(np.asarray(d6), np.concatenate([m[0], m[1]]), atol=1e-12)  # rows, not columns
    np.testing.assert_allclose(np.asarray(rot6d_to_matrix(d6)), m, atol=1e-12)
    aa = random_axis_angle(200, seed=3)
    x = aa if backend == "numpy" else torch.as_tensor(aa)
    np.testing.assert_allclose(np.asarray(rot6d_to_axis_angle(axis_angle_to_rot6d(x))), aa, atol=1e-7)


def test_rot6d_to_matrix_orthonormalises_noisy_input() -> None:
    m = ry(0.7) @ rx(0.2)
    noisy = matrix_to_rot6d(m) * 1.7 + np.array([0, 0, 0, 0.01, -0.02, 0.0])
    r = rot6d_to_matrix(noisy)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(r[0], m[0], atol=1e-12)  # Gram-Schmidt keeps the first row's direction
    assert np.abs(r - m).max() < 0.03


def test_torch_gradients_flow_through_6d() -> None:
    d6 = torch.tensor([[1.0, 0.1, 0.0, 0.0, 1.0, 0.2]], dtype=torch.float64, requires_grad=True)
    rot6d_to_matrix(d6).sum().backward()
    assert d6.grad is not None and torch.isfinite(d6.grad).all()


# ---------------------------------------------------------------- Euler

@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_euler_orders_against_hand_written_products(order: str) -> None:
    angles_deg = np.array([30.0, -45.0, 60.0])
    single = {"X": rx, "Y": ry, "Z": rz}
    want = np.eye(3)
    for axis, a in zip(order, np.deg2rad(angles_deg)):
        want = want @ single[axis](a)  # intrinsic: first listed is the outermost factor
    np.testing.assert_allclose(euler_to_matrix(angles_deg, order), want, atol=1e-12)
    np.testing.assert_allclose(euler_to_matrix(np.deg2rad(angles_deg), order, degrees=False), want, atol=1e-12)


def test_euler_zxy_bvh_example_by_hand() -> None:
    # BVH "Zrotation Xrotation Yrotation" 90 0 0 maps +x to +y; 0 90 0 maps +y to +z.
    np.testing.assert_allclose(euler_to_matrix(np.array([90.0, 0, 0]), "ZXY") @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(euler_to_matrix(np.array([0, 90.0, 0]), "ZXY") @ [0, 1, 0], [0, 0, 1], atol=1e-12)


def test_euler_rejects_bad_order() -> None:
    with pytest.raises(ValueError):
        euler_to_matrix(np.zeros(3), "XXQ")


def test_matrix_to_euler_zyx_inverts_euler_to_matrix() -> None:
    rng = np.random.default_rng(3)
    angles = np.stack([rng.uniform(-179, 179, 400), rng.uniform(-89, 89, 400), rng.uniform(-179, 179, 400)], -1)
    np.testing.assert_allclose(matrix_to_euler_zyx(euler_to_matrix(angles, "ZYX")), angles, atol=1e-8)
    # by hand: a quarter turn about z alone
    np.testing.assert_allclose(matrix_to_euler_zyx(rz(math.pi / 2)), [90.0, 0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("y", [90.0, -90.0])
def test_matrix_to_euler_zyx_at_gimbal_lock_gives_the_same_matrix(y: float) -> None:
    m = euler_to_matrix(np.array([25.0, y, -40.0]), "ZYX")
    back = matrix_to_euler_zyx(m)
    assert back[1] == pytest.approx(y)
    np.testing.assert_allclose(euler_to_matrix(back, "ZYX"), m, atol=1e-12)


# ---------------------------------------------------------------- quaternions

def test_quaternion_by_hand() -> None:
    # a quarter turn about +y: q = (cos 45, 0, sin 45, 0)
    h = math.sqrt(0.5)
    np.testing.assert_allclose(euler_to_quaternion(np.array([90.0, 0.0, 0.0]), "YZX"), [h, 0, h, 0], atol=1e-15)
    np.testing.assert_allclose(quaternion_to_matrix(np.array([h, 0, h, 0])), ry(math.pi / 2), atol=1e-15)
    np.testing.assert_allclose(quaternion_to_axis_angle(np.array([h, 0, h, 0])), [0, math.pi / 2, 0], atol=1e-15)
    # q and -q are one rotation: the axis-angle is the short one either way
    np.testing.assert_allclose(quaternion_to_axis_angle(np.array([-h, 0, -h, 0])), [0, math.pi / 2, 0], atol=1e-15)


@pytest.mark.parametrize("order", [a + b + c for a in "XYZ" for b in "XYZ" for c in "XYZ"])
def test_euler_to_quaternion_is_the_rotation_of_euler_to_matrix(order: str) -> None:
    angles = np.random.default_rng(5).uniform(-180, 180, size=(64, 3))
    q = euler_to_quaternion(angles, order)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix(q), euler_to_matrix(angles, order), atol=1e-12)
    np.testing.assert_allclose(axis_angle_to_matrix(quaternion_to_axis_angle(q)), euler_to_matrix(angles, order),
                               atol=1e-9)


def test_quaternion_functions_serve_numpy_and_torch_alike() -> None:
    angles = np.random.default_rng(6).uniform(-3, 3, size=(50, 4, 3))
    q = euler_to_quaternion(angles, "YZX", degrees=False)
    qt = euler_to_quaternion(torch.as_tensor(angles), "YZX", degrees=False)
    assert isinstance(q, np.ndarray) and isinstance(qt, torch.Tensor) and qt.dtype == torch.float64
    np.testing.assert_allclose(qt.numpy(), q, atol=1e-15)
    for fn in (quaternion_to_matrix, quaternion_to_axis_angle):
        out_t = fn(qt)
        assert isinstance(out_t, torch.Tensor)
        np.testing.assert_allclose(out_t.numpy(), fn(q), atol=1e-14)
    # the numpy path stays numpy (its last bits are what the demo corpus stores)
    assert isinstance(quaternion_to_axis_angle(q), np.ndarray)
    with pytest.raises(ValueError):
        euler_to_quaternion(np.zeros(3), "XQZ")


# ---------------------------------------------------------------- forward kinematics

def three_joint_arm() -> Skeleton:
    """shoulder at the origin, elbow 0.3 m along +x, wrist 0.25 m further."""
    return Skeleton("arm", ("shoulder", "elbow", "wrist"), (-1, 0, 1),
                    np.array([[0.0, 0, 0], [0.3, 0, 0], [0.25, 0, 0]]))


def test_fk_three_joint_chain_with_90_degree_elbow() -> None:
    rot = np.broadcast_to(np.eye(3), (2, 3, 3, 3)).copy()
    rot[0, 1] = rz(math.pi / 2)                  # frame 0: elbow bent 90 degrees about +z
    rot[1, 0] = ry(math.pi / 2)                  # frame 1: shoulder turned 90 degrees about +y
    rot[1, 1] = rz(math.pi / 2)                  #          and the same elbow bend
    trans = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    pos = forward_kinematics(rot, trans, three_joint_arm())
    # frame 0: forearm now points +y: wrist = elbow + (0, 0.25, 0)
    np.testing.assert_allclose(pos[0], [[1.0, 2.0, 3.0], [1.3, 2.0, 3.0], [1.3, 2.25, 3.0]], atol=1e-12)
    # frame 1: Ry(90) maps +x -> -z and +y -> +y: elbow at (0,0,-0.3), wrist 0.25 m up from it
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [0, 0, -0.3], [0, 0.25, -0.3]], atol=1e-12)


def test_fk_torch_matches_numpy_and_custom_offsets() -> None:
    rot = axis_angle_to_matrix(random_axis_angle(3 * 4, seed=5).reshape(4, 3, 3))
    trans = np.zeros((4, 3))
    skel = three_joint_arm()
    p_np = forward_kinematics(rot, trans, skel)
    p_t = forward_kinematics(torch.as_tensor(rot), torch.as_tensor(trans), skel)
    assert isinstance(p_t, torch.Tensor)
    np.testing.assert_allclose(p_t.numpy(), p_np, atol=1e-12)
    # doubling every offset doubles every position (root at the origin)
    np.testing.assert_allclose(forward_kinematics(rot, trans, skel, offsets=skel.offsets * 2), 2 * p_np, atol=1e-12)
    # bone lengths are preserved by any rotation
    np.testing.assert_allclose(np.linalg.norm(p_np[:, 2] - p_np[:, 1], axis=-1), 0.25, atol=1e-12)


def test_fk_smplx_rest_pose_gives_rest_positions() -> None:
    skel = smplx52()
    rot = np.broadcast_to(np.eye(3), (1, 52, 3, 3)).copy()
    trans = np.array([[0.1, 0.9, -0.2]])
    pos = forward_kinematics(rot, trans, skel)[0]
    # hand-checked facts of the SMPL-X neutral rest pose (shared skeleton README):
    # T-pose with arms along +x (left) / -x (right), head above pelvis, toes ahead (+z) of ankles,
    # ankles about 0.88 m below the pelvis.
    rel = pos - trans[0]
    np.testing.assert_allclose(rel, skel.rest_positions(), atol=1e-12)
    idx = {n: i for i, n in enumerate(skel.names)}
    assert rel[idx["left_wrist"], 0] > 0.6 and rel[idx["right_wrist"], 0] < -0.6
    assert rel[idx["head"], 1] > 0.5
    assert rel[idx["left_foot"], 2] > rel[idx["left_ankle"], 2]
    assert -0.95 < rel[idx["left_ankle"], 1] < -0.8
    assert skel.root_standing_height() == pytest.approx(-rel[[idx[n] for n in FOOT_JOINTS], 1].min())


def test_fk_rejects_wrong_joint_count() -> None:
    with pytest.raises(ValueError):
        forward_kinematics(np.broadcast_to(np.eye(3), (1, 5, 3, 3)).copy(), np.zeros((1, 3)), three_joint_arm())


def test_smpl24_shares_the_body_tree() -> None:
    assert smpl24().names[:22] == smplx52().names[:22] == SMPL_BODY_22
    assert smpl24().parents[:22] == smplx52().parents[:22]


# ---------------------------------------------------------------- foot contacts

def test_foot_contacts_standing_and_moving_feet() -> None:
    names = list(SMPL_BODY_22)
    fps = 30.0
    t = 10
    pos = np.zeros((t, 22, 3))
    li, ri = names.index("left_ankle"), names.index("right_ankle")
    pos[:, ri, 0] = np.arange(t) * (1.0 / fps)      # right ankle moves 1 m/s: not in contact
    pos[:, li, 0] = np.arange(t) * (0.1 / fps)      # left ankle 0.1 m/s: in contact
    c = foot_contacts(pos, names, fps)
    assert c.shape == (t, 4) and c.dtype == bool
    assert c[:, 0].all() and not c[:, 1].any() and c[:, 2:].all()
    # the same motion sampled at 60 fps gives the same verdict (threshold is a speed)
    pos60 = resample_linear(pos, fps, 60.0)
    np.testing.assert_array_equal(foot_contacts(pos60, names, 60.0)[:, :2].all(axis=0), [True, False])


# ---------------------------------------------------------------- resampling

@pytest.mark.parametrize("src,n,want", [(60.0, 121, 61), (60.0, 120, 60), (120.0, 481, 121), (120.0, 2242, 561),
                                        (30.0, 17, 17)])
def test_resample_lengths(src: float, n: int, want: int) -> None:
    x = np.zeros((n, 2))
    assert len(resample_linear(x, src, TARGET_FPS)) == want


def test_resample_values_are_decimation_for_integer_ratios() -> None:
    x60 = np.arange(121, dtype=np.float64)[:, None] * np.array([[1.0, -2.0]])
    y = resample_linear(x60, 60.0, 30.0)
    np.testing.assert_allclose(y, x60[::2], atol=1e-12)
    x120 = np.sin(np.arange(481) / 120.0)[:, None]
    np.testing.assert_allclose(resample_linear(x120, 120.0, 30.0), x120[::4], atol=1e-12)


def test_resample_linear_interpolates_between_frames() -> None:
    x = np.array([0.0, 10.0, 20.0, 30.0])       # 25 fps -> 30 fps: t = k/30 s = k*25/30 frames
    y = resample_linear(x, 25.0, 30.0)
    np.testing.assert_allclose(y, np.arange(len(y)) * 25.0 / 30.0 * 10.0, atol=1e-9)


def test_resample_rotations_keeps_rotations_and_halfway_angle() -> None:
    angles = np.array([0.0, 0.4, 0.8, 1.2, 1.6])
    rot = np.stack([rz(a) for a in angles])[:, None]            # (5, 1, 3, 3) at 60 fps
    r30 = resample_rotations(rot, 60.0, 30.0)
    assert r30.shape == (3, 1, 3, 3)
    np.testing.assert_allclose(r30[:, 0], rot[::2, 0], atol=1e-6)
    # 40 fps -> 30 fps lands between frames: a rotation about z with an in-between angle
    r = resample_rotations(rot, 40.0, 30.0)[1, 0]                # t = 1/30 s = 1.333 frames
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)
    ang = math.atan2(r[1, 0], r[0, 0])
    assert 0.4 < ang < 0.8 and abs(ang - 0.5333) < 0.01
