"""The genre token (``DenoiserConfig.genre_token``): the genre read by every cross-attention as one memory token,
beside FiLM, and dropped with the genre for classifier-free guidance; the v9 recipe is v7's plus this and
snapshots."""
from __future__ import annotations

from pathlib import Path

import torch

from generation.diffusion.denoiser import GCDanceDenoiser
from generation.representation import FEATURE_DIM
from tiny_denoiser import tiny_denoiser_config


def _outputs(genre_token: bool, genres: torch.Tensor, drop_genre: torch.Tensor | None = None) -> torch.Tensor:
    torch.manual_seed(0)
    model = GCDanceDenoiser(tiny_denoiser_config(genre_token=genre_token)).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, FEATURE_DIM, generator=g).expand(len(genres), -1, -1)
    music = torch.randn(1, 16, 35, generator=g).expand(len(genres), -1, -1)
    t = torch.full((len(genres),), 500)
    with torch.no_grad():
        return model(x, t, music, genres, drop_genre=drop_genre)


def test_an_untrained_model_reads_the_genre_only_through_the_token() -> None:
    """FiLM starts as the identity, so a fresh model without the token ignores the genre; with it, two genres give
    two outputs at once, and a dropped genre gives one output whatever the genre was."""
    genres = torch.randn(2, 8, generator=torch.Generator().manual_seed(2))
    plain = _outputs(False, genres)
    torch.testing.assert_close(plain[0], plain[1])
    token = _outputs(True, genres)
    assert (token[0] - token[1]).abs().max() > 1e-4
    dropped = _outputs(True, genres, drop_genre=torch.tensor([True, True]))
    torch.testing.assert_close(dropped[0], dropped[1])
    assert (dropped[0] - token[0]).abs().max() > 1e-4


def test_the_v9_recipe_is_the_shipped_one_with_the_genre_token_and_snapshots() -> None:
    """docs/results/generation.md compares v9 with v7 as one model change (snapshots only keep weights)."""
    from generation.diffusion.recipe import load_recipe

    recipes = Path(__file__).resolve().parents[1] / "generation" / "diffusion" / "recipes"
    v9, v7 = load_recipe(recipes / "cpu_v9.json"), load_recipe(recipes / "cpu.json")
    assert v9["denoiser"].pop("genre_token") is True
    assert v9["train"].pop("snapshot_every") > 0
    assert v9 == v7
