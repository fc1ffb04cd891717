"""Shared fixtures: the real data fixtures beside the project (../shared/data), skipped when absent."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

# Small tensors dominate the suite; on a shared 2-core machine, intra-op threads only add contention.
torch.set_num_threads(1)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DANCESEARCH_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; tests that need it are skipped with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data fixtures not found at {SHARED_DATA} (a fresh user clone has no ../shared)")
    return SHARED_DATA


def _set_split(npz: Path, split: str) -> None:
    import numpy as np

    with np.load(npz, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["metadata"]))
    meta["split"] = split
    arrays["metadata"] = np.asarray(json.dumps(meta))
    np.savez(npz, **arrays)


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory):
    """A real catalog of 8 procedural demo clips (5 train, 1 val, 2 test), ingested as `make demo` does.

    Shared by the generation tests (window datasets, metrics against catalog windows): one ingest per run.
    """
    import numpy as np

    from generation.procedural.corpus import write_demo_corpus
    from indexer.ingest import ingest
    from indexer.workspace import Workspace

    root = tmp_path_factory.mktemp("gen_windows")
    corpus = root / "corpus"
    write_demo_corpus(corpus, clips=20, seed=0, workers=1, progress=False)     # plan: 18 train + 2 test
    train = sorted(p for p in corpus.glob("*.npz") if json.loads(str(np.load(p)["metadata"]))["split"] == "train")
    for p in train[6:]:
        p.unlink()
        p.with_suffix(".ogg").unlink()
    _set_split(train[5], "val")
    ws = Workspace(root / "home").ensure()
    report = ingest(ws, "npz", corpus, progress=False, source="demo", workers=1)
    assert not report.failed and report.clips == 8
    return ws


@pytest.fixture(scope="module")
def gl() -> str:
    """Headless OpenGL for the video tests (generation/video); skips with the reason where there is none."""
    from generation.video import renderer_available

    ok, why = renderer_available()
    if not ok:
        pytest.skip(f"headless rendering unavailable: {why}")
    return why


@pytest.fixture(scope="module")
def dance():
    """The first 60 frames (2 s) of a procedural SMPL-X dance: steps, turns, travel, finger shapes."""
    from generation.procedural.choreographer import choreograph
    from generation.procedural.plan import plan_corpus

    return choreograph(plan_corpus(18, 0)[0]).record().slice(0, 60)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """A window cache (16-frame windows, stride 8) of one real procedural dance: 2 train clips, 1 val clip.

    Written directly in the cache format (no catalog ingest), for the denoiser's training-loop tests.
    """
    import numpy as np

    from encoders.motion.convert import from_smplx_axis_angle
    from generation.procedural.choreographer import choreograph
    from generation.procedural.plan import plan_corpus
    from generation.representation import FEATURE_DIM, LAYOUT, REPRESENTATION_ID, ContactConfig
    from generation.representation.codec import encode
    from generation.windows import WindowConfig, WindowStore
    from generation.windows.store import CACHE_FORMAT

    dance = choreograph(plan_corpus(18, seed=0)[0])
    feats, _ = encode(from_smplx_axis_angle(dance.trans, dance.poses, 30.0), ContactConfig(), canonical=False)
    music = np.random.default_rng(0).normal(size=(len(feats), 35)).astype(np.float16)
    root = tmp_path_factory.mktemp("tiny_windows") / "windows-test"
    root.mkdir()
    plan = {"train": [("popping", 0, 64), ("waltz", 64, 128)], "val": [("waltz", 128, 176)], "test": []}
    counts = {}
    for split, clips in plan.items():
        meta, parts = [], []
        for i, (genre, a, b) in enumerate(clips):
            meta.append({"id": f"{split}{i}", "key": f"{split}{i}", "genre": genre, "dancer": None, "captions": [],
                         "bpm": None, "offset": sum(len(p) for p in parts), "frames": b - a, "has_music": True,
                         "floor": 0.0})
            parts.append(np.arange(a, b))
        if parts:
            idx = np.concatenate(parts)
            np.save(root / f"{split}.motion.npy", feats[idx].astype(np.float16))
            np.save(root / f"{split}.root.npy", feats[idx][:, LAYOUT.root].astype(np.float32))
            np.save(root / f"{split}.music.npy", music[idx])
        (root / f"{split}.clips.json").write_text(json.dumps(meta))
        counts[split] = {"clips": len(meta), "frames": sum(m["frames"] for m in meta)}
    (root / "manifest.json").write_text(json.dumps({
        "format": CACHE_FORMAT, "representation": REPRESENTATION_ID, "hash": "popdg-test",
        "config": WindowConfig(16, 8).to_dict(), "genres": ["popping", "waltz"], "feature_dim": FEATURE_DIM,
        "music_dim": 35, "fps": 30.0, "splits": counts, "left_out": []}))
    return WindowStore(root)
