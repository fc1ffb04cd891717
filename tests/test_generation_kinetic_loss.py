"""The kinetic-energy matching loss (``generation.diffusion.kinetic_loss``): it compares how much each body joint
moves, not where or in which direction; training with it logs it; the v10 recipe is v9's plus it."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from encoders.errors import DanceSearchError
from generation.diffusion.kinetic_loss import KINETIC_LAGS, SPEED_FLOOR, kinetic_energy_loss, rms_joint_speed
from generation.representation.layout import FPS


def _swinging(amplitude: float, phase: float = 0.0, frames: int = 60, joints: int = 52) -> torch.Tensor:
    """(1, T, J, 3) joints swinging sideways at 1 Hz with ``amplitude`` metres, each joint its own phase offset."""
    t = torch.arange(frames, dtype=torch.float64) / FPS
    offsets = torch.linspace(0, 1, joints, dtype=torch.float64)
    x = amplitude * torch.sin(2 * math.pi * (t[:, None] + offsets[None]) + phase)
    pos = torch.zeros(frames, joints, 3, dtype=torch.float64)
    pos[..., 0] = x
    return pos[None]


def test_rms_speed_is_the_joint_speed_in_metres_per_second_at_any_lag() -> None:
    """A joint moving 0.1 m per frame at 30 fps moves at 3 m/s, over 1 frame or over 8; one going back and forth
    every frame moves fast frame to frame and hardly at all over 8 frames."""
    pos = torch.zeros(1, 20, 52, 3, dtype=torch.float64)
    pos[..., 2] = 0.1 * torch.arange(20, dtype=torch.float64)[None, :, None]
    for lag in (1, 8):
        torch.testing.assert_close(rms_joint_speed(pos, lag=lag), torch.full((1, 22), 0.1 * FPS, dtype=torch.float64))
    jitter = torch.zeros(1, 20, 52, 3, dtype=torch.float64)
    jitter[:, 1::2, :, 0] = 0.01
    assert rms_joint_speed(jitter, lag=1).min() > 0.29 and rms_joint_speed(jitter, lag=8).max() < 1e-5


def test_the_loss_ignores_phase_and_direction_but_not_amplitude() -> None:
    real = _swinging(0.3)
    shifted = _swinging(0.3, phase=1.3)                  # the same movement at another moment
    mirrored = real.clone()
    mirrored[..., 0] = -mirrored[..., 0]                 # the same movement the other way
    assert kinetic_energy_loss(mirrored, real).item() < 1e-12
    assert kinetic_energy_loss(real, real).item() == 0.0
    half = _swinging(0.15)
    expected = torch.stack([torch.mean((torch.log(rms_joint_speed(real, lag=lag) / 2 + SPEED_FLOOR)
                                        - torch.log(rms_joint_speed(real, lag=lag) + SPEED_FLOOR)) ** 2)
                            for lag in KINETIC_LAGS]).mean()
    torch.testing.assert_close(kinetic_energy_loss(half, real), expected)
    assert expected.item() > 0.1
    # another phase changes which part of the swing the window's ends cut, so only a trace of a loss is left
    assert kinetic_energy_loss(shifted, real).item() < 0.02 * expected.item()


def test_descending_the_loss_makes_a_damped_motion_move_as_much_as_the_real_one() -> None:
    real = _swinging(0.3)
    scale = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([scale], lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        kinetic_energy_loss(real * scale, real).backward()
        opt.step()
    assert scale.item() == pytest.approx(1.0, abs=0.02)


def test_the_train_config_refuses_a_negative_kinetic_weight() -> None:
    from generation.diffusion.train import TrainConfig

    with pytest.raises(DanceSearchError, match="kinetic_loss_weight"):
        TrainConfig(kinetic_loss_weight=-1.0)


def test_losses_from_a_shared_pose_equal_the_losses_posed_inside() -> None:
    import numpy as np

    from generation.diffusion.losses import diffusion_losses, pose
    from generation.representation import FEATURE_DIM
    from generation.representation.normalizer import Normalizer

    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 8, FEATURE_DIM, generator=g), torch.randn(2, 8, FEATURE_DIM, generator=g)
    norm = Normalizer(np.zeros(FEATURE_DIM, np.float32), np.full(FEATURE_DIM, 0.1, np.float32), count=1)
    inside = diffusion_losses(pred, target, norm)
    shared = diffusion_losses(pred, target, norm, pose(pred, target, norm))
    for name in inside:
        torch.testing.assert_close(inside[name], shared[name])


def test_training_with_the_kinetic_loss_logs_it(tiny_store, tmp_path: Path) -> None:
    """The loss reaches the history only when switched on (v9 and earlier runs are trained without it)."""
    import json

    import numpy as np

    from generation.diffusion.recipe import build_configs
    from generation.diffusion.train import train_denoiser
    from tiny_denoiser import TINY_DENOISER

    emb = np.random.default_rng(0).normal(size=(2, TINY_DENOISER["genre_dim"])).astype(np.float32)
    rows = {}
    for name, weight in (("on", 0.5), ("off", 0.0)):
        denoiser, config = build_configs({"denoiser": dict(TINY_DENOISER), "train": {
            "steps": 2, "batch_size": 4, "eval_every": 2, "val_windows": 4, "num_threads": 1, "warmup_steps": 1,
            "kinetic_loss_weight": weight}})
        train_denoiser(tiny_store, tmp_path / name, denoiser, config, progress=False, embeddings=(emb, "test"))
        rows[name] = json.loads((tmp_path / name / "history.json").read_text())[-1]
    assert rows["on"]["train_kinetic"] > 0 and "train_kinetic" not in rows["off"]
    assert json.loads((tmp_path / "on" / "config.json").read_text())["train"]["kinetic_loss_weight"] == 0.5


def test_the_v10_recipe_is_v9_with_the_kinetic_loss() -> None:
    """docs/results/generation.md compares v10 with v9 and v7: one change from v9."""
    from generation.diffusion.recipe import load_recipe

    recipes = Path(__file__).resolve().parents[1] / "generation" / "diffusion" / "recipes"
    v10, v9 = load_recipe(recipes / "cpu_v10.json"), load_recipe(recipes / "cpu_v9.json")
    assert v10["train"].pop("kinetic_loss_weight") > 0
    assert v10 == v9
