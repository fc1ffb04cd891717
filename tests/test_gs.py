"""The GS network (FineNet eq. 3-4): the cosine loss, learning genre from constructed data, the run
directory round trip, and `dancesearch gs train` on a tiny real catalog."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from generation.genre_match import (GSModelConfig, GSScorer, GSTrainConfig, MelConfig, cosine_pair_loss,
                                    load_gs_run, save_gs_run, train_gs)
from generation.genre_match.data import GSData
from generation.genre_match.model import dance_input

SMALL = GSModelConfig(embed_dim=16, n_mels=8, music_channels=(8, 8), dance_channels=(8, 8), dance_strides=(1, 2))


def test_cosine_loss_is_eq4() -> None:
    m = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    d = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0], [-1.0, 0.0]]), dim=-1)
    g_m, g_d = torch.tensor([0, 1]), torch.tensor([0, 0])
    s = m @ d.T            # [[.707, -1], [.707, 0]]
    # matched pairs: (0,0), (0,1) -> mean(1 - s); mismatched: (1,0), (1,1) -> mean(max(0, s))
    want = ((1 - s[0, 0]) + (1 - s[0, 1])) / 2 + (max(0, s[1, 0]) + max(0, s[1, 1])) / 2
    assert abs(float(cosine_pair_loss(m, d, g_m, g_d)) - float(want)) < 1e-6


def test_dance_input_ignores_where_the_dancer_stands() -> None:
    rng = np.random.default_rng(0)
    p = rng.normal(size=(20, 52, 3))
    moved = p + np.array([3.0, 0.0, -2.0])
    np.testing.assert_allclose(dance_input(p), dance_input(moved), atol=1e-5)
    assert dance_input(p, 2).shape == (6, 10, 22)


def _synthetic(n: int, seed: int) -> GSData:
    """Genre g: a mel band pattern and a joint oscillation frequency, plus noise."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, 3, size=n)
    t = np.arange(32)
    mel = rng.normal(scale=0.5, size=(n, 32, 8)).astype(np.float32)
    pos = rng.normal(scale=0.02, size=(n, 32, 22, 3))
    for i, g in enumerate(genre):
        mel[i, :, 2 * g:2 * g + 2] += 2.0
        pos[i, :, :, 1] += 0.3 * np.sin(t * (0.2 + 0.4 * g))[:, None]
    dance = np.stack([dance_input(p, SMALL.frame_step) for p in pos])
    return GSData(mel, dance, genre.astype(np.int64), ["a", "b", "c"], list(range(n)), [0] * n)


def test_training_learns_genre_matching_and_the_run_round_trips(tmp_path) -> None:
    train, val = _synthetic(96, 0), _synthetic(48, 1)
    model, history, summary = train_gs(train, val, GSTrainConfig(epochs=6, batch_size=16, lr=5e-3, threads=1), SMALL)
    v = history[summary["best_epoch"]]["val"]
    assert v["gs_real"] > v["gs_mismatched"] + 0.3 and v["top1_genre"] > 0.6
    run = save_gs_run(tmp_path / "gs", model, MelConfig(n_mels=8), GSTrainConfig(), ["a", "b", "c"], summary,
                      {"val": v}, history)
    again, mel, raw = load_gs_run(run)
    assert raw["kind"] == "genre-match" and mel.n_mels == 8
    scorer = GSScorer.from_pretrained(run)
    pos = [np.zeros((32, 52, 3)), np.ones((32, 52, 3))]
    np.testing.assert_allclose(scorer.model.dance_embeddings(pos), model.dance_embeddings(pos), atol=1e-6)
    gs = scorer.model.gs(val.mel[:4], [np.zeros((32, 22, 3))] * 4)
    assert gs.shape == (4,) and np.all(np.abs(gs) <= 1 + 1e-6)
    cfg = json.loads((run / "config.json").read_text())
    cfg["format"] = 99
    (run / "config.json").write_text(json.dumps(cfg))
    from encoders.errors import InputError

    with pytest.raises(InputError, match="format"):
        load_gs_run(run)


def test_gs_train_command_on_a_tiny_catalog(tmp_path, demo_workspace, capsys) -> None:
    from ui.cli import main

    out = tmp_path / "gsrun"
    rc = main(["gs", "train", "--home", str(demo_workspace.home), "--out", str(out), "--epochs", "1",
               "--minutes", "0.05", "--threads", "1", "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["data"]["train_windows"] > 0 and (out / "model.pt").is_file()
    rc = main(["gs", "reference", "--home", str(demo_workspace.home), "--run", str(out), "--json"])
    assert rc == 0
    ref = json.loads(capsys.readouterr().out)
    assert ref["split"] == "test" and -1 <= ref["gs_real"] <= 1
