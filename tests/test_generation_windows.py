"""Window datasets for generation: splits never mix, windows match the clips, the cache follows the catalog."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from encoders.errors import DanceSearchError
from encoders.motion.record import MotionRecord
from encoders.music.features import COL_BEAT
from encoders.training.data import ClipExample
from generation.representation import FEATURE_DIM, LAYOUT, canonicalise_features, decode, encode
from generation.windows import WindowConfig, WindowDataset, build_store, cache_root, open_windows
from generation.windows.store import _window_starts
from indexer.datasets import examples_for_split
from indexer.workspace import Workspace
from tests.synthetic_clips import make_record


@pytest.fixture
def store(demo_workspace: Workspace):
    return open_windows(demo_workspace, WindowConfig(stride_frames=30), progress=False)


def test_window_starts_cover_the_clip_end() -> None:
    cfg = WindowConfig(window_frames=120, stride_frames=50)
    assert _window_starts(360, cfg) == [0, 50, 100, 150, 200, 240]
    assert _window_starts(120, cfg) == [0]
    assert _window_starts(119, cfg) == []


def test_windows_never_cross_splits(store, demo_workspace: Workspace) -> None:
    clips_by_split = {s: {c["id"] for c in store.clips(s)} for s in ("train", "val", "test")}
    assert all(clips_by_split.values()), "the demo plan has clips in every split"
    assert not clips_by_split["train"] & clips_by_split["test"]
    assert not clips_by_split["train"] & clips_by_split["val"]
    catalog_split = {ex.clip_id: ex.split for ex in examples_for_split(demo_workspace, None)}
    for split in ("train", "val", "test"):
        for i in range(store.num_windows(split)):
            w = store.window(split, i)
            assert w.split == split and catalog_split[w.clip_id] == split


def test_window_content_matches_its_clip(store, demo_workspace: Workspace) -> None:
    ex = {e.clip_id: e for e in examples_for_split(demo_workspace, "test")}
    clip = store.clips("test")[0]
    per_clip = len(_window_starts(clip["frames"], store.config))
    assert per_clip == 9                                     # 12-s clips, 4-s windows every second
    w = store.window("test", 2)
    assert (w.clip_id, w.start) == (clip["id"], 60)
    record = MotionRecord.load(ex[clip["id"]].motion_path)
    world = encode(record, store.config.contacts, canonical=False)[0]
    world[:, LAYOUT.root.start + 1] -= clip["floor"]                  # clips are grounded: floor at y = 0
    want, _ = canonicalise_features(world[60:180])
    assert abs(clip["floor"]) < 0.01                                   # the demo corpus is grounded already
    assert w.motion.shape == (120, FEATURE_DIM)
    np.testing.assert_allclose(w.motion[:, LAYOUT.root], want[:, LAYOUT.root], atol=1e-4)
    np.testing.assert_allclose(w.motion, want, atol=2e-3)   # float16 cache of rotations
    # in positions, the float16 cache costs under a millimetre
    err = np.linalg.norm(decode(w.motion).positions - decode(want).positions, axis=-1)
    assert err.max() < 1e-3, f"{err.max() * 1000:.2f} mm"
    music = np.load(ex[clip["id"]].music_path)
    np.testing.assert_allclose(w.music, music[60:180], rtol=2e-3, atol=2e-2)
    np.testing.assert_allclose(w.beat_times, np.nonzero(music[60:180, COL_BEAT] > 0.5)[0] / 30.0)
    assert len(w.beat_times) >= 4 and w.has_music
    assert w.genre == ex[clip["id"]].genre and w.captions == ex[clip["id"]].captions and w.dancer


def test_cache_is_reused_and_follows_catalog_changes(store, demo_workspace: Workspace) -> None:
    again = open_windows(demo_workspace, WindowConfig(stride_frames=30), progress=False)
    assert again.root == store.root
    manifest = store.root / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    open_windows(demo_workspace, WindowConfig(stride_frames=30), progress=False)
    assert manifest.stat().st_mtime_ns == stamp, "an unchanged catalog is not rebuilt"
    # another stride or length reads the same cache; other contact labels or a changed catalog row do not
    wide = open_windows(demo_workspace, WindowConfig(stride_frames=120), progress=False)
    assert wide.root == store.root and wide.num_windows("test") == 3 * len(store.clips("test"))
    assert store.with_windows(60, 60).num_windows("test") == 6 * len(store.clips("test"))
    assert store.num_windows("test") == 9 * len(store.clips("test"))
    from generation.representation import ContactConfig
    edge = open_windows(demo_workspace, WindowConfig(contacts=ContactConfig(height_threshold=None)), progress=False)
    assert edge.root != store.root
    examples = examples_for_split(demo_workspace, None)
    examples[0].captions = examples[0].captions + ["a new caption"]
    changed = build_store(examples, cache_root(demo_workspace.home), WindowConfig(stride_frames=30), progress=False)
    assert changed.root != store.root and changed.content_hash != store.content_hash


def test_rewritten_media_with_the_same_clip_id_rebuilds(demo_workspace: Workspace, tmp_path: Path) -> None:
    """Ingest rewrites media in place (a new media format) and keeps clip ids: the cache must notice."""
    import shutil

    examples = examples_for_split(demo_workspace, "val")
    moved = []
    for ex in examples:                                   # a private copy of the media, to rewrite safely
        m = tmp_path / ex.motion_path.name
        shutil.copy(ex.motion_path, m)
        ex.motion_path = m
        moved.append(ex)
    first = build_store(moved, tmp_path / "cache", progress=False)
    rec = MotionRecord.load(moved[0].motion_path)
    rec.trans[:, 0] += 1.0                                 # same id, same path, new content
    rec.save(moved[0].motion_path)
    os.utime(moved[0].motion_path, ns=(1, 1))
    second = build_store(moved, tmp_path / "cache", progress=False)
    assert second.root != first.root
    assert not first.root.exists(), "the cache of the older catalog version is pruned"


def test_builds_do_not_share_a_temporary_folder(demo_workspace: Workspace, tmp_path: Path) -> None:
    """Two processes building the same cache at once each write their own folder; the result is complete."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_build_val, args=(str(demo_workspace.home), str(tmp_path))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    done = [d for d in tmp_path.glob("windows-*") if ".partial-" not in d.name]
    assert len(done) == 1 and not list(tmp_path.glob("*.partial-*"))
    store = build_store(examples_for_split(demo_workspace, "val"), tmp_path, progress=False)
    assert store.root == done[0] and store.window("val", 0).motion.shape == (120, FEATURE_DIM)


