"""CustomDancer building blocks: features, temporal encoders, blender, loss, text encoder, full model."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_clips import make_music, make_record  # noqa: E402

from encoders.errors import DanceSearchError
from encoders.model.blender import FUSIONS, MusicMotionBlender
from encoders.model.customdancer import CustomDancer, ModelConfig
from encoders.model.features import (MOTION_FEATURE_DIM, NormStats, align_music, block_slice, collate_dances,
                                     motion_features, prepare_dance, window)
from encoders.model.loss import TextToDanceInfoNCE
from encoders.model.temporal import TEMPORAL_KINDS, TemporalEncoder
from encoders.motion.record import MotionRecord

torch.set_num_threads(1)


def _rotate_record(rec: MotionRecord, angle: float, shift: np.ndarray, scale: float) -> MotionRecord:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    pos = (rec.positions @ rot.T) * scale + shift
    return MotionRecord(rec.fps, pos[:, 0], pos, rec.joint_names, rec.rotations_6d)


def test_features_invariant_to_facing_position_and_size() -> None:
    rec = make_record("salsa", np.random.default_rng(0), 60)
    f0 = motion_features(rec)
    f1 = motion_features(_rotate_record(rec, 1.1, np.array([2.0, 0.0, -3.0]), 1.3))
    assert f0.shape == (60, MOTION_FEATURE_DIM)
    np.testing.assert_allclose(f0, f1, atol=2e-3)


def test_rotations_zero_filled_with_flag() -> None:
    rng = np.random.default_rng(1)
    without = motion_features(make_record("waltz", rng, 40, with_rotations=False))
    with_rot = motion_features(make_record("waltz", rng, 40, with_rotations=True))
    assert without.shape == with_rot.shape
    assert (without[:, block_slice("rotation_flag")] == 0).all() and (without[:, block_slice("rotations_6d")] == 0).all()
    assert (with_rot[:, block_slice("rotation_flag")] == 1).all()
    stats = NormStats.fit([without, with_rot], [None, None])
    normed = stats.normalise_motion(without)
    assert (normed[:, block_slice("rotations_6d")] == 0).all()  # absent stays exactly zero after normalisation


def test_music_alignment_and_window() -> None:
    music, present = align_music(np.ones((10, 35), np.float32), 15)
    assert present and music.shape == (15, 35) and music[10:].sum() == 0
    zeros, present = align_music(None, 7)
    assert not present and zeros.shape == (7, 35)
    with pytest.raises(DanceSearchError):
        align_music(np.ones((10, 3)), 10)
    assert window(100, 10, 2).tolist() == list(range(40, 60, 2))   # centred
    assert window(100, 10, 2, start=0).tolist() == list(range(0, 20, 2))
    assert window(7, 10, 2).tolist() == [0, 2, 4, 6]


def test_collate_pads_and_masks() -> None:
    items = [(np.ones((20, 5), np.float32), np.ones((20, 35), np.float32), True),
             (np.ones((8, 5), np.float32), np.zeros((8, 35), np.float32), False)]
    b = collate_dances(items, seq_len=6, stride=2)
    assert b["motion"].shape == (2, 6, 5) and b["mask"].sum(1).tolist() == [6, 4]
    assert b["music_present"].tolist() == [1.0, 0.0]
    assert b["motion"][1, 4:].abs().sum() == 0


@pytest.mark.parametrize("kind", TEMPORAL_KINDS)
def test_temporal_encoder_downsamples_and_ignores_padding(kind: str) -> None:
    torch.manual_seed(0)
    enc = TemporalEncoder(7, 16, max_len=32, layers=2, kind=kind, heads=2, dropout=0.0).eval()
    x = torch.randn(1, 20, 7)
    padded = torch.cat([x, torch.randn(1, 12, 7) * 100], dim=1)
    tok_a, m_a = enc(x, torch.ones(1, 20, dtype=torch.bool))
    mask = torch.zeros(1, 32, dtype=torch.bool)
    mask[:, :20] = True
    tok_b, m_b = enc(padded, mask)
    assert tok_a.shape == (1, 5, 16) and m_b.shape == (1, 8) and int(m_b.sum()) == 5
    torch.testing.assert_close(tok_a, tok_b[:, :5], atol=1e-4, rtol=1e-4)


def test_blender_variants() -> None:
    torch.manual_seed(0)
    m, a = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    outs = {f: MusicMotionBlender(8, f)(m, a, mask) for f in FUSIONS}
    assert all(o.shape == (2, 8) for o in outs.values())
    b = MusicMotionBlender(8, "blend")
    torch.testing.assert_close(b.combine(m, a), m + a + m * a)
    # masked mean pooling: the second row ignores its last two tokens
    z = torch.nn.functional.gelu(b.proj(b.combine(m, a)))
    torch.testing.assert_close(b(m, a, mask)[1], z[1, :2].mean(0))
    with pytest.raises(ValueError):
        MusicMotionBlender(8, "concat")


def test_infonce_matches_hand_computation_and_prefers_aligned_pairs() -> None:
    loss = TextToDanceInfoNCE(init_temperature=0.5)
    assert loss.temperature == pytest.approx(0.5)
    t = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    d = t.clone()
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.0)))
    assert float(loss(t, d).detach()) == pytest.approx(expected, rel=1e-5)
    assert float(loss(t, d.flip(0)).detach()) > float(loss(t, d).detach())


def _tiny(**kw) -> ModelConfig:
    base = dict(backbone="bow", freeze_backbone=False, d_model=16, layers=1, heads=2, embed_dim=12,
                seq_len=32, text_hidden=24, bow_dim=16)
    base.update(kw)
    return ModelConfig(**base)


@pytest.mark.parametrize("temporal", TEMPORAL_KINDS)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_variant_builds_runs_and_backpropagates(temporal: str, fusion: str) -> None:
    torch.manual_seed(0)
    model = CustomDancer(_tiny(temporal=temporal, fusion=fusion))
    rng = np.random.default_rng(0)
    stats = NormStats.identity()
    items = [prepare_dance(make_record(g, rng, 50), make_music(g, rng, 50), stats) for g in ("waltz", "krump")]
    b = collate_dances(items, 32, 2)
    dance = model.encode_dance(b["motion"], b["music"], b["mask"], b["music_present"])
    text = model.encode_text(["a slow waltz", "explosive krump"])
    assert dance.shape == text.shape == (2, 12)
    torch.testing.assert_close(dance.norm(dim=-1), torch.ones(2))
    model.loss(text, dance).backward()
    assert model.head.weight.grad is not None and model.text.adapter[0].weight.grad is not None


def test_config_validation() -> None:
    with pytest.raises(DanceSearchError):
        ModelConfig(temporal="gru").validate()
    with pytest.raises(DanceSearchError):
        ModelConfig(backbone="bow", freeze_backbone=True).validate()
    with pytest.raises(DanceSearchError):
        ModelConfig.from_dict({"nope": 1})
    assert ModelConfig.from_dict({"fusion": "add"}).fusion == "add"


def test_frozen_state_dict_excludes_backbone() -> None:
    model = CustomDancer(_tiny())
    assert any(k.startswith("text.backbone.") for k in model.trainable_state_dict())  # bow is trained, kept
    model2 = CustomDancer(_tiny())
    model2.load_trainable_state_dict(model.trainable_state_dict())
    with pytest.raises(DanceSearchError):
        model2.load_trainable_state_dict({"head.weight": torch.zeros(12, 16)})


def test_minilm_backbone_frozen_and_cached() -> None:
    pytest.importorskip("transformers")
    model = CustomDancer(_tiny(backbone="minilm", freeze_backbone=True)).eval()
    assert not any(k.startswith("text.backbone.") for k in model.trainable_state_dict())
    assert model.backbone_identity.startswith("minilm")
    a = model.encode_text(["a fast salsa with quick turns", "a slow waltz"])
    b = model.encode_text(["a fast salsa with quick turns"])
    torch.testing.assert_close(a[:1], b)
    assert "a slow waltz" in model.text._cache
    feats = model.text.backbone_features(["a fast salsa with quick turns", "a slow waltz"])
    assert feats.shape == (2, 384) and not feats.requires_grad
    cos = float(feats[0] @ feats[1])
    assert cos < 0.9  # different sentences, different pretrained features


def test_clip_backbone_error_or_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from encoders.model.text import CLIP_WEIGHTS_ENV, ClipTextBackbone

    monkeypatch.delenv(CLIP_WEIGHTS_ENV, raising=False)
    try:
        import open_clip  # noqa: F401
    except ImportError:
        with pytest.raises(DanceSearchError, match="open_clip"):
            ClipTextBackbone("ViT-B-32", None)
        pytest.skip("open_clip is not installed (its torchvision dependency needs a large torch build): "
                    "only the missing-package error was checked")
    with pytest.raises(DanceSearchError, match="--clip-weights"):
        ClipTextBackbone("ViT-B-32", None)
    with pytest.raises(DanceSearchError, match="--clip-weights"):
        ClipTextBackbone("ViT-B-32", "/nonexistent/weights.bin")


def test_frozen_text_memo_is_safe_under_concurrent_encoding() -> None:
    """The search service encodes from several threads at once; the shared LRU memo must not break."""
    import threading

    from encoders.model.text import TextEncoder, build_backbone

    import time
    from collections import OrderedDict

    class SlowMemo(OrderedDict):
        """Widens the gap between "is it cached?" and "read it", where an unguarded memo races."""

        def __contains__(self, key: object) -> bool:
            found = super().__contains__(key)
            time.sleep(0.0002)
            return found

    enc = TextEncoder(build_backbone("bow", bow_dim=16), out_dim=8, hidden=8, freeze=True)
    enc._cache = SlowMemo()
    enc.cache_limit = 20  # constant eviction pressure
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(150):
                enc.backbone_features([f"query {seed} {i % 37}", f"shared {i % 5}", f"other {i % 23}"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    import sys

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so unguarded check-then-use races show
    try:
        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:1]
    assert len(enc._cache) <= 20


def _two_clip_batch() -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(1)
    stats = NormStats.identity()
    items = [prepare_dance(make_record(g, rng, 50), make_music(g, rng, 50), stats) for g in ("waltz", "krump")]
    return collate_dances(items, 32, 2)


@pytest.mark.parametrize("fusion", ["blend", "add"])
def test_motion_only_path_is_the_clip_embedded_without_its_music(fusion: str) -> None:
    """The auxiliary motion-only embedding is exactly what search computes for a clip that has no music."""
    torch.manual_seed(0)
    model = CustomDancer(_tiny(fusion=fusion)).eval()
    b = _two_clip_batch()
    motion_only, music_only = model.unimodal_embeddings(
        *model.dance_tokens(b["motion"], b["music"], b["mask"], b["music_present"]))
    no_music = model.encode_dance(b["motion"], b["music"], b["mask"], torch.zeros(2, dtype=torch.bool))
    torch.testing.assert_close(motion_only, no_music)
    fused = model.encode_dance(b["motion"], b["music"], b["mask"], b["music_present"])
    assert not torch.allclose(fused, motion_only) and not torch.allclose(fused, music_only)
    torch.testing.assert_close(music_only.norm(dim=-1), torch.ones(2))


@pytest.mark.parametrize("fusion,expected", [("blend", True), ("add", True), ("mul", False), ("motion", False),
                                             ("music", False)])
def test_only_additive_fusions_have_unimodal_paths(fusion: str, expected: bool) -> None:
    assert CustomDancer(_tiny(fusion=fusion)).has_unimodal_paths is expected


def test_window_music_pooling_keeps_every_beat_and_averages_the_rest() -> None:
    from encoders.model.features import MUSIC_EVENT_COLUMNS, pool_music

    frames, stride = 120, 4
    music = np.zeros((frames, 35), dtype=np.float32)
    music[:, 1] = np.arange(frames)                    # a continuous column (an MFCC)
    beats = np.arange(1, frames, 7)                     # one-frame events, rarely on a kept frame
    music[beats, 34] = 1.0
    idx = window(frames, 30, stride, start=0)
    sub, pooled = music[idx], pool_music(music, idx, stride)
    assert sub[:, 34].sum() < len(beats) / 2            # subsampling loses most beats
    assert pooled[:, 34].sum() == len(beats)            # each beat lands in exactly one pooled frame
    np.testing.assert_allclose(pooled[:, 1], idx + (stride - 1) / 2)   # mean over the stride frames
    assert (pooled[:, MUSIC_EVENT_COLUMNS] <= 1).all() and pool_music(music, idx, 1).tolist() == sub.tolist()


def test_collate_music_pool_changes_only_the_music_and_is_validated() -> None:
    rng = np.random.default_rng(0)
    items = [prepare_dance(make_record("waltz", rng, 80), make_music("waltz", rng, 80), NormStats.identity())]
    a = collate_dances(items, 16, 4, music_pool="subsample")
    b = collate_dances(items, 16, 4, music_pool="window")
    assert torch.equal(a["motion"], b["motion"]) and torch.equal(a["mask"], b["mask"])
    assert not torch.equal(a["music"], b["music"])
    with pytest.raises(ValueError, match="music_pool"):
        collate_dances(items, 16, 4, music_pool="avg")


def test_configs_saved_before_music_pool_existed_keep_subsampling() -> None:
    assert ModelConfig.from_dict({"fusion": "blend"}).music_pool == "subsample"
    assert ModelConfig.from_dict({"music_pool": "window"}).music_pool == "window"
    with pytest.raises(DanceSearchError, match="music_pool"):
        ModelConfig.from_dict({"music_pool": "avg"})
