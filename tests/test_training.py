"""End-to-end training on synthetic clips stored as real MotionRecord / .npy files."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_clips import make_music, make_record, write_clips  # noqa: E402

from encoders.api import DanceEmbedder, DanceInput
from encoders.errors import DanceSearchError
from encoders.model.customdancer import ModelConfig
from encoders.motion.record import MotionRecord
from encoders.training.data import ClipExample, balanced_batches, load_music
from encoders.training.run_dir import FILES, RunConfig, TrainConfig, load_run
from encoders.training.trainer import train


def _config(epochs: int = 12, seed: int = 0, **model_kw) -> RunConfig:
    m = dict(backbone="bow", freeze_backbone=False, d_model=24, layers=1, heads=2, embed_dim=16, seq_len=40, frame_stride=2,
             text_hidden=32, bow_dim=32, dropout=0.1)
    m.update(model_kw)
    return RunConfig(ModelConfig(**m), TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, seed=seed, num_threads=1,
                                                   device="cpu"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[ClipExample], list[ClipExample]]:
    root = tmp_path_factory.mktemp("clips")
    train_ex = write_clips(root / "train", per_genre=6, seed=0, frames=90, music_missing_every=5)
    val_ex = write_clips(root / "val", per_genre=2, seed=1, frames=90, split="val")
    return train_ex, val_ex


@pytest.fixture(scope="module")
def trained_run(clips, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run") / "r1"
    return train(_config(), clips[0], clips[1], out, progress=False)


def test_loss_decreases_and_beats_chance(trained_run) -> None:
    losses = [h["train_loss"] for h in trained_run.history]
    assert losses[-1] < losses[0] * 0.8
    # 8 val clips, 3 captions each; each genre has 2 clips, so a model that learned genres has MnR <= ~2.5,
    # chance is 4.5
    assert trained_run.best_val["MnR"] < 3.5


def test_run_directory_round_trip(trained_run, clips) -> None:
    run_dir = trained_run.run_dir
    for name in FILES:
        assert (run_dir / name).is_file(), name
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["model"]["temporal"] == "transformer" and cfg["train"]["seed"] == 0
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 12 and "R@1" in history[0]["val"]
    loaded = load_run(run_dir, "cpu")
    assert loaded.config.to_dict() == _config().to_dict()
    emb = DanceEmbedder(loaded.model, loaded.stats, loaded.config, "x")
    from encoders.training.trainer import evaluate_model
    from encoders.training.data import FeatureBank
    bank = FeatureBank(clips[1], progress=False, motion_input=loaded.config.model.motion_input,
                       smoothing=loaded.config.model.input_smoothing)
    again = evaluate_model(loaded.model, bank.normalise(loaded.stats), clips[1], torch.device("cpu"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert again == pytest.approx(metrics["val"])  # the saved checkpoint is the selected epoch
    assert emb.dim == 16


def test_same_seed_same_run(clips, tmp_path: Path) -> None:
    a = train(_config(epochs=2, seed=3), clips[0], clips[1], tmp_path / "a", progress=False)
    b = train(_config(epochs=2, seed=3), clips[0], clips[1], tmp_path / "b", progress=False)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert a.best_val == b.best_val
    assert (tmp_path / "a" / "best.pt").read_bytes() == (tmp_path / "b" / "best.pt").read_bytes()
    c = train(_config(epochs=2, seed=4), clips[0], clips[1], tmp_path / "c", progress=False)
    assert [h["train_loss"] for h in c.history] != [h["train_loss"] for h in a.history]


def test_embedder_shapes_norms_and_determinism(trained_run, clips) -> None:
    emb = DanceEmbedder.from_run(trained_run.run_dir, device="cpu", batch_size=3)
    ex = clips[1]
    dances = [DanceInput(MotionRecord.load(e.motion_path), load_music(e.music_path)) for e in ex]
    d1 = emb.encode_dances(dances)
    d2 = emb.encode_dances(list(reversed(dances)))[::-1]
    assert d1.shape == (len(ex), emb.dim) and d1.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d1, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(d1, d2, atol=1e-5)  # batch composition does not change an embedding
    t = emb.encode_text(["a slow waltz dance", "fast right arm motion", "a slow waltz dance"])
    assert t.shape == (3, emb.dim)
    np.testing.assert_allclose(t[0], t[2], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    assert emb.encode_text([]).shape == (0, emb.dim)
    again = DanceEmbedder.from_run(trained_run.run_dir, device="cpu")
    assert again.model_id == emb.model_id and emb.model_id.startswith("cd-")
    # a dance without music and a record at another frame rate still embed
    rng = np.random.default_rng(5)
    rec = make_record("waltz", rng, 120)
    rec60 = MotionRecord(60.0, np.repeat(rec.trans, 2, 0), np.repeat(rec.positions, 2, 0), rec.joint_names)
    out = emb.encode_dances([DanceInput(rec, None), DanceInput(rec60, make_music("waltz", rng, 120))])
    assert np.isfinite(out).all()


@pytest.mark.parametrize("temporal,fusion", [("lstm", "blend"), ("rnn", "add"), ("transformer", "mul"),
                                             ("transformer", "motion"), ("transformer", "music")])
def test_variants_train(clips, tmp_path: Path, temporal: str, fusion: str) -> None:
    small = clips[0][::2]
    r = train(_config(epochs=1, temporal=temporal, fusion=fusion), small, clips[1], tmp_path / "v", progress=False)
    assert r.best_val is not None and np.isfinite(r.history[0]["train_loss"])
    assert json.loads((tmp_path / "v" / "config.json").read_text())["model"]["fusion"] == fusion


def test_balanced_batches_mix_genres_and_dancers() -> None:
    genres = ["a"] * 40 + ["b"] * 40 + ["c"] * 20
    dancers = [f"d{i % 4}" for i in range(100)]
    batches = balanced_batches(genres, dancers, 10, np.random.default_rng(0))
    assert sorted(i for b in batches for i in b) == list(range(100))
    for b in batches:
        counts = {g: sum(genres[i] == g for i in b) for g in "abc"}
        assert 3 <= counts["a"] <= 5 and 3 <= counts["b"] <= 5 and 1 <= counts["c"] <= 3
        assert len({dancers[i] for i in b}) >= 3
    again = balanced_batches(genres, dancers, 10, np.random.default_rng(0))
    assert again == batches
    assert balanced_batches(["a"] * 11, [None] * 11, 5, np.random.default_rng(0))[-1] != [10]  # lone last dropped


def test_training_needs_captions(tmp_path: Path, clips) -> None:
    bare = [ClipExample(e.clip_id, e.motion_path, e.music_path, [], e.genre, e.dancer) for e in clips[0]]
    with pytest.raises(DanceSearchError, match="captioned"):
        train(_config(epochs=1), bare, clips[1], tmp_path / "x", progress=False)


def test_missing_run_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DanceSearchError, match="not a trained run directory"):
        DanceEmbedder.from_run(tmp_path)


def test_rotation_dropout_hides_the_rotation_block_of_some_clips() -> None:
    import numpy as np
    import torch

    from encoders.model.features import MOTION_FEATURE_DIM, block_slice
    from encoders.training.trainer import hide_rotations

    motion = torch.ones((200, 5, MOTION_FEATURE_DIM))
    hide_rotations(motion, np.random.default_rng(0), 0.3)
    rot, flag = block_slice("rotations_6d"), block_slice("rotation_flag")
    hidden = (motion[:, :, flag] == 0).all(dim=(1, 2))
    assert 30 <= int(hidden.sum()) <= 90                               # about 30 % of 200
    assert (motion[hidden][:, :, rot] == 0).all()                      # rotations gone with the flag
    assert (motion[~hidden][:, :, rot] == 1).all() and (motion[:, :, : rot.start] == 1).all()  # the rest untouched


def test_export_demo_model_replaces_the_target_with_test_figures(trained_run, tmp_path: Path) -> None:
    """`eval ablations --demo-out`: the shipped model is the baseline row, with its test figures and card."""
    from eval.ablations import export_demo_model

    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "stale.txt").write_text("from an older model")
    test = {"R@1": 12.5, "R@5": 40.0, "R@10": 60.0, "MedR": 7.0, "MnR": 20.0, "gallery_size": 8, "num_queries": 24,
            "protocol": "full", "ci95": {"R@1": [5.0, 20.0]}, "ignored": 1}
    export_demo_model(trained_run.run_dir, demo, test, "dancesearch eval ablations --demo-out models/demo")
    assert not (demo / "stale.txt").exists(), "the old model directory is replaced, not merged"
    assert not any(p.name.endswith((".staging", ".previous")) for p in tmp_path.iterdir())
    metrics = json.loads((demo / "metrics.json").read_text())
    assert metrics["test"]["R@10"] == 60.0 and "ignored" not in metrics["test"]
    card = (demo / "README.md").read_text()
    assert "dancesearch eval ablations --demo-out models/demo" in card
    assert DanceEmbedder.from_run(demo).model_id == DanceEmbedder.from_run(trained_run.run_dir).model_id


def test_unimodal_loss_trains_each_tower_and_skips_clips_without_music() -> None:
    from encoders.model.customdancer import CustomDancer
    from encoders.model.features import NormStats, collate_dances, prepare_dance
    from encoders.training.trainer import unimodal_loss

    torch.manual_seed(0)
    model = CustomDancer(_config().model)
    rng = np.random.default_rng(0)
    genres = ("waltz", "krump", "salsa")
    items = [prepare_dance(make_record(g, rng, 90), make_music(g, rng, 90), NormStats.identity()) for g in genres]
    b = collate_dances(items, 40, 2)
    text = model.encode_text([f"a {g} dance" for g in genres])
    tokens = model.dance_tokens(b["motion"], b["music"], b["mask"], b["music_present"])
    motion_only, music_only = model.unimodal_embeddings(*tokens)
    both = unimodal_loss(model, text, tokens, b["music_present"])
    torch.testing.assert_close(both, model.loss(text, motion_only) + model.loss(text, music_only))
    both.backward()
    assert model.music.input.weight.grad.abs().sum() > 0 and model.motion.input.weight.grad.abs().sum() > 0

    one_with_music = torch.tensor([True, False, False])  # a single clip with music: no music term
    tokens = model.dance_tokens(b["motion"], b["music"], b["mask"], one_with_music)
    motion_only, _ = model.unimodal_embeddings(*tokens)
    torch.testing.assert_close(unimodal_loss(model, text, tokens, one_with_music), model.loss(text, motion_only))


def test_unimodal_loss_weight_is_recorded_and_validated(clips, tmp_path: Path) -> None:
    cfg = _config(epochs=2)
    cfg.train.unimodal_loss_weight = 0.5
    run = train(cfg, clips[0], clips[1], tmp_path / "aux", progress=False)
    assert load_run(run.run_dir).config.train.unimodal_loss_weight == 0.5
    plain = train(_config(epochs=2), clips[0], clips[1], tmp_path / "plain", progress=False)
    assert [h["train_loss"] for h in run.history] != [h["train_loss"] for h in plain.history]
    with pytest.raises(DanceSearchError, match="unimodal_loss_weight"):
        TrainConfig.from_dict({"unimodal_loss_weight": -1})


def test_ground_extent_augmentation_needs_augmented_variants() -> None:
    assert TrainConfig.from_dict({"augment_variants": 2, "augment_ground_sigma": 0.3}).augment_ground_sigma == 0.3
    with pytest.raises(DanceSearchError, match="augment_variants > 0"):
        TrainConfig.from_dict({"augment_ground_sigma": 0.3})              # it would silently do nothing
    with pytest.raises(DanceSearchError, match="augment_ground_sigma must be >= 0"):
        TrainConfig.from_dict({"augment_variants": 2, "augment_ground_sigma": -0.1})


def test_options_added_later_leave_old_model_ids_alone() -> None:
    """An index or fast encoder built with a model stays valid when a release adds a training option."""
    from encoders.api import compute_model_id

    base = _config()
    old_style = {"model": {k: v for k, v in base.model.to_dict().items() if k != "music_pool"},
                 "train": {k: v for k, v in base.to_dict()["train"].items() if k != "unimodal_loss_weight"}}
    assert compute_model_id("abc", RunConfig.from_dict(old_style)) == compute_model_id("abc", base)
    used = _config()
    used.train.unimodal_loss_weight = 0.5
    windowed = _config(music_pool="window")
    ids = {compute_model_id("abc", c) for c in (base, used, windowed)}
    assert len(ids) == 3


def test_a_saved_run_config_keeps_its_input_but_a_new_config_gets_todays() -> None:
    """A run trained before canonical retargeting loads as it was trained; a config a user writes now
    without the key trains today's default (the canonical body), not the legacy input."""
    saved = RunConfig.from_dict({"format": 1, "model": {"temporal": "lstm"}, "train": {}})
    assert saved.model.motion_input == "source" and saved.model.input_smoothing == 0.0
    fresh = RunConfig.from_dict({"model": {"temporal": "lstm"}, "train": {}})
    assert fresh.model.motion_input == "canonical" and fresh.model.input_smoothing > 0


def test_short_crops_keep_motion_and_music_aligned() -> None:
    from encoders.training.trainer import short_crop

    motion = np.arange(360 * 2, dtype=np.float32).reshape(360, 2)
    music = np.arange(360 * 35, dtype=np.float32).reshape(360, 35)
    rng = np.random.default_rng(0)
    lengths = set()
    for _ in range(50):
        m, u, present = short_crop((motion, music, True), rng, 120)
        assert 120 <= len(m) <= 360 and len(u) == len(m) and present
        start = int(m[0, 0]) // 2
        assert np.array_equal(m, motion[start:start + len(m)]) and np.array_equal(u, music[start:start + len(m)])
        lengths.add(len(m))
    assert len(lengths) > 10
    short = (motion[:100], music[:100], False)
    assert short_crop(short, rng, 120) is short
