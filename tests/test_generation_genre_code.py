"""The genre code the denoiser reads (issue 14): prompt embeddings as they are, or whitened over the genre set."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from encoders.errors import DanceSearchError
from generation.diffusion.genre_code import genre_code, whiten_genre_embeddings
from tiny_denoiser import TINY_DENOISER


def _prompt_like(g: int = 18, e: int = 384, shared: float = 2.0, seed: int = 0) -> np.ndarray:
    """Unit embeddings that, like one-word-apart prompts, share most of their direction."""
    rng = np.random.default_rng(seed)
    emb = shared * rng.normal(size=(1, e)) + rng.normal(size=(g, e))
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_whitening_turns_bunched_prompts_into_a_regular_simplex() -> None:
    emb = _prompt_like()
    raw_cos = emb @ emb.T
    assert raw_cos[~np.eye(18, dtype=bool)].min() > 0.5             # the handicap: every pair alike
    code = whiten_genre_embeddings(emb)
    assert code.shape == emb.shape and code.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(code, axis=1), 1.0, atol=1e-5)
    cos = code @ code.T
    np.testing.assert_allclose(cos[~np.eye(18, dtype=bool)], -1 / 17, atol=1e-5)
    np.testing.assert_allclose(code.mean(axis=0), 0.0, atol=1e-6)


def test_whitening_is_a_fixed_map_of_the_genre_set_not_of_its_order_or_offset() -> None:
    """The code lives in the span of the centred prompts, follows the genres when they are reordered and ignores
    a shared offset or scale of the embeddings (nothing outside the genre set's own geometry decides it)."""
    emb = _prompt_like(g=6, e=32, seed=1)
    code = whiten_genre_embeddings(emb)
    centred = emb - emb.mean(axis=0)
    coef, *_ = np.linalg.lstsq(centred.T, code.T, rcond=None)
    np.testing.assert_allclose(centred.T @ coef, code.T, atol=1e-5)
    order = np.array([3, 0, 5, 1, 4, 2])
    np.testing.assert_allclose(whiten_genre_embeddings(emb[order]), code[order], atol=1e-5)
    np.testing.assert_allclose(whiten_genre_embeddings(3.0 * emb + 0.7), code, atol=1e-5)


def test_duplicate_prompts_share_one_code_and_bad_tables_are_refused() -> None:
    emb = _prompt_like(g=5, e=16, seed=2)
    code = whiten_genre_embeddings(np.vstack([emb, emb[:1]]))     # a sixth genre with the first one's prompt
    np.testing.assert_allclose(code[0], code[5], atol=1e-6)
    np.testing.assert_allclose(code[:5], whiten_genre_embeddings(emb), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(code, axis=1), 1.0, atol=1e-5)
    many = whiten_genre_embeddings(_prompt_like(g=12, e=4, seed=4))  # more genres than dimensions + 1
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)
    with pytest.raises(DanceSearchError, match="identical"):
        whiten_genre_embeddings(np.full((3, 8), 0.1))
    with pytest.raises(DanceSearchError, match="expected"):
        whiten_genre_embeddings(np.ones((1, 8)))
    with pytest.raises(DanceSearchError, match="NaN"):
        whiten_genre_embeddings(np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(DanceSearchError, match="unknown genre_code 'onehot'"):
        genre_code(emb, "onehot")
    np.testing.assert_array_equal(genre_code(emb, "prompt"), emb.astype(np.float32))


def test_a_recipe_with_the_whitened_code_trains_and_samples_with_the_coded_table(tiny_store, tmp_path) -> None:
    from generation.diffusion.pipeline import DancePipeline
    from generation.diffusion.recipe import build_configs, load_recipe
    from generation.diffusion.train import TrainConfig, train_denoiser

    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({
        "denoiser": dict(TINY_DENOISER),
        "train": {"steps": 2, "batch_size": 4, "eval_every": 2, "val_windows": 4, "num_threads": 1,
                  "warmup_steps": 1, "genre_code": "whitened"}}))
    denoiser, config = build_configs(load_recipe(recipe))
    emb = _prompt_like(g=2, e=8, seed=3).astype(np.float32)
    train_denoiser(tiny_store, tmp_path / "run", denoiser, config, progress=False, embeddings=(emb, "test"))
    saved = np.load(tmp_path / "run" / "genre_embeddings.npy")
    np.testing.assert_allclose(saved, whiten_genre_embeddings(emb), atol=1e-6)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["genre_code"] == "whitened"
    assert "genre code: whitened" in (tmp_path / "run" / "README.md").read_text()
    pipe = DancePipeline.from_pretrained(tmp_path / "run")
    np.testing.assert_allclose(pipe.genre_embeddings.numpy(), saved)
    with pytest.raises(DanceSearchError, match="genre_code"):
        TrainConfig(genre_code="onehot")
    # the default code trains on the prompt embeddings exactly as the backbone gave them
    train_denoiser(tiny_store, tmp_path / "plain", denoiser, dataclasses.replace(config, genre_code="prompt"),
                   progress=False, embeddings=(emb, "test"))
    np.testing.assert_array_equal(np.load(tmp_path / "plain" / "genre_embeddings.npy"), emb)


def test_the_shipped_v7_recipe_is_v3_s_with_the_whitened_code() -> None:
    from pathlib import Path

    from generation.diffusion.recipe import load_recipe

    recipes = Path(__file__).resolve().parents[1] / "generation" / "diffusion" / "recipes"
    v7, v3 = load_recipe(recipes / "cpu.json"), load_recipe(recipes / "cpu_v3.json")
    assert v7["train"].pop("genre_code") == "whitened"
    assert v7 == v3
