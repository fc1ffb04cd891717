"""The generator's training settings are checked where they are read (a recipe), not minutes into a run."""
from __future__ import annotations

import json

import numpy as np
import pytest

from encoders.errors import DanceSearchError
from tiny_denoiser import TINY_DENOISER


@pytest.mark.parametrize("field, value, message", [
    ("warmup_steps", 0, "warmup_steps must be >= 1, got 0"),
    ("eval_every", 0, "eval_every must be >= 1"),
    ("steps", 0, "steps must be >= 1"),
    ("music_swap", 1.5, r"music_swap is a share of windows, in \[0, 1\]; got 1.5"),
    ("music_swap", -0.1, "music_swap is a share"),
    ("cond_drop", 1.2, "cond_drop is a share"),
    ("genre_loss_weight", -1.0, "genre_loss_weight must be >= 0"),
    ("lr", 0.0, "minutes and lr must be > 0"),
    ("loss_combination", "mean", "unknown loss_combination 'mean'"),
    ("loss_weights", {"simple": 1.0, "speed": 2.0}, "unknown loss_weights key"),
])
def test_a_recipe_with_an_unusable_training_value_is_refused_naming_the_field(tmp_path, field, value,
                                                                              message) -> None:
    from generation.diffusion.recipe import build_configs, load_recipe

    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"denoiser": dict(TINY_DENOISER), "train": {field: value}}))
    with pytest.raises(DanceSearchError, match=message):
        build_configs(load_recipe(recipe))


def test_loss_weights_left_out_weigh_one() -> None:
    from generation.diffusion.losses import LOSS_NAMES
    from generation.diffusion.train import TrainConfig

    assert TrainConfig(loss_weights={"foot": 0.5}).loss_weights == {**dict.fromkeys(LOSS_NAMES, 1.0), "foot": 0.5}
    assert TrainConfig().loss_weights == dict.fromkeys(LOSS_NAMES, 1.0)


def test_genre_embeddings_of_another_width_than_the_denoiser_reads_are_refused_before_training(tiny_store,
                                                                                              tmp_path) -> None:
    import dataclasses

    from generation.diffusion.recipe import build_configs
    from generation.diffusion.train import train_denoiser

    denoiser, config = build_configs({"denoiser": dict(TINY_DENOISER), "train": {
        "steps": 2, "batch_size": 4, "eval_every": 2, "val_windows": 4, "num_threads": 1, "warmup_steps": 1}})
    emb = np.random.default_rng(0).normal(size=(2, denoiser.genre_dim + 4)).astype(np.float32)
    with pytest.raises(DanceSearchError, match=rf"embed to {denoiser.genre_dim + 4} dims .*denoiser.genre_dim is "
                                               rf"{denoiser.genre_dim}: set denoiser.genre_dim to"):
        train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False, embeddings=(emb, "test"))
    assert not (tmp_path / "run").exists(), "nothing is written for a refused run"
    wider = dataclasses.replace(denoiser, genre_dim=denoiser.genre_dim + 4)
    train_denoiser(tiny_store, tmp_path / "run", wider, config, progress=False, embeddings=(emb, "test"))
    assert (tmp_path / "run" / "model.pt").is_file()


def test_beat_times_read_the_beat_column_in_seconds() -> None:
    from encoders.music import MUSIC_FEATURE_DIM
    from encoders.music.features import COL_BEAT, FEATURE_FPS, beat_times

    music = np.zeros((90, MUSIC_FEATURE_DIM), dtype=np.float32)
    music[[0, 15, 60], COL_BEAT] = 1.0
    np.testing.assert_allclose(beat_times(music), np.array([0, 15, 60]) / FEATURE_FPS)
    assert beat_times(music[:10]).tolist() == [0.0]