def _build_val(home: str, cache: str) -> None:
    build_store(examples_for_split(Workspace(Path(home)), "val"), Path(cache), progress=False)


def test_store_pickles_without_its_arrays(demo_workspace: Workspace, tmp_path: Path) -> None:
    import pickle

    store = build_store(examples_for_split(demo_workspace, "train"), tmp_path, progress=False)
    store.window("train", 0)
    blob = pickle.dumps(store)
    assert len(blob) < 200_000
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.window("train", 1).motion, store.window("train", 1).motion)


def test_interrupted_build_is_never_served(demo_workspace: Workspace, tmp_path: Path) -> None:
    examples = examples_for_split(demo_workspace, "val")
    built = build_store(examples, tmp_path, progress=False)
    (built.root / "manifest.json").unlink()                   # as if killed before the last write
    (built.root / "val.motion.npy").write_bytes(b"truncated")
    rebuilt = build_store(examples, tmp_path, progress=False)
    assert rebuilt.root == built.root and rebuilt.num_windows("val") == built.num_windows("val")
    assert rebuilt.window("val", 0).motion.shape == (120, FEATURE_DIM)
    assert not list(tmp_path.glob("*.partial*"))


def test_clips_without_rotations_are_listed_with_their_reason(demo_workspace: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bvh_like = make_record("popping", rng, frames=200, with_rotations=False)
    bvh_like.save(tmp_path / "bvh_like.motion.npz")
    extra = ClipExample(10_000, tmp_path / "bvh_like.motion.npz", None, ["a popping dance"], "popping", None, "train",
                        {"key": "bvh/take_01#0"})
    examples = examples_for_split(demo_workspace, "train") + [extra]
    built = build_store(examples, tmp_path / "cache", progress=False)
    left = built.manifest["left_out"]
    assert [d["key"] for d in left] == ["bvh/take_01#0"]
    assert "joint positions only" in left[0]["reason"]
    with pytest.raises(DanceSearchError, match="no clip of the catalog can be used"):
        build_store([extra], tmp_path / "cache2", progress=False)


def test_torch_dataset_items_and_normaliser(store) -> None:
    norm = store.fit_normalizer("train")
    ds = WindowDataset(store, "train", norm)
    assert len(ds) == store.num_windows("train")
    item = ds[3]
    assert item["motion"].shape == (120, FEATURE_DIM) and item["music"].shape == (120, 35)
    assert store.genres[int(item["genre"])] == store.window("train", 3).genre
    stacked = np.stack([ds[i]["motion"].numpy() for i in range(len(ds))])
    assert abs(stacked.mean()) < 0.05 and 0.5 < stacked.std() < 1.5   # normalised on these very windows


def test_memory_mapped_arrays_are_float16(store) -> None:
    arrays = store._split("train")
    assert arrays["motion"].dtype == np.float16 and isinstance(arrays["motion"], np.memmap)
    assert arrays["root"].dtype == np.float32
    assert os.path.getsize(store.root / "train.motion.npy") < 2 * 360 * FEATURE_DIM * len(store.clips("train")) + 4096


def test_corpus_windows_command(demo_workspace: Workspace, capsys: pytest.CaptureFixture) -> None:
    from ui.cli import main

    assert main(["corpus", "windows", "--home", str(demo_workspace.home), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["splits"]["test"] == {"clips": 2, "frames": 720, "windows": 2 * 9}
    assert out["left_out"] == [] and len(out["genres"]) == 8
