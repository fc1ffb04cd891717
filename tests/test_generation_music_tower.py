"""The generator's training extras: GCDance's music-tower ("FM") features, genre-swapped music, recipe files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from encoders.errors import DanceSearchError, InputError
from generation.diffusion.denoiser import GCDanceDenoiser
from generation.diffusion.music_swap import swap_music
from generation.diffusion.music_tower import MusicTowerFeatures
from generation.diffusion.recipe import build_configs, load_recipe
from generation.representation import FEATURE_DIM
from tiny_denoiser import tiny_denoiser_config

ROOT = Path(__file__).resolve().parents[1]
RETRIEVAL_RUN = ROOT / "models" / "demo"


@pytest.fixture(scope="module")
def tower() -> MusicTowerFeatures:
    return MusicTowerFeatures.from_retrieval_run(RETRIEVAL_RUN, d_model=32, window_frames=120)


def test_the_copied_tower_gives_the_retrieval_models_own_music_tokens(tower) -> None:
    from encoders.training.run_dir import load_run

    run = load_run(RETRIEVAL_RUN, device="cpu")
    music = np.random.default_rng(0).normal(size=(120, 35)).astype(np.float32)
    music[:, 33:] = (music[:, 33:] > 1.0)                                     # onset / beat one-hots
    batch = run.model.collate([(np.zeros((120, run.model.motion.input.in_features), np.float32),
                                run.stats.normalise_music(music, True), True)], starts=[0])
    with torch.no_grad():
        want, _ = run.model.music(batch["music"], batch["mask"])
        got, _ = tower.tower(tower._tower_input(torch.as_tensor(music)[None]), torch.ones(1, 30, dtype=torch.bool))
    assert want.shape == (1, 8, run.config.model.d_model)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert tower.spec.source.startswith("demo@")


def test_denoiser_with_music_tower_is_frozen_where_it_should_be_and_drops_fm_with_the_music(tower) -> None:
    torch.manual_seed(0)
    config = tiny_denoiser_config(window_frames=120, time_stride=4, music_tower=tower.spec.to_dict())
    model = GCDanceDenoiser(config)
    model.music_tower.load_state_dict(tower.state_dict())
    model.train()
    assert not model.music_tower.tower.training                             # no dropout noise in the frozen tower
    x, t = torch.randn(2, 120, FEATURE_DIM), torch.tensor([10, 500])
    music, genre = torch.randn(2, 120, 35), torch.randn(2, 8)
    out = model(x, t, music, genre)
    assert out.shape == (2, 120, FEATURE_DIM)
    out.pow(2).mean().backward()
    assert all(p.grad is None for p in model.music_tower.tower.parameters())
    assert model.music_tower.adapter[0].weight.grad is not None and model.music_tower.adapter[0].weight.grad.abs().sum() > 0
    # with the music dropped, neither the 35-d tokens nor the FM tokens depend on it
    model.eval()
    with torch.no_grad():
        dropped = [model(x, t, m, genre, drop_music=torch.ones(2, dtype=torch.bool)) for m in (music, -music)]
        kept = [model(x, t, m, genre) for m in (music, -music)]
    torch.testing.assert_close(dropped[0], dropped[1])
    assert not torch.allclose(kept[0], kept[1])


def test_a_retrieval_run_without_a_music_tower_is_refused(tmp_path) -> None:
    with pytest.raises(DanceSearchError, match="not a trained run directory"):
        MusicTowerFeatures.from_retrieval_run(tmp_path, d_model=32, window_frames=120)


def test_swapped_music_comes_from_another_genre_and_the_rate_holds() -> None:
    gen = torch.Generator().manual_seed(0)
    genre = torch.arange(64) % 4
    music = genre.float().view(64, 1, 1).expand(64, 3, 2).clone()            # each window's music names its genre
    out, swapped = swap_music(music, genre, 0.5, gen)
    source_genre = out[:, 0, 0].long()
    assert torch.all(source_genre[swapped] != genre[swapped])
    assert torch.all(source_genre[~swapped] == genre[~swapped])
    rates = [swap_music(music, genre, 0.3, gen)[1].float().mean().item() for _ in range(200)]
    assert abs(np.mean(rates) - 0.3) < 0.02
    same = torch.zeros(8, dtype=torch.long)                                   # nothing to swap with: kept
    kept, flags = swap_music(music[:8], same, 1.0, gen)
    assert not flags.any() and torch.equal(kept, music[:8])
    untouched, none = swap_music(music, genre, 0.0, gen)
    assert untouched is music and not none.any()


def test_recipe_files_are_checked_and_flags_override_them(tmp_path) -> None:
    shipped = load_recipe(ROOT / "generation" / "diffusion" / "recipes" / "cpu.json")
    denoiser, train = build_configs(shipped, minutes=3.0, steps=None, seed=None)
    assert denoiser.overlap_upsampling and denoiser.time_stride == 4
    assert train.minutes == 3.0 and train.steps == shipped["train"]["steps"] and train.music_swap > 0
    bad = tmp_path / "bad.json"
    for text, needle in [('{"train": {"minuts": 5}}', "train.minuts"), ('{"trian": {}}', "trian"),
                         ("[1, 2]", "JSON object"), ("{not json", "not a readable JSON recipe"),
                         ('{"denoiser": {"d_model": 30, "heads": 4}}', "multiple of heads"),
                         ('{"train": {"critic_kind": "posterior"}}', "critic_kind"),
                         ('{"train": {"sampled_critic_weight": 0.1}}', "genre_loss_weight")]:
        bad.write_text(text)
        with pytest.raises(DanceSearchError, match=needle) as info:
            build_configs(load_recipe(bad), bad)
        assert "bad.json" in str(info.value) or "d_model" in str(info.value)
    for text in ('{"train": {"critic_kind": "posterior"}}', '{"train": {"sampled_critic_steps": 0}}'):
        bad.write_text(text)                     # the dataclasses' own field checks also name the recipe file
        with pytest.raises(InputError, match="bad.json"):
            build_configs(load_recipe(bad), bad)
    with pytest.raises(InputError, match="not found"):
        load_recipe(tmp_path / "missing.json")


def test_generate_train_with_a_recipe_swapped_music_and_music_tower_then_sample(tmp_path, demo_workspace,
                                                                               capsys) -> None:
    from ui.cli import main
    from generation.diffusion.pipeline import DancePipeline

    recipe = tmp_path / "tiny.json"
    recipe.write_text(json.dumps({
        "denoiser": {"d_model": 32, "heads": 2, "body_layers": 1, "hand_layers": 1, "dropout": 0.0,
                     "overlap_upsampling": True},
        "train": {"steps": 3, "batch_size": 4, "eval_every": 2, "val_windows": 4, "warmup_steps": 1,
                  "music_swap": 0.5, "music_tower_run": str(RETRIEVAL_RUN), "num_threads": 1}}))
    out = tmp_path / "run"
    rc = main(["generate", "train", "--home", str(demo_workspace.home), "--config", str(recipe), "--out", str(out),
               "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert json.loads(captured.out)["steps"] == 3
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["music_swap"] == 0.5 and config["denoiser"]["overlap_upsampling"] is True
    assert config["denoiser"]["music_tower"]["source"].startswith("demo@")
    pipe = DancePipeline.from_pretrained(out)           # no retrieval run needed: the tower is in the checkpoint
    assert pipe.model.music_tower is not None
    music = np.random.default_rng(0).normal(size=(120, 35)).astype(np.float32)
    a = pipe(music, pipe.genres[0], seed=1, steps=2)
    b = pipe(music, pipe.genres[0], seed=1, steps=2)
    np.testing.assert_allclose(a.record.positions, b.record.positions)


def test_generate_train_refuses_a_bad_recipe_before_any_work(tmp_path, capsys) -> None:
    from indexer.workspace import Workspace
    from ui.cli import main

    home = tmp_path / "home"
    Workspace(home).ensure().catalog()                        # an empty catalog: building windows would fail
    bad = tmp_path / "typo.json"
    bad.write_text('{"train": {"minuts": 3}}')
    rc = main(["generate", "train", "--home", str(home), "--config", str(bad), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 1 and "typo.json" in err and "train.minuts" in err and "minutes" in err
    assert not (tmp_path / "run").exists()