def test_a_run_stopped_by_its_budget_between_evaluations_still_logs_and_keeps_its_last_step(tiny_store, tmp_path,
                                                                                           monkeypatch) -> None:
    """The clock runs out during step 3 of 10 (evaluations every 2): the run ends with a validation row for
    step 3, carrying the training losses of that step, and writes its run directory."""
    import generation.diffusion.train as train_module
    from generation.diffusion.recipe import build_configs

    steps_started = {"n": 0}
    real_swap = train_module.swap_music

    def counting_swap(*args, **kwargs):                       # called once at the start of every training step
        steps_started["n"] += 1
        return real_swap(*args, **kwargs)

    class Clock:                                             # the budget is gone once step 3 has started
        @staticmethod
        def perf_counter() -> float:
            return 1e6 if steps_started["n"] >= 3 else 0.0

    monkeypatch.setattr(train_module, "swap_music", counting_swap)
    monkeypatch.setattr(train_module, "time", Clock)
    denoiser, config = build_configs({"denoiser": dict(TINY_DENOISER), "train": {
        "steps": 10, "minutes": 1.0, "batch_size": 4, "eval_every": 2, "val_windows": 4, "num_threads": 1,
        "warmup_steps": 1}})
    emb = np.random.default_rng(0).normal(size=(2, denoiser.genre_dim)).astype(np.float32)
    result = train_module.train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False,
                                         embeddings=(emb, "test"))
    assert result["steps"] == 3
    assert [row["step"] for row in result["history"]] == [2, 3]
    assert np.isfinite(result["history"][-1]["train_simple"]) and np.isfinite(result["history"][-1]["val_simple"])
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["step"] for row in saved] == [2, 3]


def test_snapshots_keep_the_weights_every_n_steps_and_load_by_step(tiny_store, tmp_path) -> None:
    """``snapshot_every`` keeps the weights of steps 2 and 4 beside the run; ``load_run(snapshot=N)`` loads them
    (different weights from each other), and a step without a snapshot is refused naming the kept ones."""
    import torch

    from encoders.errors import InputError
    from generation.diffusion.recipe import build_configs
    from generation.diffusion.run_dir import list_snapshots, load_run
    from generation.diffusion.train import train_denoiser

    denoiser, config = build_configs({"denoiser": dict(TINY_DENOISER), "train": {
        "steps": 5, "batch_size": 4, "eval_every": 5, "snapshot_every": 2, "val_windows": 4, "num_threads": 1,
        "warmup_steps": 1}})
    emb = np.random.default_rng(0).normal(size=(2, denoiser.genre_dim)).astype(np.float32)
    train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False, embeddings=(emb, "test"))
    assert list_snapshots(tmp_path / "run") == [2, 4]
    first, second = (load_run(tmp_path / "run", snapshot=s)[0].state_dict() for s in (2, 4))
    assert any(not torch.equal(first[k], second[k]) for k in first)
    best = load_run(tmp_path / "run")[0].state_dict()               # model.pt: the step-5 evaluation's weights
    assert any(not torch.equal(best[k], second[k]) for k in best)
    with pytest.raises(InputError, match=r"no snapshot at this step.*expected 2, 4, got 3"):
        load_run(tmp_path / "run", snapshot=3)


