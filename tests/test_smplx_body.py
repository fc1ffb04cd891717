"""The official-model path (smplx package) with TINY model files built here.

The tiny models carry every key the smplx loaders read, with two vertices per joint placed
symmetrically around the joint (so the joint regressor recovers the joint exactly) and rigidly
skinned to it. Posing them with the official LBS must therefore agree with our model-free FK.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from encoders.errors import InputError
from encoders.motion.kinematics import forward_kinematics
from encoders.motion.rotations import axis_angle_to_matrix, rot6d_to_matrix
from encoders.motion.skeleton import smpl24, smplx52
from encoders.motion.smplx_body import SMPLX55_TO_52, body_forward, load_body_model, record_from_smplx_params

DELTA = np.array([0.01, 0.0, 0.0])


def smplx55_tree() -> tuple[np.ndarray, np.ndarray]:
    """(55,) parents and (55, 3) rest joints of SMPL-X: our 52 plus jaw and eyes under the head."""
    s52 = smplx52()
    rest52 = s52.rest_positions()
    map52 = list(SMPLX55_TO_52)
    parents = np.zeros(55, dtype=np.int64)
    rest = np.zeros((55, 3))
    for k52, k55 in enumerate(map52):
        p = s52.parents[k52]
        parents[k55] = -1 if p < 0 else map52[p]
        rest[k55] = rest52[k52]
    head = s52.index("head")
    for k55, off in ((22, [0, 0.02, 0.05]), (23, [0.03, 0.05, 0.08]), (24, [-0.03, 0.05, 0.08])):
        parents[k55] = head
        rest[k55] = rest52[head] + off
    return parents, rest


def tiny_model_arrays(parents: np.ndarray, rest: np.ndarray, n_shape: int, n_pose_basis: int) -> dict:
    j = len(parents)
    v = 2 * j
    v_template = np.repeat(rest, 2, axis=0) + np.tile(np.stack([DELTA, -DELTA]), (j, 1))
    j_reg = np.zeros((j, v))
    weights = np.zeros((v, j))
    for k in range(j):
        j_reg[k, 2 * k: 2 * k + 2] = 0.5
        weights[2 * k: 2 * k + 2, k] = 1.0
    shapedirs = np.zeros((v, 3, n_shape))
    shapedirs[:, 1, 0] = 1.0                     # beta_0 lifts the whole body by beta_0 metres
    rng = np.random.default_rng(0)
    kintree = np.stack([np.where(parents < 0, 4294967295, parents), np.arange(j)]).astype(np.int64)
    faces = np.array([[2 * k, 2 * k + 1, (2 * k + 2) % v] for k in range(j)], dtype=np.int64)
    return {
        "v_template": v_template, "shapedirs": shapedirs,
        # pose correctives move vertices (both of a pair alike, so joints stay put when regressed
        # from the rest mesh), which the official LBS applies and our FK does not need
        "posedirs": np.repeat(rng.normal(scale=1e-3, size=(j, 3, n_pose_basis)), 2, axis=0),
        "J_regressor": j_reg, "weights": weights, "kintree_table": kintree, "f": faces,
    }


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory) -> Path:
    parents, rest = smplx55_tree()
    data = tiny_model_arrays(parents, rest, n_shape=20, n_pose_basis=54 * 9)
    data.update({"hands_componentsl": np.eye(45), "hands_componentsr": np.eye(45),
                 "hands_meanl": np.full(45, 0.3), "hands_meanr": np.full(45, -0.3),   # flat_hand_mean ignores these
                 "lmk_faces_idx": np.zeros(1, dtype=np.int64), "lmk_bary_coords": np.full((1, 3), 1 / 3)})
    root = tmp_path_factory.mktemp("models")
    (root / "smplx").mkdir()
    np.savez(root / "smplx" / "SMPLX_NEUTRAL.npz", **data)
    return root


@pytest.fixture(scope="module")
def smpl_file(tmp_path_factory) -> Path:
    s = smpl24()
    data = tiny_model_arrays(np.array(s.parents), s.rest_positions(), n_shape=10, n_pose_basis=23 * 9)
    path = tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh)
    return path


def test_loads_from_folder_and_file_without_polluting_stdout(smplx_dir: Path, capsys) -> None:
    model = load_body_model(smplx_dir)
    assert model.J_regressor.shape[0] == 55
    model2 = load_body_model(smplx_dir / "smplx" / "SMPLX_NEUTRAL.npz", model_type="smplx")
    assert model2.v_template.shape == (110, 3)
    assert capsys.readouterr().out == ""          # smplx's shape-space warning went to stderr


def test_zero_pose_gives_rest_joints_plus_trans(smplx_dir: Path) -> None:
    model = load_body_model(smplx_dir)
    trans = np.array([[0.0, 1.0, 0.0], [0.5, 1.0, -0.5]])
    rec = record_from_smplx_params(model, trans, np.zeros((2, 52, 3)))
    assert rec.fps == 30 and rec.joint_names == list(smplx52().names)
    rest = smplx52().rest_positions()
    np.testing.assert_allclose(rec.positions, rest[None] + trans[:, None], atol=1e-5)
    np.testing.assert_allclose(rot6d_to_matrix(rec.rotations_6d), np.broadcast_to(np.eye(3), (2, 52, 3, 3)),
                               atol=1e-6)


def test_posed_joints_match_model_free_fk(smplx_dir: Path) -> None:
    model = load_body_model(smplx_dir)
    rng = np.random.default_rng(1)
    poses = rng.normal(scale=0.4, size=(5, 52, 3))
    trans = rng.normal(size=(5, 3))
    rec = record_from_smplx_params(model, trans, poses)
    want = forward_kinematics(axis_angle_to_matrix(poses), trans, smplx52())
    np.testing.assert_allclose(rec.positions, want, atol=1e-4)
    # (T, 55, 3) in model order gives the same joints
    full = np.zeros((5, 55, 3))
    full[:, SMPLX55_TO_52] = poses
    np.testing.assert_allclose(record_from_smplx_params(model, trans, full).positions, rec.positions, atol=1e-5)


def test_vertices_follow_their_joint_and_betas_change_shape(smplx_dir: Path) -> None:
    model = load_body_model(smplx_dir)
    rng = np.random.default_rng(2)
    full = rng.normal(scale=0.3, size=(3, 55, 3))
    out = body_forward(model, np.zeros((3, 3)), full, betas=np.array([0.1]), with_vertices=True)
    assert out.vertices.shape == (3, 110, 3) and out.faces.shape == (55, 3)
    mid = 0.5 * (out.vertices[:, 0::2] + out.vertices[:, 1::2])
    # each vertex pair is rigid with its joint, so its midpoint (plus the shared pose corrective) tracks the joint
    assert np.abs(mid - out.joints[:, :55]).max() < 0.02
    half = 0.5 * np.linalg.norm(out.vertices[:, 0::2] - out.vertices[:, 1::2], axis=-1)
    np.testing.assert_allclose(half, 0.01, atol=1e-5)              # skinning keeps the rigid pair's size
    base = body_forward(model, np.zeros((3, 3)), full)
    np.testing.assert_allclose(out.joints - base.joints, np.broadcast_to([0, 0.1, 0], out.joints.shape), atol=1e-5)


def test_resamples_to_30fps(smplx_dir: Path) -> None:
    model = load_body_model(smplx_dir)
    rec = record_from_smplx_params(model, np.zeros((61, 3)), np.zeros((61, 52, 3)), fps=60)
    assert rec.num_frames == 31


def test_smpl_pickle_model(smpl_file: Path) -> None:
    model = load_body_model(smpl_file, model_type="smpl")
    rng = np.random.default_rng(3)
    poses = rng.normal(scale=0.4, size=(4, 72))
    trans = rng.normal(size=(4, 3))
    rec = record_from_smplx_params(model, trans, poses)
    assert rec.joint_names == list(smpl24().names)
    want = forward_kinematics(axis_angle_to_matrix(poses.reshape(4, 24, 3)), trans, smpl24())
    np.testing.assert_allclose(rec.positions, want, atol=1e-4)
    rot = rot6d_to_matrix(rec.rotations_6d)
    np.testing.assert_allclose(rot[:, 22:], np.broadcast_to(np.eye(3), (4, 30, 3, 3)), atol=1e-6)


def test_missing_model_explains_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_body_model(tmp_path / "nowhere" / "SMPLX_NEUTRAL.npz")
    assert "smpl-x.is.tue.mpg.de" in str(err.value) and err.value.field == "model_path"
    with pytest.raises(InputError) as err:
        load_body_model(tmp_path, model_type="smpl", gender="female")
    assert "SMPL_FEMALE" in str(err.value) and "smpl.is.tue.mpg.de" in str(err.value)


def test_bad_model_files_and_arguments(tmp_path: Path, smplx_dir: Path) -> None:
    bad = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(bad, v_template=np.zeros((3, 3)))
    with pytest.raises(InputError) as err:
        load_body_model(bad)
    assert "missing" in str(err.value) and "shapedirs" in str(err.value)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(InputError):
        load_body_model(junk, model_type="smpl")
    with pytest.raises(InputError):
        load_body_model(smplx_dir, model_type="flame")
    with pytest.raises(InputError):
        load_body_model(smplx_dir, gender="other")
    model = load_body_model(smplx_dir)
    with pytest.raises(InputError) as err:
        record_from_smplx_params(model, np.zeros((2, 3)), np.zeros((2, 24, 3)))
    assert err.value.field == "poses"
    with pytest.raises(InputError) as err:
        record_from_smplx_params(model, np.zeros((3, 3)), np.zeros((2, 52, 3)))
    assert err.value.field == "trans"
    with pytest.raises(InputError) as err:
        body_forward(model, np.zeros((1, 3)), np.zeros((1, 55, 3)), betas=np.ones(40))
    assert err.value.field == "betas"
