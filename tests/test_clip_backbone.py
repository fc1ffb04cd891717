"""The CLIP text backbone through open_clip, offline: a tiny registered architecture and a local weights file.

Why a tiny model: real CLIP weights cannot be downloaded here, and ViT-B-32's checkpoint is ~600 MB. The
code path a user takes is the same: ``open_clip.create_model(name, pretrained=<local file>)``, the BPE
tokenizer bundled with open_clip, the text tower only, then training and the embedding API on top.
Skipped where open_clip is not installed (it is the ``clip`` extra: torchvision needs a large torch).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

open_clip = pytest.importorskip("open_clip")

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_clips import write_clips  # noqa: E402

from encoders.api import DanceEmbedder  # noqa: E402
from encoders.errors import DanceSearchError  # noqa: E402
from encoders.model.customdancer import ModelConfig  # noqa: E402
from encoders.model.text import ClipTextBackbone  # noqa: E402
from encoders.training.run_dir import RunConfig, TrainConfig  # noqa: E402
from encoders.training.trainer import train  # noqa: E402

TINY = "ds-tiny-clip"


@pytest.fixture(scope="module")
def tiny_clip_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Register a small CLIP architecture with open_clip and save randomly initialised weights to a file."""
    root = tmp_path_factory.mktemp("clip")
    cfg = {"embed_dim": 32,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (root / f"{TINY}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(root / f"{TINY}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None)
    weights = root / "tiny_clip.pt"
    torch.save(model.state_dict(), weights)
    return weights


def test_text_tower_loads_from_a_local_file(tiny_clip_weights: Path) -> None:
    backbone = ClipTextBackbone(TINY, str(tiny_clip_weights))
    assert backbone.model.visual is None, "the image tower is dropped"
    assert backbone.dim == 32 and backbone.identity == f"clip:{TINY}:tiny_clip.pt:{tiny_clip_weights.stat().st_size}"
    with torch.no_grad():
        out = backbone(["a slow waltz", "a fast krump with chest pops"])
    assert out.shape == (2, 32)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(out[0], out[1]), "different sentences, different features"


def test_bad_weights_file_names_the_flag(tiny_clip_weights: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DanceSearchError, match="--clip-weights"):
        ClipTextBackbone(TINY, str(bad))


def test_train_and_embed_with_the_clip_backbone(tiny_clip_weights: Path, tmp_path: Path) -> None:
    """`dancesearch train --backbone clip --clip-weights FILE` end to end, then the embedding API."""
    train_ex = write_clips(tmp_path / "train", per_genre=3, seed=0, frames=60)
    val_ex = write_clips(tmp_path / "val", per_genre=1, seed=1, frames=60, split="val")
    model = ModelConfig(backbone="clip", clip_model=TINY, clip_weights=str(tiny_clip_weights), freeze_backbone=True,
                        d_model=16, layers=1, heads=2, embed_dim=16, seq_len=30, frame_stride=2, text_hidden=32)
    cfg = RunConfig(model, TrainConfig(epochs=2, batch_size=6, lr=3e-3, seed=0, num_threads=1, device="cpu"))
    result = train(cfg, train_ex, val_ex, tmp_path / "run", progress=False)
    assert len(result.history) == 2
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["backbone"] == "clip" and saved["model"]["clip_weights"] == str(tiny_clip_weights)
    # a frozen backbone is not copied into the run directory: the checkpoint holds only trained parameters
    state = torch.load(tmp_path / "run" / "best.pt", map_location="cpu", weights_only=False)
    assert any(k.startswith("text.adapter") for k in state), "the trained text adapter is saved"
    assert not any("backbone" in k for k in state), "frozen CLIP weights were saved"
    emb = DanceEmbedder.from_run(tmp_path / "run")
    q = emb.encode_text(["a slow waltz", "a slow waltz", "fast hip hop"])
    assert q.shape == (3, 16)
    assert abs(float((q[0] * q[1]).sum()) - 1.0) < 1e-5