def test_an_exported_snapshot_is_a_run_that_samples_and_says_how_it_was_chosen(tiny_store, tmp_path) -> None:
    import torch

    from encoders.errors import InputError
    from generation.diffusion.pipeline import DancePipeline
    from generation.diffusion.recipe import build_configs
    from generation.diffusion.run_dir import average_snapshots, export_checkpoint, load_run
    from generation.diffusion.train import train_denoiser

    denoiser, config = build_configs({"denoiser": dict(TINY_DENOISER), "train": {
        "steps": 4, "batch_size": 4, "eval_every": 2, "snapshot_every": 2, "val_windows": 4, "num_threads": 1,
        "warmup_steps": 1}})
    emb = np.random.default_rng(0).normal(size=(2, denoiser.genre_dim)).astype(np.float32)
    train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False, embeddings=(emb, "test"))
    out = export_checkpoint(tmp_path / "run", [2], tmp_path / "chosen", {"by": "val FID_k", "fid_k": 1.0})
    chosen = load_run(out)[0].state_dict()
    kept = load_run(tmp_path / "run", snapshot=2)[0].state_dict()
    assert all(torch.equal(chosen[k], kept[k]) for k in kept)
    raw = json.loads((out / "config.json").read_text())
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert raw["data"]["best_step"] == 2 and raw["data"]["checkpoint_selection"]["by"] == "val FID_k"
    assert raw["data"]["best_val_simple"] == next(r["val_simple"] for r in history if r["step"] == 2)
    assert "step 2" in (out / "README.md").read_text() and "chosen by val FID_k" in (out / "README.md").read_text()
    music = np.random.default_rng(1).normal(size=(16, 35)).astype(np.float32)
    a = DancePipeline.from_pretrained(out)(music, "waltz", seed=1, steps=2).record.positions
    b = DancePipeline.from_pretrained(tmp_path / "run", snapshot=2)(music, "waltz", seed=1, steps=2).record.positions
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="overwrite the run"):
        export_checkpoint(tmp_path / "run", [2], tmp_path / "run", {"by": "x"})
    with pytest.raises(InputError, match="no snapshot at this step"):
        export_checkpoint(tmp_path / "run", [2, 3], tmp_path / "other", {"by": "x"})
    assert not (tmp_path / "other").exists()
    with pytest.raises(InputError, match="output folder exists"):
        export_checkpoint(tmp_path / "run", [4], out, {"by": "x"})
    # the mean of two snapshots: exactly the average of their weights, exported and loaded like any run
    mean = average_snapshots(tmp_path / "run", [2, 4])
    later = load_run(tmp_path / "run", snapshot=4)[0].state_dict()
    for k in kept:
        torch.testing.assert_close(mean[k], (kept[k] + later[k]) / 2)
    averaged = export_checkpoint(tmp_path / "run", [2, 4], tmp_path / "avg", {"by": "val samples"})
    loaded = load_run(averaged)[0].state_dict()
    assert all(torch.equal(loaded[k], mean[k]) for k in mean)
    raw = json.loads((averaged / "config.json").read_text())
    assert raw["data"]["checkpoint_selection"]["steps"] == [2, 4] and raw["data"]["best_val_simple"] is None
    assert "mean of the snapshots of steps 2, 4" in (averaged / "README.md").read_text()


def test_a_negative_snapshot_interval_is_refused() -> None:
    from generation.diffusion.train import TrainConfig

    with pytest.raises(DanceSearchError, match="snapshot_every must be >= 0"):
        TrainConfig(snapshot_every=-1)


def test_snapshots_leave_training_unchanged_and_a_retrained_run_drops_the_old_ones(tiny_store, tmp_path) -> None:
    """The same recipe with and without snapshots writes the same model.pt; training again into a folder that
    holds another run's snapshots removes them, so they are never scored as the new run's."""
    from generation.diffusion.recipe import build_configs
    from generation.diffusion.run_dir import list_snapshots
    from generation.diffusion.train import train_denoiser

    emb = np.random.default_rng(0).normal(size=(2, TINY_DENOISER["genre_dim"])).astype(np.float32)

    def train(out, every: int) -> bytes:
        denoiser, config = build_configs({"denoiser": dict(TINY_DENOISER), "train": {
            "steps": 4, "batch_size": 4, "eval_every": 2, "snapshot_every": every, "val_windows": 4,
            "num_threads": 1, "warmup_steps": 1}})
        train_denoiser(tiny_store, out, denoiser, config, progress=False, embeddings=(emb, "test"))
        return (out / "model.pt").read_bytes()

    with_snapshots = train(tmp_path / "a", 2)
    assert list_snapshots(tmp_path / "a") == [2, 4]
    assert train(tmp_path / "b", 0) == with_snapshots
    train(tmp_path / "a", 0)
    assert list_snapshots(tmp_path / "a") == []
