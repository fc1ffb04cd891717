"""Ingest the real CMU BVH fixtures (../shared/data/bvh): clip counts from each file's own header, 12-s clips,
and bodies that look like bodies (feet below the head, plausible height). Skipped when the data is absent."""
from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from encoders.motion.record import MotionRecord
from indexer.catalog import Catalog
from indexer.clipping import assign_split, expected_clip_count
from indexer.ingest import ingest
from indexer.sources.bvh import bvh_stem
from indexer.workspace import Workspace

pytestmark = pytest.mark.shared_data


def header_frames_30fps(path: Path) -> int:
    """Frames at 30 fps from the BVH header alone (``Frames:`` and ``Frame Time:``), independent of the parser."""
    opener = gzip.open if path.name.endswith(".gz") else open
    frames = frame_time = None
    with opener(path, "rt") as fh:
        for line in fh:
            if line.strip().startswith("Frames:"):
                frames = int(line.split(":")[1])
            elif line.strip().startswith("Frame Time:"):
                frame_time = float(line.split(":")[1])
                break
    assert frames and frame_time
    fps = 1.0 / frame_time
    if abs(fps - round(fps)) < 1e-3 * fps:   # "0.008333" is 120 fps printed with 6 decimals
        fps = float(round(fps))
    return int(math.floor((frames - 1) / fps * 30 + 1e-6)) + 1


def check_workspace(ws: Workspace, files: list[Path], failed: list[dict]) -> None:
    failed_names = {Path(f["path"]).name: f["reason"] for f in failed}
    cat = Catalog(ws.db_url)
    try:
        for path in files:
            n30 = header_frames_30fps(path)
            expected = expected_clip_count(n30)
            clips = cat.clips()
            mine = [c for c in clips if c.sequence.name == bvh_stem(path)]
            assert len(mine) == expected, (path.name, n30, len(mine))
            if expected == 0:
                assert "too short" in failed_names[path.name]
                continue
            for clip in mine:
                want = 12.0 if n30 >= 360 else n30 / 30
                assert clip.duration_s == pytest.approx(want), path.name
                assert clip.audio_path is None and clip.music_path is None and clip.genre == "unknown"
                rec = MotionRecord.load(ws.resolve(clip.motion_path))
                assert rec.num_frames == clip.end_frame - clip.start_frame
                body = rec.body22()
                head = body[:, rec.joint_names.index("head"), 1]
                feet = body[:, [rec.joint_names.index(n) for n in ("left_foot", "right_foot")], 1].min(axis=1)
                assert np.median(head - feet) > 0.8, path.name                     # feet below the head
                # head joint (skull base) above the toes when most upright: an adult's is ~1.2-1.7 m; the Indian
                # dance take (94_01) stays in a half-sitting stance and peaks near 1.2 m, so the bound is 1.1
                height = float(np.percentile(head - feet, 95))
                assert 1.1 < height < 2.0, (path.name, height)
                assert float(feet.min()) > -0.1 and float(np.median(feet)) < 0.3, path.name   # on the ground
    finally:
        cat.close()


def test_ingest_cmu_bvh_subset(shared_data: Path, tmp_path: Path) -> None:
    misc = shared_data / "bvh" / "cmu_misc"
    salsa = [shared_data / "bvh" / "cmu_salsa" / "60_10_scaled.bvh.gz"]   # a single .bvh.gz file as PATH
    if not misc.is_dir() or not all(p.is_file() for p in salsa):
        pytest.skip("CMU BVH fixtures not found")
    ws = Workspace(tmp_path / "home")
    report = ingest(ws, "bvh", misc, progress=False)
    failed = list(report.failed)
    for p in salsa:
        r = ingest(ws, "bvh", p, progress=False)
        failed += r.failed
        assert r.failed == [] and r.sequences == 1
    files = sorted(misc.glob("*.bvh")) + salsa
    check_workspace(ws, files, failed)
    assert {Path(f["path"]).name for f in failed} == {p.name for p in files if expected_clip_count(header_frames_30fps(p)) == 0}


@pytest.mark.slow
def test_ingest_all_shared_bvh(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "bvh"
    if not root.is_dir():
        pytest.skip("BVH fixtures not found")
    ws = Workspace(tmp_path / "home")
    report = ingest(ws, "bvh", root, progress=False)
    files = sorted(p for p in root.rglob("*") if p.name.endswith((".bvh", ".bvh.gz")))
    expected = {p.name: expected_clip_count(header_frames_30fps(p)) for p in files}
    assert report.clips == sum(expected.values())
    assert report.sequences == sum(1 for v in expected.values() if v > 0)
    check_workspace(ws, files, report.failed)


def test_bvh_sidecars(shared_data: Path, tmp_path: Path) -> None:
    """Sidecar JSON labels and sidecar audio beside a real BVH (copied into a tmp folder, never the repo)."""
    import json
    import shutil

    import soundfile as sf

    src = shared_data / "bvh" / "cmu_misc" / "05_20-mb.bvh"
    if not src.is_file():
        pytest.skip("CMU BVH fixture 05_20-mb.bvh not found")
    d = tmp_path / "bvh" / "modern"
    d.mkdir(parents=True)
    shutil.copy(src, d / "take.bvh")
    (d / "take.json").write_text(json.dumps({"genre": "Modern", "dancer": "cmu05", "bpm": 96, "group": "t5",
                                             "captions": ["a modern dance solo"], "tags": {"energy": "medium"}}))
    n30 = header_frames_30fps(src)
    sr = 22050
    sf.write(d / "take.wav", (0.1 * np.sin(np.arange(int((n30 / 30 + 0.4) * sr)) / sr * 2 * np.pi * 440)).astype(np.float32), sr)
    ws = Workspace(tmp_path / "home")
    report = ingest(ws, "bvh", tmp_path / "bvh", progress=False)
    assert (report.sequences, report.clips, report.failed) == (1, 1, [])
    cat = Catalog(ws.db_url)
    clip = cat.clip_by_key("bvh/take#0")
    assert (clip.genre, clip.dancer, clip.bpm, clip.tags) == ("modern", "cmu05", 96.0, {"energy": "medium"})
    assert clip.caption_texts == ["a modern dance solo"] and clip.captions[0].origin == "metadata"
    assert clip.split == assign_split("bvh", "other_name", group="t5")              # the group decides the split
    assert clip.audio_path and sf.info(str(ws.resolve(clip.audio_path))).duration == pytest.approx(n30 / 30, abs=0.05)
    assert np.load(ws.resolve(clip.music_path)).shape == (n30, 35)
    seq = cat.sequence("bvh", "take")
    assert seq.meta["trimmed_frames"] == 0 and seq.meta["music_duration_s"] > seq.meta["motion_duration_s"]
    cat.close()
